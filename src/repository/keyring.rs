//! The repository's keys over the years (docs/operations.md, "Keys over the years"): which
//! recipients its secrets are sealed to, which read key new objects go to, and the signed,
//! versioned changes `snapdrill keys add/remove` make.
//!
//! Objects are encrypted to a *read key*, whose secret half is sealed to the recipients in
//! `config` (docs/design.md, "Read keys"). Adding a recipient therefore re-seals a few
//! small secrets instead of rewriting every object; removing one starts a new read key,
//! and `rekey` then moves every object onto it.

use std::time::SystemTime;

use bytes::Bytes;

use super::{OpenMode, Repository};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::format::repo_config::{ReadKey, RecipientEntry, RepoConfig};
use crate::format::{self, limits};
use crate::keys::{self, Identities, RecipientKey, WriteKey};
use crate::store::{self, StoreErrorKind};

impl Repository {
    /// The keys new objects are encrypted to: the current read key, or — in a repository
    /// of format version 1 or 2, which has none — the configured recipients.
    pub fn object_recipients(&self, configured: &[String]) -> Result<Vec<age::x25519::Recipient>> {
        match self.config.write_recipient() {
            Some(r) => Ok(vec![r]),
            None => keys::recipient::legacy_recipients(configured),
        }
    }
}

/// Refuse to write (exit 2) when the config's recipients are not the ones the repository
/// records: an edit of the config alone would seal new data to keys that cannot open the
/// older snapshots, or keep sealing to a key that was meant to be gone.
pub fn check_recipients(config: &Config, repo: &RepoConfig) -> Result<()> {
    if repo.recipients.is_empty() {
        return Ok(()); // format version 1 or 2: the config's list is the only one
    }
    let configured: Vec<String> = config
        .recipients
        .iter()
        .map(|r| {
            RecipientKey::parse(r).map_or_else(|_| r.trim().to_owned(), |k| k.text().to_owned())
        })
        .collect();
    let recorded = repo.recipient_texts();
    let added: Vec<&String> = configured
        .iter()
        .filter(|r| !recorded.contains(r))
        .collect();
    let removed: Vec<&String> = recorded
        .iter()
        .filter(|r| !configured.contains(r))
        .collect();
    if added.is_empty() && removed.is_empty() {
        return Ok(());
    }
    let mut commands: Vec<String> = added
        .iter()
        .map(|r| format!("snapdrill keys add '{r}'"))
        .collect();
    commands.extend(
        removed
            .iter()
            .map(|r| format!("snapdrill keys remove '{r}'")),
    );
    let list = |v: &[&String]| v.iter().map(|r| short(r)).collect::<Vec<_>>().join(", ");
    let mut what = Vec::new();
    if !added.is_empty() {
        what.push(format!("in the config only: {}", list(&added)));
    }
    if !removed.is_empty() {
        what.push(format!("in the repository only: {}", list(&removed)));
    }
    Err(Error::Recipients {
        message: format!(
            "the recipients in {} are not the repository's (key generation {}; {}); nothing was written",
            config.path.display(),
            repo.generation,
            what.join("; ")
        ),
        hint: format!(
            "change recipients with the keys command, which re-seals the repository's keys and updates the config: {} (or put back the list `snapdrill keys list` shows)",
            commands.join(" ; ")
        ),
    })
}

/// `config check`'s look at the repository: its key generation, and the refusal (exit 2)
/// when the config's recipients are not the repository's. Stores that cannot be read
/// (a backup host's check run offline) are a note, not an error.
pub async fn check_against_stores(config: &Config) -> Result<String> {
    let Ok(signer) = super::signer(config, false) else {
        return Ok(
            "repository not compared: no signer is pinned yet (`snapdrill init` pins it)".into(),
        );
    };
    let (stores, _) = super::open_stores(config, false);
    match Repository::open(stores, signer, OpenMode::AnyUsable).await {
        Ok(repo) => {
            check_recipients(config, &repo.config)?;
            Ok(match repo.config.generation {
                0 => "repository format 2 (no read keys yet); recipients as configured".into(),
                g => format!(
                    "repository key generation {g}: the config's {} recipients are the repository's",
                    repo.config.recipients.len()
                ),
            })
        }
        Err(e) => Ok(format!("repository not compared: {e}")),
    }
}

/// A recipient shortened for one-line messages.
pub fn short(r: &str) -> String {
    if r.len() <= 24 {
        r.to_owned()
    } else {
        format!("{}…{}", &r[..14], &r[r.len() - 6..])
    }
}

