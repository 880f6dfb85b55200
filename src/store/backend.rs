//! The one module that imports `object_store`: it turns a store URL and its options into a
//! [`Store`].
//!
//! | URL | backend | create-only writes |
//! | --- | --- | --- |
//! | `file:///abs/path`, plain path | local directory, fsync on every write | yes |
//! | `memory://NAME` | in-process, shared by name (tests) | yes |
//! | `s3://bucket/prefix` | AWS S3 and S3-compatible servers | yes (`If-None-Match`; some servers ignore it: `init` probes) |
//! | `az://container/prefix` | Azure Blob (and Azurite) | yes |
//! | `gs://bucket/prefix` | Google Cloud Storage | yes |
//! | `http(s)://host/path` | HTTP/WebDAV | no: emulated with HEAD then PUT, not atomic |
//!
//! Credentials come from each cloud's standard environment variables (`AWS_*`, `AZURE_*`,
//! `GOOGLE_*`) and the store's `options`; every message is passed through [`Redactor`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutOptions, PutPayload, RetryConfig,
};

use super::redact::Redactor;
use super::retry::{Retrying, Tuning};
use super::throttle::Throttled;
use super::{Capabilities, ObjectInfo, PutMode, Store, StoreError, StoreErrorKind, StoreRef};

pub use super::location::{Location, RemoteKind, parse_location, redact_url};

/// Open a store with retries, timeouts, deadline and bandwidth limits applied (what
/// commands use).
pub fn open(
    name: &str,
    location: &Location,
    options: &BTreeMap<String, String>,
    tuning: Tuning,
    create: bool,
) -> Result<StoreRef, StoreError> {
    let raw = open_raw(name, location, options, &tuning, create)?;
    let store: StoreRef = Arc::new(Retrying::new(raw, tuning));
    if tuning.limit_upload.is_none() && tuning.limit_download.is_none() {
        return Ok(store);
    }
    Ok(Arc::new(Throttled::new(
        store,
        tuning.limit_upload,
        tuning.limit_download,
    )))
}

/// Open a store without the retry layer (tests wrap it in fault injection first).
pub fn open_raw(
    name: &str,
    location: &Location,
    options: &BTreeMap<String, String>,
    tuning: &Tuning,
    create: bool,
) -> Result<StoreRef, StoreError> {
    let redactor = Redactor::for_store(location, options);
    match location {
        Location::Local(dir) => open_local(name, dir, create, redactor),
        Location::Memory(id) => Ok(Arc::new(ObjectStoreAdapter {
            name: name.to_owned(),
            location: format!("memory://{id}"),
            inner: memory_store(id),
            caps: Capabilities { create_only: true },
            redactor,
            local_root: None,
        })),
        Location::Remote { kind, url } => {
            let (inner, caps) = open_remote(*kind, url, options, tuning).map_err(|e| {
                StoreError::new(name, None, StoreErrorKind::Config, redactor.clean(&e))
            })?;
            Ok(Arc::new(ObjectStoreAdapter {
                name: name.to_owned(),
                location: redact_url(url),
                inner,
                caps,
                redactor,
                local_root: None,
            }))
        }
    }
}

