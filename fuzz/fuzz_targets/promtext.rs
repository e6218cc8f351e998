//! Fuzz target: `profile::fuzz_support::promtext` (see docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(
    // libfuzzer-sys installs a panic hook that aborts on every panic, even one the library
    // catches on purpose (the recording reader turns a Parquet decoder panic into a damaged
    // file). Put the default hook back: a panic that escapes the harness still aborts (in
    // libfuzzer-sys's own catch_unwind) and is reported as a crash.
    init: drop(std::panic::take_hook()),
    |data: &[u8]| {
        let _ = profile::fuzz_support::promtext(data);
    }
);
