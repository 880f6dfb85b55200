//! Hooks and notifications around a run (a backup job, a drill, an audit): `on_start`,
//! `on_success`, `on_partial`, `on_failure` commands, and Healthchecks-style URLs pinged at
//! the start (`URL/start`), on success (`URL`) and otherwise (`URL/fail`).
//!
//! A hook never changes the run's result: whatever goes wrong with one — a command that
//! fails, hangs past its timeout or cannot start, a URL that does not answer — comes back
//! as a warning. Hooks never see a secret: commands run with a cleared environment (a few
//! harmless variables such as `PATH` and `HOME`, plus the `SNAPDRILL_*` report variables),
//! so store credentials, identity paths and passphrase commands stay in snapdrill.

use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;

use crate::config::Hooks;
use crate::error::exit;

/// The variables of snapdrill's own environment a hook command sees; everything else is
/// left out (credentials live in the environment).
const PASSED_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SHELL",
];

/// Which moment of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// The run starts.
    Start,
    /// It ended complete (exit 0).
    Success,
    /// It ended partial (exit 3) or a drill missed a target (exit 14): done, but look.
    Partial,
    /// It failed.
    Failure,
}

impl Event {
    /// The event an exit code ends a run with.
    pub fn of_exit_code(code: i32) -> Event {
        match code {
            exit::OK => Event::Success,
            exit::PARTIAL | exit::TARGET_MISSED => Event::Partial,
            _ => Event::Failure,
        }
    }

    /// Its name in `SNAPDRILL_EVENT` and the JSON (`start`, `success`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Event::Start => "start",
            Event::Success => "success",
            Event::Partial => "partial",
            Event::Failure => "failure",
        }
    }

    fn command(self, h: &Hooks) -> Option<(&'static str, &str)> {
        let (key, cmd) = match self {
            Event::Start => ("on_start", &h.on_start),
            Event::Success => ("on_success", &h.on_success),
            Event::Partial => ("on_partial", &h.on_partial),
            Event::Failure => ("on_failure", &h.on_failure),
        };
        cmd.as_deref().map(|c| (key, c))
    }

    /// The Healthchecks URL for this event: `URL/start`, `URL`, `URL/fail`.
    fn ping_url(self, base: &str) -> String {
        let base = base.trim_end_matches('/');
        match self {
            Event::Start => format!("{base}/start"),
            Event::Success => base.to_owned(),
            Event::Partial | Event::Failure => format!("{base}/fail"),
        }
    }
}

/// What a hook is told about the run: the JSON on its standard input (and, flattened, its
/// `SNAPDRILL_*` variables; the notify URLs' body).
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    /// `backup`, `drill` or `audit`.
    pub operation: &'static str,
    /// The event.
    pub event: Event,
    /// The backup job (absent for drills and audits).
    pub job: Option<String>,
    /// The run's exit code (absent at the start).
    pub exit_code: Option<i32>,
    /// The result line, or the error that ended the run.
    pub summary: String,
    /// The snapshot a backup wrote.
    pub snapshot: Option<String>,
    /// The command's JSON report, when there is one.
    pub report: Option<serde_json::Value>,
}

/// The hooks of one run, from every table that applies to it (e.g. `[hooks]` and the
/// job's own).
#[derive(Debug)]
pub struct Notifier {
    hooks: Vec<Hooks>,
    operation: &'static str,
    job: Option<String>,
}

impl Notifier {
    /// The hooks of an `operation` run (`backup`, `drill`, `audit`) of `job`, from `tables`
    /// in the order they run.
    pub fn new(operation: &'static str, job: Option<&str>, tables: &[&Hooks]) -> Notifier {
        Notifier {
            hooks: tables
                .iter()
                .filter(|h| !h.is_empty())
                .map(|h| (*h).clone())
                .collect(),
            operation,
            job: job.map(str::to_owned),
        }
    }

    /// Whether anything would run.
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// The run starts: `on_start`, `URL/start`. Returns warnings.
    pub async fn start(&self) -> Vec<String> {
        let msg = self.message(Event::Start, None, String::new());
        self.fire(&msg).await
    }

    /// The run ended with `exit_code`: `on_success`/`on_partial`/`on_failure` and `URL` or
    /// `URL/fail`, told `summary`, the snapshot and the JSON report. Returns warnings.
    pub async fn finish(
        &self,
        exit_code: i32,
        summary: String,
        snapshot: Option<String>,
        report: Option<serde_json::Value>,
    ) -> Vec<String> {
        let event = Event::of_exit_code(exit_code);
        let mut msg = self.message(event, Some(exit_code), summary);
        msg.snapshot = snapshot;
        msg.report = report;
        self.fire(&msg).await
    }

    fn message(&self, event: Event, exit_code: Option<i32>, summary: String) -> Message {
        Message {
            operation: self.operation,
            event,
            job: self.job.clone(),
            exit_code,
            summary,
            snapshot: None,
            report: None,
        }
    }

    async fn fire(&self, msg: &Message) -> Vec<String> {
        if self.hooks.is_empty() {
            return Vec::new();
        }
        let json = serde_json::to_string(msg).unwrap_or_default();
        let mut warnings = Vec::new();
        for h in &self.hooks {
            if let Some((key, cmd)) = msg.event.command(h)
                && let Err(e) = run_command(cmd, msg, &json, h.timeout).await
            {
                warnings.push(format!(
                    "hook {key} ({}): {e}; the result stands",
                    msg.operation
                ));
            }
            for url in &h.notify {
                let target = msg.event.ping_url(url);
                let body = if h.notify_json {
                    json.clone()
                } else {
                    text_body(msg)
                };
                if let Err(e) = ping(&target, body, h.notify_json, h.timeout).await {
                    warnings.push(format!(
                        "notify {}: {e}; the result stands",
                        shown_url(&target)
                    ));
                }
            }
        }
        warnings
    }
}

