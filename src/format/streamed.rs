//! A manifest read piecewise: its entries handed over one at a time as they are parsed, and
//! the checks of docs/format.md section 8 run over one such pass (two when directories come
//! after what they hold), holding 16 bytes per path and 16 per file range instead of every
//! entry. A backup checks its own manifest this
//! way before it commits; it is the reader a streamed restore builds on.

use std::collections::hash_map::Entry as Slot;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::io::Read;

use serde::Deserializer;
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::commit::Commit;
use super::manifest::{ChunkStream, Entry, EntryKind, Manifest, heap_cost, validate_path};
use super::{check_version, limits};

/// Parse manifest JSON from `json`, handing each entry to `each` as soon as it is parsed
/// (an error from `each` stops the parse); the rest of the manifest is returned, its
/// `entries` empty.
pub fn for_each_entry(
    json: impl Read,
    each: &mut dyn FnMut(Entry) -> Result<(), String>,
) -> Result<Manifest, String> {
    let reader = std::io::BufReader::with_capacity(64 << 10, json);
    let mut de = serde_json::Deserializer::from_reader(reader);
    let header = de
        .deserialize_map(Top { each })
        .and_then(|h| de.end().map(|()| h))
        .map_err(|e| format!("unreadable manifest: {e}"))?;
    Ok(header)
}

struct Top<'f> {
    each: &'f mut dyn FnMut(Entry) -> Result<(), String>,
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = Manifest;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a manifest")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Manifest, A::Error> {
        let (mut format, mut version, mut repository_id, mut snapshot_id) =
            (None, None, None, None);
        let (mut time, mut sources, mut chunks, mut entries) = (None, None, None, false);
        fn once<T, E: serde::de::Error>(slot: &mut Option<T>, v: T, name: &str) -> Result<(), E> {
            match slot.replace(v) {
                Some(_) => Err(E::custom(format!("duplicate field `{name}`"))),
                None => Ok(()),
            }
        }
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "format" => once(&mut format, map.next_value()?, "format")?,
                "version" => once(&mut version, map.next_value()?, "version")?,
                "repository_id" => once(&mut repository_id, map.next_value()?, "repository_id")?,
                "snapshot_id" => once(&mut snapshot_id, map.next_value()?, "snapshot_id")?,
                "time" => once(&mut time, map.next_value()?, "time")?,
                "sources" => once(&mut sources, map.next_value()?, "sources")?,
                "chunks" => once(&mut chunks, map.next_value::<ChunkStream>()?.0, "chunks")?,
                "entries" if entries => return Err(A::Error::custom("duplicate field `entries`")),
                "entries" => {
                    map.next_value_seed(Entries { each: self.each })?;
                    entries = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let missing = |name: &str| A::Error::custom(format!("missing field `{name}`"));
        if !entries {
            return Err(missing("entries"));
        }
        Ok(Manifest {
            entries: Vec::new(),
            format: format.ok_or_else(|| missing("format"))?,
            version: version.ok_or_else(|| missing("version"))?,
            repository_id: repository_id.ok_or_else(|| missing("repository_id"))?,
            snapshot_id: snapshot_id.ok_or_else(|| missing("snapshot_id"))?,
            time: time.ok_or_else(|| missing("time"))?,
            sources: sources.ok_or_else(|| missing("sources"))?,
            chunks: chunks.ok_or_else(|| missing("chunks"))?,
        })
    }
}

struct Entries<'f> {
    each: &'f mut dyn FnMut(Entry) -> Result<(), String>,
}

impl<'de> DeserializeSeed<'de> for Entries<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(e) = seq.next_element::<Entry>()? {
            (self.each)(e).map_err(A::Error::custom)?;
        }
        Ok(())
    }
}

