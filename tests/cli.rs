//! The command-line contract: exit codes, messages and what lands on disk.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::*;

/// A tree with files, an empty file, nested directories, symlinks (relative, absolute and
/// dangling, to a directory), explicit modes and nanosecond mtimes.
fn rich_tree(env: &Env) -> PathBuf {
    let big = random_bytes(300 << 10, 7); // above the chunker's min_size: its own segment
    let src = env.tree(
        "src",
        &[
            ("hello.txt", b"hello, world\n"),
            ("empty", b""),
            ("run.sh", b"#!/bin/sh\necho hi\n"),
            ("nested/deeper/data.bin", &big),
            ("nested/deeper/note.txt", b"deep note\n"),
            ("nested/sibling.csv", b"id,name\n1,a\n"),
        ],
    );
    symlink("hello.txt", src.join("link")).unwrap();
    symlink("/nonexistent/elsewhere", src.join("abs-link")).unwrap();
    symlink("nested", src.join("dirlink")).unwrap();
    set_mode(&src.join("empty"), 0o600);
    set_mode(&src.join("run.sh"), 0o755);
    set_mode(&src.join("nested/deeper/data.bin"), 0o640);
    set_mode(&src.join("nested"), 0o750);
    // Leaves first, then directories deepest first: writing inside a directory changes its mtime.
    let times: &[(&str, i64, u32)] = &[
        ("hello.txt", 1_600_000_000, 123_456_789),
        ("empty", 1_600_000_001, 1),
        ("run.sh", 1_600_000_002, 999_999_999),
        ("nested/deeper/data.bin", 1_600_000_003, 500),
        ("nested/deeper/note.txt", 1_600_000_004, 42),
        ("nested/sibling.csv", 1_600_000_005, 7),
        ("link", 1_600_000_006, 600_000_000),
        ("abs-link", 1_600_000_007, 700_000_000),
        ("dirlink", 1_600_000_008, 800_000_000),
        ("nested/deeper", 1_600_000_009, 900_000_001),
        ("nested", 1_600_000_010, 10),
        ("", 1_600_000_011, 11),
    ];
    for (rel, s, ns) in times {
        set_mtime(&src.join(rel), *s, *ns);
    }
    src
}

fn src_arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn backup_then_restore_into_an_empty_dir_reproduces_the_tree() {
    let env = Env::new(&["a"]);
    let src = rich_tree(&env);
    env.ok(&["backup", src_arg(&src)]);
    let target = env.p("restore");
    fs::create_dir(&target).unwrap();
    let out = env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let last = out.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("restored and verified"),
        "last line: {last:?}\n{out}"
    );
    assert_eq!(names_in(&target), ["src"]);
    assert_same_tree(&src, &target.join("src"));
}

#[test]
fn checksums_pass_sha256sum_on_the_restored_tree() {
    require_tool("sha256sum", "coreutils");
    let env = Env::new(&["a"]);
    let src = env.tree(
        "src",
        &[
            ("a file with spaces.txt", b"spaces\n"),
            ("日本語のファイル.txt", "こんにちは\n".as_bytes()),
            ("sub/plain.txt", b"plain\n"),
            ("sub/empty", b""),
        ],
    );
    env.ok(&["backup", src_arg(&src)]);
    let target = env.p("restore");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let sums = env.ok(&["checksums", "latest"]);
    assert_eq!(sums.lines().count(), 4, "one line per file:\n{sums}");
    fs::write(env.p("sums"), &sums).unwrap();

    let check = std::process::Command::new("sha256sum")
        .arg("-c")
        .arg(env.p("sums"))
        .current_dir(&target)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "sha256sum -c failed\n{}",
        show(&check)
    );
    let report = stdout(&check);
    for name in [
        "src/a file with spaces.txt: OK",
        "src/日本語のファイル.txt: OK",
        "src/sub/plain.txt: OK",
        "src/sub/empty: OK",
    ] {
        assert!(report.contains(name), "missing '{name}' in\n{report}");
    }

    // The same sums must catch a changed file.
    fs::write(target.join("src/日本語のファイル.txt"), "さようなら\n").unwrap();
    let check = std::process::Command::new("sha256sum")
        .arg("-c")
        .arg(env.p("sums"))
        .current_dir(&target)
        .output()
        .unwrap();
    assert!(
        !check.status.success(),
        "a changed file passed sha256sum -c"
    );
}

