//! A repository across its stores: creating it (`init`), opening it with a pinned signer,
//! listing snapshots, and fetching objects with verification and per-object failover.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use ed25519_dalek::VerifyingKey;
use futures::StreamExt;
use serde::Serialize;

use crate::commit_cache::{CommitCache, Seen};
use crate::error::{Error, Result};
use crate::format::commit::{Commit, DataSet, ObjectRef, Verified};
use crate::format::repo_config::RepoConfig;
use crate::format::tombstone::{self, Tombstone};
use crate::format::{self, limits};
use crate::keys::WriteKey;
use crate::select;
use crate::store::{self, StoreErrorKind, StoreRef};

pub mod keyring;
pub mod listing;
mod lists;
mod open_for;
pub mod render;
pub use lists::ReadLists;
pub use open_for::{
    InitOptions, Initialised, Opened, Purpose, check_store_settings, init as init_config,
    lost_replica, open_stores, signer, write_key,
};

/// A repository opened in one or more stores.
#[derive(Debug, Clone)]
pub struct Repository {
    /// Usable stores, in preference order.
    pub stores: Vec<StoreRef>,
    /// The verified repository config.
    pub config: RepoConfig,
    /// The pinned signer every commit must verify against.
    pub signer: VerifyingKey,
    /// Stores that could not be opened, with why (only when opened with `OpenMode::AnyUsable`).
    pub unusable: Vec<(String, String)>,
    /// Stores among `unusable` that answered but hold no repository.
    pub not_initialised: Vec<String>,
    /// Where verified commits are kept between runs (none: every commit is read from the
    /// stores, as drills and audits must).
    pub commit_cache: Option<CommitCache>,
    /// What the operator should know (a write-key rotation this host followed).
    pub notes: Vec<String>,
    /// The object lists read so far (commit version 4).
    pub lists: ReadLists,
}

/// How many stores must open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Every store must hold the repository (backup).
    All,
    /// One is enough; the others are reported (restore, listing).
    AnyUsable,
}

/// What `init` did in one store.
#[derive(Debug, Clone, Serialize)]
pub struct InitOutcome {
    /// The store.
    pub store: String,
    /// `created` or `already initialised`.
    pub action: &'static str,
    /// Whether the store really refuses to overwrite on a create-only write (probed).
    pub create_only: CreateOnly,
}

/// What a probe found out about create-only writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CreateOnly {
    /// A second create of the same name was refused and the first content kept.
    Yes,
    /// The store overwrote silently (some S3-compatible servers ignore the condition).
    No,
    /// The backend has no conditional write; snapdrill checks before writing (not atomic).
    Emulated,
    /// The probe could not run.
    Unknown(String),
}

impl CreateOnly {
    /// Can this store provide mutual exclusion (a lease)?
    pub fn atomic(&self) -> bool {
        *self == CreateOnly::Yes
    }

    /// For reports.
    pub fn describe(&self) -> String {
        match self {
            CreateOnly::Yes => "create-only writes: yes".into(),
            CreateOnly::No => "create-only writes: NO, the store overwrites silently (backups stay correct; nothing that needs a lock will trust it)".into(),
            CreateOnly::Emulated => "create-only writes: emulated, not atomic (backups stay correct; nothing that needs a lock will trust it)".into(),
            CreateOnly::Unknown(why) => format!("create-only writes: unknown ({why})"),
        }
    }
}

/// Probe whether `store` refuses a second create of the same object. Leaves nothing behind
/// (the probe object is deleted, where the store allows deletes).
pub async fn probe_create_only(store: &StoreRef) -> CreateOnly {
    if !store.capabilities().create_only {
        return CreateOnly::Emulated;
    }
    let mut r = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut r);
    let key = format!("probes/create-only-{}", hex::encode(r));
    let first = store
        .put(&key, Bytes::from_static(b"first"), store::PutMode::Create)
        .await;
    let second = store
        .put(&key, Bytes::from_static(b"second"), store::PutMode::Create)
        .await;
    let kept = store.get(&key, 64).await;
    let _ = store.delete(&key).await;
    match (first, second, kept) {
        (Ok(()), Err(e), Ok(body))
            if e.kind == StoreErrorKind::AlreadyExists && &body[..] == b"first" =>
        {
            CreateOnly::Yes
        }
        (Ok(()), Ok(()), _) => CreateOnly::No,
        (Ok(()), Err(e), Ok(_)) if e.kind == StoreErrorKind::AlreadyExists => CreateOnly::No,
        (Err(e), _, _) | (_, Err(e), _) => CreateOnly::Unknown(e.message),
    }
}

