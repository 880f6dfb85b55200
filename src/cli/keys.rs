//! `snapdrill keys list|add|remove`: the repository's recipients, changed as signed,
//! versioned config generations (docs/operations.md, "Keys over the years").

use std::path::PathBuf;

use anyhow::Result;
use snapdrill::error::exit;
use snapdrill::repository::keyring::{self, KeyChange, KeysChanged, KeysListing};

use super::{Global, common, output};

/// Arguments of `keys`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KeysCommand {
    /// The repository's recipients (with fingerprints and when each was added), read keys
    /// and key history; whether the config agrees. Needs no key.
    List {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Add a recipient: age1..., ssh-ed25519 ..., ssh-rsa ..., or an age plugin recipient.
    /// Needs the write key; with an identity of a current recipient the new one reads every
    /// snapshot at once, without one only those written from now on (until `rekey`).
    Add {
        /// The recipient (quote an SSH key: it has spaces).
        recipient: String,
        /// An identity of a current recipient (default: the config's, when it is on this host).
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
    },
    /// Replace the write key's signing key (a backup host retired or suspected): the new
    /// one signs from now on, the retired one is accepted for what it signed before the
    /// overlap ends, and hosts still pinning it follow until then. Run on the backup host.
    RotateWriteKey {
        /// How long the retired key stays accepted (other backup hosts switch meanwhile).
        #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = humantime::parse_duration)]
        overlap: std::time::Duration,
    },
    /// Remove a recipient (its text or its fingerprint). New objects go to a new read key
    /// at once; `snapdrill rekey` then moves every older object onto it.
    Remove {
        /// The recipient, or its fingerprint from `keys list`.
        recipient: String,
        /// An identity of a current recipient (default: the config's, when it is on this host).
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
    },
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let (change, identity) = match args.command {
        KeysCommand::List { json } => {
            let listing = keyring::list_keys(&config).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&listing)?);
            } else {
                print!("{}", render_listing(&listing));
            }
            return Ok(match listing.mismatch {
                Some(_) => exit::USAGE,
                None => exit::OK,
            });
        }
        KeysCommand::RotateWriteKey { overlap } => return rotate(global, &config, overlap).await,
        KeysCommand::Add {
            recipient,
            identity,
        } => (KeyChange::Add(recipient), identity),
        KeysCommand::Remove {
            recipient,
            identity,
        } => (KeyChange::Remove(recipient), identity),
    };
    // The identity is optional here: without one the change still works (see `Add`).
    let identities = match identity.or_else(|| config.identity.clone().filter(|p| p.exists())) {
        Some(path) => Some(common::load_identity(&config, Some(path))?),
        None => None,
    };
    let changed = keyring::change_keys(&config, &change, identities.as_deref()).await?;
    // The stores that missed the change are warnings, shown under -q too; the rest is the
    // account of what was done.
    let account = render_change(&change, &changed, &config.path);
    for line in account.lines() {
        if !global.quiet || line.starts_with("snapdrill: warning:") {
            eprintln!("{line}");
        }
    }
    let failed = changed.stores.iter().filter(|(_, r)| r.is_err()).count();
    let code = if failed > 0 { exit::PARTIAL } else { exit::OK };
    let line = format!(
        "keys changed: generation {}, {} recipients, written to {} of {} stores\n",
        changed.generation,
        changed.recipients.len(),
        changed.stores.len() - failed,
        changed.stores.len()
    );
    output::result(&line, code, global.quiet);
    Ok(code)
}

