//! What every `--help` ends with: a few real examples and the exit codes the command can
//! return (the README's table, from `snapdrill::error::exit`).

use snapdrill::error::exit;

/// The top-level help's closing section: the common workflows.
pub(super) const WORKFLOWS: &str = "\
Common workflows:
  Set up:       snapdrill keygen -o identity.txt   (on a workstation; keep it off the backup host)
                snapdrill init --create            (every store; write key; pins the signer)
                snapdrill config check
  Nightly:      snapdrill -q backup --tag nightly  (cron/systemd: prints nothing unless it needs a look)
  Look:         snapdrill snapshots; snapdrill ls latest --job exports
  Restore:      snapdrill restore latest --job exports --target /srv/restore
  Prove it:     snapdrill restore-drill --each-store --report drill.html
                snapdrill audit --read-data-subset 5%
  Retention:    snapdrill forget --dry-run; snapdrill forget --prune

The config is --config FILE, else $SNAPDRILL_CONFIG, else the first of ./snapdrill.toml,
~/.config/snapdrill/snapdrill.toml and /etc/snapdrill/snapdrill.toml.
-q: nothing on success but what was asked for (warnings and errors still shown).
Each command's --help ends with examples and the exit codes it returns.";

/// What an exit code means, in a few words.
fn meaning(code: i32) -> &'static str {
    match code {
        exit::OK => "done, everything as intended",
        exit::FATAL => "fatal: could not complete",
        exit::USAGE => "usage or configuration error",
        exit::PARTIAL => "partial: done, but some stores or files were skipped",
        exit::NOT_INITIALISED => "repository not found in the stores",
        exit::LOCKED => "another run holds the lock (or a prune lease)",
        exit::KEY => "wrong or missing key",
        exit::INTEGRITY => "integrity failure (damaged, forged or missing data)",
        exit::TARGET_MISSED => "a drill missed its RTO or RPO with data intact",
        exit::CHECK_FAILED => "a drill's validation command (--check) failed, data intact",
        exit::INTERRUPTED => "interrupted by SIGINT (nothing committed)",
        exit::TERMINATED => "stopped by SIGTERM (nothing committed)",
        _ => "see the README's table",
    }
}

/// `Examples:` then `Exit codes:`, as clap prints after the options.
fn section(examples: &[(&str, &str)], codes: &[i32]) -> String {
    let mut out = String::from("Examples:\n");
    for (command, what) in examples {
        out.push_str(&format!("  {command}\n      {what}\n"));
    }
    out.push_str("\nExit codes:\n");
    for code in codes {
        out.push_str(&format!("  {code:>3}  {}\n", meaning(*code)));
    }
    out.pop();
    out
}

/// What one command's help ends with.
struct Help {
    /// `backup`, `keys add`: the command's words joined by a space.
    names: &'static [&'static str],
    /// (command line, what it does).
    examples: &'static [(&'static str, &'static str)],
    /// The codes every command of its kind returns.
    codes: &'static [i32],
    /// And its own.
    extra: &'static [i32],
}

/// A command that only works locally: done, failed, usage.
const LOCAL: &[i32] = &[exit::OK, exit::FATAL, exit::USAGE];
/// A command that reads a repository: also not found, key, integrity, and the signals.
const READING: &[i32] = &[
    exit::OK,
    exit::FATAL,
    exit::USAGE,
    exit::NOT_INITIALISED,
    exit::KEY,
    exit::INTEGRITY,
    exit::INTERRUPTED,
    exit::TERMINATED,
];

