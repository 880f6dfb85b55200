//! The commit of a snapshot: the signed, plaintext list of its objects
//! (docs/format.md section 7).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use super::chunk_list::{ChunkList, ChunkObject, ObjectSet};
use super::object_list::{self, NewList};
use super::signed::{self, Role, SignatureError};
use super::{check_version, limits};

const FORMAT: &str = "snapdrill-snapshot";

/// The commit version that records the data set (`job`, `source`). A version-1 reader
/// refuses these commits rather than lumping every data set of a host into one timeline
/// (its retention would forget one data set's only snapshots for another's).
pub const DATA_SET: u32 = 2;

/// The commit version `rekey` writes: as version 2, but the manifest may be named
/// `manifests/<snapshot-id>-k<generation>`, and a version-1 snapshot keeps its host-only
/// data set.
pub const REKEYED: u32 = 3;

/// The commit version this build writes (backups and `rekey`): as version 3, but the
/// chunk objects are named through object lists ([`object_list`]).
/// Readers accept up to this version.
pub const VERSION: u32 = 4;

/// One object a snapshot needs, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Object name.
    pub name: String,
    /// Ciphertext size in bytes.
    pub size: u64,
    /// SHA-256 of the ciphertext, hex.
    pub sha256: String,
}

impl ObjectRef {
    /// The reference of the object whose bytes are `bytes`, named `name`.
    pub fn of(name: &str, bytes: &[u8]) -> Self {
        ObjectRef {
            name: name.to_owned(),
            size: bytes.len() as u64,
            sha256: crate::sealing::sha256_hex(bytes),
        }
    }

    /// Are `bytes` exactly this object (its size and its SHA-256)?
    pub fn matches(&self, bytes: &[u8]) -> bool {
        bytes.len() as u64 == self.size && crate::sealing::sha256_hex(bytes) == self.sha256
    }
}

/// Counts shown in listings without the identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Regular files.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Total bytes of file content.
    pub bytes: u64,
}

/// Which data set a snapshot belongs to: one job of one host, saving one set of sources.
/// Commits of format version 1 name only the host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct DataSet {
    /// The host that made it.
    pub host: String,
    /// The job's name (`None` in version 1).
    pub job: Option<String>,
    /// The keyed hash of what the job saves (`None` in version 1).
    pub source: Option<String>,
}

impl DataSet {
    /// The job as shown: its name, or `-` for a version-1 snapshot.
    pub fn job_name(&self) -> &str {
        self.job.as_deref().unwrap_or("-")
    }
}

impl std::fmt::Display for DataSet {
    /// `host/job`: what a person calls it (two data sets of one job differ in `source`,
    /// which messages add where it matters).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.host, self.job_name())
    }
}

/// Where a new snapshot comes from: its data set and the operator's tags.
#[derive(Debug, Clone)]
pub struct Origin {
    /// Host, job and source identity.
    pub set: DataSet,
    /// Operator's tags.
    pub tags: Vec<String>,
}

/// The body of `snapshots/<id>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Commit {
    /// `snapdrill-snapshot`.
    pub format: String,
    /// Format version.
    pub version: u32,
    /// The repository.
    pub repository_id: String,
    /// This snapshot.
    pub snapshot_id: String,
    /// When the backup started (UTC).
    pub time: String,
    /// The host that made it.
    pub host: String,
    /// The job that made it (version 2; [`is_job_name`](super::is_job_name)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// What the job saves, as a keyed hash a store reader cannot invert (version 2, 32 hex
    /// digits: docs/format.md section 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Operator's tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Counts.
    pub summary: Summary,
    /// The sealed manifest.
    pub manifest: ObjectRef,
    /// Versions 1 to 3: every chunk object, once, sorted by name (the wire's `objects`).
    #[serde(
        default,
        rename = "objects",
        skip_serializing_if = "ChunkList::is_empty"
    )]
    inline: ChunkList,
    /// The object lists (version 4), in the order they were cut.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lists: Vec<ObjectRef>,
    /// What the snapshot needs, list by list: filled in by [`Verified::resolve`].
    #[serde(skip)]
    set: ObjectSet,
}

/// A commit whose signature and body were checked but whose object lists (version 4) are
/// not read yet: it cannot be mistaken for a commit that needs no objects.
#[derive(Debug, Clone)]
pub struct Verified(Commit);

