//! Evidence packs: a folder an auditor can take away — the HTML (and PDF) report, the
//! Markdown summary, every drill and audit record of a window as JSON, and `SHA256SUMS` —
//! and the check that a pack that travelled by e-mail still says what the repository's
//! authenticated records say.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::audit::record::AuditRecord;
use crate::config::Config;
use crate::drill::DrillRecord;
use crate::drill::room::Room;
use crate::error::{Error, Result};
use crate::keys::Identities;
use crate::report::{self, ReportOptions};

/// The checksum file of a pack.
pub const SUMS: &str = "SHA256SUMS";
/// The folders of the records in a pack.
const DRILLS: &str = "drills";
const AUDITS: &str = "audits";

/// What a pack holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Pack {
    /// Every file written, relative to the pack, `SHA256SUMS` last.
    pub files: Vec<String>,
    /// Drill records in the window.
    pub drills: usize,
    /// Audit records in the window.
    pub audits: usize,
    /// Why the PDF is missing, when it is.
    pub pdf_skipped: Option<String>,
    /// Records that did not authenticate (left out, named).
    pub untrusted: Vec<String>,
}

/// The authenticated drill and audit records of the repository; the copies that are not,
/// as warnings.
async fn records(
    config: &Config,
    identities: Arc<Identities>,
) -> Result<(Vec<DrillRecord>, Vec<AuditRecord>, Vec<String>)> {
    let room = Room::open(config, identities.clone())?;
    let (drills, bad_drills) = room.history().await?;
    let (audits, bad_audits) = crate::audit::record::history(config, identities).await?;
    let untrusted = bad_drills
        .iter()
        .chain(&bad_audits)
        .map(|b| format!("{} not trusted: {}", b.object, b.reason))
        .collect();
    Ok((drills, audits, untrusted))
}

fn since(t: &str, cutoff: SystemTime) -> bool {
    crate::format::parse_time(t).is_some_and(|t| t >= cutoff)
}

/// Write the pack of the records started within `window` before `opts.now` into `out`
/// (which must be empty or absent).
pub async fn write(
    config: &Config,
    identities: Arc<Identities>,
    window: Duration,
    out: &Path,
    mut opts: ReportOptions,
) -> Result<Pack> {
    if std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Error::Usage(format!(
            "{} is not empty: give a new folder for the evidence pack",
            out.display()
        )));
    }
    let (drills, audits, untrusted) = records(config, identities).await?;
    let cutoff = opts
        .now
        .checked_sub(window)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let drills: Vec<DrillRecord> = drills
        .into_iter()
        .filter(|r| since(&r.started, cutoff))
        .collect();
    opts.audits = audits
        .into_iter()
        .filter(|a| since(&a.report.started, cutoff))
        .collect();
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let html = report::html(&drills, &opts);
    files.insert("report.md".into(), report::markdown(&drills, &opts).into());
    for r in &drills {
        files.insert(format!("{DRILLS}/{}.json", r.drill_id), json(r)?);
    }
    for a in &opts.audits {
        files.insert(format!("{AUDITS}/{}.json", a.audit_id), json(a)?);
    }
    create(out, "")?;
    let pdf_skipped = match report::pdf::print(&html, &out.join("report.pdf")) {
        Ok(()) => {
            let pdf = out.join("report.pdf");
            files.insert(
                "report.pdf".into(),
                std::fs::read(&pdf).map_err(|e| Error::io("reading", &pdf, e))?,
            );
            None
        }
        Err(e) => Some(e.to_string()),
    };
    files.insert("report.html".into(), html.into());
    let mut sums = String::new();
    for (name, bytes) in &files {
        if name != "report.pdf" {
            create(out, name)?;
            put(&out.join(name), bytes)?;
        }
        let _ = writeln!(sums, "{}  {name}", hex::encode(Sha256::digest(bytes)));
    }
    put(&out.join(SUMS), sums.as_bytes())?;
    let mut names: Vec<String> = files.into_keys().collect();
    names.push(SUMS.into());
    Ok(Pack {
        files: names,
        drills: drills.len(),
        audits: opts.audits.len(),
        pdf_skipped,
        untrusted,
    })
}

