//! Integration tests: one binary, modules per area.

mod analyze;
mod record;
mod travel;
