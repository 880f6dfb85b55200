//! `backup`: walk, read, chunk, seal once, upload everywhere, commit last.
//!
//! Order of a run (docs/design.md, rule 1): plan from the walk and the local cache; list each
//! store's chunks (the store's listing is the index); read and chunk what changed; seal and
//! upload new chunks; copy chunks a store lacks from a store that has them; resolve every
//! object's ciphertext hash; confirm by a fresh listing that each store holds every object
//! at the right size; then, per store, write the sealed manifest and — last — the signed
//! commit. A crash before the commit leaves only unreferenced chunks behind.

pub mod cache;
pub mod job;
pub mod reader;
pub mod render;
pub mod upload;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;

use self::cache::{CachedFile, CachedSegment, FilesCache};
use self::reader::{FileOutcome, Input, ReadJob, ReaderMsg, SegmentResult};
use self::upload::{StoreStates, Uploader};

pub mod marker;
use crate::error::{Error, Result};
use crate::format::commit::{Commit, ObjectRef, Summary};
use crate::format::manifest::{Entry, EntryKind, Manifest, WirePath};
use crate::format::{self, limits};
use crate::keys::WriteKey;
use crate::replicate;
use crate::repository::Repository;
use crate::sealing;
use crate::source::{self, Excludes, Item, Meta, Skipped};
use crate::store::{self, StoreRef};

/// Content from standard input or from a command's output, stored as one file.
#[derive(Debug, Clone)]
pub struct StreamSource {
    /// The file's path in the snapshot.
    pub name: String,
    /// Run this with `sh -c` and store its stdout; `None` reads standard input.
    pub command: Option<String>,
}

/// What to back up, and how.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Local paths.
    pub paths: Vec<PathBuf>,
    /// Standard input or a command.
    pub stream: Option<StreamSource>,
    /// Exclude globs.
    pub exclude: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Host name recorded in the snapshot.
    pub host: String,
    /// zstd level.
    pub compression: i32,
    /// Read every file even when the cache says it is unchanged.
    pub force_read: bool,
    /// Local cache folder; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// Stores configured in all (including ones that could not be opened).
    pub configured_stores: Vec<String>,
    /// How many stores must commit.
    pub require: usize,
    /// A backup running longer than this does not commit: prune treats its marker as stale.
    pub writer_timeout: Duration,
    /// What a file that changed while it was read (twice) does to the run.
    pub on_changed: OnChanged,
}

/// What a file that keeps changing while it is read does to a backup (`[backup]
/// changed_while_read`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnChanged {
    /// Store what was read, flagged in the manifest; the backup is partial (exit 3).
    #[default]
    Partial,
    /// No snapshot: the job fails (exit 1).
    Fail,
}

/// Progress of a running backup.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Bytes of content processed (read or reused).
    pub bytes_done: u64,
    /// Bytes of content expected (from the walk; standard input is unknown).
    pub bytes_total: u64,
    /// New chunks so far.
    pub chunks_new: u64,
}

/// What happened in one store.
#[derive(Debug, Clone, Serialize)]
pub struct StoreReport {
    /// The store.
    pub name: String,
    /// Whether the snapshot was committed there.
    pub committed: bool,
    /// Objects written (chunks, manifest, commit).
    pub uploaded_objects: u64,
    /// Bytes written.
    pub uploaded_bytes: u64,
    /// Why it did not commit.
    pub error: Option<String>,
}

/// The report of a backup run.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// The new snapshot.
    pub snapshot_id: String,
    /// Start time.
    pub time: String,
    /// Host.
    pub host: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Regular files in the snapshot.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Symlinks.
    pub symlinks: u64,
    /// Content bytes in the snapshot.
    pub bytes: u64,
    /// Bytes read from the sources in this run.
    pub bytes_read: u64,
    /// Bytes of unchanged files taken from the previous snapshot without reading.
    pub bytes_unchanged: u64,
    /// Distinct chunks the snapshot references.
    pub chunks: u64,
    /// Chunks that were new to every store.
    pub chunks_new: u64,
    /// Plaintext bytes of the new chunks.
    pub data_added: u64,
    /// Ciphertext bytes of the new chunks (after compression and encryption).
    pub data_stored: u64,
    /// `bytes / data_added`; `null` when nothing new was added.
    pub dedup_ratio: Option<f64>,
    /// Wall-clock seconds.
    pub duration_secs: f64,
    /// How many stores had to commit.
    pub required: usize,
    /// Per store.
    pub stores: Vec<StoreReport>,
    /// Source paths that could not be read.
    pub skipped: Vec<Skipped>,
    /// Special files left out.
    pub ignored: Vec<Skipped>,
    /// Files that changed while they were read, twice: stored as read the second time,
    /// flagged in the manifest (the backup is partial).
    pub changed: Vec<String>,
    /// Anything else worth knowing.
    pub warnings: Vec<String>,
}

