//! `snapdrill.toml`: finding, parsing and checking the configuration.
//!
//! Relative paths in the file (identity, write key, cache, store paths, backup paths) are
//! resolved against the folder that holds the file, so a config works the same from cron
//! and from a shell.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub mod hooks;
pub mod job;
pub mod places;
pub mod report;

pub use hooks::{HookSettings, Hooks};
pub use job::{Health, Job};
pub use places::{DEFAULT_FILE, ENV_VAR, Places};

use crate::error::{Error, Result};
use crate::store::location::{self, Location};
use crate::store::retry::Tuning;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    repository: RawRepository,
    #[serde(rename = "store", default)]
    stores: Vec<RawStore>,
    #[serde(default)]
    backup: RawBackup,
    #[serde(rename = "job", default)]
    jobs: Vec<job::RawJob>,
    #[serde(default)]
    drill: RawDrill,
    #[serde(default)]
    forget: RawForget,
    #[serde(default)]
    prune: RawPrune,
    #[serde(default)]
    report: report::RawReport,
    hooks: Option<hooks::RawHooks>,
    #[serde(default)]
    audit: hooks::RawAudit,
    #[serde(default)]
    metrics: hooks::RawMetrics,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawForget {
    keep_last: Option<usize>,
    keep_hourly: Option<usize>,
    keep_daily: Option<usize>,
    keep_weekly: Option<usize>,
    keep_monthly: Option<usize>,
    keep_yearly: Option<usize>,
    keep_within: Option<String>,
    #[serde(default)]
    keep_tag: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrune {
    grace: Option<String>,
    lease_ttl: Option<String>,
    max_lease_ttl: Option<String>,
    allow_forget_newest: Option<bool>,
    max_delete: Option<String>,
    writer_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepository {
    #[serde(default)]
    recipients: Vec<String>,
    identity: Option<PathBuf>,
    signer: Option<String>,
    write_key: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    timezone: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    name: String,
    url: String,
    site: Option<String>,
    #[serde(default)]
    options: BTreeMap<String, toml::Value>,
    timeout: Option<String>,
    retries: Option<u32>,
    deadline: Option<String>,
    concurrency: Option<usize>,
    limit_upload: Option<String>,
    limit_download: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackup {
    #[serde(default)]
    paths: Vec<PathBuf>,
    #[serde(default)]
    exclude: Vec<String>,
    require: Option<toml::Value>,
    compression: Option<i32>,
    #[serde(default)]
    tags: Vec<String>,
    host: Option<String>,
    changed_while_read: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDrill {
    rto: Option<String>,
    rpo: Option<String>,
    every: Option<String>,
    hooks: Option<hooks::RawHooks>,
}

/// One configured store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Name used in every message and report.
    pub name: String,
    /// The URL as written (never printed: it may carry credentials later).
    pub url: String,
    /// Where the store lives.
    pub location: Location,
    /// Site label for geographic spread.
    pub site: Option<String>,
    /// Backend options (endpoint, region, ...), as strings.
    pub options: BTreeMap<String, String>,
    /// Timeouts, retries, deadline, concurrency.
    pub tuning: Tuning,
}

/// How many stores must commit for a backup to succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Require {
    /// Every configured store.
    All,
    /// At least this many.
    AtLeast(usize),
}

impl Require {
    /// The number of stores required out of `total`.
    pub fn count(self, total: usize) -> usize {
        match self {
            Require::All => total,
            Require::AtLeast(n) => n.min(total),
        }
    }
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// Public age recipients.
    pub recipients: Vec<String>,
    /// The identity file (restore side), if configured.
    pub identity: Option<PathBuf>,
    /// The pinned public signing key, if set (written by `init`).
    pub signer: Option<String>,
    /// The write key file (backup side).
    pub write_key: PathBuf,
    /// Local cache folder (never needed for restores or drills).
    pub cache_dir: PathBuf,
    /// Local state folder: the cron lock and the audit ledger (never needed for restores).
    pub state_dir: PathBuf,
    /// The stores, in preference order.
    pub stores: Vec<StoreConfig>,
    /// The data sets this host backs up, in the order `snapdrill backup` runs them
    /// (`[backup] paths` is the job `default`).
    pub jobs: Vec<Job>,
    /// The IANA time zone for display and date specs (`[repository] timezone`, default
    /// UTC); records keep UTC.
    pub timezone: crate::select::Zone,
    /// Exclude globs of every job.
    pub exclude: Vec<String>,
    /// Stores that must commit.
    pub require: Require,
    /// zstd level.
    pub compression: i32,
    /// Tags added to every backup.
    pub tags: Vec<String>,
    /// Host name recorded in snapshots (default: this machine's).
    pub host: Option<String>,
    /// What a file that keeps changing while it is read does to a backup.
    pub on_changed: OnChanged,
    /// Drill recovery-time target.
    pub rto: Option<Duration>,
    /// Drill recovery-point target.
    pub rpo: Option<Duration>,
    /// How often each data set and store needs a full drill (`[drill] every`): reports
    /// mark an older one overdue.
    pub drill_every: Option<Duration>,
    /// `[report]`: the reports' language and time zone.
    pub report: report::ReportSettings,
    /// The retention policy `forget` applies when given no `--keep-*` option.
    pub retention: crate::retention::Policy,
    /// Prune's safety margins.
    pub prune: PruneSettings,
    /// Hooks and notify URLs of backups, drills and audits (a job's own are in its [`Job`]).
    pub hooks: HookSettings,
    /// `[metrics] textfile_dir`: where backups, drills and audits write their Prometheus
    /// textfiles when no `--metrics-file` is given.
    pub metrics_dir: Option<PathBuf>,
}

/// Prune's safety margins, all measured by the stores' own clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneSettings {
    /// Unreferenced objects younger than this are never removed.
    pub grace: Duration,
    /// A prune lease older than this is stale and may be broken.
    pub lease_ttl: Duration,
    /// The longest TTL a lease found in a store is honoured for, whatever it claims (anyone
    /// who can create objects can plant a lease claiming forever).
    pub max_lease_ttl: Duration,
    /// Honour a tombstone of the newest snapshot of a data set (a backup host, which holds
    /// the write key, can sign one for anything; only the prune host's config says yes).
    pub allow_forget_newest: bool,
    /// A prune that would collect more than this share of the snapshots (percent) stops
    /// and asks for `--yes`.
    pub max_delete_percent: u32,
    /// A backup marker older than this belongs to a dead backup; backups give up before it.
    pub writer_timeout: Duration,
}

impl Default for PruneSettings {
    fn default() -> Self {
        PruneSettings {
            grace: Duration::from_secs(24 * 3600),
            lease_ttl: Duration::from_secs(6 * 3600),
            max_lease_ttl: Duration::from_secs(24 * 3600),
            allow_forget_newest: false,
            max_delete_percent: 50,
            writer_timeout: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl Config {
    /// What `config check` reports: every key checked that can be checked on this host
    /// (recipients parse, the identity opens when it is here), and where everything is —
    /// never a credential.
    pub fn check(&self) -> Result<String> {
        use std::fmt::Write as _;
        crate::keys::parse_recipients(&self.recipients)?;
        let mut out = String::new();
        let _ = writeln!(out, "config     {}", self.path.display());
        let _ = writeln!(out, "recipients {}", self.recipients.len());
        let _ = match &self.identity {
            Some(p)
                if p.exists() && std::fs::read(p).is_ok_and(|b| crate::keys::is_protected(&b)) =>
            {
                crate::keys::check_private(p, "identity")?;
                writeln!(
                    out,
                    "identity   {} (passphrase-protected: not opened here)",
                    p.display()
                )
            }
            Some(p) if p.exists() => {
                crate::keys::Identities::load(p)?;
                writeln!(out, "identity   {} (ok)", p.display())
            }
            Some(p) => writeln!(
                out,
                "identity   {} (not on this host: fine for a backup host)",
                p.display()
            ),
            None => writeln!(out, "identity   not configured (fine for a backup host)"),
        };
        let signer = self.signer.as_deref();
        let _ = writeln!(
            out,
            "signer     {}",
            signer.unwrap_or("not pinned yet (run `snapdrill init`)")
        );
        let key = if self.write_key.exists() {
            "present"
        } else {
            "absent: fine for a restore host"
        };
        let _ = writeln!(out, "write key  {} ({key})", self.write_key.display());
        for s in &self.stores {
            let _ = writeln!(
                out,
                "store      {:<12} site {:<10} {:?}",
                s.name,
                s.site.as_deref().unwrap_or("-"),
                s.location.describe()
            );
        }
        for j in &self.jobs {
            let what = match (&j.command, &j.stdin_name) {
                (Some(_), Some(name)) => format!("command output as {name}"),
                _ => format!("{} path(s)", j.paths.len()),
            };
            let _ = writeln!(out, "job        {:<12} {what}", j.name);
        }
        let _ = writeln!(out, "timezone   {}", self.timezone.name());
        let _ = writeln!(out, "state      {}", self.state_dir.display());
        let _ = writeln!(out, "cache      {}", self.cache_dir.display());
        Ok(out)
    }

    /// `--limit-upload` / `--limit-download`: these rates (bytes per second) for every
    /// store, in place of their own.
    pub fn limit_bandwidth(&mut self, upload: Option<u64>, download: Option<u64>) {
        for s in &mut self.stores {
            s.tuning.limit_upload = upload.or(s.tuning.limit_upload);
            s.tuning.limit_download = download.or(s.tuning.limit_download);
        }
    }

    /// A warning when every store shares one site: one disaster could take every copy.
    pub fn geo_warning(&self) -> Option<String> {
        let sites: std::collections::HashSet<Option<&str>> =
            self.stores.iter().map(|s| s.site.as_deref()).collect();
        match (self.stores.len(), sites.len()) {
            (1, _) => Some("only one store is configured: one disaster could take every copy".into()),
            (_, 1) => Some(match self.stores[0].site.as_deref() {
                Some(site) => format!("every store is at site '{site}': one disaster could take every copy"),
                None => "no store has a site label: set `site` so snapdrill can check the copies are far apart".into(),
            }),
            _ => None,
        }
    }

    /// Find the config: `explicit`, else `$SNAPDRILL_CONFIG`, else the first file that
    /// exists of `./snapdrill.toml`, the user's config folder and `/etc/snapdrill` (see
    /// [`places`]).
    pub fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
        Places::from_process().locate(explicit, Path::exists)
    }

    /// Read and check a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(|e| Error::Config {
            path: path.to_owned(),
            message: format!("cannot read it: {e}"),
        })?;
        Self::parse(&text, path)
    }

    /// Parse and check config text that came from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let bad = |message: String| Error::Config {
            path: path.to_owned(),
            message,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| bad(toml_message(text, &e)))?;
        let base = config_base(path);
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let stores = check_stores(raw.stores, &base).map_err(bad)?;
        let require = parse_require(raw.backup.require.as_ref(), stores.len()).map_err(bad)?;
        let compression = raw.backup.compression.unwrap_or(3);
        if !(1..=22).contains(&compression) {
            return Err(bad(format!(
                "[backup] compression = {compression}: zstd levels are 1 to 22"
            )));
        }
        let on_changed = parse_on_changed(raw.backup.changed_while_read.as_deref()).map_err(bad)?;
        if let Some(s) = &raw.repository.signer {
            crate::keys::parse_signer(s).map_err(|e| bad(format!("[repository] {e}")))?;
        }
        let prune = prune_settings(raw.prune).map_err(bad)?;
        let hooks = HookSettings {
            backup: hooks::check_hooks("[hooks]", raw.hooks).map_err(bad)?,
            drill: hooks::check_hooks("[drill.hooks]", raw.drill.hooks).map_err(bad)?,
            audit: hooks::check_hooks("[audit.hooks]", raw.audit.hooks()).map_err(bad)?,
        };
        let metrics_dir = raw.metrics.textfile_dir(&resolve);
        let retention = retention_policy(raw.forget).map_err(bad)?;
        let jobs = all_jobs(raw.backup.paths, raw.jobs, &resolve, stores.len()).map_err(bad)?;
        let repository = raw.repository;
        let places = Places::from_process();
        let cache_dir = match repository.cache_dir.clone() {
            Some(dir) => resolve(dir),
            None => places.cache_dir().map_err(bad)?,
        };
        let state_dir = match repository.state_dir.clone() {
            Some(dir) => resolve(dir),
            None => places.state_dir().map_err(bad)?,
        };
        let timezone = match &repository.timezone {
            Some(name) => crate::select::Zone::named(name)
                .map_err(|e| bad(format!("[repository] timezone: {e}")))?,
            None => crate::select::Zone::utc(),
        };
        Ok(Config {
            path: path.to_owned(),
            recipients: repository.recipients,
            identity: repository.identity.map(resolve),
            signer: repository.signer,
            write_key: resolve(
                repository
                    .write_key
                    .unwrap_or_else(|| PathBuf::from("snapdrill-write.key")),
            ),
            cache_dir,
            stores,
            jobs,
            timezone,
            exclude: raw.backup.exclude,
            require,
            compression,
            tags: raw.backup.tags,
            host: raw.backup.host,
            on_changed,
            state_dir,
            rto: duration("[drill] rto", raw.drill.rto).map_err(bad)?,
            rpo: duration("[drill] rpo", raw.drill.rpo).map_err(bad)?,
            drill_every: duration("[drill] every", raw.drill.every).map_err(bad)?,
            report: raw.report.check().map_err(bad)?,
            retention,
            prune,
            hooks,
            metrics_dir,
        })
    }
}