/// What `snapdrill keys` is asked to change.
#[derive(Debug, Clone)]
pub enum KeyChange {
    /// Add a recipient.
    Add(String),
    /// Remove a recipient.
    Remove(String),
}

/// What a keys change did.
#[derive(Debug, serde::Serialize)]
pub struct KeysChanged {
    /// The new generation.
    pub generation: u64,
    /// The recipients now.
    pub recipients: Vec<RecipientEntry>,
    /// Per store: written, or why not.
    pub stores: Vec<(String, std::result::Result<(), String>)>,
    /// The older read keys were sealed again to the new recipients (an identity opened
    /// them): the new recipient reads every snapshot at once.
    pub resealed: bool,
    /// A new read key was started (new objects go to it).
    pub new_read_key: bool,
    /// Read keys in the config (more than one: `rekey` would fold them into one).
    pub read_keys: usize,
    /// The repository holds objects of format version 1 or 2, encrypted to the earlier
    /// recipients themselves: only `rekey` makes them readable by a new recipient.
    pub legacy_objects: bool,
    /// The config file's recipients were updated.
    pub config_file_updated: bool,
}

/// `snapdrill keys add/remove`: a signed, versioned change of the repository config,
/// written to every store that holds the repository (and its history copy), then to the
/// config file. Needs the write key; with `identities` (one of the current recipients),
/// the older read keys are sealed again so that an added recipient reads every snapshot.
pub async fn change_keys(
    config: &Config,
    change: &KeyChange,
    identities: Option<&Identities>,
) -> Result<KeysChanged> {
    let key = super::write_key(
        config,
        "run `snapdrill keys` on the backup host of this repository, with its write key",
    )?;
    let (stores, failed) = super::open_stores(config, false);
    let repo = Repository::open(stores, key.signer(), OpenMode::AnyUsable).await?;
    let current = &repo.config;
    let mut entries = recorded_or_configured(config, current);
    apply(&mut entries, change)?;
    let parsed = recipient_keys(&entries)?;
    let (mut read_keys, resealed) = match identities {
        Some(ids) => (reseal(current, ids, &parsed, RESEAL_HINT)?, true),
        None => (current.read_keys.clone(), false),
    };
    let new_read_key = !resealed || matches!(change, KeyChange::Remove(_)) || read_keys.is_empty();
    if new_read_key {
        let now = format::format_time(SystemTime::now());
        read_keys.push(ReadKey::fresh(&parsed, &now)?.0);
    }
    let note = match change {
        KeyChange::Add(r) => format!("add {}", short(r)),
        KeyChange::Remove(r) => format!("remove {}", short(r)),
    };
    let mut next = current.successor(&key, entries.clone(), &parsed, read_keys, note)?;
    // A change killed between its history copy and `config` left its generation taken.
    next.generation = next.generation.max(highest_history(&repo).await + 1);
    let object = Bytes::from(next.to_object(&key));
    let mut outcomes = write_generation(&repo, next.generation, object).await?;
    outcomes.extend(failed.into_iter().map(|(n, e)| (n, Err(e.to_string()))));
    outcomes.extend(
        repo.unusable
            .iter()
            .map(|(n, e)| (n.clone(), Err(e.clone()))),
    );
    let texts: Vec<String> = entries.iter().map(|e| e.recipient.clone()).collect();
    let config_file_updated = crate::config::set_recipients(&config.path, &texts)?;
    Ok(KeysChanged {
        generation: next.generation,
        recipients: entries,
        stores: outcomes,
        resealed,
        new_read_key,
        read_keys: next.read_keys.len(),
        legacy_objects: current.read_keys.is_empty(),
        config_file_updated,
    })
}

/// The recipients the repository records, or — before format version 3 — the configured
/// ones, as of the repository's creation.
pub fn recorded_or_configured(config: &Config, current: &RepoConfig) -> Vec<RecipientEntry> {
    if !current.recipients.is_empty() {
        return current.recipients.clone();
    }
    config
        .recipients
        .iter()
        .map(|r| RecipientEntry {
            recipient: RecipientKey::parse(r)
                .map_or_else(|_| r.trim().to_owned(), |k| k.text().to_owned()),
            added: current.created.clone(),
        })
        .collect()
}

