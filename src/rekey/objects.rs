//! Rekey step 2: every encrypted object that no live commit pins by name — chunks,
//! fossils, the manifests of forgotten snapshots — moved onto the new read
//! key in place, the same new bytes in every store that holds it.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use futures::StreamExt;

use super::{ChunkMap, Keys, StoreRekey, limit_of};
use crate::config::PruneSettings;
use crate::error::{Error, Result};
use crate::format::commit::ObjectRef;
use crate::format::repo_config::RepoConfig;
use crate::format::{self, limits};
use crate::prune::lease::Lease;
use crate::repository::{Repository, SnapshotList};
use crate::sealing::{self, SealError};
use crate::store::PutMode;

/// Objects moved at once (each holds at most one chunk's copies in memory).
const IN_FLIGHT: usize = 4;

/// Refuse to go on while a backup that began before the switch may still write objects
/// encrypted to an older read key: its `writers/` marker is older than the switch
/// generation's history copy (by the store's clock) and not yet dead.
pub(super) async fn no_early_writers(
    repo: &Repository,
    settings: &PruneSettings,
    switch: &RepoConfig,
) -> Result<()> {
    let history = format::config_history_object(switch.generation);
    for store in &repo.stores {
        let switched = store.head(&history).await?.modified;
        for marker in store.list(format::WRITERS_PREFIX).await? {
            let dead = switched
                .duration_since(marker.modified)
                .is_ok_and(|age| age > settings.writer_timeout);
            if marker.modified <= switched && !dead {
                return Err(Error::Fatal {
                    message: format!(
                        "store '{}': the backup {} began before the new read key and may still write objects for the old one; nothing was re-encrypted",
                        store.name(),
                        marker.key.trim_start_matches(format::WRITERS_PREFIX)
                    ),
                    hint: Some("run `snapdrill rekey` again when that backup has ended (it resumes where this run stopped)".into()),
                });
            }
        }
    }
    Ok(())
}

/// Move every object outside the live commits; the new reference of each chunk object.
pub(super) async fn run(
    repo: &Repository,
    keys: &Keys,
    snapshots: &SnapshotList,
    leases: &[Lease],
    stores: &mut [StoreRekey],
) -> Result<ChunkMap> {
    let names = holdings(repo, snapshots).await?;
    let mut moves = futures::stream::iter(names)
        .map(|(name, holders)| async move {
            let moved = move_object(repo, keys, &name, &holders, leases).await;
            (name, moved)
        })
        .buffer_unordered(IN_FLIGHT);
    let mut chunks = ChunkMap::new();
    while let Some((name, moved)) = moves.next().await {
        match moved {
            Ok(m) => {
                for (i, wrote) in m.per_store {
                    match wrote {
                        Some(bytes) => {
                            stores[i].rewritten += 1;
                            stores[i].bytes += bytes;
                        }
                        None => stores[i].already += 1,
                    }
                }
                if format::chunk_id_of(&name).is_some() {
                    chunks.insert(name, m.reference);
                }
            }
            Err((holders, why)) => {
                for i in holders {
                    stores[i].errors.push(format!("{name}: {why}"));
                }
            }
        }
    }
    Ok(chunks)
}

/// Every object to move, with the stores that hold it.
async fn holdings(
    repo: &Repository,
    snapshots: &SnapshotList,
) -> Result<BTreeMap<String, Vec<usize>>> {
    let live: HashSet<&str> = snapshots
        .trusted
        .iter()
        .map(|s| s.commit.snapshot_id.as_str())
        .collect();
    let mut names: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, store) in repo.stores.iter().enumerate() {
        // Drill records are renamed as they move (records.rs).
        for prefix in [
            format::CHUNKS_PREFIX,
            format::FOSSILS_PREFIX,
            format::MANIFESTS_PREFIX,
        ] {
            for o in store.list(prefix).await? {
                let wanted = match prefix {
                    p if p == format::CHUNKS_PREFIX => format::chunk_id_of(&o.key).is_some(),
                    p if p == format::FOSSILS_PREFIX => fossil_chunk_id(&o.key).is_some(),
                    // A live snapshot's manifest moves with its commit (step 3).
                    _ => format::manifest_snapshot_id(&o.key).is_some_and(|id| !live.contains(id)),
                };
                if wanted {
                    names.entry(o.key).or_default().push(i);
                }
            }
        }
    }
    Ok(names)
}

