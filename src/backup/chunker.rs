//! FastCDC (2020, normalisation level 1) over a stream: the very cut points of
//! `fastcdc::v2020::StreamCDC`, with each byte copied once instead of about four times.
//!
//! `StreamCDC` keeps a buffer of one maximum chunk (8 MiB), fills it before every cut,
//! copies the chunk out and then moves everything after it to the front: for 2 MiB chunks,
//! 6 MiB moved per chunk, three times the data. Here the buffer is as large, but chunks are
//! cut from it as long as a cut is certain, and only the tail that holds no cut yet (less
//! than one chunk) is moved when the buffer is refilled.
//!
//! A cut found before the end of the bytes at hand is the cut `StreamCDC` would make with
//! more bytes: FastCDC looks only at the bytes before a cut, and the mask it uses at an
//! offset depends on that offset alone. With no cut in what is at hand, it is certain only
//! when a maximum chunk is at hand or the stream has ended.

use std::io::{self, Read};

use fastcdc::v2020::{Normalization, cut_gear, get_gear_with_seed, select_masks};

use crate::format::repo_config::Chunking;

/// Cuts a stream into content-defined chunks.
pub(super) struct Chunker<R> {
    source: R,
    buf: Vec<u8>,
    /// The bytes not yet cut: `buf[start..end]`.
    start: usize,
    end: usize,
    /// The length of the chunk cut at `start` and not yet taken (0: none).
    pending: usize,
    eof: bool,
    min: usize,
    avg: usize,
    max: usize,
    masks: [u64; 4],
    gear: Box<[u64]>,
    gear_ls: Box<[u64]>,
}

impl<R: Read> Chunker<R> {
    /// A chunker with the repository's sizes and keyed seed.
    pub(super) fn new(source: R, chunking: Chunking, seed: u64) -> Self {
        let (min, avg, max) = (
            chunking.min_size as usize,
            chunking.avg_size as usize,
            chunking.max_size as usize,
        );
        let (mask_s, mask_l) = select_masks(avg, Normalization::Level1);
        let (gear, gear_ls) = get_gear_with_seed(seed);
        Chunker {
            source,
            buf: vec![0; max],
            start: 0,
            end: 0,
            pending: 0,
            eof: false,
            min,
            avg,
            max,
            masks: [mask_s, mask_l, mask_s << 1, mask_l << 1],
            gear: gear.into_owned().into_boxed_slice(),
            gear_ls: gear_ls.into_owned().into_boxed_slice(),
        }
    }

    /// Find the next chunk and return its length (0 at the end of the stream); its bytes
    /// stay in the buffer, readable with [`Chunker::cut_bytes`], until [`Chunker::take`].
    /// So a caller can hash them and wait for room before it copies them out. A read error
    /// ends the stream: what was read before it and not yet cut is lost, as the caller fails
    /// the whole stream.
    pub(super) fn next_cut(&mut self) -> io::Result<usize> {
        if self.pending > 0 {
            return Ok(self.pending);
        }
        loop {
            let at_hand = self.end - self.start;
            if at_hand == 0 && self.eof {
                return Ok(0);
            }
            let cut = self.cut();
            if cut > 0 && (cut < at_hand || at_hand >= self.max || self.eof) {
                self.pending = cut;
                return Ok(cut);
            }
            self.fill()?;
        }
    }

    /// The bytes of the chunk found by [`Chunker::next_cut`].
    pub(super) fn cut_bytes(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.pending]
    }

    /// Copy out the chunk found by [`Chunker::next_cut`] and move past it.
    pub(super) fn take(&mut self) -> Vec<u8> {
        let mut chunk = crate::memory::chunk_buffer(self.pending);
        chunk.extend_from_slice(self.cut_bytes());
        self.start += self.pending;
        self.pending = 0;
        chunk
    }

    /// Where FastCDC cuts the bytes at hand (all of them when it finds no cut).
    fn cut(&self) -> usize {
        let [mask_s, mask_l, mask_s_ls, mask_l_ls] = self.masks;
        cut_gear(
            &self.buf[self.start..self.end],
            self.min,
            self.avg,
            self.max,
            mask_s,
            mask_l,
            mask_s_ls,
            mask_l_ls,
            &self.gear,
            &self.gear_ls,
        )
        .1
    }

    /// Read until the buffer is full or the stream ends, first moving the uncut tail to the
    /// front when a maximum chunk would not fit after it.
    fn fill(&mut self) -> io::Result<()> {
        if self.start + self.max > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        while !self.eof && self.end < self.buf.len() {
            match self.source.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fastcdc::v2020::StreamCDC;
    use proptest::prelude::*;

    /// Gives at most `step` bytes per read, as pipes and slow files do.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = out.len().min(self.step).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn small() -> Chunking {
        Chunking {
            min_size: 256,
            avg_size: 1024,
            max_size: 4096,
            ..Chunking::default()
        }
    }

    fn ours(data: &[u8], step: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut c = Chunker::new(Trickle { data, step }, small(), seed);
        let mut chunks = Vec::new();
        while c.next_cut().unwrap() > 0 {
            // Asking again before taking gives the same chunk.
            assert_eq!(c.next_cut().unwrap(), c.cut_bytes().len());
            chunks.push(c.take());
        }
        chunks
    }

    fn theirs(data: &[u8], seed: u64) -> Vec<Vec<u8>> {
        let c = small();
        let cdc = StreamCDC::with_level_and_seed(
            data,
            c.min_size as usize,
            c.avg_size as usize,
            c.max_size as usize,
            Normalization::Level1,
            seed,
        );
        cdc.map(|c| c.unwrap().data).collect()
    }

    /// Bytes with long runs (where no cut is found and maximum chunks are made) and
    /// noisy stretches.
    fn mixed(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if (i / 5000) % 3 == 0 { 7 } else { x as u8 }
            })
            .collect()
    }

    proptest! {
        #[test]
        fn cuts_where_stream_cdc_cuts(seed in any::<u64>(), len in 0usize..40_000, step in 1usize..9000) {
            let data = mixed(seed, len);
            prop_assert_eq!(ours(&data, step, seed), theirs(&data, seed));
        }
    }

    #[test]
    fn empty_stream_has_no_chunk() {
        assert!(ours(&[], 10, 1).is_empty());
    }

    #[test]
    fn a_read_error_is_returned() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk gone"))
            }
        }
        let err = Chunker::new(Broken, small(), 0).next_cut().unwrap_err();
        assert_eq!(err.to_string(), "disk gone");
    }
}
