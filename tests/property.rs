//! Property: any tree — empty files, 1 byte, 64 KiB ± 1, several MiB, unicode and non-UTF-8
//! names, symlinks, empty directories, nesting — restores identical: bytes, modes, mtimes
//! (to the nanosecond), symlink targets. Runs the real binary against local stores.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use filetime::FileTime;
use proptest::prelude::*;

mod common;

use common::{BIN, assert_same_tree};

const NAMES: &[&[u8]] = &[
    b"a",
    b"customers.csv",
    "顧客データ".as_bytes(),
    b"with space",
    b"caf\xe9",      // Latin-1, not UTF-8
    b"\xff\xfe\x01", // not UTF-8 at all
    b"back\\slash",
    b"..dots",
    b"new\nline",
    b"-dash",
];

#[derive(Debug, Clone)]
enum Kind {
    File { size: usize, seed: u64, mode: u32 },
    Symlink { target: Vec<u8> },
    Dir { mode: u32 },
}

fn size_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => Just(0usize),
        3 => Just(1usize),
        2 => Just(65_535usize),
        2 => Just(65_536usize),
        2 => Just(65_537usize),
        6 => 2usize..5_000,
        1 => (2usize << 20)..(5usize << 20),
    ]
}

fn kind_strategy() -> impl Strategy<Value = Kind> {
    prop_oneof![
        6 => (size_strategy(), any::<u64>(), prop::sample::select(vec![0o644u32, 0o600, 0o755, 0o444, 0o640]))
            .prop_map(|(size, seed, mode)| Kind::File { size, seed, mode }),
        2 => prop::sample::select(vec![&b"a"[..], b"../outside", b"/etc/hostname", "顧客データ".as_bytes(), b"caf\xe9"])
            .prop_map(|t| Kind::Symlink { target: t.to_vec() }),
        2 => prop::sample::select(vec![0o755u32, 0o700, 0o750]).prop_map(|mode| Kind::Dir { mode }),
    ]
}

fn tree_strategy() -> impl Strategy<Value = Vec<(Vec<usize>, Kind, i64, u32)>> {
    prop::collection::vec(
        (
            prop::collection::vec(0..NAMES.len(), 1..5),
            kind_strategy(),
            1_000_000_000i64..2_000_000_000,
            0u32..1_000_000_000,
        ),
        0..14,
    )
}

/// Build the tree under `root`; returns the (relative path -> (kind, mtime)) it made.
fn build(
    root: &Path,
    spec: &[(Vec<usize>, Kind, i64, u32)],
) -> BTreeMap<Vec<u8>, (Kind, FileTime)> {
    let mut made: BTreeMap<Vec<u8>, (Kind, FileTime)> = BTreeMap::new();
    for (names, kind, secs, nanos) in spec {
        let parts: Vec<&[u8]> = names.iter().map(|&i| NAMES[i]).collect();
        let path = parts.join(&b'/');
        // Every parent must be (or become) a directory; skip entries that would conflict.
        let conflict = (1..parts.len()).any(|n| {
            let parent = parts[..n].join(&b'/');
            made.get(&parent)
                .is_some_and(|(k, _)| !matches!(k, Kind::Dir { .. }))
        }) || made.contains_key(&path)
            || made
                .keys()
                .any(|k| k.starts_with(&path) && k.get(path.len()) == Some(&b'/'));
        if conflict {
            continue;
        }
        for n in 1..parts.len() {
            let parent = parts[..n].join(&b'/');
            made.entry(parent).or_insert((
                Kind::Dir { mode: 0o755 },
                FileTime::from_unix_time(*secs, 0),
            ));
        }
        made.insert(
            path,
            (kind.clone(), FileTime::from_unix_time(*secs, *nanos)),
        );
    }
    fs::create_dir_all(root).unwrap();
    for (path, (kind, _)) in &made {
        let p = root.join(OsStr::from_bytes(path));
        match kind {
            Kind::Dir { .. } => fs::create_dir_all(&p).unwrap(),
            Kind::File { size, seed, .. } => {
                fs::write(&p, common::random_bytes(*size, *seed)).unwrap()
            }
            Kind::Symlink { target } => {
                std::os::unix::fs::symlink(OsStr::from_bytes(target), &p).unwrap()
            }
        }
    }
    // Modes and times last, deepest first, so creating children does not move them.
    for (path, (kind, time)) in made.iter().rev() {
        let p = root.join(OsStr::from_bytes(path));
        match kind {
            Kind::Dir { mode } | Kind::File { mode, .. } => {
                fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).unwrap();
                filetime::set_file_times(&p, *time, *time).unwrap();
            }
            Kind::Symlink { .. } => filetime::set_symlink_file_times(&p, *time, *time).unwrap(),
        }
    }
    filetime::set_file_times(
        root,
        FileTime::from_unix_time(1_700_000_000, 5),
        FileTime::from_unix_time(1_700_000_000, 5),
    )
    .unwrap();
    made
}

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo { dir };
        let recipient = repo.ok(&["keygen", "-o", "identity.txt"]);
        fs::write(
            repo.dir.path().join("snapdrill.toml"),
            format!(
                "[repository]\nrecipients = [\"{}\"]\nidentity = \"identity.txt\"\ncache_dir = \"cache\"\nstate_dir = \"state\"\n\
                 [[store]]\nname = \"one\"\nurl = \"stores/one\"\n[[store]]\nname = \"two\"\nurl = \"stores/two\"\n",
                recipient.trim()
            ),
        )
        .unwrap();
        repo.ok(&["init", "--create"]);
        repo
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(self.dir.path())
            .env("SNAPDRILL_CONFIG", self.dir.path().join("snapdrill.toml"))
            .env("HOME", self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "snapdrill {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 64, .. ProptestConfig::default() })]

    #[test]
    fn random_trees_restore_identical(spec in tree_strategy()) {
        let repo = Repo::new();
        let source = repo.dir.path().join("src").join("tree");
        build(&source, &spec);
        repo.ok(&["backup", source.to_str().unwrap()]);
        let target = repo.dir.path().join("restored");
        repo.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
        assert_same_tree(&source, &target.join("tree"));
        // Second run: the cache path must give the same result.
        repo.ok(&["backup", source.to_str().unwrap()]);
        let again = repo.dir.path().join("again");
        repo.ok(&["restore", "latest", "--target", again.to_str().unwrap()]);
        assert_same_tree(&source, &again.join("tree"));
    }
}
