//! `snapdrill config check`

use anyhow::Result;
use snapdrill::error::exit;

use super::{Global, common};

pub(super) fn run(global: &Global) -> Result<i32> {
    let config = common::load_config(global)?;
    print!("{}", config.check()?);
    common::block_on(async {
        let line = snapdrill::repository::keyring::check_against_stores(&config).await?;
        println!("repository {line}");
        Ok(exit::OK)
    })?;
    if let Some(w) = config.geo_warning()
        && !global.quiet
    {
        eprintln!("snapdrill: warning: {w}");
    }
    println!("config ok");
    Ok(exit::OK)
}
