//! `prune`: remove what no snapshot references, safely beside running backups.
//!
//! Two-phase collection (docs/design.md, "Prune"), all times by the stores' own clocks:
//!
//! 1. **Set aside.** Chunks no verified commit references and older than the grace period
//!    are moved to `fossils/` and listed in a `collections/<id>` record, whose store time T
//!    marks the end of the set-aside. A backup that still wants one brings it back (it looks
//!    in `fossils/` for anything missing before it commits).
//! 2. **Delete.** A collection is finished only when no backup that began at or before T is
//!    still running (`writers/` markers). Commits are then read again: a fossil some commit
//!    references is brought back, the others are deleted.
//!
//! When no backup runs, both phases happen in one prune. Every listing is taken before
//! anything is deleted; a failed, empty or short listing stops the prune with nothing deleted
//! (docs/design.md, rule 8). Each store must hold a lease (`locks/prune`), which needs real
//! create-only writes: a store that cannot refuse an overwrite is refused.

mod chunks;
mod floor;
pub mod forget;
pub mod lease;
pub mod render;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use self::chunks::Chunks;
use self::lease::{Heartbeat, Lease};
use crate::config::PruneSettings;
use crate::error::{Error, Result};
use crate::format::chunk_list::ChunkIndex;
use crate::format::commit::ObjectRef;
use crate::format::{self, limits};
use crate::replicate;
use crate::repository::{self, Repository, SnapshotList};
use crate::store::{self, ObjectInfo, StoreErrorKind, StoreRef};

/// How prune runs.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Grace period, lease TTL, writer timeout.
    pub settings: PruneSettings,
    /// Plan and report only.
    pub dry_run: bool,
    /// This host's name (in the lease).
    pub host: String,
    /// Snapshots a `forget --dry-run` would forget: a dry run counts them as forgotten, so
    /// that `forget --dry-run --prune` shows what the real run would free.
    pub planned_forget: Vec<String>,
    /// Collect more than `[prune] max_delete` of the snapshots (the operator said yes).
    pub yes: bool,
}

/// What prune did (or would do) in one store.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StorePrune {
    /// The store.
    pub store: String,
    /// The store's clock at the start.
    pub store_time: String,
    /// Backups running (live markers) when the prune looked.
    pub backups_running: usize,
    /// Chunk objects listed.
    pub chunks: usize,
    /// Unreferenced chunks kept because they are younger than the grace period.
    pub kept_young: usize,
    /// Chunks set aside as fossils in this run.
    pub set_aside: usize,
    /// Fossils brought back because a commit references them.
    pub brought_back: usize,
    /// Fossils waiting for older backups to end.
    pub waiting: usize,
    /// Objects deleted (fossils, commits and manifests of forgotten snapshots, orphan
    /// manifests, stale markers).
    pub deleted: usize,
    /// Bytes those objects held.
    pub bytes_freed: u64,
    /// Anything odd, named.
    pub warnings: Vec<String>,
}

/// The report of a prune.
#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// The grace period, for the record.
    pub grace_secs: u64,
    /// Per store.
    pub stores: Vec<StorePrune>,
    /// Stale leases broken.
    pub broken_leases: Vec<String>,
    /// Tombstones prune did not honour (the newest snapshot of a data set), with why.
    pub refused_tombstones: Vec<String>,
}

impl PruneReport {
    /// 0, or 3 when anything needs a look (a store's warning, a refused tombstone).
    pub fn exit_code(&self) -> i32 {
        let odd = self.stores.iter().any(|s| !s.warnings.is_empty())
            || !self.refused_tombstones.is_empty();
        if odd {
            crate::error::exit::PARTIAL
        } else {
            crate::error::exit::OK
        }
    }
}

impl PruneOptions {
    /// From the config's `[prune]`, with the command's dry run and grace.
    pub fn from_config(
        config: &crate::config::Config,
        dry_run: bool,
        grace: Option<Duration>,
    ) -> Self {
        let mut settings = config.prune;
        if let Some(g) = grace {
            settings.grace = g;
        }
        PruneOptions {
            settings,
            dry_run,
            host: config.host.clone().unwrap_or_else(crate::hostname),
            planned_forget: Vec::new(),
            yes: false,
        }
    }
}

