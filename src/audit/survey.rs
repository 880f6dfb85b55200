//! What each store holds: its `config`, one listing of everything, its commits verified
//! against the pinned signer, and its tombstones.

use std::collections::BTreeMap;
use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use futures::StreamExt;

use super::{Finding, FindingKind, Findings, StoreAudit, StoreStatus};
use crate::error::{Error, Result};
use crate::format::chunk_list::ChunkList;
use crate::format::commit::{Commit, ObjectRef};
use crate::format::repo_config::RepoConfig;
use crate::format::tombstone::{self, Tombstone};
use crate::format::{self, limits};
use crate::repository::on_a_core;
use crate::store::{
    Capabilities, ObjectInfo, PutMode, Store, StoreError, StoreErrorKind, StoreRef,
};

/// Reads in flight per store while surveying.
const READS: usize = 8;

pub use crate::repository::listing::Listed;
use crate::repository::listing::{Building, Listing};

/// What an object name is, by the repository layout (docs/format.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `config`.
    Config,
    /// `chunks/ab/<id>`, or an object list `lists/ab/<id>`.
    Chunk,
    /// `manifests/<snapshot-id>`.
    Manifest,
    /// `snapshots/<snapshot-id>`.
    Commit,
    /// `forgotten/<snapshot-id>`.
    Tombstone,
    /// `writers/<snapshot-id>`.
    Writer,
    /// `fossils/chunks/ab/<id>`.
    Fossil,
    /// Prune records, leases, probes and drill records: other commands' business.
    Other,
    /// Nothing snapdrill writes.
    Unknown,
}

/// Classify an object name.
pub fn classify(key: &str) -> Class {
    let sid = |prefix: &str| {
        key.strip_prefix(prefix)
            .filter(|id| format::is_snapshot_id(id))
    };
    if key == format::CONFIG_OBJECT {
        Class::Config
    } else if format::chunk_name_id(key).is_some() {
        // An object list (`lists/`) is audited like a chunk: named by commits, by size and
        // hash.
        Class::Chunk
    } else if format::manifest_snapshot_id(key).is_some_and(format::is_snapshot_id) {
        Class::Manifest
    } else if sid(format::SNAPSHOTS_PREFIX).is_some() {
        Class::Commit
    } else if sid(format::FORGOTTEN_PREFIX).is_some() {
        Class::Tombstone
    } else if sid(format::WRITERS_PREFIX).is_some() {
        Class::Writer
    } else if format::unfossil(key).is_some() {
        Class::Fossil
    } else if [
        format::COLLECTIONS_PREFIX,
        format::LOCKS_PREFIX,
        format::PROBES_PREFIX,
        format::DRILLS_PREFIX,
        format::AUDITS_PREFIX,
        format::KEYS_PREFIX,
    ]
    .iter()
    .any(|p| key.strip_prefix(p).is_some_and(|rest| !rest.is_empty()))
    {
        Class::Other
    } else {
        Class::Unknown
    }
}

/// A commit that verified in a store, with the object it was read from.
#[derive(Debug, Clone)]
pub struct StoreCommit {
    /// The verified body.
    pub commit: Arc<Commit>,
    /// `snapshots/<id>` as stored: size and SHA-256.
    pub object: ObjectRef,
}

/// A store that was listed.
#[derive(Debug)]
pub struct Surveyed {
    /// The store.
    pub store: StoreRef,
    /// Whether it holds this repository's `config` (else it is audited as an empty replica).
    pub has_config: bool,
    /// Every object, by name.
    pub listing: Listing,
    /// Verified commits of live snapshots, by snapshot id.
    pub commits: BTreeMap<String, StoreCommit>,
    /// Verified commits of forgotten snapshots, which stay until prune collects them.
    pub leftovers: BTreeMap<String, StoreCommit>,
    /// Valid tombstones, by snapshot id.
    pub tombstones: BTreeMap<String, Tombstone>,
    /// What the survey found wrong.
    pub findings: Findings,
}

