//! The one module that imports `object_store`: it turns a store URL into a [`Store`].
//!
//! Supported here: `file://` URLs and plain paths (a local directory, written with fsync),
//! and `memory://NAME` (an in-process store shared by every open of the same name, for
//! tests). Cloud schemes are recognised and refused with a clear message until their
//! backends land.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutOptions, PutPayload};

use super::{Capabilities, ObjectInfo, PutMode, Store, StoreError, StoreErrorKind, StoreRef};

/// Where a store lives, parsed from its configured URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory.
    Local(PathBuf),
    /// An in-process memory store with this name.
    Memory(String),
    /// A URL scheme this build does not open yet.
    Unsupported(String),
}

/// Parse a store URL. Relative paths are resolved against `base_dir` (the config's folder).
pub fn parse_location(url: &str, base_dir: &Path) -> Result<Location, String> {
    if let Some(rest) = url.strip_prefix("memory://") {
        if rest.is_empty() {
            return Err("memory:// needs a name, e.g. memory://test".into());
        }
        return Ok(Location::Memory(rest.to_owned()));
    }
    if let Some(rest) = url.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(format!(
                "'{url}' is not an absolute file URL; write file:///absolute/path or a plain path"
            ));
        }
        return Ok(Location::Local(PathBuf::from(percent_decode(rest)?)));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        return match scheme {
            "s3" | "s3a" | "gs" | "az" | "azure" | "abfs" | "abfss" | "http" | "https" => {
                Ok(Location::Unsupported(scheme.to_owned()))
            }
            _ => Err(format!("unknown store scheme '{scheme}://'")),
        };
    }
    if url.is_empty() {
        return Err("the store url is empty".into());
    }
    Ok(Location::Local(base_dir.join(url)))
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("bad %-escape in file URL")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad %-escape in file URL")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "file URL is not UTF-8 after decoding".into())
}

/// Open the store `name` at `location`. With `create`, a missing local directory is made
/// (used by `init`); otherwise a missing directory is reported as `NotFound`.
pub fn open(name: &str, location: &Location, create: bool) -> Result<StoreRef, StoreError> {
    match location {
        Location::Local(dir) => open_local(name, dir, create),
        Location::Memory(id) => Ok(Arc::new(ObjectStoreAdapter {
            name: name.to_owned(),
            location: format!("memory://{id}"),
            inner: memory_store(id),
            caps: Capabilities { create_only: true },
        })),
        Location::Unsupported(scheme) => Err(StoreError::new(
            name,
            None,
            StoreErrorKind::Config,
            format!("{scheme}:// stores are not supported by this version of snapdrill yet"),
        )),
    }
}

