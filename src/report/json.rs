//! The report as JSON: serde_json's pretty printer plus a trailing newline. serde_json writes
//! each `f64` as its shortest round-tripping form, so identical values give identical bytes
//! and reading the file back gives the same `Report`.

use super::Report;

/// Renders a report as pretty JSON ending in a newline.
pub fn render_json(report: &Report) -> Result<String, serde_json::Error> {
    let mut s = serde_json::to_string_pretty(report)?;
    s.push('\n');
    Ok(s)
}
