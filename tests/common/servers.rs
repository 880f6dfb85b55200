//! Real object-store servers for the tests, started by `scripts/servers.sh` on free ports of
//! 127.0.0.1 (installed on first use) and stopped when the value is dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running server: its `KEY=VALUE` facts from `servers.sh start`.
pub(crate) struct Server {
    pub kind: &'static str,
    pub env: BTreeMap<String, String>,
    state: tempfile::TempDir,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/servers.sh")
}

impl Server {
    /// Start `kind` (moto, azurite or webdav); panics with the script's output on failure.
    pub(crate) fn start(kind: &'static str) -> Server {
        let state = tempfile::Builder::new()
            .prefix(&format!("snapdrill-{kind}-"))
            .tempdir()
            .unwrap();
        let out = Command::new(script())
            .args(["start", kind])
            .arg(state.path())
            .output()
            .expect("run servers.sh");
        assert!(
            out.status.success(),
            "scripts/servers.sh start {kind} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        Server { kind, env, state }
    }

    pub(crate) fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("{} has no {key}: {:?}", self.kind, self.env))
    }

    pub(crate) fn pid(&self) -> i32 {
        self.get("PID").parse().unwrap()
    }

    /// Freeze the server (SIGSTOP): connections hang, as with a dead host.
    pub(crate) fn pause(&self) {
        signal(self.pid(), "STOP");
    }

    /// Thaw it (SIGCONT).
    pub(crate) fn resume(&self) {
        signal(self.pid(), "CONT");
    }

    /// `[[store]]` TOML for this server, with the given name and prefix.
    pub(crate) fn store_toml(&self, name: &str, prefix: &str, extra: &str) -> String {
        match self.kind {
            "moto" => format!(
                "[[store]]\nname = \"{name}\"\nurl = \"s3://{}/{prefix}\"\nsite = \"{name}\"\n{extra}\
                 options = {{ endpoint = \"{}\", region = \"{}\", allow_http = \"true\" }}\n",
                self.get("BUCKET"),
                self.get("ENDPOINT"),
                self.get("REGION")
            ),
            "azurite" => format!(
                "[[store]]\nname = \"{name}\"\nurl = \"az://{}/{prefix}\"\nsite = \"{name}\"\n{extra}\
                 options = {{ endpoint = \"{}\", allow_http = \"true\" }}\n",
                self.get("CONTAINER"),
                self.get("ENDPOINT")
            ),
            "webdav" => format!(
                "[[store]]\nname = \"{name}\"\nurl = \"{}{prefix}\"\nsite = \"{name}\"\n{extra}",
                self.get("URL")
            ),
            other => panic!("unknown kind {other}"),
        }
    }

    /// Credentials as the cloud's standard environment variables.
    pub(crate) fn credentials(&self) -> Vec<(String, String)> {
        match self.kind {
            "moto" => vec![
                ("AWS_ACCESS_KEY_ID".into(), self.get("ACCESS_KEY_ID").into()),
                (
                    "AWS_SECRET_ACCESS_KEY".into(),
                    self.get("SECRET_ACCESS_KEY").into(),
                ),
            ],
            "azurite" => vec![
                (
                    "AZURE_STORAGE_ACCOUNT_NAME".into(),
                    self.get("ACCOUNT").into(),
                ),
                (
                    "AZURE_STORAGE_ACCOUNT_KEY".into(),
                    self.get("ACCESS_KEY").into(),
                ),
            ],
            _ => vec![],
        }
    }
}

fn signal(pid: i32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(ok.success(), "kill -{sig} {pid}");
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(self.pid().to_string())
            .status();
        let _ = Command::new(script())
            .arg("stop")
            .arg(self.state.path())
            .output();
    }
}