/// The entry rules of docs/format.md section 8, one entry at a time — the one
/// implementation both readers run (the whole reader over its list, [`check`] over the
/// stream). It keeps a keyed 128-bit hash of every path with its kind (a hostile manifest
/// cannot aim paths at one hash) and every file range.
pub(super) struct EntryChecks {
    hashers: (RandomState, RandomState),
    kinds: HashMap<u128, EntryKind>,
    ranges: Vec<(u64, u64)>,
    /// The stream's length, when known before the entries (the whole reader).
    stream: Option<u64>,
    /// What the entries so far take on a whole reader's heap, when that bound is checked
    /// here (see `add`).
    heap: Option<usize>,
    /// Ancestors not seen when their descendant was: checked once every path is known. In
    /// a manifest snapdrill writes every directory comes before what it holds, so this
    /// stays empty and one pass is enough; past [`PENDING`] a second pass checks instead.
    pending: HashSet<u128>,
    second_pass: bool,
}

/// Most ancestors left pending before the check falls back to a second pass.
const PENDING: usize = 1 << 16;

/// A second pass over the same entries, handing each to the function it is given.
pub(super) type Again<'a> =
    &'a mut dyn FnMut(&mut dyn FnMut(&Entry) -> Result<(), String>) -> Result<(), String>;

impl EntryChecks {
    /// Checks for a reader that holds every entry itself (`stream` known up front), or,
    /// with `stream` `None`, for one that streams them: it also refuses what exceeds the
    /// whole reader's memory bound.
    pub(super) fn new(stream: Option<u64>) -> Self {
        EntryChecks {
            hashers: (RandomState::new(), RandomState::new()),
            kinds: HashMap::new(),
            ranges: Vec::new(),
            heap: stream.is_none().then_some(0),
            stream,
            pending: HashSet::new(),
            second_pass: false,
        }
    }

    fn hash(&self, path: &[u8]) -> u128 {
        (u128::from(self.hashers.0.hash_one(path)) << 64)
            | u128::from(self.hashers.1.hash_one(path))
    }

    /// How many entries.
    pub(super) fn count(&self) -> u64 {
        self.kinds.len() as u64
    }

    /// Never pass what a reader holding every entry refuses: its budget, counted at least
    /// as high as it counts it (list capacity a quarter ahead, map at twice).
    fn budget(&mut self, e: &Entry) -> Result<(), String> {
        let n = self.kinds.len() + 1;
        let Some(heap) = self.heap.as_mut() else {
            return Ok(());
        };
        *heap += heap_cost(e);
        let cost = (n + (n / 4).max(1024)) * std::mem::size_of::<Entry>() + *heap + 2 * n * 24;
        if n > limits::ENTRIES || cost > limits::MANIFEST_MEMORY {
            return Err(format!(
                "more entries than a reader holds ({n} entries, about {} MiB; at most {} entries in {} MiB)",
                cost >> 20,
                limits::ENTRIES,
                limits::MANIFEST_MEMORY >> 20
            ));
        }
        Ok(())
    }

    /// Pass 1: each entry on its own, and no path twice.
    pub(super) fn add(&mut self, e: &Entry) -> Result<(), String> {
        let shown = || e.path.display();
        validate_path(&e.path.0).map_err(|why| format!("unsafe path '{}': {why}", shown()))?;
        self.budget(e)?;
        if e.mtime_ns > 999_999_999 {
            return Err(format!(
                "'{}' has an invalid modification time ({} ns)",
                shown(),
                e.mtime_ns
            ));
        }
        self.ancestors(e)?;
        match self.kinds.entry(self.hash(&e.path.0)) {
            Slot::Occupied(_) => return Err(format!("path '{}' appears twice", shown())),
            Slot::Vacant(v) => {
                v.insert(e.kind);
            }
        }
        match e.kind {
            EntryKind::File => {
                let (Some(size), Some(offset), Some(true)) = (
                    e.size,
                    e.offset,
                    e.sha256.as_ref().map(|h| super::is_hex(h, 64)),
                ) else {
                    return Err(format!("file '{}' lacks size, offset or sha256", shown()));
                };
                let outside = || format!("file '{}' lies outside the chunk stream", shown());
                let end = offset.checked_add(size).ok_or_else(outside)?;
                if self.stream.is_some_and(|stream| end > stream) {
                    return Err(outside());
                }
                self.ranges.push((offset, end));
            }
            EntryKind::Symlink
                if e.target
                    .as_ref()
                    .is_none_or(|t| t.0.is_empty() || t.0.contains(&0)) =>
            {
                return Err(format!("symlink '{}' has no valid target", shown()));
            }
            _ => {}
        }
        Ok(())
    }

