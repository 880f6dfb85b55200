//! `--read-data`, `--read-data-subset` and `--budget`: which objects to download, and the
//! download itself — each object's ciphertext SHA-256 against the signed commit (no
//! identity needed).

use futures::StreamExt;
use rand::seq::SliceRandom;

use super::coverage::CoverageFile;
use super::objects::Candidate;
use super::survey::Surveyed;
use super::{AuditOptions, Finding, FindingKind};
use crate::format::commit::ObjectRef;
use crate::sealing::{sha256, sha256_hex};
use crate::store::{StoreErrorKind, StoreRef};
use crate::units::{self, Amount};

/// Which objects an audit downloads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadPolicy {
    /// None (the default audit reads only commits, tombstones and manifests).
    None,
    /// Every object.
    All,
    /// Part `n` of `of` deterministic parts (`1/3`, `2/3`, `3/3` cover everything once).
    Part {
        /// 1-based part.
        n: u64,
        /// Number of parts.
        of: u64,
    },
    /// A random share of the objects of each store (0 < f <= 1).
    Percent(f64),
    /// About this many bytes per store, least recently read first.
    Size(u64),
}

impl ReadPolicy {
    /// Parse `--read-data-subset`: `n/t`, `5%` or a size such as `500MiB`.
    pub fn parse_subset(s: &str) -> Result<Self, String> {
        if let Some((n, t)) = s.split_once('/') {
            let parse = |v: &str| v.trim().parse::<u64>().ok();
            return match (parse(n), parse(t)) {
                (Some(n), Some(of)) if n >= 1 && n <= of => Ok(ReadPolicy::Part { n, of }),
                _ => Err(format!(
                    "'{s}': write n/t with 1 <= n <= t, e.g. 1/3 (then 2/3 and 3/3 read the rest)"
                )),
            };
        }
        match units::parse_amount(s)? {
            Amount::Share(f) => Ok(ReadPolicy::Percent(f)),
            Amount::Bytes(b) => Ok(ReadPolicy::Size(b)),
        }
    }
}

/// Parse a byte count such as `500MiB` or `2GB` (for `--budget`).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    match units::parse_amount(s)? {
        Amount::Bytes(b) => Ok(b),
        Amount::Share(_) => Err(format!("'{s}': a budget is a size, e.g. 500MiB")),
    }
}

/// For reports: what was read.
pub fn describe(policy: &ReadPolicy, budget: Option<u64>) -> String {
    let what = match policy {
        ReadPolicy::None => return "none".into(),
        ReadPolicy::All => "all".to_owned(),
        ReadPolicy::Part { n, of } => format!("part {n}/{of}"),
        ReadPolicy::Percent(f) => format!("{}% at random", f * 100.0),
        ReadPolicy::Size(b) => format!("{b} bytes per store, least recently read first"),
    };
    match budget {
        Some(b) => format!("{what}, budget {b} bytes"),
        None => what,
    }
}

/// The deterministic partition: the first 8 bytes of SHA-256(object name), big-endian,
/// modulo `of`, equal to `n - 1`.
pub fn in_part(name: &str, n: u64, of: u64) -> bool {
    name_hash(name) % of == n - 1
}

fn name_hash(name: &str) -> u64 {
    let h = sha256(name.as_bytes());
    u64::from_be_bytes(h[..8].try_into().expect("8 bytes"))
}

/// One object chosen for reading.
struct Pick {
    store: usize,
    object: Candidate,
    /// Unix seconds of the last verified read; 0 if never.
    last_read: u64,
}

/// One object read.
pub(super) struct Read {
    pub store: usize,
    pub object: ObjectRef,
    /// SHA-256 of what the store served, when it served something.
    pub sha256: Option<String>,
    pub problem: Option<Finding>,
}

/// What `--read-data` did.
pub(super) struct Outcome {
    pub reads: Vec<Read>,
    /// Per store: selected but left for later by the budget.
    pub deferred: Vec<u64>,
}

/// Select, then read, every store at once.
pub(super) async fn run(
    stores: &[Surveyed],
    candidates: &[Vec<Candidate>],
    cov: &CoverageFile,
    opts: &AuditOptions,
) -> Outcome {
    let (picks, deferred) = select(stores, candidates, cov, opts);
    let mut per_store: Vec<Vec<Candidate>> = vec![Vec::new(); stores.len()];
    for p in picks {
        per_store[p.store].push(p.object);
    }
    let reads = futures::future::join_all(
        per_store
            .into_iter()
            .enumerate()
            .map(|(i, objects)| read_store(&stores[i].store, i, objects)),
    )
    .await;
    Outcome {
        reads: reads.into_iter().flatten().collect(),
        deferred,
    }
}

fn select(
    stores: &[Surveyed],
    candidates: &[Vec<Candidate>],
    cov: &CoverageFile,
    opts: &AuditOptions,
) -> (Vec<Pick>, Vec<u64>) {
    let mut picks = Vec::new();
    for (i, s) in stores.iter().enumerate() {
        let name = s.store.name();
        let mine: Vec<Pick> = candidates[i]
            .iter()
            .map(|o| Pick {
                store: i,
                last_read: cov.last_read(name, &o.name()).unwrap_or(0),
                object: o.clone(),
            })
            .collect();
        picks.extend(select_store(&opts.read, mine));
    }
    match opts.budget {
        Some(budget) => apply_budget(picks, budget, stores.len()),
        None => (picks, vec![0; stores.len()]),
    }
}

