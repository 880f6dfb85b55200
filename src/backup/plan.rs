//! The plan of a backup, made as the walk is read back: items in manifest order, cut into
//! pieces — the files of one segment (read as one stream, or reused whole from the files
//! cache when every file in it is unchanged and every chunk it names is still listed) with
//! the directories and symlinks found among them.
//!
//! A segment is a large file alone, or a run of small files. A run ends before a large
//! file, after a file whose path's keyed hash says so (one in [`RUN_BOUNDARY`], so that a
//! file added or changed re-reads its own run and not every run after it), or when it
//! reaches [`RUN_FILES`] files or [`RUN_BYTES`] bytes: what a backup holds at a time is
//! bounded by a run, whatever the number of files.

use std::sync::Arc;
use std::time::SystemTime;

use super::cache::{CachedSegment, FilesCache};
use super::reader::Input;
use super::{BackupOptions, StreamSource};
use crate::error::{Error, Result};
use crate::format::{
    self,
    manifest::{ChunkId, Entry, EntryKind, WirePath},
};
use crate::source::{Item, Meta};

/// Most files in one run of small files.
pub(super) const RUN_FILES: usize = 1024;
/// Most bytes in one run (a run's last chunk is short: ≤ 1/16 of a run on average with
/// 2 MiB chunks).
pub(super) const RUN_BYTES: u64 = 32 << 20;
/// One small file in this many ends its run, by the keyed hash of its path.
pub(super) const RUN_BOUNDARY: u16 = 256;

/// One planned segment: files read as one stream, or reused from the cache.
pub(super) struct PlanSeg {
    pub(super) files: Vec<(WirePath, Meta)>,
    pub(super) reuse: Option<CachedSegment>,
    pub(super) cacheable: bool,
}

/// A manifest position within a piece.
pub(super) enum Slot {
    Entry(Box<Entry>),
    /// The n-th file of the piece's segment.
    File(usize),
}

/// Consecutive manifest entries: one segment's files and the entries among them, with the
/// inputs to read when the segment is not reused.
pub(super) struct Piece {
    pub(super) slots: Vec<Slot>,
    pub(super) seg: PlanSeg,
    pub(super) inputs: Vec<Input>,
    bytes: u64,
}

impl Piece {
    fn new(cacheable: bool) -> Piece {
        Piece {
            slots: Vec::new(),
            seg: PlanSeg {
                files: Vec::new(),
                reuse: None,
                cacheable,
            },
            inputs: Vec::new(),
            bytes: 0,
        }
    }

    fn add_file(&mut self, path: WirePath, meta: Meta, input: Input) {
        self.slots.push(Slot::File(self.seg.files.len()));
        self.seg.files.push((path, meta));
        self.inputs.push(input);
        self.bytes += meta.size;
    }
}

/// Cuts the walk into pieces and matches each against the files cache.
pub(super) struct Planner {
    min_size: u64,
    cache: FilesCache,
    /// Chunks some store lists: a cached segment naming another is read again.
    listed: Box<dyn Fn(&ChunkId) -> bool + Send>,
    /// The HMAC of run boundaries, under the dedup key (boundaries reveal nothing of the
    /// paths).
    boundaries: crate::sealing::Keyed,
    open: Option<Piece>,
}

impl Planner {
    pub(super) fn new(
        min_size: u64,
        cache: FilesCache,
        listed: Box<dyn Fn(&ChunkId) -> bool + Send>,
        key: [u8; 32],
    ) -> Planner {
        Planner {
            min_size,
            cache,
            listed,
            boundaries: crate::sealing::Keyed::new(&key),
            open: None,
        }
    }

    /// Take the next walked item; the pieces it completes, in order.
    pub(super) fn push(&mut self, item: Item, done: &mut Vec<Piece>) {
        match item {
            Item::Dir { path, meta } => {
                self.entry(plain_entry(path, EntryKind::Dir, &meta), done);
            }
            Item::Symlink { path, target, meta } => {
                let mut e = plain_entry(path, EntryKind::Symlink, &meta);
                e.target = Some(target);
                self.entry(e, done);
            }
            Item::File { path, src, meta } if meta.size >= self.min_size => {
                // A large file is a segment of its own: its chunks depend on its bytes only.
                done.extend(self.close());
                let mut piece = Piece::new(true);
                piece.add_file(path, meta, Input::File(src, meta));
                done.push(self.matched(piece));
            }
            Item::File { path, src, meta } => {
                let boundary = self.ends_run(&path);
                let run = self.open.get_or_insert_with(|| Piece::new(true));
                run.add_file(path, meta, Input::File(src, meta));
                if boundary || run.seg.files.len() >= RUN_FILES || run.bytes >= RUN_BYTES {
                    done.extend(self.close());
                }
            }
        }
    }

