//! Integrity: damaged, missing, replayed and hostile objects end in exit 13 with nothing
//! written where it must not be. Hostile snapshots are crafted with the library API and the
//! repository's own write key, so only the reader's checks stand in the way.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::craft::{file_entry, symlink_entry};
use common::*;
use snapdrill::format::manifest::Entry;
use snapdrill::format::{self, commit_object};

/// Flip one byte in the middle of a file.
fn flip_middle(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

/// The largest chunk object of `store` as (object name relative to the store, path).
fn largest_chunk(env: &Env, store: &str) -> (String, PathBuf) {
    let path = env
        .chunk_objects(store)
        .into_iter()
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .expect("the store holds chunks");
    let name = path
        .strip_prefix(env.store(store))
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    (name, path)
}

/// Any leftover temp file of a restore under `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".snapdrill-")
        })
        .collect()
}

/// A source with a small file and a 600 KiB file whose chunks are its own.
fn two_file_source(env: &Env) -> PathBuf {
    env.tree(
        "src",
        &[
            ("a-small.txt", b"small\n"),
            ("big.bin", &random_bytes(600 << 10, 5)),
        ],
    )
}

#[test]
fn a_chunk_damaged_in_one_store_is_served_by_the_other_and_in_both_is_refused() {
    let env = Env::new(&["a", "b"]);
    let src = two_file_source(&env);
    env.ok(&["backup", src.to_str().unwrap()]);
    let (object, in_a) = largest_chunk(&env, "a");
    flip_middle(&in_a);

    let target = env.p("r1");
    let out = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warning") && err.contains("store 'a'") && err.contains(&object),
        "the damaged replica should be named:\n{}",
        show(&out)
    );
    assert_same_tree(&src, &target.join("src"));

    flip_middle(&env.store("b").join(&object));
    let target = env.p("r2");
    let out = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    assert!(
        stderr(&out).contains(&object),
        "the object should be named:\n{}",
        show(&out)
    );
    assert!(
        fs::symlink_metadata(target.join("src/big.bin")).is_err(),
        "the damaged file was placed"
    );
    assert!(temp_files(&target).is_empty(), "{:?}", temp_files(&target));
}

#[test]
fn a_chunk_missing_from_every_store_is_refused() {
    let env = Env::new(&["a", "b"]);
    let src = two_file_source(&env);
    env.ok(&["backup", src.to_str().unwrap()]);
    let (object, _) = largest_chunk(&env, "a");
    for s in ["a", "b"] {
        fs::remove_file(env.store(s).join(&object)).unwrap();
    }
    let target = env.p("r");
    let out = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&object) && err.contains("missing"),
        "{}",
        show(&out)
    );
    assert!(fs::symlink_metadata(target.join("src/big.bin")).is_err());
    assert!(temp_files(&target).is_empty());
}

