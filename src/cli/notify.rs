//! Hooks, notify pings and metrics files around the commands that run on a schedule
//! (`backup`, `restore-drill`, `audit`): the glue between a command's result and the
//! library's [`Notifier`].

use std::path::{Path, PathBuf};

use anyhow::Result;
use snapdrill::Error;
use snapdrill::hooks::Notifier;
use snapdrill::localfs::atomic::{self, NewMode};

/// Print the hooks' warnings (shown even with `-q`: a broken hook needs a look).
pub(super) fn warn(warnings: Vec<String>) {
    for w in warnings {
        eprintln!("snapdrill: warning: {}", snapdrill::text::escape(&w));
    }
}

/// The exit code an error ends a command with (the README's table), without printing it.
pub(super) fn error_code(e: &anyhow::Error) -> i32 {
    e.chain()
        .find_map(|c| c.downcast_ref::<Error>())
        .map_or(snapdrill::error::exit::FATAL, |l| l.exit_code())
}

/// Run `f` between the start and the end hooks of `notifier`: the end hooks hear its exit
/// code and, for an error, the error. `outcome` turns a result into the summary, snapshot
/// and JSON report the end hooks are told.
pub(super) async fn around<T>(
    notifier: &Notifier,
    f: impl Future<Output = Result<T>>,
    outcome: impl Fn(&T) -> (i32, String, Option<String>, Option<serde_json::Value>),
) -> Result<T> {
    warn(notifier.start().await);
    let result = f.await;
    if notifier.is_empty() {
        return result;
    }
    let (code, summary, snapshot, report) = match &result {
        Ok(v) => outcome(v),
        Err(e) => (error_code(e), format!("error: {e:#}"), None, None),
    };
    warn(notifier.finish(code, summary, snapshot, report).await);
    result
}

/// Where a command writes its metrics: `--metrics-file`, else `[metrics] textfile_dir` and
/// `name` in it, else nowhere.
pub(super) fn metrics_path(
    explicit: Option<&Path>,
    dir: Option<&Path>,
    name: &str,
) -> Option<PathBuf> {
    explicit
        .map(Path::to_owned)
        .or_else(|| dir.map(|d| d.join(name)))
}

/// Write a metrics file atomically, readable by node_exporter.
pub(super) fn write_metrics(path: &Path, text: &str) -> Result<()> {
    atomic::write(path, text.as_bytes(), NewMode::Shared, false)
        .map_err(|e| Error::io("writing", path, e))?;
    Ok(())
}
