//! Against real servers on 127.0.0.1, started by `scripts/servers.sh` (installed on first
//! use): moto (S3), Azurite (Azure Blob), rclone (WebDAV). No local GCS server works with
//! object_store, so `gs://` is covered by configuration tests (src/store/backend.rs).

mod common;

use std::time::{Duration, Instant};

use common::servers::Server;
use common::{Env, assert_same_tree, code, random_bytes, show, stderr, stdout};

fn source(env: &Env) -> std::path::PathBuf {
    let a = random_bytes(2_500_000, 11);
    let csv = "customer_id,name\n1,佐藤 健\n2,Jane Roe\n".repeat(20_000);
    env.tree(
        "exports",
        &[
            ("calls.bin", &a),
            ("customers.csv", csv.as_bytes()),
            ("empty", b""),
            ("db/VERSION", b"7"),
        ],
    )
}

/// Restore `latest` using only the store described by `toml` and compare with the source.
fn restores_alone(env: &Env, name: &str, toml: &str) {
    let config = env.config_with_only(&format!("only-{name}.toml"), toml);
    let target = env.p(&format!("restored-{name}"));
    let out = env
        .cmd_with(
            &config,
            &["restore", "latest", "--target", target.to_str().unwrap()],
        )
        .output()
        .unwrap();
    assert_eq!(
        code(&out),
        0,
        "restore from {name} alone failed\n{}",
        show(&out)
    );
    assert_same_tree(&env.p("exports"), &target.join("exports"));
}

#[test]
fn one_backup_to_local_s3_and_azure_at_once_each_restores_alone() {
    let (s3, az) = (Server::start("moto"), Server::start("azurite"));
    let local = "[[store]]\nname = \"local\"\nurl = \"stores/local\"\nsite = \"tokyo\"\n";
    let s3_toml = s3.store_toml("s3", "bcp/osaka", "");
    let az_toml = az.store_toml("azure", "bcp", "");
    let mut creds = s3.credentials();
    creds.extend(az.credentials());
    let env = Env::with_stores_toml(&format!("{local}\n{s3_toml}\n{az_toml}"), creds, true);
    let src = source(&env);
    let report = env.backup_json(&[src.to_str().unwrap()]);
    let stores = report["stores"].as_array().unwrap();
    assert_eq!(stores.len(), 3);
    assert!(stores.iter().all(|s| s["committed"] == true), "{report}");
    // Sealed once: every store received the same number of objects.
    let counts: Vec<u64> = stores
        .iter()
        .map(|s| s["uploaded_objects"].as_u64().unwrap())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] == w[1]), "{counts:?}");

    restores_alone(&env, "local", local);
    restores_alone(&env, "s3", &s3_toml);
    restores_alone(&env, "azure", &az_toml);

    // A second backup adds no chunk anywhere.
    let again = env.backup_json(&[src.to_str().unwrap()]);
    assert_eq!(again["chunks_new"], 0, "{again}");
}

