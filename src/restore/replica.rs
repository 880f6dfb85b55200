//! One replica alone (`restore --store NAME`): a responder who knows which store survived,
//! or who must prove that one replica on its own restores, reads every object from that
//! store and from no other — no failover, and no local commit cache (what the replica
//! holds is the question, not what this host remembers).

use crate::config::Config;
use crate::error::{Error, Result};
use crate::repository::{self, OpenMode, Repository};

/// The repository as the store `name` alone holds it. Errors name the store: not in the
/// config, cannot be opened, or holds no (or a damaged) repository.
pub async fn open_replica(config: &Config, name: &str) -> Result<Repository> {
    let signer = repository::signer(config, false)?;
    let (stores, failed) = repository::open_stores(config, false);
    let store = match stores.into_iter().find(|s| s.name() == name) {
        Some(s) => s,
        None => return Err(unusable(config, name, &failed)),
    };
    Repository::open(vec![store], signer, OpenMode::All)
        .await
        .map_err(|e| match e {
            // These name the store already, and keep their exit codes (10, 13).
            Error::NotInitialised { .. } | Error::Integrity { .. } => e,
            other => Error::Fatal {
                message: format!("store '{name}' cannot be used: {other}"),
                hint: Some(format!(
                    "check that store '{name}' is reachable, or restore without --store to use whichever replica serves each object"
                )),
            },
        })
}

/// Why `name` is not a store to restore from: it failed to open, or is not configured.
fn unusable(config: &Config, name: &str, failed: &[(String, crate::store::StoreError)]) -> Error {
    if let Some((_, why)) = failed.iter().find(|(n, _)| n == name) {
        return Error::Fatal {
            message: format!("store '{name}' cannot be opened: {why}"),
            hint: Some(
                "check the store's url and options in the config, or restore without --store"
                    .into(),
            ),
        };
    }
    let names: Vec<&str> = config.stores.iter().map(|s| s.name.as_str()).collect();
    Error::Usage(format!(
        "no store named '{name}' in the config (stores: {})",
        names.join(", ")
    ))
}