/// The `[backup] paths` job (`default`), then the `[[job]]`s.
fn all_jobs(
    paths: Vec<PathBuf>,
    raw: Vec<job::RawJob>,
    resolve: &impl Fn(PathBuf) -> PathBuf,
    stores: usize,
) -> std::result::Result<Vec<Job>, String> {
    let mut jobs = Vec::new();
    if !paths.is_empty() {
        jobs.push(Job::default_job(paths.into_iter().map(resolve).collect()));
    }
    for j in job::check_jobs(raw, resolve, stores)? {
        if j.name == job::DEFAULT_JOB && !jobs.is_empty() {
            return Err("[backup] paths is the job 'default', and a [[job]] is named 'default' too: move the paths into that job".into());
        }
        jobs.push(j);
    }
    Ok(jobs)
}

/// What a file that keeps changing while it is read does to a backup (`[backup]
/// changed_while_read`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnChanged {
    /// Store what was read, flagged in the manifest; the backup is partial (exit 3).
    #[default]
    Partial,
    /// No snapshot: the job fails (exit 1).
    Fail,
}

/// The folder relative paths in a config are resolved against: the config's own.
fn config_base(path: &Path) -> PathBuf {
    let base = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::canonicalize(base).unwrap_or_else(|_| base.to_owned())
}

