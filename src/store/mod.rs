//! The storage seam: a small [`Store`] trait that the engine talks to.
//!
//! Exactly one module, [`backend`], imports `object_store` (its API changes between minor
//! versions). Everything else — fan-out to several stores, fault injection, throttling in
//! tests — is a wrapper of this trait.

/// The methods of a store wrapper (retries, bandwidth limits, faults) that pass through to
/// its `inner` store unchanged: which store it is, and what it can guarantee.
macro_rules! same_store_as_inner {
    () => {
        fn name(&self) -> &str {
            self.inner.name()
        }
        fn location(&self) -> &str {
            self.inner.location()
        }
        fn capabilities(&self) -> $crate::store::Capabilities {
            self.inner.capabilities()
        }
    };
}

pub mod backend;
#[cfg(any(test, feature = "test-util"))]
pub mod faults;
pub mod human;
pub mod location;
pub mod redact;
pub mod retry;
pub mod throttle;

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};

/// What kind of failure a store reported; the engine decides on kinds, never on strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The object does not exist.
    NotFound,
    /// A create-only write found an object already there.
    AlreadyExists,
    /// The store cannot do this (e.g. create-only writes over WebDAV).
    NotSupported,
    /// Credentials missing, wrong or without permission.
    Denied,
    /// The object exists but is not what it must be (size, hash, limit).
    Corrupt,
    /// Network, timeout, server error, local I/O: may work on a retry.
    Unavailable,
    /// The URL or options do not describe a usable store.
    Config,
}

/// An error from a store, naming the store and, when there is one, the object.
#[derive(Debug, Clone, thiserror::Error)]
#[error("store '{store}'{}: {message}", key.as_ref().map(|k| format!(", object '{k}'")).unwrap_or_default())]
pub struct StoreError {
    /// The store's configured name.
    pub store: String,
    /// The object key, when the error is about one object.
    pub key: Option<String>,
    /// The kind of failure.
    pub kind: StoreErrorKind,
    /// A human description, with credentials already redacted.
    pub message: String,
    /// When `message` names a known cause in plain words: what to do, and the library's
    /// own text (redacted, shown with `--verbose`). Boxed: errors travel in every `Result`.
    pub explained: Option<Box<Explained>>,
}

/// What [`StoreError::explained`] holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    /// What to do.
    pub advice: String,
    /// The library's own text, redacted.
    pub raw: String,
}

impl StoreError {
    /// A new error.
    pub fn new(
        store: &str,
        key: Option<&str>,
        kind: StoreErrorKind,
        message: impl Into<String>,
    ) -> Self {
        StoreError {
            store: store.to_owned(),
            key: key.map(str::to_owned),
            kind,
            message: message.into(),
            explained: None,
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        if let Some(e) = &self.explained {
            return Some(e.advice.clone());
        }
        Some(match self.kind {
            StoreErrorKind::NotFound => {
                "the object is missing from this replica; other stores are tried when configured"
            }
            StoreErrorKind::Denied => "check the store's credentials and permissions",
            StoreErrorKind::Unavailable => {
                "check that the store is reachable, then run the command again"
            }
            StoreErrorKind::Config => "check the store's url and options in the config",
            StoreErrorKind::Corrupt => "the object is damaged on this replica",
            _ => return None,
        }
        .to_owned())
    }
}

/// One object as a listing or a HEAD request reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Object name relative to the store's root (e.g. `chunks/ab/ab12...`).
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time by the store's own clock.
    pub modified: SystemTime,
}

/// How a put treats an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Fail with [`StoreErrorKind::AlreadyExists`] if the object exists, where the store can.
    Create,
    /// Replace any existing object.
    Overwrite,
}

/// What a store can guarantee, probed or known per backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Create-only puts really refuse to overwrite.
    pub create_only: bool,
}

