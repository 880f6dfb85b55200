//! A local copy of the signed commits already read, so that listing a long history reads
//! only the commits that are new since the last run (`cache_dir/commits/<repository-id>/`).
//!
//! Commits are immutable and signed, so a cached one is as good as the store's: it is
//! verified again on every load (signature, repository, snapshot id), and one that fails is
//! a miss, read from the stores again. A cached commit stands in for a store's copy only
//! while that store lists the commit with exactly the size and modification time it had
//! when its bytes were read and verified: a commit rewritten in the store (an attacker, a
//! damaged disk) has a new modification time, so it is read again and reported as untrusted
//! just as without the cache. An entry no store lists any more is removed. Drills and audits
//! never read this cache: they prove what the stores hold.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::format::commit::{Commit, ObjectRef, Verified};
use crate::format::{self};
use crate::localfs::atomic::{self, NewMode};

/// How a store listed a commit object: the store's name, the size and modification time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The store.
    pub store: String,
    /// The listed size.
    pub size: u64,
    /// The listed modification time, nanoseconds since the Unix epoch.
    pub modified_ns: i128,
}

impl Seen {
    /// From a listing entry.
    pub fn new(store: &str, size: u64, modified: std::time::SystemTime) -> Seen {
        let modified_ns = match modified.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        };
        Seen {
            store: store.to_owned(),
            size,
            modified_ns,
        }
    }
}

/// The commit cache of one repository.
#[derive(Debug, Clone)]
pub struct CommitCache {
    dir: PathBuf,
}

impl CommitCache {
    /// The cache of repository `repository_id` under `cache_dir`.
    pub fn new(cache_dir: &Path, repository_id: &str) -> CommitCache {
        CommitCache {
            dir: cache_dir.join("commits").join(repository_id),
        }
    }

    /// The cached commit, if one of `listed` is a listing whose bytes were read and verified
    /// before (same store, size and modification time) and the cached bytes still verify.
    pub fn load(
        &self,
        id: &str,
        listed: &[Seen],
        signer: &format::signed::Signers,
        repository_id: &str,
    ) -> Option<Verified> {
        if !format::is_snapshot_id(id) {
            return None;
        }
        let seen: Vec<Seen> = serde_json::from_slice(&fs::read(self.seen_path(id)).ok()?).ok()?;
        if !listed.iter().any(|l| seen.contains(l)) {
            return None;
        }
        let bytes = fs::read(self.dir.join(id)).ok()?;
        Commit::from_object(&bytes, signer, repository_id, id).ok()
    }

    /// Keep a commit's bytes, read from the store listed as `seen` and verified (best
    /// effort: a cache that cannot be written only means reading the stores next time).
    pub fn save(&self, id: &str, object: &[u8], seen: Seen) {
        if format::is_snapshot_id(id) {
            let _ = self.write(id, object, seen);
        }
    }

    fn write(&self, id: &str, object: &[u8], seen: Seen) -> std::io::Result<()> {
        let path = self.dir.join(id);
        // Every store holds the same bytes for a commit. Should the kept bytes differ, the
        // listings recorded describe other bytes: start afresh.
        let mut all: Vec<Seen> = match fs::read(&path) {
            Ok(b) if b == object => fs::read(self.seen_path(id))
                .ok()
                .and_then(|s| serde_json::from_slice(&s).ok())
                .unwrap_or_default(),
            _ => {
                let _ = fs::remove_file(self.seen_path(id));
                // Unsynced: a torn entry after a crash no longer verifies, a miss.
                atomic::write(&path, object, NewMode::Private, false)?;
                Vec::new()
            }
        };
        if !all.contains(&seen) {
            all.push(seen);
        }
        let listing = serde_json::to_vec(&all).map_err(std::io::Error::other)?;
        atomic::write(&self.seen_path(id), &listing, NewMode::Private, false)
    }

    fn seen_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.seen"))
    }

    /// A kept object list (commit version 4), if its bytes still match `list`.
    pub fn load_list(&self, list: &ObjectRef) -> Option<bytes::Bytes> {
        let bytes = fs::read(self.list_path(list)?).ok()?;
        list.matches(&bytes).then(|| bytes.into())
    }

    /// Keep an object list's bytes, read from a store and matched to its reference.
    pub fn save_list(&self, list: &ObjectRef, bytes: &[u8]) {
        if let Some(path) = self.list_path(list) {
            let _ = fs::create_dir_all(self.dir.join("lists"));
            let _ = atomic::write(&path, bytes, NewMode::Private, false);
        }
    }

    fn list_path(&self, list: &ObjectRef) -> Option<PathBuf> {
        let id = format::list_id_of(&list.name)?;
        Some(self.dir.join("lists").join(id))
    }

    /// Remove the kept lists no trusted commit names any more.
    pub fn retain_lists<'a>(&self, named: impl IntoIterator<Item = &'a ObjectRef>) {
        let keep: std::collections::HashSet<&str> = named
            .into_iter()
            .filter_map(|l| format::list_id_of(&l.name))
            .collect();
        let Ok(entries) = fs::read_dir(self.dir.join("lists")) else {
            return;
        };
        for entry in entries.flatten() {
            if !keep.contains(entry.file_name().to_string_lossy().as_ref()) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Remove the entries of commits no store lists any more (forgotten and pruned).
    pub fn retain<V>(&self, listed: &BTreeMap<String, V>) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let id = name.strip_suffix(".seen").unwrap_or(&name);
            if format::is_snapshot_id(id) && !listed.contains_key(id) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}
