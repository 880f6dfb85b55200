//! What a backup host cannot make prune delete (docs/security.md, "a compromised backup
//! host"). The backup host holds the write key, so it can sign a tombstone for every
//! snapshot; what prune honours is decided by the prune host's own settings:
//!
//! - the newest snapshot of each data set is kept, tombstone or not, unless `[prune]
//!   allow_forget_newest` (or `prune --allow-forget-newest`) says otherwise;
//! - a prune that would collect more than `[prune] max_delete` of the snapshots (50 % by
//!   default) deletes nothing and asks for `--yes`.
//!
//! A refused tombstone stays in the stores (listings keep hiding the snapshot) until an
//! operator deletes it (`forgotten/<id>`), which brings the snapshot back.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::PruneSettings;
use crate::error::{Error, Result};
use crate::format::commit::DataSet;
use crate::repository::{Repository, Snapshot, SnapshotList};

/// Apply the floors to what `list` says prune may collect: snapshots whose tombstones are
/// refused move back to `list.trusted` (so everything they reference is kept). Returns the
/// refused tombstones, described; fails when too much would go without `yes`.
pub(super) async fn apply(
    repo: &Repository,
    list: &mut SnapshotList,
    settings: &PruneSettings,
    yes: bool,
) -> Result<Vec<String>> {
    let mut refused = Vec::new();
    if !settings.allow_forget_newest {
        // (time, id, forgotten?) of the newest snapshot of each data set.
        // A tombstone names its snapshot's data set as the commit did (format v2; a v1
        // snapshot's data set is its host).
        let mut newest: BTreeMap<DataSet, (String, String, bool)> = BTreeMap::new();
        let seen = list
            .trusted
            .iter()
            .map(|s| {
                (
                    s.commit.data_set(),
                    &s.commit.time,
                    &s.commit.snapshot_id,
                    false,
                )
            })
            .chain(
                list.forgotten
                    .iter()
                    .map(|t| (t.data_set(), &t.snapshot_time, &t.snapshot_id, true)),
            );
        for (set, time, id, forgotten) in seen {
            let entry = newest.entry(set).or_default();
            if (time.as_str(), id.as_str()) > (entry.0.as_str(), entry.1.as_str()) {
                *entry = (time.clone(), id.clone(), forgotten);
            }
        }
        for (set, (_, id, _)) in newest.into_iter().filter(|(_, n)| n.2) {
            let commit = repo.commit_anywhere(&id).await.map_err(|why| Error::Fatal {
                message: format!(
                    "the tombstone of snapshot {id}, the newest of {set}, is not honoured, but its commit cannot be read to keep what it references ({why}); prune deleted nothing"
                ),
                hint: Some("run `snapdrill audit`; if the forget was intended, prune with --allow-forget-newest".into()),
            })?;
            list.forgotten.retain(|t| t.snapshot_id != id);
            list.trusted.push(Snapshot {
                commit: Arc::new(commit),
                stores: Vec::new(),
            });
            refused.push(format!(
                "kept snapshot {id}: it is the newest of {set}, and a tombstone (which the backup host's write key can sign) does not remove that; if it was intended, prune with --allow-forget-newest (or [prune] allow_forget_newest = true on this host)"
            ));
        }
    }
    let doomed = list.forgotten.len();
    let total = doomed + list.trusted.len();
    let max = settings.max_delete_percent as usize;
    if !yes && doomed > 0 && doomed * 100 > total * max {
        return Err(Error::Fatal {
            message: format!(
                "prune would delete {doomed} of {total} snapshots ({} %), more than [prune] max_delete ({max} %); prune deleted nothing",
                doomed * 100 / total
            ),
            hint: Some(
                "check who ran `forget` (`snapdrill audit` lists the tombstones); if this is intended, run `snapdrill prune --yes`"
                    .into(),
            ),
        });
    }
    Ok(refused)
}
