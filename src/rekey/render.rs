//! The text of a rekey report.

use std::fmt::Write as _;

use super::RekeyReport;
use crate::units::binary_size as size;

/// One line per store, then the result line.
pub fn text(r: &RekeyReport) -> String {
    let mut out = String::new();
    for s in &r.stores {
        let _ = writeln!(
            out,
            "  store {:<12} {} objects re-encrypted ({}), {} already on the new key, {} commits re-signed",
            s.store,
            s.rewritten,
            size(s.bytes),
            s.already,
            s.commits
        );
        for e in &s.errors {
            let _ = writeln!(out, "  store {:<12} NOT MOVED: {e}", s.store);
        }
    }
    let _ = match r.retired_at {
        Some(g) => writeln!(
            out,
            "rekey complete: every object is encrypted to the read key {} (key generation {g}); the older read keys are retired",
            r.read_key
        ),
        None => writeln!(
            out,
            "rekey PARTIAL: some objects were not moved (above); the older read keys stay until `snapdrill rekey` runs again and finishes"
        ),
    };
    out
}
