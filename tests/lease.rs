//! The prune lease over time: a prune that runs longer than its lease TTL renews the lease,
//! so no other prune may break it; a prune whose lease is taken from it stops deleting.
//! Each test holds the store's deletes at a gate (a fault-injecting wrapper over a real local
//! store) so that the prune outlives a short TTL, and waits for observable state — the
//! lease's renewal count, requests held or seen — never for a fixed time.

mod common;

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use common::{Env, files_under, random_bytes};
use snapdrill::error::Error;
use snapdrill::keys::WriteKey;
use snapdrill::prune::{PruneOptions, PruneReport};
use snapdrill::repository::{OpenMode, Repository};
use snapdrill::store::StoreRef;
use snapdrill::store::backend::{self, Location};
use snapdrill::store::faults::{FaultPlan, FaultStore, Gate};

/// Three snapshots, the two older ones forgotten: prune has their commits and manifests to
/// delete one by one, then chunks to set aside.
fn forgotten_history() -> Env {
    let env = Env::new(&["a"]);
    let src = env.p("exports");
    fs::create_dir_all(&src).unwrap();
    for round in 0..3u64 {
        fs::write(src.join("calls.bin"), random_bytes(1 << 20, 300 + round)).unwrap();
        env.ok(&["backup", src.to_str().unwrap()]);
    }
    env.ok(&["forget", "--keep-last", "1"]);
    env
}

fn plain_store(env: &Env) -> StoreRef {
    let location = Location::Local(env.store("a"));
    backend::open_raw(
        "a",
        &location,
        &Default::default(),
        &Default::default(),
        false,
    )
    .unwrap()
}

/// The same store, with every delete (but the lease's and the clock probes') held at `gate`
/// until the test opens it: the prune holds its lease for as long as the test decides.
fn gated_deletes(env: &Env, gate: &Arc<Gate>) -> Arc<FaultStore> {
    let plan = FaultPlan {
        gate: Some(gate.clone()),
        only: vec!["delete"],
        spare_prefixes: vec!["locks/", "probes/"],
        ..FaultPlan::default()
    };
    Arc::new(FaultStore::new(plain_store(env), plan, 7))
}

