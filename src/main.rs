//! The `snapdrill` command: parse, run, map the outcome to an exit code.

mod cli;

fn main() {
    // Die quietly on a closed pipe (`snapdrill ls latest | head`), as Unix filters do,
    // instead of reporting a write error: Rust ignores SIGPIPE by default.
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is always valid.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Chunk buffers (0.5-8 MiB) are allocated and freed by many threads. With glibc's
    // dynamic mmap threshold they end up in per-thread arenas that never shrink, and peak
    // RSS grows with the number of stores. A fixed threshold returns them to the kernel.
    // Measured with `make bench`: 3 local stores, 300 MB: 193 -> 88 MiB peak RSS.
    // The threshold is 1 MiB, below the average chunk (2 MiB), so that nearly every chunk
    // buffer is mapped and unmapped on its own: with 4 MiB, the chunks under it were kept in
    // the arenas, and the peak of a long stream wandered with how they happened to
    // fragment (2 GB file: backup 66-73 MiB, dump 63-65; with 1 MiB 56-57 and 53-56). The
    // price is a page fault per page of each chunk: +4 % backup, +7 % dump to /dev/null
    // (CPU-bound; none measurable on a restore to disk). A chunk buffer of 64 KiB or more under
    // the threshold (a small chunk, most compressed ones) asks for the threshold's capacity,
    // so it too is mapped on its own (snapdrill::memory::chunk_buffer).
    // Each thread that allocates under contention gets an arena of its own (up to 8 per
    // core), and an arena keeps what was freed in it: `audit --deep` over a year of
    // nightlies, one restore engine per snapshot, peaked at 267 MiB with the default and
    // 143 MiB with one arena per core (`make bench`, history suite).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let arenas = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
        // SAFETY: mallopt only tunes the allocator; called before any thread exists.
        unsafe {
            libc::mallopt(
                libc::M_MMAP_THRESHOLD,
                snapdrill::memory::MAPPED as libc::c_int,
            );
            libc::mallopt(libc::M_ARENA_MAX, arenas as libc::c_int);
        }
        // Long streams return freed chunk buffers to the kernel now and then
        // (snapdrill::memory), so RSS creeps up less over a 20 GB file.
        snapdrill::memory::set_release(|| {
            // SAFETY: malloc_trim only releases memory that is free, under the arenas' locks.
            unsafe {
                libc::malloc_trim(0);
            }
        });
    }
    std::process::exit(cli::main());
}
