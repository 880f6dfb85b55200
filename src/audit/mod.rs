//! `audit`: check every store's replica against the signed commits, without the identity.
//!
//! The default audit lists each store once, verifies every commit in it against the pinned
//! signer, and checks that every object a commit lists is there at its signed size (and,
//! for manifests, with its signed SHA-256). It reports missing, mismatched, unreferenced
//! and unknown objects per store, compares the stores with each other, and keeps a local
//! ledger of the snapshots each store held, so that a rolled-back or pruned-by-hand store
//! is caught. `--read-data` downloads objects and checks their ciphertext SHA-256 (a
//! coverage file remembers what was read when); `--deep` decrypts and verifies everything
//! with the identity, through the restore engine's verify-only mode.
//!
//! One module per concern: [`survey`] (configs, listings, commits, tombstones), `objects`
//! (presence, sizes, extras), `cross` (between stores), [`read`] and [`coverage`] (data
//! reads), `deep`, [`ledger`] (rollback detection), [`immutability`] (canary probe), and
//! [`render`] (text, Markdown, Prometheus; JSON is the serde form of [`AuditReport`]).

mod advice;
pub mod coverage;
mod cross;
mod deep;
mod forgetting;
pub mod immutability;
pub mod ledger;
mod objects;
pub mod provenance;
pub mod read;
pub mod record;
pub mod render;
pub mod survey;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

pub use self::coverage::CoverageSummary;
pub use self::deep::DeepSummary;
pub use self::immutability::Immutability;
pub use self::ledger::record_commit;
pub use self::read::ReadPolicy;
use self::survey::{Outcome, Surveyed};
use crate::error::{Result, exit};
use crate::format::repo_config::RepoConfig;
use crate::format::tombstone::Tombstone;
use crate::format::{self, commit::DataSet, commit::ObjectRef};
use crate::keys::Identities;
use crate::store::StoreRef;

/// What an audit does beyond the default checks.
#[derive(Clone)]
pub struct AuditOptions {
    /// Which objects to download and hash.
    pub read: ReadPolicy,
    /// At most this many bytes downloaded by `read` (least recently read first).
    pub budget: Option<u64>,
    /// Decrypt and verify every snapshot in every store with these identities.
    pub deep: Option<Arc<Identities>>,
    /// Probe whether each store refuses overwrites and deletes.
    pub immutability: bool,
    /// Local state folder: the ledger and the coverage file live here.
    pub state_dir: PathBuf,
    /// A `writers/` marker older than this belongs to a dead backup.
    pub writer_timeout: Duration,
    /// Unreferenced objects younger than this (store clock) are left to prune, not problems.
    pub grace: Duration,
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A listed object is not in the store.
    Missing,
    /// The store holds the object at another size than the commit says.
    WrongSize,
    /// The object's bytes do not match the commit's SHA-256.
    HashMismatch,
    /// The object could not be read.
    Unreadable,
    /// A commit does not verify against the pinned signer.
    BadCommit,
    /// A tombstone does not verify against the pinned signer.
    BadTombstone,
    /// The store's `config` does not verify.
    BadConfig,
    /// The store holds another repository.
    ForeignRepository,
    /// The store holds no `config`.
    NoRepository,
    /// A chunk or manifest no verified commit lists.
    Unreferenced,
    /// An object snapdrill never writes.
    Unknown,
    /// The store lacks a snapshot the others hold.
    Behind,
    /// The store no longer holds a snapshot it held, and nobody signed its removal.
    RolledBack,
    /// The store serves another commit than the one it held under the same id.
    CommitReplaced,
    /// Two stores serve different (both signed) commits under one id.
    CommitsDisagree,
    /// Decryption or verification with the identity failed.
    DeepFailure,
    /// Unreferenced objects uploaded by a backup still running (warning).
    InFlight,
    /// A referenced chunk was set aside by prune (warning).
    Fossilized,
    /// A writer marker older than the writer timeout (warning).
    DeadWriter,
    /// Objects waiting for prune: a forgotten snapshot's, or younger than the grace (warning).
    AwaitingPrune,
    /// The commit of a forgotten snapshot is still there (warning).
    ForgottenLeftover,
    /// The newest snapshot of a data set is forgotten: what a compromised backup host would
    /// do (prune keeps it unless told otherwise on the prune host).
    NewestForgotten,
    /// Most of a data set's snapshots were forgotten within a day.
    MassForget,
}

