//! Test harness: a repository in a temporary directory whose stores are local directories
//! (`stores/<name>`), driven through the real `snapdrill` binary.
//!
//! Each test binary uses a different subset of these helpers.
#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

pub(crate) mod craft;
pub(crate) mod engine;
pub(crate) mod servers;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_snapdrill");

/// A repository: `<dir>/identity.txt`, `<dir>/snapdrill.toml`, `<dir>/stores/<name>`,
/// `<dir>/cache`, `<dir>/state` (root's default would be /var/lib/snapdrill, shared by every
/// test), and (after `init`) `<dir>/snapdrill-write.key`.
pub(crate) struct Env {
    pub dir: TempDir,
    pub stores: Vec<String>,
    /// The `age1...` recipient of `identity.txt`.
    pub recipient: String,
    /// Extra environment for every command (store credentials).
    pub extra_env: Vec<(String, String)>,
}

impl Env {
    /// A repository initialised in every named store.
    pub(crate) fn new(stores: &[&str]) -> Env {
        Env::with(stores, &[], true)
    }

    /// A repository whose config sets `[backup] paths` (relative to the env dir), optionally
    /// without running `init`.
    pub(crate) fn with(stores: &[&str], backup_paths: &[&str], init: bool) -> Env {
        let dir = tempfile::Builder::new()
            .prefix("snapdrill-test-")
            .tempdir()
            .expect("tempdir");
        let mut env = Env {
            dir,
            stores: stores.iter().map(|s| s.to_string()).collect(),
            recipient: String::new(),
            extra_env: Vec::new(),
        };
        let identity = env.path().join("identity.txt");
        env.recipient = env
            .ok(&["keygen", "-o", identity.to_str().unwrap()])
            .trim()
            .to_owned();
        assert!(env.recipient.starts_with("age1"), "{}", env.recipient);
        let mut toml = format!(
            "[repository]\nrecipients = [\"{}\"]\nidentity = \"identity.txt\"\ncache_dir = \"cache\"\nstate_dir = \"state\"\n",
            env.recipient
        );
        for s in stores {
            toml.push_str(&format!(
                "\n[[store]]\nname = \"{s}\"\nurl = \"stores/{s}\"\nsite = \"{s}\"\n"
            ));
        }
        if !backup_paths.is_empty() {
            let quoted: Vec<String> = backup_paths.iter().map(|p| format!("\"{p}\"")).collect();
            toml.push_str(&format!("\n[backup]\npaths = [{}]\n", quoted.join(", ")));
        }
        fs::write(env.config(), toml).unwrap();
        if init {
            env.ok(&["init", "--create"]);
        }
        env
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `<dir>/<rel>`
    pub(crate) fn p(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    pub(crate) fn config(&self) -> PathBuf {
        self.p("snapdrill.toml")
    }

    pub(crate) fn identity(&self) -> PathBuf {
        self.p("identity.txt")
    }

    pub(crate) fn write_key(&self) -> PathBuf {
        self.p("snapdrill-write.key")
    }

    pub(crate) fn store(&self, name: &str) -> PathBuf {
        self.p(&format!("stores/{name}"))
    }

    /// The command, isolated from the caller's environment.
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_with(&self.config(), args)
    }

    /// The command with another config file.
    pub(crate) fn cmd_with(&self, config: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--config")
            .arg(config)
            .args(args)
            .current_dir(self.path())
            .env_remove("SNAPDRILL_CONFIG")
            .env_remove("SNAPDRILL_IDENTITY")
            .env_remove("XDG_CACHE_HOME")
            .env_remove("XDG_STATE_HOME")
            .env("HOME", self.path())
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        c
    }

    /// A repository whose stores are given as `[[store]]` TOML; `init` run when asked.
    pub(crate) fn with_stores_toml(
        stores_toml: &str,
        extra_env: Vec<(String, String)>,
        init: bool,
    ) -> Env {
        let env = Env::with(&[], &[], false);
        let mut env = Env { extra_env, ..env };
        let text = fs::read_to_string(env.config()).unwrap();
        fs::write(env.config(), format!("{text}\n{stores_toml}")).unwrap();
        env.stores = Vec::new();
        if init {
            env.ok(&["init", "--create"]);
        }
        env
    }

    /// Write another config beside the main one, with the same keys and pinned signer and
    /// only the given stores; returns its path (for restoring from one store alone).
    pub(crate) fn config_with_only(&self, file: &str, stores_toml: &str) -> PathBuf {
        let main = fs::read_to_string(self.config()).unwrap();
        let head = main.split("[[store]]").next().unwrap();
        let path = self.p(file);
        fs::write(&path, format!("{head}\n{stores_toml}")).unwrap();
        path
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("running snapdrill")
    }

    /// Run with `input` on standard input.
    pub(crate) fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning snapdrill");
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let feeder = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap().expect("writing stdin");
        out
    }

