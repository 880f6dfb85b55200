//! A restore that reads its manifest piecewise, so that its memory does not grow with the
//! number of files.
//!
//! The manifest's compressed text is held (a few tens of bytes per file) and read twice:
//! a first pass runs every check of docs/format.md section 8 ([`format::streamed`]) and
//! outlines the restore (how many files and bytes are selected, and whether the files come
//! in stream order — snapdrill writes them so); nothing is written before it passes. The
//! second pass hands each selected file to the writer as it is parsed, and the chunks its
//! content needs to the fetcher, so entries flow through and only directories and
//! symlinks (finished last) are kept. A sampled drill first reads the text once more to
//! choose its files ([`super::sample`]). A manifest whose files are not in stream order
//! takes the planned path ([`super::run`]), which holds every entry.

use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use tokio::sync::mpsc;

use super::{
    Cutter, Fetcher, FileFilter, Opened, PathGlobs, Planned, RestoreOptions, RestoreReport, Sample,
    Selection, Sources, StageClock, check_matched, dedup_key, finish_tree, prepare_target, stream,
};
use crate::error::{Error, Result};
use crate::format::commit::Commit;
use crate::format::manifest::{Entry, EntryKind, Manifest};
use crate::format::{limits, streamed};
use crate::keys::Identities;
use crate::localfs::tree::DirTree;
use crate::repository::Repository;
use crate::sealing;

/// Files parsed ahead of the writer.
const FILES_AHEAD: usize = 1024;
/// Files handed to the writer at once.
const FILES_AT_ONCE: usize = 64;
/// Chunk indices queued ahead of the fetcher.
const CHUNKS_AHEAD: usize = 256;

/// An opened snapshot whose entries are read as the restore goes.
pub struct Piecewise {
    commit: Arc<Commit>,
    /// The manifest without its entries (the chunk stream, the sources).
    header: Arc<Manifest>,
    /// The sealed manifest, checked (its text is decrypted and decompressed again as it is
    /// read: what is held is the ciphertext, about 65 bytes a file).
    sealed: bytes::Bytes,
    identities: Arc<Identities>,
    /// The `--include` globs it was opened with: what the outline counted and the restore
    /// takes.
    globs: Arc<PathGlobs>,
    outline: Outline,
    /// A sampled drill's sample of the selected files.
    sample: Option<Sample>,
    dedup: [u8; 32],
    sources: Sources,
}

/// What the checking pass learnt of the entries a restore selects.
#[derive(Debug, Clone, Copy)]
struct Outline {
    files: u64,
    bytes: u64,
    dirs: u64,
    symlinks: u64,
    /// Do the selected files with content come in stream order?
    in_order: bool,
    last_offset: u64,
}

impl Default for Outline {
    fn default() -> Self {
        Outline {
            files: 0,
            bytes: 0,
            dirs: 0,
            symlinks: 0,
            in_order: true,
            last_offset: 0,
        }
    }
}

impl Outline {
    /// An entry of the checking pass, seen before the checks have passed: its numbers may
    /// be hostile (they count only if the checks pass).
    fn see(&mut self, e: &Entry) {
        match e.kind {
            EntryKind::Dir => self.dirs += 1,
            EntryKind::Symlink => self.symlinks += 1,
            EntryKind::File => {
                self.files += 1;
                self.bytes = self.bytes.saturating_add(e.file_size());
                if e.file_size() > 0 {
                    let at = e.offset.unwrap_or(0);
                    self.in_order &= at >= self.last_offset;
                    self.last_offset = at;
                }
            }
        }
    }

    fn entries(&self) -> u64 {
        self.files + self.dirs + self.symlinks
    }
}

/// Fetch and decrypt a snapshot's manifest, check it in one streamed pass and outline a
/// restore of what the `include` globs select (all with none; `--include` of
/// [`RestoreOptions`]).
pub async fn open_piecewise(
    repo: &Repository,
    commit: Arc<Commit>,
    identities: Arc<Identities>,
    include: &[String],
) -> Result<Piecewise> {
    let dedup = dedup_key(repo, &identities)?;
    let globs = Arc::new(PathGlobs::new(include, "--include")?);
    let (c, ids, g) = (commit.clone(), identities.clone(), globs.clone());
    let fetched = repo
        .fetch_verified(&commit.manifest, move |bytes| {
            let mut outline = Outline::default();
            let mut open = || text(&bytes, &ids);
            let see = &mut |e: &Entry| {
                if g.takes(&e.path.0) {
                    outline.see(e);
                }
            };
            let (header, _) = streamed::check_each(&mut open, &c, see)?;
            Ok((header, outline, bytes))
        })
        .await?;
    let mut sources = Sources::default();
    sources.record(repo, &commit.manifest.name, fetched.store, fetched.failures);
    let (header, outline, sealed) = fetched.value;
    Ok(Piecewise {
        commit,
        header: Arc::new(header),
        sealed,
        identities,
        globs,
        outline,
        sample: None,
        dedup,
        sources,
    })
}

