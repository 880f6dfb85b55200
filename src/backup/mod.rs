//! `backup`: walk, read, chunk, seal once, upload everywhere, commit last.
//!
//! Order of a run (docs/design.md, rule 1), one module per phase: `plan` from the walk
//! and the local cache, against each store's chunk listing (the store's listing is the
//! index); `assemble` reads and chunks what changed while [`upload`] seals and uploads
//! new chunks, then builds the manifest; `commit` resolves every object's ciphertext hash,
//! copies chunks a store lacks from a store that has them, refuses what a reader would
//! refuse, confirms by a fresh listing that each store holds every object at the right
//! size, then per store writes the sealed manifest and — last — the signed commit. A crash
//! before the commit leaves only unreferenced chunks behind. [`job`] wraps a run in the
//! job's lock and ledger; [`render`] prints its report; [`dryrun`] plans a job from the
//! walk and the files cache without touching a store (`backup --dry-run`).

mod assemble;
pub mod cache;
mod chunker;
mod commit;
pub mod dryrun;
mod health;
pub mod job;
mod listed;
pub mod marker;
pub mod metrics;
mod plan;
mod reader;
pub mod render;
pub mod upload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use serde::Serialize;

use self::assemble::{Assembled, Assembler};
use self::cache::{CacheWriter, FilesCache};
use self::commit::Held;
use self::listed::Listed;
use self::upload::{StoreStates, Uploader};
pub use crate::config::OnChanged;
use crate::error::{Error, Result};
use crate::format;
use crate::format::chunk_list::ChunkObject;
use crate::format::commit::{Commit, DataSet, ObjectRef, Origin};
use crate::keys::WriteKey;
use crate::repository::Repository;
use crate::source::{self, Excludes, Items, Skipped, Walked};
use crate::store::StoreRef;

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
    /// The job's name, recorded in the commit.
    pub job: String,
    /// What the job checks of its data before it is saved.
    pub health: crate::config::Health,
    /// Where the job's health baseline is remembered (`None`: no `shrink_alert` check).
    pub state_dir: Option<PathBuf>,
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
    /// The job (with the host: the data set).
    pub job: String,
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
    /// Files (or the data set) that shrank more than `shrink_alert` allows: the backup is
    /// partial.
    pub shrunk: Vec<String>,
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
            || !self.shrunk.is_empty()
        {
            exit::PARTIAL
        } else {
            exit::OK
        }
    }
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

impl Run {
    /// `-v`: a phase of the run is done, with the time since the run started.
    fn phase(&self, job: &str, what: std::fmt::Arguments<'_>) {
        let ms = self.started.elapsed().as_millis() as u64;
        tracing::info!(job, ms, "{what}");
    }
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
    let mut warnings = Vec::new();
    let markers = health::check_before(&opts.health, &opts.paths)?;
    let mut walked = walk_sources(opts)?;
    let listed = Listed::fetch(&run.stores, &run.states).await?;
    let (mut assembled, uploader, bytes_read) = read_all(
        repo,
        key,
        &recipients,
        opts,
        progress,
        run,
        std::mem::take(&mut walked.items),
        &listed,
        &mut warnings,
    )
    .await?;
    run.phase(&opts.job, format_args!("read and uploaded {bytes_read} B"));
    run.ensure_a_store()?;
    walked.skipped.append(&mut assembled.skipped);
    warnings.append(&mut assembled.warnings);
    refuse_changed(opts, &assembled)?;
    health::check_after(&markers)?;