impl Verified {
    /// The lists to read (none before version 4).
    pub fn lists(&self) -> &[ObjectRef] {
        &self.0.lists
    }

    /// The snapshot.
    pub fn snapshot_id(&self) -> &str {
        &self.0.snapshot_id
    }

    /// The data set the snapshot belongs to.
    pub fn data_set(&self) -> DataSet {
        self.0.data_set()
    }

    /// The whole commit, its objects read from its lists by `read` (each list parsed from
    /// bytes that matched its reference: [`object_list::parse`]). Nothing is merged here:
    /// a history is read list by list ([`ObjectSet`]).
    pub fn resolve(
        self,
        mut read: impl FnMut(&ObjectRef) -> Result<Arc<ChunkList>, String>,
    ) -> Result<Commit, CommitError> {
        let mut commit = self.0;
        if commit.lists.is_empty() {
            commit.set = ObjectSet::of(vec![Arc::new(commit.inline.clone())]);
            return Ok(commit);
        }
        let mut parts = Vec::with_capacity(commit.lists.len() + 1);
        let mut total = 0;
        for list in &commit.lists {
            let part = read(list).map_err(|e| {
                CommitError::Invalid(format!("its object list '{}': {e}", list.name))
            })?;
            total += part.len() + 1;
            if total > limits::CHUNK_REFS {
                return Err(CommitError::Invalid(format!(
                    "names more than {} objects through its lists",
                    limits::CHUNK_REFS
                )));
            }
            parts.push(part);
        }
        parts.push(Arc::new(commit.list_objects()));
        commit.set = ObjectSet::of(parts);
        Ok(commit)
    }
}

/// Why a commit was refused.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Bad or foreign signature.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// Unreadable or inconsistent body.
    #[error("{0}")]
    Invalid(String),
}

/// How far in the future (by the reader's clock) a snapshot's time may be: clocks drift,
/// but a snapshot "from next year" would sort as the newest forever and hide every real one.
pub const FUTURE_TOLERANCE: Duration = Duration::from_secs(3600);

/// A commit's time must parse, match the time its snapshot id carries (to the second), and
/// not lie in the future.
pub fn check_time(time: &str, snapshot_id: &str, now: SystemTime) -> Result<SystemTime, String> {
    let t = super::parse_time(time)
        .ok_or_else(|| format!("has an unreadable time '{}'", time.escape_debug()))?;
    if super::new_snapshot_id_prefix(t) != snapshot_id.get(..16).unwrap_or_default() {
        return Err(format!(
            "has the time {time}, which is not the time its id {snapshot_id} carries"
        ));
    }
    if t.duration_since(now)
        .is_ok_and(|ahead| ahead > FUTURE_TOLERANCE)
    {
        return Err(format!(
            "claims the time {time}, in the future by this host's clock: the backup host's clock is wrong, or the commit is forged"
        ));
    }
    Ok(t)
}

impl Commit {
    /// A new commit of the chunk objects `first_use` (each once, in the order the manifest
    /// first uses it), and the object lists to store before it.
    pub fn new(
        repository_id: &str,
        snapshot_id: &str,
        time: &str,
        origin: Origin,
        summary: Summary,
        manifest: ObjectRef,
        first_use: &[ChunkObject],
    ) -> (Self, Vec<NewList>) {
        let mut commit = Commit {
            format: FORMAT.into(),
            version: VERSION,
            repository_id: repository_id.into(),
            snapshot_id: snapshot_id.into(),
            time: time.into(),
            host: origin.set.host,
            job: origin.set.job,
            source: origin.set.source,
            tags: origin.tags,
            summary,
            manifest,
            inline: ChunkList::default(),
            lists: Vec::new(),
            set: ObjectSet::default(),
        };
        let lists = commit.set_lists(&object_list::cut(first_use));
        (commit, lists)
    }

