//! The end of a backup: know every object's ciphertext hash, give each store what it lacks,
//! refuse to commit what a reader would refuse, then per store write the manifest and —
//! last, after a fresh listing confirms every object — the signed commit.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;

use bytes::Bytes;
use futures::StreamExt;

use super::upload::{self, StoreStates};
use crate::error::{Error, Result};
use crate::format::chunk_list::ChunkObject;
use crate::format::commit::Commit;
use crate::format::manifest::ChunkId;
use crate::format::object_list::NewList;
use crate::format::{self, limits};
use crate::keys::WriteKey;
use crate::replicate;
use crate::repository::Repository;
use crate::sealing;
use crate::store::{self, StoreRef};

/// What each store holds of the chunks, as listed at the start, and what this run sealed.
pub(super) struct Held<'a> {
    /// How many stores the run writes to.
    pub(super) stores: usize,
    pub(super) listed: &'a super::Listed,
    pub(super) sealed: &'a HashMap<[u8; 32], upload::SealedChunk>,
}

impl Held<'_> {
    /// Does store `i` hold chunk `id` under its own name?
    fn has(&self, i: usize, id: &ChunkId) -> bool {
        self.listed.in_store(i, &id.0) || self.sealed_chunk(id).is_some_and(|c| c.in_store(i))
    }

    /// What this run sealed of chunk `id`.
    fn sealed_chunk(&self, id: &ChunkId) -> Option<&upload::SealedChunk> {
        self.sealed.get(&id.0)
    }

    /// Where to read chunk `id` for store `to`: its own fossil first (bringing it back costs
    /// no transfer), then another store's chunk, then another store's fossil.
    fn source(&self, to: usize, id: &ChunkId) -> Option<(usize, String)> {
        let chunk = id.object_name();
        let n = self.stores;
        if self.listed.fossil_in(to, &id.0) {
            return Some((to, format::fossil_object(&chunk)));
        }
        if let Some(j) = (0..n).find(|&j| j != to && self.has(j, id)) {
            return Some((j, chunk));
        }
        (0..n)
            .find(|&j| self.listed.fossil_in(j, &id.0))
            .map(|j| (j, format::fossil_object(&chunk)))
    }
}

/// The ciphertext size and SHA-256 of every needed chunk, as the commit will list it (its
/// binary form: no name or hash string is made for a chunk the commit lists): from this run, from earlier
/// commits, or — for chunks no commit lists (left by an interrupted run, or set aside by
/// prune) — by reading them.
pub(super) async fn resolve_hashes(
    repo: &Repository,
    needed: &[ChunkId],
    held: &Held<'_>,
) -> Result<HashMap<ChunkId, ChunkObject>> {
    let mut resolved = HashMap::with_capacity(needed.len());
    let mut open: HashSet<ChunkId> = HashSet::new();
    for id in needed {
        match held.sealed_chunk(id) {
            Some(c) => {
                let object = ChunkObject {
                    id: id.0,
                    sha256: c.sha256,
                    size: c.size,
                };
                resolved.insert(*id, object);
            }
            None => {
                open.insert(*id);
            }
        }
    }
    if !open.is_empty() {
        let commits = repo.live_commits_newest_first().await?;
        futures::pin_mut!(commits);
        while let Some(commit) = commits.next().await {
            // Each open id looked up in the commit's sorted list, not every entry encoded.
            open.retain(|id| match commit.chunk(id) {
                Some(o) => {
                    resolved.insert(*id, o.get());
                    false
                }
                None => true,
            });
            if open.is_empty() {
                break;
            }
        }
    }
    for id in open {
        let bytes = read_unlisted(repo, held, &id).await?;
        let object = ChunkObject {
            id: id.0,
            sha256: sealing::sha256(&bytes),
            size: bytes.len() as u64,
        };
        resolved.insert(id, object);
    }
    Ok(resolved)
}

/// Read a chunk no commit lists, wherever it is: under its name, or as a fossil (prune may
/// set it aside while this run is going).
pub(super) async fn read_unlisted(
    repo: &Repository,
    held: &Held<'_>,
    id: &ChunkId,
) -> Result<Bytes> {
    let chunk = id.object_name();
    let fossil = format::fossil_object(&chunk);
    let mut last = None;
    for (i, store) in repo.stores.iter().enumerate() {
        if !held.listed.in_store(i, &id.0) && !held.listed.fossil_in(i, &id.0) {
            continue;
        }
        for key in [&chunk, &fossil] {
            match store.get(key, limits::CHUNK + limits::SEAL_OVERHEAD).await {
                Ok(b) => return Ok(b),
                Err(e) => last = Some(e),
            }
        }
    }
    Err(match last {
        Some(e) => Error::Fatal {
            message: format!("chunk {id} could not be read from any store ({e})"),
            hint: Some("run the backup again; add --force-read if it keeps failing".into()),
        },
        None => Error::fatal(format!(
            "chunk {id} is in no store; run the backup again with --force-read"
        )),
    })
}