    /// Nothing lies below a file or a symlink, as far as the paths seen so far tell; in the
    /// first pass an ancestor not seen yet is left pending.
    fn ancestors(&mut self, e: &Entry) -> Result<(), String> {
        let p = &e.path.0;
        for (i, _) in p.iter().enumerate().filter(|(_, b)| **b == b'/') {
            let h = self.hash(&p[..i]);
            match self.kinds.get(&h) {
                Some(EntryKind::Dir) => {}
                Some(kind) => {
                    return Err(format!(
                        "'{}' lies below a {kind:?} entry",
                        e.path.display()
                    ));
                }
                None if self.second_pass => {}
                None => {
                    self.pending.insert(h);
                    if self.pending.len() > PENDING {
                        self.pending = HashSet::new();
                        self.second_pass = true;
                    }
                }
            }
        }
        Ok(())
    }

    /// Once every entry was added: every file range within the stream and no two sharing
    /// bytes; then the pending ancestors — through a second pass (`again`) when too many
    /// were pending, or when one is a file or symlink (the pass names the entry below it).
    pub(super) fn finish(&mut self, stream: u64, again: Again<'_>) -> Result<(), String> {
        if self.ranges.iter().any(|&(_, end)| end > stream) {
            return Err("a file lies outside the chunk stream".into());
        }
        self.ranges.retain(|(start, end)| end > start);
        self.ranges.sort_unstable();
        if self.ranges.windows(2).any(|w| w[1].0 < w[0].1) {
            return Err("two files share bytes of the chunk stream".into());
        }
        let below_a_link = self
            .pending
            .iter()
            .any(|h| self.kinds.get(h).is_some_and(|k| *k != EntryKind::Dir));
        if self.second_pass || below_a_link {
            self.second_pass = true;
            again(&mut |e| self.ancestors(e))?;
        }
        Ok(())
    }
}

/// Every check of docs/format.md section 8 on the manifest JSON that `open` yields (called
/// again for a second pass when it must be), against its commit; the header and how many
/// entries.
pub fn check<R: Read>(
    open: &mut dyn FnMut() -> Result<R, String>,
    commit: &Commit,
) -> Result<(Manifest, u64), String> {
    check_each(open, commit, &mut |_| ())
}