fn apply(entries: &mut Vec<RecipientEntry>, change: &KeyChange) -> Result<()> {
    match change {
        KeyChange::Add(r) => {
            let key = RecipientKey::parse(r)?;
            if entries.iter().any(|e| e.recipient == key.text()) {
                return Err(Error::Usage(format!(
                    "{} is already a recipient of the repository (`snapdrill keys list`)",
                    key.text()
                )));
            }
            if entries.len() >= keys::MAX_RECIPIENTS {
                return Err(Error::Usage(format!(
                    "the repository has {} recipients already, the most supported",
                    entries.len()
                )));
            }
            entries.push(RecipientEntry {
                recipient: key.text().to_owned(),
                added: format::format_time(SystemTime::now()),
            });
        }
        KeyChange::Remove(r) => {
            let text = RecipientKey::parse(r)
                .map_or_else(|_| r.trim().to_owned(), |k| k.text().to_owned());
            let before = entries.len();
            entries.retain(|e| e.recipient != text && keys::fingerprint(&e.recipient) != text);
            if entries.len() == before {
                return Err(Error::Usage(format!(
                    "{} is not a recipient of the repository (`snapdrill keys list` shows them, with fingerprints)",
                    short(&text)
                )));
            }
            if entries.is_empty() {
                return Err(Error::Usage(
                    "that is the repository's last recipient: add its successor first (`snapdrill keys add`), then remove it".into(),
                ));
            }
        }
    }
    Ok(())
}

/// The recipients of `entries`, parsed.
pub fn recipient_keys(entries: &[RecipientEntry]) -> Result<Vec<RecipientKey>> {
    entries
        .iter()
        .map(|e| RecipientKey::parse(&e.recipient))
        .collect()
}

const RESEAL_HINT: &str = "use the identity of a current recipient (`snapdrill keys list`), or run without --identity: new snapshots are then readable by the new recipient, older ones after `snapdrill rekey`";

/// Every read key of `current`, opened with `ids` and sealed again to `to`; `hint` says
/// what to do when the identity opens one not.
pub fn reseal(
    current: &RepoConfig,
    ids: &Identities,
    to: &[RecipientKey],
    hint: &str,
) -> Result<Vec<ReadKey>> {
    let sealed = current.sealed_read_keys();
    let mut out = Vec::with_capacity(sealed.len());
    for (blob, old) in sealed.iter().zip(&current.read_keys) {
        let secret = ids.open_read_key(blob).ok_or_else(|| {
            Error::key(
                format!(
                    "the identity {} does not open the repository's read key {} (it is not one of the recipients it was sealed to)",
                    ids.path.display(),
                    short(&old.recipient)
                ),
                hint,
            )
        })?;
        let public = std::str::FromStr::from_str(&old.recipient).map_err(|_| {
            Error::integrity(
                None,
                Some(format::CONFIG_OBJECT),
                "a read key's recipient does not parse",
            )
        })?;
        out.push(ReadKey::seal(&secret, &public, to, &old.created)?);
    }
    Ok(out)
}

/// Write config generation `generation` (`object`) into every usable store (see
/// [`place_generation`]); per store, written or why not. Two changes made at once stop the
/// later one.
pub async fn write_generation(
    repo: &Repository,
    generation: u64,
    object: Bytes,
) -> Result<Vec<(String, std::result::Result<(), String>)>> {
    let mut outcomes = Vec::new();
    for store in &repo.stores {
        let placed = place_generation(store, &repo.signer, generation, object.clone()).await;
        let outcome = match placed {
            Ok(_) => Ok(()),
            Err(e @ Error::Fatal { .. }) => return Err(e),
            Err(e) => Err(e.to_string()),
        };
        outcomes.push((store.name().to_owned(), outcome));
    }
    Ok(outcomes)
}

/// Write config generation `generation` into one store: its history copy
/// `keys/config-<generation>` first, create-only (another change that took the number is
/// `Error::Fatal`), then `config` — unless the store already holds that generation or a
/// newer one (a resumed rekey, a change that raced another): a config is never replaced by
/// an older one. Whether `config` was written.
pub async fn place_generation(
    store: &crate::store::StoreRef,
    signer: &ed25519_dalek::VerifyingKey,
    generation: u64,
    object: Bytes,
) -> Result<bool> {
    let history = format::config_history_object(generation);
    let placed = store::put_create_or_existing(
        store.as_ref(),
        &history,
        object.clone(),
        limits::CONFIG_OBJECT,
    )
    .await?;
    if let store::Placed::Theirs(_) = placed {
        return Err(Error::fatal(format!(
            "store '{}' already holds key generation {generation}, written by another change at the same time; nothing more was written",
            store.name()
        )));
    }
    if store_generation(store, signer).await.0 >= generation {
        return Ok(false);
    }
    store
        .put(format::CONFIG_OBJECT, object, store::PutMode::Overwrite)
        .await?;
    Ok(true)
}

