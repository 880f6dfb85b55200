//! The command layer: the only place that knows about clap, the terminal and `anyhow`.
//! Each subcommand is one file; each returns its exit code or an error, which `main` maps to
//! the exit-code table (README).

mod audit;
mod backup;
mod checksums;
mod common;
mod config_check;
mod diff;
mod drill;
mod dump;
mod evidence;
mod find;
mod forget;
mod help;
mod init;
mod keygen;
mod keys;
mod log;
mod ls;
mod manpages;
mod notify;
mod output;
mod rekey;
mod restore;
mod snapshots;
mod sync;

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use snapdrill::error::exit;

/// Compressed, encrypted snapshots to several stores at once, and restores that verify
/// every byte.
#[derive(Debug, Parser)]
#[command(name = "snapdrill", version, about, long_about = None, max_term_width = 100)]
struct Cli {
    /// Config file (default: $SNAPDRILL_CONFIG, then ./snapdrill.toml,
    /// ~/.config/snapdrill/snapdrill.toml, /etc/snapdrill/snapdrill.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print nothing on success but what the command was asked for (exit code only);
    /// warnings and errors are still shown.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// -v: log what each phase does and how long it took, per store, and print a store
    /// error's own text (redacted) after its plain explanation; -vv: log every store error.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Append the log to FILE (mode 0600; at least -v's events), not to stderr.
    #[arg(long, global = true, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// The log's lines: text, or json (one object each).
    #[arg(long, global = true, value_name = "FORMAT", default_value = "text")]
    log_format: log::Format,
    /// Limit uploads to each store to RATE bytes per second (e.g. 20MiB), in place of its
    /// `limit_upload`.
    #[arg(long, global = true, value_name = "RATE", value_parser = snapdrill::units::parse_size)]
    limit_upload: Option<u64>,
    /// Limit downloads from each store to RATE bytes per second (e.g. 50MiB), in place of its
    /// `limit_download`.
    #[arg(long, global = true, value_name = "RATE", value_parser = snapdrill::units::parse_size)]
    limit_download: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an age identity (the restore key) and print its recipient.
    Keygen(keygen::Args),
    /// Create the repository in every configured store, and the backup host's write key.
    Init(init::Args),
    /// List, add or remove the repository's recipients (signed, versioned key changes).
    Keys(keys::Args),
    /// Re-encrypt every object of every store to a new read key (after `keys remove`).
    Rekey(rekey::Args),
    /// Back up every configured job, or one (--job), or PATHs, standard input, a command's output.
    Backup(backup::Args),
    /// List snapshots (no identity needed).
    Snapshots(snapshots::Args),
    /// List the files of a snapshot.
    Ls(ls::Args),
    /// Find which snapshots hold a path matching a glob, and when it first and last appears.
    Find(find::Args),
    /// Show what was added, removed and changed between two snapshots.
    Diff(diff::Args),
    /// Write a file of a snapshot (or a folder, as tar) to standard output, verified.
    Dump(dump::Args),
    /// Print a snapshot's SHA-256 sums in `sha256sum` format.
    Checksums(checksums::Args),
    /// Restore a snapshot into a folder, verifying every file.
    Restore(restore::Args),
    /// Timed clean-room restore drill with RTO/RPO targets and an evidence record.
    #[command(name = "restore-drill", visible_alias = "drill")]
    RestoreDrill(drill::Args),
    /// List the drill history kept in the repository.
    Drills(drill::ListArgs),
    /// Write the drill history as HTML, Markdown, JSON or a Prometheus textfile.
    Report(drill::ReportArgs),
    /// Write an evidence pack (reports, records, SHA256SUMS), or check one (`verify DIR`).
    Evidence(evidence::Args),
    /// Copy what a store lacks from the other stores (no identity needed).
    Sync(sync::Args),
    /// Check every store against the signed commits; detect rollbacks (no identity needed).
    Audit(audit::Args),
    /// List the audit records kept in the repository (`audit --record`).
    Audits(audit::ListArgs),
    /// Remove snapshots by a retention policy (--keep-daily 7 ...) or by id; tombstones stay.
    Forget(forget::Args),
    /// Free the space no snapshot references, safely beside running backups.
    Prune(forget::PruneArgs),
    /// Check the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print shell completions.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Write one man page per command into DIR (for packagers: `make install`).
    #[command(hide = true)]
    Manpages {
        /// The folder to write `snapdrill.1`, `snapdrill-backup.1`, ... into.
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Parse and check the config, its keys and its stores' URLs.
    Check,
}

/// Global options every command sees.
pub(crate) struct Global {
    config: Option<PathBuf>,
    quiet: bool,
    verbose: u8,
    /// `--limit-upload` and `--limit-download`, bytes per second.
    limits: (Option<u64>, Option<u64>),
    /// When the process started: a drill's recovery time counts from here.
    started: std::time::Instant,
}

/// Parse arguments, run, and return the exit code.
pub(crate) fn main() -> i32 {
    let started = std::time::Instant::now();
    let parsed = help::with_examples(Cli::command())
        .try_get_matches()
        .and_then(|m| {
            let name = m.subcommand_name().unwrap_or_default().to_owned();
            Ok((Cli::from_arg_matches(&m)?, name))
        });
    let (cli, name) = match parsed {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    let global = Global {
        config: cli.config,
        quiet: cli.quiet,
        verbose: cli.verbose,
        limits: (cli.limit_upload, cli.limit_download),
        started,
    };
    if let Err(e) = log::init(cli.verbose, cli.log_file.as_deref(), cli.log_format) {
        return report_error(&e);
    }
    // The command's name only: its arguments may hold a secret (a --command's password).
    tracing::info!(command = %name, version = env!("CARGO_PKG_VERSION"), "started");
    let code = match dispatch(&global, cli.command) {
        Ok(code) => code,
        Err(e) => {
            let code = report_error(&e);
            tracing::error!(error = %format!("{e:#}"), "failed");
            if global.verbose > 0 {
                verbose_detail(&e);
            }
            code
        }
    };
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(command = %name, exit = code, secs, "finished");
    code
}

/// Run the command.
fn dispatch(global: &Global, command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Keygen(a) => keygen::run(global, a),
        Command::Init(a) => common::block_on(init::run(global, a)),
        Command::Keys(a) => common::block_on(keys::run(global, a)),
        Command::Rekey(a) => common::block_on(rekey::run(global, a)),
        Command::Backup(a) => common::block_on(backup::run(global, a)),
        Command::Snapshots(a) => common::block_on(snapshots::run(global, a)),
        Command::Ls(a) => common::block_on(ls::run(global, a)),
        Command::Find(a) => common::block_on(find::run(global, a)),
        Command::Diff(a) => common::block_on(diff::run(global, a)),
        Command::Dump(a) => common::block_on(dump::run(global, a)),
        Command::Checksums(a) => common::block_on(checksums::run(global, a)),
        Command::Restore(a) => common::block_on(restore::run(global, a)),
        Command::RestoreDrill(a) => common::block_on(drill::run(global, a)),
        Command::Drills(a) => common::block_on(drill::list(global, a)),
        Command::Report(a) => common::block_on(drill::report(global, a)),
        Command::Evidence(a) => common::block_on(evidence::run(global, a)),
        Command::Sync(a) => common::block_on(sync::run(global, a)),
        Command::Audit(a) => common::block_on(audit::run(global, a)),
        Command::Audits(a) => common::block_on(audit::list(global, a)),
        Command::Forget(a) => common::block_on(forget::run(global, a)),
        Command::Prune(a) => common::block_on(forget::prune(global, a)),
        Command::Config {
            command: ConfigCommand::Check,
        } => config_check::run(global),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "snapdrill",
                &mut std::io::stdout(),
            );
            Ok(exit::OK)
        }
        Command::Manpages { dir } => manpages::run(help::with_examples(Cli::command()), &dir),
    }
}

