//! The chunk objects a commit lists, held compactly.
//!
//! A year of nightly snapshots of one export lists the same chunks 365 times. Held as text
//! (`chunks/3a/3a9f…`, a hex SHA-256 and a size: ~220 bytes a reference), 365 commits of
//! 20,000 chunks took 1.6 GiB; every command that reads the history (`snapshots`, `audit`,
//! `prune`, `forget`, `sync`) holds them all. Here each distinct object — its 32-byte id,
//! its ciphertext SHA-256 and size — is stored once per process in an append-only table,
//! and a commit holds 4-byte handles to it: memory follows the unique objects, plus 4 bytes
//! per reference (docs/design.md, "Memory").
//!
//! The wire form is unchanged (docs/format.md section 7): a list of `{name, size, sha256}`.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::{LazyLock, RwLock};

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::commit::ObjectRef;

/// One chunk object as a commit lists it: its id, and the size and SHA-256 of its
/// ciphertext as stored. An object list (commit version 4) is held the same way: its id is
/// the SHA-256 of its own (plain) bytes, which no chunk's keyed id ever is, and its name is
/// `lists/…` instead of `chunks/…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkObject {
    /// The chunk's keyed id.
    pub id: [u8; 32],
    /// SHA-256 of the ciphertext.
    pub sha256: [u8; 32],
    /// Ciphertext size in bytes.
    pub size: u64,
}

impl ChunkObject {
    /// Parse a listed object: a chunk (or list) name and a hex SHA-256, or `None`.
    pub fn parse(name: &str, size: u64, sha256: &str) -> Option<ChunkObject> {
        // `chunks/<first two digits>/<64 lowercase hex digits>` (format::chunk_id_of).
        let (rest, list) = match name.strip_prefix(super::CHUNKS_PREFIX) {
            Some(rest) => (rest.as_bytes(), false),
            None => (name.strip_prefix(super::LISTS_PREFIX)?.as_bytes(), true),
        };
        let (shard, id) = (rest.get(..3)?, rest.get(3..)?);
        if shard[2] != b'/' || !id.starts_with(&shard[..2]) {
            return None;
        }
        let o = ChunkObject {
            id: hex32(id)?,
            sha256: hex32(sha256.as_bytes())?,
            size,
        };
        // A name says which kind it is, and the hash must agree.
        (o.is_list() == list).then_some(o)
    }

    /// Is this an object list (its id is the SHA-256 of its bytes)?
    pub fn is_list(&self) -> bool {
        self.id == self.sha256
    }

    /// The chunk's id, hex.
    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }

    /// The object name (`chunks/<2>/<id>`, or `lists/<2>/<id>` for a list).
    pub fn name(&self) -> String {
        match self.is_list() {
            true => super::list_object(&self.id_hex()),
            false => super::chunk_object(&self.id_hex()),
        }
    }

    /// As the text form the rest of the engine fetches by.
    pub fn to_ref(&self) -> ObjectRef {
        ObjectRef {
            name: self.name(),
            size: self.size,
            sha256: hex::encode(self.sha256),
        }
    }
}

/// Lowercase hex digit values; 0x80 marks any other byte.
const HEX: [u8; 256] = {
    let mut t = [0x80u8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// 64 lowercase hex digits as 32 bytes. A table and no branch per digit: a year of
/// nightlies lists millions of ids, and a branchy decoder took most of the parse.
pub(super) fn hex32(text: &[u8]) -> Option<[u8; 32]> {
    let digits: &[u8; 64] = text.try_into().ok()?;
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (hi, lo) = (HEX[pair[0] as usize], HEX[pair[1] as usize]);
        bad |= hi | lo;
        *o = (hi << 4) | lo;
    }
    (bad & 0x80 == 0).then_some(out)
}

/// A handle to an interned [`ChunkObject`]: equal handles are equal objects, and equal
/// objects have equal handles (within one process).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Chunk(u32);

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Chunk({})", self.id_hex())
    }
}

struct Table {
    rows: Vec<ChunkObject>,
    index: hashbrown::HashTable<u32>,
    hasher: RandomState,
}

/// Append-only: a handle stays valid for the life of the process. Keyed with a random
/// hasher, since a commit's (signed, but possibly hostile) list decides the keys.
static TABLE: LazyLock<RwLock<Table>> = LazyLock::new(|| {
    RwLock::new(Table {
        rows: Vec::new(),
        index: hashbrown::HashTable::new(),
        hasher: RandomState::new(),
    })
});

