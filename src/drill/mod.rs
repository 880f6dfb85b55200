//! `restore-drill`: a timed clean-room restore that proves a snapshot comes back.
//!
//! A drill uses only what a disaster leaves — the stores (and their credentials), the
//! identity and the config's pinned signer — never the sources, the cache or any local
//! state. It restores into a fresh empty folder (or only streams and verifies), checks every
//! object against the signed commit and every file against its SHA-256, runs an optional
//! validation command, and times each phase. The recovery time (RTO) is measured from the
//! start of the drill to verified, validated data; the recovery point (RPO) is the age of
//! the newest snapshot in the drilled store(s). Every drill ends in a [`DrillRecord`].

pub mod record;
pub mod render;
pub mod room;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ed25519_dalek::VerifyingKey;
use rand::{Rng, SeedableRng};

pub use self::record::{DrillRecord, DrillResult, Targets};
use crate::error::{Error, exit};
use crate::format;
use crate::format::commit::DataSet;
use crate::keys::Identities;
use crate::repository::{OpenMode, Repository, Snapshot, SnapshotList};
use crate::restore::{self, RestoreOptions, StageClock};
use crate::store::StoreRef;

/// How much of a snapshot a sample drill restores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sample {
    /// This fraction of the content bytes (0 < f <= 1).
    Fraction(f64),
    /// About this many content bytes.
    Bytes(u64),
}

impl Sample {
    /// The content bytes to restore out of `total`.
    fn bytes_of(&self) -> impl FnOnce(u64) -> u64 + Send + 'static {
        let sample = *self;
        move |total| match sample {
            Sample::Fraction(f) => (total as f64 * f).ceil() as u64,
            Sample::Bytes(b) => b,
        }
    }

    /// Parse `10%`, `0.5%`, `500MB`, `2GiB`, `1048576`.
    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match crate::units::parse_amount(s)? {
            crate::units::Amount::Share(f) => Sample::Fraction(f),
            crate::units::Amount::Bytes(b) => Sample::Bytes(b),
        })
    }
}

/// What to drill and how.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// `random`, or a snapshot spec (`latest`, `latest~N`, an id, a day, a date-time).
    pub snapshot: String,
    /// `--job`, `--host`, `--tag`, `--before`.
    pub selection: crate::repository::Selection,
    /// Drill this data set (its snapshot chosen by `snapshot` within it).
    pub data_set: Option<DataSet>,
    /// Restore here (must be empty) instead of a fresh temporary folder.
    pub target: Option<PathBuf>,
    /// Keep the restored files.
    pub keep: bool,
    /// Stream and verify without writing files.
    pub verify_only: bool,
    /// Restore a random subset and extrapolate the RTO.
    pub sample: Option<(Sample, String)>,
    /// Seed of the random choices (snapshot `random`, sample).
    pub seed: u64,
    /// Validation command, run with `sh -c` in the restored tree.
    pub check: Option<String>,
    /// Targets.
    pub rto: Option<Duration>,
    /// Targets.
    pub rpo: Option<Duration>,
    /// Who runs it.
    pub operator: Option<String>,
    /// This host's name.
    pub host: String,
}

/// What the identity holder needs to authenticate the drill history.
pub struct Outcome {
    /// The evidence.
    pub record: DrillRecord,
    /// The dedup key, when the repository could be decrypted (to seal the record).
    pub dedup: Option<[u8; 32]>,
    /// The repository's current read key (the record is sealed to it; `None` before
    /// format version 3).
    pub seal_to: Option<age::x25519::Recipient>,
}

/// Drill the repository in `stores` (all of them with failover, or one alone), labelled
/// `label`. `started` is when the drill began (the RTO clock); `clock` shows progress.
pub async fn run(
    stores: Vec<StoreRef>,
    label: &str,
    signer: VerifyingKey,
    identities: Arc<Identities>,
    opts: &DrillOptions,
    started: Instant,
    clock: Arc<StageClock>,
) -> Outcome {
    let mut drill = Drill {
        opts,
        started,
        clock,
        rec: new_record(label, opts, started),
        dedup: None,
        seal_to: None,
    };
    let result = drill.phases(stores, &signer, identities).await;
    drill.finish(result)
}

