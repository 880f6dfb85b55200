//! `snapdrill audit`: every store against the signed commits without the identity, data
//! reads with coverage, rollback detection through the local ledger, immutability probes,
//! and the same audit against a real S3-compatible server.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use common::servers::Server;
use common::{Env, code, json, random_bytes, set_mtime, sha256_hex, show, stdout};
use serde_json::Value;

/// A repository in local stores whose state folder (ledger, coverage) is `<dir>/state`.
fn env(stores: &[&str]) -> Env {
    let env = Env::new(stores);
    keep_state_inside(&env);
    env
}

fn keep_state_inside(env: &Env) {
    let text = fs::read_to_string(env.config()).unwrap();
    assert!(text.contains("state_dir = \"state\"\n"), "{text}");
}

/// An export of several large files (one chunk each at least) and some small ones.
fn source(env: &Env, seed: u64, files: usize) -> PathBuf {
    let big: Vec<(String, Vec<u8>)> = (0..files)
        .map(|i| {
            (
                format!("part-{i}.bin"),
                random_bytes(600_000, seed * 100 + i as u64),
            )
        })
        .collect();
    let mut all: Vec<(&str, &[u8])> = big
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    all.push(("customers.csv", b"id,name\n1,Jane Roe\n"));
    all.push(("db/VERSION", b"7"));
    env.tree("exports", &all)
}

fn backup(env: &Env, src: &Path) -> String {
    let report = env.backup_json(&[src.to_str().unwrap()]);
    report["snapshot_id"].as_str().unwrap().to_owned()
}

/// `audit --json ARGS`: exit code and report.
fn audit(env: &Env, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["audit", "--json"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    let c = code(&out);
    assert!(
        c == 0 || c == 13 || c == 1,
        "unexpected exit\n{}",
        show(&out)
    );
    (c, json(&stdout(&out)))
}

/// (store, object, kind) of every problem.
fn problems(report: &Value) -> Vec<(String, String, String)> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["store"].as_str().unwrap().to_owned(),
                p["object"].as_str().unwrap().to_owned(),
                p["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn has(report: &Value, list: &str, store: &str, object: &str, kind: &str) -> bool {
    report[list]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["store"] == store && p["object"] == object && p["kind"] == kind)
}

fn store_report<'a>(report: &'a Value, store: &str) -> &'a Value {
    report["stores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["store"] == store)
        .unwrap_or_else(|| panic!("no store {store} in {report}"))
}

/// Object names (relative to the store) of a commit: its chunks and its manifest.
fn commit_objects(env: &Env, store: &str, id: &str) -> Vec<String> {
    let text = fs::read_to_string(env.store(store).join("snapshots").join(id)).unwrap();
    let body = text.trim_end().rsplit_once('\n').unwrap().0;
    let commit: Value = json(body);
    let names_in = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|o| o["name"].as_str().unwrap().to_owned())
            .collect()
    };
    // Version 4: the chunks are named by the commit's object lists, which it needs too.
    let mut names = names_in(&commit["objects"]);
    for list in names_in(&commit["lists"]) {
        let text = fs::read_to_string(env.store(store).join(&list)).unwrap();
        names.extend(names_in(&json(&text)["objects"]));
        names.push(list);
    }
    names.push(commit["manifest"]["name"].as_str().unwrap().to_owned());
    names
}

