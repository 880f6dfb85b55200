//! One store's listing, held compactly: an audit of a store of a million chunks holds its
//! listing for the whole run, once per store, and prune holds its `chunks/` and `lists/`
//! while it decides.
//!
//! Chunks, object lists and their fossils — nearly every object of a large store — are
//! held by their 32-byte id in one sorted vector (~64 bytes an object); every other name
//! (config, commits, manifests, tombstones, records, and any name that is not exactly one
//! the layout would write) is held as itself. A `BTreeMap<String, _>` of every name cost
//! ~150 bytes an object. Looked up by name, iterated in name order: a canonical id name
//! sorts within its prefix as its id does (lowercase hex keeps the bytes' order), so the
//! two halves merge into the order the store's names have.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::format;

/// One object of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    /// Size in bytes.
    pub size: u64,
    /// Last modification, by the store's clock.
    pub modified: SystemTime,
}

/// What kind of id-named object an entry is, in the order of the names' prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Chunk,
    FossilChunk,
    FossilList,
    List,
}

impl Kind {
    /// The kind and id of `name`, if it is exactly the name the layout gives one.
    fn parse(name: &str) -> Option<(Kind, [u8; 32])> {
        let (fossil, object) = match name.strip_prefix(format::FOSSILS_PREFIX) {
            Some(object) => (true, object),
            None => (false, name),
        };
        let id = format::chunk_name_id(object)?;
        let list = object.starts_with(format::LISTS_PREFIX);
        let kind = match (fossil, list) {
            (false, false) => Kind::Chunk,
            (true, false) => Kind::FossilChunk,
            (true, true) => Kind::FossilList,
            (false, true) => Kind::List,
        };
        Some((kind, id))
    }
}

/// A chunk, an object list or a fossil of one, by id.
#[derive(Debug, Clone, Copy)]
pub struct ById {
    kind: Kind,
    /// The object's id (a chunk's keyed id, a list's SHA-256).
    pub id: [u8; 32],
    /// Its size and time.
    pub listed: Listed,
}

impl ById {
    fn key(&self) -> (Kind, [u8; 32]) {
        (self.kind, self.id)
    }

    /// Its name, made anew.
    pub fn name(&self) -> String {
        let hex = hex::encode(self.id);
        match self.kind {
            Kind::Chunk => format::chunk_object(&hex),
            Kind::List => format::list_object(&hex),
            Kind::FossilChunk => format::fossil_object(&format::chunk_object(&hex)),
            Kind::FossilList => format::fossil_object(&format::list_object(&hex)),
        }
    }
}

/// Every object a store listed, by name.
#[derive(Debug, Default)]
pub struct Listing {
    /// Id-named objects, sorted by kind and id once the listing is complete.
    by_id: Vec<ById>,
    /// Every other object.
    others: BTreeMap<String, Listed>,
}

impl Listing {
    /// A listing of `objects`, in any order; a name listed twice keeps its last entry.
    pub fn from_objects(objects: impl IntoIterator<Item = (String, Listed)>) -> Listing {
        let mut building = Building::default();
        for (name, listed) in objects {
            building.insert(name, listed);
        }
        building.finish()
    }

    /// The object named `name`, if listed.
    pub fn get(&self, name: &str) -> Option<Listed> {
        match Kind::parse(name) {
            Some(key) => self
                .by_id
                .binary_search_by_key(&key, ById::key)
                .ok()
                .map(|i| self.by_id[i].listed),
            None => self.others.get(name).copied(),
        }
    }

    /// Is `name` listed?
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Is the chunk or object list of this id listed (not as a fossil)?
    pub fn holds(&self, id: &[u8; 32]) -> bool {
        let listed = |kind| {
            self.by_id
                .binary_search_by_key(&(kind, *id), ById::key)
                .is_ok()
        };
        listed(Kind::Chunk) || listed(Kind::List)
    }

    /// The chunks, object lists and their fossils, in name order.
    pub fn by_id(&self) -> &[ById] {
        &self.by_id
    }

    /// How many objects.
    pub fn len(&self) -> usize {
        self.by_id.len() + self.others.len()
    }

    /// Is nothing listed?
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Their bytes.
    pub fn bytes(&self) -> u64 {
        let ids = self.by_id.iter().map(|e| e.listed.size);
        ids.chain(self.others.values().map(|l| l.size)).sum()
    }

