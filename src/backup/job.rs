//! A backup as a command asks for it: what the config and the command line together say
//! to back up, the job's lock, opening the repository, the run, and the audit ledger —
//! everything between parsing the arguments and printing the report.

use std::path::{Path, PathBuf};

use super::{BackupOptions, BackupReport, Progress, StreamSource};
use crate::audit::ledger;
use crate::config::{Config, Health, Job, Require};
use crate::error::{Error, Result};
use crate::lock::LocalLock;
use crate::repository::{Opened, Purpose, Repository};

/// What the command line adds to the config's jobs.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Run only this job; with PATHs or a stream, the name an ad-hoc backup is recorded
    /// under.
    pub job: Option<String>,
    /// Paths of an ad-hoc backup (instead of the configured jobs).
    pub paths: Vec<PathBuf>,
    /// Standard input stored under this name.
    pub stdin_name: Option<String>,
    /// A command whose output is stored.
    pub command: Option<String>,
    /// Tags added to the config's.
    pub tags: Vec<String>,
    /// Excludes added to the config's.
    pub exclude: Vec<String>,
    /// The host name to record (default: the config's, else this machine's).
    pub host: Option<String>,
    /// Read every file even when the cache says it is unchanged.
    pub force_read: bool,
    /// Neither read nor write the local caches.
    pub no_cache: bool,
}

/// The job name of a backup given its sources on the command line without `--job`.
pub const ADHOC_JOB: &str = "adhoc";

/// One data set to back up: a configured job, or the command line's sources.
#[derive(Debug, Clone)]
pub struct JobRun {
    /// The job's name, recorded in the snapshot.
    pub name: String,
    paths: Vec<PathBuf>,
    stream: Option<StreamSource>,
    exclude: Vec<String>,
    tags: Vec<String>,
    require: Option<Require>,
    health: Health,
}

impl Request {
    fn stream(&self) -> Option<StreamSource> {
        match (&self.stdin_name, &self.command) {
            (name, Some(cmd)) => Some(StreamSource {
                name: name.clone().unwrap_or_else(|| "command-output".into()),
                command: Some(cmd.clone()),
            }),
            (Some(name), None) => Some(StreamSource {
                name: name.clone(),
                command: None,
            }),
            (None, None) => None,
        }
    }

    /// The jobs this request runs, in order: the command line's sources as one ad-hoc job
    /// (named by `--job`, else `adhoc`), else the job `--job` names, else every configured
    /// job.
    pub fn jobs(&self, config: &Config) -> Result<Vec<JobRun>> {
        let stream = self.stream();
        if !self.paths.is_empty() || stream.is_some() {
            let name = self.job.clone().unwrap_or_else(|| ADHOC_JOB.into());
            if !crate::format::is_job_name(&name) {
                return Err(Error::Usage(format!(
                    "--job '{}': a job name is 1 to 64 letters, digits, '-' or '_'",
                    name.escape_debug()
                )));
            }
            if config.jobs.iter().any(|j| j.name == name) {
                return Err(Error::Usage(format!(
                    "job '{name}' is configured with its own sources: run `snapdrill backup --job {name}` without PATHs or --stdin-name/--command, or record this backup under another --job name"
                )));
            }
            return Ok(vec![self.adhoc(config, name, stream)]);
        }
        let chosen: Vec<&Job> = match &self.job {
            Some(name) => match config.jobs.iter().find(|j| &j.name == name) {
                Some(j) => vec![j],
                None => return Err(Error::Usage(unknown_job(config, name))),
            },
            None => config.jobs.iter().collect(),
        };
        if chosen.is_empty() {
            return Err(Error::Usage("nothing to back up: add a [[job]] (or [backup] paths) to the config, give PATHs, or use --stdin-name / --command".into()));
        }
        Ok(chosen
            .into_iter()
            .map(|j| self.configured(config, j))
            .collect())
    }

    fn adhoc(&self, config: &Config, name: String, stream: Option<StreamSource>) -> JobRun {
        JobRun {
            name,
            paths: self.paths.clone(),
            stream,
            exclude: [&config.exclude[..], &self.exclude[..]].concat(),
            tags: [&config.tags[..], &self.tags[..]].concat(),
            require: None,
            health: Health::default(),
        }
    }

