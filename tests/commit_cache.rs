//! The local commit cache: a second listing reads no commit from the stores; a garbled
//! cache entry is a miss; a commit rewritten in every store is untrusted again, cache or
//! not; entries of pruned snapshots are removed.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::{Env, random_bytes};
use snapdrill::keys::WriteKey;
use snapdrill::repository::{OpenMode, Repository, SnapshotList};
use snapdrill::store::backend::{self, Location};
use snapdrill::store::faults::{FaultPlan, FaultStore};

/// Three snapshots in stores a and b.
fn history() -> Env {
    let env = Env::new(&["a", "b"]);
    let src = env.p("exports");
    fs::create_dir_all(&src).unwrap();
    for round in 0..3u64 {
        fs::write(src.join("calls.bin"), random_bytes(64 << 10, 500 + round)).unwrap();
        env.ok(&["backup", src.to_str().unwrap()]);
    }
    env
}

/// Counts every request the repository makes to its stores.
struct Counted {
    stores: Vec<Arc<FaultStore>>,
}

impl Counted {
    fn requests(&self) -> u64 {
        self.stores
            .iter()
            .map(|s| s.requests.load(Ordering::SeqCst))
            .sum()
    }
}

fn open(env: &Env, cache: &Path) -> (Repository, Counted) {
    let stores: Vec<Arc<FaultStore>> = ["a", "b"]
        .iter()
        .map(|name| {
            let inner = backend::open_raw(
                name,
                &Location::Local(env.store(name)),
                &Default::default(),
                &Default::default(),
                false,
            )
            .unwrap();
            Arc::new(FaultStore::new(inner, FaultPlan::default(), 1))
        })
        .collect();
    let key = WriteKey::load(&env.write_key()).unwrap();
    let refs = stores
        .iter()
        .map(|s| s.clone() as snapdrill::store::StoreRef)
        .collect();
    let repo = runtime()
        .block_on(Repository::open(refs, key.signer(), OpenMode::All))
        .unwrap()
        .with_commit_cache(cache);
    (repo, Counted { stores })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn list(repo: &Repository) -> SnapshotList {
    runtime().block_on(repo.snapshots()).unwrap()
}

/// The cached commits (not their `.seen` records).
fn cached(cache: &Path, repo: &Repository) -> Vec<PathBuf> {
    let dir = cache.join("commits").join(&repo.config.repository_id);
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_none() && p.is_file());
    files.sort();
    files
}

#[test]
fn a_second_listing_reads_no_commit_and_a_garbled_entry_is_read_again() {
    let env = history();
    let cache = env.p("commit-cache");
    let (repo, counted) = open(&env, &cache);

    let first = list(&repo);
    assert_eq!(first.trusted.len(), 3);
    let after_first = counted.requests();
    assert_eq!(cached(&cache, &repo).len(), 3);

    let second = list(&repo);
    let ids = |l: &SnapshotList| -> Vec<String> {
        l.trusted
            .iter()
            .map(|s| s.commit.snapshot_id.clone())
            .collect()
    };
    assert_eq!(ids(&second), ids(&first));
    // Two stores, two listings each (snapshots/, forgotten/): nothing else.
    assert_eq!(
        counted.requests() - after_first,
        4,
        "commits were read again"
    );

    // A garbled entry does not verify: that commit alone is read from a store again, and
    // the entry is written back whole.
    let entry = cached(&cache, &repo)[1].clone();
    let mut bytes = fs::read(&entry).unwrap();
    let good = bytes.clone();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    fs::write(&entry, &bytes).unwrap();
    let before = counted.requests();
    assert_eq!(ids(&list(&repo)), ids(&first));
    assert_eq!(counted.requests() - before, 4 + 1);
    assert_eq!(fs::read(&entry).unwrap(), good);
}

#[test]
fn a_commit_rewritten_in_every_store_is_untrusted_even_when_cached() {
    let env = history();
    let cache = env.p("commit-cache");
    let (repo, _) = open(&env, &cache);
    let first = list(&repo);
    let id = first.trusted[0].commit.snapshot_id.clone();
    for s in ["a", "b"] {
        let path = env.store(s).join("snapshots").join(&id);
        let text = fs::read_to_string(&path).unwrap();
        let host = &first.trusted[0].commit.host;
        let forged = text.replacen(&format!("\"{host}\""), "\"forged-host\"", 1);
        assert_ne!(forged, text);
        fs::write(&path, forged).unwrap();
    }
    let after = list(&repo);
    assert_eq!(after.trusted.len(), 2);
    assert_eq!(after.untrusted.len(), 1);
    assert_eq!(after.untrusted[0].id, id);
}

#[test]
fn entries_of_pruned_snapshots_are_removed_and_never_listed() {
    let env = history();
    let cache = env.p("commit-cache");
    let (repo, _) = open(&env, &cache);
    assert_eq!(list(&repo).trusted.len(), 3);
    assert_eq!(cached(&cache, &repo).len(), 3);
    env.ok(&["forget", "--keep-last", "1", "--prune", "--yes"]);
    let after = list(&repo);
    assert_eq!(after.trusted.len(), 1);
    assert_eq!(
        cached(&cache, &repo).len(),
        1,
        "entries of pruned commits stay"
    );
    assert_eq!(
        cached(&cache, &repo)[0]
            .file_name()
            .unwrap()
            .to_str()
            .unwrap(),
        after.trusted[0].commit.snapshot_id
    );
}
