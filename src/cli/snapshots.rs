//! `snapdrill snapshots`: list snapshots; no identity needed.

use anyhow::Result;
use snapdrill::repository::render;

use super::common::SelectArgs;
use super::{Global, common, output};

/// Arguments of `snapshots`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    #[command(flatten)]
    select: SelectArgs,
    /// List each data set (host, job, source) together instead of by time.
    #[arg(long)]
    by_data_set: bool,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let selection = args.select.selection(&config)?;
    let repo = common::open_for_reading(&config, global).await?;
    let list = repo.snapshots().await?;
    let listing = list.listing(&selection, args.by_data_set);
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
