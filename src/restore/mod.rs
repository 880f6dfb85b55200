//! `restore`: verify, fetch, decrypt, decompress and verify again, then place files.
//!
//! A restore is *planned* first (pure: which entries, which chunks, every path validated)
//! and *executed* second. Chunks stream in stream order from the first store that serves an
//! intact copy (per-object failover); each is checked against the signed object list
//! (ciphertext SHA-256), decrypted, bounded-decompressed and checked against its keyed id
//! before any byte reaches a file, and each file is checked against its SHA-256 before it
//! appears at its final path.

mod check;
mod clock;
pub mod fs;
mod include;
mod piecewise;
pub mod render;
mod replica;
mod sample;
mod sink;
mod stream;

pub use clock::{Planned, Stage, StageClock, StageTimes};
pub use include::PathGlobs;
pub use piecewise::{Piecewise, open_piecewise, run_piecewise};
pub use replica::open_replica;
use sample::Sampling;
pub use sample::{Cutter, Sample};
pub use sink::FileSink;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::format::chunk_list::Chunk;
use crate::format::commit::{Commit, ObjectRef};
use crate::format::limits;
use crate::format::manifest::{Entry, EntryKind, Manifest};
use crate::keys::Identities;
use crate::localfs::tree::DirTree;
use crate::repository::{Failure, Fetched, Repository};
use crate::sealing::{self, SealError, chunk_id};

/// Chunks fetched ahead of the writer: enough to hide a store's latency.
const FETCH_AHEAD: usize = 8;
/// Plaintext fetched and not yet written: 24 MiB holds the chunks of average size (2 MiB)
/// fetched ahead, queued and being written, and keeps a run of large ones (up to 8 MiB
/// each) from holding 88, so the peak does not grow with the length of the stream.
const AHEAD_BYTES: usize = 24 << 20;

/// A chunk's plaintext on its way to the writer, at its offset in the snapshot's stream.
/// It holds its share of the fetch-ahead budget until the writer drops it, so the budget
/// covers every chunk fetched and not yet written.
pub(super) struct Arrived {
    pub(super) offset: u64,
    pub(super) data: Vec<u8>,
    _ahead: tokio::sync::OwnedSemaphorePermit,
}

/// What to restore, and where.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The target folder (created if missing).
    pub target: PathBuf,
    /// Globs of snapshot paths to restore, matched as `exclude` globs are ([`PathGlobs`]:
    /// no `/` = a name at any depth); a matching directory brings its whole subtree. Empty
    /// means everything.
    pub include: Vec<String>,
    /// Allow a non-empty target (existing files are replaced).
    pub force: bool,
    /// Stream, decrypt and verify every byte, but write nothing.
    pub verify_only: bool,
    /// Restore only the files this accepts, on top of `include` (progress totals still
    /// count every selected file).
    pub only_files: Option<FileFilter>,
    /// Restore only a sample of the files `include` selects (a sampled drill): no
    /// directories or symlinks.
    pub sample: Option<Sample>,
}

impl RestoreOptions {
    /// Restore everything into `target`.
    pub fn new(target: PathBuf) -> Self {
        RestoreOptions {
            target,
            include: Vec::new(),
            force: false,
            verify_only: false,
            only_files: None,
            sample: None,
        }
    }
}

/// A store's share of the work and the replicas that need healing.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sources {
    /// Objects served per store.
    pub served: BTreeMap<String, u64>,
    /// Replica problems met on the way (the object came from another store).
    pub repairs: Vec<Repair>,
}

/// An object a store could not serve intact.
#[derive(Debug, Clone, Serialize)]
pub struct Repair {
    /// The object.
    pub object: String,
    /// The failure.
    #[serde(flatten)]
    pub failure: Failure,
}

impl Sources {
    /// Put every copy this restore found damaged (not missing: present with the wrong
    /// bytes) in the damage register, so that `sync` replaces it.
    pub fn register_damage(&self, register: &mut crate::damage::Register, now: &str) -> usize {
        let mut n = 0;
        for r in self
            .repairs
            .iter()
            .filter(|r| r.failure.kind == crate::repository::FailureKind::Corrupt)
        {
            register.mark(&r.failure.store, &r.object, &r.failure.reason, now);
            n += 1;
        }
        n
    }

