//! The local, append-only ledger of the snapshots each store held
//! (`<state_dir>/ledger/<repository-id>.jsonl`, one JSON object a line).
//!
//! Backups append each commit they make; every audit appends what it sees. A store that no
//! longer holds a snapshot it once held — without a signed tombstone saying it was forgotten
//! — was rolled back (restored from an old copy of its bucket) or had snapshots deleted by
//! someone holding only the store's credentials; a store serving another commit under the
//! same id was tampered with. Both are integrity alerts. The store cannot fake what this
//! host remembers.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::survey::Surveyed;
use super::{Finding, FindingKind, Findings, LedgerSummary, listed_snapshots};
use crate::error::{Error, Result};
use crate::format::commit::ObjectRef;
use crate::format::tombstone::Tombstone;
use crate::format::{self, limits};
use crate::repository::Repository;

/// What a ledger line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The store held this commit.
    Committed,
    /// The snapshot left the store with a valid signed tombstone.
    Forgotten,
    /// `rekey` re-signed the commit: the same snapshot, its objects encrypted to a newer
    /// read key (the commit names a manifest of a higher key generation).
    Rekeyed,
}

/// One line of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The store.
    pub store: String,
    /// The snapshot.
    pub snapshot_id: String,
    /// The commit object: name, size, SHA-256.
    pub commit: ObjectRef,
    /// When this host first saw it (UTC).
    pub first_seen: String,
    /// What happened.
    #[serde(default = "committed")]
    pub event: Event,
    /// Who wrote the line: `backup` or `audit`.
    #[serde(default)]
    pub source: String,
    /// The key generation of the commit's manifest name (0 before any rekey).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub key_generation: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn committed() -> Event {
    Event::Committed
}

/// Where the ledger of a repository lives.
pub fn ledger_path(state_dir: &Path, repository_id: &str) -> PathBuf {
    state_dir
        .join("ledger")
        .join(format!("{repository_id}.jsonl"))
}

/// Append that `store` now holds `commit` for `snapshot_id` (called by backup after each
/// store's commit).
pub fn record_commit(
    state_dir: &Path,
    repository_id: &str,
    store: &str,
    snapshot_id: &str,
    commit: &ObjectRef,
) -> Result<()> {
    let path = ledger_path(state_dir, repository_id);
    let entry = LedgerEntry {
        store: store.to_owned(),
        snapshot_id: snapshot_id.to_owned(),
        commit: commit.clone(),
        first_seen: format::format_time(SystemTime::now()),
        event: Event::Committed,
        source: "backup".into(),
        key_generation: 0,
    };
    append(&path, &[entry]).map_err(|e| Error::io("appending to the ledger", &path, e))
}

/// After a backup: append the new commit of every store in `committed` (the commit is
/// byte-identical in every store, so it is read back once, from the first of them).
pub async fn record_backup(
    state_dir: &Path,
    repo: &Repository,
    snapshot_id: &str,
    committed: &[&str],
) -> Result<()> {
    let name = format::commit_object(snapshot_id);
    let Some(store) = repo.stores.iter().find(|s| committed.contains(&s.name())) else {
        return Ok(());
    };
    let bytes = store.get(&name, limits::COMMIT_OBJECT).await?;
    let commit = ObjectRef::of(&name, &bytes);
    for s in committed {
        record_commit(
            state_dir,
            &repo.config.repository_id,
            s,
            snapshot_id,
            &commit,
        )?;
    }
    Ok(())
}

