//! Parallel thrash (after bupstash's): rounds of concurrent backups, forgets, prunes with no
//! grace period and restore drills, each process killed with SIGKILL at a random instant or
//! left to finish. A finished drill passed (or its snapshot was forgotten under it).
//! Afterwards every listed snapshot restores byte for byte, and a full audit is clean but
//! for snapshots a killed backup committed in one store only, which `sync` completes.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::{Env, code, json, random_bytes, show};

fn spawn(env: &Env, args: &[&str]) -> Child {
    let mut c = env.cmd(args);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c.spawn().unwrap()
}

#[test]
fn concurrent_backups_forgets_and_prunes_killed_at_random_lose_nothing() {
    let env = Env::new(&["a", "b"]);
    let mut text = fs::read_to_string(env.config()).unwrap();
    // Aggressive on purpose: no grace period, and a killed prune's lease goes stale at once.
    text.push_str("\n[prune]\ngrace = \"0s\"\nlease_ttl = \"1s\"\n");
    fs::write(env.config(), text).unwrap();

    // Four data sets sharing a common part, so backups reuse each other's chunks.
    let common_part = random_bytes(16 << 20, 1);
    let mut contents: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for i in 0..4u64 {
        let mut data = common_part.clone();
        data.extend(random_bytes(8 << 20, 100 + i));
        let path = env.p(&format!("data-{i}.bin"));
        fs::write(&path, &data).unwrap();
        contents.insert(format!("data-{i}.bin"), data);
    }
    let mut rng = common::rng(2026);
    let mut killed = 0;
    let mut codes: BTreeMap<i32, usize> = BTreeMap::new();
    for round in 0..10 {
        let mut procs: Vec<Child> = (0..3)
            .map(|j| {
                let i = (round + j) % 4;
                let cmd = format!("cat '{}'", env.p(&format!("data-{i}.bin")).display());
                let name = format!("data-{i}.bin");
                spawn(&env, &["backup", "--command", &cmd, "--stdin-name", &name])
            })
            .collect();
        procs.push(spawn(&env, &["prune", "--yes"]));
        // A drill reads while the others write and delete (last in `procs`, see below).
        let drill_at = procs.len() + usize::from(round % 2 == 1);
        if round % 2 == 1 {
            procs.push(spawn(&env, &["forget", "--keep-last", "3"]));
        }
        procs.push(spawn(
            &env,
            &[
                "restore-drill",
                "--snapshot",
                "latest",
                "--verify-only",
                "--json",
            ],
        ));
        // Each process meets its fate at its own random instant, spread over its run.
        for p in procs.iter_mut() {
            std::thread::sleep(Duration::from_millis(
                rand::RngCore::next_u64(&mut rng) % 120,
            ));
            if rand::RngCore::next_u64(&mut rng).is_multiple_of(2)
                && p.try_wait().unwrap().is_none()
            {
                p.kill().unwrap();
                killed += 1;
            }
        }
        let mut drill = None;
        for (n, p) in procs.into_iter().enumerate() {
            let out = p.wait_with_output().unwrap();
            let c = out.status.code().unwrap_or(-9);
            if n == drill_at {
                drill = Some(out.clone());
            }
            *codes.entry(c).or_default() += 1;
            if c != 0 && c != -9 && codes[&c] <= 3 {
                eprintln!("thrash: exit {c}: {}", common::stderr(&out));
            }
            // Finished runs may be partial (3), leased out (11) or integrity-refusing — but
            // never a crash of the tool itself.
            assert!(
                out.status.code().is_none_or(|c| c != 101),
                "a run panicked: {}",
                show(&out)
            );
        }
        check_drill(&env, drill.expect("the drill ran"));
    }
    eprintln!("thrash: {killed} runs killed; exit codes {codes:?}");
    assert!(killed > 0, "the thrash killed nothing");

    // Quiet now: one backup (it removes the markers of killed backups), then prune twice.
    let cmd = format!("cat '{}'", env.p("data-0.bin").display());
    env.ok(&["backup", "--command", &cmd, "--stdin-name", "data-0.bin"]);
    // A prune killed above may have left its lease (TTL 1 s): until it is stale by the
    // store's clock, prune exits 11. Wait for that state, not for a fixed time.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for _ in 0..2 {
        let out = loop {
            let out = env.run(&["prune", "--yes"]);
            if code(&out) != 11 || std::time::Instant::now() > deadline {
                break out;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(code(&out), 0, "{}", show(&out));
    }

    let ids = env.snapshot_ids();
    assert!(!ids.is_empty());
    for (n, id) in ids.iter().enumerate() {
        let target = env.p(&format!("restored-{n}"));
        let out = env.run(&["restore", id, "--target", target.to_str().unwrap()]);
        assert_eq!(
            code(&out),
            0,
            "snapshot {id} does not restore: {}",
            show(&out)
        );
        for entry in fs::read_dir(&target).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            assert!(
                fs::read(entry.path()).unwrap() == contents[&name],
                "{id}: {name} differs"
            );
        }
    }
    // A backup killed between its per-store commits leaves its snapshot in one store only:
    // the audit may say "behind" (restorable, and `sync` completes it), nothing else.
    let out = env.run(&["audit", "--read-data", "--json"]);
    let report = json(&common::stdout(&out));
    let problems = report["problems"].as_array().unwrap();
    assert!(
        problems.iter().all(|p| p["kind"] == "behind"),
        "audit after the thrash: {report:#}"
    );
    let out = env.run(&["sync"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let out = env.run(&["audit", "--read-data", "--json"]);
    let report = json(&common::stdout(&out));
    assert_eq!(
        code(&out),
        0,
        "audit after the thrash and a sync: {report:#}"
    );
}

/// A drill that ran to the end passed, or failed only because the snapshot it was reading
/// was forgotten (and pruned) meanwhile: readers take no lock, and a snapshot still listed
/// must always pass.
fn check_drill(env: &Env, out: std::process::Output) {
    let Some(c) = out.status.code() else {
        return; // killed
    };
    if c == 0 {
        return;
    }
    let stdout = common::stdout(&out);
    let records = serde_json::from_str::<serde_json::Value>(&stdout).ok();
    let snapshot = records
        .as_ref()
        .and_then(|r| r[0]["snapshot_id"].as_str())
        .map(str::to_owned);
    match snapshot {
        Some(id) => assert!(
            !env.snapshot_ids().contains(&id),
            "a drill of snapshot {id}, still listed, failed (exit {c}): {}",
            show(&out)
        ),
        // No snapshot chosen: only "none committed yet" (the first round) is acceptable.
        None => assert!(
            common::stderr(&out).contains("no snapshot"),
            "a drill failed before choosing a snapshot (exit {c}): {}",
            show(&out)
        ),
    }
}