/// The key generation of a store's `config` (0: none, unreadable, or not signed by
/// `signer`), and its bytes.
pub async fn store_generation(
    store: &crate::store::StoreRef,
    signer: &ed25519_dalek::VerifyingKey,
) -> (u64, Option<Bytes>) {
    match store
        .get(format::CONFIG_OBJECT, limits::CONFIG_OBJECT)
        .await
    {
        Ok(b) => match RepoConfig::from_object(&b, signer) {
            Ok(c) => (c.generation, Some(b)),
            Err(_) => (0, None),
        },
        Err(_) => (0, None),
    }
}

/// The highest generation any store's key history holds (0: none).
pub async fn highest_history(repo: &Repository) -> u64 {
    let mut highest = 0;
    for store in &repo.stores {
        if let Ok(listed) = store.list(format::KEYS_PREFIX).await {
            let held = listed
                .iter()
                .filter_map(|o| format::config_history_generation(&o.key));
            highest = held.fold(highest, u64::max);
        }
    }
    highest
}

/// One generation of the repository's keys, as its history copy records it.
#[derive(Debug, serde::Serialize)]
pub struct Generation {
    /// The generation.
    pub generation: u64,
    /// When the change was signed (the store's time of the history copy).
    pub time: Option<String>,
    /// What changed.
    pub change: String,
    /// How many recipients and read keys it had.
    pub recipients: usize,
    /// Read keys.
    pub read_keys: usize,
}

/// The key history (`keys/config-*`) of the first store that lists it, each generation
/// verified against the pinned signer; one that fails is shown as such.
pub async fn history(repo: &Repository) -> Result<Vec<Generation>> {
    let Some(store) = repo.stores.first() else {
        return Ok(Vec::new());
    };
    let listed = store.list(format::KEYS_PREFIX).await?;
    // Generations before a write-key rotation are signed by the retired keys.
    let trust = repo.trust();
    let signers: Vec<_> = std::iter::once(trust.current)
        .chain(trust.previous.iter().map(|(k, _)| *k))
        .collect();
    let mut out = Vec::new();
    for info in listed {
        let Some(generation) = format::config_history_generation(&info.key) else {
            continue;
        };
        let time = Some(format::format_time(info.modified));
        let entry = match store.get(&info.key, limits::CONFIG_OBJECT).await {
            Ok(bytes) => match verify_any(&bytes, &signers) {
                Ok(c) => Generation {
                    generation,
                    time,
                    change: c.change.unwrap_or_else(|| "-".into()),
                    recipients: c.recipients.len(),
                    read_keys: c.read_keys.len(),
                },
                Err(e) => bad_generation(generation, time, format!("does not verify: {e}")),
            },
            Err(e) if e.kind == StoreErrorKind::NotFound => continue,
            Err(e) => bad_generation(generation, time, format!("unreadable: {e}")),
        };
        out.push(entry);
    }
    out.sort_by_key(|g| g.generation);
    Ok(out)
}

/// A config object verified against the first of `keys` that signed it.
fn verify_any(
    bytes: &[u8],
    keys: &[ed25519_dalek::VerifyingKey],
) -> std::result::Result<RepoConfig, crate::format::repo_config::ConfigObjectError> {
    let mut last = None;
    for k in keys {
        match RepoConfig::from_object(bytes, k) {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e),
        }
    }
    Err(last.expect("at least the current signer"))
}

fn bad_generation(generation: u64, time: Option<String>, why: String) -> Generation {
    Generation {
        generation,
        time,
        change: why,
        recipients: 0,
        read_keys: 0,
    }
}

/// What `snapdrill keys list` shows.
#[derive(Debug, serde::Serialize)]
pub struct KeysListing {
    /// The repository.
    pub repository_id: String,
    /// Its key generation (0: format version 1 or 2, no read keys).
    pub generation: u64,
    /// The signer of new snapshots.
    pub signer: String,
    /// Write keys rotated away, with their windows.
    pub previous_signers: Vec<crate::format::repo_config::PreviousSigner>,
    /// The recipients, with kind and fingerprint.
    pub recipients: Vec<ListedRecipient>,
    /// Read keys (the last is current).
    pub read_keys: Vec<String>,
    /// The key history.
    pub history: Vec<Generation>,
    /// Differences between the config file and the repository (empty: they agree).
    pub mismatch: Option<String>,
}

/// One recipient as listed.
#[derive(Debug, serde::Serialize)]
pub struct ListedRecipient {
    /// As written in configs.
    pub recipient: String,
    /// `x25519`, `ssh-ed25519`, `ssh-rsa`, `plugin:NAME`.
    pub kind: String,
    /// First 8 bytes of the SHA-256 of the text, hex.
    pub fingerprint: String,
    /// When it was added (before format version 3: when the repository was created).
    pub added: String,
}