    /// Every object in name order; the names of chunks, lists and fossils are made as
    /// they come.
    pub fn iter(&self) -> impl Iterator<Item = (Cow<'_, str>, Listed)> + '_ {
        let mut by_id = self
            .by_id
            .iter()
            .map(|e| (Cow::Owned(e.name()), e.listed))
            .peekable();
        let mut others = self
            .others
            .iter()
            .map(|(name, l)| (Cow::Borrowed(name.as_str()), *l))
            .peekable();
        std::iter::from_fn(move || match (by_id.peek(), others.peek()) {
            (Some(a), Some(b)) if a.0 > b.0 => others.next(),
            (Some(_), _) => by_id.next(),
            (None, _) => others.next(),
        })
    }

    /// The objects that are not chunks, lists or their fossils, in name order: commits,
    /// manifests, tombstones, writers, records, and names the layout does not know.
    pub fn others(&self) -> impl Iterator<Item = (&str, Listed)> + '_ {
        self.others.iter().map(|(name, l)| (name.as_str(), *l))
    }
}

/// A listing as it is listed: id-named objects are sorted once at the end.
#[derive(Debug, Default)]
pub struct Building(Listing);

impl Building {
    /// One more object.
    pub fn insert(&mut self, name: String, listed: Listed) {
        match Kind::parse(&name) {
            Some((kind, id)) => self.0.by_id.push(ById { kind, id, listed }),
            None => {
                self.0.others.insert(name, listed);
            }
        }
    }

    /// The listing, sorted; of a name listed twice, the last entry.
    pub fn finish(self) -> Listing {
        let mut l = self.0;
        // Stable, so the entries of one name stay in listing order; keep the last.
        l.by_id.sort_by_key(ById::key);
        l.by_id.reverse();
        l.by_id.dedup_by_key(|e| e.key());
        l.by_id.reverse();
        l.by_id.shrink_to_fit();
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn listed(size: u64) -> Listed {
        Listed {
            size,
            modified: SystemTime::UNIX_EPOCH + Duration::from_secs(size),
        }
    }

    fn id_hex(first: u8) -> String {
        let mut id = [7u8; 32];
        id[0] = first;
        hex::encode(id)
    }

    /// Names of every kind, canonical and not, as a store might list them.
    fn names() -> Vec<String> {
        let (a, b) = (id_hex(0x0a), id_hex(0xf0));
        vec![
            "config".into(),
            format!("chunks/{}/{a}", &a[..2]),
            format!("chunks/{}/{b}", &b[..2]),
            format!("chunks/zz/{b}"), // wrong shard
            format!("chunks/{}/{}", &a[..2], a.to_uppercase()), // not lowercase
            format!("chunks/{}/{a}.tmp", &a[..2]),
            "chunks/".into(),
            format!("fossils/chunks/{}/{b}", &b[..2]),
            format!("fossils/lists/{}/{a}", &a[..2]),
            format!("fossils/{}", "other"),
            format!("lists/{}/{a}", &a[..2]),
            format!("lists/{}/{b}", &b[..2]),
            "manifests/s1".into(),
            "snapshots/s1".into(),
            "writers/s2".into(),
            "zz-unknown".into(),
        ]
    }

    #[test]
    fn a_listing_answers_and_iterates_as_a_map_of_names_would() {
        let names = names();
        // Listed in reverse order, with one name listed twice (the last entry wins).
        let mut objects: Vec<(String, Listed)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), listed(i as u64)))
            .rev()
            .collect();
        objects.push((names[1].clone(), listed(99)));
        let listing = Listing::from_objects(objects.clone());
        let map: BTreeMap<String, Listed> = objects.into_iter().collect();

        let iterated: Vec<(String, Listed)> =
            listing.iter().map(|(n, l)| (n.into_owned(), l)).collect();
        let expected: Vec<(String, Listed)> = map.clone().into_iter().collect();
        assert_eq!(iterated, expected);
        assert_eq!(listing.len(), map.len());
        assert_eq!(listing.bytes(), map.values().map(|l| l.size).sum::<u64>());
        for name in &names {
            assert_eq!(listing.get(name), map.get(name).copied(), "{name}");
        }
        let absent = id_hex(0x11);
        for name in [format!("chunks/11/{absent}"), "chunks/11".into(), "".into()] {
            assert!(!listing.contains_key(&name), "{name}");
        }
        // Chunks, lists and their fossils are held by id; the rest by name.
        assert_eq!(listing.by_id.len(), 6);
        assert!(listing.others().all(|(n, _)| Kind::parse(n).is_none()));
    }
}
