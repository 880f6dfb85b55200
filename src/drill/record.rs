//! Drill records: the evidence of one drill, kept in the repository itself
//! (`drills/<drill-id>`, sealed like a manifest and authenticated with a key derived from the
//! dedup key), so every site holds the history and only identity holders can read or add it.

use std::collections::BTreeMap;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::format::{self, check_version};
use crate::repository::Failure;
use crate::restore::StageTimes;
use crate::store::{self, StoreRef};

/// Prefix of drill record objects.
pub use crate::format::DRILLS_PREFIX;
const FORMAT: &str = "snapdrill-drill";
const MAC_TAG: &str = "snapdrill-mac-v1 hmac-sha256";
/// Largest record object accepted.
pub const RECORD_LIMIT: u64 = format::limits::DRILL_RECORD;

/// How a drill ended. Each outcome maps to one exit code (README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrillResult {
    /// Data verified, targets met (exit 0).
    Pass,
    /// Data verified, RTO or RPO target missed (exit 14).
    TargetMissed,
    /// Data verified, but the validation command (`--check`) failed (exit 15).
    CheckFailed,
    /// A checksum, signature, object or recorded line count failed (exit 13).
    IntegrityFailure,
    /// The identity cannot decrypt (exit 12).
    KeyFailure,
    /// The drill could not run: store unreachable, bad snapshot id... (exit 1).
    Error,
}

impl DrillResult {
    /// The process exit code.
    pub fn exit_code(self) -> i32 {
        use crate::error::exit;
        match self {
            DrillResult::Pass => exit::OK,
            DrillResult::TargetMissed => exit::TARGET_MISSED,
            DrillResult::CheckFailed => exit::CHECK_FAILED,
            DrillResult::IntegrityFailure => exit::INTEGRITY,
            DrillResult::KeyFailure => exit::KEY,
            DrillResult::Error => exit::FATAL,
        }
    }

    /// Severity for combining several drills: the worst wins.
    pub fn severity(self) -> u8 {
        match self {
            DrillResult::Pass => 0,
            DrillResult::TargetMissed => 1,
            DrillResult::CheckFailed => 2,
            DrillResult::Error => 3,
            DrillResult::KeyFailure => 4,
            DrillResult::IntegrityFailure => 5,
        }
    }

    /// Short label for reports.
    pub fn label(self) -> &'static str {
        match self {
            DrillResult::Pass => "PASS",
            DrillResult::TargetMissed => "TARGET MISSED",
            DrillResult::CheckFailed => "CHECK FAILED",
            DrillResult::IntegrityFailure => "INTEGRITY FAILURE",
            DrillResult::KeyFailure => "KEY FAILURE",
            DrillResult::Error => "ERROR",
        }
    }

    /// Every result, best first.
    pub const ALL: [DrillResult; 6] = [
        DrillResult::Pass,
        DrillResult::TargetMissed,
        DrillResult::CheckFailed,
        DrillResult::IntegrityFailure,
        DrillResult::KeyFailure,
        DrillResult::Error,
    ];

    /// Whether the drill got its data back verified (and so measured a recovery time):
    /// it passed or only missed a target.
    pub fn recovered(self) -> bool {
        matches!(self, DrillResult::Pass | DrillResult::TargetMissed)
    }
}

/// Wall-clock phases, one after the other: their sum is the RTO.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Phases {
    /// Reach the stores, read the repository config, list and verify snapshots.
    pub connect_list_secs: f64,
    /// Fetch, verify and decrypt the manifest.
    pub manifest_secs: f64,
    /// Download, decrypt, decompress, write and verify every byte (overlapping stages).
    pub data_secs: f64,
    /// The validation command.
    pub check_secs: f64,
}

impl Phases {
    /// Their sum: the recovery time.
    pub fn total(&self) -> f64 {
        self.connect_list_secs + self.manifest_secs + self.data_secs + self.check_secs
    }
}