    fn record(&mut self, repo: &Repository, object: &str, store: usize, failures: Vec<Failure>) {
        *self
            .served
            .entry(repo.stores[store].name().to_owned())
            .or_default() += 1;
        self.repairs
            .extend(failures.into_iter().map(|failure| Repair {
                object: object.to_owned(),
                failure,
            }));
    }
}

/// The report of a restore.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// The snapshot.
    pub snapshot_id: String,
    /// Where it went.
    pub target: String,
    /// Files restored and verified.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Symlinks.
    pub symlinks: u64,
    /// Content bytes restored.
    pub bytes: u64,
    /// Chunk objects fetched.
    pub chunks_fetched: u64,
    /// Plaintext bytes of the chunks fetched.
    pub bytes_fetched: u64,
    /// Plaintext bytes of the whole chunk stream of the snapshot.
    pub stream_bytes: u64,
    /// Time spent in each stage, summed over concurrent work (stages overlap).
    pub stages: StageTimes,
    /// Wall-clock seconds.
    pub duration_secs: f64,
    /// Which store served what.
    pub sources: Sources,
    /// Temp files an interrupted restore had left in the target, removed first (`--force`).
    pub temps_swept: u64,
    /// Files whose line count (recorded by the backup for `.csv`, `.tsv`, `.jsonl`,
    /// `.ndjson`) was counted again as their bytes streamed by.
    pub lines_checked: u64,
    /// Files whose content matched its SHA-256 but whose lines differ from the count the
    /// backup recorded (a drill fails on these; a restore warns).
    pub line_mismatches: Vec<String>,
}

/// An opened snapshot: verified manifest plus what is needed to read its chunks.
pub struct Opened {
    /// The commit.
    pub commit: Arc<Commit>,
    /// The verified manifest.
    pub manifest: Manifest,
    /// The dedup key (to check chunk ids).
    pub dedup: [u8; 32],
    /// Where the manifest came from.
    pub sources: Sources,
}

/// The identity's view of the repository: the dedup key, or exit 12 with one clear line.
pub fn dedup_key(repo: &Repository, identities: &Identities) -> Result<[u8; 32]> {
    // The repository's read keys this identity opens decrypt the objects from here on.
    identities.unlock(&repo.config.sealed_read_keys());
    repo.config
        .dedup_key(identities.as_age())
        .map_err(|e| match e {
            SealError::NoMatchingKey => Error::key(
                format!(
                    "the identity {} cannot decrypt repository {}: it is not one of its recipients",
                    identities.path.display(),
                    repo.config.repository_id
                ),
                "use the identity whose age1... recipient is in the config's recipients",
            ),
            other => Error::integrity(
                None,
                Some("config"),
                format!("the encrypted dedup key: {other}"),
            ),
        })
}

/// Fetch, verify and decrypt a snapshot's manifest.
pub async fn open_snapshot(
    repo: &Repository,
    commit: Arc<Commit>,
    identities: Arc<Identities>,
) -> Result<Opened> {
    let dedup = dedup_key(repo, &identities)?;
    let c = commit.clone();
    let fetched = repo
        .fetch_verified(&commit.manifest, move |bytes| {
            sealing::open_with(&bytes, identities.as_age(), limits::MANIFEST, |json| {
                Manifest::parse_reader(json, &c)
            })
            .map_err(|e| e.to_string())
        })
        .await?;
    let mut sources = Sources::default();
    sources.record(repo, &commit.manifest.name, fetched.store, fetched.failures);
    Ok(Opened {
        commit,
        manifest: fetched.value,
        dedup,
        sources,
    })
}

/// The pure plan of a restore.
/// What a restore writes, taken out of the manifest (moved, not copied: a million-file
/// manifest's entries are held once).
struct Plan {
    dirs: Vec<Entry>,
    files: Vec<Entry>,
    symlinks: Vec<Entry>,
    /// Indices into the manifest's chunk list, in order.
    chunks: Vec<usize>,
}

/// A predicate on a manifest's files, given the manifest (its chunk stream) and its chunk
/// offsets: `audit --deep` takes only the files whose content it has not verified yet.
#[derive(Clone)]
pub struct FileFilter(Arc<TakesFile>);

/// The predicate of a [`FileFilter`].
type TakesFile = dyn Fn(&Manifest, &[u64], &Entry) -> bool + Send + Sync;

impl FileFilter {
    /// A filter taking the files `f` accepts.
    pub fn new(f: impl Fn(&Manifest, &[u64], &Entry) -> bool + Send + Sync + 'static) -> Self {
        FileFilter(Arc::new(f))
    }

