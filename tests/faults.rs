//! Store faults through the library, with the fault-injecting `Store` wrapper around real
//! local-directory stores: 5xx storms, lost answers after a commit, partial writes, stalls,
//! outages mid-backup healed by `sync`, and a store that ignores create-only conditions.

mod common;

use std::fs;
use std::sync::Arc;
use std::time::{Duration, Instant};

use snapdrill::backup::{self, BackupReport};
use snapdrill::keys::{Identities, WriteKey};
use snapdrill::repository::{self, CreateOnly, OpenMode, Repository};
use snapdrill::restore::{self, RestoreOptions};
use snapdrill::store::StoreRef;
use snapdrill::store::faults::{FaultPlan, FaultStore};
use snapdrill::store::retry::{Retrying, Tuning};

struct World {
    dir: tempfile::TempDir,
    key: WriteKey,
    ids: Arc<Identities>,
    recipients: Vec<age::x25519::Recipient>,
}

impl World {
    fn new() -> Self {
        let common::engine::Keys {
            ids,
            recipients,
            key,
        } = common::engine::keys();
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("exports");
        fs::create_dir_all(src.join("logs")).unwrap();
        for i in 0..6u64 {
            let data = common::random_bytes(700_000, i + 1);
            fs::write(src.join(format!("part-{i}.bin")), data).unwrap();
        }
        for i in 0..40 {
            fs::write(
                src.join("logs").join(format!("call-{i}.jsonl")),
                format!("{{\"call\":{i}}}\n").repeat(300),
            )
            .unwrap();
        }
        World {
            dir,
            key,
            ids,
            recipients,
        }
    }

    fn raw(&self, name: &str) -> StoreRef {
        common::engine::local(name, &self.dir.path().join("stores").join(name))
    }

    fn faulty(&self, name: &str, plan: FaultPlan, tuning: Tuning) -> (Arc<FaultStore>, StoreRef) {
        let f = Arc::new(FaultStore::new(
            self.raw(name),
            plan,
            0x5eed ^ name.len() as u64,
        ));
        let store: StoreRef = Arc::new(Retrying::new(f.clone(), tuning));
        (f, store)
    }

    fn plain(&self, name: &str) -> StoreRef {
        Arc::new(Retrying::new(self.raw(name), Tuning::default()))
    }

    async fn init(&self, stores: &[StoreRef]) -> Vec<repository::InitOutcome> {
        repository::init(stores, &self.key, &self.recipients)
            .await
            .unwrap()
    }

    async fn backup(
        &self,
        stores: Vec<StoreRef>,
        require: usize,
    ) -> snapdrill::Result<BackupReport> {
        let repo = Repository::open(stores, self.key.signer(), OpenMode::AnyUsable).await?;
        let mut opts =
            common::engine::backup_options(vec![self.dir.path().join("exports")], require);
        opts.host = "faults".into();
        backup::run(&repo, &self.key, self.recipients.clone(), &opts, &|_| {}).await
    }