/// Append lines, after a newline if a crash left the last line unfinished.
fn append(path: &Path, entries: &[LedgerEntry]) -> std::io::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)?;
    let len = file.metadata()?.len();
    let mut text = String::new();
    let mut last = [0u8; 1];
    if len > 0 && file.read_at(&mut last, len - 1).is_ok() && last[0] != b'\n' {
        text.push('\n');
    }
    for e in entries {
        text.push_str(&serde_json::to_string(e).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    file.write_all(text.as_bytes())?;
    file.sync_data()
}

/// The ledger as read, with what was odd about it.
struct Loaded {
    entries: Vec<LedgerEntry>,
    notes: Vec<String>,
}

fn load(path: &Path) -> Loaded {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Loaded {
                entries: Vec::new(),
                notes: vec![format!(
                    "no ledger yet: starting {}; later audits compare with it",
                    path.display()
                )],
            };
        }
        Err(e) => return set_aside(path, &e.to_string()),
    };
    let (mut entries, mut garbled) = (Vec::new(), 0);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<LedgerEntry>(line) {
            Ok(e) => entries.push(e),
            Err(_) => garbled += 1,
        }
    }
    let mut notes = Vec::new();
    if garbled > 0 && entries.is_empty() {
        return set_aside(path, &format!("{garbled} garbled lines"));
    } else if garbled > 0 {
        notes.push(format!(
            "{garbled} garbled lines of the ledger {} were ignored",
            path.display()
        ));
    }
    Loaded { entries, notes }
}

/// Move an unusable ledger aside and start a new one.
fn set_aside(path: &Path, why: &str) -> Loaded {
    let aside = path.with_extension(format!(
        "jsonl.garbled-{}",
        super::coverage::unix_secs(SystemTime::now())
    ));
    let moved = std::fs::rename(path, &aside)
        .map(|()| format!("moved to {}", aside.display()))
        .unwrap_or_else(|e| format!("could not move it aside: {e}"));
    Loaded {
        entries: Vec::new(),
        notes: vec![format!(
            "the ledger {} is unusable ({why}); {moved}; starting a new one",
            path.display()
        )],
    }
}

/// What the ledger says a store held.
struct Held<'a> {
    commit: &'a ObjectRef,
    since: &'a str,
    forgotten: bool,
    /// The key generation of the commit held (see [`Event::Rekeyed`]).
    generation: u64,
}

fn fold(entries: &[LedgerEntry]) -> BTreeMap<(&str, &str), Held<'_>> {
    let mut held: BTreeMap<(&str, &str), Held> = BTreeMap::new();
    for e in entries {
        let h = held
            .entry((e.store.as_str(), e.snapshot_id.as_str()))
            .or_insert(Held {
                commit: &e.commit,
                since: &e.first_seen,
                forgotten: false,
                generation: e.key_generation,
            });
        h.forgotten |= e.event == Event::Forgotten;
        if e.event == Event::Rekeyed && e.key_generation > h.generation {
            h.commit = &e.commit;
            h.generation = e.key_generation;
        }
    }
    held
}

/// What one store holds now, for the ledger.
pub(super) struct Seen<'a> {
    store: &'a str,
    commits: BTreeMap<&'a str, &'a ObjectRef>,
    /// The key generation of each commit's manifest name.
    generations: BTreeMap<&'a str, u64>,
    listed: BTreeSet<&'a str>,
}

impl<'a> Seen<'a> {
    pub(super) fn of(s: &'a Surveyed) -> Self {
        Seen {
            store: s.store.name(),
            commits: s
                .commits
                .iter()
                .map(|(id, sc)| (id.as_str(), &sc.object))
                .collect(),
            generations: s
                .commits
                .iter()
                .map(|(id, sc)| {
                    (
                        id.as_str(),
                        format::manifest_generation(&sc.commit.manifest.name),
                    )
                })
                .collect(),
            listed: listed_snapshots(s),
        }
    }
}

fn entry(store: &str, id: &str, commit: &ObjectRef, event: Event, now: SystemTime) -> LedgerEntry {
    LedgerEntry {
        store: store.to_owned(),
        snapshot_id: id.to_owned(),
        commit: commit.clone(),
        first_seen: format::format_time(now),
        event,
        source: "audit".into(),
        key_generation: 0,
    }
}

fn day(since: &str) -> String {
    format!("{} UTC", since.get(..19).unwrap_or(since).replace('T', " "))
}