/// Break the prune lease in every store of `repo`, however young (`prune --break-lease`);
/// one line per store saying what was there.
pub async fn break_leases(repo: &Repository) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for store in &repo.stores {
        out.push(match lease::Lease::break_now(store).await? {
            Some(holder) => format!(
                "store '{}': broke the prune lease held by {}",
                store.name(),
                crate::text::escape(&holder)
            ),
            None => format!("store '{}': no prune lease", store.name()),
        });
    }
    Ok(out)
}

/// A `collections/<id>` record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Collection {
    fossils: Vec<String>,
}

/// What one store lists, taken before anything is deleted.
struct Survey {
    now: SystemTime,
    live_writers: Vec<SystemTime>,
    stale_writers: Vec<ObjectInfo>,
    chunks: Chunks,
    fossils: HashMap<String, ObjectInfo>,
    manifests: Vec<ObjectInfo>,
    /// Commit ids, with the commit object's size.
    commits: HashMap<String, u64>,
}

/// Run prune over every store of `repo` (opened with every store).
pub async fn run(repo: &Repository, opts: &PruneOptions) -> Result<PruneReport> {
    refuse_without_atomic_create(repo).await?;
    let mut leases = Vec::new();
    if !opts.dry_run {
        for store in &repo.stores {
            match Lease::acquire(store, &opts.settings, &opts.host).await {
                Ok(l) => leases.push(l),
                Err(e) => {
                    release_all(leases).await;
                    return Err(e);
                }
            }
        }
    }
    let heartbeat = Heartbeat::start(&leases);
    let result = prune_leased(repo, opts, &leases).await;
    heartbeat.stop().await;
    let broken = leases.iter().filter_map(|l| l.broke.clone()).collect();
    release_all(leases).await;
    let mut report = result?;
    report.broken_leases = broken;
    Ok(report)
}

async fn release_all(leases: Vec<Lease>) {
    for l in leases {
        let _ = l.release().await;
    }
}

/// A lease is mutual exclusion only where a create-only write is atomic.
async fn refuse_without_atomic_create(repo: &Repository) -> Result<()> {
    for store in &repo.stores {
        let probe = repository::probe_create_only(store).await;
        if !probe.atomic() {
            return Err(Error::Fatal {
                message: format!(
                    "store '{}' cannot hold a prune lease ({}); prune deleted nothing",
                    store.name(),
                    probe.describe()
                ),
                hint: Some("prune a repository only through stores with real create-only writes (S3, Azure, GCS, local disks); keep such a store out of the config used for pruning".into()),
            });
        }
    }
    Ok(())
}

async fn prune_leased(
    repo: &Repository,
    opts: &PruneOptions,
    leases: &[Lease],
) -> Result<PruneReport> {
    let s = &opts.settings;
    // Writers first, then commits: a backup missing from the first listing began later.
    let mut surveys = Vec::new();
    for (i, store) in repo.stores.iter().enumerate() {
        let now = match leases.get(i) {
            Some(l) => l.acquired_at,
            None => lease::store_now(store).await?,
        };
        surveys.push(survey_writers(store, now, s.writer_timeout).await?);
    }
    let mut snapshots = repo.snapshots().await?;
    check_untrusted_are_forged(repo, &snapshots).await?;
    let refused = floor::apply(repo, &mut snapshots, &opts.settings, opts.yes).await?;
    // A dry run of `forget --prune` plans as if the snapshots forget would drop were gone.
    let planned: &[String] = if opts.dry_run {
        &opts.planned_forget
    } else {
        &[]
    };
    let referenced = referenced(&snapshots, planned);
    for (store, survey) in repo.stores.iter().zip(surveys.iter_mut()) {
        survey_objects(store, survey).await?;
        check_listing(store, survey, &snapshots)?;
    }
    let mut report = PruneReport {
        dry_run: opts.dry_run,
        grace_secs: s.grace.as_secs(),
        stores: Vec::new(),
        broken_leases: Vec::new(),
        refused_tombstones: refused,
    };
    for (i, (store, survey)) in repo.stores.iter().zip(&surveys).enumerate() {
        let mut r = StorePrune {
            store: store.name().to_owned(),
            store_time: format::format_time(survey.now),
            backups_running: survey.live_writers.len(),
            chunks: survey.chunks.len(),
            ..StorePrune::default()
        };
        let lease = leases.get(i);
        if let Some(l) = lease {
            l.confirm().await?;
        }
        let sweep = Sweep { store, lease };
        sweep_store(repo, &sweep, survey, &snapshots, &referenced, opts, &mut r).await?;
        report.stores.push(r);
    }
    Ok(report)
}

