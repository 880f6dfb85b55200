//! Commit format 4: object lists. Nightlies share their lists; a list lost from one store is
//! read from another, reported by audit and healed by sync; a list lost from every store
//! makes its snapshot unreadable, and prune then deletes nothing (its chunks are unknown).

mod common;

use std::fs;
use std::path::PathBuf;

use common::{Env, code, files_under, json, random_bytes, show, stderr, stdout};

/// The object lists the commit of snapshot `id` names in `store`.
fn lists_of(env: &Env, store: &str, id: &str) -> Vec<String> {
    let text = fs::read_to_string(env.store(store).join("snapshots").join(id)).unwrap();
    let body = text.trim_end().rsplit_once('\n').unwrap().0;
    let commit = json(body);
    assert_eq!(commit["version"], 4, "{commit}");
    assert!(commit.get("objects").is_none(), "{commit}");
    commit["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_owned())
        .collect()
}

fn lists_in(env: &Env, store: &str) -> Vec<PathBuf> {
    let dir = env.store(store).join("lists");
    if dir.exists() {
        files_under(&dir)
    } else {
        Vec::new()
    }
}

/// Prune may collect objects at once (`[prune] grace = "0s"`).
fn no_grace(env: &Env) {
    let mut text = fs::read_to_string(env.config()).unwrap();
    text.push_str("\n[prune]\ngrace = \"0s\"\n");
    fs::write(env.config(), text).unwrap();
}

fn export(env: &Env, seed: u64) -> PathBuf {
    let src = env.p(&format!("exports-{seed}"));
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("calls.bin"), random_bytes(6 << 20, seed)).unwrap();
    fs::write(src.join("customers.csv"), b"id,name\n1,a\n").unwrap();
    src
}

#[test]
fn an_unchanged_nightly_names_yesterdays_lists_and_uploads_none() {
    let env = Env::new(&["a"]);
    let src = export(&env, 1);
    let first = env.backup_json(&[src.to_str().unwrap()]);
    let lists = lists_in(&env, "a");
    assert!(!lists.is_empty());
    let second = env.backup_json(&[src.to_str().unwrap()]);
    assert_eq!(lists_in(&env, "a"), lists, "no new list");
    // Only the manifest and the commit are new: chunks and lists are all reused.
    assert_eq!(second["stores"][0]["uploaded_objects"], 2, "{second}");
    let (a, b) = (
        first["snapshot_id"].as_str().unwrap(),
        second["snapshot_id"].as_str().unwrap(),
    );
    assert_eq!(lists_of(&env, "a", a), lists_of(&env, "a", b));
    // The list holds exactly what the commit of version 3 would have listed.
    let text = fs::read_to_string(&lists[0]).unwrap();
    let list = json(&text);
    assert_eq!(list["format"], "snapdrill-list");
    assert_eq!(
        common::sha256_hex(text.as_bytes()),
        lists[0].file_name().unwrap().to_string_lossy()
    );
}

