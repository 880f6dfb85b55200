//! The repository format, version 2 (`docs/format.md` is the specification).
//!
//! This module owns object names, the three documents (repository config, commit,
//! manifest), their signatures and the limits a reader enforces. It does no I/O.

pub mod chunk_list;
pub mod commit;
pub mod manifest;
pub mod object_list;
pub mod repo_config;
pub mod signed;
pub mod streamed;
pub mod tombstone;
pub mod writer;

use std::time::SystemTime;

use rand::RngCore;

/// The repository format version this build writes (docs/format.md section 11). Each
/// document carries its own version: versions 2 and 4 changed the commit
/// ([`commit::VERSION`]), version 3 the config.
pub const VERSION: u32 = 4;

/// The version of the documents format version 2 left as they were.
pub const V1: u32 = 1;

/// Name of the repository config object.
pub const CONFIG_OBJECT: &str = "config";
/// Prefix of chunk objects.
pub const CHUNKS_PREFIX: &str = "chunks/";
/// Prefix of object lists (commit version 4).
pub const LISTS_PREFIX: &str = "lists/";
/// Prefix of manifest objects.
pub const MANIFESTS_PREFIX: &str = "manifests/";
/// Prefix of commit objects.
pub const SNAPSHOTS_PREFIX: &str = "snapshots/";
/// Prefix of the signed tombstones `forget` leaves: `forgotten/<snapshot-id>`.
pub const FORGOTTEN_PREFIX: &str = "forgotten/";
/// Prefix of in-flight backup markers: `writers/<snapshot-id>` (docs/format.md section 10).
pub const WRITERS_PREFIX: &str = "writers/";
/// Prefix of chunks prune has set aside: `fossils/chunks/<ab>/<id>`.
pub const FOSSILS_PREFIX: &str = "fossils/";
/// Prefix of prune's fossil-collection records: `collections/<collection-id>`.
pub const COLLECTIONS_PREFIX: &str = "collections/";
/// Prefix of leases: `locks/prune`.
pub const LOCKS_PREFIX: &str = "locks/";
/// Prefix of short-lived probe objects (create-only, clock, immutability canaries).
pub const PROBES_PREFIX: &str = "probes/";
/// Prefix of the key history: `keys/config-<generation>`, each config generation as it
/// was written (docs/format.md section 5).
pub const KEYS_PREFIX: &str = "keys/";
/// Prefix of drill evidence records.
pub const DRILLS_PREFIX: &str = "drills/";
/// Prefix of audit evidence records (format version 3 and later; older readers list them as
/// unknown objects and leave them alone).
pub const AUDITS_PREFIX: &str = "audits/";

/// Limits a reader enforces on untrusted input (docs/format.md section 12).
pub mod limits {
    /// Largest `config` object.
    /// Largest `config` object (version 3 carries sealed read keys: up to 64 recipients,
    /// RSA stanzas included, for each of a few read keys).
    pub const CONFIG_OBJECT: u64 = 1 << 20;
    /// Largest commit object.
    pub const COMMIT_OBJECT: u64 = 256 << 20;
    /// Largest manifest, sealed and decompressed.
    pub const MANIFEST: u64 = 1 << 30;
    /// Most entries in one manifest.
    pub const ENTRIES: usize = 50_000_000;
    /// Most memory a reader gives one manifest's entries (counted as they are parsed: each
    /// entry's struct and its path, link target and hash). About 260 bytes a file: some
    /// two million files per snapshot. A backup never commits a manifest above it.
    pub const MANIFEST_MEMORY: usize = 512 << 20;
    /// Most chunks in one manifest's stream (4 TiB at the 2 MiB average chunk).
    pub const CHUNK_REFS: usize = 2_000_000;
    /// Largest chunk plaintext.
    pub const CHUNK: u64 = 16 << 20;
    /// Sealing overhead allowed on top of a chunk's plaintext (age header and tags, zstd).
    pub const SEAL_OVERHEAD: u64 = 64 << 10;
    /// Longest path in a manifest.
    pub const PATH: usize = 4096;
    /// Longest path component.
    pub const COMPONENT: usize = 255;
    /// Largest sealed drill record.
    pub const DRILL_RECORD: u64 = 4 << 20;
    /// Largest sealed audit record (a report lists every snapshot and finding).
    pub const AUDIT_RECORD: u64 = 16 << 20;
}

/// The history copy of config generation `generation`.
pub fn config_history_object(generation: u64) -> String {
    format!("{KEYS_PREFIX}config-{generation:08}")
}

/// The generation a key-history object's name carries.
pub fn config_history_generation(name: &str) -> Option<u64> {
    name.strip_prefix(KEYS_PREFIX)?
        .strip_prefix("config-")?
        .parse()
        .ok()
}

