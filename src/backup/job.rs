//! A backup as a command asks for it: what the config and the command line together say
//! to back up, the job's lock, opening the repository, the run, and the audit ledger —
//! everything between parsing the arguments and printing the report.

use std::path::{Path, PathBuf};

use super::{BackupOptions, BackupReport, Progress, StreamSource};
use crate::audit::ledger;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::keys;
use crate::lock::LocalLock;
use crate::repository::{Opened, Purpose, Repository};

/// What the command line adds to the config's `[backup]`.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Paths (default: `[backup] paths`, unless a stream is given).
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

    /// The engine's options, from the config and this request.
    pub fn options(&self, config: &Config) -> Result<BackupOptions> {
        let stream = self.stream();
        let paths = if !self.paths.is_empty() || stream.is_some() {
            self.paths.clone()
        } else {
            config.paths.clone()
        };
        if paths.is_empty() && stream.is_none() {
            return Err(Error::Usage("nothing to back up: give PATHs, set [backup] paths in the config, or use --stdin-name / --command".into()));
        }
        let mut exclude = config.exclude.clone();
        exclude.extend(self.exclude.iter().cloned());
        let mut tags = config.tags.clone();
        tags.extend(self.tags.iter().cloned());
        Ok(BackupOptions {
            paths,
            stream,
            exclude,
            tags,
            host: self
                .host
                .clone()
                .or(config.host.clone())
                .unwrap_or_else(crate::hostname),
            compression: config.compression,
            force_read: self.force_read,
            cache_dir: (!self.no_cache).then(|| config.cache_dir.clone()),
            configured_stores: config.stores.iter().map(|s| s.name.clone()).collect(),
            require: config.require.count(config.stores.len()),
            writer_timeout: config.prune.writer_timeout,
            on_changed: config.on_changed,
        })
    }
}

/// Run the backup `request` asks for: the job's lock first (an overlapping run exits 11
/// before any store is touched), then the repository opened to back up, the engine, and the
/// snapshot recorded in the audit ledger. Warnings (unused stores, the ledger, the sites)
/// are in the report.
pub async fn run(
    config: &Config,
    request: &Request,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<BackupReport> {
    let recipients = keys::parse_recipients(&config.recipients)?;
    let opts = request.options(config)?;
    // Held until the run ends; the descriptor is close-on-exec, so a `--command` child
    // cannot keep it after snapdrill is gone.
    let _lock = LocalLock::acquire(
        &config.state_dir,
        &job_name(&config.path, &opts.paths, opts.stream.as_ref()),
    )?;
    let Opened { repo, key } = Repository::open_for(config, Purpose::Backup).await?;
    let key = key.expect("opened to back up: the write key is loaded");
    let repo = if request.no_cache {
        repo
    } else {
        repo.with_commit_cache(&config.cache_dir)
    };
    let mut report = super::run(&repo, &key, recipients, &opts, progress).await?;
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

/// What identifies a backup job for its lock: the config file and what it backs up.
fn job_name(config: &Path, paths: &[PathBuf], stream: Option<&StreamSource>) -> String {
    let config = std::fs::canonicalize(config).unwrap_or_else(|_| config.to_owned());
    // `{:?}` quotes each part, so that different lists of paths never read the same.
    let mut job = format!("config {config:?}");
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
