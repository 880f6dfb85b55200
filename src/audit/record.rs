//! Audit records: each recorded audit's report (with its provenance) kept in the
//! repository as `audits/<audit-id>.<MAC>`, sealed and authenticated exactly like a drill
//! record (docs/format.md), so every site holds the audit history, `sync` replicates it,
//! `rekey` moves it to a new read key, and only identity holders can read or add to it.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::AuditReport;
use crate::config::Config;
use crate::drill::record::{self as sealed, BadRecord};
use crate::error::{Error, Result};
use crate::format::{self, AUDITS_PREFIX, check_version, limits};
use crate::keys::Identities;
use crate::repository::{self, OpenMode, Repository};
use crate::store;

const FORMAT: &str = "snapdrill-audit";

/// The evidence of one audit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditRecord {
    /// `snapdrill-audit`.
    pub format: String,
    /// Record version (1).
    pub version: u32,
    /// `YYYYMMDDTHHMMSSZ-xxxxxxxx`, from the audit's start.
    pub audit_id: String,
    /// The report, with its provenance.
    pub report: AuditReport,
}

/// The repository of `config`, opened in the stores that hold it, and its dedup key.
async fn open(config: &Config, identities: &Identities) -> Result<(Repository, [u8; 32])> {
    let signer = repository::signer(config, true)?;
    let (stores, _) = repository::open_stores(config, false);
    if stores.is_empty() {
        return Err(Error::fatal("no configured store can be opened"));
    }
    let repo = Repository::open(stores, signer, OpenMode::AnyUsable).await?;
    let dedup = crate::restore::dedup_key(&repo, identities)?;
    Ok((repo, dedup))
}

/// Keep `report` in every store of `config` that holds the repository. Returns the audit
/// id and a warning per store that could not take it.
pub async fn keep(
    config: &Config,
    identities: Arc<Identities>,
    report: &AuditReport,
) -> Result<(String, Vec<String>)> {
    let (repo, dedup) = open(config, &identities).await?;
    let started = format::parse_time(&report.started).unwrap_or_else(std::time::SystemTime::now);
    let record = AuditRecord {
        format: FORMAT.into(),
        version: 1,
        audit_id: format::new_snapshot_id(started),
        report: report.clone(),
    };
    let to = match repo.config.write_recipient() {
        Some(r) => vec![r],
        None => crate::keys::recipient::legacy_recipients(&config.recipients)?,
    };
    let body = serde_json::to_vec_pretty(&record).map_err(|e| Error::fatal(e.to_string()))?;
    let bytes = sealed::seal_body(&body, &dedup, &to).map_err(Error::fatal)?;
    let name = sealed::named(AUDITS_PREFIX, &record.audit_id, &bytes, &dedup);
    let bytes = bytes::Bytes::from(bytes);
    let mut warnings = Vec::new();
    for s in &repo.stores {
        if let Err(e) = store::put_create_checked(s.as_ref(), &name, bytes.clone()).await {
            warnings.push(format!(
                "warning: audit record not kept in store '{}': {e}",
                s.name()
            ));
        }
    }
    Ok((record.audit_id, warnings))
}

/// Every audit record in the stores of `config`, oldest first, each authenticated; and
/// every copy that is not (named with its store), even when another store's copy is good.
pub async fn history(
    config: &Config,
    identities: Arc<Identities>,
) -> Result<(Vec<AuditRecord>, Vec<BadRecord>)> {
    let (repo, dedup) = open(config, &identities).await?;
    let mut names: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut bad = Vec::new();
    for (i, s) in repo.stores.iter().enumerate() {
        match s.list(AUDITS_PREFIX).await {
            Ok(objects) => {
                for o in objects {
                    names.entry(o.key).or_default().push(i);
                }
            }
            Err(e) => bad.push(BadRecord {
                object: AUDITS_PREFIX.into(),
                reason: e.to_string(),
            }),
        }
    }
    let mut good = Vec::new();
    for (name, holders) in names {
        let mut found = None;
        for i in holders {
            let s = &repo.stores[i];
            match read_copy(s.as_ref(), &name, &identities, &dedup).await {
                Ok(r) => found = found.or(Some(r)),
                Err(why) => bad.push(BadRecord {
                    object: name.clone(),
                    reason: format!("store '{}': {why}", s.name()),
                }),
            }
        }
        good.extend(found);
    }
    good.sort_by(|a, b| a.report.started.cmp(&b.report.started));
    Ok((good, bad))
}

/// One store's copy of a record, authenticated: its name's MAC, its body's MAC, its
/// format, and the id its name gives.
async fn read_copy(
    s: &dyn store::Store,
    name: &str,
    identities: &Identities,
    dedup: &[u8; 32],
) -> std::result::Result<AuditRecord, String> {
    let (id, mac) = format::audit_record_name(name).ok_or("not an audit record's name")?;
    let bytes = s
        .get(name, limits::AUDIT_RECORD)
        .await
        .map_err(|e| e.to_string())?;
    if sealed::name_mac(dedup, &bytes) != mac {
        return Err("its bytes do not match the MAC in its name: altered, or not written by an identity holder (not decrypted)".into());
    }
    let body = sealed::open_body(&bytes, identities.as_age(), dedup, limits::AUDIT_RECORD)?;
    let record: AuditRecord =
        serde_json::from_slice(&body).map_err(|e| format!("unreadable record: {e}"))?;
    check_version("audit record", &record.format, FORMAT, record.version, 1)?;
    if record.audit_id != id {
        return Err("record stored under another audit's name".into());
    }
    Ok(record)
}