impl FindingKind {
    /// What to do about it.
    pub fn hint(self) -> Option<&'static str> {
        use FindingKind as K;
        Some(match self {
            K::Missing | K::WrongSize | K::Behind => {
                "run `snapdrill sync` to copy it from a store that holds it intact"
            }
            // The audit replaces these two with advice from what every store holds
            // (advice.rs): deleting is only ever advised beside an intact copy elsewhere.
            K::HashMismatch | K::DeepFailure => {
                "do not delete it until another store is known to hold an intact copy"
            }
            K::Unreadable => "check that the store is reachable, then run the audit again",
            K::BadCommit | K::BadTombstone | K::BadConfig | K::CommitsDisagree => {
                "it is never trusted; find out who could write to this store"
            }
            K::ForeignRepository | K::NoRepository => {
                "check the store's url; `snapdrill init` then `snapdrill sync` rebuild a replica"
            }
            K::Unknown => "snapdrill never writes this name: find out who did, then remove it",
            K::RolledBack | K::CommitReplaced => {
                "find out who could write to this store; `snapdrill sync` copies the snapshots back from the other stores"
            }
            K::NewestForgotten | K::MassForget => {
                "find out who ran `forget` (the backup host holds the write key that signs tombstones); prune keeps the newest snapshot and refuses mass deletion unless told otherwise; to undo a forged forget, delete its `forgotten/<id>` objects from every store"
            }
            K::Unreferenced
            | K::InFlight
            | K::Fossilized
            | K::DeadWriter
            | K::AwaitingPrune
            | K::ForgottenLeftover => return None,
        })
    }
}

/// One problem or warning, naming the store and the object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The store.
    pub store: String,
    /// The object.
    pub object: String,
    /// What kind of finding.
    pub kind: FindingKind,
    /// What was found.
    pub detail: String,
    /// What to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Finding {
    /// A finding with the kind's hint.
    pub fn new(store: &str, object: &str, kind: FindingKind, detail: impl Into<String>) -> Self {
        Finding {
            store: store.to_owned(),
            object: object.to_owned(),
            kind,
            detail: detail.into(),
            hint: kind.hint().map(str::to_owned),
        }
    }
}

/// Problems (exit 13) and warnings, collected as the audit goes.
#[derive(Debug, Default)]
pub struct Findings {
    /// Integrity problems.
    pub problems: Vec<Finding>,
    /// Worth knowing, not a problem.
    pub warnings: Vec<Finding>,
}

impl Findings {
    fn extend(&mut self, other: Findings) {
        self.problems.extend(other.problems);
        self.warnings.extend(other.warnings);
    }
}

/// How far a store could be audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreStatus {
    /// Listed and checked.
    Audited,
    /// Reached, but it holds no `config` (checked as an empty replica).
    NoRepository,
    /// Its `config` is not this repository's: nothing in it is trusted.
    Excluded,
    /// Could not be reached.
    Unreachable,
}

/// Objects downloaded and hashed in one store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ReadSummary {
    /// Objects read.
    pub objects: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Objects selected but left for a later audit by `--budget`.
    pub deferred: u64,
    /// The objects read, by name.
    pub names: Vec<String>,
}

/// The audit of one store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreAudit {
    /// The store.
    pub store: String,
    /// How far it could be audited.
    pub status: StoreStatus,
    /// Why not further, when not audited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Snapshots whose commit verifies in this store.
    pub snapshots: Vec<String>,
    /// Objects in the store's listing.
    pub objects_listed: u64,
    /// Bytes in the store's listing.
    pub bytes_listed: u64,
    /// Commits and listed objects checked against the listing.
    pub objects_checked: u64,
    /// Manifests read and checked against their commit's SHA-256.
    pub manifests_verified: u64,
    /// Unreferenced objects younger than a running backup (not problems).
    pub in_flight: u64,
    /// Problems found in this store.
    pub problems: u64,
    /// Warnings about this store.
    pub warnings: u64,
    /// `--read-data`.
    pub read: ReadSummary,
    /// Share of the store's objects read and verified recently.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<CoverageSummary>,
    /// `--deep`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deep: Option<DeepSummary>,
    /// `--immutability`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutability: Option<Immutability>,
}

impl StoreAudit {
    fn new(store: &str, status: StoreStatus, reason: Option<String>) -> Self {
        StoreAudit {
            store: store.to_owned(),
            status,
            reason,
            snapshots: Vec::new(),
            objects_listed: 0,
            bytes_listed: 0,
            objects_checked: 0,
            manifests_verified: 0,
            in_flight: 0,
            problems: 0,
            warnings: 0,
            read: ReadSummary::default(),
            coverage: None,
            deep: None,
            immutability: None,
        }
    }
}

