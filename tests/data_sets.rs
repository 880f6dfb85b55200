//! Data sets: one host backing up an exports directory and a database dump as two jobs,
//! over several days (the backups' clocks set back with libfaketime). Retention, drills,
//! listings and snapshot specs must treat each data set as its own timeline.

mod common;

use std::fs;
use std::process::{Command, Output, Stdio};

use common::*;

const HOUR: i64 = 3600;

/// The config's jobs: the exports folder, and a "database dump" taken by a command.
const JOBS: &str = r#"
[[job]]
name = "exports"
paths = ["exports"]

[[job]]
name = "crm"
command = "cat crm-dump.sql"
stdin_name = "crm.sql"
"#;

/// A repository in Tokyo time with the two jobs.
fn two_jobs() -> Env {
    let env = Env::new(&["tokyo", "osaka"]);
    let config = fs::read_to_string(env.config()).unwrap();
    let config = config.replacen(
        "[repository]\n",
        "[repository]\ntimezone = \"Asia/Tokyo\"\n",
        1,
    );
    fs::write(env.config(), format!("{config}{JOBS}")).unwrap();
    env
}

/// Run snapdrill with its clock set to `when` (UTC, `2026-11-24 17:00:00`).
fn at(env: &Env, when: &str, args: &[&str]) -> Output {
    Command::new("faketime")
        .arg(when)
        .arg(BIN)
        .arg("--config")
        .arg(env.config())
        .args(args)
        .current_dir(env.path())
        .env("HOME", env.path())
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .env_remove("SNAPDRILL_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Six days, 2026-11-24 to 11-29 (`day` 6 is the oldest): the exports job at 17:00 UTC
/// (02:00 the next day in Tokyo), the dump an hour later — the same day in both zones —,
/// so that the newest snapshot of the host is always a dump. Returns the exports'
/// snapshot ids, oldest first.
fn six_days(env: &Env) -> Vec<String> {
    common::require_tool("faketime", "faketime");
    let mut exports = Vec::new();
    for day in (1..=6).rev() {
        env.tree(
            "exports",
            &[
                ("customers.csv", format!("id,day\n1,{day}\n").as_bytes()),
                (&format!("calls-{day}.csv"), b"id\n1\n"),
            ],
        );
        fs::write(env.p("crm-dump.sql"), format!("-- dump of day {day}\n")).unwrap();
        let date = 30 - day;
        let out = at(
            env,
            &format!("2026-11-{date} 17:00:00"),
            &["backup", "--job", "exports", "--json"],
        );
        assert_eq!(code(&out), 0, "{}", show(&out));
        exports.push(
            json(&stdout(&out))["snapshot_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        let out = at(
            env,
            &format!("2026-11-{date} 18:00:00"),
            &["backup", "--job", "crm"],
        );
        assert_eq!(code(&out), 0, "{}", show(&out));
    }
    exports
}

#[test]
fn forget_keeps_the_newest_of_each_data_set_where_grouping_by_host_would_not() {
    let env = two_jobs();
    let exports = six_days(&env);
    let forget = |extra: &[&str]| {
        let mut args = vec!["forget", "--keep-daily", "3", "--dry-run", "--json"];
        args.extend_from_slice(extra);
        let v = json(&env.ok(&args));
        let forgotten: Vec<String> = v["forget"]["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["keep"] == false)
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect();
        forgotten
    };
    // Per data set: three days of each kept, the three older of each forgotten.
    let per_set = forget(&[]);
    assert_eq!(per_set.len(), 6, "{per_set:?}");
    for kept in &exports[3..] {
        assert!(
            !per_set.contains(kept),
            "export {kept} forgotten: {per_set:?}"
        );
    }
    // Grouped by host alone (the old behaviour): each day's newest is the dump, so every
    // export is forgotten — the data loss the default grouping prevents.
    let per_host = forget(&["--group-by", "host"]);
    for e in &exports {
        assert!(
            per_host.contains(e),
            "{e} kept by host grouping: {per_host:?}"
        );
    }
    // The text names the groups.
    let text = env.ok(&["forget", "--keep-daily", "3", "--dry-run"]);
    assert!(text.contains("job exports"), "{text}");
    assert!(text.contains("job crm"), "{text}");
    // A policy that keeps nothing by itself still keeps the newest of each data set.
    let v = json(&env.ok(&["forget", "--keep-tag", "none", "--dry-run", "--json"]));
    let kept: Vec<&str> = v["forget"]["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["keep"] == true)
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(kept.len(), 2, "{v:#}");
    assert!(kept.contains(&exports[5].as_str()), "{v:#}");
}

#[test]
fn a_drill_with_no_snapshot_named_drills_every_data_set_and_job_narrows_it() {
    let env = two_jobs();
    let exports = six_days(&env);
    let out = env.run(&["restore-drill", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let records = json(&stdout(&out));
    let records = records.as_array().unwrap();
    let mut jobs: Vec<&str> = records.iter().map(|r| r["job"].as_str().unwrap()).collect();
    jobs.sort();
    assert_eq!(jobs, ["crm", "exports"], "{records:?}");
    let export = records.iter().find(|r| r["job"] == "exports").unwrap();
    assert_eq!(export["snapshot_id"], exports[5].as_str());
    // Its RPO is the age of the newest export, not of the newest dump (an hour younger).
    let rpo = export["rpo_secs"].as_f64().unwrap();
    let crm = records.iter().find(|r| r["job"] == "crm").unwrap();
    let crm_rpo = crm["rpo_secs"].as_f64().unwrap();
    assert!((rpo - crm_rpo - HOUR as f64).abs() < 60.0, "{export} {crm}");
    // Each result line names its data set and snapshot.
    let text = env.ok(&["restore-drill"]);
    let host = snapdrill::hostname();
    assert!(
        text.contains(&format!("{host}/exports snapshot {}", exports[5])),
        "{text}"
    );
    assert!(text.contains(&format!("{host}/crm snapshot ")), "{text}");
    // --job drills one data set.
    let text = env.ok(&["restore-drill", "--job", "exports"]);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("drill ")).count(),
        1,
        "{text}"
    );
    assert!(text.contains("/exports snapshot"), "{text}");
    // `drills` lists by data set and filters.
    let listed = env.ok(&["drills", "--job", "crm"]);
    assert!(listed.contains("/crm"), "{listed}");
    assert!(!listed.contains("/exports"), "{listed}");
}

#[test]
fn specs_are_resolved_within_a_data_set_and_ambiguity_lists_candidates() {
    let env = two_jobs();
    let exports = six_days(&env);
    let restored = |args: &[&str]| -> String {
        let target = env.p(&format!("r-{}", args.join("-").replace([':', ' '], "_")));
        let mut all = vec!["restore", "--target", target.to_str().unwrap()];
        all.extend_from_slice(args);
        env.ok(&all);
        fs::read_to_string(target.join("exports/customers.csv")).unwrap()
    };
    // `latest` alone is ambiguous: two data sets, each one's newest listed.
    let out = env.run(&[
        "restore",
        "latest",
        "--target",
        env.p("x").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("2 data sets") && err.contains(&exports[5]),
        "{err}"
    );
    assert!(
        !env.p("x").exists(),
        "nothing restored on an ambiguous spec"
    );
    // latest and latest~1 within the job.
    assert_eq!(restored(&["latest", "--job", "exports"]), "id,day\n1,1\n");
    assert_eq!(restored(&["latest~1", "--job", "exports"]), "id,day\n1,2\n");
    // A day in Tokyo time: the export of that local day.
    let zone = snapdrill::select::Zone::named("Asia/Tokyo").unwrap();
    let times = snapshot_times(&env);
    let third = &exports[2]; // day 4
    let day = zone.day(times[third]);
    assert_eq!(restored(&[&day, "--job", "exports"]), "id,day\n1,4\n");
    // --before a date-time: the newest export strictly before the third one's time.
    let before = zone.show(times[third]);
    let before = before.get(..19).unwrap().replace(' ', "T");
    assert_eq!(
        restored(&["latest", "--job", "exports", "--before", &before]),
        "id,day\n1,5\n"
    );
    // An id prefix shared by several snapshots lists them.
    let prefix = &exports[0][..4];
    let out = env.run(&["ls", prefix]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&exports[0]) && err.contains(&exports[1]),
        "{err}"
    );
    // The listing shows the jobs, in the configured zone, and --json carries them.
    let table = env.ok(&["snapshots", "--job", "crm"]);
    assert!(
        table.contains("TIME (Asia/Tokyo)") && table.contains(" crm "),
        "{table}"
    );
    assert!(!table.contains("exports"), "{table}");
    let v = json(&env.ok(&["snapshots", "--json"]));
    let row = &v["snapshots"][0];
    assert_eq!(row["job"], "exports");
    assert_eq!(row["source"].as_str().unwrap().len(), 32);
}

/// Snapshot id -> its time, from `snapshots --json`.
fn snapshot_times(env: &Env) -> std::collections::HashMap<String, std::time::SystemTime> {
    let v = json(&env.ok(&["snapshots", "--json"]));
    v["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                humantime::parse_rfc3339(s["time"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn jobs_run_in_order_each_with_its_result_and_the_worst_exit() {
    let env = two_jobs();
    env.tree("exports", &[("customers.csv", b"id\n1\n")]);
    fs::write(env.p("crm-dump.sql"), "-- dump\n").unwrap();
    let out = env.run(&["backup"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let text = stdout(&out);
    let results: Vec<&str> = text.lines().filter(|l| l.starts_with("backup ")).collect();
    assert_eq!(results.len(), 2, "{text}");
    assert!(
        results[0].contains("job exports") && results[1].contains("job crm"),
        "{text}"
    );
    // The dump's command fails: that job fails (exit 1), the export still runs.
    fs::remove_file(env.p("crm-dump.sql")).unwrap();
    let out = env.run(&["backup"]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(stdout(&out).contains("job exports"), "{}", show(&out));
    assert!(stderr(&out).contains("job crm"), "{}", show(&out));
    // An unknown job is named, with the ones there are.
    let out = env.run(&["backup", "--job", "nope"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(stderr(&out).contains("exports, crm"), "{}", show(&out));
}

/// A repository with one exports job that checks its data.
fn checked_job(extra: &str) -> Env {
    let env = Env::new(&["tokyo"]);
    let config = fs::read_to_string(env.config()).unwrap();
    let job = format!("\n[[job]]\nname = \"exports\"\npaths = [\"exports\"]\n{extra}\n");
    fs::write(env.config(), format!("{config}{job}")).unwrap();
    env
}

#[test]
fn an_export_without_its_complete_marker_is_not_backed_up() {
    let env = checked_job("complete_marker = \".complete\"\nexpect = [\"customers.csv\"]");
    env.tree("exports", &[("customers.csv", b"id\n1\n")]);
    let out = env.run(&["backup"]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(
        stderr(&out).contains("exports/.complete is missing"),
        "{}",
        show(&out)
    );
    assert!(
        env.snapshot_ids().is_empty(),
        "no snapshot without the marker"
    );
    // With the marker but without an expected file: no snapshot either.
    env.tree("exports", &[(".complete", b"")]);
    fs::remove_file(env.p("exports/customers.csv")).unwrap();
    let out = env.run(&["backup"]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(
        stderr(&out).contains("expected file customers.csv"),
        "{}",
        show(&out)
    );
    assert!(env.snapshot_ids().is_empty());
    env.tree("exports", &[("customers.csv", b"id\n1\n")]);
    env.ok(&["backup"]);
    assert_eq!(env.snapshot_ids().len(), 1);
}

#[test]
fn a_csv_that_lost_forty_percent_of_its_lines_makes_the_backup_partial() {
    let env = checked_job("shrink_alert = \"30%\"");
    let rows = |n: usize| {
        let mut csv = String::from("id,name\n");
        (1..n).for_each(|i| csv.push_str(&format!("{i},customer {i}\n")));
        csv
    };
    env.tree(
        "exports",
        &[("customers.csv", rows(100).as_bytes()), ("notes.txt", b"x")],
    );
    env.ok(&["backup"]);
    // 25 % fewer lines: within the alert.
    env.tree("exports", &[("customers.csv", rows(75).as_bytes())]);
    env.ok(&["backup"]);
    // 40 % fewer than the previous backup: exit 3, the file named, the snapshot taken.
    env.tree("exports", &[("customers.csv", rows(45).as_bytes())]);
    let out = env.run(&["backup"]);
    assert_eq!(code(&out), 3, "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("exports/customers.csv shrank from 75 to 45 lines (-40%)"),
        "{err}"
    );
    assert_eq!(env.snapshot_ids().len(), 3);
    // The manifest records the count, and a drill counts it again.
    let listing = env.ok(&["ls", "latest", "--json"]);
    assert!(
        listing.contains("\"lines\":45") || listing.contains("\"lines\": 45"),
        "{listing}"
    );
    let out = env.run(&["restore-drill", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(json(&stdout(&out))[0]["lines_checked"], 1);
}

#[test]
fn a_drill_whose_restored_csv_has_another_line_count_is_an_integrity_failure() {
    use common::craft::{self, file_entry};
    let env = Env::new(&["tokyo"]);
    let content = b"id\n1\n2\n";
    let mut entry = file_entry(b"exports/customers.csv", content, 0);
    // The signed manifest says 5 lines; the restored file has 3.
    entry.lines = Some(5);
    craft::snapshot(
        &env,
        &["tokyo"],
        craft::Spec {
            stream: content.to_vec(),
            entries: vec![craft::dir_entry(b"exports"), entry],
            ..craft::Spec::default()
        },
    );
    let out = env.run(&["restore-drill"]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    assert!(
        stderr(&out)
            .contains("exports/customers.csv has 3 lines restored, but the snapshot recorded 5")
            || stdout(&out).contains("exports/customers.csv has 3 lines restored"),
        "{}",
        show(&out)
    );
}

/// Snapshots written before format 2 (no job) beside new ones: each host's old snapshots
/// are one data set of their own, retention and selection treat them so, and a real forget
/// signs tombstones that keep the newest of every data set.
#[test]
fn format_one_snapshots_form_their_own_data_set_beside_jobs() {
    use common::craft::{self, file_entry};
    let env = two_jobs();
    let old = |id: &str, time: &str| {
        let content = format!("old {id}\n");
        craft::snapshot(
            &env,
            &["tokyo", "osaka"],
            craft::Spec {
                stream: content.clone().into_bytes(),
                entries: vec![file_entry(b"old.txt", content.as_bytes(), 0)],
                time: Some(time.into()),
                snapshot_id: Some(id.into()),
                host: Some(snapdrill::hostname()),
                v1: true,
                ..craft::Spec::default()
            },
        )
    };
    old("20261101T000000Z-0000000a", "2026-11-01T00:00:00Z");
    old("20261102T000000Z-0000000b", "2026-11-02T00:00:00Z");
    env.tree("exports", &[("customers.csv", b"id\n1\n")]);
    fs::write(env.p("crm-dump.sql"), "-- dump\n").unwrap();
    env.ok(&["backup"]);
    let table = env.ok(&["snapshots", "--job", "-"]);
    assert_eq!(
        table.lines().filter(|l| l.starts_with("2026110")).count(),
        2,
        "{table}"
    );
    let target = env.p("old");
    env.ok(&[
        "restore",
        "latest",
        "--job",
        "-",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_eq!(
        fs::read(target.join("old.txt")).unwrap(),
        b"old 20261102T000000Z-0000000b\n"
    );
    let v = json(&env.ok(&["forget", "--keep-last", "1", "--json"]));
    let forgotten: Vec<&str> = v["forget"]["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["keep"] == false)
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(forgotten, ["20261101T000000Z-0000000a"], "{v:#}");
    assert_eq!(env.snapshot_ids().len(), 3);
}

/// What a store reader holds — every object of every store after backups of two jobs, a
/// drill record, a tombstone and a health baseline — names no path, folder or file name:
/// the source identity is a keyed hash, and job names are the operator's labels.
#[test]
fn a_store_reader_sees_no_path_or_file_name_in_any_object() {
    let env = Env::new(&["tokyo", "osaka"]);
    let config = fs::read_to_string(env.config()).unwrap();
    let jobs = "\n[[job]]\nname = \"nightly\"\npaths = [\"ledger-folder-q7\"]\nshrink_alert = \"30%\"\n\
                \n[[job]]\nname = \"db\"\ncommand = \"printf 'id\\\\n1\\\\n'\"\nstdin_name = \"dump-file-k9.csv\"\n";
    fs::write(env.config(), format!("{config}{jobs}")).unwrap();
    env.tree(
        "ledger-folder-q7",
        &[
            ("customer-ledger-x3.csv", b"id\n1\n2\n"),
            ("sub-dir-w5/notes-v8.txt", b"n"),
        ],
    );
    env.ok(&["backup"]);
    env.ok(&["backup"]);
    env.ok(&["restore-drill"]);
    let first = env.snapshot_ids()[0].clone();
    env.ok(&["forget", &first]);
    let secrets = [
        "ledger-folder-q7",
        "customer-ledger-x3",
        "sub-dir-w5",
        "notes-v8",
        "dump-file-k9",
        env.path().to_str().unwrap(),
    ];
    let mut objects = 0;
    for store in ["tokyo", "osaka"] {
        for f in files_under(&env.store(store)) {
            let bytes = fs::read(&f).unwrap();
            let name = f.strip_prefix(env.store(store)).unwrap().to_string_lossy();
            for s in secrets {
                assert!(!name.contains(s), "object name {name} holds {s}");
                assert!(
                    !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                    "{name} holds {s}"
                );
            }
            objects += 1;
        }
    }
    assert!(objects > 10, "{objects} objects");
}
