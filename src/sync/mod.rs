//! `sync`: bring every store up to date with the others, without the identity.
//!
//! For every verified snapshot and every store, the objects the store lacks (absent, or
//! listed at the wrong size) are copied byte for byte from a store that holds them intact —
//! each copy's ciphertext SHA-256 checked against the signed commit — chunks first, then the
//! manifest, and the commit last, so a store never lists a snapshot it cannot restore.

pub mod render;

use std::collections::HashMap;

use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::commit::{Commit, ObjectRef};
use crate::format::{self, limits, tombstone};
use crate::replicate;
use crate::repository::{Repository, Snapshot};
use crate::store::{self, StoreRef};

/// Copies in flight per store.
const COPIES: usize = 8;

/// What sync did (or would do) in one store.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreSync {
    /// The store.
    pub store: String,
    /// Snapshots the store did not list and now does (or would).
    pub snapshots_added: Vec<String>,
    /// Tombstones of forgotten snapshots the store lacked and now holds (or would).
    pub tombstones_added: Vec<String>,
    /// Drill records the store lacked and now holds (or would): a rebuilt site keeps the
    /// evidence the others have.
    pub drill_records_added: u64,
    /// Audit records the store lacked and now holds (or would).
    pub audit_records_added: u64,
    /// The key generation the store was brought to (its `config` was older), if any.
    pub keys_updated: Option<u64>,
    /// Objects copied (or to copy).
    pub objects_copied: u64,
    /// Bytes copied (or to copy).
    pub bytes_copied: u64,
    /// Copies the damage register named that were replaced with verified copies from
    /// another store and read back intact (or would be).
    pub repaired: Vec<String>,
    /// Objects that could not be healed, with why.
    pub errors: Vec<String>,
}

/// The report of a sync.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    /// Nothing was written.
    pub dry_run: bool,
    /// Per store.
    pub stores: Vec<StoreSync>,
}

impl SyncReport {
    /// 0 when every store is complete, 3 when some object could not be healed.
    pub fn exit_code(&self) -> i32 {
        if self.stores.iter().any(|s| !s.errors.is_empty()) {
            crate::error::exit::PARTIAL
        } else {
            0
        }
    }
}

type Listing = HashMap<String, u64>;

async fn listing(store: &StoreRef) -> Result<Listing> {
    let mut all = HashMap::new();
    for prefix in [
        format::CHUNKS_PREFIX,
        format::LISTS_PREFIX,
        format::MANIFESTS_PREFIX,
        format::SNAPSHOTS_PREFIX,
    ] {
        for o in store.list(prefix).await? {
            all.insert(o.key, o.size);
        }
    }
    Ok(all)
}

/// Run sync over every store of `repo`; first replace the copies `damaged` names (the
/// audit's damage register) with verified copies from another store — the copies a listing
/// cannot tell are damaged, because their size is right. Healed copies leave the register.
pub async fn run(
    repo: &Repository,
    dry_run: bool,
    damaged: &mut crate::damage::Register,
) -> Result<SyncReport> {
    let snapshots = repo.snapshots().await?;
    let mut listings = Vec::with_capacity(repo.stores.len());
    for store in &repo.stores {
        listings.push(listing(store).await?);
    }
    let mut reports: Vec<StoreSync> = repo
        .stores
        .iter()
        .map(|s| StoreSync {
            store: s.name().to_owned(),
            ..Default::default()
        })
        .collect();
    repair(repo, &snapshots.trusted, damaged, dry_run, &mut reports).await;
    for snap in &snapshots.trusted {
        let commit_bytes = commit_object(repo, snap).await?;
        for (to, report) in reports.iter_mut().enumerate() {
            heal_snapshot(
                repo,
                &listings,
                to,
                &snap.commit,
                &commit_bytes,
                dry_run,
                report,
            )
            .await;
        }
    }
    copy_tombstones(repo, dry_run, &mut reports).await?;
    copy_records(repo, dry_run, &mut reports, Records::Drills).await?;
    copy_records(repo, dry_run, &mut reports, Records::Audits).await?;
    copy_keys(repo, dry_run, &mut reports).await?;
    Ok(SyncReport {
        dry_run,
        stores: reports,
    })
}

