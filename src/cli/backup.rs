//! `snapdrill backup [--job NAME] [PATH…]`

use std::path::PathBuf;

use anyhow::Result;
use snapdrill::backup::job::{self, Request};
use snapdrill::backup::render;
use snapdrill::error::exit;

use super::{Global, common, output};

/// Arguments of `backup`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Paths to back up instead of the configured jobs.
    paths: Vec<PathBuf>,
    /// Run only this [[job]] (default: every job, in order); with PATHs or a stream, the
    /// job name the snapshot is recorded under (default: adhoc).
    #[arg(long, value_name = "NAME")]
    job: Option<String>,
    /// Store standard input as a file of this name (e.g. `pg_dump db | snapdrill backup --job crm --stdin-name db.sql`).
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
    /// Show what would be read, what the excludes remove and what the files cache says is
    /// unchanged, with sizes; open no store, write nothing, run no command.
    #[arg(long)]
    dry_run: bool,
    /// Print each job's report as JSON (one object per job).
    #[arg(long)]
    json: bool,
}

/// Each job in turn, with its own lock and result; the exit code is the worst.
pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let request = Request {
        job: args.job,
        paths: args.paths,
        stdin_name: args.stdin_name,
        command: args.command,
        tags: args.tags,
        exclude: args.exclude,
        host: args.host,
        force_read: args.force_read,
        no_cache: args.no_cache,
    };
    let jobs = request.jobs(&config)?;
    let mut worst = exit::OK;
    for j in &jobs {
        let one = match args.dry_run {
            true => dry_run(&config, &request, j, args.json),
            false => run_one(global, &config, &request, j, args.json).await,
        };
        let code = match one {
            Ok(code) => code,
            // One failed job does not stop the others: report it and go on.
            Err(e) if jobs.len() > 1 => super::report_error(&e.context(format!("job {}", j.name))),
            Err(e) => return Err(e),
        };
        worst = exit::worst(worst, code);
    }
    Ok(worst)
}

/// `--dry-run`: the plan is what was asked for, printed whatever `-q` says.
fn dry_run(
    config: &snapdrill::config::Config,
    request: &Request,
    j: &job::JobRun,
    json: bool,
) -> Result<i32> {
    let plan = snapdrill::backup::dryrun::plan_job(config, request, j)?;
    if json {
        output::json(&plan)?;
    } else {
        print!("{}", snapdrill::backup::dryrun::render(&plan));
    }
    Ok(plan.exit_code())
}

async fn run_one(
    global: &Global,
    config: &snapdrill::config::Config,
    request: &Request,
    j: &job::JobRun,
    json: bool,
) -> Result<i32> {
    let line = output::ProgressLine::new(global.quiet);
    let report = job::run(config, request, j, &|p| {
        line.show(&format!(
            "backup {}: {} of {}, {} new chunks",
            j.name,
            output::size(p.bytes_done),
            output::size(p.bytes_total),
            p.chunks_new
        ))
    })
    .await;
    line.done();
    let report = report?;
    if json {
        output::json(&report)?;
    } else {
        output::warnings(render::warnings(&report, global.quiet), global.quiet);
        let text = render::text(&report, global.quiet);
        output::result(&text, report.exit_code(), global.quiet);
    }
    Ok(report.exit_code())
}