/// The validation hook's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// The command line.
    pub command: String,
    /// Its exit status (`None` if it could not run or was killed by a signal).
    pub exit_code: Option<i32>,
    /// The signal that killed it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Why it could not be started, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CheckOutcome {
    /// Whether the command exited 0.
    pub fn passed(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// How it ended: `exited with status 4`, `was killed by signal 9`, `could not be
    /// started: ...`.
    pub fn ending(&self) -> String {
        match (self.exit_code, self.signal, &self.error) {
            (Some(c), _, _) => format!("exited with status {c}"),
            (None, Some(s), _) => format!("was killed by signal {s}"),
            (None, None, Some(e)) => format!("could not be started: {e}"),
            (None, None, None) => "ended without an exit status".into(),
        }
    }

    /// The failure reason a report shows: the command and how it ended.
    pub fn failure(&self) -> String {
        format!("the check `{}` {}", self.command, self.ending())
    }
}

/// What part of the snapshot a sample drill restored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SampleInfo {
    /// As asked (`10%`, `500MB`).
    pub requested: String,
    /// Seed of the random choice (to repeat it).
    pub seed: u64,
}

/// Targets a drill was judged against.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Targets {
    /// Recovery-time objective, seconds.
    pub rto_secs: Option<f64>,
    /// Recovery-point objective, seconds.
    pub rpo_secs: Option<f64>,
}

/// The evidence of one drill.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillRecord {
    /// `snapdrill-drill`.
    pub format: String,
    /// Record version.
    pub version: u32,
    /// `YYYYMMDDTHHMMSSZ-xxxxxxxx`.
    pub drill_id: String,
    /// snapdrill version that ran it.
    pub tool_version: String,
    /// Host that ran it.
    pub host: String,
    /// Who ran it, if given.
    pub operator: Option<String>,
    /// Start (UTC).
    pub started: String,
    /// End (UTC).
    pub finished: String,
    /// The repository, when it could be opened.
    pub repository_id: Option<String>,
    /// The store drilled alone, or `all` (every configured store with failover).
    pub store: String,
    /// Objects served per store.
    pub served: BTreeMap<String, u64>,
    /// The snapshot.
    pub snapshot_id: Option<String>,
    /// The data set drilled: the host that made the snapshot (not the drilling host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_host: Option<String>,
    /// The data set drilled: its job (`None` for a format-1 snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// The data set drilled: its source identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Its time.
    pub snapshot_time: Option<String>,
    /// `full`, `verify-only` or `sample`.
    pub mode: String,
    /// Sample drills only.
    pub sample: Option<SampleInfo>,
    /// Files restored and verified.
    pub files: u64,
    /// Content bytes restored and verified.
    pub bytes: u64,
    /// Content bytes of the whole snapshot.
    pub snapshot_bytes: u64,
    /// Chunk objects fetched.
    pub objects_fetched: u64,
    /// Plaintext bytes of the chunks fetched.
    pub bytes_fetched: u64,
    /// Plaintext bytes of the snapshot's whole chunk stream (what a full drill fetches);
    /// a sample's estimate scales its data phase by `stream_bytes / bytes_fetched`.
    #[serde(default)]
    pub stream_bytes: Option<u64>,
    /// Wall-clock phases.
    pub phases: Phases,
    /// Time inside the data phase per stage (they overlap).
    pub stages: StageTimes,
    /// From the start to the first restored byte.
    pub first_byte_secs: Option<f64>,
    /// From the start to verified (and validated) data: the measured recovery time.
    pub rto_secs: f64,
    /// Sample drills: the full snapshot's recovery time, extrapolated (an estimate).
    pub rto_estimate_secs: Option<f64>,
    /// Removing the drill's temporary folder afterwards (not part of the RTO).
    #[serde(default)]
    pub cleanup_secs: Option<f64>,
    /// Why the temporary folder could not be removed (never part of the verdict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_error: Option<String>,
    /// Age of the newest snapshot in the drilled store(s) at the start.
    pub rpo_secs: Option<f64>,
    /// Targets.
    pub targets: Targets,
    /// Content MB/s over the data phase.
    pub throughput_mb_s: f64,
    /// Files whose line count (recorded at backup) was counted again in the restored (or
    /// verified) bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines_checked: Option<u64>,
    /// Validation hook.
    pub check: Option<CheckOutcome>,
    /// The outcome.
    pub result: DrillResult,
    /// What failed, naming object and store.
    pub failures: Vec<String>,
    /// Replicas that could not serve an object intact (another store did).
    pub repairs: Vec<Failure>,
}

