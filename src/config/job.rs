//! `[[job]]`: the data sets a host backs up. Each job is one data set — what it saves, its
//! own tags, retention and drill targets — and `snapdrill backup` with no argument runs
//! them all. The older single `[backup] paths` form is the job `default`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{RawForget, Require, duration, parse_percent, parse_require, retention_policy};
use crate::retention::Policy;

/// The job name of the `[backup] paths` form.
pub const DEFAULT_JOB: &str = "default";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJob {
    name: String,
    #[serde(default)]
    paths: Vec<PathBuf>,
    #[serde(default)]
    exclude: Vec<String>,
    command: Option<String>,
    stdin_name: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    require: Option<toml::Value>,
    forget: Option<RawForget>,
    rto: Option<String>,
    rpo: Option<String>,
    check: Option<String>,
    complete_marker: Option<String>,
    #[serde(default)]
    expect: Vec<String>,
    shrink_alert: Option<String>,
    hooks: Option<super::hooks::RawHooks>,
}

/// One configured data set.
#[derive(Debug, Clone, Default)]
pub struct Job {
    /// `[A-Za-z0-9_-]`, unique in the config; recorded in every snapshot.
    pub name: String,
    /// Paths it saves (resolved against the config's folder).
    pub paths: Vec<PathBuf>,
    /// Its excludes, added to `[backup] exclude`.
    pub exclude: Vec<String>,
    /// A command whose standard output it saves, as the file `stdin_name`.
    pub command: Option<String>,
    /// The file name a command's output is stored under.
    pub stdin_name: Option<String>,
    /// Its tags, added to `[backup] tags`.
    pub tags: Vec<String>,
    /// Stores that must commit (default: `[backup] require`).
    pub require: Option<Require>,
    /// Its retention (default: `[forget]`).
    pub retention: Option<Policy>,
    /// Its drill's recovery-time target (default: `[drill] rto`).
    pub rto: Option<Duration>,
    /// Its drill's recovery-point target (default: `[drill] rpo`).
    pub rpo: Option<Duration>,
    /// A command a drill runs in the restored tree (its folder is the working directory);
    /// a non-zero exit fails the drill.
    pub check: Option<String>,
    /// Checks of the data before it is saved.
    pub health: Health,
    /// Its own hooks and notify URLs, run besides `[hooks]`.
    pub hooks: super::Hooks,
}

/// What a job checks of its data at backup time (docs/operations.md, "data-set health").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// A file the export tool writes last: without it, the export is unfinished and the job
    /// fails with no snapshot.
    pub complete_marker: Option<String>,
    /// Files that must be there (relative to a source path); a missing one fails the job.
    pub expect: Vec<String>,
    /// A file (or the whole set) shrinking by more than this percentage against the data
    /// set's previous backup is reported (exit 3); the snapshot is still taken.
    pub shrink_alert: Option<u32>,
}

impl Job {
    /// The `[backup] paths` form as a job.
    pub(super) fn default_job(paths: Vec<PathBuf>) -> Job {
        Job {
            name: DEFAULT_JOB.into(),
            paths,
            ..Job::default()
        }
    }
}

/// Check the `[[job]]` tables; `resolve` makes their paths absolute, `stores` bounds
/// `require`. Every error names the job.
pub(super) fn check_jobs(
    raw: Vec<RawJob>,
    resolve: &impl Fn(PathBuf) -> PathBuf,
    stores: usize,
) -> Result<Vec<Job>, String> {
    let mut jobs: Vec<Job> = Vec::new();
    for r in raw {
        let name = r.name.clone();
        if !crate::format::is_job_name(&name) {
            return Err(format!(
                "[[job]] name = \"{}\": a job name is 1 to 64 letters, digits, '-' or '_'",
                name.escape_debug()
            ));
        }
        if jobs.iter().any(|j| j.name == name) {
            return Err(format!("two jobs are named '{name}'"));
        }
        jobs.push(check_job(r, resolve, stores).map_err(|e| format!("job '{name}': {e}"))?);
    }
    Ok(jobs)
}

fn check_job(
    r: RawJob,
    resolve: &impl Fn(PathBuf) -> PathBuf,
    stores: usize,
) -> Result<Job, String> {
    match (r.paths.is_empty(), &r.command, &r.stdin_name) {
        (false, None, None) | (true, Some(_), Some(_)) => {}
        (true, None, _) => {
            return Err("give `paths`, or `command` and `stdin_name` (a job reads its data itself: for standard input, run `snapdrill backup --job NAME --stdin-name FILE`)".into());
        }
        (true, Some(_), None) => {
            return Err(
                "`command` needs `stdin_name`, the file name its output is stored under".into(),
            );
        }
        (false, _, _) => {
            return Err(
                "give either `paths` or `command`, not both: one job is one data set".into(),
            );
        }
    }
    if r.command.is_some() && (r.complete_marker.is_some() || !r.expect.is_empty()) {
        return Err(
            "`complete_marker` and `expect` look into the job's folders: a `command` job has none"
                .into(),
        );
    }
    let shrink_alert = r
        .shrink_alert
        .map(|s| {
            parse_percent(&s)
                .ok_or_else(|| format!("shrink_alert = \"{s}\": write a percentage, e.g. \"30%\""))
        })
        .transpose()?;
    if let Some(m) = &r.complete_marker {
        check_relative("complete_marker", m)?;
    }
    for e in &r.expect {
        check_relative("expect", e)?;
    }
    let hooks = super::hooks::check_hooks("hooks", r.hooks)?;
    Ok(Job {
        name: r.name,
        paths: r.paths.into_iter().map(resolve).collect(),
        exclude: r.exclude,
        command: r.command,
        stdin_name: r.stdin_name,
        tags: r.tags,
        require: r
            .require
            .as_ref()
            .map(|v| parse_require(Some(v), stores))
            .transpose()?,
        retention: r.forget.map(retention_policy).transpose()?,
        rto: duration("rto", r.rto)?,
        rpo: duration("rpo", r.rpo)?,
        check: r.check,
        health: Health {
            complete_marker: r.complete_marker,
            expect: r.expect,
            shrink_alert,
        },
        hooks,
    })
}

/// A health file name is relative to a source path and stays inside it.
fn check_relative(what: &str, p: &str) -> Result<(), String> {
    let path = std::path::Path::new(p);
    let inside = !p.is_empty()
        && path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if inside {
        Ok(())
    } else {
        Err(format!(
            "{what} \"{}\": write a path relative to the job's source folder, without `..`",
            p.escape_debug()
        ))
    }
}
