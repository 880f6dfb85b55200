//! `snapdrill init`: the repository in every store, and the backup host's write key.

use anyhow::Result;
use snapdrill::error::exit;
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
    let done = repository::init_config(&config).await?;
    if args.json {
        output::json(&done)?;
        return Ok(exit::OK);
    }
    println!("repository {}", done.repository_id);
    for o in &done.stores {
        println!(
            "  store {:<12} {:<20} {}",
            o.store,
            o.action,
            o.create_only.describe()
        );
    }
    if let Some(w) = config.geo_warning().filter(|_| !global.quiet) {
        eprintln!("snapdrill: warning: {w}");
    }
    println!(
        "write key: {} ({}) — the backup host needs it; it cannot decrypt",
        done.write_key.display(),
        if done.write_key_created {
            "created"
        } else {
            "existing"
        }
    );
    println!("signer:    {}", done.signer);
    if done.pinned {
        println!("           pinned in {}", config.path.display());
    } else {
        println!(
            "           add it under [repository] in {} as signer = \"{}\"",
            config.path.display(),
            done.signer
        );
    }
    println!(
        "recovery kit for a responder: the identity file, this config (store URLs and signer), and the stores' credentials"
    );
    Ok(exit::OK)
}
