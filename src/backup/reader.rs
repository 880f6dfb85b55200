//! The reader thread: reads each segment's files as one stream, hashes every file
//! (SHA-256), cuts the stream with FastCDC and names each chunk with its keyed id.
//!
//! A file that cannot be opened or fails midway is reported and left out of the manifest;
//! bytes it already gave stay in the stream but belong to no file. A failing standard input
//! or command is fatal: no snapshot.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Child;

use fastcdc::v2020::{Normalization, StreamCDC};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::error::Error;
use crate::format::manifest::ChunkRef;
use crate::format::repo_config::Chunking;
use crate::sealing::{chunk_id, chunker_seed};

/// Where a file's bytes come from.
pub enum Input {
    /// A local file, opened without following symlinks.
    File(PathBuf),
    /// Standard input.
    Stdin,
    /// A command's standard output; a non-zero exit fails the backup.
    Command {
        /// The running command.
        child: Child,
        /// The command line, for messages.
        line: String,
    },
}

/// The segments to read, in order.
pub struct ReadJob {
    /// Index of the segment in the plan.
    pub seg: usize,
    /// Its files, in stream order.
    pub inputs: Vec<Input>,
}

/// A chunk ready for sealing.
pub struct ChunkMsg {
    /// Keyed id.
    pub id: [u8; 32],
    /// Plaintext.
    pub data: Vec<u8>,
}

/// What happened to one file of a segment.
#[derive(Debug, Clone)]
pub enum FileOutcome {
    /// Read whole.
    Read {
        /// SHA-256 of the bytes read.
        sha256: [u8; 32],
        /// Bytes read.
        size: u64,
        /// Offset inside the segment's stream.
        rel_offset: u64,
    },
    /// Could not be read; the reason.
    Failed(String),
}

/// A segment fully read.
pub struct SegmentResult {
    /// Index of the segment in the plan.
    pub seg: usize,
    /// One outcome per input.
    pub files: Vec<FileOutcome>,
    /// Its chunks, in order.
    pub chunks: Vec<ChunkRef>,
}

/// Messages from the reader to the engine.
pub enum ReaderMsg {
    /// A chunk.
    Chunk(ChunkMsg),
    /// A segment is complete.
    Segment(SegmentResult),
    /// The backup cannot go on.
    Failed(Error),
}

/// Read every job on a new thread, sending chunks and results to `tx`.
pub fn spawn(
    jobs: Vec<ReadJob>,
    chunking: Chunking,
    dedup: [u8; 32],
    tx: mpsc::Sender<ReaderMsg>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("snapdrill-reader".into())
        .spawn(move || {
            let seed = chunker_seed(&dedup);
            for job in jobs {
                match read_segment(job, chunking, seed, &dedup, &tx) {
                    Ok(Some(result)) => {
                        if tx.blocking_send(ReaderMsg::Segment(result)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => return, // the engine stopped listening
                    Err(e) => {
                        let _ = tx.blocking_send(ReaderMsg::Failed(e));
                        return;
                    }
                }
            }
        })
        .expect("spawn reader thread")
}

fn read_segment(
    job: ReadJob,
    chunking: Chunking,
    seed: u64,
    dedup: &[u8; 32],
    tx: &mpsc::Sender<ReaderMsg>,
) -> Result<Option<SegmentResult>, Error> {
    let mut reader = SegmentReader::new(job.inputs);
    let mut chunks = Vec::new();
    {
        let cdc = StreamCDC::with_level_and_seed(
            &mut reader,
            chunking.min_size as usize,
            chunking.avg_size as usize,
            chunking.max_size as usize,
            Normalization::Level1,
            seed,
        );
        for chunk in cdc {
            let chunk =
                chunk.map_err(|e| Error::fatal(format!("reading the backup input: {e}")))?;
            let id = chunk_id(dedup, &chunk.data);
            chunks.push(ChunkRef {
                id: hex::encode(id),
                size: chunk.data.len() as u64,
            });
            if tx
                .blocking_send(ReaderMsg::Chunk(ChunkMsg {
                    id,
                    data: chunk.data,
                }))
                .is_err()
            {
                return Ok(None);
            }
        }
    }
    if let Some(e) = reader.fatal.take() {
        return Err(e);
    }
    Ok(Some(SegmentResult {
        seg: job.seg,
        files: reader.outcomes,
        chunks,
    }))
}

/// The files of a segment as one `Read`, hashing each file on the way.
struct SegmentReader {
    inputs: std::vec::IntoIter<Input>,
    current: Option<Current>,
    pos: u64,
    outcomes: Vec<FileOutcome>,
    fatal: Option<Error>,
}

struct Current {
    source: Box<dyn Read + Send>,
    child: Option<(Child, String)>,
    stream: bool,
    hasher: Sha256,
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
        }
    }

    /// Open the next input; `Ok(false)` when there is none left.
    fn open_next(&mut self) -> io::Result<bool> {
        let Some(input) = self.inputs.next() else {
            return Ok(false);
        };
        let (source, child, stream): (Box<dyn Read + Send>, _, _) = match input {
            Input::File(path) => match File::options()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NOATIME)
                .open(&path)
                .or_else(|_| {
                    File::options()
                        .read(true)
                        .custom_flags(libc::O_NOFOLLOW)
                        .open(&path)
                }) {
                Ok(f) => (Box::new(f), None, false),
                Err(e) => {
                    self.outcomes
                        .push(FileOutcome::Failed(format!("cannot open it: {e}")));
                    return Ok(true);
                }
            },
            Input::Stdin => (Box::new(io::stdin()), None, true),
            Input::Command { mut child, line } => {
                let out = child
                    .stdout
                    .take()
                    .ok_or_else(|| io::Error::other("command has no stdout"))?;
                (Box::new(out), Some((child, line)), true)
            }
        };
        self.current = Some(Current {
            source,
            child,
            stream,
            hasher: Sha256::new(),
            start: self.pos,
        });
        Ok(true)
    }

    fn finish_current(&mut self) -> io::Result<()> {
        let Some(cur) = self.current.take() else {
            return Ok(());
        };
        if let Some((mut child, line)) = cur.child {
            let status = child.wait()?;
            if !status.success() {
                let msg =
                    format!("the command `{line}` failed ({status}); no snapshot was written");
                self.fatal = Some(Error::Fatal {
                    message: msg.clone(),
                    hint: Some(
                        "fix the command (run it by hand to see its errors), then back up again"
                            .into(),
                    ),
                });
                return Err(io::Error::other(msg));
            }
        }
        self.outcomes.push(FileOutcome::Read {
            sha256: cur.hasher.finalize().into(),
            size: self.pos - cur.start,
            rel_offset: cur.start,
        });
        Ok(())
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
            match cur.source.read(buf) {
                Ok(0) => self.finish_current()?,
                Ok(n) => {
                    cur.hasher.update(&buf[..n]);
                    self.pos += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if cur.stream => {
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
