//! `snapdrill diff A B [PATH…]`: what was added, removed and changed between two snapshots.

use std::path::PathBuf;

use anyhow::Result;
use snapdrill::error::exit;
use snapdrill::explore::{Scope, diff, render};

use super::common::SelectArgs;
use super::{Global, common, output};

/// Arguments of `diff`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The first snapshot (as for `ls`: `latest~1`, an id or a unique part of one, a day, a
    /// date-time).
    a: String,
    /// The second snapshot (the same selection options apply to both).
    b: String,
    /// Compare only these paths and what is below them (snapshot paths: `exports/db`).
    #[arg(value_name = "PATH")]
    paths: Vec<String>,
    /// Compare only what matches this glob, as `exclude` matches: without `/` a name at any
    /// depth (`*.csv`), with `/` the path from the snapshot's root; a directory brings its
    /// subtree (repeatable).
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
    #[command(flatten)]
    select: SelectArgs,
    /// Identity file (default: $SNAPDRILL_IDENTITY, then the config's).
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let scope = Scope::new(&args.paths, &args.include)?;
    let (identities, repo, list) = common::open_snapshots(&config, args.identity, global).await?;
    let selection = args.select.selection(&config)?;
    let a = list.select(&args.a, &selection)?;
    let b = list.select(&args.b, &selection)?;
    let report = diff::between(&repo, a, b, &scope, identities).await?;
    if args.json {
        output::json(&report)?;
    } else {
        print!("{}", render::diff_text(&report, global.quiet));
    }
    Ok(exit::OK)
}