    /// Does it take `e`, a file of `manifest`?
    pub fn takes(&self, manifest: &Manifest, offsets: &[u64], e: &Entry) -> bool {
        (self.0)(manifest, offsets, e)
    }
}

impl std::fmt::Debug for FileFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileFilter")
    }
}

/// Which entries a restore takes, on either path: those its `--include` globs select and,
/// with a filter or a sample, only the files these take.
struct Selection {
    globs: Arc<PathGlobs>,
    filter: Option<FileFilter>,
    sampling: Option<Sampling>,
}

impl Selection {
    fn new(globs: Arc<PathGlobs>, filter: Option<FileFilter>, sample: Option<Sample>) -> Self {
        Selection {
            globs,
            filter,
            sampling: sample.map(Sampling::new),
        }
    }

    /// The next entry in manifest order, of `manifest` whose chunk offsets are `offsets`.
    fn takes(&mut self, manifest: &Manifest, offsets: &[u64], e: &Entry) -> bool {
        self.globs.takes(&e.path.0)
            && self
                .filter
                .as_ref()
                .is_none_or(|f| e.kind == EntryKind::File && f.takes(manifest, offsets, e))
            && self.sampling.as_mut().is_none_or(|s| s.takes(e))
    }
}

/// Globs that selected nothing are a mistake to report, not an empty restore.
fn check_matched(globs: &PathGlobs, entries: u64, snapshot_id: &str) -> Result<()> {
    if globs.is_empty() || entries > 0 {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "no path in snapshot {snapshot_id} matches {} (a pattern without `/` matches a name at any depth, one with `/` the path from the snapshot's root); `snapdrill ls SNAPSHOT` shows the paths",
        globs.patterns().join(", ")
    )))
}

fn plan(manifest: &mut Manifest, opts: &RestoreOptions) -> Result<Plan> {
    let globs = Arc::new(PathGlobs::new(&opts.include, "--include")?);
    let mut selection = Selection::new(globs, opts.only_files.clone(), opts.sample);
    let offsets = manifest.chunk_offsets();
    let mut p = Plan {
        dirs: Vec::new(),
        files: Vec::new(),
        symlinks: Vec::new(),
        chunks: Vec::new(),
    };
    for e in std::mem::take(&mut manifest.entries) {
        if !selection.takes(manifest, &offsets, &e) {
            continue;
        }
        match e.kind {
            EntryKind::Dir => p.dirs.push(e),
            EntryKind::File => p.files.push(e),
            EntryKind::Symlink => p.symlinks.push(e),
        }
    }
    let taken = p.dirs.len() + p.files.len() + p.symlinks.len();
    check_matched(&selection.globs, taken as u64, &manifest.snapshot_id)?;
    p.files.sort_by_key(|e| e.offset);
    p.chunks = chunks_for(manifest, &p.files.iter().collect::<Vec<_>>());
    Ok(p)
}

/// The chunks holding the content of `files` (sorted by offset), in stream order, once.
fn chunks_for(manifest: &Manifest, files: &[&Entry]) -> Vec<usize> {
    let offsets = manifest.chunk_offsets();
    let mut chunks = Vec::new();
    let mut last: Option<usize> = None;
    for f in files.iter().filter(|f| f.file_size() > 0) {
        for (k, _, _) in manifest.chunk_ranges(&offsets, f) {
            if last.is_none_or(|l| k > l) {
                chunks.push(k);
                last = Some(k);
            }
        }
    }
    chunks
}

/// Restore `opened` into `opts.target` (or only verify it, with `opts.verify_only`).
pub async fn run(
    repo: &Repository,
    mut opened: Opened,
    identities: Arc<Identities>,
    opts: &RestoreOptions,
    clock: Arc<StageClock>,
) -> Result<RestoreReport> {
    let started = Instant::now();
    let mut plan = plan(&mut opened.manifest, opts)?;
    let file_count = plan.files.len() as u64;
    clock.set_planned(Planned {
        files: file_count,
        bytes: plan.files.iter().map(|f| f.file_size()).sum(),
    });
    let (mut target, temps_swept) = open_target(opts, &plan)?;
    // Fetch and verify chunks in order here; write files on a blocking thread.
    let files = std::mem::take(&mut plan.files);
    let (writer_target, writer_clock) = (target.as_ref().map(DirTree::share), clock.clone());
    let mut sources = std::mem::take(&mut opened.sources);
    let (bytes, chunks_fetched, bytes_fetched) = Fetcher::of(repo, &opened, identities, &clock)?
        .through(ks_of(&plan.chunks), &mut sources, move |rx| {
            stream::consume(writer_target, files.into_iter(), rx, &writer_clock)
        })
        .await?;
    if let Some(tree) = target.as_mut() {
        finish_tree(tree, &plan.dirs, &plan.symlinks)?;
    }
    Ok(RestoreReport {
        files: file_count,
        dirs: plan.dirs.len() as u64,
        symlinks: plan.symlinks.len() as u64,
        bytes,
        chunks_fetched,
        bytes_fetched,
        stream_bytes: opened.manifest.stream_len(),
        sources,
        temps_swept,
        ..RestoreReport::timed(&opened.commit.snapshot_id, target.as_ref(), &clock, started)
    })
}

