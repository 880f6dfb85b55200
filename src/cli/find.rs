//! `snapdrill find PATTERN…`: which snapshots hold a matching path, and since when.

use std::path::PathBuf;

use anyhow::Result;
use snapdrill::explore::{find, render};

use super::common::SelectArgs;
use super::{Global, common, output};

/// Arguments of `find`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Glob, as `exclude` matches: without `/` a name at any depth (`crm.sql`, `*.csv`),
    /// with `/` the path from the snapshot's root (`exports/db/*.sql`); repeat for either.
    #[arg(value_name = "PATTERN", required = true)]
    patterns: Vec<String>,
    #[command(flatten)]
    select: SelectArgs,
    /// Only snapshots taken at or after this day or date-time (in [repository] timezone).
    #[arg(long, value_name = "DATETIME")]
    since: Option<String>,
    /// Identity file (default: $SNAPDRILL_IDENTITY, then the config's).
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let selection = args.select.selection(&config)?;
    let since = match &args.since {
        Some(s) => Some(common::instant(&config, "--since", s)?),
        None => None,
    };
    let (identities, repo, list) = common::open_snapshots(&config, args.identity, global).await?;
    let report = find::find(&repo, &list, &selection, since, &args.patterns, identities).await?;
    output::warnings(render::find_warnings(&report), global.quiet);
    if args.json {
        output::json(&report)?;
    } else {
        print!("{}", render::find_text(&report, &config.timezone));
    }
    Ok(report.exit_code())
}
