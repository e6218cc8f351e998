//! Redaction: a copy of a recording that can be shared outside the team that made it, with
//! host names, IP addresses, ports, URLs, the served model's name, GPU UUIDs and serials,
//! and label values that name people or paths replaced by stable placeholders (`host-1`,
//! `url-1`, `model1-llama-3-1-70b`, `gpu-uuid-1`, `path-1`, `user-1`).
//!
//! Everything analysis reads is kept: numbers, timestamps, metric names, label names, GPU
//! model names (the catalog matches them) and the model-name tokens the catalog matches (see
//! [`rules::Redactor::model`]). The rewrite is column by column on the Parquet files, so the
//! segments, their row order and every number are exactly those of the original; only
//! string columns change. `docs/bundles-and-redaction.md` lists exactly what is replaced.

mod files;
pub mod rules;

pub use rules::{Keep, Redactor};

use crate::catalog::Catalog;
use crate::recording::{self, RecordingError};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What to keep, and the model-name vocabulary to preserve.
#[derive(Debug, Clone, Default)]
pub struct RedactConfig {
    /// Kinds of value kept verbatim.
    pub keep: Keep,
    /// Model-name tokens that survive redaction: the catalog's (see [`vocabulary`]).
    pub model_vocabulary: BTreeSet<String>,
}

impl RedactConfig {
    /// A config keeping `keep`, with the vocabulary of `catalog`.
    pub fn new(keep: Keep, catalog: &Catalog) -> RedactConfig {
        RedactConfig {
            keep,
            model_vocabulary: vocabulary(catalog),
        }
    }
}

/// Every token a catalog model entry matches on or excludes: the part of a model name that
/// analysis looks at.
pub fn vocabulary(catalog: &Catalog) -> BTreeSet<String> {
    catalog
        .models()
        .iter()
        .flat_map(|m| m.match_sets.iter().flatten().chain(m.exclude.iter()))
        .cloned()
        .collect()
}

/// Errors of a redaction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedactError {
    /// The source recording could not be read.
    #[error(transparent)]
    Recording(#[from] RecordingError),
    /// A file could not be written or read.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The output exists and is not empty.
    #[error("{0}: already exists and is not an empty directory; refusing to overwrite")]
    OutputExists(PathBuf),
}

/// What a redaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedactSummary {
    /// Files written (manifest and segments), by name.
    pub written: Vec<String>,
    /// Files of the source left out, with why (damaged, `.tmp` leftovers, other files).
    pub skipped: Vec<(String, String)>,
    /// Originals replaced, per kind (`model`, `host`, ...), counted once each.
    pub replaced: Vec<(String, usize)>,
}

/// Writes a redacted copy of the recording `src` into `out` (created; must be empty if it
/// exists). Reads the source once with the recording reader to register every label value
/// in a fixed order, then rewrites each readable file. A file the reader could not read is
/// left out (it cannot be checked for originals) and listed in `skipped`.
pub fn redact(src: &Path, out: &Path, config: &RedactConfig) -> Result<RedactSummary, RedactError> {
    let rec = recording::open(src)?;
    files::prepare_out(out)?;
    let mut r = Redactor::new(
        config.keep,
        config.model_vocabulary.clone(),
        rec.manifest.model_name.as_deref(),
    );
    // Fixed registration order: manifest, then label values in series order, so numbering
    // is reproducible.
    let manifest = files::redact_manifest(&rec.manifest, &mut r);
    for s in &rec.series {
        files::redact_labels(&s.labels, &mut r);
    }
    let mut summary = RedactSummary::default();
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    for e in std::fs::read_dir(src).map_err(|e| RedactError::File {
        path: src.to_path_buf(),
        message: e.to_string(),
    })? {
        let e = e.map_err(|e| RedactError::File {
            path: src.to_path_buf(),
            message: e.to_string(),
        })?;
        names.push((e.file_name().to_string_lossy().into_owned(), e.path()));
    }
    names.sort();
    let damaged: Vec<&Path> = rec
        .files
        .iter()
        .filter(|f| {
            f.problem
                .as_deref()
                .is_some_and(|p| !p.contains("found in no scrapes file"))
        })
        .map(|f| f.path.as_path())
        .collect();
    for (name, path) in names {
        if name == recording::schema::MANIFEST_FILE {
            continue;
        }
        let Some((table, _)) = recording::schema::Table::parse_file_name(&name) else {
            summary
                .skipped
                .push((name, "not a recording file".to_string()));
            continue;
        };
        if damaged.iter().any(|d| *d == path) {
            summary
                .skipped
                .push((name, "damaged: the reader could not read it".to_string()));
            continue;
        }
        files::redact_segment(&path, &out.join(&name), table, &mut r)?;
        summary.written.push(name);
    }
    files::write_manifest(out, &manifest)?;
    summary
        .written
        .insert(0, recording::schema::MANIFEST_FILE.to_string());
    summary.replaced = r.counts();
    Ok(summary)
}