/// Replace every registered damaged copy in a store of `repo` with the first intact copy
/// another store holds (checked against its snapshot's signed reference), then read it
/// back; only a copy that reads back intact leaves the register.
async fn repair(
    repo: &Repository,
    trusted: &[Snapshot],
    damaged: &mut crate::damage::Register,
    dry_run: bool,
    reports: &mut [StoreSync],
) {
    // A damaged object's signed reference: its manifest's, or its chunk's in any snapshot
    // (looked up per entry: the register is short, the history long).
    let wanted = |object: &str| -> Option<ObjectRef> {
        trusted.iter().find_map(|s| {
            if s.commit.manifest.name == object {
                return Some(s.commit.manifest.clone());
            }
            s.commit.object(object)
        })
    };
    let entries: Vec<(String, String)> = damaged
        .all()
        .map(|(s, o, _)| (s.to_owned(), o.to_owned()))
        .collect();
    for (store, object) in entries {
        let (Some(to), Some(want)) = (repo.store_index(&store), wanted(&object)) else {
            continue;
        };
        let sources: Vec<(&StoreRef, &str)> = (0..repo.stores.len())
            .filter(|&i| i != to)
            .map(|i| (&repo.stores[i], object.as_str()))
            .collect();
        let report = &mut reports[to];
        let bytes = match replicate::fetch_first_intact(&sources, &want).await {
            Ok(b) => b,
            Err(why) => {
                report.errors.push(format!(
                    "'{object}' is damaged here and no other store holds an intact copy ({})",
                    why.join("; ")
                ));
                continue;
            }
        };
        if !dry_run {
            let target = &repo.stores[to];
            let placed = replicate::place(target, &want, bytes, true).await;
            if let Err(e) = placed.and(replicate::fetch_intact(target, &object, &want).await) {
                report
                    .errors
                    .push(format!("'{object}' could not be repaired: {e}"));
                continue;
            }
            damaged.clear(&store, &object);
        }
        report.objects_copied += 1;
        report.bytes_copied += want.size;
        report.repaired.push(object);
    }
}

/// Per store of `repo`, the names it lists under `prefix`.
async fn holdings(
    repo: &Repository,
    prefix: &str,
) -> Result<Vec<std::collections::HashSet<String>>> {
    let mut held = Vec::with_capacity(repo.stores.len());
    for store in &repo.stores {
        let names = store.list(prefix).await?;
        held.push(names.into_iter().map(|o| o.key).collect());
    }
    Ok(held)
}

/// Give every store the signed tombstones the others hold, so that a store that was down
/// during `forget` also knows the snapshot was forgotten on purpose.
async fn copy_tombstones(
    repo: &Repository,
    dry_run: bool,
    reports: &mut [StoreSync],
) -> Result<()> {
    let held = holdings(repo, format::FORGOTTEN_PREFIX).await?;
    let all: std::collections::BTreeSet<&String> = held.iter().flatten().collect();
    for name in all {
        let id = name.trim_start_matches(format::FORGOTTEN_PREFIX);
        let holders: Vec<usize> = (0..held.len())
            .filter(|&i| held[i].contains(name))
            .collect();
        if holders.len() == held.len() {
            continue;
        }
        // Only a tombstone that verifies is copied: a forged one stays where it was put.
        let Some(bytes) = verified_tombstone(repo, id, &holders).await else {
            continue;
        };
        for (to, report) in reports.iter_mut().enumerate() {
            if held[to].contains(name) {
                continue;
            }
            if !dry_run {
                let store = &repo.stores[to];
                if let Err(e) = store::put_create_checked(store.as_ref(), name, bytes.clone()).await
                {
                    report.errors.push(format!("tombstone '{name}': {e}"));
                    continue;
                }
            }
            report.objects_copied += 1;
            report.bytes_copied += bytes.len() as u64;
            report.tombstones_added.push(id.to_owned());
        }
    }
    Ok(())
}

/// The evidence records sync replicates.
#[derive(Clone, Copy)]
enum Records {
    Drills,
    Audits,
}

