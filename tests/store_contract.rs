//! The `Store` contract, one suite run against every kind of store snapdrill talks to (as
//! object_store runs its conformance suite against each backend): in memory, a local
//! folder, the retry wrapper, and real S3 (moto), Azure (Azurite) and WebDAV (rclone)
//! servers on 127.0.0.1. The engines rely on these kinds and shapes, never on strings.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::servers::Server;
use snapdrill::store::backend::{self, Location};
use snapdrill::store::retry::Tuning;
use snapdrill::store::{PutMode, StoreErrorKind, StoreRef};

/// Every promise of the trait's documentation, in one store, under a fresh prefix.
/// The kind of a failure (`Ok(())` for a success).
fn kind<T>(r: Result<T, snapdrill::store::StoreError>) -> Result<(), StoreErrorKind> {
    r.map(drop).map_err(|e| e.kind)
}

async fn contract(store: StoreRef) {
    let p = format!("contract-{}/", std::process::id());
    let key = |k: &str| format!("{p}{k}");
    let name = store.name().to_owned();

    // Missing objects are NotFound, for reads and for HEAD.
    assert_eq!(
        kind(store.get(&key("missing"), 10).await),
        Err(StoreErrorKind::NotFound),
        "{name}"
    );
    assert_eq!(
        kind(store.head(&key("missing")).await),
        Err(StoreErrorKind::NotFound),
        "{name}"
    );

    // A create writes; a second create of the same name is refused with AlreadyExists and
    // leaves the first bytes (really, or emulated where the backend cannot refuse).
    let first = Bytes::from_static(b"first bytes");
    store
        .put(&key("obj"), first.clone(), PutMode::Create)
        .await
        .unwrap();
    assert_eq!(store.get(&key("obj"), 100).await.unwrap(), first, "{name}");
    assert_eq!(
        store.head(&key("obj")).await.unwrap().size,
        first.len() as u64,
        "{name}"
    );
    let again = store
        .put(&key("obj"), Bytes::from_static(b"second"), PutMode::Create)
        .await;
    assert_eq!(kind(again), Err(StoreErrorKind::AlreadyExists), "{name}");
    assert_eq!(
        store.get(&key("obj"), 100).await.unwrap(),
        first,
        "{name}: a create overwrote"
    );

    // Overwrite replaces.
    let second = Bytes::from_static(b"second bytes!");
    store
        .put(&key("obj"), second.clone(), PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(store.get(&key("obj"), 100).await.unwrap(), second, "{name}");

    // A read over its limit is a corrupt object (what a hostile store would serve).
    assert_eq!(
        kind(store.get(&key("obj"), 4).await),
        Err(StoreErrorKind::Corrupt),
        "{name}"
    );

    // Listing by prefix: exactly the objects below it, with their sizes; a prefix with
    // nothing below it lists nothing (no error).
    for (k, v) in [
        ("dir/1", &b"one"[..]),
        ("dir/2", b"two!"),
        ("dirx/3", b"three"),
    ] {
        store
            .put(&key(k), Bytes::copy_from_slice(v), PutMode::Overwrite)
            .await
            .unwrap();
    }
    let mut listed: Vec<(String, u64)> = store
        .list(&key("dir/"))
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    listed.sort();
    assert_eq!(listed, [(key("dir/1"), 3), (key("dir/2"), 4)], "{name}");
    assert!(
        store.list(&key("nothing/")).await.unwrap().is_empty(),
        "{name}"
    );

    // Delete is idempotent: a missing object deletes fine.
    for k in ["obj", "dir/1", "dir/2", "dirx/3"] {
        store.delete(&key(k)).await.unwrap();
        store.delete(&key(k)).await.unwrap();
    }
    assert_eq!(
        kind(store.get(&key("obj"), 100).await),
        Err(StoreErrorKind::NotFound),
        "{name}"
    );
    assert!(
        store.list(&p).await.unwrap().is_empty(),
        "{name}: objects left"
    );
}

fn open(name: &str, location: Location, options: &[(&str, &str)], retrying: bool) -> StoreRef {
    let options: BTreeMap<String, String> = options
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let tuning = Tuning {
        retries: 1,
        ..Tuning::default()
    };
    if retrying {
        backend::open(name, &location, &options, tuning, true).unwrap()
    } else {
        backend::open_raw(name, &location, &options, &tuning, true).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory() {
    contract(open(
        "memory",
        Location::Memory("contract".into()),
        &[],
        false,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_folder() {
    let dir = tempfile::tempdir().unwrap();
    contract(open(
        "local",
        Location::Local(dir.path().join("store")),
        &[],
        false,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_wrapper() {
    let dir = tempfile::tempdir().unwrap();
    contract(open(
        "retrying",
        Location::Local(dir.path().join("store")),
        &[],
        true,
    ))
    .await;
}

fn remote(kind: &str, url: String) -> Location {
    backend::parse_location(&url, std::path::Path::new("/"))
        .unwrap_or_else(|e| panic!("{kind}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_on_moto() {
    let s = Server::start("moto");
    let location = remote("s3", format!("s3://{}/contract", s.get("BUCKET")));
    let store = open(
        "s3",
        location,
        &[
            ("endpoint", s.get("ENDPOINT")),
            ("region", s.get("REGION")),
            ("allow_http", "true"),
            ("access_key_id", s.get("ACCESS_KEY_ID")),
            ("secret_access_key", s.get("SECRET_ACCESS_KEY")),
        ],
        true,
    );
    contract(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_on_azurite() {
    let s = Server::start("azurite");
    let location = remote("azure", format!("az://{}/contract", s.get("CONTAINER")));
    let store = open(
        "azure",
        location,
        &[
            ("endpoint", s.get("ENDPOINT")),
            ("allow_http", "true"),
            ("account_name", s.get("ACCOUNT")),
            ("access_key", s.get("ACCESS_KEY")),
        ],
        true,
    );
    contract(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webdav_on_rclone() {
    let s = Server::start("webdav");
    let location = remote("webdav", format!("{}contract", s.get("URL")));
    contract(open("webdav", location, &[], true)).await;
}
