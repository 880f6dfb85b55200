//! The plan of a backup: what the walk found, in manifest order, grouped into segments —
//! each read as one stream, or reused whole from the files cache when every file in it is
//! unchanged and every chunk it names is still listed.

use std::time::SystemTime;

use super::cache::{CachedSegment, FilesCache};
use super::reader::{Input, ReadJob};
use super::{BackupOptions, StreamSource};
use crate::error::{Error, Result};
use crate::format::{
    self,
    manifest::{Entry, EntryKind, WirePath},
};
use crate::source::{self, Item, Meta};

/// One planned segment: files read as one stream, or reused from the cache.
pub(super) struct PlanSeg {
    pub(super) files: Vec<(WirePath, Meta)>,
    pub(super) reuse: Option<CachedSegment>,
    pub(super) cacheable: bool,
}

/// A manifest position: a finished entry, or a file filled in after reading. The entry is
/// boxed: directories and symlinks are few, and unboxed every file's slot was the size of
/// an entry (~180 bytes a file, for a million files 170 MiB of nothing).
pub(super) enum Slot {
    Entry(Box<Entry>),
    File { seg: usize, idx: usize },
}

pub(super) struct Plan {
    pub(super) segs: Vec<PlanSeg>,
    pub(super) slots: Vec<Slot>,
    pub(super) jobs: Vec<ReadJob>,
    pub(super) bytes_total: u64,
}

impl Plan {
    /// A planned path that a new file at `name` would collide with: the same path, a path
    /// below it, or a file or symlink on its way.
    pub(super) fn clash_with(&self, name: &[u8]) -> Option<String> {
        let below = |p: &[u8], top: &[u8]| {
            p.len() > top.len() && p.starts_with(top) && p[top.len()] == b'/'
        };
        self.slots.iter().find_map(|slot| {
            let (path, kind) = match slot {
                Slot::Entry(e) => (&e.path, e.kind),
                Slot::File { seg, idx } => (&self.segs[*seg].files[*idx].0, EntryKind::File),
            };
            let p = &path.0[..];
            let clash = p == name || below(p, name) || (kind != EntryKind::Dir && below(name, p));
            clash.then(|| path.display())
        })
    }
}

/// The plan of the walked `items`: a segment is reused from the files cache when its files
/// are unchanged and `listed` says every chunk it names is still in a store.
pub(super) fn make_plan(
    items: Vec<Item>,
    min_size: u64,
    mut cache: FilesCache,
    listed: &dyn Fn(&str) -> bool,
) -> Plan {
    let mut segs: Vec<PlanSeg> = Vec::new();
    let mut paths: Vec<Vec<(source::SourceFile, Meta)>> = Vec::new();
    let mut slots = Vec::new();
    let mut open_run: Option<usize> = None;
    let mut bytes_total = 0;
    for item in items {
        match item {
            Item::Dir { path, meta } => slots.push(Slot::Entry(Box::new(plain_entry(
                path,
                EntryKind::Dir,
                &meta,
            )))),
            Item::Symlink { path, target, meta } => {
                let mut e = plain_entry(path, EntryKind::Symlink, &meta);
                e.target = Some(target);
                slots.push(Slot::Entry(Box::new(e)));
            }
            Item::File { path, src, meta } => {
                bytes_total += meta.size;
                // Large files get a segment of their own, so their chunks depend on their
                // bytes only; small files share a run.
                let seg = match (meta.size >= min_size, open_run) {
                    (false, Some(run)) => run,
                    (big, _) => {
                        segs.push(PlanSeg {
                            files: Vec::new(),
                            reuse: None,
                            cacheable: true,
                        });
                        paths.push(Vec::new());
                        open_run = (!big).then_some(segs.len() - 1);
                        segs.len() - 1
                    }
                };
                slots.push(Slot::File {
                    seg,
                    idx: segs[seg].files.len(),
                });
                segs[seg].files.push((path, meta));
                paths[seg].push((src, meta));
            }
        }
    }
    let mut jobs = Vec::new();
    for (i, (seg, abs)) in segs.iter_mut().zip(paths).enumerate() {
        let reusable = cache
            .take(&seg.files)
            .filter(|c| c.chunks.iter().all(|ch| listed(ch.id.as_str())));
        match reusable {
            Some(c) => seg.reuse = Some(c),
            None => jobs.push(ReadJob {
                seg: i,
                inputs: abs
                    .into_iter()
                    .map(|(src, meta)| Input::File(src, meta))
                    .collect(),
            }),
        }
    }
    Plan {
        segs,
        slots,
        jobs,
        bytes_total,
    }
}

pub(super) fn plain_entry(path: WirePath, kind: EntryKind, meta: &Meta) -> Entry {
    Entry::bare(path, kind, meta.mode, meta.mtime, meta.mtime_ns)
}

pub(super) fn add_stream(plan: &mut Plan, stream: &StreamSource, time: SystemTime) -> Result<()> {
    format::manifest::validate_path(stream.name.as_bytes())
        .map_err(|why| Error::Usage(format!("--stdin-name '{}': {why}", stream.name)))?;
    if let Some(clash) = plan.clash_with(stream.name.as_bytes()) {
        return Err(Error::Usage(format!(
            "--stdin-name '{}' collides with '{clash}' from the backed-up paths; choose another name",
            stream.name
        )));
    }
    let input = match &stream.command {
        None => Input::Stdin {
            count_lines: format::manifest::counts_lines(stream.name.as_bytes()),
        },
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
                count_lines: format::manifest::counts_lines(stream.name.as_bytes()),
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
    let seg = plan.segs.len();
    plan.segs.push(PlanSeg {
        files: vec![(WirePath(stream.name.as_bytes().to_vec()), meta)],
        reuse: None,
        cacheable: false,
    });
    plan.slots.push(Slot::File { seg, idx: 0 });
    plan.jobs.push(ReadJob {
        seg,
        inputs: vec![input],
    });
    Ok(())
}

pub(super) fn job_key(opts: &BackupOptions) -> Vec<u8> {
    let mut k = Vec::new();
    for p in &opts.paths {
        k.extend_from_slice(p.as_os_str().as_encoded_bytes());
        k.push(0);
    }
    k
}
