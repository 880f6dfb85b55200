//! A restore's report for a terminal.

use std::fmt::Write as _;

use super::RestoreReport;
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
    out.extend(r.sources.repairs.iter().map(|rep| {
        format!(
            "warning: store '{}' could not serve {} ({:?}: {}); another replica did — heal it",
            rep.failure.store,
            rep.object,
            rep.failure.kind,
            escape(&rep.failure.reason)
        )
    }));
    out
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
