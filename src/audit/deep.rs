//! `--deep` (identity needed): every snapshot of every store decrypted, decompressed and
//! verified — each chunk against its keyed id, each file against its SHA-256 — by the
//! restore engine's verify-only mode over that store alone (as `restore-drill --verify-only
//! --store` does), so no crypto is written twice.
//!
//! Nightly snapshots mostly hold the same files. A file whose content is the same byte
//! range of the same chunks, with the same SHA-256, as a file already verified from this
//! store in this run is not read again: its chunks are the very objects that were just
//! decrypted and checked against their keyed ids, and those ids fix the plaintext. So the
//! cost of `--deep` follows the unique data, not the number of snapshots.

use std::path::PathBuf;
use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::survey::Surveyed;
use super::{Finding, FindingKind};
use crate::error::{Error, Result, exit};
use crate::format::commit::Commit;
use crate::format::manifest::{Entry, Manifest};
use crate::format::repo_config::RepoConfig;
use crate::format::{self};
use crate::keys::Identities;
use crate::repository::Repository;
use crate::restore::{self, FileFilter, RestoreOptions, StageClock};

/// What `--deep` verified in one store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeepSummary {
    /// Snapshots verified end to end.
    pub snapshots: u64,
    /// Files whose SHA-256 matched.
    pub files: u64,
    /// Content bytes verified.
    pub bytes: u64,
    /// Snapshots that failed.
    pub failed: u64,
    /// Files (counted in `files`) identical to a file verified earlier in this run, so not
    /// read again.
    #[serde(default)]
    pub files_reused: u64,
}

/// Verify every (live) snapshot of `s` with the identity; a wrong or missing key aborts (12).
pub(super) async fn check_store(
    s: &Surveyed,
    config: &RepoConfig,
    signer: &VerifyingKey,
    ids: Arc<Identities>,
) -> Result<(DeepSummary, Vec<Finding>)> {
    let repo = Repository {
        stores: vec![s.store.clone()],
        config: config.clone(),
        signer: *signer,
        unusable: Vec::new(),
        not_initialised: Vec::new(),
        // A deep audit proves what the store holds: never a local copy.
        commit_cache: None,
        notes: Vec::new(),
        lists: Default::default(),
    };
    let mut summary = DeepSummary::default();
    let mut found = Vec::new();
    let mut verified = Arc::new(Known::default());
    for (id, sc) in s.commits.iter() {
        match verify(&repo, sc.commit.clone(), ids.clone(), &mut verified).await {
            Ok(v) => {
                summary.snapshots += 1;
                summary.files += v.files;
                summary.bytes += v.bytes;
                summary.files_reused += v.reused;
            }
            Err(e) if e.exit_code() == exit::KEY => return Err(e),
            Err(e) => {
                summary.failed += 1;
                found.push(finding(s.store.name(), id, &e));
            }
        }
    }
    Ok((summary, found))
}

/// One snapshot verified: its files and bytes, and how many were already verified.
struct Verified {
    files: u64,
    bytes: u64,
    reused: u64,
}

/// Verify the files of one snapshot that `verified` does not already vouch for, then add
/// them to it (only once the whole snapshot verified). The manifest is read piecewise:
/// once checked, once to key each file's content, once as the files stream by — no entry
/// is held, whatever the number of files.
async fn verify(
    repo: &Repository,
    commit: Arc<Commit>,
    ids: Arc<Identities>,
    verified: &mut Arc<Known>,
) -> Result<Verified> {
    let opened = restore::open_piecewise(repo, commit, ids.clone(), &[]).await?;
    let known = verified.clone();
    let seen = Seen {
        files: 0,
        bytes: 0,
        new: Vec::new(),
    };
    let seen = opened
        .scan_files(seen, move |s, manifest, offsets, e| {
            let key = content_key(manifest, offsets, e);
            s.files += 1;
            s.bytes += e.file_size();
            if !known.contains(&key) {
                s.new.push(key);
            }
        })
        .await?;
    let result = Verified {
        files: seen.files,
        bytes: seen.bytes,
        reused: seen.files - seen.new.len() as u64,
    };
    if !seen.new.is_empty() {
        let known = verified.clone();
        let opts = RestoreOptions {
            verify_only: true,
            only_files: Some(FileFilter::new(move |manifest, offsets, e| {
                !known.contains(&content_key(manifest, offsets, e))
            })),
            ..RestoreOptions::new(PathBuf::from("(verify only)"))
        };
        let clock = Arc::new(StageClock::default());
        restore::run_piecewise(repo, opened, ids, &opts, clock).await?;
    }
    Arc::make_mut(verified).add(seen.new);
    Ok(result)
}

/// The content keys verified so far, sorted: 32 bytes a file (a hash set took twice that;
/// a million files are verified in one snapshot).
#[derive(Debug, Clone, Default)]
struct Known(Vec<[u8; 32]>);

impl Known {
    fn contains(&self, key: &[u8; 32]) -> bool {
        self.0.binary_search(key).is_ok()
    }

    /// Add keys none of which is known yet, merging in place from the back.
    fn add(&mut self, mut new: Vec<[u8; 32]>) {
        new.sort_unstable();
        new.dedup();
        let (mut i, mut j) = (self.0.len(), new.len());
        self.0.resize(i + j, [0; 32]);
        for k in (0..self.0.len()).rev() {
            if j == 0 {
                break;
            }
            if i > 0 && self.0[i - 1] > new[j - 1] {
                self.0[k] = self.0[i - 1];
                i -= 1;
            } else {
                self.0[k] = new[j - 1];
                j -= 1;
            }
        }
    }
}

/// The files of a snapshot, and the content keys not verified before.
struct Seen {
    files: u64,
    bytes: u64,
    new: Vec<[u8; 32]>,
}

/// What fixes a file's content: its SHA-256 and the byte ranges of the chunks that hold it,
/// hashed to 32 bytes (a year of snapshots' unique files is held at once).
fn content_key(manifest: &Manifest, offsets: &[u64], e: &Entry) -> [u8; 32] {
    let mut key = e.sha256.clone().unwrap_or_default();
    for (k, from, to) in manifest.chunk_ranges(offsets, e) {
        key.push_str(&format!("|{}:{from}-{to}", manifest.chunks[k].id));
    }
    crate::sealing::sha256(key.as_bytes())
}

fn finding(store: &str, id: &str, e: &Error) -> Finding {
    let object = match e {
        Error::Integrity {
            object: Some(o), ..
        } => o.clone(),
        _ => format::commit_object(id),
    };
    Finding::new(
        store,
        &object,
        FindingKind::DeepFailure,
        format!("snapshot {id} does not verify with the identity: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::Known;
    use proptest::prelude::*;

    proptest! {
        /// Adding keys keeps the list sorted, each key once, and every key added known.
        #[test]
        fn known_keys_merge_sorted(
            batches in proptest::collection::vec(proptest::collection::vec(0u8..40, 0..30), 0..6),
        ) {
            let mut known = Known::default();
            let mut all = std::collections::BTreeSet::new();
            for batch in batches {
                let new: Vec<[u8; 32]> = batch
                    .iter()
                    .map(|&b| [b; 32])
                    .filter(|k| !known.contains(k))
                    .collect();
                all.extend(new.iter().copied());
                known.add(new);
                prop_assert_eq!(known.0.clone(), all.iter().copied().collect::<Vec<_>>());
            }
        }
    }
}
