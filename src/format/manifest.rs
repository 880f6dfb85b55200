//! The manifest of a snapshot: files, directories, symlinks and the chunk stream
//! (docs/format.md section 8), with the validation every reader runs before writing.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::commit::Commit;
use super::{check_version, limits};

const FORMAT: &str = "snapdrill-manifest";

/// A path as raw bytes; JSON string when UTF-8, `{"b64": ...}` otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WirePath(pub Vec<u8>);

impl WirePath {
    /// Lossy text for messages.
    pub fn display(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum WirePathRepr {
    Text(String),
    Raw { b64: String },
}

impl Serialize for WirePath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => WirePathRepr::Text(text.to_owned()),
            Err(_) => WirePathRepr::Raw {
                b64: B64.encode(&self.0),
            },
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for WirePath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match WirePathRepr::deserialize(d)? {
            WirePathRepr::Text(t) => Ok(WirePath(t.into_bytes())),
            WirePathRepr::Raw { b64 } => B64
                .decode(b64)
                .map(WirePath)
                .map_err(|_| serde::de::Error::custom("path b64 is not base64")),
        }
    }
}

/// The kind of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
}

/// One directory, file or symlink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative path inside the snapshot.
    pub path: WirePath,
    /// What it is.
    #[serde(rename = "type")]
    pub kind: EntryKind,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Modification time, nanoseconds.
    pub mtime_ns: u32,
    /// Files: content length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Files: SHA-256 of the content, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Files: position in the chunk stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Symlinks: the link's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<WirePath>,
    /// Files: inode number (change hint for the next backup; readers ignore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ino: Option<u64>,
    /// Files: status change time, seconds (change hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctime: Option<i64>,
    /// Files: status change time, nanoseconds (change hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctime_ns: Option<u32>,
    /// Files: the file changed while the backup read it, twice; its content may be
    /// inconsistent (readers report it; older readers ignore the member).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed: bool,
    /// Files whose name says they hold records (see [`counts_lines`]): their line count
    /// at backup time, which a drill counts again in the restored file. Optional: older
    /// readers ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<u64>,
}

/// Does a file named `path` get its lines counted: `.csv`, `.tsv`, `.jsonl`, `.ndjson`
/// (any case) — the exports whose row count is what an operator checks.
pub fn counts_lines(path: &[u8]) -> bool {
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    let lower = name.to_ascii_lowercase();
    [&b".csv"[..], b".tsv", b".jsonl", b".ndjson"]
        .iter()
        .any(|ext| lower.len() > ext.len() && lower.ends_with(ext))
}

/// Lines as docs/format.md counts them: `\n` bytes, plus a last line without one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineCounter {
    newlines: u64,
    last: Option<u8>,
}

impl LineCounter {
    /// Count the next bytes of the file.
    pub fn update(&mut self, data: &[u8]) {
        // Blocks of 32 summed in a byte (at most 32: no overflow), which the compiler turns
        // into wide compares: 48 ms for 300 MB where `filter().count()` took 150 ms on
        // the reference machine, on the backup's one reader thread.
        self.newlines += data
            .chunks(32)
            .map(|w| u64::from(w.iter().fold(0u8, |n, &b| n + u8::from(b == b'\n'))))
            .sum::<u64>();
        if let Some(&b) = data.last() {
            self.last = Some(b);
        }
    }

    /// The count so far.
    pub fn lines(&self) -> u64 {
        self.newlines + u64::from(self.last.is_some_and(|b| b != b'\n'))
    }
}

impl Entry {
    /// An entry of its path, kind, mode and modification time, every optional member absent.
    pub fn bare(path: WirePath, kind: EntryKind, mode: u32, mtime: i64, mtime_ns: u32) -> Entry {
        Entry {
            path,
            kind,
            mode,
            mtime,
            mtime_ns,
            size: None,
            sha256: None,
            offset: None,
            target: None,
            ino: None,
            ctime: None,
            ctime_ns: None,
            changed: false,
            lines: None,
        }
    }

    /// Content length of a file (0 for other kinds).
    pub fn file_size(&self) -> u64 {
        self.size.unwrap_or(0)
    }
}

/// A chunk's keyed id: 32 bytes in memory, 64 lowercase hex digits on the wire. A manifest
/// or files cache lists one per chunk of a stream, so a 20 GB file or a million-file
/// cache holds thousands to millions of them: a `String` cost ~100 bytes each.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId(pub [u8; 32]);

impl ChunkId {
    /// Lowercase hex, as on the wire and in object names.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The object name (`chunks/<2>/<64>`).
    pub fn object_name(&self) -> String {
        super::chunk_object(&self.to_hex())
    }
}

impl std::fmt::Display for ChunkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChunkId({self})")
    }
}

