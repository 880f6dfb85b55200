//! Hardening against a hostile backup host, a hostile or broken store and hostile local
//! users: one test (or more) per defect an adversarial review found, each built as the
//! reproducer was — make the hostile state, run the command, check the exit code and that
//! nothing was lost, leaked or written outside its place.

mod common;

use std::fs;

use common::{Env, assert_same_tree, code, json, show, stderr, stdout};

/// A very common layout: `/var/exports -> /data/exports`. The backup follows the source
/// root and records it as the directory it points to (as `tar -h` does); every reader then
/// lists, restores, drills and deep-audits the snapshot.
#[test]
fn a_source_that_is_a_symlink_to_a_directory_is_restorable_everywhere() {
    let env = Env::new(&["tokyo", "osaka"]);
    let data = env.tree(
        "data/exports",
        &[
            ("customers.csv", b"id,name\n1,a\n"),
            ("db/crm.sql", b"create table t;\n"),
        ],
    );
    fs::create_dir(env.p("var")).unwrap();
    std::os::unix::fs::symlink(&data, env.p("var/exports")).unwrap();
    let src = env.p("var/exports");

    let report = env.backup_json(&[src.to_str().unwrap()]);
    assert_eq!(report["dirs"], 2, "the root is a directory: {report}");
    assert_eq!(report["symlinks"], 0, "{report}");

    let ls = json(&env.ok(&["ls", "latest", "--json"]));
    let root = ls
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "exports")
        .unwrap_or_else(|| panic!("no root entry: {ls}"));
    assert_eq!(root["type"], "dir", "{ls}");

    let target = env.p("restored");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_same_tree(&data, &target.join("exports"));
    env.ok(&["restore-drill", "--each-store"]);
    env.ok(&["audit", "--deep"]);
}

/// A root symlink to a file is followed too.
#[test]
fn a_source_that_is_a_symlink_to_a_file_stores_the_file() {
    let env = Env::new(&["tokyo"]);
    let data = env.tree("data", &[("crm.sql", b"dump\n")]);
    std::os::unix::fs::symlink(data.join("crm.sql"), env.p("latest.sql")).unwrap();
    env.ok(&["backup", env.p("latest.sql").to_str().unwrap()]);
    let target = env.p("restored");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(fs::read(target.join("latest.sql")).unwrap(), b"dump\n");
}

/// `--stdin-name` naming a path the walk also produced would make a manifest with a path
/// twice (which every reader refuses): refused before anything is read or written.
#[test]
fn a_stdin_name_that_collides_with_a_backed_up_path_is_refused() {
    let env = Env::new(&["tokyo"]);
    let src = env.tree("exports", &[("customers.csv", b"id\n1\n")]);
    for name in [
        "exports/customers.csv",
        "exports",
        "exports/customers.csv/x",
    ] {
        let out = env.run_stdin(
            &["backup", "--stdin-name", name, src.to_str().unwrap()],
            b"other\n",
        );
        assert_eq!(code(&out), 2, "{name}: {}", show(&out));
        assert!(stderr(&out).contains("collides with"), "{}", show(&out));
    }
    assert!(env.snapshot_ids().is_empty());
    // Inside a backed-up directory, a new name is fine.
    let out = env.run_stdin(
        &[
            "backup",
            "--stdin-name",
            "exports/crm.sql",
            src.to_str().unwrap(),
        ],
        b"dump\n",
    );
    assert_eq!(code(&out), 0, "{}", show(&out));
    let target = env.p("restored");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(fs::read(target.join("exports/crm.sql")).unwrap(), b"dump\n");
    let _ = stdout(&out);
}

/// The problems of an `audit --json` run, with the exit code.
fn audit(env: &Env, args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["audit", "--json"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    let text = stdout(&out);
    assert!(!text.is_empty(), "{}", show(&out));
    (code(&out), json(&text))
}

fn problems_about<'a>(report: &'a serde_json::Value, object: &str) -> Vec<&'a serde_json::Value> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["object"] == object)
        .collect()
}

/// A manifest intact as signed but refused by every reader (what the symlinked source root
/// produced): `audit --deep` must not advise deleting it — it is the snapshot's only index,
/// byte-identical in every store.
#[test]
fn audit_never_advises_deleting_the_only_intact_copy_of_a_refused_manifest() {
    use common::craft::{self, dir_entry, symlink_entry};
    let env = Env::new(&["tokyo", "osaka"]);
    let id = craft::snapshot(
        &env,
        &["tokyo", "osaka"],
        craft::Spec {
            entries: vec![
                symlink_entry(b"exports", b"/data/exports"),
                dir_entry(b"exports/db"),
            ],
            ..craft::Spec::default()
        },
    );
    let (rc, report) = audit(&env, &["--deep"]);
    assert_eq!(rc, 13, "{report}");
    let manifest = format!("manifests/{id}");
    let found = problems_about(&report, &manifest);
    assert_eq!(found.len(), 2, "one per store: {report}");
    for p in found {
        let hint = p["hint"].as_str().unwrap();
        assert!(
            hint.contains("do not delete") && hint.contains("match the signed hash"),
            "{p}"
        );
    }
}

