//! `rekey`: move every object of every store onto a new read key, so that a recipient that
//! was removed — and anyone who copied an older read key — can no longer open anything.
//!
//! The order makes it safe to kill at any instant (docs/design.md, "Rekey"):
//!
//! 1. **Switch.** A new config generation adds the new read key (sealed to the current
//!    recipients) and keeps the older ones; it is written to the local journal first, then
//!    to every store. From here backups encrypt to the new key.
//! 2. **Objects.** Each chunk, fossil, drill record and forgotten snapshot's manifest is
//!    decrypted, checked (a chunk against its keyed id), encrypted to the new key, decrypted
//!    again and compared, and only then written over the old copy — the same new bytes to
//!    every store that holds it. A chunk's name is its keyed id, so restores accept the new
//!    bytes while the commit still pins the old ones.
//! 3. **Commits.** Each live snapshot's manifest is written under a new name, then its
//!    commit is re-signed naming it and the chunks' new hashes, then the old manifest goes.
//! 4. **Retire.** When every store is done, a last generation keeps only the new read key.
//!
//! A re-run after a crash reads the journal, takes back its own lease, adopts what the
//! killed run already wrote, and goes on.

mod commits;
mod journal;
mod objects;
mod records;
pub mod render;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::format::commit::ObjectRef;
use crate::format::repo_config::RepoConfig;
use crate::format::{self, limits};
use crate::keys::{Identities, WriteKey};
use crate::prune::lease::{Heartbeat, Lease};
use crate::repository::{self, Purpose, Repository, keyring};

/// What rekey did in one store.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreRekey {
    /// The store.
    pub store: String,
    /// Objects encrypted to the new read key and written.
    pub rewritten: u64,
    /// Objects that already were (a resumed run).
    pub already: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Commits re-signed.
    pub commits: u64,
    /// What could not be done.
    pub errors: Vec<String>,
}

/// The report of a rekey.
#[derive(Debug, Clone, Serialize)]
pub struct RekeyReport {
    /// The repository.
    pub repository_id: String,
    /// The new read key's public half.
    pub read_key: String,
    /// The generation that retired the older read keys (none: not finished).
    pub retired_at: Option<u64>,
    /// A killed run was resumed.
    pub resumed: bool,
    /// Per store.
    pub stores: Vec<StoreRekey>,
}

impl RekeyReport {
    /// 0 when finished, 3 when some object could not be moved (run again).
    pub fn exit_code(&self) -> i32 {
        match self.retired_at {
            Some(_) => crate::error::exit::OK,
            None => crate::error::exit::PARTIAL,
        }
    }
}

/// The keys a rekey works with.
pub(crate) struct Keys {
    /// Opens everything: the identity and every read key of the switch generation.
    pub old: Arc<Identities>,
    /// The new read key alone.
    pub new: age::x25519::Identity,
    /// Its public half.
    pub new_public: age::x25519::Recipient,
    /// The dedup key (checks chunks against their ids).
    pub dedup: [u8; 32],
    /// Signs the commits.
    pub write: WriteKey,
}

/// Run (or resume) a rekey of the repository of `config` with `identity` (a current
/// recipient's, not yet used on a repository) and the write key; `host` names this host in
/// the leases.
pub async fn run(config: &Config, identity: Arc<Identities>, host: &str) -> Result<RekeyReport> {
    let write = repository::write_key(
        config,
        "rekey needs this repository's write key (copy it from the backup host) and an identity",
    )?;
    let repo = Repository::open_for(config, Purpose::Retention).await?.repo;
    keyring::check_recipients(config, &repo.config)?;
    let mut journal = journal::Journal::load(&config.state_dir, &repo.config.repository_id)?;
    // A journal older than the repository's keys belongs to a run that finished (killed
    // before it removed the journal) or that a later key change superseded: start anew.
    if journal
        .as_ref()
        .is_some_and(|j| j.generation < repo.config.generation)
    {
        journal::Journal::remove(&config.state_dir, &repo.config.repository_id)?;
        journal = None;
    }
    let leases = take_leases(&repo, config, host).await?;
    let heartbeat = Heartbeat::start(&leases);
    let result = rekey(config, &repo, identity, write, journal, &leases).await;
    heartbeat.stop().await;
    let mut released = true;
    for lease in leases {
        released &= lease.release().await.is_ok();
    }
    if released {
        journal::forget_lease_nonce(&config.state_dir, &repo.config.repository_id);
    }
    result
}

