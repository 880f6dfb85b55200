//! forget and prune: retention through tombstones, two-phase collection by the stores'
//! clocks, leases, refusal on bad listings, and prune beside four running backups with its
//! own clock two days ahead (libfaketime).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use common::{Env, code, files_under, json, random_bytes, show, stderr, stdout};

const DAY: u64 = 86_400;

/// Set a file's modification time `secs` into the past.
fn age_file(path: &Path, secs: u64) {
    let t = SystemTime::now() - Duration::from_secs(secs);
    filetime::set_file_mtime(path, filetime::FileTime::from_system_time(t)).unwrap();
}

fn under(env: &Env, store: &str, prefix: &str) -> Vec<PathBuf> {
    let dir = env.store(store).join(prefix);
    if dir.exists() {
        files_under(&dir)
    } else {
        Vec::new()
    }
}

/// Three snapshots of a changing tree (1 MiB random files, so each change is new chunks).
fn three_snapshots(env: &Env) -> PathBuf {
    let src = env.p("exports");
    for round in 0..3u64 {
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("calls.bin"), random_bytes(3 << 20, 100 + round)).unwrap();
        fs::write(src.join("customers.bin"), random_bytes(1 << 20, 7)).unwrap();
        env.ok(&["backup", src.to_str().unwrap()]);
    }
    src
}

