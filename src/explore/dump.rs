//! `dump SNAPSHOT PATH`: one file's content, or a folder as a tar stream, to a writer
//! (standard output) — `snapdrill dump latest exports/crm.sql | psql crm` without a
//! restore folder in between.
//!
//! The content comes through the restore engine's verified stream
//! ([`restore::stream_files`]): every chunk is checked against the signed commit and its
//! keyed id before a byte of it is written, and memory holds a few chunks whatever the
//! size of the file. A file's SHA-256 is known only once its last byte has been written;
//! when it (or a chunk further on) fails, what was already written cannot be taken back,
//! so the error says how much went out and that it must be discarded (exit 13).

use std::io::Write;
use std::sync::Arc;

use serde::Serialize;

use super::tar;
use crate::error::{Error, Result};
use crate::format::manifest::{Entry, EntryKind};
use crate::keys::Identities;
use crate::repository::Repository;
use crate::restore::{self, FileSink, Opened, Sources, StageClock};

/// What a dump wrote.
#[derive(Debug, Clone, Serialize)]
pub struct DumpReport {
    /// The snapshot.
    pub snapshot_id: String,
    /// The path dumped (`/` for the whole snapshot).
    pub path: String,
    /// `file` (the content alone) or `tar`.
    pub format: &'static str,
    /// Files written and verified.
    pub files: u64,
    /// Directories (tar).
    pub dirs: u64,
    /// Symlinks (tar).
    pub symlinks: u64,
    /// Content bytes.
    pub bytes: u64,
    /// Which store served what, and replicas that need healing.
    pub sources: Sources,
}

/// What [`dump`] writes to.
pub type Output = Box<dyn Write + Send>;

/// Write the file at `path` of `opened` to `out`, or — for a directory — a tar stream of
/// it and everything below it (entries named from the directory's own name: it untars to
/// one folder). `path` `/` (or empty) is the whole snapshot, named as in the snapshot.
pub async fn dump(
    repo: &Repository,
    mut opened: Opened,
    identities: Arc<Identities>,
    path: &str,
    out: Output,
    clock: Arc<StageClock>,
) -> Result<DumpReport> {
    let rel = path.trim_matches('/').as_bytes().to_vec();
    let id = opened.commit.snapshot_id.clone();
    let mut report = DumpReport {
        snapshot_id: id.clone(),
        path: if rel.is_empty() {
            "/".into()
        } else {
            path.trim_matches('/').into()
        },
        format: "file",
        files: 0,
        dirs: 0,
        symlinks: 0,
        bytes: 0,
        sources: Sources::default(),
    };
    let kind = match opened.manifest.entries.iter().find(|e| e.path.0 == rel) {
        _ if rel.is_empty() => EntryKind::Dir,
        Some(e) => e.kind,
        None => return Err(no_such_path(&id, path)),
    };
    let streamed = match kind {
        EntryKind::File => file(repo, &mut opened, identities, &rel, out, clock.clone()).await,
        EntryKind::Dir => {
            report.format = "tar";
            folder(
                repo,
                &mut opened,
                identities,
                &rel,
                out,
                clock.clone(),
                &mut report,
            )
            .await
        }
        EntryKind::Symlink => return Err(symlink(&opened, &rel)),
    };
    let streamed = streamed.map_err(|e| gone_out(e, &report, clock.bytes()))?;
    report.files = streamed.files;
    report.bytes = streamed.bytes;
    report.sources = opened.sources;
    Ok(report)
}

async fn file(
    repo: &Repository,
    opened: &mut Opened,
    identities: Arc<Identities>,
    rel: &[u8],
    out: Output,
    clock: Arc<StageClock>,
) -> Result<restore::Streamed> {
    let entries: Vec<Entry> = opened
        .manifest
        .entries
        .iter()
        .filter(|e| e.path.0 == rel)
        .cloned()
        .collect();
    let sink = Raw(out);
    let (mut sink, streamed) =
        restore::stream_files(repo, opened, identities, entries, sink, clock).await?;
    sink.0.flush().map_err(written)?;
    Ok(streamed)
}

