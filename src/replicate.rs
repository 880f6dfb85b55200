//! Copying verified objects between stores, then committing last: the one primitive behind
//! a backup copying a chunk a store lacks, `sync` healing a replica, and prune bringing a
//! fossil back. Bytes are only ever copied after they matched the signed reference
//! ([`ObjectRef::matches`]); a copy is created without overwriting anything but a copy
//! known to be damaged; and a commit is written only after a fresh listing shows every
//! object it names at its size (docs/design.md, rules 1 and 6).

use std::collections::HashMap;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::commit::ObjectRef;
use crate::store::{self, Created, PutMode, StoreRef};

/// Read `key` from `from` and check it is `want`.
pub async fn fetch_intact(from: &StoreRef, key: &str, want: &ObjectRef) -> Result<Bytes> {
    let bytes = from.get(key, want.size).await?;
    if !want.matches(&bytes) {
        return Err(Error::integrity(
            Some(from.name()),
            Some(key),
            "does not match the size and SHA-256 its snapshot records",
        ));
    }
    Ok(bytes)
}

/// Read `want` from the first of `sources` whose copy is intact (each `(store, key)`: a
/// fossil's key may differ from the object's name). On failure, every reason.
pub async fn fetch_first_intact(
    sources: &[(&StoreRef, &str)],
    want: &ObjectRef,
) -> std::result::Result<Bytes, Vec<String>> {
    let mut reasons = Vec::new();
    for (store, key) in sources {
        match fetch_intact(store, key, want).await {
            Ok(b) => return Ok(b),
            Err(e) => reasons.push(e.to_string()),
        }
    }
    Err(reasons)
}

/// Put verified `bytes` under `want.name` in `to`: created without overwriting (our own
/// identical bytes already there are fine), or — `replace` — over a copy known to be
/// damaged.
pub async fn place(
    to: &StoreRef,
    want: &ObjectRef,
    bytes: Bytes,
    replace: bool,
) -> Result<Created> {
    debug_assert!(want.matches(&bytes));
    if replace {
        to.put(&want.name, bytes, PutMode::Overwrite).await?;
        return Ok(Created::Written);
    }
    Ok(store::put_create_checked(to.as_ref(), &want.name, bytes).await?)
}

/// Copy `want` from `key` of `from` to `to`; the bytes written, or `None` when `to` already
/// held exactly them.
pub async fn copy(
    from: &StoreRef,
    key: &str,
    to: &StoreRef,
    want: &ObjectRef,
    replace: bool,
) -> Result<Option<u64>> {
    let bytes = fetch_intact(from, key, want).await?;
    let n = bytes.len() as u64;
    Ok((place(to, want, bytes, replace).await? == Created::Written).then_some(n))
}

/// Confirm by fresh listings of `prefixes` that `to` holds every one of `objects` at its
/// size: what must hold before a commit naming them is written.
pub async fn confirm_listed(
    to: &StoreRef,
    prefixes: &[&str],
    objects: &[&ObjectRef],
) -> Result<()> {
    let mut listed: HashMap<String, u64> = HashMap::new();
    for p in prefixes {
        listed.extend(to.list(p).await?.into_iter().map(|o| (o.key, o.size)));
    }
    for o in objects {
        if listed.get(&o.name) != Some(&o.size) {
            return Err(Error::integrity(
                Some(to.name()),
                Some(&o.name),
                format!(
                    "is not listed at its {} bytes; nothing was committed",
                    o.size
                ),
            ));
        }
    }
    Ok(())
}

/// Write a commit last: create-only, our own identical bytes accepted.
pub async fn commit(to: &StoreRef, name: &str, bytes: Bytes) -> Result<Created> {
    Ok(store::put_create_checked(to.as_ref(), name, bytes).await?)
}
