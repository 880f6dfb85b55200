//! Property test: random manifests, correctly sealed and signed with the repository's own
//! write key (a compromised backup host), with paths holding `..`, `/`, NUL, control
//! characters, duplicates, symlinks followed by files below them, absurd sizes, offsets,
//! times and modes. Whatever the manifest, no reader panics (`ls`, `checksums`, `restore`,
//! a drill), none writes outside its target, and `ls` prints no control character.
//!
//! `SNAPDRILL_FUZZ_CASES=N` runs more cases (`make fuzz` sets it high); `make test` runs a
//! few dozen.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use common::craft::{self, Spec, dir_entry, file_entry, symlink_entry};
use common::{Env, code, sha256_hex, show, stderr, stdout};
use proptest::prelude::*;
use snapdrill::format::manifest::Entry;

const STREAM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz-hostile-manifest-stream-bytes!";

/// Mostly plain names (so that many manifests pass validation and reach the writers), now
/// and then a hostile one.
fn component() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        12 => prop_oneof![Just(b"a".to_vec()), Just(b"b".to_vec()), Just(b"c".to_vec())],
        1 => Just(b"..".to_vec()),
        1 => Just(b".".to_vec()),
        1 => Just(Vec::new()),
        1 => Just(b"x\n-rw forged".to_vec()),
        1 => Just(b"\x1b[2J\x07".to_vec()),
        1 => Just(b"c\\..\\d".to_vec()),
        1 => Just(b"C:".to_vec()),
        1 => Just(b"nul\0byte".to_vec()),
        1 => Just(b"\xff\xfe".to_vec()),
        1 => Just(vec![b'l'; 300]),
    ]
}

fn path() -> impl Strategy<Value = Vec<u8>> {
    (0u8..20, prop::collection::vec(component(), 1..4)).prop_map(|(absolute, parts)| {
        let mut p = if absolute == 0 {
            b"/".to_vec()
        } else {
            Vec::new()
        };
        p.extend(parts.join(&b'/'));
        p
    })
}

/// (kind, path, size, offset, correct hash?, mode, mtime, mtime_ns, link target choice)
type Raw = (u8, Vec<u8>, u64, u64, bool, u32, i64, u32, u8);

fn raw_entry() -> impl Strategy<Value = Raw> {
    let size = prop_oneof![
        Just(0u64),
        Just(1),
        Just(7),
        Just(STREAM.len() as u64),
        Just(u64::MAX),
        0..100u64
    ];
    let offset = prop_oneof![Just(0u64), Just(3), Just(u64::MAX - 1), 0..100u64];
    let mtime = prop_oneof![
        Just(0i64),
        Just(i64::MAX),
        Just(i64::MIN),
        Just(-1),
        any::<i64>(),
        Just(1_700_000_000)
    ];
    (
        0u8..3,
        path(),
        size,
        offset,
        any::<bool>(),
        any::<u32>(),
        mtime,
        prop_oneof![Just(0u32), Just(999_999_999), any::<u32>()],
        0u8..4,
    )
}

fn entry(raw: &Raw, outside: &Path) -> Entry {
    let (kind, path, size, offset, good_hash, mode, mtime, mtime_ns, link) = raw;
    let mut e = match kind {
        0 => {
            let content = offset
                .checked_add(*size)
                .filter(|end| *end <= STREAM.len() as u64)
                .map(|end| &STREAM[*offset as usize..end as usize])
                .unwrap_or(b"");
            let mut e = file_entry(path, content, *offset);
            e.size = Some(*size);
            if !good_hash {
                e.sha256 = Some(sha256_hex(b"something else"));
            }
            e
        }
        1 => dir_entry(path),
        _ => {
            let outside = outside.to_str().unwrap().as_bytes().to_vec();
            let target: Vec<u8> = match link {
                0 => b"../../outside".to_vec(),
                1 => outside,
                2 => b"a".to_vec(),
                _ => b"../outside/canary".to_vec(),
            };
            symlink_entry(path, &target)
        }
    };
    e.mode = *mode;
    e.mtime = *mtime;
    e.mtime_ns = *mtime_ns;
    e
}

/// Every path below `dir` with its type and (files) content hash.
fn snapshot_of(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).follow_links(false) {
        let e = e.unwrap();
        let m = fs::symlink_metadata(e.path()).unwrap();
        let what = if m.is_file() {
            sha256_hex(&fs::read(e.path()).unwrap())
        } else if m.file_type().is_symlink() {
            format!("-> {:?}", fs::read_link(e.path()).unwrap())
        } else {
            "dir".into()
        };
        out.insert(e.path().display().to_string(), what);
    }
    out
}

fn cases() -> u32 {
    std::env::var("SNAPDRILL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_hostile_manifest_makes_a_reader_panic_or_write_outside(raws in prop::collection::vec(raw_entry(), 1..7)) {
        let env = Env::new(&["tokyo"]);
        let outside = env.p("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("canary"), b"untouched").unwrap();
        let entries: Vec<Entry> = raws.iter().map(|r| entry(r, &outside)).collect();
        let id = craft::snapshot(&env, &["tokyo"], Spec { stream: STREAM.to_vec(), entries, ..Spec::default() });
        let sandbox = env.p("sandbox");
        fs::create_dir(&sandbox).unwrap();
        let target = sandbox.join("target");
        let before = snapshot_of(&outside);

        for args in [
            vec!["ls", id.as_str()],
            vec!["checksums", id.as_str()],
            vec!["restore", id.as_str(), "--target", target.to_str().unwrap()],
            vec!["restore-drill", "--snapshot", id.as_str()],
        ] {
            let out = env.run(&args);
            let rc = code(&out);
            prop_assert!(matches!(rc, 0 | 1 | 13 | 14), "{args:?}: exit {rc}\n{}", show(&out));
            prop_assert!(!stderr(&out).contains("panicked"), "{args:?}: {}", show(&out));
            if args[0] == "ls" {
                let text = stdout(&out);
                prop_assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
            }
        }
        prop_assert_eq!(snapshot_of(&outside), before, "written outside the target");
        let beside: Vec<String> = fs::read_dir(&sandbox).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        prop_assert!(beside.iter().all(|n| n == "target"), "written beside the target: {beside:?}");
    }
}