    let needed = assembled.head.chunk_ids_first_use();
    let held = Held {
        stores: run.stores.len(),
        listed: &listed,
        sealed: &uploader.sealed,
    };
    let mut resolved = commit::resolve_hashes(repo, &needed, &held).await?;
    commit::copy_missing(&run.stores, &run.states, &needed, &resolved, &held).await;
    run.ensure_in_time(opts.writer_timeout)?;
    let objects = needed
        .iter()
        .map(|id| resolved.remove(id))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| Error::fatal("a chunk of this backup has no known hash"))?;
    drop(resolved);
    let chosen = Chosen {
        objects,
        held: &held,
    };
    let commit = seal_and_commit(repo, key, &recipients, opts, run, &assembled, chosen).await?;

    warnings.extend(assembled.commit_cache());
    let shrunk = shrinkage(opts, &commit, &assembled.baseline, &mut warnings);
    let outcome = Outcome {
        walked,
        assembled,
        bytes_read,
        chunks: needed.len() as u64,
        warnings,
        shrunk,
    };
    Ok(outcome.report(repo, opts, run, &uploader, &commit))
}

/// Plan, read, upload and assemble the walked `items`: the manifest spooled, the uploader
/// (what it sealed), and the bytes read.
#[allow(clippy::too_many_arguments)]
async fn read_all(
    repo: &Repository,
    key: &WriteKey,
    recipients: &[age::x25519::Recipient],
    opts: &BackupOptions,
    progress: &(dyn Fn(Progress) + Send + Sync),
    run: &Run,
    items: Items,
    listed: &Arc<Listed>,
    warnings: &mut Vec<String>,
) -> Result<(Assembled, Uploader, u64)> {
    let (files_cache, new_cache) = load_cache(opts, key, warnings);
    let chunking = repo.config.chunking;
    let bytes_total = items.bytes();
    let work = reader::Work {
        items: items
            .read_back()
            .map_err(|e| scratch("read back the walk from", e))?,
        planner: plan::Planner::new(
            u64::from(chunking.min_size),
            files_cache,
            plan::listed_set(listed.clone()),
            key.dedup,
        ),
        stream: opts
            .stream
            .as_ref()
            .map(|s| plan::stream_piece(s, run.time))
            .transpose()?,
    };
    let mut uploader = Uploader::new(
        run.stores.clone(),
        recipients.to_vec(),
        opts.compression,
        listed.clone(),
        run.states.clone(),
    );
    let mut assembler = Assembler::new(
        &repo.config.repository_id,
        &run.snapshot_id,
        run.time,
        opts,
        new_cache,
    )?;
    let bytes_read = assemble::read_and_upload(
        work,
        chunking,
        key.dedup,
        &mut uploader,
        progress,
        bytes_total,
        &mut assembler,
    )
    .await?;
    crate::memory::release_free_pages();
    Ok((assembler.finish()?, uploader, bytes_read))
}

/// The `shrink_alert` findings against the data set's previous backup on this host, and
/// this backup (`commit`, just committed) remembered as the next one's baseline (a problem
/// doing so is a warning).
fn shrinkage(
    opts: &BackupOptions,
    commit: &Commit,
    now: &health::Baseline,
    warnings: &mut Vec<String>,
) -> Vec<String> {
    let Some(dir) = &opts.state_dir else {
        return Vec::new();
    };
    let file = dir.join("health").join(&commit.repository_id).join(format!(
        "{}-{}.json",
        opts.job,
        commit.source.as_deref().unwrap_or_default()
    ));
    let shrunk = match (opts.health.shrink_alert, health::Baseline::load(&file)) {
        (Some(percent), Some(before)) => now.shrunk_since(&before, percent),
        _ => Vec::new(),
    };
    if let Err(e) = now.save(&file) {
        warnings.push(format!(
            "could not remember this backup for the next shrink check ({}): {e}",
            file.display()
        ));
    }
    shrunk
}

/// The job's files cache (empty with `--force-read` or no cache folder, and a warning
/// when it could not be read), and the new one to write as the run goes.
fn load_cache(
    opts: &BackupOptions,
    key: &WriteKey,
    warnings: &mut Vec<String>,
) -> (FilesCache, Option<CacheWriter>) {
    let Some(dir) = &opts.cache_dir else {
        return (FilesCache::default(), None);
    };
    let path = cache::cache_path(dir, &key.repository_id, &plan::job_key(opts));
    let files = if opts.force_read {
        FilesCache::default()
    } else {
        let (c, warning) = FilesCache::load(&path, &key.repository_id, plan::tops(opts));
        warnings.extend(warning);
        c
    };
    let new = CacheWriter::create(&path, &key.repository_id)
        .map_err(|e| warnings.push(format!("could not write the cache {}: {e}", path.display())))
        .ok();
    (files, new)
}

