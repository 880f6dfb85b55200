//! Glue shared by the commands: runtime, config, stores, keys.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use snapdrill::Error;
use snapdrill::config::Config;
use snapdrill::error::exit;
use snapdrill::keys::Identities;
use snapdrill::repository::{Opened, Purpose, Repository, Selection};
use snapdrill::select::Filter;

use super::{Global, output};

/// Run a command's future on a multi-threaded runtime (I/O to stores is async; CPU work
/// runs on the blocking pool and the reader thread).
pub(super) fn block_on<T, F: Future<Output = Result<T>>>(f: F) -> Result<T> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("snapdrill-io")
        .build()
        .context("cannot start the async runtime")?;
    // Signals are awaited on the runtime's workers, so that a command busy on this thread
    // (a drill's validation command, a long synchronous step) is still interrupted at once.
    let (mut int, mut term) = rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let int = signal(SignalKind::interrupt()).context("cannot catch SIGINT")?;
        let term = signal(SignalKind::terminate()).context("cannot catch SIGTERM")?;
        anyhow::Ok((int, term))
    })?;
    rt.spawn(async move {
        tokio::select! {
            _ = int.recv() => interrupted("SIGINT", exit::INTERRUPTED),
            _ = term.recv() => interrupted("SIGTERM", exit::TERMINATED),
        }
    });
    rt.block_on(f)
}

/// SIGINT or SIGTERM: remove what the run would leave (a restore's temp files, a drill's
/// clean-room folder), say so, and exit at once with 130 or 143. Nothing is committed: a
/// backup's commit is the last step of the future just abandoned.
fn interrupted(signal: &str, code: i32) -> ! {
    let removed = snapdrill::localfs::cleanup::run();
    eprintln!(
        "snapdrill: interrupted by {signal}: nothing more was written{}",
        if removed > 0 {
            format!("; removed {removed} temporary file(s) or folder(s) of this run")
        } else {
            String::new()
        }
    );
    std::process::exit(code)
}

/// Find and load the configuration.
pub(super) fn load_config(global: &Global) -> Result<Config> {
    let path = Config::locate(global.config.as_deref())?;
    let mut config = Config::load(&path)?;
    config.limit_bandwidth(global.limits.0, global.limits.1);
    Ok(config)
}

/// Open the repository for `purpose` (the library decides which stores and keys), and
/// say which stores are left out.
/// These are warnings: `-q` never hides them.
pub(crate) async fn open(config: &Config, purpose: Purpose, _global: &Global) -> Result<Opened> {
    let opened = Repository::open_for(config, purpose).await?;
    for note in &opened.repo.notes {
        eprintln!("snapdrill: warning: {}", snapdrill::text::escape(note));
    }
    for (name, why) in &opened.repo.unusable {
        eprintln!(
            "snapdrill: warning: store '{name}' is not used: {}",
            snapdrill::text::escape(why)
        );
    }
    Ok(opened)
}

/// Open the repository to read it (`snapshots`, `ls`, `checksums`, `restore`, `sync`).
pub(crate) async fn open_for_reading(config: &Config, global: &Global) -> Result<Repository> {
    Ok(open(config, Purpose::Read, global).await?.repo)
}

/// Where the commands that read snapshots' content start (`ls`, `checksums`, `find`,
/// `diff`, `dump`): the identity, the repository opened to read, and its snapshots, with
/// the untrusted ones warned about.
pub(super) async fn open_snapshots(
    config: &Config,
    identity: Option<PathBuf>,
    global: &Global,
) -> Result<(
    Arc<Identities>,
    Repository,
    snapdrill::repository::SnapshotList,
)> {
    let identities = load_identity(config, identity)?;
    let repo = open_for_reading(config, global).await?;
    let list = repo.snapshots().await?;
    warn_untrusted(&list);
    Ok((identities, repo, list))
}

/// A day or date-time given to `flag`, read in the config's time zone.
pub(super) fn instant(config: &Config, flag: &str, value: &str) -> Result<std::time::SystemTime> {
    Ok(config
        .timezone
        .parse_instant(value)
        .map_err(|e| Error::Usage(format!("{flag}: {e}")))?)
}

