//! The reader thread: reads each segment's files as one stream, hashes every file
//! (SHA-256), cuts the stream with FastCDC and names each chunk with its keyed id.
//!
//! Files are opened through descriptors below their source root (never through a link, never
//! blocking on a FIFO) and must be the very file the walk saw (device and inode); anything
//! else is left out with a warning. A file that changes while it is read (its size, times or
//! length read disagree before and after) is read once more; if it changes again, what was
//! read the second time is stored, flagged, and the backup is partial. A file that cannot be
//! opened or fails midway is reported and left out of the manifest; bytes it already gave
//! stay in the stream but belong to no file. A failing standard input or command is fatal:
//! no snapshot.

use std::fs::File;
use std::io::{self, Read};
use std::process::Child;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::error::Error;
use crate::format::manifest::{ChunkId, ChunkRef, LineCounter, counts_lines};
use crate::format::repo_config::Chunking;
use crate::localfs::Stat;
use crate::localfs::tree::DirTree;
use crate::memory::Budget;
use crate::sealing::{chunk_id, chunker_seed};
use crate::source::spool::ItemsBack;
use crate::source::{Meta, SourceFile, SourceRoot};

use super::chunker::Chunker;
use super::plan::{Piece, Planner};

/// Where a file's bytes come from.
pub(super) enum Input {
    /// A file below a source root, with its metadata when walked.
    File(SourceFile, Meta),
    /// Standard input.
    Stdin {
        /// Count its lines (its name says it holds records).
        count_lines: bool,
    },
    /// A command's standard output; a non-zero exit fails the backup.
    Command {
        /// The running command.
        child: Child,
        /// The command line, for messages.
        line: String,
        /// Count its lines.
        count_lines: bool,
    },
}

/// A chunk ready for sealing.
pub(super) struct ChunkMsg {
    /// Keyed id.
    pub id: [u8; 32],
    /// Plaintext.
    pub data: Vec<u8>,
    /// Its share of the plaintext budget.
    pub budget: OwnedSemaphorePermit,
}

/// What happened to one file of a segment.
#[derive(Debug, Clone)]
pub(super) enum FileOutcome {
    /// Read whole.
    Read {
        /// SHA-256 of the bytes read.
        sha256: [u8; 32],
        /// Bytes read.
        size: u64,
        /// Offset inside the segment's stream.
        rel_offset: u64,
        /// Files: the metadata when opened (what the content read belongs to).
        meta: Option<Meta>,
        /// The file changed while it was read, twice: the content may be inconsistent.
        changed: bool,
        /// Its lines, when its name says it holds records.
        lines: Option<u64>,
    },
    /// Could not be read; the reason.
    Failed(String),
}

/// A segment fully read.
pub(super) struct SegmentResult {
    /// One outcome per input.
    pub files: Vec<FileOutcome>,
    /// Its chunks, in order.
    pub chunks: Vec<ChunkRef>,
}

/// Messages from the reader to the engine.
pub(super) enum ReaderMsg {
    /// A chunk.
    Chunk(ChunkMsg),
    /// The next piece of the manifest, with what was read of its segment (`None`: reused
    /// from the cache, or no files).
    Piece(Piece, Option<SegmentResult>),
    /// The backup cannot go on.
    Failed(Error),
    /// Every piece was handed over (without it, the manifest is not complete), with what
    /// to tell the operator of the files cache.
    Done(Option<String>),
}

/// What the reader thread works through: the walk read back and cut into pieces by the
/// planner, then standard input or a command's output.
pub(super) struct Work {
    /// The walk, in order.
    pub items: ItemsBack,
    /// Cuts it into pieces, against the files cache.
    pub planner: Planner,
    /// The stream's piece, last.
    pub stream: Option<Piece>,
}

/// Plan and read on a new thread, sending chunks and pieces to `tx` in manifest order.
pub(super) fn spawn(
    work: Work,
    chunking: Chunking,
    dedup: [u8; 32],
    budget: Budget,
    tx: mpsc::Sender<ReaderMsg>,
) -> std::thread::JoinHandle<()> {
    let runtime = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("snapdrill-reader".into())
        .spawn(move || {
            let mut reading = Reading {
                chunking,
                seed: chunker_seed(&dedup),
                dedup,
                budget,
                runtime,
                tx,
                trees: Vec::new(),
            };
            let last = match reading.run(work) {
                Ok(cache_damaged) => ReaderMsg::Done(cache_damaged),
                Err(Some(e)) => ReaderMsg::Failed(e),
                Err(None) => return, // the engine stopped listening
            };
            let _ = reading.tx.blocking_send(last);
        })
        .expect("spawn reader thread")
}