impl Serialize for ChunkId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut text = [0u8; 64];
        hex::encode_to_slice(self.0, &mut text).expect("64 digits for 32 bytes");
        s.serialize_str(std::str::from_utf8(&text).expect("hex is ASCII"))
    }
}

impl<'de> Deserialize<'de> for ChunkId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ChunkId;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a chunk id of 64 lowercase hex digits")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ChunkId, E> {
                super::chunk_list::hex32(v.as_bytes())
                    .map(ChunkId)
                    .ok_or_else(|| {
                        E::custom(format!("'{v}' is not a chunk id (64 lowercase hex digits)"))
                    })
            }
        }
        d.deserialize_str(V)
    }
}

/// One chunk of the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// Keyed id.
    pub id: ChunkId,
    /// Plaintext length.
    pub size: u64,
}

/// A manifest's chunk stream as the streamed reader parses it: by the same bounded
/// deserializer as the whole manifest's, so a hostile list of millions of chunks is refused
/// at the first one over the limit, not after it is held.
#[derive(Deserialize)]
#[serde(transparent)]
pub(super) struct ChunkStream(#[serde(deserialize_with = "bounded::chunks")] pub Vec<ChunkRef>);

/// The body of `manifests/<id>` (after decryption and decompression).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// `snapdrill-manifest`.
    pub format: String,
    /// Format version.
    pub version: u32,
    /// The repository.
    pub repository_id: String,
    /// This snapshot.
    pub snapshot_id: String,
    /// When the backup started.
    pub time: String,
    /// The source paths (or `-` names) the snapshot was made from.
    pub sources: Vec<WirePath>,
    /// The chunk stream, in order.
    #[serde(deserialize_with = "bounded::chunks")]
    pub chunks: Vec<ChunkRef>,
    /// Every entry.
    #[serde(deserialize_with = "bounded::entries")]
    pub entries: Vec<Entry>,
}

impl Manifest {
    /// A new manifest body.
    pub fn new(repository_id: &str, snapshot_id: &str, time: &str) -> Self {
        Manifest {
            format: FORMAT.into(),
            version: super::V1,
            repository_id: repository_id.into(),
            snapshot_id: snapshot_id.into(),
            time: time.into(),
            sources: Vec::new(),
            chunks: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// Parse decompressed manifest JSON and validate it against its commit.
    pub fn parse(json: &[u8], commit: &Commit) -> Result<Self, String> {
        let manifest: Manifest =
            serde_json::from_slice(json).map_err(|e| format!("unreadable manifest: {e}"))?;
        manifest.checked(commit)
    }

    /// Parse manifest JSON as it streams out of the decompressor (the text is never held
    /// whole), then validate it against its commit.
    pub fn parse_reader(json: impl std::io::Read, commit: &Commit) -> Result<Self, String> {
        let reader = std::io::BufReader::with_capacity(64 << 10, json);
        let manifest: Manifest =
            serde_json::from_reader(reader).map_err(|e| format!("unreadable manifest: {e}"))?;
        manifest.checked(commit)
    }

    fn checked(self, commit: &Commit) -> Result<Self, String> {
        check_version("manifest", &self.format, FORMAT, self.version, super::V1)?;
        self.validate(commit)?;
        Ok(self)
    }

    /// Total length of the chunk stream.
    pub fn stream_len(&self) -> u64 {
        self.chunks.iter().map(|c| c.size).sum()
    }

    /// Start offset of each chunk in the stream.
    pub fn chunk_offsets(&self) -> Vec<u64> {
        let mut at = 0;
        self.chunks
            .iter()
            .map(|c| {
                let start = at;
                at += c.size;
                start
            })
            .collect()
    }

    /// The chunks holding the content of file `e`: each chunk's index and the byte range
    /// inside it. `offsets` comes from [`Manifest::chunk_offsets`]. Empty files have none.
    pub fn chunk_ranges<'a>(
        &'a self,
        offsets: &'a [u64],
        e: &Entry,
    ) -> impl Iterator<Item = (usize, u64, u64)> + 'a {
        let start = e.offset.unwrap_or(0);
        let end = start + e.file_size();
        // First chunk containing `start`: the last chunk whose offset is <= start.
        let first = offsets.partition_point(|&o| o <= start).saturating_sub(1);
        offsets
            .iter()
            .zip(&self.chunks)
            .enumerate()
            .skip(first)
            .take_while(move |(_, (at, _))| **at < end)
            .map(move |(k, (&at, c))| (k, start.saturating_sub(at), (end - at).min(c.size)))
    }

    /// Every check of docs/format.md section 8; nothing may be written before it passes.
    pub fn validate(&self, commit: &Commit) -> Result<(), String> {
        if self.entries.len() > limits::ENTRIES {
            return Err(format!("more than {} entries", limits::ENTRIES));
        }
        self.validate_header(commit)?;
        self.validate_entries()
    }