    /// The open run, when there is one, completed.
    pub(super) fn close(&mut self) -> Option<Piece> {
        let piece = self.open.take()?;
        Some(self.matched(piece))
    }

    /// A directory or symlink: inside the open run, or a piece of its own.
    fn entry(&mut self, e: Entry, done: &mut Vec<Piece>) {
        let slot = Slot::Entry(Box::new(e));
        match &mut self.open {
            Some(run) => run.slots.push(slot),
            None => {
                let mut piece = Piece::new(true);
                piece.slots.push(slot);
                done.push(piece);
            }
        }
    }

    /// Why the files cache ended early, when it did.
    pub(super) fn cache_damaged(&self) -> Option<String> {
        self.cache.damaged().map(str::to_owned)
    }

    fn ends_run(&self, path: &WirePath) -> bool {
        let h = self.boundaries.id(&path.0);
        u16::from_le_bytes([h[0], h[1]]).is_multiple_of(RUN_BOUNDARY)
    }

    /// The piece with its segment reused from the cache when it can be.
    fn matched(&mut self, mut piece: Piece) -> Piece {
        let listed = &self.listed;
        piece.seg.reuse = self
            .cache
            .take(&piece.seg.files)
            .filter(|c| c.chunks.iter().all(|ch| listed(&ch.id)));
        if piece.seg.reuse.is_some() {
            piece.inputs.clear();
        }
        piece
    }
}

pub(super) fn plain_entry(path: WirePath, kind: EntryKind, meta: &Meta) -> Entry {
    Entry::bare(path, kind, meta.mode, meta.mtime, meta.mtime_ns)
}

/// The piece of standard input or a command's output: its name checked, the command
/// started (a command that cannot start fails the backup before anything is read).
pub(super) fn stream_piece(stream: &StreamSource, time: SystemTime) -> Result<Piece> {
    let count_lines = format::manifest::counts_lines(stream.name.as_bytes());
    let input = match &stream.command {
        None => Input::Stdin { count_lines },
        Some(line) => {
            let child = std::process::Command::new("sh")
                .arg("-c")
                .arg(line)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| Error::fatal(format!("cannot start the command `{line}`: {e}")))?;
            Input::Command {
                child,
                line: line.clone(),
                count_lines,
            }
        }
    };
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let meta = Meta {
        mode: 0o600,
        mtime: since.as_secs() as i64,
        mtime_ns: since.subsec_nanos(),
        size: 0,
        ino: 0,
        ctime: 0,
        ctime_ns: 0,
        dev: 0,
    };
    let mut piece = Piece::new(false);
    piece.add_file(WirePath(stream.name.as_bytes().to_vec()), meta, input);
    Ok(piece)
}

/// `--stdin-name` must be a valid snapshot path.
pub(super) fn check_stream_name(stream: &StreamSource) -> Result<()> {
    format::manifest::validate_path(stream.name.as_bytes())
        .map_err(|why| Error::Usage(format!("--stdin-name '{}': {why}", stream.name)))
}

/// The stream's name collides with `clash` from the walk.
pub(super) fn stream_clash(stream: &StreamSource, clash: &str) -> Error {
    Error::Usage(format!(
        "--stdin-name '{}' collides with '{clash}' from the backed-up paths; choose another name",
        stream.name
    ))
}

/// Is a chunk listed by some store, as the planner asks?
pub(super) fn listed_set(listed: Arc<super::Listed>) -> Box<dyn Fn(&ChunkId) -> bool + Send> {
    Box::new(move |id| listed.present(&id.0))
}

pub(super) fn job_key(opts: &BackupOptions) -> Vec<u8> {
    let mut k = Vec::new();
    for p in &opts.paths {
        k.extend_from_slice(p.as_os_str().as_encoded_bytes());
        k.push(0);
    }
    k
}

/// The top names of the job's sources, in order (the walk's first key, see
/// [`super::cache::walk_cmp`]); a source without one has none.
pub(super) fn tops(opts: &BackupOptions) -> Vec<Vec<u8>> {
    opts.paths
        .iter()
        .filter_map(|p| crate::source::source_name(p).ok())
        .collect()
}
