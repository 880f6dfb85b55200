//! `-v` / `-vv`, `--log-file FILE`, `--log-format json`: snapdrill's own `tracing` events
//! (what each phase does and how long it took, per store; at `-vv` every store error's raw
//! text, redacted) on stderr or appended to a file, so that a night's run can be read the
//! next morning.
//!
//! Only events of snapdrill itself are written: third-party crates (the HTTP client, the
//! object-store library) log request details snapdrill cannot redact, so they are never
//! enabled, and `RUST_LOG` is not read. Store messages are redacted where they are made
//! (`store::redact`), and command lines are never logged (a `--command` may hold a
//! password).

use std::path::Path;

use anyhow::{Context, Result};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(super) enum Format {
    // One line per event: time, level, what, fields.
    #[default]
    Text,
    // One JSON object per line.
    Json,
}

/// The level `-v` asks for; a log file gets at least the phases (`info`).
fn level(verbose: u8, to_file: bool) -> LevelFilter {
    match (verbose, to_file) {
        (0, false) => LevelFilter::OFF,
        (0, true) | (1, _) => LevelFilter::INFO,
        (2, _) => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Start writing events: to `file` (appended, created mode 0600) when given, else to
/// stderr when `-v` is.
pub(super) fn init(verbose: u8, file: Option<&Path>, format: Format) -> Result<()> {
    let level = level(verbose, file.is_some());
    if level == LevelFilter::OFF {
        return Ok(());
    }
    let only_ours = Targets::new().with_target("snapdrill", level);
    let writer = match file {
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot open the log file {}", path.display()))?;
            tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::sync::Mutex::new(f))
        }
        None => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(writer);
    let layer = match format {
        Format::Text => layer.boxed(),
        Format::Json => layer.json().flatten_event(true).boxed(),
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(only_ours))
        .try_init()
        .context("cannot start the log")?;
    Ok(())
}