fn open_remote(
    kind: RemoteKind,
    url: &str,
    options: &BTreeMap<String, String>,
    tuning: &Tuning,
) -> Result<(Arc<dyn ObjectStore>, Capabilities), String> {
    let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
    let root = format!(
        "{}://{}",
        parsed.scheme(),
        parsed.host_str().unwrap_or_default()
    );
    let prefix = parsed.path().trim_matches('/').to_owned();
    refuse_plain_http(options)?;
    let retry = RetryConfig {
        max_retries: tuning.retries as usize,
        retry_timeout: tuning.timeout.saturating_mul(2).max(Duration::from_secs(5)),
        ..Default::default()
    };
    let client = ClientOptions::new()
        .with_timeout(tuning.timeout)
        .with_connect_timeout(tuning.timeout.min(Duration::from_secs(10)))
        // A plain-http WebDAV URL is explicit enough by itself.
        .with_allow_http(kind == RemoteKind::Http && parsed.scheme() == "http");
    let store: Arc<dyn ObjectStore> = match kind {
        RemoteKind::S3 => {
            let b = AmazonS3Builder::from_env()
                .with_url(root)
                .with_retry(retry)
                .with_client_options(client);
            let b = with_options(b, options, |b, k, v| b.with_config(k, v))?;
            Arc::new(b.build().map_err(|e| e.to_string())?)
        }
        RemoteKind::Azure => {
            let b = MicrosoftAzureBuilder::from_env()
                .with_url(root)
                .with_retry(retry)
                .with_client_options(client);
            let b = with_options(b, options, |b, k, v| b.with_config(k, v))?;
            Arc::new(b.build().map_err(|e| e.to_string())?)
        }
        RemoteKind::Gcs => {
            let b = GoogleCloudStorageBuilder::from_env()
                .with_url(root)
                .with_retry(retry)
                .with_client_options(client);
            let b = with_options(b, options, |b, k, v| b.with_config(k, v))?;
            Arc::new(b.build().map_err(|e| e.to_string())?)
        }
        RemoteKind::Http => {
            // The server root is the base and the URL's path a prefix, so that the client's
            // MKCOL-on-404 creates the repository's own folder too.
            let b = HttpBuilder::new()
                .with_url(http_root(&parsed))
                .with_retry(retry)
                .with_client_options(client);
            let b = with_options(b, options, |b, k, v| b.with_config(k, v))?;
            Arc::new(b.build().map_err(|e| e.to_string())?)
        }
    };
    let store = if prefix.is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix.as_str()))
    };
    // WebDAV has no conditional create: a create is a check then a put (docs/design.md).
    let create_only = kind != RemoteKind::Http;
    Ok((store, Capabilities { create_only }))
}

/// Apply the store's `options` to a builder, after its client options (an option such as
/// `allow_http` refines them); an unknown key names itself.
fn with_options<B, K>(
    mut b: B,
    options: &BTreeMap<String, String>,
    set: impl Fn(B, K, &str) -> B,
) -> Result<B, String>
where
    K: std::str::FromStr<Err = object_store::Error>,
{
    for (k, v) in options {
        let key = k.parse().map_err(|e| format!("option '{k}': {e}"))?;
        b = set(b, key, v);
    }
    Ok(b)
}

/// Without allow_http every request to an http:// endpoint fails with a vague "builder
/// error"; say what to do instead.
fn refuse_plain_http(options: &BTreeMap<String, String>) -> Result<(), String> {
    let endpoint = options
        .get("endpoint")
        .or(options.get("aws_endpoint"))
        .or(options.get("azure_storage_endpoint"));
    let allowed = options.get("allow_http").is_some_and(|v| v == "true");
    if endpoint.is_some_and(|e| e.starts_with("http://")) && !allowed {
        return Err(
            "the endpoint is plain http://: add allow_http = \"true\" to the store's options \
             (only for a server on a trusted network; credentials would travel unencrypted)"
                .into(),
        );
    }
    Ok(())
}

/// `scheme://[user:pass@]host[:port]/` of an HTTP URL.
fn http_root(u: &url::Url) -> String {
    let mut root = u.clone();
    root.set_path("/");
    root.set_query(None);
    root.set_fragment(None);
    root.to_string()
}

fn open_local(
    name: &str,
    dir: &Path,
    create: bool,
    redactor: Redactor,
) -> Result<StoreRef, StoreError> {
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
        redactor,
        local_root: Some(dir.to_path_buf()),
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
    redactor: Redactor,
    /// Local stores: reads go through [`read_local`] (descriptors, never blocking).
    local_root: Option<PathBuf>,
}

