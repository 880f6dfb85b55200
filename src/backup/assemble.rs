//! Reading the plan and assembling the manifest: the reader's chunks go to the uploader as
//! they come; then every slot of the plan becomes an entry, with the content's offset in the
//! snapshot's stream and the metadata the content read belongs to.

use std::collections::HashMap;
use std::time::SystemTime;

use tokio::sync::mpsc;

use super::cache::{CachedFile, CachedSegment};
use super::plan::{Plan, PlanSeg, Slot, plain_entry};
use super::reader::{self, FileOutcome, ReadJob, ReaderMsg, SegmentResult};
use super::upload::Uploader;
use super::{BackupOptions, Progress};
use crate::error::{Error, Result};
use crate::format::{
    self,
    commit::Summary,
    manifest::{Entry, EntryKind, Manifest, WirePath},
};
use crate::source::Skipped;

pub(super) async fn read_and_upload(
    jobs: Vec<ReadJob>,
    chunking: crate::format::repo_config::Chunking,
    dedup: [u8; 32],
    uploader: &mut Uploader,
    progress: &(dyn Fn(Progress) + Send + Sync),
    plan: &Plan,
) -> Result<(HashMap<usize, SegmentResult>, u64)> {
    let reused: u64 = plan
        .segs
        .iter()
        .filter(|s| s.reuse.is_some())
        .flat_map(|s| s.files.iter().map(|f| f.1.size))
        .sum();
    let (tx, mut rx) = mpsc::channel(2);
    let reader = reader::spawn(jobs, chunking, dedup, tx);
    let mut results = HashMap::new();
    let mut p = Progress {
        bytes_done: reused,
        bytes_total: plan.bytes_total,
        chunks_new: 0,
    };
    let mut bytes_read = 0;
    let mut failure = None;
    while let Some(msg) = rx.recv().await {
        match msg {
            ReaderMsg::Chunk(c) => {
                bytes_read += c.data.len() as u64;
                p.bytes_done += c.data.len() as u64;
                let before = uploader.sealed.len();
                if let Err(e) = uploader.submit(c.id, c.data).await {
                    failure = Some(e);
                    break;
                }
                p.chunks_new += (uploader.sealed.len() - before) as u64;
                progress(p);
                if (0..uploader.states_len()).all(|i| !uploader.states.healthy(i)) {
                    break;
                }
            }
            ReaderMsg::Segment(r) => {
                results.insert(r.seg, r);
            }
            ReaderMsg::Failed(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(rx); // stops the reader if we left early
    let _ = tokio::task::spawn_blocking(move || reader.join()).await;
    if let Some(e) = failure {
        return Err(e);
    }
    uploader.finish().await?;
    Ok((results, bytes_read))
}

pub(super) struct Assembled {
    pub(super) manifest: Manifest,
    pub(super) summary: Summary,
    pub(super) cache_segments: Vec<CachedSegment>,
    pub(super) bytes_unchanged: u64,
    /// Snapshot paths of files that changed while read (twice).
    pub(super) changed: Vec<String>,
}

/// The manifest of what was read: files that could not be read go to `skipped`.
pub(super) fn assemble(
    plan: &mut Plan,
    results: &HashMap<usize, SegmentResult>,
    repository_id: &str,
    snapshot_id: &str,
    time: SystemTime,
    opts: &BackupOptions,
    skipped: &mut Vec<Skipped>,
) -> Result<Assembled> {
    let mut manifest = Manifest::new(repository_id, snapshot_id, &format::format_time(time));
    manifest.sources = opts
        .paths
        .iter()
        .map(|p| WirePath(p.as_os_str().as_encoded_bytes().to_vec()))
        .chain(
            opts.stream
                .iter()
                .map(|s| WirePath(format!("-{}", s.name).into_bytes())),
        )
        .collect();
    let stream = stream_chunks(plan, results, &mut manifest)?;
    let mut summary = Summary::default();
    let mut changed = Vec::new();
    for slot in &plan.slots {
        let entry = match slot {
            Slot::Entry(e) => (**e).clone(),
            Slot::File { seg, idx } => {
                match file_entry(plan, results, *seg, *idx, stream.base[*seg]) {
                    Ok(e) => {
                        if e.changed {
                            changed.push(e.path.display());
                        }
                        e
                    }
                    Err(Some(skip)) => {
                        skipped.push(skip);
                        continue;
                    }
                    Err(None) => continue,
                }
            }
        };
        match entry.kind {
            EntryKind::Dir => summary.dirs += 1,
            EntryKind::Symlink => summary.symlinks += 1,
            EntryKind::File => {
                summary.files += 1;
                summary.bytes += entry.file_size();
            }
        }
        manifest.entries.push(entry);
    }
    let mut cache_segments = stream.cache_segments;
    // The reused segments move from the plan into the new cache once their entries are
    // made: cloned, a million-file run cost ~200 MB more at the backup's peak.
    for (at, i) in stream.reused {
        if let Some(c) = plan.segs[i].reuse.take() {
            cache_segments[at] = c;
        }
    }
    Ok(Assembled {
        manifest,
        summary,
        cache_segments,
        bytes_unchanged: stream.bytes_unchanged,
        changed,
    })
}

/// The snapshot's content stream, segment after segment.
struct Stream {
    /// Where each segment starts in the stream.
    base: Vec<u64>,
    cache_segments: Vec<CachedSegment>,
    /// Reused segments: their place in `cache_segments` (empty until the plan hands them
    /// over) and their index in the plan.
    reused: Vec<(usize, usize)>,
    bytes_unchanged: u64,
}

fn stream_chunks(
    plan: &Plan,
    results: &HashMap<usize, SegmentResult>,
    manifest: &mut Manifest,
) -> Result<Stream> {
    let mut stream = Stream {
        base: Vec::with_capacity(plan.segs.len()),
        cache_segments: Vec::new(),
        reused: Vec::new(),
        bytes_unchanged: 0,
    };
    for (i, seg) in plan.segs.iter().enumerate() {
        stream.base.push(manifest.stream_len());
        let chunks = match (&seg.reuse, results.get(&i)) {
            (Some(c), _) => {
                stream.bytes_unchanged += c.files.iter().map(|f| f.size).sum::<u64>();
                stream.reused.push((stream.cache_segments.len(), i));
                stream.cache_segments.push(CachedSegment {
                    files: Vec::new(),
                    chunks: Vec::new(),
                });
                c.chunks.clone()
            }
            (None, Some(r)) => {
                stream.cache_segments.extend(cacheable(seg, r));
                r.chunks.clone()
            }
            (None, None) => {
                return Err(Error::fatal(format!(
                    "internal error: segment {i} was not read"
                )));
            }
        };
        manifest.chunks.extend(chunks);
    }
    Ok(stream)
}

/// The entry of file `idx` of segment `seg`, whose segment starts at `base` in the stream;
/// `Err(Some)` for a file that could not be read, `Err(None)` for a segment never read.
fn file_entry(
    plan: &Plan,
    results: &HashMap<usize, SegmentResult>,
    seg: usize,
    idx: usize,
    base: u64,
) -> std::result::Result<Entry, Option<Skipped>> {
    let (path, walked) = &plan.segs[seg].files[idx];
    let (sha, size, rel, meta, changed, lines) = match (&plan.segs[seg].reuse, results.get(&seg)) {
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
                return Err(Some(Skipped {
                    path: path.display(),
                    reason: why.clone(),
                }));
            }
        },
        (None, None) => return Err(None),
    };
    let mut e = plain_entry(path.clone(), EntryKind::File, &meta);
    e.size = Some(size);
    e.sha256 = Some(sha);
    e.offset = Some(base + rel);
    if plan.segs[seg].cacheable {
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
