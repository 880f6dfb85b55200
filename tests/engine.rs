//! The engines through the library API, on in-memory stores behind the `Store` seam:
//! backup to two stores, restore from each store alone, and a store that holds nothing.

mod common;

use std::fs;
use std::sync::Arc;

use snapdrill::backup::{self, BackupOptions};
use snapdrill::keys::{Identities, WriteKey};
use snapdrill::repository::{self, OpenMode, Repository};
use snapdrill::restore::{self, RestoreOptions};
use snapdrill::store::StoreRef;

fn memory(name: &str, id: &str) -> StoreRef {
    common::engine::memory(name, id)
}

fn options(paths: Vec<std::path::PathBuf>) -> BackupOptions {
    let mut opts = common::engine::backup_options(paths, 2);
    opts.tags = vec!["engine".into()];
    opts.configured_stores = vec!["a".into(), "b".into()];
    opts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_to_memory_stores_and_restore_from_each_alone() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("exports");
    fs::create_dir_all(src.join("db")).unwrap();
    fs::write(
        src.join("customers.csv"),
        "id,name\n1,佐藤 健\n".repeat(50_000),
    )
    .unwrap();
    fs::write(
        src.join("db/crm.sql"),
        b"INSERT INTO calls VALUES (1);\n".repeat(10_000),
    )
    .unwrap();
    fs::write(src.join("empty"), b"").unwrap();

    let (text, _) = snapdrill::keys::generate_identity();
    let ids = Arc::new(Identities::parse(&text, std::path::Path::new("test identity")).unwrap());
    let recipients = snapdrill::keys::recipient::legacy_recipients(&ids.recipients()).unwrap();
    let key = WriteKey::generate();
    let stores = vec![memory("a", "engine-a"), memory("b", "engine-b")];
    let outcomes = repository::init(&stores, &key, &recipients).await.unwrap();
    assert!(outcomes.iter().all(|o| o.action == "created"));

    let repo = Repository::open(stores.clone(), key.signer(), OpenMode::All)
        .await
        .unwrap();
    let report = backup::run(
        &repo,
        &key,
        recipients.clone(),
        &options(vec![src.clone()]),
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(report.exit_code(), 0);
    assert_eq!(report.files, 3);
    assert!(report.chunks_new >= 2, "{report:?}");
    assert!(report.data_stored < report.data_added, "text compresses");

    for (i, store) in stores.iter().enumerate() {
        let alone = Repository::open(vec![store.clone()], key.signer(), OpenMode::All)
            .await
            .unwrap();
        let list = alone.snapshots().await.unwrap();
        let snap = list.find("latest").unwrap();
        assert_eq!(snap.commit.snapshot_id, report.snapshot_id);
        let opened = restore::open_snapshot(&alone, snap.commit.clone(), ids.clone())
            .await
            .unwrap();
        let target = dir.path().join(format!("restored-{i}"));
        let opts = RestoreOptions::new(target.clone());
        let r = restore::run(&alone, opened, ids.clone(), &opts, Default::default())
            .await
            .unwrap();
        assert_eq!(r.files, 3);
        assert_eq!(
            r.sources.served.keys().collect::<Vec<_>>(),
            vec![store.name()]
        );
        for f in ["customers.csv", "db/crm.sql", "empty"] {
            assert_eq!(
                fs::read(src.join(f)).unwrap(),
                fs::read(target.join("exports").join(f)).unwrap(),
                "{f}"
            );
        }
    }

    // A store that never saw `init` is named, with exit code 10.
    let empty = memory("c", "engine-c");
    let err = Repository::open(vec![empty], key.signer(), OpenMode::All)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 10, "{err}");
    assert!(err.to_string().contains("'c'"), "{err}");
}
