//! docs/format.md section 13: with the identity, the stock `age` and `zstd` tools are enough
//! to get every file back, without snapdrill: the identity opens the repository's read key
//! (sealed in `config`), the read key opens every object.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

/// `age -d -i IDENTITY FILE | zstd -d -c`, each tool checked for success.
fn stock_open(identity: &Path, object: &Path) -> Vec<u8> {
    let age = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(object)
        .output()
        .expect("running age");
    assert!(
        age.status.success(),
        "age -d failed on {}: {}",
        object.display(),
        stderr(&age)
    );
    let mut zstd = Command::new("zstd")
        .args(["-d", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running zstd");
    let mut stdin = zstd.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(&age.stdout));
    let out = zstd.wait_with_output().unwrap();
    feeder.join().unwrap().expect("feeding zstd");
    assert!(
        out.status.success(),
        "zstd -d failed on {}: {}",
        object.display(),
        stderr(&out)
    );
    out.stdout
}

/// The JSON body of a signed document (everything before the signature line).
fn signed_body(object: &[u8]) -> serde_json::Value {
    let text = std::str::from_utf8(object).unwrap();
    let body = text.trim_end_matches('\n').rsplit_once('\n').unwrap().0;
    json(body)
}

#[test]
fn every_object_opens_with_age_and_zstd_and_the_files_can_be_cut_by_hand() {
    require_tool("age", "age");
    require_tool("zstd", "zstd");
    let env = Env::new(&["a", "b"]);
    let sources: Vec<(String, Vec<u8>)> = vec![
        ("big.bin".into(), random_bytes(3 << 20, 11)),
        ("notes/readme.txt".into(), b"read me\n".to_vec()),
        (
            "notes/customers.csv".into(),
            b"id,name\n1,Ada\n2,Grace\n".repeat(50),
        ),
        ("notes/empty.txt".into(), Vec::new()),
        ("zz-last.txt".into(), "最後のファイル\n".as_bytes().to_vec()),
    ];
    let files: Vec<(&str, &[u8])> = sources
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    let src = env.tree("src", &files);
    env.ok(&["backup", src.to_str().unwrap()]);
    let id = env.snapshot_ids().pop().unwrap();

    for store in ["a", "b"] {
        let root = env.store(store);
        let read_key = read_key_by_hand(&root, &env.identity(), &env.p("read-key.txt"));
        // Every chunk and manifest object opens with the stock tools.
        let mut plain_chunks: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for object in files_under(&root.join("chunks")) {
            let name = object.file_name().unwrap().to_str().unwrap().to_owned();
            plain_chunks.insert(name, stock_open(&read_key, &object));
        }
        let manifests = files_under(&root.join("manifests"));
        assert_eq!(manifests.len(), 1, "{manifests:?}");
        for m in &manifests {
            stock_open(&read_key, m);
        }

        // The manifest's ciphertext is the one the signed commit pins.
        let manifest_path = root.join("manifests").join(&id);
        let commit = signed_body(&fs::read(root.join("snapshots").join(&id)).unwrap());
        let sealed = fs::read(&manifest_path).unwrap();
        assert_eq!(commit["manifest"]["sha256"], sha256_hex(&sealed));
        assert_eq!(commit["manifest"]["size"], sealed.len());

        let manifest = json(std::str::from_utf8(&stock_open(&read_key, &manifest_path)).unwrap());
        assert_eq!(manifest["snapshot_id"], id.as_str());

        // Rebuild the chunk stream in manifest order.
        let mut stream = Vec::new();
        let mut used = BTreeSet::new();
        for c in manifest["chunks"].as_array().unwrap() {
            let cid = c["id"].as_str().unwrap();
            let plain = plain_chunks
                .get(cid)
                .unwrap_or_else(|| panic!("chunk {cid} of the manifest is not in store {store}"));
            assert_eq!(
                plain.len() as u64,
                c["size"].as_u64().unwrap(),
                "chunk {cid}"
            );
            stream.extend_from_slice(plain);
            used.insert(cid.to_owned());
        }
        assert_eq!(
            used,
            plain_chunks.keys().cloned().collect::<BTreeSet<_>>(),
            "store {store} holds chunks the manifest does not use, or lacks some"
        );
        assert!(
            manifest["chunks"].as_array().unwrap().len() >= 2,
            "a 3 MiB file should span several chunks"
        );

        // Cut every file out of the stream and compare with the source.
        let mut seen = BTreeSet::new();
        for e in manifest["entries"].as_array().unwrap() {
            if e["type"] != "file" {
                continue;
            }
            let path = e["path"].as_str().unwrap();
            let (off, size) = (
                e["offset"].as_u64().unwrap() as usize,
                e["size"].as_u64().unwrap() as usize,
            );
            let content = &stream[off..off + size];
            let rel = path.strip_prefix("src/").unwrap();
            let (_, expected) = sources
                .iter()
                .find(|(p, _)| p == rel)
                .unwrap_or_else(|| panic!("unexpected file {path}"));
            assert!(
                content == expected.as_slice(),
                "{path}: cut bytes differ from the source"
            );
            assert_eq!(e["sha256"], sha256_hex(content), "{path}");
            seen.insert(rel.to_owned());
        }
        let all: BTreeSet<String> = sources.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(seen, all, "store {store}: files missing from the manifest");
    }
}