/// The record of a drill that is starting: who, where, how, against which targets.
fn new_record(label: &str, opts: &DrillOptions, started: Instant) -> DrillRecord {
    let wall_start = SystemTime::now() - started.elapsed();
    let mode = if opts.sample.is_some() {
        "sample"
    } else if opts.verify_only {
        "verify-only"
    } else {
        "full"
    };
    let mut rec = DrillRecord::new(
        record::new_drill_id(wall_start),
        format::format_time(wall_start),
        opts.host.clone(),
        label.to_owned(),
        mode,
    );
    rec.operator = opts.operator.clone();
    rec.targets = Targets {
        rto_secs: opts.rto.map(|d| d.as_secs_f64()),
        rpo_secs: opts.rpo.map(|d| d.as_secs_f64()),
    };
    rec.sample = opts.sample.as_ref().map(|(_, asked)| record::SampleInfo {
        requested: asked.clone(),
        seed: opts.seed,
    });
    rec
}

/// A drill under way: the evidence gathered so far, kept whichever phase fails, and the
/// dedup key once the identity has opened the repository (to seal the record).
struct Drill<'a> {
    opts: &'a DrillOptions,
    started: Instant,
    clock: Arc<StageClock>,
    rec: DrillRecord,
    dedup: Option<[u8; 32]>,
    seal_to: Option<age::x25519::Recipient>,
}

