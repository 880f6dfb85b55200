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

    /// [`Check::update`], hashing here while another thread counts the lines and runs
    /// `beside` (the write of the same bytes); what `beside` returned.
    pub fn update_beside(
        &mut self,
        data: &[u8],
        clock: &StageClock,
        beside: impl FnOnce() -> std::io::Result<()> + Send,
    ) -> std::io::Result<()> {
        let (hasher, lines) = (&mut self.hasher, &mut self.lines);
        let done = std::thread::scope(|s| {
            let other = s.spawn(|| {
                if let Some(l) = lines.as_mut() {
                    clock.time(Stage::Verify, || l.update(data));
                }
                beside()
            });
            clock.time(Stage::Verify, || hasher.update(data));
            other.join()
        });
        self.written += data.len() as u64;
        done.unwrap_or_else(|_| Err(std::io::Error::other("the writing thread failed")))
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::format::manifest::{EntryKind, WirePath};

    /// A file entry named `calls.csv` for `data`, recording `lines` lines.
    pub(in crate::restore) fn entry_of(data: &[u8], lines: u64) -> Entry {
        let mut e = Entry::bare(
            WirePath(b"calls.csv".to_vec()),
            EntryKind::File,
            0o600,
            0,
            0,
        );
        e.size = Some(data.len() as u64);
        e.sha256 = Some(hex::encode(Sha256::digest(data)));
        e.lines = Some(lines);
        e
    }

    /// Hashing and counting beside the write give what they give in line: the same
    /// verdict, the same line count, and the write's error.
    #[test]
    fn a_check_beside_the_write_is_the_check_in_line() {
        let data: Vec<u8> = (0..3 << 20)
            .map(|i| if i % 97 == 0 { b'\n' } else { b'x' })
            .collect();
        let lines = data.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let clock = StageClock::default();
        let entry = entry_of(&data, lines);
        let mut check = Check::new(&entry);
        let mut wrote = 0;
        for piece in data.chunks(1 << 20) {
            let beside = || {
                wrote += piece.len();
                Ok(())
            };
            check.update_beside(piece, &clock, beside).unwrap();
        }
        assert_eq!(wrote, data.len());
        check.verdict(&entry, &clock).unwrap();
        assert_eq!(clock.lines_checked(), 1);
        assert!(clock.line_mismatches().is_empty());

        let wrong = entry_of(&data, lines + 1);
        let mut check = Check::new(&wrong);
        check.update_beside(&data, &clock, || Ok(())).unwrap();
        check.verdict(&wrong, &clock).unwrap();
        assert_eq!(
            clock.line_mismatches().len(),
            1,
            "a count that differs is reported"
        );

        let mut check = Check::new(&entry);
        let failed = check.update_beside(&data, &clock, || Err(std::io::Error::other("disk full")));
        assert_eq!(failed.unwrap_err().to_string(), "disk full");
    }
}