/// `snapdrill keys list`: the repository's recipients, read keys and key history, and
/// whether the config file agrees. Needs no key.
pub async fn list_keys(config: &Config) -> Result<KeysListing> {
    let opened = Repository::open_for(config, super::Purpose::Read).await?;
    let repo = opened.repo;
    let recipients = recorded_or_configured(config, &repo.config)
        .into_iter()
        .map(|e| {
            let kind = RecipientKey::parse(&e.recipient).map_or_else(|_| "?".into(), |k| k.kind());
            ListedRecipient {
                fingerprint: keys::fingerprint(&e.recipient),
                kind,
                recipient: e.recipient,
                added: e.added,
            }
        })
        .collect();
    let mismatch = check_recipients(config, &repo.config)
        .err()
        .map(|e| format!("{e}\nhint: {}", e.hint().unwrap_or_default()));
    Ok(KeysListing {
        repository_id: repo.config.repository_id.clone(),
        generation: repo.config.generation,
        signer: repo.config.signer.clone(),
        previous_signers: repo.config.previous_signers.clone(),
        recipients,
        read_keys: repo
            .config
            .read_keys
            .iter()
            .map(|k| k.recipient.clone())
            .collect(),
        history: history(&repo).await?,
        mismatch,
    })
}

/// What a write-key rotation did.
#[derive(Debug, serde::Serialize)]
pub struct Rotated {
    /// The new signer (`ed25519:…`), pinned in the config file.
    pub signer: String,
    /// The retired one.
    pub retired: String,
    /// Until when the retired key's documents are accepted and hosts pinning it follow.
    pub until: String,
    /// The generation that made the change.
    pub generation: u64,
    /// Where the retired write key was moved.
    pub retired_key_file: std::path::PathBuf,
    /// Per store: written, or why not.
    pub stores: Vec<(String, std::result::Result<(), String>)>,
}

/// `snapdrill keys rotate-write-key`: a new signing key for this repository (the dedup key
/// and the repository stay), signed into a new config generation with the retired key's
/// handover; the retired key is accepted for what it signed before `now + overlap`, and
/// hosts still pinning it follow until then. The new write key replaces the file (the old
/// one is kept beside it, renamed) and its signer is pinned in the config file.
pub async fn rotate_write_key(config: &Config, overlap: std::time::Duration) -> Result<Rotated> {
    let old = super::write_key(
        config,
        "rotate on the backup host that holds this repository's current write key",
    )?;
    let (stores, failed) = super::open_stores(config, false);
    let repo = Repository::open(stores, old.signer(), OpenMode::AnyUsable).await?;
    if repo.signer != old.signer() {
        return Err(Error::key(
            format!(
                "this write key was already rotated away: the repository's signer is {}",
                repo.config.signer
            ),
            "copy the current write key from the host that rotated it",
        ));
    }
    let staged = config.write_key.with_extension("new");
    let new = match staged.exists() {
        true => WriteKey::load(&staged)?, // a rotation that stopped half-way
        false => {
            let mut key = WriteKey::generate();
            key.repository_id = old.repository_id.clone();
            key.dedup = old.dedup;
            key.save(&staged)?;
            key
        }
    };
    let until = SystemTime::now() + overlap;
    let mut next = repo.config.rotated(&old, &new, until);
    next.generation = next.generation.max(highest_history(&repo).await + 1);
    let object = Bytes::from(next.to_object(&new));
    let mut outcomes = write_generation(&repo, next.generation, object).await?;
    outcomes.extend(failed.into_iter().map(|(n, e)| (n, Err(e.to_string()))));
    let retired_key_file = retire_key_file(config, &staged)?;
    let signer = keys::signer_to_string(&new.signer());
    crate::config::set_signer(&config.path, &signer)?;
    Ok(Rotated {
        signer,
        retired: keys::signer_to_string(&old.signer()),
        until: format::format_time(until),
        generation: next.generation,
        retired_key_file,
        stores: outcomes,
    })
}

/// Move the retired write key aside (`<file>.retired-<time>`) and the staged one in.
fn retire_key_file(config: &Config, staged: &std::path::Path) -> Result<std::path::PathBuf> {
    let stamp = format::format_time(SystemTime::now()).replace([':', '.'], "");
    let mut name = config.write_key.as_os_str().to_owned();
    name.push(format!(".retired-{stamp}"));
    let aside = std::path::PathBuf::from(name);
    std::fs::rename(&config.write_key, &aside)
        .map_err(|e| Error::io("renaming", &config.write_key, e))?;
    std::fs::rename(staged, &config.write_key).map_err(|e| Error::io("renaming", staged, e))?;
    Ok(aside)
}