impl Surveyed {
    /// Set aside the commits of snapshots forgotten in any store (docs/format.md section
    /// 10: a forgotten snapshot is not listed, even where its commit still exists).
    pub(super) fn set_aside_forgotten(&mut self, forgotten: &BTreeMap<String, Tombstone>) {
        let ids: Vec<String> = self
            .commits
            .keys()
            .filter(|id| forgotten.contains_key(*id))
            .cloned()
            .collect();
        for id in ids {
            let sc = self.commits.remove(&id).expect("listed above");
            self.findings.warnings.push(Finding::new(
                self.store.name(),
                &sc.object.name,
                FindingKind::ForgottenLeftover,
                format!(
                    "snapshot {id} is forgotten (a valid tombstone exists); its commit stays until `snapdrill prune` collects it"
                ),
            ));
            self.leftovers.insert(id, sc);
        }
    }

    /// The first lines of this store's report.
    pub(super) fn report(&self) -> StoreAudit {
        let (status, reason) = if self.has_config {
            (StoreStatus::Audited, None)
        } else {
            (
                StoreStatus::NoRepository,
                Some("the store holds no `config` object".to_owned()),
            )
        };
        let mut r = StoreAudit::new(self.store.name(), status, reason);
        r.snapshots = self.commits.keys().cloned().collect();
        r.objects_listed = self.listing.len() as u64;
        r.bytes_listed = self.listing.bytes();
        r
    }
}

/// How a store's `config` read.
#[derive(Debug)]
pub enum ConfigState {
    /// Verified against the pinned signer.
    Verified(Box<RepoConfig>),
    /// Not there.
    Missing,
    /// There, but it does not verify.
    Bad(String),
    /// The store did not answer.
    Unreachable(String),
}

/// How far a store could be surveyed.
#[derive(Debug)]
pub enum Outcome {
    /// Listed, commits verified.
    Surveyed(Box<Surveyed>),
    /// Not this repository: nothing in it is trusted.
    Excluded {
        /// The store.
        store: String,
        /// Why.
        problem: Finding,
    },
    /// Did not answer.
    Unreachable {
        /// The store.
        store: String,
        /// Why.
        reason: String,
    },
}

/// Read and verify every store's `config`.
pub async fn read_configs(stores: &[StoreRef], signer: &VerifyingKey) -> Vec<ConfigState> {
    futures::future::join_all(stores.iter().map(|s| read_config(s, signer))).await
}

async fn read_config(store: &StoreRef, signer: &VerifyingKey) -> ConfigState {
    match store
        .get(format::CONFIG_OBJECT, limits::CONFIG_OBJECT)
        .await
    {
        // A write-key rotation the pinned signer handed over is followed (readers re-pin).
        Ok(bytes) => {
            match RepoConfig::from_object_following(&bytes, signer, std::time::SystemTime::now()) {
                Ok((c, _)) => ConfigState::Verified(Box::new(c)),
                Err(e) => ConfigState::Bad(e.to_string()),
            }
        }
        Err(e) if e.kind == StoreErrorKind::NotFound => ConfigState::Missing,
        Err(e) => ConfigState::Unreachable(e.message),
    }
}

/// The signers the audited config names (the current one, and retired ones until their
/// window ends), else the pinned signer alone.
fn trust(config: &RepoConfig, pinned: &VerifyingKey) -> format::signed::Signers {
    config
        .signers()
        .unwrap_or_else(|_| format::signed::Signers {
            current: *pinned,
            previous: Vec::new(),
        })
}

