//! Every parser of untrusted input, fed arbitrary bytes and mutated valid objects: signed
//! documents (commit, tombstone, repository config — also re-signed with the write key
//! after mutation, as a compromised backup host would), manifests (whole and streamed),
//! sealed objects and drill records. Each must return a value or a typed error: never
//! panic, never allocate beyond its limits.
//!
//! `SNAPDRILL_FUZZ_CASES=N` runs more cases (`make fuzz`); `make test` runs a few hundred.

use std::time::SystemTime;

use proptest::prelude::*;
use snapdrill::drill::record::{self, DrillRecord};
use snapdrill::format::chunk_list::{ChunkList, ChunkObject};
use snapdrill::format::commit::{Commit, DataSet, ObjectRef, Origin, Summary};
use snapdrill::format::manifest::Manifest;
use snapdrill::format::object_list;
use snapdrill::format::repo_config::RepoConfig;
use snapdrill::format::signed::{self, Role};
use snapdrill::format::tombstone::Tombstone;
use snapdrill::format::{self, limits};
use snapdrill::keys::{Identities, WriteKey};
use snapdrill::sealing;

struct World {
    key: WriteKey,
    ids: Identities,
    recipients: Vec<age::x25519::Recipient>,
    commit: Commit,
    list: Vec<u8>,
    commit_body: Vec<u8>,
    tombstone_body: Vec<u8>,
    config_body: Vec<u8>,
    manifest_json: Vec<u8>,
    sealed: Vec<u8>,
    record: Vec<u8>,
}

fn world() -> &'static World {
    static W: std::sync::OnceLock<World> = std::sync::OnceLock::new();
    W.get_or_init(|| {
        let key = WriteKey::generate();
        let (text, _) = snapdrill::keys::generate_identity();
        let ids = Identities::parse(&text, std::path::Path::new("test identity")).unwrap();
        let recipients = snapdrill::keys::recipient::legacy_recipients(&ids.recipients()).unwrap();
        let now = SystemTime::now();
        let id = format::new_snapshot_id(now);
        let time = format::format_time(now);
        let obj = |name: String| ObjectRef {
            name,
            size: 10,
            sha256: "ab".repeat(32),
        };
        let chunk = "cd".repeat(32);
        let (commit, lists) = Commit::new(
            &key.repository_id,
            &id,
            &time,
            Origin {
                set: DataSet {
                    host: "host".into(),
                    job: Some("job".into()),
                    source: Some("ab".repeat(16)),
                },
                tags: vec!["tag".into()],
            },
            Summary::default(),
            obj(format::manifest_object(&id)),
            &[ChunkObject::parse(&format::chunk_object(&chunk), 10, &"ab".repeat(32)).unwrap()],
        );
        let commit_body = commit.to_body();
        let list = lists[0].bytes.to_vec();
        let t = Tombstone::new(
            &key.repository_id,
            &id,
            &time,
            &commit.data_set(),
            obj(format::commit_object(&id)),
            &time,
            "by id",
        );
        let tombstone_body = serde_json::to_vec_pretty(&t).unwrap();
        let to: Vec<_> = recipients
            .iter()
            .map(|r| snapdrill::keys::RecipientKey::parse(&r.to_string()).unwrap())
            .collect();
        let config = RepoConfig::new(&key, &to, now).unwrap();
        let config_body = serde_json::to_vec_pretty(&config).unwrap();
        let manifest_json = format!(
            r#"{{"format":"snapdrill-manifest","version":1,"repository_id":"{}","snapshot_id":"{id}","time":"{time}","sources":["/x"],"chunks":[{{"id":"{chunk}","size":5}}],"entries":[{{"path":"x","type":"dir","mode":493,"mtime":1,"mtime_ns":0}},{{"path":"x/a","type":"file","mode":420,"mtime":1,"mtime_ns":0,"size":5,"sha256":"{}","offset":0}},{{"path":"x/l","type":"symlink","mode":511,"mtime":1,"mtime_ns":0,"target":"a"}}]}}"#,
            key.repository_id,
            "ef".repeat(32)
        )
        .into_bytes();
        let sealed = sealing::seal(b"hello, sealed world", 3, &recipients).unwrap();
        let rec = DrillRecord::new(record::new_drill_id(now), time.clone(), "h".into(), "all".into(), "full");
        let record = record::seal(&rec, &key.dedup, &recipients).unwrap();
        World { key, ids, recipients, commit, list, commit_body, tombstone_body, config_body, manifest_json, sealed, record }
    })
}