/// The reader thread's state.
struct Reading {
    chunking: Chunking,
    seed: u64,
    dedup: [u8; 32],
    /// Each chunk takes its share before it is sent, so what is read and not yet sealed
    /// is bounded in bytes, however large the chunks in the channel.
    budget: Budget,
    runtime: tokio::runtime::Handle,
    tx: mpsc::Sender<ReaderMsg>,
    /// Source roots opened so far (a backup has few), kept from segment to segment.
    trees: Vec<(Arc<SourceRoot>, DirTree)>,
}

impl Reading {
    /// Every piece, in order; why the files cache ended early, if it did. `Err(None)`: the
    /// engine stopped listening.
    fn run(&mut self, mut work: Work) -> Result<Option<String>, Option<Error>> {
        let mut done = Vec::new();
        for item in work.items {
            let item = item.map_err(|e| {
                Some(Error::fatal(format!(
                    "reading back the walk from its temporary file: {e}"
                )))
            })?;
            work.planner.push(item, &mut done);
            for piece in done.drain(..) {
                self.deliver(piece)?;
            }
        }
        let last = work.planner.close().into_iter().chain(work.stream);
        for piece in last {
            self.deliver(piece)?;
        }
        Ok(work.planner.cache_damaged())
    }

    /// Read the piece's segment unless it is reused, and hand the piece over.
    fn deliver(&mut self, mut piece: Piece) -> Result<(), Option<Error>> {
        let result = if piece.inputs.is_empty() {
            None
        } else {
            let inputs = std::mem::take(&mut piece.inputs);
            Some(self.read_segment(inputs)?.ok_or(None)?)
        };
        self.tx
            .blocking_send(ReaderMsg::Piece(piece, result))
            .map_err(|_| None)
    }

    /// Read one segment's inputs as one stream, sending its chunks; `Ok(None)` when the
    /// engine stopped listening.
    fn read_segment(&mut self, inputs: Vec<Input>) -> Result<Option<SegmentResult>, Error> {
        let mut reader = SegmentReader::new(inputs);
        reader.trees = std::mem::take(&mut self.trees);
        let read = self.chunk(&mut reader);
        self.trees = std::mem::take(&mut reader.trees);
        let chunks = match read? {
            Some(chunks) => chunks,
            None => return Ok(None),
        };
        Ok(Some(SegmentResult {
            files: reader.outcomes,
            chunks,
        }))
    }

    /// Cut what `reader` gives into chunks, sending each.
    fn chunk(&self, reader: &mut SegmentReader) -> Result<Option<Vec<ChunkRef>>, Error> {
        let (chunking, seed, dedup, tx) = (self.chunking, self.seed, &self.dedup, &self.tx);
        let budget = &self.budget;
        let mut chunks = Vec::new();
        let mut failed = None;
        {
            let mut cdc = Chunker::new(&mut *reader, chunking, seed);
            loop {
                let len = match cdc.next_cut() {
                    Ok(0) => break,
                    Ok(len) => len,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                };
                let id = chunk_id(dedup, cdc.cut_bytes());
                chunks.push(ChunkRef {
                    id: ChunkId(id),
                    size: len as u64,
                });
                // The share is taken before the chunk is copied out of the chunker's buffer,
                // so the budget bounds every chunk buffer alive.
                let Some(share) = self.runtime.block_on(budget.take(len)) else {
                    return Ok(None); // the engine stopped
                };
                let data = cdc.take();
                if tx
                    .blocking_send(ReaderMsg::Chunk(ChunkMsg {
                        id,
                        data,
                        budget: share,
                    }))
                    .is_err()
                {
                    return Ok(None);
                }
            }
        }
        // The reader's own error says what failed (a command's exit status, with its hint);
        // the chunker only saw that reading stopped.
        if let Some(e) = reader.fatal.take() {
            return Err(e);
        }
        if let Some(e) = failed {
            return Err(Error::fatal(format!("reading the backup input: {e}")));
        }
        Ok(Some(chunks))
    }
}