/// The repository config the audit trusts: the first store's that verifies.
pub fn pick_config(
    stores: &[StoreRef],
    states: &[ConfigState],
    unopened: &[(String, String)],
) -> Result<RepoConfig> {
    if let Some(c) = states.iter().find_map(|s| match s {
        ConfigState::Verified(c) => Some(c),
        _ => None,
    }) {
        return Ok((**c).clone());
    }
    for (store, state) in stores.iter().zip(states) {
        if let ConfigState::Bad(why) = state {
            return Err(Error::integrity(
                Some(store.name()),
                Some(format::CONFIG_OBJECT),
                why.clone(),
            ));
        }
    }
    if let Some((store, _)) = stores
        .iter()
        .zip(states)
        .find(|(_, s)| matches!(s, ConfigState::Missing))
    {
        return Err(Error::NotInitialised {
            store: store.name().to_owned(),
        });
    }
    let why: Vec<String> = stores
        .iter()
        .zip(states)
        .filter_map(|(s, st)| match st {
            ConfigState::Unreachable(r) => Some(format!("{}: {r}", s.name())),
            _ => None,
        })
        .chain(unopened.iter().map(|(n, r)| format!("{n}: {r}")))
        .collect();
    Err(Error::fatal(format!(
        "no store could be reached: {}",
        why.join("; ")
    )))
}

/// List and verify every store that holds this repository (or none).
pub async fn survey_all(
    stores: Vec<StoreRef>,
    states: Vec<ConfigState>,
    config: &RepoConfig,
    signer: &VerifyingKey,
) -> Vec<Outcome> {
    futures::future::join_all(
        stores
            .into_iter()
            .zip(states)
            .map(|(store, state)| survey(store, state, config, signer)),
    )
    .await
}

async fn survey(
    store: StoreRef,
    state: ConfigState,
    config: &RepoConfig,
    signer: &VerifyingKey,
) -> Outcome {
    let name = store.name().to_owned();
    let excluded = |kind, detail: String| Outcome::Excluded {
        store: name.clone(),
        problem: Finding::new(&name, format::CONFIG_OBJECT, kind, detail),
    };
    let has_config = match state {
        ConfigState::Unreachable(reason) => {
            return Outcome::Unreachable {
                store: name,
                reason,
            };
        }
        ConfigState::Bad(why) => {
            return excluded(
                FindingKind::BadConfig,
                format!("does not verify against the pinned signer: {why}"),
            );
        }
        ConfigState::Verified(c) if c.repository_id != config.repository_id => {
            return excluded(
                FindingKind::ForeignRepository,
                format!(
                    "holds repository {}, not {}",
                    c.repository_id, config.repository_id
                ),
            );
        }
        ConfigState::Verified(_) => true,
        ConfigState::Missing => false,
    };
    let listing = match list(&store).await {
        Ok(l) => l,
        Err(reason) => {
            return Outcome::Unreachable {
                store: name,
                reason,
            };
        }
    };
    let mut s = Surveyed {
        store,
        has_config,
        listing,
        commits: BTreeMap::new(),
        leftovers: BTreeMap::new(),
        tombstones: BTreeMap::new(),
        findings: Findings::default(),
    };
    if !has_config {
        s.findings.problems.push(Finding::new(
            &name,
            format::CONFIG_OBJECT,
            FindingKind::NoRepository,
            "missing: the store holds no repository",
        ));
    }
    read_commits(&mut s, config, signer).await;
    read_tombstones(&mut s, config, signer).await;
    Outcome::Surveyed(Box::new(s))
}

/// Every object of the store, folded into the listing as it is listed (not collected into
/// a `Vec` of names first: the listing is held once, chunks by id).
async fn list(store: &StoreRef) -> std::result::Result<Listing, String> {
    let mut listing = Building::default();
    store
        .list_each("", &mut |o| {
            let listed = Listed {
                size: o.size,
                modified: o.modified,
            };
            listing.insert(o.key, listed);
        })
        .await
        .map_err(|e| e.message)?;
    Ok(listing.finish())
}

/// Ids of the objects of class `class` under `prefix`.
fn ids(s: &Surveyed, prefix: &str, class: Class) -> Vec<String> {
    s.listing
        .others()
        .filter(|(k, _)| classify(k) == class)
        .filter_map(|(k, _)| k.strip_prefix(prefix).map(str::to_owned))
        .collect()
}

