//! `snapdrill restore-drill` (alias `drill`), `snapdrill drills`, `snapdrill report`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use snapdrill::config::Config;
use snapdrill::drill::room::{Plan, Room, Which};
use snapdrill::drill::{self, DrillOptions, DrillRecord, Sample, record, render};
use snapdrill::error::exit;
use snapdrill::format::commit::DataSet;
use snapdrill::localfs::atomic::{self, NewMode};
use snapdrill::restore::StageClock;
use snapdrill::{Error, report};

use super::common::SelectArgs;
use snapdrill::hooks::Notifier;

use super::{Global, common, notify, output};

/// Arguments of `restore-drill`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// `latest` (of every data set), `random`, or a snapshot spec: `latest~N`, an id or a
    /// unique part of one, a day, a date-time.
    #[arg(long, default_value = "latest", value_name = "SNAPSHOT")]
    snapshot: String,
    #[command(flatten)]
    select: SelectArgs,
    /// Drill this store alone.
    #[arg(long, value_name = "NAME", conflicts_with = "each_store")]
    store: Option<String>,
    /// Drill every store alone, one after another, each with its own result.
    #[arg(long)]
    each_store: bool,
    /// Restore into this empty folder instead of a fresh temporary one.
    #[arg(long, value_name = "DIR")]
    target: Option<PathBuf>,
    /// Keep the restored files afterwards.
    #[arg(long)]
    keep: bool,
    /// Stream, decrypt and verify every byte without writing files.
    #[arg(long, conflicts_with_all = ["target", "keep", "check"])]
    verify_only: bool,
    /// Restore a random subset (`10%`, `500MB`) and estimate the full RTO from it.
    #[arg(long, value_name = "PERCENT|SIZE")]
    sample: Option<String>,
    /// Seed of the random choices (snapshot `random`, `--sample`).
    #[arg(long)]
    seed: Option<u64>,
    /// Validation command run with `sh -c` in the restored tree; must exit 0.
    #[arg(long, value_name = "CMD")]
    check: Option<String>,
    /// Recovery-time target, e.g. `30m` (default: [drill] rto).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    rto: Option<Duration>,
    /// Recovery-point target, e.g. `26h` (default: [drill] rpo).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    rpo: Option<Duration>,
    /// Who runs the drill (recorded in the evidence).
    #[arg(long)]
    operator: Option<String>,
    /// Identity file (default: $SNAPDRILL_IDENTITY, then the config's).
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Write a report (`.json`, `.md`, `.html` by extension); repeatable.
    #[arg(long, value_name = "FILE")]
    report: Vec<PathBuf>,
    /// Write a Prometheus textfile (atomically) for node_exporter (default: [metrics]
    /// textfile_dir/snapdrill_drill.prom).
    #[arg(long, value_name = "FILE")]
    metrics_file: Option<PathBuf>,
    /// Do not keep the evidence record in the repository.
    #[arg(long)]
    no_record: bool,
    /// Print the records as JSON.
    #[arg(long)]
    json: bool,
}

fn room(global: &Global, identity: Option<PathBuf>) -> Result<(Config, Room)> {
    let config = common::load_config(global)?;
    let identities = common::load_identity(&config, identity)?;
    let room = Room::open(&config, identities)?;
    Ok((config, room))
}

fn options(config: &Config, args: &Args) -> Result<DrillOptions> {
    let sample = args
        .sample
        .as_ref()
        .map(|s| {
            Sample::parse(s)
                .map(|p| (p, s.clone()))
                .map_err(Error::Usage)
        })
        .transpose()?;
    Ok(DrillOptions {
        snapshot: args.snapshot.clone(),
        selection: args.select.selection(config)?,
        data_set: None,
        target: args.target.clone(),
        keep: args.keep,
        verify_only: args.verify_only,
        sample,
        seed: args.seed.unwrap_or_else(rand::random),
        check: args.check.clone(),
        // The command line's targets; each data set's job and [drill] fill in the rest.
        rto: args.rto,
        rpo: args.rpo,
        operator: args.operator.clone(),
        host: snapdrill::hostname(),
    })
}

