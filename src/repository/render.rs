//! The snapshot listing for a terminal, and as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use super::{SnapshotList, Untrusted};
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
    /// Trusted snapshots, oldest first.
    pub snapshots: Vec<Row<'a>>,
    /// Forged, damaged or foreign commits.
    pub untrusted: &'a [Untrusted],
}

impl SnapshotList {
    /// The listing, only snapshots tagged `tag` when given.
    pub fn listing(&self, tag: Option<&str>) -> Listing<'_> {
        let snapshots = self
            .trusted
            .iter()
            .filter(|s| tag.is_none_or(|t| s.commit.tags.iter().any(|x| x == t)))
            .map(|s| Row {
                id: &s.commit.snapshot_id,
                time: &s.commit.time,
                host: &s.commit.host,
                tags: &s.commit.tags,
                summary: &s.commit.summary,
                stores: &s.stores,
            })
            .collect();
        Listing {
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
        "{:<26} {:<20} {:<14} {:>7} {:>10}  {:<16} TAGS\n",
        "ID", "TIME (UTC)", "HOST", "FILES", "SIZE", "STORES"
    );
    for r in &l.snapshots {
        let _ = writeln!(
            out,
            "{:<26} {:<20} {:<14} {:>7} {:>10}  {:<16} {}",
            r.id,
            r.time.get(..19).unwrap_or(r.time).replace('T', " "),
            escape(r.host),
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
