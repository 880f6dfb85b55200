//! `forget`: remove snapshots from the listing by a retention policy or by id.
//!
//! Each forgotten snapshot gets a signed tombstone (`forgotten/<id>`) in every store: from
//! then on it is not listed or restored anywhere, and audit can tell retention from an
//! attacker's deletion. Nothing is deleted here: prune removes the commit, the manifest and
//! the chunks no other snapshot needs, with its grace period.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use crate::error::{Error, Result, exit};
use crate::format::commit::{Commit, ObjectRef};
use crate::format::tombstone::Tombstone;
use crate::format::{self, limits};
use crate::keys::WriteKey;
use crate::repository::{Repository, Snapshot, SnapshotList};
use crate::retention::{self, Candidate, Policy};
use crate::store::{self, StoreErrorKind};

/// What `forget` groups snapshots by before it applies a policy (restic's `--group-by`):
/// by default a data set — host, job and source identity (`paths`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupBy {
    /// The host.
    pub host: bool,
    /// The job.
    pub job: bool,
    /// The source identity (what the job saves).
    pub paths: bool,
    /// The set of tags.
    pub tags: bool,
}

impl Default for GroupBy {
    fn default() -> Self {
        GroupBy {
            host: true,
            job: true,
            paths: true,
            tags: false,
        }
    }
}

impl std::str::FromStr for GroupBy {
    type Err = String;

    /// `host,job,paths,tags`, any subset; an empty string puts every snapshot in one group.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let mut g = GroupBy {
            host: false,
            job: false,
            paths: false,
            tags: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "host" => g.host = true,
                "job" => g.job = true,
                "paths" | "source" => g.paths = true,
                "tags" => g.tags = true,
                other => {
                    return Err(format!(
                        "'{other}' is not a grouping: write any of host,job,paths,tags (or '' for one group)"
                    ));
                }
            }
        }
        Ok(g)
    }
}

impl GroupBy {
    /// The group of `c`, as shown: e.g. `host db1, job exports, source 1a2b3c4d`.
    pub fn label(&self, c: &Commit) -> String {
        let mut parts = Vec::new();
        if self.host {
            parts.push(format!("host {}", c.host));
        }
        if self.job {
            parts.push(format!("job {}", c.job.as_deref().unwrap_or("-")));
        }
        if self.paths {
            let source = c.source.as_deref().map_or("-", |s| s.get(..8).unwrap_or(s));
            parts.push(format!("source {source}"));
        }
        if self.tags {
            let mut tags = c.tags.clone();
            tags.sort();
            parts.push(format!("tags [{}]", tags.join(",")));
        }
        if parts.is_empty() {
            "all snapshots".into()
        } else {
            parts.join(", ")
        }
    }
}

/// What to forget.
#[derive(Debug, Clone, Default)]
pub struct ForgetOptions {
    /// The retention policy (used when `ids` is empty).
    pub policy: Policy,
    /// Policies of jobs that have their own (`[job.forget]`), used instead of `policy` for
    /// their snapshots when groups are per job.
    pub job_policies: std::collections::BTreeMap<String, Policy>,
    /// How snapshots are grouped: the policy applies to each group alone.
    pub group_by: GroupBy,
    /// Which snapshots it considers (`--job`, `--host`, `--tag`, `--before`); the others
    /// are neither listed nor forgotten.
    pub selection: crate::repository::Selection,
    /// Snapshots to forget by id (or `latest`), regardless of policy.
    pub ids: Vec<String>,
    /// Only show what would happen.
    pub dry_run: bool,
}

/// One snapshot and what happens to it.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// Snapshot id.
    pub id: String,
    /// When it was taken.
    pub time: String,
    /// Its host.
    pub host: String,
    /// Its job (`-` for a format-1 snapshot).
    pub job: String,
    /// Its group (see [`GroupBy`]).
    pub group: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Kept?
    pub keep: bool,
    /// Why it is kept (rules), or why it goes.
    pub reasons: Vec<String>,
}

/// What forget did.
#[derive(Debug, Clone, Serialize)]
pub struct ForgetReport {
    /// Nothing was changed.
    pub dry_run: bool,
    /// The policy, described.
    pub policy: String,
    /// Every snapshot, by group, oldest first within each.
    pub snapshots: Vec<Listed>,
    /// Problems per store (the snapshot stays listed there; run forget again).
    pub errors: Vec<String>,
}

