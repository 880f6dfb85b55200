//! The command-line contract, pinned in data files (after rage's `trycmd` cases): every
//! `tests/cmd/*.toml` names a fixture, optional shell steps to prepare it, the arguments,
//! and the exact exit status, stdout and stderr.
//!
//! Matching: what varies from run to run is replaced before comparing — `[ROOT]` for the
//! case's temporary folder, `[ID]` for snapshot and drill ids, `[SHA]` and `[HEX]` for 64-
//! and 32-digit hex (hashes, repository ids), `[TIME]` for timestamps, `[HOST]` for this
//! machine's name; then `[..]` matches anything within a line, and a line `...` matches any
//! number of lines (also none).
//! `SNAPDRILL_BLESS=1 cargo test --test cli_contract` rewrites the expected outputs from
//! what the binary prints now — review the diff before committing it.
//!
//! Fixtures (`fixture = ...`):
//! - `none`: an empty folder, no config;
//! - `repo`: one local store `tokyo`, initialised (`snapdrill.toml`, `identity.txt`,
//!   `snapdrill-write.key`);
//! - `snapshot`: `repo` plus one backup of `exports/` (`customers.csv`, `db/crm.sql`).
//!
//! Exit codes 130 and 143 (signals) are pinned by `tests/hardening.rs`, which sends them.

mod common;

use std::fs;
use std::path::Path;

use common::{Env, code};

#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// What the case pins, in a sentence.
    about: String,
    fixture: String,
    /// Shell commands run in the case's folder before the command (`sh -c`; the binary is
    /// `$SNAPDRILL_BIN`, the config `snapdrill.toml`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    before: Vec<String>,
    /// Shell commands run after it (to release what `before` started, and wait for it to
    /// end: nothing a case starts may outlive it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    after: Vec<String>,
    args: Vec<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    env: std::collections::BTreeMap<String, String>,
    status: i32,
    #[serde(default)]
    stdout: String,
    #[serde(default)]
    stderr: String,
}

fn fixture(name: &str) -> Env {
    match name {
        "none" => {
            let env = Env::with(&["tokyo"], &[], false);
            for f in ["snapdrill.toml", "identity.txt"] {
                fs::remove_file(env.p(f)).unwrap();
            }
            env
        }
        "repo" => Env::new(&["tokyo"]),
        "snapshot" => {
            let env = Env::new(&["tokyo"]);
            let src = env.tree(
                "exports",
                &[
                    ("customers.csv", b"id,name\n1,a\n"),
                    ("db/crm.sql", b"create table t;\n"),
                ],
            );
            env.ok(&["backup", src.to_str().unwrap()]);
            env
        }
        other => panic!("unknown fixture '{other}'"),
    }
}

