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
    /// Identity file for --deep and --record (default: $SNAPDRILL_IDENTITY, then the
    /// config's).
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Keep the report in the repository as an audit record (sealed and authenticated like
    /// a drill record: needs the identity); `snapdrill audits` lists them.
    #[arg(long)]
    record: bool,
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
    /// Who runs the audit (recorded in the report's provenance).
    #[arg(long)]
    operator: Option<String>,
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
    let mut report = audit::run_config(config, &opts).await?;
    let command: Vec<String> = std::env::args().collect();
    report.provenance = Some(audit::provenance::Provenance::of(
        config,
        args.operator.clone(),
        &command,
    ));
    let metrics = notify::metrics_path(
        args.metrics_file.as_deref(),
        config.metrics_dir.as_deref(),
        "snapdrill_audit.prom",
    );
    write_outputs(&report, args, metrics.as_deref())?;
    if args.json {
        output::json(&report)?;
    } else {
        let text = render::text(&report, global.quiet);
        output::result(&text, report.exit_code(), global.quiet);
    }
    if args.record {
        let identities = common::load_identity(config, args.identity.clone())?;
        let (id, warnings) = audit::record::keep(config, identities, &report).await?;
        output::warnings(warnings, global.quiet);
        if !global.quiet && !args.json {
            println!("audit record {id} kept in the repository");
        }
    }
    Ok(report)
}

/// Arguments of `audits`.
#[derive(Debug, clap::Args)]
pub(super) struct ListArgs {
    /// Identity file (default: $SNAPDRILL_IDENTITY, then the config's).
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Print the records as JSON.
    #[arg(long)]
    json: bool,
}

/// `snapdrill audits`: the audit records kept in the repository, oldest first; every copy
/// that does not authenticate is named with its store (exit 13).
pub(super) async fn list(global: &Global, args: ListArgs) -> Result<i32> {
    let config = common::load_config(global)?;
    let identities = common::load_identity(&config, args.identity)?;
    let (records, bad) = audit::record::history(&config, identities).await?;
    output::warnings(render::untrusted_records(&bad), false);
    if args.json {
        output::json(&records)?;
    } else {
        print!("{}", render::history(&records));
    }
    Ok(if bad.is_empty() {
        snapdrill::error::exit::OK
    } else {
        snapdrill::error::exit::INTEGRITY
    })
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
