//! `--deep` (identity needed): every snapshot of every store decrypted, decompressed and
//! verified — each chunk against its keyed id, each file against its SHA-256 — by the
//! restore engine's verify-only mode over that store alone (as `restore-drill --verify-only
//! --store` does), so no crypto is written twice.

use std::path::PathBuf;
use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::survey::Surveyed;
use super::{Finding, FindingKind};
use crate::error::{Error, Result, exit};
use crate::format::commit::Commit;
use crate::format::repo_config::RepoConfig;
use crate::format::{self};
use crate::keys::Identities;
use crate::repository::Repository;
use crate::restore::{self, RestoreOptions, RestoreReport, StageClock};

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
    };
    let mut summary = DeepSummary::default();
    let mut found = Vec::new();
    for (id, sc) in s.commits.iter() {
        match verify(&repo, sc.commit.clone(), ids.clone()).await {
            Ok(r) => {
                summary.snapshots += 1;
                summary.files += r.files;
                summary.bytes += r.bytes;
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

async fn verify(
    repo: &Repository,
    commit: Arc<Commit>,
    ids: Arc<Identities>,
) -> Result<RestoreReport> {
    let opened = restore::open_snapshot(repo, commit, ids.clone()).await?;
    let opts = RestoreOptions {
        verify_only: true,
        ..RestoreOptions::new(PathBuf::from("(verify only)"))
    };
    restore::run(repo, opened, ids, &opts, Arc::new(StageClock::default())).await
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
