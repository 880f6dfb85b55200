//! A backup's report for a terminal or a cron mail.

use std::fmt::Write as _;

use super::BackupReport;
use crate::error::exit;
use crate::text::escape;
use crate::units::binary_size as size;

/// What needs a look, one line each (for stderr): skipped and changed files, warnings
/// (the geographic spread, a cache not written), stores that did not commit, and (unless
/// `quiet`) what was left out.
pub fn warnings(r: &BackupReport, quiet: bool) -> Vec<String> {
    let mut out: Vec<String> = r
        .skipped
        .iter()
        .map(|s| {
            format!(
                "warning: skipped {}: {}",
                escape(&s.path),
                escape(&s.reason)
            )
        })
        .collect();
    out.extend(r.shrunk.iter().map(|s| format!("warning: {}", escape(s))));
    out.extend(r.changed.iter().map(|c| {
        format!(
            "warning: {} changed while it was read (twice): stored as read, flagged in the snapshot",
            escape(c)
        )
    }));
    out.extend(r.warnings.iter().map(|w| format!("warning: {}", escape(w))));
    out.extend(r.stores.iter().filter(|s| !s.committed).map(|s| {
        format!(
            "store '{}' did not commit: {}",
            s.name,
            escape(s.error.as_deref().unwrap_or("unknown"))
        )
    }));
    if !quiet {
        out.extend(
            r.ignored
                .iter()
                .map(|i| format!("note: {} left out: {}", escape(&i.path), escape(&i.reason))),
        );
    }
    out
}

/// The summary (unless `quiet`) and the verdict line (for stdout).
pub fn text(r: &BackupReport, quiet: bool) -> String {
    let mut out = String::new();
    if !quiet {
        let _ = writeln!(
            out,
            "snapshot {}  ({}, host {}, job {})",
            r.snapshot_id,
            r.time,
            escape(&r.host),
            r.job
        );
        let _ = writeln!(
            out,
            "  files      {} files, {} dirs, {} symlinks, {}",
            r.files,
            r.dirs,
            r.symlinks,
            size(r.bytes)
        );
        let _ = writeln!(
            out,
            "  read       {} ({} unchanged, not read)",
            size(r.bytes_read),
            size(r.bytes_unchanged)
        );
        let _ = writeln!(
            out,
            "  new data   {} in {} new of {} chunks, {} stored after compression and encryption",
            size(r.data_added),
            r.chunks_new,
            r.chunks,
            size(r.data_stored)
        );
        let _ = match r.dedup_ratio {
            Some(d) => writeln!(out, "  dedup      {d:.2}x"),
            None => writeln!(out, "  dedup      everything was already stored"),
        };
        for s in &r.stores {
            let state = if s.committed {
                "committed"
            } else {
                "NOT committed"
            };
            let _ = writeln!(
                out,
                "  store {:<12} {state}, {} objects ({}) uploaded",
                s.name,
                s.uploaded_objects,
                size(s.uploaded_bytes)
            );
        }
        let _ = writeln!(out, "  duration   {:.2} s", r.duration_secs);
    }
    let verdict = match r.exit_code() {
        exit::OK => "complete",
        exit::PARTIAL => "PARTIAL",
        _ => "FAILED",
    };
    let _ = write!(
        out,
        "backup {verdict}: job {}, snapshot {} committed to {} of {} stores ({} required)",
        r.job,
        r.snapshot_id,
        r.committed(),
        r.stores.len(),
        r.required
    );
    // Below `require` the snapshot still exists where it was committed: say so, and how
    // the others get it.
    if r.committed() < r.required && r.committed() > 0 {
        out.push_str(
            "; it is listed and restorable from those, and `snapdrill sync` copies it to the others once they are back",
        );
    }
    out.push('\n');
    out
}