async fn survey_writers(store: &StoreRef, now: SystemTime, timeout: Duration) -> Result<Survey> {
    let mut live = Vec::new();
    let mut stale = Vec::new();
    for w in store.list(format::WRITERS_PREFIX).await? {
        if now.duration_since(w.modified).unwrap_or_default() > timeout {
            stale.push(w);
        } else {
            live.push(w.modified);
        }
    }
    Ok(Survey {
        now,
        live_writers: live,
        stale_writers: stale,
        chunks: Chunks::default(),
        fossils: HashMap::new(),
        manifests: Vec::new(),
        commits: HashMap::new(),
    })
}

async fn survey_objects(store: &StoreRef, survey: &mut Survey) -> Result<()> {
    survey.chunks = Chunks::list(store).await?;
    survey.fossils = store
        .list(format::FOSSILS_PREFIX)
        .await?
        .into_iter()
        .map(|o| (o.key.clone(), o))
        .collect();
    survey.manifests = store.list(format::MANIFESTS_PREFIX).await?;
    survey.commits = store
        .list(format::SNAPSHOTS_PREFIX)
        .await?
        .into_iter()
        .filter_map(|o| {
            Some((
                o.key.strip_prefix(format::SNAPSHOTS_PREFIX)?.to_owned(),
                o.size,
            ))
        })
        .collect();
    Ok(())
}

/// A commit that does not verify protects nothing — but only if it really is forged, not
/// merely unreadable right now.
async fn check_untrusted_are_forged(repo: &Repository, list: &SnapshotList) -> Result<()> {
    // A signed commit whose object lists cannot be read names objects we cannot know:
    // deleting anything could delete them.
    if let Some(u) = list.untrusted.iter().find(|u| u.signed) {
        return Err(Error::Fatal {
            message: format!(
                "snapshot {} is signed, but its object lists cannot be read ({}); prune deleted nothing",
                u.id, u.reason
            ),
            hint: Some(
                "run `snapdrill audit` to see which stores lack the list, and `snapdrill sync` to heal them from a store that holds it; if none does, that snapshot cannot be restored: move its commit `snapshots/<id>` out of every store (docs/operations.md), then prune again"
                    .into(),
            ),
        });
    }
    for u in &list.untrusted {
        let name = format::commit_object(&u.id);
        for store in repo
            .stores
            .iter()
            .filter(|s| u.stores.iter().any(|n| n == s.name()))
        {
            if let Err(e) = store.get(&name, limits::COMMIT_OBJECT).await
                && e.kind != StoreErrorKind::NotFound
            {
                return Err(Error::Fatal {
                    message: format!(
                        "cannot read commit '{name}' in store '{}' ({e}); prune deleted nothing",
                        store.name()
                    ),
                    hint: Some("run prune again when the store answers".into()),
                });
            }
        }
    }
    Ok(())
}

/// Every chunk the trusted snapshots name, but those of `except`, with its expected size
/// and hash (each distinct chunk once: a year of nightlies costs what its unique chunks do).
fn referenced(list: &SnapshotList, except: &[String]) -> ChunkIndex {
    let mut index = ChunkIndex::default();
    let mut parts = HashSet::new();
    for s in list
        .trusted
        .iter()
        .filter(|s| !except.contains(&s.commit.snapshot_id))
    {
        index.add_set(s.commit.object_set(), &mut parts, |_, _| {});
    }
    index
}

