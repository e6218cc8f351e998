//! The three fuzz harnesses, shared by the fuzz targets (`fuzz/`) and the corpus replay test
//! (`tests/fuzz_corpus.rs`), so that both run exactly the same code. Not part of the API.
//!
//! Each harness takes arbitrary bytes and must return without panicking, whatever they are:
//! an error is a fine answer, a panic (or an abort, or a hang) is a bug. See docs/fuzzing.md.

use crate::bundle::ScratchDir;
use crate::catalog::Catalog;
use crate::recording::schema::MANIFEST_FILE;
use std::path::Path;
use std::sync::OnceLock;

/// The file names a recording-harness entry can be written under (its first byte, modulo the
/// length, picks one): the manifest, the three tables, and a temporary file left by an
/// interrupted write.
pub const RECORDING_NAMES: [&str; 8] = [
    MANIFEST_FILE,
    "scrapes-000000.parquet",
    "scrapes-000001.parquet",
    "samples-000000.parquet",
    "samples-000001.parquet",
    "samples-000002.parquet",
    "gpu-000000.parquet",
    ".samples-000003.parquet.tmp",
];

/// Splits a recording-harness input into `(file name, contents)` pairs. The input is a
/// sequence of entries, each `name: u8, len: u32 little-endian, bytes[len]`; a length past
/// the end takes what is left, and a short header ends the input. A later entry with the
/// same name replaces the earlier one.
pub fn split_recording_input(data: &[u8]) -> Vec<(&'static str, &[u8])> {
    let mut out: Vec<(&'static str, &[u8])> = Vec::new();
    let mut rest = data;
    while rest.len() >= 5 {
        let name = RECORDING_NAMES[usize::from(rest[0]) % RECORDING_NAMES.len()];
        let len = u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        rest = &rest[5..];
        let len = len.min(rest.len());
        let (body, tail) = rest.split_at(len);
        rest = tail;
        out.retain(|(n, _)| *n != name);
        out.push((name, body));
    }
    out
}

/// Builds a recording-harness input from `(name index, contents)` pairs: the inverse of
/// [`split_recording_input`], used to seed the corpus from real recordings.
pub fn join_recording_input(entries: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, body) in entries {
        out.push(*name);
        out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(body);
    }
    out
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::embedded().expect("the embedded catalog parses"))
}

/// Harness (a): the Prometheus text parser on any bytes read as UTF-8 (lossily, as the
/// recorder does with a scraped body), then the vLLM mapping of what it parsed. Returns
/// whether the body parsed.
pub fn promtext(data: &[u8]) -> bool {
    let body = String::from_utf8_lossy(data);
    match crate::promtext::parse(&body) {
        Ok(parsed) => {
            let _ = format!("{parsed:?}");
            true
        }
        Err(_) => false,
    }
}

/// Harness (b): writes the files [`split_recording_input`] finds into a scratch directory,
/// reads it as a recording, and runs `inspect` and `analyze` (and the text and JSON
/// renderers) on whatever was read. Returns whether the recording was read.
pub fn recording(data: &[u8]) -> bool {
    let Ok(dir) = ScratchDir::new("fuzz-rec") else {
        return false;
    };
    for (name, body) in split_recording_input(data) {
        if std::fs::write(dir.path().join(name), body).is_err() {
            return false;
        }
    }
    read_and_analyze(dir.path())
}

/// Reads a recording directory (or bundle) and runs everything downstream of the reader;
/// whether it was read.
fn read_and_analyze(path: &Path) -> bool {
    let Ok(rec) = crate::bundle::open_any(path) else {
        return false;
    };
    let _ = crate::inspect::inspect(&rec, "fuzz");
    for verbose in [false, true] {
        let config = crate::analyze::AnalyzeConfig {
            recording_label: Some("fuzz".to_string()),
            verbose,
            ..Default::default()
        };
        if let Ok(report) = crate::analyze::analyze(&rec, catalog(), &config) {
            let _ = crate::report::render_text_with(
                &report,
                crate::report::TextOptions {
                    color: false,
                    verbose,
                },
            );
            let _ = crate::report::render_json(&report);
        }
    }
    true
}

/// Harness (c): the bytes as a bundle file: `verify`, `unbundle`, `salvage`, and reading
/// (and analysing) both the bundle itself and what salvage recovered. Returns whether the
/// bundle itself was read as a recording.
pub fn bundle(data: &[u8]) -> bool {
    let Ok(dir) = ScratchDir::new("fuzz-bundle") else {
        return false;
    };
    let file = dir.path().join("input.profile");
    if std::fs::write(&file, data).is_err() {
        return false;
    }
    let _ = crate::bundle::is_bundle(&file);
    let _ = crate::bundle::verify(&file);
    let _ = crate::bundle::unbundle(&file, &dir.path().join("unbundled"));
    let salvaged = dir.path().join("salvaged");
    if crate::bundle::salvage(&file, &salvaged).is_ok() {
        read_and_analyze(&salvaged);
    }
    read_and_analyze(&file)
}