#[test]
fn restore_into_a_non_empty_dir_needs_force() {
    let env = Env::new(&["a"]);
    let src = env.tree("src", &[("data.txt", b"from the snapshot\n")]);
    env.ok(&["backup", src_arg(&src)]);
    let target = env.p("restore");
    write_tree(&target, &[("keep.txt", b"mine\n")]);
    let before = read_tree(&target);

    let out = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    // The message is pinned by tests/cmd/target-not-empty.toml.
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert_eq!(read_tree(&target), before, "the target changed");

    env.ok(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--force",
    ]);
    assert_same_tree(&src, &target.join("src"));
    assert_eq!(fs::read(target.join("keep.txt")).unwrap(), b"mine\n");
}

/// `--force` replaces files, never a directory: a folder in the target where the snapshot
/// has a file stops the restore with the path named, and the folder keeps what it held.
#[test]
fn a_forced_restore_never_replaces_a_directory_with_a_file() {
    let env = Env::new(&["a"]);
    let src = env.tree("src", &[("data.txt", b"from the snapshot\n")]);
    env.ok(&["backup", src_arg(&src)]);
    let target = env.p("restore");
    write_tree(&target, &[("src/data.txt/mine.txt", b"mine\n")]);
    let out = env.run(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--force",
    ]);
    assert_ne!(code(&out), 0, "{}", show(&out));
    assert!(
        stderr(&out).contains("data.txt is a directory in the target"),
        "{}",
        show(&out)
    );
    assert_eq!(
        fs::read(target.join("src/data.txt/mine.txt")).unwrap(),
        b"mine\n"
    );
}

#[test]
fn backup_needs_no_identity_and_a_wrong_identity_is_refused() {
    let env = Env::new(&["a"]);
    let src = env.tree("src", &[("secret.csv", b"id,card\n1,4111\n")]);
    fs::rename(env.identity(), env.p("identity.away")).unwrap();
    env.ok(&["backup", src_arg(&src)]);
    assert_eq!(env.snapshot_ids().len(), 1);

    let other = env.p("other-identity.txt");
    env.ok(&["keygen", "-o", other.to_str().unwrap()]);
    let target = env.p("restore");
    let out = env.run(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--identity",
        other.to_str().unwrap(),
    ]);
    // The message is pinned by tests/cmd/identity-wrong.toml.
    assert_eq!(code(&out), 12, "{}", show(&out));
    assert!(!target.exists(), "the target was created");

    // The right identity still works (the failure was the key, not the snapshot).
    env.ok(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--identity",
        env.p("identity.away").to_str().unwrap(),
    ]);
    assert_eq!(
        fs::read(target.join("src/secret.csv")).unwrap(),
        b"id,card\n1,4111\n"
    );
}

#[test]
fn key_files_readable_by_others_are_refused() {
    let env = Env::new(&["a"]);
    let src = env.tree("src", &[("f.txt", b"x\n")]);
    env.ok(&["backup", src_arg(&src)]);
    let target = env.p("restore");

    set_mode(&env.identity(), 0o644);
    // The messages are pinned by tests/cmd/identity-readable.toml and write-key-readable.toml.
    let out = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 12, "{}", show(&out));
    assert!(!target.exists(), "the target was created");
    set_mode(&env.identity(), 0o600);
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);

    set_mode(&env.write_key(), 0o640);
    let out = env.run(&["backup", src_arg(&src)]);
    assert_eq!(code(&out), 12, "{}", show(&out));
    assert_eq!(env.snapshot_ids().len(), 1, "a snapshot was written");
}