fn table() -> std::sync::RwLockReadGuard<'static, Table> {
    // The table is never left half-updated (a push, then an insert of its index), so a
    // panic elsewhere while it was held does not make it wrong.
    TABLE.read().unwrap_or_else(|p| p.into_inner())
}

/// The interned objects, read once for many lookups (a sort of a million handles would
/// otherwise take the lock twice per comparison). Interning while this is held blocks.
pub struct Objects(std::sync::RwLockReadGuard<'static, Table>);

impl Objects {
    /// The object behind `chunk`.
    pub fn get(&self, chunk: Chunk) -> &ChunkObject {
        &self.0.rows[chunk.0 as usize]
    }
}

impl Chunk {
    /// Every interned object, for many lookups under one lock.
    pub fn objects() -> Objects {
        Objects(table())
    }

    /// The handle of `object`, interning it on first sight.
    pub fn intern(object: ChunkObject) -> Chunk {
        let hash = {
            let t = table();
            let hash = t.hasher.hash_one(object);
            if let Some(&i) = t.index.find(hash, |&i| t.rows[i as usize] == object) {
                return Chunk(i);
            }
            hash
        };
        let mut guard = TABLE.write().unwrap_or_else(|p| p.into_inner());
        let t = &mut *guard;
        if let Some(&i) = t.index.find(hash, |&i| t.rows[i as usize] == object) {
            return Chunk(i);
        }
        let i = u32::try_from(t.rows.len()).expect("fewer than 2^32 distinct chunk objects");
        t.rows.push(object);
        let (rows, hasher) = (&t.rows, &t.hasher);
        t.index
            .insert_unique(hash, i, |&j| hasher.hash_one(rows[j as usize]));
        Chunk(i)
    }

    /// The object.
    pub fn get(self) -> ChunkObject {
        table().rows[self.0 as usize]
    }

    /// The chunk's id.
    pub fn id(self) -> [u8; 32] {
        self.get().id
    }

    /// The chunk's id, hex.
    pub fn id_hex(self) -> String {
        self.get().id_hex()
    }

    /// The object name.
    pub fn name(self) -> String {
        self.get().name()
    }

    /// Ciphertext size.
    pub fn size(self) -> u64 {
        self.get().size
    }

    /// As the text form.
    pub fn to_ref(self) -> ObjectRef {
        self.get().to_ref()
    }
}

/// The chunk objects of one commit: each once, sorted by id (which is the order of their
/// names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkList(Box<[Chunk]>);

impl ChunkList {
    /// From objects in any order; an id listed twice keeps its first entry.
    pub fn new(objects: impl IntoIterator<Item = ChunkObject>) -> ChunkList {
        let mut all: Vec<ChunkObject> = objects.into_iter().collect();
        all.sort_by_key(|o| o.id);
        all.dedup_by_key(|o| o.id);
        ChunkList(all.into_iter().map(Chunk::intern).collect())
    }

    /// From the text form; names an object that is not a chunk with a hex SHA-256.
    pub fn from_refs<'a>(refs: impl IntoIterator<Item = &'a ObjectRef>) -> Result<Self, String> {
        let parsed: Result<Vec<ChunkObject>, String> = refs
            .into_iter()
            .map(|o| {
                ChunkObject::parse(&o.name, o.size, &o.sha256)
                    .ok_or_else(|| format!("'{}' is not a chunk object", o.name))
            })
            .collect();
        Ok(ChunkList::new(parsed?))
    }

    /// The union of `parts`: each object once (one named twice alike is kept once); with
    /// an id two parts name as different objects, if any (the first is kept).
    fn union_of(parts: &[std::sync::Arc<ChunkList>]) -> (ChunkList, Option<[u8; 32]>) {
        let total = parts.iter().map(|p| p.len()).sum::<usize>();
        // Sorted by the ids' first 16 bytes as one integer: a year of nightlies merges
        // millions of handles, and comparing 32-byte arrays took most of it. Equal
        // prefixes (as good as never) are settled by the whole id.
        let t = table();
        let id = |c: Chunk| t.rows[c.0 as usize].id;
        let prefix = |c: Chunk| u128::from_be_bytes(id(c)[..16].try_into().expect("16 bytes"));
        let mut keyed: Vec<(u128, Chunk)> = Vec::with_capacity(total);
        let all = parts.iter().flat_map(|p| p.0.iter());
        keyed.extend(all.map(|&c| (prefix(c), c)));
        keyed.sort_unstable_by_key(|k| k.0);
        let mut i = 0;
        while i < keyed.len() {
            let run = keyed[i..].iter().take_while(|k| k.0 == keyed[i].0).count();
            if run > 1 {
                keyed[i..i + run].sort_unstable_by_key(|k| id(k.1));
            }
            i += run;
        }
        let mut conflict = None;
        let mut out: Vec<Chunk> = Vec::with_capacity(keyed.len());
        for (_, c) in keyed {
            match out.last() {
                Some(&last) if last == c => {}
                Some(&last) if id(last) == id(c) => {
                    conflict.get_or_insert(id(c));
                }
                _ => out.push(c),
            }
        }
        (ChunkList(out.into_boxed_slice()), conflict)
    }

    /// Every handle, in id order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Chunk> + '_ {
        self.0.iter().copied()
    }

    /// Every object, in id order.
    pub fn objects(&self) -> impl ExactSizeIterator<Item = ChunkObject> + '_ {
        self.0.iter().map(|c| c.get())
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// None at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entry of chunk `id`, by binary search.
    pub fn find(&self, id: &[u8; 32]) -> Option<Chunk> {
        self.position(id).map(|i| self.0[i])
    }

    /// Where chunk `id` is in the list (the order of [`ChunkList::iter`]).
    pub fn position(&self, id: &[u8; 32]) -> Option<usize> {
        let t = table();
        self.0
            .binary_search_by(|c| t.rows[c.0 as usize].id.cmp(id))
            .ok()
    }

    /// Where the object named `name` is in the list (a chunk's name never finds a list,
    /// nor a list's a chunk).
    pub fn position_of_name(&self, name: &str) -> Option<usize> {
        let i = self.position(&super::chunk_name_id(name)?)?;
        let list = name.starts_with(super::LISTS_PREFIX);
        (self.0[i].get().is_list() == list).then_some(i)
    }

    /// The entry of the object named `name`.
    pub fn find_name(&self, name: &str) -> Option<Chunk> {
        self.position_of_name(name).map(|i| self.0[i])
    }
}

