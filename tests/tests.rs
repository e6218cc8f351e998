//! Integration tests: one binary, modules per area.

mod analyze;
mod architecture;
mod compact;
mod compare;
mod diagnose;
mod faults;
mod fleet;
mod fleet_replay;
mod fuzz_corpus;
mod html;
mod import;
mod querying;
mod record;
mod support;
mod travel;