/// The name a `rekey` gives a snapshot's manifest encrypted to read key generation
/// `generation` (commit version 3): a new name, so that the commit naming the old one stays
/// true until it is replaced.
pub fn manifest_object_rekeyed(snapshot_id: &str, generation: u64) -> String {
    format!("{MANIFESTS_PREFIX}{snapshot_id}-k{generation}")
}

/// Is `name` a manifest name of snapshot `snapshot_id` (plain, or as `rekey` names it)?
pub fn is_manifest_of(name: &str, snapshot_id: &str) -> bool {
    let Some(rest) = name
        .strip_prefix(MANIFESTS_PREFIX)
        .and_then(|r| r.strip_prefix(snapshot_id))
    else {
        return false;
    };
    rest.is_empty()
        || rest.strip_prefix("-k").is_some_and(|g| {
            !g.is_empty() && g.len() <= 20 && g.bytes().all(|b| b.is_ascii_digit())
        })
}

/// The snapshot id a manifest name belongs to (plain or as `rekey` names it).
pub fn manifest_snapshot_id(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(MANIFESTS_PREFIX)?;
    let id = match rest.rsplit_once("-k") {
        Some((id, g)) if !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()) => id,
        _ => rest,
    };
    is_manifest_of(name, id).then_some(id)
}

/// The read key generation a manifest name carries (`-k<generation>`, as `rekey` names
/// it); 0 for a manifest named by its backup.
pub fn manifest_generation(name: &str) -> u64 {
    name.rsplit_once("-k")
        .and_then(|(_, g)| g.parse().ok())
        .filter(|_| manifest_snapshot_id(name).is_some())
        .unwrap_or(0)
}

/// The object name of a chunk.
pub fn chunk_object(id_hex: &str) -> String {
    format!("{CHUNKS_PREFIX}{}/{id_hex}", &id_hex[..2])
}

/// The object name of a snapshot's manifest.
pub fn manifest_object(snapshot_id: &str) -> String {
    format!("{MANIFESTS_PREFIX}{snapshot_id}")
}

/// The object name of a snapshot's commit.
pub fn commit_object(snapshot_id: &str) -> String {
    format!("{SNAPSHOTS_PREFIX}{snapshot_id}")
}

/// The object name of a snapshot's tombstone.
pub fn tombstone_object(snapshot_id: &str) -> String {
    format!("{FORGOTTEN_PREFIX}{snapshot_id}")
}

/// The object name of a backup's in-flight marker.
pub fn writer_object(snapshot_id: &str) -> String {
    format!("{WRITERS_PREFIX}{snapshot_id}")
}

/// The fossil name of a chunk object (`chunks/ab/..` -> `fossils/chunks/ab/..`).
pub fn fossil_object(chunk_object: &str) -> String {
    format!("{FOSSILS_PREFIX}{chunk_object}")
}

/// The chunk object (or object list) a fossil name stands for, if it is one.
pub fn unfossil(fossil: &str) -> Option<&str> {
    let object = fossil.strip_prefix(FOSSILS_PREFIX)?;
    chunk_name_id(object).map(|_| object)
}

/// The chunk id (hex) of a chunk object name, if it is one.
pub fn chunk_id_of(object: &str) -> Option<&str> {
    sharded_id(object.strip_prefix(CHUNKS_PREFIX)?)
}

/// The object name of an object list: `lists/<hh>/<SHA-256 of its bytes>`.
pub fn list_object(sha256_hex: &str) -> String {
    format!("{LISTS_PREFIX}{}/{sha256_hex}", &sha256_hex[..2])
}

/// The id (hex SHA-256) of an object list's name, if it is one.
pub fn list_id_of(object: &str) -> Option<&str> {
    sharded_id(object.strip_prefix(LISTS_PREFIX)?)
}

/// `<hh>/<64 hex digits starting with hh>`: the id.
fn sharded_id(rest: &str) -> Option<&str> {
    let (shard, id) = rest.split_once('/')?;
    (is_hex(id, 64) && id.starts_with(shard) && shard.len() == 2).then_some(id)
}

/// The drill id and the MAC a drill record's object name carries (`drills/<id>.<mac>`,
/// or `drills/<id>` as written before snapdrill 0.2), if it is one.
pub fn drill_record_name(name: &str) -> Option<(&str, Option<&str>)> {
    let rest = name.strip_prefix(DRILLS_PREFIX)?;
    let (id, mac) = match rest.split_once('.') {
        Some((id, mac)) => (id, Some(mac)),
        None => (rest, None),
    };
    (is_snapshot_id(id) && mac.is_none_or(|m| is_hex(m, 64))).then_some((id, mac))
}