/// A chunk damaged in one store only: the advice names the store with the intact copy;
/// damaged in both, nothing may be deleted.
#[test]
fn audit_advises_deleting_a_damaged_copy_only_beside_an_intact_one() {
    let env = Env::new(&["tokyo", "osaka"]);
    let src = env.tree(
        "exports",
        &[("calls.bin", &common::random_bytes(300_000, 4))],
    );
    env.ok(&["backup", src.to_str().unwrap()]);
    let chunk = common::files_under(&env.store("tokyo").join("chunks"))
        .pop()
        .unwrap();
    let rel = chunk.strip_prefix(env.store("tokyo")).unwrap().to_owned();
    let flip = |path: &std::path::Path| {
        let mut b = fs::read(path).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0x40;
        fs::write(path, b).unwrap();
    };
    flip(&chunk);
    let object = rel.to_str().unwrap();
    let (rc, report) = audit(&env, &["--read-data", "--deep"]);
    assert_eq!(rc, 13, "{report}");
    let found = problems_about(&report, object);
    assert!(!found.is_empty(), "{report}");
    for p in &found {
        assert_eq!(p["store"], "tokyo", "{p}");
        let hint = p["hint"].as_str().unwrap();
        assert!(hint.contains("store 'osaka' holds an intact copy"), "{p}");
    }

    flip(&env.store("osaka").join(&rel));
    let (rc, report) = audit(&env, &["--read-data"]);
    assert_eq!(rc, 13, "{report}");
    let found = problems_about(&report, object);
    assert_eq!(found.len(), 2, "{report}");
    for p in found {
        let hint = p["hint"].as_str().unwrap();
        assert!(
            hint.contains("do not delete") && !hint.contains("sync"),
            "{p}"
        );
    }
}

// ---- the backup reader against a local user racing it (engine level) ----

mod race {
    use std::fs;
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use snapdrill::backup::{self, BackupReport};
    use snapdrill::repository::{self, OpenMode, Repository};
    use snapdrill::restore::{self, RestoreOptions, StageClock};
    use snapdrill::store::StoreRef;
    use snapdrill::store::backend::{self, Location};
    use snapdrill::store::faults::{FaultPlan, FaultStore, Gate};

    /// Back up `src` into a memory store whose first chunk listing — after the walk, before
    /// any file is read — waits at a gate; `swap` runs there. Returns the report and the
    /// restored tree.
    pub(crate) async fn backup_with_swap(
        src: &Path,
        swap: impl FnOnce(),
        restored: &Path,
    ) -> BackupReport {
        let super::common::engine::Keys {
            ids,
            recipients,
            key,
        } = super::common::engine::keys();
        let id = format!("race-{}", rand_id());
        let plain = backend::open(
            "a",
            &Location::Memory(id),
            &Default::default(),
            Default::default(),
            false,
        )
        .unwrap();
        repository::init(std::slice::from_ref(&plain), &key, &recipients)
            .await
            .unwrap();
        let gate = Gate::new();
        let plan = FaultPlan {
            gate: Some(gate.clone()),
            only: vec!["list"],
            spare_prefixes: vec!["writers/", "snapshots/", "forgotten/", "config"],
            ..FaultPlan::default()
        };
        let store: StoreRef = Arc::new(FaultStore::new(plain.clone(), plan, 1));
        let repo = Repository::open(vec![store], key.signer(), OpenMode::All)
            .await
            .unwrap();
        let opts = super::common::engine::backup_options(vec![src.to_path_buf()], 1);
        let (report, ()) = tokio::join!(
            async {
                // A FIFO swapped in would block an open forever: the run has a deadline.
                tokio::time::timeout(
                    Duration::from_secs(120),
                    backup::run(&repo, &key, recipients.clone(), &opts, &|_| {}),
                )
                .await
                .expect("the backup hung")
                .unwrap()
            },
            async {
                let deadline = std::time::Instant::now() + Duration::from_secs(60);
                while gate.waiting() == 0 {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the backup never listed"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                swap();
                gate.open();
            }
        );
        let repo = Repository::open(vec![plain], key.signer(), OpenMode::All)
            .await
            .unwrap();
        let list = repo.snapshots().await.unwrap();
        let opened = restore::open_snapshot(&repo, list.trusted[0].commit.clone(), ids.clone())
            .await
            .unwrap();
        let ropts = RestoreOptions::new(restored.to_path_buf());
        restore::run(&repo, opened, ids, &ropts, Arc::new(StageClock::default()))
            .await
            .unwrap();
        report
    }

    fn rand_id() -> String {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        format!("{}-{}", std::process::id(), t.as_nanos())
    }

    /// Every byte of every file under `dir`.
    pub(crate) fn all_bytes(dir: &Path) -> Vec<u8> {
        let mut all = Vec::new();
        for f in super::common::files_under(dir) {
            all.extend(fs::read(f).unwrap());
        }
        all
    }
}

/// A user who owns a directory inside the exports swaps it for a symlink to a root-only
/// folder after the walk: the backup (as root) must not read through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_swapped_for_a_symlink_after_the_walk_is_not_read_through() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("exports");
    fs::create_dir_all(src.join("user")).unwrap();
    fs::write(src.join("user/report.csv"), b"decoy,0644\n").unwrap();
    fs::write(src.join("customers.csv"), b"id\n1\n").unwrap();
    let secret_dir = dir.path().join("root-only");
    fs::create_dir(&secret_dir).unwrap();
    fs::write(secret_dir.join("report.csv"), b"SECRET shadow line\n").unwrap();
    let restored = dir.path().join("restored");
    let report = race::backup_with_swap(
        &src,
        || {
            fs::rename(src.join("user"), dir.path().join("user.moved")).unwrap();
            std::os::unix::fs::symlink(&secret_dir, src.join("user")).unwrap();
        },
        &restored,
    )
    .await;
    assert_eq!(report.exit_code(), 3, "{report:?}");
    assert!(
        report
            .skipped
            .iter()
            .any(|s| s.path.ends_with("exports/user/report.csv")),
        "{:?}",
        report.skipped
    );
    let all = race::all_bytes(&restored);
    assert!(
        !all.windows(6).any(|w| w == b"SECRET"),
        "a file from outside the sources was stored"
    );
    assert_eq!(
        fs::read(restored.join("exports/customers.csv")).unwrap(),
        b"id\n1\n"
    );
}