    /// Run, assert exit 0, return stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(code(&out), 0, "snapdrill {args:?} failed\n{}", show(&out));
        String::from_utf8(out.stdout).expect("UTF-8 stdout")
    }

    /// Run, return the exit code.
    pub(crate) fn code(&self, args: &[&str]) -> i32 {
        code(&self.run(args))
    }

    /// `backup --json ARGS`, asserting exit 0.
    pub(crate) fn backup_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["backup", "--json"];
        all.extend_from_slice(args);
        json(&self.ok(&all))
    }

    /// Trusted snapshot ids, oldest first (`snapshots --json`, exit 0 asserted).
    pub(crate) fn snapshot_ids(&self) -> Vec<String> {
        let v = json(&self.ok(&["snapshots", "--json"]));
        v["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Every object file under `stores/<store>/chunks`, sorted.
    pub(crate) fn chunk_objects(&self, store: &str) -> Vec<PathBuf> {
        files_under(&self.store(store).join("chunks"))
    }

    /// A source tree at `<dir>/<name>` (see [`write_tree`]).
    pub(crate) fn tree(&self, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let root = self.p(name);
        write_tree(&root, files);
        root
    }
}

pub(crate) fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally, not by a signal")
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Exit code, stdout and stderr, for assertion messages.
pub(crate) fn show(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    )
}

pub(crate) fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}

/// Create `root` and the files (parents created as needed).
pub(crate) fn write_tree(root: &Path, files: &[(&str, &[u8])]) {
    fs::create_dir_all(root).unwrap();
    for (rel, content) in files {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
    }
}

/// A seeded random number generator: the same seed, the same sequence.
/// A seed from the clock, for tests that draw random instants (printed in their failures).
#[allow(dead_code, reason = "not every test binary draws at random")]
pub(crate) fn time_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// The repository's current read key, opened by hand from `store`'s `config` with the
/// stock `age` and `identity` (docs/format.md section 13), written where `age -i` takes
/// it; returns that file.
#[allow(dead_code, reason = "used by the key and stock-tool tests only")]
pub(crate) fn read_key_by_hand(store: &Path, identity: &Path, out: &Path) -> PathBuf {
    use base64::Engine;
    let config = fs::read_to_string(store.join("config")).unwrap();
    let body = &config[config.find('{').unwrap()..=config.rfind('}').unwrap()];
    let doc = json(body);
    let sealed = doc["read_keys"].as_array().unwrap().last().unwrap()["sealed"]
        .as_str()
        .unwrap()
        .to_owned();
    let sealed_path = out.with_extension("age");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .unwrap();
    fs::write(&sealed_path, bytes).unwrap();
    let age = Command::new("age")
        .args(["-d", "-i"])
        .arg(identity)
        .arg(&sealed_path)
        .output()
        .expect("running age");
    assert!(age.status.success(), "{}", stderr(&age));
    assert!(
        age.stdout.starts_with(b"AGE-SECRET-KEY-1"),
        "a read key is an age identity"
    );
    fs::write(out, age.stdout).unwrap();
    out.to_owned()
}