/// Give every healthy store the chunks it lacks, copying the exact ciphertext from a store
/// that has it (or bringing back a fossil), so every replica holds the same bytes and the
/// same commit.
pub(super) async fn copy_missing(
    stores: &[StoreRef],
    states: &StoreStates,
    needed: &[ChunkId],
    resolved: &HashMap<ChunkId, ChunkObject>,
    held: &Held<'_>,
) {
    let mut copies = Vec::new();
    for (i, _) in stores
        .iter()
        .enumerate()
        .filter(|(i, _)| states.healthy(*i))
    {
        for id in needed.iter().filter(|id| !held.has(i, id)) {
            if let Some((from, key)) = held.source(i, id) {
                copies.push((from, key, i, id));
            } else {
                states.fail(i, format!("chunk {id} is in no store to copy from"));
            }
        }
    }
    futures::stream::iter(copies)
        .for_each_concurrent(upload::COPIES_IN_FLIGHT, |(from, key, to, id)| async move {
            if !states.healthy(to) {
                return;
            }
            let want = resolved[id].to_ref();
            match replicate::copy(&stores[from], &key, &stores[to], &want, false).await {
                Ok(Some(n)) => states.count_upload(to, n),
                Ok(None) => {}
                Err(e) => states.fail(
                    to,
                    format!("copying {key} from '{}' failed: {e}", stores[from].name()),
                ),
            }
        })
        .await;
}

/// Seal the spooled manifest (`spool`: its compressed JSON) for the recipients.
pub(super) fn seal_spooled(spool: &File, recipients: &[age::x25519::Recipient]) -> Result<Vec<u8>> {
    let sealing = |e: String| Error::fatal(format!("sealing the manifest: {e}"));
    let len = spool.metadata().map_err(|e| sealing(e.to_string()))?.len();
    sealing::encrypt_from(&mut At::start(spool), len as usize, recipients)
        .map_err(|e| sealing(e.to_string()))
}

/// A file read from its start by position, whoever else reads it.
struct At<'f> {
    file: &'f File,
    pos: u64,
}

impl<'f> At<'f> {
    fn start(file: &'f File) -> Self {
        At { file, pos: 0 }
    }
}

impl std::io::Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Never commit what our own reader refuses: the commit is verified and the manifest's JSON
/// parsed and validated by exactly the code every reader runs (a symlinked source once gave
/// "backup complete" snapshots that no reader accepted). The backup host cannot decrypt the
/// sealed manifest, so it checks the compressed plaintext it sealed, decompressing it as a
/// reader does (which also proves the zstd round trip).
pub(super) fn check_before_commit(
    manifest_zstd: &File,
    commit_bytes: &[u8],
    commit: &Commit,
    lists: &[NewList],
    key: &WriteKey,
) -> Result<()> {
    let refused = |why: String| {
        Error::Fatal {
        message: format!(
            "refusing to commit snapshot {}: every reader would refuse it ({why}); nothing was committed",
            commit.snapshot_id
        ),
        hint: Some(
            "this is a bug in snapdrill: please report it with this message; the chunks already uploaded are reused by the next backup"
                .into(),
        ),
    }
    };
    let read_back = Commit::from_object(
        commit_bytes,
        &key.signer(),
        &commit.repository_id,
        &commit.snapshot_id,
    )
    .and_then(|v| {
        v.resolve(|l| {
            let list = lists
                .iter()
                .find(|n| n.reference == *l)
                .ok_or("not written")?;
            format::object_list::parse(&list.bytes).map(std::sync::Arc::new)
        })
    })
    .map_err(|e| refused(format!("commit: {e}")))?;
    if read_back.objects() != commit.objects() || read_back.object_set().conflict().is_some() {
        return Err(refused("its object lists do not hold its objects".into()));
    }
    // Streamed (format::streamed): the manifest is not held a second time.
    let mut open =
        || zstd::stream::Decoder::new(At::start(manifest_zstd)).map_err(|e| format!("zstd: {e}"));
    format::streamed::check(&mut open, &read_back)
        .map_err(|e| refused(format!("manifest: {e}")))?;
    Ok(())
}