/// One snapshot across the stores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotRow {
    /// The snapshot.
    pub id: String,
    /// Its time, from the commit.
    pub time: String,
    /// Stores where its commit verifies.
    pub stores: Vec<String>,
    /// Audited stores that lack it.
    pub missing_from: Vec<String>,
}

/// One copy of an object, for comparisons between stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Copy {
    /// The store.
    pub store: String,
    /// Its size in the listing.
    pub size: u64,
    /// Its SHA-256, when it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// An object whose copies differ between stores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Difference {
    /// The object.
    pub object: String,
    /// What the commit says.
    pub expected: ObjectRef,
    /// The copies.
    pub copies: Vec<Copy>,
}

/// What the ledger said and did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LedgerSummary {
    /// The ledger file.
    pub path: String,
    /// Entries it held before this audit.
    pub entries: u64,
    /// Entries this audit appended.
    pub appended: u64,
    /// Anything unusual (new ledger, garbled lines).
    pub notes: Vec<String>,
}

/// The report of an audit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditReport {
    /// The repository.
    pub repository_id: String,
    /// When the audit started (UTC).
    pub started: String,
    /// When it ended.
    pub finished: String,
    /// Wall-clock seconds.
    pub duration_secs: f64,
    /// What was read: `none`, `all`, `1/3`, `5%`, `500 MiB`, with the budget.
    pub read_data: String,
    /// Whether `--deep` ran.
    pub deep: bool,
    /// Per store, in configuration order.
    pub stores: Vec<StoreAudit>,
    /// Every snapshot and where it is.
    pub snapshots: Vec<SnapshotRow>,
    /// Objects whose copies differ between stores.
    pub differences: Vec<Difference>,
    /// Integrity problems: any of them makes the exit code 13.
    pub problems: Vec<Finding>,
    /// Worth knowing, not problems.
    pub warnings: Vec<Finding>,
    /// The local ledger of snapshots each store held.
    pub ledger: LedgerSummary,
    /// Every object on every store read and verified within the coverage window.
    pub coverage_complete: bool,
    /// Other remarks (coverage file, budget).
    pub notes: Vec<String>,
    /// What ran the audit, where, for whom, against which signer and stores (absent in
    /// reports written before snapdrill recorded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<provenance::Provenance>,
}

impl AuditReport {
    /// 13 on any problem; else 1 when a store could not be audited; else 0.
    pub fn exit_code(&self) -> i32 {
        if !self.problems.is_empty() {
            exit::INTEGRITY
        } else if self
            .stores
            .iter()
            .any(|s| s.status == StoreStatus::Unreachable)
        {
            exit::FATAL
        } else {
            exit::OK
        }
    }

    /// Stores that could not be reached.
    pub fn unreachable(&self) -> impl Iterator<Item = &StoreAudit> {
        self.stores
            .iter()
            .filter(|s| s.status == StoreStatus::Unreachable)
    }
}

/// The state of an audit between its steps.
struct Audit {
    config: RepoConfig,
    signer: VerifyingKey,
    stores: Vec<Surveyed>,
    /// `reports[i]` belongs to `stores[i]` for `i < stores.len()`; then the others.
    reports: Vec<StoreAudit>,
    findings: Findings,
    /// Valid tombstones from any store, by snapshot id.
    forgotten: BTreeMap<String, Tombstone>,
    /// Every object a verified commit in any store lists.
    referenced: objects::Referenced,
    /// SHA-256 of what was read, per store index and object.
    read_hashes: Vec<BTreeMap<String, String>>,
    notes: Vec<String>,
    ledger: LedgerSummary,
    coverage_complete: bool,
    now: SystemTime,
}

/// Audit the repository of `config`: every configured store, in configuration order,
/// trusting the signer pinned there (or, on the backup host, the write key's). A store that
/// does not exist at all (a local folder that is gone) is audited as an empty replica; one
/// that cannot be opened is reported.
pub async fn run_config(
    config: &crate::config::Config,
    opts: &AuditOptions,
) -> Result<AuditReport> {
    let signer = crate::repository::signer(config, false)?;
    let (opened, failed) = crate::repository::open_stores(config, false);
    let mut stores = Vec::new();
    let mut unopened = Vec::new();
    for s in &config.stores {
        if let Some(store) = opened.iter().find(|o| o.name() == s.name) {
            stores.push(store.clone());
        } else if let Some((_, e)) = failed.iter().find(|(n, _)| *n == s.name) {
            if e.kind == crate::store::StoreErrorKind::NotFound {
                stores.push(survey::absent_store(&s.name, &e.message));
            } else {
                unopened.push((s.name.clone(), e.message.clone()));
            }
        }
    }
    run(stores, unopened, signer, opts).await
}

