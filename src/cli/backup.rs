//! `snapdrill backup [--job NAME] [PATH…]`

use std::path::{Path, PathBuf};

use anyhow::Result;
use snapdrill::backup::job::{self, Request};
use snapdrill::backup::metrics::{self, History, Run};
use snapdrill::backup::{BackupReport, render};
use snapdrill::config::Hooks;
use snapdrill::error::exit;
use snapdrill::hooks::Notifier;

use super::{Global, common, notify, output};

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
    /// Write a Prometheus textfile (atomically) for node_exporter: every job's last run
    /// and last success (default: [metrics] textfile_dir/snapdrill_backup.prom).
    #[arg(long, value_name = "FILE")]
    metrics_file: Option<PathBuf>,
}

/// Each job in turn, with its own lock, hooks and result; the exit code is the worst.
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
    if args.dry_run {
        return dry_runs(&config, &request, &jobs, args.json);
    }
    let mut worst = exit::OK;
    let mut reports = Vec::new();
    let mut failed = Vec::new();
    let mut last_error = None;
    for j in &jobs {
        let started = std::time::Instant::now();
        let code = match run_one(global, &config, &request, j, args.json).await {
            Ok(report) => {
                let code = report.exit_code();
                reports.push(report);
                code
            }
            Err(e) => {
                let code = notify::error_code(&e);
                failed.push((j.name.as_str(), code, started.elapsed().as_secs_f64()));
                // One failed job does not stop the others: report it and go on.
                if jobs.len() > 1 {
                    super::report_error(&e.context(format!("job {}", j.name)))
                } else {
                    last_error = Some(e);
                    code
                }
            }
        };
        worst = exit::worst(worst, code);
    }
    let runs = reports.iter().map(Run::Report).chain(failed.iter().map(
        |&(job, exit_code, duration_secs)| Run::Failed {
            job,
            exit_code,
            duration_secs,
        },
    ));
    write_metrics(
        &config,
        args.metrics_file.as_deref(),
        &runs.collect::<Vec<_>>(),
    );
    match last_error {
        Some(e) => Err(e),
        None => Ok(worst),
    }
}

/// `--dry-run` of every job: no store, no hook, no metrics; one job that cannot be
/// planned does not stop the others.
fn dry_runs(
    config: &snapdrill::config::Config,
    request: &Request,
    jobs: &[job::JobRun],
    json: bool,
) -> Result<i32> {
    let mut worst = exit::OK;
    for j in jobs {
        let code = match dry_run(config, request, j, json) {
            Ok(code) => code,
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

/// `--metrics-file` or `[metrics] textfile_dir`: the history updated, the textfile
/// written. A failure here is a warning: the backup itself is done, and a stale file
/// trips the "backup too old" alert anyway.
fn write_metrics(config: &snapdrill::config::Config, explicit: Option<&Path>, runs: &[Run]) {
    let Some(path) = notify::metrics_path(
        explicit,
        config.metrics_dir.as_deref(),
        metrics::TEXTFILE_NAME,
    ) else {
        return;
    };
    let stores: Vec<String> = config.stores.iter().map(|s| s.name.clone()).collect();
    let written = History::record(&config.state_dir, &stores, runs)
        .map_err(anyhow::Error::from)
        .and_then(|h| notify::write_metrics(&path, &h.textfile()));
    if let Err(e) = written {
        notify::warn(vec![format!("the metrics file was not written: {e:#}")]);
    }
}

/// One job: its start hooks, the backup, its report printed, its end hooks.
async fn run_one(
    global: &Global,
    config: &snapdrill::config::Config,
    request: &Request,
    j: &job::JobRun,
    json: bool,
) -> Result<BackupReport> {
    let own = config
        .jobs
        .iter()
        .find(|c| c.name == j.name)
        .map(|c| &c.hooks);
    let tables: Vec<&Hooks> = std::iter::once(&config.hooks.backup).chain(own).collect();
    let notifier = Notifier::new("backup", Some(&j.name), &tables);
    notify::around(
        &notifier,
        backup_one(global, config, request, j, json),
        |r| {
            (
                r.exit_code(),
                render::text(r, true).trim_end().to_owned(),
                Some(r.snapshot_id.clone()),
                serde_json::to_value(r).ok(),
            )
        },
    )
    .await
}

async fn backup_one(
    global: &Global,
    config: &snapdrill::config::Config,
    request: &Request,
    j: &job::JobRun,
    json: bool,
) -> Result<BackupReport> {
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
    Ok(report)
}
