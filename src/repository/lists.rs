//! Reading a version-4 commit's object lists (docs/format.md section 7): each distinct list
//! is fetched and parsed once per process — the nightlies of one export share most of
//! theirs — and, for commands that keep a commit cache, once per host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;

use super::{Repository, on_a_core};
use crate::format::chunk_list::ChunkList;
use crate::format::commit::{Commit, ObjectRef, Verified};
use crate::format::object_list;

/// The lists this process has read, by name (a list's name is the hash of its bytes, so a
/// name stands for one content only).
#[derive(Debug, Clone, Default)]
pub struct ReadLists(Arc<Mutex<HashMap<String, Arc<ChunkList>>>>);

impl ReadLists {
    fn get(&self, name: &str) -> Option<Arc<ChunkList>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    fn put(&self, name: &str, list: Arc<ChunkList>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_owned()).or_insert(list);
    }
}

/// How many lists one commit reads at once.
const IN_FLIGHT: usize = 8;

impl Repository {
    /// The whole commit: its lists read from this process's table, the commit cache's
    /// copy (when `cached`) or the stores, each checked against the hash its commit pins.
    pub async fn resolve(&self, v: Verified, cached: bool) -> Result<Commit, String> {
        let missing: Vec<ObjectRef> = v
            .lists()
            .iter()
            .filter(|l| self.lists.get(&l.name).is_none())
            .cloned()
            .collect();
        let mut reads = futures::stream::iter(missing)
            .map(|l| async move {
                let read = self.read_list(&l, cached).await;
                (l, read)
            })
            .buffer_unordered(IN_FLIGHT);
        let mut failed = HashMap::new();
        while let Some((l, read)) = reads.next().await {
            match read {
                Ok(list) => self.lists.put(&l.name, list),
                Err(e) => {
                    failed.insert(l.name, e);
                }
            }
        }
        // Cheap: the lists are shared, not merged (no job on a core for it).
        v.resolve(|l| match self.lists.get(&l.name) {
            Some(list) => Ok(list),
            None => Err(failed.remove(&l.name).unwrap_or_default()),
        })
        .map_err(|e| e.to_string())
    }

    async fn read_list(&self, l: &ObjectRef, cached: bool) -> Result<Arc<ChunkList>, String> {
        let cache = self.commit_cache.as_ref().filter(|_| cached);
        if let Some(bytes) = cache.and_then(|c| c.load_list(l))
            && let Ok(list) = parse(bytes).await
        {
            return Ok(list);
        }
        // A list prune has set aside (a backup named it while prune took it for garbage)
        // is still the pinned bytes: read it from its fossil, and the next prune brings it
        // back, as it does chunks. Without this, that snapshot would be unreadable and
        // prune, refusing to run beside it, would never bring the list back.
        let fetched = match self.fetch_verified(l, |b: Bytes| Ok(b)).await {
            Ok(f) => f,
            Err(e) => {
                let fossil = ObjectRef {
                    name: crate::format::fossil_object(&l.name),
                    ..l.clone()
                };
                self.fetch_verified(&fossil, |b: Bytes| Ok(b))
                    .await
                    .map_err(|_| e.to_string())?
            }
        };
        let list = parse(fetched.value.clone()).await?;
        if let Some(cache) = cache {
            cache.save_list(l, &fetched.value);
        }
        Ok(list)
    }
}

async fn parse(bytes: Bytes) -> Result<Arc<ChunkList>, String> {
    on_a_core(move || object_list::parse(&bytes).map(Arc::new)).await?
}
