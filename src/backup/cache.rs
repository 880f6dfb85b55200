//! The local files cache of a backup host: for each segment of the last snapshot, its files'
//! metadata and the chunks that hold them, so that unchanged files are not read again.
//!
//! The cache is an optimisation only. A missing, garbled or foreign cache means a slower
//! backup, never a wrong one: every chunk it names is checked against the stores' listings
//! before it is reused, and restores and drills never read it.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::format::manifest::{ChunkRef, WirePath};
use crate::sealing::sha256_hex;
use crate::source::Meta;

/// Version 2 added line counts: a version-1 cache is read as empty, so the first backup
/// after an upgrade reads every file once and counts its lines.
const VERSION: u32 = 2;

/// One file of a cached segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedFile {
    /// Snapshot path.
    pub path: WirePath,
    /// Metadata when it was read.
    pub size: u64,
    /// Modification time, seconds.
    pub mtime: i64,
    /// Modification time, nanoseconds.
    pub mtime_ns: u32,
    /// Change time, seconds.
    pub ctime: i64,
    /// Change time, nanoseconds.
    pub ctime_ns: u32,
    /// Inode.
    pub ino: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Offset of the content inside the segment's stream.
    pub rel_offset: u64,
    /// Its lines, when counted (see `format::manifest::counts_lines`).
    #[serde(default)]
    pub lines: Option<u64>,
}

impl CachedFile {
    /// Does the file still look exactly as when it was read?
    pub fn unchanged(&self, path: &WirePath, m: &Meta) -> bool {
        self.path == *path
            && self.size == m.size
            && self.mtime == m.mtime
            && self.mtime_ns == m.mtime_ns
            && self.ctime == m.ctime
            && self.ctime_ns == m.ctime_ns
            && self.ino == m.ino
    }
}

/// A segment: files read as one stream, and the chunks of that stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedSegment {
    /// The files, in stream order.
    pub files: Vec<CachedFile>,
    /// The chunks covering exactly the segment's bytes.
    pub chunks: Vec<ChunkRef>,
}

#[derive(Deserialize)]
struct CacheFile {
    version: u32,
    repository_id: String,
    segments: Vec<CachedSegment>,
}

/// [`CacheFile`] as written: borrowed, so saving copies nothing.
#[derive(Serialize)]
struct CacheFileOut<'a> {
    version: u32,
    repository_id: &'a str,
    segments: &'a [CachedSegment],
}

/// The cache of one backup job (one set of sources) in one repository.
#[derive(Debug, Default)]
pub struct FilesCache {
    by_first_path: HashMap<WirePath, CachedSegment>,
}

/// Where the cache of a job lives.
pub fn cache_path(cache_dir: &Path, repository_id: &str, job_key: &[u8]) -> PathBuf {
    cache_dir
        .join(repository_id)
        .join(format!("files-{}.json.zst", &sha256_hex(job_key)[..16]))
}

impl FilesCache {
    /// Load the cache; any problem yields an empty cache and a warning.
    pub fn load(path: &Path, repository_id: &str) -> (Self, Option<String>) {
        // Decompressed as it is parsed: the cache's JSON (~200 bytes a file) is never held.
        let read = || -> Result<CacheFile, String> {
            let file = fs::File::open(path).map_err(|e| e.to_string())?;
            let json = zstd::stream::Decoder::new(file).map_err(|e| e.to_string())?;
            serde_json::from_reader(std::io::BufReader::with_capacity(64 << 10, json))
                .map_err(|e| e.to_string())
        };
        match read() {
            Ok(c) if c.version == VERSION && c.repository_id == repository_id => {
                let by_first_path = c
                    .segments
                    .into_iter()
                    .filter_map(|s| Some((s.files.first()?.path.clone(), s)))
                    .collect();
                (FilesCache { by_first_path }, None)
            }
            Ok(_) => (
                Self::default(),
                Some(format!("ignoring foreign cache {}", path.display())),
            ),
            Err(_) if !path.exists() => (Self::default(), None),
            Err(e) => (
                Self::default(),
                Some(format!(
                    "ignoring unreadable cache {} ({e}); every file is read",
                    path.display()
                )),
            ),
        }
    }

    /// The cached segment holding exactly these files, unchanged, taken out of the cache
    /// (a plan owns what it reuses: the cache is not held twice).
    pub fn take(&mut self, files: &[(WirePath, Meta)]) -> Option<CachedSegment> {
        let seg = self.by_first_path.remove(&files.first()?.0)?;
        (seg.files.len() == files.len()
            && seg
                .files
                .iter()
                .zip(files)
                .all(|(c, (p, m))| c.unchanged(p, m)))
        .then_some(seg)
    }

    /// Write a new cache atomically (mode 0600).
    pub fn save(
        path: &Path,
        repository_id: &str,
        segments: &[CachedSegment],
    ) -> std::io::Result<()> {
        // Compressed as it is serialized (the JSON is never held whole).
        let mut packer = zstd::stream::Encoder::new(Vec::new(), 3)?;
        serde_json::to_writer(
            &mut packer,
            &CacheFileOut {
                version: VERSION,
                repository_id,
                segments,
            },
        )?;
        let packed = packer.finish()?;
        crate::localfs::atomic::write(
            path,
            &packed,
            crate::localfs::atomic::NewMode::Private,
            true,
        )
    }
}