fn restore_matches(env: &Env, id: &str, expected: &Path) {
    let target = env.p(&format!("restored-{id}"));
    let out = env.run(&["restore", id, "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "restore {id}: {}", show(&out));
    common::assert_same_tree(expected, &target.join(expected.file_name().unwrap()));
}

#[test]
fn forget_leaves_tombstones_and_prune_frees_only_unreferenced_chunks() {
    let env = Env::new(&["a", "b"]);
    let src = three_snapshots(&env);
    let ids = env.snapshot_ids();
    assert_eq!(ids.len(), 3);

    let out = env.run(&["forget", "--keep-last", "1", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let report = json(&stdout(&out));
    let gone: Vec<&str> = report["forget"]["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["keep"] == false)
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(gone, [ids[0].as_str(), ids[1].as_str()]);
    assert_eq!(env.snapshot_ids(), [ids[2].clone()]);
    for store in ["a", "b"] {
        for id in &gone {
            assert!(
                env.store(store).join("forgotten").join(id).exists(),
                "{store} tombstone"
            );
            // Hidden by the tombstone, kept for prune (and audit) until it collects them.
            assert!(env.store(store).join("snapshots").join(id).exists());
        }
    }
    // A forgotten snapshot's chunks are not an audit problem: they wait for prune.
    let out = env.run(&["audit"]);
    assert_eq!(code(&out), 0, "{}", show(&out));

    // Within the grace period nothing is touched.
    // Chunks and object lists: prune collects both alike.
    let data = |store: &str| under(&env, store, "chunks").len() + under(&env, store, "lists").len();
    let before = data("a");
    let out = env.run(&["prune", "--yes", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let r = json(&stdout(&out));
    assert_eq!(r["stores"][0]["set_aside"], 0, "{r}");
    assert!(r["stores"][0]["kept_young"].as_u64().unwrap() >= 2, "{r}");
    assert_eq!(data("a"), before);

    // With no grace and no backup running, one prune sets aside and deletes.
    let out = env.run(&["prune", "--yes", "--grace", "0s", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let r = json(&stdout(&out));
    for (i, store) in ["a", "b"].iter().enumerate() {
        let s = &r["stores"][i];
        assert!(s["set_aside"].as_u64().unwrap() >= 2, "{s}");
        // Only fossils: the first prune already removed the forgotten commits and manifests.
        let set_aside = s["set_aside"].as_u64().unwrap();
        assert_eq!(s["deleted"].as_u64().unwrap(), set_aside, "{s}");
        assert_eq!(s["brought_back"], 0, "{s}");
        for id in &gone {
            assert!(
                !env.store(store).join("snapshots").join(id).exists(),
                "{store}: {id}"
            );
            assert!(
                !env.store(store).join("manifests").join(id).exists(),
                "{store}: {id}"
            );
        }
        assert!(s["bytes_freed"].as_u64().unwrap() >= 2 << 20, "{s}");
        let after = data(store);
        assert_eq!(after, before - s["set_aside"].as_u64().unwrap() as usize);
        assert!(
            under(&env, store, "fossils").is_empty(),
            "{store}: fossils left"
        );
        assert!(
            under(&env, store, "collections").is_empty(),
            "{store}: records left"
        );
        assert!(
            under(&env, store, "locks").is_empty(),
            "{store}: lease left"
        );
    }
    restore_matches(&env, &ids[2], &src);
    // Nothing left to free.
    let r = json(&env.ok(&["prune", "--yes", "--grace", "0s", "--json"]));
    assert_eq!(r["stores"][0]["set_aside"], 0, "{r}");
}

#[test]
fn forget_needs_a_policy_and_shows_a_dry_run() {
    let env = Env::new(&["a"]);
    three_snapshots(&env);
    let out = env.run(&["forget"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(stderr(&out).contains("needs a policy"), "{}", show(&out));
    let out = env.run(&["forget", "--keep-last", "2", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        stdout(&out).contains("would be forgotten"),
        "{}",
        show(&out)
    );
    assert_eq!(
        env.snapshot_ids().len(),
        3,
        "a dry run changed the repository"
    );

    // `forget --dry-run --prune` plans the prune as if the forget had happened, and the
    // real run then does exactly that.
    let chunks = under(&env, "a", "chunks").len();
    let mut text = fs::read_to_string(env.config()).unwrap();
    text.push_str("\n[prune]\ngrace = \"0s\"\n");
    fs::write(env.config(), text).unwrap();
    let plan = json(&env.ok(&[
        "forget",
        "--keep-last",
        "1",
        "--dry-run",
        "--prune",
        "--json",
    ]));
    let planned = &plan["prune"]["stores"][0];
    assert_eq!(planned["deleted"], 4, "two commits, two manifests: {plan}");
    assert!(planned["set_aside"].as_u64().unwrap() >= 2, "{plan}");
    assert_eq!(
        env.snapshot_ids().len(),
        3,
        "a dry run changed the repository"
    );
    assert_eq!(under(&env, "a", "chunks").len(), chunks);
    assert!(under(&env, "a", "forgotten").is_empty());

    let done = json(&env.ok(&["forget", "--keep-last", "1", "--prune", "--yes", "--json"]));
    let real = &done["prune"]["stores"][0];
    assert_eq!(real["set_aside"], planned["set_aside"], "{plan}\n{done}");
    // The real run also deletes the fossils it set aside (no backup is running).
    assert_eq!(
        real["bytes_freed"], planned["bytes_freed"],
        "the plan and the run freed different amounts: {plan}\n{done}"
    );
    assert_eq!(env.snapshot_ids().len(), 1);
}

#[test]
fn prune_refuses_a_store_whose_listing_lacks_referenced_objects() {
    let env = Env::new(&["a", "b"]);
    three_snapshots(&env);
    env.ok(&["forget", "--keep-last", "1"]);
    // Store b's chunk listing comes back empty (as a failed paging of a listing might).
    fs::rename(env.store("b").join("chunks"), env.p("b-chunks-away")).unwrap();
    let before = under(&env, "a", "chunks").len();
    let out = env.run(&["prune", "--yes", "--grace", "0s"]);
    assert_ne!(code(&out), 0, "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("store 'b'") && err.contains("deleted nothing"),
        "{err}"
    );
    assert_eq!(
        under(&env, "a", "chunks").len(),
        before,
        "store a lost objects"
    );
    assert!(under(&env, "a", "fossils").is_empty());
}

#[test]
fn prune_deletes_nothing_when_a_listing_fails() {
    use snapdrill::keys::WriteKey;
    use snapdrill::repository::{OpenMode, Repository};
    use snapdrill::store::backend::{self, Location};
    use snapdrill::store::faults::{FaultPlan, FaultStore};
    use std::sync::Arc;

    let env = Env::new(&["a", "b"]);
    three_snapshots(&env);
    env.ok(&["forget", "--keep-last", "1"]);
    let before: Vec<usize> = ["a", "b"]
        .iter()
        .map(|s| under(&env, s, "chunks").len())
        .collect();
    let key = WriteKey::load(&env.write_key()).unwrap();
    let open = |name: &str| {
        backend::open_raw(
            name,
            &Location::Local(env.store(name)),
            &Default::default(),
            &Default::default(),
            false,
        )
        .unwrap()
    };
    // Store b answers everything except the listing of chunks/.
    let plan = FaultPlan {
        error_rate: 1.0,
        only: vec!["list"],
        spare_prefixes: vec![
            "writers/",
            "snapshots/",
            "forgotten/",
            "manifests/",
            "fossils/",
            "collections/",
        ],
        ..FaultPlan::default()
    };
    let b: snapdrill::store::StoreRef = Arc::new(FaultStore::new(open("b"), plan, 1));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = rt.block_on(async {
        let repo = Repository::open(vec![open("a"), b], key.signer(), OpenMode::All).await?;
        let opts = snapdrill::prune::PruneOptions {
            settings: snapdrill::config::PruneSettings {
                grace: Duration::ZERO,
                ..Default::default()
            },
            dry_run: false,
            host: "test".into(),
            planned_forget: Vec::new(),
            // Past the max_delete floor, so that only the failed listing stops it.
            yes: true,
        };
        snapdrill::prune::run(&repo, &opts).await
    });
    let err = result.expect_err("prune must fail when a listing fails");
    assert!(err.to_string().contains("'b'"), "{err}");
    let after: Vec<usize> = ["a", "b"]
        .iter()
        .map(|s| under(&env, s, "chunks").len())
        .collect();
    assert_eq!(
        after, before,
        "a prune with a failed listing deleted objects"
    );
    for s in ["a", "b"] {
        assert!(under(&env, s, "fossils").is_empty());
        assert!(
            under(&env, s, "locks").is_empty(),
            "lease not released in {s}"
        );
    }
}

#[test]
fn a_live_lease_exits_11_and_a_stale_one_is_broken() {
    let env = Env::new(&["a", "b"]);
    three_snapshots(&env);
    let lease = env.store("b").join("locks").join("prune");
    fs::create_dir_all(lease.parent().unwrap()).unwrap();
    fs::write(
        &lease,
        r#"{"host":"other","pid":4242,"nonce":"x","started":"2026-11-28T00:00:00Z"}"#,
    )
    .unwrap();
    let out = env.run(&["prune", "--yes", "--grace", "0s"]);
    assert_eq!(code(&out), 11, "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("store 'b'") && err.contains("pid 4242"),
        "{err}"
    );
    assert!(
        under(&env, "a", "locks").is_empty(),
        "the lease taken in a was not given back"
    );

    age_file(&lease, 7 * 3600); // older than the 6 h lease TTL
    let out = env.run(&["prune", "--yes", "--grace", "0s"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        stderr(&out).contains("broke a stale lease in store 'b'"),
        "{}",
        show(&out)
    );
    assert!(!lease.exists());

    // A holder that asked for a longer lease (a long prune) keeps it past our own TTL.
    fs::create_dir_all(lease.parent().unwrap()).unwrap();
    fs::write(
        &lease,
        r#"{"host":"big","pid":77,"nonce":"y","started":"2026-11-28T00:00:00Z","ttl_secs":36000}"#,
    )
    .unwrap();
    age_file(&lease, 7 * 3600);
    let out = env.run(&["prune", "--yes", "--grace", "0s"]);
    assert_eq!(code(&out), 11, "{}", show(&out));
    assert!(stderr(&out).contains("pid 77"), "{}", show(&out));
}

fn spawn(env: &Env, args: &[&str], faketime: Option<&str>) -> Child {
    let mut cmd = match faketime {
        Some(offset) => {
            let mut c = Command::new("faketime");
            c.arg("-f").arg(offset).arg(common::BIN);
            c.env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
            c
        }
        None => Command::new(common::BIN),
    };
    cmd.arg("--config").arg(env.config()).args(args);
    cmd.current_dir(env.path())
        .env("HOME", env.path())
        .env_remove("SNAPDRILL_CONFIG");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

#[test]
fn four_backups_and_a_prune_two_days_ahead_lose_nothing() {
    common::require_tool("faketime", "faketime");
    let env = Env::new(&["a", "b"]);
    // Snapshot 1 of tree0, then forget it: its chunks are unreferenced and (aged) old, exactly
    // what a prune sets aside — while backup 0 below is about to reuse them.
    let tree0 = env.p("tree0");
    fs::create_dir_all(&tree0).unwrap();
    fs::write(tree0.join("calls.bin"), random_bytes(6 << 20, 1)).unwrap();
    env.ok(&["backup", tree0.to_str().unwrap()]);
    let first = env.snapshot_ids();
    env.ok(&["forget", &first[0]]);
    // A truly abandoned object, three days old.
    for store in ["a", "b"] {
        for f in under(&env, store, "chunks") {
            age_file(&f, 3 * DAY);
        }
        let j = env.store(store).join("chunks/ee").join("ee".repeat(32));
        fs::create_dir_all(j.parent().unwrap()).unwrap();
        fs::write(&j, b"abandoned by a crashed backup").unwrap();
        age_file(&j, 3 * DAY);
    }
    let old_objects = under(&env, "a", "chunks").len();
    let trees: Vec<PathBuf> = (0..4u64)
        .map(|i| {
            if i == 0 {
                return tree0.clone();
            }
            let t = env.p(&format!("tree{i}"));
            fs::create_dir_all(&t).unwrap();
            fs::write(t.join("calls.bin"), random_bytes(24 << 20, 10 + i)).unwrap();
            t
        })
        .collect();

    // Each backup lists the store, reads a first part of its data (backups 1-3 upload theirs),
    // then waits for a gate file: the prune runs while all four are in flight. Backup 0 brings
    // tree0's content again, so it reuses the very chunks the prune is setting aside. A
    // backup reads its command's output only after listing the stores, and `touch` runs
    // once the pipe (64 KiB) has been drained past the first part: each `part-i` file
    // proves that backup has listed and read.
    let before: Vec<std::collections::HashSet<PathBuf>> = ["a", "b"]
        .iter()
        .map(|s| under(&env, s, "chunks").into_iter().collect())
        .collect();
    let go = env.p("go");
    let backups: Vec<Child> = trees
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let f = t.join("calls.bin");
            let first = if i == 0 { 1_000_000 } else { 20_000_000 };
            let cmd = format!(
                "head -c {first} '{f}'; touch '{part}'; i=0; \
                 while [ ! -e '{go}' ] && [ $i -lt 6000 ]; do sleep 0.05; i=$((i+1)); done; \
                 tail -c +{next} '{f}'",
                f = f.display(),
                part = env.p(&format!("part-{i}")).display(),
                go = go.display(),
                next = first + 1,
            );
            let name = format!("tree{i}.bin");
            spawn(
                &env,
                &["backup", "--command", &cmd, "--stdin-name", &name],
                None,
            )
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let fresh = |i: usize, s: &str| {
        under(&env, s, "chunks")
            .into_iter()
            .filter(|c| !before[i].contains(c))
            .count()
    };
    while !((0..4).all(|i| env.p(&format!("part-{i}")).exists())
        && fresh(0, "a") >= 3
        && fresh(1, "b") >= 3)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the backups did not reach their gate"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let prune = spawn(
        &env,
        &["prune", "--yes", "--allow-forget-newest", "--json"],
        Some("+2d"),
    );
    let prune = prune.wait_with_output().unwrap();
    fs::write(&go, b"").unwrap();
    for b in backups {
        let out = b.wait_with_output().unwrap();
        assert_eq!(code(&out), 0, "backup: {}", show(&out));
    }
    assert_eq!(code(&prune), 0, "prune: {}", show(&prune));
    let r = json(&stdout(&prune));
    eprintln!("prune beside the backups: {r}");
    for s in r["stores"].as_array().unwrap() {
        assert_eq!(
            s["backups_running"], 4,
            "the prune did not overlap the backups: {r}"
        );
        // Only what was old by the store's clock may be set aside — tree0's forgotten chunks
        // and the abandoned object — never a running backup's fresh upload, although the
        // prune's own clock calls everything two days old. No chunk is deleted yet (only the
        // forgotten snapshot's commit and manifest): the backups that began before the
        // set-aside are still running.
        let set_aside = s["set_aside"].as_u64().unwrap();
        assert!(set_aside >= 2 && set_aside <= old_objects as u64, "{r}");
        assert_eq!(s["deleted"], 2, "{r}");
        assert_eq!(s["waiting"], set_aside, "{r}");
        assert!(
            s["kept_young"].as_u64().unwrap() >= 3,
            "no fresh upload was seen: {r}"
        );
    }

    // Every snapshot restores, byte for byte.
    let ids = env.snapshot_ids();
    assert_eq!(ids.len(), 4, "{ids:?}");
    for (i, id) in ids.iter().enumerate() {
        let target = env.p(&format!("restored-{i}"));
        env.ok(&["restore", id, "--target", target.to_str().unwrap()]);
        let name = fs::read_dir(&target)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .file_name();
        let n: usize = name.to_str().unwrap()[4..5].parse().unwrap();
        let want = fs::read(trees[n].join("calls.bin")).unwrap();
        assert!(
            fs::read(target.join(&name)).unwrap() == want,
            "{id} differs from tree{n}"
        );
    }

    // With the backups done, a second prune finishes the job: the chunks backup 0 reused are
    // brought back, the abandoned object is deleted, and every snapshot still restores.
    let out = env.run(&["prune", "--yes", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let r = json(&stdout(&out));
    eprintln!("prune after the backups: {r}");
    for (i, store) in ["a", "b"].iter().enumerate() {
        let s = &r["stores"][i];
        assert_eq!(s["waiting"], 0, "{r}");
        assert!(s["deleted"].as_u64().unwrap() >= 1, "{r}");
        assert!(s["brought_back"].as_u64().unwrap() >= 1, "{r}");
        let j = env.store(store).join("chunks/ee").join("ee".repeat(32));
        assert!(!j.exists(), "{store}: the abandoned object survived");
        assert!(
            under(&env, store, "fossils").is_empty(),
            "{store}: {}",
            show(&out)
        );
        assert!(
            under(&env, store, "writers").is_empty(),
            "{store}: markers left"
        );
    }
    for (i, id) in ids.iter().enumerate() {
        let target = env.p(&format!("again-{i}"));
        let out = env.run(&["restore", id, "--target", target.to_str().unwrap()]);
        assert_eq!(
            code(&out),
            0,
            "after the second prune, {id}: {}",
            show(&out)
        );
    }
}

/// `[[store]]` of a local folder.
fn local_toml(name: &str) -> String {
    format!("[[store]]\nname = \"{name}\"\nurl = \"stores/{name}\"\nsite = \"{name}\"\n")
}

#[test]
fn forget_and_prune_on_real_s3_and_azure_servers() {
    use common::servers::Server;
    let (s3, az) = (Server::start("moto"), Server::start("azurite"));
    let s3_toml = s3.store_toml("s3", "bcp/osaka", "");
    let az_toml = az.store_toml("azure", "bcp", "");
    let mut creds = s3.credentials();
    creds.extend(az.credentials());
    let local = local_toml("local");
    let env = Env::with_stores_toml(&format!("{local}\n{s3_toml}\n{az_toml}"), creds, true);
    let src = three_snapshots(&env);
    let ids = env.snapshot_ids();
    env.ok(&["forget", "--keep-last", "1"]);
    // Server timestamps have one-second steps: wait until, by each server's own clock, the
    // forgotten chunks are older than a 1 s grace (a dry run reports none kept as young).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = json(&env.ok(&["prune", "--yes", "--dry-run", "--grace", "1s", "--json"]));
        let stores = r["stores"].as_array().unwrap();
        if stores.iter().all(|s| s["kept_young"] == 0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never aged: {r}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = env.run(&["prune", "--yes", "--grace", "1s", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let r = json(&stdout(&out));
    for s in r["stores"].as_array().unwrap() {
        assert!(s["set_aside"].as_u64().unwrap() >= 2, "{r}");
        // The fossils, plus the two forgotten snapshots' commits and manifests.
        let set_aside = s["set_aside"].as_u64().unwrap();
        assert_eq!(s["deleted"].as_u64().unwrap(), set_aside + 4, "{r}");
        assert_eq!(s["waiting"], 0, "{r}");
    }
    for (name, toml) in [("local", &local), ("s3", &s3_toml), ("azure", &az_toml)] {
        let config = env.config_with_only(&format!("only-{name}.toml"), toml);
        let target = env.p(&format!("restored-{name}"));
        let out = env
            .cmd_with(
                &config,
                &["restore", "latest", "--target", target.to_str().unwrap()],
            )
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{name}: {}", show(&out));
        common::assert_same_tree(&src, &target.join("exports"));
    }
    assert_eq!(env.snapshot_ids(), [ids[2].clone()]);
}

#[test]
fn prune_refuses_a_store_without_atomic_create() {
    use common::servers::Server;
    let dav = Server::start("webdav");
    let dav_toml = dav.store_toml("dav", "snapdrill", "");
    let env = Env::with_stores_toml(
        &format!("{}\n{dav_toml}", local_toml("local")),
        vec![],
        true,
    );
    three_snapshots(&env);
    env.ok(&["forget", "--keep-last", "1"]);
    let before = under(&env, "local", "chunks").len();
    let out = env.run(&["prune", "--yes", "--grace", "0s"]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("store 'dav' cannot hold a prune lease") && err.contains("deleted nothing"),
        "{err}"
    );
    assert_eq!(under(&env, "local", "chunks").len(), before);
}

#[test]
fn a_store_missed_by_forget_learns_it_from_sync_and_prune_finishes_it() {
    let env = Env::new(&["a", "b"]);
    three_snapshots(&env);
    let ids = env.snapshot_ids();
    // Store b is away while forget runs: forget through a config that lists only a.
    let only_a = env.config_with_only("only-a.toml", &local_toml("a"));
    let out = env
        .cmd_with(&only_a, &["forget", "--keep-last", "1"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(env.store("b").join("snapshots").join(&ids[0]).exists());
    // The signed tombstone in a is enough: the snapshot is forgotten everywhere.
    assert_eq!(env.snapshot_ids(), [ids[2].clone()]);

    let r = json(&env.ok(&["sync", "--json"]));
    let added = &r["stores"][1]["tombstones_added"];
    assert_eq!(added.as_array().unwrap().len(), 2, "{r}");
    assert!(env.store("b").join("forgotten").join(&ids[0]).exists());
    assert_eq!(
        env.snapshot_ids(),
        [ids[2].clone()],
        "sync brought a forgotten snapshot back"
    );

    env.ok(&["prune", "--yes", "--grace", "0s"]);
    for id in &ids[..2] {
        assert!(
            !env.store("b").join("snapshots").join(id).exists(),
            "{id} still in b"
        );
        assert!(!env.store("b").join("manifests").join(id).exists());
    }
    let a: Vec<_> = under(&env, "a", "chunks")
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    let mut b: Vec<_> = under(&env, "b", "chunks")
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    let mut a = a;
    a.sort();
    b.sort();
    assert_eq!(a, b, "the stores hold different chunks after prune");
}

#[test]
fn a_killed_backup_leaves_a_marker_that_the_next_backup_removes() {
    let env = Env::new(&["a"]);
    let mut killed = spawn(
        &env,
        &[
            "backup",
            "--command",
            "sleep 30",
            "--stdin-name",
            "slow.bin",
        ],
        None,
    );
    let markers = env.store("a").join("writers");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while under(&env, "a", "writers").is_empty() {
        assert!(std::time::Instant::now() < deadline, "no marker appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    killed.kill().unwrap(); // SIGKILL: no cleanup runs
    killed.wait().unwrap();
    assert_eq!(
        under(&env, "a", "writers").len(),
        1,
        "{}",
        markers.display()
    );
    // While the marker stands, prune counts a running backup.
    let r = json(&env.ok(&["prune", "--yes", "--json"]));
    assert_eq!(r["stores"][0]["backups_running"], 1, "{r}");

    let src = env.tree("exports", &[("a.txt", b"hello")]);
    env.ok(&["backup", src.to_str().unwrap()]);
    assert!(
        under(&env, "a", "writers").is_empty(),
        "the dead backup's marker is still there"
    );
    let r = json(&env.ok(&["prune", "--yes", "--json"]));
    assert_eq!(r["stores"][0]["backups_running"], 0, "{r}");
}

#[test]
fn concurrent_backups_of_the_same_new_data_all_commit() {
    let env = Env::new(&["a"]);
    let data = env.p("dump.bin");
    fs::write(&data, random_bytes(20 << 20, 77)).unwrap();
    // Four hosts dump the same database at the same moment: same chunks, each sealed with
    // its own random age key. Whoever creates a chunk first wins; the others adopt it.
    let backups: Vec<Child> = (0..4)
        .map(|i| {
            let cmd = format!("cat '{}'", data.display());
            let name = format!("dump-{i}.bin");
            spawn(
                &env,
                &["backup", "--command", &cmd, "--stdin-name", &name],
                None,
            )
        })
        .collect();
    for b in backups {
        let out = b.wait_with_output().unwrap();
        assert_eq!(code(&out), 0, "{}", show(&out));
    }
    let ids = env.snapshot_ids();
    assert_eq!(ids.len(), 4);
    let want = fs::read(&data).unwrap();
    for (i, id) in ids.iter().enumerate() {
        let target = env.p(&format!("r{i}"));
        env.ok(&["restore", id, "--target", target.to_str().unwrap()]);
        let name = fs::read_dir(&target)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        assert!(fs::read(name).unwrap() == want, "{id} differs");
    }
}
