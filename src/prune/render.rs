//! `forget` and `prune` reports for a terminal or a cron mail.

use std::fmt::Write as _;

use super::PruneReport;
use super::forget::ForgetReport;
use crate::text::escape;
use crate::units::{binary_size as size, count};

/// What `forget` keeps and forgets, and why (unless `quiet`), by group, times in `zone`;
/// then its verdict.
pub fn forget_text(r: &ForgetReport, quiet: bool, zone: &crate::select::Zone) -> String {
    let mut out = String::new();
    if !quiet {
        let _ = writeln!(out, "policy: {} (times in {})", r.policy, zone.name());
        let mut group = None;
        for s in &r.snapshots {
            if group != Some(&s.group) {
                let _ = writeln!(out, "group {}:", escape(&s.group));
                group = Some(&s.group);
            }
            let local = crate::format::parse_time(&s.time).map(|t| zone.show(t));
            let _ = writeln!(
                out,
                "  {} {}  {:<20} {}",
                if s.keep { "keep  " } else { "forget" },
                s.id,
                local
                    .as_deref()
                    .and_then(|t| t.get(..19))
                    .unwrap_or(&s.time),
                s.reasons.join(", ")
            );
        }
    }
    let gone = r.forgotten().count();
    let _ = writeln!(
        out,
        "forget {}: {} of {} snapshots {}{}",
        if r.dry_run { "dry run" } else { "done" },
        gone,
        r.snapshots.len(),
        if r.dry_run {
            "would be forgotten"
        } else {
            "forgotten"
        },
        if gone > 0 && !r.dry_run {
            "; run `snapdrill prune` to free their space"
        } else {
            ""
        }
    );
    out
}

/// `forget`'s errors, one line each (for stderr).
pub fn forget_warnings(r: &ForgetReport) -> Vec<String> {
    r.errors.iter().map(|e| escape(e).into_owned()).collect()
}

/// What `prune` found and did wrong or odd, one line each (for stderr).
pub fn prune_warnings(r: &PruneReport) -> Vec<String> {
    let mut out: Vec<String> = r
        .broken_leases
        .iter()
        .chain(&r.refused_tombstones)
        .map(|w| format!("warning: {}", escape(w)))
        .collect();
    for s in &r.stores {
        out.extend(
            s.warnings
                .iter()
                .map(|w| format!("warning: store '{}': {}", s.store, escape(w))),
        );
    }
    out
}

/// One line per store, then the verdict.
pub fn prune_text(r: &PruneReport) -> String {
    let mut out = String::new();
    let would = if r.dry_run { "would be " } else { "" };
    for s in &r.stores {
        let mut line = format!(
            "  store {:<12} {} {would}freed ({} {would}deleted, {} {would}set aside",
            s.store,
            size(s.bytes_freed),
            count(s.deleted, "object"),
            count(s.set_aside, "chunk"),
        );
        if s.brought_back > 0 {
            let _ = write!(line, ", {} brought back", count(s.brought_back, "fossil"));
        }
        let _ = write!(line, "); {} listed", count(s.chunks, "chunk"));
        if s.kept_young > 0 {
            let _ = write!(
                line,
                "; {} unreferenced but younger than the grace period",
                s.kept_young
            );
        }
        if s.waiting > 0 {
            let _ = write!(
                line,
                "; {} set aside wait for {} that started before (the next prune deletes them)",
                count(s.waiting, "fossil"),
                count(s.backups_running, "running backup"),
            );
        }
        let _ = writeln!(out, "{line}");
    }
    let freed: u64 = r.stores.iter().map(|s| s.bytes_freed).sum();
    let _ = writeln!(
        out,
        "prune {}: {} {}",
        if r.dry_run { "dry run" } else { "done" },
        size(freed),
        if r.dry_run { "would be freed" } else { "freed" }
    );
    out
}
