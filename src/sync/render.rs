//! A sync's report for a terminal or a cron mail.

use std::fmt::Write as _;

use super::SyncReport;
use crate::text::escape;
use crate::units::binary_size as size;

/// What could not be healed, one line per object (for stderr).
pub fn warnings(r: &SyncReport) -> Vec<String> {
    r.stores
        .iter()
        .flat_map(|s| {
            s.errors
                .iter()
                .map(move |e| format!("store '{}': {}", s.store, escape(e)))
        })
        .collect()
}

/// One line per store, then the verdict.
pub fn text(r: &SyncReport) -> String {
    let verb = if r.dry_run { "would copy" } else { "copied" };
    let mut out = String::new();
    for s in &r.stores {
        if !s.repaired.is_empty() {
            let _ = writeln!(
                out,
                "  store {:<12} {} damaged {} replaced with verified copies: {}",
                s.store,
                s.repaired.len(),
                if s.repaired.len() == 1 {
                    "copy"
                } else {
                    "copies"
                },
                s.repaired.join(", ")
            );
        }
        if let Some(g) = s.keys_updated {
            let _ = writeln!(out, "  store {:<12} {verb} key generation {g}", s.store);
        }
        if s.objects_copied == 0 && s.errors.is_empty() {
            let _ = writeln!(out, "  store {:<12} up to date", s.store);
        } else {
            let _ = writeln!(
                out,
                "  store {:<12} {verb} {} objects ({}), {} drill records, {} audit records, {} snapshots added{}",
                s.store,
                s.objects_copied,
                size(s.bytes_copied),
                s.drill_records_added,
                s.audit_records_added,
                s.snapshots_added.len(),
                if s.snapshots_added.is_empty() {
                    String::new()
                } else {
                    format!(": {}", s.snapshots_added.join(", "))
                }
            );
        }
    }
    let healed = r.stores.iter().all(|s| s.errors.is_empty());
    let _ = writeln!(
        out,
        "sync {}: {} stores",
        match (r.dry_run, healed) {
            (true, _) => "dry run",
            (false, true) => "complete",
            (false, false) => "PARTIAL",
        },
        r.stores.len()
    );
    out
}