/// A signed commit and what it needs besides its chunks.
pub(super) struct Sealed<'a> {
    pub(super) commit: &'a Commit,
    /// Its object lists (written before it, like chunks).
    pub(super) lists: &'a [NewList],
    /// The sealed manifest.
    pub(super) manifest: Bytes,
    /// The signed commit.
    pub(super) commit_bytes: Bytes,
}

/// Object lists written to one store at once.
const LISTS_IN_FLIGHT: usize = 8;

/// Write the object lists, confirm each healthy store holds every object at the right size,
/// then write its manifest and, last, its commit. A store that fails leaves the run; the
/// others still commit.
pub(super) async fn commit_everywhere(
    stores: &[StoreRef],
    states: &StoreStates,
    held: &Held<'_>,
    sealed: Sealed<'_>,
) {
    let sealed = &sealed;
    let jobs = stores
        .iter()
        .enumerate()
        .filter(|(i, _)| states.healthy(*i))
        .map(|(i, store)| async move {
            if let Err(e) = commit_in(store, i, states, held, sealed).await {
                states.fail(i, e.to_string());
            }
        });
    futures::future::join_all(jobs).await;
}

/// Write the lists store `i` did not list at the start (a list it holds is reused like a
/// chunk, and confirmed with them).
async fn put_lists(
    store: &StoreRef,
    i: usize,
    states: &StoreStates,
    held: &Held<'_>,
    lists: &[NewList],
) -> Result<()> {
    // A list is listed by its id (its SHA-256), like a chunk; this run never seals one.
    let listed = |l: &NewList| {
        format::chunk_id_bytes(&l.reference.sha256).is_some_and(|id| held.listed.in_store(i, &id))
    };
    let missing = lists.iter().filter(|l| !listed(l));
    let mut puts = futures::stream::iter(missing)
        .map(|l| async move {
            let placed = replicate::place(store, &l.reference, l.bytes.clone(), false).await?;
            if placed == store::Created::Written {
                states.count_upload(i, l.reference.size);
            }
            Ok::<_, Error>(())
        })
        .buffer_unordered(LISTS_IN_FLIGHT);
    while let Some(put) = puts.next().await {
        put?;
    }
    Ok(())
}

async fn commit_in(
    store: &StoreRef,
    i: usize,
    states: &StoreStates,
    held: &Held<'_>,
    sealed: &Sealed<'_>,
) -> Result<()> {
    let (commit, manifest) = (sealed.commit, sealed.manifest.clone());
    put_lists(store, i, states, held, sealed.lists).await?;
    confirm_objects(store, commit).await?;
    let manifest_len = manifest.len() as u64;
    if replicate::commit(store, &commit.manifest.name, manifest).await? == store::Created::Written {
        states.count_upload(i, manifest_len);
    }
    let head = store.head(&commit.manifest.name).await?;
    if head.size != commit.manifest.size {
        return Err(Error::integrity(
            Some(store.name()),
            Some(&commit.manifest.name),
            "size differs after upload",
        ));
    }
    let name = format::commit_object(&commit.snapshot_id);
    let commit_len = sealed.commit_bytes.len() as u64;
    let commit_bytes = sealed.commit_bytes.clone();
    if replicate::commit(store, &name, commit_bytes).await? == store::Created::Written {
        states.count_upload(i, commit_len);
    }
    Ok(())
}