impl DrillRecord {
    /// The data set drilled, when the drill got as far as choosing a snapshot (or was
    /// asked for one).
    pub fn data_set(&self) -> Option<crate::format::commit::DataSet> {
        Some(crate::format::commit::DataSet {
            host: self.snapshot_host.clone()?,
            job: self.job.clone(),
            source: self.source.clone(),
        })
    }

    /// `host/job` of the data set drilled, or `-` before one was chosen.
    pub fn data_set_label(&self) -> String {
        self.data_set()
            .map_or_else(|| "-".into(), |d| d.to_string())
    }

    /// What a restore proved (its data phase already timed), into the record.
    pub fn absorb(&mut self, report: &crate::restore::RestoreReport) {
        self.files = report.files;
        self.bytes = report.bytes;
        self.objects_fetched = report.chunks_fetched;
        self.bytes_fetched = report.bytes_fetched;
        self.stages = report.stages;
        self.served = report.sources.served.clone();
        self.lines_checked = (report.lines_checked > 0).then_some(report.lines_checked);
        self.failures.extend(report.line_mismatches.iter().cloned());
        self.repairs = report
            .sources
            .repairs
            .iter()
            .map(|r| {
                let mut f = r.failure.clone();
                f.reason = format!("{}: {}", r.object, f.reason);
                f
            })
            .collect();
        self.throughput_mb_s = if self.phases.data_secs > 0.0 {
            self.bytes as f64 / 1e6 / self.phases.data_secs
        } else {
            0.0
        };
    }

    /// An empty record for a drill starting now.
    pub fn new(drill_id: String, started: String, host: String, store: String, mode: &str) -> Self {
        DrillRecord {
            format: FORMAT.into(),
            version: 1,
            drill_id,
            tool_version: env!("CARGO_PKG_VERSION").into(),
            host,
            operator: None,
            started: started.clone(),
            finished: started,
            repository_id: None,
            store,
            served: BTreeMap::new(),
            lines_checked: None,
            snapshot_id: None,
            snapshot_host: None,
            job: None,
            source: None,
            snapshot_time: None,
            mode: mode.into(),
            sample: None,
            files: 0,
            bytes: 0,
            snapshot_bytes: 0,
            objects_fetched: 0,
            bytes_fetched: 0,
            stream_bytes: None,
            phases: Phases::default(),
            stages: StageTimes::default(),
            first_byte_secs: None,
            rto_secs: 0.0,
            rto_estimate_secs: None,
            cleanup_secs: None,
            cleanup_error: None,
            rpo_secs: None,
            targets: Targets::default(),
            throughput_mb_s: 0.0,
            check: None,
            result: DrillResult::Error,
            failures: Vec::new(),
            repairs: Vec::new(),
        }
    }

    /// The RTO to judge against the target: the estimate for samples, else the measure.
    pub fn judged_rto(&self) -> f64 {
        self.rto_estimate_secs.unwrap_or(self.rto_secs)
    }

    /// The judged RTO when the drill reached verified (and validated) data; `None` for a
    /// drill that never did (reports show `—`, never a time it did not reach).
    pub fn reached_rto(&self) -> Option<f64> {
        self.result.recovered().then(|| self.judged_rto())
    }