/// The drills between `[drill.hooks]`' start and end hooks.
pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let notifier = Notifier::new("drill", None, &[&config.hooks.drill]);
    let records = notify::around(
        &notifier,
        drills(global, config.clone(), &args),
        |records| {
            let summary: Vec<String> = records.iter().map(render::result_line).collect();
            (
                exit_code(records),
                summary.join("\n"),
                None,
                serde_json::to_value(records).ok(),
            )
        },
    )
    .await?;
    Ok(exit_code(&records))
}

/// The worst result of the drills as an exit code.
fn exit_code(records: &[DrillRecord]) -> i32 {
    records
        .iter()
        .map(|r| r.result)
        .max_by_key(|r| r.severity())
        .map_or(exit::OK, |r| r.exit_code())
}

async fn drills(global: &Global, config: Config, args: &Args) -> Result<Vec<DrillRecord>> {
    let identities = common::load_identity(&config, args.identity.clone())?;
    let room = Room::open(&config, identities)?;
    let opts = options(&config, args)?;
    let which = match (&args.store, args.each_store) {
        (_, true) => Which::EachStore,
        (Some(name), false) => Which::Store(name.clone()),
        (None, false) => Which::All,
    };
    let plans = room.plans(&which)?;
    let notes = drill::sweep_dead_drills();
    output::warnings(
        notes.into_iter().map(|n| format!("note: {n}")).collect(),
        global.quiet,
    );
    let sets = data_sets(&room, &config, &opts).await;
    let mut records = Vec::new();
    for plan in plans {
        for set_opts in &sets {
            // The first drill's RTO clock started with the process.
            let start = if records.is_empty() {
                global.started
            } else {
                Instant::now()
            };
            let plan = Plan {
                label: plan.label.clone(),
                stores: plan.stores.clone(),
            };
            records.push(drill_one(global, &room, plan, set_opts, args, start).await);
        }
    }
    let metrics = notify::metrics_path(
        args.metrics_file.as_deref(),
        config.metrics_dir.as_deref(),
        "snapdrill_drill.prom",
    );
    let opts = report_options(&config, None);
    write_outputs(&room, &records, args, metrics.as_deref(), &opts).await?;
    if args.json {
        output::json(&records)?;
    }
    Ok(records)
}

/// The drills' options, one per data set: `latest`, a day or a date-time without a job
/// named visits every data set the filters admit (each with its job's targets and check);
/// an id or `random` is one drill. When the data sets cannot be listed, one drill runs
/// anyway and records why it failed: a drill that did not happen is evidence too.
async fn data_sets(room: &Room, config: &Config, opts: &DrillOptions) -> Vec<DrillOptions> {
    let per_set = opts.snapshot != "random"
        && !matches!(
            snapdrill::select::Spec::parse(&opts.snapshot, &opts.selection.zone),
            Ok(snapdrill::select::Spec::Id(_)) | Err(_)
        );
    let sets = match per_set {
        true => room.data_sets(&opts.selection).await.unwrap_or_default(),
        false => Vec::new(),
    };
    let for_set = |set: Option<DataSet>| {
        let job = set
            .as_ref()
            .and_then(|s| config.jobs.iter().find(|j| s.job.as_ref() == Some(&j.name)));
        DrillOptions {
            rto: opts.rto.or(job.and_then(|j| j.rto)).or(config.rto),
            rpo: opts.rpo.or(job.and_then(|j| j.rpo)).or(config.rpo),
            check: opts.check.clone().or(job.and_then(|j| j.check.clone())),
            data_set: set,
            ..opts.clone()
        }
    };
    if sets.is_empty() {
        return vec![for_set(None)];
    }
    sets.into_iter().map(|set| for_set(Some(set))).collect()
}

