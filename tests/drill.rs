//! `restore-drill`: clean-room drills, injected faults and their exit codes, per-store
//! drills, evidence records, timing honesty, samples, and the Prometheus textfile.

mod common;

use std::fs;
use std::process::Command;

use common::servers::Server;
use common::{Env, code, json, random_bytes, show, stderr, stdout};

/// A small multi-file export.
fn exports(env: &Env) -> std::path::PathBuf {
    let big = random_bytes(1_200_000, 7);
    let csv = "id,name\n1,佐藤 健\n".repeat(5000);
    env.tree(
        "exports",
        &[
            ("calls.bin", &big),
            ("customers.csv", csv.as_bytes()),
            ("db/VERSION", b"7"),
        ],
    )
}

fn drill_json(env: &Env, args: &[&str]) -> (i32, serde_json::Value, String) {
    let mut all = vec!["restore-drill", "--json"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    let text = stdout(&out);
    let records = text
        .find('[')
        .map(|i| json(&text[i..]))
        .unwrap_or(serde_json::Value::Null);
    (code(&out), records, stderr(&out))
}

#[test]
fn a_drill_of_s3_passes_with_the_source_and_local_state_gone() {
    let s3 = Server::start("moto");
    let s3_toml = s3.store_toml("osaka", "bcp", "");
    let env = Env::with_stores_toml(&s3_toml, s3.credentials(), true);
    let src = exports(&env);
    env.ok(&["backup", src.to_str().unwrap()]);
    // A disaster leaves the stores, the identity and the config: nothing else.
    fs::remove_dir_all(&src).unwrap();
    fs::remove_dir_all(env.p("cache")).unwrap();
    fs::remove_file(env.write_key()).unwrap();
    let (rc, records, err) = drill_json(
        &env,
        &[
            "--rto",
            "10m",
            "--rpo",
            "1h",
            "--check",
            "test -s exports/customers.csv",
        ],
    );
    assert_eq!(rc, 0, "{err}\n{records}");
    let r = &records[0];
    assert_eq!(r["result"], "pass");
    assert_eq!(r["files"], 3);
    assert_eq!(r["store"], "all");
    assert_eq!(r["check"]["exit_code"], 0);
    assert!(r["served"]["osaka"].as_u64().unwrap() >= 2, "{r}");
    assert!(r["rto_secs"].as_f64().unwrap() > 0.0);
    let phases = &r["phases"];
    let sum: f64 = [
        "connect_list_secs",
        "manifest_secs",
        "data_secs",
        "check_secs",
    ]
    .iter()
    .map(|k| phases[k].as_f64().unwrap())
    .sum();
    assert!(
        sum <= r["rto_secs"].as_f64().unwrap() + 1e-6,
        "phases add up to at most the RTO: {r}"
    );
    // The evidence is in the repository, encrypted, and listed.
    let listed = json(&env.ok(&["drills", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["drill_id"], r["drill_id"]);
}

/// Corrupt one object in the only store; the drill must fail with 13 naming it and the store.
fn fault_case(damage: impl Fn(&Env, &str)) -> (i32, String) {
    let env = Env::new(&["tokyo"]);
    let src = exports(&env);
    env.ok(&["backup", src.to_str().unwrap()]);
    let id = env.snapshot_ids().pop().unwrap();
    damage(&env, &id);
    let out = env.run(&["restore-drill"]);
    (code(&out), format!("{}{}", stdout(&out), stderr(&out)))
}

fn first_chunk(env: &Env) -> std::path::PathBuf {
    env.chunk_objects("tokyo")
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap()
}

#[test]
fn injected_faults_fail_the_drill_with_the_object_and_store_named() {
    // A missing chunk.
    let (rc, out) = fault_case(|env, _| fs::remove_file(first_chunk(env)).unwrap());
    assert_eq!(rc, 13, "{out}");
    assert!(out.contains("chunks/") && out.contains("tokyo"), "{out}");
    // A flipped byte.
    let (rc, out) = fault_case(|env, _| {
        let p = first_chunk(env);
        let mut b = fs::read(&p).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 1;
        fs::write(&p, b).unwrap();
    });
    assert_eq!(rc, 13, "{out}");
    assert!(
        out.contains("chunks/") && out.contains("tokyo") && out.contains("SHA-256"),
        "{out}"
    );
    // A truncated chunk.
    let (rc, out) = fault_case(|env, _| {
        let p = first_chunk(env);
        let b = fs::read(&p).unwrap();
        fs::write(&p, &b[..b.len() - 100]).unwrap();
    });
    assert_eq!(rc, 13, "{out}");
    assert!(out.contains("chunks/") && out.contains("tokyo"), "{out}");
    // A forged manifest: a valid age file, encrypted to the public recipient by an attacker.
    let (rc, out) = fault_case(|env, id| {
        let forged = env.p("forged.json");
        fs::write(&forged, b"{\"format\":\"snapdrill-manifest\"}").unwrap();
        let manifest = env.store("tokyo").join("manifests").join(id);
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "zstd -q -c {} | age -r {} -o {}.new && mv {}.new {}",
                forged.display(),
                env.recipient,
                manifest.display(),
                manifest.display(),
                manifest.display()
            ))
            .status()
            .unwrap();
        assert!(ok.success());
    });
    assert_eq!(rc, 13, "{out}");
    assert!(out.contains("manifests/") && out.contains("tokyo"), "{out}");
}

#[test]
fn wrong_identity_old_snapshot_and_tight_rto_have_their_exit_codes() {
    let env = Env::new(&["tokyo"]);
    let src = exports(&env);
    env.ok(&["backup", src.to_str().unwrap()]);
    let other = env.p("other-identity.txt");
    env.ok(&["keygen", "-o", other.to_str().unwrap()]);
    let out = env.run(&["restore-drill", "--identity", other.to_str().unwrap()]);
    assert_eq!(code(&out), 12, "{}", show(&out));
    assert!(
        stderr(&out).contains("not one of its recipients"),
        "{}",
        show(&out)
    );

    // The snapshot is older than a millisecond by the time a drill starts (no waiting: two
    // processes have run since its commit).
    let (rc, records, err) = drill_json(&env, &["--rpo", "1ms"]);
    assert_eq!(rc, 14, "{err}");
    assert_eq!(records[0]["result"], "target-missed");
    assert!(records[0]["rpo_secs"].as_f64().unwrap() > 0.001);

    let (rc, records, err) = drill_json(&env, &["--rto", "1ms"]);
    assert_eq!(rc, 14, "{err}");
    assert_eq!(records[0]["result"], "target-missed");
    assert!(
        records[0]["files"].as_u64().unwrap() == 3,
        "data was verified: {records}"
    );

    // A failing validation command fails the drill with its own result and exit code (the
    // data itself was verified), the command and its status named.
    let (rc, records, err) = drill_json(&env, &["--check", "exit 4"]);
    assert_eq!(rc, 15, "{err}");
    assert_eq!(records[0]["result"], "check-failed");
    assert_eq!(records[0]["check"]["exit_code"], 4);
    assert_eq!(
        records[0]["failures"][0],
        "the check `exit 4` exited with status 4"
    );
    // Killed by a signal: said so, not "failed with None".
    let (rc, records, err) = drill_json(&env, &["--check", "kill -9 $$"]);
    assert_eq!(rc, 15, "{err}");
    assert_eq!(records[0]["check"]["signal"], 9);
    assert!(
        records[0]["failures"][0]
            .as_str()
            .unwrap()
            .ends_with("was killed by signal 9"),
        "{records}"
    );
}

#[test]
fn each_store_proves_every_replica_alone_and_records_both_outcomes() {
    let env = Env::new(&["tokyo", "osaka", "sapporo"]);
    let src = exports(&env);
    env.ok(&["backup", src.to_str().unwrap()]);
    let bad = first_chunk(&env)
        .to_string_lossy()
        .replace("/tokyo/", "/osaka/");
    fs::remove_file(&bad).unwrap();
    let (rc, records, err) = drill_json(&env, &["--each-store", "--verify-only"]);
    assert_eq!(rc, 13, "{err}");
    let by_store = |s: &str| {
        records
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["store"] == s)
            .unwrap()
            .clone()
    };
    assert_eq!(by_store("tokyo")["result"], "pass");
    assert_eq!(by_store("sapporo")["result"], "pass");
    let osaka = by_store("osaka");
    assert_eq!(osaka["result"], "integrity-failure");
    assert!(
        osaka["failures"][0].as_str().unwrap().contains("chunks/"),
        "{osaka}"
    );
    // Drilled alone, each store served everything itself.
    assert_eq!(
        by_store("tokyo")["served"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["tokyo"]
    );
    // The history holds all three, with their results.
    let listed = json(&env.ok(&["drills", "--json"]));
    let results: Vec<(String, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["store"].as_str().unwrap().to_owned(),
                r["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        results.contains(&("osaka".into(), "integrity-failure".into())),
        "{results:?}"
    );
    assert!(
        results.contains(&("tokyo".into(), "pass".into())),
        "{results:?}"
    );
}

/// The arithmetic of a drill's timing, checked exactly (how closely the RTO agrees with an
/// outside stopwatch and how well a sample estimates a full drill depend on the disk, and are
/// measured by `make bench`, scripts/bench-drill.sh): the RTO never exceeds the process's
/// lifetime, the phases add up to it, a sample restores the fraction asked for, and its
/// estimate is the record's own numbers put through the documented formula.
#[test]
fn the_rto_is_the_sum_of_its_phases_and_a_sample_estimate_follows_from_the_record() {
    common::require_tool("/usr/bin/time", "time");
    let env = Env::new(&["tokyo"]);
    for i in 0..40u64 {
        let f = env.p(&format!("exports/calls-{i:02}.bin"));
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(&f, random_bytes(600_000, 100 + i)).unwrap();
    }
    env.ok(&["backup", env.p("exports").to_str().unwrap()]);

    let timing = env.p("time.txt");
    let target = env.p("drill-target");
    fs::create_dir(&target).unwrap();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e")
        .arg("-o")
        .arg(&timing)
        .arg(common::BIN)
        .args([
            "--config",
            env.config().to_str().unwrap(),
            "restore-drill",
            "--json",
            "--check",
            "true",
            "--target",
            target.to_str().unwrap(),
        ])
        .env("HOME", env.path())
        .env_remove("SNAPDRILL_CONFIG")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", show(&out));
    let full = json(&stdout(&out))[0].clone();
    let rto = full["rto_secs"].as_f64().unwrap();
    let wall: f64 = fs::read_to_string(&timing).unwrap().trim().parse().unwrap();
    // GNU time prints hundredths: allow its rounding, nothing more.
    assert!(
        rto > 0.0 && rto <= wall + 0.01,
        "RTO {rto} s outside the process's lifetime of {wall} s"
    );
    let phases = &full["phases"];
    let sum: f64 = [
        "connect_list_secs",
        "manifest_secs",
        "data_secs",
        "check_secs",
    ]
    .iter()
    .map(|k| phases[k].as_f64().unwrap())
    .sum();
    assert!(
        (sum - rto).abs() < 1e-9,
        "phases {phases} add up to {sum}, RTO {rto}"
    );
    assert!(phases["check_secs"].as_f64().unwrap() > 0.0, "{phases}");
    assert!(
        full["rto_estimate_secs"].is_null(),
        "a full drill estimates nothing"
    );
    assert_eq!(full["stream_bytes"], full["bytes_fetched"], "{full}");

    let (rc, sample, err) = drill_json(&env, &["--sample", "10%", "--seed", "3"]);
    assert_eq!(rc, 0, "{err}");
    let sample = &sample[0];
    assert_eq!(sample["mode"], "sample");
    let fraction = sample["bytes"].as_f64().unwrap() / full["bytes"].as_f64().unwrap();
    assert!(
        (0.10..=0.15).contains(&fraction),
        "the sample restored {:.1} % of the bytes",
        fraction * 100.0
    );
    let f = |k: &str| sample[k].as_f64().unwrap();
    let p = |k: &str| sample["phases"][k].as_f64().unwrap();
    let expected =
        f("rto_secs") - p("data_secs") + p("data_secs") * f("stream_bytes") / f("bytes_fetched");
    let estimate = f("rto_estimate_secs");
    assert!(
        (estimate - expected).abs() < 1e-9,
        "estimate {estimate} vs the formula on the record's numbers {expected}"
    );
    assert!(
        f("bytes_fetched") < f("stream_bytes") && estimate > f("rto_secs"),
        "a tenth of the data must extrapolate upwards: {sample}"
    );
}

#[test]
fn the_metrics_textfile_is_valid_prometheus_text() {
    common::require_tool("promtool", "prometheus");
    let env = Env::new(&["tokyo", "osaka"]);
    let src = exports(&env);
    env.ok(&["backup", src.to_str().unwrap()]);
    let metrics = env.p("snapdrill.prom");
    let out = env.run(&[
        "restore-drill",
        "--each-store",
        "--rto",
        "30m",
        "--rpo",
        "26h",
        "--metrics-file",
        metrics.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let text = fs::read_to_string(&metrics).unwrap();
    common::promtool(&metrics);
    let set = format!("{}/adhoc", snapdrill::hostname());
    assert_eq!(
        parse_exposition(&text)
            [&format!("snapdrill_drill_success{{store=\"tokyo\",data_set=\"{set}\"}}")],
        1.0
    );
    assert_eq!(
        parse_exposition(&text)
            [&format!("snapdrill_drill_rto_target_seconds{{store=\"osaka\",data_set=\"{set}\"}}")],
        1800.0
    );
    assert!(!fs::read_dir(env.path()).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .contains("snapdrill-tmp")
    }));
}

/// A strict reader of the text exposition format: every sample belongs to a family
/// declared by HELP and TYPE, names and labels are well formed, values are numbers.
fn parse_exposition(text: &str) -> std::collections::HashMap<String, f64> {
    let mut declared = std::collections::HashSet::new();
    let mut samples = std::collections::HashMap::new();
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            assert!(name_ok(rest.split(' ').next().unwrap()), "{line}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut f = rest.split(' ');
            let name = f.next().unwrap();
            assert!(name_ok(name) && f.next() == Some("gauge"), "{line}");
            declared.insert(name.to_owned());
        } else {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {line}"));
            let name = series.split('{').next().unwrap();
            assert!(
                declared.contains(name),
                "sample of an undeclared family: {line}"
            );
            if let Some(labels) = series.strip_prefix(name) {
                assert!(
                    labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                    "{line}"
                );
            }
            let v: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
            assert!(
                samples.insert(series.to_owned(), v).is_none(),
                "duplicate series {series}"
            );
        }
    }
    samples
}
