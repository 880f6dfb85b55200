//! `snapdrill backup [PATH…]`

use std::path::PathBuf;

use anyhow::Result;
use snapdrill::backup::job::{self, Request};
use snapdrill::backup::render;

use super::{Global, common, output};

/// Arguments of `backup`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Paths to back up (default: [backup] paths of the config).
    paths: Vec<PathBuf>,
    /// Store standard input as a file of this name (e.g. `pg_dump db | snapdrill backup --stdin-name db.sql`).
    #[arg(long, value_name = "NAME")]
    stdin_name: Option<String>,
    /// Store the standard output of this command (run with `sh -c`); a non-zero exit means no snapshot.
    #[arg(long, value_name = "CMD")]
    command: Option<String>,
    /// Tag the snapshot (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Exclude glob, in addition to the config's (repeatable).
    #[arg(long = "exclude", value_name = "GLOB")]
    exclude: Vec<String>,
    /// Host name to record (default: the config's, else this machine's).
    #[arg(long)]
    host: Option<String>,
    /// Read every file, even those the cache says are unchanged.
    #[arg(long)]
    force_read: bool,
    /// Neither read nor write the local cache.
    #[arg(long)]
    no_cache: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let request = Request {
        paths: args.paths,
        stdin_name: args.stdin_name,
        command: args.command,
        tags: args.tags,
        exclude: args.exclude,
        host: args.host,
        force_read: args.force_read,
        no_cache: args.no_cache,
    };
    let line = output::ProgressLine::new(global.quiet);
    let report = job::run(&config, &request, &|p| {
        line.show(&format!(
            "backup: {} of {}, {} new chunks",
            output::size(p.bytes_done),
            output::size(p.bytes_total),
            p.chunks_new
        ))
    })
    .await;
    line.done();
    let report = report?;
    if args.json {
        output::json(&report)?;
    } else {
        output::warnings(render::warnings(&report, global.quiet), global.quiet);
        print!("{}", render::text(&report, global.quiet));
    }
    Ok(report.exit_code())
}