/// One drill with its progress line, its record kept (unless `--no-record`) and shown.
async fn drill_one(
    global: &Global,
    room: &Room,
    plan: Plan,
    opts: &DrillOptions,
    args: &Args,
    start: Instant,
) -> DrillRecord {
    let clock = Arc::new(StageClock::default());
    // The responder asks "how long?": bytes, files, rate and ETA, as a restore shows them.
    let ticker =
        output::Ticker::start(global.quiet, format!("drill {}", plan.label), clock.clone());
    let outcome = drill::run(
        plan.stores,
        &plan.label,
        room.signer,
        room.identities.clone(),
        opts,
        start,
        clock,
    )
    .await;
    drop(ticker);
    if !args.no_record {
        output::warnings(room.keep(&outcome).await, global.quiet);
    }
    show(&outcome.record, args, global.quiet);
    outcome.record
}

/// One drill's warnings, then (on a terminal) its details, then its result line.
fn show(r: &DrillRecord, args: &Args, quiet: bool) {
    for w in render::warnings(r) {
        eprintln!("snapdrill: {w}");
    }
    if args.json {
        return;
    }
    // Under cron (no terminal) only the result line: the record holds the details.
    if !quiet && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        print!("{}", render::details(r));
    }
    let line = format!("{}\n", render::result_line(r));
    output::result(&line, r.result.exit_code(), quiet);
}

/// The reports' language, zone and drill interval: `--lang`, then the config.
pub(super) fn report_options(config: &Config, lang: Option<report::Lang>) -> report::ReportOptions {
    report::ReportOptions {
        lang: lang.unwrap_or(config.report.lang),
        zone: config
            .report
            .time_zone
            .clone()
            .unwrap_or_else(|| config.timezone.clone()),
        every: config.drill_every,
        ..report::ReportOptions::default()
    }
}

/// `--report` files and `--metrics-file`; HTML and metrics include the stored history.
async fn write_outputs(
    room: &Room,
    records: &[DrillRecord],
    args: &Args,
    metrics: Option<&std::path::Path>,
    opts: &report::ReportOptions,
) -> Result<()> {
    let is_html = |p: &PathBuf| p.extension().is_some_and(|e| e == "html" || e == "htm");
    let all = if metrics.is_some() || args.report.iter().any(is_html) {
        room.with_history(records).await?
    } else {
        records.to_vec()
    };
    for path in &args.report {
        let shown = if is_html(path) { &all[..] } else { records };
        let content = report::render_for(path, shown, opts).map_err(Error::Usage)?;
        write(path, &content)?;
    }
    if let Some(path) = metrics {
        write(path, &report::prometheus(&all))?;
    }
    Ok(())
}

fn write(path: &std::path::Path, content: &str) -> Result<()> {
    atomic::write(path, content.as_bytes(), NewMode::Shared, false)
        .map_err(|e| Error::io("writing", path, e))?;
    Ok(())
}

