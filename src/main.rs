//! The `snapdrill` command: parse, run, map the outcome to an exit code.

mod cli;

fn main() {
    // Die quietly on a closed pipe (`snapdrill ls latest | head`), as Unix filters do,
    // instead of reporting a write error: Rust ignores SIGPIPE by default.
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is always valid.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(cli::main());
}
