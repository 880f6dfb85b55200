//! The snapshot listing for a terminal, and as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::{Selection, Snapshot, SnapshotList, Untrusted};
use crate::error::exit;
use crate::format::commit::Summary;
use crate::text::escape;
use crate::units::binary_size as size;

/// One listed snapshot.
#[derive(Debug, Serialize)]
pub struct Row<'a> {
    /// The snapshot id.
    pub id: &'a str,
    /// Its time (UTC).
    pub time: &'a str,
    /// The host that made it.
    pub host: &'a str,
    /// The job that made it (`-` for a format-1 snapshot).
    pub job: &'a str,
    /// The keyed identity of what the job saved (format 2).
    pub source: Option<&'a str>,
    /// Its tags.
    pub tags: &'a [String],
    /// Counts and size.
    pub summary: &'a Summary,
    /// The stores that hold it.
    pub stores: &'a [String],
}

/// `snapshots --json`.
#[derive(Debug, Serialize)]
pub struct Listing<'a> {
    /// The zone of the table's times (JSON times are UTC).
    #[serde(skip)]
    pub zone: &'a crate::select::Zone,
    /// Trusted snapshots, oldest first.
    pub snapshots: Vec<Row<'a>>,
    /// Forged, damaged or foreign commits.
    pub untrusted: &'a [Untrusted],
}

impl SnapshotList {
    /// The listing of the snapshots `sel` admits, by data set when `by_set` (each data
    /// set's oldest first), else oldest first.
    pub fn listing<'a>(&'a self, sel: &'a Selection, by_set: bool) -> Listing<'a> {
        let all = self.candidates();
        let chosen: Vec<&Snapshot> = if by_set {
            self.data_sets(sel).into_iter().flatten().collect()
        } else {
            (0..all.len())
                .filter(|&i| Self::admits(sel, &all[i]))
                .map(|i| &self.trusted[i])
                .collect()
        };
        let snapshots = chosen
            .into_iter()
            .map(|s| Row {
                id: &s.commit.snapshot_id,
                time: &s.commit.time,
                host: &s.commit.host,
                job: s.commit.job.as_deref().unwrap_or("-"),
                source: s.commit.source.as_deref(),
                tags: &s.commit.tags,
                summary: &s.commit.summary,
                stores: &s.stores,
            })
            .collect();
        Listing {
            zone: &sel.zone,
            snapshots,
            untrusted: &self.untrusted,
        }
    }

    /// 13 when a commit is untrusted, 3 when a store could not be listed, else 0.
    pub fn exit_code(&self) -> i32 {
        if !self.untrusted.is_empty() {
            exit::INTEGRITY
        } else if !self.unlisted.is_empty() {
            exit::PARTIAL
        } else {
            exit::OK
        }
    }
}

/// The listing as a table (with a count unless `quiet`).
pub fn table(l: &Listing, quiet: bool) -> String {
    let mut out = format!(
        "{:<26} {:<20} {:<14} {:<12} {:>7} {:>10}  {:<16} TAGS\n",
        "ID",
        format!("TIME ({})", l.zone.name()),
        "HOST",
        "JOB",
        "FILES",
        "SIZE",
        "STORES"
    );
    for r in &l.snapshots {
        let local = crate::format::parse_time(r.time).map(|t| l.zone.show(t));
        let _ = writeln!(
            out,
            "{:<26} {:<20} {:<14} {:<12} {:>7} {:>10}  {:<16} {}",
            r.id,
            local.as_deref().and_then(|t| t.get(..19)).unwrap_or(r.time),
            escape(r.host),
            r.job,
            r.summary.files,
            size(r.summary.bytes),
            r.stores.join(","),
            escape(&r.tags.join(","))
        );
    }
    if !quiet {
        let _ = writeln!(out, "{} snapshots", l.snapshots.len());
    }
    out
}

/// Untrusted commits and stores that could not be listed, one line each (for stderr).
pub fn warnings(list: &SnapshotList) -> Vec<String> {
    let mut out: Vec<String> = list
        .untrusted
        .iter()
        .map(|u| {
            format!(
                "UNTRUSTED snapshot {} in {}: {} — it will never be restored",
                escape(&u.id),
                u.stores.join(","),
                escape(&u.reason)
            )
        })
        .collect();
    out.extend(list.unlisted.iter().map(|(store, why)| {
        format!(
            "warning: store '{store}' could not be listed; this list may lack what only it holds: {}",
            escape(why)
        )
    }));
    out
}

/// What `init` did, for a terminal: the stores, the write key, the signer and what a
/// responder needs to keep.
pub fn init_text(done: &super::open_for::Initialised, config: &std::path::Path) -> String {
    let mut t = format!("repository {}\n", done.repository_id);
    for o in &done.stores {
        let _ = writeln!(
            t,
            "  store {:<12} {:<20} {}",
            o.store,
            o.action,
            o.create_only.describe()
        );
    }
    let _ = writeln!(
        t,
        "write key: {} ({}) — the backup host needs it; it cannot decrypt",
        done.write_key.display(),
        if done.write_key_created {
            "created"
        } else {
            "existing"
        }
    );
    let _ = writeln!(t, "signer:    {}", done.signer);
    if done.pinned {
        let _ = writeln!(t, "           pinned in {}", config.display());
    } else {
        let _ = writeln!(
            t,
            "           add it under [repository] in {} as signer = \"{}\"",
            config.display(),
            done.signer
        );
    }
    t.push_str("recovery kit for a responder: the identity file, this config (store URLs and signer), and the stores' credentials\n");
    t
}
