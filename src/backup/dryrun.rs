//! `backup --dry-run`: what a backup of a job would read, what its excludes remove and what
//! the files cache says is unchanged, with sizes — from the walk and the local cache
//! alone. No store is opened, no lock taken, no file written, no command run, standard
//! input not read.

use std::fmt::Write as _;

use serde::Serialize;

use super::cache::{self, FilesCache};
use super::job::{JobRun, Request};
use super::{health, plan};
use crate::config::Config;
use crate::error::{Error, Result, exit};
use crate::format::repo_config::Chunking;
use crate::source::{self, Excluded, Excludes, Skipped};
use crate::text::escape;
use crate::units::binary_size as size;

/// A file of the plan, by its path in the snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedFile {
    /// Its path in the snapshot.
    pub path: String,
    /// Its size in bytes, as the walk saw it.
    pub size: u64,
}

/// What a backup of one job would do.
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    /// The job.
    pub job: String,
    /// Files that would be read (new or changed, or `--force-read`).
    pub read: Vec<PlannedFile>,
    /// Files the files cache says are unchanged (not read again; their chunks are taken
    /// from the cache — a real run also checks that the stores still list them).
    pub unchanged: Vec<PlannedFile>,
    /// What the excludes removed (a folder's content is not walked).
    pub excluded: Vec<Excluded>,
    /// What cannot be read (a real run would be partial, exit 3).
    pub skipped: Vec<Skipped>,
    /// Special files left out by design.
    pub ignored: Vec<Skipped>,
    /// The standard input or command output that would be stored, and under which name.
    pub stream: Option<String>,
    /// Why the files cache was not used, when it was not.
    pub cache_note: Option<String>,
}

impl DryRun {
    /// 3 when a real run would skip something it cannot read, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.skipped.is_empty() {
            exit::OK
        } else {
            exit::PARTIAL
        }
    }
}

/// Plan `job` as [`super::job::run`] would, without touching any store.
pub fn plan_job(config: &Config, request: &Request, job: &JobRun) -> Result<DryRun> {
    let opts = request.options(config, job);
    // A missing complete marker or expected file stops a real run before it reads.
    health::check_before(&opts.health, &opts.paths)?;
    let excludes = Excludes::new(&opts.exclude)?.recording();
    let mut walked = source::walk(&opts.paths, &excludes)?;
    let (files_cache, cache_note, key) = files_cache(config, &opts);
    let items = std::mem::take(&mut walked.items)
        .into_vec()
        .map_err(|e| Error::fatal(format!("reading back the walk: {e}")))?;
    if items.is_empty() && opts.stream.is_none() {
        return Err(Error::fatal(
            "nothing to back up: no source could be read (a real run would write no snapshot)",
        ));
    }
    let min_size = u64::from(Chunking::default().min_size);
    // Per the cache alone: whether the stores still list a segment's chunks is a question
    // for the stores, which a dry run does not ask. Runs are cut with the key a backup
    // uses (the dedup key, which also names the cache): cut otherwise, they would not be
    // the cached segments.
    let mut planner = plan::Planner::new(min_size, files_cache, Box::new(|_| true), key);
    let mut pieces = Vec::new();
    for item in items {
        planner.push(item, &mut pieces);
    }
    pieces.extend(planner.close());
    let mut read = Vec::new();
    let mut unchanged = Vec::new();
    for piece in &pieces {
        let into = if piece.seg.reuse.is_some() {
            &mut unchanged
        } else {
            &mut read
        };
        into.extend(piece.seg.files.iter().map(|(path, meta)| PlannedFile {
            path: path.display(),
            size: meta.size,
        }));
    }
    let stream = opts.stream.as_ref().map(|s| match &s.command {
        Some(cmd) => format!("the output of `{cmd}` as {}", s.name),
        None => format!("standard input as {}", s.name),
    });
    Ok(DryRun {
        job: opts.job,
        read,
        unchanged,
        excluded: walked.excluded,
        skipped: walked.skipped,
        ignored: walked.ignored,
        stream,
        cache_note,
    })
}

/// The job's files cache, read only (none with `--force-read`, `--no-cache`, or without
/// the write key, whose repository id names the cache), why it is not used when it is not,
/// and the dedup key the backup cuts runs of small files with (any key cuts them when no
/// cache is read: nothing is matched).
fn files_cache(
    config: &Config,
    opts: &super::BackupOptions,
) -> (FilesCache, Option<String>, [u8; 32]) {
    let none = |note: String| (FilesCache::default(), Some(note), [0; 32]);
    let Some(dir) = &opts.cache_dir else {
        return none("--no-cache: every file would be read".into());
    };
    if opts.force_read {
        return none("--force-read: every file would be read".into());
    }
    let key = match crate::keys::WriteKey::load(&config.write_key) {
        Ok(key) => key,
        Err(e) => return none(format!("files cache not used: {e}")),
    };
    let path = cache::cache_path(dir, &key.repository_id, &plan::job_key(opts));
    if !path.exists() {
        return none(format!(
            "no files cache yet ({}): every file would be read",
            path.display()
        ));
    }
    let (cache, note) = FilesCache::load(&path, &key.repository_id, plan::tops(opts));
    (cache, note, key.dedup)
}

/// The dry run as text: one line per file (`read`, `unchanged`, `excluded`, `skipped`,
/// `ignored`), then the totals.
pub fn render(d: &DryRun) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "dry run of job {}: nothing is read, written or sent; no store is contacted",
        d.job
    );
    for f in &d.read {
        let _ = writeln!(out, "  read       {}  {}", escape(&f.path), size(f.size));
    }
    for f in &d.unchanged {
        let _ = writeln!(out, "  unchanged  {}  {}", escape(&f.path), size(f.size));
    }
    for e in &d.excluded {
        let what = match e.kind {
            "file" => size(e.size),
            "dir" => "folder, not walked".into(),
            other => other.to_owned(),
        };
        let _ = writeln!(out, "  excluded   {}  {what}", escape(&e.path));
    }
    for s in &d.skipped {
        let _ = writeln!(
            out,
            "  skipped    {}: {}",
            escape(&s.path),
            escape(&s.reason)
        );
    }
    for s in &d.ignored {
        let _ = writeln!(
            out,
            "  ignored    {}: {}",
            escape(&s.path),
            escape(&s.reason)
        );
    }
    if let Some(s) = &d.stream {
        let _ = writeln!(out, "  stream     {}", escape(s));
    }
    if let Some(note) = &d.cache_note {
        let _ = writeln!(out, "  note       {}", escape(note));
    }
    let total = |files: &[PlannedFile]| size(files.iter().map(|f| f.size).sum());
    let excluded_bytes: u64 = d.excluded.iter().map(|e| e.size).sum();
    let _ = writeln!(
        out,
        "would read {} file(s) ({}); {} unchanged per the files cache ({}); {} excluded ({} in files); {} skipped",
        d.read.len(),
        total(&d.read),
        d.unchanged.len(),
        total(&d.unchanged),
        d.excluded.len(),
        size(excluded_bytes),
        d.skipped.len()
    );
    out
}
