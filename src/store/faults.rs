//! A fault-injecting [`Store`] wrapper for tests: server errors, stalls, partial writes,
//! "committed then answered 500", an outage switch, and a store that ignores create-only
//! conditions (as WebDAV and some S3-compatible servers do). Deterministic per seed.
//! Built only for tests (`cfg(test)` or the `test-util` feature): the release library does
//! not carry it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{ObjectInfo, PutMode, Store, StoreError, StoreErrorKind, StoreRef};

/// What to inject. Rates are probabilities per request, in [0, 1].
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    /// Fail before reaching the store, as a 5xx would.
    pub error_rate: f64,
    /// Puts reach the store, then fail as if the answer were lost.
    pub commit_then_error_rate: f64,
    /// Puts store only the first half of the bytes, then fail.
    pub partial_write_rate: f64,
    /// Requests that hang for `stall` before going on.
    pub stall_rate: f64,
    /// How long a stalled request hangs.
    pub stall: Duration,
    /// Create-only puts overwrite silently.
    pub ignore_create: bool,
    /// Only these operations are affected (`put`, `get`, `head`, `list`, `delete`); empty: all.
    pub only: Vec<&'static str>,
    /// Objects whose key starts with one of these are never touched by faults.
    pub spare_prefixes: Vec<&'static str>,
    /// Affected requests wait here until the test opens the gate.
    pub gate: Option<Arc<Gate>>,
    /// Every listing (whatever `only` says; not of spared prefixes) hands out at most this
    /// many objects, then fails as a dropped connection would.
    pub list_fails_after: Option<usize>,
}

/// Holds requests until a test opens it, so that a test waits for observable state (how
/// many requests are held) instead of sleeping and hoping the other side got there.
#[derive(Debug, Default)]
pub struct Gate {
    open: AtomicBool,
    waiting: AtomicU64,
    notify: tokio::sync::Notify,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Arc<Self> {
        Arc::new(Gate::default())
    }

    /// Let every held request and every later one through.
    pub fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Requests held right now.
    pub fn waiting(&self) -> u64 {
        self.waiting.load(Ordering::SeqCst)
    }

    async fn pass(&self) {
        if self.open.load(Ordering::SeqCst) {
            return;
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        loop {
            // Registered before the check, so an `open` in between is not missed.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.open.load(Ordering::SeqCst) {
                break;
            }
            notified.await;
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The wrapper.
#[derive(Debug)]
pub struct FaultStore {
    inner: StoreRef,
    plan: FaultPlan,
    rng: Mutex<rand::rngs::StdRng>,
    down: AtomicBool,
    /// Requests seen.
    pub requests: AtomicU64,
    /// Faults injected.
    pub injected: AtomicU64,
    seen: Mutex<HashMap<(&'static str, String), u64>>,
}

impl FaultStore {
    /// Wrap `inner` with `plan`, seeded for reproducibility.
    pub fn new(inner: StoreRef, plan: FaultPlan, seed: u64) -> Self {
        FaultStore {
            inner,
            plan,
            rng: Mutex::new(rand::SeedableRng::seed_from_u64(seed)),
            down: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            injected: AtomicU64::new(0),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// How many `op` requests (`put`, `get`, ...) this store has seen for `key`.
    pub fn seen(&self, op: &str, key: &str) -> u64 {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.iter()
            .filter(|((o, k), _)| *o == op && k == key)
            .map(|(_, n)| *n)
            .sum()
    }

    /// Make every request fail as unreachable (or recover).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn roll(&self, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        rand::Rng::gen_bool(&mut *rng, rate.min(1.0))
    }

    fn applies(&self, op: &str, key: &str) -> bool {
        (self.plan.only.is_empty() || self.plan.only.contains(&op))
            && !self.plan.spare_prefixes.iter().any(|p| key.starts_with(p))
    }

    fn fault(&self, key: &str, what: &str) -> StoreError {
        self.injected.fetch_add(1, Ordering::Relaxed);
        StoreError::new(
            self.inner.name(),
            Some(key),
            StoreErrorKind::Unavailable,
            format!("injected fault: {what}"),
        )
    }

    /// Common gate of every request: outage, stall, server error.
    async fn gate(&self, op: &'static str, key: &str) -> Result<(), StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        *self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((op, key.to_owned()))
            .or_default() += 1;
        if self.down.load(Ordering::SeqCst) {
            return Err(self.fault(key, "store unreachable"));
        }
        if !self.applies(op, key) {
            return Ok(());
        }
        if let Some(gate) = &self.plan.gate {
            gate.pass().await;
        }
        if self.roll(self.plan.stall_rate) {
            self.injected.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(self.plan.stall).await;
        }
        if self.roll(self.plan.error_rate) {
            return Err(self.fault(key, "503 Service Unavailable"));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for FaultStore {
    // Capabilities too: a store that ignores conditions claims it honours them — that is
    // the trap.
    same_store_as_inner!();
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<(), StoreError> {
        self.gate("put", key).await?;
        let mode = if self.plan.ignore_create {
            PutMode::Overwrite
        } else {
            mode
        };
        if self.applies("put", key) && self.roll(self.plan.partial_write_rate) {
            let half = data.slice(..data.len() / 2);
            self.inner.put(key, half, PutMode::Overwrite).await?;
            return Err(self.fault(key, "connection reset after a partial write"));
        }
        self.inner.put(key, data, mode).await?;
        if self.applies("put", key) && self.roll(self.plan.commit_then_error_rate) {
            return Err(self.fault(key, "500 after the write was committed"));
        }
        Ok(())
    }
    async fn get(&self, key: &str, limit: u64) -> Result<Bytes, StoreError> {
        self.gate("get", key).await?;
        self.inner.get(key, limit).await
    }
    async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        self.gate("head", key).await?;
        self.inner.head(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        super::collect_listing(self, prefix).await
    }
    async fn list_each(
        &self,
        prefix: &str,
        each: &mut (dyn FnMut(ObjectInfo) + Send),
    ) -> Result<(), StoreError> {
        self.gate("list", prefix).await?;
        let spared = self
            .plan
            .spare_prefixes
            .iter()
            .any(|p| prefix.starts_with(p));
        let Some(limit) = self.plan.list_fails_after.filter(|_| !spared) else {
            return self.inner.list_each(prefix, each).await;
        };
        let mut handed = 0;
        self.injected.fetch_add(1, Ordering::Relaxed);
        self.inner
            .list_each(prefix, &mut |o| {
                handed += 1;
                if handed <= limit {
                    each(o);
                }
            })
            .await?;
        Err(self.fault(prefix, "connection reset mid-listing"))
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.gate("delete", key).await?;
        self.inner.delete(key).await
    }
}
