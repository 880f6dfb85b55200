//! A store's `chunks/` (and `lists/`) listing as prune holds it while it decides: each chunk by its
//! 32-byte id with its size and store time in a vector sorted once the listing is complete
//! (56 bytes a chunk; its name is rebuilt from the id when needed), where a map of
//! `ObjectInfo`s by name took ~250 and a hash map by id ~170 at its peak (a table of a
//! million entries is rebuilt twice its size as it grows, both held at once). Names under
//! `chunks/` that are not chunk names are kept whole: they are collected like any
//! unreferenced object.

use std::collections::HashMap;
use std::time::SystemTime;

use crate::error::Result;
use crate::format::{self, chunk_list::ChunkIndex};
use crate::store::{ObjectInfo, StoreRef};

/// One listed chunk or object list.
#[derive(Debug, Clone, Copy)]
struct Held {
    id: [u8; 32],
    size: u64,
    modified: SystemTime,
}

/// Objects of one kind by id: listed in any order, then sorted; of an id listed twice, the
/// last entry counts.
#[derive(Debug, Default)]
struct ById(Vec<Held>);

impl ById {
    fn finish(&mut self) {
        // Stable, so the entries of one id stay in listing order: keep the last.
        self.0.sort_by_key(|h| h.id);
        self.0.reverse();
        self.0.dedup_by_key(|h| h.id);
        self.0.reverse();
    }

    fn contains(&self, id: &[u8; 32]) -> bool {
        self.0.binary_search_by_key(id, |h| h.id).is_ok()
    }
}

/// What one store lists under `chunks/` and `lists/` (object lists are collected like
/// chunks).
#[derive(Debug, Default)]
pub(super) struct Chunks {
    ids: ById,
    lists: ById,
    odd: HashMap<String, ObjectInfo>,
}

impl Chunks {
    /// List `store`'s chunks and object lists, object by object.
    pub(super) async fn list(store: &StoreRef) -> Result<Chunks> {
        let mut chunks = Chunks::default();
        for prefix in [format::CHUNKS_PREFIX, format::LISTS_PREFIX] {
            store.list_each(prefix, &mut |o| chunks.add(o)).await?;
        }
        chunks.finish();
        Ok(chunks)
    }

    fn add(&mut self, o: ObjectInfo) {
        let id = format::chunk_id_of(&o.key).map(|id| (id, &mut self.ids));
        let id = id.or_else(|| format::list_id_of(&o.key).map(|id| (id, &mut self.lists)));
        match id.and_then(|(id, held)| Some((format::chunk_id_bytes(id)?, held))) {
            Some((id, held)) => held.0.push(Held {
                id,
                size: o.size,
                modified: o.modified,
            }),
            None => {
                self.odd.insert(o.key.clone(), o);
            }
        }
    }

    /// Sort what was listed, so that it can be looked up.
    fn finish(&mut self) {
        self.ids.finish();
        self.lists.finish();
    }

    /// How many objects.
    pub(super) fn len(&self) -> usize {
        self.ids.0.len() + self.lists.0.len() + self.odd.len()
    }

    /// Is the chunk (or list) of this 32-byte id listed?
    pub(super) fn contains_id(&self, id: &[u8; 32]) -> bool {
        self.ids.contains(id) || self.lists.contains(id)
    }

    /// Every listed object `referenced` does not name.
    pub(super) fn unreferenced(&self, referenced: &ChunkIndex) -> Vec<ObjectInfo> {
        let unnamed = |h: &&Held| referenced.get_id(&h.id).is_none();
        let info = |name: fn(&str) -> String| {
            move |h: &Held| ObjectInfo {
                key: name(&hex::encode(h.id)),
                size: h.size,
                modified: h.modified,
            }
        };
        let chunks = (self.ids.0.iter())
            .filter(unnamed)
            .map(info(format::chunk_object))
            .chain(
                (self.lists.0.iter())
                    .filter(unnamed)
                    .map(info(format::list_object)),
            );
        let odd = self
            .odd
            .values()
            .filter(|o| referenced.get(&o.key).is_none())
            .cloned();
        chunks.chain(odd).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::chunk_list::{ChunkList, ChunkObject};

    #[test]
    fn chunks_by_id_and_odd_names_whole() {
        let (a, b) = ("ab".repeat(32), "cd".repeat(32));
        let info = |key: String| ObjectInfo {
            key,
            size: 7,
            modified: SystemTime::UNIX_EPOCH,
        };
        let mut c = Chunks::default();
        c.add(info(format::chunk_object(&a)));
        c.add(info(format::chunk_object(&b)));
        c.add(info("chunks/zz/not-a-chunk".into()));
        c.add(info(format::chunk_object(&b))); // listed twice: held once
        c.finish();
        assert_eq!(c.len(), 3);
        let id = |hex: &str| format::chunk_id_bytes(hex).unwrap();
        assert!(c.contains_id(&id(&a)) && !c.contains_id(&id(&"ef".repeat(32))));
        let kept = ChunkObject::parse(&format::chunk_object(&a), 7, &"00".repeat(32)).unwrap();
        let mut index = ChunkIndex::default();
        index.add(&ChunkList::new([kept]), |_, _| {});
        let mut gone: Vec<String> = c.unreferenced(&index).into_iter().map(|o| o.key).collect();
        gone.sort();
        assert_eq!(
            gone,
            ["chunks/cd/".to_owned() + &b, "chunks/zz/not-a-chunk".into()]
        );
    }
}
