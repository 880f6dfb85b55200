//! The responder's tools, end to end through the binary: `find` locates a file deleted
//! snapshots ago and `restore --include` brings back exactly it; `diff` names what changed
//! and nothing else; `dump` streams a file byte for byte and a folder as a tar stream that
//! the stock `tar` extracts to the same tree, and stops with exit 13 at a damaged chunk;
//! `ls PATH` and rwx modes; `restore --store` uses that replica and no other.

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// A CSV of `rows` lines (compressible text, several chunks when large).
fn csv(rows: usize, seed: u64) -> Vec<u8> {
    let mut out = b"id,name,balance\n".to_vec();
    for i in 0..rows {
        out.extend_from_slice(format!("{i},customer-{},{}\n", i as u64 * seed, i % 977).as_bytes());
    }
    out
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn find_locates_a_file_deleted_three_snapshots_ago_and_include_restores_exactly_it() {
    let env = Env::new(&["a", "b"]);
    let lost = csv(2_000, 7);
    let src = env.tree(
        "exports",
        &[
            ("customers.csv", &csv(100, 1)),
            ("archive/2025/q4-orders.csv", &lost),
            ("db/crm.sql", b"create table t;\n"),
        ],
    );
    env.ok(&["backup", path(&src)]);
    fs::remove_file(src.join("archive/2025/q4-orders.csv")).unwrap();
    for round in 2..=4 {
        fs::write(src.join("customers.csv"), csv(100 + round, 1)).unwrap();
        env.ok(&["backup", path(&src)]);
    }
    let ids = env.snapshot_ids();
    assert_eq!(ids.len(), 4);

    let report = json(&env.ok(&["find", "q4-orders.csv", "--json"]));
    assert_eq!(report["searched"], 4, "{report:#}");
    let found = report["found"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{report:#}");
    let f = &found[0];
    assert_eq!(f["path"], "exports/archive/2025/q4-orders.csv");
    assert_eq!(f["first"]["snapshot_id"], ids[0].as_str());
    assert_eq!(f["last"]["snapshot_id"], ids[0].as_str());
    assert_eq!(f["gone_in"]["snapshot_id"], ids[1].as_str());
    assert_eq!(f["snapshots"], 1);
    let v = &f["versions"][0];
    assert_eq!(v["size"], lost.len());
    assert_eq!(v["sha256"], sha256_hex(&lost).as_str());

    // The text names the same, and a path pattern finds it as well as a name pattern.
    let text = env.ok(&["find", "exports/archive/*/*.csv"]);
    assert!(
        text.contains("exports/archive/2025/q4-orders.csv\n"),
        "{text}"
    );
    assert!(text.contains(&format!("first seen  {}", ids[0])), "{text}");
    assert!(text.contains(&format!("gone in     {}", ids[1])), "{text}");
    assert!(text.contains(&sha256_hex(&lost)), "{text}");
    assert!(
        text.ends_with("1 path matching 'exports/archive/*/*.csv' in 4 snapshots searched\n"),
        "{text}"
    );
    // --since leaves the first snapshot out: nothing holds it after it.
    let since = env.ok(&["find", "q4-orders.csv", "--since", "2000-01-01", "--json"]);
    assert_eq!(json(&since)["found"].as_array().unwrap().len(), 1);
    let after = json(&env.ok(&["snapshots", "--json"]))["snapshots"][1]["time"]
        .as_str()
        .unwrap()
        .to_owned();
    let later = json(&env.ok(&["find", "q4-orders.csv", "--since", &after, "--json"]));
    assert_eq!(later["searched"], 3, "{later:#}");
    assert!(later["found"].as_array().unwrap().is_empty(), "{later:#}");

    // Restore exactly that file from the snapshot find named.
    let target = env.p("restored");
    let from = f["last"]["snapshot_id"].as_str().unwrap();
    let wanted = f["path"].as_str().unwrap();
    env.ok(&[
        "restore",
        from,
        "--include",
        wanted,
        "--target",
        path(&target),
    ]);
    let restored = files_under(&target);
    assert_eq!(
        restored,
        [target.join(wanted)],
        "exactly that file comes back"
    );
    assert_eq!(fs::read(target.join(wanted)).unwrap(), lost);
}

#[test]
fn include_matches_names_at_any_depth_as_exclude_does() {
    let env = Env::new(&["a"]);
    let src = env.tree(
        "exports",
        &[
            ("top.csv", b"1\n"),
            ("deep/er/orders.csv", b"2\n"),
            ("deep/notes.txt", b"3\n"),
            ("db/crm.sql", b"4\n"),
        ],
    );
    env.ok(&["backup", path(&src)]);
    let target = env.p("restored");
    env.ok(&[
        "restore",
        "latest",
        "--include",
        "*.csv",
        "--include",
        "db",
        "--target",
        path(&target),
    ]);
    let got: Vec<String> = files_under(&target)
        .iter()
        .map(|p| p.strip_prefix(&target).unwrap().display().to_string())
        .collect();
    assert_eq!(
        got,
        [
            "exports/db/crm.sql",
            "exports/deep/er/orders.csv",
            "exports/top.csv"
        ],
        "a name pattern matches at any depth; a matched directory brings its subtree"
    );
}

#[test]
fn diff_reports_the_changed_csv_and_the_added_file_and_nothing_else() {
    let env = Env::new(&["a", "b"]);
    let src = env.tree(
        "exports",
        &[
            ("customers.csv", &csv(500, 3)),
            ("calls.jsonl", b"{\"id\":1}\n"),
            ("db/crm.sql", b"create table t;\n"),
        ],
    );
    env.ok(&["backup", path(&src)]);
    fs::write(src.join("customers.csv"), csv(501, 3)).unwrap();
    fs::write(src.join("db/new-table.sql"), b"create table u;\n").unwrap();
    env.ok(&["backup", path(&src)]);
    let ids = env.snapshot_ids();

    let text = env.ok(&["diff", &ids[0], &ids[1]]);
    let lines: Vec<&str> = text.lines().collect();
    let csv_line = format!(
        "M exports/customers.csv (content {} -> {})",
        snapdrill::units::binary_size(csv(500, 3).len() as u64),
        snapdrill::units::binary_size(csv(501, 3).len() as u64)
    );
    assert_eq!(
        lines,
        [
            csv_line.as_str(),
            "+ exports/db/new-table.sql",
            &format!("1 added, 0 removed, 1 modified ({} -> {})", ids[0], ids[1]),
        ],
        "{text}"
    );
    let report = json(&env.ok(&["diff", "latest~1", "latest", "--json"]));
    let changes = report["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{report:#}");
    assert_eq!(changes[0]["change"], "modified");
    assert_eq!(changes[0]["differences"][0]["what"], "content");
    assert_eq!(changes[1]["change"], "added");
    assert_eq!(changes[1]["path"], "exports/db/new-table.sql");

    // Limited to a path, or to a glob.
    assert_eq!(
        env.ok(&["-q", "diff", &ids[0], &ids[1], "exports/db"]),
        "+ exports/db/new-table.sql\n"
    );
    assert_eq!(
        env.ok(&["-q", "diff", &ids[0], &ids[1], "--include", "*.jsonl"]),
        ""
    );
    // Backwards, the same change reads the other way.
    let back = env.ok(&["-q", "diff", &ids[1], &ids[0], "exports/db"]);
    assert_eq!(back, "- exports/db/new-table.sql\n");
    let out = env.run(&["diff", &ids[0], &ids[1], "exports/nope"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(
        stderr(&out).contains("path 'exports/nope'"),
        "{}",
        show(&out)
    );
}

#[test]
fn dump_writes_a_csv_byte_for_byte_and_refuses_what_is_not_a_file() {
    let env = Env::new(&["a", "b"]);
    // Several chunks (~2 MiB each): the content crosses chunk boundaries.
    let big = csv(300_000, 11);
    assert!(big.len() > 5 << 20, "{}", big.len());
    let src = env.tree("exports", &[("customers.csv", &big), ("empty.csv", b"")]);
    std::os::unix::fs::symlink("customers.csv", src.join("latest.csv")).unwrap();
    env.ok(&["backup", path(&src)]);

    let out = env.run(&["dump", "latest", "exports/customers.csv"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        out.stdout == big,
        "dumped {} bytes, expected {}",
        out.stdout.len(),
        big.len()
    );
    assert!(
        stderr(&out).contains("dumped and verified 'exports/customers.csv'"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["-q", "dump", "latest", "/exports/empty.csv"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{}",
        show(&out)
    );

    let out = env.run(&["dump", "latest", "exports/latest.csv"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(
        stderr(&out).contains("is a symlink (to 'customers.csv')"),
        "{}",
        show(&out)
    );
    let out = env.run(&["dump", "latest", "exports/nope.csv"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(
        stderr(&out).contains("no path 'exports/nope.csv' in snapshot"),
        "{}",
        show(&out)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn dump_of_a_folder_untars_to_the_same_tree() {
    require_tool("tar", "tar");
    let env = Env::new(&["a"]);
    let long = format!("{}/{}.csv", "d".repeat(60), "n".repeat(70));
    let src = env.tree(
        "exports",
        &[
            ("customers.csv", &csv(50_000, 5)),
            ("db/crm.sql", b"create table t;\n"),
            ("db/empty", b""),
            (long.as_str(), b"long paths need pax\n"),
            ("private/keys.txt", b"secret\n"),
        ],
    );
    std::os::unix::fs::symlink("../customers.csv", src.join("db/link.csv")).unwrap();
    set_mode(&src.join("private/keys.txt"), 0o600);
    set_mode(&src.join("private"), 0o750);
    set_mtime(&src.join("customers.csv"), 1_764_300_000, 123_456_789);
    set_mtime(&src.join("db/link.csv"), 1_764_300_001, 5);
    set_mtime(&src.join("db"), 1_700_000_000, 42);
    env.ok(&["backup", path(&src)]);

    let out = env.run(&["dump", "latest", "exports"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let into = env.p("untarred");
    fs::create_dir(&into).unwrap();
    let mut tar = Command::new("tar")
        .args(["-xpf", "-", "-C", path(&into)])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    tar.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    assert!(tar.wait().unwrap().success(), "tar -x failed");
    assert_same_tree(&src, &into.join("exports"));

    // A sub-folder untars to one folder of its own name.
    let out = env.run(&["dump", "latest", "exports/db"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let listing = Command::new("tar")
        .args(["-tvf", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(&out.stdout)?;
            c.wait_with_output()
        })
        .unwrap();
    let names: Vec<String> = stdout(&listing)
        .lines()
        .map(|l| l.split_whitespace().nth(5).unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["db/empty", "db/crm.sql", "db/", "db/link.csv"],
        "{}",
        stdout(&listing)
    );
}

#[test]
fn a_damaged_chunk_stops_dump_with_exit_13_naming_the_object() {
    let env = Env::new(&["a"]);
    // Longer than the largest chunk (8 MiB), so that the file's first chunk ends inside it
    // whatever the repository's chunker seed: it stays stored, intact, and is dumped first.
    let head = random_bytes(9 << 20, 1);
    let src = env.tree("exports", &[("big.bin", &head)]);
    env.ok(&["backup", path(&src)]);
    let before = env.chunk_objects("a");
    // The same file grown: its first chunks are the ones already stored, the new ones
    // hold what follows them.
    let mut grown = head.clone();
    grown.extend_from_slice(&random_bytes(5 << 20, 2));
    fs::write(src.join("big.bin"), &grown).unwrap();
    env.ok(&["backup", path(&src)]);
    let new: Vec<_> = env
        .chunk_objects("a")
        .into_iter()
        .filter(|c| !before.contains(c))
        .collect();
    assert!(!new.is_empty());
    for c in &new {
        let mut bytes = fs::read(c).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        fs::write(c, bytes).unwrap();
    }

    let out = env.run(&["dump", "latest", "exports/big.bin"]);
    assert_eq!(code(&out), 13, "{}", stderr(&out));
    let err = stderr(&out);
    let named = new.iter().any(|c| {
        let name = c.file_name().unwrap().to_str().unwrap();
        err.contains(&format!("'chunks/{}/{name}'", &name[..2]))
    });
    assert!(named, "the damaged object is named: {err}");
    assert!(
        err.contains("had already been written to standard output: discard it"),
        "{err}"
    );
    assert!(
        !out.stdout.is_empty() && out.stdout.len() < grown.len(),
        "{}",
        out.stdout.len()
    );
    assert!(
        grown.starts_with(&out.stdout),
        "only verified bytes went out, in order"
    );

    // The snapshot before the damage still dumps whole.
    let out = env.run(&["dump", "latest~1", "exports/big.bin"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(out.stdout == head);
}

#[test]
fn ls_limits_to_paths_and_shows_modes_as_rwx() {
    let env = Env::new(&["a"]);
    let src = env.tree(
        "exports",
        &[
            ("customers.csv", b"id\n1\n"),
            ("db/crm.sql", b"x\n"),
            ("db/old/2025.csv", b"y\n"),
        ],
    );
    std::os::unix::fs::symlink("crm.sql", src.join("db/current")).unwrap();
    set_mode(&src.join("customers.csv"), 0o644);
    set_mode(&src.join("db/crm.sql"), 0o600);
    set_mode(&src.join("db"), 0o755);
    env.ok(&["backup", path(&src)]);

    let text = env.ok(&["ls", "latest", "exports/db"]);
    let lines: Vec<(&str, &str)> = text
        .lines()
        .map(|l| {
            let mode = l.split_whitespace().next().unwrap();
            let path = l.split_whitespace().nth(3).unwrap();
            (mode, path)
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("drwxr-xr-x", "exports/db"),
            ("-rw-------", "exports/db/crm.sql"),
            ("lrwxrwxrwx", "exports/db/current"),
            ("drwxr-xr-x", "exports/db/old"),
            ("-rw-r--r--", "exports/db/old/2025.csv"),
        ],
        "{text}"
    );
    assert!(text.contains("exports/db/current -> crm.sql"), "{text}");

    let csvs = env.ok(&["ls", "latest", "--include", "*.csv"]);
    let paths: Vec<&str> = csvs
        .lines()
        .map(|l| l.split_whitespace().nth(3).unwrap())
        .collect();
    assert_eq!(
        paths,
        ["exports/customers.csv", "exports/db/old/2025.csv"],
        "{csvs}"
    );
    let json_entries = json(&env.ok(&["ls", "latest", "exports/customers.csv", "--json"]));
    assert_eq!(
        json_entries.as_array().unwrap().len(),
        1,
        "{json_entries:#}"
    );
    assert_eq!(json_entries[0]["mode"], 0o644);

    let out = env.run(&["ls", "latest", "exports/nope"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(
        stderr(&out).contains("path 'exports/nope'"),
        "{}",
        show(&out)
    );
}

#[test]
fn restore_from_one_store_uses_that_store_and_no_other() {
    let env = Env::new(&["a", "b"]);
    let src = env.tree(
        "exports",
        &[
            ("customers.csv", &csv(20_000, 9)),
            ("db/crm.sql", b"create table t;\n"),
        ],
    );
    env.ok(&["backup", path(&src)]);
    // Store a is emptied (a lost replica), b stands.
    fs::remove_dir_all(env.store("a")).unwrap();
    fs::create_dir(env.store("a")).unwrap();

    let target = env.p("from-b");
    let out = env.run(&[
        "restore",
        "latest",
        "--store",
        "b",
        "--target",
        path(&target),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let report = json(&stdout(&out));
    let served: Vec<&String> = report["sources"]["served"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(served, ["b"], "{report:#}");
    assert_same_tree(&src, &target.join("exports"));

    let out = env.run(&[
        "restore",
        "latest",
        "--store",
        "a",
        "--target",
        path(&env.p("from-a")),
    ]);
    assert_ne!(code(&out), 0, "{}", show(&out));
    assert!(stderr(&out).contains("store 'a'"), "{}", show(&out));
    let out = env.run(&[
        "restore",
        "latest",
        "--store",
        "c",
        "--target",
        path(&env.p("from-c")),
    ]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(
        stderr(&out).contains("no store named 'c' in the config (stores: a, b)"),
        "{}",
        show(&out)
    );
}

#[test]
fn restore_from_one_store_does_not_fail_over_to_another() {
    let env = Env::new(&["a", "b"]);
    let src = env.tree("exports", &[("customers.csv", &csv(20_000, 9))]);
    env.ok(&["backup", path(&src)]);
    for c in env.chunk_objects("b") {
        let mut bytes = fs::read(&c).unwrap();
        bytes[40] ^= 0x01;
        fs::write(&c, bytes).unwrap();
    }
    // With every store, a serves what b cannot; with b alone, the damage is the answer.
    env.ok(&["restore", "latest", "--target", path(&env.p("any"))]);
    let out = env.run(&[
        "restore",
        "latest",
        "--store",
        "b",
        "--target",
        path(&env.p("b-only")),
    ]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    assert!(stderr(&out).contains("(b: "), "{}", show(&out));
    assert!(!stderr(&out).contains("(a: "), "{}", show(&out));
}

#[test]
fn a_file_that_does_not_match_its_sha256_is_named_and_its_bytes_disowned() {
    use common::craft::{self, dir_entry, file_entry};
    let env = Env::new(&["a"]);
    // A snapshot signed with the write key whose file's hash is not its content's.
    let mut forged = file_entry(b"x/f.csv", b"HELLO", 0);
    forged.size = Some(5);
    let id = craft::snapshot(
        &env,
        &["a"],
        craft::Spec {
            stream: b"hello".to_vec(),
            entries: vec![dir_entry(b"x"), forged],
            ..craft::Spec::default()
        },
    );
    let out = env.run(&["dump", &id, "x/f.csv"]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    assert_eq!(
        out.stdout, b"hello",
        "the bytes went out before the hash could be known"
    );
    let err = stderr(&out);
    assert!(err.contains("integrity failure in 'x/f.csv'"), "{err}");
    assert!(
        err.contains("5 B of 'x/f.csv' had already been written to standard output: discard it"),
        "{err}"
    );

    let out = env.run(&["dump", &id, "x"]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    assert!(
        stderr(&out).contains("the tar stream of 'x' on standard output is incomplete: discard it"),
        "{}",
        show(&out)
    );
}

/// Memory is the restore engine's pipeline (a few chunks fetched ahead, each as ciphertext
/// and plaintext), not the file: a file five times larger peaks about the same, and well
/// below its own size.
#[test]
fn dump_memory_does_not_grow_with_the_size_of_the_file() {
    require_tool("/usr/bin/time", "time");
    let env = Env::new(&["a"]);
    let src = env.tree(
        "exports",
        &[
            ("medium.bin", &random_bytes(48 << 20, 1)),
            ("large.bin", &random_bytes(240 << 20, 2)),
        ],
    );
    env.ok(&["backup", path(&src)]);
    let peak_kib = |file: &str| -> u64 {
        let rss = env.p("rss.txt");
        let status = Command::new("/usr/bin/time")
            .args(["-f", "%M", "-o", path(&rss), BIN])
            .args(["--config", path(&env.config()), "dump", "latest", file])
            .current_dir(env.path())
            .env("HOME", env.path())
            .env_remove("SNAPDRILL_CONFIG")
            .stdout(fs::File::create(env.p("out.bin")).unwrap())
            .status()
            .unwrap();
        assert!(status.success(), "dump {file}");
        let name = file.rsplit('/').next().unwrap();
        assert_eq!(sha256_file(&env.p("out.bin")), sha256_file(&src.join(name)));
        let text = fs::read_to_string(&rss).unwrap();
        text.lines().last().unwrap().trim().parse().unwrap()
    };
    let medium = peak_kib("exports/medium.bin");
    let large = peak_kib("exports/large.bin");
    assert!(
        large < 200 * 1024 && large < medium + 64 * 1024,
        "a 240 MiB file took {large} KiB at peak, a 48 MiB one {medium} KiB: memory grows with the file"
    );
}

/// Content is untrusted and raw: it goes to a terminal only when asked for (`script` gives
/// the command a terminal).
#[test]
fn dump_refuses_a_terminal_unless_forced() {
    require_tool("script", "bsdutils");
    let env = Env::new(&["a"]);
    let src = env.tree("exports", &[("note.txt", b"plain text\n")]);
    env.ok(&["backup", path(&src)]);
    let on_a_terminal = |extra: &str| {
        let line = format!(
            "{BIN} --config {} dump {extra} latest exports/note.txt",
            path(&env.config())
        );
        Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .current_dir(env.path())
            .env("HOME", env.path())
            .env_remove("SNAPDRILL_CONFIG")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = on_a_terminal("");
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(
        stdout(&out).contains("standard output, which is a terminal"),
        "{}",
        show(&out)
    );
    assert!(!stdout(&out).contains("plain text"), "{}", show(&out));
    let out = on_a_terminal("--force");
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(stdout(&out).contains("plain text"), "{}", show(&out));
}
