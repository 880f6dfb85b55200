//! Where the config file is looked for, and where the state and cache folders go when the
//! config does not say.
//!
//! The config: `--config FILE`, then `$SNAPDRILL_CONFIG`, then the first that exists of
//! `./snapdrill.toml`, `$XDG_CONFIG_HOME/snapdrill/snapdrill.toml` (else
//! `~/.config/snapdrill/snapdrill.toml`) and `/etc/snapdrill/snapdrill.toml`.
//!
//! The state (locks, ledger, damage register) and cache folders: root's are
//! `/var/lib/snapdrill` and `/var/cache/snapdrill` (FHS) whatever its environment says, so
//! that a cron run, a systemd run and an interactive `sudo` run share one lock and one
//! ledger; another user's follow XDG (`$XDG_STATE_HOME/snapdrill`, else
//! `~/.local/state/snapdrill`; `$XDG_CACHE_HOME/snapdrill`, else `~/.cache/snapdrill`).
//! When neither `HOME` nor the XDG variable is set, there is no default: the config must
//! say (`[repository] state_dir`, `cache_dir`) — never a silent temporary folder that two
//! runs would not share.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The file name looked for in the working directory and the config folders.
pub const DEFAULT_FILE: &str = "snapdrill.toml";
/// The environment variable naming the config file.
pub const ENV_VAR: &str = "SNAPDRILL_CONFIG";
/// The system-wide config.
pub const SYSTEM_FILE: &str = "/etc/snapdrill/snapdrill.toml";
/// root's state folder.
pub const ROOT_STATE_DIR: &str = "/var/lib/snapdrill";
/// root's cache folder.
pub const ROOT_CACHE_DIR: &str = "/var/cache/snapdrill";

/// What the defaults depend on: the environment and whether the process runs as root.
/// [`Places::from_process`] reads them; tests build their own.
#[derive(Debug, Clone)]
pub struct Places {
    /// Effective user id 0.
    pub root: bool,
    /// `$HOME`, `$XDG_CONFIG_HOME`, `$XDG_STATE_HOME`, `$XDG_CACHE_HOME`, `$SNAPDRILL_CONFIG`
    /// (empty values count as unset, as the XDG specification says).
    pub env: Vec<(&'static str, OsString)>,
}

impl Places {
    /// This process's.
    pub fn from_process() -> Self {
        let env = [
            "HOME",
            "XDG_CONFIG_HOME",
            "XDG_STATE_HOME",
            "XDG_CACHE_HOME",
            ENV_VAR,
        ]
        .into_iter()
        .filter_map(|k| Some((k, std::env::var_os(k)?)))
        .collect();
        Places {
            root: rustix::process::geteuid().is_root(),
            env,
        }
    }

    fn var(&self, key: &str) -> Option<PathBuf> {
        self.env
            .iter()
            .find(|(k, v)| *k == key && !v.is_empty())
            .map(|(_, v)| PathBuf::from(v))
    }

    /// The files looked for when neither `--config` nor `$SNAPDRILL_CONFIG` names one, in
    /// order.
    pub fn search_path(&self) -> Vec<PathBuf> {
        let mut files = vec![PathBuf::from(".").join(DEFAULT_FILE)];
        let user = self
            .var("XDG_CONFIG_HOME")
            .or_else(|| self.var("HOME").map(|h| h.join(".config")));
        if let Some(dir) = user {
            files.push(dir.join("snapdrill").join(DEFAULT_FILE));
        }
        files.push(PathBuf::from(SYSTEM_FILE));
        files
    }

    /// The config file: `explicit`, else `$SNAPDRILL_CONFIG`, else the first of
    /// [`Places::search_path`] that exists (`exists` is asked).
    pub fn locate(
        &self,
        explicit: Option<&Path>,
        exists: impl Fn(&Path) -> bool,
    ) -> Result<PathBuf> {
        if let Some(p) = explicit {
            return Ok(p.to_owned());
        }
        if let Some(p) = self.var(ENV_VAR) {
            return Ok(p);
        }
        let search = self.search_path();
        if let Some(found) = search.iter().find(|p| exists(p)) {
            return Ok(found.clone());
        }
        let looked: Vec<String> = search.iter().map(|p| p.display().to_string()).collect();
        Err(Error::NoConfig {
            looked: format!("--config, ${ENV_VAR}, {}", looked.join(", ")),
        })
    }

    /// The default state folder, or why there is none.
    pub fn state_dir(&self) -> std::result::Result<PathBuf, String> {
        self.default_dir(
            ROOT_STATE_DIR,
            "XDG_STATE_HOME",
            ".local/state",
            "state_dir",
        )
    }