/// Apply `edits` to `base`: (position, kind, byte) — flip, insert, delete, or repeat a span.
fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut b = base.to_vec();
    for &(at, kind, byte) in edits {
        if b.is_empty() {
            b.push(byte);
            continue;
        }
        let i = at % b.len();
        match kind % 4 {
            0 => b[i] ^= byte | 1,
            1 => b.insert(i, byte),
            2 => {
                b.remove(i);
            }
            _ => {
                let end = (i + byte as usize % 64).min(b.len());
                let span = b[i..end].to_vec();
                b.splice(i..i, span);
            }
        }
    }
    b
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..8)
}

fn cases() -> u32 {
    std::env::var("SNAPDRILL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Parse `body` as each signed document, raw and re-signed with the write key.
fn signed_documents(w: &World, bytes: &[u8]) {
    let signer = w.key.signer();
    let id = &w.commit.snapshot_id;
    let repo = &w.key.repository_id;
    let _ = signed::claimed_signer(bytes);
    for role in [Role::Snapshot, Role::Tombstone, Role::RepositoryConfig] {
        let _ = signed::verify(bytes, role, &signer);
    }
    let _ = Commit::from_object(
        &signed::sign(bytes, Role::Snapshot, &w.key.signing),
        &signer,
        repo,
        id,
    );
    let _ = Tombstone::from_object(
        &signed::sign(bytes, Role::Tombstone, &w.key.signing),
        &signer,
        repo,
        id,
    );
    let _ = RepoConfig::from_object(
        &signed::sign(bytes, Role::RepositoryConfig, &w.key.signing),
        &signer,
    );
    let _ = Commit::from_object(bytes, &signer, repo, id);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn signed_documents_from_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        signed_documents(world(), &bytes);
    }

    #[test]
    fn signed_documents_mutated(e in edits(), which in 0..3usize) {
        let w = world();
        let base = [&w.commit_body, &w.tombstone_body, &w.config_body][which];
        signed_documents(w, &mutate(base, &e));
    }

    #[test]
    fn object_lists_mutated(e in edits()) {
        let w = world();
        let bytes = mutate(&w.list, &e);
        if let Ok(list) = object_list::parse(&bytes) {
            prop_assert!(!list.is_empty() && list.len() <= object_list::MAX_ENTRIES);
        }
    }

    #[test]
    fn manifests_mutated_whole_and_streamed(e in edits()) {
        let w = world();
        let json = mutate(&w.manifest_json, &e);
        let whole = Manifest::parse(&json, &w.commit).map(|m| m.entries.len());
        let streamed = Manifest::parse_reader(&json[..], &w.commit).map(|m| m.entries.len());
        // The two parsers agree on what they accept.
        prop_assert_eq!(whole.is_ok(), streamed.is_ok(), "{:?} vs {:?}", whole, streamed);
        // So does the two-pass check a backup runs before it commits (entries not held).
        let checked = snapdrill::format::streamed::check(&mut || Ok(&json[..]), &w.commit)
            .map(|(_, n)| n as usize);
        prop_assert_eq!(whole.is_ok(), checked.is_ok(), "{:?} vs {:?}", whole, checked);
        if let (Ok(a), Ok(b)) = (&whole, &checked) {
            prop_assert_eq!(a, b);
        }
    }

    #[test]
    fn manifests_from_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let w = world();
        let _ = Manifest::parse(&bytes, &w.commit);
        let _ = Manifest::parse_reader(&bytes[..], &w.commit);
        let _ = snapdrill::format::streamed::check(&mut || Ok(&bytes[..]), &w.commit);
    }

    #[test]
    fn sealed_objects_and_drill_records_mutated(e in edits(), which in 0..2usize) {
        let w = world();
        let base = [&w.sealed, &w.record][which];
        let bytes = mutate(base, &e);
        let _ = sealing::open(&bytes, w.ids.as_age(), 1 << 20);
        let _ = sealing::open_exact(&bytes, w.ids.as_age(), 19);
        let _ = record::open(&bytes, w.ids.as_age(), &w.key.dedup);
    }

    #[test]
    fn sealed_objects_from_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let w = world();
        let _ = sealing::open(&bytes, w.ids.as_age(), limits::CHUNK);
        let _ = record::open(&bytes, w.ids.as_age(), &w.key.dedup);
    }
}