impl Drill<'_> {
    /// The four phases, each timed from the same clock.
    async fn phases(
        &mut self,
        stores: Vec<StoreRef>,
        signer: &VerifyingKey,
        identities: Arc<Identities>,
    ) -> crate::Result<()> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.opts.seed);
        // Phase 1: reach the store(s), read the config, list and verify the snapshots.
        let (repo, snap) = self.connect(stores, signer, &mut rng).await?;
        let t1 = self.started.elapsed();
        self.rec.phases.connect_list_secs = t1.as_secs_f64();

        // Phase 2: the manifest (and the dedup key: a wrong identity fails here, exit 12),
        // checked in one streamed pass; a sample is chosen in one more.
        let mut opened =
            restore::open_piecewise(&repo, snap.commit, identities.clone(), &[]).await?;
        self.dedup = Some(opened.dedup());
        self.seal_to = repo.config.write_recipient();
        if let Some((sample, _)) = &self.opts.sample {
            opened.sample(self.opts.seed, sample.bytes_of()).await?;
        }
        let t2 = self.started.elapsed();
        self.rec.phases.manifest_secs = t2.saturating_sub(t1).as_secs_f64();

        // Phase 3: every byte, into a fresh folder (or verified in memory); the line counts
        // the backup recorded are counted again as the bytes stream by.
        let room = Target::prepare(self.opts, &self.rec.drill_id)?;
        let ropts = RestoreOptions {
            verify_only: self.opts.verify_only,
            ..RestoreOptions::new(room.path.clone())
        };
        let clock = self.clock.clone();
        let restored = restore::run_piecewise(&repo, opened, identities, &ropts, clock).await;
        let t3 = self.started.elapsed();
        self.rec.phases.data_secs = t3.saturating_sub(t2).as_secs_f64();
        self.rec.first_byte_secs = self
            .clock
            .first_byte()
            .map(|f| f.duration_since(self.started).as_secs_f64());
        let report = match restored {
            Ok(r) => r,
            Err(e) => {
                self.clear(room);
                return Err(e);
            }
        };
        self.rec.absorb(&report);

        // Phase 4: the validation command, in the restored tree.
        if let Some(cmd) = &self.opts.check {
            self.check(cmd, &room.path);
        }
        self.rec.phases.check_secs = self.started.elapsed().saturating_sub(t3).as_secs_f64();
        // The RTO is the sum of the phases, taken from the same instants (no second reading
        // of the clock that could disagree with them).
        self.rec.rto_secs = self.rec.phases.total();
        self.rec.stream_bytes = Some(report.stream_bytes);
        if self.opts.sample.is_some() {
            self.rec.rto_estimate_secs = estimate_full_rto(
                &self.rec.phases,
                report.stream_bytes,
                self.rec.bytes_fetched,
            );
        }
        self.clear(room);
        Ok(())
    }

    /// Phase 1: open the repository, record every untrusted snapshot as a failure and the
    /// RPO (age of the newest trusted snapshot), and choose the snapshot to drill.
    async fn connect(
        &mut self,
        stores: Vec<StoreRef>,
        signer: &VerifyingKey,
        rng: &mut impl Rng,
    ) -> crate::Result<(Repository, Snapshot)> {
        let repo = Repository::open(stores, *signer, OpenMode::All).await?;
        let rec = &mut self.rec;
        rec.repository_id = Some(repo.config.repository_id.clone());
        let mut list = repo.snapshots().await?;
        if let Some(set) = &self.opts.data_set {
            list = list.only(set);
            note_data_set(rec, set);
            rec.rpo_secs = rpo(&list);
        }
        for u in &list.untrusted {
            rec.failures.push(format!(
                "untrusted snapshot {} in store(s) {}: {}",
                u.id,
                u.stores.join(","),
                u.reason
            ));
        }
        let snap = choose(&list, self.opts, rng)?.clone();
        // The RPO is the age of the newest snapshot of the data set drilled.
        let set = snap.commit.data_set();
        note_data_set(rec, &set);
        rec.rpo_secs = rpo(&list.only(&set));
        rec.snapshot_id = Some(snap.commit.snapshot_id.clone());
        rec.snapshot_time = Some(snap.commit.time.clone());
        rec.snapshot_bytes = snap.commit.summary.bytes;
        Ok((repo, snap))
    }

    /// Phase 4: run the validation command; a non-zero exit is a failure of the drill.
    fn check(&mut self, cmd: &str, dir: &Path) {
        let snapshot = self.rec.snapshot_id.as_deref().unwrap_or_default();
        let outcome = run_check(cmd, dir, snapshot);
        if !outcome.passed() {
            self.rec.failures.push(outcome.failure());
        }
        self.rec.check = Some(outcome);
    }

    /// Remove the clean room. Not part of the RTO, and a problem removing it is never an
    /// integrity verdict: it is reported apart, with the folder named, since it holds
    /// restored data.
    fn clear(&mut self, room: Target) {
        let Some((dir, registered)) = room.scratch else {
            return;
        };
        if self.opts.keep {
            drop(registered);
            return;
        }
        let t = Instant::now();
        let path = dir.path().to_path_buf();
        if let Err(e) = dir.remove() {
            self.rec.cleanup_error = Some(format!(
                "could not remove the clean-room folder {}: {e}; remove it by hand (it holds restored data)",
                path.display()
            ));
        }
        drop(registered);
        self.rec.cleanup_secs = Some(t.elapsed().as_secs_f64());
    }

    /// The verdict: a failed phase by its kind, else the targets.
    fn finish(mut self, result: crate::Result<()>) -> Outcome {
        let rec = &mut self.rec;
        rec.finished = format::format_time(SystemTime::now());
        rec.result = match result {
            Ok(()) => judge(rec),
            Err(e) => {
                rec.failures.push(e.to_string());
                match e.exit_code() {
                    exit::INTEGRITY => DrillResult::IntegrityFailure,
                    exit::KEY => DrillResult::KeyFailure,
                    _ => DrillResult::Error,
                }
            }
        };
        // Data that came back verified but failed a check is its own result; any other
        // failure found on the way (an untrusted snapshot, a line count) is integrity.
        let check_failed = rec.check.as_ref().is_some_and(|c| !c.passed());
        if rec.result.recovered() && rec.failures.len() > usize::from(check_failed) {
            rec.result = DrillResult::IntegrityFailure;
        } else if rec.result.recovered() && check_failed {
            rec.result = DrillResult::CheckFailed;
        }
        Outcome {
            record: self.rec,
            dedup: self.dedup,
            seal_to: self.seal_to,
        }
    }
}