/// The storage interface of the engine. Keys are `/`-separated object names relative to the
/// store's root; implementations must be safe to call concurrently.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// The configured name of the store (used in every message).
    fn name(&self) -> &str;
    /// The store's location with credentials redacted, for messages.
    fn location(&self) -> &str;
    /// What the store can guarantee.
    fn capabilities(&self) -> Capabilities;
    /// How many uploads to run at once.
    fn concurrency(&self) -> usize {
        8
    }
    /// Write a whole object.
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<(), StoreError>;
    /// Read a whole object, refusing objects larger than `limit` bytes.
    async fn get(&self, key: &str, limit: u64) -> Result<Bytes, StoreError>;
    /// Size and time of one object.
    async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError>;
    /// Every object whose key starts with `prefix` (a folder such as `chunks/`).
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError>;
    /// [`Store::list`], each object handed to `each` as the listing goes instead of being
    /// collected (a `Vec` of a million chunks' entries is ~130 MB). A listing that is
    /// retried starts again: `each` may see an object more than once, and sees objects
    /// of a listing that then fails.
    async fn list_each(
        &self,
        prefix: &str,
        each: &mut (dyn FnMut(ObjectInfo) + Send),
    ) -> Result<(), StoreError> {
        self.list(prefix).await?.into_iter().for_each(each);
        Ok(())
    }
    /// Remove an object; removing a missing object succeeds.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// A shared handle to a store.
pub type StoreRef = Arc<dyn Store>;

/// [`Store::list`] for a store whose listing is [`Store::list_each`]: collected.
pub(crate) async fn collect_listing(
    store: &dyn Store,
    prefix: &str,
) -> Result<Vec<ObjectInfo>, StoreError> {
    let mut listed = Vec::new();
    store.list_each(prefix, &mut |o| listed.push(o)).await?;
    Ok(listed)
}

/// What a checked create found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The object was written by this call.
    Written,
    /// The object already held exactly these bytes (e.g. our own retried write).
    AlreadyIdentical,
}

/// What a create found when it did not simply write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// Written by this call, or our own bytes were already there.
    Ours(Created),
    /// Another object is there under this name (for a chunk: another backup's encryption of
    /// the same plaintext); its bytes.
    Theirs(Bytes),
}

/// Create an object, accepting an `AlreadyExists` only when the stored bytes are identical
/// (docs/design.md, rule 6: a retried create can report our own successful write).
pub async fn put_create_checked(
    store: &dyn Store,
    key: &str,
    data: Bytes,
) -> Result<Created, StoreError> {
    let limit = data.len() as u64;
    match put_create_or_existing(store, key, data, limit).await? {
        Placed::Ours(created) => Ok(created),
        Placed::Theirs(_) => Err(StoreError::new(
            store.name(),
            Some(key),
            StoreErrorKind::AlreadyExists,
            "a different object already exists under this name; nothing was overwritten",
        )),
    }
}

/// Create an object; if a different one is already there, return its bytes (up to `limit`)
/// and leave it in place. A strict prefix of our bytes — what an interrupted upload to a
/// store without atomic writes leaves — is our own debris and is replaced.
pub async fn put_create_or_existing(
    store: &dyn Store,
    key: &str,
    data: Bytes,
    limit: u64,
) -> Result<Placed, StoreError> {
    match store.put(key, data.clone(), PutMode::Create).await {
        Ok(()) => Ok(Placed::Ours(Created::Written)),
        Err(e) if e.kind == StoreErrorKind::AlreadyExists => {
            let existing = store
                .get(key, limit.max(data.len() as u64))
                .await
                .map_err(|g| {
                    StoreError::new(
                        store.name(),
                        Some(key),
                        StoreErrorKind::AlreadyExists,
                        format!(
                            "an object already exists and could not be compared: {}",
                            g.message
                        ),
                    )
                })?;
            if Sha256::digest(&existing) == Sha256::digest(&data) {
                Ok(Placed::Ours(Created::AlreadyIdentical))
            } else if existing.len() < data.len() && data.starts_with(&existing) {
                store.put(key, data, PutMode::Overwrite).await?;
                Ok(Placed::Ours(Created::Written))
            } else {
                Ok(Placed::Theirs(existing))
            }
        }
        Err(e) => Err(e),
    }
}
