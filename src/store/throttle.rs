//! Bandwidth limits (`[[store]] limit_upload` / `limit_download`, `--limit-upload` /
//! `--limit-download`) as a [`Store`] wrapper, so that a nightly backup cannot saturate a
//! site's uplink.
//!
//! Each direction is one budget shared by every concurrent request to the store: a request
//! of `n` bytes reserves the next `n / rate` seconds of the link and waits until they have
//! passed — an upload before it is sent, a download before it is handed on (its size is
//! known only then). Over a run the bytes moved never exceed `rate × elapsed time`.
//! The wait lies outside the retry layer's per-request timeout: a slow limit never turns
//! into a timeout.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use super::{ObjectInfo, PutMode, Store, StoreError, StoreRef};

/// One direction's budget: the instant from which the link is free again.
#[derive(Debug)]
struct Budget {
    bytes_per_sec: u64,
    free_from: Mutex<Option<Instant>>,
}

impl Budget {
    fn new(bytes_per_sec: u64) -> Budget {
        Budget {
            bytes_per_sec: bytes_per_sec.max(1),
            free_from: Mutex::new(None),
        }
    }

    /// Reserve `n` bytes of the link and wait until their time has passed.
    async fn spend(&self, n: u64) {
        let until = {
            let mut free = self.free_from.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let start = free.map_or(now, |f| f.max(now));
            let end = start + Duration::from_secs_f64(n as f64 / self.bytes_per_sec as f64);
            *free = Some(end);
            end
        };
        tokio::time::sleep_until(until.into()).await;
    }
}

/// A store whose uploads and downloads are held to a rate.
#[derive(Debug)]
pub struct Throttled {
    inner: StoreRef,
    upload: Option<Budget>,
    download: Option<Budget>,
}

impl Throttled {
    /// Wrap `inner`: `upload` and `download` in bytes per second (`None`: no limit).
    pub fn new(inner: StoreRef, upload: Option<u64>, download: Option<u64>) -> Throttled {
        Throttled {
            inner,
            upload: upload.map(Budget::new),
            download: download.map(Budget::new),
        }
    }
}

#[async_trait]
impl Store for Throttled {
    same_store_as_inner!();
    fn concurrency(&self) -> usize {
        self.inner.concurrency()
    }
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<(), StoreError> {
        if let Some(b) = &self.upload {
            b.spend(data.len() as u64).await;
        }
        self.inner.put(key, data, mode).await
    }
    async fn get(&self, key: &str, limit: u64) -> Result<Bytes, StoreError> {
        let data = self.inner.get(key, limit).await?;
        if let Some(b) = &self.download {
            b.spend(data.len() as u64).await;
        }
        Ok(data)
    }
    async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        self.inner.head(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        self.inner.list(prefix).await
    }
    async fn list_each(
        &self,
        prefix: &str,
        each: &mut (dyn FnMut(ObjectInfo) + Send),
    ) -> Result<(), StoreError> {
        self.inner.list_each(prefix, each).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
}
