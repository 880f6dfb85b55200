//! What an interrupted run must not leave behind: a restore's temporary files (complete
//! plaintext not yet checked or placed), a drill's clean-room folder. Each is registered
//! while it exists; on SIGINT or SIGTERM the command layer calls [`run`] before exiting, and
//! the next run sweeps whatever a SIGKILL left.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::AtFlags;

/// Something to remove on interruption.
#[derive(Debug)]
enum Leftover {
    /// A file `name` in the directory `dir` (removed through the descriptor).
    File { dir: Arc<OwnedFd>, name: Vec<u8> },
    /// A whole folder.
    Tree(PathBuf),
}

fn registry() -> &'static Mutex<HashMap<u64, Leftover>> {
    static REGISTRY: OnceLock<Mutex<HashMap<u64, Leftover>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Registered while it lives; dropping it unregisters (the work finished or cleaned up).
#[derive(Debug)]
pub struct Registered(u64);

impl Drop for Registered {
    fn drop(&mut self) {
        lock().remove(&self.0);
    }
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<u64, Leftover>> {
    registry().lock().unwrap_or_else(|p| p.into_inner())
}

fn register(l: Leftover) -> Registered {
    let id = next_id();
    lock().insert(id, l);
    Registered(id)
}

/// Register the file `name` of directory `dir`.
pub fn file(dir: Arc<OwnedFd>, name: &[u8]) -> Registered {
    register(Leftover::File {
        dir,
        name: name.to_vec(),
    })
}

/// Register a folder to remove whole.
pub fn tree(path: PathBuf) -> Registered {
    register(Leftover::Tree(path))
}

/// Remove everything registered (on SIGINT or SIGTERM, just before exiting). Returns how
/// many were removed.
pub fn run() -> usize {
    let all: Vec<Leftover> = lock().drain().map(|(_, l)| l).collect();
    let mut removed = 0;
    for l in all {
        let ok = match l {
            Leftover::File { dir, name } => rustix::fs::unlinkat(
                dir.as_fd(),
                <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&name),
                AtFlags::empty(),
            )
            .is_ok(),
            Leftover::Tree(path) => super::scratch::remove_tree(&path).is_ok(),
        };
        removed += usize::from(ok);
    }
    removed
}
