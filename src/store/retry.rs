//! Per-store retries, request timeouts and a run deadline, as a [`Store`] wrapper.
//!
//! object_store retries HTTP 5xx inside each request; this layer adds what it cannot see:
//! a request that never answers (a stalled server) is cut at `timeout`, failures of kind
//! `Unavailable` are retried with backoff up to `retries` times, and once the store's
//! `deadline` has passed every call fails at once, so a slow store cannot hold a cron slot
//! (or the other stores' commits) beyond it.

use std::future::Future;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use super::{ObjectInfo, PutMode, Store, StoreError, StoreErrorKind, StoreRef};

/// Timeouts, retries, deadline and concurrency of one store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Longest wait for one request.
    pub timeout: Duration,
    /// Retries of a failed or timed-out request.
    pub retries: u32,
    /// Longest time the store may take for a whole command, from when it is opened.
    pub deadline: Option<Duration>,
    /// Concurrent uploads.
    pub concurrency: usize,
    /// Upload bandwidth in bytes per second, shared by every upload to the store.
    pub limit_upload: Option<u64>,
    /// Download bandwidth in bytes per second, shared by every download from the store.
    pub limit_download: Option<u64>,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            timeout: Duration::from_secs(60),
            retries: 3,
            deadline: None,
            concurrency: 8,
            limit_upload: None,
            limit_download: None,
        }
    }
}

/// The retry layer.
#[derive(Debug)]
pub struct Retrying {
    inner: StoreRef,
    tuning: Tuning,
    deadline: Option<Instant>,
}

impl Retrying {
    /// Wrap `inner`; the deadline starts now.
    pub fn new(inner: StoreRef, tuning: Tuning) -> Self {
        Retrying {
            deadline: tuning.deadline.map(|d| Instant::now() + d),
            inner,
            tuning,
        }
    }

    async fn run<T, F, Fut>(&self, key: Option<&str>, op: F) -> Result<T, StoreError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut attempt = 0;
        loop {
            let now = Instant::now();
            let budget = match self.deadline {
                Some(d) if d <= now => return Err(self.expired(key)),
                Some(d) => self.tuning.timeout.min(d - now),
                None => self.tuning.timeout,
            };
            let err = match tokio::time::timeout(budget, op()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) if e.kind != StoreErrorKind::Unavailable => return Err(e),
                Ok(Err(e)) => e,
                Err(_) => StoreError::new(
                    self.inner.name(),
                    key,
                    StoreErrorKind::Unavailable,
                    format!("no answer within {}", humantime::format_duration(budget)),
                ),
            };
            if attempt >= self.tuning.retries {
                let mut e = err;
                if attempt > 0 {
                    e.message = format!("{} (after {} attempts)", e.message, attempt + 1);
                }
                return Err(e);
            }
            attempt += 1;
            tracing::info!(store = self.inner.name(), attempt, error = %err, "retrying");
            let backoff = Duration::from_millis(100 << attempt.min(6)).min(Duration::from_secs(5));
            if self.deadline.is_some_and(|d| Instant::now() + backoff >= d) {
                return Err(self.expired(key));
            }
            tokio::time::sleep(backoff).await;
        }
    }

    fn expired(&self, key: Option<&str>) -> StoreError {
        let d = self.tuning.deadline.unwrap_or_default();
        StoreError::new(
            self.inner.name(),
            key,
            StoreErrorKind::Unavailable,
            format!(
                "the store's deadline of {} has passed",
                humantime::format_duration(d)
            ),
        )
    }
}

#[async_trait]
impl Store for Retrying {
    same_store_as_inner!();
    fn concurrency(&self) -> usize {
        self.tuning.concurrency
    }
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<(), StoreError> {
        self.run(Some(key), || self.inner.put(key, data.clone(), mode))
            .await
    }
    async fn get(&self, key: &str, limit: u64) -> Result<Bytes, StoreError> {
        self.run(Some(key), || self.inner.get(key, limit)).await
    }
    async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        self.run(Some(key), || self.inner.head(key)).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        self.run(Some(prefix), || self.inner.list(prefix)).await
    }
    async fn list_each(
        &self,
        prefix: &str,
        each: &mut (dyn FnMut(ObjectInfo) + Send),
    ) -> Result<(), StoreError> {
        // Each attempt borrows `each` in turn (`run` takes a `Fn`).
        let each = tokio::sync::Mutex::new(each);
        self.run(Some(prefix), || async {
            let mut each = each.lock().await;
            self.inner.list_each(prefix, &mut **each).await
        })
        .await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.run(Some(key), || self.inner.delete(key)).await
    }
}