impl Records {
    fn prefix(self) -> &'static str {
        match self {
            Records::Drills => format::DRILLS_PREFIX,
            Records::Audits => format::AUDITS_PREFIX,
        }
    }

    fn is_name(self, name: &str) -> bool {
        match self {
            Records::Drills => format::drill_record_name(name).is_some(),
            Records::Audits => format::audit_record_name(name).is_some(),
        }
    }

    fn limit(self) -> u64 {
        match self {
            Records::Drills => limits::DRILL_RECORD,
            Records::Audits => limits::AUDIT_RECORD,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Records::Drills => "drill record",
            Records::Audits => "audit record",
        }
    }

    fn added(self, report: &mut StoreSync) {
        match self {
            Records::Drills => report.drill_records_added += 1,
            Records::Audits => report.audit_records_added += 1,
        }
    }
}

/// Give every store the drill (or audit) records the others hold. Sync holds no key to
/// check a record's MAC, so it copies the bytes as they are (well-named and within the size
/// limit only): a reader checks every record with the identity, and a planted one is
/// reported wherever it lies.
async fn copy_records(
    repo: &Repository,
    dry_run: bool,
    reports: &mut [StoreSync],
    kind: Records,
) -> Result<()> {
    let held = holdings(repo, kind.prefix()).await?;
    let all: std::collections::BTreeSet<&String> = held.iter().flatten().collect();
    for name in all.into_iter().filter(|n| kind.is_name(n)) {
        let missing: Vec<usize> = (0..held.len())
            .filter(|&i| !held[i].contains(name))
            .collect();
        let Some(from) = (0..held.len()).find(|&i| held[i].contains(name)) else {
            continue;
        };
        if missing.is_empty() {
            continue;
        }
        let bytes = match repo.stores[from].get(name, kind.limit()).await {
            Ok(b) => b,
            Err(e) => {
                for &to in &missing {
                    reports[to]
                        .errors
                        .push(format!("{} '{name}': {e}", kind.what()));
                }
                continue;
            }
        };
        for to in missing {
            if !dry_run {
                let store = &repo.stores[to];
                if let Err(e) = store::put_create_checked(store.as_ref(), name, bytes.clone()).await
                {
                    reports[to]
                        .errors
                        .push(format!("{} '{name}': {e}", kind.what()));
                    continue;
                }
            }
            reports[to].objects_copied += 1;
            reports[to].bytes_copied += bytes.len() as u64;
            kind.added(&mut reports[to]);
        }
    }
    Ok(())
}

/// Give every store the newest key generation (`config`) and the key history the others
/// hold: a store that was away during `keys add/remove` or `rekey` catches up. Only
/// generations that verify against the pinned signer are copied.
async fn copy_keys(repo: &Repository, dry_run: bool, reports: &mut [StoreSync]) -> Result<()> {
    use crate::repository::keyring::{place_generation, store_generation};
    let newest = repo.config.generation;
    let mut held = Vec::with_capacity(repo.stores.len());
    for store in &repo.stores {
        held.push(store_generation(store, &repo.signer).await);
    }
    let Some(object) = held
        .iter()
        .find(|(g, _)| *g == newest)
        .and_then(|(_, b)| b.clone())
    else {
        return Ok(());
    };
    for (i, store) in repo.stores.iter().enumerate() {
        if held[i].0 >= newest {
            continue;
        }
        if !dry_run
            && let Err(e) = place_generation(store, &repo.signer, newest, object.clone()).await
        {
            reports[i]
                .errors
                .push(format!("key generation {newest}: {e}"));
            continue;
        }
        reports[i].keys_updated = Some(newest);
        reports[i].objects_copied += 1;
        reports[i].bytes_copied += object.len() as u64;
    }
    Ok(())
}

/// The bytes of snapshot `id`'s tombstone from the first of `stores` where it verifies.
async fn verified_tombstone(repo: &Repository, id: &str, stores: &[usize]) -> Option<Bytes> {
    let name = format::tombstone_object(id);
    for &i in stores {
        if let Ok(bytes) = repo.stores[i].get(&name, tombstone::LIMIT).await {
            let ok = tombstone::Tombstone::from_object(
                &bytes,
                &repo.trust(),
                &repo.config.repository_id,
                id,
            );
            if ok.is_ok() {
                return Some(bytes);
            }
        }
    }
    None
}