/// The manifest's text, decrypted and decompressed as it is read.
fn text<'s>(
    sealed: &'s [u8],
    identities: &Identities,
) -> std::result::Result<Box<dyn std::io::Read + 's>, String> {
    sealing::opening(sealed, identities.as_age(), limits::MANIFEST).map_err(|e| e.to_string())
}

impl Piecewise {
    /// The dedup key the identity opened.
    pub fn dedup(&self) -> [u8; 32] {
        self.dedup
    }

    /// Read the text once more and hand each selected file, in manifest order, to `f`
    /// with the manifest's header (its chunk stream) and chunk offsets; nothing is kept.
    pub async fn scan_files<T: Send + 'static>(
        &self,
        mut state: T,
        mut f: impl FnMut(&mut T, &Manifest, &[u64], &Entry) + Send + 'static,
    ) -> Result<T> {
        let (sealed, ids) = (self.sealed.clone(), self.identities.clone());
        let (header, globs) = (self.header.clone(), self.globs.clone());
        let scanned = tokio::task::spawn_blocking(move || {
            let offsets = header.chunk_offsets();
            let text = text(&sealed, &ids)?;
            streamed::for_each_entry(text, &mut |e| {
                if e.kind == EntryKind::File && globs.takes(&e.path.0) {
                    f(&mut state, &header, &offsets, &e);
                }
                Ok(())
            })?;
            Ok::<_, String>(state)
        })
        .await
        .map_err(|e| Error::fatal(format!("reading the manifest again failed: {e}")))?;
        scanned.map_err(bad)
    }

    /// Narrow the restore to a random sample of the selected files: `want(total bytes)`
    /// bytes of them, at least one file, the same files for the same `seed`. One more pass
    /// over the manifest, holding 16 bytes a file.
    pub async fn sample(
        &mut self,
        seed: u64,
        want: impl FnOnce(u64) -> u64 + Send + 'static,
    ) -> Result<()> {
        let cutter = self
            .scan_files(Cutter::new(seed), |c, _, _, e| c.add(e.file_size()))
            .await?;
        let (sample, files, bytes) = cutter.cut(want);
        // A subset of files in stream order is in stream order.
        self.outline = Outline {
            files,
            bytes,
            dirs: 0,
            symlinks: 0,
            ..self.outline
        };
        self.sample = Some(sample);
        Ok(())
    }

    /// The whole manifest, parsed and checked again: for the planned path.
    pub fn into_whole(self) -> Result<Opened> {
        let json = text(&self.sealed, &self.identities).map_err(bad)?;
        let manifest = Manifest::parse_reader(json, &self.commit).map_err(bad)?;
        Ok(Opened {
            commit: self.commit,
            manifest,
            dedup: self.dedup,
            sources: self.sources,
        })
    }
}

fn bad(e: String) -> Error {
    Error::integrity(None, Some("manifest"), e)
}

/// Restore `p` into `opts.target` (or only verify it) with the entries read as the restore
/// goes; what [`super::run`] does, in memory that does not grow with the number of files.
/// What it takes is what `p` was opened with (`opts.include` is not read again).
pub async fn run_piecewise(
    repo: &Repository,
    p: Piecewise,
    identities: Arc<Identities>,
    opts: &RestoreOptions,
    clock: Arc<StageClock>,
) -> Result<RestoreReport> {
    if !p.outline.in_order {
        let opts = RestoreOptions {
            sample: p.sample,
            ..opts.clone()
        };
        return super::run(repo, p.into_whole()?, identities, &opts, clock).await;
    }
    let started = Instant::now();
    check_matched(&p.globs, p.outline.entries(), &p.header.snapshot_id)?;
    clock.set_planned(Planned {
        files: p.outline.files,
        bytes: p.outline.bytes,
    });
    let (mut target, temps_swept) = match opts.verify_only {
        true => (None, 0),
        false => prepare_target(&opts.target, opts.force).map(|(t, n)| (Some(t), n))?,
    };
    let (files_tx, files_rx) = sync_channel::<Vec<Entry>>(FILES_AHEAD / FILES_AT_ONCE);
    let (ks_tx, ks_rx) = mpsc::channel::<usize>(CHUNKS_AHEAD);
    let parser = start_reader(&p, opts.only_files.clone(), files_tx, ks_tx);
    let ks = futures::stream::unfold(
        ks_rx,
        |mut rx| async move { rx.recv().await.map(|k| (k, rx)) },
    );
    let (writer_target, writer_clock) = (target.as_ref().map(DirTree::share), clock.clone());
    let mut sources = p.sources;
    let fetcher = Fetcher::new(repo, (&p.commit, &p.header), p.dedup, identities, &clock)?;
    let streamed = fetcher
        .through(ks, &mut sources, move |rx| {
            stream::consume(
                writer_target,
                files_rx.into_iter().flatten(),
                rx,
                &writer_clock,
            )
        })
        .await;
    drop(fetcher);
    let held = parser
        .await
        .map_err(|e| Error::fatal(format!("restore manifest reader failed: {e}")))?;
    // The writer's or a store's error explains a reader that stopped, so it comes first.
    let (bytes, chunks_fetched, bytes_fetched) = streamed?;
    let Taken {
        dirs,
        symlinks,
        files,
    } = held?;
    if let Some(tree) = target.as_mut() {
        finish_tree(tree, &dirs, &symlinks)?;
    }
    Ok(RestoreReport {
        files,
        dirs: p.outline.dirs,
        symlinks: p.outline.symlinks,
        bytes,
        chunks_fetched,
        bytes_fetched,
        stream_bytes: p.header.stream_len(),
        sources,
        temps_swept,
        ..RestoreReport::timed(&p.commit.snapshot_id, target.as_ref(), &clock, started)
    })
}