#[test]
fn an_altered_commit_is_untrusted_and_never_restored() {
    let env = Env::new(&["a", "b"]);
    let src = env.tree("src", &[("f.txt", b"data\n")]);
    env.ok(&["backup", "--host", "tamperhost", src.to_str().unwrap()]);
    let id = env.snapshot_ids().pop().unwrap();
    for s in ["a", "b"] {
        let path = env.store(s).join(commit_object(&id));
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"tamperhost\""), "{text}");
        fs::write(&path, text.replace("\"tamperhost\"", "\"tamperhosx\"")).unwrap();
    }

    let target = env.p("r");
    fs::create_dir(&target).unwrap();
    let out = env.run(&["restore", &id, "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    assert!(stderr(&out).contains(&id), "{}", show(&out));
    assert!(names_in(&target).is_empty(), "the target is not empty");

    let out = env.run(&["snapshots"]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    let err = stderr(&out);
    assert!(
        err.contains("UNTRUSTED") && err.contains(&id),
        "{}",
        show(&out)
    );
    assert!(
        !stdout(&out).contains(&id),
        "listed as a normal snapshot:\n{}",
        show(&out)
    );

    let out = env.run(&["snapshots", "--json"]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    let v = json(&stdout(&out));
    assert_eq!(v["snapshots"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["untrusted"][0]["id"], id.as_str(), "{v}");
}

#[test]
fn a_commit_replayed_under_another_name_is_untrusted() {
    let env = Env::new(&["a"]);
    let src = env.tree("src", &[("f.txt", b"data\n")]);
    env.ok(&["backup", src.to_str().unwrap()]);
    let id = env.snapshot_ids().pop().unwrap();
    let other = format!("{}-deadbeef", &id[..16]);
    assert!(format::is_snapshot_id(&other) && other != id);
    fs::copy(
        env.store("a").join(commit_object(&id)),
        env.store("a").join(commit_object(&other)),
    )
    .unwrap();

    let out = env.run(&["snapshots"]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.contains("UNTRUSTED") && l.contains(&other))
        .unwrap_or_else(|| panic!("no UNTRUSTED line for {other}:\n{}", show(&out)));
    assert!(line.contains("replayed"), "{line}");
    assert!(
        stdout(&out).contains(&id),
        "the genuine snapshot is still listed"
    );

    let target = env.p("r");
    let out = env.run(&["restore", &other, "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    assert!(!target.exists());
}

// ---- hostile manifests, crafted with the repository's own write key ----

fn craft_snapshot(env: &Env, store: &str, stream: &[u8], entries: Vec<Entry>) -> String {
    craft::snapshot(
        env,
        &[store],
        craft::Spec {
            stream: stream.to_vec(),
            entries,
            ..craft::Spec::default()
        },
    )
}

/// The crafting itself is sound: a benign crafted snapshot is trusted and restores, so the
/// refusals below are the reader's path checks and nothing else.
#[test]
fn a_crafted_snapshot_with_safe_paths_restores() {
    let env = Env::new(&["a"]);
    let (good, also) = (b"good bytes\n", b"more good bytes\n");
    let stream = [&good[..], &also[..]].concat();
    let id = craft_snapshot(
        &env,
        "a",
        &stream,
        vec![
            file_entry(b"ok.txt", good, 0),
            file_entry(b"also.txt", also, good.len() as u64),
            symlink_entry(b"link", b"ok.txt"),
        ],
    );
    assert_eq!(env.snapshot_ids(), std::slice::from_ref(&id));
    let target = env.p("r");
    env.ok(&["restore", &id, "--target", target.to_str().unwrap()]);
    assert_eq!(names_in(&target), ["also.txt", "link", "ok.txt"]);
    assert_eq!(fs::read(target.join("ok.txt")).unwrap(), good);
    assert_eq!(fs::read(target.join("also.txt")).unwrap(), also);
    assert_eq!(
        fs::read_link(target.join("link")).unwrap(),
        Path::new("ok.txt")
    );
}

/// Restore a crafted snapshot holding a benign `ok.txt` and then `hostile_path`; it must be
/// refused with 13 before anything is written. Returns stderr.
fn restore_hostile_file(env: &Env, hostile_path: &[u8], target: &Path) -> String {
    let (good, evil) = (b"good\n", b"evil payload\n");
    let stream = [&good[..], &evil[..]].concat();
    let id = craft_snapshot(
        env,
        "a",
        &stream,
        vec![
            file_entry(b"ok.txt", good, 0),
            file_entry(hostile_path, evil, good.len() as u64),
        ],
    );
    let out = env.run(&["restore", &id, "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    assert!(
        files_under(target).is_empty(),
        "files were written into the target: {:?}",
        files_under(target)
    );
    stderr(&out)
}

#[test]
fn a_manifest_path_with_dotdot_is_refused() {
    let env = Env::new(&["a"]);
    let victim = env.p("victim");
    fs::create_dir(&victim).unwrap();
    let target = victim.join("target");
    let err = restore_hostile_file(&env, b"../escape", &target);
    assert!(
        err.contains("unsafe path") && err.contains("../escape"),
        "{err}"
    );
    assert!(
        fs::symlink_metadata(victim.join("escape")).is_err(),
        "escaped the target"
    );
    let beside: Vec<String> = names_in(&victim)
        .into_iter()
        .filter(|n| n != "target")
        .collect();
    assert!(beside.is_empty(), "written beside the target: {beside:?}");
}

#[test]
fn an_absolute_manifest_path_is_refused() {
    let env = Env::new(&["a"]);
    // An absolute path inside a directory of our own: if it were honoured, it would land here.
    let outside = tempfile::tempdir().unwrap();
    let hostile = outside.path().join("escape-abs");
    let target = env.p("target");
    let err = restore_hostile_file(&env, hostile.to_str().unwrap().as_bytes(), &target);
    assert!(err.contains("unsafe path"), "{err}");
    assert!(
        fs::symlink_metadata(&hostile).is_err(),
        "wrote to {}",
        hostile.display()
    );
    assert!(names_in(outside.path()).is_empty());
}

#[test]
fn a_file_below_a_symlink_is_refused() {
    let env = Env::new(&["a"]);
    let outside = tempfile::tempdir().unwrap();
    let payload = b"written through a link\n";
    let id = craft_snapshot(
        &env,
        "a",
        payload,
        vec![
            symlink_entry(b"a", outside.path().to_str().unwrap().as_bytes()),
            file_entry(b"a/x", payload, 0),
        ],
    );
    let target = env.p("target");
    let out = env.run(&["restore", &id, "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    assert!(stderr(&out).contains("a/x"), "{}", show(&out));
    assert!(
        names_in(outside.path()).is_empty(),
        "wrote outside: {:?}",
        names_in(outside.path())
    );
    assert!(
        fs::symlink_metadata(target.join("a")).is_err(),
        "the link was created"
    );
}
