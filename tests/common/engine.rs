//! The engines through the library API, for tests that drive them in-process (memory
//! stores, fault-injecting wrappers, gates): keys, stores and backup options.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use snapdrill::backup::BackupOptions;
use snapdrill::keys::{Identities, WriteKey};
use snapdrill::store::StoreRef;
use snapdrill::store::backend::{self, Location};

/// A fresh identity (restore side), its recipients and a write key (backup side).
pub(crate) struct Keys {
    pub(crate) ids: Arc<Identities>,
    pub(crate) recipients: Vec<age::x25519::Recipient>,
    pub(crate) key: WriteKey,
}

pub(crate) fn keys() -> Keys {
    let (text, _) = snapdrill::keys::generate_identity();
    let ids = Arc::new(Identities::parse(&text, Path::new("test identity")).unwrap());
    let recipients = snapdrill::keys::recipient::legacy_recipients(&ids.recipients()).unwrap();
    Keys {
        ids,
        recipients,
        key: WriteKey::generate(),
    }
}

/// An in-process memory store, shared by `id` (a fresh id gives an empty store).
pub(crate) fn memory(name: &str, id: &str) -> StoreRef {
    backend::open(
        name,
        &Location::Memory(id.to_owned()),
        &Default::default(),
        Default::default(),
        false,
    )
    .unwrap()
}

/// A local-folder store without the retry layer (to wrap in fault injection).
pub(crate) fn local(name: &str, dir: &Path) -> StoreRef {
    backend::open_raw(
        name,
        &Location::Local(dir.to_path_buf()),
        &Default::default(),
        &Default::default(),
        true,
    )
    .unwrap()
}

/// Options of a plain backup of `paths`, committed to at least `require` stores.
pub(crate) fn backup_options(paths: Vec<PathBuf>, require: usize) -> BackupOptions {
    BackupOptions {
        job: "test".into(),
        health: Default::default(),
        state_dir: None,
        paths,
        stream: None,
        exclude: vec![],
        tags: vec![],
        host: "test".into(),
        compression: 3,
        force_read: false,
        cache_dir: None,
        configured_stores: vec![],
        require,
        writer_timeout: Duration::from_secs(3600),
        on_changed: Default::default(),
    }
}
