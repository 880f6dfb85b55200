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

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::survey::Surveyed;
use super::{Finding, FindingKind};
use crate::error::{Error, Result, exit};
use crate::format::commit::Commit;
use crate::format::manifest::{Entry, EntryKind, Manifest};
use crate::format::repo_config::RepoConfig;
use crate::format::{self};
use crate::keys::Identities;
use crate::repository::Repository;
use crate::restore::{self, RestoreOptions, StageClock};

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
    };
    let mut summary = DeepSummary::default();
    let mut found = Vec::new();
    let mut verified = HashSet::new();
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
/// them to it (only once the whole snapshot verified).
async fn verify(
    repo: &Repository,
    commit: Arc<Commit>,
    ids: Arc<Identities>,
    verified: &mut HashSet<[u8; 32]>,
) -> Result<Verified> {
    let opened = restore::open_snapshot(repo, commit, ids.clone()).await?;
    let files: Vec<(&Entry, [u8; 32])> = {
        let offsets = opened.manifest.chunk_offsets();
        opened
            .manifest
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::File)
            .map(|e| (e, content_key(&opened.manifest, &offsets, e)))
            .collect()
    };
    let (seen, new): (Vec<_>, Vec<_>) = files.into_iter().partition(|(_, k)| verified.contains(k));
    let result = Verified {
        files: (seen.len() + new.len()) as u64,
        bytes: seen.iter().chain(&new).map(|(e, _)| e.file_size()).sum(),
        reused: seen.len() as u64,
    };
    let keys: Vec<[u8; 32]> = new.iter().map(|(_, k)| *k).collect();
    let only: HashSet<Vec<u8>> = new.iter().map(|(e, _)| e.path.0.clone()).collect();
    if !only.is_empty() {
        let opts = RestoreOptions {
            verify_only: true,
            only_files: Some(only),
            ..RestoreOptions::new(PathBuf::from("(verify only)"))
        };
        restore::run(repo, opened, ids, &opts, Arc::new(StageClock::default())).await?;
    }
    verified.extend(keys);
    Ok(result)
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