/// [`check`], showing each entry of the first pass to `see` (before the checks are done:
/// what it learns counts only once they pass).
pub fn check_each<R: Read>(
    open: &mut dyn FnMut() -> Result<R, String>,
    commit: &Commit,
    see: &mut dyn FnMut(&Entry),
) -> Result<(Manifest, u64), String> {
    let mut checks = EntryChecks::new(None);
    let header = for_each_entry(open()?, &mut |e| {
        see(&e);
        checks.add(&e)
    })?;
    check_version(
        "manifest",
        &header.format,
        "snapdrill-manifest",
        header.version,
        super::V1,
    )?;
    header.validate_header(commit)?;
    checks.finish(header.stream_len(), &mut |each| {
        for_each_entry(open()?, &mut |e| each(&e)).map(|_| ())
    })?;
    Ok((header, checks.count()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::commit::{DataSet, ObjectRef, Origin, Summary};

    fn check_entries(entries: Vec<serde_json::Value>) -> Result<u64, String> {
        let (repo, id) = ("00".repeat(16), "20261128T032718Z-9f2c1a7b");
        let commit = Commit::new(
            &repo,
            id,
            "2026-11-28T03:27:18Z",
            Origin {
                set: DataSet {
                    host: "h".into(),
                    job: Some("j".into()),
                    source: Some("ab".repeat(16)),
                },
                tags: Vec::new(),
            },
            Summary::default(),
            ObjectRef {
                name: crate::format::manifest_object(id),
                size: 1,
                sha256: "00".repeat(32),
            },
            &[],
        );
        let json = serde_json::to_vec(&serde_json::json!({
            "format": "snapdrill-manifest", "version": 1, "repository_id": repo,
            "snapshot_id": id, "time": "2026-11-28T03:27:18Z", "sources": ["/x"],
            "chunks": [], "entries": entries,
        }))
        .unwrap();
        check(&mut || Ok(&json[..]), &commit.0).map(|(_, n)| n)
    }

    fn dir(path: &str) -> serde_json::Value {
        serde_json::json!({"path": path, "type": "dir", "mode": 493, "mtime": 1, "mtime_ns": 0})
    }

    /// Past the pending budget the check falls back to a second pass, which still finds an
    /// entry below a symlink that came after it.
    #[test]
    fn many_late_ancestors_take_the_second_pass() {
        let mut entries: Vec<serde_json::Value> =
            (0..PENDING + 10).map(|i| dir(&format!("p{i}/x"))).collect();
        entries.push(dir("p3"));
        assert_eq!(check_entries(entries.clone()), Ok(PENDING as u64 + 11));
        entries.pop();
        entries.push(
            serde_json::json!({"path": "p3", "type": "symlink", "mode": 511,
            "mtime": 1, "mtime_ns": 0, "target": "/etc"}),
        );
        let err = check_entries(entries).unwrap_err();
        assert!(err.contains("lies below a Symlink"), "{err}");
    }

    /// A manifest whose chunk stream lists one chunk more than the limit, then an element
    /// that is not a chunk, generated as it is read (nothing of it is held).
    struct Overlong {
        sent: usize,
        part: Vec<u8>,
        at: usize,
    }

    impl Read for Overlong {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.at == self.part.len() {
                self.at = 0;
                self.part = match self.sent {
                    0 => br#"{"format":"snapdrill-manifest","chunks":["#.to_vec(),
                    n if n <= limits::CHUNK_REFS + 1 => {
                        let sep = if n == 1 { "" } else { "," };
                        format!(r#"{sep}{{"id":"{}","size":1}}"#, "ab".repeat(32)).into_bytes()
                    }
                    n if n == limits::CHUNK_REFS + 2 => br#","not a chunk"]}"#.to_vec(),
                    _ => return Ok(0),
                };
                self.sent += 1;
            }
            let n = buf.len().min(self.part.len() - self.at);
            buf[..n].copy_from_slice(&self.part[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    /// The stream is refused at the first chunk over the limit, while it is parsed: were
    /// the limit checked after the parse, the element after it would be the error.
    #[test]
    fn an_overlong_chunk_stream_is_refused_as_it_is_read() {
        let manifest = Overlong {
            sent: 0,
            part: Vec::new(),
            at: 0,
        };
        let err = for_each_entry(manifest, &mut |_| Ok(())).unwrap_err();
        assert!(
            err.contains(&format!("more than {} chunks", limits::CHUNK_REFS)),
            "{err}"
        );
    }

    #[test]
    fn a_late_ancestor_is_found_in_one_pass() {
        let link = serde_json::json!({"path": "a", "type": "symlink", "mode": 511,
            "mtime": 1, "mtime_ns": 0, "target": "/etc"});
        let err = check_entries(vec![dir("a/b/c"), link]).unwrap_err();
        assert!(err.contains("below a Symlink"), "{err}");
        assert_eq!(check_entries(vec![dir("a/b/c"), dir("a")]), Ok(2));
    }
}