fn open_local(name: &str, dir: &Path, create: bool) -> Result<StoreRef, StoreError> {
    let err = |kind, msg: String| StoreError::new(name, None, kind, msg);
    if create {
        std::fs::create_dir_all(dir).map_err(|e| {
            err(
                StoreErrorKind::Unavailable,
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
    }
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(err(
                StoreErrorKind::Config,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(err(
                StoreErrorKind::NotFound,
                format!("directory {} does not exist", dir.display()),
            ));
        }
        Err(e) => {
            return Err(err(
                StoreErrorKind::Unavailable,
                format!("cannot reach {}: {e}", dir.display()),
            ));
        }
    }
    let fs = LocalFileSystem::new_with_prefix(dir)
        .map_err(|e| err(StoreErrorKind::Config, e.to_string()))?
        .with_fsync(true)
        .with_automatic_cleanup(true);
    Ok(Arc::new(ObjectStoreAdapter {
        name: name.to_owned(),
        location: dir.display().to_string(),
        inner: Arc::new(fs),
        caps: Capabilities { create_only: true },
    }))
}

fn memory_store(id: &str) -> Arc<dyn ObjectStore> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    let mut map = REGISTRY
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    map.entry(id.to_owned())
        .or_insert_with(|| Arc::new(InMemory::new()))
        .clone()
}

/// A [`Store`] over any `object_store` implementation.
#[derive(Debug)]
struct ObjectStoreAdapter {
    name: String,
    location: String,
    inner: Arc<dyn ObjectStore>,
    caps: Capabilities,
}

impl ObjectStoreAdapter {
    fn path(&self, key: &str) -> Result<ObjectPath, StoreError> {
        ObjectPath::parse(key).map_err(|e| {
            StoreError::new(
                &self.name,
                Some(key),
                StoreErrorKind::Config,
                format!("invalid object name: {e}"),
            )
        })
    }

    fn map_err(&self, key: Option<&str>, e: object_store::Error) -> StoreError {
        use object_store::Error as E;
        let kind = match &e {
            E::NotFound { .. } => StoreErrorKind::NotFound,
            E::AlreadyExists { .. } | E::Precondition { .. } => StoreErrorKind::AlreadyExists,
            E::NotSupported { .. } | E::NotImplemented { .. } => StoreErrorKind::NotSupported,
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => StoreErrorKind::Denied,
            E::InvalidPath { .. } | E::UnknownConfigurationKey { .. } => StoreErrorKind::Config,
            _ => StoreErrorKind::Unavailable,
        };
        StoreError::new(&self.name, key, kind, e.to_string())
    }
}

fn info(meta: object_store::ObjectMeta) -> ObjectInfo {
    ObjectInfo {
        key: meta.location.to_string(),
        size: meta.size,
        modified: SystemTime::from(meta.last_modified),
    }
}

#[async_trait]
impl Store for ObjectStoreAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn location(&self) -> &str {
        &self.location
    }

    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let opts = PutOptions {
            mode: match mode {
                PutMode::Create => object_store::PutMode::Create,
                PutMode::Overwrite => object_store::PutMode::Overwrite,
            },
            ..Default::default()
        };
        self.inner
            .put_opts(&path, PutPayload::from(data), opts)
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(Some(key), e))
    }

    async fn get(&self, key: &str, limit: u64) -> Result<Bytes, StoreError> {
        let path = self.path(key)?;
        let result = self
            .inner
            .get(&path)
            .await
            .map_err(|e| self.map_err(Some(key), e))?;
        if result.meta.size > limit {
            return Err(StoreError::new(
                &self.name,
                Some(key),
                StoreErrorKind::Corrupt,
                format!(
                    "object is {} bytes, more than the {limit} bytes it may have",
                    result.meta.size
                ),
            ));
        }
        result.bytes().await.map_err(|e| self.map_err(Some(key), e))
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        let path = self.path(key)?;
        self.inner
            .head(&path)
            .await
            .map(info)
            .map_err(|e| self.map_err(Some(key), e))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let trimmed = prefix.trim_end_matches('/');
        let path = if trimmed.is_empty() {
            None
        } else {
            Some(self.path(trimmed)?)
        };
        self.inner
            .list(path.as_ref())
            .map_ok(info)
            .try_collect()
            .await
            .map_err(|e| self.map_err(Some(prefix), e))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        match self.inner.delete(&path).await {
            Ok(()) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.map_err(Some(key), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        let base = Path::new("/etc/snapdrill");
        assert_eq!(
            parse_location("file:///srv/a%20b", base).unwrap(),
            Location::Local("/srv/a b".into())
        );
        assert_eq!(
            parse_location("demo/tokyo", base).unwrap(),
            Location::Local("/etc/snapdrill/demo/tokyo".into())
        );
        assert_eq!(
            parse_location("memory://x", base).unwrap(),
            Location::Memory("x".into())
        );
        assert_eq!(
            parse_location("s3://bucket/prefix", base).unwrap(),
            Location::Unsupported("s3".into())
        );
        assert!(parse_location("file://relative", base).is_err());
        assert!(parse_location("ftp://x", base).is_err());
    }

    #[tokio::test]
    async fn memory_store_round_trip_and_create_only() {
        let store = open("m", &Location::Memory("backend-test".into()), false).unwrap();
        store
            .put("a/b", Bytes::from_static(b"one"), PutMode::Create)
            .await
            .unwrap();
        let again = store
            .put("a/b", Bytes::from_static(b"two"), PutMode::Create)
            .await
            .unwrap_err();
        assert_eq!(again.kind, StoreErrorKind::AlreadyExists);
        assert_eq!(
            store.get("a/b", 10).await.unwrap(),
            Bytes::from_static(b"one")
        );
        assert_eq!(
            store.get("a/b", 2).await.unwrap_err().kind,
            StoreErrorKind::Corrupt
        );
        let listed = store.list("a/").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, "a/b");
        store.delete("a/b").await.unwrap();
        store.delete("a/b").await.unwrap();
        assert_eq!(
            store.get("a/b", 10).await.unwrap_err().kind,
            StoreErrorKind::NotFound
        );
    }
}
