//! The prune lease: a create-only `locks/prune` object in each store, so that two prunes
//! never sweep one store at once. Backups take no lease (they never wait).
//!
//! Time is the store's: a lease is stale when the store's clock says it is older than its
//! TTL (the longer of the holder's, written in the lease, and ours), whatever the local clock
//! says (a host whose clock is two days ahead must not break a
//! live lease).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::{LOCKS_PREFIX, PROBES_PREFIX};
use crate::store::{PutMode, StoreError, StoreErrorKind, StoreRef};

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
    /// Bumped at each renewal, so that a renewed lease never has the bytes that a breaker
    /// judged stale (it deletes only the bytes it read).
    #[serde(default)]
    renewals: u64,
}

/// A lease held in one store; renewed by [`Heartbeat`], released by [`Lease::release`].
#[derive(Debug)]
pub struct Lease {
    store: StoreRef,
    ttl: Duration,
    held: Arc<Held>,
    /// The store's clock when the lease was taken.
    pub acquired_at: SystemTime,
    /// A stale lease that was broken to take this one, described.
    pub broke: Option<String>,
}

/// What this process knows of its lease; shared with the heartbeat.
#[derive(Debug)]
struct Held {
    /// The lease object's bytes as we last wrote them.
    body: Mutex<Vec<u8>>,
    /// When we last confirmed and rewrote it (the local monotonic clock: a process that was
    /// suspended sees the time pass and stops trusting its lease).
    renewed: Mutex<Instant>,
    /// Someone else's bytes stand in the lease object: never delete again.
    lost: AtomicBool,
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

/// 8 random bytes, hex (lease nonces, probe names).
pub fn random_hex() -> String {
    let mut r = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut r);
    hex::encode(r)
}

impl Lease {
    /// Take the lease in `store`, breaking a stale one: older, by the store's clock, than our
    /// TTL or the TTL its holder asked for, whichever is longer — but never longer than
    /// `max_lease_ttl`.
    pub async fn acquire(
        store: &StoreRef,
        settings: &crate::config::PruneSettings,
        host: &str,
    ) -> Result<Lease> {
        Self::acquire_with(store, settings, host, &random_hex()).await
    }

