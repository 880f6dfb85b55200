//! Benchmark helper (`scripts/bench-scale.sh`, `HISTORY=1`): synthesises a long history in
//! an initialised repository quickly, by writing chunks, manifests and signed commits with
//! the library and the repository's own write key — what a year of nightly backups would
//! have left, without running a year of backups.
//!
//!   synth_history CONFIG SNAPSHOTS CHUNKS_PER_SNAPSHOT NEW_PER_DAY
//!
//! Snapshot `d` (one per day, the newest today) holds one file per chunk of the window
//! `[d * NEW_PER_DAY, d * NEW_PER_DAY + CHUNKS_PER_SNAPSHOT)`: every snapshot shares all but
//! NEW_PER_DAY chunks with the day before, as nightlies of a slowly changing export do. The
//! objects are real (sealed to the repository's read key, keyed ids, signed commits), so
//! `audit --deep`, `forget` and `prune` do their real work on them.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use snapdrill::config::Config;
use snapdrill::format::chunk_list::ChunkObject;
use snapdrill::format::commit::{Commit, DataSet, ObjectRef, Origin, Summary};
use snapdrill::format::manifest::{ChunkId, ChunkRef, Entry, EntryKind, Manifest, WirePath};
use snapdrill::format::{self, commit_object, manifest_object};
use snapdrill::keys::WriteKey;
use snapdrill::repository::{Opened, Purpose, Repository};
use snapdrill::sealing::{chunk_id, seal, sha256};
use snapdrill::store::{PutMode, StoreRef};

/// Plaintext bytes per chunk: small, so that the history is about object counts.
const CHUNK_BYTES: usize = 512;

struct Chunk {
    id: ChunkId,
    sha256: String,
    object: ObjectRef,
}

fn plaintext(i: usize) -> Vec<u8> {
    // xorshift: incompressible, distinct per chunk, the same on every run.
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..CHUNK_BYTES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

async fn put_all(stores: &[StoreRef], objects: Vec<(String, Vec<u8>)>) {
    let puts = objects.into_iter().flat_map(|(name, bytes)| {
        let bytes = Bytes::from(bytes);
        stores.iter().map(move |s| {
            let (name, bytes) = (name.clone(), bytes.clone());
            async move {
                s.put(&name, bytes, PutMode::Overwrite)
                    .await
                    .unwrap_or_else(|e| panic!("put {name}: {e}"))
            }
        })
    });
    futures::stream::iter(puts)
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
}

fn file_entry(index: usize, chunk: &Chunk, offset: u64) -> Entry {
    let path = format!("exports/d{:04}/f{index:07}.csv", index / 1000);
    Entry {
        size: Some(CHUNK_BYTES as u64),
        sha256: Some(chunk.sha256.clone()),
        offset: Some(offset),
        ..Entry::bare(
            WirePath(path.into_bytes()),
            EntryKind::File,
            0o644,
            1_700_000_000,
            0,
        )
    }
}

fn dir_entry(path: String) -> Entry {
    Entry::bare(
        WirePath(path.into_bytes()),
        EntryKind::Dir,
        0o755,
        1_700_000_000,
        0,
    )
}

/// What every snapshot is written with.
struct Ctx {
    key: WriteKey,
    recipients: Vec<age::x25519::Recipient>,
    stores: Vec<StoreRef>,
    host: String,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, config, snapshots, per, new] = &args[..] else {
        eprintln!("usage: synth_history CONFIG SNAPSHOTS CHUNKS_PER_SNAPSHOT NEW_PER_DAY");
        std::process::exit(2);
    };
    let num = |s: &str| s.parse::<usize>().expect("a number");
    let (snapshots, per, new) = (num(snapshots), num(per), num(new));
    let config = Config::load(std::path::Path::new(config)).expect("config loads");
    let Opened { repo, key } = Repository::open_for(&config, Purpose::Backup)
        .await
        .expect("repository opens");
    let ctx = Ctx {
        key: key.expect("write key"),
        recipients: repo
            .object_recipients(&config.recipients)
            .expect("recipients"),
        stores: repo.stores.clone(),
        host: config.host.clone().unwrap_or_else(snapdrill::hostname),
    };
    let chunks = write_chunks(&ctx, per + (snapshots - 1) * new).await;
    eprintln!("synth_history: {} chunks written", chunks.len());
    let now = SystemTime::now();
    let mut written = std::collections::HashSet::new();
    for d in 0..snapshots {
        let time = now - Duration::from_secs(86_400 * (snapshots - 1 - d) as u64);
        let window = &chunks[d * new..d * new + per];
        write_snapshot(&ctx, time, window, d * new, &mut written).await;
    }
    eprintln!("synth_history: {snapshots} snapshots of {per} chunks written");
}

