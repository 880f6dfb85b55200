//! The responder's tools: looking into snapshots without restoring them.
//!
//! - [`find`]: which snapshots hold a path matching a glob, when it first and last
//!   appears, and when it went — to find the snapshot to restore a lost file from.
//! - [`diff`]: what was added, removed or changed between two snapshots.
//! - [`dump`]: one file to standard output, or a folder as a tar stream, verified as it
//!   streams (every chunk against the signed commit, every file against its SHA-256).
//! - [`Scope`]: which entries `ls` and `diff` look at (`PATH…` and `--include`).
//!
//! Everything here reads verified manifests ([`crate::restore::open_snapshot`]) and, for
//! content, the restore engine's verified chunk stream ([`crate::restore::stream_files`]);
//! nothing here fetches or trusts anything on its own. Text renderings are in
//! [`render`]; every path they print is escaped (paths come from manifests, which whoever
//! held the write key wrote).

pub mod diff;
pub mod dump;
pub mod find;
pub mod render;
mod tar;

use crate::error::{Error, Result};
use crate::format::manifest::{Entry, Manifest};
use crate::restore::PathGlobs;

/// Which entries of a snapshot a command looks at: literal subtrees (`ls SNAPSHOT PATH…`,
/// `diff A B PATH…`: the entry at PATH and everything below it) and `--include` globs
/// (matched as `exclude` globs are, a matched directory bringing its subtree). Both empty
/// means every entry; both given means entries admitted by both.
#[derive(Debug, Clone)]
pub struct Scope {
    subtrees: Vec<Vec<u8>>,
    /// As given, for messages.
    paths: Vec<String>,
    include: PathGlobs,
}

impl Scope {
    /// `paths` are snapshot paths (a leading or trailing `/` is ignored; `/` alone is the
    /// whole snapshot); `include` are globs.
    pub fn new(paths: &[String], include: &[String]) -> Result<Self> {
        Ok(Scope {
            subtrees: paths.iter().map(|p| normal(p).to_vec()).collect(),
            paths: paths.to_vec(),
            include: PathGlobs::new(include, "--include")?,
        })
    }

    /// Everything.
    pub fn all() -> Self {
        Scope::new(&[], &[]).expect("no pattern to fail")
    }

    /// Is the entry at `path` in scope?
    pub fn admits(&self, path: &[u8]) -> bool {
        (self.subtrees.is_empty() || self.subtrees.iter().any(|t| within(path, t)))
            && (self.include.is_empty() || self.include.selected(path))
    }

    /// The entries of `manifest` in scope, in manifest order; a usage error naming
    /// the snapshot when a PATH or a pattern matches none of them (a typo would otherwise
    /// look like an empty folder).
    pub fn entries<'m>(&self, manifest: &'m Manifest) -> Result<Vec<&'m Entry>> {
        let listed: Vec<&Entry> = manifest
            .entries
            .iter()
            .filter(|e| self.admits(&e.path.0))
            .collect();
        self.check_matched(&[manifest], &manifest.snapshot_id)?;
        Ok(listed)
    }

    /// A usage error when a PATH or pattern matches no entry of any of `manifests`.
    pub fn check_matched(&self, manifests: &[&Manifest], which: &str) -> Result<()> {
        let all = || manifests.iter().flat_map(|m| &m.entries);
        let mut missing: Vec<String> = self
            .subtrees
            .iter()
            .zip(&self.paths)
            .filter(|(t, _)| !all().any(|e| within(&e.path.0, t)))
            .map(|(_, p)| format!("path '{p}'"))
            .collect();
        for p in self.include.patterns() {
            let one = PathGlobs::new(std::slice::from_ref(p), "--include")?;
            if !all().any(|e| one.selected(&e.path.0)) {
                missing.push(format!("--include '{p}'"));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::Usage(format!(
            "nothing in snapshot {which} matches {}; `snapdrill ls SNAPSHOT` shows its paths (they start with the backed-up folder's name)",
            missing.join(", ")
        )))
    }
}

/// A PATH argument as a snapshot path: no leading or trailing `/`, `.` for the root.
fn normal(p: &str) -> &[u8] {
    let t = p.trim_matches('/');
    if t == "." { b"" } else { t.as_bytes() }
}

/// Is `path` the entry `top` or below it (`top` empty: the whole snapshot)?
fn within(path: &[u8], top: &[u8]) -> bool {
    top.is_empty()
        || path
            .strip_prefix(top)
            .is_some_and(|rest| rest.is_empty() || rest[0] == b'/')
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A manifest with `entries` (JSON objects: `path`, `type`, and what else the test
    /// needs), built through serde so that new optional members do not break the tests.
    pub(crate) fn manifest(id: &str, entries: serde_json::Value) -> Manifest {
        let mut m = Manifest::new("r", id, "2026-11-28T03:27:18Z");
        let list = entries.as_array().expect("a list of entries");
        m.entries = list
            .iter()
            .map(|e| {
                let mut e = e.clone();
                let o = e.as_object_mut().expect("an object");
                o.entry("mode").or_insert(420.into());
                o.entry("mtime").or_insert(1_764_300_000.into());
                o.entry("mtime_ns").or_insert(0.into());
                serde_json::from_value(e).expect("an entry")
            })
            .collect();
        m
    }

    fn tree() -> Manifest {
        manifest(
            "s1",
            serde_json::json!([
                {"path": "exports", "type": "dir"},
                {"path": "exports/customers.csv", "type": "file", "size": 0},
                {"path": "exports/db", "type": "dir"},
                {"path": "exports/db/crm.sql", "type": "file", "size": 0},
                {"path": "exports/dbx", "type": "file", "size": 0},
            ]),
        )
    }

    fn paths(s: &Scope, m: &Manifest) -> Vec<String> {
        s.entries(m)
            .unwrap()
            .iter()
            .map(|e| e.path.display())
            .collect()
    }

    #[test]
    fn a_path_is_its_entry_and_its_subtree() {
        let m = tree();
        let s = Scope::new(&["/exports/db/".into()], &[]).unwrap();
        assert_eq!(paths(&s, &m), ["exports/db", "exports/db/crm.sql"]);
        assert_eq!(paths(&Scope::new(&["/".into()], &[]).unwrap(), &m).len(), 5);
        assert_eq!(paths(&Scope::all(), &m).len(), 5);
    }

    #[test]
    fn include_globs_narrow_paths() {
        let m = tree();
        let s = Scope::new(&["exports".into()], &["*.sql".into()]).unwrap();
        assert_eq!(paths(&s, &m), ["exports/db/crm.sql"]);
    }

    #[test]
    fn a_path_or_pattern_that_matches_nothing_is_named() {
        let m = tree();
        let s = Scope::new(&["exports/nope".into()], &["*.parquet".into()]).unwrap();
        let e = s.entries(&m).unwrap_err().to_string();
        assert!(e.contains("path 'exports/nope'"), "{e}");
        assert!(e.contains("--include '*.parquet'"), "{e}");
        assert!(e.contains("s1"), "{e}");
    }
}
