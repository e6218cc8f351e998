//! Integration tests: one binary, modules per area.

mod analyze;
mod architecture;
mod compare;
mod diagnose;
mod faults;
mod fleet;
mod html;
mod import;
mod querying;
mod record;
mod support;
mod travel;
