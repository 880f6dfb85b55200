//! Deduplication and the local files cache: unchanged data is neither stored nor read again,
//! and the cache is an optimisation only.

mod common;

use std::fs::{self, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::Path;

use common::*;

fn count(v: &serde_json::Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no number '{field}' in {v}"))
}

/// A tree with one file large enough for its own chunks and a run of small ones.
fn mixed_tree(env: &Env) -> std::path::PathBuf {
    env.tree(
        "data",
        &[
            ("large.bin", &random_bytes(700 << 10, 21)),
            ("small/a.txt", b"alpha\n"),
            ("small/b.txt", b"bravo\n"),
            ("small/c.json", b"{\"c\": 3}\n"),
        ],
    )
}

#[test]
fn the_same_tree_twice_adds_no_chunk_and_reads_nothing() {
    // The config's [backup] paths is the source: `backup` without PATHs uses it.
    let env = Env::with(&["a", "b"], &["data"], true);
    mixed_tree(&env);
    let first = env.backup_json(&[]);
    let total = count(&first, "bytes");
    assert_eq!(count(&first, "bytes_read"), total);
    assert!(count(&first, "chunks_new") >= 2, "{first}");
    let objects_a = env.chunk_objects("a");
    let objects_b = env.chunk_objects("b");
    assert_eq!(objects_a.len() as u64, count(&first, "chunks_new"));

    let second = env.backup_json(&[]);
    assert_eq!(count(&second, "chunks_new"), 0, "{second}");
    assert_eq!(
        count(&second, "bytes_read"),
        0,
        "the cache should spare every read: {second}"
    );
    assert_eq!(count(&second, "bytes"), total);
    assert_eq!(env.chunk_objects("a"), objects_a);
    assert_eq!(env.chunk_objects("b"), objects_b);
    // The cache the second run wrote still holds what it reused (moved, not lost).
    let third = env.backup_json(&[]);
    assert_eq!(count(&third, "bytes_read"), 0, "{third}");

    let forced = env.backup_json(&["--force-read"]);
    assert_eq!(count(&forced, "bytes_read"), total, "{forced}");
    assert_eq!(count(&forced, "chunks_new"), 0, "{forced}");
    assert_eq!(env.chunk_objects("a"), objects_a);
    assert_eq!(env.snapshot_ids().len(), 4);
}

/// Write `len` pseudo-random bytes to `path` (appending if `append`).
fn write_random(path: &Path, len: usize, seed: u64, append: bool) {
    let file = OpenOptions::new()
        .create(true)
        .append(append)
        .write(true)
        .truncate(!append)
        .open(path)
        .unwrap();
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut rng = common::rng(seed);
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len());
        rand::RngCore::fill_bytes(&mut rng, &mut buf[..n]);
        out.write_all(&buf[..n]).unwrap();
        left -= n;
    }
    out.flush().unwrap();
}

#[test]
fn appending_to_a_100_mb_file_stores_only_the_tail() {
    let env = Env::new(&["a"]);
    let src = env.p("big");
    fs::create_dir(&src).unwrap();
    let file = src.join("export.bin");
    write_random(&file, 100 << 20, 99, false);
    let first = env.backup_json(&[src.to_str().unwrap()]);
    assert_eq!(count(&first, "bytes"), 100 << 20);
    let before = env.chunk_objects("a");
    assert!(
        before.len() >= 25,
        "100 MiB in ~1 MiB chunks: {} objects",
        before.len()
    );

    write_random(&file, 1 << 20, 100, true);
    let second = env.backup_json(&[src.to_str().unwrap()]);
    let after = env.chunk_objects("a");
    let new = after.len() - before.len();
    assert!(
        (1..=6).contains(&new),
        "{new} new chunk objects for a 1 MiB append"
    );
    assert_eq!(count(&second, "chunks_new"), new as u64, "{second}");
    assert!(before.iter().all(|p| after.contains(p)));

    let target = env.p("restore");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let restored = target.join("big/export.bin");
    assert_eq!(fs::metadata(&restored).unwrap().len(), 101 << 20);
    assert_eq!(sha256_file(&restored), sha256_file(&file));
}

#[test]
fn a_deleted_or_garbled_cache_costs_reads_not_correctness() {
    let env = Env::new(&["a"]);
    let src = mixed_tree(&env);
    let arg = src.to_str().unwrap();
    let first = env.backup_json(&[arg]);
    let total = count(&first, "bytes");
    let objects = env.chunk_objects("a");
    let cache = env.p("cache");
    assert!(!files_under(&cache).is_empty(), "the backup wrote no cache");

    fs::remove_dir_all(&cache).unwrap();
    let r = env.backup_json(&[arg]);
    assert_eq!(count(&r, "chunks_new"), 0, "{r}");
    assert_eq!(
        count(&r, "bytes_read"),
        total,
        "without a cache every file is read: {r}"
    );

    let cached = files_under(&cache);
    assert!(!cached.is_empty(), "the cache was not rebuilt");
    for (i, f) in cached.iter().enumerate() {
        fs::write(f, random_bytes(4096, 500 + i as u64)).unwrap();
    }
    let r = env.backup_json(&[arg]);
    assert_eq!(count(&r, "chunks_new"), 0, "{r}");
    assert_eq!(count(&r, "bytes_read"), total, "{r}");
    let warnings = r["warnings"].to_string();
    assert!(
        warnings.contains("cache"),
        "a garbled cache should be reported: {r}"
    );

    // A cache folder that is not a folder at all.
    fs::remove_dir_all(&cache).unwrap();
    fs::write(&cache, random_bytes(1000, 7)).unwrap();
    let r = env.backup_json(&[arg]);
    assert_eq!(count(&r, "chunks_new"), 0, "{r}");

    assert_eq!(env.chunk_objects("a"), objects);
    let target = env.p("restore");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_same_tree(&src, &target.join("data"));
}

/// Small files are read in runs of at most 1,024 files whose ends follow the paths: changing
/// one file of thousands re-reads its own run, not the whole tree, and adding a file does
/// not shift every run after it (two runs at most are read again here, whatever the key
/// that placed their ends). The restore is the tree as it is now.
#[test]
fn one_changed_small_file_rereads_its_run_not_the_tree() {
    let env = Env::new(&["a"]);
    let src = env.p("calls");
    for i in 0..6000 {
        let dir = src.join(format!("day-{:02}", i / 200));
        fs::create_dir_all(&dir).unwrap();
        let line = format!("{i},caller-{i},{}\n", i * 7);
        fs::write(dir.join(format!("call-{i:05}.csv")), line.repeat(8)).unwrap();
    }
    let first = env.backup_json(&[src.to_str().unwrap()]);
    let total = count(&first, "bytes");
    assert_eq!(count(&first, "bytes_read"), total);

    fs::write(src.join("day-07/call-01500.csv"), "changed\n").unwrap();
    fs::write(src.join("day-20/call-new.csv"), "added\n").unwrap();
    let second = env.backup_json(&[src.to_str().unwrap()]);
    let read = count(&second, "bytes_read");
    assert!(
        read > 0 && read * 2 < total,
        "two files changed among 6,000 ({total} bytes): {read} bytes read again"
    );

    let target = env.p("restore");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let restored = target.join("calls");
    assert_eq!(
        fs::read(restored.join("day-07/call-01500.csv")).unwrap(),
        b"changed\n"
    );
    assert_same_tree(&src, &restored);
}