/// Create the repository's `config` object in every store (idempotent): the one an
/// initialised store already holds, else a new one.
pub async fn init(
    stores: &[StoreRef],
    key: &WriteKey,
    recipients: &[age::x25519::Recipient],
) -> Result<Vec<InitOutcome>> {
    let keys = recipients
        .iter()
        .map(|r| crate::keys::RecipientKey::parse(&r.to_string()))
        .collect::<Result<Vec<_>>>()?;
    let object = match existing_config(stores, key).await? {
        Some(object) => object,
        None => new_config(key, &keys)?,
    };
    place_config(stores, key, object).await
}

/// A new, signed `config` object for the repository of `key`.
pub fn new_config(key: &WriteKey, recipients: &[crate::keys::RecipientKey]) -> Result<Bytes> {
    let config = RepoConfig::new(key, recipients, SystemTime::now())?;
    Ok(Bytes::from(config.to_object(key)))
}

/// The `config` object of the repository of `key` at the newest key generation the stores
/// hold (a rebuilt store gets those very bytes); a store holding another repository is an
/// error.
pub async fn existing_config(stores: &[StoreRef], key: &WriteKey) -> Result<Option<Bytes>> {
    let mut newest: Option<(u64, Bytes)> = None;
    for store in stores {
        match store
            .get(format::CONFIG_OBJECT, limits::CONFIG_OBJECT)
            .await
        {
            Ok(existing) => {
                let generation = same_repository(store, &existing, key)?;
                if newest.as_ref().is_none_or(|(g, _)| generation > *g) {
                    newest = Some((generation, existing));
                }
            }
            Err(e) if e.kind == StoreErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(newest.map(|(_, b)| b))
}

/// `existing` (a store's `config`) is the repository of `key`.
fn same_repository(store: &StoreRef, existing: &[u8], key: &WriteKey) -> Result<u64> {
    let theirs = RepoConfig::from_object(existing, &key.signer()).map_err(|e| {
        Error::fatal(format!(
            "store '{}' already holds a different snapdrill repository ({e}); nothing was changed",
            store.name()
        ))
    })?;
    if theirs.repository_id != key.repository_id {
        return Err(Error::fatal(format!(
            "store '{}' holds repository {}, but the write key is for {}",
            store.name(),
            theirs.repository_id,
            key.repository_id
        )));
    }
    Ok(theirs.generation)
}

/// Write `object` as the `config` of every store that has none (create-only), and probe
/// each store's create-only writes.
pub async fn place_config(
    stores: &[StoreRef],
    key: &WriteKey,
    object: Bytes,
) -> Result<Vec<InitOutcome>> {
    let mut outcomes = Vec::new();
    for store in stores {
        let action = match store
            .get(format::CONFIG_OBJECT, limits::CONFIG_OBJECT)
            .await
        {
            Ok(existing) => {
                same_repository(store, &existing, key)?;
                "already initialised"
            }
            Err(e) if e.kind == StoreErrorKind::NotFound => {
                // The key history starts with the generation the store is created at.
                if let Ok(c) = RepoConfig::from_object(&object, &key.signer())
                    && c.generation > 0
                {
                    let history = format::config_history_object(c.generation);
                    store::put_create_or_existing(
                        store.as_ref(),
                        &history,
                        object.clone(),
                        limits::CONFIG_OBJECT,
                    )
                    .await?;
                }
                store::put_create_checked(store.as_ref(), format::CONFIG_OBJECT, object.clone())
                    .await?;
                "created"
            }
            Err(e) => return Err(e.into()),
        };
        outcomes.push(InitOutcome {
            store: store.name().to_owned(),
            action,
            create_only: probe_create_only(store).await,
        });
    }
    Ok(outcomes)
}

/// The signer a store's config claims (unverified), to explain a pin mismatch.
pub async fn claimed_signer(store: &StoreRef) -> Option<VerifyingKey> {
    let obj = store
        .get(format::CONFIG_OBJECT, limits::CONFIG_OBJECT)
        .await
        .ok()?;
    format::signed::claimed_signer(&obj).ok()
}

impl Repository {
    /// Read and verify `config` in the stores, following a write-key rotation the pinned
    /// signer handed over (with a note to re-pin).
    pub async fn open(stores: Vec<StoreRef>, signer: VerifyingKey, mode: OpenMode) -> Result<Self> {
        let mut opened = Opening::default();
        let mut failed = Vec::new();
        for store in stores {
            match Self::read_config(&store, &signer, &[]).await {
                Ok(read) => opened.add(store, read)?,
                Err(e) if mode == OpenMode::All && !opened.may_be_stale(&e) => return Err(e),
                Err(e) => failed.push((store, e)),
            }
        }
        // A store that missed a rotation holds a config signed by a retired key the newest
        // config names: genuine, only older.
        let retired = opened.retired_signers();
        for (store, e) in failed {
            let retry = !retired.is_empty() && opened.may_be_stale(&e);
            match retry {
                true => match Self::read_config(&store, &signer, &retired).await {
                    Ok(read) => opened.add(store, read)?,
                    Err(_) if mode == OpenMode::All => return Err(e),
                    Err(_) => opened.fail(&store, e),
                },
                false if mode == OpenMode::All => return Err(e),
                false => opened.fail(&store, e),
            }
        }
        opened.finish()
    }

    async fn read_config(
        store: &StoreRef,
        pinned: &VerifyingKey,
        retired: &[VerifyingKey],
    ) -> Result<(RepoConfig, Option<String>)> {
        let object = match store
            .get(format::CONFIG_OBJECT, limits::CONFIG_OBJECT)
            .await
        {
            Ok(o) => o,
            // No `config` where the store itself answers: not initialised. (A missing
            // bucket also answers "not found", and says so: that stays a store error.)
            Err(e) if e.kind == StoreErrorKind::NotFound && e.explained.is_none() => {
                return Err(Error::NotInitialised {
                    store: store.name().to_owned(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let followed = RepoConfig::from_object_following(&object, pinned, SystemTime::now());
        let followed = match followed {
            Err(e) => retired
                .iter()
                .find_map(|k| RepoConfig::from_object(&object, k).ok())
                .map(|c| (c, None))
                .ok_or(e),
            ok => ok,
        };
        followed.map_err(|e| match e {
            crate::format::repo_config::ConfigObjectError::Rotated(message) => Error::key(
                message,
                "copy the current write key and signer from the host that rotated it (`snapdrill keys list` there shows them)",
            ),
            e => Error::integrity(
                Some(store.name()),
                Some(format::CONFIG_OBJECT),
                e.to_string(),
            ),
        })
    }

    /// The signers commits and tombstones may carry: the current one, and the write keys
    /// rotated away, each for documents dated before its window ended.
    pub fn trust(&self) -> format::signed::Signers {
        self.config
            .signers()
            .unwrap_or_else(|_| format::signed::Signers {
                current: self.signer,
                previous: Vec::new(),
            })
    }

    /// Keep verified commits under `cache_dir` and read them from there (see
    /// [`CommitCache`]): listing a long history then reads only what is new.
    pub fn with_commit_cache(mut self, cache_dir: &std::path::Path) -> Self {
        self.commit_cache = Some(CommitCache::new(cache_dir, &self.config.repository_id));
        self
    }

    /// Index of a store by name.
    pub fn store_index(&self, name: &str) -> Option<usize> {
        self.stores.iter().position(|s| s.name() == name)
    }

    /// Every snapshot in any store, verified; forged or damaged commits are reported apart,
    /// and snapshots `forget` left a valid tombstone for are listed as forgotten.
    pub async fn snapshots(&self) -> Result<SnapshotList> {
        let (mut where_, tombstones, unlisted) = self.list_commits().await?;
        if let Some(cache) = &self.commit_cache {
            cache.retain(&where_);
        }
        let mut forgotten = Vec::new();
        for (id, listed) in &tombstones {
            // Only a commit still listed needs its tombstone read (prune has not run yet).
            let stores: Vec<usize> = listed.iter().map(|l| l.store).collect();
            if where_.contains_key(id)
                && let Some(t) = self.read_tombstone(id, &stores).await
            {
                where_.remove(id);
                forgotten.push(t);
            }
        }
        let results: Vec<_> = futures::stream::iter(where_)
            .map(|(id, stores)| async move {
                let outcome = self.read_commit(&id, &stores).await;
                (id, stores, outcome)
            })
            .buffer_unordered(8)
            .collect()
            .await;
        let mut list = SnapshotList {
            forgotten,
            unlisted,
            ..SnapshotList::default()
        };
        for (id, listed, outcome) in results {
            let names = listed
                .iter()
                .map(|l| self.stores[l.store].name().to_owned())
                .collect();
            match outcome {
                Ok(commit) => list.trusted.push(Snapshot {
                    commit: Arc::new(commit),
                    stores: names,
                }),
                Err(Unread { reason, signed }) => list.untrusted.push(Untrusted {
                    id,
                    stores: names,
                    reason,
                    signed,
                }),
            }
        }
        list.trusted.sort_by(|a, b| {
            (a.commit.time.as_str(), a.commit.snapshot_id.as_str())
                .cmp(&(b.commit.time.as_str(), b.commit.snapshot_id.as_str()))
        });
        list.untrusted.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(cache) = &self.commit_cache {
            cache.retain_lists(list.trusted.iter().flat_map(|s| &s.commit.lists));
        }
        Ok(list)
    }

    /// Which stores list each commit, and each tombstone (listings only, nothing read). A
    /// store whose listing fails (denied, timed out, an unreadable name) is left out of this
    /// listing and reported with why, like any other store failure: the others still list
    /// what they hold. Only when every store fails is it an error.
    async fn list_commits(&self) -> Result<(Located, Located, Vec<(String, String)>)> {
        let mut commits = Located::new();
        let mut tombstones = Located::new();
        let mut unlisted = Vec::new();
        let mut first_error = None;
        for (i, store) in self.stores.iter().enumerate() {
            let listed = match self.list_store(store).await {
                Ok(l) => l,
                Err(e) => {
                    unlisted.push((store.name().to_owned(), e.to_string()));
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            for (prefix, objects) in listed {
                let found = if prefix == format::SNAPSHOTS_PREFIX {
                    &mut commits
                } else {
                    &mut tombstones
                };
                for obj in objects {
                    if let Some(id) = obj.key.strip_prefix(prefix) {
                        found.entry(id.to_owned()).or_default().push(Listed {
                            store: i,
                            size: obj.size,
                            modified: obj.modified,
                        });
                    }
                }
            }
        }
        match first_error {
            Some(e) if unlisted.len() == self.stores.len() => Err(e.into()),
            _ => Ok((commits, tombstones, unlisted)),
        }
    }

    /// One store's commits and tombstones, or why it could not list them.
    async fn list_store(
        &self,
        store: &StoreRef,
    ) -> std::result::Result<Vec<(&'static str, Vec<store::ObjectInfo>)>, store::StoreError> {
        let mut out = Vec::new();
        for prefix in [format::SNAPSHOTS_PREFIX, format::FORGOTTEN_PREFIX] {
            out.push((prefix, store.list(prefix).await?));
        }
        Ok(out)
    }

    /// Verified commits of the snapshots not forgotten, newest first, read lazily: a caller
    /// that stops early (a backup looking up a few reused chunks, usually all in the newest
    /// commit) reads and holds one commit or a few, not the whole history. Damaged or forged
    /// commits are skipped. A listed tombstone is enough to skip a commit here, unverified:
    /// skipping only costs the caller a fallback.
    pub async fn live_commits_newest_first(
        &self,
    ) -> Result<impl futures::Stream<Item = Commit> + '_> {
        let (commits, tombstones, _) = self.list_commits().await?;
        let mut ids: Vec<(String, Vec<Listed>)> = commits
            .into_iter()
            .filter(|(id, _)| !tombstones.contains_key(id))
            .collect();
        // Snapshot ids begin with their UTC time, so the name order is the time order.
        ids.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(futures::stream::iter(ids)
            .map(move |(id, stores)| async move { self.read_commit(&id, &stores).await.ok() })
            .buffered(4)
            .filter_map(std::future::ready))
    }

    /// A verified tombstone for snapshot `id` from the first of `stores` that holds one.
    pub async fn read_tombstone(&self, id: &str, stores: &[usize]) -> Option<Tombstone> {
        if !format::is_snapshot_id(id) {
            return None;
        }
        let name = format::tombstone_object(id);
        for &i in stores {
            if let Ok(bytes) = self.stores[i].get(&name, tombstone::LIMIT).await
                && let Ok(t) =
                    Tombstone::from_object(&bytes, &self.trust(), &self.config.repository_id, id)
            {
                return Some(t);
            }
        }
        None
    }

    /// Read and verify snapshot `id`'s commit from whichever store holds it (no listing
    /// needed, no cache): prune uses it to protect a snapshot whose tombstone it refuses.
    pub async fn commit_anywhere(&self, id: &str) -> std::result::Result<Commit, String> {
        let listed: Vec<Listed> = (0..self.stores.len())
            .map(|store| Listed {
                store,
                size: 0,
                modified: std::time::UNIX_EPOCH,
            })
            .collect();
        self.read_commit_with(id, &listed, None)
            .await
            .map_err(|u| u.reason)
    }

    /// Read a commit from the first of `stores` where it verifies.
    async fn read_commit(
        &self,
        id: &str,
        listed: &[Listed],
    ) -> std::result::Result<Commit, Unread> {
        self.read_commit_with(id, listed, self.commit_cache.as_ref())
            .await
    }

    async fn read_commit_with(
        &self,
        id: &str,
        listed: &[Listed],
        cache: Option<&crate::commit_cache::CommitCache>,
    ) -> std::result::Result<Commit, Unread> {
        if !format::is_snapshot_id(id) {
            return Err(Unread::forged("not a snapshot id"));
        }
        let seen = |l: &Listed| Seen::new(self.stores[l.store].name(), l.size, l.modified);
        let trust = self.trust();
        if let Some(cache) = cache {
            let seen: Vec<Seen> = listed.iter().map(seen).collect();
            let (cache, trust, repo, id) = (
                cache.clone(),
                trust.clone(),
                self.config.repository_id.clone(),
                id.to_owned(),
            );
            let cached = on_a_core(move || cache.load(&id, &seen, &trust, &repo)).await;
            if let Ok(Some(v)) = cached
                && let Ok(c) = self.resolve(v, true).await
            {
                return Ok(c);
            }
        }
        let name = format::commit_object(id);
        let mut reasons = Vec::new();
        for l in listed {
            let store = &self.stores[l.store];
            match store.get(&name, limits::COMMIT_OBJECT).await {
                Ok(bytes) => {
                    let repo = &self.config.repository_id;
                    match verify_commit(bytes.clone(), trust.clone(), repo, id).await {
                        // Its lists are read from any store that holds them intact: one
                        // failure here is a failure everywhere, not this store's.
                        Ok(v) => {
                            let c = self.resolve(v, cache.is_some()).await.map_err(|e| Unread {
                                reason: format!("{}: {e}", store.name()),
                                signed: true,
                            })?;
                            if let Some(cache) = cache {
                                cache.save(id, &bytes, seen(l));
                            }
                            return Ok(c);
                        }
                        Err(e) => reasons.push(format!("{}: {e}", store.name())),
                    }
                }
                Err(e) => reasons.push(format!("{}: {}", store.name(), e.message)),
            }
        }
        Err(Unread::forged(reasons.join("; ")))
    }

    /// Fetch an object listed in a commit, checking size and SHA-256, trying each store in
    /// preference order; `check` runs on the bytes (decrypt, verify) and may reject them too.
    pub async fn fetch_verified<T, F>(&self, expected: &ObjectRef, check: F) -> Result<Fetched<T>>
    where
        F: Fn(Bytes) -> std::result::Result<T, String> + Send + Sync + Clone + 'static,
        T: Send + 'static,
    {
        self.fetch(expected, check, false).await
    }

    /// As [`Repository::fetch_verified`], for an object whose content `check` proves by
    /// itself (a chunk: its plaintext's keyed id is its name, which only holders of the
    /// dedup key can compute): a copy whose bytes differ from the commit's hash is still
    /// accepted when `check` passes. That is a chunk `rekey` has moved onto a new read key
    /// while the commit naming it was not yet re-signed — the same content, encrypted anew.
    pub async fn fetch_keyed<T, F>(&self, expected: &ObjectRef, check: F) -> Result<Fetched<T>>
    where
        F: Fn(Bytes) -> std::result::Result<T, String> + Send + Sync + Clone + 'static,
        T: Send + 'static,
    {
        self.fetch(expected, check, true).await
    }

    async fn fetch<T, F>(&self, expected: &ObjectRef, check: F, keyed: bool) -> Result<Fetched<T>>
    where
        F: Fn(Bytes) -> std::result::Result<T, String> + Send + Sync + Clone + 'static,
        T: Send + 'static,
    {
        let mut failures = Vec::new();
        // A copy encrypted anew may differ in size by a header's worth.
        let limit = match keyed {
            true => expected.size + limits::SEAL_OVERHEAD,
            false => expected.size,
        };
        for (i, store) in self.stores.iter().enumerate() {
            let bytes = match store.get(&expected.name, limit).await {
                Ok(b) => b,
                Err(e) => {
                    failures.push(Failure::from_store(store.name(), &e));
                    continue;
                }
            };
            let mismatch = (!expected.matches(&bytes)).then(|| {
                format!(
                    "{} bytes whose SHA-256 does not match the signed object list",
                    bytes.len()
                )
            });
            if let (Some(reason), false) = (&mismatch, keyed) {
                failures.push(Failure {
                    store: store.name().to_owned(),
                    kind: FailureKind::Corrupt,
                    reason: reason.clone(),
                });
                continue;
            }
            let check = check.clone();
            let checked = tokio::task::spawn_blocking(move || check(bytes))
                .await
                .map_err(|e| Error::fatal(format!("verification task failed: {e}")))?;
            match checked {
                Ok(value) => {
                    return Ok(Fetched {
                        value,
                        store: i,
                        failures,
                    });
                }
                // A copy that is not the pinned one and does not prove itself either:
                // the hash is the plainer reason.
                Err(reason) => failures.push(Failure {
                    store: store.name().to_owned(),
                    kind: FailureKind::Corrupt,
                    reason: mismatch.unwrap_or(reason),
                }),
            }
        }
        Err(Failure::into_error(&expected.name, failures))
    }
}

/// [`Commit::from_object`] on the blocking pool. A version-2 commit of 20,000 chunks is
/// ~4 MB of signed JSON (an Ed25519 check hashes all of it, then every reference is
/// parsed), so a long history is verified on every core instead of on the one driving the
/// reads.
async fn verify_commit(
    bytes: Bytes,
    trust: format::signed::Signers,
    repository_id: &str,
    id: &str,
) -> std::result::Result<Verified, format::commit::CommitError> {
    let (repository_id, id) = (repository_id.to_owned(), id.to_owned());
    on_a_core(move || Commit::from_object(&bytes, &trust, &repository_id, &id))
        .await
        .unwrap_or_else(|e| Err(format::commit::CommitError::Invalid(e)))
}

/// Run CPU-bound `work` on the blocking pool, one piece of work per core at most: more at
/// once would only hold more commits in memory (each thread its own malloc arena).
pub(crate) async fn on_a_core<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> std::result::Result<T, String> {
    static CORES: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(n)
    });
    let _core = CORES.acquire().await;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("verification task failed: {e}"))
}

/// The stores' configs as [`Repository::open`] reads them.
#[derive(Default)]
struct Opening {
    usable: Vec<StoreRef>,
    unusable: Vec<(String, String)>,
    not_initialised: Vec<String>,
    first_error: Option<Error>,
    config: Option<RepoConfig>,
    notes: Vec<String>,
}

impl Opening {
    /// A store whose config verified; the newest generation wins.
    fn add(&mut self, store: StoreRef, (c, note): (RepoConfig, Option<String>)) -> Result<()> {
        if let Some(first) = &mut self.config {
            if first.repository_id != c.repository_id {
                return Err(Error::integrity(
                    Some(store.name()),
                    Some(format::CONFIG_OBJECT),
                    format!(
                        "holds repository {}, the other stores hold {}",
                        c.repository_id, first.repository_id
                    ),
                ));
            }
            // Key changes reach the stores one by one: the newest generation any store
            // holds is the repository's.
            if c.generation > first.generation {
                *first = c;
            }
        } else {
            self.config = Some(c);
        }
        if let Some(n) = note.filter(|n| !self.notes.contains(n)) {
            self.notes.push(n);
        }
        self.usable.push(store);
        Ok(())
    }

    /// A signature error may be a store that missed a rotation (tried again).
    fn may_be_stale(&self, e: &Error) -> bool {
        matches!(e, Error::Integrity { .. })
    }

    /// The retired signers the newest config names.
    fn retired_signers(&self) -> Vec<VerifyingKey> {
        self.config
            .as_ref()
            .and_then(|c| c.signers().ok())
            .map(|s| s.previous.into_iter().map(|(k, _)| k).collect())
            .unwrap_or_default()
    }

    fn fail(&mut self, store: &StoreRef, e: Error) {
        if let Error::NotInitialised { store } = &e {
            self.not_initialised.push(store.clone());
        }
        self.unusable.push((store.name().to_owned(), e.to_string()));
        self.first_error.get_or_insert(e);
    }

    fn finish(mut self) -> Result<Repository> {
        let unusable = std::mem::take(&mut self.unusable);
        match self.config {
            Some(config) => {
                let signer = crate::keys::parse_signer(&config.signer)
                    .map_err(|e| Error::integrity(None, Some(format::CONFIG_OBJECT), e))?;
                Ok(Repository {
                    stores: self.usable,
                    config,
                    signer,
                    unusable,
                    not_initialised: self.not_initialised,
                    commit_cache: None,
                    notes: self.notes,
                    lists: ReadLists::default(),
                })
            }
            // Every store is reachable but none was ever initialised: exit 10, not 1.
            None if !unusable.is_empty() && self.not_initialised.len() == unusable.len() => {
                Err(Error::NotInitialised {
                    store: self.not_initialised.swap_remove(0),
                })
            }
            // One store, one error — or a key every store refuses (a rotated signer): that
            // error, with its own hint.
            None if unusable.len() == 1
                || self
                    .first_error
                    .as_ref()
                    .is_some_and(|e| e.exit_code() == crate::error::exit::KEY) =>
            {
                Err(self.first_error.expect("a store failed"))
            }
            None => Err(Error::fatal(format!(
                "no store holds a usable repository: {}",
                unusable
                    .iter()
                    .map(|(s, e)| format!("{s}: {e}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ))),
        }
    }
}

/// An object fetched and verified, with the replicas that failed first.
#[derive(Debug)]
pub struct Fetched<T> {
    /// The checked value.
    pub value: T,
    /// Index of the store that served it.
    pub store: usize,
    /// Stores tried before it, and why they failed.
    pub failures: Vec<Failure>,
}

/// Why one replica could not serve an object.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Failure {
    /// The store.
    pub store: String,
    /// Missing, damaged or unreachable.
    pub kind: FailureKind,
    /// Details.
    pub reason: String,
}

/// Kinds of replica failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// The object is not in the store.
    Missing,
    /// The object is there but wrong.
    Corrupt,
    /// The store did not answer.
    Unreachable,
}

impl FailureKind {
    /// The command that heals a copy that failed this way.
    pub fn heal_hint(self) -> &'static str {
        match self {
            FailureKind::Missing => "`snapdrill sync` copies it back from a store that holds it",
            FailureKind::Corrupt => {
                "`snapdrill sync` replaces it with a verified copy once it is in the damage register (a restore or `snapdrill audit --read-data` puts it there)"
            }
            FailureKind::Unreachable => "check the store, then run `snapdrill audit`",
        }
    }
}

impl Failure {
    fn from_store(store: &str, e: &store::StoreError) -> Self {
        let kind = match e.kind {
            StoreErrorKind::NotFound => FailureKind::Missing,
            StoreErrorKind::Corrupt => FailureKind::Corrupt,
            _ => FailureKind::Unreachable,
        };
        Failure {
            store: store.to_owned(),
            kind,
            reason: e.message.clone(),
        }
    }

    fn into_error(object: &str, failures: Vec<Failure>) -> Error {
        let detail = failures
            .iter()
            .map(|f| format!("{}: {}", f.store, f.reason))
            .collect::<Vec<_>>()
            .join("; ");
        let integrity = failures.iter().any(|f| f.kind != FailureKind::Unreachable);
        if integrity {
            let what = if failures.iter().all(|f| f.kind == FailureKind::Missing) {
                format!("missing from every store ({detail})")
            } else {
                format!("no store holds an intact copy ({detail})")
            };
            Error::integrity(None, Some(object), what)
        } else {
            Error::Fatal {
                message: format!("cannot fetch '{object}' from any store ({detail})"),
                hint: Some(
                    "check that the stores are reachable, then run the command again".into(),
                ),
            }
        }
    }
}

/// A verified snapshot.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Its commit.
    pub commit: Arc<Commit>,
    /// Stores that list it.
    pub stores: Vec<String>,
}

/// A commit that did not verify anywhere: never restored.
#[derive(Debug, Clone, Serialize)]
pub struct Untrusted {
    /// The object name's id.
    pub id: String,
    /// Stores that list it.
    pub stores: Vec<String>,
    /// Why it is not trusted.
    pub reason: String,
    /// Its signature verified, but its object lists could not be read (missing, damaged or
    /// unreachable in every store): its objects are unknown, so prune must not delete.
    pub signed: bool,
}

/// Why a commit could not be read.
#[derive(Debug, Clone)]
pub struct Unread {
    /// What failed, per store.
    pub reason: String,
    /// The commit verified; its object lists could not be read.
    pub signed: bool,
}

impl Unread {
    fn forged(reason: impl Into<String>) -> Self {
        Unread {
            reason: reason.into(),
            signed: false,
        }
    }
}

/// Snapshot id → the stores that list an object for it, and how.
type Located = BTreeMap<String, Vec<Listed>>;

/// One store's listing of an object.
#[derive(Debug, Clone, Copy)]
struct Listed {
    /// Index of the store.
    store: usize,
    size: u64,
    modified: SystemTime,
}

/// The snapshots of a repository.
#[derive(Debug, Clone, Default)]
pub struct SnapshotList {
    /// Verified, oldest first.
    pub trusted: Vec<Snapshot>,
    /// Forged, damaged or foreign commits.
    pub untrusted: Vec<Untrusted>,
    /// Snapshots whose commit is still listed somewhere but which `forget` removed.
    pub forgotten: Vec<Tombstone>,
    /// Stores whose listing failed, with why: left out of this listing.
    pub unlisted: Vec<(String, String)>,
}

/// Which snapshots a command means: `--host`, `--job`, `--tag`, `--before`, and the time
/// zone date specs are read in.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// The filters.
    pub filter: select::Filter,
    /// Only snapshots strictly older than this.
    pub before: Option<SystemTime>,
    /// The zone of date specs (`[repository] timezone`).
    pub zone: select::Zone,
}

impl SnapshotList {
    /// The verified snapshots as selection sees them (same order as `trusted`).
    pub fn candidates(&self) -> Vec<select::Candidate<'_>> {
        self.trusted
            .iter()
            .map(|s| select::Candidate {
                id: &s.commit.snapshot_id,
                time: format::parse_time(&s.commit.time).unwrap_or(std::time::UNIX_EPOCH),
                host: &s.commit.host,
                job: s.commit.job.as_deref(),
                source: s.commit.source.as_deref(),
                tags: &s.commit.tags,
            })
            .collect()
    }

    /// Does `sel` admit `s` (its filters and `--before`)?
    pub fn admits(sel: &Selection, c: &select::Candidate) -> bool {
        sel.filter.admits(c) && sel.before.is_none_or(|b| c.time < b)
    }

    /// The admitted snapshots by data set: each oldest first, the data set with the newest
    /// snapshot last.
    pub fn data_sets(&self, sel: &Selection) -> Vec<Vec<&Snapshot>> {
        let all = self.candidates();
        select::data_sets(&all, |i| Self::admits(sel, &all[i]))
            .into_iter()
            .map(|set| set.into_iter().map(|i| &self.trusted[i]).collect())
            .collect()
    }

    /// Resolve `spec` (docs: `latest`, `latest~N`, an id or a unique part of one, a day, a
    /// date-time) within `sel`; no match or several is an error naming the candidates.
    pub fn select(&self, spec: &str, sel: &Selection) -> Result<&Snapshot> {
        if let Some(u) = self.untrusted.iter().find(|u| u.id == spec) {
            return Err(Error::integrity(
                None,
                Some(&format::commit_object(spec)),
                format!("the snapshot's commit does not verify: {}", u.reason),
            ));
        }
        if self.trusted.is_empty() {
            return Err(Error::Usage(
                "the repository holds no snapshot yet: run `snapdrill backup` first".into(),
            ));
        }
        let parsed = select::Spec::parse(spec, &sel.zone).map_err(Error::Usage)?;
        let all = self.candidates();
        match select::resolve(&parsed, &all, &sel.filter, sel.before, &sel.zone) {
            Ok(i) => Ok(&self.trusted[i]),
            Err(select::Unresolved::None { why }) => Err(Error::Usage(why)),
            Err(select::Unresolved::Ambiguous { why, candidates }) => Err(Error::Usage(format!(
                "{why}; choose one: {}",
                self.describe(&all, &candidates, sel)
            ))),
        }
    }

    /// `id (host/job, local time)` of each candidate, `; `-separated.
    fn describe(&self, all: &[select::Candidate], which: &[usize], sel: &Selection) -> String {
        which
            .iter()
            .map(|&i| {
                let c = &all[i];
                let twin = all
                    .iter()
                    .any(|o| o.host == c.host && o.job == c.job && o.source != c.source);
                format!(
                    "{} ({}, {})",
                    c.id,
                    select::label(c, twin),
                    sel.zone.show(c.time)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The same list with only the verified snapshots of `set`.
    pub fn only(&self, set: &DataSet) -> SnapshotList {
        SnapshotList {
            trusted: self
                .trusted
                .iter()
                .filter(|s| &s.commit.data_set() == set)
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    /// Resolve a spec with no filter, in UTC.
    pub fn find(&self, spec: &str) -> Result<&Snapshot> {
        self.select(spec, &Selection::default())
    }
}
