//! Opening the repository for a command: every policy of "which stores, which key, which
//! failures stop the command" lives here, so that the commands only say what they open it
//! for ([`Purpose`]).

use ed25519_dalek::VerifyingKey;

use super::{OpenMode, Repository};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::keys::{self, WriteKey};
use crate::store::{StoreError, StoreErrorKind, StoreRef, backend};

/// What a command opens the repository for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Listing and restoring (`snapshots`, `ls`, `checksums`, `restore`, `sync`): every store
    /// that opens and holds the repository is used, in config order; the others are
    /// reported (`Repository::unusable`). Commits are verified against the signer pinned in
    /// the config, or the write key's on the backup host. The local commit cache is used.
    Read,
    /// Proving (`restore-drill`, `drills`, `report`): as `Read`, but only the signer
    /// pinned in the config counts (a drill uses only the recovery kit, never the backup
    /// host's write key), and never the local cache.
    Prove,
    /// Backing up: the write key, whose signer must be the pinned one and whose repository
    /// the stores hold. A store that is unreachable, or that answers but holds no
    /// repository while others do (an unmounted volume, a wiped bucket, a site rebuilt
    /// empty), is reported and left out: `require` decides. Only when no store holds the
    /// repository does the backup stop (exit 10).
    Backup,
    /// Deleting (`forget`, `prune`): every configured store must open and hold the
    /// repository — deleting on a partial view is how data gets lost.
    Retention,
}

/// A repository opened for a purpose, with the write key when the purpose needs it.
pub struct Opened {
    /// The repository.
    pub repo: Repository,
    /// The write key (`Backup` only; `forget` loads it itself, `prune` needs none).
    pub key: Option<WriteKey>,
}

impl Repository {
    /// Open the repository of `config` for `purpose` (see [`Purpose`] for each policy).
    pub async fn open_for(config: &Config, purpose: Purpose) -> Result<Opened> {
        match purpose {
            Purpose::Read | Purpose::Prove => open_to_read(config, purpose).await,
            Purpose::Backup => open_to_back_up(config).await,
            Purpose::Retention => open_every_store(config).await,
        }
    }
}

