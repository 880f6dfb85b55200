//! The consuming end of a restore: chunk plaintext arrives in stream order and is cut into
//! files, which are written to disk (temp file, checked, renamed) or — in verify-only mode —
//! only hashed and compared.

use std::sync::atomic::Ordering;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::clock::{Stage, StageClock};
use super::fs;
use crate::error::{Error, Result};
use crate::format::manifest::Entry;
use crate::localfs::tree::DirTree;

/// Where file content goes.
enum Pending {
    Disk(fs::PendingFile),
    Check(Check),
}

/// The check of a file's content against its entry: size and SHA-256, as it streams.
#[derive(Default)]
pub(super) struct Check {
    hasher: Sha256,
    written: u64,
}

impl Check {
    /// The next bytes of the file (hashing counts as the verify stage).
    pub(super) fn update(&mut self, data: &[u8], clock: &StageClock) {
        clock.time(Stage::Verify, || self.hasher.update(data));
        self.written += data.len() as u64;
    }

    /// Does the content match the signed manifest's size and SHA-256? An integrity
    /// error naming the path when it does not.
    pub(super) fn finish(self, entry: &Entry) -> Result<()> {
        let digest = hex::encode(self.hasher.finalize());
        if Some(self.written) != entry.size || Some(&digest) != entry.sha256.as_ref() {
            return Err(Error::integrity(
                None,
                Some(&entry.path.display()),
                format!(
                    "content ({} bytes, SHA-256 {digest}) differs from the signed manifest",
                    self.written
                ),
            ));
        }
        Ok(())
    }
}

impl Pending {
    fn open(target: Option<&mut DirTree>, entry: &Entry) -> Result<Self> {
        Ok(match target {
            Some(t) => Pending::Disk(fs::PendingFile::create(t, entry)?),
            None => Pending::Check(Check::default()),
        })
    }

    fn write(&mut self, data: &[u8], clock: &StageClock) -> Result<()> {
        clock.mark_first_byte();
        clock.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        match self {
            Pending::Disk(f) => f.write(data, clock),
            Pending::Check(c) => {
                c.update(data, clock);
                Ok(())
            }
        }
    }

    fn finish(self, entry: &Entry, clock: &StageClock) -> Result<()> {
        match self {
            Pending::Disk(f) => clock.time(Stage::Write, || f.finish(entry)),
            Pending::Check(c) => c.finish(entry),
        }
    }

    fn abandon(self) {
        if let Pending::Disk(f) = self {
            f.abandon();
        }
    }
}

/// Places finished files (SHA-256 check, fsync, mode, times, rename) on its own thread, so
/// the writer keeps writing while the disk syncs the previous file.
struct Finisher {
    tx: Option<std::sync::mpsc::SyncSender<(Pending, Entry)>>,
    handle: Option<std::thread::JoinHandle<Result<()>>>,
}

impl Finisher {
    fn start(clock: &std::sync::Arc<StageClock>) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(Pending, Entry)>(4);
        let clock = clock.clone();
        let handle = std::thread::Builder::new()
            .name("snapdrill-finisher".into())
            .spawn(move || {
                let mut first_error = None;
                for (pending, entry) in rx {
                    if first_error.is_some() {
                        pending.abandon();
                        continue;
                    }
                    match pending.finish(&entry, &clock) {
                        Ok(()) => clock.count_file(),
                        Err(e) => first_error = Some(e),
                    }
                }
                first_error.map_or(Ok(()), Err)
            })
            .expect("spawn finisher thread");
        Finisher {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    fn finish(&self, pending: Pending, entry: &Entry) -> Result<()> {
        let tx = self.tx.as_ref().expect("open until joined");
        tx.send((pending, entry.clone()))
            .map_err(|_| Error::fatal("the restore finisher stopped"))
    }

    /// Wait for every file to be placed; the first error, if any.
    fn join(mut self) -> Result<()> {
        drop(self.tx.take());
        match self.handle.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => Err(Error::fatal("the restore finisher failed")),
        }
    }
}

/// One piece of the cut: file `i` of the list starts, receives bytes, or is complete.
pub(super) enum Cut<'d> {
    Begin(usize),
    Data(&'d [u8]),
    End(usize),
}

/// Cut the chunk stream arriving on `rx` (`(stream offset, plaintext)`, in order) into the
/// contents of `files` (sorted by offset, none empty), handing each piece to `on`; stops at
/// the first error `on` returns, and fails when the stream ends before every file is
/// complete. Returns the content bytes cut.
pub(super) fn cut(
    rx: &mut mpsc::Receiver<(u64, Vec<u8>)>,
    files: &[&Entry],
    mut on: impl FnMut(Cut) -> Result<()>,
) -> Result<u64> {
    let (mut bytes, mut next, mut open) = (0, 0, false);
    while let Some((chunk_start, data)) = rx.blocking_recv() {
        let chunk_end = chunk_start + data.len() as u64;
        while next < files.len() {
            let f = files[next];
            let (start, end) = (f.offset.unwrap_or(0), f.offset.unwrap_or(0) + f.file_size());
            if start >= chunk_end {
                break;
            }
            if !open {
                on(Cut::Begin(next))?;
                open = true;
            }
            let (from, to) = (start.max(chunk_start), end.min(chunk_end));
            if from < to {
                on(Cut::Data(
                    &data[(from - chunk_start) as usize..(to - chunk_start) as usize],
                ))?;
                bytes += to - from;
            }
            if end > chunk_end {
                break;
            }
            on(Cut::End(next))?;
            (open, next) = (false, next + 1);
        }
    }
    if next < files.len() {
        return Err(Error::fatal(
            "restore stopped before every file was complete",
        ));
    }
    Ok(bytes)
}

/// Consume `(stream offset, plaintext)` in order and cut it into `files` (sorted by offset).
/// With a `target`, files are placed there; without, they are only verified. Returns the
/// content bytes restored.
pub(super) fn consume(
    mut target: Option<DirTree>,
    files: Vec<Entry>,
    mut rx: mpsc::Receiver<(u64, Vec<u8>)>,
    clock: &std::sync::Arc<StageClock>,
) -> Result<u64> {
    let finisher = Finisher::start(clock);
    let result = (|| {
        for f in files.iter().filter(|f| f.file_size() == 0) {
            finisher.finish(Pending::open(target.as_mut(), f)?, f)?;
        }
        let files: Vec<&Entry> = files.iter().filter(|f| f.file_size() > 0).collect();
        let mut current: Option<Pending> = None;
        let cut = cut(&mut rx, &files, |piece| match piece {
            Cut::Begin(i) => {
                current = Some(Pending::open(target.as_mut(), files[i])?);
                Ok(())
            }
            Cut::Data(data) => current.as_mut().expect("open file").write(data, clock),
            Cut::End(i) => finisher.finish(current.take().expect("open file"), files[i]),
        });
        if let Some(p) = current {
            p.abandon();
        }
        cut
    })();
    let placed = finisher.join();
    let bytes = result?;
    placed?;
    Ok(bytes)
}
