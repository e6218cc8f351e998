//! Fuzz target: `profile::fuzz_support::recording` (see docs/fuzzing.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = profile::fuzz_support::recording(data);
});
