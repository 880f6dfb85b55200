//! `snapdrill config check`

use anyhow::Result;
use snapdrill::error::exit;
use snapdrill::keys::{self, Identities};
use snapdrill::store::backend;

use super::{Global, common};

pub(super) fn run(global: &Global) -> Result<i32> {
    let config = common::load_config(global)?;
    keys::parse_recipients(&config.recipients)?;
    println!("config     {}", config.path.display());
    println!("recipients {}", config.recipients.len());
    match &config.identity {
        Some(p) if p.exists() => {
            Identities::load(p)?;
            println!("identity   {} (ok)", p.display());
        }
        Some(p) => println!(
            "identity   {} (not on this host: fine for a backup host)",
            p.display()
        ),
        None => println!("identity   not configured (fine for a backup host)"),
    }
    println!(
        "signer     {}",
        config
            .signer
            .as_deref()
            .unwrap_or("not pinned yet (run `snapdrill init`)")
    );
    println!(
        "write key  {} ({})",
        config.write_key.display(),
        if config.write_key.exists() {
            "present"
        } else {
            "absent: fine for a restore host"
        }
    );
    for s in &config.stores {
        println!(
            "store      {:<12} site {:<10} {:?}",
            s.name,
            s.site.as_deref().unwrap_or("-"),
            describe(&s.location)
        );
    }
    if let Some(w) = config.geo_warning()
        && !global.quiet
    {
        eprintln!("snapdrill: warning: {w}");
    }
    println!("config ok");
    Ok(exit::OK)
}

/// A store location fit to print: never credentials.
fn describe(location: &backend::Location) -> String {
    match location {
        backend::Location::Local(p) => p.display().to_string(),
        backend::Location::Memory(n) => format!("memory://{n}"),
        backend::Location::Remote { url, .. } => backend::redact_url(url),
    }
}
