//! The stage clock of a restore: time spent downloading, decrypting, writing and verifying,
//! summed over concurrent work, and the instant of the first restored byte — what a drill
//! reports. Shared by the engine, the stream consumer and the filesystem writer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Time spent per stage, summed over all concurrent work (so stages overlap each other
/// and their sum may exceed the wall-clock time).
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize)]
pub struct StageTimes {
    /// Fetching objects and checking their ciphertext SHA-256.
    pub download_secs: f64,
    /// age decryption, zstd decompression and the keyed-id check.
    pub decrypt_secs: f64,
    /// Writing files (temp file, mode, times, rename).
    pub write_secs: f64,
    /// SHA-256 of every restored file.
    pub verify_secs: f64,
}

/// Accumulates [`StageTimes`] from many threads, and the instant of the first byte.
#[derive(Debug, Default)]
pub struct StageClock {
    download: AtomicU64,
    decrypt: AtomicU64,
    write: AtomicU64,
    verify: AtomicU64,
    pub(super) bytes: AtomicU64,
    files: AtomicU64,
    planned: OnceLock<Planned>,
    first_byte: OnceLock<Instant>,
    lines_checked: AtomicU64,
    line_mismatches: Mutex<Vec<String>>,
}

/// What a restore set out to do, known once it is planned: what a progress display
/// measures against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Planned {
    /// Files to restore (or verify).
    pub files: u64,
    /// Their content bytes.
    pub bytes: u64,
}

/// A stage of the restore pipeline.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    /// Fetch and hash check.
    Download,
    /// Decrypt, decompress, keyed id.
    Decrypt,
    /// Filesystem writes.
    Write,
    /// File SHA-256.
    Verify,
}

impl StageClock {
    /// Add `d` to a stage.
    pub fn add(&self, stage: Stage, d: Duration) {
        let slot = match stage {
            Stage::Download => &self.download,
            Stage::Decrypt => &self.decrypt,
            Stage::Write => &self.write,
            Stage::Verify => &self.verify,
        };
        slot.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Time `f` as `stage`.
    pub fn time<T>(&self, stage: Stage, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.add(stage, t.elapsed());
        out
    }

    /// When the first content byte was restored (written or verified), if any.
    pub fn first_byte(&self) -> Option<Instant> {
        self.first_byte.get().copied()
    }

    pub(super) fn mark_first_byte(&self) {
        let _ = self.first_byte.set(Instant::now());
    }

    /// Content bytes restored (or verified) so far, for progress displays.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Files restored (or verified) and checked so far, for progress displays.
    pub fn files(&self) -> u64 {
        self.files.load(Ordering::Relaxed)
    }

    pub(super) fn count_file(&self) {
        self.files.fetch_add(1, Ordering::Relaxed);
    }

    /// A file's lines as counted against those its entry records: a difference is kept
    /// for the report (the content matched its SHA-256, so the restore goes on; a drill
    /// fails on it).
    pub(super) fn lines_counted(
        &self,
        entry: &crate::format::manifest::Entry,
        got: u64,
        want: u64,
    ) {
        self.lines_checked.fetch_add(1, Ordering::Relaxed);
        if got != want {
            self.line_mismatches
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(format!(
                    "{} has {got} lines restored, but the snapshot recorded {want}",
                    entry.path.display()
                ));
        }
    }

    /// Files whose line count was checked so far.
    pub fn lines_checked(&self) -> u64 {
        self.lines_checked.load(Ordering::Relaxed)
    }

    /// Every line count that differed from its entry's.
    pub fn line_mismatches(&self) -> Vec<String> {
        self.line_mismatches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The plan, once the restore has made it.
    pub fn planned(&self) -> Option<Planned> {
        self.planned.get().copied()
    }

    pub(super) fn set_planned(&self, planned: Planned) {
        let _ = self.planned.set(planned);
    }

    /// The totals so far.
    pub fn times(&self) -> StageTimes {
        let s = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 / 1e9;
        StageTimes {
            download_secs: s(&self.download),
            decrypt_secs: s(&self.decrypt),
            write_secs: s(&self.write),
            verify_secs: s(&self.verify),
        }
    }
}