    /// Restore `latest` from `store` alone and compare with the source.
    async fn restore_alone(&self, store: StoreRef, tag: &str) -> restore::RestoreReport {
        let repo = Repository::open(vec![store], self.key.signer(), OpenMode::All)
            .await
            .unwrap();
        let list = repo.snapshots().await.unwrap();
        let snap = list.find("latest").unwrap();
        let opened = restore::open_snapshot(&repo, snap.commit.clone(), self.ids.clone())
            .await
            .unwrap();
        let target = self.dir.path().join(format!("restored-{tag}"));
        let opts = RestoreOptions::new(target.clone());
        let report = restore::run(&repo, opened, self.ids.clone(), &opts, Default::default())
            .await
            .unwrap();
        for e in walkdir::WalkDir::new(self.dir.path().join("exports")) {
            let e = e.unwrap();
            if e.file_type().is_file() {
                let rel = e.path().strip_prefix(self.dir.path()).unwrap();
                assert_eq!(
                    fs::read(e.path()).unwrap(),
                    fs::read(target.join(rel)).unwrap(),
                    "{}",
                    rel.display()
                );
            }
        }
        report
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_server_errors_on_one_store_still_commit() {
    let w = World::new();
    let plan = FaultPlan {
        error_rate: 0.10,
        ..Default::default()
    };
    let (faults, flaky) = w.faulty(
        "flaky",
        plan,
        Tuning {
            retries: 5,
            ..Tuning::default()
        },
    );
    let good = w.plain("good");
    w.init(&[flaky.clone(), good.clone()]).await;
    let report = w
        .backup(vec![flaky.clone(), good.clone()], 2)
        .await
        .unwrap();
    assert_eq!(report.exit_code(), 0, "{report:?}");
    assert!(
        faults.injected.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "no fault was injected"
    );
    w.restore_alone(w.plain("flaky"), "flaky").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_after_commit_and_partial_writes_are_recovered() {
    let w = World::new();
    let plan = FaultPlan {
        commit_then_error_rate: 0.3,
        partial_write_rate: 0.2,
        ..Default::default()
    };
    let (faults, store) = w.faulty(
        "lossy",
        plan,
        Tuning {
            retries: 8,
            ..Tuning::default()
        },
    );
    w.init(&[w.plain("lossy")]).await;
    let report = w.backup(vec![store], 1).await.unwrap();
    assert_eq!(report.exit_code(), 0, "{report:?}");
    assert!(faults.injected.load(std::sync::atomic::Ordering::Relaxed) >= 3);
    w.restore_alone(w.plain("lossy"), "lossy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_down_mid_backup_is_partial_then_sync_heals_it() {
    let w = World::new();
    let (faults, down) = w.faulty(
        "far",
        FaultPlan::default(),
        Tuning {
            retries: 1,
            ..Tuning::default()
        },
    );
    let near = w.plain("near");
    w.init(&[near.clone(), down.clone()]).await;
    // Goes down after the backup has started (config read, listings done).
    let f = faults.clone();
    let killer = tokio::spawn(async move {
        while f.requests.load(std::sync::atomic::Ordering::Relaxed) < 8 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        f.set_down(true);
    });
    let report = w.backup(vec![near.clone(), down.clone()], 1).await.unwrap();
    killer.await.unwrap();
    assert_eq!(report.exit_code(), 3, "{report:?}");
    let far = report.stores.iter().find(|s| s.name == "far").unwrap();
    assert!(!far.committed && far.error.is_some(), "{far:?}");
    assert!(
        report
            .stores
            .iter()
            .find(|s| s.name == "near")
            .unwrap()
            .committed
    );

    // Back up again later: sync copies what "far" lacks, then it restores alone.
    faults.set_down(false);
    let repo = Repository::open(vec![near, down], w.key.signer(), OpenMode::All)
        .await
        .unwrap();
    let dry = snapdrill::sync::run(&repo, true, &mut Default::default())
        .await
        .unwrap();
    let far_dry = dry.stores.iter().find(|s| s.store == "far").unwrap();
    assert_eq!(far_dry.snapshots_added, vec![report.snapshot_id.clone()]);
    assert!(
        w.plain("far").list("snapshots/").await.unwrap().is_empty(),
        "dry run wrote nothing"
    );
    let synced = snapdrill::sync::run(&repo, false, &mut Default::default())
        .await
        .unwrap();
    assert_eq!(synced.exit_code(), 0, "{synced:?}");
    assert!(
        synced
            .stores
            .iter()
            .find(|s| s.store == "far")
            .unwrap()
            .objects_copied
            > 0
    );
    let again = snapdrill::sync::run(&repo, false, &mut Default::default())
        .await
        .unwrap();
    assert!(
        again.stores.iter().all(|s| s.objects_copied == 0),
        "second sync copies nothing: {again:?}"
    );
    w.restore_alone(w.plain("far"), "far").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_store_is_cut_at_its_deadline_and_the_others_commit() {
    let w = World::new();
    let near = w.plain("near");
    w.init(&[near.clone(), w.plain("stuck")]).await;
    let plan = FaultPlan {
        stall_rate: 1.0,
        // Longer than any test may run: without the deadline, the run never ends.
        stall: Duration::from_secs(3600),
        only: vec!["put"],
        ..Default::default()
    };
    let tuning = Tuning {
        timeout: Duration::from_millis(300),
        retries: 1,
        deadline: Some(Duration::from_secs(3)),
        concurrency: 4,
        ..Tuning::default()
    };
    let (_, stuck) = w.faulty("stuck", plan, tuning);
    let started = Instant::now();
    let report = w.backup(vec![near, stuck], 1).await.unwrap();
    let took = started.elapsed();
    // Not a speed check: a run that waited for the stall would take an hour.
    assert!(
        took < Duration::from_secs(600),
        "the stalled store held the run for {took:?}"
    );
    assert_eq!(report.exit_code(), 3, "{report:?}");
    let stuck = report.stores.iter().find(|s| s.name == "stuck").unwrap();
    assert!(!stuck.committed);
    w.restore_alone(w.plain("near"), "near").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fewer_stores_than_required_is_fatal_but_the_healthy_one_still_commits() {
    let w = World::new();
    let near = w.plain("near");
    w.init(&[near.clone(), w.plain("gone")]).await;
    let (faults, gone) = w.faulty(
        "gone",
        FaultPlan::default(),
        Tuning {
            retries: 0,
            ..Tuning::default()
        },
    );
    faults.set_down(true);
    let report = w.backup(vec![near, gone], 2).await.unwrap();
    assert_eq!(report.exit_code(), 1, "{report:?}");
    assert_eq!(report.committed(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_ignores_create_only_is_reported_and_still_restores() {
    let w = World::new();
    let plan = FaultPlan {
        ignore_create: true,
        ..Default::default()
    };
    let (_, careless) = w.faulty("careless", plan, Tuning::default());
    let outcomes = w.init(&[careless.clone(), w.plain("honest")]).await;
    assert_eq!(outcomes[0].create_only, CreateOnly::No);
    assert!(
        !outcomes[0].create_only.atomic(),
        "must never be trusted for mutual exclusion"
    );
    assert_eq!(outcomes[1].create_only, CreateOnly::Yes);
    assert!(outcomes[1].create_only.atomic());
    let report = w
        .backup(vec![careless.clone(), w.plain("honest")], 2)
        .await
        .unwrap();
    assert_eq!(report.exit_code(), 0, "{report:?}");
    // A second backup rewrites nothing that matters: same chunks, new unique snapshot id.
    let second = w.backup(vec![careless.clone()], 1).await.unwrap();
    assert_eq!(second.chunks_new, 0);
    w.restore_alone(careless, "careless").await;
}

/// A store whose chunk listing breaks off after handing out every chunk leaves the run, and
/// what it listed counts for nothing: the other store, emptied of its chunks meanwhile, gets
/// every chunk again (uploaded, not "deduplicated" against the failed store) and restores
/// alone. Counting the broken listing made the backup skip the uploads and then try to copy
/// from the failed store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_breaks_off_counts_for_nothing() {
    let w = World::new();
    let (near, far) = (w.plain("near"), w.plain("far"));
    w.init(&[near.clone(), far.clone()]).await;
    assert_eq!(
        w.backup(vec![near.clone(), far], 2)
            .await
            .unwrap()
            .committed(),
        2
    );
    fs::remove_dir_all(w.dir.path().join("stores/near/chunks")).unwrap();
    // Every chunk is listed, then the listing breaks off; reading from it fails too.
    let plan = FaultPlan {
        list_fails_after: Some(usize::MAX),
        only: vec!["get"],
        error_rate: 1.0,
        spare_prefixes: vec!["config", "keys/", "snapshots/", "forgotten/", "writers/"],
        ..FaultPlan::default()
    };
    let tuning = Tuning {
        retries: 0,
        ..Tuning::default()
    };
    let (faults, far) = w.faulty("far", plan, tuning);
    let report = w.backup(vec![near.clone(), far], 1).await.unwrap();
    assert_eq!(
        report.exit_code(),
        snapdrill::error::exit::PARTIAL,
        "{report:?}"
    );
    assert_eq!(
        report.chunks_new, report.chunks,
        "every chunk uploaded again"
    );
    let mut committed: Vec<_> = report.stores.iter().filter(|s| s.committed).collect();
    assert_eq!(committed.len(), 1, "{report:?}");
    assert_eq!(committed.pop().unwrap().name, "near");
    assert!(
        faults.seen("list", "chunks/") > 0,
        "the chunk listing was reached"
    );
    let fossils = faults.seen("list", "fossils/");
    assert_eq!(fossils, 0, "a store that left the run is not listed again");
    w.restore_alone(near, "near").await;
}