const HELP: &[Help] = &[
    Help {
        names: &["keygen"],
        examples: &[
            (
                "snapdrill keygen -o identity.txt",
                "write a new identity (mode 0600); its age1... recipient goes to stdout",
            ),
            (
                "recipient=$(snapdrill -q keygen -o /media/kit/identity.txt)",
                "keep the recipient for [repository] recipients",
            ),
        ],
        codes: LOCAL,
        extra: &[exit::KEY],
    },
    Help {
        names: &["init"],
        examples: &[
            (
                "snapdrill init --create",
                "the repository in every store, making missing local folders; pins the signer",
            ),
            (
                "snapdrill init --store osaka",
                "a rebuilt replica gets the repository the others hold (then: snapdrill sync)",
            ),
            (
                "snapdrill --config /etc/snapdrill/snapdrill.toml init --json",
                "the same, reported as JSON",
            ),
        ],
        codes: READING,
        extra: &[],
    },
    Help {
        names: &["keys", "keys list"],
        examples: &[
            ("snapdrill keys list", "recipients, read keys, key history"),
            (
                "snapdrill keys add age1... --identity identity.txt",
                "a new recipient that reads every snapshot at once",
            ),
            (
                "snapdrill keys remove age1... && snapdrill rekey",
                "a recipient removed, then every object moved onto a new read key",
            ),
        ],
        codes: READING,
        extra: &[exit::PARTIAL],
    },
    Help {
        names: &["keys add", "keys remove"],
        examples: &[
            (
                "snapdrill keys add age1... --identity identity.txt",
                "add a recipient; with the identity it reads older snapshots too",
            ),
            (
                "snapdrill keys remove age1...",
                "remove one; then run snapdrill rekey",
            ),
        ],
        codes: READING,
        extra: &[exit::PARTIAL],
    },
    Help {
        names: &["keys rotate-write-key"],
        examples: &[
            (
                "snapdrill keys rotate-write-key",
                "a new signing key; the old one is accepted for 7 days for what it signed before",
            ),
            (
                "snapdrill keys rotate-write-key --overlap 0s",
                "a compromised key: accept nothing new from it",
            ),
        ],
        codes: READING,
        extra: &[exit::PARTIAL],
    },
    Help {
        names: &["rekey"],
        examples: &[
            (
                "snapdrill rekey",
                "after keys remove: every object of every store re-encrypted to a new read key",
            ),
            (
                "snapdrill rekey --identity /media/kit/identity.txt --json",
                "with an identity given, reported as JSON",
            ),
        ],
        codes: READING,
        extra: &[exit::PARTIAL],
    },
    Help {
        names: &["backup"],
        examples: &[
            (
                "snapdrill -q backup --tag nightly",
                "every job in order; prints nothing unless something needs a look",
            ),
            (
                "snapdrill backup --job exports --dry-run",
                "what would be read, excluded and skipped as unchanged; touches no store",
            ),
            (
                "pg_dump crm | snapdrill backup --job crm --stdin-name crm.sql",
                "standard input stored as crm.sql",
            ),
            (
                "snapdrill backup /srv/exports --exclude '*.tmp'",
                "an ad-hoc snapshot of a folder (job adhoc)",
            ),
        ],
        codes: READING,
        extra: &[exit::PARTIAL, exit::LOCKED],
    },
    Help {
        names: &["snapshots"],
        examples: &[
            (
                "snapdrill snapshots",
                "every verified snapshot, with host, job and tags (no identity needed)",
            ),
            (
                "snapdrill snapshots --by-data-set --job exports",
                "one data set's timeline",
            ),
            ("snapdrill snapshots --json", "for scripts"),
        ],
        codes: READING,
        extra: &[exit::PARTIAL],
    },
    Help {
        names: &["ls"],
        examples: &[
            (
                "snapdrill ls latest --job exports",
                "the newest snapshot of the job exports",
            ),
            (
                "snapdrill ls 2026-11-20 --job exports exports/db",
                "one folder of that day's newest snapshot",
            ),
        ],
        codes: READING,
        extra: &[],
    },
    Help {
        names: &["find"],
        examples: &[
            (
                "snapdrill find 'customers*.csv'",
                "which snapshots hold it, and when it first and last appears",
            ),
            (
                "snapdrill find --job exports --since 2026-11-01 'exports/db/*'",
                "in one data set, since a day",
            ),
        ],
        codes: READING,
        extra: &[exit::PARTIAL],
    },
    Help {
        names: &["diff"],
        examples: &[
            (
                "snapdrill diff latest~1 latest --job exports",
                "what the last backup added, removed and changed",
            ),
            (
                "snapdrill diff 2026-11-01 latest --job exports exports/db",
                "within one folder",
            ),
        ],
        codes: READING,
        extra: &[],
    },
    Help {
        names: &["dump"],
        examples: &[
            (
                "snapdrill dump latest --job crm crm.sql | psql crm",
                "one file to standard output, verified as it streams",
            ),
            (
                "snapdrill dump latest --job exports exports/db | tar -x",
                "a folder as a tar stream",
            ),
        ],
        codes: READING,
        extra: &[],
    },
    Help {
        names: &["checksums"],
        examples: &[
            (
                "snapdrill checksums latest --job exports > SHA256SUMS",
                "sha256sum lines for every file",
            ),
            (
                "(cd /srv/restore && sha256sum -c ../SHA256SUMS)",
                "then check a restore with the stock tool",
            ),
        ],
        codes: READING,
        extra: &[],
    },
    Help {
        names: &["restore"],
        examples: &[
            (
                "snapdrill restore latest --job exports --target /srv/restore",
                "verified restore, failing over between stores per object",
            ),
            (
                "snapdrill restore 2026-11-20 --job exports --target /srv/r --include '*.csv'",
                "only the CSV files of that day's newest",
            ),
            (
                "snapdrill restore latest --job exports --store osaka --target /srv/r",
                "from one replica alone",
            ),
        ],
        codes: READING,
        extra: &[],
    },
    Help {
        names: &["restore-drill"],
        examples: &[
            (
                "snapdrill restore-drill --each-store --report drill.html",
                "every data set from each store alone, timed, with a report",
            ),
            (
                "snapdrill restore-drill --job exports --rto 30m --rpo 26h",
                "one data set against its targets",
            ),
            (
                "snapdrill -q restore-drill --sample 10% --metrics-file /var/lib/node_exporter/snapdrill.prom",
                "a sample, with metrics; nothing printed when it passes",
            ),
        ],
        codes: READING,
        extra: &[exit::TARGET_MISSED, exit::CHECK_FAILED],
    },
    Help {
        names: &["drills"],
        examples: &[
            (
                "snapdrill drills",
                "the drill history kept in the repository, by data set",
            ),
            (
                "snapdrill drills --store osaka --json",
                "one store's drills, as JSON",
            ),
        ],
        codes: READING,
        extra: &[],
    },
    Help {
        names: &["report"],
        examples: &[
            (
                "snapdrill report --html drills.html",
                "the whole drill history as one self-contained page",
            ),
            (
                "snapdrill report --md drills.md --metrics-file snapdrill.prom",
                "Markdown and a Prometheus textfile",
            ),
        ],
        codes: READING,
        extra: &[],
    },
    Help {
        names: &["sync"],
        examples: &[
            (
                "snapdrill sync --dry-run",
                "what each store lacks and would get",
            ),
            (
                "snapdrill -q sync",
                "copy it, every copy's SHA-256 checked; prints nothing unless a store is left out",
            ),
        ],
        codes: READING,
        extra: &[exit::PARTIAL],
    },
    Help {
        names: &["audit"],
        examples: &[
            (
                "snapdrill audit",
                "every store against the signed commits (no identity needed)",
            ),
            (
                "snapdrill -q audit --read-data-subset 5% --metrics-file audit.prom",
                "nightly: download and check 5% of the objects",
            ),
            (
                "snapdrill audit --deep --identity identity.txt --report audit.md",
                "also decrypt and verify every snapshot",
            ),
        ],
        codes: READING,
        extra: &[],
    },
    Help {
        names: &["audits"],
        examples: &[
            (
                "snapdrill audits",
                "the audit records kept in the repository (`audit --record`)",
            ),
            (
                "snapdrill audits --json",
                "the same as JSON; a copy that does not authenticate is named by store",
            ),
        ],
        codes: READING,
        extra: &[],
    },
    Help {
        names: &["evidence"],
        examples: &[
            (
                "snapdrill evidence --since 90d --out binder-2026q4",
                "report (HTML, PDF when Chromium is there, Markdown), every record and SHA256SUMS",
            ),
            (
                "snapdrill evidence verify binder-2026q4",
                "check a pack that travelled by e-mail against the repository",
            ),
        ],
        codes: READING,
        extra: &[],
    },
    Help {
        names: &["evidence verify"],
        examples: &[
            (
                "snapdrill evidence verify binder-2026q4",
                "every file against SHA256SUMS, every record against the repository's copy",
            ),
            (
                "snapdrill evidence verify /mnt/usb/binder --identity auditor-identity.txt",
                "a pack from a USB stick, with the identity the auditor holds",
            ),
        ],
        codes: READING,
        extra: &[],
    },
    Help {
        names: &["forget"],
        examples: &[
            (
                "snapdrill forget --dry-run",
                "what each job's policy would forget, and why",
            ),
            (
                "snapdrill forget --keep-daily 7 --keep-weekly 5 --prune",
                "forget by policy, then free the space",
            ),
            (
                "snapdrill forget 20261128T032718Z-9f2c1a7b",
                "one snapshot by id (a signed tombstone)",
            ),
        ],
        codes: READING,
        extra: &[exit::PARTIAL, exit::LOCKED],
    },
    Help {
        names: &["prune"],
        examples: &[
            (
                "snapdrill prune --dry-run",
                "what would be deleted, beside running backups",
            ),
            (
                "snapdrill -q prune",
                "free what no snapshot references (grace 24h, lease per store)",
            ),
        ],
        codes: READING,
        extra: &[exit::PARTIAL, exit::LOCKED],
    },
    Help {
        names: &["config", "config check"],
        examples: &[
            (
                "snapdrill config check",
                "parse the config and check its keys and stores' settings as init does",
            ),
            (
                "snapdrill --config /etc/snapdrill/snapdrill.toml config check",
                "a given file",
            ),
        ],
        codes: LOCAL,
        extra: &[exit::KEY],
    },
    Help {
        names: &["completions"],
        examples: &[
            (
                "snapdrill completions bash > /etc/bash_completion.d/snapdrill",
                "bash",
            ),
            (
                "snapdrill completions zsh > \"${fpath[1]}/_snapdrill\"",
                "zsh",
            ),
        ],
        codes: LOCAL,
        extra: &[],
    },
];

/// The closing section of `snapdrill <name> --help` (`config check`, `keys add`: the
/// words joined by a space), or `None` for a name without one.
pub(super) fn for_command(name: &str) -> Option<String> {
    let help = HELP.iter().find(|h| h.names.contains(&name))?;
    let mut codes = [help.codes, help.extra].concat();
    codes.sort_unstable();
    codes.dedup();
    Some(section(help.examples, &codes))
}

/// Every subcommand (and theirs) of `cmd` with its closing section.
pub(super) fn with_examples(cmd: clap::Command) -> clap::Command {
    fn walk(cmd: clap::Command, prefix: &str) -> clap::Command {
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect();
        names.into_iter().fold(cmd, |cmd, name| {
            let full = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix} {name}")
            };
            cmd.mut_subcommand(&name, |sub| {
                let sub = match for_command(&full) {
                    Some(text) => sub.after_help(text),
                    None => sub,
                };
                walk(sub, &full)
            })
        })
    }
    walk(cmd, "").after_help(WORKFLOWS)
}