/// Read one small signed object; a failure becomes a finding.
async fn fetch(
    store: &StoreRef,
    name: &str,
    limit: u64,
) -> std::result::Result<bytes::Bytes, Finding> {
    store.get(name, limit).await.map_err(|e| {
        let kind = match e.kind {
            StoreErrorKind::NotFound => FindingKind::Missing,
            _ => FindingKind::Unreadable,
        };
        Finding::new(
            store.name(),
            name,
            kind,
            format!("listed but unreadable: {}", e.message),
        )
    })
}

async fn read_commits(s: &mut Surveyed, config: &RepoConfig, signer: &VerifyingKey) {
    let trust = trust(config, signer);
    let trust = &trust;
    let ids = ids(s, format::SNAPSHOTS_PREFIX, Class::Commit);
    let store = &s.store;
    let results: Vec<_> = futures::stream::iter(ids)
        .map(|id| async move {
            let name = format::commit_object(&id);
            let bytes = fetch(store, &name, limits::COMMIT_OBJECT).await?;
            // The signature check and the pin both hash the whole commit: one job on a
            // core, off the thread driving the reads.
            let (t, repo, i, n) = (
                trust.clone(),
                config.repository_id.clone(),
                id.clone(),
                name.clone(),
            );
            let bad = |e: String| {
                Finding::new(
                    store.name(),
                    &name,
                    FindingKind::BadCommit,
                    format!("does not verify against the pinned signer: {e}"),
                )
            };
            let (commit, object) = on_a_core(move || {
                let commit = Commit::from_object(&bytes, &t, &repo, &i).map_err(|e| e.to_string());
                (commit, ObjectRef::of(&n, &bytes))
            })
            .await
            .map_err(bad)?;
            let commit = commit.map_err(bad)?;
            Ok((id, commit, object))
        })
        .buffer_unordered(READS)
        .collect()
        .await;
    let mut verified = Vec::new();
    for r in results {
        match r {
            Ok(v) => verified.push(v),
            Err(f) => s.findings.problems.push(f),
        }
    }
    let lists = read_lists(s, verified.iter().flat_map(|(_, v, _)| v.lists())).await;
    for (id, v, object) in verified {
        let name = format::commit_object(&id);
        match v.resolve(|l| lists.get(&l.name).cloned().ok_or_else(String::new)) {
            Ok(commit) => {
                let commit = Arc::new(commit);
                s.commits.insert(id, StoreCommit { commit, object });
            }
            // Each unreadable list is a finding of its own (read_lists).
            Err(e) => s.findings.problems.push(Finding::new(
                s.store.name(),
                &name,
                FindingKind::BadCommit,
                format!("cannot be restored from this store: {e}"),
            )),
        }
    }
}

/// The object lists the commits name (version 4), each read once from this store and
/// checked against its pinned hash: an audit proves what each store holds.
async fn read_lists<'a>(
    s: &mut Surveyed,
    refs: impl Iterator<Item = &'a ObjectRef>,
) -> std::collections::HashMap<String, Arc<ChunkList>> {
    let mut distinct: Vec<&ObjectRef> = refs.collect();
    distinct.sort_by(|a, b| a.name.cmp(&b.name));
    distinct.dedup_by(|a, b| a.name == b.name);
    let store = &s.store;
    let results: Vec<_> = futures::stream::iter(distinct)
        .map(|l| async move {
            // A list set aside by prune still serves (objects.rs warns that it is a fossil).
            let bytes = match fetch(store, &l.name, l.size).await {
                Ok(b) => b,
                Err(f) => fetch(store, &format::fossil_object(&l.name), l.size)
                    .await
                    .map_err(|_| f)?,
            };
            let want = l.clone();
            let parsed = on_a_core(move || match want.matches(&bytes) {
                true => {
                    format::object_list::parse(&bytes).map_err(|e| (FindingKind::Unreadable, e))
                }
                false => Err((
                    FindingKind::HashMismatch,
                    "does not match the SHA-256 its snapshots record".to_owned(),
                )),
            })
            .await
            .unwrap_or_else(|e| Err((FindingKind::Unreadable, e)));
            parsed
                .map(|p| (l.name.clone(), Arc::new(p)))
                .map_err(|(kind, why)| {
                    Finding::new(store.name(), &l.name, kind, format!("object list {why}"))
                })
        })
        .buffer_unordered(READS)
        .collect()
        .await;
    let mut lists = std::collections::HashMap::new();
    for r in results {
        match r {
            Ok((name, list)) => {
                lists.insert(name, list);
            }
            Err(f) => s.findings.problems.push(f),
        }
    }
    lists
}

