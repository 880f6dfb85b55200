//! `snapdrill init`: the repository in every store, and the backup host's write key.

use anyhow::{Context, Result};
use snapdrill::Error;
use snapdrill::config::{self, Config};
use snapdrill::error::exit;
use snapdrill::keys::{self, WriteKey};
use snapdrill::repository;

use super::{Global, common, output};

/// Arguments of `init`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    let recipients = keys::parse_recipients(&config.recipients)?;
    let (key, created_key) = if config.write_key.exists() {
        (WriteKey::load(&config.write_key)?, false)
    } else {
        let key = WriteKey::generate();
        key.save(&config.write_key)?;
        (key, true)
    };
    let signer = keys::signer_to_string(&key.signer());
    check_pin(&config, &signer)?;

    let (stores, failed) = common::open_stores(&config, true);
    if let Some((_, e)) = failed.into_iter().next() {
        return Err(anyhow::Error::new(Error::Store(e))
            .context("cannot open every store; nothing more was done"));
    }
    let outcomes = repository::init(&stores, &key, &recipients).await?;
    let pinned = if config.signer.is_none() {
        config::pin_signer(&config.path, &signer)
            .with_context(|| format!("pinning the signer in {}", config.path.display()))?
    } else {
        true
    };

    if args.json {
        output::json(&serde_json::json!({
            "repository_id": key.repository_id,
            "signer": signer,
            "write_key": config.write_key,
            "write_key_created": created_key,
            "stores": outcomes,
        }))?;
        return Ok(exit::OK);
    }
    println!("repository {}", key.repository_id);
    for o in &outcomes {
        println!(
            "  store {:<12} {:<20} {}",
            o.store,
            o.action,
            o.create_only.describe()
        );
    }
    if let Some(w) = common::geo_warning(&config).filter(|_| !global.quiet) {
        eprintln!("snapdrill: warning: {w}");
    }
    println!(
        "write key: {} ({}) — the backup host needs it; it cannot decrypt",
        config.write_key.display(),
        if created_key { "created" } else { "existing" }
    );
    println!("signer:    {signer}");
    if pinned {
        println!("           pinned in {}", config.path.display());
    } else {
        println!(
            "           add it under [repository] in {} as signer = \"{signer}\"",
            config.path.display()
        );
    }
    println!(
        "recovery kit for a responder: the identity file, this config (store URLs and signer), and the stores' credentials"
    );
    Ok(exit::OK)
}

fn check_pin(config: &Config, signer: &str) -> Result<()> {
    match &config.signer {
        Some(pinned) if pinned != signer => Err(Error::key(
            format!(
                "the config pins signer {pinned}, but the write key {} signs as {signer}",
                config.write_key.display()
            ),
            "point [repository] write_key at the key of this repository, or remove the signer line for a new one",
        )
        .into()),
        _ => Ok(()),
    }
}
