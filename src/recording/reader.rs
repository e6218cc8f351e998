//! Reading a recording back. (Stub: to be written.)

use super::{GpuPoll, Manifest, RecordingError, ScrapeMeta};
use crate::promtext::MetricType;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Index into `Recording::series`.
pub type SeriesId = u32;

/// One distinct series seen in the recording.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesInfo {
    /// Family name as declared by `# TYPE` (e.g. `vllm:num_preemptions_total`, or
    /// `vllm:num_preemptions` in OpenMetrics bodies).
    pub family: Arc<str>,
    /// The family's declared type.
    pub metric_type: MetricType,
    /// Full sample name (e.g. `vllm:e2e_request_latency_seconds_bucket`).
    pub name: Arc<str>,
    /// Canonical label string: `name="value"` pairs sorted by name, Prometheus-escaped, joined
    /// by `,`; `le` is left out of it (see `le`).
    pub labels: Arc<str>,
    /// The parsed `le` of a histogram bucket row.
    pub le: Option<f64>,
}

/// One stored sample of one scrape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoredSample {
    /// Which series.
    pub series: SeriesId,
    /// The value, bit for bit as parsed.
    pub value: f64,
    /// The exposition timestamp, when the body carried one.
    pub timestamp_ms: Option<i64>,
}

/// One scrape attempt and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Scrape {
    /// The attempt.
    pub meta: ScrapeMeta,
    /// Its samples, in series order of first appearance (empty for a failed attempt).
    pub samples: Vec<StoredSample>,
}

/// What the reader found in one file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// Bytes on disk.
    pub bytes: u64,
    /// Rows read from it.
    pub rows: u64,
    /// Why it could not be read (whole or in part), if so.
    pub problem: Option<String>,
}

/// A recording read back into memory.
#[derive(Debug, Clone)]
pub struct Recording {
    /// The directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Every distinct series.
    pub series: Vec<SeriesInfo>,
    /// Every scrape attempt, sorted by `seq`.
    pub scrapes: Vec<Scrape>,
    /// Every GPU poll, sorted by `(seq, gpu_index)`.
    pub gpu_polls: Vec<GpuPoll>,
    /// Every file found, readable or not.
    pub files: Vec<FileReport>,
}

/// Reads a whole recording. A damaged Parquet file is reported in `files` and skipped; only a
/// missing or unreadable manifest, or an unsupported format version, fails the whole read.
pub fn open(dir: &Path) -> Result<Recording, RecordingError> {
    let _ = dir;
    todo!()
}