/// Audit the repository in `stores` (`unopened`: configured stores that could not even be
/// opened, with why), trusting only `signer`.
pub async fn run(
    stores: Vec<StoreRef>,
    unopened: Vec<(String, String)>,
    signer: VerifyingKey,
    opts: &AuditOptions,
) -> Result<AuditReport> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let configs = survey::read_configs(&stores, &signer).await;
    let config = survey::pick_config(&stores, &configs, &unopened)?;
    let outcomes = survey::survey_all(stores, configs, &config, &signer).await;
    let mut audit = Audit::new(config, signer, outcomes, unopened, started);
    audit.check_objects(opts).await;
    audit.cross_store();
    audit.read_data(opts).await;
    if let Some(ids) = &opts.deep {
        audit.deep(ids.clone()).await?;
    }
    audit.check_forgetting();
    audit.check_ledger(opts);
    if opts.immutability {
        audit.immutability().await;
    }
    advice::advise(
        &audit.stores,
        &audit.referenced,
        &audit.read_hashes,
        &mut audit.findings.problems,
    )
    .await;
    Ok(audit.finish(opts, started, clock))
}

impl Audit {
    fn new(
        config: RepoConfig,
        signer: VerifyingKey,
        outcomes: Vec<Outcome>,
        unopened: Vec<(String, String)>,
        now: SystemTime,
    ) -> Self {
        let mut stores = Vec::new();
        let mut others = Vec::new();
        let mut findings = Findings::default();
        for o in outcomes {
            match o {
                Outcome::Surveyed(s) => stores.push(*s),
                Outcome::Excluded { store, problem } => {
                    others.push(StoreAudit::new(
                        &store,
                        StoreStatus::Excluded,
                        Some(problem.detail.clone()),
                    ));
                    findings.problems.push(problem);
                }
                Outcome::Unreachable { store, reason } => {
                    others.push(StoreAudit::new(
                        &store,
                        StoreStatus::Unreachable,
                        Some(reason),
                    ));
                }
            }
        }
        others.extend(
            unopened
                .into_iter()
                .map(|(n, why)| StoreAudit::new(&n, StoreStatus::Unreachable, Some(why))),
        );
        let forgotten: BTreeMap<String, Tombstone> = stores
            .iter()
            .flat_map(|s| s.tombstones.iter())
            .map(|(id, t)| (id.clone(), t.clone()))
            .collect();
        for s in &mut stores {
            s.set_aside_forgotten(&forgotten);
            findings.extend(std::mem::take(&mut s.findings));
        }
        let mut reports: Vec<StoreAudit> = stores.iter().map(Surveyed::report).collect();
        reports.extend(others);
        let read_hashes = vec![BTreeMap::new(); stores.len()];
        Audit {
            config,
            signer,
            stores,
            reports,
            findings,
            forgotten,
            referenced: objects::Referenced::default(),
            read_hashes,
            notes: Vec::new(),
            ledger: LedgerSummary::default(),
            coverage_complete: false,
            now,
        }
    }

    /// Presence, sizes, manifests and extras, per store.
    async fn check_objects(&mut self, opts: &AuditOptions) {
        self.referenced = objects::referenced(&self.stores, &mut self.findings);
        let awaiting = objects::awaiting_prune(&self.stores);
        for (i, s) in self.stores.iter().enumerate() {
            let checked =
                objects::check_store(s, &self.referenced, &awaiting, self.now, opts).await;
            let r = &mut self.reports[i];
            r.objects_checked = checked.objects_checked;
            r.manifests_verified = checked.manifests_verified;
            r.in_flight = checked.in_flight;
            self.findings.extend(checked.findings);
        }
    }

    /// Which store lacks what the others hold.
    fn cross_store(&mut self) {
        let found = cross::behind(&self.stores, &self.forgotten);
        self.findings.extend(found);
        let found = cross::commits_disagree(&self.stores);
        self.findings.extend(found);
    }