/// Least recently read first; never-read objects in a stable, name-hashed order.
fn by_staleness(picks: &mut [Pick]) {
    // Cached: a key is a SHA-256 of a name made for it, once per pick, not per comparison.
    picks.sort_by_cached_key(|p| (p.last_read, name_hash(&p.object.name()), p.store));
}

fn select_store(policy: &ReadPolicy, mut mine: Vec<Pick>) -> Vec<Pick> {
    match *policy {
        ReadPolicy::None => Vec::new(),
        ReadPolicy::All => mine,
        ReadPolicy::Part { n, of } => mine
            .into_iter()
            .filter(|p| in_part(&p.object.name(), n, of))
            .collect(),
        ReadPolicy::Percent(f) => {
            let want = (mine.len() as f64 * f).ceil() as usize;
            mine.shuffle(&mut rand::thread_rng());
            mine.truncate(want);
            mine
        }
        ReadPolicy::Size(bytes) => {
            by_staleness(&mut mine);
            let mut total = 0;
            mine.into_iter()
                .take_while(|p| {
                    let take = total < bytes;
                    total += p.object.size();
                    take
                })
                .collect()
        }
    }
}

/// Keep the least recently read picks that fit in `budget` bytes.
fn apply_budget(mut picks: Vec<Pick>, budget: u64, stores: usize) -> (Vec<Pick>, Vec<u64>) {
    by_staleness(&mut picks);
    let mut deferred = vec![0; stores];
    let mut total = 0u64;
    picks.retain(|p| {
        let fits = total + p.object.size() <= budget;
        if fits {
            total += p.object.size();
        } else {
            deferred[p.store] += 1;
        }
        fits
    });
    (picks, deferred)
}

async fn read_store(store: &StoreRef, index: usize, objects: Vec<Candidate>) -> Vec<Read> {
    futures::stream::iter(objects)
        .map(|o| read_one(store, index, o))
        .buffer_unordered(store.concurrency().clamp(1, 16))
        .collect()
        .await
}

async fn read_one(store: &StoreRef, index: usize, object: Candidate) -> Read {
    let object = object.to_ref();
    let problem = |kind, detail: String| Finding::new(store.name(), &object.name, kind, detail);
    let (sha256, problem) = match store.get(&object.name, object.size).await {
        Ok(bytes) => {
            let len = bytes.len();
            let sha = tokio::task::spawn_blocking(move || sha256_hex(&bytes))
                .await
                .unwrap_or_default();
            let bad = (sha != object.sha256).then(|| {
                problem(
                    FindingKind::HashMismatch,
                    format!(
                        "content ({len} bytes) does not match the SHA-256 in the signed commit"
                    ),
                )
            });
            (Some(sha), bad)
        }
        Err(e) => {
            let kind = match e.kind {
                StoreErrorKind::NotFound => FindingKind::Missing,
                StoreErrorKind::Corrupt => FindingKind::WrongSize,
                _ => FindingKind::Unreadable,
            };
            (
                None,
                Some(problem(kind, format!("reading it failed: {}", e.message))),
            )
        }
    };
    Read {
        store: index,
        object,
        sha256,
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_parse() {
        assert_eq!(
            ReadPolicy::parse_subset("2/3").unwrap(),
            ReadPolicy::Part { n: 2, of: 3 }
        );
        assert_eq!(
            ReadPolicy::parse_subset("5%").unwrap(),
            ReadPolicy::Percent(0.05)
        );
        assert_eq!(
            ReadPolicy::parse_subset("500MiB").unwrap(),
            ReadPolicy::Size(500 << 20)
        );
        for bad in ["0/3", "4/3", "x/y", "0%", "lots"] {
            assert!(ReadPolicy::parse_subset(bad).is_err(), "{bad}");
        }
        assert!(parse_bytes("5%").is_err());
    }

    #[test]
    fn parts_cover_every_name_once() {
        for i in 0..200 {
            let name = format!("chunks/ab/{i}");
            let parts = (1..=3).filter(|&n| in_part(&name, n, 3)).count();
            assert_eq!(parts, 1, "{name}");
        }
    }

    #[test]
    fn the_budget_keeps_the_least_recently_read() {
        let pick = |name: &str, last_read, store| Pick {
            store,
            last_read,
            object: Candidate::Manifest(Box::new(ObjectRef {
                name: name.into(),
                size: 10,
                sha256: String::new(),
            })),
        };
        let picks = vec![pick("a", 50, 0), pick("b", 0, 1), pick("c", 10, 0)];
        let (kept, deferred) = apply_budget(picks, 20, 2);
        let names: Vec<String> = kept.iter().map(|p| p.object.name()).collect();
        assert_eq!(names, ["b", "c"]);
        assert_eq!(deferred, [1, 0]);
    }
}
