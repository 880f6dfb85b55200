//! Running snapdrill as an operator does: quiet under cron and loud when it matters, where
//! the config is found and where state goes, `backup --dry-run`, and what `--help` says.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use common::{BIN, Env, code, files_under, show, stderr, stdout};

/// Two local stores at two sites, `[backup] paths = ["exports"]`, `require = 1`, and one
/// backup of `exports/` (customers.csv, db/crm.sql) taken.
fn two_sites() -> Env {
    let env = Env::with(&["tokyo", "osaka"], &["exports"], true);
    let text = fs::read_to_string(env.config()).unwrap();
    fs::write(env.config(), format!("{text}require = 1\n")).unwrap();
    env.tree(
        "exports",
        &[
            ("customers.csv", b"id,name\n1,a\n"),
            ("db/crm.sql", b"create table t;\n"),
        ],
    );
    env.ok(&["backup"]);
    env
}

#[test]
fn quiet_backup_prints_nothing_and_a_store_down_still_warns_with_exit_3() {
    let env = two_sites();
    let out = env.run(&["-q", "backup"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(stdout(&out), "", "{}", show(&out));
    assert_eq!(stderr(&out), "", "{}", show(&out));

    // The osaka volume is gone: the warning names it and the run is partial.
    fs::rename(env.store("osaka"), env.p("osaka-unmounted")).unwrap();
    let out = env.run(&["-q", "backup"]);
    assert_eq!(code(&out), 3, "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("store 'osaka' did not commit"),
        "{}",
        show(&out)
    );
    assert!(
        stdout(&out).contains("backup PARTIAL"),
        "the verdict is printed when it needs a look: {}",
        show(&out)
    );
}

#[test]
fn quiet_keeps_the_geographic_spread_warning() {
    let env = Env::with(&["tokyo"], &["exports"], true);
    env.tree("exports", &[("a.csv", b"1\n")]);
    for args in [
        &["-q", "backup"][..],
        &["-q", "init"],
        &["-q", "config", "check"],
    ] {
        let out = env.run(args);
        assert_eq!(code(&out), 0, "{args:?}: {}", show(&out));
        assert_eq!(stdout(&out), "", "{args:?}: {}", show(&out));
        assert!(
            stderr(&out).contains("warning: only one store is configured"),
            "{args:?}: {}",
            show(&out)
        );
    }
}

/// The subcommands `snapdrill --help` lists.
fn subcommands(parent: &[&str]) -> Vec<String> {
    let out = Command::new(BIN)
        .args(parent)
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", show(&out));
    let text = stdout(&out);
    let listed = text
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands: section")
        .split("\n\n")
        .next()
        .unwrap();
    listed
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// `-q` on every command: the commands that report what they did print nothing at all on
/// success; those whose output is the answer (a listing, a dump, a recipient) print only
/// that. Nothing goes to stderr when nothing needs a look.
#[test]
fn quiet_is_honoured_by_every_command() {
    let env = two_sites();
    env.tree("exports", &[("customers.csv", b"id,name\n1,a\n2,b\n")]);
    env.ok(&["backup"]);
    // (command line, prints its answer on stdout)
    let cases: &[(&[&str], bool)] = &[
        (&["keygen", "-o", "second-identity.txt"], true),
        (&["init"], false),
        (&["config", "check"], false),
        (&["keys", "list"], true),
        (&["snapshots"], true),
        (&["ls", "latest"], true),
        (&["find", "*.csv"], true),
        (&["diff", "latest~1", "latest"], true),
        (&["dump", "latest", "exports/customers.csv"], true),
        (&["checksums", "latest"], true),
        (&["backup"], false),
        (&["restore", "latest", "--target", "restored"], false),
        (&["restore-drill"], false),
        (&["drills"], true),
        (&["report", "--md", "drills.md"], false),
        (&["sync"], false),
        (&["audit"], false),
        (&["audit", "--record"], false),
        (&["audits"], true),
        (&["evidence", "--out", "pack"], false),
        (&["evidence", "verify", "pack"], false),
        (&["rekey"], false),
        (&["forget", "--keep-last", "5"], false),
        (&["prune"], false),
        (&["completions", "bash"], true),
    ];
    let covered: BTreeSet<&str> = cases.iter().map(|(args, _)| args[0]).collect();
    for name in subcommands(&[]) {
        assert!(
            covered.contains(name.as_str()),
            "`{name}` is not in this test's list: add it with what -q should print"
        );
    }
    for (args, answers) in cases {
        let mut all = vec!["-q"];
        all.extend_from_slice(args);
        let out = env.run(&all);
        assert_eq!(code(&out), 0, "{all:?}: {}", show(&out));
        assert_eq!(stderr(&out), "", "{all:?} wrote to stderr: {}", show(&out));
        match answers {
            true => assert!(!out.stdout.is_empty(), "{all:?} lost its answer"),
            false => assert_eq!(stdout(&out), "", "{all:?} printed on success"),
        }
    }
    // The same commands without -q say what they did (the test above can fail).
    let out = env.run(&["audit"]);
    assert!(!out.stdout.is_empty(), "{}", show(&out));
}

#[test]
fn a_dry_run_names_what_it_would_read_exclude_and_skip_and_touches_no_store() {
    let env = Env::with(&["tokyo"], &["exports"], true);
    env.tree(
        "exports",
        &[
            ("customers.csv", b"id,name\n1,a\n"),
            ("scratch.tmp", b"half written"),
            ("tmp/big.bin", &[7u8; 3000]),
        ],
    );
    let before = files_under(&env.store("tokyo"));
    let out = env.run(&[
        "backup",
        "--dry-run",
        "--exclude",
        "*.tmp",
        "--exclude",
        "tmp",
    ]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let text = stdout(&out);
    assert!(
        text.contains("read       exports/customers.csv  12 B"),
        "{text}"
    );
    assert!(
        text.contains("excluded   exports/scratch.tmp  12 B"),
        "{text}"
    );
    assert!(
        text.contains("excluded   exports/tmp  folder, not walked"),
        "{text}"
    );
    assert!(!text.contains("big.bin"), "{text}");
    assert_eq!(
        files_under(&env.store("tokyo")),
        before,
        "a dry run wrote to the store"
    );
    assert!(
        !env.p("cache").exists() && !env.p("state").exists(),
        "a dry run wrote no cache and no state"
    );

    // After a backup, the files cache says what is unchanged (a large new file is a
    // segment of its own); -q does not hide the plan.
    env.ok(&["backup", "--exclude", "*.tmp", "--exclude", "tmp"]);
    fs::write(env.p("exports/zz.bin"), common::random_bytes(600_000, 7)).unwrap();
    let before = files_under(env.path());
    let out = env.run(&[
        "-q",
        "backup",
        "--dry-run",
        "--json",
        "--exclude",
        "*.tmp",
        "--exclude",
        "tmp",
    ]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let plan = common::json(&stdout(&out));
    let paths = |key: &str| -> Vec<String> {
        plan[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("{} {}", e["path"].as_str().unwrap(), e["size"]))
            .collect()
    };
    assert_eq!(paths("unchanged"), ["exports/customers.csv 12"], "{plan}");
    assert_eq!(paths("read"), ["exports/zz.bin 600000"], "{plan}");
    assert_eq!(
        paths("excluded"),
        ["exports/scratch.tmp 12", "exports/tmp 0"],
        "{plan}"
    );
    assert_eq!(
        files_under(env.path()),
        before,
        "a dry run writes nothing anywhere"
    );
}

/// Many small files are read in runs cut by the dedup key: a dry run cuts them with the
/// same key, so after a backup it finds every run in the cache (cut with another key, the
/// runs are not the cached segments and every small file would be "read").
#[test]
fn a_dry_run_after_a_backup_of_many_small_files_finds_them_unchanged() {
    let env = Env::with(&["tokyo"], &["exports"], true);
    let files: Vec<(String, Vec<u8>)> = (0..3000)
        .map(|i| {
            (
                format!("calls/c{i:04}.csv"),
                format!("{i},call\n").into_bytes(),
            )
        })
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    env.tree("exports", &refs);
    env.ok(&["backup"]);
    fs::write(env.p("exports/calls/c1500.csv"), "changed\n").unwrap();
    let out = env.run(&["backup", "--dry-run", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let plan = common::json(&stdout(&out));
    let (read, unchanged) = (
        plan["read"].as_array().unwrap().len(),
        plan["unchanged"].as_array().unwrap().len(),
    );
    assert_eq!(read + unchanged, 3000, "{plan}");
    assert!(
        (1..=1024).contains(&read),
        "one changed file re-reads its run only: {read} of 3000 would be read"
    );
    let read_paths: Vec<&str> = plan["read"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert!(
        read_paths.contains(&"exports/calls/c1500.csv"),
        "{read_paths:?}"
    );
}

/// The backup's scratch (the spooled walk and manifest) goes to `TMPDIR`; one that cannot
/// be written fails the backup with where and what to do, and no snapshot.
#[test]
fn a_backup_without_a_usable_tmpdir_says_so_and_commits_nothing() {
    let env = Env::with(&["tokyo"], &["exports"], true);
    env.tree("exports", &[("customers.csv", b"id,name\n1,a\n")]);
    let out = env
        .cmd(&["backup"])
        .env("TMPDIR", env.p("no-such-folder"))
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(stderr(&out).contains("TMPDIR"), "{}", show(&out));
    assert!(env.snapshot_ids().is_empty(), "a snapshot was committed");
    env.ok(&["backup"]);
    assert_eq!(env.snapshot_ids().len(), 1);
}

/// A config file with no state or cache folder set.
fn bare_config(env: &Env, at: &Path) {
    let text = fs::read_to_string(env.config()).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("state_dir") && !l.starts_with("cache_dir"))
        .map(|l| format!("{l}\n"))
        .collect();
    // Relative paths resolve against the config's folder: keep the identity and stores.
    let text = text
        .replace("\"identity.txt\"", &format!("{:?}", env.identity()))
        .replace(
            "\"stores/",
            &format!("\"{}/", env.path().join("stores").display()),
        );
    fs::create_dir_all(at.parent().unwrap()).unwrap();
    fs::write(at, text).unwrap();
}

fn config_check(cwd: &Path, vars: &[(&str, &Path)]) -> std::process::Output {
    let mut c = Command::new(BIN);
    c.args(["config", "check"])
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap());
    for (k, v) in vars {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn the_config_is_found_in_the_user_config_folder() {
    let env = Env::new(&["tokyo"]);
    let home = env.p("home");
    let elsewhere = env.p("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    // Nothing anywhere: every place looked at is named.
    let out = config_check(&elsewhere, &[("HOME", &home)]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    let home_file = home.join(".config/snapdrill/snapdrill.toml");
    assert!(
        stderr(&out).contains(&home_file.display().to_string())
            && stderr(&out).contains("/etc/snapdrill/snapdrill.toml"),
        "{}",
        show(&out)
    );
    // ~/.config/snapdrill/snapdrill.toml, then $XDG_CONFIG_HOME's instead.
    bare_config(&env, &home_file);
    let out = config_check(&elsewhere, &[("HOME", &home)]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        stdout(&out).contains(&format!("config     {}", home_file.display())),
        "{}",
        show(&out)
    );
    let xdg = env.p("xdg");
    let xdg_file = xdg.join("snapdrill/snapdrill.toml");
    bare_config(&env, &xdg_file);
    let out = config_check(&elsewhere, &[("HOME", &home), ("XDG_CONFIG_HOME", &xdg)]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        stdout(&out).contains(&format!("config     {}", xdg_file.display())),
        "{}",
        show(&out)
    );
    // ./snapdrill.toml comes first.
    let out = config_check(env.path(), &[("HOME", &home), ("XDG_CONFIG_HOME", &xdg)]);
    assert!(
        stdout(&out).contains("config     ./snapdrill.toml"),
        "{}",
        show(&out)
    );
}

/// Without HOME, root's state and cache are the FHS folders; another user's are an error
/// naming the setting — never a folder under /tmp.
#[test]
fn without_home_the_state_folder_is_never_a_silent_tmp() {
    let env = Env::new(&["tokyo"]);
    let file = env.p("conf/snapdrill.toml");
    bare_config(&env, &file);
    let out = config_check(env.path(), &[("SNAPDRILL_CONFIG", &file)]);
    let tmp = std::env::temp_dir().display().to_string();
    for line in stdout(&out).lines() {
        assert!(
            !(line.starts_with("state ") || line.starts_with("cache ")) || !line.contains(&tmp),
            "{}",
            show(&out)
        );
    }
    if rustix::process::geteuid().is_root() {
        assert_eq!(code(&out), 0, "{}", show(&out));
        assert!(
            stdout(&out).contains("state      /var/lib/snapdrill\n"),
            "{}",
            show(&out)
        );
        assert!(
            stdout(&out).contains("cache      /var/cache/snapdrill\n"),
            "{}",
            show(&out)
        );
    } else {
        assert_eq!(code(&out), 2, "{}", show(&out));
        assert!(stderr(&out).contains("state_dir"), "{}", show(&out));
    }
    // A user with HOME: the XDG folders.
    let home = env.p("home");
    let out = config_check(env.path(), &[("SNAPDRILL_CONFIG", &file), ("HOME", &home)]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    if !rustix::process::geteuid().is_root() {
        let state = home.join(".local/state/snapdrill");
        assert!(
            stdout(&out).contains(&format!("state      {}", state.display())),
            "{}",
            show(&out)
        );
    }
}

/// Every subcommand's help ends with 2 to 4 examples and the exit codes it can return,
/// each one a code the README's table defines; the top-level help lists the workflows.
#[test]
fn every_help_has_examples_and_exit_codes() {
    let defined = [0, 1, 2, 3, 10, 11, 12, 13, 14, 15, 130, 143];
    let mut commands: Vec<Vec<String>> = Vec::new();
    for name in subcommands(&[]) {
        commands.push(vec![name.clone()]);
        if ["keys", "config", "evidence"].contains(&name.as_str()) {
            for sub in subcommands(&[&name]) {
                commands.push(vec![name.clone(), sub]);
            }
        }
    }
    assert!(commands.len() > 20, "{commands:?}");
    for cmd in &commands {
        let out = Command::new(BIN).args(cmd).arg("--help").output().unwrap();
        assert_eq!(code(&out), 0, "{cmd:?}: {}", show(&out));
        let text = stdout(&out);
        let (_, tail) = text
            .split_once("\nExamples:\n")
            .unwrap_or_else(|| panic!("{cmd:?} --help has no examples:\n{text}"));
        let (examples, codes) = tail
            .split_once("\nExit codes:\n")
            .unwrap_or_else(|| panic!("{cmd:?} --help has no exit codes:\n{text}"));
        let count = examples
            .lines()
            .filter(|l| l.starts_with("  ") && !l.starts_with("      "))
            .count();
        assert!(
            (2..=4).contains(&count),
            "{cmd:?}: {count} examples:\n{text}"
        );
        let listed: Vec<i32> = codes
            .lines()
            .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
            .collect();
        assert!(
            listed.contains(&0) && listed.contains(&2),
            "{cmd:?}: {listed:?}"
        );
        assert!(
            listed.iter().all(|c| defined.contains(c)),
            "{cmd:?}: {listed:?}"
        );
    }
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let text = stdout(&out);
    assert!(text.contains("Common workflows:"), "{text}");
    assert!(text.contains("snapdrill -q backup"), "{text}");
}

/// `-vv --log-file` of a backup whose S3 store fails (its bucket does not exist): the log
/// holds what each phase did, per store, and the server's own error — and none of the
/// credentials in the environment.
#[test]
fn a_verbose_log_of_a_failing_s3_backup_holds_the_raw_error_and_no_secret() {
    let s3 = common::servers::Server::start("moto");
    const SECRET: &str = "CANARYsecretKEY0b9d7e1f2a3c4d5e6f708192a3b4c5d6e";
    const TOKEN: &str = "CANARYsessionTOKEN5e6f708192a3b4c5";
    const KEY_ID: &str = "AKIACANARY7F3A9C1D2E";
    let creds = vec![
        ("AWS_ACCESS_KEY_ID".to_owned(), KEY_ID.to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), SECRET.to_owned()),
        ("AWS_SESSION_TOKEN".to_owned(), TOKEN.to_owned()),
    ];
    let missing = s3
        .store_toml("osaka", "repo", "")
        .replace(s3.get("BUCKET"), "no-such-bucket-canary");
    let local = "[[store]]\nname = \"tokyo\"\nurl = \"stores/tokyo\"\nsite = \"tokyo\"\n";
    let mut env = Env::with_stores_toml(&format!("{local}\n{missing}"), creds, false);
    let text = fs::read_to_string(env.config()).unwrap();
    fs::write(env.config(), format!("{text}\n[backup]\nrequire = 1\n")).unwrap();
    env.ok(&["init", "--create", "--store", "tokyo"]);
    env.stores = vec!["tokyo".into()];
    let src = env.tree("exports", &[("a.csv", b"1\n")]);
    for format in ["text", "json"] {
        let log = env.p(&format!("night-{format}.log"));
        let out = env.run(&[
            "-vv",
            "--log-file",
            log.to_str().unwrap(),
            "--log-format",
            format,
            "backup",
            src.to_str().unwrap(),
        ]);
        assert_eq!(code(&out), 3, "{}", show(&out));
        let text = fs::read_to_string(&log).unwrap();
        for line in text.lines().filter(|_| format == "json") {
            common::json(line);
        }
        // The phases, each store's listing and result, and the server's own error.
        for wanted in [
            "started",
            "walked the sources",
            "listed",
            "store result",
            "finished",
        ] {
            assert!(
                text.contains(wanted),
                "{format} log lacks '{wanted}':\n{text}"
            );
        }
        assert!(
            text.contains("store error") && text.contains("no-such-bucket-canary"),
            "{format} log lacks the raw store error:\n{text}"
        );
        assert!(
            text.contains("NoSuchBucket"),
            "{format}: the server's own words:\n{text}"
        );
        for secret in [SECRET, TOKEN, KEY_ID] {
            assert!(
                !text.contains(secret),
                "{format} log holds a credential:\n{text}"
            );
            assert!(!show(&out).contains(secret), "{}", show(&out));
        }
    }
}

/// The scripts find the binary wherever cargo puts it (`CARGO_TARGET_DIR`, a shared target
/// folder), by asking cargo — not at `target/debug`.
#[test]
fn the_scripts_ask_cargo_where_the_binary_is() {
    let root = env!("CARGO_MANIFEST_DIR");
    let elsewhere = "/srv/shared cargo \"target\"";
    let out = Command::new("bash")
        .arg("-c")
        .arg(". scripts/cargo-bin.sh && cargo_bin debug snapdrill && cargo_bin release examples/x")
        .current_dir(root)
        .env("CARGO_TARGET_DIR", elsewhere)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(
        stdout(&out),
        format!("{elsewhere}/debug/snapdrill\n{elsewhere}/release/examples/x\n")
    );
}

/// `make demo`'s script runs through with the binary given from anywhere, from a copy of
/// the project's scripts and fixtures (it writes only under its own `demo/`).
#[test]
fn the_demo_runs_with_a_binary_from_anywhere() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = tempfile::tempdir().unwrap();
    for dir in ["scripts", "fixtures/exports"] {
        let to = copy.path().join(dir);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        let status = Command::new("cp")
            .arg("-r")
            .arg(root.join(dir))
            .arg(&to)
            .status()
            .unwrap();
        assert!(status.success(), "copying {dir}");
    }
    let out = Command::new("bash")
        .arg(copy.path().join("scripts/demo.sh"))
        .env("BIN", BIN)
        .env_remove("SNAPDRILL_CONFIG")
        .env("HOME", copy.path())
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        stdout(&out).contains("restored and verified"),
        "{}",
        show(&out)
    );
}
