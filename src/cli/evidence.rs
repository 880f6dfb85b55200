//! `snapdrill evidence`: write an evidence pack; `snapdrill evidence verify DIR`: check one.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use snapdrill::error::exit;
use snapdrill::{evidence, report};

use super::{Global, common, output};

/// Arguments of `evidence`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(super) struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// The window: drills and audits started this long ago or later.
    #[arg(long, value_name = "DURATION", default_value = "90d", value_parser = humantime::parse_duration)]
    since: Duration,
    /// The pack's folder (new or empty).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Language of the report's labels: en or ja (default: [report] lang).
    #[arg(long, value_name = "LANG", value_parser = report::Lang::parse)]
    lang: Option<report::Lang>,
    /// Identity file (default: $SNAPDRILL_IDENTITY, then the config's).
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Check a pack: every file against SHA256SUMS, every record against the repository's
    /// authenticated copy.
    Verify {
        /// The pack's folder.
        dir: PathBuf,
        /// Identity file (default: $SNAPDRILL_IDENTITY, then the config's).
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
    },
}

pub(super) async fn run(global: &Global, args: Args) -> Result<i32> {
    let config = common::load_config(global)?;
    if let Some(Command::Verify { dir, identity }) = args.command {
        let identities = common::load_identity(&config, identity)?;
        let (checked, problems) = evidence::verify(&config, identities, &dir).await?;
        for p in &problems {
            eprintln!("snapdrill: {}", snapdrill::text::escape(p));
        }
        let (code, text) = match problems.len() {
            0 => (
                exit::OK,
                format!(
                    "evidence OK: every file matches {}, {checked} records match the repository's\n",
                    evidence::SUMS
                ),
            ),
            n => (
                exit::INTEGRITY,
                format!("evidence NOT OK: {n} problems (above)\n"),
            ),
        };
        output::result(&text, code, global.quiet);
        return Ok(code);
    }
    let Some(out) = args.out else {
        return Err(snapdrill::Error::Usage(
            "say where to write the pack: --out DIR (or check one: evidence verify DIR)".into(),
        )
        .into());
    };
    let identities = common::load_identity(&config, args.identity)?;
    let opts = super::drill::report_options(&config, args.lang);
    let pack = evidence::write(&config, identities, args.since, &out, opts).await?;
    output::warnings(
        pack.untrusted
            .iter()
            .map(|u| format!("warning: record {u} (left out of the pack)"))
            .collect(),
        global.quiet,
    );
    if let Some(why) = &pack.pdf_skipped {
        let note = format!("note: no PDF in the pack: {}", snapdrill::text::escape(why));
        output::warnings(vec![note], global.quiet);
    }
    let text = format!(
        "wrote {}: {} drill records, {} audit records, {} files listed in {}\n",
        out.display(),
        pack.drills,
        pack.audits,
        pack.files.len() - 1,
        evidence::SUMS
    );
    output::result(&text, exit::OK, global.quiet);
    Ok(exit::OK)
}
