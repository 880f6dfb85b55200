//! `snapdrill evidence`: a pack of reports, records and SHA256SUMS, and `evidence verify`
//! checking a pack that travelled against the repository's authenticated records.

mod common;

use std::fs;
use std::process::Command;

use common::{Env, code, names_in, require_tool, show, stderr};

#[test]
fn a_pack_verifies_fresh_and_fails_naming_an_edited_record() {
    require_tool("sha256sum", "coreutils");
    require_tool("chromium", "chromium");
    let env = Env::new(&["tokyo", "osaka"]);
    let src = env.tree("exports", &[("customers.csv", b"id\n1\n2\n")]);
    env.ok(&["backup", src.to_str().unwrap()]);
    env.ok(&["restore-drill", "--operator", "k.sato"]);
    assert_eq!(env.code(&["restore-drill", "--check", "exit 2"]), 15);
    env.ok(&["audit", "--record"]);
    let pack = env.p("pack");
    let out = env.ok(&[
        "evidence",
        "--since",
        "90d",
        "--out",
        pack.to_str().unwrap(),
    ]);
    assert!(out.contains("2 drill records, 1 audit records"), "{out}");
    let top = names_in(&pack);
    for f in [
        "SHA256SUMS",
        "audits",
        "drills",
        "report.html",
        "report.md",
        "report.pdf",
    ] {
        assert!(top.contains(&f.to_owned()), "{top:?}");
    }
    let drills = names_in(&pack.join("drills"));
    assert_eq!(drills.len(), 2, "{drills:?}");
    assert_eq!(names_in(&pack.join("audits")).len(), 1);
    // The stock tool agrees with the sums.
    let check = Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(&pack)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let out = env.run(&["evidence", "verify", pack.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(
        common::stdout(&out).contains("3 records match"),
        "{}",
        show(&out)
    );

    // One JSON record edited: named, by its sums and by the repository's record.
    let edited = pack.join("drills").join(&drills[0]);
    let text = fs::read_to_string(&edited).unwrap();
    let changed = text.replacen("\"files\": ", "\"files\": 1", 1);
    assert_ne!(text, changed);
    fs::write(&edited, &changed).unwrap();
    let out = env.run(&["evidence", "verify", pack.to_str().unwrap()]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    let name = format!("drills/{}", drills[0]);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{name}: its SHA-256 differs")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{name}: differs from the repository's authenticated record"
        )),
        "{err}"
    );
    // Even with SHA256SUMS rewritten to match, the repository's record gives it away.
    let sums = fs::read_to_string(pack.join("SHA256SUMS")).unwrap();
    let new_hash = common::sha256_hex(changed.as_bytes());
    let sums: String = sums
        .lines()
        .map(|l| match l.split_once("  ") {
            Some((_, n)) if n == name => format!("{new_hash}  {n}\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    fs::write(pack.join("SHA256SUMS"), sums).unwrap();
    let out = env.run(&["evidence", "verify", pack.to_str().unwrap()]);
    assert_eq!(code(&out), 13, "{}", show(&out));
    let err = stderr(&out);
    assert!(!err.contains("SHA-256 differs"), "{err}");
    assert!(err.contains(&name), "{err}");

    // The window: records older than it stay out; an existing pack is never mixed into.
    let out = env.ok(&[
        "evidence",
        "--since",
        "1ms",
        "--out",
        env.p("empty").to_str().unwrap(),
    ]);
    assert!(out.contains("0 drill records, 0 audit records"), "{out}");
    let again = env.run(&["evidence", "--out", pack.to_str().unwrap()]);
    assert_eq!(code(&again), 2, "{}", show(&again));
    assert!(stderr(&again).contains("is not empty"), "{}", show(&again));
}
