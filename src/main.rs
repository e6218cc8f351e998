//! The `profile` binary: parse arguments, run, print errors. (Stub.)

fn main() {}