/// The signed commit bytes, from a store where they verify.
async fn commit_object(repo: &Repository, snap: &Snapshot) -> Result<Bytes> {
    let name = format::commit_object(&snap.commit.snapshot_id);
    for store in &repo.stores {
        if let Ok(bytes) = store.get(&name, limits::COMMIT_OBJECT).await
            && Commit::from_object(
                &bytes,
                &repo.trust(),
                &repo.config.repository_id,
                &snap.commit.snapshot_id,
            )
            .is_ok()
        {
            return Ok(bytes);
        }
    }
    Err(Error::integrity(
        None,
        Some(&name),
        "no store holds a commit that verifies",
    ))
}

async fn heal_snapshot(
    repo: &Repository,
    listings: &[Listing],
    to: usize,
    commit: &Commit,
    commit_bytes: &Bytes,
    dry_run: bool,
    report: &mut StoreSync,
) {
    let commit_name = format::commit_object(&commit.snapshot_id);
    let commit_listed = listings[to].contains_key(&commit_name);
    let missing: Vec<ObjectRef> = commit
        .objects()
        .objects()
        .map(|o| o.to_ref())
        .chain([commit.manifest.clone()])
        .filter(|o| listings[to].get(&o.name) != Some(&o.size))
        .collect();
    if missing.is_empty() && commit_listed {
        return;
    }
    let complete = copy_missing(repo, listings, to, missing, dry_run, report).await;
    if commit_listed || !complete {
        if !complete && !commit_listed {
            report.errors.push(format!(
                "snapshot {} not added: objects above are missing",
                commit.snapshot_id
            ));
        }
        return;
    }
    if !dry_run
        && let Err(e) = commit_confirmed(&repo.stores[to], commit, &commit_name, commit_bytes).await
    {
        report.errors.push(e.to_string());
        return;
    }
    report.objects_copied += 1;
    report.bytes_copied += commit_bytes.len() as u64;
    report.snapshots_added.push(commit.snapshot_id.clone());
}

/// Copy every one of `missing` into store `to` from a store that lists it at its size;
/// whether all of them arrived (or, in a dry run, have a source).
async fn copy_missing(
    repo: &Repository,
    listings: &[Listing],
    to: usize,
    missing: Vec<ObjectRef>,
    dry_run: bool,
    report: &mut StoreSync,
) -> bool {
    let results: Vec<std::result::Result<u64, String>> = futures::stream::iter(&missing)
        .map(|o| async move {
            let sources: Vec<(&StoreRef, &str)> = (0..repo.stores.len())
                .filter(|&i| i != to && listings[i].get(&o.name) == Some(&o.size))
                .map(|i| (&repo.stores[i], o.name.as_str()))
                .collect();
            if dry_run && !sources.is_empty() {
                return Ok(o.size);
            }
            let bytes = replicate::fetch_first_intact(&sources, o)
                .await
                .map_err(|reasons| no_intact_copy(o, &reasons))?;
            // A copy listed at the wrong size is damaged and replaced; a missing one is created.
            let damaged = listings[to].contains_key(&o.name);
            replicate::place(&repo.stores[to], o, bytes, damaged)
                .await
                .map(|_| o.size)
                .map_err(|e| e.to_string())
        })
        .buffer_unordered(COPIES)
        .collect()
        .await;
    let mut complete = true;
    for r in results {
        match r {
            Ok(bytes) => {
                report.objects_copied += 1;
                report.bytes_copied += bytes;
            }
            Err(e) => {
                complete = false;
                report.errors.push(e);
            }
        }
    }
    complete
}

fn no_intact_copy(o: &ObjectRef, reasons: &[String]) -> String {
    if reasons.is_empty() {
        format!("{}: no intact copy in any store", o.name)
    } else {
        format!(
            "{}: no intact copy in any store ({})",
            o.name,
            reasons.join("; ")
        )
    }
}

/// Commit last, and only after a fresh listing shows every object at its size.
async fn commit_confirmed(
    to: &StoreRef,
    commit: &Commit,
    commit_name: &str,
    commit_bytes: &Bytes,
) -> Result<()> {
    let refs: Vec<ObjectRef> = commit.objects().objects().map(|o| o.to_ref()).collect();
    let objects: Vec<&ObjectRef> = refs.iter().chain([&commit.manifest]).collect();
    replicate::confirm_listed(
        to,
        &[
            format::CHUNKS_PREFIX,
            format::LISTS_PREFIX,
            format::MANIFESTS_PREFIX,
        ],
        &objects,
    )
    .await?;
    replicate::commit(to, commit_name, commit_bytes.clone()).await?;
    Ok(())
}