fn fossil_chunk_id(name: &str) -> Option<&str> {
    format::chunk_id_of(name.strip_prefix(format::FOSSILS_PREFIX)?)
}

/// One object moved: per store, the bytes written (`None`: it already held the new copy),
/// and the new reference.
struct Moved {
    per_store: Vec<(usize, Option<u64>)>,
    reference: ObjectRef,
}

/// Move one object: the new copy is one a store already holds (a killed run wrote it) or
/// one made from the first copy that opens and checks; it is written where it is not yet.
async fn move_object(
    repo: &Repository,
    keys: &Keys,
    name: &str,
    holders: &[usize],
    leases: &[Lease],
) -> std::result::Result<Moved, (Vec<usize>, String)> {
    let fail = |why: String| (holders.to_vec(), why);
    let mut copies = Vec::with_capacity(holders.len());
    for &i in holders {
        if let Ok(b) = repo.stores[i].get(name, limit_of(name)).await {
            copies.push((i, b));
        }
    }
    let new = new_copy(keys, name, &copies).map_err(fail)?;
    let mut per_store = Vec::with_capacity(holders.len());
    for &i in holders {
        if copies.iter().any(|(j, b)| *j == i && *b == new) {
            per_store.push((i, None));
            continue;
        }
        leases[i].check().map_err(|e| fail(e.to_string()))?;
        repo.stores[i]
            .put(name, new.clone(), PutMode::Overwrite)
            .await
            .map_err(|e| (vec![i], e.to_string()))?;
        per_store.push((i, Some(new.len() as u64)));
    }
    Ok(Moved {
        per_store,
        reference: ObjectRef::of(name, &new),
    })
}

/// The object's copy on the new read key: one a store holds that checks, else the first
/// copy that opens and checks, encrypted again (and opened again to be sure).
fn new_copy(
    keys: &Keys,
    name: &str,
    copies: &[(usize, Bytes)],
) -> std::result::Result<Bytes, String> {
    let new_only = [&keys.new as &dyn age::Identity];
    for (_, b) in copies {
        if let Ok(payload) = sealing::decrypt(b, new_only.into_iter(), limit_of(name))
            && check(keys, name, &payload).is_ok()
        {
            return Ok(b.clone());
        }
    }
    let mut why = String::from("no store holds a copy");
    for (i, b) in copies {
        match sealing::decrypt(b, keys.old.as_age(), limit_of(name))
            .map_err(|e| e.to_string())
            .and_then(|payload| check(keys, name, &payload).map(|()| payload))
        {
            Ok(payload) => return rewrap(keys, name, &payload).map(Bytes::from),
            Err(e) => why = format!("the copy in store #{i} does not open: {e}"),
        }
    }
    Err(why)
}

/// Encrypt `payload` (the zstd frame) to the new read key, then decrypt it again and
/// compare before anything is written.
pub(super) fn rewrap(
    keys: &Keys,
    name: &str,
    payload: &[u8],
) -> std::result::Result<Vec<u8>, String> {
    let sealed = sealing::encrypt(payload, std::slice::from_ref(&keys.new_public))
        .map_err(|e| e.to_string())?;
    let new_only = [&keys.new as &dyn age::Identity];
    match sealing::decrypt(&sealed, new_only.into_iter(), limit_of(name)) {
        Ok(back) if back == payload => Ok(sealed),
        Ok(_) => Err("the new encryption did not decrypt to the same bytes".into()),
        Err(e) => Err(format!("the new encryption does not open: {e}")),
    }
}

/// A chunk (or fossil) must decompress to content whose keyed id is its name; other
/// objects are checked by the age authentication alone (their readers check the rest).
fn check(keys: &Keys, name: &str, payload: &[u8]) -> std::result::Result<(), String> {
    let Some(id) = format::chunk_id_of(name).or_else(|| fossil_chunk_id(name)) else {
        return Ok(());
    };
    let plain =
        sealing::decompress(payload, limits::CHUNK).map_err(|e: SealError| e.to_string())?;
    if hex::encode(sealing::chunk_id(&keys.dedup, &plain)) != id {
        return Err("its content does not match the chunk's keyed id".into());
    }
    Ok(())
}
