//! The analysis report: a serializable snapshot of what a recording says about a vLLM server,
//! built by a pure function and formatted by renderers that only format.
//!
//! - [`model`]: the [`Report`] type and its sections, `Serialize + Deserialize`, versioned by
//!   [`SCHEMA_VERSION`]. Floats are stored unrounded; only renderers round.
//! - [`build`]: recording + windows + aggregate + catalog + config -> report. Pure (no clock,
//!   environment or `HashMap` iteration), so the same inputs give byte-identical output.
//! - [`text`]: comfy-table tables; every catalog-derived figure marked `(est)`, every missing
//!   value `-`, and the `unavailable` list with reasons at the end.
//! - [`json`]: pretty JSON with a trailing newline.
//!
//! - `diagnose`: the rules' inputs taken from the report's resolved sections, then
//!   [`crate::rules::diagnose`]; the result is the report's `diagnosis` section.
//! - `diagnosis_text`: the text renderer's diagnosis section (root-cause groups, fixes, and
//!   with `verbose` the findings below the gate and why each silent rule stayed silent).

mod build;
mod ceiling;
mod diagnose;
mod diagnosis_text;
pub mod json;
pub mod model;
pub mod text;

pub use build::build;
pub use json::render_json;
pub use model::*;
pub use text::{render_text, render_text_with, TextOptions};

#[cfg(test)]
mod tests;