impl RestoreReport {
    /// What both restore paths report alike: the target as shown, the stage times, the
    /// duration and the line counts; the counts are the caller's.
    fn timed(
        snapshot_id: &str,
        target: Option<&DirTree>,
        clock: &StageClock,
        started: Instant,
    ) -> RestoreReport {
        RestoreReport {
            snapshot_id: snapshot_id.to_owned(),
            target: target.map_or_else(
                || "(verify only)".into(),
                |t| t.root_path().display().to_string(),
            ),
            files: 0,
            dirs: 0,
            symlinks: 0,
            bytes: 0,
            chunks_fetched: 0,
            bytes_fetched: 0,
            stream_bytes: 0,
            stages: clock.times(),
            duration_secs: started.elapsed().as_secs_f64(),
            sources: Sources::default(),
            temps_swept: 0,
            lines_checked: clock.lines_checked(),
            line_mismatches: clock.line_mismatches(),
        }
    }
}

impl<'a> Fetcher<'a> {
    /// A fetcher for the chunks of `manifest`, checked against its `commit`.
    fn new(
        repo: &'a Repository,
        (commit, manifest): (&Commit, &'a Manifest),
        dedup: [u8; 32],
        identities: Arc<Identities>,
        clock: &Arc<StageClock>,
    ) -> Result<Self> {
        Ok(Fetcher {
            repo,
            chunk_refs: chunk_objects(commit, manifest)?,
            manifest,
            dedup,
            identities,
            clock: clock.clone(),
        })
    }

    /// A fetcher for the chunks of `opened`.
    fn of(
        repo: &'a Repository,
        opened: &'a Opened,
        identities: Arc<Identities>,
        clock: &Arc<StageClock>,
    ) -> Result<Self> {
        let parts = (&*opened.commit, &opened.manifest);
        Self::new(repo, parts, opened.dedup, identities, clock)
    }

    /// Fetch chunks `ks` in stream order into `consume`, which runs on a blocking thread
    /// with the receiving end; what `consume` returns, and how many chunks and bytes were
    /// fetched.
    async fn through<T: Send + 'static>(
        &self,
        ks: impl futures::Stream<Item = usize>,
        sources: &mut Sources,
        consume: impl FnOnce(mpsc::Receiver<Arrived>) -> Result<T> + Send + 'static,
    ) -> Result<(T, u64, u64)> {
        let (tx, rx) = mpsc::channel::<Arrived>(2);
        let writer = tokio::task::spawn_blocking(move || consume(rx));
        let fetched = self.run(ks, sources, tx).await;
        let written = writer
            .await
            .map_err(|e| Error::fatal(format!("restore writer failed: {e}")))?;
        // A failed fetch explains a writer that stopped early, so it is reported first.
        let (chunks_fetched, bytes_fetched) = fetched?;
        Ok((written?, chunks_fetched, bytes_fetched))
    }
}

/// What [`stream_files`] did.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Streamed {
    /// Files streamed and checked.
    pub files: u64,
    /// Their content bytes.
    pub bytes: u64,
    /// Chunk objects fetched.
    pub chunks_fetched: u64,
    /// Plaintext bytes of the chunks fetched.
    pub bytes_fetched: u64,
}

