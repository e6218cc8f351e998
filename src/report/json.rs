//! Documents as JSON: serde_json's pretty printer plus a trailing newline. serde_json writes
//! each `f64` as its shortest round-tripping form, so identical values give identical bytes
//! and reading the file back gives the same typed document.

use super::render::{Render, RenderError};
use super::Report;
use serde::Serialize;

/// The JSON renderer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl<D: Serialize + ?Sized> Render<D> for Json {
    fn render(&self, doc: &D) -> Result<String, RenderError> {
        let mut s = serde_json::to_string_pretty(doc)?;
        s.push('\n');
        Ok(s)
    }
}

/// Renders a report as pretty JSON ending in a newline.
pub fn render_json(report: &Report) -> Result<String, RenderError> {
    Json.render(report)
}