fn judge(rec: &DrillRecord) -> DrillResult {
    let rto_missed = rec.targets.rto_secs.is_some_and(|t| rec.judged_rto() > t);
    // An RPO that could not be measured never meets a target.
    let rpo_missed = match (rec.targets.rpo_secs, rec.rpo_secs) {
        (Some(t), Some(r)) => r > t,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if rto_missed || rpo_missed {
        DrillResult::TargetMissed
    } else {
        DrillResult::Pass
    }
}

/// Where a drill restores: the operator's empty folder, a fresh private clean room (removed
/// at the end unless kept, and on SIGINT/SIGTERM), or nowhere (`--verify-only`).
struct Target {
    path: PathBuf,
    scratch: Option<(
        crate::localfs::scratch::Scratch,
        crate::localfs::cleanup::Registered,
    )>,
}

impl Target {
    fn prepare(opts: &DrillOptions, drill_id: &str) -> crate::Result<Self> {
        Ok(match (&opts.target, opts.verify_only) {
            (_, true) => Target {
                path: PathBuf::from("(verify only)"),
                scratch: None,
            },
            (Some(t), false) => Target {
                path: t.clone(),
                scratch: None,
            },
            (None, false) => {
                let s = fresh_dir(drill_id)?;
                Target {
                    path: s.0.path().to_path_buf(),
                    scratch: Some(s),
                }
            }
        })
    }
}

/// A sample drill's estimate of the full snapshot's RTO: the data phase scales with the
/// bytes of the chunk stream (a full drill fetches `stream_bytes`, the sample fetched
/// `fetched`), the other phases do not. `None` when the sample fetched nothing.
pub fn estimate_full_rto(phases: &record::Phases, stream_bytes: u64, fetched: u64) -> Option<f64> {
    if fetched == 0 {
        return None;
    }
    let scale = stream_bytes as f64 / fetched as f64;
    Some(phases.total() - phases.data_secs + phases.data_secs * scale)
}

/// The age of the newest snapshot of `list` now, in seconds.
fn rpo(list: &SnapshotList) -> Option<f64> {
    let newest = format::parse_time(&list.trusted.last()?.commit.time)?;
    Some(
        SystemTime::now()
            .duration_since(newest)
            .unwrap_or_default()
            .as_secs_f64(),
    )
}

fn note_data_set(rec: &mut DrillRecord, set: &DataSet) {
    rec.snapshot_host = Some(set.host.clone());
    rec.job = set.job.clone();
    rec.source = set.source.clone();
}

/// The snapshot `opts` asks for: `random` among the selected ones, else the spec within
/// the selection.
fn choose<'a>(
    list: &'a SnapshotList,
    opts: &DrillOptions,
    rng: &mut impl Rng,
) -> crate::Result<&'a crate::repository::Snapshot> {
    if opts.snapshot == "random" {
        let all = list.candidates();
        let admitted: Vec<usize> = (0..all.len())
            .filter(|&i| SnapshotList::admits(&opts.selection, &all[i]))
            .collect();
        if admitted.is_empty() {
            return Err(Error::Usage(
                "the repository holds no snapshot to drill (with these filters)".into(),
            ));
        }
        return Ok(&list.trusted[admitted[rng.gen_range(0..admitted.len())]]);
    }
    list.select(&opts.snapshot, &opts.selection)
}

/// Files in random order until the sample's size is reached (at least one file).
/// Prefix of drill clean-room folders in `$TMPDIR`.
pub const SCRATCH_PREFIX: &str = "snapdrill-drill-";