    fn configured(&self, config: &Config, job: &Job) -> JobRun {
        JobRun {
            name: job.name.clone(),
            paths: job.paths.clone(),
            stream: job.command.as_ref().map(|cmd| StreamSource {
                name: job
                    .stdin_name
                    .clone()
                    .unwrap_or_else(|| "command-output".into()),
                command: Some(cmd.clone()),
            }),
            exclude: [&config.exclude[..], &job.exclude[..], &self.exclude[..]].concat(),
            tags: [&config.tags[..], &job.tags[..], &self.tags[..]].concat(),
            require: job.require,
            health: job.health.clone(),
        }
    }

    /// The engine's options for `job`, from the config and this request.
    pub fn options(&self, config: &Config, job: &JobRun) -> BackupOptions {
        BackupOptions {
            job: job.name.clone(),
            paths: job.paths.clone(),
            stream: job.stream.clone(),
            exclude: job.exclude.clone(),
            tags: job.tags.clone(),
            host: self
                .host
                .clone()
                .or(config.host.clone())
                .unwrap_or_else(crate::hostname),
            compression: config.compression,
            force_read: self.force_read,
            cache_dir: (!self.no_cache).then(|| config.cache_dir.clone()),
            configured_stores: config.stores.iter().map(|s| s.name.clone()).collect(),
            require: job
                .require
                .unwrap_or(config.require)
                .count(config.stores.len()),
            writer_timeout: config.prune.writer_timeout,
            on_changed: config.on_changed,
            health: job.health.clone(),
            state_dir: Some(config.state_dir.clone()),
        }
    }
}

/// "no job NAME", with the names there are.
fn unknown_job(config: &Config, name: &str) -> String {
    let names: Vec<&str> = config.jobs.iter().map(|j| j.name.as_str()).collect();
    if names.is_empty() {
        format!("no job '{name}': the config has no [[job]]; add one, or give PATHs to back up")
    } else {
        format!(
            "no job '{name}' in the config; its jobs are: {}",
            names.join(", ")
        )
    }
}

/// Run the backup `request` asks for: the job's lock first (an overlapping run exits 11
/// before any store is touched), then the repository opened to back up, the engine, and the
/// snapshot recorded in the audit ledger. Warnings (unused stores, the ledger, the sites)
/// are in the report.
pub async fn run(
    config: &Config,
    request: &Request,
    job: &JobRun,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<BackupReport> {
    let opts = request.options(config, job);
    // Held until the run ends; the descriptor is close-on-exec, so a `--command` child
    // cannot keep it after snapdrill is gone.
    let _lock = LocalLock::acquire(
        &config.state_dir,
        &lock_name(&config.path, &opts.job, &opts.paths, opts.stream.as_ref()),
    )?;
    let Opened { repo, key } = Repository::open_for(config, Purpose::Backup).await?;
    let key = key.expect("opened to back up: the write key is loaded");
    crate::repository::keyring::check_recipients(config, &repo.config)?;
    let recipients = repo.object_recipients(&config.recipients)?;
    let repo = if request.no_cache {
        repo
    } else {
        repo.with_commit_cache(&config.cache_dir)
    };
    let mut report = super::run(&repo, &key, recipients, &opts, progress).await?;
    for s in &report.stores {
        tracing::info!(
            job = %opts.job,
            store = %s.name,
            committed = s.committed,
            objects = s.uploaded_objects,
            bytes = s.uploaded_bytes,
            error = s.error.as_deref().unwrap_or(""),
            "store result"
        );
    }
    report.warnings.extend(repo.notes.iter().cloned());
    let committed: Vec<&str> = report
        .stores
        .iter()
        .filter(|s| s.committed)
        .map(|s| s.name.as_str())
        .collect();
    let ledger = ledger::record_backup(&config.state_dir, &repo, &report.snapshot_id, &committed);
    if let Err(e) = ledger.await {
        report
            .warnings
            .push(format!("the audit ledger was not updated: {e}"));
    }
    report.warnings.extend(config.geo_warning());
    Ok(report)
}

/// What identifies a backup job for its lock: the config file, the job and what it backs up.
fn lock_name(
    config: &Path,
    name: &str,
    paths: &[PathBuf],
    stream: Option<&StreamSource>,
) -> String {
    let config = std::fs::canonicalize(config).unwrap_or_else(|_| config.to_owned());
    // `{:?}` quotes each part, so that different lists of paths never read the same.
    let mut job = format!("config {config:?} job {name:?}");
    for p in paths {
        let p = std::path::absolute(p).unwrap_or_else(|_| p.clone());
        job.push_str(&format!(" path {p:?}"));
    }
    if let Some(s) = stream {
        job.push_str(&format!(" stream {:?}", s.name));
        if let Some(cmd) = &s.command {
            job.push_str(&format!(" command {cmd:?}"));
        }
    }
    job
}
