//! Text renderings of `ls`, `find`, `diff` and `dump`. Every path, target and id printed
//! here comes from a manifest or a commit and passes through [`escape_bytes`] or
//! [`escape`]; `--json` renders the reports themselves.

use std::fmt::Write as _;

use super::diff::{ChangeKind, DiffReport, Difference};
use super::dump::DumpReport;
use super::find::{FindReport, Found, Seen, Version};
use crate::format::manifest::{Entry, EntryKind};
use crate::select::Zone;
use crate::text::{escape, escape_bytes};
use crate::units::{binary_size, count};

/// Permission bits as `ls -l` shows them: `-rw-r--r--`, `drwxr-xr-x`, `lrwxrwxrwx`, with
/// `s`/`S` for setuid and setgid and `t`/`T` for the sticky bit.
pub fn mode_string(kind: EntryKind, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(match kind {
        EntryKind::Dir => 'd',
        EntryKind::File => '-',
        EntryKind::Symlink => 'l',
    });
    let special = [(0o4000, 's', 'S'), (0o2000, 's', 'S'), (0o1000, 't', 'T')];
    for (who, (bit, lower, upper)) in special.into_iter().enumerate() {
        let shift = 6 - 3 * who;
        let rwx = (mode >> shift) & 0o7;
        s.push(if rwx & 4 != 0 { 'r' } else { '-' });
        s.push(if rwx & 2 != 0 { 'w' } else { '-' });
        s.push(match (mode & bit != 0, rwx & 1 != 0) {
            (true, true) => lower,
            (true, false) => upper,
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// A modification time for people: RFC 3339 when it is one (1970 to 9999), else the raw
/// seconds, flagged (a manifest value is never trusted to be in range).
pub fn mtime(secs: i64) -> String {
    const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    if (0..=LAST).contains(&secs) {
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64),
        )
        .to_string()
    } else {
        format!("@{secs} (out of range)")
    }
}

/// One `ls` line: mode, size, mtime, path (and a symlink's target, and a file that
/// changed while it was backed up).
pub fn ls_line(e: &Entry) -> String {
    let mut line = format!(
        "{} {:>12} {} {}",
        mode_string(e.kind, e.mode),
        e.file_size(),
        mtime(e.mtime),
        escape_bytes(&e.path.0)
    );
    if let Some(t) = &e.target {
        let _ = write!(line, " -> {}", escape_bytes(&t.0));
    }
    if e.changed {
        line.push_str("  (changed while backed up)");
    }
    line
}

/// `find`'s matches, one block per path (the data set named when several were searched),
/// then a summary line.
pub fn find_text(r: &FindReport, zone: &Zone) -> String {
    let mut out = String::new();
    let several = r.found.windows(2).any(|w| w[0].data_set != w[1].data_set);
    for f in &r.found {
        found_block(&mut out, f, zone, several);
    }
    let patterns: Vec<String> = r
        .patterns
        .iter()
        .map(|p| format!("'{}'", escape(p)))
        .collect();
    let _ = writeln!(
        out,
        "{} matching {} in {} searched",
        match r.found.len() {
            0 => "no path".to_owned(),
            n => count(n, "path"),
        },
        patterns.join(" or "),
        count(r.searched as usize, "snapshot")
    );
    out
}

fn found_block(out: &mut String, f: &Found, zone: &Zone, several: bool) {
    let _ = write!(out, "{}", escape_bytes(&f.path.0));
    if several {
        let _ = write!(out, "  [{}]", escape(&f.data_set.to_string()));
    }
    out.push('\n');
    let _ = writeln!(out, "  first seen  {}", seen(&f.first, zone));
    let _ = writeln!(out, "  last seen   {}", seen(&f.last, zone));
    match &f.gone_in {
        Some(g) => {
            let _ = writeln!(out, "  gone in     {}", seen(g, zone));
        }
        None => out.push_str("  still in the newest snapshot searched\n"),
    }
    for v in &f.versions {
        let _ = writeln!(out, "  {}", version(v));
    }
}

fn seen(s: &Seen, zone: &Zone) -> String {
    let local = crate::format::parse_time(&s.time)
        .map(|t| zone.show(t))
        .unwrap_or_else(|| escape(&s.time).into_owned());
    format!("{}  {local}", escape(&s.snapshot_id))
}

fn version(v: &Version) -> String {
    let mut line = mode_string(v.kind, v.mode);
    if v.kind == EntryKind::File {
        let _ = write!(line, "  {}", binary_size(v.size.unwrap_or(0)));
    }
    if let Some(t) = &v.target {
        let _ = write!(line, "  -> {}", escape_bytes(&t.0));
    }
    let _ = write!(line, "  mtime {}", mtime(v.mtime));
    if let Some(sha) = &v.sha256 {
        let _ = write!(line, "  sha256 {}", escape(sha));
    }
    let span = if v.snapshots == 1 {
        escape(&v.first.snapshot_id).into_owned()
    } else {
        format!(
            "{} .. {}",
            escape(&v.first.snapshot_id),
            escape(&v.last.snapshot_id)
        )
    };
    let _ = write!(
        line,
        "  ({}: {span})",
        count(v.snapshots as usize, "snapshot")
    );
    line
}

/// Snapshots `find` could not search, one warning each (for stderr).
pub fn find_warnings(r: &FindReport) -> Vec<String> {
    r.unreadable
        .iter()
        .map(|u| {
            format!(
                "warning: snapshot {} was not searched: {}",
                escape(&u.snapshot_id),
                escape(&u.error)
            )
        })
        .collect()
}

/// `+ path`, `- path`, `M path (what)` lines, by path (directories end in `/`); then,
/// unless `quiet`, a summary line.
pub fn diff_text(r: &DiffReport, quiet: bool) -> String {
    let mut out = String::new();
    for c in &r.changes {
        let mark = match c.change {
            ChangeKind::Added => '+',
            ChangeKind::Removed => '-',
            ChangeKind::Modified => 'M',
        };
        let slash = if c.kind == EntryKind::Dir { "/" } else { "" };
        let _ = write!(out, "{mark} {}{slash}", escape_bytes(&c.path.0));
        if !c.differences.is_empty() {
            let _ = write!(out, " ({})", differences(&c.differences));
        }
        out.push('\n');
    }
    if !quiet {
        let _ = writeln!(
            out,
            "{} added, {} removed, {} modified ({} -> {})",
            r.added,
            r.removed,
            r.modified,
            escape(&r.a),
            escape(&r.b)
        );
    }
    out
}

/// `content 12 B -> 14 B, mode 0644 -> 0600`; an mtime is named only when the content did
/// not change (a changed file's mtime changes too; `--json` has both).
fn differences(ds: &[Difference]) -> String {
    let content = ds.iter().any(|d| matches!(d, Difference::Content { .. }));
    let kind = |k: &EntryKind| match k {
        EntryKind::Dir => "dir",
        EntryKind::File => "file",
        EntryKind::Symlink => "symlink",
    };
    ds.iter()
        .filter_map(|d| match d {
            Difference::Content { from_size, to_size } if from_size == to_size => {
                Some("content".to_owned())
            }
            Difference::Content { from_size, to_size } => Some(format!(
                "content {} -> {}",
                binary_size(*from_size),
                binary_size(*to_size)
            )),
            Difference::Type { from, to } => Some(format!("type {} -> {}", kind(from), kind(to))),
            Difference::Mode { from, to } => Some(format!("mode {from:04o} -> {to:04o}")),
            Difference::Mtime { .. } if content => None,
            Difference::Mtime { .. } => Some("mtime".to_owned()),
            Difference::Target { from, to } => Some(format!(
                "target {} -> {}",
                escape_bytes(&from.0),
                escape_bytes(&to.0)
            )),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a dump wrote, for stderr (stdout carries the content): replicas that need
/// healing, then — unless `quiet` — one note.
pub fn dump_notes(r: &DumpReport, quiet: bool) -> Vec<String> {
    let mut out = crate::restore::render::repairs(&r.sources);
    if !quiet {
        let what = match r.format {
            "tar" => format!(
                "a tar stream of '{}' ({}, {}, {}; {})",
                escape(&r.path),
                count(r.files as usize, "file"),
                count(r.dirs as usize, "dir"),
                count(r.symlinks as usize, "symlink"),
                binary_size(r.bytes)
            ),
            _ => format!("'{}' ({})", escape(&r.path), binary_size(r.bytes)),
        };
        out.push(format!(
            "note: dumped and verified {what} of snapshot {}: every file's SHA-256 matches the signed manifest",
            escape(&r.snapshot_id)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_as_ls_shows_them() {
        assert_eq!(mode_string(EntryKind::File, 0o644), "-rw-r--r--");
        assert_eq!(mode_string(EntryKind::Dir, 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(EntryKind::Symlink, 0o777), "lrwxrwxrwx");
        assert_eq!(mode_string(EntryKind::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(EntryKind::File, 0o2640), "-rw-r-S---");
        assert_eq!(mode_string(EntryKind::Dir, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(EntryKind::Dir, 0o1770), "drwxrwx--T");
        assert_eq!(mode_string(EntryKind::File, 0), "----------");
    }

    #[test]
    fn diff_lines_name_what_changed() {
        let r = super::super::diff::diff(
            &super::super::tests::manifest(
                "A",
                serde_json::json!([
                    {"path": "x", "type": "dir"},
                    {"path": "x/a\nb", "type": "file", "size": 1, "sha256": "1", "mode": 420},
                ]),
            ),
            &super::super::tests::manifest(
                "B",
                serde_json::json!([
                    {"path": "x/a\nb", "type": "file", "size": 1, "sha256": "1", "mode": 384},
                    {"path": "y", "type": "dir"},
                ]),
            ),
            &super::super::Scope::all(),
        );
        assert_eq!(
            diff_text(&r, false),
            "- x/\nM x/a\\x0ab (mode 0644 -> 0600)\n+ y/\n1 added, 1 removed, 1 modified (A -> B)\n"
        );
    }
}
