//! `snapdrill init`: the repository in every store, and the backup host's write key.

use anyhow::Result;
use snapdrill::error::exit;
use snapdrill::repository::{self, render};

use super::{Global, common, output};

/// Arguments of `init`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let done = repository::init_config(&config).await?;
    if args.json {
        output::json(&done)?;
        return Ok(exit::OK);
    }
    // The geography warning first: it is about the stores the text lists.
    if let Some(w) = config.geo_warning().filter(|_| !global.quiet) {
        eprintln!("snapdrill: warning: {w}");
    }
    print!("{}", render::init_text(&done, &config.path));
    Ok(exit::OK)
}
