//! Crash consistency ("kill -9 at random instants during backup", after
//! Kopia's crash test): 50 backups into two stores, each killed with SIGKILL at a random
//! instant. Afterwards every snapshot that is listed restores and verifies, and the next
//! backup completes and restores the current tree exactly.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::{Env, assert_same_tree, code, random_bytes, show, write_tree};

const RUNS: usize = 50;

#[test]
fn backups_killed_at_random_instants_never_leave_a_bad_snapshot() {
    let env = Env::new(&["near", "far"]);
    let seed = common::time_seed();
    let mut rng = common::rng(seed);
    let src = env.p("exports");
    let files: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| {
            (
                format!("part-{i:02}.bin"),
                random_bytes(600_000 + i * 37_000, seed ^ i as u64),
            )
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    write_tree(&src, &refs);

    // Calibrate: how long does a backup like the ones below (one file changed) take here?
    env.ok(&["backup", src.to_str().unwrap()]);
    std::fs::write(
        src.join(&files[0].0),
        random_bytes(500_000, seed.wrapping_add(1)),
    )
    .unwrap();
    let started = Instant::now();
    env.ok(&["backup", src.to_str().unwrap()]);
    // Kill instants are drawn from [0, span); the span adapts so that runs end both ways
    // (killed at every stage, and some completing), whatever the speed of this machine.
    let mut span = started.elapsed().as_micros().max(2_000) as u64;

    let mut killed = 0;
    for run in 0..RUNS {
        // New content every run, so every run has chunks to upload and a commit to write.
        let victim = &files[run % files.len()].0;
        std::fs::write(
            src.join(victim),
            random_bytes(500_000 + run * 1_000, seed.wrapping_add(run as u64 + 100)),
        )
        .unwrap();
        let mut child = env.cmd(&["backup", src.to_str().unwrap()]).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(
            rand::RngCore::next_u64(&mut rng) % span,
        ));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
            span += span / 8;
        } else {
            span -= span / 8;
        }
        child.wait().unwrap();
    }
    assert!(
        killed >= RUNS / 4,
        "only {killed} of {RUNS} runs were killed mid-way (seed {seed})"
    );

    // Every listed snapshot restores and verifies.
    let ids = env.snapshot_ids();
    for id in &ids {
        let target = env.p(&format!("restored-{id}"));
        let out = env.run(&["restore", id, "--target", target.to_str().unwrap()]);
        assert_eq!(
            code(&out),
            0,
            "snapshot {id} does not restore (seed {seed})\n{}",
            show(&out)
        );
        std::fs::remove_dir_all(&target).unwrap();
    }

    // The next run completes and holds exactly the current tree.
    env.ok(&["backup", src.to_str().unwrap()]);
    let target = env.p("final");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_same_tree(&src, &target.join("exports"));
    eprintln!(
        "crash test: {killed} of {RUNS} backups killed, {} snapshots listed and restored (seed {seed})",
        ids.len()
    );
}

/// A restore of many small files (written by the pool, placed a batch at a time) and a
/// large one (streamed) killed with SIGKILL at random instants: every file that has its
/// final name holds exactly the snapshot's content, and `restore --force` then completes
/// the identical tree.
#[test]
fn restores_killed_at_random_instants_never_leave_a_wrong_file_and_force_completes() {
    let env = Env::new(&["near"]);
    let seed = common::time_seed();
    let mut rng = common::rng(seed);
    let src = env.p("exports");
    let files: Vec<(String, Vec<u8>)> = (0..3000u64)
        .map(|i| {
            let len = 100 + (i as usize * 7919) % 3000;
            (
                format!("d{:02}/f{i:04}.csv", i % 40),
                random_bytes(len, seed ^ i),
            )
        })
        // Over 8 MiB: its writeback is started while it is written, so a kill can land
        // after that and before the batch's syncfs.
        .chain([("big.bin".to_owned(), random_bytes(12_000_000, seed))])
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    write_tree(&src, &refs);
    env.ok(&["backup", src.to_str().unwrap()]);
    let target = env.p("restored");
    let started = Instant::now();
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let span = started.elapsed().as_micros().max(2_000) as u64;
    for run in 0..6 {
        if target.exists() {
            fs::remove_dir_all(&target).unwrap();
        }
        let mut child = env
            .cmd(&["restore", "latest", "--target", target.to_str().unwrap()])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(
            rand::RngCore::next_u64(&mut rng) % span,
        ));
        let _ = child.kill(); // SIGKILL (or it had finished)
        child.wait().unwrap();
        // Every final name holds the snapshot's bytes; only temp names may be partial.
        for (name, data) in &files {
            let placed = target.join("exports").join(name);
            if let Ok(got) = fs::read(&placed) {
                assert!(
                    got == *data,
                    "seed {seed}, run {run}: {name} is placed but wrong"
                );
            }
        }
    }
    env.ok(&[
        "restore",
        "latest",
        "--force",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_same_tree(&src, &target.join("exports"));
}
