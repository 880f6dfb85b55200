//! Which snapshot paths an `--include` glob means: the same rules as the backup's
//! `exclude` globs (`source::Excludes`), so that the pattern an operator wrote to keep
//! something out of a backup is the pattern that brings it back.
//!
//! - A pattern without `/` matches a *name* at any depth: `*.csv` is every CSV file,
//!   `db` every entry called `db`.
//! - A pattern with `/` matches the whole path from the snapshot's root
//!   (`exports/db/*.sql`); a leading `/` is allowed and means the same (a snapshot path
//!   has no local root to anchor an absolute pattern to). A trailing `/` is dropped, but
//!   anchors the pattern as it does for `exclude` (`db/` is the top-level `db` only).
//! - `*` and `?` stay within one component; `**` crosses them.
//!
//! [`PathGlobs::selected`] adds what a restore needs: a matched directory brings its
//! whole subtree.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result};

/// Compiled `--include`-style globs.
#[derive(Debug, Clone)]
pub struct PathGlobs {
    /// Patterns without `/`: matched against one name.
    names: GlobSet,
    /// Patterns with `/`: matched against the path from the root.
    paths: GlobSet,
    /// As given, for messages.
    patterns: Vec<String>,
}

impl PathGlobs {
    /// Does a restore limited by these globs take `path`? Every path when there are none.
    pub fn takes(&self, path: &[u8]) -> bool {
        self.is_empty() || self.selected(path)
    }

    /// Compile `patterns`; `option` names them in errors (`--include`, `find`).
    pub fn new(patterns: &[String], option: &str) -> Result<Self> {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        for p in patterns {
            // As `exclude` decides: any `/` in the pattern as written anchors it.
            let anchored = p.contains('/');
            let body = p.trim_end_matches('/').trim_start_matches('/');
            if body.is_empty() {
                return Err(Error::Usage(format!(
                    "{option} pattern '{p}' names no path; write a name (`*.csv`) or a path from the snapshot's root (`exports/db`)"
                )));
            }
            let glob = GlobBuilder::new(body)
                .literal_separator(true)
                .build()
                .map_err(|e| Error::Usage(format!("{option} pattern '{p}': {e}")))?;
            if anchored {
                paths.add(glob);
            } else {
                names.add(glob);
            }
        }
        let build = |b: GlobSetBuilder| {
            b.build()
                .map_err(|e| Error::Usage(format!("{option} patterns: {e}")))
        };
        Ok(PathGlobs {
            names: build(names)?,
            paths: build(paths)?,
            patterns: patterns.to_vec(),
        })
    }

    /// No pattern at all (which commands read as "everything").
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The patterns as given.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// Does the entry at `path` itself match (its name, or its whole path)?
    pub fn matches(&self, path: &[u8]) -> bool {
        let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
        self.names.is_match(as_path(name)) || self.paths.is_match(as_path(path))
    }

    /// Does `path`, or one of the directories above it, match? A matched directory
    /// brings its subtree.
    pub fn selected(&self, path: &[u8]) -> bool {
        self.matches(path)
            || path
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'/')
                .any(|(i, _)| self.matches(&path[..i]))
    }
}

fn as_path(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globs(p: &[&str]) -> PathGlobs {
        PathGlobs::new(
            &p.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "--include",
        )
        .unwrap()
    }

    #[test]
    fn a_pattern_without_a_slash_matches_a_name_at_any_depth() {
        let g = globs(&["*.csv"]);
        assert!(g.matches(b"top.csv"));
        assert!(g.matches(b"exports/customers.csv"));
        assert!(g.matches(b"exports/2026/11/orders.csv"));
        assert!(!g.matches(b"exports/customers.csv.bak"));
        assert!(!g.matches(b"exports"));
    }

    #[test]
    fn a_pattern_with_a_slash_matches_the_path_from_the_root() {
        let g = globs(&["exports/db/*.sql", "/exports/keep/"]);
        assert!(g.matches(b"exports/db/crm.sql"));
        assert!(!g.matches(b"other/exports/db/crm.sql"));
        assert!(
            !g.matches(b"exports/db/old/crm.sql"),
            "* stays in one component"
        );
        assert!(
            g.matches(b"exports/keep"),
            "leading and trailing slashes are allowed"
        );
        assert!(globs(&["exports/**/*.sql"]).matches(b"exports/db/old/crm.sql"));
    }

    #[test]
    fn a_matched_directory_brings_its_subtree() {
        let g = globs(&["db", "exports/call_logs"]);
        assert!(g.selected(b"exports/db"));
        assert!(g.selected(b"exports/db/crm.sql"));
        assert!(g.selected(b"archive/2025/db/x/y"));
        assert!(g.selected(b"exports/call_logs/a.jsonl"));
        assert!(!g.selected(b"exports/customers.csv"));
        assert!(!g.selected(b"exports/dbx/crm.sql"));
        assert!(
            !g.matches(b"exports/db/crm.sql"),
            "matches is the entry alone"
        );
    }

    #[test]
    fn names_that_are_not_utf8_still_match() {
        assert!(globs(&["*.csv"]).matches(b"exports/caf\xe9.csv"));
    }

    #[test]
    fn bad_patterns_are_usage_errors_naming_the_pattern() {
        for bad in ["a[", "/", ""] {
            let e = PathGlobs::new(&[bad.to_string()], "--include").unwrap_err();
            assert!(matches!(e, Error::Usage(_)), "{bad}: {e}");
            assert!(e.to_string().contains("--include"), "{e}");
        }
    }
}
