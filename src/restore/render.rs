//! A restore's report for a terminal.

use std::fmt::Write as _;

use super::{RestoreReport, Sources};
use crate::text::escape;
use crate::units::binary_size as size;

/// Replicas that need healing and temp files swept, one line each (for stderr).
pub fn warnings(r: &RestoreReport) -> Vec<String> {
    let mut out = Vec::new();
    if r.temps_swept > 0 {
        out.push(format!(
            "note: removed {} temporary file(s) that an interrupted restore had left in {}",
            r.temps_swept,
            escape(&r.target)
        ));
    }
    out.extend(repairs(&r.sources));
    out.extend(r.line_mismatches.iter().map(|m| {
        format!(
            "warning: {} (its content matches the SHA-256 the backup recorded; `restore-drill` treats this as an integrity failure)",
            escape(m)
        )
    }));
    out
}

/// Objects a store could not serve intact (another replica did), one warning each.
pub fn repairs(sources: &Sources) -> Vec<String> {
    sources
        .repairs
        .iter()
        .map(|rep| {
            format!(
                "warning: store '{}' could not serve {} ({:?}: {}); another replica did — to heal it: {}",
                rep.failure.store,
                rep.object,
                rep.failure.kind,
                escape(&rep.failure.reason),
                rep.failure.kind.heal_hint()
            )
        })
        .collect()
}

/// A progress line (`label`: `restore`, `dump`): bytes and files done of those planned,
/// and the time left at the rate so far (`elapsed_secs` since the start).
pub fn progress(label: &str, clock: &super::StageClock, elapsed_secs: f64) -> String {
    let (bytes, files) = (clock.bytes(), clock.files());
    let Some(plan) = clock.planned() else {
        return format!("{label}: planning");
    };
    let mut line = format!(
        "{label}: {} of {}, {} of {} files",
        size(bytes),
        size(plan.bytes),
        files,
        plan.files
    );
    if bytes > 0 && elapsed_secs >= 1.0 {
        let rate = bytes as f64 / elapsed_secs;
        let left = plan.bytes.saturating_sub(bytes) as f64 / rate;
        let _ = write!(
            line,
            ", {}/s, ETA {}",
            size(rate as u64),
            crate::units::duration(left)
        );
    }
    line
}

/// Where the objects came from (unless `quiet`), then the verdict.
pub fn text(r: &RestoreReport, quiet: bool) -> String {
    let mut out = String::new();
    if !quiet {
        let served: Vec<String> = r
            .sources
            .served
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        let _ = writeln!(
            out,
            "  objects    {} chunks fetched (served by {})",
            r.chunks_fetched,
            served.join(", ")
        );
        let _ = writeln!(out, "  duration   {:.2} s", r.duration_secs);
    }
    let _ = writeln!(
        out,
        "restored and verified: snapshot {} → {} ({} files, {} dirs, {} symlinks, {}; every file's SHA-256 matches the signed manifest)",
        r.snapshot_id,
        escape(&r.target),
        r.files,
        r.dirs,
        r.symlinks,
        size(r.bytes)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restore::{Planned, StageClock};
    use std::sync::atomic::Ordering;

    #[test]
    fn progress_shows_bytes_files_and_the_time_left() {
        let clock = StageClock::default();
        assert_eq!(progress("restore", &clock, 0.0), "restore: planning");
        clock.set_planned(Planned {
            files: 4,
            bytes: 4 << 20,
        });
        assert_eq!(
            progress("restore", &clock, 0.5),
            "restore: 0 B of 4.0 MiB, 0 of 4 files"
        );
        clock.bytes.fetch_add(1 << 20, Ordering::Relaxed);
        clock.count_file();
        assert_eq!(
            progress("restore", &clock, 2.0),
            "restore: 1.0 MiB of 4.0 MiB, 1 of 4 files, 512.0 KiB/s, ETA 6.0 s"
        );
    }
}