/// The directory `rel` and its subtree as a tar stream: files first, in stream order (the
/// only order they can be streamed in); then directories and symlinks in tree order (a
/// directory before what is inside it). Nothing is extracted through a link the archive
/// made, and extractors that set a directory's times once they move past it (GNU tar,
/// which also holds them until its delayed symlinks exist) find nothing created in it
/// afterwards.
async fn folder(
    repo: &Repository,
    opened: &mut Opened,
    identities: Arc<Identities>,
    rel: &[u8],
    out: Output,
    clock: Arc<StageClock>,
    report: &mut DumpReport,
) -> Result<restore::Streamed> {
    // Entries are named from the dumped directory's own name (its parent's path cut).
    let cut = match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => i + 1,
        None => 0,
    };
    let below = |e: &&Entry| {
        rel.is_empty()
            || e.path.0 == rel
            || (e.path.0.starts_with(rel) && e.path.0.get(rel.len()) == Some(&b'/'))
    };
    let entries: Vec<Entry> = opened
        .manifest
        .entries
        .iter()
        .filter(below)
        .cloned()
        .collect();
    let sink = Tar { out, cut };
    let (mut sink, streamed) =
        restore::stream_files(repo, opened, identities, entries.clone(), sink, clock).await?;
    for e in entries.iter().filter(|e| e.kind != EntryKind::File) {
        sink.entry(e)?;
        match e.kind {
            EntryKind::Dir => report.dirs += 1,
            _ => report.symlinks += 1,
        }
    }
    sink.out.write_all(&tar::end()).map_err(written)?;
    sink.out.flush().map_err(written)?;
    Ok(streamed)
}

/// A file's content, as it is.
struct Raw(Output);

impl FileSink for Raw {
    fn begin(&mut self, _: &Entry) -> Result<()> {
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.0.write_all(data).map_err(written)
    }

    fn end(&mut self, _: &Entry) -> Result<()> {
        Ok(())
    }
}

/// Entries as a tar stream, named without the first `cut` bytes of their path.
struct Tar {
    out: Output,
    cut: usize,
}

impl Tar {
    /// The header of `e` (a directory's or symlink's whole entry).
    fn entry(&mut self, e: &Entry) -> Result<()> {
        let empty = crate::format::manifest::WirePath(Vec::new());
        let h = tar::Header {
            path: e.path.0.get(self.cut..).unwrap_or_default(),
            kind: e.kind,
            mode: e.mode,
            size: e.file_size(),
            mtime: e.mtime,
            mtime_ns: e.mtime_ns,
            link: &e.target.as_ref().unwrap_or(&empty).0,
        };
        self.out.write_all(&tar::header(&h)).map_err(written)
    }
}

impl FileSink for Tar {
    fn begin(&mut self, entry: &Entry) -> Result<()> {
        self.entry(entry)
    }

    fn write(&mut self, data: &[u8]) -> Result<()> {
        self.out.write_all(data).map_err(written)
    }

    fn end(&mut self, entry: &Entry) -> Result<()> {
        let pad = [0u8; tar::BLOCK];
        self.out
            .write_all(&pad[..tar::padding(entry.file_size())])
            .map_err(written)
    }
}

/// A write to the output failed (a closed pipe among others: the caller decides).
fn written(e: std::io::Error) -> Error {
    Error::io("writing", "standard output", e)
}

fn no_such_path(id: &str, path: &str) -> Error {
    Error::Usage(format!(
        "no path '{path}' in snapshot {id}; `snapdrill ls {id}` shows its paths (they start with the backed-up folder's name)"
    ))
}

fn symlink(opened: &Opened, rel: &[u8]) -> Error {
    let target = opened
        .manifest
        .entries
        .iter()
        .find(|e| e.path.0 == rel)
        .and_then(|e| e.target.as_ref())
        .map(|t| t.display())
        .unwrap_or_default();
    Error::Usage(format!(
        "'{}' is a symlink (to '{target}') in snapshot {}; dump the file it points to by its snapshot path",
        String::from_utf8_lossy(rel),
        opened.commit.snapshot_id
    ))
}

/// An integrity failure after content went out: say how much went out, and that it must
/// be discarded (it cannot be taken back).
fn gone_out(e: Error, report: &DumpReport, bytes: u64) -> Error {
    let Error::Integrity {
        store,
        object,
        what,
    } = e
    else {
        return e;
    };
    let what = match (report.format, bytes) {
        ("file", 0) => format!("{what}; nothing of '{}' was written", report.path),
        ("file", n) => format!(
            "{what}; {} of '{}' had already been written to standard output: discard it",
            crate::units::binary_size(n),
            report.path
        ),
        _ => format!(
            "{what}; the tar stream of '{}' on standard output is incomplete: discard it",
            report.path
        ),
    };
    Error::Integrity {
        store,
        object,
        what,
    }
}
