//! `snapdrill init`: the repository in every store, and the backup host's write key.

use anyhow::Result;
use snapdrill::error::exit;
use snapdrill::repository::{self, render};

use super::{Global, common, output};

/// Arguments of `init`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Create the folder of a local store that does not exist (without it, a missing folder
    /// is an error: it may be a volume that is not mounted).
    #[arg(long)]
    create: bool,
    /// Only this store: a new or rebuilt replica gets the repository the others hold (then
    /// run `snapdrill sync` to copy their snapshots).
    #[arg(long, value_name = "NAME")]
    store: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let opts = repository::InitOptions {
        create: args.create,
        store: args.store,
    };
    let done = repository::init_config(&config, &opts).await?;
    if args.json {
        output::json(&done)?;
        return Ok(exit::OK);
    }
    // The geography warning first: it is about the stores the text lists.
    if let Some(w) = config.geo_warning() {
        eprintln!("snapdrill: warning: {w}");
    }
    let text = render::init_text(&done, &config.path);
    output::result(&text, exit::OK, global.quiet);
    Ok(exit::OK)
}
