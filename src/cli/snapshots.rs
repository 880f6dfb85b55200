//! `snapdrill snapshots`: list snapshots; no identity needed.

use anyhow::Result;
use serde::Serialize;
use snapdrill::error::exit;
use snapdrill::format::commit::Summary;
use snapdrill::repository::Untrusted;

use snapdrill::text::escape;

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

#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    time: &'a str,
    host: &'a str,
    tags: &'a [String],
    summary: &'a Summary,
    stores: &'a [String],
}

#[derive(Serialize)]
struct Listing<'a> {
    snapshots: Vec<Row<'a>>,
    untrusted: &'a [Untrusted],
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let repo = common::open_for_reading(&config, global).await?;
    let list = repo.snapshots().await?;
    let rows: Vec<Row> = list
        .trusted
        .iter()
        .filter(|s| args.tag.as_ref().is_none_or(|t| s.commit.tags.contains(t)))
        .map(|s| Row {
            id: &s.commit.snapshot_id,
            time: &s.commit.time,
            host: &s.commit.host,
            tags: &s.commit.tags,
            summary: &s.commit.summary,
            stores: &s.stores,
        })
        .collect();
    if args.json {
        output::json(&Listing {
            snapshots: rows,
            untrusted: &list.untrusted,
        })?;
    } else {
        println!(
            "{:<26} {:<20} {:<14} {:>7} {:>10}  {:<16} TAGS",
            "ID", "TIME (UTC)", "HOST", "FILES", "SIZE", "STORES"
        );
        for r in &rows {
            println!(
                "{:<26} {:<20} {:<14} {:>7} {:>10}  {:<16} {}",
                r.id,
                r.time.get(..19).unwrap_or(r.time).replace('T', " "),
                escape(r.host),
                r.summary.files,
                output::size(r.summary.bytes),
                r.stores.join(","),
                escape(&r.tags.join(","))
            );
        }
        if !global.quiet {
            println!("{} snapshots", rows.len());
        }
        for u in &list.untrusted {
            eprintln!(
                "snapdrill: UNTRUSTED snapshot {} in {}: {} — it will never be restored",
                escape(&u.id),
                u.stores.join(","),
                escape(&u.reason)
            );
        }
    }
    for (store, why) in &list.unlisted {
        eprintln!(
            "snapdrill: warning: store '{store}' could not be listed; this list may lack what only it holds: {}",
            escape(why)
        );
    }
    Ok(if !list.untrusted.is_empty() {
        exit::INTEGRITY
    } else if !list.unlisted.is_empty() {
        exit::PARTIAL
    } else {
        exit::OK
    })
}