    /// `--read-data`: download, hash, remember in the coverage file; then read again every
    /// copy the damage register holds that this audit did not read (any mode: damage found
    /// once stays reported until a read proves the copy healthy).
    async fn read_data(&mut self, opts: &AuditOptions) {
        let path = coverage::path(&opts.state_dir, &self.config.repository_id);
        let (mut cov, note) = coverage::CoverageFile::load(&path);
        self.notes.extend(note);
        let dpath = crate::damage::path(&opts.state_dir, &self.config.repository_id);
        let mut register = match crate::damage::Register::load(&dpath) {
            Ok(r) => Some(r),
            Err(e) => {
                self.notes.push(e.to_string());
                None
            }
        };
        let candidates: Vec<Vec<objects::Candidate>> =
            self.stores.iter().map(objects::present_needs).collect();
        let mut scratch = crate::damage::Register::default();
        let reg = register.as_mut().unwrap_or(&mut scratch);
        if opts.read != ReadPolicy::None {
            let outcome = read::run(&self.stores, &candidates, &cov, opts).await;
            self.apply_reads(outcome, &mut cov, reg);
        }
        self.recheck_damage(opts, &mut cov, reg).await;
        if let Some(r) = &register
            && let Err(e) = r.save(&dpath)
        {
            self.notes.push(format!(
                "could not write the damage register {}: {e}",
                dpath.display()
            ));
        }
        self.coverage_complete = self.summarize_coverage(&mut cov, &candidates);
        if opts.read != ReadPolicy::None
            && let Err(e) = cov.save(&path)
        {
            self.notes.push(format!(
                "could not write the coverage file {}: {e}",
                path.display()
            ));
        }
    }

    /// Read the registered damaged copies this audit has not read yet; forget entries no
    /// snapshot needs any more.
    async fn recheck_damage(
        &mut self,
        opts: &AuditOptions,
        cov: &mut coverage::CoverageFile,
        register: &mut crate::damage::Register,
    ) {
        let audited: Vec<String> = self
            .stores
            .iter()
            .map(|s| s.store.name().to_owned())
            .collect();
        let referenced = &self.referenced;
        register.retain(|store, object| {
            !audited.iter().any(|a| a == store) || referenced.contains_key(object)
        });
        let pending: Vec<Vec<objects::Candidate>> = self
            .stores
            .iter()
            .enumerate()
            .map(|(i, s)| {
                register
                    .of(s.store.name())
                    .filter(|(o, _)| !self.reports[i].read.names.iter().any(|n| n == o))
                    .filter_map(|(o, _)| self.referenced.candidate(o))
                    .collect()
            })
            .collect();
        if pending.iter().all(Vec::is_empty) {
            return;
        }
        let forced = AuditOptions {
            read: ReadPolicy::All,
            budget: None,
            ..opts.clone()
        };
        let outcome = read::run(&self.stores, &pending, cov, &forced).await;
        self.apply_reads(outcome, cov, register);
    }

    fn apply_reads(
        &mut self,
        outcome: read::Outcome,
        cov: &mut coverage::CoverageFile,
        register: &mut crate::damage::Register,
    ) {
        let secs = coverage::unix_secs(self.now);
        for (i, deferred) in outcome.deferred.iter().enumerate() {
            self.reports[i].read.deferred = *deferred;
        }
        for r in outcome.reads {
            let store = self.stores[r.store].store.name().to_owned();
            let report = &mut self.reports[r.store];
            report.read.objects += 1;
            report.read.bytes += r.object.size;
            report.read.names.push(r.object.name.clone());
            if let Some(sha) = &r.sha256 {
                self.read_hashes[r.store].insert(r.object.name.clone(), sha.clone());
            }
            match r.problem {
                None => {
                    cov.record(&store, &r.object.name, secs);
                    if register.clear(&store, &r.object.name) {
                        self.notes.push(format!(
                            "store '{store}': {} was damaged and now reads intact",
                            r.object.name
                        ));
                    }
                }
                Some(mut p) => {
                    cov.forget(&store, &r.object.name);
                    let now = format::format_time(self.now);
                    register.mark(&store, &r.object.name, &p.detail, &now);
                    if let Some((_, d)) = register.of(&store).find(|(o, _)| *o == r.object.name)
                        && d.found != now
                    {
                        p.detail = format!("{} (damaged since {})", p.detail, d.found);
                    }
                    self.findings.problems.push(p);
                }
            }
        }
        for r in &mut self.reports {
            r.read.names.sort();
        }
        if outcome.deferred.iter().any(|d| *d > 0) {
            self.notes.push(format!(
                "the budget left {} selected objects for a later audit (least recently read first)",
                outcome.deferred.iter().sum::<u64>()
            ));
        }
    }

