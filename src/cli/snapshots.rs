//! `snapdrill snapshots`: list snapshots; no identity needed.

use anyhow::Result;
use snapdrill::repository::render;

use super::{Global, common, output};

/// Arguments of `snapshots`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Only snapshots with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let repo = common::open_for_reading(&config, global).await?;
    let list = repo.snapshots().await?;
    let listing = list.listing(args.tag.as_deref());
    if args.json {
        output::json(&listing)?;
        // Untrusted commits are in the JSON; unlisted stores still go to stderr.
        let unlisted = render::warnings(&list)
            .into_iter()
            .filter(|w| w.starts_with("warning:"));
        output::warnings(unlisted.collect(), global.quiet);
    } else {
        print!("{}", render::table(&listing, global.quiet));
        output::warnings(render::warnings(&list), global.quiet);
    }
    Ok(list.exit_code())
}