/// The files of a segment as one `Read`, hashing each file on the way.
struct SegmentReader {
    inputs: std::vec::IntoIter<Input>,
    current: Option<Current>,
    pos: u64,
    outcomes: Vec<FileOutcome>,
    fatal: Option<Error>,
    /// Source roots opened so far (a backup has few).
    trees: Vec<(Arc<SourceRoot>, DirTree)>,
}

/// A file being read, with what is needed to check it afterwards and to read it again.
struct OpenFile {
    file: File,
    src: SourceFile,
    walked: Meta,
    opened: Meta,
    attempt: u8,
}

enum Source {
    File(OpenFile),
    Stream {
        reader: Box<dyn Read + Send>,
        child: Option<(Child, String)>,
    },
}

struct Current {
    source: Source,
    hasher: Sha256,
    lines: Option<LineCounter>,
    start: u64,
}

impl SegmentReader {
    fn new(inputs: Vec<Input>) -> Self {
        SegmentReader {
            inputs: inputs.into_iter(),
            current: None,
            pos: 0,
            outcomes: Vec::new(),
            fatal: None,
            trees: Vec::new(),
        }
    }

    /// Open the next input; `Ok(false)` when there is none left.
    fn open_next(&mut self) -> io::Result<bool> {
        let Some(input) = self.inputs.next() else {
            return Ok(false);
        };
        let count_lines = match &input {
            Input::File(src, _) => counts_lines(&src.rel),
            Input::Stdin { count_lines } | Input::Command { count_lines, .. } => *count_lines,
        };
        let source = match input {
            Input::File(src, walked) => match self.open_file(&src, &walked, 1) {
                Ok(f) => Source::File(f),
                Err(e) => {
                    self.outcomes
                        .push(FileOutcome::Failed(format!("cannot open it: {e}")));
                    return Ok(true);
                }
            },
            Input::Stdin { .. } => Source::Stream {
                reader: Box::new(io::stdin()),
                child: None,
            },
            Input::Command {
                mut child, line, ..
            } => {
                let out = child
                    .stdout
                    .take()
                    .ok_or_else(|| io::Error::other("command has no stdout"))?;
                Source::Stream {
                    reader: Box::new(out),
                    child: Some((child, line)),
                }
            }
        };
        self.start(source, count_lines);
        Ok(true)
    }

    fn start(&mut self, source: Source, count_lines: bool) {
        self.current = Some(Current {
            source,
            hasher: Sha256::new(),
            lines: count_lines.then(LineCounter::default),
            start: self.pos,
        });
    }

    /// Open `src` through descriptors; it must be the regular file the walk saw.
    fn open_file(&mut self, src: &SourceFile, walked: &Meta, attempt: u8) -> io::Result<OpenFile> {
        let i = match self
            .trees
            .iter()
            .position(|(r, _)| Arc::ptr_eq(r, &src.root))
        {
            Some(i) => i,
            None => {
                let tree = DirTree::open(&src.root.path)?;
                let st = Stat::of(tree.root())?;
                if (st.dev, st.ino) != src.root.dev_ino {
                    return Err(io::Error::other(format!(
                        "the source folder {} was replaced since it was walked",
                        src.root.path.display()
                    )));
                }
                self.trees.push((src.root.clone(), tree));
                self.trees.len() - 1
            }
        };
        let (fd, st) = self.trees[i]
            .1
            .open_file(&src.rel, Some((walked.dev, walked.ino)))?;
        Ok(OpenFile {
            file: File::from(fd),
            src: src.clone(),
            walked: *walked,
            opened: Meta::from_stat(&st),
            attempt,
        })
    }

    fn finish_current(&mut self) -> io::Result<()> {
        let Some(cur) = self.current.take() else {
            return Ok(());
        };
        let size = self.pos - cur.start;
        let (meta, changed) = match cur.source {
            Source::Stream { child, .. } => {
                if let Some((child, line)) = child {
                    self.wait_command(child, &line)?;
                }
                (None, false)
            }
            Source::File(f) => {
                let after = Stat::of(&f.file).map(|s| Meta::from_stat(&s));
                let changed = size != f.opened.size
                    || after.is_err()
                    || after.as_ref().is_ok_and(|a| a.changed_since(&f.opened));
                if changed && f.attempt == 1 {
                    // Read it once more: the first attempt's bytes stay in the stream,
                    // belonging to no file.
                    match self.open_file(&f.src, &f.walked, 2) {
                        Ok(again) => self.start(Source::File(again), cur.lines.is_some()),
                        Err(e) => self
                            .outcomes
                            .push(FileOutcome::Failed(format!("cannot open it again: {e}"))),
                    }
                    return Ok(());
                }
                (Some(f.opened), changed)
            }
        };
        self.outcomes.push(FileOutcome::Read {
            sha256: cur.hasher.finalize().into(),
            size,
            rel_offset: cur.start,
            meta,
            changed,
            lines: cur.lines.map(|c| c.lines()),
        });
        Ok(())
    }

