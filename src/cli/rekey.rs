//! `snapdrill rekey`: move every object of every store onto a new read key.

use std::path::PathBuf;

use anyhow::Result;

use super::{Global, common, output};

/// Arguments of `rekey`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The identity of a current recipient (default: $SNAPDRILL_IDENTITY, then the config's).
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let identities = common::load_identity(&config, args.identity)?;
    let host = config.host.clone().unwrap_or_else(snapdrill::hostname);
    let report = snapdrill::rekey::run(&config, identities, &host).await?;
    if args.json {
        output::json(&report)?;
    } else {
        let text = snapdrill::rekey::render::text(&report);
        output::result(&text, report.exit_code(), global.quiet);
    }
    Ok(report.exit_code())
}