fn json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut text = serde_json::to_vec_pretty(value).map_err(|e| Error::fatal(e.to_string()))?;
    text.push(b'\n');
    Ok(text)
}

/// The folder of `name` inside `out`, created.
fn create(out: &Path, name: &str) -> Result<()> {
    let dir = out.join(name);
    let dir = if name.is_empty() {
        dir
    } else {
        dir.parent().map_or(dir.clone(), Path::to_path_buf)
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", dir, e))
}

fn put(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::localfs::atomic::write(path, bytes, crate::localfs::atomic::NewMode::Shared, false)
        .map_err(|e| Error::io("writing", path, e))
}

/// Check the pack in `dir`: every file against `SHA256SUMS` (and no file left out), and
/// every drill and audit record against the repository's authenticated copy. Returns one
/// line per problem, each naming the file.
pub async fn verify(
    config: &Config,
    identities: Arc<Identities>,
    dir: &Path,
) -> Result<(usize, Vec<String>)> {
    let mut problems = check_sums(dir)?;
    let (drills, audits, _) = records(config, identities).await?;
    let mut checked = 0;
    for (folder, known) in [
        (
            DRILLS,
            drills
                .iter()
                .map(|r| Ok((r.drill_id.clone(), serde_json::to_value(r)?)))
                .collect::<serde_json::Result<BTreeMap<_, _>>>(),
        ),
        (
            AUDITS,
            audits
                .iter()
                .map(|a| Ok((a.audit_id.clone(), serde_json::to_value(a)?)))
                .collect::<serde_json::Result<BTreeMap<_, _>>>(),
        ),
    ] {
        let known = known.map_err(|e| Error::fatal(e.to_string()))?;
        for path in listed(&dir.join(folder)) {
            checked += 1;
            problems.extend(check_record(dir, &path, &known));
        }
    }
    Ok((checked, problems))
}

/// The `.json` files of a pack folder, sorted.
fn listed(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.retain(|p| p.extension().is_some_and(|e| e == "json"));
    out.sort();
    out
}

/// A record file against the repository's authenticated record of the same id.
fn check_record(
    dir: &Path,
    path: &Path,
    known: &BTreeMap<String, serde_json::Value>,
) -> Option<String> {
    let shown = path.strip_prefix(dir).unwrap_or(path).display().to_string();
    let id = path.file_stem()?.to_string_lossy().into_owned();
    let parsed: serde_json::Value = match std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => return Some(format!("{shown}: unreadable: {e}")),
    };
    match known.get(&id) {
        None => Some(format!(
            "{shown}: the repository holds no authenticated record {id}"
        )),
        Some(v) if *v != parsed => Some(format!(
            "{shown}: differs from the repository's authenticated record {id}: edited after it was packed"
        )),
        Some(_) => None,
    }
}

/// Every file against `SHA256SUMS`; files the sums do not list are problems too.
fn check_sums(dir: &Path) -> Result<Vec<String>> {
    let sums_path = dir.join(SUMS);
    let sums =
        std::fs::read_to_string(&sums_path).map_err(|e| Error::io("reading", &sums_path, e))?;
    let mut problems = Vec::new();
    let mut listed = std::collections::BTreeSet::new();
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let Some((hash, name)) = line.split_once("  ") else {
            problems.push(format!("{SUMS}: unreadable line '{line}'"));
            continue;
        };
        listed.insert(name.to_owned());
        match std::fs::read(dir.join(name)) {
            Ok(b) if hex::encode(Sha256::digest(&b)) == hash => {}
            Ok(_) => problems.push(format!("{name}: its SHA-256 differs from {SUMS}")),
            Err(e) => problems.push(format!("{name}: listed in {SUMS} but cannot be read: {e}")),
        }
    }
    for sub in ["", DRILLS, AUDITS] {
        for e in std::fs::read_dir(dir.join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = if sub.is_empty() {
                e.file_name().to_string_lossy().into_owned()
            } else {
                format!("{sub}/{}", e.file_name().to_string_lossy())
            };
            let is_file = e.file_type().is_ok_and(|t| t.is_file());
            if is_file && name != SUMS && !listed.contains(&name) {
                problems.push(format!("{name}: not listed in {SUMS}"));
            }
        }
    }
    Ok(problems)
}
