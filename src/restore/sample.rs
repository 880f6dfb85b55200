//! The random subset of files a sampled drill restores, chosen without holding the files.
//!
//! A sample is a shuffle of the selected files cut where the bytes reach what was asked
//! (at least one file). Here each file's place in the shuffle is a key computed from the
//! seed and the file's ordinal (the n-th file the restore selects, in manifest order), so:
//! - one pass over the manifest keeps a key and a size per file (16 bytes: 16 MB for a
//!   million files, where holding the entries took ~500 MB) and finds the cut;
//! - the restore's own pass computes each file's key again and takes those up to the cut.
//!
//! The keys are a bijection of the ordinal for a given seed (no two files tie), and the
//! same seed always chooses the same files of the same snapshot (`--seed` in the record).

use crate::format::manifest::{Entry, EntryKind};

/// Which of the selected files a sample takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    seed: u64,
    /// The largest key taken; `None` when there is no file to take.
    cut: Option<u64>,
}

impl Sample {
    /// Does the sample take the `ordinal`-th selected file?
    pub fn takes(&self, ordinal: u64) -> bool {
        self.cut.is_some_and(|cut| key(self.seed, ordinal) <= cut)
    }
}

/// A sample as a restore's pass applies it: the files the globs select are counted, in
/// manifest order, to know each one's ordinal.
pub(super) struct Sampling {
    sample: Sample,
    files_seen: u64,
}

impl Sampling {
    pub(super) fn new(sample: Sample) -> Sampling {
        Sampling {
            sample,
            files_seen: 0,
        }
    }

    /// The next entry the globs selected, in manifest order: does the sample take it?
    pub(super) fn takes(&mut self, e: &Entry) -> bool {
        if e.kind != EntryKind::File {
            return false;
        }
        self.files_seen += 1;
        self.sample.takes(self.files_seen - 1)
    }
}

/// The file's place in the seed's shuffle: SplitMix64's output function (a bijection of
/// 64-bit words) of an odd-multiple step from the seed.
fn key(seed: u64, ordinal: u64) -> u64 {
    let mut z = seed.wrapping_add(ordinal.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Finds a sample's cut from the sizes of the selected files, in order.
#[derive(Debug)]
pub struct Cutter {
    seed: u64,
    keyed: Vec<(u64, u64)>,
    total: u64,
}

impl Cutter {
    /// A cutter for `seed`.
    pub fn new(seed: u64) -> Cutter {
        Cutter {
            seed,
            keyed: Vec::new(),
            total: 0,
        }
    }

    /// The next selected file's size.
    pub fn add(&mut self, size: u64) {
        let ordinal = self.keyed.len() as u64;
        self.keyed.push((key(self.seed, ordinal), size));
        self.total = self.total.saturating_add(size);
    }

    /// The sample of `want(total bytes)` bytes: files in key order until their bytes reach
    /// it, at least one. Also returns the files and bytes taken.
    pub fn cut(mut self, want: impl FnOnce(u64) -> u64) -> (Sample, u64, u64) {
        let want = want(self.total);
        self.keyed.sort_unstable();
        let (mut files, mut bytes, mut cut) = (0, 0u64, None);
        for &(k, size) in &self.keyed {
            if bytes >= want && files > 0 {
                break;
            }
            (files, bytes, cut) = (files + 1, bytes.saturating_add(size), Some(k));
        }
        let sample = Sample {
            seed: self.seed,
            cut,
        };
        (sample, files, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn taken(sample: &Sample, n: u64) -> Vec<u64> {
        (0..n).filter(|&i| sample.takes(i)).collect()
    }

    proptest! {
        /// The sample is the shortest prefix of the shuffle that reaches the bytes asked
        /// (at least one file), and the restore's pass takes exactly the files counted.
        #[test]
        fn a_sample_is_the_shortest_shuffled_prefix_reaching_the_bytes(
            sizes in proptest::collection::vec(0u64..5_000, 0..300),
            share in 0.0f64..1.0,
            seed in any::<u64>(),
        ) {
            let mut cutter = Cutter::new(seed);
            sizes.iter().for_each(|&s| cutter.add(s));
            let total: u64 = sizes.iter().sum();
            let want = (total as f64 * share).ceil() as u64;
            let (sample, files, bytes) = cutter.cut(|t| { assert_eq!(t, total); want });
            let took = taken(&sample, sizes.len() as u64);
            prop_assert_eq!(took.len() as u64, files);
            prop_assert_eq!(took.iter().map(|&i| sizes[i as usize]).sum::<u64>(), bytes);
            if sizes.is_empty() {
                prop_assert_eq!(files, 0);
            } else {
                prop_assert!(files >= 1 && bytes >= want.min(total));
                // Dropping the last file taken (the largest key) would fall short.
                let last = *took.iter().max_by_key(|&&i| key(seed, i)).unwrap();
                prop_assert!(files == 1 || bytes - sizes[last as usize] < want);
            }
        }
    }

    #[test]
    fn the_same_seed_takes_the_same_files_and_another_seed_others() {
        let cut = |seed| {
            let mut c = Cutter::new(seed);
            (0..1000).for_each(|_| c.add(100));
            c.cut(|total| total / 10).0
        };
        assert_eq!(taken(&cut(7), 1000), taken(&cut(7), 1000));
        assert_eq!(taken(&cut(7), 1000).len(), 100);
        assert_ne!(taken(&cut(7), 1000), taken(&cut(8), 1000));
        // Spread over the whole snapshot, not its first files.
        assert!(taken(&cut(7), 1000).iter().any(|&i| i > 900));
    }
}