/// What the second pass kept for the end, and how many files it handed over.
struct Taken {
    dirs: Vec<Entry>,
    symlinks: Vec<Entry>,
    files: u64,
}

/// Start the second pass ([`hand_out`]) on a blocking thread.
fn start_reader(
    p: &Piecewise,
    filter: Option<FileFilter>,
    files: std::sync::mpsc::SyncSender<Vec<Entry>>,
    ks: mpsc::Sender<usize>,
) -> tokio::task::JoinHandle<Result<Taken>> {
    let (header, sealed, ids) = (p.header.clone(), p.sealed.clone(), p.identities.clone());
    let choice = Selection::new(p.globs.clone(), filter, p.sample);
    tokio::task::spawn_blocking(move || {
        let text = text(&sealed, &ids).map_err(bad)?;
        hand_out(&header, text, choice, files, ks)
    })
}

/// The second pass: each selected file to the writer, then the chunks its content needs
/// (not yet sent) to the fetcher — in that order, so that the writer never waits for a
/// file while the fetcher waits for its chunks. Files go [`FILES_AT_ONCE`] at a time (a
/// handover per file cost a thread wake-up per file), and always before a chunk index.
/// Directories and symlinks are kept for the end.
fn hand_out(
    header: &Manifest,
    text: impl std::io::Read,
    mut choice: Selection,
    files: std::sync::mpsc::SyncSender<Vec<Entry>>,
    ks: mpsc::Sender<usize>,
) -> Result<Taken> {
    let offsets = header.chunk_offsets();
    let (mut dirs, mut symlinks, mut last) = (Vec::new(), Vec::new(), None::<usize>);
    let mut taken = 0u64;
    let mut batch = Vec::with_capacity(FILES_AT_ONCE);
    let stopped = || "the restore stopped".to_string();
    let hand = |batch: &mut Vec<Entry>| {
        let full = std::mem::replace(batch, Vec::with_capacity(FILES_AT_ONCE));
        files.send(full).map_err(|_| stopped())
    };
    let read = streamed::for_each_entry(text, &mut |e| {
        if !choice.takes(header, &offsets, &e) {
            return Ok(());
        }
        match e.kind {
            EntryKind::Dir => dirs.push(e),
            EntryKind::Symlink => symlinks.push(e),
            EntryKind::File => {
                // Its chunks are consecutive: the range past those already handed over.
                let mut ks_of = header.chunk_ranges(&offsets, &e).map(|(k, _, _)| k);
                let needs = match (e.file_size(), ks_of.next()) {
                    (0, _) | (_, None) => 0..0,
                    (_, Some(first)) => {
                        let end = ks_of.last().unwrap_or(first) + 1;
                        last.map_or(first, |l| first.max(l + 1))..end
                    }
                };
                taken += 1;
                batch.push(e);
                if !needs.is_empty() || batch.len() == FILES_AT_ONCE {
                    hand(&mut batch)?;
                }
                for k in needs {
                    ks.blocking_send(k).map_err(|_| stopped())?;
                    last = Some(k);
                }
            }
        }
        Ok(())
    });
    read.map_err(bad)?;
    if !batch.is_empty() {
        hand(&mut batch).map_err(bad)?;
    }
    Ok(Taken {
        dirs,
        symlinks,
        files: taken,
    })
}
