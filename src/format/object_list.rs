//! Object lists (commit version 4, docs/format.md section 7a): a snapshot's chunk objects,
//! cut into plain, content-addressed pieces that the nightlies of one export share.
//!
//! A version-2 commit carried every chunk object it needs (~200 bytes each, signed): a
//! year of nightlies of 20,000 chunks is 1.5 GB of commits that every listing command
//! reads and hashes, and one snapshot of a million chunks a 207 MB commit. A version-4
//! commit names *lists* instead: plain JSON objects `lists/<hh>/<id>` whose id is the
//! SHA-256 of their bytes. The engine holds a list like a chunk (a [`ChunkObject`] whose id
//! is its own hash), so what keeps, collects, copies and audits chunks does the same for
//! lists; readers fetch each distinct list once.
//!
//! Lists are cut in the order the manifest first uses its chunks, after each chunk whose
//! keyed id ends in a zero byte (1 in 256) or at [`MAX_ENTRIES`]: a nightly that changed a
//! few files writes a few new lists and names the rest of yesterday's. The cut points
//! depend on keyed ids, so they tell a store reader nothing it could not see before.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::chunk_list::{ChunkList, ChunkObject};
use super::commit::ObjectRef;

const FORMAT: &str = "snapdrill-list";

/// The list version this build writes and reads.
pub const VERSION: u32 = 1;

/// Most entries in one list: a list is cut here if no id has cut it before.
pub const MAX_ENTRIES: usize = 4096;

/// Largest list object a reader accepts (4,096 entries of ~170 bytes each fit well).
pub const LIMIT: u64 = 1 << 20;

#[derive(Serialize, Deserialize)]
struct Wire {
    format: String,
    version: u32,
    objects: ChunkList,
}

/// A list made by a writer: its reference (for the commit) and its bytes (for the stores).
#[derive(Debug, Clone)]
pub struct NewList {
    /// Name, size and SHA-256, as the commit pins it.
    pub reference: ObjectRef,
    /// The plaintext JSON.
    pub bytes: Bytes,
}

impl NewList {
    /// The list of `part` (at most [`MAX_ENTRIES`] objects, at least one).
    pub fn of(part: &[ChunkObject]) -> NewList {
        let wire = Wire {
            format: FORMAT.into(),
            version: VERSION,
            objects: ChunkList::new(part.iter().copied()),
        };
        let bytes = Bytes::from(serde_json::to_vec(&wire).expect("a list serializes"));
        let sha = crate::sealing::sha256_hex(&bytes);
        NewList {
            reference: ObjectRef {
                name: super::list_object(&sha),
                size: bytes.len() as u64,
                sha256: sha,
            },
            bytes,
        }
    }
}

/// The list itself as a chunk object: its id is the SHA-256 of its bytes.
pub fn as_object(reference: &ObjectRef) -> Option<ChunkObject> {
    let o = ChunkObject::parse(&reference.name, reference.size, &reference.sha256)?;
    (o.id == o.sha256).then_some(o)
}

/// Cut `first_use` (each chunk object once, in the order the manifest first uses it) into
/// the parts each list holds.
pub fn cut(first_use: &[ChunkObject]) -> Vec<&[ChunkObject]> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, o) in first_use.iter().enumerate() {
        if o.id[31] == 0 || i + 1 - start == MAX_ENTRIES {
            parts.push(&first_use[start..=i]);
            start = i + 1;
        }
    }
    if start < first_use.len() {
        parts.push(&first_use[start..]);
    }
    parts
}

/// Parse a list whose bytes matched the reference its commit pins.
pub fn parse(bytes: &[u8]) -> Result<ChunkList, String> {
    if bytes.len() as u64 > LIMIT {
        return Err(format!("is {} bytes, more than a list may be", bytes.len()));
    }
    let wire: Wire =
        serde_json::from_slice(bytes).map_err(|e| format!("is not an object list: {e}"))?;
    super::check_version("object list", &wire.format, FORMAT, wire.version, VERSION)?;
    match wire.objects.len() {
        0 => Err("is an empty object list".into()),
        n if n > MAX_ENTRIES => Err(format!("lists {n} objects, more than {MAX_ENTRIES}")),
        _ => Ok(wire.objects),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists(all: &[ChunkObject]) -> Vec<NewList> {
        cut(all).into_iter().map(NewList::of).collect()
    }

    fn obj(n: u32, last: u8) -> ChunkObject {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&n.to_be_bytes());
        id[31] = last;
        ChunkObject {
            id,
            sha256: [n as u8; 32],
            size: 100 + n as u64,
        }
    }

    #[test]
    fn lists_cut_after_ids_ending_in_zero_and_round_trip() {
        let all: Vec<ChunkObject> = (0..10).map(|n| obj(n, (n % 4) as u8)).collect();
        let lists = lists(&all);
        // Ids 0, 4 and 8 end in a zero byte: [0] [1..=4] [5..=8] [9].
        let sizes: Vec<usize> = lists
            .iter()
            .map(|l| parse(&l.bytes).unwrap().len())
            .collect();
        assert_eq!(sizes, [1, 4, 4, 1]);
        for l in &lists {
            assert!(l.reference.matches(&l.bytes));
            assert!(as_object(&l.reference).is_some());
        }
        let back: Vec<ChunkObject> = lists
            .iter()
            .flat_map(|l| parse(&l.bytes).unwrap().objects().collect::<Vec<_>>())
            .collect();
        let mut want = all.clone();
        want.sort_by_key(|o| o.id);
        let mut got = back;
        got.sort_by_key(|o| o.id);
        assert_eq!(got, want);
    }

    #[test]
    fn a_change_in_the_middle_leaves_the_other_lists_alone() {
        let day1: Vec<ChunkObject> = (0..2000).map(|n| obj(n, (n % 97) as u8)).collect();
        let mut day2 = day1.clone();
        day2[1000] = obj(99_999, 7);
        let (a, b) = (lists(&day1), lists(&day2));
        let names = |l: &[NewList]| -> std::collections::HashSet<String> {
            l.iter().map(|l| l.reference.name.clone()).collect()
        };
        let shared = names(&a).intersection(&names(&b)).count();
        assert_eq!(a.len(), b.len());
        assert_eq!(
            shared,
            a.len() - 1,
            "only the list holding the change is new"
        );
    }

    #[test]
    fn no_list_grows_past_its_bound_and_bad_lists_are_refused() {
        let all: Vec<ChunkObject> = (0..9000).map(|n| obj(n, 1)).collect();
        let lists = lists(&all);
        assert_eq!(lists.len(), 3);
        assert!(
            lists
                .iter()
                .all(|l| parse(&l.bytes).unwrap().len() <= MAX_ENTRIES)
        );
        assert!(parse(br#"{"format":"snapdrill-list","version":1,"objects":[]}"#).is_err());
        let newer = br#"{"format":"snapdrill-list","version":2,"objects":[]}"#;
        assert!(parse(newer).unwrap_err().contains("newer snapdrill"));
    }
}
