//! The local files cache of a backup host: for each segment of the last snapshot, its files'
//! metadata and the chunks that hold them, so that unchanged files are not read again.
//!
//! The cache is an optimisation only. A missing, garbled or foreign cache means a slower
//! backup, never a wrong one: every chunk it names is checked against the stores' listings
//! before it is reused, and restores and drills never read it.

use std::cmp::Ordering;
use std::fs;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::format::manifest::{ChunkRef, WirePath};
use crate::localfs::atomic;
use crate::sealing::sha256_hex;
use crate::source::Meta;

/// Version 3 is JSON lines (a header, then one segment a line), read and written as the
/// backup walks: the cache is never held whole. Version 2 (one JSON object) is still read,
/// whole, once; version 1 is read as empty (the first backup after that upgrade reads every
/// file once and counts its lines).
const VERSION: u32 = 3;
const VERSION_WHOLE: u32 = 2;

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

/// The first line of a cache (version 3), or the whole cache (version 2).
#[derive(Deserialize)]
struct Header {
    version: u32,
    repository_id: String,
    /// Version 2 only.
    #[serde(default)]
    segments: Vec<CachedSegment>,
}

#[derive(Serialize)]
struct HeaderOut<'a> {
    version: u32,
    repository_id: &'a str,
}

type Lines = std::io::BufReader<zstd::stream::Decoder<'static, std::io::BufReader<fs::File>>>;

/// Where the cached segments come from, in the previous backup's walk order.
enum Segments {
    None,
    Lines(Lines),
    Whole(std::vec::IntoIter<CachedSegment>),
}

/// The cache of one backup job (one set of sources) in one repository, read as the walk
/// goes: a plan asks for the segment starting at a path, and the cursor moves forward in
/// walk order, so segments are matched merge-join fashion and only the next one is held.
pub struct FilesCache {
    segments: Segments,
    next: Option<CachedSegment>,
    /// The top names of the job's sources, in the job's order (the walk's first key).
    tops: Vec<Vec<u8>>,
    /// Where it was read from, and segments read so far (for the message below).
    path: PathBuf,
    read: u64,
    /// A line that could not be read ended the cache: what to tell the operator.
    damaged: Option<String>,
}

impl Default for FilesCache {
    fn default() -> Self {
        FilesCache {
            segments: Segments::None,
            next: None,
            tops: Vec::new(),
            path: PathBuf::new(),
            read: 0,
            damaged: None,
        }
    }
}

/// Where the cache of a job lives.
pub fn cache_path(cache_dir: &Path, repository_id: &str, job_key: &[u8]) -> PathBuf {
    cache_dir
        .join(repository_id)
        .join(format!("files-{}.json.zst", &sha256_hex(job_key)[..16]))
}

/// The walk's order of two snapshot paths: sources in the job's order (`tops`), then depth
/// first with names bytewise — the order of the manifest and of the cache.
pub fn walk_cmp(tops: &[Vec<u8>], a: &[u8], b: &[u8]) -> Ordering {
    fn parts(p: &[u8]) -> impl Iterator<Item = &[u8]> {
        p.split(|&c| c == b'/')
    }
    let top = |p: &[u8]| {
        let first = parts(p).next().unwrap_or(p);
        tops.iter().position(|t| t == first).unwrap_or(usize::MAX)
    };
    top(a).cmp(&top(b)).then_with(|| parts(a).cmp(parts(b)))
}

