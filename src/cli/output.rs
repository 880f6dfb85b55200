//! Rendering helpers: sizes, JSON, and a progress line that only a terminal sees.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

pub(super) use snapdrill::units::binary_size as size;

/// Print a value as pretty JSON on stdout.
pub(super) fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Print what the library reports (`warning: ...`, `note: ...`) on stderr, one
/// `snapdrill: ` line each; `-q` hides the notes, never a warning.
pub(super) fn warnings(lines: Vec<String>, quiet: bool) {
    for line in lines {
        if quiet && line.starts_with("note:") {
            continue;
        }
        eprintln!("snapdrill: {line}");
    }
}

/// A command's account of what it did (stdout): under `-q` only when something needs a
/// look (exit code other than 0), so that a cron job mails nothing on success. Warnings
/// and errors go to stderr and are never hidden; output a command is asked for (a listing,
/// a dump, `--json`, a dry run) is printed whatever `-q` says.
pub(super) fn result(text: &str, code: i32, quiet: bool) {
    if quiet && code == snapdrill::error::exit::OK {
        return;
    }
    print!("{text}");
}

/// A throttled, single-line progress display on stderr, shown only on a terminal.
pub(super) struct ProgressLine {
    enabled: bool,
    last: Mutex<Option<Instant>>,
}

impl ProgressLine {
    /// Enabled when stderr is a terminal and the run is not quiet.
    pub(super) fn new(quiet: bool) -> Self {
        ProgressLine {
            enabled: !quiet && std::io::stderr().is_terminal(),
            last: Mutex::new(None),
        }
    }

    /// Show `text`, at most five times a second.
    pub(super) fn show(&self, text: &str) {
        if !self.enabled {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_millis(200)) {
            return;
        }
        *last = Some(Instant::now());
        eprint!("\r\x1b[2K{text}");
    }

    /// Clear the line.
    pub(super) fn done(&self) {
        if self.enabled {
            eprint!("\r\x1b[2K");
        }
    }
}

/// A restore's, dump's or drill's progress line (bytes, files, rate, ETA), redrawn four
/// times a second on a terminal until dropped.
pub(super) struct Ticker {
    task: tokio::task::JoinHandle<()>,
    quiet: bool,
}

impl Ticker {
    /// Start showing `label`'s progress from `clock` (nothing unless stderr is a terminal).
    pub(super) fn start(
        quiet: bool,
        label: impl Into<String>,
        clock: std::sync::Arc<snapdrill::restore::StageClock>,
    ) -> Self {
        let label = label.into();
        let line = ProgressLine::new(quiet);
        let task = tokio::spawn(async move {
            let started = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let secs = started.elapsed().as_secs_f64();
                line.show(&snapdrill::restore::render::progress(&label, &clock, secs));
            }
        });
        Ticker { task, quiet }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.task.abort();
        ProgressLine::new(self.quiet).done();
    }
}

/// Is there a terminal to ask a question on (`/dev/tty`)?
pub(super) fn has_terminal() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_ok()
}

/// Ask for a secret on the terminal, without echoing what is typed.
pub(super) fn ask_secret(prompt: &str) -> std::io::Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    use std::io::BufRead;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let saved = tcgetattr(&tty)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&tty, OptionalActions::Now, &quiet)?;
    let answer = (|| -> std::io::Result<String> {
        (&tty).write_all(prompt.as_bytes())?;
        let mut line = String::new();
        std::io::BufReader::new(&tty).read_line(&mut line)?;
        Ok(line)
    })();
    // The terminal gets its echo back whatever happened, and the newline not echoed.
    let restored = tcsetattr(&tty, OptionalActions::Now, &saved);
    let _ = (&tty).write_all(b"\n");
    restored?;
    let mut line: String = answer?;
    while line.ends_with('\n') || line.ends_with('\r') {
        line.pop();
    }
    Ok(line)
}
