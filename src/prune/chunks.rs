//! A store's `chunks/` (and `lists/`) listing as prune holds it while it decides: the
//! compact listing audit uses ([`Listing`]: each chunk by its 32-byte id with its size and
//! store time in a vector sorted once listed, ~64 bytes a chunk, its name rebuilt when
//! needed), where a map of `ObjectInfo`s by name took ~250 and a hash map by id ~170 at
//! its peak. Names under `chunks/` that are not chunk names are kept whole: they are
//! collected like any unreferenced object.

use crate::error::Result;
use crate::format::{self, chunk_list::ChunkIndex};
use crate::repository::listing::{Building, Listed, Listing};
use crate::store::{ObjectInfo, StoreRef};

/// What one store lists under `chunks/` and `lists/` (object lists are collected like
/// chunks).
#[derive(Debug, Default)]
pub(super) struct Chunks(Listing);

impl Chunks {
    /// List `store`'s chunks and object lists, object by object.
    pub(super) async fn list(store: &StoreRef) -> Result<Chunks> {
        let mut listing = Building::default();
        for prefix in [format::CHUNKS_PREFIX, format::LISTS_PREFIX] {
            store
                .list_each(prefix, &mut |o| {
                    let listed = Listed {
                        size: o.size,
                        modified: o.modified,
                    };
                    listing.insert(o.key, listed)
                })
                .await?;
        }
        Ok(Chunks(listing.finish()))
    }

    /// How many objects.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// Is the chunk (or list) of this 32-byte id listed?
    pub(super) fn contains_id(&self, id: &[u8; 32]) -> bool {
        self.0.holds(id)
    }

    /// Every listed object `referenced` does not name.
    pub(super) fn unreferenced(&self, referenced: &ChunkIndex) -> Vec<ObjectInfo> {
        let info = |key: String, l: Listed| ObjectInfo {
            key,
            size: l.size,
            modified: l.modified,
        };
        let chunks = (self.0.by_id().iter())
            .filter(|e| referenced.get_id(&e.id).is_none())
            .map(|e| info(e.name(), e.listed));
        let odd = (self.0.others())
            .filter(|(name, _)| referenced.get(name).is_none())
            .map(|(name, l)| info(name.to_owned(), l));
        chunks.chain(odd).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::chunk_list::{ChunkList, ChunkObject};
    use std::time::SystemTime;

    #[test]
    fn chunks_by_id_and_odd_names_whole() {
        let (a, b) = ("ab".repeat(32), "cd".repeat(32));
        let info = |key: String| {
            let listed = Listed {
                size: 7,
                modified: SystemTime::UNIX_EPOCH,
            };
            (key, listed)
        };
        let c = Chunks(Listing::from_objects(
            [
                format::chunk_object(&a),
                format::chunk_object(&b),
                "chunks/zz/not-a-chunk".into(),
                format::chunk_object(&b), // listed twice: held once
            ]
            .map(info),
        ));
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