/// `--verbose`: the store library's own words behind a plain store error.
fn verbose_detail(e: &anyhow::Error) {
    let raw = e
        .chain()
        .find_map(|c| match c.downcast_ref::<snapdrill::Error>() {
            Some(snapdrill::Error::Store(s)) => s.explained.as_ref().map(|x| x.raw.clone()),
            _ => None,
        });
    if let Some(raw) = raw {
        eprintln!("snapdrill: detail: {}", snapdrill::text::escape(&raw));
    }
}

/// Print an error as one sentence plus, when there is one, what to do next.
pub(super) fn report_error(e: &anyhow::Error) -> i32 {
    if let Some(io) = e.downcast_ref::<std::io::Error>()
        && io.kind() == std::io::ErrorKind::BrokenPipe
    {
        return exit::OK;
    }
    let lib = e.chain().find_map(|c| c.downcast_ref::<snapdrill::Error>());
    // Messages name paths and objects that may come from a hostile manifest or store.
    let escape = snapdrill::text::escape;
    eprintln!("snapdrill: error: {}", escape(&format!("{e:#}")));
    if let Some(hint) = lib.and_then(|l| l.hint()) {
        eprintln!("snapdrill: hint: {}", escape(&hint));
    }
    lib.map_or(exit::FATAL, |l| l.exit_code())
}
