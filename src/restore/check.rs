//! The check of a restored file's content against its signed entry, as the bytes stream
//! by: size and SHA-256 (a mismatch fails the file), and for files whose entry records a
//! line count, the lines (a difference is reported, see [`StageClock::line_mismatches`]).
//! Counting here, on the bytes already being hashed, spares a drill a second read of every
//! export from disk.

use sha2::{Digest, Sha256};

use super::clock::{Stage, StageClock};
use crate::format::manifest::{Entry, LineCounter};

/// The running check of one file.
#[derive(Default)]
pub struct Check {
    hasher: Sha256,
    written: u64,
    lines: Option<LineCounter>,
}

impl Check {
    /// The check of `entry`'s content (its lines counted when it records them).
    pub fn new(entry: &Entry) -> Self {
        Check {
            lines: entry.lines.map(|_| LineCounter::default()),
            ..Check::default()
        }
    }

    /// The next bytes of the file (hashing and counting count as the verify stage).
    pub fn update(&mut self, data: &[u8], clock: &StageClock) {
        clock.time(Stage::Verify, || {
            self.hasher.update(data);
            if let Some(l) = self.lines.as_mut() {
                l.update(data);
            }
        });
        self.written += data.len() as u64;
    }

    /// Bytes so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Does the content match the signed manifest's size and SHA-256? If not, what it is
    /// instead, for the caller's integrity error. The line count goes to `clock`.
    pub fn verdict(self, entry: &Entry, clock: &StageClock) -> Result<(), String> {
        let digest = hex::encode(self.hasher.finalize());
        if Some(self.written) != entry.size || Some(&digest) != entry.sha256.as_ref() {
            return Err(format!(
                "content ({} bytes, SHA-256 {digest}) differs from the signed manifest",
                self.written
            ));
        }
        if let (Some(want), Some(got)) = (entry.lines, self.lines) {
            clock.lines_counted(entry, got.lines(), want);
        }
        Ok(())
    }
}
