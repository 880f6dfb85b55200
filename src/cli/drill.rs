//! `snapdrill restore-drill` (alias `drill`), `snapdrill drills`, `snapdrill report`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use snapdrill::config::Config;
use snapdrill::drill::{self, DrillOptions, DrillRecord, Sample, record};
use snapdrill::error::exit;
use snapdrill::keys::{self, Identities};
use snapdrill::localfs::atomic::{self, NewMode};
use snapdrill::restore::StageClock;
use snapdrill::store::StoreRef;
use snapdrill::{Error, report};

use snapdrill::text::escape;

use super::{Global, common, output};

/// Arguments of `restore-drill`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// `latest`, `random`, or a snapshot id.
    #[arg(long, default_value = "latest", value_name = "SNAPSHOT")]
    snapshot: String,
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
    /// Write a Prometheus textfile (atomically) for node_exporter.
    #[arg(long, value_name = "FILE")]
    metrics_file: Option<PathBuf>,
    /// Do not keep the evidence record in the repository.
    #[arg(long)]
    no_record: bool,
    /// Print the records as JSON.
    #[arg(long)]
    json: bool,
}

/// What every drill command needs: a clean-room view of the repository.
struct Room {
    config: Config,
    identities: Arc<Identities>,
    signer: ed25519_dalek::VerifyingKey,
    stores: Vec<StoreRef>,
    unopened: Vec<(String, String)>,
}

fn room(global: &Global, identity: Option<PathBuf>) -> Result<Room> {
    let config = common::load_config(global)?;
    // Clean room: the signer must come from the config (the recovery kit), never from the
    // backup host's write key.
    let signer = match &config.signer {
        Some(s) => keys::parse_signer(s).map_err(|e| Error::Config {
            path: config.path.clone(),
            message: e,
        })?,
        None => {
            return Err(Error::Config {
                path: config.path.clone(),
                message: "drills trust only the signer pinned in the config: add `signer = \"ed25519:...\"` under [repository] (init writes it)".into(),
            }
            .into());
        }
    };
    let identities = common::load_identity(&config, identity)?;
    let (stores, failed) = common::open_stores(&config, false);
    let unopened = failed
        .into_iter()
        .map(|(n, e)| (n, e.to_string()))
        .collect();
    Ok(Room {
        config,
        identities,
        signer,
        stores,
        unopened,
    })
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let started = global.started;
    let room = room(global, args.identity.clone())?;
    let sample = args
        .sample
        .as_ref()
        .map(|s| {
            Sample::parse(s)
                .map(|p| (p, s.clone()))
                .map_err(Error::Usage)
        })
        .transpose()?;
    let opts = DrillOptions {
        snapshot: args.snapshot.clone(),
        target: args.target.clone(),
        keep: args.keep,
        verify_only: args.verify_only,
        sample,
        seed: args.seed.unwrap_or_else(rand::random),
        check: args.check.clone(),
        rto: args.rto.or(room.config.rto),
        rpo: args.rpo.or(room.config.rpo),
        operator: args.operator.clone(),
        host: snapdrill::hostname(),
    };
    let plans = plans(&room, &args)?;
    for note in drill::sweep_dead_drills() {
        eprintln!("snapdrill: note: {note}");
    }
    let mut records = Vec::new();
    let mut dedup = None;
    for (i, (label, stores)) in plans.into_iter().enumerate() {
        let start = if i == 0 { started } else { Instant::now() };
        let clock = Arc::new(StageClock::default());
        let ticker = progress(global.quiet, &label, clock.clone());
        let outcome = drill::run(
            stores,
            &label,
            room.signer,
            room.identities.clone(),
            &opts,
            start,
            clock,
        )
        .await;
        ticker.abort();
        output::ProgressLine::new(global.quiet).done();
        dedup = dedup.or(outcome.dedup);
        if !args.no_record {
            keep_record(&room, &outcome, global.quiet).await;
        }
        if args.json {
            for f in &outcome.record.failures {
                eprintln!(
                    "snapdrill: drill {}: {}",
                    escape(&outcome.record.store),
                    escape(f)
                );
            }
            if let Some(e) = &outcome.record.cleanup_error {
                eprintln!(
                    "snapdrill: warning: drill {}: {}",
                    escape(&outcome.record.store),
                    escape(e)
                );
            }
        } else {
            print_result(&outcome.record, global.quiet);
        }
        records.push(outcome.record);
    }
    write_outputs(&room, &records, dedup, &args).await?;
    if args.json {
        output::json(&records)?;
    }
    Ok(records
        .iter()
        .map(|r| r.result)
        .max_by_key(|r| r.severity())
        .map_or(exit::OK, |r| r.exit_code()))
}

