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
            "snapdrill: warning: store '{name}' holds no repository: run `snapdrill init` first, then sync"
        );
    }
    let report = sync::run(&repo, args.dry_run).await?;
    if args.json {
        output::json(&report)?;
        return Ok(report.exit_code());
    }
    let verb = if report.dry_run {
        "would copy"
    } else {
        "copied"
    };
    for s in &report.stores {
        for e in &s.errors {
            eprintln!("snapdrill: store '{}': {e}", s.store);
        }
        if s.objects_copied == 0 && s.errors.is_empty() {
            println!("  store {:<12} up to date", s.store);
        } else {
            println!(
                "  store {:<12} {verb} {} objects ({}), {} snapshots added{}",
                s.store,
                s.objects_copied,
                output::size(s.bytes_copied),
                s.snapshots_added.len(),
                if s.snapshots_added.is_empty() {
                    String::new()
                } else {
                    format!(": {}", s.snapshots_added.join(", "))
                }
            );
        }
    }
    let healed = report.stores.iter().all(|s| s.errors.is_empty());
    println!(
        "sync {}: {} stores",
        match (report.dry_run, healed) {
            (true, _) => "dry run",
            (false, true) => "complete",
            (false, false) => "PARTIAL",
        },
        report.stores.len()
    );
    Ok(report.exit_code())
}
