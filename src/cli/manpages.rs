//! `snapdrill manpages DIR` (hidden, for packagers): one man page per command, written from
//! the same clap definitions as `--help` — `snapdrill.1`, `snapdrill-backup.1`,
//! `snapdrill-keys-add.1`, ...

use std::path::Path;

use anyhow::{Context, Result};
use snapdrill::error::exit;

/// Write the pages of `cmd` and its subcommands into `dir` (created when missing).
pub(super) fn run(cmd: clap::Command, dir: &Path) -> Result<i32> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    clap_mangen::generate_to(cmd, dir)
        .with_context(|| format!("cannot write the man pages into {}", dir.display()))?;
    Ok(exit::OK)
}
