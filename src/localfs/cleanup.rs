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

#[derive(Default)]
struct State {
    /// Set by [`run`]: nothing new may be registered (nor created) after it.
    interrupted: bool,
    items: HashMap<u64, Leftover>,
}

fn lock() -> std::sync::MutexGuard<'static, State> {
    static REGISTRY: OnceLock<Mutex<State>> = OnceLock::new();
    REGISTRY
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
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
        lock().items.remove(&self.0);
    }
}

/// Register before creating: `None` once the run is interrupted (create nothing then).
fn register(l: Leftover) -> Option<Registered> {
    let mut state = lock();
    if state.interrupted {
        return None;
    }
    let id = next_id();
    state.items.insert(id, l);
    Some(Registered(id))
}

/// Register the file `name` of directory `dir` (before creating it).
pub fn file(dir: Arc<OwnedFd>, name: &[u8]) -> Option<Registered> {
    register(Leftover::File {
        dir,
        name: name.to_vec(),
    })
}

/// Register a folder to remove whole.
pub fn tree(path: PathBuf) -> Option<Registered> {
    register(Leftover::Tree(path))
}

/// Remove everything registered and refuse new registrations (on SIGINT or SIGTERM, just
/// before exiting). Returns how many were removed.
pub fn run() -> usize {
    let all: Vec<Leftover> = {
        let mut state = lock();
        state.interrupted = true;
        state.items.drain().map(|(_, l)| l).collect()
    };
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
