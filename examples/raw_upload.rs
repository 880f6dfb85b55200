//! Baseline for `make bench`: upload every file under a folder to an S3 bucket with plain
//! object_store (one PUT per file, 8 at a time, like snapdrill's default per-store
//! concurrency), and print the throughput. No compression, no encryption, no verification:
//! the fastest the server takes these bytes from this machine.
//!
//! cargo run --release --example raw_upload -- DIR ENDPOINT BUCKET PREFIX
//! (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)

use std::time::Instant;

use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, endpoint, bucket, prefix] = &args[..] else {
        return Err("usage: raw_upload DIR ENDPOINT BUCKET PREFIX".into());
    };
    let store = AmazonS3Builder::from_env()
        .with_endpoint(endpoint)
        .with_bucket_name(bucket)
        .with_region("us-east-1")
        .with_allow_http(true)
        .build()?;
    // Pieces of 1 MiB, as snapdrill's average chunk: the same request pattern.
    let mut pieces = Vec::new();
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry?;
        if entry.file_type().is_file() {
            let data = std::fs::read(entry.path())?;
            for (i, piece) in data.chunks(1 << 20).enumerate() {
                pieces.push((
                    format!("{prefix}/{}-{i}", entry.file_name().to_string_lossy()),
                    piece.to_vec(),
                ));
            }
        }
    }
    let bytes: usize = pieces.iter().map(|p| p.1.len()).sum();
    let started = Instant::now();
    let results: Vec<_> = futures::stream::iter(pieces)
        .map(|(name, data)| {
            let store = &store;
            async move { store.put(&Path::from(name), PutPayload::from(data)).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("{bytes} {secs:.3} {:.1}", bytes as f64 / 1e6 / secs);
    Ok(())
}
