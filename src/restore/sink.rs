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

use super::check::Check;
use super::clock::StageClock;
use super::stream::{Cut, cut};
use crate::error::{Error, Result};
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
    files: Vec<Entry>,
    mut rx: mpsc::Receiver<super::Arrived>,
    clock: &StageClock,
) -> Result<u64> {
    let (empty, full): (Vec<Entry>, Vec<Entry>) =
        files.into_iter().partition(|f| f.file_size() == 0);
    let mut check = Check::default();
    let mut on = |piece: Cut| match piece {
        Cut::Begin(f) => {
            check = Check::default();
            sink.begin(f)
        }
        Cut::Data(data) => {
            clock.mark_first_byte();
            check.update(data, clock);
            sink.write(data)?;
            clock.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            Ok(())
        }
        Cut::End(f) => {
            std::mem::take(&mut check)
                .verdict(&f, clock)
                .map_err(|m| Error::integrity(None, Some(&f.path.display()), m))?;
            sink.end(&f)?;
            clock.count_file();
            Ok(())
        }
    };
    // Empty files first (a tar stream lists them before the large ones), then stream order.
    for f in empty {
        on(Cut::Begin(&f))?;
        on(Cut::End(f))?;
    }
    cut(&mut rx, &mut full.into_iter(), &mut on)
}
