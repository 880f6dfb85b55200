//! `snapdrill ls SNAPSHOT [PATH…]`

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use snapdrill::error::exit;
use snapdrill::explore::{Scope, render};
use snapdrill::restore;

use super::common::SelectArgs;
use super::{Global, common, output};

/// Arguments of `ls`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Snapshot: `latest`, `latest~N`, an id or a unique part of one, a day (2026-11-20) or
    /// a date-time (the newest at or before it).
    snapshot: String,
    /// List only these paths and what is below them (snapshot paths: `exports/db`).
    #[arg(value_name = "PATH")]
    paths: Vec<String>,
    /// List only what matches this glob, as `exclude` matches: without `/` a name at any
    /// depth (`*.csv`), with `/` the path from the snapshot's root; a directory brings its
    /// subtree (repeatable).
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
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
    let scope = Scope::new(&args.paths, &args.include)?;
    let (identities, repo, list) = common::open_snapshots(&config, args.identity, global).await?;
    let snap = list.select(&args.snapshot, &args.select.selection(&config)?)?;
    let opened = restore::open_snapshot(&repo, snap.commit.clone(), identities).await?;
    let entries = scope.entries(&opened.manifest)?;
    if args.json {
        output::json(&entries)?;
        return Ok(exit::OK);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for e in entries {
        writeln!(out, "{}", render::ls_line(e))?;
    }
    out.flush()?;
    Ok(exit::OK)
}