    /// The default cache folder, or why there is none.
    pub fn cache_dir(&self) -> std::result::Result<PathBuf, String> {
        self.default_dir(ROOT_CACHE_DIR, "XDG_CACHE_HOME", ".cache", "cache_dir")
    }

    fn default_dir(
        &self,
        for_root: &str,
        xdg: &str,
        under_home: &str,
        setting: &str,
    ) -> std::result::Result<PathBuf, String> {
        if self.root {
            return Ok(PathBuf::from(for_root));
        }
        if let Some(dir) = self.var(xdg) {
            return Ok(dir.join("snapdrill"));
        }
        if let Some(home) = self.var("HOME") {
            return Ok(home.join(under_home).join("snapdrill"));
        }
        Err(format!(
            "[repository] {setting} is not set and neither ${xdg} nor $HOME is, so there is no folder for it: \
             set {setting} under [repository] (e.g. {setting} = \"/var/lib/snapdrill\"), or run with HOME set"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(root: bool, env: &[(&'static str, &str)]) -> Places {
        Places {
            root,
            env: env.iter().map(|(k, v)| (*k, OsString::from(v))).collect(),
        }
    }

    #[test]
    fn the_config_is_looked_for_in_order() {
        let p = places(false, &[("HOME", "/home/ops")]);
        assert_eq!(
            p.search_path(),
            [
                PathBuf::from("./snapdrill.toml"),
                PathBuf::from("/home/ops/.config/snapdrill/snapdrill.toml"),
                PathBuf::from("/etc/snapdrill/snapdrill.toml"),
            ]
        );
        let xdg = places(false, &[("HOME", "/home/ops"), ("XDG_CONFIG_HOME", "/cfg")]);
        assert_eq!(
            xdg.search_path()[1],
            PathBuf::from("/cfg/snapdrill/snapdrill.toml")
        );
        // Only /etc exists: it is found; nothing exists: every place is named.
        let only_etc = |f: &Path| f == Path::new(SYSTEM_FILE);
        assert_eq!(
            p.locate(None, only_etc).unwrap(),
            PathBuf::from(SYSTEM_FILE)
        );
        let err = p.locate(None, |_| false).unwrap_err().to_string();
        assert!(
            err.contains("/home/ops/.config/snapdrill/snapdrill.toml"),
            "{err}"
        );
        assert!(err.contains(SYSTEM_FILE), "{err}");
        // The user's file wins over /etc, ./snapdrill.toml over both, the variable over all.
        assert_eq!(
            p.locate(None, |_| true).unwrap(),
            PathBuf::from("./snapdrill.toml")
        );
        let user = |f: &Path| f != Path::new("./snapdrill.toml");
        assert_eq!(
            p.locate(None, user).unwrap(),
            PathBuf::from("/home/ops/.config/snapdrill/snapdrill.toml")
        );
        let env = places(false, &[(ENV_VAR, "/x.toml")]);
        assert_eq!(
            env.locate(None, |_| true).unwrap(),
            PathBuf::from("/x.toml")
        );
        assert_eq!(
            env.locate(Some(Path::new("y.toml")), |_| true).unwrap(),
            PathBuf::from("y.toml")
        );
    }

    #[test]
    fn root_gets_fhs_folders_and_users_xdg_ones() {
        let root = places(true, &[("HOME", "/root"), ("XDG_STATE_HOME", "/s")]);
        assert_eq!(
            root.state_dir().unwrap(),
            PathBuf::from("/var/lib/snapdrill")
        );
        assert_eq!(
            root.cache_dir().unwrap(),
            PathBuf::from("/var/cache/snapdrill")
        );
        let user = places(false, &[("HOME", "/home/ops")]);
        assert_eq!(
            user.state_dir().unwrap(),
            PathBuf::from("/home/ops/.local/state/snapdrill")
        );
        assert_eq!(
            user.cache_dir().unwrap(),
            PathBuf::from("/home/ops/.cache/snapdrill")
        );
        let xdg = places(
            false,
            &[
                ("HOME", "/h"),
                ("XDG_STATE_HOME", "/s"),
                ("XDG_CACHE_HOME", ""),
            ],
        );
        assert_eq!(xdg.state_dir().unwrap(), PathBuf::from("/s/snapdrill"));
        assert_eq!(
            xdg.cache_dir().unwrap(),
            PathBuf::from("/h/.cache/snapdrill")
        );
    }

    #[test]
    fn without_home_there_is_no_default_and_never_tmp() {
        let bare = places(false, &[]);
        let err = bare.state_dir().unwrap_err();
        assert!(err.contains("state_dir") && err.contains("$HOME"), "{err}");
        let err = bare.cache_dir().unwrap_err();
        assert!(err.contains("cache_dir"), "{err}");
    }
}