/// Arguments of `drills`.
#[derive(Debug, clap::Args)]
pub(super) struct ListArgs {
    /// Only drills of this store (`all` for drills over every store).
    #[arg(long)]
    store: Option<String>,
    /// Only drills of this job's data set (repeatable; `-` for format-1 snapshots).
    #[arg(long = "job", value_name = "NAME")]
    jobs: Vec<String>,
    /// Only drills of data sets of this host (repeatable).
    #[arg(long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Identity file (default: $SNAPDRILL_IDENTITY, then the config's).
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

impl ListArgs {
    fn admits(&self, r: &DrillRecord) -> bool {
        let job = r.job.as_deref().unwrap_or("-");
        let host = r.snapshot_host.as_deref().unwrap_or("-");
        self.store.as_ref().is_none_or(|s| &r.store == s)
            && (self.jobs.is_empty() || self.jobs.iter().any(|j| j == job))
            && (self.hosts.is_empty() || self.hosts.iter().any(|h| h == host))
    }
}

pub(super) async fn list(global: &Global, args: ListArgs) -> Result<i32> {
    let (_, room) = room(global, args.identity.clone())?;
    let (mut records, bad) = room.history().await?;
    records.retain(|r| args.admits(r));
    // By data set, each one's drills oldest first (the sort is stable).
    records.sort_by_key(DrillRecord::data_set_label);
    output::warnings(render::untrusted(&bad), false);
    if args.json {
        output::json(&records)?;
    } else {
        print!("{}", render::history(&records));
    }
    Ok(if bad.iter().any(|b| b.object != record::DRILLS_PREFIX) {
        exit::INTEGRITY
    } else {
        exit::OK
    })
}

/// The audit records for the report; a history that cannot be read is a warning, not the
/// end of the drill report.
async fn audit_history(config: &Config, room: &Room) -> Vec<snapdrill::audit::record::AuditRecord> {
    use snapdrill::audit;
    match audit::record::history(config, room.identities.clone()).await {
        Ok((records, bad)) => {
            output::warnings(audit::render::untrusted_records(&bad), false);
            records
        }
        Err(e) => {
            output::warnings(
                vec![format!("warning: the audit history could not be read: {e}")],
                false,
            );
            Vec::new()
        }
    }
}

/// Arguments of `report`.
#[derive(Debug, clap::Args)]
pub(super) struct ReportArgs {
    /// Write the whole drill history as a self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Write it as Markdown.
    #[arg(long, value_name = "FILE")]
    md: Option<PathBuf>,
    /// Write it as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Print the HTML page to an A4 PDF with a headless Chromium ($SNAPDRILL_CHROMIUM, or
    /// chromium on PATH).
    #[arg(long, value_name = "FILE")]
    pdf: Option<PathBuf>,
    /// Language of the HTML, PDF and Markdown labels: en or ja (default: [report] lang).
    #[arg(long, value_name = "LANG", value_parser = report::Lang::parse)]
    lang: Option<report::Lang>,
    /// Write a Prometheus textfile with the latest drill of each store.
    #[arg(long, value_name = "FILE")]
    metrics_file: Option<PathBuf>,
    /// Identity file (default: $SNAPDRILL_IDENTITY, then the config's).
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
}

pub(super) async fn report(global: &Global, args: ReportArgs) -> Result<i32> {
    let wanted = [
        &args.html,
        &args.md,
        &args.json,
        &args.pdf,
        &args.metrics_file,
    ];
    if wanted.iter().all(|w| w.is_none()) {
        return Err(Error::Usage(
            "say what to write: --html FILE, --pdf FILE, --md FILE, --json FILE or --metrics-file FILE"
                .into(),
        )
        .into());
    }
    if args.pdf.is_some() {
        // Before the history is read: a missing browser is found at once.
        report::pdf::find_chromium()?;
    }
    let (config, room) = room(global, args.identity)?;
    let mut opts = report_options(&config, args.lang);
    let (records, bad) = room.history().await?;
    output::warnings(render::untrusted(&bad), false);
    opts.audits = audit_history(&config, &room).await;
    if let Some(path) = &args.pdf {
        report::pdf::print(&report::html(&records, &opts), path)?;
        if !global.quiet {
            println!("wrote {} ({} drills)", path.display(), records.len());
        }
    }
    let outputs: [(&Option<PathBuf>, &dyn Fn() -> String); 4] = [
        (&args.html, &|| report::html(&records, &opts)),
        (&args.md, &|| report::markdown(&records, &opts)),
        (&args.json, &|| {
            serde_json::to_string_pretty(&records).unwrap_or_default()
        }),
        (&args.metrics_file, &|| report::prometheus(&records)),
    ];
    for (path, render) in outputs {
        if let Some(path) = path {
            write(path, &render())?;
            if !global.quiet {
                println!("wrote {} ({} drills)", path.display(), records.len());
            }
        }
    }
    Ok(exit::OK)
}
