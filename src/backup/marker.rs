//! In-flight markers: `writers/<snapshot-id>`, written in every store before a backup lists
//! anything and deleted when it ends (docs/format.md section 10).
//!
//! Backups take no lock; the marker only tells prune "a backup that began at this store time
//! may still reference what it listed". Prune deletes set-aside chunks (fossils) only once
//! every backup older than the set-aside has ended, so a backup never commits a reference to
//! an object prune removed.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::StoreStates;
use crate::format;
use crate::store::{PutMode, StoreRef};

/// The body of a marker (informational: prune reads only the store's time of the object).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Marker {
    /// The host running the backup.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// Its start by the host's clock.
    pub started: String,
}

/// Write the marker in every healthy store; a store that cannot take it leaves the run.
pub async fn announce(stores: &[StoreRef], states: &StoreStates, snapshot_id: &str, host: &str) {
    let body = Bytes::from(
        serde_json::to_vec(&Marker {
            host: host.to_owned(),
            pid: std::process::id(),
            started: format::format_time(std::time::SystemTime::now()),
        })
        .expect("marker serializes"),
    );
    let name = format::writer_object(snapshot_id);
    let puts = stores
        .iter()
        .map(|s| s.put(&name, body.clone(), PutMode::Overwrite));
    for (i, result) in futures::future::join_all(puts)
        .await
        .into_iter()
        .enumerate()
    {
        if let Err(e) = result {
            states.fail(i, format!("cannot write the in-flight marker: {e}"));
        }
    }
}

/// Delete the marker everywhere (best effort: prune treats old markers as stale).
pub async fn withdraw(stores: &[StoreRef], snapshot_id: &str) {
    let name = format::writer_object(snapshot_id);
    futures::future::join_all(stores.iter().map(|s| s.delete(&name))).await;
}
