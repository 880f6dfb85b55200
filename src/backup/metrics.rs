//! Backup metrics for node_exporter's textfile collector: each job's last run (time, exit
//! code, duration, bytes read, new and stored), its last success, and per store whether the
//! last run committed there and when one last did.
//!
//! A textfile is replaced whole on every run, but "last success" must outlive a failed
//! night and a `backup --job crm` must not drop the other jobs: so each run updates a small
//! history in `state_dir/metrics/backup.json`, and the textfile is written from all of it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::BackupReport;
use crate::error::{Error, Result, exit};
use crate::localfs::atomic::{self, NewMode};
use crate::metrics::{Sample, Textfile};

/// The file name a backup writes in `[metrics] textfile_dir`.
pub const TEXTFILE_NAME: &str = "snapdrill_backup.prom";

/// How one job's run ended.
#[derive(Debug, Clone, Copy)]
pub enum Run<'a> {
    /// It produced a report (exit 0, 3 or 1 by its stores).
    Report(&'a BackupReport),
    /// It stopped with an error before a report: its exit code and how long it took.
    Failed {
        /// The job.
        job: &'a str,
        /// The exit code the error maps to.
        exit_code: i32,
        /// Seconds until it stopped.
        duration_secs: f64,
    },
}

/// The remembered metrics of every job that ran on this host with this state folder.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    jobs: BTreeMap<String, JobMetrics>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct JobMetrics {
    last_run: f64,
    exit_code: i32,
    duration_secs: f64,
    bytes_read: u64,
    bytes_new: u64,
    bytes_stored: u64,
    snapshot_bytes: u64,
    files: u64,
    last_success: Option<f64>,
    stores: BTreeMap<String, StoreMetrics>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StoreMetrics {
    committed: bool,
    last_commit: Option<f64>,
}

fn history_path(state_dir: &Path) -> PathBuf {
    state_dir.join("metrics").join("backup.json")
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as f64)
        .unwrap_or(0.0)
}

impl History {
    /// Add `runs` to the history kept in `state_dir` (`stores`: the configured stores, for
    /// a run that failed before its report) and return it. A history file that cannot be
    /// read starts afresh; one that cannot be written is an error naming it.
    pub fn record(state_dir: &Path, stores: &[String], runs: &[Run]) -> Result<History> {
        let path = history_path(state_dir);
        let mut history: History = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let now = now();
        for run in runs {
            history.add(run, stores, now);
        }
        let bytes = serde_json::to_vec(&history)
            .map_err(|e| Error::io("writing", &path, std::io::Error::other(e)))?;
        atomic::write(&path, &bytes, NewMode::Private, false)
            .map_err(|e| Error::io("writing", &path, e))?;
        Ok(history)
    }

    fn add(&mut self, run: &Run, stores: &[String], now: f64) {
        let job = match run {
            Run::Report(r) => &r.job,
            Run::Failed { job, .. } => *job,
        };
        let m = self.jobs.entry(job.to_owned()).or_default();
        m.last_run = now;
        match run {
            Run::Report(r) => {
                m.exit_code = r.exit_code();
                m.duration_secs = r.duration_secs;
                m.bytes_read = r.bytes_read;
                m.bytes_new = r.data_added;
                m.bytes_stored = r.data_stored;
                m.snapshot_bytes = r.bytes;
                m.files = r.files;
                for s in &r.stores {
                    let sm = m.stores.entry(s.name.clone()).or_default();
                    sm.committed = s.committed;
                    if s.committed {
                        sm.last_commit = Some(now);
                    }
                }
            }
            Run::Failed {
                exit_code,
                duration_secs,
                ..
            } => {
                *m = JobMetrics {
                    last_run: now,
                    exit_code: *exit_code,
                    duration_secs: *duration_secs,
                    last_success: m.last_success,
                    stores: std::mem::take(&mut m.stores),
                    ..JobMetrics::default()
                };
                for s in stores {
                    m.stores.entry(s.clone()).or_default();
                }
                for sm in m.stores.values_mut() {
                    sm.committed = false;
                }
            }
        }
        // A snapshot committed to the stores `require` asks for is a success, partial or not.
        if matches!(m.exit_code, exit::OK | exit::PARTIAL) {
            m.last_success = Some(now);
        }
    }