/// What one commit needs: the chunk objects of each of its lists (shared, as read, with
/// every other commit naming the same list) and the lists themselves — or, before format
/// 4, its one inline list. The sorted union is built only when something looks objects
/// up (a restore): listing a history, retention and the reference sets of prune and audit
/// work list by list, so a year of nightlies costs what its distinct lists cost.
#[derive(Debug, Clone, Default)]
pub struct ObjectSet {
    parts: Vec<std::sync::Arc<ChunkList>>,
    merged: std::sync::Arc<std::sync::OnceLock<(ChunkList, Option<[u8; 32]>)>>,
}

impl ObjectSet {
    /// The set of `parts` (each a list's chunks, or the lists themselves).
    pub fn of(parts: Vec<std::sync::Arc<ChunkList>>) -> ObjectSet {
        ObjectSet {
            parts,
            merged: Default::default(),
        }
    }

    /// Each part: shared between the commits that name the same list (one `Arc`).
    pub fn parts(&self) -> &[std::sync::Arc<ChunkList>] {
        &self.parts
    }

    /// Every object, once, sorted by id (merged on first use, then kept).
    pub fn merged(&self) -> &ChunkList {
        &self.merge().0
    }

    /// A chunk id two parts name as two different objects (only a faulty or hostile
    /// writer does that): such a commit must not be restored.
    pub fn conflict(&self) -> Option<[u8; 32]> {
        self.merge().1
    }

    fn merge(&self) -> &(ChunkList, Option<[u8; 32]>) {
        self.merged.get_or_init(|| match self.parts.as_slice() {
            [one] => ((**one).clone(), None),
            parts => ChunkList::union_of(parts),
        })
    }
}

/// The distinct chunks of many lists, by id: what prune keeps, what a history references.
/// A 4-byte handle per distinct object in a hash table keyed by the object's id, read
/// through the interned table (~10 bytes an object; a map from ids to handles beside a set
/// of handles took ~90). Adding a list costs a lookup per entry under one read of the table.
#[derive(Debug, Default)]
pub struct ChunkIndex {
    by_id: hashbrown::HashTable<Chunk>,
    /// Random: the ids come from commits, which a compromised backup host signs.
    hasher: RandomState,
    /// Objects that met another object of their id (rare: each is reported once).
    conflicted: std::collections::HashSet<Chunk>,
}