fn render_listing(l: &KeysListing) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "repository {}  key generation {}",
        l.repository_id, l.generation
    );
    let _ = writeln!(out, "signer {}", l.signer);
    for p in &l.previous_signers {
        let _ = writeln!(
            out,
            "retired signer {} (retired {}; accepted for what it signed before {})",
            p.signer, p.retired, p.until
        );
    }
    let _ = writeln!(
        out,
        "{:<16}  {:<14}  {:<20}  RECIPIENT",
        "FINGERPRINT", "KIND", "ADDED"
    );
    for r in &l.recipients {
        let added = r.added.get(..19).unwrap_or(&r.added);
        let _ = writeln!(
            out,
            "{:<16}  {:<14}  {:<20}  {}",
            r.fingerprint, r.kind, added, r.recipient
        );
    }
    match l.read_keys.len() {
        0 => {
            let _ = writeln!(
                out,
                "read keys: none (format version 2: objects are encrypted to the recipients themselves)"
            );
        }
        1 => {
            let _ = writeln!(out, "read keys: 1 (every object is encrypted to it)");
        }
        n => {
            let _ = writeln!(
                out,
                "read keys: {n} (older objects use older ones; `snapdrill rekey` moves every object onto the newest)"
            );
        }
    }
    if !l.history.is_empty() {
        let _ = writeln!(out, "history:");
        for g in &l.history {
            let time = g.time.as_deref().and_then(|t| t.get(..19)).unwrap_or("-");
            let _ = writeln!(out, "  {:>4}  {time}  {}", g.generation, g.change);
        }
    }
    if let Some(m) = &l.mismatch {
        let _ = writeln!(out, "MISMATCH: {m}");
    }
    out
}

fn render_change(change: &KeyChange, c: &KeysChanged, config: &std::path::Path) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for (store, r) in &c.stores {
        let _ = match r {
            Ok(()) => writeln!(
                out,
                "store '{store}': key generation {} written",
                c.generation
            ),
            Err(e) => writeln!(
                out,
                "snapdrill: warning: store '{store}' did not get key generation {}: {e} (run `snapdrill sync` when it is back)",
                c.generation
            ),
        };
    }
    if c.config_file_updated {
        let _ = writeln!(out, "updated the recipients in {}", config.display());
    } else {
        let list: Vec<String> = c
            .recipients
            .iter()
            .map(|r| format!("\"{}\"", r.recipient))
            .collect();
        let _ = writeln!(
            out,
            "set in {} under [repository]: recipients = [{}]",
            config.display(),
            list.join(", ")
        );
    }
    let _ = match (change, c.resealed, c.legacy_objects) {
        (KeyChange::Add(_), true, false) => writeln!(out, "the new recipient reads every snapshot"),
        (KeyChange::Add(_), _, true) => writeln!(
            out,
            "older snapshots (format version 2) are encrypted to the earlier recipients themselves: run `snapdrill rekey` where an identity and the write key are, so that the new recipient reads them too"
        ),
        (KeyChange::Add(_), false, false) => writeln!(
            out,
            "without an identity the older read keys stay sealed to the earlier recipients: the new recipient reads snapshots written from now on; run `snapdrill keys add` again with --identity, or `snapdrill rekey`, for the older ones"
        ),
        (KeyChange::Remove(_), _, _) => writeln!(
            out,
            "new objects go to a new read key the removed recipient cannot open; until `snapdrill rekey` has run, it can still open what was written before"
        ),
    };
    out
}

async fn rotate(
    global: &Global,
    config: &snapdrill::config::Config,
    overlap: std::time::Duration,
) -> Result<i32> {
    let r = keyring::rotate_write_key(config, overlap).await?;
    let failed = r.stores.iter().filter(|(_, o)| o.is_err()).count();
    for (store, o) in &r.stores {
        if let Err(e) = o {
            eprintln!(
                "snapdrill: warning: store '{store}' did not get key generation {}: {e} (run `snapdrill sync` when it is back)",
                r.generation
            );
        }
    }
    if !global.quiet {
        eprintln!(
            "the retired write key was moved to {}; its snapshots are accepted until {}",
            r.retired_key_file.display(),
            r.until
        );
        eprintln!(
            "copy {} to the other backup hosts, and set `signer = \"{}\"` in every host's config before {}",
            config.write_key.display(),
            r.signer,
            r.until
        );
    }
    let code = if failed > 0 { exit::PARTIAL } else { exit::OK };
    let line = format!(
        "write key rotated: signer {} (generation {}), written to {} of {} stores\n",
        r.signer,
        r.generation,
        r.stores.len() - failed,
        r.stores.len()
    );
    output::result(&line, code, global.quiet);
    Ok(code)
}