/// Replace what varies between runs (see the module doc).
fn normalize(text: &str) -> String {
    let host = snapdrill::hostname();
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let at = |k: usize, c: u8| b.get(k) == Some(&c);
    while i < b.len() {
        let word_start = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        // 20261128T032718Z-9f2c1a7b
        if word_start
            && digits(i..i + 8)
            && at(i + 8, b'T')
            && digits(i + 9..i + 15)
            && at(i + 15, b'Z')
            && at(i + 16, b'-')
            && b.get(i + 17..i + 25)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        {
            out.push_str("[ID]");
            i += 25;
            continue;
        }
        // 2026-11-28T03:27:18.123Z, 2026-11-28 03:27:18, 2026-11-28T03:27:18Z
        if word_start
            && digits(i..i + 4)
            && at(i + 4, b'-')
            && digits(i + 5..i + 7)
            && at(i + 7, b'-')
            && digits(i + 8..i + 10)
            && (at(i + 10, b'T') || at(i + 10, b' '))
            && digits(i + 11..i + 13)
            && at(i + 13, b':')
            && digits(i + 14..i + 16)
            && at(i + 16, b':')
            && digits(i + 17..i + 19)
        {
            let mut j = i + 19;
            if at(j, b'.') {
                j += 1;
                while b.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
            }
            if at(j, b'Z') {
                j += 1;
            }
            out.push_str("[TIME]");
            i = j;
            continue;
        }
        if word_start && b[i].is_ascii_hexdigit() {
            let n = b[i..]
                .iter()
                .take_while(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
                .count();
            let word_end = b.get(i + n).is_none_or(|c| !c.is_ascii_alphanumeric());
            if word_end && (n == 64 || n == 32) {
                out.push_str(if n == 64 { "[SHA]" } else { "[HEX]" });
                i += n;
                continue;
            }
        }
        if word_start
            && b[i..].starts_with(host.as_bytes())
            && b.get(i + host.len())
                .is_none_or(|c| !c.is_ascii_alphanumeric() && *c != b'-')
        {
            out.push_str("[HOST]");
            i += host.len();
            continue;
        }
        let c = text[i..].chars().next().expect("in bounds");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Does `actual` match `expected` (with `[..]` and `...`)?
fn matches(expected: &str, actual: &str) -> bool {
    let exp: Vec<&str> = expected.lines().collect();
    let act: Vec<&str> = actual.lines().collect();
    fn go(exp: &[&str], act: &[&str]) -> bool {
        match exp.split_first() {
            None => act.is_empty(),
            Some((&"...", rest)) => (0..=act.len()).any(|skip| go(rest, &act[skip..])),
            Some((line, rest)) => {
                !act.is_empty() && line_matches(line, act[0]) && go(rest, &act[1..])
            }
        }
    }
    go(&exp, &act)
}

fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !line.starts_with(first) || !line[first.len()..].ends_with(last) {
        return false;
    }
    let mut at = first.len();
    let end = line.len() - last.len();
    for p in &parts[1..parts.len() - 1] {
        match line[at..end].find(p) {
            Some(i) => at += i + p.len(),
            None => return false,
        }
    }
    at <= end
}

fn run_case(path: &Path) -> Result<(), String> {
    let text = fs::read_to_string(path).unwrap();
    let mut case: Case = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let env = fixture(&case.fixture);
    let shell = |step: &str| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(step)
            .current_dir(env.path())
            .env("SNAPDRILL_BIN", common::BIN)
            .env("HOME", env.path())
            .env_remove("SNAPDRILL_CONFIG")
            .status()
            .unwrap()
            .success()
    };
    for step in &case.before {
        if !shell(step) {
            return Err(format!("{}: `before` step failed: {step}", path.display()));
        }
    }
    let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
    let mut cmd = if case.fixture == "none" {
        // No config at all: not even `--config`, so the lookup itself is what runs.
        let mut c = std::process::Command::new(common::BIN);
        c.args(&args)
            .current_dir(env.path())
            .env("HOME", env.path())
            .env_remove("SNAPDRILL_CONFIG")
            .env_remove("XDG_CONFIG_HOME");
        c
    } else {
        env.cmd(&args)
    };
    cmd.env("COLUMNS", "100").envs(&case.env);
    let out = cmd.output().unwrap();
    for step in &case.after {
        if !shell(step) {
            return Err(format!("{}: `after` step failed: {step}", path.display()));
        }
    }
    let root = env.path().display().to_string();
    let clean = |b: &[u8]| normalize(&String::from_utf8_lossy(b).replace(&root, "[ROOT]"));
    let (stdout, stderr, status) = (clean(&out.stdout), clean(&out.stderr), code(&out));
    if std::env::var_os("SNAPDRILL_BLESS").is_some() {
        // Rewrite only what no longer matches: hand-written wildcards survive.
        case.status = status;
        if !matches(&case.stdout, &stdout) {
            case.stdout = stdout;
        }
        if !matches(&case.stderr, &stderr) {
            case.stderr = stderr;
        }
        fs::write(path, toml::to_string(&case).unwrap()).unwrap();
        return Ok(());
    }
    let mut wrong = Vec::new();
    if status != case.status {
        wrong.push(format!("exit {status}, expected {}", case.status));
    }
    if !matches(&case.stdout, &stdout) {
        wrong.push(format!("stdout:\n{stdout}\nexpected:\n{}", case.stdout));
    }
    if !matches(&case.stderr, &stderr) {
        wrong.push(format!("stderr:\n{stderr}\nexpected:\n{}", case.stderr));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} ({}):\n{}",
            path.display(),
            case.about,
            wrong.join("\n")
        ))
    }
}

#[test]
fn every_case_in_tests_cmd_holds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cmd");
    let mut cases: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        // `SNAPDRILL_CASE=locked` runs only the cases whose file name contains it.
        .filter(|p| match std::env::var("SNAPDRILL_CASE") {
            Ok(only) => p
                .file_stem()
                .is_some_and(|s| s.to_string_lossy().contains(&only)),
            Err(_) => true,
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no case in {}", dir.display());
    let failures: Vec<String> = cases.iter().filter_map(|c| run_case(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn what_varies_is_normalized() {
    let host = snapdrill::hostname();
    let text = format!(
        "snapshot 20261128T032718Z-9f2c1a7b at 2026-11-28T03:27:18.5Z on {host}, sha {} repo {}",
        "ab".repeat(32),
        "cd".repeat(16)
    );
    assert_eq!(
        normalize(&text),
        "snapshot [ID] at [TIME] on [HOST], sha [SHA] repo [HEX]"
    );
}

#[test]
fn the_matcher_understands_its_wildcards() {
    assert!(line_matches(
        "snapshot [..] committed",
        "snapshot 2026-x committed"
    ));
    assert!(!line_matches(
        "snapshot [..] committed",
        "snapshot x failed"
    ));
    assert!(line_matches("[..]", "anything"));
    assert!(matches("a\n...\nz", "a\nb\nc\nz"));
    assert!(matches("a\n...\nz", "a\nz"));
    assert!(!matches("a\nz", "a\nb\nz"));
}