    fn summarize_coverage(
        &mut self,
        cov: &mut coverage::CoverageFile,
        candidates: &[Vec<objects::Candidate>],
    ) -> bool {
        let mut complete = true;
        for (i, s) in self.stores.iter().enumerate() {
            let name = s.store.name();
            cov.retain(name, |o| s.listing.contains_key(o));
            let objects = candidates[i].iter().map(|c| (c.name(), c.size()));
            let summary = coverage::summarize(cov, name, objects, self.now);
            complete &= summary.complete;
            self.reports[i].coverage = Some(summary);
        }
        complete && self.reports.len() == self.stores.len()
    }

    /// `--deep`: the verify-only restore of every snapshot, in each store alone.
    async fn deep(&mut self, ids: Arc<Identities>) -> Result<()> {
        for (i, s) in self.stores.iter().enumerate() {
            let (summary, found) =
                deep::check_store(s, &self.config, &self.signer, ids.clone()).await?;
            self.reports[i].deep = Some(summary);
            self.findings.problems.extend(found);
        }
        Ok(())
    }

    /// Tombstones a compromised backup host would sign: the newest snapshot of a data set,
    /// or most of its snapshots within a day.
    fn check_forgetting(&mut self) {
        let live: Vec<(DataSet, &str, &str)> = self
            .stores
            .iter()
            .flat_map(|s| s.commits.values())
            .map(|c| {
                (
                    c.commit.data_set(),
                    c.commit.time.as_str(),
                    c.commit.snapshot_id.as_str(),
                )
            })
            .collect();
        let (problems, warnings) = forgetting::alarms(&live, &self.forgotten, self.now)
            .into_iter()
            .partition::<Vec<_>, _>(|f| f.kind == FindingKind::NewestForgotten);
        // No retention policy forgets the newest snapshot: a problem. Many tombstones at
        // once is also what a first retention run over a long history does: a warning.
        self.findings.problems.extend(problems);
        self.findings.warnings.extend(warnings);
    }

    /// Compare with the ledger, then append what was seen.
    fn check_ledger(&mut self, opts: &AuditOptions) {
        let seen: Vec<ledger::Seen> = self.stores.iter().map(ledger::Seen::of).collect();
        let (summary, found) = ledger::audit(
            &opts.state_dir,
            &self.config.repository_id,
            &seen,
            &self.forgotten,
            self.now,
            self.config.generation,
        );
        self.ledger = summary;
        self.findings.extend(found);
    }

    /// `--immutability`: a canary per store.
    async fn immutability(&mut self) {
        let probes =
            futures::future::join_all(self.stores.iter().map(|s| immutability::probe(&s.store)))
                .await;
        for (i, p) in probes.into_iter().enumerate() {
            self.reports[i].immutability = Some(p);
        }
    }

    fn finish(mut self, opts: &AuditOptions, started: SystemTime, clock: Instant) -> AuditReport {
        let key = |f: &Finding| (f.store.clone(), f.object.clone(), f.kind as u8);
        self.findings.problems.sort_by_key(key);
        self.findings.problems.dedup();
        self.findings.warnings.sort_by_key(key);
        for r in &mut self.reports {
            let mine = |f: &&Finding| f.store == r.store;
            r.problems = self.findings.problems.iter().filter(mine).count() as u64;
            r.warnings = self.findings.warnings.iter().filter(mine).count() as u64;
        }
        let differences = cross::differences(&self.stores, &self.referenced, &self.read_hashes);
        let snapshots = cross::rows(&self.stores);
        AuditReport {
            repository_id: self.config.repository_id.clone(),
            started: format::format_time(started),
            finished: format::format_time(SystemTime::now()),
            duration_secs: clock.elapsed().as_secs_f64(),
            read_data: read::describe(&opts.read, opts.budget),
            deep: opts.deep.is_some(),
            stores: self.reports,
            snapshots,
            differences,
            problems: self.findings.problems,
            warnings: self.findings.warnings,
            ledger: self.ledger,
            coverage_complete: self.coverage_complete,
            notes: self.notes,
            provenance: None,
        }
    }
}

/// Snapshot ids a store lists under `snapshots/`, whether or not they verify.
fn listed_snapshots(s: &Surveyed) -> BTreeSet<&str> {
    s.listing
        .others()
        .filter_map(|(k, _)| k.strip_prefix(format::SNAPSHOTS_PREFIX))
        .collect()
}