    /// Why the drill did not pass: its failures (object and store, or the check command
    /// and its exit status), or the targets it missed. Empty for a pass.
    pub fn reasons(&self) -> Vec<String> {
        if self.result == DrillResult::Pass {
            return Vec::new();
        }
        let mut out = self.failures.clone();
        if self.result == DrillResult::TargetMissed {
            let t = &self.targets;
            if let Some(target) = t.rto_secs.filter(|&t| self.judged_rto() > t) {
                out.push(format!(
                    "RTO {} over the target {}",
                    crate::units::duration(self.judged_rto()),
                    crate::units::duration(target)
                ));
            }
            match (t.rpo_secs, self.rpo_secs) {
                (Some(target), Some(r)) if r > target => out.push(format!(
                    "RPO {} over the target {}",
                    crate::units::duration(r),
                    crate::units::duration(target)
                )),
                (Some(_), None) => out.push("RPO not measured (no snapshot)".into()),
                _ => {}
            }
        }
        out
    }
}

fn mac_key(dedup: &[u8; 32]) -> [u8; 32] {
    crate::sealing::chunk_id(dedup, b"snapdrill drill-record mac v1")
}

fn mac(dedup: &[u8; 32], body: &[u8]) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&mac_key(dedup)).expect("any key length");
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

/// Seal a record: JSON body, a MAC line, then `age(zstd(..))`.
pub fn seal(
    record: &DrillRecord,
    dedup: &[u8; 32],
    recipients: &[age::x25519::Recipient],
) -> Result<Vec<u8>, String> {
    let body = serde_json::to_vec_pretty(record).map_err(|e| e.to_string())?;
    seal_body(&body, dedup, recipients)
}

/// Seal any record's JSON body as a drill record is sealed (audit records share the
/// scheme): the body, a MAC line, then `age(zstd(..))`.
pub fn seal_body(
    body: &[u8],
    dedup: &[u8; 32],
    recipients: &[age::x25519::Recipient],
) -> Result<Vec<u8>, String> {
    let mut text = body.to_vec();
    text.extend_from_slice(format!("\n{MAC_TAG} {}\n", mac(dedup, body)).as_bytes());
    crate::sealing::seal(&text, 3, recipients).map_err(|e| e.to_string())
}

/// Open and authenticate a record object.
pub fn open<'a>(
    object: &[u8],
    identities: impl Iterator<Item = &'a dyn age::Identity>,
    dedup: &[u8; 32],
) -> Result<DrillRecord, String> {
    let body = open_body(object, identities, dedup, RECORD_LIMIT)?;
    let record: DrillRecord =
        serde_json::from_slice(&body).map_err(|e| format!("unreadable record: {e}"))?;
    check_version("drill record", &record.format, FORMAT, record.version, 1)?;
    Ok(record)
}

/// Open a sealed record object and check its body's MAC; the body (JSON) comes back.
pub fn open_body<'a>(
    object: &[u8],
    identities: impl Iterator<Item = &'a dyn age::Identity>,
    dedup: &[u8; 32],
    limit: u64,
) -> Result<Vec<u8>, String> {
    let text = crate::sealing::open(object, identities, limit).map_err(|e| e.to_string())?;
    let text = text.strip_suffix(b"\n").ok_or("no MAC line")?;
    let cut = text
        .iter()
        .rposition(|&b| b == b'\n')
        .ok_or("no MAC line")?;
    let (body, line) = (&text[..cut], &text[cut + 1..]);
    let line = std::str::from_utf8(line).map_err(|_| "bad MAC line")?;
    let given = line
        .strip_prefix(MAC_TAG)
        .map(str::trim)
        .ok_or("bad MAC line")?;
    if given != mac(dedup, body) {
        return Err(
            "the record's MAC does not verify: it was altered or not written by an identity holder"
                .into(),
        );
    }
    Ok(body.to_vec())
}

/// A record's object name: `drills/<drill-id>.<MAC of the sealed object>`. The MAC (under
/// a key derived from the dedup key) is checked against the bytes before anything is
/// decrypted, so a record planted by someone without the identity costs a reader one hash.
/// Records written before this naming (`drills/<drill-id>`) are still read.
pub fn object_name(drill_id: &str, sealed: &[u8], dedup: &[u8; 32]) -> String {
    named(DRILLS_PREFIX, drill_id, sealed, dedup)
}