#[test]
fn a_list_lost_in_one_store_is_read_from_the_other_reported_by_audit_and_healed_by_sync() {
    let env = Env::new(&["a", "b"]);
    let src = export(&env, 2);
    env.ok(&["backup", src.to_str().unwrap()]);
    let id = env.snapshot_ids().remove(0);
    let list = lists_of(&env, "a", &id).remove(0);
    fs::remove_file(env.store("a").join(&list)).unwrap();

    // Store a is preferred; the list comes from b.
    let target = env.p("restored");
    let out = env.run(&["restore", &id, "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    common::assert_same_tree(&src, &target.join(src.file_name().unwrap()));

    let out = env.run(&["audit", "--json"]);
    assert_ne!(code(&out), 0, "{}", show(&out));
    let report = json(&stdout(&out));
    let problems = report["problems"].to_string();
    assert!(problems.contains(&list), "{report:#}");

    let out = env.run(&["sync"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(env.store("a").join(&list).exists());
    let out = env.run(&["audit"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
}

#[test]
fn a_list_lost_from_every_store_makes_its_snapshot_unreadable_and_prune_deletes_nothing() {
    let env = Env::new(&["a"]);
    no_grace(&env);
    env.ok(&["backup", export(&env, 3).to_str().unwrap()]);
    env.ok(&["backup", export(&env, 4).to_str().unwrap()]);
    let ids = env.snapshot_ids();
    let newest = ids.last().unwrap().clone();
    for list in lists_of(&env, "a", &newest) {
        fs::remove_file(env.store("a").join(list)).unwrap();
    }
    let chunks = env.chunk_objects("a");

    // This host read the lists before: its cache still knows the snapshot's objects, and
    // prune refuses because the store's listing lacks one of them.
    let out = env.run(&["prune", "--yes"]);
    assert_ne!(code(&out), 0, "{}", show(&out));
    assert!(
        stderr(&out).contains("prune deleted nothing"),
        "{}",
        show(&out)
    );
    assert_eq!(env.chunk_objects("a"), chunks);

    // Another host (or this one with its cache gone) cannot know them at all.
    fs::remove_dir_all(env.p("cache")).unwrap();
    let out = env.run(&["snapshots"]);
    assert!(stderr(&out).contains("UNTRUSTED"), "{}", show(&out));
    assert!(
        stderr(&out).contains("lists/"),
        "the lost list is named: {}",
        show(&out)
    );
    // Its chunks are referenced only through the lost lists: prune must not take them for
    // garbage.
    let out = env.run(&["prune", "--yes"]);
    assert_ne!(code(&out), 0, "{}", show(&out));
    assert!(
        stderr(&out).contains("object lists cannot be read"),
        "{}",
        show(&out)
    );
    assert!(
        stderr(&out).contains("prune deleted nothing"),
        "{}",
        show(&out)
    );
    assert_eq!(env.chunk_objects("a"), chunks);
}

/// A list prune set aside while a backup named it (the race the fossil protocol is for):
/// its snapshot still reads, from the fossil; audit warns; the next prune brings it back.
#[test]
fn a_named_list_that_prune_set_aside_still_serves_and_the_next_prune_brings_it_back() {
    let env = Env::new(&["a"]);
    no_grace(&env);
    let src = export(&env, 5);
    env.ok(&["backup", src.to_str().unwrap()]);
    let id = env.snapshot_ids().remove(0);
    let list = lists_of(&env, "a", &id).remove(0);
    let fossil = env.store("a").join("fossils").join(&list);
    fs::create_dir_all(fossil.parent().unwrap()).unwrap();
    fs::rename(env.store("a").join(&list), &fossil).unwrap();
    fs::remove_dir_all(env.p("cache")).unwrap();

    let out = env.run(&["snapshots"]);
    assert!(!stderr(&out).contains("UNTRUSTED"), "{}", show(&out));
    let target = env.p("restored");
    let out = env.run(&["restore", &id, "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    common::assert_same_tree(&src, &target.join(src.file_name().unwrap()));
    let out = env.run(&["audit", "--json"]);
    let report = json(&stdout(&out));
    assert!(report["warnings"].to_string().contains(&list), "{report:#}");
    assert!(
        !report["problems"].to_string().contains(&list),
        "{report:#}"
    );

    let out = env.run(&["prune", "--yes"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(env.store("a").join(&list).exists(), "brought back");
    assert!(!fossil.exists());
    let out = env.run(&["audit"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
}

/// A commit of format 1 (its objects inline) re-signed by `rekey` becomes version 4: its
/// chunks at their new hashes, named through lists, and it restores the same bytes.
#[test]
fn rekey_turns_an_inline_commit_into_one_that_names_lists() {
    use common::craft::{self, file_entry};
    let env = Env::new(&["a"]);
    let stream: Vec<u8> = (0..4096u32).flat_map(|i| i.to_le_bytes()).collect();
    let id = craft::snapshot(
        &env,
        &["a"],
        craft::Spec {
            stream: stream.clone(),
            chunk_size: 512,
            entries: vec![file_entry(b"calls.bin", &stream, 0)],
            v1: true,
            ..craft::Spec::default()
        },
    );
    let before = fs::read_to_string(env.store("a").join("snapshots").join(&id)).unwrap();
    assert!(before.contains(r#""objects""#) && !before.contains(r#""lists""#));
    env.ok(&["rekey"]);
    let lists = lists_of(&env, "a", &id);
    let named: usize = lists
        .iter()
        .map(|l| {
            let text = fs::read_to_string(env.store("a").join(l)).unwrap();
            json(&text)["objects"].as_array().unwrap().len()
        })
        .sum();
    assert_eq!(named, 32, "every chunk of the stream, once");
    let target = env.p("restored");
    let out = env.run(&["restore", &id, "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(fs::read(target.join("calls.bin")).unwrap(), stream);
    let out = env.run(&["audit", "--read-data"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
}

/// Prune collects the lists only forgotten snapshots named, and keeps every list a kept
/// snapshot names, shared or not.
#[test]
fn prune_collects_the_lists_of_forgotten_snapshots_and_keeps_the_others() {
    let env = Env::new(&["a"]);
    no_grace(&env);
    // One data set (the same source), two versions of its data.
    let kept = export(&env, 6);
    env.ok(&["backup", kept.to_str().unwrap()]);
    fs::write(kept.join("calls.bin"), random_bytes(6 << 20, 7)).unwrap();
    env.ok(&["backup", kept.to_str().unwrap()]);
    let ids = env.snapshot_ids();
    let (gone, stays) = (lists_of(&env, "a", &ids[0]), lists_of(&env, "a", &ids[1]));
    // The small file's chunk may share a list; the big file's lists differ.
    let gone: Vec<String> = gone.into_iter().filter(|l| !stays.contains(l)).collect();
    assert!(!gone.is_empty(), "different data, different lists");
    env.ok(&["forget", &ids[0]]);
    let out = env.run(&["prune", "--yes"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    for l in &gone {
        assert!(!env.store("a").join(l).exists(), "{l} collected");
        assert!(
            !env.store("a").join("fossils").join(l).exists(),
            "{l}: no fossil left"
        );
    }
    for l in &stays {
        assert!(env.store("a").join(l).exists(), "{l} kept");
    }
    let target = env.p("restored");
    let out = env.run(&["restore", &ids[1], "--target", target.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    common::assert_same_tree(&kept, &target.join(kept.file_name().unwrap()));
    let out = env.run(&["audit"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
}