/// The audit id and MAC an audit record's object name carries (`audits/<id>.<mac>`), if
/// it is one.
pub fn audit_record_name(name: &str) -> Option<(&str, &str)> {
    let (id, mac) = name.strip_prefix(AUDITS_PREFIX)?.split_once('.')?;
    (is_snapshot_id(id) && is_hex(mac, 64)).then_some((id, mac))
}

/// Is `s` a job name: 1 to 64 of `A-Z a-z 0-9 _ -` (it is shown in listings, file names of
/// local state and metric labels, so nothing that needs quoting)?
pub fn is_job_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A chunk id (64 lowercase hex digits, as object names and manifests spell it) as its 32
/// bytes; `None` for anything else (an uppercase spelling is not the same id).
pub fn chunk_id_bytes(id: &str) -> Option<[u8; 32]> {
    chunk_list::hex32(id.as_bytes())
}

/// The 32-byte id of the chunk object `name` (`chunks/<2>/<id>`) or object list
/// (`lists/<2>/<id>`), if it is one. Commits and the engine hold both kinds as
/// [`chunk_list::ChunkObject`]s: a list is the object whose id is its own SHA-256.
pub fn chunk_name_id(name: &str) -> Option<[u8; 32]> {
    chunk_id_bytes(chunk_id_of(name).or_else(|| list_id_of(name))?)
}

/// Is `s` exactly `len` lowercase hex digits?
pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A new snapshot id: the UTC time and 8 random hex digits, e.g. `20261128T032718Z-9f2c1a7b`.
pub fn new_snapshot_id(time: SystemTime) -> String {
    let mut random = [0u8; 4];
    rand::rngs::OsRng.fill_bytes(&mut random);
    format!("{}-{}", new_snapshot_id_prefix(time), hex::encode(random))
}

/// The time part of a snapshot id: `20261128T032718Z` (UTC, to the second).
pub fn new_snapshot_id_prefix(time: SystemTime) -> String {
    // 2026-11-28T03:27:18Z -> 20261128T032718Z
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect()
}

/// Is `id` shaped like a snapshot id?
pub fn is_snapshot_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 25
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'Z'
        && b[16] == b'-'
        && is_hex(&id[17..], 8)
}

/// Format a time as docs/format.md requires (RFC 3339, UTC, nanoseconds).
pub fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

/// Parse a time written by [`format_time`].
pub fn parse_time(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(s).ok()
}

/// Check a document's `format` and `version` members (docs/format.md section 11): `newest`
/// is the newest version of this document this build reads.
pub fn check_version(
    what: &str,
    format: &str,
    expected: &str,
    version: u32,
    newest: u32,
) -> Result<(), String> {
    if format != expected {
        return Err(format!(
            "{what} has format '{format}', expected '{expected}'"
        ));
    }
    if version > newest {
        return Err(format!(
            "{what} uses format version {version}, but this snapdrill reads versions up to {newest}: \
             it was written by a newer snapdrill; upgrade snapdrill to read it"
        ));
    }
    if version == 0 {
        return Err(format!("{what} has invalid version 0"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_id_is_its_lowercase_spelling_only() {
        let id = "0f".repeat(32);
        assert_eq!(chunk_id_bytes(&id), Some([0x0f; 32]));
        assert_eq!(chunk_id_bytes(&id.to_uppercase()), None);
        assert_eq!(chunk_id_bytes(&id[..62]), None);
        assert_eq!(chunk_id_bytes(&format!("{}zz", &id[..62])), None);
    }

    #[test]
    fn snapshot_ids() {
        let id = new_snapshot_id(humantime::parse_rfc3339("2026-11-28T03:27:18.5Z").unwrap());
        assert!(id.starts_with("20261128T032718Z-"), "{id}");
        assert!(is_snapshot_id(&id));
        assert!(!is_snapshot_id("../../etc/passwd"));
        assert!(!is_snapshot_id("20261128T032718Z-9F2C1A7B"));
    }

    #[test]
    fn chunk_names() {
        let id = "ab".repeat(32);
        let name = chunk_object(&id);
        assert_eq!(chunk_id_of(&name), Some(id.as_str()));
        assert_eq!(chunk_id_of("chunks/cd/abab"), None);
        assert_eq!(chunk_id_of(&name.replace("chunks/ab", "chunks/cd")), None);
    }

    #[test]
    fn newer_versions_are_refused_with_a_clear_message() {
        let err = check_version("manifest", "snapdrill-manifest", "snapdrill-manifest", 2, 1)
            .unwrap_err();
        assert!(err.contains("newer snapdrill"), "{err}");
        assert!(check_version("x", "other", "snapdrill-manifest", 1, 1).is_err());
        assert!(check_version("x", "snapdrill-manifest", "snapdrill-manifest", 1, 1).is_ok());
        assert!(check_version("x", "snapdrill-snapshot", "snapdrill-snapshot", 2, 2).is_ok());
    }
}