/// Walk the sources into a spool; nothing readable at all (and no stream) is an error, not
/// an empty snapshot, and so is a stream named like a walked path.
fn walk_sources(opts: &BackupOptions) -> Result<Walked> {
    let excludes = Excludes::new(&opts.exclude)?;
    let mut items = Items::on_disk().map_err(|e| scratch("write the walk to", e))?;
    if let Some(stream) = &opts.stream {
        plan::check_stream_name(stream)?;
        items = items.watching(stream.name.as_bytes());
    }
    let walked = source::walk_into(&opts.paths, &excludes, items)?;
    let (entries, skipped) = (walked.items.len(), walked.skipped.len());
    tracing::info!(job = %opts.job, entries, skipped, "walked the sources");
    if let (Some(stream), Some(clash)) = (&opts.stream, walked.items.clash()) {
        return Err(plan::stream_clash(stream, clash));
    }
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
    Ok(walked)
}

/// The backup's scratch (the spooled walk and manifest, in `TMPDIR`) failed: where, and
/// what to do. Nothing was committed.
fn scratch(what: &str, e: std::io::Error) -> Error {
    Error::Fatal {
        message: format!(
            "cannot {what} a temporary file in {} ({e}); no snapshot was written",
            std::env::temp_dir().display()
        ),
        hint: Some(
            "set TMPDIR to a folder with room for ~150 bytes per file backed up (docs/operations.md)"
                .into(),
        ),
    }
}

/// With `changed_while_read = "fail"`, a file that kept changing means no snapshot.
fn refuse_changed(opts: &BackupOptions, assembled: &Assembled) -> Result<()> {
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
    Ok(())
}

/// The chunk objects a commit names, in the order the manifest first uses them, and what
/// each store already holds.
struct Chosen<'a> {
    objects: Vec<ChunkObject>,
    held: &'a Held<'a>,
}

/// Seal the manifest, sign the commit, check both as a reader would, and commit in every
/// healthy store; the commit, once at least one store holds it.
async fn seal_and_commit(
    repo: &Repository,
    key: &WriteKey,
    recipients: &[age::x25519::Recipient],
    opts: &BackupOptions,
    run: &Run,
    assembled: &Assembled,
    chosen: Chosen<'_>,
) -> Result<Commit> {
    run.phase(
        &opts.job,
        format_args!("objects in every store; sealing, committing"),
    );
    let sealed_manifest = commit::seal_spooled(&assembled.manifest, recipients)?;
    let manifest_ref = ObjectRef::of(&format::manifest_object(&run.snapshot_id), &sealed_manifest);
    let Chosen {
        objects: first_use,
        held,
    } = chosen;
    let (commit, lists) = Commit::new(
        &repo.config.repository_id,
        &run.snapshot_id,
        &format::format_time(run.time),
        Origin {
            set: data_set(opts, key),
            tags: opts.tags.clone(),
        },
        assembled.summary.clone(),
        manifest_ref,
        &first_use,
    );
    let commit_bytes = Bytes::from(commit.to_object(&key.signing));
    commit::check_before_commit(&assembled.manifest, &commit_bytes, &commit, &lists, key)?;
    let (stores, states) = (&run.stores, &run.states);
    let sealed = commit::Sealed {
        commit: &commit,
        lists: &lists,
        manifest: Bytes::from(sealed_manifest),
        commit_bytes,
    };
    commit::commit_everywhere(stores, states, held, sealed).await;
    run.ensure_a_store()?;
    Ok(commit)
}