impl ForgetReport {
    /// 0, or 3 when some store could not be updated.
    pub fn exit_code(&self) -> i32 {
        if self.errors.is_empty() {
            exit::OK
        } else {
            exit::PARTIAL
        }
    }

    /// The ids forgotten (or to forget).
    pub fn forgotten(&self) -> impl Iterator<Item = &Listed> {
        self.snapshots.iter().filter(|s| !s.keep)
    }
}

/// Decide and (unless dry-run) forget.
/// `forget`, then (with `prune`) a prune; a dry run plans the prune as if the forget had
/// happened, so that it shows what the real run would free.
pub async fn run_then_prune(
    repo: &Repository,
    key: Option<&WriteKey>,
    opts: &ForgetOptions,
    prune: Option<super::PruneOptions>,
) -> Result<(ForgetReport, Option<super::PruneReport>)> {
    let report = run(repo, key, opts).await?;
    let Some(mut prune) = prune else {
        return Ok((report, None));
    };
    if opts.dry_run {
        prune.planned_forget = report.forgotten().map(|s| s.id.clone()).collect();
    }
    let pruned = super::run(repo, &prune).await?;
    Ok((report, Some(pruned)))
}

/// Apply `opts` to the snapshots of `repo`: a signed tombstone for each snapshot to forget
/// (the write key signs them; a dry run needs none).
pub async fn run(
    repo: &Repository,
    key: Option<&WriteKey>,
    opts: &ForgetOptions,
) -> Result<ForgetReport> {
    let list = repo.snapshots().await?;
    let all = list.candidates();
    let considered: Vec<Snapshot> = list
        .trusted
        .iter()
        .zip(&all)
        .filter(|(_, c)| SnapshotList::admits(&opts.selection, c))
        .map(|(s, _)| s.clone())
        .collect();
    let listed = decide(&considered, opts, &list)?;
    let mut report = ForgetReport {
        dry_run: opts.dry_run,
        policy: if opts.ids.is_empty() {
            opts.policy.describe()
        } else {
            "by id".into()
        },
        snapshots: listed,
        errors: Vec::new(),
    };
    if opts.dry_run {
        return Ok(report);
    }
    let key = key.ok_or_else(|| Error::Usage("forget signs tombstones with the write key: run it where the write key is (or with --dry-run to see the plan)".into()))?;
    for l in report.snapshots.iter().filter(|l| !l.keep) {
        let snap = list
            .trusted
            .iter()
            .find(|s| s.commit.snapshot_id == l.id)
            .expect("decided from this list");
        let reason = l.reasons.join(", ");
        report
            .errors
            .extend(forget_one(repo, key, snap, &reason).await);
    }
    Ok(report)
}

fn decide(
    trusted: &[Snapshot],
    opts: &ForgetOptions,
    list: &crate::repository::SnapshotList,
) -> Result<Vec<Listed>> {
    let by_id: Vec<String> = opts
        .ids
        .iter()
        .map(|spec| {
            list.select(spec, &opts.selection)
                .map(|s| s.commit.snapshot_id.clone())
        })
        .collect::<Result<_>>()?;
    if by_id.is_empty() && opts.policy.is_empty() && opts.job_policies.is_empty() {
        return Err(Error::Usage(
            "forget needs a policy (--keep-last, --keep-daily, ... or [forget] in the config) or snapshot ids; it never forgets everything by default".into(),
        ));
    }
    let candidates: Vec<Candidate> = trusted
        .iter()
        .map(|s| Candidate {
            id: s.commit.snapshot_id.clone(),
            time: format::parse_time(&s.commit.time).unwrap_or(std::time::UNIX_EPOCH),
            group: opts.group_by.label(&s.commit),
            tags: s.commit.tags.clone(),
            offset_secs: 0,
        })
        .map(|mut c| {
            c.offset_secs = opts.selection.zone.offset_secs(c.time);
            c
        })
        .collect();
    let decisions = if by_id.is_empty() {
        by_policy(trusted, opts, &candidates)
    } else {
        candidates
            .iter()
            .map(|c| retention::Decision {
                id: c.id.clone(),
                keep: !by_id.contains(&c.id),
                reasons: vec![
                    if by_id.contains(&c.id) {
                        "by id"
                    } else {
                        "not named"
                    }
                    .into(),
                ],
            })
            .collect()
    };
    let mut listed: Vec<Listed> = trusted
        .iter()
        .zip(decisions)
        .zip(candidates)
        .map(|((s, d), c)| Listed {
            id: d.id,
            time: s.commit.time.clone(),
            host: s.commit.host.clone(),
            job: s.commit.job.clone().unwrap_or_else(|| "-".into()),
            group: c.group,
            tags: s.commit.tags.clone(),
            keep: d.keep,
            reasons: if d.keep || !d.reasons.is_empty() {
                d.reasons
            } else {
                vec!["matched no keep rule".into()]
            },
        })
        .collect();
    // By group, oldest first within each (the sort is stable).
    listed.sort_by(|a, b| a.group.cmp(&b.group));
    Ok(listed)
}