impl ChunkIndex {
    /// Add every object of `set`, each part once however many commits name it (`parts`
    /// remembers which, by the shared list).
    pub fn add_set(
        &mut self,
        set: &ObjectSet,
        parts: &mut std::collections::HashSet<*const ChunkList>,
        mut other: impl FnMut(Chunk, Chunk),
    ) {
        for part in set.parts() {
            if parts.insert(std::sync::Arc::as_ptr(part)) {
                self.add(part, &mut other);
            }
        }
    }

    /// Add every entry of `list`. An id already known with another object (only a writer,
    /// or a rekey half done, lists one chunk two ways) keeps the newest entry; the first
    /// time an object meets another of its id, both are passed to `other`.
    pub fn add(&mut self, list: &ChunkList, mut other: impl FnMut(Chunk, Chunk)) {
        let mut replaced = Vec::new();
        {
            let objects = Chunk::objects();
            let hasher = &self.hasher;
            for chunk in list.iter() {
                let id = &objects.get(chunk).id;
                let hash = hasher.hash_one(id);
                match self.by_id.find_mut(hash, |&c| objects.get(c).id == *id) {
                    Some(known) if *known == chunk => {}
                    Some(known) => {
                        let known = std::mem::replace(known, chunk);
                        if self.conflicted.insert(chunk) {
                            replaced.push((chunk, known));
                        }
                    }
                    None => {
                        self.by_id
                            .insert_unique(hash, chunk, |&c| hasher.hash_one(objects.get(c).id));
                    }
                }
            }
        }
        // After the table's read is released: `other` may look objects up.
        for (chunk, known) in replaced {
            other(chunk, known);
        }
    }

    /// The entry for the chunk object (or object list) `name`.
    pub fn get(&self, name: &str) -> Option<Chunk> {
        let c = self.get_id(&super::chunk_name_id(name)?)?;
        (c.get().is_list() == name.starts_with(super::LISTS_PREFIX)).then_some(c)
    }

    /// The entry for the chunk of this 32-byte id.
    pub fn get_id(&self, id: &[u8; 32]) -> Option<Chunk> {
        let objects = Chunk::objects();
        self.by_id
            .find(self.hasher.hash_one(id), |&c| objects.get(c).id == *id)
            .copied()
    }

    /// Every entry, in no order.
    pub fn iter(&self) -> impl Iterator<Item = Chunk> + '_ {
        self.by_id.iter().copied()
    }

    /// How many distinct chunks.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// None at all.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

impl Serialize for ChunkList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.objects().map(|o| o.to_ref()))
    }
}

/// One listed object as it is parsed: borrowed text when the JSON has no escapes.
#[derive(Deserialize)]
struct Listed<'a> {
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
    size: u64,
    #[serde(borrow)]
    sha256: std::borrow::Cow<'a, str>,
}