/// The data set a run of `opts` adds to: host, job, and the keyed identity of its sources.
pub fn data_set(opts: &BackupOptions, key: &WriteKey) -> DataSet {
    let paths: Vec<PathBuf> = opts
        .paths
        .iter()
        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
        .collect();
    DataSet {
        host: opts.host.clone(),
        job: Some(opts.job.clone()),
        source: Some(crate::sealing::source_id(
            &key.dedup,
            &paths,
            opts.stream.as_ref().map(|s| s.name.as_str()),
        )),
    }
}

impl Run {
    /// Every store has failed: stop with the reasons.
    fn ensure_a_store(&self) -> Result<()> {
        if (0..self.stores.len()).any(|i| self.states.healthy(i)) {
            Ok(())
        } else {
            Err(no_store_left(&self.stores, &self.states))
        }
    }

    /// A run longer than the writer timeout must not commit: a prune may already count its
    /// uploads as abandoned.
    fn ensure_in_time(&self, writer_timeout: Duration) -> Result<()> {
        let took = self.started.elapsed();
        if took <= writer_timeout {
            return Ok(());
        }
        Err(Error::Fatal {
            message: format!(
                "the backup ran {} (longer than [prune] writer_timeout): not committed, because a prune may already count its uploads as abandoned",
                humantime::format_duration(Duration::from_secs(took.as_secs()))
            ),
            hint: Some("raise [prune] writer_timeout, or split the backup; the next run reuses what was uploaded".into()),
        })
    }
}

/// What a committed run produced, for its report.
struct Outcome {
    walked: Walked,
    assembled: Assembled,
    bytes_read: u64,
    chunks: u64,
    warnings: Vec<String>,
    shrunk: Vec<String>,
}

impl Outcome {
    fn report(
        self,
        repo: &Repository,
        opts: &BackupOptions,
        run: &Run,
        uploader: &Uploader,
        commit: &Commit,
    ) -> BackupReport {
        let (chunks_new, data_added, data_stored) =
            uploader.sealed.values().fold((0, 0, 0), |acc, c| {
                (acc.0 + 1, acc.1 + c.plain_size, acc.2 + c.size)
            });
        let summary = &self.assembled.summary;
        BackupReport {
            snapshot_id: run.snapshot_id.clone(),
            time: commit.time.clone(),
            host: opts.host.clone(),
            job: opts.job.clone(),
            tags: opts.tags.clone(),
            files: summary.files,
            dirs: summary.dirs,
            symlinks: summary.symlinks,
            bytes: summary.bytes,
            bytes_read: self.bytes_read,
            bytes_unchanged: self.assembled.bytes_unchanged,
            chunks: self.chunks,
            chunks_new,
            data_added,
            data_stored,
            dedup_ratio: (data_added > 0).then(|| summary.bytes as f64 / data_added as f64),
            duration_secs: run.started.elapsed().as_secs_f64(),
            required: opts.require,
            stores: store_reports(repo, run),
            skipped: self.walked.skipped,
            ignored: self.walked.ignored,
            changed: self.assembled.changed,
            shrunk: self.shrunk,
            warnings: self.warnings,
        }
    }
}

/// Per store: committed or why not, and what was uploaded; stores that could not be opened
/// last.
fn store_reports(repo: &Repository, run: &Run) -> Vec<StoreReport> {
    let opened = run.stores.iter().enumerate().map(|(i, s)| {
        let (objects, bytes) = run.states.uploaded(i);
        StoreReport {
            name: s.name().to_owned(),
            committed: run.states.healthy(i),
            uploaded_objects: objects,
            uploaded_bytes: bytes,
            error: run.states.failure(i),
        }
    });
    let unopened = repo.unusable.iter().map(|(name, why)| StoreReport {
        name: name.clone(),
        committed: false,
        uploaded_objects: 0,
        uploaded_bytes: 0,
        error: Some(why.clone()),
    });
    opened.chain(unopened).collect()
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
