//! What each store holds of the chunks, as listed at the start of a backup: one map from a
//! chunk's 32-byte id to the stores that list it under its name and as a fossil.
//!
//! A backup asks this index three things: is a chunk present anywhere (the planner reusing
//! a cached file, the uploader deduplicating), which stores hold it (copying what a store
//! lacks), and where its fossils are. One map with two store masks answers all three in
//! 56 to 100 bytes a chunk (the table's load), whatever the number of stores. Before, each store's listing was a set
//! of its own and the union was built twice (~114 bytes a chunk with one store, ~190 with
//! three: a repository of a million chunks in three stores held 190 MB of index).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::upload::StoreStates;
use crate::error::{Error, Result};
use crate::format;
use crate::store::{ObjectInfo, StoreRef};

/// The most stores one backup writes to: a store is a bit of a mask.
pub(super) const MAX_STORES: usize = 64;

/// Which stores listed a chunk: bit `i` is store `i`.
#[derive(Debug, Default, Clone, Copy)]
struct Holders {
    chunk: u64,
    fossil: u64,
}

/// Each store's chunks and fossils as listed at the start: the index.
#[derive(Debug, Default)]
pub(super) struct Listed(HashMap<[u8; 32], Holders>);

impl Listed {
    /// List every store, chunks then fossils; a store whose listing fails leaves the run.
    pub(super) async fn fetch(stores: &[StoreRef], states: &StoreStates) -> Result<Arc<Self>> {
        if stores.len() > MAX_STORES {
            return Err(Error::Usage(format!(
                "a backup writes to at most {MAX_STORES} stores; this one names {}: split the stores between jobs",
                stores.len()
            )));
        }
        let mut listed = Listed::default();
        listed.add(stores, states, format::CHUNKS_PREFIX).await;
        // Object lists are reused like chunks (a nightly names most of yesterday's).
        listed.add(stores, states, format::LISTS_PREFIX).await;
        // Listed after the chunks: a chunk prune moves meanwhile shows up in one of the two.
        listed.add(stores, states, format::FOSSILS_PREFIX).await;
        if (0..stores.len()).all(|i| !states.healthy(i)) {
            return Err(super::no_store_left(stores, states));
        }
        Ok(Arc::new(listed))
    }

    /// Fold each store's listing of `prefix` in object by object as the stores list them
    /// (all at once): no store's listing is held whole. A store whose listing fails leaves
    /// the run, and what it listed before failing is taken out again.
    async fn add(&mut self, stores: &[StoreRef], states: &StoreStates, prefix: &str) {
        let fossils = prefix == format::FOSSILS_PREFIX;
        let map = std::sync::Mutex::new(&mut *self);
        // A store that left the run (its chunk listing failed) is not listed again.
        let healthy = stores
            .iter()
            .enumerate()
            .filter(|&(i, _)| states.healthy(i));
        let listings = healthy.map(|(i, s)| {
            let map = &map;
            async move {
                let t = Instant::now();
                let mut objects = 0u64;
                let listed = s
                    .list_each(prefix, &mut |o| {
                        objects += 1;
                        map.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .see(i, fossils, &o);
                    })
                    .await;
                tracing::info!(
                    store = s.name(),
                    prefix,
                    objects,
                    ms = t.elapsed().as_millis() as u64,
                    "listed"
                );
                (i, listed)
            }
        });
        let failed: Vec<(usize, String)> = futures::future::join_all(listings)
            .await
            .into_iter()
            .filter_map(|(i, listed)| listed.err().map(|e| (i, e.to_string())))
            .collect();
        for (i, e) in failed {
            states.fail(i, format!("listing {prefix} failed: {e}"));
            self.forget(i);
        }
    }

    /// One listed object of store `store`.
    fn see(&mut self, store: usize, fossils: bool, o: &ObjectInfo) {
        let chunk = o.key.strip_prefix(format::FOSSILS_PREFIX).unwrap_or(&o.key);
        let Some(id) = format::chunk_name_id(chunk) else {
            return;
        };
        let h = self.0.entry(id).or_default();
        match fossils {
            true => h.fossil |= 1 << store,
            false => h.chunk |= 1 << store,
        }
    }

    /// Take out everything store `store` listed (its listing failed).
    fn forget(&mut self, store: usize) {
        let bit = !(1u64 << store);
        self.0.retain(|_, h| {
            (h.chunk, h.fossil) = (h.chunk & bit, h.fossil & bit);
            h.chunk | h.fossil != 0
        });
    }

    fn holders(&self, id: &[u8; 32]) -> Holders {
        self.0.get(id).copied().unwrap_or_default()
    }

    /// Does some store hold the chunk of this 32-byte id under its name? Fossils are not
    /// "present": a chunk prune set aside is sealed and uploaded anew under its name (a
    /// fossil may be deleted once the backups that predate it have ended).
    pub(super) fn present(&self, id: &[u8; 32]) -> bool {
        self.holders(id).chunk != 0
    }

    /// Did store `i` list the chunk `id` under its name?
    pub(super) fn in_store(&self, i: usize, id: &[u8; 32]) -> bool {
        self.holders(id).chunk & (1 << i) != 0
    }

    /// Did store `i` list the chunk `id` as a fossil?
    pub(super) fn fossil_in(&self, i: usize, id: &[u8; 32]) -> bool {
        self.holders(id).fossil & (1 << i) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn info(key: String) -> ObjectInfo {
        ObjectInfo {
            key,
            size: 1,
            modified: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn each_store_and_each_kind_is_its_own_bit() {
        let (a, b) = ([0xab; 32], [0xcd; 32]);
        let chunk = |id: &[u8; 32]| format::chunk_object(&hex::encode(id));
        let mut l = Listed::default();
        l.see(0, false, &info(chunk(&a)));
        l.see(0, false, &info("chunks/zz".into()));
        l.see(2, false, &info(chunk(&a)));
        l.see(1, true, &info(format::fossil_object(&chunk(&b))));
        assert!(l.in_store(0, &a) && !l.in_store(1, &a) && l.in_store(2, &a));
        assert!(l.present(&a));
        // A fossil alone is not present, and is where it was listed.
        assert!(!l.present(&b) && l.fossil_in(1, &b) && !l.fossil_in(0, &b));
        assert!(!l.in_store(1, &b) && !l.fossil_in(0, &a));
        assert_eq!(l.0.len(), 2, "a name that is not a chunk is not listed");
        // A store whose listing failed is taken out, and nothing else.
        l.forget(1);
        assert!(!l.fossil_in(1, &b) && l.in_store(0, &a) && l.in_store(2, &a));
        assert_eq!(l.0.len(), 1);
    }
}
