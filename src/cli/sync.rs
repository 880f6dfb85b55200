//! `snapdrill sync [--dry-run]`

use anyhow::Result;
use snapdrill::sync;

use super::{Global, common, output};

/// Arguments of `sync`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Show what would be copied, copy nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let repo = common::open_for_reading(&config, global).await?;
    for name in &repo.not_initialised {
        eprintln!(
            "snapdrill: warning: store '{name}' holds no repository: run `snapdrill init --store {name}` first, then sync"
        );
    }
    // The copies audits found damaged: sync replaces them (and forgets those it healed).
    let register_path = snapdrill::damage::path(&config.state_dir, &repo.config.repository_id);
    let mut damaged = snapdrill::damage::Register::load(&register_path)?;
    let report = sync::run(&repo, args.dry_run, &mut damaged).await?;
    if !args.dry_run {
        damaged.save(&register_path)?;
    }
    if args.json {
        output::json(&report)?;
    } else {
        output::warnings(sync::render::warnings(&report), global.quiet);
        // A dry run's list is what was asked for; a real run's account is quiet under -q.
        let quiet = global.quiet && !args.dry_run;
        output::result(&sync::render::text(&report), report.exit_code(), quiet);
    }
    Ok(report.exit_code())
}