/// `"30m"`, `"26h"`, `"7days"`; `what` names the setting in the error.
pub(crate) fn duration(
    what: &str,
    v: Option<String>,
) -> std::result::Result<Option<Duration>, String> {
    v.map(|s| {
        humantime::parse_duration(&s)
            .map_err(|e| format!("{what} = \"{s}\": {e} (write e.g. \"30m\", \"26h\")"))
    })
    .transpose()
}

fn parse_on_changed(v: Option<&str>) -> std::result::Result<OnChanged, String> {
    match v {
        None | Some("partial") => Ok(OnChanged::Partial),
        Some("fail") => Ok(OnChanged::Fail),
        Some(other) => Err(format!(
            "[backup] changed_while_read = \"{other}\": write \"partial\" (store it flagged, exit 3) or \"fail\" (no snapshot, exit 1)"
        )),
    }
}

/// `[prune]`, defaults filled in; a lease longer than the longest any host accepts is an
/// error here rather than a lease other hosts would break.
fn prune_settings(raw: RawPrune) -> std::result::Result<PruneSettings, String> {
    let defaults = PruneSettings::default();
    let prune = PruneSettings {
        grace: duration("[prune] grace", raw.grace)?.unwrap_or(defaults.grace),
        lease_ttl: duration("[prune] lease_ttl", raw.lease_ttl)?.unwrap_or(defaults.lease_ttl),
        max_lease_ttl: duration("[prune] max_lease_ttl", raw.max_lease_ttl)?
            .unwrap_or(defaults.max_lease_ttl),
        allow_forget_newest: raw
            .allow_forget_newest
            .unwrap_or(defaults.allow_forget_newest),
        max_delete_percent: match raw.max_delete.as_deref() {
            None => defaults.max_delete_percent,
            Some(p) => parse_percent(p).ok_or_else(|| {
                format!(
                    "[prune] max_delete = \"{p}\": write a share of the snapshots, e.g. \"50%\""
                )
            })?,
        },
        writer_timeout: duration("[prune] writer_timeout", raw.writer_timeout)?
            .unwrap_or(defaults.writer_timeout),
    };
    if prune.lease_ttl > prune.max_lease_ttl {
        return Err(format!(
            "[prune] lease_ttl ({}) is longer than max_lease_ttl ({}): raise max_lease_ttl on every prune host first",
            humantime::format_duration(prune.lease_ttl),
            humantime::format_duration(prune.max_lease_ttl)
        ));
    }
    Ok(prune)
}

