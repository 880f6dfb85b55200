//! The shape of the code, checked (docs/design.md, "Shape of the code"): commands do not
//! open stores, the top-level modules import each other without a circle, no function
//! outgrows a screen, and nothing points at a file this repository does not hold.
//!
//! These read the source as text: a line-based view that is exact for rustfmt-formatted
//! code, which `make test` enforces before it runs them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Longest function allowed outside tests, in lines.
const MAX_FUNCTION_LINES: usize = 80;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file below `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The file's lines before its `#[cfg(test)]` module, comments dropped.
fn code_lines(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap();
    text.lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(str::to_owned)
        .collect()
}

/// The top-level module a file of `src/` belongs to (`None` for lib.rs and main.rs).
fn top_module(path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root().join("src")).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_owned();
    let name = first.trim_end_matches(".rs").to_owned();
    (!["lib", "main", "cli"].contains(&name.as_str())).then_some(name)
}

/// `crate::name` references in a line.
fn crate_refs(line: &str) -> Vec<String> {
    line.match_indices("crate::")
        .map(|(i, m)| {
            line[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .filter(|s: &String| !s.is_empty())
        .collect()
}

#[test]
fn the_library_modules_import_each_other_without_a_circle() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in rust_files(&root().join("src")) {
        let Some(from) = top_module(&f) else { continue };
        for line in code_lines(&f) {
            for to in crate_refs(&line) {
                if to != from {
                    edges.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    assert!(
        edges.len() > 10,
        "the scan found too few modules: {edges:?}"
    );
    // Depth-first search for a back edge; report the circle it closes.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut circle = path[i..].to_vec();
            circle.push(m.to_owned());
            return Some(circle);
        }
        if !done.insert(m.to_owned()) {
            return None;
        }
        path.push(m.to_owned());
        for next in edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in edges.keys() {
        if let Some(circle) = visit(m, &edges, &mut Vec::new(), &mut done) {
            panic!("import circle: {}", circle.join(" -> "));
        }
    }
}

#[test]
fn commands_do_not_open_stores() {
    // The library decides which stores, keys and failures (Repository::open_for); a command
    // parses, makes one library call and renders.
    let forbidden = [
        "Repository::open(",
        "OpenMode::",
        "open_stores(",
        "store::backend",
        "StoreRef",
    ];
    let mut found = Vec::new();
    for f in rust_files(&root().join("src/cli")) {
        for (n, line) in code_lines(&f).iter().enumerate() {
            for bad in forbidden.iter().filter(|b| line.contains(*b)) {
                found.push(format!("{}:{}: {bad}", f.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "store opening in src/cli:\n{}",
        found.join("\n")
    );
}

/// Functions (outside test modules) and their length in lines, found by rustfmt's layout:
/// `fn` at some indent, its body closing with `}` at the same indent.
fn functions(path: &Path) -> Vec<(String, usize, usize)> {
    let text = fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        let body = l.trim_start();
        let indent = l.len() - body.len();
        let decl = [
            "pub(crate) ",
            "pub(super) ",
            "pub ",
            "async ",
            "const ",
            "unsafe ",
        ]
        .iter()
        .fold(body, |b, p| b.strip_prefix(p).unwrap_or(b));
        let decl = decl.strip_prefix("async ").unwrap_or(decl);
        if let Some(rest) = decl.strip_prefix("fn ") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let open = (i..lines.len()).find(|&j| {
                let t = lines[j].trim_end();
                t.ends_with('{') || t.ends_with(';')
            });
            if let Some(j) = open.filter(|&j| lines[j].trim_end().ends_with('{')) {
                let close = (j + 1..lines.len()).find(|&k| {
                    let t = lines[k];
                    t.len() - t.trim_start().len() == indent && t.trim_start().starts_with('}')
                });
                if let Some(k) = close {
                    out.push((name, i + 1, k - i + 1));
                    i = k;
                }
            }
        }
        i += 1;
    }
    out
}

#[test]
fn every_function_fits_on_a_screen() {
    let mut long = Vec::new();
    let mut seen = 0;
    for f in rust_files(&root().join("src")) {
        for (name, line, len) in functions(&f) {
            seen += 1;
            if len >= MAX_FUNCTION_LINES {
                long.push(format!("{}:{line} {name}: {len} lines", f.display()));
            }
        }
    }
    assert!(seen > 500, "the scan found only {seen} functions");
    assert!(
        long.is_empty(),
        "functions of {MAX_FUNCTION_LINES} lines or more (split them into named steps):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_scanner_finds_a_long_function() {
    // The check above must be able to fail: a generated 90-line function is measured.
    let dir = std::env::temp_dir().join(format!("snapdrill-arch-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("long.rs");
    let body: String = (0..88).map(|i| format!("    let _x{i} = {i};\n")).collect();
    fs::write(&file, format!("pub(crate) async fn long() {{\n{body}}}\n")).unwrap();
    let found = functions(&file);
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found, vec![("long".to_owned(), 1, 90)]);
}

#[test]
fn nothing_points_outside_the_repository() {
    // Background documents that a clone does not hold; what the project relies on lives in
    // docs/. The names are put together here, so that this file does not cite them either.
    let mut outside: Vec<String> = ["RELIABILITY", "OBJECT-STORES", "DESIGN", "STYLE"]
        .map(|stem| format!("{stem}.md"))
        .to_vec();
    outside.push(["..", "shared"].join("/"));
    let mut files = rust_files(&root().join("src"));
    files.extend(rust_files(&root().join("tests")));
    for dir in ["docs", "scripts"] {
        for e in fs::read_dir(root().join(dir)).unwrap() {
            files.push(e.unwrap().path());
        }
    }
    files.extend(["README.md", "Makefile", "CHANGELOG.md"].map(|f| root().join(f)));
    let mut found = Vec::new();
    for f in files.iter().filter(|f| f.is_file()) {
        let Ok(text) = fs::read_to_string(f) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            for o in outside.iter().filter(|o| line.contains(o.as_str())) {
                found.push(format!("{}:{}: {o}", f.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "references to files outside the repository:\n{}",
        found.join("\n")
    );
}