/// Say loudly that forged or damaged commits exist, whatever snapshot is being used.
pub(super) fn warn_untrusted(list: &snapdrill::repository::SnapshotList) {
    for (store, why) in &list.unlisted {
        eprintln!(
            "snapdrill: warning: store '{store}' could not be listed and is left out: {}",
            snapdrill::text::escape(why)
        );
    }
    for u in &list.untrusted {
        eprintln!(
            "snapdrill: warning: UNTRUSTED snapshot {} in {}: {} — it is never restored",
            snapdrill::text::escape(&u.id),
            u.stores.join(","),
            snapdrill::text::escape(&u.reason)
        );
    }
}

/// Load the identity: `--identity`, then `$SNAPDRILL_IDENTITY`, then the config's.
pub(super) fn load_identity(config: &Config, explicit: Option<PathBuf>) -> Result<Arc<Identities>> {
    let path = explicit
        .or_else(|| std::env::var_os("SNAPDRILL_IDENTITY").filter(|v| !v.is_empty()).map(PathBuf::from))
        .or_else(|| config.identity.clone())
        .ok_or_else(|| {
            Error::key(
                "no identity is configured: restoring needs the age identity",
                "pass --identity FILE, set $SNAPDRILL_IDENTITY, or set [repository] identity in the config",
            )
        })?;
    // A passphrase-protected identity asks on the terminal when there is one (under cron,
    // $SNAPDRILL_IDENTITY_PASSPHRASE_COMMAND gives it).
    let ask: snapdrill::keys::Prompt = &output::ask_secret;
    let prompt = output::has_terminal().then_some(ask);
    Ok(Arc::new(Identities::load_prompting(&path, prompt)?))
}

/// Remember the damaged copies a restore met (the damage register in the state folder), so
/// that `snapdrill sync` replaces them; a problem doing so is a warning.
pub(super) fn register_damage(
    config: &Config,
    repository_id: &str,
    sources: &snapdrill::restore::Sources,
    global: &Global,
) {
    if !sources
        .repairs
        .iter()
        .any(|r| r.failure.kind == snapdrill::repository::FailureKind::Corrupt)
    {
        return;
    }
    let path = snapdrill::damage::path(&config.state_dir, repository_id);
    let now = snapdrill::format::format_time(std::time::SystemTime::now());
    let saved = snapdrill::damage::Register::load(&path).and_then(|mut r| {
        sources.register_damage(&mut r, &now);
        r.save(&path)
    });
    // A warning: `-q` hides notes, never warnings.
    let _ = global;
    if let Err(e) = saved {
        eprintln!(
            "snapdrill: warning: the damaged copies were not written to the damage register {}: {e}",
            path.display()
        );
    }
}

/// `--job`, `--host`, `--tag`, `--before`: which snapshots a command considers.
#[derive(Debug, Clone, clap::Args)]
pub(super) struct SelectArgs {
    /// Only snapshots of this job (repeatable; `-` selects format-1 snapshots, which have none).
    #[arg(long = "job", value_name = "NAME")]
    jobs: Vec<String>,
    /// Only snapshots of this host (repeatable).
    #[arg(long = "host", value_name = "HOST")]
    hosts: Vec<String>,
    /// Only snapshots with these tags (`a,b` = both; repeat for either).
    #[arg(long = "tag", value_name = "TAG[,TAG]")]
    tags: Vec<String>,
    /// Only snapshots taken before this day or date-time (in [repository] timezone).
    #[arg(long, value_name = "DATETIME")]
    before: Option<String>,
}

impl SelectArgs {
    /// The selection, with the config's time zone.
    pub(super) fn selection(&self, config: &Config) -> Result<Selection> {
        let zone = config.timezone.clone();
        let before = match &self.before {
            Some(b) => Some(instant(config, "--before", b)?),
            None => None,
        };
        Ok(Selection {
            filter: Filter {
                hosts: self.hosts.clone(),
                jobs: self.jobs.clone(),
                tags: self.tags.clone(),
            },
            before,
            zone,
        })
    }
}
