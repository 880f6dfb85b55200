//! The damage register (`<state_dir>/damage/<repository-id>.json`): every copy an audit
//! found damaged (its bytes not those its snapshot signed), per store, kept until a read
//! proves it healthy again. Without it, damage found once by a partial read
//! (`--read-data-subset 1/7`) was forgotten by the next night's audit reading other
//! objects: the alert cleared itself while the object was still damaged. Every audit
//! re-reads what is registered; `sync` replaces it with a verified copy from another store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const VERSION: u32 = 1;

/// One damaged copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Damage {
    /// When an audit first found it (UTC).
    pub found: String,
    /// What was wrong.
    pub detail: String,
}

/// Per store, per object: the damaged copies not yet proved healthy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Register {
    version: u32,
    stores: BTreeMap<String, BTreeMap<String, Damage>>,
}

impl Default for Register {
    fn default() -> Self {
        Register {
            version: VERSION,
            stores: BTreeMap::new(),
        }
    }
}

/// Where the register of a repository lives.
pub fn path(state_dir: &Path, repository_id: &str) -> PathBuf {
    state_dir
        .join("damage")
        .join(format!("{repository_id}.json"))
}

impl Register {
    /// The register at `path`; missing is empty. An unreadable one is an error: silently
    /// starting empty would clear every open alert.
    pub fn load(path: &Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::other(format!(
                    "the damage register {} is garbled ({e}): fix or remove it (removing it forgets the damage it records until an audit finds it again)",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    /// Write it atomically (private).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        crate::localfs::atomic::write(path, &text, crate::localfs::atomic::NewMode::Private, true)
    }

    /// Remember that `object` in `store` is damaged (the first finding's time is kept).
    pub fn mark(&mut self, store: &str, object: &str, detail: &str, now: &str) {
        let entry = self
            .stores
            .entry(store.to_owned())
            .or_default()
            .entry(object.to_owned())
            .or_insert_with(|| Damage {
                found: now.to_owned(),
                detail: String::new(),
            });
        entry.detail = detail.to_owned();
    }

    /// A read proved `object` in `store` healthy.
    pub fn clear(&mut self, store: &str, object: &str) -> bool {
        let Some(objects) = self.stores.get_mut(store) else {
            return false;
        };
        let was = objects.remove(object).is_some();
        if objects.is_empty() {
            self.stores.remove(store);
        }
        was
    }

    /// The damaged copies of `store`.
    pub fn of(&self, store: &str) -> impl Iterator<Item = (&str, &Damage)> {
        self.stores
            .get(store)
            .into_iter()
            .flatten()
            .map(|(o, d)| (o.as_str(), d))
    }

    /// Every registered copy: (store, object, damage).
    pub fn all(&self) -> impl Iterator<Item = (&str, &str, &Damage)> {
        self.stores.iter().flat_map(|(s, objects)| {
            objects
                .iter()
                .map(move |(o, d)| (s.as_str(), o.as_str(), d))
        })
    }

    /// Drop the entries `keep` rejects (objects no snapshot needs any more).
    pub fn retain(&mut self, keep: impl Fn(&str, &str) -> bool) {
        for (store, objects) in &mut self.stores {
            objects.retain(|o, _| keep(store, o));
        }
        self.stores.retain(|_, objects| !objects.is_empty());
    }

    /// Nothing registered.
    pub fn is_empty(&self) -> bool {
        self.stores.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damage_is_kept_until_cleared_and_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), &"ab".repeat(16));
        let mut r = Register::load(&p).unwrap();
        r.mark(
            "tokyo",
            "chunks/aa/aa",
            "bytes differ",
            "2026-12-01T00:00:00Z",
        );
        r.mark(
            "tokyo",
            "chunks/aa/aa",
            "bytes differ again",
            "2026-12-02T00:00:00Z",
        );
        r.save(&p).unwrap();
        let mut back = Register::load(&p).unwrap();
        let (object, d) = back.of("tokyo").next().unwrap();
        assert_eq!(object, "chunks/aa/aa");
        assert_eq!(
            d.found, "2026-12-01T00:00:00Z",
            "the first finding's time is kept"
        );
        assert!(back.clear("tokyo", "chunks/aa/aa"));
        assert!(back.is_empty());
        std::fs::write(&p, b"{garbled").unwrap();
        assert!(
            Register::load(&p).is_err(),
            "a garbled register is not silently emptied"
        );
    }
}
