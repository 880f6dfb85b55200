//! Rekey step 3: each live snapshot's manifest moved onto the new read key under a new
//! name, and its commit re-signed to name it and its chunks' new copies. In each store the
//! order is manifest, commit, then the old manifest's removal, so the commit a store holds
//! always names objects that are there.

use bytes::Bytes;

use super::{ChunkMap, Keys, StoreRekey, objects};
use crate::error::Result;
use crate::format::chunk_list::ChunkObject;
use crate::format::commit::{Commit, ObjectRef};
use crate::format::object_list::{self, NewList};
use crate::format::{self, limits};
use crate::prune::lease::Lease;
use crate::replicate;
use crate::repository::{Repository, Snapshot, SnapshotList};
use crate::sealing;
use crate::store::{PutMode, StoreErrorKind};

/// Re-sign every live snapshot.
pub(super) async fn run(
    repo: &Repository,
    keys: &Keys,
    snapshots: &SnapshotList,
    chunks: &ChunkMap,
    generation: u64,
    leases: &[Lease],
    stores: &mut [StoreRekey],
) -> Result<()> {
    for snap in &snapshots.trusted {
        let holders: Vec<usize> = snap
            .stores
            .iter()
            .filter_map(|n| repo.store_index(n))
            .collect();
        if let Err(why) = resign(
            repo, keys, snap, &holders, chunks, generation, leases, stores,
        )
        .await
        {
            for &i in &holders {
                stores[i]
                    .errors
                    .push(format!("snapshot {}: {why}", snap.commit.snapshot_id));
            }
        }
    }
    Ok(())
}

/// One snapshot: the commit each store holds, the new manifest and commit, then each
/// store brought to them.
#[allow(clippy::too_many_arguments)]
async fn resign(
    repo: &Repository,
    keys: &Keys,
    snap: &Snapshot,
    holders: &[usize],
    chunks: &ChunkMap,
    generation: u64,
    leases: &[Lease],
    stores: &mut [StoreRekey],
) -> std::result::Result<(), String> {
    let id = &snap.commit.snapshot_id;
    let new_name = format::manifest_object_rekeyed(id, generation);
    let held = held_commits(repo, holders, id).await;
    // A commit a killed run already re-signed names the new manifest: build on it, so
    // that every store ends with the same bytes.
    let base = held
        .iter()
        .filter_map(|(_, _, c)| c.as_ref())
        .find(|c| c.manifest.name == new_name)
        .or_else(|| held.iter().find_map(|(_, _, c)| c.as_ref()))
        .ok_or("no store holds a commit that verifies")?
        .clone();
    let manifest = new_manifest(repo, keys, &base, &new_name).await?;
    let mut next = base.clone();
    next.manifest = ObjectRef::of(&new_name, &manifest);
    let lists = relist(&mut next, chunks);
    let object = Bytes::from(next.to_object(&keys.write.signing));
    for (i, bytes, theirs) in held {
        if bytes.as_ref() == Some(&object) {
            continue;
        }
        leases[i].check().map_err(|e| e.to_string())?;
        let store = &repo.stores[i];
        for l in &lists {
            replicate::place(store, &l.reference, l.bytes.clone(), false)
                .await
                .map_err(|e| e.to_string())?;
        }
        store
            .put(&new_name, manifest.clone(), PutMode::Overwrite)
            .await
            .map_err(|e| e.to_string())?;
        store
            .put(
                &format::commit_object(id),
                object.clone(),
                PutMode::Overwrite,
            )
            .await
            .map_err(|e| e.to_string())?;
        let old = theirs.map_or_else(|| format::manifest_object(id), |c| c.manifest.name);
        if old != new_name {
            match store.delete(&old).await {
                Err(e) if e.kind != StoreErrorKind::NotFound => return Err(e.to_string()),
                _ => {}
            }
        }
        stores[i].commits += 1;
        stores[i].bytes += (manifest.len() + object.len()) as u64;
    }
    Ok(())
}

/// Name the chunks' new copies in `next`, through new object lists (commit version 4): a
/// version-4 commit keeps its lists' membership, an older one is cut in id order.
fn relist(next: &mut Commit, chunks: &ChunkMap) -> Vec<NewList> {
    let moved = |o: ChunkObject| match chunks.get(&o.name()) {
        Some(m) => ChunkObject::parse(&m.name, m.size, &m.sha256).unwrap_or(o),
        None => o,
    };
    let parts: Vec<Vec<ChunkObject>> = if next.lists.is_empty() {
        let all: Vec<ChunkObject> = next.objects().objects().map(moved).collect();
        object_list::cut(&all)
            .into_iter()
            .map(<[_]>::to_vec)
            .collect()
    } else {
        // Each list's chunks (the part holding the lists themselves is made anew).
        let parts = next.object_set().parts().iter();
        let lists = parts.filter(|p| p.objects().next().is_some_and(|o| !o.is_list()));
        lists.map(|p| p.objects().map(moved).collect()).collect()
    };
    let parts: Vec<&[ChunkObject]> = parts.iter().map(Vec::as_slice).collect();
    next.set_lists(&parts)
}

/// Each holder's commit object and, when it verifies, the commit.
async fn held_commits(
    repo: &Repository,
    holders: &[usize],
    id: &str,
) -> Vec<(usize, Option<Bytes>, Option<Commit>)> {
    let mut out = Vec::with_capacity(holders.len());
    for &i in holders {
        let bytes = repo.stores[i]
            .get(&format::commit_object(id), limits::COMMIT_OBJECT)
            .await
            .ok();
        let verified = bytes.as_ref().and_then(|b| {
            Commit::from_object(b, &repo.trust(), &repo.config.repository_id, id).ok()
        });
        let resolved = match verified {
            Some(v) => repo.resolve(v, false).await.ok(),
            None => None,
        };
        out.push((i, bytes, resolved));
    }
    out
}

/// The manifest on the new read key: the one `base` already pins (a killed run's), or the
/// one it pins re-encrypted. Never an unpinned object found under the new name — anyone
/// can encrypt to a public read key.
async fn new_manifest(
    repo: &Repository,
    keys: &Keys,
    base: &Commit,
    new_name: &str,
) -> std::result::Result<Bytes, String> {
    let pinned = base.manifest.clone();
    let fetched = repo
        .fetch_verified(&pinned, Ok)
        .await
        .map_err(|e| format!("its manifest: {e}"))?
        .value;
    if pinned.name == new_name {
        return Ok(fetched);
    }
    let payload = sealing::decrypt(&fetched, keys.old.as_age(), limits::MANIFEST)
        .map_err(|e| format!("its manifest does not open: {e}"))?;
    objects::rewrap(keys, new_name, &payload).map(Bytes::from)
}
