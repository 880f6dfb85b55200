//! A fault-injecting [`Store`] wrapper for tests: server errors, stalls, partial writes,
//! "committed then answered 500", an outage switch, and a store that ignores create-only
//! conditions (as WebDAV and some S3-compatible servers do). Deterministic per seed.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{Capabilities, ObjectInfo, PutMode, Store, StoreError, StoreErrorKind, StoreRef};

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
}

/// The wrapper.
#[derive(Debug)]
pub struct FaultStore {
    inner: StoreRef,
    plan: FaultPlan,
    rng: Mutex<u64>,
    down: AtomicBool,
    /// Requests seen.
    pub requests: AtomicU64,
    /// Faults injected.
    pub injected: AtomicU64,
}

impl FaultStore {
    /// Wrap `inner` with `plan`, seeded for reproducibility.
    pub fn new(inner: StoreRef, plan: FaultPlan, seed: u64) -> Self {
        FaultStore {
            inner,
            plan,
            rng: Mutex::new(seed | 1),
            down: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            injected: AtomicU64::new(0),
        }
    }

    /// Make every request fail as unreachable (or recover).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn roll(&self, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        let mut x = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        ((*x >> 11) as f64 / (1u64 << 53) as f64) < rate
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
    async fn gate(&self, op: &str, key: &str) -> Result<(), StoreError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if self.down.load(Ordering::SeqCst) {
            return Err(self.fault(key, "store unreachable"));
        }
        if !self.applies(op, key) {
            return Ok(());
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
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn location(&self) -> &str {
        self.inner.location()
    }
    fn capabilities(&self) -> Capabilities {
        // A store that ignores conditions claims it honours them: that is the trap.
        self.inner.capabilities()
    }
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
        self.gate("list", prefix).await?;
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.gate("delete", key).await?;
        self.inner.delete(key).await
    }
}