    /// The Prometheus textfile of every job in the history.
    pub fn textfile(&self) -> String {
        let per_job = |f: fn(&JobMetrics) -> Option<f64>| -> Vec<Sample> {
            self.jobs
                .iter()
                .filter_map(|(j, m)| f(m).map(|v| (vec![("job", j.clone())], v)))
                .collect()
        };
        let per_store = |f: fn(&StoreMetrics) -> Option<f64>| -> Vec<Sample> {
            let mut out = Vec::new();
            for (j, m) in &self.jobs {
                for (s, sm) in &m.stores {
                    if let Some(v) = f(sm) {
                        out.push((vec![("job", j.clone()), ("store", s.clone())], v));
                    }
                }
            }
            out
        };
        let mut t = Textfile::new();
        for (name, help, f) in JOB_GAUGES {
            t.gauge(name, help, per_job(f));
        }
        t.gauge(
            "snapdrill_backup_store_committed",
            "1 if the job's last backup committed its snapshot to the store, else 0.",
            per_store(|s| Some(f64::from(u8::from(s.committed)))),
        );
        t.gauge(
            "snapdrill_backup_store_last_commit_timestamp_seconds",
            "Unix time a backup of the job last committed to the store.",
            per_store(|s| s.last_commit),
        );
        t.finish()
    }
}

type JobValue = fn(&JobMetrics) -> Option<f64>;

const JOB_GAUGES: [(&str, &str, JobValue); 9] = [
    (
        "snapdrill_backup_last_run_timestamp_seconds",
        "Unix time the job's last backup ended.",
        |m| Some(m.last_run),
    ),
    (
        "snapdrill_backup_last_success_timestamp_seconds",
        "Unix time the job's last backup that committed a snapshot (exit 0 or 3) ended.",
        |m| m.last_success,
    ),
    (
        "snapdrill_backup_exit_code",
        "Exit code of the job's last backup (0 complete, 3 partial, others failed).",
        |m| Some(f64::from(m.exit_code)),
    ),
    (
        "snapdrill_backup_duration_seconds",
        "Wall-clock time of the job's last backup.",
        |m| Some(m.duration_secs),
    ),
    (
        "snapdrill_backup_read_bytes",
        "Bytes the job's last backup read from its sources.",
        |m| Some(m.bytes_read as f64),
    ),
    (
        "snapdrill_backup_new_bytes",
        "Plaintext bytes of the chunks that were new in the job's last backup.",
        |m| Some(m.bytes_new as f64),
    ),
    (
        "snapdrill_backup_stored_bytes",
        "Bytes the new chunks of the job's last backup took after compression and encryption.",
        |m| Some(m.bytes_stored as f64),
    ),
    (
        "snapdrill_backup_snapshot_bytes",
        "Content bytes of the job's last snapshot.",
        |m| Some(m.snapshot_bytes as f64),
    ),
    (
        "snapdrill_backup_files",
        "Regular files in the job's last snapshot.",
        |m| Some(m.files as f64),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_keeps_the_last_success_and_clears_the_committed_flags() {
        let mut h = History::default();
        let stores = vec!["osaka".to_owned()];
        h.add(
            &Run::Failed {
                job: "crm",
                exit_code: 0,
                duration_secs: 1.0,
            },
            &stores,
            100.0,
        );
        h.jobs
            .get_mut("crm")
            .unwrap()
            .stores
            .get_mut("osaka")
            .unwrap()
            .committed = true;
        h.add(
            &Run::Failed {
                job: "crm",
                exit_code: 1,
                duration_secs: 2.0,
            },
            &stores,
            200.0,
        );
        let m = &h.jobs["crm"];
        assert_eq!(m.last_success, Some(100.0));
        assert_eq!(m.last_run, 200.0);
        assert!(!m.stores["osaka"].committed);
        let text = h.textfile();
        assert!(
            text.contains("snapdrill_backup_last_success_timestamp_seconds{job=\"crm\"} 100\n"),
            "{text}"
        );
        assert!(
            text.contains("snapdrill_backup_store_committed{job=\"crm\",store=\"osaka\"} 0\n"),
            "{text}"
        );
    }
}