/// A FIFO swapped in for a source file after the walk: skipped with a warning, and the
/// backup ends (it used to block in open(2) forever, holding the cron lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_swapped_in_for_a_source_file_is_skipped_and_the_backup_ends() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("exports");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.csv"), b"a\n").unwrap();
    fs::write(src.join("b.csv"), b"b\n").unwrap();
    let restored = dir.path().join("restored");
    let report = race::backup_with_swap(
        &src,
        || {
            fs::remove_file(src.join("a.csv")).unwrap();
            let status = std::process::Command::new("mkfifo")
                .arg(src.join("a.csv"))
                .status()
                .unwrap();
            assert!(status.success());
        },
        &restored,
    )
    .await;
    assert_eq!(report.exit_code(), 3, "{report:?}");
    let skipped = &report.skipped;
    assert!(
        skipped
            .iter()
            .any(|s| s.path.ends_with("exports/a.csv") && s.reason.contains("FIFO")),
        "{skipped:?}"
    );
    assert_eq!(fs::read(restored.join("exports/b.csv")).unwrap(), b"b\n");
    assert!(!restored.join("exports/a.csv").exists());
}

/// A file that changes while it is read, every time (like a log being appended to, or a
/// /proc file whose length is unknown until read): stored as read, flagged, exit 3 naming
/// it; `changed_while_read = "fail"` writes no snapshot (exit 1).
#[test]
fn a_file_that_keeps_changing_while_read_is_flagged_or_fails_the_job() {
    let env = Env::new(&["tokyo"]);
    // /proc/loadavg: a regular file whose size says 0 and whose reads give a line: every
    // reading disagrees with its own fstat, deterministically.
    let out = env.run(&["backup", "/proc/loadavg"]);
    assert_eq!(code(&out), 3, "{}", show(&out));
    assert!(
        stderr(&out).contains("loadavg changed while it was read"),
        "{}",
        show(&out)
    );
    let ls = json(&env.ok(&["ls", "latest", "--json"]));
    assert_eq!(ls[0]["changed"], true, "{ls}");

    let mut text = fs::read_to_string(env.config()).unwrap();
    text.push_str("\n[backup]\nchanged_while_read = \"fail\"\n");
    fs::write(env.config(), text).unwrap();
    let before = env.snapshot_ids();
    let out = env.run(&["backup", "/proc/loadavg"]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    assert!(
        stderr(&out).contains("no snapshot was written"),
        "{}",
        show(&out)
    );
    assert_eq!(env.snapshot_ids(), before);
}

// ---- local users on the restore host: drills, restores, signals ----

/// Wait for `path` to exist (observable state), with a deadline.
fn wait_for(path: &std::path::Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// A gated validation command: records the drill folder and its mode, then waits for `go`.
fn gated_check(env: &Env) -> String {
    format!(
        "echo \"$SNAPDRILL_DRILL_DIR\" > '{dir}'; stat -c %a \"$SNAPDRILL_DRILL_DIR\" > '{mode}'; \
         touch '{started}'; i=0; while [ ! -e '{go}' ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done",
        dir = env.p("drill-dir").display(),
        mode = env.p("drill-mode").display(),
        started = env.p("started").display(),
        go = env.p("go").display(),
    )
}

/// The drill's clean room holds customers' data: it is private (0700 whatever the umask),
/// removed when the drill is stopped by SIGTERM (exit 143), and — when a drill was killed
/// outright — removed by the next drill.
#[test]
fn a_drill_folder_is_private_and_never_outlives_its_drill() {
    let env = Env::new(&["tokyo"]);
    let src = env.tree("exports", &[("customers.csv", b"id\n1\n")]);
    env.ok(&["backup", src.to_str().unwrap()]);
    let check = gated_check(&env);

    let mut drill = env.cmd(&["restore-drill", "--check", &check]);
    drill
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = drill.spawn().unwrap();
    wait_for(&env.p("started"));
    assert_eq!(
        fs::read_to_string(env.p("drill-mode")).unwrap().trim(),
        "700"
    );
    let dir = std::path::PathBuf::from(fs::read_to_string(env.p("drill-dir")).unwrap().trim());
    assert!(dir.join("exports/customers.csv").exists());
    signal(child.id(), "TERM");
    // Waits for the process only: its validation command lives on until `go`.
    let status = child.wait().unwrap();
    fs::write(env.p("go"), b"").unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert!(
        !dir.exists(),
        "the clean room outlived its drill: {}",
        dir.display()
    );

    // Killed outright: nothing can clean up, so the next drill does.
    fs::remove_file(env.p("go")).unwrap();
    fs::remove_file(env.p("started")).unwrap();
    let mut drill = env.cmd(&["restore-drill", "--check", &check]);
    drill
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = drill.spawn().unwrap();
    wait_for(&env.p("started"));
    let dir = std::path::PathBuf::from(fs::read_to_string(env.p("drill-dir")).unwrap().trim());
    child.kill().unwrap();
    child.wait().unwrap();
    fs::write(env.p("go"), b"").unwrap();
    assert!(dir.exists());
    // Older than a live drill's unlocked moment: a dead drill's.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    filetime::set_file_mtime(&dir, filetime::FileTime::from_system_time(old)).unwrap();
    let out = env.run(&["restore-drill"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(!dir.exists(), "the dead drill's folder was not swept");
    assert!(
        stderr(&out).contains("left by a drill that did not finish"),
        "{}",
        show(&out)
    );
}

/// Files of an interrupted restore: SIGTERM removes the temp files (complete plaintext) and
/// exits 143; after a SIGKILL, the next `restore --force` removes them.
#[test]
fn an_interrupted_restore_leaves_no_temp_file() {
    let env = Env::new(&["tokyo"]);
    let src = env.tree(
        "exports",
        &[
            ("a.bin", &common::random_bytes(40_000_000, 1)),
            ("b.bin", &common::random_bytes(40_000_000, 2)),
        ],
    );
    env.ok(&["backup", src.to_str().unwrap()]);
    let temps = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        common::files_under(dir)
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".snapdrill-")
            })
            .collect()
    };
    // Start a restore and freeze it (SIGSTOP) while a temp file exists.
    #[allow(
        clippy::zombie_processes,
        reason = "the caller waits for the child it gets"
    )]
    let frozen = |target: &std::path::Path| -> std::process::Child {
        let mut c = env.cmd(&["restore", "latest", "--target", target.to_str().unwrap()]);
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let child = c.spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "no temp file ever seen"
            );
            if target.exists() && !temps(target).is_empty() {
                signal(child.id(), "STOP");
                if !temps(target).is_empty() {
                    return child;
                }
                signal(child.id(), "CONT");
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    };
    let target = env.p("restored");
    let child = frozen(&target);
    signal(child.id(), "TERM");
    signal(child.id(), "CONT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 143, "{}", show(&out));
    assert!(temps(&target).is_empty(), "{:?}", temps(&target));

    let target = env.p("restored-2");
    let mut child = frozen(&target);
    child.kill().unwrap(); // SIGKILL: nothing can clean up
    signal(child.id(), "CONT");
    child.wait().unwrap();
    assert!(!temps(&target).is_empty());
    let out = env.run(&[
        "restore",
        "latest",
        "--force",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(temps(&target).is_empty(), "{:?}", temps(&target));
    assert!(
        stderr(&out).contains("interrupted restore"),
        "{}",
        show(&out)
    );
    assert_same_tree(&src, &target.join("exports"));
}

/// A drill run by a user who is not root, of a snapshot holding read-only (0555)
/// directories: its clean room must still be removed, and a cleanup problem is never an
/// integrity verdict.
#[test]
fn a_read_only_directory_does_not_break_a_drill_by_an_ordinary_user() {
    let env = Env::new(&["tokyo"]);
    let src = env.tree("exports", &[("ro/customers.csv", b"id\n1\n")]);
    common::set_mode(&src.join("ro"), 0o555);
    env.ok(&["backup", src.to_str().unwrap()]);
    common::set_mode(&src.join("ro"), 0o755);
    let as_nobody = rustix_is_root();
    if as_nobody {
        // Root may remove anything: drop to `nobody`, owning the test's files.
        let ok = std::process::Command::new("chown")
            .args(["-R", "65534:65534", env.path().to_str().unwrap()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        common::set_mode(env.path(), 0o755);
    }
    let tmp = env.p("tmp");
    fs::create_dir(&tmp).unwrap();
    if as_nobody {
        std::process::Command::new("chown")
            .args(["65534:65534", tmp.to_str().unwrap()])
            .status()
            .unwrap();
    }
    let mut cmd = if as_nobody {
        let mut c = std::process::Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            common::BIN,
        ]);
        c
    } else {
        std::process::Command::new(common::BIN)
    };
    let out = cmd
        .arg("--config")
        .arg(env.config())
        .args(["restore-drill", "--json"])
        .current_dir(env.path())
        .env("HOME", env.path())
        .env("TMPDIR", &tmp)
        .env_remove("SNAPDRILL_CONFIG")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", show(&out));
    let left: Vec<_> = fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "the clean room was left behind: {left:?}");
}

fn rustix_is_root() -> bool {
    // `id -u` keeps the test free of an extra dependency.
    let out = std::process::Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// A local user who can write to the restore target swaps a directory the restore created
/// for a symlink to a folder of their choice, before the files are written: the restore
/// (as root) must fail rather than write the snapshot's files through the link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_swapped_for_a_symlink_during_a_restore_is_never_written_through() {
    use snapdrill::backup;
    use snapdrill::repository::{self, OpenMode, Repository};
    use snapdrill::restore::{self, RestoreOptions, StageClock};
    use snapdrill::store::StoreRef;
    use snapdrill::store::faults::{FaultPlan, FaultStore, Gate};
    use std::sync::Arc;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("exports");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("sub/customers.csv"), b"id,name\n1,a\n").unwrap();
    let common::engine::Keys {
        ids,
        recipients,
        key,
    } = common::engine::keys();
    let plain = common::engine::local("a", &dir.path().join("store"));
    repository::init(std::slice::from_ref(&plain), &key, &recipients)
        .await
        .unwrap();
    let repo = Repository::open(vec![plain.clone()], key.signer(), OpenMode::All)
        .await
        .unwrap();
    let opts = common::engine::backup_options(vec![src.clone()], 1);
    backup::run(&repo, &key, recipients, &opts, &|_| {})
        .await
        .unwrap();

    // Chunks are fetched only after every directory was made: hold the first there.
    let gate = Gate::new();
    let plan = FaultPlan {
        gate: Some(gate.clone()),
        only: vec!["get"],
        spare_prefixes: vec!["config", "snapshots/", "lists/", "manifests/"],
        ..FaultPlan::default()
    };
    let store: StoreRef = Arc::new(FaultStore::new(plain, plan, 1));
    let repo = Repository::open(vec![store], key.signer(), OpenMode::All)
        .await
        .unwrap();
    let list = repo.snapshots().await.unwrap();
    let opened = restore::open_snapshot(&repo, list.trusted[0].commit.clone(), ids.clone())
        .await
        .unwrap();
    let target = dir.path().join("target");
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let ropts = RestoreOptions::new(target.clone());
    let (result, ()) = tokio::join!(
        restore::run(&repo, opened, ids, &ropts, Arc::new(StageClock::default())),
        async {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while gate.waiting() == 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the restore never fetched"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            fs::rename(target.join("exports/sub"), dir.path().join("moved")).unwrap();
            std::os::unix::fs::symlink(&elsewhere, target.join("exports/sub")).unwrap();
            gate.open();
        }
    );
    let err = result.expect_err("the restore wrote through a swapped directory");
    assert!(
        err.to_string().contains("refusing to restore through"),
        "{err}"
    );
    assert!(
        common::files_under(&elsewhere).is_empty(),
        "written outside the target: {:?}",
        common::files_under(&elsewhere)
    );
}