async fn read_tombstones(s: &mut Surveyed, config: &RepoConfig, signer: &VerifyingKey) {
    let trust = trust(config, signer);
    let trust = &trust;
    let ids = ids(s, format::FORGOTTEN_PREFIX, Class::Tombstone);
    let store = &s.store;
    let results: Vec<_> = futures::stream::iter(ids)
        .map(|id| async move {
            let name = format::tombstone_object(&id);
            let bytes = fetch(store, &name, tombstone::LIMIT).await?;
            let t =
                Tombstone::from_object(&bytes, trust, &config.repository_id, &id).map_err(|e| {
                    Finding::new(
                        store.name(),
                        &name,
                        FindingKind::BadTombstone,
                        format!("does not verify against the pinned signer: {e}"),
                    )
                })?;
            Ok((id, t))
        })
        .buffer_unordered(READS)
        .collect()
        .await;
    for r in results {
        match r {
            Ok((id, t)) => {
                s.tombstones.insert(id, t);
            }
            Err(f) => s.findings.problems.push(f),
        }
    }
}

/// A store that answered that it does not exist at all (a local store whose folder is
/// gone): audited as an empty replica, so that the ledger notices what it lost.
pub fn absent_store(name: &str, why: &str) -> StoreRef {
    Arc::new(Absent {
        name: name.to_owned(),
        why: why.to_owned(),
    })
}

#[derive(Debug)]
struct Absent {
    name: String,
    why: String,
}

impl Absent {
    fn err(&self, key: &str, kind: StoreErrorKind) -> StoreError {
        StoreError::new(&self.name, Some(key), kind, self.why.clone())
    }
}

#[async_trait::async_trait]
impl Store for Absent {
    fn name(&self) -> &str {
        &self.name
    }
    fn location(&self) -> &str {
        &self.why
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities { create_only: false }
    }
    async fn put(&self, key: &str, _: bytes::Bytes, _: PutMode) -> Result<(), StoreError> {
        Err(self.err(key, StoreErrorKind::Unavailable))
    }
    async fn get(&self, key: &str, _: u64) -> Result<bytes::Bytes, StoreError> {
        Err(self.err(key, StoreErrorKind::NotFound))
    }
    async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        Err(self.err(key, StoreErrorKind::NotFound))
    }
    async fn list(&self, _: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        Ok(Vec::new())
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        Err(self.err(key, StoreErrorKind::Unavailable))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_classified() {
        let id = "20261128T032718Z-9f2c1a7b";
        let chunk = format::chunk_object(&"ab".repeat(32));
        assert_eq!(classify("config"), Class::Config);
        assert_eq!(classify(&chunk), Class::Chunk);
        assert_eq!(classify(&format::fossil_object(&chunk)), Class::Fossil);
        assert_eq!(classify(&format::manifest_object(id)), Class::Manifest);
        assert_eq!(classify(&format::commit_object(id)), Class::Commit);
        assert_eq!(classify(&format::tombstone_object(id)), Class::Tombstone);
        assert_eq!(classify(&format::writer_object(id)), Class::Writer);
        assert_eq!(classify("locks/prune"), Class::Other);
        assert_eq!(classify("drills/x"), Class::Other);
        for unknown in [
            "chunks/ab/xyz",
            "snapshots/latest",
            "notes.txt",
            "locks/",
            "fossils/chunks/cd/abab",
        ] {
            assert_eq!(classify(unknown), Class::Unknown, "{unknown}");
        }
    }
}
