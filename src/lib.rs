//! snapdrill: compressed (zstd), encrypted (age) snapshots of data exports written to several
//! object stores at once, and restores that verify every byte.
//!
//! The library holds all logic; `src/main.rs` and `src/cli/` are a thin command layer.
//! Modules are named after the domain (docs/design.md, "Shape of the code"):
//!
//! - `config` — `snapdrill.toml`, its `[[job]]`s (data sets) and their health settings.
//! - `select` — which snapshot a command means: specs, filters, data sets, time zones.
//! - `keys` — the age identity and recipients, and the write key (signing + dedup).
//! - `format` — the versioned repository format (`docs/format.md`): object names, the
//!   repository config, commits, manifests, tombstones, signatures, limits.
//! - `sealing` — `age(zstd(..))` and back, keyed chunk ids, bounded headers and sizes.
//! - `store` — the storage seam ([`store::Store`]): where a store lives (`location`), its
//!   `object_store` backends (`backend`), retries and deadlines (`retry`), redaction of
//!   credentials (`redact`), fault injection for tests (`faults`).
//! - `repository` — a repository across its stores: init, open, list, verified fetch;
//!   `commit_cache` keeps the signed commits already read.
//! - `localfs` — local files as other users cannot redirect them: descriptor-relative
//!   walks, atomic writes that keep mode and owner, private scratch folders, cleanup on
//!   interruption.
//! - `source` — walking what to back up.
//! - `backup` and `restore` — the two engines; `explore` — the responder's `find`, `diff`
//!   and `dump` over verified manifests and chunks; `sync` heals replicas from each other;
//!   `replicate` is the one way verified objects are copied between stores and committed.
//! - `drill` — timed clean-room restore drills and their evidence records.
//! - `evidence` — evidence packs (reports, records, `SHA256SUMS`) and their check against
//!   the repository's authenticated records.
//! - `report` — JSON, Markdown, HTML and Prometheus renderings of drills; `text` — untrusted
//!   strings made safe to print; `units` — sizes, counts and durations, written and read;
//!   `metrics` — the Prometheus textfile writer.
//! - `audit` — every replica checked against the signed commits, with or without the
//!   identity; the rollback ledger; read coverage.
//! - `retention` — keep-last/daily/weekly/... policies (pure); `prune` — `forget`
//!   (tombstones), two-phase collection, leases and the floors a backup host cannot move.
//! - `damage` — the register of copies found damaged, kept until a read proves them healthy.
//! - `hooks` — commands and Healthchecks-style pings around backups, drills and audits.
//! - `lock` — the local lock that makes an overlapping cron run of a backup job exit at once.
//! - `error` — the error type and exit codes.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod audit;
pub mod backup;
pub mod commit_cache;
pub mod config;
pub mod damage;
pub mod drill;
pub mod error;
pub mod evidence;
pub mod explore;
pub mod format;
pub mod hooks;
pub mod keys;
pub mod localfs;
pub mod lock;
pub mod memory;
pub mod metrics;
pub mod prune;
pub mod rekey;
pub mod replicate;
pub mod report;
pub mod repository;
pub mod restore;
pub mod retention;
pub mod sealing;
pub mod select;
pub mod source;
pub mod store;
pub mod sync;
pub mod text;
pub mod units;

pub use error::{Error, Result};

/// This machine's host name, for snapshot records.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
