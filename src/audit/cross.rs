//! The stores compared with each other: which snapshots each lists, which store is behind,
//! and which objects differ between replicas.

use std::collections::{BTreeMap, BTreeSet};

use super::survey::Surveyed;
use super::{Copy, Difference, Finding, FindingKind, Findings, SnapshotRow, listed_snapshots};
use crate::format::tombstone::Tombstone;
use crate::format::{self};

/// Snapshot id -> indices of the stores where its commit verifies.
fn holders(stores: &[Surveyed]) -> BTreeMap<&str, Vec<usize>> {
    let mut map: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in stores.iter().enumerate() {
        for id in s.commits.keys() {
            map.entry(id).or_default().push(i);
        }
    }
    map
}

fn names(stores: &[Surveyed], which: &[usize]) -> Vec<String> {
    which
        .iter()
        .map(|&i| stores[i].store.name().to_owned())
        .collect()
}

/// A store that lacks a snapshot the others hold (not forgotten, and not there under a bad
/// signature, which is reported on its own) is behind.
pub(super) fn behind(stores: &[Surveyed], forgotten: &BTreeMap<String, Tombstone>) -> Findings {
    let mut out = Findings::default();
    let holders = holders(stores);
    for s in stores {
        let listed: BTreeSet<&str> = listed_snapshots(s);
        for (id, which) in &holders {
            if listed.contains(id) || forgotten.contains_key(*id) {
                continue;
            }
            out.problems.push(Finding::new(
                s.store.name(),
                &format::commit_object(id),
                FindingKind::Behind,
                format!(
                    "behind: lacks snapshot {id} that store(s) {} hold",
                    names(stores, which).join(", ")
                ),
            ));
        }
    }
    out
}

/// Two stores serving different commits (both signed) under one snapshot id.
pub(super) fn commits_disagree(stores: &[Surveyed]) -> Findings {
    let mut out = Findings::default();
    for (id, which) in holders(stores) {
        let first = &stores[which[0]];
        let reference = &first.commits[id].object;
        for &i in &which[1..] {
            let theirs = &stores[i].commits[id].object;
            if theirs.sha256 != reference.sha256 {
                out.problems.push(Finding::new(
                    stores[i].store.name(),
                    &theirs.name,
                    FindingKind::CommitsDisagree,
                    format!(
                        "serves another signed commit for snapshot {id} than store '{}' ({} vs {} bytes)",
                        first.store.name(),
                        theirs.size,
                        reference.size
                    ),
                ));
            }
        }
    }
    out
}

/// Every snapshot with a verified commit somewhere, and where it is.
pub(super) fn rows(stores: &[Surveyed]) -> Vec<SnapshotRow> {
    holders(stores)
        .into_iter()
        .map(|(id, which)| {
            let missing: Vec<usize> = (0..stores.len()).filter(|i| !which.contains(i)).collect();
            SnapshotRow {
                id: id.to_owned(),
                time: stores[which[0]].commits[id].commit.time.clone(),
                stores: names(stores, &which),
                missing_from: names(stores, &missing),
            }
        })
        .collect()
}

/// Referenced objects whose copies differ between stores: by listed size, or by SHA-256
/// where both copies were read.
pub(super) fn differences(
    stores: &[Surveyed],
    referenced: &super::objects::Referenced,
    read: &[BTreeMap<String, String>],
) -> Vec<Difference> {
    let mut out = Vec::new();
    for expected in referenced.iter() {
        let name = &expected.name;
        let copies: Vec<Copy> = stores
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.listing.get(name).map(|l| Copy {
                    store: s.store.name().to_owned(),
                    size: l.size,
                    sha256: read[i].get(name).cloned(),
                })
            })
            .collect();
        let sizes: BTreeSet<u64> = copies.iter().map(|c| c.size).collect();
        let hashes: BTreeSet<&String> = copies.iter().filter_map(|c| c.sha256.as_ref()).collect();
        if sizes.len() > 1 || hashes.len() > 1 {
            out.push(Difference {
                object: name.clone(),
                expected: expected.clone(),
                copies,
            });
        }
    }
    out.sort_by(|a, b| a.object.cmp(&b.object));
    out
}
