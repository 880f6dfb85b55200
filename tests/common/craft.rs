//! Hostile snapshots crafted with the library API and the repository's own write key (the
//! compromised backup host), so that only the readers' checks stand in the way.

use std::fs;
use std::time::SystemTime;

use snapdrill::format::chunk_list::{ChunkList, ChunkObject};
use snapdrill::format::commit::{Commit, DataSet, ObjectRef, Origin, Summary};
use snapdrill::format::manifest::{ChunkRef, Entry, EntryKind, Manifest, WirePath};
use snapdrill::format::{self, chunk_object, commit_object, manifest_object};
use snapdrill::keys::WriteKey;
use snapdrill::keys::recipient::legacy_recipients as parse_recipients;
use snapdrill::sealing::{chunk_id, seal, sha256};

use super::Env;

/// What to craft. `Default` gives an empty snapshot timed now.
#[derive(Default)]
pub(crate) struct Spec {
    /// The chunk stream: one chunk, or chunks of `chunk_size` bytes when it is not 0.
    pub stream: Vec<u8>,
    pub chunk_size: usize,
    /// The manifest's entries.
    pub entries: Vec<Entry>,
    /// The commit's and the manifest's time (default: now, formatted as backups do).
    pub time: Option<String>,
    /// The snapshot id (default: a fresh one for now).
    pub snapshot_id: Option<String>,
    /// The commit's host (default `crafter`), job (default `crafted`) and tags.
    pub host: Option<String>,
    pub job: Option<String>,
    /// Write a format-1 commit (no job, no source), as snapdrill 0.1 did.
    pub v1: bool,
    pub tags: Vec<String>,
    /// Seal these bytes as the manifest instead of the JSON of the fields above.
    pub raw_manifest: Option<Vec<u8>>,
}

/// A file entry whose content is `content` at `offset` of the stream.
pub(crate) fn file_entry(path: &[u8], content: &[u8], offset: u64) -> Entry {
    Entry {
        size: Some(content.len() as u64),
        sha256: Some(hex::encode(sha256(content))),
        offset: Some(offset),
        ..entry(path, EntryKind::File)
    }
}

/// A symlink entry.
pub(crate) fn symlink_entry(path: &[u8], target: &[u8]) -> Entry {
    Entry {
        mode: 0o777,
        target: Some(WirePath(target.to_vec())),
        ..entry(path, EntryKind::Symlink)
    }
}

/// A directory entry.
pub(crate) fn dir_entry(path: &[u8]) -> Entry {
    Entry {
        mode: 0o755,
        ..entry(path, EntryKind::Dir)
    }
}

fn entry(path: &[u8], kind: EntryKind) -> Entry {
    Entry::bare(WirePath(path.to_vec()), kind, 0o644, 1_700_000_000, 0)
}

/// Write a correctly sealed manifest and its correctly signed commit (and the chunk, when
/// the stream is not empty) into each of `stores`; returns the snapshot id.
pub(crate) fn snapshot(env: &Env, stores: &[&str], spec: Spec) -> String {
    let key = WriteKey::load(&env.write_key()).unwrap();
    let recipients = parse_recipients(std::slice::from_ref(&env.recipient)).unwrap();
    let now = SystemTime::now();
    let snapshot_id = spec
        .snapshot_id
        .clone()
        .unwrap_or_else(|| format::new_snapshot_id(now));
    // A commit's time must be the time its id carries.
    let time = spec
        .time
        .clone()
        .unwrap_or_else(|| match &spec.snapshot_id {
            Some(id) => {
                let d = id.as_bytes();
                let s = |r: std::ops::Range<usize>| String::from_utf8_lossy(&d[r]).into_owned();
                format!(
                    "{}-{}-{}T{}:{}:{}Z",
                    s(0..4),
                    s(4..6),
                    s(6..8),
                    s(9..11),
                    s(11..13),
                    s(13..15)
                )
            }
            None => format::format_time(now),
        });
    let mut objects = Vec::new();
    let mut manifest = Manifest::new(&key.repository_id, &snapshot_id, &time);
    manifest.sources = vec![WirePath(b"/crafted".to_vec())];
    let mut files = Vec::new();
    let size = match spec.chunk_size {
        0 => spec.stream.len().max(1),
        n => n,
    };
    for piece in spec.stream.chunks(size) {
        let id = hex::encode(chunk_id(&key.dedup, piece));
        manifest.chunks.push(ChunkRef {
            id: snapdrill::format::manifest::ChunkId(chunk_id(&key.dedup, piece)),
            size: piece.len() as u64,
        });
        if objects
            .iter()
            .any(|o: &ObjectRef| o.name == chunk_object(&id))
        {
            continue;
        }
        let sealed = seal(piece, 3, &recipients).unwrap();
        objects.push(ObjectRef {
            name: chunk_object(&id),
            size: sealed.len() as u64,
            sha256: hex::encode(sha256(&sealed)),
        });
        files.push((chunk_object(&id), sealed));
    }
    let mut summary = Summary::default();
    for e in &spec.entries {
        match e.kind {
            EntryKind::File => {
                summary.files += 1;
                summary.bytes = summary.bytes.wrapping_add(e.file_size());
            }
            EntryKind::Dir => summary.dirs += 1,
            EntryKind::Symlink => summary.symlinks += 1,
        }
    }
    manifest.entries = spec.entries;
    let json = spec
        .raw_manifest
        .unwrap_or_else(|| serde_json::to_vec(&manifest).unwrap());
    let sealed_manifest = seal(&json, 3, &recipients).unwrap();
    let first_use: Vec<ChunkObject> = objects
        .iter()
        .map(|o| ChunkObject::parse(&o.name, o.size, &o.sha256).unwrap())
        .collect();
    let (mut commit, lists) = Commit::new(
        &key.repository_id,
        &snapshot_id,
        &time,
        Origin {
            set: DataSet {
                host: spec.host.unwrap_or_else(|| "crafter".into()),
                job: Some(spec.job.unwrap_or_else(|| "crafted".into())),
                source: Some("cc".repeat(16)),
            },
            tags: spec.tags,
        },
        summary,
        ObjectRef {
            name: manifest_object(&snapshot_id),
            size: sealed_manifest.len() as u64,
            sha256: hex::encode(sha256(&sealed_manifest)),
        },
        &first_use,
    );
    if spec.v1 {
        (commit.version, commit.job, commit.source) = (1, None, None);
        // Version 1 lists its objects itself.
        commit.set_inline(ChunkList::new(first_use));
    } else {
        files.extend(
            lists
                .into_iter()
                .map(|l| (l.reference.name, l.bytes.to_vec())),
        );
    }
    files.push((manifest_object(&snapshot_id), sealed_manifest));
    files.push((commit_object(&snapshot_id), commit.to_object(&key.signing)));
    for store in stores {
        for (name, bytes) in &files {
            let path = env.store(store).join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, bytes).unwrap();
        }
    }
    snapshot_id
}
