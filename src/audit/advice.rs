//! What to do about a copy found damaged. "Delete it, then `sync`" is advice only when
//! another store holds a copy whose bytes match the signed hash: otherwise the copy may be
//! the only one there is, or intact bytes that were *written* unreadable (a manifest every
//! reader refuses is refused in every store alike), and deleting it loses the snapshot's
//! only index everywhere.

use std::collections::BTreeMap;

use super::survey::Surveyed;
use super::{Finding, FindingKind};
use crate::format::commit::ObjectRef;
use crate::sealing::sha256_hex;

/// Whose copy of an object matches its signed hash.
#[derive(Debug, Default)]
struct Copies {
    /// Stores whose copy matches the signed SHA-256.
    intact: Vec<String>,
}

/// Rewrite the hints of damaged-copy problems from what every store actually holds.
/// `read_hashes[i]`: SHA-256 of the objects already read from store `i` in this audit.
pub(super) async fn advise(
    stores: &[Surveyed],
    referenced: &super::objects::Referenced,
    read_hashes: &[BTreeMap<String, String>],
    problems: &mut [Finding],
) {
    let mut known: BTreeMap<String, Copies> = BTreeMap::new();
    for f in problems.iter_mut() {
        if !matches!(f.kind, FindingKind::HashMismatch | FindingKind::DeepFailure) {
            continue;
        }
        let Some(expected) = referenced.get(&f.object) else {
            f.hint = Some(keep_hint().into());
            continue;
        };
        if !known.contains_key(&f.object) {
            let copies = copies(stores, &expected, read_hashes).await;
            known.insert(f.object.clone(), copies);
        }
        f.hint = Some(hint_for(&f.store, &known[&f.object]));
    }
}

async fn copies(
    stores: &[Surveyed],
    expected: &ObjectRef,
    read_hashes: &[BTreeMap<String, String>],
) -> Copies {
    let mut out = Copies::default();
    for (i, s) in stores.iter().enumerate() {
        let sha = match read_hashes[i].get(&expected.name) {
            Some(sha) => Some(sha.clone()),
            None if s.listing.contains_key(&expected.name) => s
                .store
                .get(&expected.name, expected.size)
                .await
                .ok()
                .map(|b| sha256_hex(&b)),
            None => None,
        };
        if sha.as_deref() == Some(expected.sha256.as_str()) {
            out.intact.push(s.store.name().to_owned());
        }
    }
    out
}

fn keep_hint() -> &'static str {
    "do not delete it: no store holds a copy whose bytes match the signed hash, so it may be the only one; restore what still verifies and take a new backup"
}

fn hint_for(store: &str, copies: &Copies) -> String {
    if copies.intact.iter().any(|s| s == store) {
        // Our own bytes match the signature: every intact replica is the same, and none can
        // do better. The object was written unreadable (or the identity cannot read it).
        return "its bytes match the signed hash, so every store holds the same object and none can do better: do not delete it; check the identity, then report it (the snapshot was written unreadable) and verify a newer snapshot".into();
    }
    match copies.intact.first() {
        Some(good) => format!(
            "store '{good}' holds an intact copy (its bytes match the signed hash): delete this store's copy, then run `snapdrill sync` to copy it back"
        ),
        None => keep_hint().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleting_is_advised_only_with_an_intact_copy_elsewhere() {
        let two = Copies {
            intact: vec!["osaka".into()],
        };
        assert!(hint_for("tokyo", &two).contains("store 'osaka' holds an intact copy"));
        assert!(hint_for("osaka", &two).contains("do not delete"));
        let none = Copies::default();
        let h = hint_for("tokyo", &none);
        assert!(h.contains("do not delete") && !h.contains("sync"), "{h}");
    }
}
