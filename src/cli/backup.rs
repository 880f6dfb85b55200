//! `snapdrill backup [PATH…]`

use std::path::{Path, PathBuf};

use anyhow::Result;
use snapdrill::Error;
use snapdrill::audit::ledger;
use snapdrill::backup::{self, BackupOptions, BackupReport, StreamSource};
use snapdrill::error::exit;
use snapdrill::keys;
use snapdrill::lock::LocalLock;
use snapdrill::repository::{Opened, Purpose};

use snapdrill::text::escape;

use super::{Global, common, output};

/// Arguments of `backup`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Paths to back up (default: [backup] paths of the config).
    paths: Vec<PathBuf>,
    /// Store standard input as a file of this name (e.g. `pg_dump db | snapdrill backup --stdin-name db.sql`).
    #[arg(long, value_name = "NAME")]
    stdin_name: Option<String>,
    /// Store the standard output of this command (run with `sh -c`); a non-zero exit means no snapshot.
    #[arg(long, value_name = "CMD")]
    command: Option<String>,
    /// Tag the snapshot (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Exclude glob, in addition to the config's (repeatable).
    #[arg(long = "exclude", value_name = "GLOB")]
    exclude: Vec<String>,
    /// Host name to record (default: the config's, else this machine's).
    #[arg(long)]
    host: Option<String>,
    /// Read every file, even those the cache says are unchanged.
    #[arg(long)]
    force_read: bool,
    /// Neither read nor write the local cache.
    #[arg(long)]
    no_cache: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let recipients = keys::parse_recipients(&config.recipients)?;
    let stream = match (&args.stdin_name, &args.command) {
        (name, Some(cmd)) => Some(StreamSource {
            name: name.clone().unwrap_or_else(|| "command-output".into()),
            command: Some(cmd.clone()),
        }),
        (Some(name), None) => Some(StreamSource {
            name: name.clone(),
            command: None,
        }),
        (None, None) => None,
    };
    let paths = if !args.paths.is_empty() || stream.is_some() {
        args.paths.clone()
    } else {
        config.paths.clone()
    };
    if paths.is_empty() && stream.is_none() {
        return Err(Error::Usage("nothing to back up: give PATHs, set [backup] paths in the config, or use --stdin-name / --command".into()).into());
    }
    // Before any store is touched, an overlapping run of this job (cron) exits 11 at once.
    // Held until the command returns; the descriptor is close-on-exec, so a `--command`
    // child cannot keep it after snapdrill is gone.
    let job = job_name(&config.path, &paths, stream.as_ref());
    let _lock = LocalLock::acquire(&config.state_dir, &job)?;

    let Opened { repo, key } = common::open(&config, Purpose::Backup, global).await?;
    let key = key.expect("opened to back up: the write key is loaded");
    let repo = if args.no_cache {
        repo
    } else {
        repo.with_commit_cache(&config.cache_dir)
    };

    let mut exclude = config.exclude.clone();
    exclude.extend(args.exclude.iter().cloned());
    let mut tags = config.tags.clone();
    tags.extend(args.tags.iter().cloned());
    let opts = BackupOptions {
        paths,
        stream,
        exclude,
        tags,
        host: args
            .host
            .clone()
            .or(config.host.clone())
            .unwrap_or_else(snapdrill::hostname),
        compression: config.compression,
        force_read: args.force_read,
        cache_dir: (!args.no_cache).then(|| config.cache_dir.clone()),
        configured_stores: config.stores.iter().map(|s| s.name.clone()).collect(),
        require: config.require.count(config.stores.len()),
        writer_timeout: config.prune.writer_timeout,
        on_changed: config.on_changed,
    };
    let line = output::ProgressLine::new(global.quiet);
    let report = backup::run(&repo, &key, recipients, &opts, &|p| {
        line.show(&format!(
            "backup: {} of {}, {} new chunks",
            output::size(p.bytes_done),
            output::size(p.bytes_total),
            p.chunks_new
        ))
    })
    .await;
    line.done();
    let mut report = report?;
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
    if let Some(w) = common::geo_warning(&config) {
        report.warnings.push(w);
    }
    if args.json {
        output::json(&report)?;
    } else {
        print_report(&report, global.quiet);
    }
    Ok(report.exit_code())
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

fn print_report(r: &BackupReport, quiet: bool) {
    for s in &r.skipped {
        eprintln!(
            "snapdrill: warning: skipped {}: {}",
            escape(&s.path),
            escape(&s.reason)
        );
    }
    for c in &r.changed {
        eprintln!(
            "snapdrill: warning: {} changed while it was read (twice): stored as read, flagged in the snapshot",
            escape(c)
        );
    }
    for w in r.warnings.iter().filter(|_| !quiet) {
        eprintln!("snapdrill: warning: {}", escape(w));
    }
    for s in r.stores.iter().filter(|s| !s.committed) {
        eprintln!(
            "snapdrill: store '{}' did not commit: {}",
            s.name,
            escape(s.error.as_deref().unwrap_or("unknown"))
        );
    }
    if !quiet {
        for i in &r.ignored {
            eprintln!(
                "snapdrill: note: {} left out: {}",
                escape(&i.path),
                escape(&i.reason)
            );
        }
        println!("snapshot {}  ({}, host {})", r.snapshot_id, r.time, r.host);
        println!(
            "  files      {} files, {} dirs, {} symlinks, {}",
            r.files,
            r.dirs,
            r.symlinks,
            output::size(r.bytes)
        );
        println!(
            "  read       {} ({} unchanged, not read)",
            output::size(r.bytes_read),
            output::size(r.bytes_unchanged)
        );
        println!(
            "  new data   {} in {} new of {} chunks, {} stored after compression and encryption",
            output::size(r.data_added),
            r.chunks_new,
            r.chunks,
            output::size(r.data_stored)
        );
        match r.dedup_ratio {
            Some(d) => println!("  dedup      {d:.2}x"),
            None => println!("  dedup      everything was already stored"),
        }
        for s in &r.stores {
            let state = if s.committed {
                "committed"
            } else {
                "NOT committed"
            };
            println!(
                "  store {:<12} {state}, {} objects ({}) uploaded",
                s.name,
                s.uploaded_objects,
                output::size(s.uploaded_bytes)
            );
        }
        println!("  duration   {:.2} s", r.duration_secs);
    }
    let verdict = match r.exit_code() {
        exit::OK => "complete",
        exit::PARTIAL => "PARTIAL",
        _ => "FAILED",
    };
    println!(
        "backup {verdict}: snapshot {} committed to {} of {} stores ({} required)",
        r.snapshot_id,
        r.committed(),
        r.stores.len(),
        r.required
    );
}