impl FilesCache {
    /// Open the cache; any problem yields an empty cache and a warning. `tops`: the top
    /// names of the job's sources, in order.
    pub fn load(path: &Path, repository_id: &str, tops: Vec<Vec<u8>>) -> (Self, Option<String>) {
        let open = || -> Result<(Header, Lines), String> {
            let file = fs::File::open(path).map_err(|e| e.to_string())?;
            let json = zstd::stream::Decoder::new(file).map_err(|e| e.to_string())?;
            let mut lines = std::io::BufReader::with_capacity(64 << 10, json);
            let mut first = Vec::new();
            lines
                .read_until(b'\n', &mut first)
                .map_err(|e| e.to_string())?;
            let header = serde_json::from_slice(&first).map_err(|e| e.to_string())?;
            Ok((header, lines))
        };
        let segments = match open() {
            Ok((h, _)) if h.repository_id != repository_id => {
                let warning = format!("ignoring foreign cache {}", path.display());
                return (Self::default(), Some(warning));
            }
            Ok((h, lines)) if h.version == VERSION => Segments::Lines(lines),
            Ok((h, _)) if h.version == VERSION_WHOLE => Segments::Whole(h.segments.into_iter()),
            Ok(_) => Segments::None,
            Err(_) if !path.exists() => Segments::None,
            Err(e) => {
                let warning = format!(
                    "ignoring unreadable cache {} ({e}); every file is read",
                    path.display()
                );
                return (Self::default(), Some(warning));
            }
        };
        let cache = FilesCache {
            segments,
            tops,
            path: path.to_path_buf(),
            ..FilesCache::default()
        };
        (cache, None)
    }

    /// Why the cache ended early, when a line of it could not be read.
    pub fn damaged(&self) -> Option<&str> {
        self.damaged.as_deref()
    }

    /// The next segment of the cache; a line that cannot be read ends the cache (what
    /// follows is read from the sources).
    fn advance(&mut self) -> Option<CachedSegment> {
        match &mut self.segments {
            Segments::None => None,
            Segments::Whole(rest) => rest.next(),
            Segments::Lines(lines) => {
                let mut line = Vec::new();
                let parsed = match lines.read_until(b'\n', &mut line) {
                    Ok(0) => Ok(None),
                    Ok(_) => serde_json::from_slice(&line)
                        .map(Some)
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match parsed {
                    Ok(Some(segment)) => {
                        self.read += 1;
                        return Some(segment);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.damaged = Some(format!(
                            "the files cache {} is damaged after {} segments ({e}): what it held after that was read from the sources; the next backup writes it anew",
                            self.path.display(),
                            self.read
                        ))
                    }
                }
                self.segments = Segments::None;
                None
            }
        }
    }

    /// The cached segment holding exactly these files, unchanged, taken out of the cache.
    /// Segments before the first of `files` in walk order are passed over for good: the
    /// plan asks in walk order.
    pub fn take(&mut self, files: &[(WirePath, Meta)]) -> Option<CachedSegment> {
        let first = &files.first()?.0;
        loop {
            if self.next.is_none() {
                self.next = Some(self.advance()?);
            }
            let head = self.next.as_ref()?.files.first().map(|f| &f.path.0);
            match head.map(|h| walk_cmp(&self.tops, h, &first.0)) {
                None | Some(Ordering::Less) => self.next = None,
                Some(Ordering::Greater) => return None,
                Some(Ordering::Equal) => {
                    let seg = self.next.take()?;
                    let same = seg.files.len() == files.len()
                        && seg
                            .files
                            .iter()
                            .zip(files)
                            .all(|(c, (p, m))| c.unchanged(p, m));
                    return same.then_some(seg);
                }
            }
        }
    }
}

/// A new cache written segment by segment beside the old one, replacing it only when
/// [`CacheWriter::finish`] is called (after the snapshot is committed).
pub struct CacheWriter {
    out: zstd::stream::Encoder<'static, std::io::BufWriter<atomic::Pending>>,
}

impl CacheWriter {
    /// Start the cache of `repository_id` at `path`.
    pub fn create(path: &Path, repository_id: &str) -> std::io::Result<CacheWriter> {
        // A backup killed while it wrote its cache left it (under the job's lock: no other
        // writer of this cache runs now).
        atomic::sweep_temps(path)?;
        let pending = atomic::Pending::create(path, atomic::NewMode::Private)?;
        let mut out =
            zstd::stream::Encoder::new(std::io::BufWriter::with_capacity(64 << 10, pending), 3)?;
        serde_json::to_writer(
            &mut out,
            &HeaderOut {
                version: VERSION,
                repository_id,
            },
        )?;
        out.write_all(b"\n")?;
        Ok(CacheWriter { out })
    }