/// Check that `store` lists every object at its size. A chunk this run reused may have
/// been set aside by prune since the run began: if it is gone it is brought back from its
/// fossil; if a fossil exists beside it, another backup may have uploaded a new encryption
/// under the name, so its bytes are checked. The commit must never name a missing or
/// different object.
pub(super) async fn confirm_objects(store: &StoreRef, commit: &Commit) -> Result<()> {
    // What the store lists of this commit's objects, by their place in its list: the
    // listings themselves are not held (a million chunks made a 190 MB map of names).
    let objects = commit.objects();
    let mut listed: Vec<Option<u64>> = vec![None; objects.len()];
    let mut fossils = vec![false; objects.len()];
    for prefix in [format::CHUNKS_PREFIX, format::LISTS_PREFIX] {
        store
            .list_each(prefix, &mut |o| {
                if let Some(i) = objects.position_of_name(&o.key) {
                    listed[i] = Some(o.size);
                }
            })
            .await?;
    }
    store
        .list_each(format::FOSSILS_PREFIX, &mut |o| {
            let chunk = o
                .key
                .strip_prefix(format::FOSSILS_PREFIX)
                .unwrap_or_default();
            if let Some(i) = objects.position_of_name(chunk) {
                fossils[i] = true;
            }
        })
        .await?;
    for (i, o) in objects.objects().map(|o| o.to_ref()).enumerate() {
        match listed[i] {
            Some(size) if size != o.size => {
                return Err(Error::integrity(
                    Some(store.name()),
                    Some(&o.name),
                    format!("is {size} bytes, {} expected; not committed here", o.size),
                ));
            }
            Some(_) if fossils[i] => {
                let bytes = store.get(&o.name, o.size).await?;
                if !o.matches(&bytes) {
                    return Err(Error::integrity(
                        Some(store.name()),
                        Some(&o.name),
                        "was set aside by prune and another backup stored a different encryption under its name; not committed here (the next backup completes it)",
                    ));
                }
            }
            Some(_) => {}
            None => {
                replicate::copy(store, &format::fossil_object(&o.name), store, &o, false).await.map_err(|e| {
                    Error::integrity(
                        Some(store.name()),
                        Some(&o.name),
                        format!("is missing after upload and has no intact fossil ({e}); not committed here"),
                    )
                })?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::backup::plan::plain_entry;
    use crate::format::commit::Summary;
    use crate::format::manifest::{Entry, EntryKind, Manifest, WirePath};
    use crate::format::writer::ManifestWriter;
    use crate::source::Meta;

    fn entry(path: &str, kind: EntryKind) -> Entry {
        let meta = Meta {
            mode: 0o644,
            mtime: 0,
            mtime_ns: 0,
            size: 0,
            ino: 0,
            ctime: 0,
            ctime_ns: 0,
            dev: 0,
        };
        let mut e = plain_entry(WirePath(path.as_bytes().to_vec()), kind, &meta);
        if kind == EntryKind::Symlink {
            e.target = Some(WirePath(b"/elsewhere".to_vec()));
        }
        e
    }

    fn commit_of(key: &WriteKey, m: &Manifest) -> (Commit, Vec<NewList>) {
        let manifest_ref = crate::format::commit::ObjectRef {
            name: format::manifest_object(&m.snapshot_id),
            size: 1,
            sha256: "0".repeat(64),
        };
        Commit::new(
            &key.repository_id,
            &m.snapshot_id,
            &m.time,
            crate::format::commit::Origin {
                set: crate::format::commit::DataSet {
                    host: "host".into(),
                    job: Some("test".into()),
                    source: Some("ab".repeat(16)),
                },
                tags: Vec::new(),
            },
            Summary::default(),
            manifest_ref,
            &[],
        )
    }

    /// The gate refuses exactly what readers refuse: an entry below a symlink (what a
    /// symlinked source root once produced), a path twice; it passes a sound manifest.
    #[test]
    fn a_manifest_the_reader_would_refuse_is_never_committed() {
        let key = WriteKey::generate();
        let now = SystemTime::now();
        let (id, time) = (format::new_snapshot_id(now), format::format_time(now));
        let check = |entries: Vec<Entry>| {
            let mut m = Manifest::new(&key.repository_id, &id, &time);
            m.entries = entries;
            let (commit, lists) = commit_of(&key, &m);
            // Written as a backup writes it: streamed into an unlinked temporary file.
            let spool = tempfile::tempfile().unwrap();
            let mut w = ManifestWriter::new(spool.try_clone().unwrap(), 3, &m).unwrap();
            for e in &m.entries {
                w.entry(e).unwrap();
            }
            w.finish(&m.chunks).unwrap();
            check_before_commit(
                &spool,
                &commit.to_object(&key.signing),
                &commit,
                &lists,
                &key,
            )
        };
        assert!(
            check(vec![
                entry("exports", EntryKind::Dir),
                entry("exports/a", EntryKind::Dir)
            ])
            .is_ok()
        );
        for bad in [
            vec![
                entry("exports", EntryKind::Symlink),
                entry("exports/a", EntryKind::Dir),
            ],
            vec![
                entry("exports", EntryKind::Dir),
                entry("exports", EntryKind::Dir),
            ],
        ] {
            let err = check(bad).unwrap_err().to_string();
            assert!(
                err.contains("refusing to commit snapshot")
                    && err.contains("nothing was committed"),
                "{err}"
            );
        }
    }
}