    /// The checks of everything but the entries: the snapshot, and each chunk of the stream
    /// a valid size and in the signed object list.
    pub(super) fn validate_header(&self, commit: &Commit) -> Result<(), String> {
        if self.repository_id != commit.repository_id || self.snapshot_id != commit.snapshot_id {
            return Err("the manifest belongs to another snapshot than its commit".into());
        }
        if let Some(id) = commit.object_set().conflict() {
            return Err(format!(
                "its commit names chunk {} twice, as two different objects, in its object lists",
                hex::encode(id)
            ));
        }
        for c in &self.chunks {
            if c.size == 0 || c.size > limits::CHUNK {
                return Err(format!("chunk {} has invalid size {}", c.id, c.size));
            }
            if commit.chunk(&c.id).is_none() {
                return Err(format!("chunk {} is not in the signed object list", c.id));
            }
        }
        Ok(())
    }

    /// The entry rules, by the one implementation the streamed check runs too.
    fn validate_entries(&self) -> Result<(), String> {
        let stream = self.stream_len();
        let mut checks = super::streamed::EntryChecks::new(Some(stream));
        self.entries.iter().try_for_each(|e| checks.add(e))?;
        checks.finish(stream, &mut |each| {
            self.entries.iter().try_for_each(&mut *each)
        })
    }

    /// Each chunk id once, in the order the stream first uses it (the order a version-4
    /// commit cuts its object lists in).
    pub fn chunk_ids_first_use(&self) -> Vec<ChunkId> {
        let mut seen = HashSet::with_capacity(self.chunks.len());
        self.chunks
            .iter()
            .filter(|c| seen.insert(c.id))
            .map(|c| c.id)
            .collect()
    }
}

/// The entry and chunk lists, checked while they are parsed: every path is validated, a
/// path seen twice stops the parse at once, and the count and the memory the lists take are
/// bounded ([`limits::MANIFEST_MEMORY`]), so a small sealed manifest of millions of
/// identical entries costs a reader nothing but the time to reach the second one.
mod bounded {
    use std::collections::HashMap;
    use std::hash::{BuildHasher, RandomState};

    use serde::Deserializer;
    use serde::de::{Error as _, SeqAccess, Visitor};

    use super::{ChunkRef, Entry, heap_cost, validate_path};
    use crate::format::limits;

    pub(super) fn entries<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Entry>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<Entry>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of entries")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Entry>, A::Error> {
                let mut out: Vec<Entry> = Vec::new();
                // Path hash -> index of the entry with that hash; the rare true collision
                // of two different paths goes to a list searched by comparing paths.
                let hasher = RandomState::new();
                let mut seen: HashMap<u64, u32> = HashMap::new();
                let mut collided: Vec<u32> = Vec::new();
                let mut heap = 0usize;
                let too_many = |n: usize, memory: usize| {
                    A::Error::custom(format!(
                        "more entries than a reader holds ({n} entries, about {} MiB; at most {} entries in {} MiB)",
                        memory >> 20,
                        limits::ENTRIES,
                        limits::MANIFEST_MEMORY >> 20
                    ))
                };
                while let Some(e) = seq.next_element::<Entry>()? {
                    validate_path(&e.path.0).map_err(|why| {
                        A::Error::custom(format!("unsafe path '{}': {why}", e.path.display()))
                    })?;
                    let twice =
                        || A::Error::custom(format!("path '{}' appears twice", e.path.display()));
                    match seen.entry(hasher.hash_one(&e.path.0)) {
                        std::collections::hash_map::Entry::Occupied(o) => {
                            if out[*o.get() as usize].path == e.path
                                || collided.iter().any(|&i| out[i as usize].path == e.path)
                            {
                                return Err(twice());
                            }
                            collided.push(out.len() as u32);
                        }
                        std::collections::hash_map::Entry::Vacant(v) => {
                            v.insert(out.len() as u32);
                        }
                    }
                    heap += heap_cost(&e);
                    // Grow by a quarter at a time (not double), so the budget can be used.
                    if out.len() == out.capacity() {
                        let more = (out.len() / 4).max(1024);
                        let cost = |cap: usize| {
                            cap * std::mem::size_of::<Entry>() + heap + seen.capacity() * 24
                        };
                        if out.len() >= limits::ENTRIES
                            || cost(out.len() + more) > limits::MANIFEST_MEMORY
                        {
                            return Err(too_many(out.len() + 1, cost(out.len())));
                        }
                        out.reserve_exact(more);
                    }
                    out.push(e);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }

    pub(super) fn chunks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ChunkRef>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<ChunkRef>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of chunks")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<ChunkRef>, A::Error> {
                let mut out = Vec::new();
                while let Some(c) = seq.next_element::<ChunkRef>()? {
                    if out.len() >= limits::CHUNK_REFS {
                        return Err(A::Error::custom(format!(
                            "more than {} chunks",
                            limits::CHUNK_REFS
                        )));
                    }
                    out.push(c);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
}

/// The heap parts of one entry as a reader holds it (its struct is counted apart), for the
/// memory bound of [`limits::MANIFEST_MEMORY`].
pub(super) fn heap_cost(e: &Entry) -> usize {
    // Each allocation is rounded up by the allocator; 16 bytes is its usual granule.
    let alloc = |n: usize| if n == 0 { 0 } else { n.div_ceil(16) * 16 };
    alloc(e.path.0.len())
        + e.target.as_ref().map_or(0, |t| alloc(t.0.len()))
        + e.sha256.as_ref().map_or(0, |h| alloc(h.len()))
}

/// Refuse any path that could leave the restore target (docs/security.md, "restore").
pub fn validate_path(p: &[u8]) -> Result<(), &'static str> {
    if p.is_empty() {
        return Err("empty path");
    }
    if p.len() > limits::PATH {
        return Err("path too long");
    }
    if p.contains(&0) {
        return Err("NUL byte");
    }
    if p[0] == b'/' || p[0] == b'\\' {
        return Err("absolute path");
    }
    if p.len() >= 2 && p[1] == b':' && p[0].is_ascii_alphabetic() {
        return Err("drive-letter path");
    }
    for component in p.split(|&b| b == b'/') {
        if component.is_empty() || component == b"." || component == b".." {
            return Err("empty, '.' or '..' component");
        }
        if component.len() > limits::COMPONENT {
            return Err("component longer than 255 bytes");
        }
        if component.split(|&b| b == b'\\').any(|c| c == b"..") {
            return Err("'..' component (backslash-separated)");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_as_the_format_says() {
        let count = |parts: &[&[u8]]| {
            let mut c = LineCounter::default();
            parts.iter().for_each(|p| c.update(p));
            c.lines()
        };
        assert_eq!(count(&[]), 0);
        assert_eq!(count(&[b"a,b\n1,2\n"]), 2);
        assert_eq!(
            count(&[b"a,b\n1,", b"2"]),
            2,
            "an unterminated last line counts"
        );
        assert_eq!(count(&[b"\n", b""]), 1, "an empty read keeps the last byte");
        assert!(counts_lines(b"exports/Customers.CSV"));
        assert!(counts_lines(b"calls.jsonl"));
        assert!(!counts_lines(b"exports/.csv"));
        assert!(!counts_lines(b"csv/notes.txt"));
    }

    #[test]
    fn hostile_paths_are_refused() {
        for bad in [
            &b"../x"[..],
            b"/etc/x",
            b"..\\x",
            b"a\\..\\b",
            b"C:\\x",
            b"c:x",
            b"a/\0b",
            b"a//b",
            b"a/./b",
            b"a/..",
            b"",
            b"\\\\server\\share",
        ] {
            assert!(
                validate_path(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(validate_path(&[b'a'; 4097]).is_err());
        assert!(validate_path(&[b'a'; 256]).is_err());
        for good in [
            &b"a"[..],
            b"exports/customers.csv",
            b"a\\b",
            b"\xff\xfe",
            b"..a",
            b"a..",
        ] {
            assert!(
                validate_path(good).is_ok(),
                "{:?}",
                String::from_utf8_lossy(good)
            );
        }
    }

    #[test]
    fn chunk_ids_are_64_lowercase_hex_digits_on_the_wire() {
        let c = ChunkRef {
            id: ChunkId([0xab; 32]),
            size: 7,
        };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            json,
            format!("{{\"id\":\"{}\",\"size\":7}}", "ab".repeat(32))
        );
        assert_eq!(serde_json::from_str::<ChunkRef>(&json).unwrap(), c);
        for bad in [
            "AB".repeat(32),
            "ab".repeat(31),
            "ab".repeat(33),
            "g".repeat(64),
        ] {
            let json = format!("{{\"id\":\"{bad}\",\"size\":7}}");
            let err = serde_json::from_str::<ChunkRef>(&json).unwrap_err();
            assert!(
                err.to_string().contains("is not a chunk id"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn non_utf8_paths_round_trip_through_json() {
        let p = WirePath(b"caf\xe9".to_vec());
        let json = serde_json::to_string(&p).unwrap();
        assert!(json.contains("b64"), "{json}");
        assert_eq!(serde_json::from_str::<WirePath>(&json).unwrap(), p);
        let q = WirePath("顧客.csv".as_bytes().to_vec());
        assert_eq!(serde_json::to_string(&q).unwrap(), "\"顧客.csv\"");
    }
}
