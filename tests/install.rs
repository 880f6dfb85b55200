//! `make install` (scripts/install.sh) into a temporary prefix, with the binary these tests
//! built: a man page per command that `man` opens, completions, and systemd units that
//! `systemd-analyze verify` accepts and that are hardened as docs/operations.md says.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{BIN, code, show};

fn install() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("snapdrill-install-")
        .tempdir()
        .unwrap();
    let prefix = dir.path().join("usr");
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh"))
        .arg(&prefix)
        .env("SNAPDRILL_BIN", BIN)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "install.sh failed\n{}", show(&out));
    (dir, prefix)
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

/// Every subcommand's name as `--help` lists it (`backup`, `restore-drill`, ...).
fn subcommands() -> Vec<String> {
    let help = String::from_utf8(run(Command::new(BIN).arg("--help")).stdout).unwrap();
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn install_puts_a_man_page_per_command_that_man_opens_and_the_completions() {
    common::require_tool("man", "man-db");
    let (_dir, prefix) = install();
    let man1 = prefix.join("share/man/man1");
    let names = subcommands();
    assert!(names.len() > 15, "{names:?}");
    for name in names.iter().chain(["keys-add".to_owned()].iter()) {
        let page = man1.join(format!("snapdrill-{name}.1.gz"));
        assert!(page.exists(), "no man page {}", page.display());
    }
    let out = run(Command::new("man")
        .arg("snapdrill-backup")
        .env("MANPATH", prefix.join("share/man"))
        .env("MANPAGER", "cat")
        .env("PAGER", "cat"));
    assert_eq!(code(&out), 0, "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--metrics-file") && text.contains("--stdin-name"),
        "{text}"
    );

    let bash = prefix.join("share/bash-completion/completions/snapdrill");
    let out = run(Command::new("bash").arg("-n").arg(&bash));
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert!(fs::read_to_string(&bash).unwrap().contains("restore-drill"));
    assert!(prefix.join("share/zsh/site-functions/_snapdrill").exists());
    assert!(
        prefix
            .join("share/fish/vendor_completions.d/snapdrill.fish")
            .exists()
    );
    let example = prefix.join("share/doc/snapdrill/examples/snapdrill.toml");
    snapdrill::config::Config::load(&example).unwrap();
}

#[test]
fn systemd_analyze_verify_accepts_every_unit() {
    common::require_tool("systemd-analyze", "systemd");
    common::require_tool("man", "man-db");
    let (_dir, prefix) = install();
    let units_dir = prefix.join("lib/systemd/system");
    let mut units: Vec<PathBuf> = fs::read_dir(&units_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    units.sort();
    let names: Vec<String> = units
        .iter()
        .map(|u| u.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "snapdrill-audit.service",
            "snapdrill-audit.timer",
            "snapdrill-backup@.service",
            "snapdrill-backup@.timer",
            "snapdrill-drill.service",
            "snapdrill-drill.timer"
        ]
    );
    for unit in &units {
        // MANPATH: verify also opens the man pages the units' Documentation= names.
        let out = run(Command::new("systemd-analyze")
            .arg("verify")
            .arg(unit)
            .env("MANPATH", prefix.join("share/man")));
        assert_eq!(code(&out), 0, "{}: {}", unit.display(), show(&out));
        assert!(
            out.stderr.is_empty(),
            "{}: systemd-analyze verify complained\n{}",
            unit.display(),
            show(&out)
        );
        let text = fs::read_to_string(unit).unwrap();
        if unit.extension().is_some_and(|e| e == "service") {
            for line in [
                "ProtectSystem=strict",
                "PrivateTmp=true",
                "NoNewPrivileges=true",
                "ReadWritePaths=/var/lib/snapdrill /var/cache/snapdrill",
                &format!("ExecStart={}/bin/snapdrill -q ", prefix.display()),
            ] {
                assert!(text.contains(line), "{} lacks {line}", unit.display());
            }
        } else {
            for line in [
                "Persistent=true",
                "RandomizedDelaySec=",
                "WantedBy=timers.target",
            ] {
                assert!(text.contains(line), "{} lacks {line}", unit.display());
            }
        }
    }
    let audit = fs::read_to_string(units_dir.join("snapdrill-audit.service")).unwrap();
    assert!(audit.contains("audit --read-data-subset"), "{audit}");
    let drill = fs::read_to_string(units_dir.join("snapdrill-drill.timer")).unwrap();
    assert!(drill.contains("OnCalendar=Sun "), "{drill}");
}