    /// Name `parts` (each the chunk objects of one list) as this commit's objects, at the
    /// version this build writes; the lists to store before the commit.
    pub fn set_lists(&mut self, parts: &[&[ChunkObject]]) -> Vec<NewList> {
        let lists: Vec<NewList> = parts
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| NewList::of(p))
            .collect();
        self.version = VERSION;
        self.lists = lists.iter().map(|l| l.reference.clone()).collect();
        self.inline = ChunkList::default();
        let mut set: Vec<Arc<ChunkList>> = parts
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| Arc::new(ChunkList::new(p.iter().copied())))
            .collect();
        set.push(Arc::new(self.list_objects()));
        self.set = ObjectSet::of(set);
        lists
    }

    /// List the objects in the commit itself, as formats 1 to 3 did (tests, old vectors).
    pub fn set_inline(&mut self, objects: ChunkList) {
        self.lists = Vec::new();
        self.set = ObjectSet::of(vec![Arc::new(objects.clone())]);
        self.inline = objects;
    }

    /// The object lists themselves, as objects the snapshot needs.
    fn list_objects(&self) -> ChunkList {
        ChunkList::new(self.lists.iter().filter_map(object_list::as_object))
    }

    /// Every object the snapshot needs, sorted by id: chunks, and from version 4 its lists.
    /// Merged from its lists on first use (a restore's lookups); a history's reference
    /// sets are built from [`Commit::object_set`] instead, list by list.
    pub fn objects(&self) -> &ChunkList {
        self.set.merged()
    }

    /// What the snapshot needs, list by list.
    pub fn object_set(&self) -> &ObjectSet {
        &self.set
    }

    /// The body as signed. From version 4 the objects are in the lists (`inline` is empty
    /// and the resolved set is never serialized).
    pub fn to_body(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("commit serializes")
    }

    /// Serialize and sign.
    pub fn to_object(&self, key: &SigningKey) -> Vec<u8> {
        signed::sign(&self.to_body(), Role::Snapshot, key)
    }

    /// Verify, parse and check a commit read from the object `commit_object(expected_id)`;
    /// its lists (version 4) are read next, by [`Verified::resolve`].
    pub fn from_object(
        object: &[u8],
        pinned: &(impl signed::Trust + ?Sized),
        repository_id: &str,
        expected_id: &str,
    ) -> Result<Verified, CommitError> {
        if object.len() as u64 > limits::COMMIT_OBJECT {
            return Err(CommitError::Invalid("commit object too large".into()));
        }
        let (body, until) = signed::verify_trusted(object, Role::Snapshot, pinned)?;
        let commit: Commit = serde_json::from_slice(body)
            .map_err(|e| CommitError::Invalid(format!("unreadable commit: {e}")))?;
        check_version(
            "snapshot commit",
            &commit.format,
            FORMAT,
            commit.version,
            VERSION,
        )
        .map_err(CommitError::Invalid)?;
        commit.check_data_set().map_err(CommitError::Invalid)?;
        commit.check_lists().map_err(CommitError::Invalid)?;
        if commit.repository_id != repository_id {
            return Err(CommitError::Invalid(format!(
                "belongs to repository {}, not {repository_id}",
                commit.repository_id
            )));
        }
        if commit.snapshot_id != expected_id {
            return Err(CommitError::Invalid(format!(
                "is the signed commit of snapshot {} replayed under the name {expected_id}",
                commit.snapshot_id
            )));
        }
        let time = check_time(&commit.time, expected_id, SystemTime::now())
            .map_err(CommitError::Invalid)?;
        // A retired write key (rotated) signs only what is dated before its window ended:
        // whoever holds it now cannot add snapshots.
        if until.is_some_and(|until| time >= until) {
            return Err(CommitError::Invalid(
                "is signed by a retired write key and dated after its retirement".into(),
            ));
        }
        let renamed =
            commit.version >= REKEYED && super::is_manifest_of(&commit.manifest.name, expected_id);
        if commit.manifest.name != super::manifest_object(expected_id) && !renamed {
            return Err(CommitError::Invalid(
                "names a manifest of another snapshot".into(),
            ));
        }
        // Each listed object was checked as it was parsed (`ChunkList`).
        Ok(Verified(commit))
    }

    /// Before version 4 a commit lists its objects; from version 4 it names lists, each
    /// once, each named by the SHA-256 of its bytes.
    fn check_lists(&self) -> Result<(), String> {
        if self.version < VERSION {
            return match self.lists.is_empty() {
                true => Ok(()),
                false => Err(format!(
                    "is a version {} commit that names object lists",
                    self.version
                )),
            };
        }
        if !self.inline.is_empty() {
            return Err("is a version 4 commit that lists objects outside its lists".into());
        }
        if self.lists.len() > limits::CHUNK_REFS {
            return Err("names too many object lists".into());
        }
        let mut names = std::collections::HashSet::with_capacity(self.lists.len());
        for list in &self.lists {
            if object_list::as_object(list).is_none() {
                return Err(format!(
                    "names '{}' as an object list, which is not the name of a list",
                    list.name
                ));
            }
            if !names.insert(list.name.as_str()) {
                return Err(format!("names the object list '{}' twice", list.name));
            }
        }
        Ok(())
    }

    /// Version 2 names its data set; version 1 cannot (a v1 commit claiming a job was not
    /// written by snapdrill).
    fn check_data_set(&self) -> Result<(), String> {
        match (self.version, &self.job, &self.source) {
            (1, None, None) => Ok(()),
            (1, _, _) => Err("is a version 1 commit that names a job or source".into()),
            // A version-1 snapshot re-signed by `rekey` keeps its host-only data set.
            (v, None, None) if v >= REKEYED => Ok(()),
            (_, Some(job), Some(source))
                if super::is_job_name(job) && super::is_hex(source, 32) =>
            {
                Ok(())
            }
            _ => Err(format!(
                "is a version {} commit without a valid job name and source identity",
                self.version
            )),
        }
    }

    /// The data set this snapshot belongs to.
    pub fn data_set(&self) -> DataSet {
        DataSet {
            host: self.host.clone(),
            job: self.job.clone(),
            source: self.source.clone(),
        }
    }

    /// The entry for the chunk object `name`, by binary search (objects are sorted).
    pub fn object(&self, name: &str) -> Option<ObjectRef> {
        self.objects().find_name(name).map(|c| c.to_ref())
    }

    /// The handle of chunk `id` (never an object list), by binary search.
    pub fn chunk(&self, id: &super::manifest::ChunkId) -> Option<super::chunk_list::Chunk> {
        self.objects().find(&id.0).filter(|c| !c.get().is_list())
    }
}