/// Each snapshot under its job's policy when it has one (and groups are per job), else
/// under `opts.policy`: one [`retention::apply`] per distinct policy, merged back in order.
fn by_policy(
    trusted: &[Snapshot],
    opts: &ForgetOptions,
    candidates: &[Candidate],
) -> Vec<retention::Decision> {
    let policy_of = |s: &Snapshot| -> &Policy {
        s.commit
            .job
            .as_ref()
            .filter(|_| opts.group_by.job)
            .and_then(|j| opts.job_policies.get(j))
            .unwrap_or(&opts.policy)
    };
    let mut out: Vec<Option<retention::Decision>> = vec![None; candidates.len()];
    let mut distinct: Vec<&Policy> = Vec::new();
    for s in trusted {
        if !distinct.contains(&policy_of(s)) {
            distinct.push(policy_of(s));
        }
    }
    for policy in distinct {
        let members: Vec<usize> = (0..trusted.len())
            .filter(|&i| policy_of(&trusted[i]) == policy)
            .collect();
        let subset: Vec<Candidate> = members.iter().map(|&i| candidates[i].clone()).collect();
        for (i, d) in members.into_iter().zip(retention::apply(policy, &subset)) {
            out[i] = Some(d);
        }
    }
    out.into_iter()
        .map(|d| d.expect("every snapshot has a policy"))
        .collect()
}

/// A tombstone in every store; errors name the store.
async fn forget_one(
    repo: &Repository,
    key: &WriteKey,
    snap: &Snapshot,
    reason: &str,
) -> Vec<String> {
    let c: &Arc<Commit> = &snap.commit;
    let commit_name = format::commit_object(&c.snapshot_id);
    let commit_ref = match commit_ref(repo, &commit_name).await {
        Ok(r) => r,
        Err(e) => return vec![format!("snapshot {}: {e}", c.snapshot_id)],
    };
    let tombstone = Tombstone::new(
        &repo.config.repository_id,
        &c.snapshot_id,
        &c.time,
        &c.data_set(),
        commit_ref,
        &format::format_time(std::time::SystemTime::now()),
        reason,
    );
    let body = Bytes::from(tombstone.to_object(&key.signing));
    let tomb_name = format::tombstone_object(&c.snapshot_id);
    let mut errors = Vec::new();
    for store in &repo.stores {
        let result = async {
            match store::put_create_checked(store.as_ref(), &tomb_name, body.clone()).await {
                Ok(_) => {}
                // An earlier, interrupted forget left its own tombstone: keep that one.
                Err(e) if e.kind == StoreErrorKind::AlreadyExists => {
                    let old = store
                        .get(&tomb_name, crate::format::tombstone::LIMIT)
                        .await?;
                    Tombstone::from_object(
                        &old,
                        &repo.trust(),
                        &repo.config.repository_id,
                        &c.snapshot_id,
                    )
                    .map_err(|why| Error::integrity(Some(store.name()), Some(&tomb_name), why))?;
                }
                Err(e) => return Err(e.into()),
            }
            // The commit and manifest stay, hidden by the tombstone, until prune collects
            // the snapshot: until then audit still knows which chunks it held.
            Ok::<(), Error>(())
        }
        .await;
        if let Err(e) = result {
            errors.push(format!(
                "store '{}': snapshot {} stays listed there: {e}",
                store.name(),
                c.snapshot_id
            ));
        }
    }
    errors
}

/// Size and SHA-256 of a commit object, read from the first store that has it.
async fn commit_ref(repo: &Repository, name: &str) -> Result<ObjectRef> {
    let mut last = None;
    for store in &repo.stores {
        match store.get(name, limits::COMMIT_OBJECT).await {
            Ok(b) => {
                return Ok(ObjectRef::of(name, &b));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(
        || Error::fatal(format!("no store holds {name}")),
        Error::from,
    ))
}
