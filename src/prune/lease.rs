//! The prune lease: a create-only `locks/prune` object in each store, so that two prunes
//! never sweep one store at once. Backups take no lease (they never wait).
//!
//! Time is the store's: a lease is stale when the store's clock says it is older than its
//! TTL (the longer of the holder's, written in the lease, and ours), whatever the local clock
//! says (a host whose clock is two days ahead must not break a
//! live lease).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::{LOCKS_PREFIX, PROBES_PREFIX};
use crate::store::{PutMode, StoreErrorKind, StoreRef};

/// The lease object's name.
pub fn lease_object() -> String {
    format!("{LOCKS_PREFIX}prune")
}

/// The body of a lease.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Body {
    host: String,
    pid: u32,
    nonce: String,
    started: String,
    /// How long the holder asked for, by the store's clock (older leases lack it).
    #[serde(default)]
    ttl_secs: Option<u64>,
}

/// A lease held in one store; released by [`Lease::release`].
#[derive(Debug)]
pub struct Lease {
    store: StoreRef,
    body: Vec<u8>,
    /// The store's clock when the lease was taken.
    pub acquired_at: SystemTime,
    /// A stale lease that was broken to take this one, described.
    pub broke: Option<String>,
}

/// The store's current time: the modification time of a fresh probe object.
pub async fn store_now(store: &StoreRef) -> Result<SystemTime> {
    let key = format!("{PROBES_PREFIX}clock-{}", random_hex());
    store
        .put(&key, Bytes::from_static(b"clock"), PutMode::Overwrite)
        .await?;
    let info = store.head(&key).await;
    let _ = store.delete(&key).await;
    Ok(info?.modified)
}

fn random_hex() -> String {
    let mut r = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut r);
    hex::encode(r)
}

impl Lease {
    /// Take the lease in `store`, breaking a stale one (older than `ttl` by the store's clock).
    pub async fn acquire(store: &StoreRef, ttl: Duration, host: &str) -> Result<Lease> {
        let body = serde_json::to_vec(&Body {
            host: host.to_owned(),
            pid: std::process::id(),
            nonce: random_hex(),
            started: crate::format::format_time(SystemTime::now()),
            ttl_secs: Some(ttl.as_secs()),
        })
        .expect("lease serializes");
        let mut broke = None;
        for _ in 0..2 {
            match store
                .put(&lease_object(), Bytes::from(body.clone()), PutMode::Create)
                .await
            {
                Ok(()) => {
                    let acquired_at = store.head(&lease_object()).await?.modified;
                    return Ok(Lease {
                        store: store.clone(),
                        body,
                        acquired_at,
                        broke,
                    });
                }
                Err(e) if e.kind == StoreErrorKind::AlreadyExists => {
                    broke = Some(Self::break_if_stale(store, ttl).await?);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::LeaseHeld {
            store: store.name().to_owned(),
            holder: "another prune took the lease while a stale one was broken".into(),
        })
    }

    /// Delete the existing lease if it is stale; otherwise say who holds it.
    async fn break_if_stale(store: &StoreRef, ttl: Duration) -> Result<String> {
        let name = lease_object();
        let held = store.get(&name, 64 << 10).await?;
        let info = store.head(&name).await?;
        let now = store_now(store).await?;
        let age = now.duration_since(info.modified).unwrap_or_default();
        let body = serde_json::from_slice::<Body>(&held).ok();
        let holder = match &body {
            Some(b) => format!("host {} pid {} since {}", b.host, b.pid, b.started),
            None => "an unreadable lease".into(),
        };
        // The holder's own TTL counts when it asked for longer than ours (a long prune).
        let ttl = body
            .and_then(|b| b.ttl_secs)
            .map_or(ttl, |t| ttl.max(Duration::from_secs(t)));
        if age <= ttl {
            return Err(Error::LeaseHeld {
                store: store.name().to_owned(),
                holder: format!(
                    "{holder} (taken {} ago by the store's clock)",
                    humantime::format_duration(Duration::from_secs(age.as_secs()))
                ),
            });
        }
        // Delete only the lease we judged stale: if it changed meanwhile, leave it.
        if store.get(&name, 64 << 10).await? == held {
            store.delete(&name).await?;
        }
        Ok(format!(
            "broke a stale lease in store '{}': {holder}, {} old",
            store.name(),
            humantime::format_duration(Duration::from_secs(age.as_secs()))
        ))
    }

    /// Confirm the lease is still ours before deleting anything.
    pub async fn confirm(&self) -> Result<()> {
        match self.store.get(&lease_object(), 64 << 10).await {
            Ok(b) if b[..] == self.body[..] => Ok(()),
            Ok(_) | Err(_) => Err(Error::LeaseHeld {
                store: self.store.name().to_owned(),
                holder: "the lease was lost (broken as stale by another prune?); nothing more was deleted".into(),
            }),
        }
    }

    /// Give the lease back (only if it is still ours).
    pub async fn release(self) -> Result<()> {
        self.confirm().await?;
        self.store.delete(&lease_object()).await?;
        Ok(())
    }
}
