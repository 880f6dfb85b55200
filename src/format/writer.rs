//! A manifest written as it is produced: the header, then each entry as the backup reaches
//! it, then the chunk stream — compressed on the way into any writer (the backup's is an
//! unlinked temporary file), so that no entry is held after it is written.
//!
//! The JSON is the version-1 manifest of docs/format.md section 8, its members in the
//! order `format, version, repository_id, snapshot_id, time, sources, entries, chunks`
//! (readers accept members in any order; `chunks` comes last because it is known last).

use std::io::{self, Write};

use serde::Serialize;

use super::manifest::{ChunkRef, Entry, Manifest};

/// The members before `entries`.
#[derive(Serialize)]
struct Head<'a> {
    format: &'a str,
    version: u32,
    repository_id: &'a str,
    snapshot_id: &'a str,
    time: &'a str,
    sources: &'a [super::manifest::WirePath],
}

/// A manifest being written.
pub struct ManifestWriter<W: Write> {
    out: Counted<zstd::stream::Encoder<'static, W>>,
    entries: u64,
}

impl<W: Write> ManifestWriter<W> {
    /// Start the manifest whose header is `head`'s (its entries and chunks are not
    /// written), compressing at `level` into `out`.
    pub fn new(out: W, level: i32, head: &Manifest) -> io::Result<Self> {
        let mut out = Counted {
            inner: zstd::stream::Encoder::new(out, level)?,
            bytes: 0,
        };
        let mut json = serde_json::to_vec(&Head {
            format: &head.format,
            version: head.version,
            repository_id: &head.repository_id,
            snapshot_id: &head.snapshot_id,
            time: &head.time,
            sources: &head.sources,
        })?;
        json.pop(); // the closing brace: the entries follow
        json.extend_from_slice(b",\"entries\":[");
        out.write_all(&json)?;
        Ok(ManifestWriter { out, entries: 0 })
    }

    /// Write the next entry.
    pub fn entry(&mut self, e: &Entry) -> io::Result<()> {
        if self.entries > 0 {
            self.out.write_all(b",")?;
        }
        self.entries += 1;
        serde_json::to_writer(&mut self.out, e)?;
        Ok(())
    }

    /// Uncompressed bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.out.bytes
    }

    /// Close the entries, write the chunk stream and end the manifest; the writer, and the
    /// manifest's uncompressed size.
    pub fn finish(mut self, chunks: &[ChunkRef]) -> io::Result<(W, u64)> {
        self.out.write_all(b"],\"chunks\":")?;
        serde_json::to_writer(&mut self.out, chunks)?;
        self.out.write_all(b"}")?;
        let bytes = self.out.bytes;
        Ok((self.out.inner.finish()?, bytes))
    }
}

/// A writer that counts what goes through it.
struct Counted<W> {
    /// Where the bytes go.
    inner: W,
    /// How many went.
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::manifest::{EntryKind, WirePath};
    use proptest::prelude::*;

    fn entry(i: usize, path: Vec<u8>, file: bool) -> Entry {
        let kind = if file {
            EntryKind::File
        } else {
            EntryKind::Dir
        };
        let mut e = Entry::bare(WirePath(path), kind, 0o640, i as i64, i as u32 % 1000);
        if file {
            e.size = Some(i as u64);
            e.sha256 = Some(format!("{i:064x}"));
            e.offset = Some(0);
            e.lines = i.is_multiple_of(2).then_some(i as u64);
        }
        e
    }

    proptest! {
        /// Whatever the entries (any bytes in their paths), the streamed manifest is the
        /// manifest serde writes whole: the same value for every reader.
        #[test]
        fn the_streamed_manifest_reads_as_the_manifest_written_whole(
            paths in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..12), 0..40),
            chunks in 0usize..4,
        ) {
            let mut m = Manifest::new("r1", "s1", "2026-12-02T00:00:00Z");
            m.sources = vec![WirePath(b"/exports".to_vec()), WirePath(vec![0xff, b'x'])];
            m.entries = paths.into_iter().enumerate().map(|(i, p)| entry(i, p, i % 3 != 0)).collect();
            m.chunks = (0..chunks).map(|i| ChunkRef { id: super::super::manifest::ChunkId([i as u8; 32]), size: 10 }).collect();
            let mut w = ManifestWriter::new(Vec::new(), 3, &m).unwrap();
            for e in &m.entries {
                w.entry(e).unwrap();
            }
            let (zstd, bytes) = w.finish(&m.chunks).unwrap();
            let json = zstd::decode_all(&zstd[..]).unwrap();
            prop_assert_eq!(json.len() as u64, bytes);
            let back: serde_json::Value = serde_json::from_slice(&json).unwrap();
            prop_assert_eq!(back, serde_json::to_value(&m).unwrap());
        }
    }
}