/// Read a local store's object ourselves: `object_store`'s local reader opens by path and
/// blocks forever on a FIFO someone planted under an object's name (holding a runtime thread,
/// so the process never exits). Here every directory is opened without following links, the
/// file `O_NONBLOCK`, and anything but a regular file is a corrupt object.
fn read_local(root: &Path, store: &str, key: &str, limit: u64) -> Result<Bytes, StoreError> {
    use std::io::Read;
    let err = |kind, msg: String| StoreError::new(store, Some(key), kind, msg);
    let mut tree = crate::localfs::tree::DirTree::open(root).map_err(|e| {
        err(
            StoreErrorKind::Unavailable,
            format!("cannot open the store folder: {e}"),
        )
    })?;
    let (fd, st) = tree
        .open_file(key.as_bytes(), None)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => err(StoreErrorKind::NotFound, "no such object".into()),
            _ if crate::localfs::tree::not_a_directory(&e) => err(
                StoreErrorKind::Corrupt,
                "a link or a file stands where the store has a folder".into(),
            ),
            std::io::ErrorKind::Other => err(StoreErrorKind::Corrupt, format!("the object {e}")),
            _ => err(StoreErrorKind::Unavailable, e.to_string()),
        })?;
    if st.size > limit {
        return Err(err(
            StoreErrorKind::Corrupt,
            format!(
                "object is {} bytes, more than the {limit} bytes it may have",
                st.size
            ),
        ));
    }
    // Most objects read are chunks: a buffer mapped on its own (crate::memory).
    let mut out = crate::memory::chunk_buffer(st.size as usize);
    std::fs::File::from(fd)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| err(StoreErrorKind::Unavailable, e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(err(
            StoreErrorKind::Corrupt,
            format!("object grew past {limit} bytes"),
        ));
    }
    Ok(Bytes::from(out))
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
        let raw = self.redactor.clean(&e.to_string());
        // `-vv`: the library's own words, redacted as every message is.
        tracing::debug!(store = %self.name, object = key.unwrap_or(""), error = %raw, "store error");
        // A plain not-found or already-exists stays as it is: callers act on it (a missing
        // object, a store without a repository); of those, only a missing bucket says more.
        // Everything else gets its cause in plain words.
        let plain = matches!(
            kind,
            StoreErrorKind::NotFound | StoreErrorKind::AlreadyExists
        );
        let cause = super::human::cause(&e, self.scheme())
            .filter(|c| !plain || c.kind == StoreErrorKind::NotFound);
        match cause {
            Some(c) => {
                let mut err = StoreError::new(&self.name, key, c.kind, c.what);
                err.explained = Some(Box::new(super::Explained {
                    advice: c.hint,
                    raw,
                }));
                err
            }
            None => StoreError::new(&self.name, key, kind, raw),
        }
    }

    /// `s3`, `az`, `gs`, `http` or `file`: which backend's words and variables to use.
    fn scheme(&self) -> &'static str {
        match self.location.split_once("://").map(|(s, _)| s) {
            Some("s3" | "s3a") => "s3",
            Some("az" | "azure" | "abfs" | "abfss") => "az",
            Some("gs") => "gs",
            Some("http" | "https") => "http",
            Some("memory") => "memory",
            _ => "file",
        }
    }

    async fn put_raw(
        &self,
        key: &str,
        data: Bytes,
        mode: object_store::PutMode,
    ) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        self.inner
            .put_opts(&path, PutPayload::from(data), opts)
            .await
            .map(|_| ())
            .map_err(|e| self.map_err(Some(key), e))
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
        match mode {
            PutMode::Overwrite => {
                self.put_raw(key, data, object_store::PutMode::Overwrite)
                    .await
            }
            PutMode::Create if self.caps.create_only => {
                self.put_raw(key, data, object_store::PutMode::Create).await
            }
            PutMode::Create => {
                // No conditional write here (WebDAV): refuse when the object is already
                // there, then PUT. Not atomic; the names snapdrill writes make a lost race
                // harmless (content-addressed chunks, unique snapshot ids).
                match self.head(key).await {
                    Ok(_) => Err(StoreError::new(
                        &self.name,
                        Some(key),
                        StoreErrorKind::AlreadyExists,
                        "already exists",
                    )),
                    Err(e) if e.kind == StoreErrorKind::NotFound => {
                        self.put_raw(key, data, object_store::PutMode::Overwrite)
                            .await
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    async fn get(&self, key: &str, limit: u64) -> Result<Bytes, StoreError> {
        let path = self.path(key)?;
        if let Some(root) = &self.local_root {
            let (root, name, key) = (root.clone(), self.name.clone(), key.to_owned());
            return tokio::task::spawn_blocking(move || read_local(&root, &name, &key, limit))
                .await
                .map_err(|e| {
                    StoreError::new(&self.name, None, StoreErrorKind::Unavailable, e.to_string())
                })?;
        }
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
        super::collect_listing(self, prefix).await
    }

    async fn list_each(
        &self,
        prefix: &str,
        each: &mut (dyn FnMut(ObjectInfo) + Send),
    ) -> Result<(), StoreError> {
        let trimmed = prefix.trim_end_matches('/');
        let path = if trimmed.is_empty() {
            None
        } else {
            Some(self.path(trimmed)?)
        };
        let mut listing = self.inner.list(path.as_ref());
        while let Some(meta) = listing.next().await {
            let o = info(meta.map_err(|e| self.map_err(Some(prefix), e))?);
            // Some servers (WebDAV) list "directories" too; only objects under the prefix
            // count.
            if o.key.starts_with(prefix) || trimmed.is_empty() {
                each(o);
            }
        }
        Ok(())
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
        assert!(matches!(
            parse_location("s3://bucket/prefix", base).unwrap(),
            Location::Remote {
                kind: RemoteKind::S3,
                ..
            }
        ));
        assert!(matches!(
            parse_location("az://c/p", base).unwrap(),
            Location::Remote {
                kind: RemoteKind::Azure,
                ..
            }
        ));
        assert!(matches!(
            parse_location("gs://b", base).unwrap(),
            Location::Remote {
                kind: RemoteKind::Gcs,
                ..
            }
        ));
        assert!(matches!(
            parse_location("https://dav.example.com/x", base).unwrap(),
            Location::Remote {
                kind: RemoteKind::Http,
                ..
            }
        ));
        assert!(parse_location("file://relative", base).is_err());
        assert!(parse_location("ftp://x", base).is_err());
        assert!(parse_location("s3://", base).is_err());
    }

    #[test]
    fn urls_print_without_credentials() {
        let u = redact_url("https://user:hunter2@dav.example.com/backups?sig=SECRET#x");
        assert_eq!(u, "https://dav.example.com/backups");
    }

    #[test]
    fn gcs_and_s3_configure_without_a_server() {
        // No local GCS server works with object_store (docs/design.md): configuration is
        // what can be tested. Building must succeed with explicit options and fail clearly
        // on an unknown one.
        let tuning = Tuning::default();
        let mut opts = BTreeMap::new();
        opts.insert("service_account_key".to_owned(), r#"{"type":"service_account","client_email":"a@b.iam.gserviceaccount.com","private_key_id":"x","private_key":"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBz3sY2X0GgKKYcpLy09Ii0wlvRyH5AGeY3tKm4XOTQ0\n-----END PRIVATE KEY-----\n"}"#.to_owned());
        let loc = parse_location("gs://bucket/prefix", Path::new("/")).unwrap();
        let built = open_raw("g", &loc, &opts, &tuning, false);
        assert!(built.is_ok() || built.as_ref().unwrap_err().kind == StoreErrorKind::Config);
        let mut bad = BTreeMap::new();
        bad.insert("no_such_option".to_owned(), "1".to_owned());
        let err = open_raw("g", &loc, &bad, &tuning, false).unwrap_err();
        assert_eq!(err.kind, StoreErrorKind::Config);
        assert!(err.message.contains("no_such_option"), "{err}");

        let s3 = parse_location("s3://bucket/a/b", Path::new("/")).unwrap();
        let mut o = BTreeMap::new();
        o.insert("endpoint".to_owned(), "http://127.0.0.1:1".to_owned());
        o.insert("region".to_owned(), "us-east-1".to_owned());
        o.insert("allow_http".to_owned(), "true".to_owned());
        o.insert("access_key_id".to_owned(), "AKIDCANARY".to_owned());
        o.insert("secret_access_key".to_owned(), "SECRETCANARY".to_owned());
        let store = open_raw("s", &s3, &o, &tuning, false).unwrap();
        assert_eq!(store.location(), "s3://bucket/a/b");
        assert!(store.capabilities().create_only);
    }

    #[tokio::test]
    async fn memory_store_round_trip_and_create_only() {
        let store = open(
            "m",
            &Location::Memory("backend-test".into()),
            &BTreeMap::new(),
            Tuning::default(),
            false,
        )
        .unwrap();
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
