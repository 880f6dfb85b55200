//! `--immutability`: does a store refuse to overwrite or delete what is in it? A canary
//! object `probes/immutability-<random>` is created, then overwritten, then deleted. A store
//! under a retention lock (S3 Object Lock, Azure immutable blobs, a WORM NAS) refuses both:
//! evidence that ransomware holding the store's credentials cannot destroy the backups.
//! The canary is removed when the store allows it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::format;
use crate::store::{PutMode, StoreErrorKind, StoreRef};

/// What the canary showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Immutability {
    /// The canary object.
    pub canary: String,
    /// The store refused to replace the canary (`null`: could not tell).
    pub refuses_overwrites: Option<bool>,
    /// The store refused to delete it, or kept it (`null`: could not tell).
    pub refuses_deletes: Option<bool>,
    /// The canary is gone again.
    pub cleaned_up: bool,
    /// What happened, in words.
    pub detail: String,
}

impl Immutability {
    /// `yes`, `no` or `unknown`.
    pub fn word(v: Option<bool>) -> &'static str {
        match v {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        }
    }
}

const FIRST: &[u8] = b"snapdrill immutability canary: first\n";
const SECOND: &[u8] = b"snapdrill immutability canary: overwritten\n";

/// Run the canary probe on one store.
pub async fn probe(store: &StoreRef) -> Immutability {
    let mut r = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut r);
    let canary = format!("{}immutability-{}", format::PROBES_PREFIX, hex::encode(r));
    let mut out = Immutability {
        canary: canary.clone(),
        refuses_overwrites: None,
        refuses_deletes: None,
        cleaned_up: false,
        detail: String::new(),
    };
    if let Err(e) = store
        .put(&canary, Bytes::from_static(FIRST), PutMode::Create)
        .await
    {
        out.detail = format!("the canary could not be written: {}", e.message);
        return out;
    }
    let (overwrite, why_o) = try_overwrite(store, &canary).await;
    let (delete, why_d) = try_delete(store, &canary).await;
    out.refuses_overwrites = overwrite;
    out.refuses_deletes = delete;
    out.cleaned_up = delete == Some(false);
    out.detail = format!("{why_o}; {why_d}");
    if !out.cleaned_up {
        out.detail
            .push_str("; the canary stays in the store (harmless, under probes/)");
    }
    out
}

/// Some(true) when the overwrite was refused or did not take effect.
async fn try_overwrite(store: &StoreRef, canary: &str) -> (Option<bool>, String) {
    match store
        .put(canary, Bytes::from_static(SECOND), PutMode::Overwrite)
        .await
    {
        Err(e) if e.kind == StoreErrorKind::Unavailable => {
            (None, format!("overwrite: no answer ({})", e.message))
        }
        Err(e) => (Some(true), format!("overwrite refused ({})", e.message)),
        Ok(()) => match store.get(canary, 1024).await {
            Ok(b) if &b[..] == SECOND => (Some(false), "overwrite accepted".into()),
            Ok(_) => (Some(true), "overwrite answered OK but had no effect".into()),
            Err(e) => (
                None,
                format!("overwrite: could not read back ({})", e.message),
            ),
        },
    }
}

/// Some(true) when the delete was refused or the canary is still there.
async fn try_delete(store: &StoreRef, canary: &str) -> (Option<bool>, String) {
    match store.delete(canary).await {
        Err(e) if e.kind == StoreErrorKind::Unavailable => {
            (None, format!("delete: no answer ({})", e.message))
        }
        Err(e) => (Some(true), format!("delete refused ({})", e.message)),
        Ok(()) => match store.head(canary).await {
            Err(e) if e.kind == StoreErrorKind::NotFound => (Some(false), "delete accepted".into()),
            Ok(_) => (
                Some(true),
                "delete answered OK but the canary is still there".into(),
            ),
            Err(e) => (None, format!("delete: could not check ({})", e.message)),
        },
    }
}
