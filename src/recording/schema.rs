//! Column definitions, file names and the format version. (Stub: to be written.)

/// Recording format version: `MAJOR.MINOR`. A reader accepts any minor of its major.
pub const FORMAT_VERSION: &str = "1.0";
/// The major version this build reads.
pub const FORMAT_MAJOR: u32 = 1;
/// The manifest's file name.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Splits a canonical label string back into pairs. (Stub: to be written with the format.)
pub fn parse_canonical_labels(s: &str) -> Result<Vec<(String, String)>, String> {
    let _ = s;
    Err("not written yet".into())
}
