//! `snapdrill forget` (retention) and `snapdrill prune` (garbage collection).

use std::time::Duration;

use anyhow::Result;
use snapdrill::config::Config;
use snapdrill::keys::WriteKey;
use snapdrill::prune::forget::{self, ForgetOptions, ForgetReport};
use snapdrill::prune::{self, PruneOptions, PruneReport};
use snapdrill::repository::{Purpose, Repository};
use snapdrill::retention::Policy;

use super::{Global, common, output};

/// Arguments of `forget`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Forget these snapshots (ids, unique prefixes or `latest`) instead of applying a policy.
    #[arg(value_name = "SNAPSHOT")]
    ids: Vec<String>,
    /// Keep the newest N snapshots (per host).
    #[arg(long, value_name = "N")]
    keep_last: Option<usize>,
    /// Keep the newest snapshot of each of the last N hours.
    #[arg(long, value_name = "N")]
    keep_hourly: Option<usize>,
    /// Keep the newest snapshot of each of the last N days.
    #[arg(long, value_name = "N")]
    keep_daily: Option<usize>,
    /// Keep the newest snapshot of each of the last N weeks.
    #[arg(long, value_name = "N")]
    keep_weekly: Option<usize>,
    /// Keep the newest snapshot of each of the last N months.
    #[arg(long, value_name = "N")]
    keep_monthly: Option<usize>,
    /// Keep the newest snapshot of each of the last N years.
    #[arg(long, value_name = "N")]
    keep_yearly: Option<usize>,
    /// Keep every snapshot within DURATION of the newest (e.g. 30d).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    keep_within: Option<Duration>,
    /// Keep every snapshot with this tag (repeatable).
    #[arg(long = "keep-tag", value_name = "TAG")]
    keep_tags: Vec<String>,
    /// Show what would be forgotten; change nothing.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Run prune afterwards.
    #[arg(long)]
    prune: bool,
    /// With --prune: collect more than [prune] max_delete of the snapshots.
    #[arg(long, requires = "prune")]
    yes: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `prune`.
#[derive(Debug, clap::Args)]
pub(super) struct PruneArgs {
    /// Show what would be removed; change nothing.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Grace period for unreferenced objects, by the store's clock (default: [prune] grace, 24h).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    grace: Option<Duration>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Break the prune lease in every store, however young, and exit: only once you are
    /// sure no prune runs (the lease names its host and pid).
    #[arg(long, conflicts_with_all = ["dry_run", "grace"])]
    break_lease: bool,
    /// Collect even when more than [prune] max_delete of the snapshots would go.
    #[arg(long)]
    yes: bool,
    /// Honour a tombstone of the newest snapshot of a data set (kept otherwise: a backup
    /// host can sign tombstones).
    #[arg(long)]
    allow_forget_newest: bool,
}

impl Args {
    fn policy(&self, config: &Config) -> Policy {
        let given = Policy {
            keep_last: self.keep_last,
            keep_hourly: self.keep_hourly,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            keep_yearly: self.keep_yearly,
            keep_within: self.keep_within,
            keep_tags: self.keep_tags.clone(),
        };
        if given.is_empty() {
            config.retention.clone()
        } else {
            given
        }
    }
}

/// Every store must open: deleting on a partial view is how data gets lost.
async fn open_all(config: &Config, global: &Global) -> Result<Repository> {
    Ok(common::open(config, Purpose::Retention, global).await?.repo)
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let key = WriteKey::load(&config.write_key)?;
    let repo = open_all(&config, global).await?;
    let opts = ForgetOptions {
        policy: args.policy(&config),
        ids: args.ids.clone(),
        dry_run: args.dry_run,
    };
    let report = forget::run(&repo, &key, &opts).await?;
    let mut code = report.exit_code();
    let pruned = if args.prune {
        let mut opts = prune_options(&config, args.dry_run, None);
        opts.yes = args.yes;
        if args.dry_run {
            opts.planned_forget = report
                .snapshots
                .iter()
                .filter(|s| !s.keep)
                .map(|s| s.id.clone())
                .collect();
        }
        let p = prune::run(&repo, &opts).await?;
        Some(p)
    } else {
        None
    };
    if args.json {
        output::json(&serde_json::json!({ "forget": report, "prune": pruned }))?;
    } else {
        print_forget(&report, global.quiet);
        if let Some(p) = &pruned {
            print_prune(p);
        }
    }
    if code == 0 && pruned.as_ref().is_some_and(has_warnings) {
        code = snapdrill::error::exit::PARTIAL;
    }
    Ok(code)
}