/// docs/design.md, rule 8: a listing that misses objects the store's own snapshots name is
/// incomplete or the store is damaged; either way, deleting on its word is unsafe.
fn check_listing(store: &StoreRef, survey: &Survey, list: &SnapshotList) -> Result<()> {
    // Each distinct list once, then each distinct chunk once, by its 4-byte handle (an
    // index of ids would double what prune holds for a large repository).
    let (mut parts, mut seen) = (HashSet::new(), HashSet::new());
    let mut missing: Vec<String> = list
        .trusted
        .iter()
        .filter(|s| s.stores.iter().any(|n| n == store.name()))
        .flat_map(|s| s.commit.object_set().parts())
        .filter(|p| parts.insert(std::sync::Arc::as_ptr(p)))
        .flat_map(|p| p.iter())
        .filter(|&c| seen.insert(c) && !survey.chunks.contains_id(&c.id()))
        .map(|c| c.name())
        .filter(|n| !survey.fossils.contains_key(&format::fossil_object(n)))
        .collect();
    missing.sort_unstable();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::Fatal {
        message: format!(
            "store '{}' lists {} chunk objects, but {} objects its own snapshots reference are not among them (first: '{}'): the listing is incomplete or the store is damaged; prune deleted nothing",
            store.name(),
            survey.chunks.len(),
            missing.len(),
            missing[0]
        ),
        hint: Some("run `snapdrill audit` to see what is missing and `snapdrill sync` to heal the store, then prune again".into()),
    })
}

#[allow(
    clippy::too_many_arguments,
    reason = "the sweep of one store needs the survey, the listing, the plan and the report"
)]
async fn sweep_store(
    repo: &Repository,
    sweep: &Sweep<'_>,
    survey: &Survey,
    snapshots: &SnapshotList,
    referenced: &ChunkIndex,
    opts: &PruneOptions,
    r: &mut StorePrune,
) -> Result<()> {
    let store = sweep.store;
    let grace = opts.settings.grace;
    let old = |t: SystemTime| survey.now.duration_since(t).unwrap_or_default() > grace;
    let mut doomed = doomed_documents(survey, snapshots, opts);
    doomed.extend(survey.stale_writers.iter().map(|w| (w.key.clone(), 0)));
    let candidates = survey.chunks.unreferenced(referenced);
    r.kept_young = candidates.iter().filter(|o| !old(o.modified)).count();
    let to_set_aside: Vec<&ObjectInfo> = candidates.iter().filter(|o| old(o.modified)).collect();
    r.set_aside = to_set_aside.len();
    if opts.dry_run {
        r.deleted = doomed.len();
        r.bytes_freed = doomed.iter().map(|d| d.1).sum::<u64>()
            + to_set_aside.iter().map(|o| o.size).sum::<u64>();
        r.waiting = survey.fossils.len();
        return Ok(());
    }
    for (key, size) in &doomed {
        sweep.delete(key).await?;
        r.deleted += 1;
        r.bytes_freed += size;
    }
    let results: Vec<Result<Option<String>>> = futures::stream::iter(&to_set_aside)
        .map(|o| set_aside(sweep, o))
        .buffer_unordered(store.concurrency())
        .collect()
        .await;
    for result in results {
        r.warnings.extend(result?);
    }
    record_collection(store, survey, &to_set_aside).await?;
    finish_collections(repo, sweep, opts.settings.writer_timeout, r).await
}