impl BackupReport {
    /// Stores that committed.
    pub fn committed(&self) -> usize {
        self.stores.iter().filter(|s| s.committed).count()
    }

    /// Complete (0), partial (3) or failed (1), by the README's exit codes.
    pub fn exit_code(&self) -> i32 {
        use crate::error::exit;
        if self.committed() < self.required {
            exit::FATAL
        } else if self.committed() < self.stores.len()
            || !self.skipped.is_empty()
            || !self.changed.is_empty()
        {
            exit::PARTIAL
        } else {
            exit::OK
        }
    }
}

/// One planned segment: files read as one stream, or reused from the cache.
struct PlanSeg {
    files: Vec<(WirePath, Meta)>,
    reuse: Option<CachedSegment>,
    cacheable: bool,
}

/// A manifest position: a finished entry, or a file filled in after reading.
enum Slot {
    Entry(Entry),
    File { seg: usize, idx: usize },
}

struct Plan {
    segs: Vec<PlanSeg>,
    slots: Vec<Slot>,
    jobs: Vec<ReadJob>,
    bytes_total: u64,
}

/// Run a backup into `repo` with the write key.
pub async fn run(
    repo: &Repository,
    key: &WriteKey,
    recipients: Vec<age::x25519::Recipient>,
    opts: &BackupOptions,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<BackupReport> {
    let started = Instant::now();
    let time = SystemTime::now();
    let snapshot_id = format::new_snapshot_id(time);
    let stores = repo.stores.clone();
    let states = Arc::new(StoreStates::new(stores.len()));
    // The marker goes first: prune must see this backup before it lists anything.
    marker::announce(&stores, &states, &snapshot_id, &opts.host).await;
    marker::reap_dead(&stores).await;
    let run = Run {
        started,
        time,
        snapshot_id,
        stores,
        states,
    };
    let result = run_marked(repo, key, recipients, opts, progress, &run).await;
    marker::withdraw(&run.stores, &run.snapshot_id).await;
    result
}

/// What a run fixed before its marker went out.
struct Run {
    started: Instant,
    time: SystemTime,
    snapshot_id: String,
    stores: Vec<StoreRef>,
    states: Arc<StoreStates>,
}

async fn run_marked(
    repo: &Repository,
    key: &WriteKey,
    recipients: Vec<age::x25519::Recipient>,
    opts: &BackupOptions,
    progress: &(dyn Fn(Progress) + Send + Sync),
    run: &Run,
) -> Result<BackupReport> {
    let (started, time, snapshot_id) = (run.started, run.time, run.snapshot_id.clone());
    let (stores, states) = (run.stores.clone(), run.states.clone());
    let chunking = repo.config.chunking;
    let mut warnings = Vec::new();

    let excludes = Excludes::new(&opts.exclude)?;
    let walked = source::walk(&opts.paths, &excludes)?;
    if walked.items.is_empty() && opts.stream.is_none() {
        return Err(Error::Fatal {
            message: "nothing to back up: no source could be read".into(),
            hint: Some(format!(
                "check the paths ({})",
                walked
                    .skipped
                    .iter()
                    .map(|s| format!("{}: {}", s.path, s.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        });
    }
    let listings = list_chunks(&stores, &states, format::CHUNKS_PREFIX).await;
    // Listed after the chunks: a chunk prune moves meanwhile shows up in one of the two.
    let fossils = list_chunks(&stores, &states, format::FOSSILS_PREFIX).await;
    if (0..stores.len()).all(|i| !states.healthy(i)) {
        return Err(no_store_left(&stores, &states));
    }
    // Fossils are not "present": a chunk prune set aside is sealed and uploaded anew under
    // its name (a fossil may be deleted once the backups that predate it have ended).
    let union: HashSet<&str> = listings
        .iter()
        .flat_map(|l| l.keys().map(String::as_str))
        .collect();

    let job_key = job_key(opts);
    let cache_file = opts
        .cache_dir
        .as_ref()
        .map(|d| cache::cache_path(d, &key.repository_id, &job_key));
    let files_cache = match (&cache_file, opts.force_read) {
        (Some(path), false) => {
            let (c, warning) = FilesCache::load(path, &key.repository_id);
            warnings.extend(warning);
            c
        }
        _ => FilesCache::default(),
    };
    let mut plan = make_plan(walked.items, chunking.min_size as u64, &files_cache, &union);
    if let Some(stream) = &opts.stream {
        add_stream(&mut plan, stream, time)?;
    }
    drop(union);

    let present: HashSet<[u8; 32]> = listings
        .iter()
        .flat_map(|l| l.keys())
        .filter_map(|id| hex::decode(id).ok()?.try_into().ok())
        .collect();
    let mut uploader = Uploader::new(
        stores.clone(),
        recipients.clone(),
        opts.compression,
        present,
        states.clone(),
    );
    let (results, bytes_read) = read_and_upload(
        std::mem::take(&mut plan.jobs),
        chunking,
        key.dedup,
        &mut uploader,
        progress,
        &plan,
    )
    .await?;
    if (0..stores.len()).all(|i| !states.healthy(i)) {
        return Err(no_store_left(&stores, &states));
    }

    let mut skipped = walked.skipped;
    let assembled = assemble(
        &plan,
        &results,
        &repo.config.repository_id,
        &snapshot_id,
        time,
        opts,
        &mut skipped,
    )?;
    if opts.on_changed == OnChanged::Fail && !assembled.changed.is_empty() {
        return Err(Error::Fatal {
            message: format!(
                "{} changed while it was read, twice: no snapshot was written ([backup] changed_while_read = \"fail\")",
                assembled.changed.join(", ")
            ),
            hint: Some(
                "run the backup after the export has finished writing (a `complete_marker` or a later cron slot), or set changed_while_read = \"partial\""
                    .into(),
            ),
        });
    }
    let needed: Vec<String> = assembled
        .manifest
        .unique_chunk_ids()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let held = Held {
        listings: &listings,
        fossils: &fossils,
        sealed: &uploader.sealed,
    };
    let resolved = resolve_hashes(repo, &needed, &held).await?;
    copy_missing(&stores, &states, &needed, &resolved, &held).await;
    if started.elapsed() > opts.writer_timeout {
        return Err(Error::Fatal {
            message: format!(
                "the backup ran {} (longer than [prune] writer_timeout): not committed, because a prune may already count its uploads as abandoned",
                humantime::format_duration(Duration::from_secs(started.elapsed().as_secs()))
            ),
            hint: Some("raise [prune] writer_timeout, or split the backup; the next run reuses what was uploaded".into()),
        });
    }

    let (manifest_json, sealed_manifest) =
        seal_manifest(&assembled.manifest, opts.compression, &recipients)?;
    let manifest_ref = ObjectRef::of(&format::manifest_object(&snapshot_id), &sealed_manifest);
    let objects: Vec<ObjectRef> = needed.iter().map(|id| resolved[id].clone()).collect();
    let commit = Commit::new(
        &repo.config.repository_id,
        &snapshot_id,
        &format::format_time(time),
        &opts.host,
        opts.tags.clone(),
        assembled.summary.clone(),
        manifest_ref,
        objects,
    );
    let commit_bytes = Bytes::from(commit.to_object(&key.signing));
    check_before_commit(&manifest_json, &commit_bytes, &commit, key)?;
    drop(manifest_json);
    commit_everywhere(
        &stores,
        &states,
        &commit,
        Bytes::from(sealed_manifest),
        commit_bytes,
    )
    .await;

    let committed = (0..stores.len()).filter(|&i| states.healthy(i)).count();
    if committed == 0 {
        return Err(no_store_left(&stores, &states));
    }
    if let Some(path) = &cache_file
        && let Err(e) = FilesCache::save(path, &key.repository_id, assembled.cache_segments)
    {
        warnings.push(format!("could not write the cache {}: {e}", path.display()));
    }

    let (chunks_new, data_added, data_stored) =
        uploader.sealed.values().fold((0, 0, 0), |acc, c| {
            (acc.0 + 1, acc.1 + c.plain_size, acc.2 + c.size)
        });
    let mut store_reports: Vec<StoreReport> = stores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (objects, bytes) = states.uploaded(i);
            StoreReport {
                name: s.name().to_owned(),
                committed: states.healthy(i),
                uploaded_objects: objects,
                uploaded_bytes: bytes,
                error: states.failure(i),
            }
        })
        .collect();
    for (name, why) in &repo.unusable {
        store_reports.push(StoreReport {
            name: name.clone(),
            committed: false,
            uploaded_objects: 0,
            uploaded_bytes: 0,
            error: Some(why.clone()),
        });
    }
    Ok(BackupReport {
        snapshot_id,
        time: commit.time.clone(),
        host: opts.host.clone(),
        tags: opts.tags.clone(),
        files: assembled.summary.files,
        dirs: assembled.summary.dirs,
        symlinks: assembled.summary.symlinks,
        bytes: assembled.summary.bytes,
        bytes_read,
        bytes_unchanged: assembled.bytes_unchanged,
        chunks: needed.len() as u64,
        chunks_new,
        data_added,
        data_stored,
        dedup_ratio: (data_added > 0).then(|| assembled.summary.bytes as f64 / data_added as f64),
        duration_secs: started.elapsed().as_secs_f64(),
        required: opts.require,
        stores: store_reports,
        skipped,
        ignored: walked.ignored,
        changed: assembled.changed,
        warnings,
    })
}

fn job_key(opts: &BackupOptions) -> Vec<u8> {
    let mut k = Vec::new();
    for p in &opts.paths {
        k.extend_from_slice(p.as_os_str().as_encoded_bytes());
        k.push(0);
    }
    k
}

fn no_store_left(stores: &[StoreRef], states: &StoreStates) -> Error {
    let reasons: Vec<String> = stores
        .iter()
        .enumerate()
        .filter_map(|(i, s)| states.failure(i).map(|r| format!("{}: {r}", s.name())))
        .collect();
    Error::Fatal {
        message: format!("no store could take the backup; no snapshot was written ({})", reasons.join("; ")),
        hint: Some("fix the stores named above, then run the backup again: it uploads only what is missing".into()),
    }
}

/// Each store's chunk (or fossil) listing: id -> size. A store whose listing fails leaves
/// the run.
async fn list_chunks(
    stores: &[StoreRef],
    states: &StoreStates,
    prefix: &str,
) -> Vec<HashMap<String, u64>> {
    let listings = futures::future::join_all(stores.iter().map(|s| s.list(prefix))).await;
    listings
        .into_iter()
        .enumerate()
        .map(|(i, l)| match l {
            Ok(objects) => objects
                .into_iter()
                .filter_map(|o| {
                    let chunk = o.key.strip_prefix(format::FOSSILS_PREFIX).unwrap_or(&o.key);
                    Some((format::chunk_id_of(chunk)?.to_owned(), o.size))
                })
                .collect(),
            Err(e) => {
                states.fail(i, format!("listing {prefix} failed: {e}"));
                HashMap::new()
            }
        })
        .collect()
}

impl Plan {
    /// A planned path that a new file at `name` would collide with: the same path, a path
    /// below it, or a file or symlink on its way.
    fn clash_with(&self, name: &[u8]) -> Option<String> {
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

fn make_plan(items: Vec<Item>, min_size: u64, cache: &FilesCache, union: &HashSet<&str>) -> Plan {
    let mut segs: Vec<PlanSeg> = Vec::new();
    let mut paths: Vec<Vec<(source::SourceFile, Meta)>> = Vec::new();
    let mut slots = Vec::new();
    let mut open_run: Option<usize> = None;
    let mut bytes_total = 0;
    for item in items {
        match item {
            Item::Dir { path, meta } => {
                slots.push(Slot::Entry(plain_entry(path, EntryKind::Dir, &meta)))
            }
            Item::Symlink { path, target, meta } => {
                let mut e = plain_entry(path, EntryKind::Symlink, &meta);
                e.target = Some(target);
                slots.push(Slot::Entry(e));
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
            .find(&seg.files)
            .filter(|c| c.chunks.iter().all(|ch| union.contains(ch.id.as_str())));
        match reusable {
            Some(c) => seg.reuse = Some(c.clone()),
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

fn plain_entry(path: WirePath, kind: EntryKind, meta: &Meta) -> Entry {
    Entry {
        path,
        kind,
        mode: meta.mode,
        mtime: meta.mtime,
        mtime_ns: meta.mtime_ns,
        size: None,
        sha256: None,
        offset: None,
        target: None,
        ino: None,
        ctime: None,
        ctime_ns: None,
        changed: false,
    }
}

fn add_stream(plan: &mut Plan, stream: &StreamSource, time: SystemTime) -> Result<()> {
    format::manifest::validate_path(stream.name.as_bytes())
        .map_err(|why| Error::Usage(format!("--stdin-name '{}': {why}", stream.name)))?;
    if let Some(clash) = plan.clash_with(stream.name.as_bytes()) {
        return Err(Error::Usage(format!(
            "--stdin-name '{}' collides with '{clash}' from the backed-up paths; choose another name",
            stream.name
        )));
    }
    let input = match &stream.command {
        None => Input::Stdin,
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

async fn read_and_upload(
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

struct Assembled {
    manifest: Manifest,
    summary: Summary,
    cache_segments: Vec<CachedSegment>,
    bytes_unchanged: u64,
    /// Snapshot paths of files that changed while read (twice).
    changed: Vec<String>,
}

fn assemble(
    plan: &Plan,
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
    let mut base = Vec::with_capacity(plan.segs.len());
    let mut cache_segments = Vec::new();
    let mut bytes_unchanged = 0;
    for (i, seg) in plan.segs.iter().enumerate() {
        base.push(manifest.stream_len());
        let chunks = match (&seg.reuse, results.get(&i)) {
            (Some(c), _) => {
                bytes_unchanged += c.files.iter().map(|f| f.size).sum::<u64>();
                cache_segments.push(c.clone());
                c.chunks.clone()
            }
            (None, Some(r)) => {
                if let Some(c) = cacheable(seg, r) {
                    cache_segments.push(c);
                }
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
    let mut summary = Summary::default();
    let mut changed_files = Vec::new();
    for slot in &plan.slots {
        let entry = match slot {
            Slot::Entry(e) => e.clone(),
            Slot::File { seg, idx } => {
                let (path, walked) = &plan.segs[*seg].files[*idx];
                let (sha, size, rel, meta, changed) =
                    match (&plan.segs[*seg].reuse, results.get(seg)) {
                        (Some(c), _) => {
                            let f = &c.files[*idx];
                            (f.sha256.clone(), f.size, f.rel_offset, *walked, false)
                        }
                        (None, Some(r)) => match &r.files[*idx] {
                            FileOutcome::Read {
                                sha256,
                                size,
                                rel_offset,
                                meta,
                                changed,
                            } => (
                                hex::encode(sha256),
                                *size,
                                *rel_offset,
                                // The metadata the content read belongs to (when opened).
                                meta.unwrap_or(*walked),
                                *changed,
                            ),
                            FileOutcome::Failed(why) => {
                                skipped.push(Skipped {
                                    path: path.display(),
                                    reason: why.clone(),
                                });
                                continue;
                            }
                        },
                        (None, None) => continue,
                    };
                let mut e = plain_entry(path.clone(), EntryKind::File, &meta);
                e.size = Some(size);
                e.sha256 = Some(sha);
                e.offset = Some(base[*seg] + rel);
                if plan.segs[*seg].cacheable {
                    (e.ino, e.ctime, e.ctime_ns) =
                        (Some(meta.ino), Some(meta.ctime), Some(meta.ctime_ns));
                }
                if changed {
                    e.changed = true;
                    changed_files.push(path.display());
                }
                e
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
    Ok(Assembled {
        manifest,
        summary,
        cache_segments,
        bytes_unchanged,
        changed: changed_files,
    })
}

/// A freshly read segment is cached only if every file was read whole, unchanged since the
/// walk and while it was read: the cache vouches that this content goes with that metadata.
fn cacheable(seg: &PlanSeg, r: &SegmentResult) -> Option<CachedSegment> {
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
            }),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some(CachedSegment {
        files,
        chunks: r.chunks.clone(),
    })
}

/// What each store holds of the chunks, as listed at the start, and what this run sealed.
struct Held<'a> {
    listings: &'a [HashMap<String, u64>],
    fossils: &'a [HashMap<String, u64>],
    sealed: &'a HashMap<String, upload::SealedChunk>,
}

impl Held<'_> {
    /// Does store `i` hold chunk `id` under its own name?
    fn has(&self, i: usize, id: &str) -> bool {
        self.listings[i].contains_key(id) || self.sealed.get(id).is_some_and(|c| c.stored[i])
    }

    /// Where to read chunk `id` for store `to`: its own fossil first (bringing it back costs
    /// no transfer), then another store's chunk, then another store's fossil.
    fn source(&self, to: usize, id: &str) -> Option<(usize, String)> {
        let chunk = format::chunk_object(id);
        let n = self.listings.len();
        if self.fossils[to].contains_key(id) {
            return Some((to, format::fossil_object(&chunk)));
        }
        if let Some(j) = (0..n).find(|&j| j != to && self.has(j, id)) {
            return Some((j, chunk));
        }
        (0..n)
            .find(|&j| self.fossils[j].contains_key(id))
            .map(|j| (j, format::fossil_object(&chunk)))
    }
}

/// The ciphertext size and SHA-256 of every needed chunk: from this run, from earlier
/// commits, or — for chunks no commit lists (left by an interrupted run, or set aside by
/// prune) — by reading them.
async fn resolve_hashes(
    repo: &Repository,
    needed: &[String],
    held: &Held<'_>,
) -> Result<HashMap<String, ObjectRef>> {
    let mut resolved = HashMap::with_capacity(needed.len());
    let mut open: HashSet<&str> = HashSet::new();
    for id in needed {
        match held.sealed.get(id) {
            Some(c) => {
                resolved.insert(
                    id.clone(),
                    ObjectRef {
                        name: format::chunk_object(id),
                        size: c.size,
                        sha256: c.sha256.clone(),
                    },
                );
            }
            None => {
                open.insert(id);
            }
        }
    }
    if !open.is_empty() {
        let commits = repo.live_commits_newest_first().await?;
        futures::pin_mut!(commits);
        while let Some(commit) = commits.next().await {
            for o in commit.objects {
                if let Some(id) = format::chunk_id_of(&o.name)
                    && open.remove(id)
                {
                    resolved.insert(id.to_owned(), o);
                }
            }
            if open.is_empty() {
                break;
            }
        }
    }
    for id in open {
        let bytes = read_unlisted(repo, held, id).await?;
        resolved.insert(
            id.to_owned(),
            ObjectRef::of(&format::chunk_object(id), &bytes),
        );
    }
    Ok(resolved)
}

/// Read a chunk no commit lists, wherever it is: under its name, or as a fossil (prune may
/// set it aside while this run is going).
async fn read_unlisted(repo: &Repository, held: &Held<'_>, id: &str) -> Result<Bytes> {
    let chunk = format::chunk_object(id);
    let fossil = format::fossil_object(&chunk);
    let mut last = None;
    for (i, store) in repo.stores.iter().enumerate() {
        if !held.listings[i].contains_key(id) && !held.fossils[i].contains_key(id) {
            continue;
        }
        for key in [&chunk, &fossil] {
            match store.get(key, limits::CHUNK + limits::SEAL_OVERHEAD).await {
                Ok(b) => return Ok(b),
                Err(e) => last = Some(e),
            }
        }
    }
    Err(match last {
        Some(e) => Error::Fatal {
            message: format!("chunk {id} could not be read from any store ({e})"),
            hint: Some("run the backup again; add --force-read if it keeps failing".into()),
        },
        None => Error::fatal(format!(
            "chunk {id} is in no store; run the backup again with --force-read"
        )),
    })
}

/// Give every healthy store the chunks it lacks, copying the exact ciphertext from a store
/// that has it (or bringing back a fossil), so every replica holds the same bytes and the
/// same commit.
async fn copy_missing(
    stores: &[StoreRef],
    states: &StoreStates,
    needed: &[String],
    resolved: &HashMap<String, ObjectRef>,
    held: &Held<'_>,
) {
    let mut copies = Vec::new();
    for (i, _) in stores
        .iter()
        .enumerate()
        .filter(|(i, _)| states.healthy(*i))
    {
        for id in needed.iter().filter(|id| !held.has(i, id)) {
            if let Some((from, key)) = held.source(i, id) {
                copies.push((from, key, i, id.as_str()));
            } else {
                states.fail(i, format!("chunk {id} is in no store to copy from"));
            }
        }
    }
    futures::stream::iter(copies)
        .for_each_concurrent(upload::COPIES_IN_FLIGHT, |(from, key, to, id)| async move {
            if !states.healthy(to) {
                return;
            }
            let want = &resolved[id];
            match replicate::copy(&stores[from], &key, &stores[to], want, false).await {
                Ok(Some(n)) => states.count_upload(to, n),
                Ok(None) => {}
                Err(e) => states.fail(
                    to,
                    format!("copying {key} from '{}' failed: {e}", stores[from].name()),
                ),
            }
        })
        .await;
}

/// The manifest's JSON and its sealed object.
fn seal_manifest(
    manifest: &Manifest,
    level: i32,
    recipients: &[age::x25519::Recipient],
) -> Result<(Vec<u8>, Vec<u8>)> {
    let json = serde_json::to_vec(manifest)
        .map_err(|e| Error::fatal(format!("encoding the manifest: {e}")))?;
    if json.len() as u64 > limits::MANIFEST {
        return Err(Error::fatal(format!(
            "the manifest would be {} bytes, more than the {} a reader accepts; back up fewer files per snapshot",
            json.len(),
            limits::MANIFEST
        )));
    }
    let sealed = sealing::seal(&json, level, recipients)
        .map_err(|e| Error::fatal(format!("sealing the manifest: {e}")))?;
    Ok((json, sealed))
}

/// Never commit what our own reader refuses: the commit is verified and the manifest's JSON
/// parsed and validated by exactly the code every reader runs (a symlinked source once gave
/// "backup complete" snapshots that no reader accepted). The backup host cannot decrypt the
/// sealed manifest, so it checks the plaintext it sealed.
fn check_before_commit(
    manifest_json: &[u8],
    commit_bytes: &[u8],
    commit: &Commit,
    key: &WriteKey,
) -> Result<()> {
    let refused = |why: String| {
        Error::Fatal {
        message: format!(
            "refusing to commit snapshot {}: every reader would refuse it ({why}); nothing was committed",
            commit.snapshot_id
        ),
        hint: Some(
            "this is a bug in snapdrill: please report it with this message; the chunks already uploaded are reused by the next backup"
                .into(),
        ),
    }
    };
    let read_back = Commit::from_object(
        commit_bytes,
        &key.signer(),
        &commit.repository_id,
        &commit.snapshot_id,
    )
    .map_err(|e| refused(format!("commit: {e}")))?;
    Manifest::parse(manifest_json, &read_back).map_err(|e| refused(format!("manifest: {e}")))?;
    Ok(())
}

/// Confirm each healthy store holds every object at the right size, then write its manifest
/// and, last, its commit.
async fn commit_everywhere(
    stores: &[StoreRef],
    states: &StoreStates,
    commit: &Commit,
    manifest: Bytes,
    commit_bytes: Bytes,
) {
    let jobs = stores
        .iter()
        .enumerate()
        .filter(|(i, _)| states.healthy(*i))
        .map(|(i, store)| {
            let (manifest, commit_bytes) = (manifest.clone(), commit_bytes.clone());
            async move {
                let result = async {
                    confirm_objects(store, commit).await?;
                    if store::put_create_checked(
                        store.as_ref(),
                        &commit.manifest.name,
                        manifest.clone(),
                    )
                    .await?
                        == store::Created::Written
                    {
                        states.count_upload(i, manifest.len() as u64);
                    }
                    let head = store.head(&commit.manifest.name).await?;
                    if head.size != commit.manifest.size {
                        return Err(Error::integrity(
                            Some(store.name()),
                            Some(&commit.manifest.name),
                            "size differs after upload",
                        ));
                    }
                    let name = format::commit_object(&commit.snapshot_id);
                    if store::put_create_checked(store.as_ref(), &name, commit_bytes.clone())
                        .await?
                        == store::Created::Written
                    {
                        states.count_upload(i, commit_bytes.len() as u64);
                    }
                    Ok::<(), Error>(())
                }
                .await;
                if let Err(e) = result {
                    states.fail(i, e.to_string());
                }
            }
        });
    futures::future::join_all(jobs).await;
}

/// Check that `store` lists every object at its size. A chunk this run reused may have
/// been set aside by prune since the run began: if it is gone it is brought back from its
/// fossil; if a fossil exists beside it, another backup may have uploaded a new encryption
/// under the name, so its bytes are checked. The commit must never name a missing or
/// different object.
async fn confirm_objects(store: &StoreRef, commit: &Commit) -> Result<()> {
    let listed: HashMap<String, u64> = store
        .list(format::CHUNKS_PREFIX)
        .await?
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    let fossils: HashSet<String> = store
        .list(format::FOSSILS_PREFIX)
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    for o in &commit.objects {
        let fossil = format::fossil_object(&o.name);
        match listed.get(&o.name) {
            Some(&size) if size != o.size => {
                return Err(Error::integrity(
                    Some(store.name()),
                    Some(&o.name),
                    format!("is {size} bytes, {} expected; not committed here", o.size),
                ));
            }
            Some(_) if fossils.contains(&fossil) => {
                let bytes = store.get(&o.name, o.size).await?;
                if !o.matches(&bytes) {
                    return Err(Error::integrity(
                        Some(store.name()),
                        Some(&o.name),
                        "was set aside by prune and another backup stored a different encryption under its name; not committed here (the next backup completes it)",
                    ));
                }
            }
            Some(_) => {}
            None => {
                replicate::copy(store, &fossil, store, o, false).await.map_err(|e| {
                    Error::integrity(
                        Some(store.name()),
                        Some(&o.name),
                        format!("is missing after upload and has no intact fossil ({e}); not committed here"),
                    )
                })?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind) -> Entry {
        let meta = Meta {
            mode: 0o644,
            mtime: 0,
            mtime_ns: 0,
            size: 0,
            ino: 0,
            ctime: 0,
            ctime_ns: 0,
            dev: 0,
        };
        let mut e = plain_entry(WirePath(path.as_bytes().to_vec()), kind, &meta);
        if kind == EntryKind::Symlink {
            e.target = Some(WirePath(b"/elsewhere".to_vec()));
        }
        e
    }

    fn commit_of(key: &WriteKey, m: &Manifest) -> Commit {
        let manifest_ref = ObjectRef {
            name: format::manifest_object(&m.snapshot_id),
            size: 1,
            sha256: "0".repeat(64),
        };
        Commit::new(
            &key.repository_id,
            &m.snapshot_id,
            &m.time,
            "host",
            Vec::new(),
            Summary::default(),
            manifest_ref,
            Vec::new(),
        )
    }

    /// The gate refuses exactly what readers refuse: an entry below a symlink (what a
    /// symlinked source root once produced), a path twice; it passes a sound manifest.
    #[test]
    fn a_manifest_the_reader_would_refuse_is_never_committed() {
        let key = WriteKey::generate();
        let now = SystemTime::now();
        let (id, time) = (format::new_snapshot_id(now), format::format_time(now));
        let check = |entries: Vec<Entry>| {
            let mut m = Manifest::new(&key.repository_id, &id, &time);
            m.entries = entries;
            let commit = commit_of(&key, &m);
            let json = serde_json::to_vec(&m).unwrap();
            check_before_commit(&json, &commit.to_object(&key.signing), &commit, &key)
        };
        assert!(
            check(vec![
                entry("exports", EntryKind::Dir),
                entry("exports/a", EntryKind::Dir)
            ])
            .is_ok()
        );
        for bad in [
            vec![
                entry("exports", EntryKind::Symlink),
                entry("exports/a", EntryKind::Dir),
            ],
            vec![
                entry("exports", EntryKind::Dir),
                entry("exports", EntryKind::Dir),
            ],
        ] {
            let err = check(bad).unwrap_err().to_string();
            assert!(
                err.contains("refusing to commit snapshot")
                    && err.contains("nothing was committed"),
                "{err}"
            );
        }
    }
}
