//! The analysis report: a serializable model of what a recording says about a vLLM server,
//! and the renderers that format it. Nothing here computes: the report is built by
//! [`crate::analyze`], and this module imports types only, never a stage's function (a test
//! reads every `use crate::` line under `src/report/` and fails otherwise).
//!
//! - [`model`]: the [`Report`] type and its sections, `Serialize + Deserialize`, versioned by
//!   [`SCHEMA_VERSION`]. Floats are stored unrounded; only renderers round.
//! - [`render`]: the one interface every renderer implements ([`Render`]), and the
//!   renderers' errors.
//! - [`mod@format`]: number and unit formatting, shared by every text renderer (compare's too).
//! - [`text`]: comfy-table tables; every catalog-derived figure marked `(est)`, every missing
//!   value `-`, and the `unavailable` list with reasons at the end.
//! - [`html`]: one self-contained HTML file (uPlot timelines, embedded; no request leaves it).
//! - [`json`]: pretty JSON with a trailing newline, for any serializable document.
//! - `diagnosis_text`: the text renderer's diagnosis section (root-cause groups, fixes, and
//!   with `verbose` the findings below the gate and why each silent rule stayed silent).

mod diagnosis_text;
pub mod fleet;
pub mod format;
pub mod html;
pub mod json;
pub mod model;
pub mod render;
pub mod slo_text;
pub mod text;

pub use html::Html;
pub use json::{render_json, Json};
pub use model::*;
pub use render::{Render, RenderError};
pub use slo_text::render_slo;
pub use text::{render_text, render_text_with, Text, TextOptions};
