//! Reading and assembling, in one pass in manifest order: the reader thread's chunks go to
//! the uploader as they come, and each piece it hands over becomes manifest entries —
//! written at once to the streamed manifest, with the content's offset in the snapshot's
//! stream and the metadata the content read belongs to — and a segment of the new files
//! cache. Nothing per file is held once its entry is written.

use std::fs::File;
use std::io::BufWriter;
use std::time::SystemTime;

use tokio::sync::mpsc;

use super::cache::{CacheWriter, CachedFile, CachedSegment};
use super::health::Baseline;
use super::plan::{Piece, PlanSeg, Slot, plain_entry};
use super::reader::{self, FileOutcome, ReaderMsg, SegmentResult, Work};
use super::upload::Uploader;
use super::{BackupOptions, Progress};
use crate::error::{Error, Result};
use crate::format::writer::ManifestWriter;
use crate::format::{
    self,
    commit::Summary,
    limits,
    manifest::{Entry, EntryKind, Manifest, WirePath},
};
use crate::source::Skipped;

/// Plan, read and upload everything `work` names, handing each piece to `assembler`; the
/// bytes read.
pub(super) async fn read_and_upload(
    work: Work,
    chunking: crate::format::repo_config::Chunking,
    dedup: [u8; 32],
    uploader: &mut Uploader,
    progress: &(dyn Fn(Progress) + Send + Sync),
    bytes_total: u64,
    assembler: &mut Assembler,
) -> Result<u64> {
    let (tx, mut rx) = mpsc::channel(2);
    let budget = uploader.plain_budget();
    let reader = reader::spawn(work, chunking, dedup, budget.clone(), tx);
    let mut p = Progress {
        bytes_done: 0,
        bytes_total,
        chunks_new: 0,
    };
    let mut bytes_read = 0;
    let mut failure = None;
    let (mut done, mut no_store) = (false, false);
    while let Some(msg) = rx.recv().await {
        match msg {
            ReaderMsg::Chunk(c) => {
                bytes_read += c.data.len() as u64;
                p.bytes_done += c.data.len() as u64;
                let before = uploader.sealed.len();
                if let Err(e) = uploader.submit(c.id, c.data, c.budget).await {
                    failure = Some(e);
                    break;
                }
                p.chunks_new += (uploader.sealed.len() - before) as u64;
                progress(p);
                if (0..uploader.states_len()).all(|i| !uploader.states.healthy(i)) {
                    no_store = true; // the caller says so: no snapshot either way
                    break;
                }
            }
            ReaderMsg::Piece(piece, result) => {
                if let Some(c) = &piece.seg.reuse {
                    p.bytes_done += c.files.iter().map(|f| f.size).sum::<u64>();
                    progress(p);
                }
                if let Err(e) = assembler.piece(piece, result.as_ref()) {
                    failure = Some(e);
                    break;
                }
            }
            ReaderMsg::Failed(e) => {
                failure = Some(e);
                break;
            }
            ReaderMsg::Done(cache_damaged) => {
                done = true;
                assembler.out.warnings.extend(cache_damaged);
            }
        }
    }
    // Stop the reader if we left early, whether it waits to send or for plaintext budget
    // (held by uploads still under way).
    drop(rx);
    budget.close();
    let _ = tokio::task::spawn_blocking(move || reader.join()).await;
    if let Some(e) = failure {
        return Err(e);
    }
    // A reader that stopped without saying it was done (a panic, a bug) leaves the
    // manifest short of entries: such a snapshot is never committed.
    if !done && !no_store {
        return Err(Error::Fatal {
            message: "the backup's reader stopped before the end of the walk; no snapshot was written".into(),
            hint: Some("this is a bug in snapdrill: please report it; the next backup uploads only what is missing".into()),
        });
    }
    uploader.finish().await?;
    Ok(bytes_read)
}