pub(crate) fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::SeedableRng::seed_from_u64(seed)
}

/// Deterministic pseudo-random bytes, incompressible.
pub(crate) fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    rand::RngCore::fill_bytes(&mut rng(seed), &mut out);
    out
}

/// Every regular file under `dir` (recursively), sorted; empty if `dir` is missing.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                todo.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Names directly in `dir`, sorted; empty if `dir` is missing.
pub(crate) fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// What a tree comparison looks at, per path.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Node {
    Dir {
        mode: u32,
        mtime: (i64, i64),
    },
    File {
        mode: u32,
        mtime: (i64, i64),
        content: Vec<u8>,
    },
    Symlink {
        target: PathBuf,
        mtime: (i64, i64),
    },
}

/// Snapshot of a tree: every path below `root` (and `root` itself as ""), with mode
/// (permission bits), mtime to the nanosecond, content and symlink target.
pub(crate) fn read_tree(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut todo = vec![(root.to_path_buf(), String::new())];
    while let Some((path, rel)) = todo.pop() {
        let m = fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mtime = (m.mtime(), m.mtime_nsec());
        let mode = m.permissions().mode() & 0o7777;
        let node = if m.file_type().is_symlink() {
            Node::Symlink {
                target: fs::read_link(&path).unwrap(),
                mtime,
            }
        } else if m.is_dir() {
            for e in fs::read_dir(&path).unwrap() {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                let child = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                todo.push((e.path(), child));
            }
            Node::Dir { mode, mtime }
        } else {
            Node::File {
                mode,
                mtime,
                content: fs::read(&path).unwrap(),
            }
        };
        out.insert(rel, node);
    }
    out
}

/// Assert two trees are identical: same paths, kinds, bytes, modes, mtimes (ns), targets.
pub(crate) fn assert_same_tree(expected: &Path, actual: &Path) {
    let (a, b) = (read_tree(expected), read_tree(actual));
    let (ka, kb): (Vec<_>, Vec<_>) = (a.keys().collect(), b.keys().collect());
    assert_eq!(
        ka,
        kb,
        "paths differ between {} and {}",
        expected.display(),
        actual.display()
    );
    for (path, node) in &a {
        // Content can be large: compare without printing it.
        let other = &b[path];
        if let (Node::File { content: x, .. }, Node::File { content: y, .. }) = (node, other) {
            assert!(
                x == y,
                "content of '{path}' differs ({} vs {} bytes)",
                x.len(),
                y.len()
            );
        }
        let strip = |n: &Node| match n {
            Node::File {
                mode,
                mtime,
                content,
            } => format!("file mode {mode:o} mtime {mtime:?} {} bytes", content.len()),
            other => format!("{other:?}"),
        };
        assert_eq!(strip(node), strip(other), "'{path}' differs");
    }
}

/// Fail (not skip) when a stock tool the test relies on is missing.
pub(crate) fn require_tool(name: &str, package: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "this test needs the stock `{name}` tool, which is not installed: install it (Debian: apt-get install {package}) and run the tests again"
    );
}

pub(crate) fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Set mtime (and atime) with nanoseconds, without following symlinks.
pub(crate) fn set_mtime(path: &Path, secs: i64, nanos: u32) {
    let t = filetime::FileTime::from_unix_time(secs, nanos);
    filetime::set_symlink_file_times(path, t, t).unwrap();
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// SHA-256 of a file, hex, read in pieces (files may be larger than memory).
pub(crate) fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    use std::io::Read;
    let mut f = fs::File::open(path).unwrap();
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    hex::encode(h.finalize())
}

/// `promtool check metrics` on a textfile: fails the test with its complaints.
#[allow(dead_code)]
pub(crate) fn promtool(path: &Path) {
    let check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(path).unwrap())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}
