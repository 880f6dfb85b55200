//! `report --pdf`: the HTML report printed to an A4 PDF by a headless Chromium
//! (`--print-to-pdf`), through the page's own print stylesheet. snapdrill bundles no
//! browser: without one, the error says how to get one (the HTML report needs none).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// The environment variable naming the Chromium to use.
pub const CHROMIUM_ENV: &str = "SNAPDRILL_CHROMIUM";

/// Names looked for on `PATH`, in order.
const NAMES: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// The Chromium to print with: `$SNAPDRILL_CHROMIUM`, else the first of `chromium`,
/// `chromium-browser`, `google-chrome`, `google-chrome-stable` on `PATH`.
pub fn find_chromium() -> Result<PathBuf> {
    if let Some(given) = std::env::var_os(CHROMIUM_ENV).filter(|v| !v.is_empty()) {
        let given = PathBuf::from(given);
        return if given.is_file() {
            Ok(given)
        } else {
            Err(Error::fatal(format!(
                "{CHROMIUM_ENV} names {}, which is not a file: set it to a Chromium or Chrome executable",
                given.display()
            )))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|dir| NAMES.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::fatal(format!(
                "no headless Chromium to print the PDF with: none of {} is on PATH; install one \
                 (Debian: apt-get install chromium) or set {CHROMIUM_ENV} to its path — \
                 or write --html and print it from any browser",
                NAMES.join(", ")
            ))
        })
}

/// Print `html` to the PDF file `out`.
pub fn print(html: &str, out: &Path) -> Result<()> {
    let chromium = find_chromium()?;
    let room = crate::localfs::scratch::Scratch::create("snapdrill-pdf-", "report")
        .map_err(|e| Error::io("creating a folder for", std::env::temp_dir(), e))?;
    let page = room.path().join("report.html");
    std::fs::write(&page, html).map_err(|e| Error::io("writing", &page, e))?;
    let printed = room.path().join("report.pdf");
    let mut cmd = Command::new(&chromium);
    cmd.args([
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-pdf-header-footer",
    ]);
    // Chromium refuses to run as root with its sandbox.
    if rustix::process::geteuid().is_root() {
        cmd.arg("--no-sandbox");
    }
    let result = cmd
        .arg(format!(
            "--user-data-dir={}",
            room.path().join("profile").display()
        ))
        .arg(format!("--print-to-pdf={}", printed.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    let pdf = std::fs::read(&printed).unwrap_or_default();
    let _ = room.remove();
    let output = result.map_err(|e| Error::io("running", &chromium, e))?;
    if !output.status.success() || !pdf.starts_with(b"%PDF") {
        return Err(Error::fatal(format!(
            "{} did not print {}: {}",
            chromium.display(),
            out.display(),
            crate::text::escape(String::from_utf8_lossy(&output.stderr).trim())
        )));
    }
    crate::localfs::atomic::write(out, &pdf, crate::localfs::atomic::NewMode::Shared, false)
        .map_err(|e| Error::io("writing", out, e))
}