/// A sealed record's object name under `prefix` (`drills/`, `audits/`):
/// `<prefix><id>.<MAC of the sealed bytes>`.
pub fn named(prefix: &str, id: &str, sealed: &[u8], dedup: &[u8; 32]) -> String {
    format!("{prefix}{id}.{}", name_mac(dedup, sealed))
}

/// The MAC a record's name carries for its sealed bytes.
pub fn name_mac(dedup: &[u8; 32], sealed: &[u8]) -> String {
    mac(dedup, sealed)
}

use crate::format::drill_record_name as parse_name;

/// Write a sealed record to every store; returns the stores that failed, with why.
pub async fn store_everywhere(
    stores: &[StoreRef],
    drill_id: &str,
    dedup: &[u8; 32],
    sealed: Bytes,
) -> Vec<(String, String)> {
    let name = object_name(drill_id, &sealed, dedup);
    let mut failed = Vec::new();
    for s in stores {
        if let Err(e) = store::put_create_checked(s.as_ref(), &name, sealed.clone()).await {
            failed.push((s.name().to_owned(), e.to_string()));
        }
    }
    failed
}

/// A new drill id (same shape as snapshot ids).
pub fn new_drill_id(t: std::time::SystemTime) -> String {
    format::new_snapshot_id(t)
}

/// A record that could not be read or authenticated.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BadRecord {
    /// Its object name.
    pub object: String,
    /// Why.
    pub reason: String,
}

/// Every drill record in any of `stores`, authenticated, oldest first.
pub async fn history(
    stores: &[StoreRef],
    identities: &crate::keys::Identities,
    dedup: &[u8; 32],
) -> crate::Result<(Vec<DrillRecord>, Vec<BadRecord>)> {
    let mut names: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    let mut listed = 0;
    for (i, s) in stores.iter().enumerate() {
        match s.list(DRILLS_PREFIX).await {
            Ok(objects) => {
                listed += 1;
                for o in objects {
                    names.entry(o.key).or_default().push(i);
                }
            }
            Err(e) => bad.push(BadRecord {
                object: DRILLS_PREFIX.into(),
                reason: e.to_string(),
            }),
        }
    }
    if listed == 0 && !stores.is_empty() {
        return Err(crate::Error::fatal(format!(
            "no store could list the drill history: {}",
            bad.iter()
                .map(|b| b.reason.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        )));
    }
    for (name, holders) in names {
        let mut reasons = Vec::new();
        let mut found = None;
        let Some((id, named_mac)) = parse_name(&name) else {
            bad.push(BadRecord {
                object: name,
                reason: "not a drill record's name".into(),
            });
            continue;
        };
        for i in holders {
            match stores[i].get(&name, RECORD_LIMIT).await {
                Ok(bytes) if named_mac.is_some_and(|m| m != mac(dedup, &bytes)) => reasons.push(
                    format!(
                        "{}: its bytes do not match the MAC in its name: altered, or not written by an identity holder (not decrypted)",
                        stores[i].name()
                    ),
                ),
                Ok(bytes) => match open(&bytes, identities.as_age(), dedup) {
                    Ok(r) if r.drill_id == id => {
                        found = Some(r);
                        break;
                    }
                    Ok(_) => reasons.push(format!(
                        "{}: record stored under another drill's name",
                        stores[i].name()
                    )),
                    Err(e) => reasons.push(format!("{}: {e}", stores[i].name())),
                },
                Err(e) => reasons.push(e.to_string()),
            }
        }
        match found {
            Some(r) => good.push(r),
            None => bad.push(BadRecord {
                object: name,
                reason: reasons.join("; "),
            }),
        }
    }
    good.sort_by(|a, b| a.started.cmp(&b.started));
    Ok((good, bad))
}