/// The fixtures themselves are sound: unmutated, every parser accepts them.
#[test]
fn the_unmutated_objects_parse() {
    let w = world();
    let signer = w.key.signer();
    let id = &w.commit.snapshot_id;
    let repo = &w.key.repository_id;
    Commit::from_object(
        &signed::sign(&w.commit_body, Role::Snapshot, &w.key.signing),
        &signer,
        repo,
        id,
    )
    .unwrap();
    Tombstone::from_object(
        &signed::sign(&w.tombstone_body, Role::Tombstone, &w.key.signing),
        &signer,
        repo,
        id,
    )
    .unwrap();
    RepoConfig::from_object(
        &signed::sign(&w.config_body, Role::RepositoryConfig, &w.key.signing),
        &signer,
    )
    .unwrap();
    let m = Manifest::parse_reader(&w.manifest_json[..], &w.commit).unwrap();
    assert_eq!(m.entries.len(), 3);
    assert_eq!(
        sealing::open(&w.sealed, w.ids.as_age(), 1 << 20).unwrap(),
        b"hello, sealed world"
    );
    record::open(&w.record, w.ids.as_age(), &w.key.dedup).unwrap();
    let _ = &w.recipients;
}

proptest! {
    #![proptest_config(config())]

    /// A version-4 commit of any objects, in any first-use order, reads back through its
    /// object lists as exactly those objects and the lists themselves; a reader missing
    /// any one list refuses it.
    #[test]
    fn commits_round_trip_through_their_object_lists(
        objects in prop::collection::vec((any::<[u8; 32]>(), 0..4u8, 1..u64::MAX), 0..300),
        lost in any::<prop::sample::Index>(),
    ) {
        let w = world();
        let first_use: Vec<ChunkObject> = objects
            .iter()
            .map(|(id, cut, size)| {
                let mut id = *id;
                // A quarter end in a zero byte: lists of every length, and empty runs.
                id[31] = if *cut == 0 { 0 } else { id[31] | 1 };
                ChunkObject { id, sha256: id.map(|b| !b), size: *size }
            })
            .collect();
        let mut unique = first_use.clone();
        unique.sort_by_key(|o| o.id);
        unique.dedup_by_key(|o| o.id);
        prop_assume!(unique.len() == first_use.len());
        let (commit, lists) = Commit::new(
            &w.key.repository_id,
            &w.commit.snapshot_id,
            &w.commit.time,
            Origin { set: w.commit.data_set(), tags: Vec::new() },
            Summary::default(),
            w.commit.manifest.clone(),
            &first_use,
        );
        let signed = commit.to_object(&w.key.signing);
        let read = |skip: Option<usize>| {
            Commit::from_object(&signed, &w.key.signer(), &w.key.repository_id, &w.commit.snapshot_id)
                .unwrap()
                .resolve(|l| {
                    let i = lists.iter().position(|n| n.reference == *l).ok_or("unknown")?;
                    if Some(i) == skip {
                        return Err("lost".into());
                    }
                    object_list::parse(&lists[i].bytes).map(std::sync::Arc::new)
                })
        };
        let back = read(None).unwrap();
        prop_assert_eq!(&back.objects(), &commit.objects());
        prop_assert_eq!(back.objects().len(), first_use.len() + lists.len());
        for o in &first_use {
            prop_assert!(back.objects().find(&o.id).is_some());
        }
        if !lists.is_empty() {
            prop_assert!(read(Some(lost.index(lists.len()))).is_err());
        }
    }

    /// The compact chunk list writes exactly the text form the format describes (each
    /// object once, sorted by name), parses it back to the same list, and finds every
    /// object by name; any other order of the same text is refused.
    #[test]
    fn chunk_lists_round_trip_in_the_format_text(
        objects in prop::collection::vec((any::<[u8; 32]>(), 1..u64::MAX, any::<[u8; 32]>()), 0..64)
    ) {
        use snapdrill::format::chunk_list::ChunkObject;
        let refs: Vec<ObjectRef> = objects
            .iter()
            .map(|(id, size, sha)| ObjectRef {
                name: format::chunk_object(&hex::encode(id)),
                size: *size,
                sha256: hex::encode(sha),
            })
            .collect();
        let list = ChunkList::from_refs(&refs).unwrap();
        let mut text = refs.clone();
        text.sort_by(|a, b| a.name.cmp(&b.name));
        text.dedup_by(|a, b| a.name == b.name);
        let json = serde_json::to_string(&list).unwrap();
        prop_assert_eq!(&json, &serde_json::to_string(&text).unwrap());
        let back: ChunkList = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &list);
        for o in &text {
            let found = back.find_name(&o.name).map(|c| c.to_ref());
            prop_assert_eq!(found.as_ref().map(|f| (&f.sha256, f.size)), Some((&o.sha256, o.size)));
        }
        if text.len() > 1 {
            let mut reversed = text.clone();
            reversed.reverse();
            let json = serde_json::to_string(&reversed).unwrap();
            prop_assert!(serde_json::from_str::<ChunkList>(&json).is_err());
        }
        prop_assert!(ChunkObject::parse("chunks/zz/zz", 1, &"0".repeat(64)).is_none());
    }
}

