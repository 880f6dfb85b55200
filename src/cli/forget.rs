//! `snapdrill forget` (retention) and `snapdrill prune` (garbage collection).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use snapdrill::config::Config;
use snapdrill::keys::WriteKey;
use snapdrill::prune::forget::{self, ForgetOptions};
use snapdrill::prune::{self, PruneOptions, PruneReport, render};
use snapdrill::repository::Purpose;
use snapdrill::retention::Policy;

use snapdrill::error::exit;

use super::common::SelectArgs;
use super::{Global, common, output};

/// Arguments of `forget`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Forget these snapshots (ids, unique prefixes or `latest`) instead of applying a policy.
    #[arg(value_name = "SNAPSHOT")]
    ids: Vec<String>,
    #[command(flatten)]
    select: SelectArgs,
    /// Keep the newest N snapshots (per group: by default per data set).
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
    /// Group snapshots by any of host,job,paths,tags before applying the policy (default:
    /// host,job,paths, a data set; '' = one group).
    #[arg(long, value_name = "LIST", default_value = "host,job,paths")]
    group_by: snapdrill::prune::forget::GroupBy,
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
    /// The command line's policy for every snapshot, else the config's: `[forget]`, and
    /// each job's own `[job.forget]` for its snapshots.
    fn policies(&self, config: &Config) -> (Policy, BTreeMap<String, Policy>) {
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
        if !given.is_empty() {
            return (given, BTreeMap::new());
        }
        let jobs = config
            .jobs
            .iter()
            .filter_map(|j| Some((j.name.clone(), j.retention.clone()?)))
            .collect();
        (config.retention.clone(), jobs)
    }
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    // A dry run signs nothing: it works on a restore host too.
    let key = match args.dry_run {
        true => WriteKey::load(&config.write_key).ok(),
        false => Some(WriteKey::load(&config.write_key)?),
    };
    let repo = common::open(&config, Purpose::Retention, global)
        .await?
        .repo;
    let (policy, job_policies) = args.policies(&config);
    let opts = ForgetOptions {
        policy,
        job_policies,
        group_by: args.group_by,
        selection: args.select.selection(&config)?,
        ids: args.ids.clone(),
        dry_run: args.dry_run,
    };
    let then_prune = args.prune.then(|| PruneOptions {
        yes: args.yes,
        ..PruneOptions::from_config(&config, args.dry_run, None)
    });
    let (report, pruned) = forget::run_then_prune(&repo, key.as_ref(), &opts, then_prune).await?;
    if args.json {
        output::json(&serde_json::json!({ "forget": report, "prune": pruned }))?;
    }
    let code = report
        .exit_code()
        .max(pruned.as_ref().map_or(0, PruneReport::exit_code));
    if !args.json {
        // A dry run's list is what was asked for; a real run's account is quiet under -q.
        let quiet = global.quiet && !args.dry_run;
        output::warnings(render::forget_warnings(&report), global.quiet);
        let text = render::forget_text(&report, global.quiet, &config.timezone);
        output::result(&text, code, quiet);
        if let Some(p) = &pruned {
            output::warnings(render::prune_warnings(p), global.quiet);
            output::result(&render::prune_text(p), code, quiet);
        }
    }
    Ok(code)
}

pub(super) async fn prune(global: &Global, args: PruneArgs) -> Result<i32> {
    let config = common::load_config(global)?;
    let repo = common::open(&config, Purpose::Retention, global)
        .await?
        .repo;
    if args.break_lease {
        for line in prune::break_leases(&repo).await? {
            output::result(&format!("{line}\n"), exit::OK, global.quiet);
        }
        return Ok(exit::OK);
    }
    let mut opts = PruneOptions::from_config(&config, args.dry_run, args.grace);
    opts.yes = args.yes;
    opts.settings.allow_forget_newest |= args.allow_forget_newest;
    let report = prune::run(&repo, &opts).await?;
    if args.json {
        output::json(&report)?;
    } else {
        output::warnings(render::prune_warnings(&report), global.quiet);
        let quiet = global.quiet && !args.dry_run;
        output::result(&render::prune_text(&report), report.exit_code(), quiet);
    }
    Ok(report.exit_code())
}
