//! Memory of long streams: byte budgets for what is in flight, and handing freed memory
//! back to the kernel.
//!
//! A backup or restore of a large file allocates and frees a chunk buffer (0.5–8 MiB)
//! per chunk on several threads. glibc keeps what is freed in its arenas, and as the sizes
//! vary the free space fragments: resident memory grew by about 25 MiB over a 20 GB
//! backup while the live heap stayed within a few MiB (`heaptrack`, docs/benchmarks.md).
//! Every so many chunks, [`Trim::chunk_done`] asks glibc to return free pages; a free page
//! reused afterwards costs one page fault, far fewer than mapping every buffer afresh
//! (a 1 MiB mmap threshold made the same backup 5 % slower).

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Budgets are counted in 64 KiB units.
const UNIT: usize = 64 << 10;

/// Bytes in flight in a pipeline, shared between the stage that takes a share for each
/// chunk (and waits when the budget is spent: the pipeline's backpressure) and the stage
/// that drops it. Counted in bytes, never in chunks: a budget of chunks holds four times
/// more when a run of 8 MiB chunks comes, and a long stream is sure to meet one.
#[derive(Clone, Debug)]
pub struct Budget {
    sem: Arc<Semaphore>,
    units: usize,
}

impl Budget {
    /// A budget of `bytes` (at least one unit).
    pub fn new(bytes: usize) -> Budget {
        let units = (bytes / UNIT).max(1);
        Budget {
            sem: Arc::new(Semaphore::new(units)),
            units,
        }
    }

    /// A share for `len` bytes, returned when dropped; `None` once the budget is closed.
    /// A chunk larger than the whole budget takes all of it and goes alone.
    pub async fn take(&self, len: usize) -> Option<OwnedSemaphorePermit> {
        let units = len.div_ceil(UNIT).clamp(1, self.units) as u32;
        self.sem.clone().acquire_many_owned(units).await.ok()
    }

    /// No more shares: whoever waits for one is turned away at once.
    pub fn close(&self) {
        self.sem.close();
    }
}

/// The allocation size from which the `snapdrill` binary has glibc map each buffer on its
/// own (`M_MMAP_THRESHOLD`), so that, freed, it goes back to the kernel whole.
pub const MAPPED: usize = 1 << 20;

/// An empty buffer for `len` bytes of one chunk — plaintext, compressed or sealed — that
/// is mapped on its own whatever `len` is. A chunk's bytes are 0.1–8 MiB: those under
/// [`MAPPED`] would otherwise be carved from an arena and, freed out of order by other
/// threads, leave holes that a long stream's later sizes do not fit, so the arena grows
/// with the length of the stream (a 5 GB dump peaked 3–5 MiB above a 300 MB one). Only
/// the pages written are resident: the capacity past `len` costs address space, not
/// memory. Under [`SMALL`] a buffer stays in the arena, where any hole fits it: the local
/// store's reader uses this for every object, and most small ones (object lists,
/// commits, a chunk of zeros) are read by the thousand, where a mapping each would cost
/// two system calls and a page fault apiece.
pub fn chunk_buffer(len: usize) -> Vec<u8> {
    if len < SMALL {
        return Vec::with_capacity(len);
    }
    Vec::with_capacity(len.max(MAPPED))
}

/// Below this, [`chunk_buffer`] leaves a buffer to the arena.
pub const SMALL: usize = 64 << 10;

/// Chunks between two trims: ~128 MiB of 2 MiB chunks.
const EVERY: u32 = 64;

/// Counts the chunks of one stream and trims the allocator every 64 of them.
#[derive(Debug, Default)]
pub struct Trim {
    since: u32,
}

impl Trim {
    /// One more chunk is done with; true when this one trimmed.
    pub fn chunk_done(&mut self) -> bool {
        self.since += 1;
        if self.since < EVERY {
            return false;
        }
        self.since = 0;
        release_free_pages();
        true
    }
}

static RELEASE: std::sync::OnceLock<fn()> = std::sync::OnceLock::new();

/// Install what returns the allocator's free pages to the kernel. The `snapdrill` binary
/// installs glibc's `malloc_trim`: this library has no unsafe code, so it cannot call it.
pub fn set_release(release: fn()) {
    let _ = RELEASE.set(release);
}

/// Return the allocator's free pages to the kernel now. A stage that freed its buffers
/// calls it before the next stage allocates: a backup's commit (manifest sealing, the
/// check before it) would otherwise come on top of what the pipeline's buffers left.
pub fn release_free_pages() {
    if let Some(release) = RELEASE.get() {
        release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[test]
    fn a_chunk_buffer_is_mapped_on_its_own_from_a_small_size_up() {
        assert_eq!(chunk_buffer(SMALL - 1).capacity(), SMALL - 1);
        assert_eq!(chunk_buffer(SMALL).capacity(), MAPPED);
        assert_eq!(chunk_buffer(MAPPED + 1).capacity(), MAPPED + 1);
    }

    #[test]
    fn a_chunk_larger_than_the_budget_goes_alone_and_holds_all_of_it() {
        let b = Budget::new(4 * UNIT);
        let big = b
            .take(8 << 20)
            .now_or_never()
            .expect("never waits for units that cannot exist");
        let big = big.expect("budget open");
        assert_eq!(b.sem.available_permits(), 0);
        assert!(
            b.take(1).now_or_never().is_none(),
            "nothing else while it is held"
        );
        drop(big);
        assert_eq!(b.sem.available_permits(), 4);
    }

    #[test]
    fn shares_are_counted_in_bytes_not_chunks() {
        let b = Budget::new(16 << 20);
        // Two largest chunks (8 MiB each) fill 16 MiB; a third waits.
        let first = b.take(8 << 20).now_or_never().expect("room").expect("open");
        let second = b.take(8 << 20).now_or_never().expect("room").expect("open");
        assert!(b.take(8 << 20).now_or_never().is_none());
        drop((first, second));
        // The same bytes in small chunks: 256 of 64 KiB.
        let small: Vec<_> = (0..256)
            .map(|_| b.take(UNIT).now_or_never().expect("room").expect("open"))
            .collect();
        assert!(b.take(1).now_or_never().is_none());
        drop(small);
    }

    #[test]
    fn a_closed_budget_turns_a_waiting_reader_away() {
        let b = Budget::new(4 * UNIT);
        let held = b
            .take(4 * UNIT)
            .now_or_never()
            .expect("room")
            .expect("open");
        let mut waiting = Box::pin(b.take(UNIT));
        assert!((&mut waiting).now_or_never().is_none());
        b.close();
        assert!(matches!(waiting.now_or_never(), Some(None)));
        drop(held);
    }

    #[test]
    fn trims_once_every_so_many_chunks() {
        let mut trim = Trim::default();
        let trimmed: Vec<u32> = (1..=3 * EVERY).filter(|_| trim.chunk_done()).collect();
        assert_eq!(trimmed, vec![EVERY, 2 * EVERY, 3 * EVERY]);
    }
}
