//! `snapdrill audit`: check every store against the signed commits (no identity needed;
//! `--deep` uses it).

use std::path::PathBuf;

use anyhow::Result;
use snapdrill::Error;
use snapdrill::audit::{self, AuditOptions, AuditReport, ReadPolicy, read, render};
use snapdrill::config::Config;
use snapdrill::localfs::atomic::{self, NewMode};

use snapdrill::hooks::Notifier;

use super::{Global, common, notify, output};

/// Arguments of `audit`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Also download every object and check its SHA-256 against the signed commit.
    #[arg(long, conflicts_with = "read_data_subset")]
    read_data: bool,
    /// Download part of the objects: `n/t` (part n of t: 1/3, 2/3, 3/3 read everything once),
    /// `5%` (at random) or a size such as `500MiB` (least recently read first).
    #[arg(long, value_name = "n/t|PERCENT|SIZE")]
    read_data_subset: Option<String>,
    /// Download at most this many bytes, least recently read first (alone: from every object).
    #[arg(long, value_name = "BYTES")]
    budget: Option<String>,
    /// Also decrypt and verify every snapshot in every store (needs the identity).
    #[arg(long)]
    deep: bool,
    /// Identity file for --deep (default: $SNAPDRILL_IDENTITY, then the config's).
    #[arg(long, value_name = "FILE", requires = "deep")]
    identity: Option<PathBuf>,
    /// Probe whether each store refuses overwrites and deletes (with a canary object).
    #[arg(long)]
    immutability: bool,
    /// Write a report (`.json` or `.md` by extension); repeatable.
    #[arg(long, value_name = "FILE")]
    report: Vec<PathBuf>,
    /// Write a Prometheus textfile (atomically) for node_exporter (default: [metrics]
    /// textfile_dir/snapdrill_audit.prom).
    #[arg(long, value_name = "FILE")]
    metrics_file: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// The audit between `[audit.hooks]`' start and end hooks.
pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let notifier = Notifier::new("audit", None, &[&config.hooks.audit]);
    let report = notify::around(&notifier, audit(global, &config, &args), |r| {
        (
            r.exit_code(),
            render::text(r, true).trim_end().to_owned(),
            None,
            serde_json::to_value(r).ok(),
        )
    })
    .await?;
    Ok(report.exit_code())
}

async fn audit(global: &Global, config: &Config, args: &Args) -> Result<AuditReport> {
    let opts = options(config, args)?;
    let report = audit::run_config(config, &opts).await?;
    let metrics = notify::metrics_path(
        args.metrics_file.as_deref(),
        config.metrics_dir.as_deref(),
        "snapdrill_audit.prom",
    );
    write_outputs(&report, args, metrics.as_deref())?;
    if args.json {
        output::json(&report)?;
    } else {
        print!("{}", render::text(&report, global.quiet));
    }
    Ok(report)
}

fn options(config: &Config, args: &Args) -> Result<AuditOptions> {
    let usage = |e: String| anyhow::Error::from(Error::Usage(e));
    let budget = args
        .budget
        .as_deref()
        .map(read::parse_bytes)
        .transpose()
        .map_err(usage)?;
    let read = match (&args.read_data_subset, args.read_data) {
        (Some(s), _) => ReadPolicy::parse_subset(s).map_err(usage)?,
        (None, true) => ReadPolicy::All,
        (None, false) if budget.is_some() => ReadPolicy::All,
        (None, false) => ReadPolicy::None,
    };
    let deep = if args.deep {
        Some(common::load_identity(config, args.identity.clone())?)
    } else {
        None
    };
    Ok(AuditOptions {
        read,
        budget,
        deep,
        immutability: args.immutability,
        state_dir: config.state_dir.clone(),
        writer_timeout: config.prune.writer_timeout,
        grace: config.prune.grace,
    })
}

fn write_outputs(r: &AuditReport, args: &Args, metrics: Option<&std::path::Path>) -> Result<()> {
    for path in &args.report {
        let content = render::render_for(path, r).map_err(Error::Usage)?;
        atomic::write(path, content.as_bytes(), NewMode::Shared, false)
            .map_err(|e| Error::io("writing", path, e))?;
    }
    if let Some(path) = metrics {
        notify::write_metrics(path, &render::prometheus(r))?;
    }
    Ok(())
}
