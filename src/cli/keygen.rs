//! `snapdrill keygen -o FILE`

use std::path::PathBuf;

use anyhow::Result;
use snapdrill::error::exit;

use super::Global;

/// Arguments of `keygen`.
#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Where to write the identity (mode 0600; an existing file is never overwritten).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
}

pub(super) fn run(global: &Global, args: Args) -> Result<i32> {
    let recipient = snapdrill::keys::keygen(&args.output)?;
    if !global.quiet {
        eprintln!(
            "wrote the identity {} (keep it off the backup host, with a copy in your recovery kit)",
            args.output.display()
        );
        eprintln!("add its recipient to [repository] recipients in snapdrill.toml:");
    }
    println!("{recipient}");
    Ok(exit::OK)
}