/// Open every configured store (`create`: make a missing local folder); those that cannot
/// be opened come back with why.
pub fn open_stores(config: &Config, create: bool) -> (Vec<StoreRef>, Vec<(String, StoreError)>) {
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

/// The stores' URLs and options checked as every command checks them, by opening each
/// store (nothing is contacted, nothing created): the first that `init` or a backup would
/// refuse is the same error here (`config check`); the stores that cannot be opened yet
/// for another reason (a local folder not created) come back with why.
pub fn check_store_settings(config: &Config) -> Result<Vec<(String, String)>> {
    let (_, failed) = open_stores(config, false);
    let mut not_ready = Vec::new();
    for (name, e) in failed {
        if e.kind == StoreErrorKind::Config {
            return Err(Error::Store(e));
        }
        not_ready.push((name, e.message));
    }
    Ok(not_ready)
}

/// The public key snapshots must be signed with: pinned in the config or — unless
/// `pinned_only` — the backup host's write key.
pub fn signer(config: &Config, pinned_only: bool) -> Result<VerifyingKey> {
    if let Some(s) = &config.signer {
        return keys::parse_signer(s).map_err(|e| Error::Config {
            path: config.path.clone(),
            message: e,
        });
    }
    if !pinned_only && config.write_key.exists() {
        return Ok(WriteKey::load(&config.write_key)?.signer());
    }
    let message = if pinned_only {
        "drills trust only the signer pinned in the config: add `signer = \"ed25519:...\"` under [repository] (init writes it)"
    } else {
        "no signing key is pinned: add `signer = \"ed25519:...\"` under [repository] \
         (printed by `snapdrill init`, and written there by it on the backup host)"
    };
    Err(Error::Config {
        path: config.path.clone(),
        message: message.into(),
    })
}

/// The write key of the config, refused (exit 12, with `hint`) unless its signer is the one
/// pinned in the config.
pub fn write_key(config: &Config, hint: &str) -> Result<WriteKey> {
    let key = WriteKey::load(&config.write_key)?;
    if signer(config, false)? != key.signer() {
        return Err(Error::key(
            format!(
                "the write key {} does not match the signer pinned in the config",
                config.write_key.display()
            ),
            hint,
        ));
    }
    Ok(key)
}

async fn open_to_read(config: &Config, purpose: Purpose) -> Result<Opened> {
    let signer = signer(config, purpose == Purpose::Prove)?;
    let (stores, failed) = open_stores(config, false);
    let never_made = failed
        .iter()
        .all(|(_, e)| e.kind == StoreErrorKind::NotFound);
    if stores.is_empty()
        && let (true, Some((name, _))) = (never_made, failed.first())
    {
        return Err(Error::NotInitialised {
            store: name.clone(),
        });
    }
    let mut repo = Repository::open(stores, signer, OpenMode::AnyUsable).await?;
    if purpose == Purpose::Read {
        repo = repo.with_commit_cache(&config.cache_dir);
    }
    repo.unusable
        .extend(failed.into_iter().map(|(n, e)| (n, e.to_string())));
    Ok(Opened { repo, key: None })
}

async fn open_to_back_up(config: &Config) -> Result<Opened> {
    let key = write_key(
        config,
        "use the write key created by `snapdrill init` for this repository",
    )?;
    let (stores, failed) = open_stores(config, false);
    let lost: Vec<String> = failed
        .iter()
        .filter(|(_, e)| e.kind == StoreErrorKind::NotFound)
        .map(|(name, _)| name.clone())
        .collect();
    if stores.is_empty() {
        let (name, e) = failed.into_iter().next().expect("a store is configured");
        return Err(match lost.is_empty() {
            true => e.into(),
            false => Error::NotInitialised { store: name },
        });
    }
    let mut repo = Repository::open(stores, key.signer(), OpenMode::AnyUsable).await?;
    let empty = std::mem::take(&mut repo.not_initialised);
    repo.unusable.retain(|(name, _)| !empty.contains(name));
    for (name, e) in failed {
        let why = match lost.contains(&name) {
            true => lost_replica(&name, &e.message),
            false => e.to_string(),
        };
        repo.unusable.push((name, why));
    }
    for name in empty {
        let why = lost_replica(&name, "no `config` object");
        repo.unusable.push((name, why));
    }
    retired_key_check(&mut repo, &key)?;
    if repo.config.repository_id != key.repository_id {
        return Err(Error::key(
            format!(
                "the write key is for repository {}, the stores hold {}",
                key.repository_id, repo.config.repository_id
            ),
            "use the write key of this repository",
        ));
    }
    Ok(Opened {
        repo,
        key: Some(key),
    })
}

/// A write key rotated away (another host rotated it): a backup may still sign with it
/// until its overlap window ends — with a note — and is refused after.
fn retired_key_check(repo: &mut Repository, key: &WriteKey) -> Result<()> {
    if repo.signer == key.signer() {
        return Ok(());
    }
    let mine = keys::signer_to_string(&key.signer());
    let window = repo
        .config
        .previous_signers
        .iter()
        .find(|p| p.signer == mine)
        .and_then(|p| crate::format::parse_time(&p.until).map(|t| (t, p.until.clone())));
    let hint = format!(
        "copy the current write key (signer {}) from the host that rotated it, and set that signer in the config",
        repo.config.signer
    );
    match window {
        Some((until, text)) if std::time::SystemTime::now() < until => {
            repo.notes.push(format!(
                "this host's write key was retired (rotated to {}): its snapshots are accepted until {text} only; {hint}",
                repo.config.signer
            ));
            Ok(())
        }
        _ => Err(Error::key(
            format!(
                "this host's write key was retired: the repository is now signed by {}",
                repo.config.signer
            ),
            hint,
        )),
    }
}

/// A replica that answers but holds no repository, as the one line a backup reports for
/// it: a lost site is a failed store, never a reason to write nothing anywhere.
pub fn lost_replica(store: &str, why: &str) -> String {
    format!(
        "holds no repository ({why}): is the volume mounted, does the bucket exist? To rebuild it: `snapdrill init --store {store}`, then `snapdrill sync`"
    )
}

async fn open_every_store(config: &Config) -> Result<Opened> {
    let signer = signer(config, false)?;
    let (stores, failed) = open_stores(config, false);
    if let Some((name, e)) = failed.into_iter().next() {
        return Err(Error::Fatal {
            message: format!("store '{name}' cannot be opened ({e}); nothing was changed"),
            hint: Some("forget and prune need every configured store; fix it and run again".into()),
        });
    }
    let repo = Repository::open(stores, signer, OpenMode::All)
        .await?
        .with_commit_cache(&config.cache_dir);
    Ok(Opened { repo, key: None })
}

/// The stores `init` writes to, opened (a missing local folder created only when asked);
/// any that cannot be opened stops it before anything is written.
fn init_targets(config: &Config, opts: &InitOptions) -> Result<Vec<StoreRef>> {
    if let Some(name) = &opts.store
        && !config.stores.iter().any(|s| &s.name == name)
    {
        let names: Vec<&str> = config.stores.iter().map(|s| s.name.as_str()).collect();
        return Err(Error::Usage(format!(
            "no store named '{name}' in the config (stores: {})",
            names.join(", ")
        )));
    }
    let mut chosen = config.clone();
    chosen
        .stores
        .retain(|s| opts.store.as_ref().is_none_or(|n| &s.name == n));
    let (stores, failed) = open_stores(&chosen, opts.create);
    match failed.into_iter().next() {
        None => Ok(stores),
        Some((name, e)) if e.kind == StoreErrorKind::NotFound => Err(Error::Fatal {
            message: format!(
                "store '{name}': {}; init changed nothing in any store",
                e.message
            ),
            hint: Some(format!(
                "if the store lives on a volume that is not mounted, mount it; to create a new store there, run `snapdrill init --create{}`",
                opts.store
                    .as_ref()
                    .map(|n| format!(" --store {n}"))
                    .unwrap_or_default()
            )),
        }),
        Some((_, e)) => Err(Error::Store(StoreError {
            message: format!("{} (init changed nothing in any store)", e.message),
            ..e
        })),
    }
}

/// What `init` did.
#[derive(Debug, serde::Serialize)]
pub struct Initialised {
    /// The repository.
    pub repository_id: String,
    /// Its signer (`ed25519:...`).
    pub signer: String,
    /// The write key file.
    pub write_key: std::path::PathBuf,
    /// Whether the write key was created by this run.
    pub write_key_created: bool,
    /// Per store.
    pub stores: Vec<super::InitOutcome>,
    /// Whether the signer was pinned in the config (false: the file has no `[repository]`
    /// line to anchor on, the operator adds it).
    #[serde(skip)]
    pub pinned: bool,
}

/// What `init` is asked to do.
#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// Create the folder of a local store that does not exist. Without it a missing folder
    /// is an error: an unmounted volume's mount point must not become a store on the
    /// local disk.
    pub create: bool,
    /// Only this store (a rebuilt site); the others keep what they hold.
    pub store: Option<String>,
}