/// Which drills to run: (label, stores).
fn plans(room: &Room, args: &Args) -> Result<Vec<(String, Vec<StoreRef>)>> {
    let find = |name: &str| -> Result<StoreRef> {
        if let Some(s) = room.stores.iter().find(|s| s.name() == name) {
            return Ok(s.clone());
        }
        match room.unopened.iter().find(|(n, _)| n == name) {
            Some((_, why)) => {
                Err(Error::fatal(format!("store '{name}' cannot be opened: {why}")).into())
            }
            None => Err(Error::Usage(format!(
                "no store named '{name}' in the config (stores: {})",
                room.config
                    .stores
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into()),
        }
    };
    Ok(if args.each_store {
        room.config
            .stores
            .iter()
            .map(|s| Ok((s.name.clone(), vec![find(&s.name)?])))
            .collect::<Result<_>>()?
    } else if let Some(name) = &args.store {
        vec![(name.clone(), vec![find(name)?])]
    } else {
        if room.stores.is_empty() {
            return Err(Error::fatal("no configured store can be opened").into());
        }
        vec![("all".to_owned(), room.stores.clone())]
    })
}

fn progress(quiet: bool, label: &str, clock: Arc<StageClock>) -> tokio::task::JoinHandle<()> {
    let line = output::ProgressLine::new(quiet);
    let label = label.to_owned();
    tokio::spawn(async move {
        let started = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            line.show(&format!(
                "drill {label}: {} restored and verified, {:.0} s",
                output::size(clock.bytes()),
                started.elapsed().as_secs_f64()
            ));
        }
    })
}

async fn keep_record(room: &Room, outcome: &drill::Outcome, quiet: bool) {
    let Some(dedup) = outcome.dedup else {
        if !quiet {
            eprintln!(
                "snapdrill: note: the drill record is not kept in the repository: the drill ended before it opened the repository's keys (the record above says why)"
            );
        }
        return;
    };
    let recipients = match keys::parse_recipients(&room.config.recipients) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("snapdrill: warning: drill record not kept: {e}");
            return;
        }
    };
    match record::seal(&outcome.record, &dedup, &recipients) {
        Ok(sealed) => {
            for (store, why) in record::store_everywhere(
                &room.stores,
                &outcome.record.drill_id,
                &dedup,
                sealed.into(),
            )
            .await
            {
                eprintln!("snapdrill: warning: drill record not kept in store '{store}': {why}");
            }
        }
        Err(e) => eprintln!("snapdrill: warning: drill record not kept: {e}"),
    }
}

fn print_result(r: &DrillRecord, quiet: bool) {
    for f in &r.failures {
        eprintln!("snapdrill: drill {}: {}", escape(&r.store), escape(f));
    }
    if let Some(e) = &r.cleanup_error {
        eprintln!(
            "snapdrill: warning: drill {}: {}",
            escape(&r.store),
            escape(e)
        );
    }
    for rep in &r.repairs {
        eprintln!(
            "snapdrill: warning: store '{}' could not serve {} ({:?}); another replica did",
            rep.store, rep.reason, rep.kind
        );
    }
    // Under cron (no terminal) only the result line: the record holds the details.
    if !quiet && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        let p = &r.phases;
        println!(
            "drill {} — store {}, snapshot {}",
            r.drill_id,
            r.store,
            r.snapshot_id.as_deref().unwrap_or("—")
        );
        println!(
            "  phases     reach+list {}, manifest {}, data {}, check {}",
            report::duration(p.connect_list_secs),
            report::duration(p.manifest_secs),
            report::duration(p.data_secs),
            report::duration(p.check_secs)
        );
        println!(
            "  data       {} files, {} in {} objects, {:.1} MB/s; first byte after {}",
            r.files,
            output::size(r.bytes),
            r.objects_fetched,
            r.throughput_mb_s,
            r.first_byte_secs.map_or("—".into(), report::duration)
        );
        if let Some(e) = r.rto_estimate_secs {
            let asked = r.sample.as_ref().map_or("", |s| s.requested.as_str());
            println!(
                "  estimate   full snapshot RTO ≈ {} (an ESTIMATE, extrapolated from the {asked} sample's {} measured)",
                report::duration(e),
                report::duration(r.rto_secs)
            );
        }
    }
    let target = |v: Option<f64>, t: Option<f64>| match (v, t) {
        (Some(v), Some(t)) => format!(
            "{} (target {}{})",
            report::duration(v),
            report::duration(t),
            if v > t { ", MISSED" } else { "" }
        ),
        (Some(v), None) => report::duration(v),
        _ => "—".into(),
    };
    println!(
        "drill {}: store {} RTO {}{} RPO {}",
        r.result.label(),
        r.store,
        target(Some(r.judged_rto()), r.targets.rto_secs),
        if r.rto_estimate_secs.is_some() {
            " [estimate]"
        } else {
            ""
        },
        target(r.rpo_secs, r.targets.rpo_secs)
    );
}