/// Stream the content of `files` (file entries of `opened`; others are ignored) through
/// `sink` with a restore's checks: every chunk from the first store whose copy is intact,
/// verified against the signed commit and its keyed id, and each file's size and SHA-256
/// checked before [`FileSink::end`]. Empty files come first, then stream order; memory
/// holds a few chunks, whatever the size of the files. The sink comes back to be finished.
pub async fn stream_files<S: FileSink>(
    repo: &Repository,
    opened: &mut Opened,
    identities: Arc<Identities>,
    mut files: Vec<Entry>,
    sink: S,
    clock: Arc<StageClock>,
) -> Result<(S, Streamed)> {
    files.retain(|f| f.kind == EntryKind::File);
    files.sort_by_key(|f| f.offset);
    clock.set_planned(Planned {
        files: files.len() as u64,
        bytes: files.iter().map(|f| f.file_size()).sum(),
    });
    let chunks = chunks_for(&opened.manifest, &files.iter().collect::<Vec<_>>());
    let count = files.len() as u64;
    let feed_clock = clock.clone();
    let mut sources = std::mem::take(&mut opened.sources);
    let fetched = Fetcher::of(repo, opened, identities, &clock)?
        .through(ks_of(&chunks), &mut sources, move |rx| {
            let mut sink = sink;
            sink::feed(&mut sink, files, rx, &feed_clock).map(|bytes| (sink, bytes))
        })
        .await;
    opened.sources = sources;
    let ((sink, bytes), chunks_fetched, bytes_fetched) = fetched?;
    Ok((
        sink,
        Streamed {
            files: count,
            bytes,
            chunks_fetched,
            bytes_fetched,
        },
    ))
}

/// The target folder, checked and opened, with every directory the plan needs (none for
/// `--verify-only`); and how many temp files of an interrupted restore were swept.
fn open_target(opts: &RestoreOptions, plan: &Plan) -> Result<(Option<DirTree>, u64)> {
    if opts.verify_only {
        return Ok((None, 0));
    }
    let (mut tree, swept) = prepare_target(&opts.target, opts.force)?;
    for d in &plan.dirs {
        fs::ensure_dirs(&mut tree, &d.path.0)?;
    }
    for e in plan.files.iter().chain(&plan.symlinks) {
        let (parent, _) = crate::localfs::tree::split_parent(&e.path.0);
        fs::ensure_dirs(&mut tree, parent)?;
    }
    Ok((Some(tree), swept))
}

/// What fetching a snapshot's chunks needs.
struct Fetcher<'a> {
    repo: &'a Repository,
    manifest: &'a Manifest,
    /// Each chunk's object in the signed commit, by handle (4 bytes a chunk: its name and
    /// hash strings are made when it is fetched; held whole they were ~220 bytes a chunk).
    chunk_refs: Vec<Chunk>,
    dedup: [u8; 32],
    identities: Arc<Identities>,
    clock: Arc<StageClock>,
}

impl Fetcher<'_> {
    /// Fetch chunks `ks`, verified and decrypted, a few ahead, and send each with its offset
    /// in the stream to the writer, in order; who served each goes to `sources`. Stops at
    /// the first chunk no store serves intact, or when the writer has stopped. How many
    /// chunks and ciphertext bytes arrived.
    async fn run(
        &self,
        ks: impl futures::Stream<Item = usize>,
        sources: &mut Sources,
        tx: mpsc::Sender<Arrived>,
    ) -> Result<(u64, u64)> {
        let offsets = self.manifest.chunk_offsets();
        let budget = crate::memory::Budget::new(AHEAD_BYTES);
        let mut fetches = std::pin::pin!(
            ks.then(|k| {
                let (budget, len) = (budget.clone(), self.manifest.chunks[k].size as usize);
                // In stream order, so the chunk the writer needs next always holds its share.
                async move { (k, budget.take(len).await) }
            })
            .map(|(k, permit)| {
                let object = self.chunk_refs[k].to_ref();
                async move { (k, object.name.clone(), self.fetch(k, &object).await, permit) }
            })
            .buffered(FETCH_AHEAD)
        );
        let (mut count, mut bytes) = (0, 0);
        let mut trim = crate::memory::Trim::default();
        while let Some((k, name, fetched, permit)) = fetches.next().await {
            trim.chunk_done();
            let ahead = permit.ok_or_else(|| Error::fatal("restore fetch budget closed"))?;
            let f = fetched?;
            count += 1;
            bytes += f.value.len() as u64;
            sources.record(self.repo, &name, f.store, f.failures);
            let arrived = Arrived {
                offset: offsets[k],
                data: f.value,
                _ahead: ahead,
            };
            if tx.send(arrived).await.is_err() {
                break; // the writer failed; its error is reported by the caller
            }
        }
        Ok((count, bytes))
    }

    /// Chunk `k` from the first store whose copy is intact, decrypted and checked against
    /// its keyed id; download and decryption time go to their stages.
    async fn fetch(&self, k: usize, object: &ObjectRef) -> Result<Fetched<Vec<u8>>> {
        let t = Instant::now();
        let chunk = self.manifest.chunks[k].clone();
        let (ids, dedup) = (self.identities.clone(), self.dedup);
        let decrypt = Arc::new(StageClock::default());
        let inner = decrypt.clone();
        let fetched = self
            .repo
            .fetch_keyed(object, move |bytes| {
                inner.time(Stage::Decrypt, || open_chunk(&bytes, &ids, &dedup, &chunk))
            })
            .await;
        let spent = Duration::from_secs_f64(decrypt.times().decrypt_secs);
        self.clock.add(Stage::Decrypt, spent);
        self.clock
            .add(Stage::Download, t.elapsed().saturating_sub(spent));
        fetched
    }
}