impl<'de> Deserialize<'de> for ChunkList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ChunkList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of chunk objects")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ChunkList, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(l) = seq.next_element::<Listed>()? {
                    let o = ChunkObject::parse(&l.name, l.size, &l.sha256).ok_or_else(|| {
                        A::Error::custom(format!("lists a malformed object '{}'", l.name))
                    })?;
                    out.push(o);
                }
                // Sorted and unique on the wire (docs/format.md section 7); a list that is
                // not is refused rather than silently repaired, as readers always did.
                if out.windows(2).any(|w| w[0].id >= w[1].id) {
                    return Err(A::Error::custom("lists its objects out of order or twice"));
                }
                Ok(ChunkList(out.into_iter().map(Chunk::intern).collect()))
            }
        }
        d.deserialize_seq(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(id: u8, size: u64, sha: u8) -> ChunkObject {
        ChunkObject {
            id: [id; 32],
            sha256: [sha; 32],
            size,
        }
    }

    #[test]
    fn equal_objects_share_a_handle_and_different_ones_do_not() {
        let a = Chunk::intern(obj(1, 10, 2));
        assert_eq!(a, Chunk::intern(obj(1, 10, 2)));
        assert_ne!(a, Chunk::intern(obj(1, 10, 3)), "same id, other ciphertext");
        assert_ne!(a, Chunk::intern(obj(1, 11, 2)));
        assert_eq!(a.get(), obj(1, 10, 2));
    }

    #[test]
    fn the_wire_form_round_trips_and_finds_by_id_and_name() {
        let list = ChunkList::new([obj(0xbb, 2, 3), obj(0xaa, 1, 4), obj(0xbb, 9, 9)]);
        assert_eq!(list.len(), 2, "an id listed twice keeps its first entry");
        let json = serde_json::to_string(&list).unwrap();
        let refs: Vec<ObjectRef> = serde_json::from_str(&json).unwrap();
        assert_eq!(refs[0].name, super::super::chunk_object(&"aa".repeat(32)));
        assert_eq!(refs[1].size, 2);
        let back: ChunkList = serde_json::from_str(&json).unwrap();
        assert_eq!(back, list);
        assert_eq!(back.find(&[0xbb; 32]).unwrap().size(), 2);
        assert_eq!(
            back.find_name(&refs[0].name).unwrap().get(),
            obj(0xaa, 1, 4)
        );
        assert!(back.find(&[0xcc; 32]).is_none());
    }

    #[test]
    fn malformed_or_unsorted_lists_are_refused() {
        let good = obj(0xaa, 1, 0xab).to_ref();
        let other = obj(0xbb, 1, 4).to_ref();
        let parse = |refs: &[&ObjectRef]| {
            serde_json::from_str::<ChunkList>(&serde_json::to_string(refs).unwrap())
        };
        assert!(parse(&[&good, &other]).is_ok());
        let err = parse(&[&other, &good]).unwrap_err().to_string();
        assert!(err.contains("out of order"), "{err}");
        assert!(parse(&[&good, &good]).is_err(), "twice");
        let mut bad = good.clone();
        bad.name = "chunks/ab/../../config".into();
        let err = parse(&[&bad]).unwrap_err().to_string();
        assert!(err.contains("malformed object"), "{err}");
        let mut upper = good.clone();
        upper.sha256 = upper.sha256.to_uppercase();
        assert!(parse(&[&upper]).is_err());
        for bad_id in ["chunks/ab/ac", "chunks/abx", "chunks/ab/", "chunks/aa/aA"] {
            let mut wrong = good.clone();
            wrong.name = format!("{bad_id}{}", "a".repeat(62));
            assert!(parse(&[&wrong]).is_err(), "{}", wrong.name);
        }
    }

    #[test]
    fn a_union_orders_ids_that_share_a_long_prefix_and_names_a_conflict() {
        let tail = |last: u8, sha: u8| {
            let mut id = [7u8; 32];
            id[31] = last;
            ChunkObject {
                id,
                sha256: [sha; 32],
                size: 1,
            }
        };
        let part = |objects: Vec<ChunkObject>| std::sync::Arc::new(ChunkList::new(objects));
        let set = ObjectSet::of(vec![
            part(vec![tail(9, 9), tail(3, 3)]),
            part(vec![tail(5, 5), tail(1, 1), tail(3, 3)]),
            part(vec![obj(1, 1, 1)]),
        ]);
        let lasts: Vec<u8> = set.merged().objects().map(|o| o.id[31]).collect();
        assert_eq!(
            lasts,
            [1, 1, 3, 5, 9],
            "in id order, ties settled by the tail, once each"
        );
        assert_eq!(
            set.conflict(),
            None,
            "a chunk named twice alike is no conflict"
        );
        let bad = ObjectSet::of(vec![part(vec![tail(3, 3)]), part(vec![tail(3, 4)])]);
        assert_eq!(bad.conflict(), Some(tail(3, 3).id));
    }

    #[test]
    fn an_index_holds_each_id_once_and_names_each_conflict_once() {
        let a = ChunkList::new([obj(0x31, 1, 1), obj(0x32, 2, 2)]);
        let b = ChunkList::new([obj(0x32, 2, 2), obj(0x33, 3, 3)]);
        let other = ChunkList::new([obj(0x31, 9, 9)]); // id 0x31, another object
        let mut index = ChunkIndex::default();
        let mut conflicts = Vec::new();
        for list in [&a, &b, &other, &a, &other] {
            index.add(list, |new, known| conflicts.push((new.get(), known.get())));
        }
        assert_eq!(index.len(), 3, "each id once");
        assert_eq!(index.get_id(&[0x33; 32]).unwrap().size(), 3);
        assert!(index.get_id(&[0x34; 32]).is_none());
        assert_eq!(
            conflicts,
            [
                (obj(0x31, 9, 9), obj(0x31, 1, 1)),
                (obj(0x31, 1, 1), obj(0x31, 9, 9))
            ],
            "each object that meets another of its id, once"
        );
        assert_eq!(
            index.get_id(&[0x31; 32]).unwrap().get(),
            obj(0x31, 9, 9),
            "the newest"
        );
        let name = super::super::chunk_object(&"32".repeat(32));
        assert_eq!(index.get(&name).unwrap().size(), 2);
        let list_name = super::super::list_object(&"32".repeat(32));
        assert!(
            index.get(&list_name).is_none(),
            "a chunk's id is not a list's name"
        );
    }
}