/// What a run assembled: the manifest, spooled, and what it says.
pub(super) struct Assembled {
    /// The manifest's JSON, zstd-compressed, in an unlinked temporary file.
    pub(super) manifest: File,
    /// The manifest's header and chunk stream (no entries: they are in the file).
    pub(super) head: Manifest,
    pub(super) summary: Summary,
    /// The new files cache, committed once the snapshot is.
    pub(super) cache: Option<CacheWriter>,
    pub(super) bytes_unchanged: u64,
    /// Snapshot paths of files that changed while read (twice).
    pub(super) changed: Vec<String>,
    /// Files that could not be read.
    pub(super) skipped: Vec<Skipped>,
    /// The data set's measures for the next `shrink_alert` check.
    pub(super) baseline: Baseline,
    /// What the operator should hear of the files caches (old damaged, new not written).
    pub(super) warnings: Vec<String>,
}

impl Assembled {
    /// Replace the job's files cache with the one this run wrote (once the snapshot is
    /// committed); a warning when it could not be written.
    pub(super) fn commit_cache(&mut self) -> Option<String> {
        let problem = self.cache.take()?.finish().err()?;
        Some(format!("could not write the files cache: {problem}"))
    }
}

/// Turns pieces into manifest entries and cache segments, in order.
pub(super) struct Assembler {
    writer: ManifestWriter<BufWriter<File>>,
    stream_len: u64,
    out: Assembled,
}

impl Assembler {
    /// A new manifest of this run, compressed at `level` into a temporary file; `cache`:
    /// where the new files cache goes.
    pub(super) fn new(
        repository_id: &str,
        snapshot_id: &str,
        time: SystemTime,
        opts: &BackupOptions,
        cache: Option<CacheWriter>,
    ) -> Result<Assembler> {
        let mut head = Manifest::new(repository_id, snapshot_id, &format::format_time(time));
        head.sources = opts
            .paths
            .iter()
            .map(|p| WirePath(p.as_os_str().as_encoded_bytes().to_vec()))
            .chain(
                opts.stream
                    .iter()
                    .map(|s| WirePath(format!("-{}", s.name).into_bytes())),
            )
            .collect();
        let spool = |e| super::scratch("write the manifest to", e);
        let file = tempfile::tempfile().map_err(spool)?;
        let writer = ManifestWriter::new(
            BufWriter::with_capacity(256 << 10, file.try_clone().map_err(spool)?),
            opts.compression,
            &head,
        )
        .map_err(spool)?;
        Ok(Assembler {
            writer,
            stream_len: 0,
            out: Assembled {
                manifest: file,
                head,
                summary: Summary::default(),
                cache,
                bytes_unchanged: 0,
                changed: Vec::new(),
                skipped: Vec::new(),
                baseline: Baseline::default(),
                warnings: Vec::new(),
            },
        })
    }

    /// The entries of the next piece, and its segment in the new cache.
    pub(super) fn piece(&mut self, piece: Piece, result: Option<&SegmentResult>) -> Result<()> {
        let base = self.stream_len;
        let chunks = match (&piece.seg.reuse, result) {
            (Some(c), _) => &c.chunks[..],
            (None, Some(r)) => &r.chunks[..],
            (None, None) if piece.seg.files.is_empty() => &[],
            (None, None) => {
                return Err(Error::fatal(
                    "internal error: a segment was neither read nor reused",
                ));
            }
        };
        self.stream_len += chunks.iter().map(|c| c.size).sum::<u64>();
        self.out.head.chunks.extend_from_slice(chunks);
        for slot in &piece.slots {
            let entry = match slot {
                Slot::Entry(e) => (**e).clone(),
                Slot::File(idx) => match file_entry(&piece.seg, result, *idx, base) {
                    Ok(e) => e,
                    Err(skip) => {
                        self.out.skipped.push(skip);
                        continue;
                    }
                },
            };
            self.write(&entry)?;
        }
        self.cache(&piece.seg, result);
        Ok(())
    }

