//! `[hooks]`, `[job.hooks]`, `[drill.hooks]`, `[audit.hooks]` and `[metrics]`: who hears
//! about a run and where its numbers go (docs/operations.md, "Notifications and hooks",
//! "Metrics").

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::duration;

/// The longest a hook command or a notify request may take, unless `timeout` says.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHooks {
    on_start: Option<String>,
    on_success: Option<String>,
    on_failure: Option<String>,
    on_partial: Option<String>,
    #[serde(default)]
    notify: Vec<String>,
    notify_json: Option<bool>,
    timeout: Option<String>,
}

/// Commands run and URLs pinged around one kind of run (a backup job, a drill, an audit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hooks {
    /// Run with `sh -c` when the run starts.
    pub on_start: Option<String>,
    /// Run when it ends complete (exit 0).
    pub on_success: Option<String>,
    /// Run when it fails (any exit code but 0, 3 and 14).
    pub on_failure: Option<String>,
    /// Run when it ends partial (exit 3) or a drill misses a target (exit 14).
    pub on_partial: Option<String>,
    /// Healthchecks-style URLs: `URL/start` at the start, `URL` on success, `URL/fail`
    /// otherwise.
    pub notify: Vec<String>,
    /// POST the run's report as JSON to the notify URLs (default: a one-line text body).
    pub notify_json: bool,
    /// The longest each hook command and each notify request may take.
    pub timeout: Duration,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            on_start: None,
            on_success: None,
            on_failure: None,
            on_partial: None,
            notify: Vec::new(),
            notify_json: false,
            timeout: DEFAULT_HOOK_TIMEOUT,
        }
    }
}

impl Hooks {
    /// Nothing to run and nothing to ping.
    pub fn is_empty(&self) -> bool {
        self.on_start.is_none()
            && self.on_success.is_none()
            && self.on_failure.is_none()
            && self.on_partial.is_none()
            && self.notify.is_empty()
    }
}

/// Check a hooks table; `what` names it in errors (`[hooks]`, `job 'crm' hooks`).
pub(crate) fn check_hooks(what: &str, raw: Option<RawHooks>) -> Result<Hooks, String> {
    let Some(r) = raw else {
        return Ok(Hooks::default());
    };
    for u in &r.notify {
        let ok = url::Url::parse(u)
            .is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.host().is_some());
        if !ok {
            return Err(format!(
                "{what} notify: '{}' is not an http(s) URL (write e.g. \"https://hc-ping.com/<uuid>\")",
                u.escape_debug()
            ));
        }
    }
    for (key, cmd) in [
        ("on_start", &r.on_start),
        ("on_success", &r.on_success),
        ("on_failure", &r.on_failure),
        ("on_partial", &r.on_partial),
    ] {
        if cmd.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err(format!(
                "{what} {key} is empty: give a command, or remove the line"
            ));
        }
    }
    Ok(Hooks {
        on_start: r.on_start,
        on_success: r.on_success,
        on_failure: r.on_failure,
        on_partial: r.on_partial,
        notify: r.notify,
        notify_json: r.notify_json.unwrap_or(false),
        timeout: duration(&format!("{what} timeout"), r.timeout)?.unwrap_or(DEFAULT_HOOK_TIMEOUT),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAudit {
    hooks: Option<RawHooks>,
}

impl RawAudit {
    pub(crate) fn hooks(self) -> Option<RawHooks> {
        self.hooks
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    textfile_dir: Option<PathBuf>,
}

impl RawMetrics {
    /// The folder node_exporter's textfile collector reads, resolved like every path.
    pub(crate) fn textfile_dir(self, resolve: &impl Fn(PathBuf) -> PathBuf) -> Option<PathBuf> {
        self.textfile_dir.map(resolve)
    }
}

/// Every hooks table of the config but the jobs' own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookSettings {
    /// `[hooks]`: around every backup job (a job's own `hooks` run too).
    pub backup: Hooks,
    /// `[drill.hooks]`: around every `restore-drill` run.
    pub drill: Hooks,
    /// `[audit.hooks]`: around every `audit` run.
    pub audit: Hooks,
}
