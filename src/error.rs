//! Errors of the library, and the exit code each one maps to.
//!
//! Error policy:
//! - The library returns [`Error`], a `thiserror` enum whose variants callers match on. Every
//!   variant names what it is about (store, object, path or key) in its message, and
//!   [`Error::hint`] says what to do next.
//! - Store backends return [`crate::store::StoreError`], which keeps the store's name and the
//!   object key; it converts into [`Error::Store`].
//! - Only the command layer (`src/cli/`) uses `anyhow`, to add the command's own context, and
//!   maps [`Error::exit_code`] to the process exit status (see the README's table).

use std::path::PathBuf;

use crate::store::{StoreError, StoreErrorKind};

/// Result alias of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit codes shared by every command (the README's table).
pub mod exit {
    /// Done, everything as intended.
    pub const OK: i32 = 0;
    /// Fatal: could not complete.
    pub const FATAL: i32 = 1;
    /// Usage or configuration error.
    pub const USAGE: i32 = 2;
    /// Partial: done, but some stores or source files were skipped.
    pub const PARTIAL: i32 = 3;
    /// Repository not found / not initialised in a store.
    pub const NOT_INITIALISED: i32 = 10;
    /// Another run holds the lock.
    pub const LOCKED: i32 = 11;
    /// Wrong or missing key.
    pub const KEY: i32 = 12;
    /// Integrity failure.
    pub const INTEGRITY: i32 = 13;
    /// A drill missed its target with data intact.
    pub const TARGET_MISSED: i32 = 14;
    /// A drill restored and verified every byte, but its validation command failed.
    pub const CHECK_FAILED: i32 = 15;
    /// Interrupted by SIGINT (128 + 2, as shells report it).
    pub const INTERRUPTED: i32 = 130;
    /// Stopped by SIGTERM (128 + 15).
    pub const TERMINATED: i32 = 143;

    /// The worse of two exit codes, for a command that runs several jobs or drills: an
    /// integrity failure outranks a key error, which outranks a failure, a lock, a missed
    /// target and a partial run; an interruption outranks everything (the run stopped).
    pub fn worst(a: i32, b: i32) -> i32 {
        const ORDER: [i32; 12] = [
            OK,
            PARTIAL,
            TARGET_MISSED,
            CHECK_FAILED,
            LOCKED,
            FATAL,
            USAGE,
            NOT_INITIALISED,
            KEY,
            INTEGRITY,
            TERMINATED,
            INTERRUPTED,
        ];
        let rank = |c: i32| ORDER.iter().position(|&o| o == c).unwrap_or(5);
        if rank(b) > rank(a) { b } else { a }
    }
}

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file is missing, unreadable or invalid.
    #[error("configuration {}: {message}", path.display())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No configuration file was found where snapdrill looks.
    #[error("no configuration found (looked at {looked})")]
    NoConfig {
        /// Where it looked.
        looked: String,
    },
    /// A request that cannot be carried out as asked (bad argument, unknown snapshot, ...).
    #[error("{0}")]
    Usage(String),
    /// A key file is missing, unreadable, unsafe or malformed, or a key does not fit.
    #[error("{message}")]
    Key {
        /// What is wrong, naming the key file.
        message: String,
        /// What to do about it.
        hint: String,
    },
    /// The recipients in the config are not the repository's: a write would encrypt to
    /// keys the repository does not record.
    #[error("{message}")]
    Recipients {
        /// What differs.
        message: String,
        /// The `keys` command to run.
        hint: String,
    },
    /// A store holds no repository.
    #[error("store '{store}' holds no snapdrill repository (no 'config' object)")]
    NotInitialised {
        /// The store's name.
        store: String,
    },
    /// Something read back is not what was written: checksum, signature, size, structure.
    #[error("integrity failure{}: {what}", at(store, object))]
    Integrity {
        /// The store the bad data came from, when known.
        store: Option<String>,
        /// The object (or path) involved, when known.
        object: Option<String>,
        /// What does not match.
        what: String,
    },
    /// Another prune holds the lease in a store.
    #[error("store '{store}' is leased to another prune: {holder}")]
    LeaseHeld {
        /// The store.
        store: String,
        /// Who holds it and since when.
        holder: String,
    },
    /// Another run of the same backup job holds its local lock (see [`crate::lock`]).
    #[error("another run of this backup job holds the lock {}: {holder}", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as that run wrote it: `pid N on HOST since TIME`.
        holder: String,
    },
    /// A store operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A local file operation failed.
    #[error("{action} {}: {error}", path.display())]
    Io {
        /// What was being done ("reading", "creating", ...).
        action: &'static str,
        /// The local path involved.
        path: PathBuf,
        /// The underlying error (in the message; not a `source`, so that a chain printed
        /// with `{:#}` does not repeat it).
        error: std::io::Error,
    },
    /// The work could not be completed (for example a backup command failed).
    #[error("{message}")]
    Fatal {
        /// What happened.
        message: String,
        /// What to do about it.
        hint: Option<String>,
    },
}