    /// Count and write one entry.
    fn write(&mut self, e: &Entry) -> Result<()> {
        let summary = &mut self.out.summary;
        match e.kind {
            EntryKind::Dir => summary.dirs += 1,
            EntryKind::Symlink => summary.symlinks += 1,
            EntryKind::File => {
                summary.files += 1;
                summary.bytes += e.file_size();
                if e.changed {
                    self.out.changed.push(e.path.display());
                }
                self.out.baseline.add(e);
            }
        }
        self.writer
            .entry(e)
            .map_err(|e| super::scratch("write the manifest to", e))?;
        within_limit(self.writer.bytes())
    }

    /// The segment in the new cache: reused, or read whole and unchanged.
    fn cache(&mut self, seg: &PlanSeg, result: Option<&SegmentResult>) {
        let reused = seg.reuse.as_ref();
        if let Some(c) = reused {
            self.out.bytes_unchanged += c.files.iter().map(|f| f.size).sum::<u64>();
        }
        let Some(writer) = &mut self.out.cache else {
            return;
        };
        let fresh = match (reused, result) {
            (None, Some(r)) => cacheable(seg, r),
            _ => None,
        };
        let Some(segment) = reused.or(fresh.as_ref()) else {
            return;
        };
        if let Err(e) = writer.add(segment) {
            self.out.cache = None;
            self.out
                .warnings
                .push(format!("could not write the files cache: {e}"));
        }
    }

    /// The manifest complete, and what the run assembled.
    pub(super) fn finish(self) -> Result<Assembled> {
        let Assembler {
            writer, mut out, ..
        } = self;
        let failed = |e| super::scratch("write the manifest to", e);
        let (buffered, bytes) = writer.finish(&out.head.chunks).map_err(failed)?;
        buffered.into_inner().map_err(|e| failed(e.into_error()))?;
        within_limit(bytes)?;
        out.baseline.finish();
        Ok(out)
    }
}

/// A manifest of `bytes` (so far, or whole) is within what every reader accepts.
fn within_limit(bytes: u64) -> Result<()> {
    if bytes <= limits::MANIFEST {
        return Ok(());
    }
    Err(Error::fatal(format!(
        "the manifest would be more than the {} bytes a reader accepts; back up fewer files per snapshot",
        limits::MANIFEST
    )))
}

/// The entry of file `idx` of `seg`, which starts at `base` in the stream; a file that
/// could not be read is skipped, with why.
fn file_entry(
    seg: &PlanSeg,
    result: Option<&SegmentResult>,
    idx: usize,
    base: u64,
) -> std::result::Result<Entry, Skipped> {
    let (path, walked) = &seg.files[idx];
    let (sha, size, rel, meta, changed, lines) = match (&seg.reuse, result) {
        (Some(c), _) => {
            let f = &c.files[idx];
            (
                f.sha256.clone(),
                f.size,
                f.rel_offset,
                *walked,
                false,
                f.lines,
            )
        }
        (None, Some(r)) => match &r.files[idx] {
            FileOutcome::Read {
                sha256,
                size,
                rel_offset,
                meta,
                changed,
                lines,
            } => (
                hex::encode(sha256),
                *size,
                *rel_offset,
                // The metadata the content read belongs to (when opened).
                meta.unwrap_or(*walked),
                *changed,
                *lines,
            ),
            FileOutcome::Failed(why) => {
                return Err(Skipped {
                    path: path.display(),
                    reason: why.clone(),
                });
            }
        },
        (None, None) => {
            return Err(Skipped {
                path: path.display(),
                reason: "internal error: its segment was neither read nor reused".into(),
            });
        }
    };
    let mut e = plain_entry(path.clone(), EntryKind::File, &meta);
    e.size = Some(size);
    e.sha256 = Some(sha);
    e.offset = Some(base + rel);
    if seg.cacheable {
        (e.ino, e.ctime, e.ctime_ns) = (Some(meta.ino), Some(meta.ctime), Some(meta.ctime_ns));
    }
    e.changed = changed;
    e.lines = lines;
    Ok(e)
}