/// The lease object as JSON, when there is one.
fn lease_body(env: &Env) -> Option<serde_json::Value> {
    let text = fs::read(env.store("a").join("locks/prune")).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Poll observable state until `done` (or fail after a generous deadline).
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn options(lease_ttl: Duration) -> PruneOptions {
    PruneOptions {
        settings: snapdrill::config::PruneSettings {
            grace: Duration::ZERO,
            lease_ttl,
            ..Default::default()
        },
        dry_run: false,
        host: "test".into(),
        planned_forget: Vec::new(),
        // Two of three snapshots go: more than the default max_delete.
        yes: true,
    }
}

async fn prune(env: &Env, store: StoreRef, lease_ttl: Duration) -> snapdrill::Result<PruneReport> {
    let key = WriteKey::load(&env.write_key()).unwrap();
    let repo = Repository::open(vec![store], key.signer(), OpenMode::All).await?;
    snapdrill::prune::run(&repo, &options(lease_ttl)).await
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn commits(env: &Env) -> Vec<PathBuf> {
    files_under(&env.store("a").join("snapshots"))
}

#[test]
fn a_prune_longer_than_its_lease_ttl_renews_it_and_a_second_prune_exits_11() {
    let env = forgotten_history();
    let ttl = Duration::from_secs(4);
    let gate = Gate::new();
    let rt = runtime();
    let (first, second) = rt.block_on(async {
        tokio::join!(prune(&env, gated_deletes(&env, &gate), ttl), async {
            // The first prune holds its lease, its deletes held at the gate, until it has
            // renewed the lease five times (every quarter of the TTL): an unrenewed lease
            // would now be older than its TTL by the store's clock.
            wait_until("a delete held and five renewals", || {
                gate.waiting() > 0
                    && lease_body(&env).is_some_and(|b| b["renewals"].as_u64() >= Some(5))
            })
            .await;
            let second = prune(&env, plain_store(&env), ttl).await;
            gate.open();
            second
        })
    });
    match second {
        Err(Error::LeaseHeld { store, holder }) => {
            assert_eq!(store, "a");
            assert!(holder.contains("host test"), "{holder}");
        }
        other => panic!("a second prune must find the renewed lease held: {other:?}"),
    }
    let report = first.expect("the long prune keeps its lease and finishes");
    assert!(report.stores[0].deleted >= 4, "{report:?}");
    assert_eq!(
        commits(&env).len(),
        1,
        "the forgotten commits were not deleted"
    );
    assert!(
        !env.store("a").join("locks/prune").exists(),
        "the lease was not released"
    );
}

#[test]
fn a_prune_whose_lease_is_taken_stops_deleting_and_leaves_the_new_holder_alone() {
    let env = forgotten_history();
    let ttl = Duration::from_secs(4);
    let lease = env.store("a").join("locks/prune");
    let gate = Gate::new();
    let store = gated_deletes(&env, &gate);
    let rt = runtime();
    let (result, ()) = rt.block_on(async {
        tokio::join!(prune(&env, store.clone(), ttl), async {
            // The prune holds its lease, its first delete at the gate.
            wait_until("a delete held", || gate.waiting() > 0).await;
            assert!(lease.exists(), "the prune did not take its lease");
            // Another holder's bytes replace the lease (as if it was broken and taken).
            fs::write(
                &lease,
                r#"{"host":"other","pid":9,"nonce":"z","started":"2026-11-28T00:00:00Z"}"#,
            )
            .unwrap();
            // Two reads of the lease by the heartbeat since: the first one's verdict is in.
            let reads = store.seen("get", "locks/prune");
            wait_until("the heartbeat read the new lease", || {
                store.seen("get", "locks/prune") >= reads + 2
            })
            .await;
            gate.open();
        })
    });
    match result {
        Err(Error::LeaseHeld { store, holder }) => {
            assert_eq!(store, "a");
            assert!(holder.contains("lost"), "{holder}");
        }
        other => panic!("a prune that lost its lease must stop: {other:?}"),
    }
    assert!(
        commits(&env).len() >= 2,
        "the prune went on deleting after losing its lease: {:?}",
        commits(&env)
    );
    assert!(
        !env.store("a").join("fossils").exists()
            || files_under(&env.store("a").join("fossils")).is_empty(),
        "chunks were set aside after the lease was lost"
    );
    assert!(
        fs::read_to_string(&lease).unwrap().contains("\"pid\":9"),
        "the new holder's lease was deleted"
    );
}

#[test]
fn lease_writes_whose_answers_are_lost_still_take_renew_and_release_the_lease() {
    let env = forgotten_history();
    // Every write of the lease lands, then fails as if the answer were lost; everything else
    // answers, slowly for deletes (so the prune outlives the TTL and must renew).
    let every_other_prefix = vec![
        "chunks/",
        "fossils/",
        "collections/",
        "probes/",
        "snapshots/",
        "manifests/",
        "forgotten/",
        "writers/",
        "config",
    ];
    let plan = FaultPlan {
        commit_then_error_rate: 1.0,
        only: vec!["put"],
        spare_prefixes: every_other_prefix,
        ..FaultPlan::default()
    };
    let gate = Gate::new();
    let store: StoreRef = Arc::new(FaultStore::new(gated_deletes(&env, &gate), plan, 3));
    let (report, ()) = runtime().block_on(async {
        tokio::join!(prune(&env, store, Duration::from_secs(4)), async {
            // Deletes are held until the lease has been renewed twice through lost answers.
            wait_until("a delete held and two renewals", || {
                gate.waiting() > 0
                    && lease_body(&env).is_some_and(|b| b["renewals"].as_u64() >= Some(2))
            })
            .await;
            gate.open();
        })
    });
    let report = report.expect("a lease write whose answer was lost is still this prune's lease");
    assert!(report.stores[0].deleted >= 4, "{report:?}");
    assert_eq!(commits(&env).len(), 1);
    assert!(
        !env.store("a").join("locks/prune").exists(),
        "the lease was left behind"
    );
}
