//! `snapdrill config check`

use anyhow::Result;
use snapdrill::error::exit;

use super::{Global, common, output};

pub(super) fn run(global: &Global) -> Result<i32> {
    let config = common::load_config(global)?;
    let mut out = config.check()?;
    // The stores' URLs and options as init and backup check them (the same code).
    for (store, why) in snapdrill::repository::check_store_settings(&config)? {
        out.push_str(&format!(
            "note       store '{store}' cannot be opened yet: {why}\n"
        ));
    }
    let line = common::block_on(async {
        Ok(snapdrill::repository::keyring::check_against_stores(&config).await?)
    })?;
    if let Some(w) = config.geo_warning() {
        eprintln!("snapdrill: warning: {w}");
    }
    output::result(
        &format!("{out}repository {line}\nconfig ok\n"),
        exit::OK,
        global.quiet,
    );
    Ok(exit::OK)
}