/// The commits and manifests a sweep deletes: those of forgotten snapshots (and, in a dry
/// run, of those a forget dry run would forget), and manifests without a commit (an
/// interrupted backup) older than the grace period and every running backup.
fn doomed_documents(
    survey: &Survey,
    snapshots: &SnapshotList,
    opts: &PruneOptions,
) -> Vec<(String, u64)> {
    let old =
        |t: SystemTime| survey.now.duration_since(t).unwrap_or_default() > opts.settings.grace;
    // A snapshot's manifests: `manifests/<id>`, and the ones `rekey` names `-k<generation>`.
    let manifests_of = |id: &str| -> Vec<(String, u64)> {
        let mut found: Vec<(String, u64)> = survey
            .manifests
            .iter()
            .filter(|m| format::manifest_snapshot_id(&m.key) == Some(id))
            .map(|m| (m.key.clone(), m.size))
            .collect();
        if found.is_empty() {
            found.push((format::manifest_object(id), 0));
        }
        found
    };
    let planned = opts.planned_forget.iter().filter(|_| opts.dry_run);
    let mut doomed: Vec<(String, u64)> = Vec::new();
    for id in snapshots
        .forgotten
        .iter()
        .map(|t| &t.snapshot_id)
        .chain(planned)
    {
        if let Some(&size) = survey.commits.get(id) {
            doomed.push((format::commit_object(id), size));
            doomed.extend(manifests_of(id));
        }
    }
    let oldest_writer = survey.live_writers.iter().min().copied();
    for m in &survey.manifests {
        let id = format::manifest_snapshot_id(&m.key).unwrap_or(&m.key);
        let before_writers = oldest_writer.is_none_or(|w| m.modified < w);
        if !survey.commits.contains_key(id) && old(m.modified) && before_writers {
            doomed.push((m.key.clone(), m.size));
        }
    }
    doomed
}

/// One store being swept, with its lease (none in a dry run, which deletes nothing).
struct Sweep<'a> {
    store: &'a StoreRef,
    lease: Option<&'a Lease>,
}

impl Sweep<'_> {
    /// Delete `key`, if the lease is still ours.
    async fn delete(&self, key: &str) -> Result<()> {
        match self.lease {
            Some(lease) => lease.check()?,
            None => {
                return Err(Error::Fatal {
                    message: format!(
                        "prune tried to delete '{key}' in store '{}' without its lease",
                        self.store.name()
                    ),
                    hint: None,
                });
            }
        }
        Ok(self.store.delete(key).await?)
    }
}

