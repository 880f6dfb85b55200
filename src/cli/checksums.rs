//! `snapdrill checksums SNAPSHOT`: `sha256sum` format, so a restored tree can be checked
//! with `sha256sum -c`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use snapdrill::error::exit;
use snapdrill::format::manifest::EntryKind;
use snapdrill::restore;

use super::common::SelectArgs;
use super::{Global, common};

/// Arguments of `checksums`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Snapshot: `latest`, `latest~N`, an id or a unique part of one, a day (2026-11-20) or
    /// a date-time (the newest at or before it).
    snapshot: String,
    #[command(flatten)]
    select: SelectArgs,
    /// Identity file (default: $SNAPDRILL_IDENTITY, then the config's).
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let (identities, repo, list) = common::open_snapshots(&config, args.identity, global).await?;
    let snap = list.select(&args.snapshot, &args.select.selection(&config)?)?;
    let opened = restore::open_snapshot(&repo, snap.commit.clone(), identities).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for e in opened
        .manifest
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::File)
    {
        out.write_all(&sha256sum_line(
            e.sha256.as_deref().unwrap_or_default(),
            &e.path.0,
        ))?;
    }
    out.flush()?;
    Ok(exit::OK)
}

/// One line as GNU `sha256sum` writes it: names with a backslash or newline are escaped
/// and the line starts with a backslash.
pub(super) fn sha256sum_line(hash: &str, path: &[u8]) -> Vec<u8> {
    let escape = path.iter().any(|&b| b == b'\\' || b == b'\n' || b == b'\r');
    let mut line = Vec::with_capacity(path.len() + 70);
    if escape {
        line.push(b'\\');
    }
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(b"  ");
    for &b in path {
        match (escape, b) {
            (true, b'\\') => line.extend_from_slice(b"\\\\"),
            (true, b'\n') => line.extend_from_slice(b"\\n"),
            (true, b'\r') => line.extend_from_slice(b"\\r"),
            _ => line.push(b),
        }
    }
    line.push(b'\n');
    line
}
