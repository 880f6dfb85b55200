//! `snapdrill restore SNAPSHOT --target DIR`

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use snapdrill::error::exit;
use snapdrill::restore::{self, RestoreOptions, StageClock};

use super::common::SelectArgs;
use super::{Global, common, output};

/// Arguments of `restore`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Snapshot: `latest`, `latest~N`, an id or a unique part of one, a day (2026-11-20) or
    /// a date-time (the newest at or before it).
    snapshot: String,
    #[command(flatten)]
    select: SelectArgs,
    /// Folder to restore into (created if missing; must be empty unless --force).
    #[arg(long, short, value_name = "DIR")]
    target: PathBuf,
    /// Restore only what matches this glob, as `exclude` matches: without `/` a name at any
    /// depth (`*.csv`), with `/` the path from the snapshot's root (`exports/db`); a
    /// directory brings its subtree (repeatable).
    #[arg(long, value_name = "GLOB")]
    include: Vec<String>,
    /// Read every object from this store alone (no failover to the other replicas).
    #[arg(long, value_name = "NAME")]
    store: Option<String>,
    /// Restore into a non-empty folder, replacing files that are there.
    #[arg(long)]
    force: bool,
    /// Identity file (default: $SNAPDRILL_IDENTITY, then the config's).
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let identities = common::load_identity(&config, args.identity)?;
    let repo = match &args.store {
        Some(name) => restore::open_replica(&config, name).await?,
        None => common::open_for_reading(&config, global).await?,
    };
    let list = repo.snapshots().await?;
    common::warn_untrusted(&list);
    let snap = list.select(&args.snapshot, &args.select.selection(&config)?)?;
    let opts = RestoreOptions {
        include: args.include,
        force: args.force,
        ..RestoreOptions::new(args.target)
    };
    let opened = restore::open_piecewise(
        &repo,
        snap.commit.clone(),
        identities.clone(),
        &opts.include,
    )
    .await?;
    let clock = Arc::new(StageClock::default());
    let ticker = output::Ticker::start(global.quiet, "restore", clock.clone());
    let report = restore::run_piecewise(&repo, opened, identities, &opts, clock).await;
    drop(ticker);
    let report = report?;
    common::register_damage(&config, &repo.config.repository_id, &report.sources, global);
    if args.json {
        output::json(&report)?;
    } else {
        output::warnings(restore::render::warnings(&report), global.quiet);
        let text = restore::render::text(&report, global.quiet);
        output::result(&text, exit::OK, global.quiet);
    }
    Ok(exit::OK)
}