/// Compare each store with what the ledger says it held, then append what is new.
pub(super) fn audit(
    state_dir: &Path,
    repository_id: &str,
    seen: &[Seen],
    forgotten: &BTreeMap<String, Tombstone>,
    now: SystemTime,
    key_generation: u64,
) -> (LedgerSummary, Findings) {
    let path = ledger_path(state_dir, repository_id);
    let loaded = load(&path);
    let held = fold(&loaded.entries);
    let mut out = Findings::default();
    let mut new = Vec::new();
    for s in seen {
        for ((_, id), h) in held
            .iter()
            .filter(|((st, _), h)| *st == s.store && !h.forgotten)
        {
            if let Some(e) = check(s, id, h, forgotten, &mut out, (now, key_generation)) {
                new.push(e);
            }
        }
        for (id, commit) in &s.commits {
            if !held.contains_key(&(s.store, *id)) {
                let mut e = entry(s.store, id, commit, Event::Committed, now);
                e.key_generation = s.generations.get(id).copied().unwrap_or(0);
                new.push(e);
            }
        }
    }
    let mut notes = loaded.notes;
    if let Err(e) = append(&path, &new) {
        notes.push(format!(
            "could not append to the ledger {}: {e}",
            path.display()
        ));
    }
    let summary = LedgerSummary {
        path: path.display().to_string(),
        entries: loaded.entries.len() as u64,
        appended: new.len() as u64,
        notes,
    };
    (summary, out)
}

/// One snapshot the ledger says `s` held; returns a `forgotten` line to append when a valid
/// tombstone explains its absence.
fn check(
    s: &Seen,
    id: &str,
    h: &Held,
    forgotten: &BTreeMap<String, Tombstone>,
    out: &mut Findings,
    (now, key_generation): (SystemTime, u64),
) -> Option<LedgerEntry> {
    let name = format::commit_object(id);
    let tombstone = forgotten.get(id);
    let served = s.generations.get(id).copied().unwrap_or(0);
    let detail = match (s.commits.get(id), tombstone) {
        (Some(c), _) if c.sha256 == h.commit.sha256 => return None,
        // Re-signed by `rekey` onto a newer read key (a verified commit of a later key
        // generation, not beyond the repository's): the same snapshot. An older commit
        // replayed over it is not (its generation is lower).
        (Some(c), _) if served > h.generation && served <= key_generation => {
            let mut e = entry(s.store, id, c, Event::Rekeyed, now);
            e.key_generation = served;
            return Some(e);
        }
        (Some(c), _) => (
            FindingKind::CommitReplaced,
            format!(
                "store {} serves another commit for snapshot {id} ({} bytes) than the one it held on {} ({} bytes, SHA-256 {})",
                s.store,
                c.size,
                day(h.since),
                h.commit.size,
                h.commit.sha256
            ),
        ),
        (None, Some(t)) if t.commit.sha256 == h.commit.sha256 => {
            return Some(entry(s.store, id, h.commit, Event::Forgotten, now));
        }
        // There, but it does not verify: reported as a bad commit already.
        (None, _) if s.listed.contains(id) => return None,
        (None, t) => (
            FindingKind::RolledBack,
            format!(
                "store {} no longer holds snapshot {id} that it held on {}: rolled back or deleted{}",
                s.store,
                day(h.since),
                if t.is_some() {
                    " (its tombstone names another commit)"
                } else {
                    ""
                }
            ),
        ),
    };
    out.problems
        .push(Finding::new(s.store, &name, detail.0, detail.1));
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_then_read_back_even_after_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let c = ObjectRef {
            name: "snapshots/20261128T032718Z-9f2c1a7b".into(),
            size: 10,
            sha256: "11".repeat(32),
        };
        let path = ledger_path(dir.path(), "r");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{\"store\":\"a\",\"snap").unwrap();
        record_commit(dir.path(), "r", "a", "20261128T032718Z-9f2c1a7b", &c).unwrap();
        let loaded = load(&path);
        assert_eq!(loaded.entries.len(), 1);
        assert_eq!(loaded.entries[0].commit, c);
        assert!(loaded.notes[0].contains("1 garbled"), "{:?}", loaded.notes);
    }
}