#[test]
fn stdin_is_stored_under_its_name() {
    let env = Env::new(&["a"]);
    let mut dump = b"-- PostgreSQL database dump\nINSERT INTO t VALUES (1);\n".to_vec();
    dump.extend(random_bytes(200_000, 3)); // binary too, and more than a pipe buffer
    let out = env.run_stdin(&["backup", "--stdin-name", "db.sql"], &dump);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let target = env.p("restore");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(names_in(&target), ["db.sql"]);
    assert!(
        fs::read(target.join("db.sql")).unwrap() == dump,
        "db.sql differs from stdin"
    );
}

#[test]
fn a_failing_command_makes_no_snapshot() {
    let env = Env::new(&["a"]);
    let out = env.run(&["backup", "--command", "printf abc; exit 3"]);
    // The message is pinned by tests/cmd/command-fails.toml.
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(env.snapshot_ids().is_empty(), "a snapshot was written");
    assert!(files_under(&env.store("a").join("snapshots")).is_empty());
}

#[test]
fn command_output_is_stored() {
    let env = Env::new(&["a"]);
    env.ok(&["backup", "--command", "printf abc"]);
    let first = env.snapshot_ids();
    assert_eq!(first.len(), 1);
    let target = env.p("r1");
    env.ok(&["restore", &first[0], "--target", target.to_str().unwrap()]);
    assert_eq!(names_in(&target), ["command-output"]);
    assert_eq!(fs::read(target.join("command-output")).unwrap(), b"abc");

    env.ok(&[
        "backup",
        "--command",
        "printf xyz",
        "--stdin-name",
        "named.txt",
        "--job",
        "named",
    ]);
    // Two data sets now: `latest` needs to know which.
    let target = env.p("r2");
    let out = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&first[0]),
        "{}",
        show(&out)
    );
    env.ok(&[
        "restore",
        "latest",
        "--job",
        "named",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_eq!(names_in(&target), ["named.txt"]);
    assert_eq!(fs::read(target.join("named.txt")).unwrap(), b"xyz");
}

#[test]
fn tags_and_the_json_report() {
    let env = Env::new(&["a"]);
    let src = env.tree("src", &[("a.txt", b"0123456789"), ("b/c.txt", b"abc")]);
    let report = env.backup_json(&["--tag", "nightly", src_arg(&src)]);
    for field in [
        "snapshot_id",
        "files",
        "bytes_read",
        "chunks_new",
        "dedup_ratio",
        "duration_secs",
        "stores",
    ] {
        assert!(report.get(field).is_some(), "no '{field}' in {report}");
    }
    let id = report["snapshot_id"].as_str().unwrap().to_owned();
    assert_eq!(report["files"], 2);
    assert_eq!(report["bytes_read"], 13);
    assert_eq!(report["chunks_new"], 1);
    assert!(report["dedup_ratio"].as_f64().unwrap() > 0.0, "{report}");
    assert!(report["duration_secs"].as_f64().unwrap() >= 0.0, "{report}");
    assert_eq!(report["stores"][0]["name"], "a");
    assert_eq!(report["stores"][0]["committed"], true);

    let untagged = env.backup_json(&[src_arg(&src)]);
    let listing = json(&env.ok(&["snapshots", "--json"]));
    let snaps = listing["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    let tagged = snaps.iter().find(|s| s["id"] == id.as_str()).unwrap();
    assert_eq!(tagged["tags"], serde_json::json!(["nightly"]));
    let other = snaps
        .iter()
        .find(|s| s["id"] == untagged["snapshot_id"])
        .unwrap();
    assert_eq!(other["tags"], serde_json::json!([]));

    let filtered = json(&env.ok(&["snapshots", "--json", "--tag", "nightly"]));
    let ids: Vec<&str> = filtered["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str()]);
}

#[test]
fn a_missing_source_is_skipped_and_the_backup_is_partial() {
    let env = Env::new(&["a"]);
    let src = env.tree(
        "src",
        &[("kept.txt", b"kept\n"), ("sub/also.txt", b"also\n")],
    );
    let missing = env.p("no-such-dir");
    let out = env.run(&["backup", src_arg(&src), missing.to_str().unwrap()]);
    assert_eq!(code(&out), 3, "{}", show(&out));
    assert!(
        stderr(&out).contains(missing.to_str().unwrap()),
        "{}",
        show(&out)
    );
    assert_eq!(env.snapshot_ids().len(), 1, "no snapshot was committed");
    let target = env.p("restore");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(names_in(&target), ["src"]);
    assert_same_tree(&src, &target.join("src"));
}

/// Replace the `[[store]]` tables of the config with one store `name` at `url`.
fn point_config_at(env: &Env, name: &str, url: &str) {
    let text = fs::read_to_string(env.config()).unwrap();
    let head = &text[..text.find("[[store]]").unwrap()];
    fs::write(
        env.config(),
        format!("{head}[[store]]\nname = \"{name}\"\nurl = \"{url}\"\n"),
    )
    .unwrap();
}

#[test]
fn an_uninitialised_store_exits_10_and_is_named() {
    let env = Env::new(&["a"]);
    let src = env.tree("src", &[("f.txt", b"x\n")]);
    // A store directory that does not exist, then one that exists but was never init-ed.
    for (name, url, create) in [
        ("ghost", "stores/ghost", false),
        ("blank", "stores/blank", true),
    ] {
        if create {
            fs::create_dir_all(env.p(url)).unwrap();
        }
        point_config_at(&env, name, url);
        for args in [vec!["snapshots"], vec!["backup", src_arg(&src)]] {
            let out = env.run(&args);
            assert_eq!(code(&out), 10, "{name}: {args:?}\n{}", show(&out));
            assert!(
                stderr(&out).contains(&format!("'{name}'")),
                "{}",
                show(&out)
            );
        }
        assert!(
            files_under(&env.p(url)).is_empty(),
            "something was written to {url}"
        );
    }
}

#[test]
fn a_store_added_after_init_is_named_with_the_commands_that_make_it_a_replica() {
    let env = Env::new(&["a"]);
    let src = env.tree("src", &[("f.txt", b"x\n")]);
    fs::create_dir_all(env.store("late")).unwrap();
    let mut text = fs::read_to_string(env.config()).unwrap();
    text.push_str("\n[[store]]\nname = \"late\"\nurl = \"stores/late\"\nsite = \"late\"\n");
    fs::write(env.config(), text).unwrap();
    // `require` is "all": one of two committed is a failed run, but the snapshot is there.
    let out = env.run(&["backup", src_arg(&src)]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(
        stderr(&out).contains("store 'late' did not commit"),
        "{}",
        show(&out)
    );
    assert!(
        stderr(&out).contains("snapdrill init --store late"),
        "{}",
        show(&out)
    );
    assert_eq!(files_under(&env.store("a").join("snapshots")).len(), 1);
    assert!(
        files_under(&env.store("late")).is_empty(),
        "nothing written to 'late'"
    );
    env.ok(&["init", "--store", "late"]);
    env.ok(&["sync"]);
    env.ok(&["backup", src_arg(&src)]);
    assert_eq!(files_under(&env.store("late").join("snapshots")).len(), 2);
}

#[test]
fn a_config_typo_is_named_and_a_good_config_checks() {
    let env = Env::new(&["a", "b"]);
    let out = env.ok(&["config", "check"]);
    assert!(out.contains("config ok"), "{out}");

    let text = fs::read_to_string(env.config()).unwrap();
    fs::write(
        env.config(),
        format!("{text}\n[backup]\nexclued = [\"*.tmp\"]\n"),
    )
    .unwrap();
    for args in [vec!["config", "check"], vec!["snapshots"]] {
        let out = env.run(&args);
        assert_eq!(code(&out), 2, "{args:?}\n{}", show(&out));
        assert!(stderr(&out).contains("exclued"), "{}", show(&out));
    }
}
