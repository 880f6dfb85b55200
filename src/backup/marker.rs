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
    /// The kernel boot and PID namespace it ran in: a later backup in the same scope can
    /// tell that the process is gone and remove the marker of a killed run.
    #[serde(default)]
    pub scope: Option<String>,
}

/// This process's boot id and PID namespace (Linux), if they can be read.
fn scope() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    Some(format!("{}/{}", boot.trim(), ns.display()))
}

/// Is `pid` a live process in our PID namespace? (`/proc` shows the namespace it was
/// mounted for; when in doubt, the answer is "alive".)
fn alive(pid: u32) -> bool {
    !std::path::Path::new("/proc/self").exists()
        || std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Remove the markers of backups that ran in this kernel boot and PID namespace and whose
/// process is gone (killed or crashed), so prune need not wait `writer_timeout` for them.
/// Best effort: a marker that cannot be read or judged is left alone.
pub async fn reap_dead(stores: &[StoreRef]) -> usize {
    let Some(mine) = scope() else { return 0 };
    let mut reaped = 0;
    for store in stores {
        let Ok(list) = store.list(format::WRITERS_PREFIX).await else {
            continue;
        };
        for info in list {
            let Ok(body) = store.get(&info.key, 4096).await else {
                continue;
            };
            let Ok(m) = serde_json::from_slice::<Marker>(&body) else {
                continue;
            };
            let dead = m.scope.as_deref() == Some(mine.as_str())
                && m.pid != std::process::id()
                && !alive(m.pid);
            if dead && store.delete(&info.key).await.is_ok() {
                reaped += 1;
            }
        }
    }
    reaped
}

/// Write the marker in every healthy store; a store that cannot take it leaves the run.
pub async fn announce(stores: &[StoreRef], states: &StoreStates, snapshot_id: &str, host: &str) {
    let body = Bytes::from(
        serde_json::to_vec(&Marker {
            host: host.to_owned(),
            pid: std::process::id(),
            started: format::format_time(std::time::SystemTime::now()),
            scope: scope(),
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
