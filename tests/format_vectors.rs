//! Every format test vector in `fixtures/vectors/` restores with today's code, byte for byte,
//! with its modes, mtimes and symlinks (fixtures/vectors/README.md).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::BIN;
/// 2026-11-27T02:30:00.123456789Z, the mtime of every entry of every vector.
const MTIME: (i64, i64) = (1_795_746_600, 123_456_789);

/// Copy a vector; its config gets a state and a cache folder of its own (root's default
/// would be /var/lib/snapdrill and /var/cache/snapdrill, shared by every test).
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else if e.file_name() == "snapdrill.toml" {
            let text = fs::read_to_string(e.path()).unwrap();
            let own = "[repository]\nstate_dir = \"state\"\ncache_dir = \"cache\"\n";
            fs::write(&dest, text.replacen("[repository]\n", own, 1)).unwrap();
        } else {
            fs::copy(e.path(), &dest).unwrap();
        }
    }
}

fn vectors() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/vectors");
    let mut v: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no vectors in {}", root.display());
    v
}

#[test]
fn every_format_vector_restores_exactly() {
    for vector in vectors() {
        let work = tempfile::tempdir().unwrap();
        let repo = work.path().join("repo");
        copy_tree(&vector, &repo);
        // git does not keep mode 0600, which snapdrill insists on for identities.
        fs::set_permissions(repo.join("identity.txt"), fs::Permissions::from_mode(0o600)).unwrap();
        let target = work.path().join("restored");
        let out = Command::new(BIN)
            .arg("--config")
            .arg(repo.join("snapdrill.toml"))
            .args(["restore", "latest", "--target"])
            .arg(&target)
            .env_remove("SNAPDRILL_CONFIG")
            .env("HOME", work.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: restore failed: {}",
            vector.display(),
            String::from_utf8_lossy(&out.stderr)
        );

        let sums = fs::read_to_string(vector.join("expected.sha256")).unwrap();
        for line in sums.lines() {
            let (hash, path) = line.split_once("  ").unwrap();
            assert_eq!(
                common::sha256_file(&target.join(path)),
                hash,
                "{}: {path}",
                vector.display()
            );
        }
        let tree = fs::read_to_string(vector.join("expected-tree.txt")).unwrap();
        let mut entries = 0;
        for line in tree.lines() {
            let mut f = line.splitn(4, ' ');
            let (kind, mode, path, link) = (
                f.next().unwrap(),
                f.next().unwrap(),
                f.next().unwrap(),
                f.next().unwrap_or(""),
            );
            let p = target.join(path);
            let meta = fs::symlink_metadata(&p)
                .unwrap_or_else(|e| panic!("{}: {path}: {e}", vector.display()));
            match kind {
                "d" => assert!(meta.is_dir(), "{path}"),
                "f" => assert!(meta.is_file(), "{path}"),
                "l" => {
                    assert!(meta.file_type().is_symlink(), "{path}");
                    assert_eq!(fs::read_link(&p).unwrap().to_str().unwrap(), link, "{path}");
                }
                other => panic!("unknown kind {other}"),
            }
            if kind != "l" {
                assert_eq!(format!("{:o}", meta.mode() & 0o7777), mode, "{path}");
            }
            assert_eq!((meta.mtime(), meta.mtime_nsec()), MTIME, "{path}");
            entries += 1;
        }
        let restored = walk_count(&target.join("vector"));
        assert_eq!(
            restored,
            entries,
            "{}: extra or missing entries",
            vector.display()
        );
    }
}

fn walk_count(dir: &Path) -> usize {
    1 + fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk_count(&e.path())
            } else {
                1
            }
        })
        .sum::<usize>()
}

#[test]
fn a_vector_lists_without_the_identity() {
    for vector in vectors() {
        let work = tempfile::tempdir().unwrap();
        let repo = work.path().join("repo");
        copy_tree(&vector, &repo);
        fs::remove_file(repo.join("identity.txt")).unwrap();
        let out = Command::new(BIN)
            .arg("--config")
            .arg(repo.join("snapdrill.toml"))
            .args(["snapshots", "--json"])
            .env("HOME", work.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json = String::from_utf8(out.stdout).unwrap();
        assert!(json.contains("\"host\": \"vector-host\""), "{json}");
        assert!(json.contains("\"untrusted\": []"), "{json}");
    }
}

/// A copy of `vector` ready to use (identity mode fixed), in `work`.
fn ready(vector: &Path, work: &Path) -> PathBuf {
    let repo = work.join("repo");
    copy_tree(vector, &repo);
    fs::set_permissions(repo.join("identity.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    repo
}

fn run(repo: &Path, work: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--config")
        .arg(repo.join("snapdrill.toml"))
        .args(args)
        .env_remove("SNAPDRILL_CONFIG")
        .env("HOME", work)
        .output()
        .unwrap()
}

/// Every vector, whatever its format version, is one data set that drills, selects and
/// forgets as such: a version-1 snapshot has the job `-`, a version-2 one its job.
#[test]
fn every_vector_drills_selects_and_forgets_as_one_data_set() {
    for vector in vectors() {
        let work = tempfile::tempdir().unwrap();
        let repo = ready(&vector, work.path());
        let job = if vector.ends_with("v1") {
            "-"
        } else {
            "vector"
        };
        let out = run(
            &repo,
            work.path(),
            &["restore-drill", "--no-record", "--json"],
        );
        let show = || {
            format!(
                "{}: {}{}",
                vector.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        };
        assert!(out.status.success(), "{}", show());
        let records: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(records.as_array().unwrap().len(), 1, "{}", show());
        assert_eq!(records[0]["result"], "pass", "{}", show());
        assert_eq!(records[0]["snapshot_host"], "vector-host", "{}", show());
        // Selected by its job (`-` for format 1), and by day.
        let out = run(&repo, work.path(), &["ls", "latest", "--job", job]);
        assert!(out.status.success(), "{}: {:?}", vector.display(), out);
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(listed.contains("vector/hello.txt"), "{listed}");
        let out = run(&repo, work.path(), &["ls", "2026-11-20", "--job", job]);
        assert_eq!(out.status.code(), Some(2), "no snapshot that day: {out:?}");
        // Retention sees one group that keeps its only snapshot; no write key is needed
        // for a dry run.
        let out = run(
            &repo,
            work.path(),
            &["forget", "--keep-last", "1", "--dry-run", "--json"],
        );
        assert!(out.status.success(), "{}: {:?}", vector.display(), out);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let snaps = v["forget"]["snapshots"].as_array().unwrap();
        assert_eq!(snaps.len(), 1);
        assert_eq!(snaps[0]["keep"], true);
        assert_eq!(snaps[0]["job"], job);
    }
}
