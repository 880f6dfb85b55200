//! Files streamed somewhere other than a target folder (`dump` to standard output, as one
//! file or a tar stream): the same verified chunks as a restore, handed to a [`FileSink`]
//! piece by piece, so that memory stays flat whatever the size of the file.
//!
//! What a sink receives has passed every chunk check a restore makes (the signed object
//! list, decryption, the keyed id). A file's own SHA-256 can only be known once its last
//! byte has gone by: the consumer checks it before [`FileSink::end`], and a mismatch is an
//! integrity error naming the path — by then the sink has seen the bytes, which is why
//! callers say so.

use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::clock::StageClock;
use super::stream::{Check, Cut, cut};
use crate::error::Result;
use crate::format::manifest::Entry;

/// Where streamed file content goes, file by file, in the order it is streamed.
pub trait FileSink: Send + 'static {
    /// File `entry` starts; [`FileSink::write`] follows with its `size` bytes in pieces.
    fn begin(&mut self, entry: &Entry) -> Result<()>;
    /// The next piece of the current file.
    fn write(&mut self, data: &[u8]) -> Result<()>;
    /// The current file is complete and matched its size and SHA-256.
    fn end(&mut self, entry: &Entry) -> Result<()>;
}

/// Feed `files` (sorted by offset) to `sink` from the chunks arriving on `rx`: empty files
/// first, then the others in stream order, each checked before its `end`. Returns the
/// content bytes fed.
pub(super) fn feed<S: FileSink>(
    sink: &mut S,
    files: &[Entry],
    mut rx: mpsc::Receiver<(u64, Vec<u8>)>,
    clock: &StageClock,
) -> Result<u64> {
    for f in files.iter().filter(|f| f.file_size() == 0) {
        sink.begin(f)?;
        Check::default().finish(f)?;
        sink.end(f)?;
        clock.count_file();
    }
    let files: Vec<&Entry> = files.iter().filter(|f| f.file_size() > 0).collect();
    let mut check = Check::default();
    cut(&mut rx, &files, |piece| match piece {
        Cut::Begin(i) => {
            check = Check::default();
            sink.begin(files[i])
        }
        Cut::Data(data) => {
            clock.mark_first_byte();
            check.update(data, clock);
            sink.write(data)?;
            clock.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            Ok(())
        }
        Cut::End(i) => {
            std::mem::take(&mut check).finish(files[i])?;
            sink.end(files[i])?;
            clock.count_file();
            Ok(())
        }
    })
}