/// `init`: the repository in every configured store (or `opts.store`), the backup host's
/// write key (created when missing), and the signer pinned in the config. A store that
/// already holds the repository keeps it; a new one gets the `config` the others hold.
pub async fn init(config: &Config, opts: &InitOptions) -> Result<Initialised> {
    let recipients = keys::parse_recipients(&config.recipients)?;
    let (key, created) = if config.write_key.exists() {
        (WriteKey::load(&config.write_key)?, false)
    } else {
        let key = WriteKey::generate();
        key.save(&config.write_key)?;
        (key, true)
    };
    let signer = keys::signer_to_string(&key.signer());
    if let Some(pinned) = config.signer.as_ref().filter(|p| **p != signer) {
        return Err(Error::key(
            format!(
                "the config pins signer {pinned}, but the write key {} signs as {signer}",
                config.write_key.display()
            ),
            "point [repository] write_key at the key of this repository, or remove the signer line for a new one",
        ));
    }
    let targets = init_targets(config, opts)?;
    // The repository as the other stores hold it (those that open), else a new one.
    let (all, _) = open_stores(config, false);
    let object = match super::existing_config(&all, &key).await? {
        Some(object) => {
            let existing =
                crate::format::repo_config::RepoConfig::from_object(&object, &key.signer())
                    .map_err(|e| Error::fatal(format!("the repository config: {e}")))?;
            super::keyring::check_recipients(config, &existing)?;
            object
        }
        None => super::new_config(&key, &recipients)?,
    };
    let outcomes = super::place_config(&targets, &key, object).await?;
    let pinned = match &config.signer {
        Some(_) => true,
        None => crate::config::pin_signer(&config.path, &signer)?,
    };
    Ok(Initialised {
        repository_id: key.repository_id.clone(),
        signer,
        write_key: config.write_key.clone(),
        write_key_created: created,
        stores: outcomes,
        pinned,
    })
}