/// A private (0700), locked clean-room folder, registered for removal on SIGINT/SIGTERM.
fn fresh_dir(
    drill_id: &str,
) -> crate::Result<(
    crate::localfs::scratch::Scratch,
    crate::localfs::cleanup::Registered,
)> {
    let dir = crate::localfs::scratch::Scratch::create(SCRATCH_PREFIX, drill_id).map_err(|e| {
        Error::io(
            "creating the drill folder",
            std::env::temp_dir().join(format!("{SCRATCH_PREFIX}{drill_id}")),
            e,
        )
    })?;
    let registered = crate::localfs::cleanup::tree(dir.path().to_path_buf())
        .ok_or_else(|| Error::fatal("interrupted: the drill did not start"))?;
    Ok((dir, registered))
}

/// Remove the clean-room folders of drills that died (killed, power cut): this user's
/// `$TMPDIR/snapdrill-drill-*` folders that no running drill holds. Returns what was
/// removed and what could not be, for the command to report.
pub fn sweep_dead_drills() -> Vec<String> {
    crate::localfs::scratch::sweep(SCRATCH_PREFIX)
        .into_iter()
        .map(|(path, result)| match result {
            Ok(()) => format!(
                "removed {}, left by a drill that did not finish",
                path.display()
            ),
            Err(e) => format!(
                "could not remove {} (left by a drill that did not finish): {e}",
                path.display()
            ),
        })
        .collect()
}

fn run_check(cmd: &str, dir: &Path, snapshot: &str) -> record::CheckOutcome {
    use std::os::unix::process::ExitStatusExt as _;
    let status = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .env("SNAPDRILL_DRILL_DIR", dir)
        .env("SNAPDRILL_SNAPSHOT", snapshot)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status();
    record::CheckOutcome {
        command: cmd.to_owned(),
        exit_code: status.as_ref().ok().and_then(|s| s.code()),
        signal: status.as_ref().ok().and_then(|s| s.signal()),
        error: status.err().map(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_scales_the_data_phase_by_the_bytes_left_to_fetch() {
        let phases = record::Phases {
            connect_list_secs: 0.5,
            manifest_secs: 0.25,
            data_secs: 2.0,
            check_secs: 1.0,
        };
        assert_eq!(phases.total(), 3.75);
        // A tenth of the stream took 2 s: the whole stream takes 20 s; the rest is fixed.
        let est = estimate_full_rto(&phases, 1_000_000, 100_000).unwrap();
        assert!((est - (0.5 + 0.25 + 20.0 + 1.0)).abs() < 1e-9, "{est}");
        // A "sample" of everything estimates exactly what it measured.
        assert_eq!(estimate_full_rto(&phases, 7, 7), Some(phases.total()));
        assert_eq!(estimate_full_rto(&phases, 7, 0), None);
    }

    #[test]
    fn an_unknown_rpo_never_meets_a_target() {
        let mut rec = DrillRecord::new("d".into(), "t".into(), "h".into(), "all".into(), "full");
        rec.targets.rpo_secs = Some(3600.0);
        rec.rpo_secs = None;
        assert_eq!(judge(&rec), DrillResult::TargetMissed);
        rec.rpo_secs = Some(10.0);
        assert_eq!(judge(&rec), DrillResult::Pass);
        rec.targets.rpo_secs = None;
        rec.rpo_secs = None;
        assert_eq!(judge(&rec), DrillResult::Pass, "no target, nothing to miss");
    }

    #[test]
    fn samples_parse() {
        assert_eq!(Sample::parse("10%").unwrap(), Sample::Fraction(0.1));
        assert_eq!(Sample::parse("500MB").unwrap(), Sample::Bytes(500_000_000));
        assert_eq!(Sample::parse("2GiB").unwrap(), Sample::Bytes(2 << 30));
        assert_eq!(Sample::parse("1024").unwrap(), Sample::Bytes(1024));
        for bad in ["0%", "101%", "ten", "5 parsecs", "-3MB"] {
            assert!(Sample::parse(bad).is_err(), "{bad}");
        }
    }
}