/// Chunk indices of a plan, as the stream a [`Fetcher`] reads them from.
fn ks_of(ks: &[usize]) -> impl futures::Stream<Item = usize> + '_ {
    futures::stream::iter(ks.iter().copied())
}

/// Decrypt, decompress and check one chunk against its keyed id.
fn open_chunk(
    bytes: &[u8],
    ids: &Identities,
    dedup: &[u8; 32],
    chunk: &crate::format::manifest::ChunkRef,
) -> std::result::Result<Vec<u8>, String> {
    let plain = sealing::open_exact(bytes, ids.as_age(), chunk.size).map_err(|e| e.to_string())?;
    if chunk_id(dedup, &plain) != chunk.id.0 {
        return Err("decrypted content does not match the chunk's keyed id".to_string());
    }
    Ok(plain)
}

/// Directories no file needed, symlinks last, then directory modes and times, deepest
/// first (a read-only directory is closed only after its content is in place).
fn finish_tree(tree: &mut DirTree, dirs: &[Entry], symlinks: &[Entry]) -> Result<()> {
    for d in dirs {
        fs::ensure_dirs(tree, &d.path.0)?;
    }
    for s in symlinks {
        fs::make_symlink(tree, s)?;
    }
    let mut dirs: Vec<&Entry> = dirs.iter().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.path.0.iter().filter(|&&b| b == b'/').count()));
    for d in dirs {
        fs::finish_dir(tree, d)?;
    }
    fs::sync_root(tree)
}

/// Check the target (empty unless `force`), create it when missing, and open it. With
/// `force`, temp files an interrupted restore left there are removed first.
fn prepare_target(target: &Path, force: bool) -> Result<(DirTree, u64)> {
    if !force && !fs::is_empty_dir(target)? {
        return Err(Error::Usage(format!(
            "the target {} is not empty; restore into an empty folder, or pass --force to replace what is there",
            target.display()
        )));
    }
    match std::fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => {}
        // The operator named it: a symlink to a directory is followed, as for sources.
        Ok(m) if m.file_type().is_symlink() && target.is_dir() => {}
        Ok(_) => {
            return Err(Error::Usage(format!(
                "the target {} is not a directory",
                target.display()
            )));
        }
        Err(_) => std::fs::create_dir_all(target).map_err(|e| Error::io("creating", target, e))?,
    }
    let path = std::fs::canonicalize(target).map_err(|e| Error::io("resolving", target, e))?;
    let tree = DirTree::open(&path).map_err(|e| Error::io("opening", &path, e))?;
    let swept = if force { fs::sweep_temps(&tree)? } else { 0 };
    Ok((tree, swept))
}

fn chunk_objects(commit: &Commit, manifest: &Manifest) -> Result<Vec<Chunk>> {
    manifest
        .chunks
        .iter()
        .map(|c| {
            commit.chunk(&c.id).ok_or_else(|| {
                Error::integrity(
                    None,
                    Some(&c.id.object_name()),
                    "not in the signed object list",
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_selects_subtrees_and_names_at_any_depth() {
        let set = PathGlobs::new(&["exports/db".into(), "*.csv".into()], "--include").unwrap();
        assert!(set.selected(b"exports/db/crm.sql"));
        assert!(set.selected(b"exports/db"));
        assert!(!set.selected(b"exports/call_logs.jsonl"));
        assert!(set.selected(b"top.csv"));
        assert!(
            set.selected(b"exports/customers.csv"),
            "a pattern without / matches a name at any depth, as exclude does"
        );
    }
}