/// `--report` files and `--metrics-file`; HTML and metrics include the stored history.
async fn write_outputs(
    room: &Room,
    records: &[DrillRecord],
    dedup: Option<[u8; 32]>,
    args: &Args,
) -> Result<()> {
    let wants_history = args.metrics_file.is_some()
        || args
            .report
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "html" || e == "htm"));
    let mut all = records.to_vec();
    if wants_history && let Some(dedup) = dedup {
        let (history, _) = record::history(&room.stores, &room.identities, &dedup).await?;
        for h in history {
            if !all
                .iter()
                .any(|r| r.drill_id == h.drill_id && r.store == h.store)
            {
                all.push(h);
            }
        }
    }
    all.sort_by(|a, b| a.started.cmp(&b.started));
    for path in &args.report {
        let is_html = path.extension().is_some_and(|e| e == "html" || e == "htm");
        let content = report::render_for(
            path,
            if is_html { &all } else { records },
            "snapdrill restore drills",
        )
        .map_err(Error::Usage)?;
        atomic::write(path, content.as_bytes(), NewMode::Shared, false)
            .map_err(|e| Error::io("writing", path, e))?;
    }
    if let Some(path) = &args.metrics_file {
        atomic::write(
            path,
            report::prometheus(&all).as_bytes(),
            NewMode::Shared,
            false,
        )
        .map_err(|e| Error::io("writing", path, e))?;
    }
    Ok(())
}

/// Arguments of `drills`.
#[derive(Debug, clap::Args)]
pub(super) struct ListArgs {
    /// Only drills of this store (`all` for drills over every store).
    #[arg(long)]
    store: Option<String>,
    /// Identity file (default: $SNAPDRILL_IDENTITY, then the config's).
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

async fn load_history(room: &Room) -> Result<(Vec<DrillRecord>, Vec<record::BadRecord>)> {
    let repo = snapdrill::repository::Repository::open(
        room.stores.clone(),
        room.signer,
        snapdrill::repository::OpenMode::AnyUsable,
    )
    .await?;
    let dedup = snapdrill::restore::dedup_key(&repo, &room.identities)?;
    Ok(record::history(&repo.stores, &room.identities, &dedup).await?)
}

pub(super) async fn list(global: &Global, args: ListArgs) -> Result<i32> {
    let room = room(global, args.identity)?;
    let (mut records, bad) = load_history(&room).await?;
    records.retain(|r| args.store.as_ref().is_none_or(|s| &r.store == s));
    for b in &bad {
        eprintln!(
            "snapdrill: warning: drill record {} not trusted: {}",
            escape(&b.object),
            escape(&b.reason)
        );
    }
    if args.json {
        output::json(&records)?;
    } else {
        println!(
            "{:<26} {:<12} {:<11} {:<17} {:>10} {:>10} {:>10}",
            "DRILL", "STORE", "MODE", "RESULT", "RTO", "RPO", "MB/s"
        );
        for r in &records {
            println!(
                "{:<26} {:<12} {:<11} {:<17} {:>10} {:>10} {:>10.1}",
                escape(&r.drill_id),
                escape(&r.store),
                escape(&r.mode),
                r.result.label(),
                report::duration(r.judged_rto()),
                r.rpo_secs.map_or("—".into(), report::duration),
                r.throughput_mb_s
            );
        }
        println!("{} drills", records.len());
    }
    Ok(if bad.iter().any(|b| b.object != record::DRILLS_PREFIX) {
        exit::INTEGRITY
    } else {
        exit::OK
    })
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
    /// Write a Prometheus textfile with the latest drill of each store.
    #[arg(long, value_name = "FILE")]
    metrics_file: Option<PathBuf>,
    /// Identity file (default: $SNAPDRILL_IDENTITY, then the config's).
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
}

pub(super) async fn report(global: &Global, args: ReportArgs) -> Result<i32> {
    if args.html.is_none()
        && args.md.is_none()
        && args.json.is_none()
        && args.metrics_file.is_none()
    {
        return Err(Error::Usage(
            "say what to write: --html FILE, --md FILE, --json FILE or --metrics-file FILE".into(),
        )
        .into());
    }
    let room = room(global, args.identity)?;
    let (records, bad) = load_history(&room).await?;
    for b in &bad {
        eprintln!(
            "snapdrill: warning: drill record {} not trusted: {}",
            escape(&b.object),
            escape(&b.reason)
        );
    }
    let title = "snapdrill restore drills";
    for (path, content) in [
        (
            &args.html,
            args.html.as_ref().map(|_| report::html(&records, title)),
        ),
        (
            &args.md,
            args.md.as_ref().map(|_| report::markdown(&records, title)),
        ),
        (
            &args.json,
            args.json
                .as_ref()
                .map(|_| serde_json::to_string_pretty(&records).unwrap_or_default()),
        ),
        (
            &args.metrics_file,
            args.metrics_file
                .as_ref()
                .map(|_| report::prometheus(&records)),
        ),
    ] {
        if let (Some(path), Some(content)) = (path, content) {
            atomic::write(path, content.as_bytes(), NewMode::Shared, false)
                .map_err(|e| Error::io("writing", path, e))?;
            if !global.quiet {
                println!("wrote {} ({} drills)", path.display(), records.len());
            }
        }
    }
    Ok(exit::OK)
}
