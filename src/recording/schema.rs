//! Column definitions, file names and the format version. (Stub: to be written.)

/// Recording format version: `MAJOR.MINOR`. A reader accepts any minor of its major.
pub const FORMAT_VERSION: &str = "1.0";
/// The major version this build reads.
pub const FORMAT_MAJOR: u32 = 1;
/// The manifest's file name.
pub const MANIFEST_FILE: &str = "manifest.json";