/// `init` pins the signer by rewriting the config: a 0600 config stays 0600 (it is not
/// made world-readable) and a symlink planted where a temp file used to go is not followed.
#[test]
fn init_keeps_the_configs_mode_and_never_follows_a_planted_symlink() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::with(&["tokyo"], &[], false);
    common::set_mode(&env.config(), 0o600);
    let victim = env.p("victim");
    fs::write(&victim, b"untouched").unwrap();
    std::os::unix::fs::symlink(&victim, env.p("snapdrill.toml.snapdrill-tmp")).unwrap();
    env.ok(&["init", "--create"]);
    let text = fs::read_to_string(env.config()).unwrap();
    assert!(text.contains("signer = \"ed25519:"), "{text}");
    assert_eq!(fs::metadata(env.config()).unwrap().mode() & 0o777, 0o600);
    assert_eq!(fs::read(&victim).unwrap(), b"untouched");
}

/// Two `[[store]]` entries for one place count as two replicas and defeat `require`:
/// refused by `config check`, `init` and `backup` (exit 2), naming both.
#[test]
fn two_stores_that_are_one_place_are_refused() {
    let env = Env::new(&["store1"]);
    let mut text = fs::read_to_string(env.config()).unwrap();
    text.push_str("\n[[store]]\nname = \"again\"\nurl = \"./stores/store1/\"\nsite = \"b\"\n");
    fs::write(env.config(), &text).unwrap();
    let src = env.tree("exports", &[("a.csv", b"a\n")]);
    for args in [
        vec!["config", "check"],
        vec!["init"],
        vec!["backup", src.to_str().unwrap()],
    ] {
        let out = env.run(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", show(&out));
        let err = stderr(&out);
        assert!(
            err.contains("stores 'store1' and 'again' are the same place"),
            "{args:?}: {err}"
        );
    }
}

/// A forged commit (signed with the real write key) whose time is unreadable, from the year
/// 9999, or not its id's time: untrusted, never `latest`, and a drill's RPO comes from the
/// real newest snapshot.
#[test]
fn a_commit_time_that_is_unreadable_or_in_the_future_is_untrusted() {
    use common::craft::{self, file_entry};
    let env = Env::new(&["tokyo"]);
    let src = env.tree("exports", &[("customers.csv", b"id\n1\n")]);
    env.ok(&["backup", src.to_str().unwrap()]);
    let real = env.snapshot_ids();
    let content = b"forged\n";
    let forge = |time: &str, id: &str| {
        craft::snapshot(
            &env,
            &["tokyo"],
            craft::Spec {
                stream: content.to_vec(),
                entries: vec![file_entry(b"forged.txt", content, 0)],
                time: Some(time.into()),
                snapshot_id: Some(id.into()),
                ..craft::Spec::default()
            },
        )
    };
    forge("zzzz", "20261201T000000Z-0000000a");
    forge("9999-12-31T00:00:00Z", "99991231T000000Z-0000000b");
    forge("2026-01-01T00:00:00Z", "20261201T000001Z-0000000c");
    let out = env.run(&["snapshots"]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    let err = format!("{}{}", stdout(&out), stderr(&out));
    for why in ["unreadable time", "in the future", "not the time its id"] {
        assert!(err.contains(why), "{why}: {err}");
    }
    let listed = json(&stdout(&env.run(&["snapshots", "--json"])));
    let ids: Vec<&str> = listed["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, real, "{listed}");
    let target = env.p("restored");
    let out = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(target.join("exports/customers.csv").exists());
    let out = env.run(&["restore-drill", "--json", "--rpo", "1h"]);
    let rec = &json(&stdout(&out))[0];
    assert_eq!(rec["snapshot_id"].as_str(), Some(real[0].as_str()), "{rec}");
    assert!(rec["rpo_secs"].as_f64().unwrap() < 3600.0, "{rec}");
}

/// Paths, hosts and tags from a hostile manifest or commit reach no terminal raw: a newline
/// cannot forge a listing line, an escape sequence is printed as text. Far-future and
/// pre-1970 modification times are shown, flagged, without a panic.
#[test]
fn hostile_names_and_times_are_escaped_and_never_panic() {
    use common::craft::{self, file_entry, symlink_entry};
    let env = Env::new(&["tokyo"]);
    let content = b"x\n";
    let mut far = file_entry(b"far-future.csv", content, 0);
    far.mtime = i64::MAX;
    let mut early = file_entry(b"before-1970.csv", content, 2);
    // The oldest time there is: found by the property test (a negation overflowed).
    early.mtime = i64::MIN;
    let forged = file_entry(
        b"a\n-rwxr-xr-x  999 2026-01-01T00:00:00Z forged",
        content,
        4,
    );
    let esc = file_entry(b"\x1b]0;pwned\x07\x1b[2Jtitle", content, 6);
    let id = craft::snapshot(
        &env,
        &["tokyo"],
        craft::Spec {
            stream: content.repeat(4),
            entries: vec![
                far,
                early,
                forged,
                esc,
                symlink_entry(b"link", b"\x1b[31mred"),
            ],
            host: Some("host\nforged-host\x1b[0m".into()),
            tags: vec!["tag\x1b[1m".into()],
            ..craft::Spec::default()
        },
    );
    let out = env.run(&["ls", &id]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let text = stdout(&out);
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
    assert_eq!(text.lines().count(), 5, "one line per entry: {text}");
    assert!(text.contains("a\\x0a-rwxr-xr-x"), "{text}");
    assert!(
        text.contains(&format!("@{} (out of range)", i64::MAX)),
        "{text}"
    );
    assert!(
        text.contains(&format!("@{} (out of range)", i64::MIN)),
        "{text}"
    );

    let out = env.run(&["snapshots"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let text = stdout(&out);
    assert!(!text.contains('\x1b'), "{text:?}");
    assert!(text.contains("host\\x0aforged-host"), "{text}");
    // JSON stays exact.
    let listed = json(&env.ok(&["snapshots", "--json"]));
    assert_eq!(listed["snapshots"][0]["host"], "host\nforged-host\x1b[0m");
    // A restore of the same snapshot places every file, whatever its times.
    let target = env.p("restored");
    let out = env.run(&["restore", &id, "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(fs::read(target.join("far-future.csv")).unwrap(), content);
}

/// Peak RSS (KiB) and output of a snapdrill command under GNU time.
fn measured(env: &Env, args: &[&str]) -> (i32, u64, String) {
    let rss = env.p("rss.txt");
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o", rss.to_str().unwrap(), common::BIN])
        .arg("--config")
        .arg(env.config())
        .args(args)
        .current_dir(env.path())
        .env("HOME", env.path())
        .env_remove("SNAPDRILL_CONFIG")
        .output()
        .unwrap();
    let text = fs::read_to_string(&rss).unwrap();
    let kib = text.lines().last().unwrap().trim().parse().unwrap();
    (code(&out), kib, stderr(&out))
}

/// A small sealed manifest of millions of tiny entries, signed with the write key: readers
/// refuse it within a fixed memory budget — at the second entry when they repeat, at the
/// budget (512 MiB of entries) when they do not — instead of using gigabytes per store.
#[test]
fn a_manifest_entry_bomb_stays_within_the_readers_memory_budget() {
    use common::craft;
    common::require_tool("/usr/bin/time", "time");
    let env = Env::new(&["tokyo"]);
    let entry = br#"{"path":"a","type":"dir","mode":0,"mtime":0,"mtime_ns":0},"#;
    let mut json = br#"{"format":"snapdrill-manifest","version":1,"repository_id":"R","snapshot_id":"S","time":"T","sources":[],"chunks":[],"entries":["#.to_vec();
    let n = 4_000_000;
    json.reserve(entry.len() * n);
    for _ in 0..n {
        json.extend_from_slice(entry);
    }
    json.pop();
    json.extend_from_slice(b"]}");
    let key = snapdrill::keys::WriteKey::load(&env.write_key()).unwrap();
    let fix = |json: Vec<u8>, id: &str| {
        let text = String::from_utf8(json).unwrap();
        text.replacen("\"R\"", &format!("\"{}\"", key.repository_id), 1)
            .replacen("\"S\"", &format!("\"{id}\""), 1)
            .into_bytes()
    };
    let id = snapdrill::format::new_snapshot_id(std::time::SystemTime::now());
    let sealed_id = craft::snapshot(
        &env,
        &["tokyo"],
        craft::Spec {
            snapshot_id: Some(id.clone()),
            raw_manifest: Some(fix(json, &id)),
            ..craft::Spec::default()
        },
    );
    let manifest = env.store("tokyo").join(format!("manifests/{sealed_id}"));
    assert!(
        fs::metadata(&manifest).unwrap().len() < 200_000,
        "the bomb is small"
    );
    for args in [
        vec!["ls", sealed_id.as_str()],
        vec!["restore-drill", "--snapshot", sealed_id.as_str()],
    ] {
        let (rc, kib, err) = measured(&env, &args);
        assert_eq!(rc, 13, "{args:?}: {err}");
        assert!(err.contains("appears twice"), "{args:?}: {err}");
        eprintln!(
            "{args:?} on 4M identical entries: peak RSS {} MiB",
            kib / 1024
        );
        assert!(kib < 128 * 1024, "{args:?} peaked at {} MiB", kib / 1024);
    }

    // Unique names: the parse stops at the budget.
    let mut json = br#"{"format":"snapdrill-manifest","version":1,"repository_id":"R","snapshot_id":"S","time":"T","sources":[],"chunks":[],"entries":["#.to_vec();
    for i in 0..3_500_000u32 {
        json.extend_from_slice(
            format!(r#"{{"path":"{i:x}","type":"dir","mode":0,"mtime":0,"mtime_ns":0}},"#)
                .as_bytes(),
        );
    }
    json.pop();
    json.extend_from_slice(b"]}");
    let id = snapdrill::format::new_snapshot_id(
        std::time::SystemTime::now() + std::time::Duration::from_secs(1),
    );
    let id = craft::snapshot(
        &env,
        &["tokyo"],
        craft::Spec {
            snapshot_id: Some(id.clone()),
            raw_manifest: Some(fix(json, &id)),
            ..craft::Spec::default()
        },
    );
    let (rc, kib, err) = measured(&env, &["ls", &id]);
    assert_eq!(rc, 13, "{err}");
    assert!(err.contains("more entries than a reader holds"), "{err}");
    eprintln!("ls on 3.5M unique entries: peak RSS {} MiB", kib / 1024);
    assert!(kib < 600 * 1024, "peaked at {} MiB", kib / 1024);
}

/// One store whose listing fails — an object name with a control character in a file://
/// store, or a listing denied — is left out with a warning; every command goes on with the
/// other store, which holds every snapshot intact.
#[test]
fn one_store_that_cannot_be_listed_does_not_block_the_others() {
    let env = Env::new(&["a", "b"]);
    let src = env.tree("exports", &[("customers.csv", b"id\n1\n")]);
    env.ok(&["backup", src.to_str().unwrap()]);
    fs::write(env.store("a").join("snapshots/bad\x01name"), b"x").unwrap();
    let out = env.run(&["snapshots"]);
    assert_eq!(code(&out), 3, "{}", show(&out));
    assert!(
        stderr(&out).contains("store 'a' could not be listed"),
        "{}",
        show(&out)
    );
    assert_eq!(
        stdout(&out).lines().filter(|l| l.contains("Z-")).count(),
        1,
        "{}",
        show(&out)
    );
    let target = env.p("restored");
    let out = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_same_tree(&src, &target.join("exports"));
    let out = env.run(&["ls", "latest"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    fs::write(src.join("more.csv"), b"id\n2\n").unwrap();
    let out = env.run(&["backup", src.to_str().unwrap()]);
    assert!(matches!(code(&out), 0 | 3), "{}", show(&out));
    let out = env.run(&["restore-drill", "--store", "b"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
}

/// Run a snapdrill command that must end within `secs` (kill it and fail otherwise).
fn run_within(env: &Env, args: &[&str], secs: u64) -> std::process::Output {
    let mut c = env.cmd(args);
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{args:?} did not end within {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A FIFO planted under a chunk's name in a file:// store is a corrupt object: read from
/// the other store, reported by an audit — and no process hangs in open(2).
#[test]
fn a_fifo_planted_as_an_object_is_corrupt_and_never_hangs_a_reader() {
    let env = Env::new(&["a", "b"]);
    let src = env.tree(
        "exports",
        &[("calls.bin", &common::random_bytes(200_000, 9))],
    );
    env.ok(&["backup", src.to_str().unwrap()]);
    let chunk = common::files_under(&env.store("a").join("chunks"))
        .pop()
        .unwrap();
    fs::remove_file(&chunk).unwrap();
    let ok = std::process::Command::new("mkfifo")
        .arg(&chunk)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let target = env.p("restored");
    let out = run_within(
        &env,
        &["restore", "latest", "--target", target.to_str().unwrap()],
        60,
    );
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        stderr(&out).contains("store 'a' could not serve"),
        "{}",
        show(&out)
    );
    assert_same_tree(&src, &target.join("exports"));
    let out = run_within(&env, &["audit", "--read-data"], 60);
    assert_eq!(code(&out), 13, "{}", show(&out));
    let out = run_within(&env, &["restore-drill", "--store", "a"], 60);
    assert_eq!(code(&out), 13, "{}", show(&out));
}

/// Credentials in an endpoint URL (`options.endpoint` or `$AWS_ENDPOINT`) never appear in
/// any output channel: text, JSON, HTML, Markdown, metrics — on success and on failure.
#[test]
fn credentials_in_endpoint_urls_reach_no_output() {
    use common::servers::Server;
    let s3 = Server::start("moto");
    let endpoint = s3.get("ENDPOINT").to_owned();
    let with_userinfo =
        |user: &str, pass: &str| endpoint.replacen("://", &format!("://{user}:{pass}@"), 1);
    let canaries = [
        "CANARYUSER71",
        "CANARY-PASS-7f3a",
        "ENVUSER93",
        "ENV-CANARY-PASS-2b",
    ];
    let opt = format!(
        "[[store]]\nname = \"s3\"\nurl = \"s3://{}/opt\"\nsite = \"b\"\nretries = 0\ntimeout = \"5s\"\n\
         options = {{ endpoint = \"{}\", region = \"{}\", allow_http = \"true\" }}\n",
        s3.get("BUCKET"),
        with_userinfo(canaries[0], canaries[1]),
        s3.get("REGION")
    );
    let env_store = format!(
        "[[store]]\nname = \"s3env\"\nurl = \"s3://{}/env\"\nsite = \"c\"\nretries = 0\ntimeout = \"5s\"\n\
         options = {{ region = \"{}\", allow_http = \"true\" }}\n",
        s3.get("BUCKET"),
        s3.get("REGION")
    );
    let missing = format!(
        "[[store]]\nname = \"gone\"\nurl = \"s3://no-such-bucket-x/p\"\nsite = \"d\"\nretries = 0\ntimeout = \"5s\"\n\
         options = {{ endpoint = \"{}\", region = \"{}\", allow_http = \"true\" }}\n",
        with_userinfo(canaries[0], canaries[1]),
        s3.get("REGION")
    );
    let local = "[[store]]\nname = \"local\"\nurl = \"stores/local\"\nsite = \"a\"\n";
    let mut creds = s3.credentials();
    creds.push((
        "AWS_ENDPOINT".into(),
        with_userinfo(canaries[2], canaries[3]),
    ));
    let env = Env::with_stores_toml(&format!("{local}\n{opt}\n{env_store}"), creds, true);
    let src = env.tree("exports", &[("customers.csv", b"id\n1\n")]);
    let mut seen = String::new();
    let mut run = |args: &[&str]| {
        let out = env.run(args);
        seen.push_str(&format!("{args:?}\n{}\n{}\n", stdout(&out), stderr(&out)));
    };
    run(&["config", "check"]);
    run(&["backup", "--json", src.to_str().unwrap()]);
    run(&["backup", src.to_str().unwrap()]);
    run(&["snapshots", "--json"]);
    run(&["snapshots"]);
    let (html, md, prom) = (env.p("r.html"), env.p("r.md"), env.p("r.prom"));
    run(&[
        "restore-drill",
        "--each-store",
        "--json",
        "--report",
        html.to_str().unwrap(),
        "--report",
        md.to_str().unwrap(),
        "--metrics-file",
        prom.to_str().unwrap(),
    ]);
    let (amd, aprom) = (env.p("a.md"), env.p("a.prom"));
    run(&[
        "audit",
        "--json",
        "--read-data",
        "--report",
        amd.to_str().unwrap(),
        "--metrics-file",
        aprom.to_str().unwrap(),
    ]);
    run(&["sync", "--json"]);
    // The same commands with a store that fails (a bucket that does not exist).
    let failing = env.config_with_only("failing.toml", &format!("{local}\n{missing}"));
    for args in [
        vec!["init"],
        vec!["backup", src.to_str().unwrap()],
        vec!["audit"],
        vec!["restore-drill", "--store", "gone"],
        vec!["config", "check"],
    ] {
        let out = env.cmd_with(&failing, &args).output().unwrap();
        seen.push_str(&format!("{args:?}\n{}\n{}\n", stdout(&out), stderr(&out)));
    }
    for f in [&html, &md, &prom, &amd, &aprom] {
        seen.push_str(&fs::read_to_string(f).unwrap_or_default());
    }
    assert!(
        seen.contains("s3env") && seen.contains("gone"),
        "the stores were used: {seen}"
    );
    for c in canaries {
        assert!(!seen.contains(c), "{c} leaked:\n{seen}");
    }
}

/// A lease planted with an absurd TTL (anyone who can create objects can plant one) is
/// honoured for at most `[prune] max_lease_ttl` (24 h); an operator can break a lease now.
#[test]
fn a_lease_claiming_forever_is_capped_and_can_be_broken() {
    let env = Env::new(&["a"]);
    let src = env.tree("exports", &[("customers.csv", b"id\n1\n")]);
    env.ok(&["backup", src.to_str().unwrap()]);
    let lease = env.store("a").join("locks/prune");
    let plant = || {
        fs::create_dir_all(lease.parent().unwrap()).unwrap();
        fs::write(
            &lease,
            format!(
                r#"{{"host":"evil","pid":66,"nonce":"n","started":"2026-01-01T00:00:00Z","ttl_secs":{}}}"#,
                u64::MAX
            ),
        )
        .unwrap();
    };
    plant();
    let out = env.run(&["prune"]);
    assert_eq!(code(&out), 11, "{}", show(&out));
    assert!(
        stderr(&out).contains("prune --break-lease"),
        "{}",
        show(&out)
    );
    // 25 hours old by the store's clock: past the cap, whatever it claims.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(25 * 3600);
    filetime::set_file_mtime(&lease, filetime::FileTime::from_system_time(old)).unwrap();
    let out = env.run(&["prune", "--json"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        stdout(&out).contains("evil"),
        "the broken lease is reported: {}",
        show(&out)
    );
    // A young one, broken by the operator.
    plant();
    let out = env.run(&["prune", "--break-lease"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        stdout(&out).contains("broke the prune lease held by host evil pid 66"),
        "{}",
        show(&out)
    );
    assert!(!lease.exists());
    env.ok(&["prune"]);
}

/// Drill records planted by someone without the identity — one stuffed with thousands of
/// X25519 stanzas (anyone with the public recipient can make one) — are refused before any
/// decryption: by the MAC in the record's name, or (records named the old way) by the
/// number of stanzas in the header.
#[test]
fn planted_drill_records_are_refused_before_any_decryption() {
    use std::io::Write;
    let env = Env::new(&["tokyo"]);
    let src = env.tree("exports", &[("customers.csv", b"id\n1\n")]);
    env.ok(&["backup", src.to_str().unwrap()]);
    env.ok(&["restore-drill"]);
    let mut recipients: Vec<Box<dyn age::Recipient + Send>> = Vec::new();
    for _ in 0..2000 {
        recipients.push(Box::new(age::x25519::Identity::generate().to_public()));
    }
    let ours: age::x25519::Recipient = env.recipient.parse().unwrap();
    recipients.push(Box::new(ours));
    let enc = age::Encryptor::with_recipients(
        recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient),
    )
    .unwrap();
    let mut stuffed = Vec::new();
    let mut w = enc.wrap_output(&mut stuffed).unwrap();
    w.write_all(b"{}").unwrap();
    w.finish().unwrap();
    let drills = env.store("tokyo").join("drills");
    let id = "20261201T000000Z-deadbeef";
    fs::write(drills.join(id), &stuffed).unwrap();
    fs::write(
        drills.join(format!("20261201T000001Z-deadbeef.{}", "ab".repeat(32))),
        &stuffed,
    )
    .unwrap();
    let out = env.run(&["drills"]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    let err = stderr(&out);
    assert!(err.contains("recipient stanzas"), "{err}");
    assert!(err.contains("do not match the MAC in its name"), "{err}");
    assert_eq!(
        stdout(&out).lines().filter(|l| l.contains("PASS")).count(),
        1,
        "{}",
        show(&out)
    );
}

/// A compromised backup host holds the write key, so it can sign a tombstone for every
/// snapshot. The prune host's floors stand: a prune that would delete most snapshots
/// deletes nothing without `--yes`; with it, the newest snapshot of each data set is kept;
/// an audit raises the alarm; deleting the forged tombstones brings the snapshot back.
#[test]
fn a_compromised_backup_host_cannot_make_prune_delete_everything() {
    let env = Env::new(&["a", "b"]);
    let src = env.p("exports");
    let mut trees = Vec::new();
    for round in 0..3u64 {
        common::write_tree(
            &src,
            &[("calls.bin", &common::random_bytes(300_000, 40 + round))],
        );
        env.ok(&["backup", src.to_str().unwrap()]);
        trees.push(fs::read(src.join("calls.bin")).unwrap());
    }
    let ids = env.snapshot_ids();
    // The attacker forgets everything, by id.
    let mut args = vec!["forget"];
    args.extend(ids.iter().map(String::as_str));
    env.ok(&args);
    assert!(env.snapshot_ids().is_empty());
    let commits = |store: &str| common::files_under(&env.store(store).join("snapshots")).len();

    let out = env.run(&["prune", "--grace", "0s"]);
    assert_eq!(code(&out), 1, "{}", show(&out));
    // The newest is kept whatever happens; the other two are still too many.
    assert!(
        stderr(&out).contains("would delete 2 of 3 snapshots"),
        "{}",
        show(&out)
    );
    assert_eq!(
        (commits("a"), commits("b")),
        (3, 3),
        "nothing may be deleted"
    );

    let (rc, report) = audit(&env, &[]);
    assert_eq!(rc, 13, "{report}");
    let kinds: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"newest_forgotten"), "{report}");
    assert!(
        report["warnings"].to_string().contains("mass_forget"),
        "{report}"
    );

    let out = env.run(&["prune", "--grace", "0s", "--yes"]);
    assert_eq!(code(&out), 3, "{}", show(&out));
    assert!(
        stderr(&out).contains(&format!("kept snapshot {}", ids[2])),
        "{}",
        show(&out)
    );
    assert_eq!(
        (commits("a"), commits("b")),
        (1, 1),
        "the newest stays, the others go"
    );

    // Recovery: delete the forged tombstone of the newest snapshot everywhere.
    for s in ["a", "b"] {
        fs::remove_file(env.store(s).join("forgotten").join(&ids[2])).unwrap();
    }
    assert_eq!(env.snapshot_ids(), [ids[2].clone()]);
    let target = env.p("restored");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(
        fs::read(target.join("exports/calls.bin")).unwrap(),
        trees[2]
    );
    env.ok(&["audit", "--read-data"]);
}
