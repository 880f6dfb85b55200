//! Glue shared by the commands: runtime, config, stores, keys.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use ed25519_dalek::VerifyingKey;
use snapdrill::Error;
use snapdrill::config::Config;
use snapdrill::error::exit;
use snapdrill::keys::{self, Identities, WriteKey};
use snapdrill::repository::{OpenMode, Repository};
use snapdrill::store::{StoreRef, backend};

use super::Global;

/// Run a command's future on a multi-threaded runtime (I/O to stores is async; CPU work
/// runs on the blocking pool and the reader thread).
pub(super) fn block_on<F: Future<Output = Result<i32>>>(f: F) -> Result<i32> {
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
    Ok(Config::load(&path)?)
}

/// Open every configured store; those that cannot be opened come back as (name, reason).
pub(super) fn open_stores(
    config: &Config,
    create: bool,
) -> (Vec<StoreRef>, Vec<(String, snapdrill::store::StoreError)>) {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for s in &config.stores {
        match backend::open(&s.name, &s.location, &s.options, s.tuning, create) {
            Ok(store) => ok.push(store),
            Err(e) => failed.push((s.name.clone(), e)),
        }
    }
    (ok, failed)
}

/// The public key snapshots must be signed with: pinned in the config, or (on the backup
/// host) taken from the write key.
pub(super) fn pinned_signer(config: &Config) -> Result<VerifyingKey> {
    if let Some(s) = &config.signer {
        return keys::parse_signer(s).map_err(|e| {
            anyhow::anyhow!(Error::Config {
                path: config.path.clone(),
                message: e
            })
        });
    }
    if config.write_key.exists() {
        return Ok(WriteKey::load(&config.write_key)?.signer());
    }
    Err(Error::Config {
        path: config.path.clone(),
        message: "no signing key is pinned: add `signer = \"ed25519:...\"` under [repository] \
                  (printed by `snapdrill init`, and written there by it on the backup host)"
            .into(),
    }
    .into())
}

/// Open the repository for reading: every store that works is used, the others are listed.
pub(super) async fn open_for_reading(config: &Config, global: &Global) -> Result<Repository> {
    let signer = pinned_signer(config)?;
    let (stores, failed) = open_stores(config, false);
    let not_init = failed
        .iter()
        .all(|(_, e)| e.kind == snapdrill::store::StoreErrorKind::NotFound);
    if stores.is_empty()
        && let (true, Some((name, _))) = (not_init, failed.first())
    {
        return Err(Error::NotInitialised {
            store: name.clone(),
        }
        .into());
    }
    let mut repo = Repository::open(stores, signer, OpenMode::AnyUsable)
        .await?
        .with_commit_cache(&config.cache_dir);
    repo.unusable
        .extend(failed.into_iter().map(|(n, e)| (n, e.to_string())));
    if !global.quiet {
        for (name, why) in &repo.unusable {
            eprintln!("snapdrill: warning: store '{name}' is not used: {why}");
        }
    }
    Ok(repo)
}

/// Warn when every store shares one site: one disaster could take every copy.
pub(super) fn geo_warning(config: &Config) -> Option<String> {
    let sites: std::collections::HashSet<Option<&str>> =
        config.stores.iter().map(|s| s.site.as_deref()).collect();
    match (config.stores.len(), sites.len()) {
        (1, _) => Some("only one store is configured: one disaster could take every copy".into()),
        (_, 1) => Some(match config.stores[0].site.as_deref() {
            Some(site) => format!("every store is at site '{site}': one disaster could take every copy"),
            None => "no store has a site label: set `site` so snapdrill can check the copies are far apart".into(),
        }),
        _ => None,
    }
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
    Ok(Arc::new(Identities::load(&path)?))
}
