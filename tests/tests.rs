//! Integration tests: one binary, modules per area.

mod analyze;
mod compare;
mod diagnose;
mod record;
mod travel;
