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
//! The rules' findings are not part of the report yet; they will arrive as a new optional
//! `diagnosis` section (see [`model`]'s header on why that breaks nothing).

mod build;
mod ceiling;
pub mod json;
pub mod model;
pub mod text;

pub use build::build;
pub use json::render_json;
pub use model::*;
pub use text::render_text;

#[cfg(test)]
mod tests;
