//! Restore with per-object failover across three replicas: an object deleted from one
//! store and another corrupted in a second; the restore succeeds from what remains and
//! says which store served what and which replicas need healing. `sync` then heals both.

mod common;

use std::fs;

use common::{Env, json, random_bytes};

#[test]
fn deleted_in_one_store_and_corrupted_in_another_still_restores_and_names_them() {
    let env = Env::new(&["tokyo", "osaka", "sapporo"]);
    let a: Vec<u8> = random_bytes(1_500_000, 1);
    let b: Vec<u8> = random_bytes(1_500_000, 2);
    let src = env.tree(
        "exports",
        &[("a.bin", &a), ("b.bin", &b), ("small.csv", b"id\n1\n")],
    );
    env.ok(&["backup", src.to_str().unwrap()]);

    let chunks = env.chunk_objects("tokyo");
    assert!(chunks.len() >= 2, "{chunks:?}");
    let name = |p: &std::path::Path| p.file_name().unwrap().to_str().unwrap().to_owned();
    let (deleted, corrupted) = (name(&chunks[0]), name(&chunks[1]));
    // tokyo (first choice) lacks one chunk; osaka (second) has another one damaged.
    fs::remove_file(&chunks[0]).unwrap();
    let osaka_copy = env
        .store("osaka")
        .join("chunks")
        .join(&corrupted[..2])
        .join(&corrupted);
    let mut bytes = fs::read(&osaka_copy).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&osaka_copy, bytes).unwrap();
    // ...and tokyo's copy of that second chunk is gone too, so osaka is really asked.
    fs::remove_file(&chunks[1]).unwrap();

    let target = env.p("restored");
    let out = env.run(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(common::code(&out), 0, "{}", common::show(&out));
    let report = json(&common::stdout(&out));
    assert_eq!(fs::read(target.join("exports/a.bin")).unwrap(), a);
    assert_eq!(fs::read(target.join("exports/b.bin")).unwrap(), b);

    let repairs = report["sources"]["repairs"].as_array().unwrap();
    let find = |store: &str, object: &str| {
        repairs
            .iter()
            .find(|r| r["store"] == store && r["object"].as_str().unwrap().ends_with(object))
            .cloned()
    };
    let tokyo_missing = find("tokyo", &deleted).expect("tokyo's missing chunk is reported");
    assert_eq!(tokyo_missing["kind"], "missing");
    let osaka_bad = find("osaka", &corrupted).expect("osaka's damaged chunk is reported");
    assert_eq!(osaka_bad["kind"], "corrupt");
    let served = report["sources"]["served"].as_object().unwrap();
    assert!(
        served["sapporo"].as_u64().unwrap() >= 1,
        "sapporo served the chunk both others lack: {served:?}"
    );
    assert!(served["tokyo"].as_u64().unwrap() >= 1);

    // The text report says it too, on stderr.
    let target2 = env.p("restored-text");
    let out = env.run(&["restore", "latest", "--target", target2.to_str().unwrap()]);
    let err = common::stderr(&out);
    assert!(
        err.contains("store 'tokyo' could not serve")
            && err.contains("store 'osaka' could not serve"),
        "{err}"
    );

    // sync heals both replicas (osaka's damaged copy has the right size, so only a read
    // would find it: sync replaces what a listing shows; here the deleted ones).
    let synced = env.ok(&["sync"]);
    assert!(synced.contains("tokyo"), "{synced}");
    assert_eq!(
        env.chunk_objects("tokyo").len(),
        env.chunk_objects("sapporo").len()
    );
}