async fn rekey(
    config: &Config,
    repo: &Repository,
    identity: Arc<Identities>,
    write: WriteKey,
    journal: Option<journal::Journal>,
    leases: &[Lease],
) -> Result<RekeyReport> {
    let resumed = journal.is_some();
    let (switch, journal) = match journal {
        Some(j) => (j.switch_config(&repo.signer)?, j),
        None => {
            let switch = switch_config(config, repo, &identity, &write)?;
            let j = journal::Journal::new(&switch, &write);
            j.save(&config.state_dir)?;
            (switch, j)
        }
    };
    keyring::write_generation(
        repo,
        switch.generation,
        Bytes::from(switch.to_object(&write)),
    )
    .await?;
    objects::no_early_writers(repo, &config.prune, &switch).await?;
    let keys = open_keys(identity, &switch, write)?;
    let mut stores: Vec<StoreRekey> = repo
        .stores
        .iter()
        .map(|s| StoreRekey {
            store: s.name().to_owned(),
            ..Default::default()
        })
        .collect();
    let snapshots = repo.snapshots().await?;
    let chunks = objects::run(repo, &keys, &snapshots, leases, &mut stores).await?;
    records::run(repo, &keys, leases, &mut stores).await?;
    commits::run(
        repo,
        &keys,
        &snapshots,
        &chunks,
        switch.generation,
        leases,
        &mut stores,
    )
    .await?;
    let mut report = RekeyReport {
        repository_id: repo.config.repository_id.clone(),
        read_key: keys.new_public.to_string(),
        retired_at: None,
        resumed,
        stores,
    };
    if report.stores.iter().all(|s| s.errors.is_empty()) {
        let mut journal = journal;
        report.retired_at =
            Some(retire(repo, &switch, &keys, &mut journal, &config.state_dir).await?);
        journal::Journal::remove(&config.state_dir, &journal.repository_id)?;
    }
    Ok(report)
}

/// The switch generation: every read key sealed again to the current recipients, and a
/// new one, current from now on.
fn switch_config(
    config: &Config,
    repo: &Repository,
    ids: &Identities,
    write: &WriteKey,
) -> Result<RepoConfig> {
    let current = &repo.config;
    // A repository of format 2 records no recipients: the configured ones become its first.
    let entries = keyring::recorded_or_configured(config, current);
    let to = keyring::recipient_keys(&entries)?;
    let hint = "rekey needs the identity of a recipient `snapdrill keys list` shows";
    let mut read_keys = keyring::reseal(current, ids, &to, hint)?;
    let now = format::format_time(std::time::SystemTime::now());
    let (new, public) = crate::format::repo_config::ReadKey::fresh(&to, &now)?;
    read_keys.push(new);
    current.successor(
        write,
        entries,
        &to,
        read_keys,
        format!(
            "rekey: new read key {}",
            keyring::short(&public.to_string())
        ),
    )
}

/// Open the switch generation's read keys with the identity.
fn open_keys(old: Arc<Identities>, switch: &RepoConfig, write: WriteKey) -> Result<Keys> {
    let sealed = switch.sealed_read_keys();
    let newest = sealed
        .last()
        .and_then(|b| old.open_read_key(b))
        .ok_or_else(|| {
            Error::key(
                format!(
                    "the identity {} does not open the new read key",
                    old.path.display()
                ),
                "rekey needs a current recipient's identity",
            )
        })?;
    let new = age::x25519::Identity::from_str(age::secrecy::ExposeSecret::expose_secret(&newest))
        .map_err(|_| Error::fatal("the new read key does not parse"))?;
    old.unlock(&sealed);
    let dedup = switch.dedup_key(old.as_age()).map_err(|e| {
        Error::key(
            format!("the dedup key: {e}"),
            "rekey needs a current recipient's identity",
        )
    })?;
    Ok(Keys {
        new_public: new.to_public(),
        new,
        old,
        dedup,
        write,
    })
}

/// The last generation: only the new read key (made once, kept in the journal).
async fn retire(
    repo: &Repository,
    switch: &RepoConfig,
    keys: &Keys,
    journal: &mut journal::Journal,
    state_dir: &std::path::Path,
) -> Result<u64> {
    let done = match journal.retire_config(&repo.signer)? {
        Some(done) => done,
        None => {
            let to = keyring::recipient_keys(&switch.recipients)?;
            let newest = switch.read_keys.last().cloned().into_iter().collect();
            let change = "rekey done: older read keys retired".to_owned();
            let done =
                switch.successor(&keys.write, switch.recipients.clone(), &to, newest, change)?;
            journal.set_retire(&done, &keys.write, state_dir)?;
            done
        }
    };
    keyring::write_generation(
        repo,
        done.generation,
        Bytes::from(done.to_object(&keys.write)),
    )
    .await?;
    Ok(done.generation)
}

/// The prune lease in every store (rekey rewrites what prune would collect); the lease a
/// killed run of ours left (its nonce was written down before it was taken) is taken back
/// at once.
async fn take_leases(repo: &Repository, config: &Config, host: &str) -> Result<Vec<Lease>> {
    let nonce = journal::lease_nonce(&config.state_dir, &repo.config.repository_id)?;
    let mut leases = Vec::new();
    for store in &repo.stores {
        Lease::break_own(store, &nonce).await?;
        match Lease::acquire_with(store, &config.prune, &format!("{host} (rekey)"), &nonce).await {
            Ok(l) => leases.push(l),
            Err(e) => {
                for l in leases {
                    let _ = l.release().await;
                }
                return Err(e);
            }
        }
    }
    Ok(leases)
}

/// The new name, size and SHA-256 of each chunk object, by name.
pub(crate) type ChunkMap = HashMap<String, ObjectRef>;

/// Largest object rekey reads, by kind.
pub(crate) fn limit_of(name: &str) -> u64 {
    if name.starts_with(format::MANIFESTS_PREFIX) {
        limits::MANIFEST
    } else if name.starts_with(format::DRILLS_PREFIX) {
        limits::DRILL_RECORD
    } else if name.starts_with(format::AUDITS_PREFIX) {
        limits::AUDIT_RECORD
    } else {
        limits::CHUNK + limits::SEAL_OVERHEAD
    }
}