    fn wait_command(&mut self, mut child: Child, line: &str) -> io::Result<()> {
        let status = child.wait()?;
        if status.success() {
            return Ok(());
        }
        let msg = format!("the command `{line}` failed ({status}); no snapshot was written");
        self.fatal = Some(Error::Fatal {
            message: msg.clone(),
            hint: Some(
                "fix the command (run it by hand to see its errors), then back up again".into(),
            ),
        });
        Err(io::Error::other(msg))
    }
}

impl Read for SegmentReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.current.is_none() && !self.open_next()? {
                return Ok(0);
            }
            let Some(cur) = self.current.as_mut() else {
                continue;
            };
            let (read, stream) = match &mut cur.source {
                Source::File(f) => (f.file.read(buf), false),
                Source::Stream { reader, .. } => (reader.read(buf), true),
            };
            match read {
                Ok(0) => self.finish_current()?,
                Ok(n) => {
                    cur.hasher.update(&buf[..n]);
                    if let Some(c) = &mut cur.lines {
                        c.update(&buf[..n]);
                    }
                    self.pos += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if stream => {
                    self.fatal = Some(Error::fatal(format!(
                        "reading standard input or command output: {e}"
                    )));
                    return Err(e);
                }
                Err(e) => {
                    self.current = None;
                    self.outcomes
                        .push(FileOutcome::Failed(format!("read failed: {e}")));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Excludes, Item, walk};
    use std::io::Write;

    /// The walked file `name` of a fresh folder holding `content`, as an input.
    fn input(dir: &std::path::Path, name: &str, content: &[u8]) -> Input {
        let root = dir.join("exports");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join(name), content).unwrap();
        let w = walk(&[root], &Excludes::new(&[]).unwrap()).unwrap();
        w.items
            .into_vec()
            .unwrap()
            .into_iter()
            .find_map(|i| match i {
                Item::File { src, meta, .. } => Some(Input::File(src, meta)),
                _ => None,
            })
            .unwrap()
    }

    fn append(dir: &std::path::Path, name: &str) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("exports").join(name))
            .unwrap();
        f.write_all(b"appended while read\n").unwrap();
    }

    /// Read the whole segment, calling `during` after the first byte of each attempt.
    fn read_all(r: &mut SegmentReader, mut during: impl FnMut(usize)) -> Vec<u8> {
        let (mut out, mut buf, mut attempt) = (Vec::new(), [0u8; 1], 0);
        loop {
            let before = r.current.as_ref().map(|c| c.start);
            match r.read(&mut buf).unwrap() {
                0 => return out,
                n => out.extend_from_slice(&buf[..n]),
            }
            let now = r.current.as_ref().map(|c| c.start);
            if before != now || out.len() == 1 {
                attempt += 1;
                during(attempt);
            }
        }
    }

    #[test]
    fn a_file_that_changed_while_read_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = SegmentReader::new(vec![input(dir.path(), "calls.log", b"first line\n")]);
        read_all(&mut r, |attempt| {
            if attempt == 1 {
                append(dir.path(), "calls.log");
            }
        });
        let want = b"first line\nappended while read\n";
        match &r.outcomes[..] {
            [
                FileOutcome::Read {
                    size,
                    sha256,
                    changed: false,
                    rel_offset,
                    ..
                },
            ] => {
                assert_eq!(*size, want.len() as u64);
                assert_eq!(sha256[..], Sha256::digest(want)[..]);
                assert!(
                    *rel_offset > 0,
                    "the second reading starts after the first's bytes"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_file_that_keeps_changing_is_stored_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = SegmentReader::new(vec![input(dir.path(), "calls.log", b"first line\n")]);
        read_all(&mut r, |_| append(dir.path(), "calls.log"));
        assert!(
            matches!(&r.outcomes[..], [FileOutcome::Read { changed: true, .. }]),
            "{:?}",
            r.outcomes
        );
    }
}
