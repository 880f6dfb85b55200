//! The consuming end of a restore: chunk plaintext arrives in stream order and is cut into
//! files, which are written to disk (temp file, checked, renamed) or — in verify-only mode —
//! only hashed and compared.

use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::check::Check;
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

impl Pending {
    fn open(target: Option<&mut DirTree>, entry: &Entry) -> Result<Self> {
        Ok(match target {
            Some(t) => Pending::Disk(fs::PendingFile::create(t, entry)?),
            None => Pending::Check(Check::new(entry)),
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

    fn abandon(self) {
        if let Pending::Disk(f) = self {
            f.abandon();
        }
    }
}

/// Places finished files (SHA-256 check, mode, times, then — a batch at a time — one
/// `syncfs` and the renames) on its own thread, so the writer keeps writing meanwhile.
struct Finisher {
    tx: Option<std::sync::mpsc::SyncSender<Done>>,
    handle: Option<std::thread::JoinHandle<Result<()>>>,
}

/// What reaches the finisher: a file the cut wrote, or one a writer wrote and sealed.
enum Done {
    Pending(Box<(Pending, Entry)>),
    Sealed(Vec<Result<fs::SealedFile>>),
}

/// The finisher's work: checked files collect in a batch; a full batch goes to the
/// [`Placer`], which makes it durable and places it while the next one fills.
struct Placing {
    batch: fs::Batch,
    placer: Option<Placer>,
    clock: std::sync::Arc<StageClock>,
}

impl Placing {
    fn take(&mut self, pending: Pending, entry: &Entry) -> Result<()> {
        match pending {
            Pending::Check(c) => {
                c.verdict(entry, &self.clock)
                    .map_err(|m| Error::integrity(None, Some(&entry.path.display()), m))?;
                self.clock.count_file();
                Ok(())
            }
            Pending::Disk(f) => {
                let sealed = self
                    .clock
                    .time(Stage::Write, || f.seal(entry, &self.clock))?;
                self.add(sealed)
            }
        }
    }

    /// A file a writer wrote and sealed (removed again when the restore already failed).
    fn sealed(&mut self, sealed: Result<fs::SealedFile>, failed: bool) -> Result<()> {
        match sealed {
            Ok(f) if failed => {
                f.abandon();
                Ok(())
            }
            Err(_) if failed => Ok(()),
            sealed => sealed.and_then(|f| self.add(f)),
        }
    }

    fn add(&mut self, sealed: fs::SealedFile) -> Result<()> {
        if !self.batch.add(sealed) {
            return Ok(());
        }
        let full = std::mem::take(&mut self.batch);
        match &self.placer {
            Some(p) => p.send(full),
            None => Ok(()),
        }
    }

    /// Place what is left and wait for the placer; the first error, if any.
    fn finish(mut self, failed: Option<Error>) -> Result<()> {
        let last = std::mem::take(&mut self.batch);
        let Some(placer) = self.placer.take() else {
            return failed.map_or(Ok(()), Err);
        };
        if failed.is_none() {
            placer.send(last)?;
        } else {
            let mut last = last;
            last.abandon();
        }
        let placed = placer.join();
        match failed {
            Some(e) => Err(e),
            None => placed,
        }
    }
}

/// Makes full batches durable (one `syncfs`) and renames their files, on its own thread.
struct Placer {
    tx: std::sync::mpsc::SyncSender<fs::Batch>,
    handle: std::thread::JoinHandle<Result<()>>,
}

impl Placer {
    fn start(root: rustix::fd::OwnedFd, clock: std::sync::Arc<StageClock>) -> Self {
        // One batch waits while one is placed: memory stays at two batches.
        let (tx, rx) = std::sync::mpsc::sync_channel::<fs::Batch>(1);
        let handle = std::thread::Builder::new()
            .name("snapdrill-placer".into())
            .spawn(move || {
                let mut first_error = None;
                for mut batch in rx {
                    if first_error.is_some() {
                        batch.abandon();
                        continue;
                    }
                    match clock.time(Stage::Write, || batch.flush(&root)) {
                        Ok(placed) => (0..placed).for_each(|_| clock.count_file()),
                        Err(e) => first_error = Some(e),
                    }
                }
                first_error.map_or(Ok(()), Err)
            })
            .expect("spawn placer thread");
        Placer { tx, handle }
    }

    fn send(&self, batch: fs::Batch) -> Result<()> {
        self.tx
            .send(batch)
            .map_err(|_| Error::fatal("the restore placer stopped"))
    }

    fn join(self) -> Result<()> {
        drop(self.tx);
        self.handle
            .join()
            .unwrap_or_else(|_| Err(Error::fatal("the restore placer failed")))
    }
}

impl Finisher {
    fn start(clock: &std::sync::Arc<StageClock>, root: Option<rustix::fd::OwnedFd>) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Done>(64);
        let mut placing = Placing {
            batch: fs::Batch::default(),
            placer: root.map(|r| Placer::start(r, clock.clone())),
            clock: clock.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("snapdrill-finisher".into())
            .spawn(move || {
                let mut first_error = None;
                for done in rx {
                    match done {
                        Done::Pending(p) if first_error.is_some() => p.0.abandon(),
                        Done::Pending(p) => first_error = placing.take(p.0, &p.1).err(),
                        Done::Sealed(many) => {
                            for sealed in many {
                                if let Err(e) = placing.sealed(sealed, first_error.is_some()) {
                                    first_error = Some(e);
                                }
                            }
                        }
                    }
                }
                placing.finish(first_error)
            })
            .expect("spawn finisher thread");
        Finisher {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    fn finish(&self, pending: Pending, entry: Entry) -> Result<()> {
        self.sender()
            .send(Done::Pending(Box::new((pending, entry))))
            .map_err(|_| Error::fatal("the restore finisher stopped"))
    }

    fn sender(&self) -> &std::sync::mpsc::SyncSender<Done> {
        self.tx.as_ref().expect("open until joined")
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

/// One piece of the cut: a file starts, receives bytes, or is complete (and handed back).
pub(super) enum Cut<'d> {
    Begin(&'d Entry),
    Data(&'d [u8]),
    End(Entry),
}

/// Cut the chunk stream arriving on `rx` (plaintext at its stream offset, in order) into the
/// contents of `files` (in offset order; an empty file begins and ends where it comes),
/// handing each piece to `on`; stops at the first error `on` returns, and fails when the
/// stream ends before every file is complete. `files` is pulled only as far as the stream
/// needs, so it may be a list or entries parsed as the restore goes. Returns the content
/// bytes cut.
pub(super) fn cut(
    rx: &mut mpsc::Receiver<super::Arrived>,
    files: &mut dyn Iterator<Item = Entry>,
    mut on: impl FnMut(Cut) -> Result<()>,
) -> Result<u64> {
    let (mut bytes, mut open) = (0, false);
    let mut next = next_with_content(files, &mut on)?;
    while let Some(arrived) = rx.blocking_recv() {
        // `arrived` returns its fetch budget when this iteration ends.
        let (chunk_start, data) = (arrived.offset, &arrived.data);
        let chunk_end = chunk_start + data.len() as u64;
        while let Some(f) = next.as_ref() {
            let (start, end) = (f.offset.unwrap_or(0), f.offset.unwrap_or(0) + f.file_size());
            if start >= chunk_end {
                break;
            }
            if !open {
                on(Cut::Begin(f))?;
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
            on(Cut::End(next.take().expect("the file being cut")))?;
            open = false;
            next = next_with_content(files, &mut on)?;
        }
    }
    if next.is_some() {
        return Err(Error::fatal(
            "restore stopped before every file was complete",
        ));
    }
    Ok(bytes)
}

/// The next file with content; empty files met on the way begin and end at once.
fn next_with_content(
    files: &mut dyn Iterator<Item = Entry>,
    on: &mut impl FnMut(Cut) -> Result<()>,
) -> Result<Option<Entry>> {
    for f in files {
        if f.file_size() > 0 {
            return Ok(Some(f));
        }
        on(Cut::Begin(&f))?;
        on(Cut::End(f))?;
    }
    Ok(None)
}

/// Files up to this size are gathered whole and written by the pool of [`Writers`]; larger
/// ones are written by the cut as they stream.
const SMALL_FILE: u64 = 1 << 20;
/// Writer threads: creating files is latency-bound (the journal, the directory), so a few
/// run side by side even on two cores.
const WRITERS: usize = 4;

/// Small files handed to a writer at once: at most this many, of at most
/// [`SMALL_FILE`] bytes together (one handover per file cost a thread wake-up per file).
const JOB_FILES: usize = 32;

/// A small file to write: its directory, its entry, its whole content.
struct Job {
    dir: std::sync::Arc<rustix::fd::OwnedFd>,
    path: std::path::PathBuf,
    entry: Entry,
    data: Vec<u8>,
}

/// The pool writing small files while the cut goes on; each file, written and sealed, goes
/// to the finisher's batch.
struct Writers {
    tx: Option<std::sync::mpsc::SyncSender<Vec<Job>>>,
    handles: Vec<std::thread::JoinHandle<()>>,
    /// Jobs gathered for the next handover, and their bytes.
    gathered: Vec<Job>,
    bytes: u64,
}

impl Writers {
    fn start(done: &std::sync::mpsc::SyncSender<Done>, clock: &std::sync::Arc<StageClock>) -> Self {
        // At most 8 handovers (of at most SMALL_FILE bytes each) wait: memory stays bounded.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Job>>(8);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let handles = (0..WRITERS)
            .map(|i| {
                let (rx, done, clock) = (rx.clone(), done.clone(), clock.clone());
                std::thread::Builder::new()
                    .name(format!("snapdrill-writer-{i}"))
                    .spawn(move || {
                        loop {
                            let jobs = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                            let Ok(jobs) = jobs else { break };
                            let sealed = jobs.into_iter().map(|j| write_whole(j, &clock));
                            if done.send(Done::Sealed(sealed.collect())).is_err() {
                                break;
                            }
                        }
                    })
                    .expect("spawn writer thread")
            })
            .collect();
        Writers {
            tx: Some(tx),
            handles,
            gathered: Vec::with_capacity(JOB_FILES),
            bytes: 0,
        }
    }

    /// Gather `job`; hand the gathered files over when they are enough.
    fn send(&mut self, job: Job) -> Result<()> {
        self.bytes += job.data.len() as u64;
        self.gathered.push(job);
        if self.gathered.len() >= JOB_FILES || self.bytes >= SMALL_FILE {
            self.hand_over()?;
        }
        Ok(())
    }

    fn hand_over(&mut self) -> Result<()> {
        let jobs = std::mem::replace(&mut self.gathered, Vec::with_capacity(JOB_FILES));
        self.bytes = 0;
        let tx = self.tx.as_ref().expect("open until joined");
        tx.send(jobs)
            .map_err(|_| Error::fatal("the restore writers stopped"))
    }

    /// Hand over what is gathered (unless the restore failed) and wait for the writers.
    fn join(mut self, failed: bool) {
        if !failed && !self.gathered.is_empty() {
            let _ = self.hand_over();
        }
        drop(self.tx.take());
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Write and seal one whole small file.
fn write_whole(job: Job, clock: &StageClock) -> Result<fs::SealedFile> {
    let mut f = fs::PendingFile::create_in(job.dir, job.path, Check::new(&job.entry))?;
    f.write(&job.data, clock)?;
    clock.time(Stage::Write, || f.seal(&job.entry, clock))
}

/// The file the cut is filling: written as it streams, or gathered for the pool.
enum Current {
    Streaming(Pending),
    Gathering(Vec<u8>),
}

/// Consume chunks (plaintext at its stream offset) in order and cut them into `files` (in offset
/// order; a list, or entries parsed as the restore goes, pulled only as the stream needs
/// them). With a `target`, files are placed there ([`fs::where_to`] makes their
/// directories on the way);
/// without, they are only verified. Returns the content bytes restored.
pub(super) fn consume(
    mut target: Option<DirTree>,
    mut files: impl Iterator<Item = Entry>,
    mut rx: mpsc::Receiver<super::Arrived>,
    clock: &std::sync::Arc<StageClock>,
) -> Result<u64> {
    // The filesystem of the target, for the batches' syncfs.
    let root = match &target {
        Some(t) => Some(
            rustix::io::fcntl_dupfd_cloexec(t.root(), 0)
                .map_err(|e| Error::io("opening", t.root_path(), e.into()))?,
        ),
        None => None,
    };
    let finisher = Finisher::start(clock, root);
    let mut writers = target
        .is_some()
        .then(|| Writers::start(finisher.sender(), clock));
    let mut current: Option<Current> = None;
    let cut = cut(&mut rx, &mut files, |piece| match piece {
        Cut::Begin(f) => {
            let small = writers.is_some() && f.file_size() <= SMALL_FILE;
            current = Some(match small {
                true => Current::Gathering(Vec::with_capacity(f.file_size() as usize)),
                false => Current::Streaming(Pending::open(target.as_mut(), f)?),
            });
            Ok(())
        }
        Cut::Data(data) => match current.as_mut().expect("open file") {
            Current::Streaming(p) => p.write(data, clock),
            Current::Gathering(buf) => {
                clock.mark_first_byte();
                clock.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                buf.extend_from_slice(data);
                Ok(())
            }
        },
        Cut::End(entry) => match current.take().expect("open file") {
            Current::Streaming(p) => finisher.finish(p, entry),
            Current::Gathering(data) => {
                let tree = target.as_mut().expect("gathering writes to a target");
                let (dir, path) = fs::where_to(tree, &entry)?;
                writers.as_mut().expect("a pool").send(Job {
                    dir,
                    path,
                    entry,
                    data,
                })
            }
        },
    });
    if let Some(Current::Streaming(p)) = current {
        p.abandon();
    }
    if let Some(w) = writers {
        w.join(cut.is_err());
    }
    let placed = finisher.join();
    let bytes = cut?;
    placed?;
    Ok(bytes)
}
