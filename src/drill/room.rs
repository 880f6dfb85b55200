//! The clean room every drill command works in: the stores as a disaster leaves them (no
//! local cache), the identity, and only the signer pinned in the config (the recovery kit —
//! never the backup host's write key). Which drills to run, and the evidence: each drill's
//! record kept in every store, the history read back and merged.

use std::sync::Arc;

use ed25519_dalek::VerifyingKey;

use super::Outcome;
use super::record::{self, BadRecord, DrillRecord};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::keys::{self, Identities};
use crate::repository::{self, OpenMode, Repository};
use crate::store::StoreRef;

/// Which stores to drill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// Every store, with per-object failover (labelled `all`).
    All,
    /// This store alone.
    Store(String),
    /// Every store alone, one after the other.
    EachStore,
}

/// One drill to run: its label and the stores it may use.
pub struct Plan {
    /// `all` or the store's name.
    pub label: String,
    /// The stores, in preference order.
    pub stores: Vec<StoreRef>,
}

/// The stores, keys and names a drill command needs.
pub struct Room {
    /// Stores that opened, in config order.
    pub stores: Vec<StoreRef>,
    /// Stores that did not, with why.
    pub unopened: Vec<(String, String)>,
    /// The signer pinned in the config.
    pub signer: VerifyingKey,
    /// The identity.
    pub identities: Arc<Identities>,
    /// The configured recipients (a record is sealed to them in a repository of format
    /// version 1 or 2; later ones seal it to their read key).
    pub recipients: Vec<String>,
    store_names: Vec<String>,
}

impl Room {
    /// Open the room of `config` with `identities`.
    pub fn open(config: &Config, identities: Arc<Identities>) -> Result<Room> {
        let signer = repository::signer(config, true)?;
        let recipients = config.recipients.clone();
        let (stores, failed) = repository::open_stores(config, false);
        Ok(Room {
            stores,
            unopened: failed
                .into_iter()
                .map(|(n, e)| (n, e.to_string()))
                .collect(),
            signer,
            identities,
            recipients,
            store_names: config.stores.iter().map(|s| s.name.clone()).collect(),
        })
    }

    /// The drills `which` asks for.
    pub fn plans(&self, which: &Which) -> Result<Vec<Plan>> {
        Ok(match which {
            Which::EachStore => self
                .store_names
                .iter()
                .map(|n| self.alone(n))
                .collect::<Result<_>>()?,
            Which::Store(name) => vec![self.alone(name)?],
            Which::All if self.stores.is_empty() => {
                return Err(Error::fatal("no configured store can be opened"));
            }
            Which::All => vec![Plan {
                label: "all".into(),
                stores: self.stores.clone(),
            }],
        })
    }

    fn alone(&self, name: &str) -> Result<Plan> {
        if let Some(s) = self.stores.iter().find(|s| s.name() == name) {
            return Ok(Plan {
                label: name.to_owned(),
                stores: vec![s.clone()],
            });
        }
        Err(match self.unopened.iter().find(|(n, _)| n == name) {
            Some((_, why)) => Error::fatal(format!("store '{name}' cannot be opened: {why}")),
            None => Error::Usage(format!(
                "no store named '{name}' in the config (stores: {})",
                self.store_names.join(", ")
            )),
        })
    }

    /// Keep a drill's record in every store (sealed to the recipients, authenticated with
    /// the dedup key). Returns what could not be done, for the command to report; a drill
    /// that ended before it opened the keys has no record to keep.
    pub async fn keep(&self, outcome: &Outcome) -> Vec<String> {
        let Some(dedup) = outcome.dedup else {
            return vec![
                "note: the drill record is not kept in the repository: the drill ended before it opened the repository's keys (the record above says why)".into(),
            ];
        };
        let to = match &outcome.seal_to {
            Some(r) => Ok(vec![r.clone()]),
            None => keys::recipient::legacy_recipients(&self.recipients),
        };
        let sealed = to
            .map_err(|e| e.to_string())
            .and_then(|to| record::seal(&outcome.record, &dedup, &to));
        match sealed {
            Ok(sealed) => record::store_everywhere(
                &self.stores,
                &outcome.record.drill_id,
                &dedup,
                sealed.into(),
            )
            .await
            .into_iter()
            .map(|(store, why)| format!("warning: drill record not kept in store '{store}': {why}"))
            .collect(),
            Err(e) => vec![format!("warning: drill record not kept: {e}")],
        }
    }

    /// The data sets `sel` admits, the one with the newest snapshot last: what a drill with
    /// no snapshot named visits, one drill each.
    pub async fn data_sets(
        &self,
        sel: &repository::Selection,
    ) -> Result<Vec<crate::format::commit::DataSet>> {
        let repo = Repository::open(self.stores.clone(), self.signer, OpenMode::AnyUsable).await?;
        let list = repo.snapshots().await?;
        Ok(list
            .data_sets(sel)
            .into_iter()
            .filter_map(|set| set.first().map(|s| s.commit.data_set()))
            .collect())
    }

    /// Every record in the stores, authenticated (and those that are not, apart).
    pub async fn history(&self) -> Result<(Vec<DrillRecord>, Vec<BadRecord>)> {
        let repo = Repository::open(self.stores.clone(), self.signer, OpenMode::AnyUsable).await?;
        let dedup = crate::restore::dedup_key(&repo, &self.identities)?;
        record::history(&repo.stores, &self.identities, &dedup).await
    }

    /// `fresh` records and the stored history, each drill once, oldest first.
    pub async fn with_history(&self, fresh: &[DrillRecord]) -> Result<Vec<DrillRecord>> {
        let mut all = fresh.to_vec();
        let (history, _) = self.history().await?;
        for h in history {
            if !all
                .iter()
                .any(|r| r.drill_id == h.drill_id && r.store == h.store)
            {
                all.push(h);
            }
        }
        all.sort_by(|a, b| a.started.cmp(&b.started));
        Ok(all)
    }
}