    /// Add the next segment, in walk order.
    pub fn add(&mut self, segment: &CachedSegment) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, segment)?;
        self.out.write_all(b"\n")
    }

    /// Replace the old cache with this one.
    pub fn finish(self) -> std::io::Result<()> {
        let pending = self
            .out
            .finish()?
            .into_inner()
            .map_err(|e| e.into_error())?;
        pending.commit(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(size: u64) -> Meta {
        Meta {
            mode: 0o644,
            mtime: 1,
            mtime_ns: 2,
            size,
            ino: 3,
            ctime: 4,
            ctime_ns: 5,
            dev: 6,
        }
    }

    fn segment(paths: &[&str]) -> CachedSegment {
        CachedSegment {
            files: paths
                .iter()
                .map(|p| CachedFile {
                    path: WirePath(p.as_bytes().to_vec()),
                    size: 7,
                    mtime: 1,
                    mtime_ns: 2,
                    ctime: 4,
                    ctime_ns: 5,
                    ino: 3,
                    sha256: "0".repeat(64),
                    rel_offset: 0,
                    lines: Some(1),
                })
                .collect(),
            chunks: vec![ChunkRef {
                id: crate::format::manifest::ChunkId([0x11; 32]),
                size: 7 * paths.len() as u64,
            }],
        }
    }

    fn files(paths: &[&str]) -> Vec<(WirePath, Meta)> {
        paths
            .iter()
            .map(|p| (WirePath(p.as_bytes().to_vec()), meta(7)))
            .collect()
    }

    #[test]
    fn walk_order_is_sources_in_job_order_then_depth_first_by_name() {
        let tops = vec![b"zeta".to_vec(), b"alpha".to_vec()];
        let walk = [
            "zeta",
            "zeta/a",
            "zeta/a/z",
            "zeta/a.txt",
            "zeta/b",
            "alpha",
            "alpha/x",
        ];
        for pair in walk.windows(2) {
            assert_eq!(
                walk_cmp(&tops, pair[0].as_bytes(), pair[1].as_bytes()),
                Ordering::Less,
                "{pair:?}"
            );
        }
        assert_eq!(walk_cmp(&tops, b"zeta/a", b"zeta/a"), Ordering::Equal);
    }

    /// `walk_cmp` is the order the walk really produces, names that sort differently as
    /// bytes and as paths included (`a/z` comes before `a.txt` and `a-b`).
    #[test]
    fn walk_cmp_is_the_order_of_the_walk() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("top");
        for p in ["a/z", "a/y/x", "a.txt", "a-b", "b", "A"] {
            let p = root.join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "x").unwrap();
        }
        let ex = crate::source::Excludes::new(&[]).unwrap();
        let walked = crate::source::walk(std::slice::from_ref(&root), &ex).unwrap();
        let paths: Vec<Vec<u8>> = walked
            .items
            .into_vec()
            .unwrap()
            .into_iter()
            .map(|i| match i {
                crate::source::Item::Dir { path, .. }
                | crate::source::Item::File { path, .. }
                | crate::source::Item::Symlink { path, .. } => path.0,
            })
            .collect();
        assert_eq!(paths.len(), 9);
        let tops = vec![b"top".to_vec()];
        for pair in paths.windows(2) {
            assert_eq!(
                walk_cmp(&tops, &pair[0], &pair[1]),
                Ordering::Less,
                "{pair:?}"
            );
        }
    }

    /// The cache is written segment by segment and read back in walk order: a segment
    /// whose files changed is not reused, segments that are gone are passed over, and the
    /// ones after them are still found (two sources, named out of bytewise order).
    #[test]
    fn a_streamed_cache_is_matched_in_walk_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("files.json.zst");
        let mut w = CacheWriter::create(&path, "repo").unwrap();
        for seg in [
            segment(&["zeta/a", "zeta/b"]),
            segment(&["zeta/gone"]),
            segment(&["zeta/c"]),
            segment(&["alpha/x", "alpha/y"]),
            segment(&["alpha/z"]),
        ] {
            w.add(&seg).unwrap();
        }
        w.finish().unwrap();
        let tops = vec![b"zeta".to_vec(), b"alpha".to_vec()];
        let (mut cache, warning) = FilesCache::load(&path, "repo", tops.clone());
        assert_eq!(warning, None);
        assert!(cache.take(&files(&["zeta/a", "zeta/b"])).is_some());
        // zeta/gone and zeta/c are gone from the walk: passed over, as the first source
        // comes before the second whatever their names.
        assert!(cache.take(&files(&["alpha/new"])).is_none());
        assert!(cache.take(&files(&["alpha/x", "alpha/y"])).is_some());
        let mut changed = files(&["alpha/z"]);
        changed[0].1.mtime += 1;
        assert!(
            cache.take(&changed).is_none(),
            "a changed file is read again"
        );

        let (_, foreign) = FilesCache::load(&path, "another", tops);
        assert!(foreign.unwrap().contains("foreign"));
    }

    proptest::proptest! {
        /// Whatever the segments (names of any shape, two levels deep, in walk order), a
        /// cache written segment by segment gives each back, in order, to a plan asking for
        /// the same files; and never gives one for files that changed.
        #[test]
        fn every_written_segment_is_matched_back_in_walk_order(
            names in proptest::collection::btree_set("[a-z.]{1,3}(/[A-Z.a-z_-]{1,3})?", 1..40),
            cut in 1usize..5,
        ) {
            let tops = vec![b"top".to_vec()];
            let mut paths: Vec<String> = names.into_iter().map(|n| format!("top/{n}")).collect();
            paths.sort_by(|a, b| walk_cmp(&tops, a.as_bytes(), b.as_bytes()));
            let segments: Vec<Vec<&str>> = paths
                .chunks(cut)
                .map(|c| c.iter().map(String::as_str).collect())
                .collect();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("files.json.zst");
            let mut w = CacheWriter::create(&path, "repo").unwrap();
            for seg in &segments {
                w.add(&segment(seg)).unwrap();
            }
            w.finish().unwrap();
            let (mut cache, warning) = FilesCache::load(&path, "repo", tops);
            proptest::prop_assert_eq!(warning, None);
            for (i, seg) in segments.iter().enumerate() {
                let mut asked = files(seg);
                if i % 3 == 2 {
                    asked[0].1.ino += 1; // changed since it was cached: read again
                    proptest::prop_assert!(cache.take(&asked).is_none());
                } else {
                    let got = cache.take(&asked).map(|g| g.files.len());
                    proptest::prop_assert_eq!(got, Some(seg.len()));
                }
            }
        }
    }

    /// A line of the cache that cannot be read ends it there, and says so: the segments
    /// before it are used, the ones after it are read from the sources.
    #[test]
    fn a_damaged_line_ends_the_cache_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("files.json.zst");
        let line = |seg: &CachedSegment| serde_json::to_string(seg).unwrap();
        let text = format!(
            "{{\"version\":3,\"repository_id\":\"repo\"}}\n{}\n{{\"files\": garbage\n{}\n",
            line(&segment(&["top/a"])),
            line(&segment(&["top/c"]))
        );
        fs::write(&path, zstd::encode_all(text.as_bytes(), 3).unwrap()).unwrap();
        let (mut cache, warning) = FilesCache::load(&path, "repo", vec![b"top".to_vec()]);
        assert_eq!(warning, None);
        assert!(cache.take(&files(&["top/a"])).is_some());
        assert_eq!(cache.damaged(), None);
        assert!(cache.take(&files(&["top/c"])).is_none());
        let said = cache.damaged().expect("the damage is reported");
        assert!(said.contains("damaged after 1 segments"), "{said}");
    }

    /// A version-2 cache (one JSON object, written before the cache was streamed) is still
    /// used: the first backup after the upgrade does not read every large file again.
    #[test]
    fn a_version_2_cache_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("files.json.zst");
        let old = serde_json::json!({
            "version": 2,
            "repository_id": "repo",
            "segments": [segment(&["big.csv"]), segment(&["other.csv"])],
        });
        let packed = zstd::encode_all(&serde_json::to_vec(&old).unwrap()[..], 3).unwrap();
        fs::write(&path, packed).unwrap();
        let (mut cache, warning) = FilesCache::load(&path, "repo", vec![]);
        assert_eq!(warning, None);
        assert!(cache.take(&files(&["other.csv"])).is_some());
    }
}