    /// As [`Lease::acquire`], with a nonce the caller chose — and wrote down first, so
    /// that a run killed while it held the lease can be recognised by its next run.
    pub async fn acquire_with(
        store: &StoreRef,
        settings: &crate::config::PruneSettings,
        host: &str,
        nonce: &str,
    ) -> Result<Lease> {
        let ttl = settings.lease_ttl;
        let body = serde_json::to_vec(&Body {
            host: host.to_owned(),
            pid: std::process::id(),
            nonce: nonce.to_owned(),
            started: crate::format::format_time(SystemTime::now()),
            ttl_secs: Some(ttl.as_secs()),
            renewals: 0,
        })
        .expect("lease serializes");
        let mut broke = None;
        for _ in 0..2 {
            match put_lease(store, &body, PutMode::Create).await {
                Ok(()) => {
                    let acquired_at = store.head(&lease_object()).await?.modified;
                    return Ok(Lease {
                        store: store.clone(),
                        ttl,
                        held: Arc::new(Held {
                            body: Mutex::new(body),
                            renewed: Mutex::new(Instant::now()),
                            lost: AtomicBool::new(false),
                        }),
                        acquired_at,
                        broke,
                    });
                }
                Err(e) if e.kind == StoreErrorKind::AlreadyExists => {
                    broke = Some(Self::break_if_stale(store, ttl, settings.max_lease_ttl).await?);
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
    async fn break_if_stale(store: &StoreRef, ttl: Duration, max_ttl: Duration) -> Result<String> {
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
        // The holder's own TTL counts when it asked for longer than ours (a long prune), up
        // to the cap: a lease claiming "forever" would otherwise block every prune.
        let ttl = body
            .and_then(|b| b.ttl_secs)
            .map_or(ttl, |t| ttl.max(Duration::from_secs(t).min(max_ttl)));
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

    /// Break the lease in `store` if it carries `nonce`: the lease of an earlier run of
    /// this very operation, killed before it could release it (its journal kept the nonce).
    pub async fn break_own(store: &StoreRef, nonce: &str) -> Result<bool> {
        let name = lease_object();
        let held = match store.get(&name, 64 << 10).await {
            Ok(b) => b,
            Err(e) if e.kind == StoreErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        match serde_json::from_slice::<Body>(&held) {
            Ok(b) if !nonce.is_empty() && b.nonce == nonce => {
                store.delete(&name).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Break whatever lease stands in `store`, however young (an operator's decision:
    /// `prune --break-lease`, once sure no prune runs). Returns who held it, if anyone.
    pub async fn break_now(store: &StoreRef) -> Result<Option<String>> {
        let name = lease_object();
        let held = match store.get(&name, 64 << 10).await {
            Ok(b) => b,
            Err(e) if e.kind == StoreErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let holder = match serde_json::from_slice::<Body>(&held) {
            Ok(b) => format!("host {} pid {} since {}", b.host, b.pid, b.started),
            Err(_) => "an unreadable lease".into(),
        };
        store.delete(&name).await?;
        Ok(Some(holder))
    }

    /// Confirm the lease is still ours, from what the heartbeat last saw (no request):
    /// called before every delete. Fails once another holder's bytes were seen, or when the
    /// lease went unrenewed for half its TTL (the store unreachable, or this process stopped)
    /// — by then another prune may soon judge it stale.
    pub fn check(&self) -> Result<()> {
        let unrenewed = lock(&self.held.renewed).elapsed();
        if self.held.lost.load(Ordering::SeqCst) || unrenewed > self.ttl / 2 {
            return Err(self.lost_error(unrenewed));
        }
        Ok(())
    }

    fn lost_error(&self, unrenewed: Duration) -> Error {
        let why = if self.held.lost.load(Ordering::SeqCst) {
            "the lease was lost (broken as stale by another prune?)".to_owned()
        } else {
            format!(
                "the lease could not be renewed for {} (half its TTL)",
                humantime::format_duration(Duration::from_secs(unrenewed.as_secs()))
            )
        };
        Error::LeaseHeld {
            store: self.store.name().to_owned(),
            holder: format!("{why}; prune stopped deleting in this store"),
        }
    }

    /// Read the lease object back: is it still ours, and renewed recently enough?
    pub async fn confirm(&self) -> Result<()> {
        self.still_ours().await?;
        self.check()
    }

    /// Read the lease object back: does it still hold our bytes?
    async fn still_ours(&self) -> Result<()> {
        let ours = lock(&self.held.body).clone();
        match self.store.get(&lease_object(), 64 << 10).await {
            Ok(b) if b[..] == ours[..] => Ok(()),
            Ok(_) => {
                self.held.lost.store(true, Ordering::SeqCst);
                Err(self.lost_error(Duration::ZERO))
            }
            Err(e) if e.kind == StoreErrorKind::NotFound => {
                self.held.lost.store(true, Ordering::SeqCst);
                Err(self.lost_error(Duration::ZERO))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Confirm the lease, then rewrite it with a new renewal count: its modification time,
    /// by the store's clock, starts again.
    async fn renew(&self) -> Result<()> {
        // Our bytes still there prove nobody broke the lease, however late this renewal is.
        self.still_ours().await?;
        let mut body: Body = serde_json::from_slice(&lock(&self.held.body)).expect("our own lease");
        body.renewals += 1;
        let bytes = serde_json::to_vec(&body).expect("lease serializes");
        put_lease(&self.store, &bytes, PutMode::Overwrite).await?;
        *lock(&self.held.body) = bytes;
        *lock(&self.held.renewed) = Instant::now();
        Ok(())
    }

    /// Give the lease back (only if it is still ours).
    pub async fn release(self) -> Result<()> {
        // Ours however long ago it was renewed: give it back rather than leave it to go stale.
        self.still_ours().await?;
        self.store.delete(&lease_object()).await?;
        Ok(())
    }
}

/// Renews every lease each quarter of its TTL while a prune runs, so that a prune longer
/// than the TTL keeps its leases. Stop it before releasing them.
#[derive(Debug)]
pub struct Heartbeat {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Heartbeat {
    /// Start renewing `leases`.
    pub fn start(leases: &[Lease]) -> Heartbeat {
        // Handles on the same leases: renewals show in the holders' `check`.
        let leases: Vec<Lease> = leases
            .iter()
            .map(|l| Lease {
                held: l.held.clone(),
                store: l.store.clone(),
                broke: None,
                ..*l
            })
            .collect();
        let every = leases
            .iter()
            .map(|l| l.ttl / 4)
            .min()
            .unwrap_or(Duration::from_secs(60))
            .max(Duration::from_millis(100));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stopped.changed() => return,
                }
                for l in &leases {
                    // A failed renewal shows in `check` (lost, or unrenewed too long).
                    let _ = l.renew().await;
                }
            }
        });
        Heartbeat { stop, task }
    }

    /// Stop renewing, after any renewal in flight has finished (never cut one short: its
    /// write might land after the lease is released and leave a lease behind).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Write the lease object. A write whose answer was lost — an error, or `AlreadyExists`
/// from a retry of our own create — counts when the store holds exactly our bytes (they
/// carry a random nonce, so they are no one else's); otherwise this process would take its
/// own lease for another holder's and leave it to go stale.
async fn put_lease(store: &StoreRef, bytes: &[u8], mode: PutMode) -> Result<(), StoreError> {
    let Err(e) = store
        .put(&lease_object(), Bytes::copy_from_slice(bytes), mode)
        .await
    else {
        return Ok(());
    };
    match store.get(&lease_object(), 64 << 10).await {
        Ok(held) if held[..] == bytes[..] => Ok(()),
        _ => Err(e),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
