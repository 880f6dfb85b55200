//! Rekey of the drill and audit records: a record's name carries a MAC of its sealed
//! bytes, so a record encrypted anew gets a new name. In each store the new name is written before the
//! old one is removed; a record found under both (a killed run) keeps the new one.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::{Keys, StoreRekey, objects};
use crate::drill::record;
use crate::error::Result;
use crate::format::{self, limits};
use crate::prune::lease::Lease;
use crate::repository::Repository;
use crate::sealing;
use crate::store::{PutMode, StoreErrorKind};

/// (prefix, record id) → record name → the stores holding it.
type Groups = BTreeMap<(&'static str, String), BTreeMap<String, Vec<usize>>>;

/// The prefix and id of a drill or audit record's object name.
fn record_id(name: &str) -> Option<(&'static str, &str)> {
    format::drill_record_name(name)
        .map(|(id, _)| (format::DRILLS_PREFIX, id))
        .or_else(|| format::audit_record_name(name).map(|(id, _)| (format::AUDITS_PREFIX, id)))
}

/// Move every drill and audit record onto the new read key.
pub(super) async fn run(
    repo: &Repository,
    keys: &Keys,
    leases: &[Lease],
    stores: &mut [StoreRekey],
) -> Result<()> {
    let mut groups = Groups::new();
    for (i, store) in repo.stores.iter().enumerate() {
        for prefix in [format::DRILLS_PREFIX, format::AUDITS_PREFIX] {
            for o in store.list(prefix).await? {
                if let Some((prefix, id)) = record_id(&o.key) {
                    let key = (prefix, id.to_owned());
                    groups
                        .entry(key)
                        .or_default()
                        .entry(o.key)
                        .or_default()
                        .push(i);
                }
            }
        }
    }
    for ((prefix, id), names) in groups {
        let moved = move_record(repo, keys, (prefix, &id), &names, leases, stores).await;
        if let Err((holders, why)) = moved {
            for i in holders {
                stores[i].errors.push(format!("record {prefix}{id}: {why}"));
            }
        }
    }
    Ok(())
}

async fn move_record(
    repo: &Repository,
    keys: &Keys,
    id: (&str, &str),
    names: &BTreeMap<String, Vec<usize>>,
    leases: &[Lease],
    stores: &mut [StoreRekey],
) -> std::result::Result<(), (Vec<usize>, String)> {
    let mut holders: Vec<usize> = names.values().flatten().copied().collect();
    holders.sort_unstable();
    holders.dedup();
    let (target, bytes) = target(repo, keys, id, names)
        .await
        .map_err(|why| (holders.clone(), why))?;
    for &i in &holders {
        let store = &repo.stores[i];
        let has_target = names.get(&target).is_some_and(|h| h.contains(&i));
        let fail = |e: String| (vec![i], e);
        leases[i].check().map_err(|e| fail(e.to_string()))?;
        if has_target {
            stores[i].already += 1;
        } else {
            store
                .put(&target, bytes.clone(), PutMode::Overwrite)
                .await
                .map_err(|e| fail(e.to_string()))?;
            stores[i].rewritten += 1;
            stores[i].bytes += bytes.len() as u64;
        }
        for (name, held) in names {
            if *name != target && held.contains(&i) {
                match store.delete(name).await {
                    Err(e) if e.kind != StoreErrorKind::NotFound => {
                        return Err(fail(e.to_string()));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

/// The record's name and bytes on the new read key: a copy already there under its own
/// MAC, else the first authentic copy (its name's MAC matches) encrypted anew.
async fn target(
    repo: &Repository,
    keys: &Keys,
    (prefix, id): (&str, &str),
    names: &BTreeMap<String, Vec<usize>>,
) -> std::result::Result<(String, Bytes), String> {
    let limit = objects_limit(prefix);
    let mut copies = Vec::new();
    for (name, held) in names {
        for &i in held {
            if let Ok(b) = repo.stores[i].get(name, limit).await {
                copies.push((name.clone(), b));
                break;
            }
        }
    }
    let authentic = |name: &str, b: &[u8]| record::named(prefix, id, b, &keys.dedup) == name;
    let new_only = [&keys.new as &dyn age::Identity];
    for (name, b) in &copies {
        if authentic(name, b) && sealing::decrypt(b, new_only.into_iter(), limit).is_ok() {
            return Ok((name.clone(), b.clone()));
        }
    }
    let mut why = "no store holds a readable copy".to_owned();
    for (name, b) in &copies {
        if !authentic(name, b) {
            why = format!("{name} does not match the MAC in its name");
            continue;
        }
        match sealing::decrypt(b, keys.old.as_age(), limit) {
            Ok(payload) => {
                let sealed = Bytes::from(objects::rewrap(keys, name, &payload)?);
                return Ok((record::named(prefix, id, &sealed, &keys.dedup), sealed));
            }
            Err(e) => why = format!("{name} does not open: {e}"),
        }
    }
    Err(why)
}

/// The size limit of a record under `prefix`.
fn objects_limit(prefix: &str) -> u64 {
    if prefix == format::AUDITS_PREFIX {
        limits::AUDIT_RECORD
    } else {
        limits::DRILL_RECORD
    }
}
