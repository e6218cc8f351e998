//! Integration tests: one binary, modules per area.

mod record;
mod travel;
