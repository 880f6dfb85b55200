//! A restore reads its manifest piecewise (entries handed to the writer as they are parsed)
//! when the files come in stream order, as snapdrill writes them; any other valid order —
//! which the format allows — takes the planned path. Both give the exact tree: every file's
//! bytes, directories listed after what they hold with their modes, empty files and
//! directories, symlinks; a line count that differs from the content is a warning for a
//! restore and a failure for a drill.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::craft::{self, dir_entry, file_entry, symlink_entry};
use common::*;

const STREAM: &[u8] = b"alpha\nbravo\ncharlie\n";

/// The entries of a small tree over [`STREAM`], files in the order `files` gives
/// (indices into a, b, c), every directory after what it holds.
fn tree(files: [usize; 3]) -> Vec<snapdrill::format::manifest::Entry> {
    let all = [
        file_entry(b"x/deep/a.txt", b"alpha\n", 0),
        file_entry(b"x/deep/b.txt", b"bravo\n", 6),
        file_entry(b"x/c.txt", b"charlie\n", 12),
    ];
    let mut entries: Vec<_> = files.iter().map(|&i| all[i].clone()).collect();
    entries.push(file_entry(b"x/empty.txt", b"", 0));
    entries.push(symlink_entry(b"x/link", b"c.txt"));
    let mut locked = dir_entry(b"x/deep");
    locked.mode = 0o700;
    entries.extend([locked, dir_entry(b"x/hollow"), dir_entry(b"x")]);
    entries
}