/// Every chunk and manifest object in a store, by name.
fn data_objects(env: &Env, store: &str) -> BTreeSet<String> {
    let root = env.store(store);
    ["chunks", "lists", "manifests"]
        .iter()
        .flat_map(|d| common::files_under(&root.join(d)))
        .map(|p| {
            p.strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

fn flip_byte(path: &Path, at: usize) {
    let mut data = fs::read(path).unwrap();
    data[at] ^= 0x01;
    fs::write(path, data).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn default_audit_without_the_identity_names_every_damage_by_store_and_object() {
    let env = env(&["a", "b"]);
    let src = source(&env, 1, 3);
    let first = backup(&env, &src);
    fs::write(src.join("part-0.bin"), random_bytes(700_000, 77)).unwrap();
    let second = backup(&env, &src);
    fs::remove_file(env.identity()).unwrap();

    let out = env.run(&["audit"]);
    assert_eq!(code(&out), 0, "a clean repository\n{}", show(&out));
    assert!(stdout(&out).contains("audit clean"), "{}", show(&out));

    // Damage: a chunk deleted in a, another truncated in b, the signature of b's second
    // commit altered, an old unreferenced chunk in a, an unknown object in b.
    let chunks: Vec<String> = commit_objects(&env, "a", &first)
        .into_iter()
        .filter(|n| n.starts_with("chunks/"))
        .collect();
    let (deleted, truncated) = (&chunks[0], &chunks[1]);
    fs::remove_file(env.store("a").join(deleted)).unwrap();
    let t = env.store("b").join(truncated);
    let len = fs::metadata(&t).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&t)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let commit = env.store("b").join("snapshots").join(&second);
    let text = fs::read_to_string(&commit).unwrap();
    let sig_at = text.trim_end().rfind(' ').unwrap() + 5;
    let mut bytes = text.into_bytes();
    bytes[sig_at] = if bytes[sig_at] == b'A' { b'B' } else { b'A' };
    fs::write(&commit, bytes).unwrap();
    let stray = format!("chunks/ab/ab{}", sha256_hex(b"stray")[2..].to_owned());
    let stray_path = env.store("a").join(&stray);
    fs::create_dir_all(stray_path.parent().unwrap()).unwrap();
    fs::write(&stray_path, random_bytes(1000, 5)).unwrap();
    set_mtime(&stray_path, 1_600_000_000, 0);
    fs::write(env.store("b").join("notes.txt"), b"who wrote this?").unwrap();

    let (c, report) = audit(&env, &[]);
    assert_eq!(c, 13, "{report:#}");
    let commit_name = format!("snapshots/{second}");
    for (store, object, kind) in [
        ("a", deleted.as_str(), "missing"),
        ("b", truncated.as_str(), "wrong_size"),
        ("b", commit_name.as_str(), "bad_commit"),
        ("a", stray.as_str(), "unreferenced"),
        ("b", "notes.txt", "unknown"),
    ] {
        assert!(
            has(&report, "problems", store, object, kind),
            "expected {kind} of {object} in store {store}: {:#?}",
            problems(&report)
        );
    }
    let out = env.run(&["audit"]);
    assert_eq!(code(&out), 13);
    let text = stdout(&out);
    for (store, object) in [
        ("a", deleted.as_str()),
        ("b", truncated.as_str()),
        ("b", commit_name.as_str()),
        ("a", stray.as_str()),
        ("b", "notes.txt"),
    ] {
        assert!(
            text.contains(&format!("store '{store}', object '{object}'")),
            "{object} in {store} not named:\n{text}"
        );
    }
    assert!(
        text.contains("unreferenced and older than the grace period"),
        "{text}"
    );

    // A running backup's uploads are in flight, and a fossil stands in for its chunk: neither
    // is a problem.
    let marker = env.store("a").join("writers/20261128T032718Z-0badcafe");
    fs::create_dir_all(marker.parent().unwrap()).unwrap();
    fs::write(&marker, b"{}").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    set_mtime(&marker, now - 60, 0);
    let fresh = format!("chunks/cd/cd{}", sha256_hex(b"fresh")[2..].to_owned());
    let fresh_path = env.store("a").join(&fresh);
    fs::create_dir_all(fresh_path.parent().unwrap()).unwrap();
    fs::write(&fresh_path, random_bytes(1000, 6)).unwrap();
    let fossil = commit_objects(&env, "a", &second)
        .into_iter()
        .find(|n| n.starts_with("chunks/") && !chunks.contains(n))
        .expect("the second snapshot has a chunk of its own");
    let fossil_path = env.store("a").join("fossils").join(&fossil);
    fs::create_dir_all(fossil_path.parent().unwrap()).unwrap();
    fs::rename(env.store("a").join(&fossil), &fossil_path).unwrap();
    let (c, report) = audit(&env, &[]);
    assert_eq!(c, 13);
    let problems = problems(&report);
    assert!(
        !problems.iter().any(|(_, o, _)| *o == fresh || *o == fossil),
        "{problems:#?}"
    );
    assert!(has(
        &report,
        "warnings",
        "a",
        "writers/20261128T032718Z-0badcafe",
        "in_flight"
    ));
    assert!(
        has(&report, "warnings", "a", &fossil, "fossilized"),
        "{report:#}"
    );
    assert_eq!(store_report(&report, "a")["in_flight"], 1);
}

#[test]
fn read_data_subset_one_third_three_times_reads_every_object_exactly_once_per_store() {
    let env = env(&["a", "b"]);
    let src = source(&env, 2, 8);
    backup(&env, &src);
    fs::remove_file(env.identity()).unwrap();
    let mut read: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    let mut last = Value::Null;
    for part in 1..=3 {
        let (c, report) = audit(&env, &["--read-data-subset", &format!("{part}/3")]);
        assert_eq!(c, 0, "{report:#}");
        for (i, store) in ["a", "b"].iter().enumerate() {
            let names = store_report(&report, store)["read"]["names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_owned());
            read[i].extend(names);
        }
        last = report;
    }
    for (i, store) in ["a", "b"].iter().enumerate() {
        let mut got = read[i].clone();
        got.sort();
        let all: Vec<String> = data_objects(&env, store).into_iter().collect();
        assert!(all.len() >= 10, "{all:?}");
        assert_eq!(got, all, "store {store}: every object once, none twice");
    }
    // The coverage file remembers the three reads: everything was read within 30 days.
    assert_eq!(last["coverage_complete"], true, "{last:#}");
    assert_eq!(store_report(&last, "a")["coverage"]["object_ratio"], 1.0);
}

#[test]
fn a_budget_reads_the_objects_never_read_before_the_others() {
    let env = env(&["a", "b"]);
    let src = source(&env, 8, 6);
    backup(&env, &src);
    let (_, first) = audit(&env, &["--read-data-subset", "1/2"]);
    let read: BTreeSet<String> = store_report(&first, "a")["read"]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    let unread: BTreeSet<String> = data_objects(&env, "a").difference(&read).cloned().collect();
    assert!(!read.is_empty() && !unread.is_empty(), "{read:?}");
    let bytes: u64 = unread
        .iter()
        .map(|n| fs::metadata(env.store("a").join(n)).unwrap().len())
        .sum();
    // Exactly what was never read, in both stores: everything else waits.
    let budget = (2 * bytes).to_string();
    let (c, report) = audit(&env, &["--budget", &budget]);
    assert_eq!(c, 0, "{report:#}");
    for store in ["a", "b"] {
        let r = &store_report(&report, store)["read"];
        let names: BTreeSet<String> = r["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, unread, "store {store}");
        assert_eq!(r["deferred"], read.len() as u64, "store {store}");
    }
    assert_eq!(report["coverage_complete"], true, "{report:#}");
}

#[test]
fn read_data_finds_a_same_size_corruption_that_the_default_audit_cannot_see() {
    let env = env(&["a", "b"]);
    let src = source(&env, 3, 2);
    let id = backup(&env, &src);
    let chunk = commit_objects(&env, "b", &id)
        .into_iter()
        .find(|n| n.starts_with("chunks/"))
        .unwrap();
    flip_byte(&env.store("b").join(&chunk), 200);

    let (c, report) = audit(&env, &[]);
    assert_eq!(c, 0, "same size: invisible without reading\n{report:#}");
    let (c, report) = audit(&env, &["--read-data"]);
    assert_eq!(c, 13, "{report:#}");
    assert!(
        has(&report, "problems", "b", &chunk, "hash_mismatch"),
        "{:#?}",
        problems(&report)
    );
    assert!(!problems(&report).iter().any(|(s, _, _)| s == "a"));
    let diff = report["differences"].as_array().unwrap();
    assert!(
        diff.iter().any(|d| d["object"] == chunk.as_str()),
        "{diff:?}"
    );

    // With the identity, --deep finds it too (verify-only restore of each store alone).
    let (c, report) = audit(&env, &["--deep"]);
    assert_eq!(c, 13);
    assert!(
        has(&report, "problems", "b", &chunk, "deep_failure"),
        "{:#?}",
        problems(&report)
    );
    assert_eq!(store_report(&report, "a")["deep"]["snapshots"], 1);
    fs::remove_file(env.identity()).unwrap();
    assert_eq!(
        env.code(&["audit", "--deep"]),
        12,
        "--deep needs the identity"
    );
}

#[test]
fn deep_reads_a_file_shared_by_snapshots_once_but_a_damaged_chunk_fails_every_snapshot() {
    let env = env(&["a"]);
    let src = source(&env, 5, 3);
    let first = backup(&env, &src);
    let second = backup(&env, &src);
    assert_ne!(first, second);

    let (c, report) = audit(&env, &["--deep"]);
    assert_eq!(c, 0, "{report:#}");
    let deep = &store_report(&report, "a")["deep"];
    assert_eq!(deep["snapshots"], 2, "{deep}");
    assert_eq!(deep["files"], 10, "five files in each snapshot: {deep}");
    assert_eq!(
        deep["files_reused"], 5,
        "the second snapshot's files were read again: {deep}"
    );

    // A damaged chunk vouches for nothing: every snapshot using it fails, each named. (The
    // largest chunk: a keyed chunker may cut a chunk of a few hundred bytes.)
    let chunk = commit_objects(&env, "a", &first)
        .into_iter()
        .filter(|n| n.starts_with("chunks/"))
        .max_by_key(|n| fs::metadata(env.store("a").join(n)).unwrap().len())
        .unwrap();
    let path = env.store("a").join(&chunk);
    flip_byte(&path, fs::metadata(&path).unwrap().len() as usize / 2);
    let (c, report) = audit(&env, &["--deep"]);
    assert_eq!(c, 13, "{report:#}");
    let deep = &store_report(&report, "a")["deep"];
    assert_eq!(deep["failed"], 2, "{deep}");
    let failures: Vec<String> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "deep_failure")
        .map(|p| p["detail"].as_str().unwrap().to_owned())
        .collect();
    for id in [&first, &second] {
        assert!(
            failures.iter().any(|d| d.contains(id.as_str())),
            "snapshot {id} not named: {failures:#?}"
        );
    }
}

#[test]
fn a_store_rolled_back_to_an_old_copy_of_its_bucket_is_an_integrity_alert() {
    let env = env(&["a", "b"]);
    let src = source(&env, 4, 2);
    let first = backup(&env, &src);
    copy_dir(&env.store("a"), &env.p("a-after-first-backup"));
    fs::write(
        src.join("customers.csv"),
        b"id,name\n1,Jane Roe\n2,John Doe\n",
    )
    .unwrap();
    let second = backup(&env, &src);
    fs::write(src.join("db/VERSION"), b"8").unwrap();
    let third = backup(&env, &src);
    let (c, report) = audit(&env, &[]);
    assert_eq!(c, 0, "{report:#}");

    fs::remove_dir_all(env.store("a")).unwrap();
    copy_dir(&env.p("a-after-first-backup"), &env.store("a"));
    let (c, report) = audit(&env, &[]);
    assert_eq!(c, 13, "{report:#}");
    for id in [&second, &third] {
        let object = format!("snapshots/{id}");
        assert!(
            has(&report, "problems", "a", &object, "rolled_back"),
            "{:#?}",
            problems(&report)
        );
    }
    assert!(!has(
        &report,
        "problems",
        "a",
        &format!("snapshots/{first}"),
        "rolled_back"
    ));
    let out = env.run(&["audit"]);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "store a no longer holds snapshot {second} that it held on"
        )),
        "{text}"
    );

    // A store deleted outright is audited as an empty replica: the same alert.
    fs::remove_dir_all(env.store("b")).unwrap();
    let (c, report) = audit(&env, &[]);
    assert_eq!(c, 13);
    assert!(has(
        &report,
        "problems",
        "b",
        &format!("snapshots/{first}"),
        "rolled_back"
    ));
    assert!(has(&report, "problems", "b", "config", "no_repository"));
}

#[test]
fn a_snapshot_forgotten_with_a_valid_tombstone_is_not_an_alert_but_a_forged_one_is() {
    use snapdrill::format::commit::ObjectRef;
    use snapdrill::format::tombstone::Tombstone;
    use snapdrill::keys::WriteKey;

    let env = env(&["a"]);
    let src = source(&env, 5, 2);
    let first = backup(&env, &src);
    let second = backup(&env, &src);
    let third = backup(&env, &src);
    let (c, report) = audit(&env, &[]);
    assert_eq!(c, 0, "{report:#}");

    let key = WriteKey::load(&env.write_key()).unwrap();
    let forget = |id: &str, signing: &ed25519_dalek::SigningKey| {
        let store = env.store("a");
        let commit_path = store.join("snapshots").join(id);
        let commit = fs::read(&commit_path).unwrap();
        let t = Tombstone::new(
            &key.repository_id,
            id,
            "2026-11-28T00:00:00Z",
            // The data set of the snapshot, as its commit names it.
            &snapdrill::format::commit::Commit::from_object(
                &commit,
                &key.signer(),
                &key.repository_id,
                id,
            )
            .unwrap()
            .data_set(),
            ObjectRef {
                name: format!("snapshots/{id}"),
                size: commit.len() as u64,
                sha256: sha256_hex(&commit),
            },
            "2026-11-29T00:00:00Z",
            "by id",
        );
        fs::create_dir_all(store.join("forgotten")).unwrap();
        fs::write(store.join("forgotten").join(id), t.to_object(signing)).unwrap();
        fs::remove_file(commit_path).unwrap();
        fs::remove_file(store.join("manifests").join(id)).unwrap();
    };
    forget(&first, &key.signing);
    let (c, report) = audit(&env, &[]);
    assert_eq!(c, 0, "a signed tombstone explains the absence\n{report:#}");
    assert_eq!(report["ledger"]["appended"], 1, "the forget is recorded");
    let (c, _) = audit(&env, &[]);
    assert_eq!(c, 0);

    // A tombstone signed by anyone else explains nothing.
    forget(&second, &WriteKey::generate().signing);
    let (c, report) = audit(&env, &[]);
    assert_eq!(c, 13);
    let object = format!("forgotten/{second}");
    assert!(has(&report, "problems", "a", &object, "bad_tombstone"));
    let object = format!("snapshots/{second}");
    assert!(
        has(&report, "problems", "a", &object, "rolled_back"),
        "{report:#}"
    );
    assert!(!has(
        &report,
        "problems",
        "a",
        &format!("snapshots/{third}"),
        "rolled_back"
    ));
}

#[test]
fn immutability_on_a_local_store_reports_that_it_allows_deletes() {
    let env = env(&["a"]);
    let (c, report) = audit(&env, &["--immutability"]);
    assert_eq!(c, 0, "{report:#}");
    let probe = &store_report(&report, "a")["immutability"];
    assert_eq!(probe["refuses_deletes"], false, "{probe}");
    assert_eq!(probe["refuses_overwrites"], false, "{probe}");
    assert_eq!(probe["cleaned_up"], true, "{probe}");
    assert!(common::files_under(&env.store("a").join("probes")).is_empty());
    let out = env.run(&["audit", "--immutability"]);
    assert!(
        stdout(&out).contains("refuses overwrites: no, refuses deletes: no"),
        "{}",
        show(&out)
    );
}

#[test]
fn reports_metrics_a_garbled_ledger_and_an_unreachable_store() {
    let env = env(&["a", "b"]);
    let src = source(&env, 6, 1);
    backup(&env, &src);
    let ledgers = common::files_under(&env.p("state/ledger"));
    assert_eq!(
        ledgers.len(),
        1,
        "backup appends to the ledger: {ledgers:?}"
    );
    fs::write(&ledgers[0], b"\x00garbage\nmore garbage\n").unwrap();
    let (md, js, prom) = (env.p("audit.md"), env.p("audit.json"), env.p("audit.prom"));
    let out = env.run(&[
        "audit",
        "--report",
        md.to_str().unwrap(),
        "--report",
        js.to_str().unwrap(),
        "--metrics-file",
        prom.to_str().unwrap(),
    ]);
    assert_eq!(
        code(&out),
        0,
        "a garbled ledger does not break the audit\n{}",
        show(&out)
    );
    assert!(
        stdout(&out).contains("starting a new one"),
        "{}",
        show(&out)
    );
    let md = fs::read_to_string(md).unwrap();
    assert!(
        md.contains("# snapdrill audit") && md.contains("| a |"),
        "{md}"
    );
    assert_eq!(
        json(&fs::read_to_string(js).unwrap())["problems"],
        Value::Array(vec![])
    );
    let prom = fs::read_to_string(prom).unwrap();
    for line in [
        "snapdrill_audit_problems{store=\"a\"} 0",
        "snapdrill_audit_coverage_ratio{store=\"b\"} 0",
        "snapdrill_audit_store_reachable{store=\"b\"} 1",
        "snapdrill_audit_last_run_timestamp_seconds{store=\"a\"}",
    ] {
        assert!(prom.contains(line), "{line} missing:\n{prom}");
    }
    assert_eq!(env.code(&["audit", "--report", "x.html"]), 2);

    // A store that does not answer: exit 1, named; the others are still audited.
    let main = fs::read_to_string(env.config()).unwrap();
    let down = "\n[[store]]\nname = \"down\"\nurl = \"s3://bucket/x\"\nsite = \"c\"\nretries = 0\ntimeout = \"3s\"\n\
                options = { endpoint = \"http://127.0.0.1:9\", region = \"us-east-1\", allow_http = \"true\" }\n";
    let config = env.p("with-down.toml");
    fs::write(&config, format!("{main}{down}")).unwrap();
    let out = env
        .cmd_with(&config, &["audit"])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(
        stdout(&out).contains("store(s) down could not be reached"),
        "{}",
        show(&out)
    );
}

#[test]
fn audit_of_real_s3_and_azure_servers_beside_a_local_store() {
    let (s3, az) = (Server::start("moto"), Server::start("azurite"));
    let local = "[[store]]\nname = \"local\"\nurl = \"stores/local\"\nsite = \"tokyo\"\n";
    let s3_toml = s3.store_toml("s3", "bcp/audit", "");
    let az_toml = az.store_toml("azure", "bcp", "");
    let mut creds = s3.credentials();
    creds.extend(az.credentials());
    let env = Env::with_stores_toml(&format!("{local}\n{s3_toml}\n{az_toml}"), creds, true);
    keep_state_inside(&env);
    let src = source(&env, 7, 2);
    let id = backup(&env, &src);
    fs::remove_file(env.identity()).unwrap();

    let (c, report) = audit(&env, &[]);
    assert_eq!(c, 0, "{report:#}");
    for store in ["local", "s3", "azure"] {
        let r = store_report(&report, store);
        assert_eq!(r["status"], "audited", "{r}");
        assert_eq!(r["snapshots"][0], id.as_str(), "{r}");
        assert!(r["objects_checked"].as_u64().unwrap() >= 3, "{r}");
        assert_eq!(r["manifests_verified"], 1, "{r}");
    }
    let (c, report) = audit(&env, &["--read-data", "--immutability"]);
    assert_eq!(c, 0, "{report:#}");
    for store in ["s3", "azure"] {
        let r = store_report(&report, store);
        assert!(r["read"]["objects"].as_u64().unwrap() >= 3, "{r}");
        // Neither emulator has object lock or immutability policies: deletes go through.
        assert_eq!(r["immutability"]["refuses_deletes"], false, "{r}");
    }

    // Damage on the local side only: named, and S3 stays clean.
    let chunk = commit_objects(&env, "local", &id)
        .into_iter()
        .find(|n| n.starts_with("chunks/"))
        .unwrap();
    fs::remove_file(env.p("stores/local").join(&chunk)).unwrap();
    let (c, report) = audit(&env, &[]);
    assert_eq!(c, 13);
    assert!(
        has(&report, "problems", "local", &chunk, "missing"),
        "{report:#}"
    );
    for store in ["s3", "azure"] {
        assert_eq!(store_report(&report, store)["problems"], 0, "{store}");
    }
}

/// Damage found once stays reported until healed: a same-size corrupt chunk found by one
/// third of a three-night read keeps every later audit — the other thirds, a plain audit —
/// at exit 13 naming it; `sync` replaces it with a verified copy, and the next
/// audit reading it is clean.
#[test]
fn damage_found_by_one_partial_read_stays_reported_until_sync_repairs_it() {
    let env = env(&["a", "b"]);
    let src = source(&env, 11, 6);
    backup(&env, &src);
    // Which chunks of store a does a third read? Damage one of them. (Which third holds a
    // chunk depends on the repository's random keys: take the first that does.)
    let (part, victim) = ["1/3", "2/3", "3/3"]
        .into_iter()
        .find_map(|part| {
            let (c, report) = audit(&env, &["--read-data-subset", part]);
            assert_eq!(c, 0, "{report:#}");
            let chunk = report["stores"][0]["read"]["names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_owned())
                .find(|n| n.starts_with("chunks/"));
            Some((part, chunk?))
        })
        .expect("the three thirds together read every chunk");
    let path = env.store("a").join(&victim);
    let mut bytes = fs::read(&path).unwrap();
    bytes[100] ^= 0xFF;
    fs::write(&path, &bytes).unwrap();
    let names_it = |report: &Value| {
        problems(report)
            .iter()
            .any(|(store, object, _)| store == "a" && *object == victim)
    };
    let (c, report) = audit(&env, &["--read-data-subset", part]);
    assert!(c == 13 && names_it(&report), "{report:#}");
    for args in [
        &["--read-data-subset", "2/3"][..],
        &["--read-data-subset", "3/3"],
        &[],
    ] {
        let (c, report) = audit(&env, args);
        assert!(
            c == 13 && names_it(&report),
            "{args:?}: still damaged\n{report:#}"
        );
        assert!(report.to_string().contains("damaged since"), "{report:#}");
    }
    let synced = env.ok(&["sync"]);
    assert!(synced.contains("1 damaged copy replaced"), "{synced}");
    assert_eq!(fs::read(&path).unwrap().len(), bytes.len());
    assert_ne!(
        fs::read(&path).unwrap(),
        bytes,
        "the damaged bytes were replaced"
    );
    let (c, report) = audit(&env, &["--read-data-subset", part]);
    assert_eq!(c, 0, "{report:#}");
    let (c, report) = audit(&env, &[]);
    assert_eq!(c, 0, "healed copies leave the register\n{report:#}");
}

/// A restore that met a damaged copy (right size, wrong bytes) registers it: the warning
/// names `sync`, and `sync` replaces it without an audit first.
#[test]
fn a_restore_registers_the_damaged_copy_it_met_and_sync_replaces_it() {
    let env = env(&["a", "b"]);
    let src = source(&env, 12, 2);
    backup(&env, &src);
    let chunk = common::files_under(&env.store("a").join("chunks"))[0].clone();
    let mut bytes = fs::read(&chunk).unwrap();
    bytes[80] ^= 0xFF;
    fs::write(&chunk, &bytes).unwrap();
    let target = env.p("restored");
    let out = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        common::stderr(&out).contains("to heal it: `snapdrill sync`"),
        "{}",
        show(&out)
    );
    let synced = env.ok(&["sync"]);
    assert!(synced.contains("1 damaged copy replaced"), "{synced}");
    let (c, report) = audit(&env, &["--read-data"]);
    assert_eq!(c, 0, "{report:#}");
}

/// Every audit report says where it comes from: tool version, host, operator, the pinned
/// signer and its fingerprint, the stores with their URLs, the command and the coverage
/// window — in JSON, Markdown and on the terminal.
#[test]
fn every_audit_report_carries_its_provenance() {
    let env = env(&["tokyo", "osaka"]);
    let src = source(&env, 3, 1);
    backup(&env, &src);
    let md = env.p("audit.md");
    let (rc, report) = audit(
        &env,
        &["--operator", "佐藤 健", "--report", md.to_str().unwrap()],
    );
    assert_eq!(rc, 0, "{report}");
    let p = &report["provenance"];
    let config = fs::read_to_string(env.config()).unwrap();
    let signer = config
        .lines()
        .find_map(|l| l.strip_prefix("signer = \""))
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    assert_eq!(p["signer"], signer);
    assert_eq!(p["signer_fingerprint"], sha256_hex(signer.as_bytes())[..16]);
    assert_eq!(p["operator"], "佐藤 健");
    assert_eq!(p["tool_version"], env!("CARGO_PKG_VERSION"));
    assert!(!p["host"].as_str().unwrap().is_empty());
    assert_eq!(p["coverage_window_days"], 30);
    let stores: Vec<&str> = p["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(stores, ["tokyo", "osaka"]);
    let command = p["command"].as_str().unwrap();
    assert!(
        command.contains(" audit ") && command.contains("--operator '佐藤 健'"),
        "{command}"
    );
    let text = fs::read_to_string(&md).unwrap();
    assert!(text.contains("## Provenance"), "{text}");
    assert!(
        text.contains(p["signer_fingerprint"].as_str().unwrap()) && text.contains("佐藤 健"),
        "{text}"
    );
    let shown = env.ok(&["audit", "--operator", "k.sato"]);
    assert!(
        shown.contains("for k.sato") && shown.contains("command: "),
        "{shown}"
    );
}

/// `audit --record` keeps each report in every store; `audits` lists them; a copy altered in
/// one store is named as untrusted (the intact copies still list it); `sync` gives a rebuilt
/// store every record; a plain audit writes nothing.
#[test]
fn audit_records_are_kept_listed_checked_per_copy_and_synced() {
    let env = env(&["tokyo", "osaka", "sapporo"]);
    let src = source(&env, 4, 1);
    backup(&env, &src);
    env.ok(&["audit"]);
    assert!(
        !env.store("tokyo").join("audits").exists(),
        "a plain audit writes nothing"
    );
    for operator in ["a.ito", "k.sato", "m.mori"] {
        let shown = env.ok(&["audit", "--record", "--operator", operator]);
        assert!(shown.contains("audit record "), "{shown}");
    }
    let listed = json(&env.ok(&["audits", "--json"]));
    let operators: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["report"]["provenance"]["operator"].as_str().unwrap())
        .collect();
    assert_eq!(operators, ["a.ito", "k.sato", "m.mori"]);
    let names = common::names_in(&env.store("tokyo").join("audits"));
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names, common::names_in(&env.store("osaka").join("audits")));

    // One copy altered in osaka: named with its store, exit 13; the others still list.
    let altered = env.store("osaka").join("audits").join(&names[1]);
    flip_byte(&altered, 100);
    let out = env.run(&["audits"]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    let err = common::stderr(&out);
    assert!(
        err.contains(&names[1]) && err.contains("store 'osaka'") && err.contains("not trusted"),
        "{err}"
    );
    assert!(stdout(&out).contains("3 audits"), "{}", show(&out));

    // A rebuilt store gets every record from the others.
    fs::remove_dir_all(env.store("sapporo")).unwrap();
    env.ok(&["init", "--store", "sapporo", "--create"]);
    let synced = env.ok(&["sync"]);
    assert!(synced.contains("3 audit records"), "{synced}");
    assert_eq!(
        names,
        common::names_in(&env.store("sapporo").join("audits"))
    );
}
