//! `snapdrill ls SNAPSHOT`

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use snapdrill::error::exit;
use snapdrill::format::manifest::EntryKind;
use snapdrill::restore;

use super::{Global, common, output};

/// Arguments of `ls`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Snapshot id, unique prefix, or `latest`.
    snapshot: String,
    /// Identity file (default: $SNAPDRILL_IDENTITY, then the config's).
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Print as JSON (the manifest's entries).
    #[arg(long)]
    json: bool,
}

pub async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let identities = common::load_identity(&config, args.identity)?;
    let repo = common::open_for_reading(&config, global).await?;
    let list = repo.snapshots().await?;
    common::warn_untrusted(&list);
    let snap = list.find(&args.snapshot)?;
    let opened = restore::open_snapshot(&repo, snap.commit.clone(), identities).await?;
    if args.json {
        output::json(&opened.manifest.entries)?;
        return Ok(exit::OK);
    }
    let mut out = std::io::stdout().lock();
    for e in &opened.manifest.entries {
        let kind = match e.kind {
            EntryKind::Dir => 'd',
            EntryKind::File => '-',
            EntryKind::Symlink => 'l',
        };
        let time = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(e.mtime.max(0) as u64),
        );
        write!(out, "{kind}{:04o} {:>12} {time} ", e.mode, e.file_size())?;
        out.write_all(&e.path.0)?;
        if let Some(t) = &e.target {
            out.write_all(b" -> ")?;
            out.write_all(&t.0)?;
        }
        out.write_all(b"\n")?;
    }
    Ok(exit::OK)
}
