//! `snapdrill dump SNAPSHOT PATH`: a file's content, or a folder as a tar stream, on
//! standard output, verified as it streams.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use snapdrill::Error;
use snapdrill::error::exit;
use snapdrill::explore::{dump, render};
use snapdrill::restore::{self, StageClock};

use super::common::SelectArgs;
use super::{Global, common, output};

/// Arguments of `dump`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Snapshot: `latest`, `latest~N`, an id or a unique part of one, a day (2026-11-20) or
    /// a date-time (the newest at or before it).
    snapshot: String,
    /// A file (its content is written as it is) or a folder (a tar stream of it; `/` for the
    /// whole snapshot), by its snapshot path (`exports/db/crm.sql`).
    path: String,
    #[command(flatten)]
    select: SelectArgs,
    /// Write to standard output even when it is a terminal (the content is not escaped).
    #[arg(long)]
    force: bool,
    /// Identity file (default: $SNAPDRILL_IDENTITY, then the config's).
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    if !args.force && std::io::stdout().is_terminal() {
        return Err(Error::Usage(
            "dump writes raw content (or a tar stream) to standard output, which is a terminal; redirect it (`> FILE`), pipe it (`| psql crm`, `| tar -x`), or pass --force to write it here unescaped".into(),
        )
        .into());
    }
    let config = common::load_config(global)?;
    let (identities, repo, list) = common::open_snapshots(&config, args.identity, global).await?;
    let snap = list.select(&args.snapshot, &args.select.selection(&config)?)?;
    let opened = restore::open_snapshot(&repo, snap.commit.clone(), identities.clone()).await?;
    let out: dump::Output = Box::new(std::io::BufWriter::with_capacity(
        1 << 20,
        std::io::stdout(),
    ));
    let clock = Arc::new(StageClock::default());
    let ticker = output::Ticker::start(global.quiet, "dump", clock.clone());
    let report = dump::dump(&repo, opened, identities, &args.path, out, clock).await;
    drop(ticker);
    let report = report?;
    output::warnings(render::dump_notes(&report, global.quiet), global.quiet);
    // A reader that stops early (`| head`) ends the process by SIGPIPE, as for `cat`.
    Ok(exit::OK)
}