fn restored_exactly(env: &Env, id: &str, name: &str) {
    let target = env.p(name);
    let out = env.run(&["restore", id, "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let read = |p: &str| fs::read(target.join(p)).unwrap();
    assert_eq!(read("x/deep/a.txt"), b"alpha\n");
    assert_eq!(read("x/deep/b.txt"), b"bravo\n");
    assert_eq!(read("x/c.txt"), b"charlie\n");
    assert_eq!(read("x/empty.txt"), b"");
    assert_eq!(
        fs::read_link(target.join("x/link")).unwrap().to_str(),
        Some("c.txt")
    );
    assert!(target.join("x/hollow").is_dir());
    let mode = fs::metadata(target.join("x/deep"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "the directory listed after its files");
}

#[test]
fn files_in_stream_order_and_out_of_it_restore_the_same_exact_tree() {
    let env = Env::new(&["a"]);
    for (order, name) in [([0, 1, 2], "in-order"), ([2, 0, 1], "shuffled")] {
        let id = craft::snapshot(
            &env,
            &["a"],
            craft::Spec {
                stream: STREAM.to_vec(),
                chunk_size: 6,
                entries: tree(order),
                ..craft::Spec::default()
            },
        );
        restored_exactly(&env, &id, name);
        let out = env.run(&["restore-drill", "--snapshot", &id, "--verify-only"]);
        assert_eq!(code(&out), 0, "{name}: {}", show(&out));
    }
}

/// `audit --deep` of a manifest whose files are out of stream order takes the planned path
/// with its filter of unverified content, and verifies every file.
#[test]
fn a_deep_audit_verifies_files_out_of_stream_order() {
    let env = Env::new(&["a"]);
    let spec = craft::Spec {
        stream: STREAM.to_vec(),
        chunk_size: 6,
        entries: tree([2, 0, 1]),
        ..craft::Spec::default()
    };
    craft::snapshot(&env, &["a"], spec);
    let out = env.run(&["audit", "--deep", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let report = json(&stdout(&out));
    let deep = &report["stores"][0]["deep"];
    assert_eq!(
        (&deep["snapshots"], &deep["failed"]),
        (&1.into(), &0.into()),
        "{deep}"
    );
    assert_eq!(deep["files"], 4, "{deep}");
    assert_eq!(deep["bytes"], STREAM.len(), "{deep}");
    // The files were read: a damaged chunk fails the snapshot.
    let chunk = walkdir::WalkDir::new(env.store("a").join("chunks"))
        .into_iter()
        .map(|e| e.unwrap())
        .find(|e| e.file_type().is_file())
        .unwrap();
    let mut bytes = fs::read(chunk.path()).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(chunk.path(), bytes).unwrap();
    let out = env.run(&["audit", "--deep", "--json"]);
    let report = json(&stdout(&out));
    assert_eq!(report["stores"][0]["deep"]["failed"], 1, "{}", show(&out));
}

#[test]
fn include_selects_from_the_streamed_entries() {
    let env = Env::new(&["a"]);
    let id = craft::snapshot(
        &env,
        &["a"],
        craft::Spec {
            stream: STREAM.to_vec(),
            entries: tree([0, 1, 2]),
            ..craft::Spec::default()
        },
    );
    let target = env.p("only-deep");
    let t = target.to_str().unwrap();
    env.ok(&["restore", &id, "--target", t, "--include", "x/deep"]);
    assert_eq!(fs::read(target.join("x/deep/b.txt")).unwrap(), b"bravo\n");
    assert!(!target.join("x/c.txt").exists());
    assert!(!target.join("x/link").exists());
    let out = env.run(&[
        "restore",
        &id,
        "--target",
        t,
        "--force",
        "--include",
        "nothing",
    ]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(
        stderr(&out).contains("no path in snapshot"),
        "{}",
        show(&out)
    );
}

/// The backup recorded 5 lines for a file whose signed content has 3: the restore places
/// the file (its SHA-256 matches) and says so; a drill fails on it, verify-only included.
#[test]
fn a_line_count_that_differs_warns_a_restore_and_fails_a_drill() {
    let env = Env::new(&["a"]);
    let mut counted = file_entry(b"x/rows.csv", b"id\n1\n2\n", 0);
    counted.lines = Some(5);
    let id = craft::snapshot(
        &env,
        &["a"],
        craft::Spec {
            stream: b"id\n1\n2\n".to_vec(),
            entries: vec![dir_entry(b"x"), counted],
            ..craft::Spec::default()
        },
    );
    let target = env.p("restored");
    let out = env.run(&["restore", &id, "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        stderr(&out).contains("x/rows.csv has 3 lines restored, but the snapshot recorded 5"),
        "{}",
        show(&out)
    );
    assert_eq!(fs::read(target.join("x/rows.csv")).unwrap(), b"id\n1\n2\n");
    let out = env.run(&["restore-drill", "--verify-only"]);
    assert_eq!(code(&out), 13, "{}", show(&out));
}

/// Files spanning far more chunks than the restore queues ahead (256 chunk indices, 8
/// fetches, 2 chunks to the writer, 1,024 files) and many files sharing one chunk: the
/// writer, the fetcher and the manifest reader never wait for each other in a circle, and
/// every byte lands where it belongs.
#[test]
fn files_over_many_chunks_and_chunks_over_many_files_restore_exactly() {
    let env = Env::new(&["a"]);
    let big: Vec<u8> = (0..700u32)
        .flat_map(|i| format!("{i:09}\n").into_bytes())
        .collect();
    let mut stream = big.clone();
    let mut entries = vec![dir_entry(b"x"), file_entry(b"x/big.txt", &big, 0)];
    for i in 0..1500u32 {
        let content = format!("small {i}\n").into_bytes();
        let name = format!("x/s{i:04}.txt");
        entries.push(file_entry(name.as_bytes(), &content, stream.len() as u64));
        stream.extend_from_slice(&content);
    }
    let tail = stream.len() as u64;
    stream.extend_from_slice(&big);
    entries.push(file_entry(b"x/big2.txt", &big, tail));
    let id = craft::snapshot(
        &env,
        &["a"],
        craft::Spec {
            stream,
            chunk_size: 10,
            entries,
            ..craft::Spec::default()
        },
    );
    let target = env.p("restored");
    env.ok(&["restore", &id, "--target", target.to_str().unwrap()]);
    assert_eq!(fs::read(target.join("x/big.txt")).unwrap(), big);
    assert_eq!(fs::read(target.join("x/big2.txt")).unwrap(), big);
    assert_eq!(
        fs::read(target.join("x/s1234.txt")).unwrap(),
        b"small 1234\n"
    );
    assert_eq!(fs::read_dir(target.join("x")).unwrap().count(), 1502);
}

/// A sampled drill chooses its files in the manifest's entry order, whichever path the
/// restore takes: the same entries over a stream in file order (piecewise) and over the
/// stream reversed (planned) give the same sample for the same seed, a tenth of the bytes,
/// each file intact; another seed gives another.
#[test]
fn a_sample_takes_the_same_files_piecewise_and_planned() {
    let env = Env::new(&["a"]);
    let n = 60u64;
    let body = |i: u64| format!("file {i:04}\n").into_bytes(); // 10 bytes each
    let crafted = |reversed: bool| {
        let at = |i: u64| 10 * if reversed { n - 1 - i } else { i };
        let mut stream = vec![0u8; 10 * n as usize];
        let mut entries = vec![dir_entry(b"x")];
        for i in 0..n {
            let at = at(i) as usize;
            stream[at..at + 10].copy_from_slice(&body(i));
            entries.push(file_entry(
                format!("x/f{i:02}").as_bytes(),
                &body(i),
                at as u64,
            ));
        }
        let spec = craft::Spec {
            stream,
            chunk_size: 30,
            entries,
            ..craft::Spec::default()
        };
        craft::snapshot(&env, &["a"], spec)
    };
    let sampled = |id: &str, seed: &str, name: &str| {
        let target = env.p(name);
        let out = env.run(&[
            "restore-drill",
            "--snapshot",
            id,
            "--sample",
            "10%",
            "--seed",
            seed,
            "--keep",
            "--no-record",
            "--target",
            target.to_str().unwrap(),
        ]);
        assert_eq!(code(&out), 0, "{name}: {}", show(&out));
        let mut files: Vec<String> = fs::read_dir(target.join("x"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        for f in &files {
            let i: u64 = f[1..].parse().unwrap();
            assert_eq!(fs::read(target.join("x").join(f)).unwrap(), body(i), "{f}");
        }
        files
    };
    let (in_order, reversed) = (crafted(false), crafted(true));
    let piecewise = sampled(&in_order, "5", "piecewise");
    assert_eq!(
        piecewise.len(),
        6,
        "a tenth of 60 equal files: {piecewise:?}"
    );
    assert_eq!(sampled(&reversed, "5", "planned"), piecewise);
    assert_ne!(sampled(&in_order, "6", "other-seed"), piecewise);
}