/// The hint of [`Error::Locked`], naming the holder's pid when it wrote one.
fn locked_hint(holder: &str) -> String {
    let pid = holder
        .strip_prefix("pid ")
        .and_then(|rest| rest.split_whitespace().next())
        .filter(|p| p.bytes().all(|b| b.is_ascii_digit()));
    let (running, check) = match pid {
        Some(pid) => (format!(" (pid {pid})"), format!("`ps -fp {pid}`")),
        None => (String::new(), "`ps`".to_owned()),
    };
    format!(
        "another snapdrill backup of this job is running{running}; wait for it, or check it with {check}; the lock frees itself when that process ends (even after kill -9), so never delete the lock file"
    )
}

fn at(store: &Option<String>, object: &Option<String>) -> String {
    match (store, object) {
        (Some(s), Some(o)) => format!(" in store '{s}', object '{o}'"),
        (Some(s), None) => format!(" in store '{s}'"),
        (None, Some(o)) => format!(" in '{o}'"),
        (None, None) => String::new(),
    }
}

impl Error {
    /// An integrity error about an object in a store.
    pub fn integrity(store: Option<&str>, object: Option<&str>, what: impl Into<String>) -> Self {
        Error::Integrity {
            store: store.map(str::to_owned),
            object: object.map(str::to_owned),
            what: what.into(),
        }
    }

    /// A local I/O error about a path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            error: source,
        }
    }

    /// A key error with its hint.
    pub fn key(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Key {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// A fatal error without a hint.
    pub fn fatal(message: impl Into<String>) -> Self {
        Error::Fatal {
            message: message.into(),
            hint: None,
        }
    }

    /// The process exit code this error maps to.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config { .. }
            | Error::NoConfig { .. }
            | Error::Usage(_)
            | Error::Recipients { .. } => exit::USAGE,
            Error::Key { .. } => exit::KEY,
            Error::NotInitialised { .. } => exit::NOT_INITIALISED,
            Error::LeaseHeld { .. } | Error::Locked { .. } => exit::LOCKED,
            Error::Integrity { .. } => exit::INTEGRITY,
            Error::Store(e) if e.kind == StoreErrorKind::Corrupt => exit::INTEGRITY,
            Error::Store(e) if e.kind == StoreErrorKind::Config => exit::USAGE,
            Error::Store(_) | Error::Io { .. } | Error::Fatal { .. } => exit::FATAL,
        }
    }

    /// What the user should do next, when there is something useful to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Config { .. } => Some(
                "fix the file and run `snapdrill config check`; the README has the reference"
                    .into(),
            ),
            Error::NoConfig { .. } => Some(
                "pass --config FILE, set $SNAPDRILL_CONFIG, or write one of the files named (the README's quick start has one; a system-wide one goes in /etc/snapdrill/snapdrill.toml)"
                    .into(),
            ),
            Error::Key { hint, .. } | Error::Recipients { hint, .. } => Some(hint.clone()),
            Error::NotInitialised { store } => Some(format!(
                "check the store's URL in the config and that its volume is mounted; to create the repository there, run `snapdrill init --store {store}` (with --create for a new local folder)"
            )),
            Error::Integrity { .. } => Some(
                "nothing damaged was used; restore from a healthy replica (every configured store is tried in turn) and find out who could write to this store"
                    .into(),
            ),
            Error::LeaseHeld { .. } => Some(
                "wait for that prune to finish (a lease is stale, and broken by the next prune, once older than its TTL, at most [prune] max_lease_ttl); if no prune runs on that host, break it now with `snapdrill prune --break-lease`"
                    .into(),
            ),
            Error::Locked { holder, .. } => Some(locked_hint(holder)),
            Error::Store(e) => e.hint(),
            Error::Fatal { hint, .. } => hint.clone(),
            Error::Usage(_) | Error::Io { .. } => None,
        }
    }
}
