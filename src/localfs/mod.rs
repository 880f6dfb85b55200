//! The local filesystem, as other users of the machine cannot redirect it.
//!
//! A backup usually runs as root over trees that other users can write, and a restore as
//! root into folders they may reach. Everything here goes through descriptors: directories
//! below a root are opened relative to their parent with `O_NOFOLLOW | O_DIRECTORY`
//! ([`tree::DirTree`]); files are opened `O_NOFOLLOW | O_NONBLOCK` and their type and identity
//! checked after the open; temporary files are created exclusively under random names;
//! rewritten files keep their mode and owner ([`atomic`]); scratch folders are private and
//! locked while in use, so that the next run can remove a dead run's leftovers
//! ([`scratch`]); and whatever a run would leave behind when interrupted is registered and
//! removed on SIGINT or SIGTERM ([`cleanup`]).

pub mod atomic;
pub mod cleanup;
pub mod scratch;
pub mod tree;

/// What `fstat` says about an open file, in the units the rest of the code uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time.
    pub mtime: i64,
    /// Modification time, nanoseconds.
    pub mtime_ns: u32,
    /// Status change time.
    pub ctime: i64,
    /// Status change time, nanoseconds.
    pub ctime_ns: u32,
}

impl Stat {
    /// From rustix's `struct stat`, whose field types differ by architecture.
    #[allow(
        clippy::unnecessary_cast,
        reason = "field types differ by architecture"
    )]
    pub fn from_raw(s: &rustix::fs::Stat) -> Self {
        Stat {
            dev: s.st_dev as u64,
            ino: s.st_ino as u64,
            mode: s.st_mode as u32,
            uid: s.st_uid as u32,
            size: s.st_size.max(0) as u64,
            mtime: s.st_mtime as i64,
            mtime_ns: (s.st_mtime_nsec as u64).min(999_999_999) as u32,
            ctime: s.st_ctime as i64,
            ctime_ns: (s.st_ctime_nsec as u64).min(999_999_999) as u32,
        }
    }

    /// `fstat` of an open descriptor.
    pub fn of(fd: impl rustix::fd::AsFd) -> std::io::Result<Self> {
        Ok(Stat::from_raw(&rustix::fs::fstat(fd)?))
    }

    /// The file type.
    pub fn kind(&self) -> rustix::fs::FileType {
        rustix::fs::FileType::from_raw_mode(self.mode as rustix::fs::RawMode)
    }

    /// A regular file?
    pub fn is_file(&self) -> bool {
        self.kind() == rustix::fs::FileType::RegularFile
    }

    /// A directory?
    pub fn is_dir(&self) -> bool {
        self.kind() == rustix::fs::FileType::Directory
    }

    /// What a file of this type is called in messages.
    pub fn kind_name(&self) -> &'static str {
        use rustix::fs::FileType as T;
        match self.kind() {
            T::RegularFile => "a regular file",
            T::Directory => "a directory",
            T::Symlink => "a symlink",
            T::Fifo => "a FIFO",
            T::Socket => "a socket",
            T::CharacterDevice | T::BlockDevice => "a device",
            T::Unknown => "of unknown type",
        }
    }
}

/// Raise this process's soft limit on open descriptors to its hard limit: descriptor-relative
/// walks hold one descriptor per level of a deep tree.
pub fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // `None` is "unlimited"; the kernel still caps descriptors (nr_open, 1 Mi by default).
    let want = limit.maximum.unwrap_or(1 << 20).min(1 << 20);
    if limit.current.is_some_and(|c| c < want) {
        let _ = setrlimit(
            Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(want),
                maximum: limit.maximum,
            },
        );
    }
}