#[test]
fn the_s3_server_stopped_mid_backup_is_partial_then_sync_heals_it() {
    let s3 = Server::start("moto");
    let local = "[[store]]\nname = \"local\"\nurl = \"stores/local\"\nsite = \"tokyo\"\n";
    // Short timeouts so a frozen server fails in seconds, not minutes.
    let s3_toml = s3.store_toml(
        "s3",
        "bcp",
        "timeout = \"2s\"\nretries = 1\ndeadline = \"20s\"\n",
    );
    let env = Env::with_stores_toml(
        &format!("{local}\n{s3_toml}\n[backup]\nrequire = 1\n"),
        s3.credentials(),
        true,
    );
    // A first snapshot in both stores, then content that must be uploaded while S3 is down.
    let src = source(&env);
    env.ok(&["backup", src.to_str().unwrap()]);
    std::fs::write(src.join("calls.bin"), random_bytes(3_000_000, 12)).unwrap();

    s3.pause();
    let started = Instant::now();
    let out = env.run(&["backup", "--json", src.to_str().unwrap()]);
    let took = started.elapsed();
    s3.resume();
    assert_eq!(code(&out), 3, "{}", show(&out));
    // Not a speed check: without its timeouts and deadline (20 s) the backup would wait for
    // the frozen server forever.
    assert!(
        took < Duration::from_secs(300),
        "the frozen store held the backup {took:?}"
    );
    let report = common::json(&stdout(&out));
    let s3_report = report["stores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "s3")
        .unwrap()
        .clone();
    assert_eq!(s3_report["committed"], false, "{report}");
    let id = report["snapshot_id"].as_str().unwrap().to_owned();

    // Restarted: sync copies what it lacks, and then it restores the new snapshot alone.
    let dry = env.ok(&["sync", "--dry-run"]);
    assert!(dry.contains("would copy") && dry.contains(&id), "{dry}");
    let synced = env.ok(&["sync"]);
    assert!(synced.contains("sync complete"), "{synced}");
    restores_alone(&env, "s3", &s3_toml);
    let listed = env
        .cmd_with(
            &env.config_with_only("s3-list.toml", &s3_toml),
            &["snapshots", "--json"],
        )
        .output()
        .unwrap();
    assert!(stdout(&listed).contains(&id), "{}", show(&listed));
}

#[test]
fn a_backup_to_webdav_restores_alone() {
    let dav = Server::start("webdav");
    let dav_toml = dav.store_toml("dav", "snapdrill", "");
    let env = Env::with_stores_toml(&dav_toml, vec![], false);
    let init = env.ok(&["init"]);
    assert!(
        init.contains("emulated"),
        "WebDAV has no conditional writes; init must say so:\n{init}"
    );
    let src = source(&env);
    let out = env.run(&["backup", src.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    restores_alone(&env, "dav", &dav_toml);
    // The objects really are on the WebDAV server's disk.
    let root = std::path::PathBuf::from(dav.get("ROOT"));
    assert!(root.join("snapdrill/config").is_file());
    assert!(common::files_under(&root.join("snapdrill/chunks")).len() >= 2);
}

#[test]
fn credentials_never_appear_in_any_output() {
    const SECRET: &str = "CANARY-secret-9f8e7d6c5b4a";
    const KEY_ID: &str = "CANARYKEYID42";
    let (s3, az) = (Server::start("moto"), Server::start("azurite"));
    // Azure with a wrong key (Azurite checks signatures): every request fails with 403.
    let az_toml = az.store_toml("azure", "bcp", "retries = 0\n");
    let bad_azure = vec![
        (
            "AZURE_STORAGE_ACCOUNT_NAME".to_owned(),
            az.get("ACCOUNT").to_owned(),
        ),
        (
            "AZURE_STORAGE_ACCOUNT_KEY".to_owned(),
            base64_canary(SECRET),
        ),
    ];
    // S3 with canary credentials in the environment, and a bucket that does not exist.
    let s3_toml = s3
        .store_toml("s3", "bcp", "retries = 0\n")
        .replace("snapdrill-test", "no-such-bucket");
    let mut env_vars = bad_azure.clone();
    env_vars.push(("AWS_ACCESS_KEY_ID".into(), KEY_ID.into()));
    env_vars.push(("AWS_SECRET_ACCESS_KEY".into(), SECRET.into()));
    let env = Env::with_stores_toml(&format!("{s3_toml}\n{az_toml}"), env_vars, false);
    let canaries = [SECRET, KEY_ID, &base64_canary(SECRET)];
    for args in [
        vec!["init"],
        vec!["backup", "--json", "."],
        vec!["snapshots"],
        vec!["sync", "--dry-run"],
        vec!["config", "check"],
    ] {
        let out = env.run(&args);
        let all = format!("{}{}", stdout(&out), stderr(&out));
        for c in canaries {
            assert!(
                !all.contains(c),
                "`snapdrill {args:?}` printed a credential:\n{all}"
            );
        }
        if args[0] == "init" {
            assert_ne!(code(&out), 0, "init against a wrong key must fail: {all}");
            assert!(
                all.contains("azure") || all.contains("s3"),
                "the failing store is named: {all}"
            );
        }
    }
}

/// Azure keys are base64; the canary must be a valid one to reach the signing code.
fn base64_canary(secret: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(secret.as_bytes())
}

/// Every store failure a person meets first — nothing listening, an unknown host, a bucket
/// that does not exist, a wrong key — is one plain line naming the store and the cause,
/// then a hint; never the library's retry text, never a credential. `--verbose` adds the
/// library's own words.
#[test]
fn store_errors_are_one_plain_line_and_a_hint() {
    let (s3, az) = (Server::start("moto"), Server::start("azurite"));
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let fast = "retries = 0\ntimeout = \"5s\"\n";
    let moto = s3.store_toml("s3", "bcp", fast);
    // (what, the store's TOML, its environment, the cause the error must name)
    type Case<'a> = (&'a str, String, Vec<(String, String)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "connection refused",
            moto.replace(s3.get("ENDPOINT"), &format!("http://127.0.0.1:{closed}")),
            s3.credentials(),
            "connection refused",
        ),
        (
            "unknown host",
            moto.replace(s3.get("ENDPOINT"), "http://no-such-host.invalid:9000"),
            s3.credentials(),
            "could not be resolved",
        ),
        (
            "missing bucket",
            moto.replace("snapdrill-test", "no-such-bucket"),
            s3.credentials(),
            "bucket (or container) does not exist",
        ),
        (
            "wrong key",
            az.store_toml("azure", "bcp", fast),
            vec![
                (
                    "AZURE_STORAGE_ACCOUNT_NAME".to_owned(),
                    az.get("ACCOUNT").to_owned(),
                ),
                (
                    "AZURE_STORAGE_ACCOUNT_KEY".to_owned(),
                    base64_canary("wrong"),
                ),
            ],
            "access denied",
        ),
    ];
    for (what, toml, creds, cause) in cases {
        let env = Env::with_stores_toml(&toml, creds, false);
        let out = env.run(&["init"]);
        let err = stderr(&out);
        assert_eq!(code(&out), 1, "{what}: {}", show(&out));
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(
            lines.len(),
            2,
            "{what}: one error line and one hint:\n{err}"
        );
        assert!(
            lines[0].starts_with("snapdrill: error: store '") && lines[0].contains(cause),
            "{what}: {err}"
        );
        assert!(lines[1].starts_with("snapdrill: hint: "), "{what}: {err}");
        assert!(
            !err.contains("Generic") && !err.contains("retries"),
            "{what}: {err}"
        );
        let verbose = env.run(&["--verbose", "init"]);
        assert!(
            stderr(&verbose).contains("snapdrill: detail: "),
            "{what}: {}",
            show(&verbose)
        );
    }
}

/// A bucket deleted on the S3 server is a lost replica, not a stopped backup: the other
/// stores commit (require = 2 of 3), the line names the store and the missing bucket; once
/// the bucket exists again, `init --store` and `sync` rebuild it and it restores alone.
#[test]
fn a_deleted_bucket_is_a_lost_replica_rebuilt_by_init_store_and_sync() {
    let s3 = Server::start("moto");
    let locals = "[[store]]\nname = \"tokyo\"\nurl = \"stores/tokyo\"\nsite = \"tokyo\"\n\
                  [[store]]\nname = \"osaka\"\nurl = \"stores/osaka\"\nsite = \"osaka\"\n";
    let bucket = format!("rebuilt-{}", std::process::id());
    let s3_toml = s3
        .store_toml("s3", "bcp", "retries = 0\n")
        .replace("snapdrill-test", &bucket);
    let env = Env::with_stores_toml(
        &format!("{locals}\n{s3_toml}\n[backup]\nrequire = 2\n"),
        s3.credentials(),
        false,
    );
    // The bucket does not exist (deleted, or never made): init of the local stores only.
    env.ok(&["init", "--create", "--store", "tokyo"]);
    env.ok(&["init", "--store", "osaka", "--create"]);
    let src = source(&env);
    let out = env.run(&["backup", src.to_str().unwrap()]);
    assert_eq!(code(&out), 3, "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("store 's3' did not commit") && err.contains("does not exist"),
        "{err}"
    );
    // The bucket is back (moto creates one on an anonymous PUT): rebuild the replica.
    let created = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, urllib.request as u; u.urlopen(u.Request(sys.argv[1], method='PUT'))",
            &format!("{}/{bucket}", s3.get("ENDPOINT")),
        ])
        .status()
        .unwrap();
    assert!(created.success());
    env.ok(&["init", "--store", "s3"]);
    env.ok(&["sync"]);
    let out = env.run(&["audit"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    restores_alone(&env, "s3", &s3_toml);
}