/// A freshly read segment is cached only if every file was read whole, unchanged since the
/// walk and while it was read: the cache vouches that this content goes with that metadata.
pub(super) fn cacheable(seg: &PlanSeg, r: &SegmentResult) -> Option<CachedSegment> {
    if !seg.cacheable || seg.files.is_empty() {
        return None;
    }
    let files = seg
        .files
        .iter()
        .zip(&r.files)
        .map(|((path, m), outcome)| match outcome {
            FileOutcome::Read {
                sha256,
                size,
                rel_offset,
                meta: Some(opened),
                changed: false,
                lines,
            } if *size == m.size && !opened.changed_since(m) => Some(CachedFile {
                path: path.clone(),
                size: m.size,
                mtime: m.mtime,
                mtime_ns: m.mtime_ns,
                ctime: m.ctime,
                ctime_ns: m.ctime_ns,
                ino: m.ino,
                sha256: hex::encode(sha256),
                rel_offset: *rel_offset,
                lines: *lines,
            }),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some(CachedSegment {
        files,
        chunks: r.chunks.clone(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::backup::cache::{CacheWriter, FilesCache};
    use crate::backup::plan::Planner;
    use crate::backup::upload::StoreStates;
    use crate::source::{self, Excludes, Item};

    fn options(root: &std::path::Path) -> BackupOptions {
        BackupOptions {
            job: "test".into(),
            health: Default::default(),
            state_dir: None,
            paths: vec![root.to_path_buf()],
            stream: None,
            exclude: Vec::new(),
            tags: Vec::new(),
            host: "host".into(),
            compression: 3,
            force_read: false,
            cache_dir: None,
            configured_stores: Vec::new(),
            require: 1,
            writer_timeout: Duration::from_secs(3600),
            on_changed: Default::default(),
        }
    }

    /// A reader thread that dies without saying it is done (here: a panic while it plans,
    /// as any bug could) fails the run: the manifest is short of entries and must never be
    /// committed.
    #[tokio::test]
    async fn a_reader_that_stops_without_saying_done_fails_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("exports");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("a.csv"), "1,a\n").unwrap();
        let walk = || source::walk(std::slice::from_ref(&root), &Excludes::new(&[]).unwrap());
        // The file as cached: the planner asks whether its chunk is listed, and panics.
        let cache_path = dir.path().join("files.json.zst");
        let mut cache = CacheWriter::create(&cache_path, "repo").unwrap();
        for item in walk().unwrap().items.into_vec().unwrap() {
            if let Item::File { path, meta, .. } = item {
                let file = CachedFile {
                    path,
                    size: meta.size,
                    mtime: meta.mtime,
                    mtime_ns: meta.mtime_ns,
                    ctime: meta.ctime,
                    ctime_ns: meta.ctime_ns,
                    ino: meta.ino,
                    sha256: "0".repeat(64),
                    rel_offset: 0,
                    lines: Some(1),
                };
                let chunks = vec![crate::format::manifest::ChunkRef {
                    id: crate::format::manifest::ChunkId([0x11; 32]),
                    size: meta.size,
                }];
                cache
                    .add(&CachedSegment {
                        files: vec![file],
                        chunks,
                    })
                    .unwrap();
            }
        }
        cache.finish().unwrap();
        let (files_cache, _) = FilesCache::load(&cache_path, "repo", vec![b"exports".to_vec()]);
        let work = Work {
            items: walk().unwrap().items.read_back().unwrap(),
            planner: Planner::new(1 << 20, files_cache, Box::new(|_| panic!("a bug")), [0; 32]),
            stream: None,
        };
        let opts = options(&root);
        let recipient = age::x25519::Identity::generate().to_public();
        let mut uploader = Uploader::new(
            Vec::new(),
            vec![recipient],
            3,
            Arc::default(),
            Arc::new(StoreStates::new(0)),
        );
        let mut assembler = Assembler::new("repo", "snap", SystemTime::now(), &opts, None).unwrap();
        let chunking = crate::format::repo_config::Chunking::default();
        let result = read_and_upload(
            work,
            chunking,
            [0; 32],
            &mut uploader,
            &|_| (),
            4,
            &mut assembler,
        )
        .await;
        let err = result.expect_err("a run whose reader died must fail");
        assert!(err.to_string().contains("stopped before the end"), "{err}");
    }
}