pub(crate) fn retention_policy(
    f: RawForget,
) -> std::result::Result<crate::retention::Policy, String> {
    Ok(crate::retention::Policy {
        keep_last: f.keep_last,
        keep_hourly: f.keep_hourly,
        keep_daily: f.keep_daily,
        keep_weekly: f.keep_weekly,
        keep_monthly: f.keep_monthly,
        keep_yearly: f.keep_yearly,
        keep_within: duration("[forget] keep_within", f.keep_within)?,
        keep_tags: f.keep_tag,
    })
}

/// A TOML error as `line L, column C: message`, the position an editor jumps to.
fn toml_message(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before
                .rsplit('\n')
                .next()
                .unwrap_or_default()
                .chars()
                .count()
                + 1;
            format!("line {line}, column {column}: {}", e.message())
        }
        None => e.message().to_owned(),
    }
}

/// `"50%"` -> 50; 0 to 100.
pub(crate) fn parse_percent(s: &str) -> Option<u32> {
    s.trim()
        .strip_suffix('%')?
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|p| *p <= 100)
}

fn check_stores(raw: Vec<RawStore>, base: &Path) -> Result<Vec<StoreConfig>, String> {
    if raw.is_empty() {
        return Err("no [[store]] is configured; add at least one".into());
    }
    let mut seen = std::collections::HashSet::new();
    let stores = raw
        .into_iter()
        .map(|s| {
            let valid_name = !s.name.is_empty()
                && s.name.len() <= 64
                && s.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid_name {
                return Err(format!(
                    "store name '{}' must be 1-64 letters, digits, '-' or '_'",
                    s.name
                ));
            }
            if !seen.insert(s.name.clone()) {
                return Err(format!("two stores are named '{}'", s.name));
            }
            let location = location::parse_location(&s.url, base)
                .map_err(|e| format!("store '{}': {e}", s.name))?;
            let tuning = store_tuning(&s)?;
            let options = s
                .options
                .into_iter()
                .map(|(k, v)| match v {
                    toml::Value::String(s) => (k, s),
                    other => (k, other.to_string()),
                })
                .collect();
            Ok(StoreConfig {
                name: s.name,
                url: s.url,
                location,
                site: s.site,
                options,
                tuning,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    refuse_same_place(&stores)?;
    Ok(stores)
}

/// Two entries for one place would count as two replicas (defeating `require`), and a
/// store inside another would see the other's objects as its own debris: refuse both.
fn refuse_same_place(stores: &[StoreConfig]) -> Result<(), String> {
    let places: Vec<_> = stores
        .iter()
        .map(|s| s.location.place(&s.options))
        .collect();
    for (i, a) in places.iter().enumerate() {
        for (j, b) in places.iter().enumerate().skip(i + 1) {
            if a.overlaps(b) {
                let how = if a == b {
                    "are the same place"
                } else {
                    "overlap (one lies inside the other)"
                };
                return Err(format!(
                    "stores '{}' and '{}' {how} ({} and {}): one place is one replica, and counting it twice would defeat `require`; remove one of them or point it elsewhere",
                    stores[i].name,
                    stores[j].name,
                    a.describe(),
                    b.describe()
                ));
            }
        }
    }
    Ok(())
}

fn store_tuning(s: &RawStore) -> Result<Tuning, String> {
    let duration = |what: &str, v: &Option<String>| -> Result<Option<Duration>, String> {
        v.as_ref()
            .map(|t| {
                humantime::parse_duration(t).map_err(|e| {
                    format!(
                        "store '{}': {what} = \"{t}\": {e} (write e.g. \"30s\", \"2h\")",
                        s.name
                    )
                })
            })
            .transpose()
    };
    let default = Tuning::default();
    let concurrency = s.concurrency.unwrap_or(default.concurrency);
    if concurrency == 0 || concurrency > 256 {
        return Err(format!("store '{}': concurrency must be 1 to 256", s.name));
    }
    Ok(Tuning {
        timeout: duration("timeout", &s.timeout)?.unwrap_or(default.timeout),
        retries: s.retries.unwrap_or(default.retries),
        deadline: duration("deadline", &s.deadline)?,
        concurrency,
        limit_upload: rate(&s.name, "limit_upload", &s.limit_upload)?,
        limit_download: rate(&s.name, "limit_download", &s.limit_download)?,
    })
}

/// `limit_upload = "20MiB"`: bytes per second.
fn rate(store: &str, what: &str, v: &Option<String>) -> Result<Option<u64>, String> {
    v.as_deref()
        .map(|t| {
            crate::units::parse_size(t).map_err(|e| {
                format!("store '{store}': {what}: {e} (bytes per second, e.g. \"20MiB\")")
            })
        })
        .transpose()
}

pub(crate) fn parse_require(v: Option<&toml::Value>, stores: usize) -> Result<Require, String> {
    match v {
        None => Ok(Require::All),
        Some(toml::Value::String(s)) if s == "all" => Ok(Require::All),
        Some(toml::Value::Integer(n)) if *n >= 1 && (*n as usize) <= stores => {
            Ok(Require::AtLeast(*n as usize))
        }
        Some(other) => Err(format!(
            "[backup] require = {other}: write \"all\" or a number from 1 to {stores} (the number of stores)"
        )),
    }
}

/// Pin the repository's public signing key in the config file, right under `[repository]`,
/// keeping everything else (comments included) as written. Returns false if the file has no
/// `[repository]` line to anchor on.
pub fn pin_signer(path: &Path, signer: &str) -> Result<bool> {
    let text = fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    let mut out = String::with_capacity(text.len() + 80);
    let mut done = false;
    for line in text.split_inclusive('\n') {
        out.push_str(line);
        if !done && line.trim() == "[repository]" {
            if !line.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!(
                "signer = \"{signer}\"   # pinned by `snapdrill init`: restores trust only this key\n"
            ));
            done = true;
        }
    }
    if done {
        replace_config_file(path, &out)?;
    }
    Ok(done)
}

/// Replace the config file's text. It may hold store options an operator keeps private
/// (0600): the new file keeps the old one's mode and owner, and its temp file is created
/// exclusively.
fn replace_config_file(path: &Path, text: &str) -> Result<()> {
    crate::localfs::atomic::write(
        path,
        text.as_bytes(),
        crate::localfs::atomic::NewMode::Private,
        true,
    )
    .map_err(|e| Error::io("replacing", path, e))
}

/// Replace the pinned `signer` under `[repository]` in the config file (a write-key
/// rotation); when there is none, pin it as `init` does.
pub fn set_signer(path: &Path, signer: &str) -> Result<bool> {
    let quoted = toml::Value::String(signer.to_owned()).to_string();
    match replace_repository_value(path, "signer", &quoted)? {
        true => Ok(true),
        false => pin_signer(path, signer),
    }
}

/// Replace the `recipients` list under `[repository]` in the config file at `path` by
/// `recipients` (what `snapdrill keys add/remove` changed), keeping every other byte of the
/// file. False when the file has no such list to replace (the operator edits it).
pub fn set_recipients(path: &Path, recipients: &[String]) -> Result<bool> {
    let quoted: Vec<String> = recipients
        .iter()
        .map(|r| toml::Value::String(r.clone()).to_string())
        .collect();
    let value = match quoted.as_slice() {
        [one] => format!("[{one}]"),
        many => format!("[\n    {},\n]", many.join(",\n    ")),
    };
    replace_repository_value(path, "recipients", &value)
}

/// Replace the value of `key` under `[repository]` by `value` (TOML text), keeping every
/// other byte of the file (its comments, its order); false when there is no such key.
fn replace_repository_value(path: &Path, key: &str, value: &str) -> Result<bool> {
    #[derive(serde::Deserialize)]
    struct File {
        repository: Option<std::collections::BTreeMap<String, toml::Spanned<toml::Value>>>,
    }
    let text = fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    let span = match toml::from_str::<File>(&text) {
        Ok(File {
            repository: Some(table),
        }) => table.get(key).map(toml::Spanned::span),
        _ => None,
    };
    let Some(span) = span else {
        return Ok(false);
    };
    let out = format!("{}{value}{}", &text[..span.start], &text[span.end..]);
    replace_config_file(path, &out)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_recipients_replaces_only_the_list() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let before =
            "# top\n[repository]\nrecipients = [\n  \"age1a\", # old\n]\nidentity = \"x\"\n";
        fs::write(&path, before).unwrap();
        assert!(set_recipients(&path, &["age1a".into(), "ssh-ed25519 AAAA".into()]).unwrap());
        let after = fs::read_to_string(&path).unwrap();
        assert_eq!(
            after,
            "# top\n[repository]\nrecipients = [\n    \"age1a\",\n    \"ssh-ed25519 AAAA\",\n]\nidentity = \"x\"\n"
        );
        fs::write(&path, "[repository]\nidentity = \"x\"\n").unwrap();
        assert!(!set_recipients(&path, &["age1a".into()]).unwrap());
    }

    const DESIGN_SHAPE: &str = r#"
[repository]
recipients = ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]
identity = "/etc/snapdrill/identity.txt"

[[store]]
name = "tokyo"
url = "file:///srv/snapdrill"
site = "tokyo"

[[store]]
name = "osaka"
url = "s3://bcp-osaka/snapdrill"
site = "osaka"
options = { endpoint = "http://127.0.0.1:9000", region = "us-east-1", allow_http = "true" }

[backup]
paths = ["/var/exports"]
exclude = ["*.tmp"]
require = 1

[drill]
rto = "30m"
rpo = "26h"
"#;

    #[test]
    fn the_design_shape_parses() {
        let c = Config::parse(DESIGN_SHAPE, Path::new("/etc/snapdrill/snapdrill.toml")).unwrap();
        assert_eq!(c.stores.len(), 2);
        assert_eq!(c.stores[1].options["allow_http"], "true");
        assert_eq!(c.require, Require::AtLeast(1));
        assert_eq!(c.rpo, Some(Duration::from_secs(26 * 3600)));
        assert_eq!(
            c.identity.as_deref(),
            Some(Path::new("/etc/snapdrill/identity.txt"))
        );
    }

    #[test]
    fn mistakes_are_named() {
        let typo = DESIGN_SHAPE.replace("exclude =", "exclued =");
        let err = Config::parse(&typo, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("exclued"), "{err}");
        let dup = DESIGN_SHAPE.replace("\"osaka\"\nurl", "\"tokyo\"\nurl");
        let err = Config::parse(&dup, Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("two stores are named 'tokyo'"), "{err}");
        let req = DESIGN_SHAPE.replace("require = 1", "require = 3");
        assert!(Config::parse(&req, Path::new("x.toml")).is_err());
        let rto = DESIGN_SHAPE.replace("\"30m\"", "\"thirty minutes\"");
        assert!(
            Config::parse(&rto, Path::new("x.toml"))
                .unwrap_err()
                .to_string()
                .contains("rto")
        );
    }

    #[test]
    fn pinning_keeps_the_rest_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("snapdrill.toml");
        fs::write(&p, DESIGN_SHAPE).unwrap();
        let key = crate::keys::WriteKey::generate();
        let signer = crate::keys::signer_to_string(&key.signer());
        assert!(pin_signer(&p, &signer).unwrap());
        let c = Config::load(&p).unwrap();
        assert_eq!(c.signer.as_deref(), Some(signer.as_str()));
        assert!(
            fs::read_to_string(&p)
                .unwrap()
                .contains("exclude = [\"*.tmp\"]")
        );
    }
}
