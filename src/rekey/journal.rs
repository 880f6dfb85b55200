//! The rekey journal (`state_dir/rekey/<repository-id>.json`): the switch generation's
//! signed config, written before any store is touched, so that
//! a run killed at any instant is resumed, never started over with a second new key.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::repo_config::RepoConfig;
use crate::keys::WriteKey;
use crate::localfs::atomic::{self, NewMode};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Journal {
    pub(super) repository_id: String,
    /// The switch generation.
    pub(super) generation: u64,
    /// Its signed config object, base64 (it holds the new read key, sealed).
    config: String,
    /// The retiring generation's signed config, base64, once made: written down before any
    /// store gets it, so that a resumed run writes the very same bytes.
    #[serde(default)]
    retire: Option<String>,
}

/// The nonce of the leases a rekey of this repository takes, written before it takes them
/// (`state_dir/rekey/<repository-id>.lease`): a run killed while holding them is known by
/// the next one, which takes them back at once. One nonce is kept until a rekey finishes.
pub(super) fn lease_nonce(state_dir: &Path, repository_id: &str) -> Result<String> {
    let p = state_dir
        .join("rekey")
        .join(format!("{repository_id}.lease"));
    if let Ok(text) = std::fs::read_to_string(&p)
        && text.trim().len() == 16
    {
        return Ok(text.trim().to_owned());
    }
    let nonce = crate::prune::lease::random_hex();
    atomic::write(&p, nonce.as_bytes(), NewMode::Private, true)
        .map_err(|e| Error::io("writing", &p, e))?;
    Ok(nonce)
}

/// Forget the lease nonce (the rekey finished and released its leases).
pub(super) fn forget_lease_nonce(state_dir: &Path, repository_id: &str) {
    let _ = std::fs::remove_file(
        state_dir
            .join("rekey")
            .join(format!("{repository_id}.lease")),
    );
}

fn path(state_dir: &Path, repository_id: &str) -> PathBuf {
    state_dir
        .join("rekey")
        .join(format!("{repository_id}.json"))
}

impl Journal {
    pub(super) fn new(switch: &RepoConfig, key: &WriteKey) -> Self {
        Journal {
            repository_id: switch.repository_id.clone(),
            generation: switch.generation,
            config: B64.encode(switch.to_object(key)),
            retire: None,
        }
    }

    /// The journal of an unfinished rekey, if there is one.
    pub(super) fn load(state_dir: &Path, repository_id: &str) -> Result<Option<Self>> {
        let p = path(state_dir, repository_id);
        match std::fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::fatal(format!(
                    "the rekey journal {} is unreadable ({e}); if no rekey is under way, remove it",
                    p.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("reading", p, e)),
        }
    }

    pub(super) fn save(&self, state_dir: &Path) -> Result<()> {
        let p = path(state_dir, &self.repository_id);
        let bytes = serde_json::to_vec_pretty(self).expect("journal serializes");
        atomic::write(&p, &bytes, NewMode::Private, true).map_err(|e| Error::io("writing", p, e))
    }

    pub(super) fn remove(state_dir: &Path, repository_id: &str) -> Result<()> {
        let p = path(state_dir, repository_id);
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("removing", p, e)),
        }
    }

    /// The retiring generation, when an earlier run made it.
    pub(super) fn retire_config(&self, signer: &VerifyingKey) -> Result<Option<RepoConfig>> {
        let Some(b64) = &self.retire else {
            return Ok(None);
        };
        let object = B64
            .decode(b64)
            .map_err(|_| Error::fatal("the rekey journal's retiring config is not base64"))?;
        RepoConfig::from_object(&object, signer)
            .map(Some)
            .map_err(|e| {
                Error::fatal(format!(
                    "the rekey journal's retiring config does not verify: {e}"
                ))
            })
    }

    /// Write down the retiring generation.
    pub(super) fn set_retire(
        &mut self,
        done: &RepoConfig,
        key: &WriteKey,
        state_dir: &Path,
    ) -> Result<()> {
        self.retire = Some(B64.encode(done.to_object(key)));
        self.save(state_dir)
    }

    /// The switch generation, verified against the pinned signer.
    pub(super) fn switch_config(&self, signer: &VerifyingKey) -> Result<RepoConfig> {
        let object = B64
            .decode(&self.config)
            .map_err(|_| Error::fatal("the rekey journal's config is not base64"))?;
        RepoConfig::from_object(&object, signer)
            .map_err(|e| Error::fatal(format!("the rekey journal's config does not verify: {e}")))
    }
}