/// `count` distinct chunks, sealed and stored.
async fn write_chunks(ctx: &Ctx, count: usize) -> Vec<Chunk> {
    let mut chunks = Vec::with_capacity(count);
    let mut batch = Vec::new();
    for i in 0..count {
        let plain = plaintext(i);
        let id = ChunkId(chunk_id(&ctx.key.dedup, &plain));
        let sealed = seal(&plain, 3, &ctx.recipients).expect("seal");
        let object = ObjectRef::of(&id.object_name(), &sealed);
        batch.push((object.name.clone(), sealed));
        chunks.push(Chunk {
            id,
            sha256: hex::encode(sha256(&plain)),
            object,
        });
        if batch.len() == 4096 {
            put_all(&ctx.stores, std::mem::take(&mut batch)).await;
        }
    }
    put_all(&ctx.stores, batch).await;
    chunks
}

/// One snapshot at `time` holding one file per chunk of `window` (the first numbered
/// `first`), with its manifest and signed commit.
async fn write_snapshot(
    ctx: &Ctx,
    time: SystemTime,
    window: &[Chunk],
    first: usize,
    written: &mut std::collections::HashSet<String>,
) {
    let key = &ctx.key;
    let (id, stamp) = (format::new_snapshot_id(time), format::format_time(time));
    let mut manifest = Manifest::new(&key.repository_id, &id, &stamp);
    manifest.sources = vec![WirePath(b"/srv/exports".to_vec())];
    manifest.entries.push(dir_entry("exports".into()));
    for (k, c) in window.iter().enumerate() {
        let index = first + k;
        if k == 0 || index.is_multiple_of(1000) {
            manifest
                .entries
                .push(dir_entry(format!("exports/d{:04}", index / 1000)));
        }
        manifest
            .entries
            .push(file_entry(index, c, (k * CHUNK_BYTES) as u64));
        manifest.chunks.push(ChunkRef {
            id: c.id,
            size: CHUNK_BYTES as u64,
        });
    }
    let dirs = manifest.entries.len() - window.len();
    let json = serde_json::to_vec(&manifest).expect("manifest serializes");
    let sealed = seal(&json, 3, &ctx.recipients).expect("seal");
    let first_use: Vec<ChunkObject> = window
        .iter()
        .map(|c| ChunkObject::parse(&c.object.name, c.object.size, &c.object.sha256))
        .collect::<Option<_>>()
        .expect("chunk objects");
    let (commit, lists) = Commit::new(
        &key.repository_id,
        &id,
        &stamp,
        Origin {
            set: DataSet {
                host: ctx.host.clone(),
                job: Some("synth".into()),
                source: Some("5e".repeat(16)),
            },
            tags: vec!["synthetic".into()],
        },
        Summary {
            files: window.len() as u64,
            dirs: dirs as u64,
            symlinks: 0,
            bytes: (window.len() * CHUNK_BYTES) as u64,
        },
        ObjectRef::of(&manifest_object(&id), &sealed),
        &first_use,
    );
    let signed = commit.to_object(&key.signing);
    // The lists first, each once: the nightlies share most of theirs.
    let new_lists = lists
        .into_iter()
        .filter(|l| written.insert(l.reference.name.clone()))
        .map(|l| (l.reference.name, l.bytes.to_vec()))
        .collect();
    put_all(&ctx.stores, new_lists).await;
    put_all(
        &ctx.stores,
        vec![(manifest_object(&id), sealed), (commit_object(&id), signed)],
    )
    .await;
}