pub(super) async fn prune(global: &Global, args: PruneArgs) -> Result<i32> {
    let config = common::load_config(global)?;
    let repo = open_all(&config, global).await?;
    if args.break_lease {
        for store in &repo.stores {
            match prune::lease::Lease::break_now(store).await? {
                Some(holder) => println!(
                    "store '{}': broke the prune lease held by {}",
                    store.name(),
                    snapdrill::text::escape(&holder)
                ),
                None => println!("store '{}': no prune lease", store.name()),
            }
        }
        return Ok(0);
    }
    let mut opts = prune_options(&config, args.dry_run, args.grace);
    opts.yes = args.yes;
    opts.settings.allow_forget_newest |= args.allow_forget_newest;
    let report = prune::run(&repo, &opts).await?;
    if args.json {
        output::json(&report)?;
    } else {
        print_prune(&report);
    }
    Ok(if has_warnings(&report) {
        snapdrill::error::exit::PARTIAL
    } else {
        0
    })
}

fn has_warnings(r: &PruneReport) -> bool {
    r.stores.iter().any(|s| !s.warnings.is_empty()) || !r.refused_tombstones.is_empty()
}

fn prune_options(config: &Config, dry_run: bool, grace: Option<Duration>) -> PruneOptions {
    let mut settings = config.prune;
    if let Some(g) = grace {
        settings.grace = g;
    }
    PruneOptions {
        settings,
        dry_run,
        host: config.host.clone().unwrap_or_else(snapdrill::hostname),
        planned_forget: Vec::new(),
        yes: false,
    }
}

fn print_forget(r: &ForgetReport, quiet: bool) {
    if !quiet {
        println!("policy: {}", r.policy);
        for s in &r.snapshots {
            println!(
                "  {} {}  {:<20} {:<10} {}",
                if s.keep { "keep  " } else { "forget" },
                s.id,
                s.time.get(..19).unwrap_or(&s.time),
                s.host,
                s.reasons.join(", ")
            );
        }
    }
    for e in &r.errors {
        eprintln!("snapdrill: {e}");
    }
    let gone = r.forgotten().count();
    println!(
        "forget {}: {} of {} snapshots {}{}",
        if r.dry_run { "dry run" } else { "done" },
        gone,
        r.snapshots.len(),
        if r.dry_run {
            "would be forgotten"
        } else {
            "forgotten"
        },
        if gone > 0 && !r.dry_run {
            "; run `snapdrill prune` to free their space"
        } else {
            ""
        }
    );
}

fn print_prune(r: &PruneReport) {
    for b in &r.broken_leases {
        eprintln!("snapdrill: warning: {}", snapdrill::text::escape(b));
    }
    for t in &r.refused_tombstones {
        eprintln!("snapdrill: warning: {}", snapdrill::text::escape(t));
    }
    for s in &r.stores {
        for w in &s.warnings {
            eprintln!("snapdrill: warning: store '{}': {w}", s.store);
        }
        let would = if r.dry_run { "would be " } else { "" };
        let mut line = format!(
            "  store {:<12} {} {would}freed ({} {would}deleted, {} {would}set aside",
            s.store,
            output::size(s.bytes_freed),
            snapdrill::report::count(s.deleted, "object"),
            snapdrill::report::count(s.set_aside, "chunk"),
        );
        if s.brought_back > 0 {
            line.push_str(&format!(
                ", {} brought back",
                snapdrill::report::count(s.brought_back, "fossil")
            ));
        }
        line.push(')');
        line.push_str(&format!(
            "; {} listed",
            snapdrill::report::count(s.chunks, "chunk")
        ));
        if s.kept_young > 0 {
            line.push_str(&format!(
                "; {} unreferenced but younger than the grace period",
                s.kept_young
            ));
        }
        if s.waiting > 0 {
            line.push_str(&format!(
                "; {} set aside wait for {} that started before (the next prune deletes them)",
                snapdrill::report::count(s.waiting, "fossil"),
                snapdrill::report::count(s.backups_running, "running backup"),
            ));
        }
        println!("{line}");
    }
    let freed: u64 = r.stores.iter().map(|s| s.bytes_freed).sum();
    println!(
        "prune {}: {} {}",
        if r.dry_run { "dry run" } else { "done" },
        output::size(freed),
        if r.dry_run { "would be freed" } else { "freed" }
    );
}
