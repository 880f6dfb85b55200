//! `snapdrill ls SNAPSHOT`

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use snapdrill::error::exit;
use snapdrill::format::manifest::EntryKind;
use snapdrill::restore;
use snapdrill::text::escape_bytes;

use super::common::SelectArgs;
use super::{Global, common, output};

/// Arguments of `ls`.
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
    /// Print as JSON (the manifest's entries).
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let identities = common::load_identity(&config, args.identity)?;
    let repo = common::open_for_reading(&config, global).await?;
    let list = repo.snapshots().await?;
    common::warn_untrusted(&list);
    let snap = list.select(&args.snapshot, &args.select.selection(&config)?)?;
    let opened = restore::open_snapshot(&repo, snap.commit.clone(), identities).await?;
    if args.json {
        output::json(&opened.manifest.entries)?;
        return Ok(exit::OK);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for e in &opened.manifest.entries {
        let kind = match e.kind {
            EntryKind::Dir => 'd',
            EntryKind::File => '-',
            EntryKind::Symlink => 'l',
        };
        write!(
            out,
            "{kind}{:04o} {:>12} {} {}",
            e.mode,
            e.file_size(),
            mtime(e.mtime),
            escape_bytes(&e.path.0)
        )?;
        if let Some(t) = &e.target {
            write!(out, " -> {}", escape_bytes(&t.0))?;
        }
        if e.changed {
            write!(out, "  (changed while backed up)")?;
        }
        writeln!(out)?;
    }
    out.flush()?;
    Ok(exit::OK)
}

/// A modification time for people: RFC 3339 when it is one (1970 to 9999), else the raw
/// seconds, flagged (a manifest value is never trusted to be in range).
fn mtime(secs: i64) -> String {
    const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    if (0..=LAST).contains(&secs) {
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64),
        )
        .to_string()
    } else {
        format!("@{secs} (out of range)")
    }
}