/// Move one chunk to `fossils/` (copy, then delete the original); a warning if it cannot.
async fn set_aside(sweep: &Sweep<'_>, o: &ObjectInfo) -> Result<Option<String>> {
    let store = sweep.store;
    let bytes = store.get(&o.key, o.size).await?;
    let fossil = format::fossil_object(&o.key);
    match store::put_create_checked(store.as_ref(), &fossil, bytes).await {
        Ok(_) => {
            sweep.delete(&o.key).await?;
            Ok(None)
        }
        Err(e) if e.kind == StoreErrorKind::AlreadyExists => Ok(Some(format!(
            "'{fossil}' already holds other bytes; '{}' was left in place",
            o.key
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Write a collection record naming this run's fossils and any fossil no record names (left
/// by a prune that was cut short); its store time is the end of the set-aside.
async fn record_collection(
    store: &StoreRef,
    survey: &Survey,
    set_aside: &[&ObjectInfo],
) -> Result<()> {
    let recorded = read_collections(store).await?;
    let named: HashSet<&String> = recorded.iter().flat_map(|(_, c)| &c.fossils).collect();
    let mut fossils: Vec<String> = set_aside
        .iter()
        .map(|o| format::fossil_object(&o.key))
        .chain(
            survey
                .fossils
                .keys()
                .filter(|f| !named.contains(f))
                .cloned(),
        )
        .collect();
    fossils.sort();
    fossils.dedup();
    if fossils.is_empty() {
        return Ok(());
    }
    let id = format!(
        "{}-{}",
        format::new_snapshot_id(SystemTime::now()),
        std::process::id()
    );
    let body = serde_json::to_vec(&Collection { fossils }).expect("collection serializes");
    store::put_create_checked(
        store.as_ref(),
        &format!("{}{id}", format::COLLECTIONS_PREFIX),
        Bytes::from(body),
    )
    .await?;
    Ok(())
}

async fn read_collections(store: &StoreRef) -> Result<Vec<(ObjectInfo, Collection)>> {
    let mut out = Vec::new();
    for info in store.list(format::COLLECTIONS_PREFIX).await? {
        let body = store.get(&info.key, limits::COMMIT_OBJECT).await?;
        let c: Collection = serde_json::from_slice(&body).map_err(|e| {
            Error::integrity(
                Some(store.name()),
                Some(&info.key),
                format!("unreadable collection record: {e}"),
            )
        })?;
        out.push((info, c));
    }
    Ok(out)
}

/// Delete or bring back the fossils of every collection no running backup predates.
async fn finish_collections(
    repo: &Repository,
    sweep: &Sweep<'_>,
    writer_timeout: Duration,
    r: &mut StorePrune,
) -> Result<()> {
    let store = sweep.store;
    let collections = read_collections(store).await?;
    if collections.is_empty() {
        return Ok(());
    }
    // Writers, then commits, in this order (see the module documentation).
    let now = lease::store_now(store).await?;
    let live: Vec<SystemTime> = survey_writers(store, now, writer_timeout)
        .await?
        .live_writers;
    let snapshots = repo.snapshots().await?;
    check_untrusted_are_forged(repo, &snapshots).await?;
    let referenced = referenced(&snapshots, &[]);
    let fossils: HashMap<String, u64> = store
        .list(format::FOSSILS_PREFIX)
        .await?
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    let mut chunks: HashMap<String, u64> = HashMap::new();
    for prefix in [format::CHUNKS_PREFIX, format::LISTS_PREFIX] {
        store
            .list_each(prefix, &mut |o| {
                chunks.insert(o.key, o.size);
            })
            .await?;
    }
    let waits = |info: &ObjectInfo| live.iter().any(|w| *w <= info.modified);
    // A fossil set aside again by a later prune (a backup brought it back meanwhile) is
    // protected by the later collection too: it waits for the latest one naming it.
    let blocked: HashSet<String> = collections
        .iter()
        .filter(|(info, _)| waits(info))
        .flat_map(|(_, c)| c.fossils.iter().cloned())
        .collect();
    for (info, c) in &collections {
        if waits(info) {
            r.waiting += c.fossils.len();
            continue;
        }
        let mut doomed = Vec::new();
        for fossil in &c.fossils {
            let Some(&size) = fossils.get(fossil) else {
                continue;
            };
            if blocked.contains(fossil) {
                continue;
            }
            let chunk = format::unfossil(fossil).unwrap_or_default();
            match referenced.get(chunk) {
                Some(want) => {
                    bring_back(sweep, fossil, &want.to_ref(), chunks.get(chunk), r).await?
                }
                None => doomed.push((fossil.as_str(), size)),
            }
        }
        let deletes: Vec<_> = futures::stream::iter(&doomed)
            .map(|(key, _)| sweep.delete(key))
            .buffer_unordered(store.concurrency())
            .collect()
            .await;
        for d in deletes {
            d?;
        }
        r.deleted += doomed.len();
        r.bytes_freed += doomed.iter().map(|d| d.1).sum::<u64>();
        sweep.delete(&info.key).await?;
    }
    Ok(())
}

/// A commit names a fossil: put it back under its chunk name (unless a backup already did).
async fn bring_back(
    sweep: &Sweep<'_>,
    fossil: &str,
    want: &ObjectRef,
    present: Option<&u64>,
    r: &mut StorePrune,
) -> Result<()> {
    let store = sweep.store;
    if present == Some(&want.size) {
        // A backup brought it back already, or uploaded its own: keep the fossil unless the
        // chunk holds exactly what the commit names.
        if replicate::fetch_intact(store, &want.name, want)
            .await
            .is_err()
        {
            r.warnings.push(format!(
                "'{}' does not hold the bytes a snapshot records; its fossil '{fossil}' is kept",
                want.name
            ));
            return Ok(());
        }
    } else if replicate::copy(store, fossil, store, want, false)
        .await
        .is_err()
    {
        r.warnings.push(format!(
            "fossil '{fossil}' does not match the SHA-256 its snapshot records (or could not be brought back); kept for inspection"
        ));
        return Ok(());
    }
    sweep.delete(fossil).await?;
    r.brought_back += 1;
    Ok(())
}