#[cfg(test)]
mod tests {
    use super::super::chunk_list::ChunkObject;
    use super::*;

    fn sample(id: &str) -> Commit {
        sample_with_lists(id).0
    }

    fn sample_with_lists(id: &str) -> (Commit, Vec<NewList>) {
        Commit::new(
            "00".repeat(16).as_str(),
            id,
            "2026-11-28T03:27:18Z",
            Origin {
                set: DataSet {
                    host: "host".into(),
                    job: Some("exports".into()),
                    source: Some("ab".repeat(16)),
                },
                tags: vec!["nightly".into()],
            },
            Summary::default(),
            ObjectRef {
                name: super::super::manifest_object(id),
                size: 10,
                sha256: "11".repeat(32),
            },
            &[
                ChunkObject {
                    id: [0xbb; 32],
                    size: 2,
                    sha256: [0x22; 32],
                },
                // Ends in a zero byte: the first list ends here.
                ChunkObject {
                    id: [0; 32],
                    size: 3,
                    sha256: [0x44; 32],
                },
                ChunkObject {
                    id: [0xaa; 32],
                    size: 1,
                    sha256: [0x33; 32],
                },
            ],
        )
    }

    /// Resolve with the lists a writer made, as if read from a store.
    fn read_from(
        lists: &[NewList],
    ) -> impl FnMut(&ObjectRef) -> Result<Arc<ChunkList>, String> + '_ {
        |l| {
            let list = lists.iter().find(|n| n.reference == *l).ok_or("missing")?;
            object_list::parse(&list.bytes).map(Arc::new)
        }
    }

    #[test]
    fn round_trip_and_lookup() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let id = "20261128T032718Z-9f2c1a7b";
        let (commit, lists) = sample_with_lists(id);
        assert_eq!(lists.len(), 2);
        let obj = commit.to_object(&key);
        let text = String::from_utf8_lossy(&obj);
        assert!(
            !text.contains(r#""objects""#),
            "version 4 lists nothing inline: {text}"
        );
        let verified =
            Commit::from_object(&obj, &key.verifying_key(), &"00".repeat(16), id).unwrap();
        assert_eq!(verified.lists(), &commit.lists[..]);
        let back = verified.resolve(read_from(&lists)).unwrap();
        assert_eq!(back.objects(), commit.objects());
        assert_eq!(back.objects().len(), 5, "three chunks and two lists");
        assert_eq!(
            back.objects().iter().next().unwrap().name(),
            super::super::chunk_object(&"00".repeat(32)),
            "in id order"
        );
        assert!(
            back.objects()
                .iter()
                .any(|c| c.name() == lists[0].reference.name)
        );
        assert_eq!(
            back.object(&super::super::chunk_object(&"bb".repeat(32)))
                .unwrap()
                .size,
            2
        );
    }

    #[test]
    fn replay_under_another_name_is_refused() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let obj = sample("20261128T032718Z-9f2c1a7b").to_object(&key);
        let err = Commit::from_object(
            &obj,
            &key.verifying_key(),
            &"00".repeat(16),
            "20261129T032718Z-00000000",
        )
        .unwrap_err();
        assert!(err.to_string().contains("replayed"), "{err}");
    }

    #[test]
    fn a_retired_signer_is_trusted_only_for_what_it_dated_before_its_window_ended() {
        let old = SigningKey::from_bytes(&[7; 32]);
        let new = SigningKey::from_bytes(&[8; 32]);
        let id = "20261128T032718Z-9f2c1a7b";
        let obj = sample(id).to_object(&old);
        let at = |t: &str| crate::format::parse_time(t).unwrap();
        let trust = |until: &str| super::super::signed::Signers {
            current: new.verifying_key(),
            previous: vec![(old.verifying_key(), at(until))],
        };
        let repo = "00".repeat(16);
        assert!(Commit::from_object(&obj, &trust("2026-11-29T00:00:00Z"), &repo, id).is_ok());
        let err = Commit::from_object(&obj, &trust("2026-11-28T00:00:00Z"), &repo, id).unwrap_err();
        assert!(err.to_string().contains("retired write key"), "{err}");
        let stranger = super::super::signed::Signers {
            current: new.verifying_key(),
            previous: Vec::new(),
        };
        assert!(Commit::from_object(&obj, &stranger, &repo, id).is_err());
    }

    #[test]
    fn a_commit_whose_lists_cannot_be_read_is_refused_and_one_naming_a_chunk_two_ways_never_restores()
     {
        let key = SigningKey::from_bytes(&[7; 32]);
        let (id, repo) = ("20261128T032718Z-9f2c1a7b", "00".repeat(16));
        let (commit, lists) = sample_with_lists(id);
        let read =
            |c: &Commit| Commit::from_object(&c.to_object(&key), &key.verifying_key(), &repo, id);
        let err = read(&commit)
            .unwrap()
            .resolve(read_from(&lists[..1]))
            .unwrap_err();
        assert!(err.to_string().contains(&lists[1].reference.name), "{err}");
        // The same list named twice.
        let mut twice = commit.clone();
        twice.lists.push(twice.lists[0].clone());
        assert!(read(&twice).unwrap_err().to_string().contains("twice"));
        // Two lists that name one chunk as two different objects: read, but never restored.
        let mut overlap = commit.clone();
        let mut other = commit.objects().find(&[0xaa; 32]).unwrap().get();
        other.sha256 = [0x99; 32];
        let extra = NewList::of(&[other]);
        overlap.lists.push(extra.reference.clone());
        let all: Vec<NewList> = lists.iter().cloned().chain([extra]).collect();
        let back = read(&overlap).unwrap().resolve(read_from(&all)).unwrap();
        assert_eq!(back.object_set().conflict(), Some([0xaa; 32]));
        assert_eq!(commit.object_set().conflict(), None);
        let manifest = super::super::manifest::Manifest::new(&repo, id, &commit.time);
        assert!(manifest.validate(&commit).is_ok());
        let err = manifest.validate(&back).unwrap_err();
        assert!(err.contains("two different objects"), "{err}");
        // A name that is not a list's (its hash is not the SHA-256 it pins).
        let mut forged = commit.clone();
        forged.lists[0].sha256 = "11".repeat(32);
        assert!(
            read(&forged)
                .unwrap_err()
                .to_string()
                .contains("not the name of a list")
        );
        // Lists in a version-2 commit, objects outside the lists in a version-4 one.
        let mut old = commit.clone();
        old.version = DATA_SET;
        assert!(
            read(&old)
                .unwrap_err()
                .to_string()
                .contains("names object lists")
        );
    }
}