/// A small entry list over a two-letter tree: duplicates, entries below files and
/// symlinks, overlapping and out-of-stream ranges all come up often.
fn tree_entries() -> impl Strategy<Value = Vec<serde_json::Value>> {
    let path = prop::collection::vec(prop::sample::select(vec!["a", "b"]), 1..4)
        .prop_map(|parts| parts.join("/"));
    let entry = (path, 0..3u8, 0..7u64, 0..7u64).prop_map(|(path, kind, offset, size)| {
        match kind {
            0 => serde_json::json!({"path": path, "type": "dir", "mode": 493, "mtime": 1, "mtime_ns": 0}),
            1 => serde_json::json!({"path": path, "type": "file", "mode": 420, "mtime": 1,
                "mtime_ns": 0, "size": size, "offset": offset, "sha256": "ef".repeat(32)}),
            _ => serde_json::json!({"path": path, "type": "symlink", "mode": 511, "mtime": 1,
                "mtime_ns": 0, "target": "x"}),
        }
    });
    prop::collection::vec(entry, 0..8)
}

proptest! {
    #![proptest_config(config())]

    /// The two-pass streamed check (what a backup runs before it commits, holding a hash per
    /// path instead of every entry) accepts exactly the manifests the whole reader accepts.
    #[test]
    fn the_streamed_check_accepts_what_the_whole_reader_accepts(entries in tree_entries()) {
        let w = world();
        let mut m: serde_json::Value = serde_json::from_slice(&w.manifest_json).unwrap();
        m["entries"] = serde_json::Value::Array(entries);
        let json = serde_json::to_vec(&m).unwrap();
        let whole = Manifest::parse(&json, &w.commit).map(|m| m.entries.len());
        let checked = snapdrill::format::streamed::check(&mut || Ok(&json[..]), &w.commit)
            .map(|(_, n)| n as usize);
        prop_assert_eq!(whole.is_ok(), checked.is_ok(), "{:?} vs {:?}", whole, checked);
        if let (Ok(a), Ok(b)) = (&whole, &checked) {
            prop_assert_eq!(a, b);
        }
    }
}