/// The plain body of a ping: what Healthchecks shows beside it.
fn text_body(msg: &Message) -> String {
    let job = msg
        .job
        .as_deref()
        .map(|j| format!(" job {j}"))
        .unwrap_or_default();
    match msg.exit_code {
        None => format!("snapdrill {}{job}: started\n", msg.operation),
        Some(code) => format!(
            "snapdrill {}{job}: {} (exit {code})\n{}\n",
            msg.operation,
            msg.event.name(),
            msg.summary
        ),
    }
}

/// A URL as a warning shows it: scheme, host and the event suffix, never the path's
/// secret part (a Healthchecks UUID lets anyone ping the check).
fn shown_url(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(p) => {
            let suffix = ["/start", "/fail"]
                .into_iter()
                .find(|s| p.path().ends_with(s))
                .unwrap_or("");
            format!(
                "{}://{}{}/…{suffix}",
                p.scheme(),
                p.host_str().unwrap_or(""),
                p.port().map(|n| format!(":{n}")).unwrap_or_default()
            )
        }
        Err(_) => "a notify URL".into(),
    }
}

/// The environment of a hook command: the few passed variables and the report's.
fn hook_env(msg: &Message) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = PASSED_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
        .collect();
    let mut set = |k: &str, v: String| env.push((k.to_owned(), v));
    set("SNAPDRILL_OPERATION", msg.operation.to_owned());
    set("SNAPDRILL_EVENT", msg.event.name().to_owned());
    set("SNAPDRILL_JOB", msg.job.clone().unwrap_or_default());
    set(
        "SNAPDRILL_EXIT_CODE",
        msg.exit_code.map(|c| c.to_string()).unwrap_or_default(),
    );
    set("SNAPDRILL_SUMMARY", msg.summary.clone());
    set(
        "SNAPDRILL_SNAPSHOT",
        msg.snapshot.clone().unwrap_or_default(),
    );
    env
}

/// The JSON as a hook's standard input: an anonymous in-memory file rather than a pipe, so
/// that a hook that does not read it can neither block the run nor end it by SIGPIPE (which
/// snapdrill leaves at its default, for `| head`).
fn input_file(json: &str) -> std::io::Result<std::fs::File> {
    use std::io::{Seek, Write};
    let fd = rustix::fs::memfd_create("snapdrill-hook-input", rustix::fs::MemfdFlags::CLOEXEC)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(json.as_bytes())?;
    file.rewind()?;
    Ok(file)
}

/// Run `cmd` with `sh -c`, the JSON on its standard input, its output on snapdrill's
/// standard error (standard output stays the command's report).
async fn run_command(
    cmd: &str,
    msg: &Message,
    json: &str,
    timeout: Duration,
) -> Result<(), String> {
    use std::os::fd::AsFd;
    let stdout: Stdio = match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => fd.into(),
        Err(_) => Stdio::null(),
    };
    let stdin = input_file(json).map_err(|e| format!("cannot prepare its input: {e}"))?;
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env_clear()
        .envs(hook_env(msg))
        .stdin(stdin)
        .stdout(stdout)
        // Its own process group: a hook cut at its timeout goes with everything it started
        // (a grandchild left behind would hold snapdrill's stderr open).
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start `sh -c`: {e}"))?;
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("waiting for it failed: {e}")),
        Err(_) => {
            if let Some(pid) = child
                .id()
                .and_then(|p| rustix::process::Pid::from_raw(p as i32))
            {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            let _ = child.kill().await;
            return Err(format!(
                "still running after {}: stopped",
                humantime::format_duration(timeout)
            ));
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(match status.code() {
            Some(c) => format!("exit {c}"),
            None => "killed by a signal".into(),
        })
    }
}

/// POST `body` to `url`; any answer but 2xx is an error.
async fn ping(url: &str, body: String, json: bool, timeout: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("snapdrill/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("no HTTP client: {e}"))?;
    let kind = if json {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    let answer = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, kind)
        .body(body)
        .send()
        .await
        // reqwest's errors quote the URL: say what happened without it.
        .map_err(|e| {
            if e.is_timeout() {
                "no answer in time".to_owned()
            } else if e.is_connect() {
                "cannot connect".to_owned()
            } else {
                "the request failed".to_owned()
            }
        })?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", answer.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthchecks_urls_by_event() {
        let u = "https://hc-ping.com/abc/";
        assert_eq!(Event::Start.ping_url(u), "https://hc-ping.com/abc/start");
        assert_eq!(Event::Success.ping_url(u), "https://hc-ping.com/abc");
        assert_eq!(Event::Failure.ping_url(u), "https://hc-ping.com/abc/fail");
        assert_eq!(Event::Partial.ping_url(u), "https://hc-ping.com/abc/fail");
        assert_eq!(Event::of_exit_code(0), Event::Success);
        assert_eq!(Event::of_exit_code(3), Event::Partial);
        assert_eq!(Event::of_exit_code(14), Event::Partial);
        assert_eq!(Event::of_exit_code(11), Event::Failure);
    }

    #[test]
    fn shown_urls_keep_the_uuid_out() {
        assert_eq!(
            shown_url("https://hc-ping.com/1234-secret/fail"),
            "https://hc-ping.com/…/fail"
        );
        assert_eq!(
            shown_url("http://127.0.0.1:8080/x"),
            "http://127.0.0.1:8080/…"
        );
    }
}
