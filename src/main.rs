//! The `profile` binary: parse arguments, hand them to the CLI layer, print any error with its
//! causes, and map it to an exit code.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`profile inspect rec | head`) is not a failure.
            if err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("profile: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// At most one glibc malloc arena per core. glibc gives each thread that finds the others'
/// arenas busy one of its own (up to 8 per core), and an arena keeps what was freed in it
/// for its own later use: the analysis's worker threads decode and place samples that the
/// main thread frees, so each arena ends up holding freed memory no other can reuse. On 2
/// cores, a compacted day peaked at 263 MB with the default and at 223 MB with 2 arenas, in
/// the same time (1 arena: 194 MB, but 1.2-1.7x slower); see docs/benchmarks.md.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt sets one of malloc's tuning parameters; it is called first thing in
    // main, before this process has started any other thread, and takes no pointer.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
