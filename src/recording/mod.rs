//! Recording format v1: a directory holding `manifest.json` and rotated, zstd-compressed
//! Parquet files of raw scrapes, samples, GPU polls and (with `record --pid`) host process readings. This module alone writes and reads it;
//! `docs/recording-format.md` documents it.

pub mod checksum;
pub mod compact;
pub mod manifest;
pub mod reader;
pub mod schema;
pub mod writer;

pub mod fleet;
pub use manifest::{AnalysisInputs, FleetTarget, HostTarget, ImportSource, Manifest, Sourced};
pub use reader::{
    open, open_deferred, open_deferred_progress, open_filtered, open_filtered_progress, Deferred,
    FileReport, ReadProgress, Recording, Scrape, SeriesInfo, StoredSample,
};
pub use writer::{GpuWriter, HostWriter, ScrapeWriter, WrittenFile};

use crate::gpu::GpuMetrics;
use crate::units::{MonoNs, WallNs};
use std::path::PathBuf;

/// How a scrape attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScrapeStatus {
    /// HTTP 200 and a body that parsed.
    Ok,
    /// The connection was refused or reset, or DNS failed.
    Connect,
    /// No complete answer within the timeout.
    Timeout,
    /// An HTTP status other than 200.
    HttpStatus,
    /// The body exceeded the size cap.
    Oversize,
    /// The body did not parse as Prometheus text.
    Parse,
    /// HTTP 200 with a body that parsed but held no sample at all (an empty body, or only
    /// comments): nothing was measured, so it is a failure, not a good scrape of zero samples.
    /// New in format 1.1.
    Empty,
    /// Any other failure.
    Other,
}

impl ScrapeStatus {
    /// The name stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            ScrapeStatus::Ok => "ok",
            ScrapeStatus::Connect => "connect",
            ScrapeStatus::Timeout => "timeout",
            ScrapeStatus::HttpStatus => "http_status",
            ScrapeStatus::Oversize => "oversize",
            ScrapeStatus::Parse => "parse",
            ScrapeStatus::Empty => "empty",
            ScrapeStatus::Other => "other",
        }
    }

    /// Parses a stored `status` value.
    pub fn from_name(s: &str) -> Option<ScrapeStatus> {
        Some(match s {
            "ok" => ScrapeStatus::Ok,
            "connect" => ScrapeStatus::Connect,
            "timeout" => ScrapeStatus::Timeout,
            "http_status" => ScrapeStatus::HttpStatus,
            "oversize" => ScrapeStatus::Oversize,
            "parse" => ScrapeStatus::Parse,
            "empty" => ScrapeStatus::Empty,
            "other" => ScrapeStatus::Other,
            _ => return None,
        })
    }
}

/// One scrape attempt, successful or not: one row of `scrapes-*.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeMeta {
    /// Attempt number, from 0, in schedule order (a skipped tick leaves a gap).
    pub seq: u64,
    /// Wall clock when the request was sent.
    pub requested_at: WallNs,
    /// Wall clock when the answer was complete (or the attempt failed).
    pub completed_at: WallNs,
    /// Monotonic offset when the request was sent.
    pub requested_mono: MonoNs,
    /// Monotonic offset when the attempt completed: the sample's timestamp.
    pub completed_mono: MonoNs,
    /// Outcome.
    pub status: ScrapeStatus,
    /// HTTP status code, when a response arrived.
    pub http_status: Option<u16>,
    /// The error text, for a failed attempt.
    pub error: Option<String>,
    /// Body size, when a body was read.
    pub body_bytes: Option<u64>,
    /// Number of samples stored for this scrape (`None` when the body was not parsed).
    pub sample_count: Option<u64>,
}

/// One poll of one GPU: one row of `gpu-*.parquet`.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuPoll {
    /// Poll number, from 0, in schedule order.
    pub seq: u64,
    /// NVML device index.
    pub gpu_index: u32,
    /// Wall clock when the poll of this device began.
    pub requested_at: WallNs,
    /// Wall clock when the poll of this device completed.
    pub completed_at: WallNs,
    /// Monotonic offset when the poll began.
    pub requested_mono: MonoNs,
    /// Monotonic offset when the poll completed: the sample's timestamp.
    pub completed_mono: MonoNs,
    /// The readings.
    pub metrics: GpuMetrics,
}

/// How one reading of one sampled process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostStatus {
    /// Read in full.
    Ok,
    /// The process is gone (or a zombie): the row marks when the recorder saw it exit.
    Exited,
    /// `/proc` could not be read (see `error`).
    Error,
}

impl HostStatus {
    /// The name stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::Ok => "ok",
            HostStatus::Exited => "exited",
            HostStatus::Error => "error",
        }
    }

    /// Parses a stored `status` value.
    pub fn from_name(s: &str) -> Option<HostStatus> {
        Some(match s {
            "ok" => HostStatus::Ok,
            "exited" => HostStatus::Exited,
            "error" => HostStatus::Error,
            _ => return None,
        })
    }
}

/// One reading of one sampled process: one row of `host-*.parquet` (format 1.4). The target
/// PID is `manifest.host.pid`; every other PID of a tick is a process below it (its `ppid`
/// says where in the tree).
#[derive(Debug, Clone, PartialEq)]
pub struct HostSample {
    /// Tick number, from 0, in schedule order (shared by the rows of one tick).
    pub seq: u64,
    /// Wall clock when the tick's reading began.
    pub requested_at: WallNs,
    /// Wall clock when this process was read.
    pub completed_at: WallNs,
    /// Monotonic offset when the tick's reading began.
    pub requested_mono: MonoNs,
    /// Monotonic offset when this process was read: the sample's timestamp.
    pub completed_mono: MonoNs,
    /// The process.
    pub pid: u32,
    /// How the reading ended.
    pub status: HostStatus,
    /// The error text of an `error` row.
    pub error: Option<String>,
    /// The raw readings; `None` for an `exited` or `error` row.
    pub reading: Option<crate::host::ProcReading>,
}

/// Errors reading or writing a recording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordingError {
    /// A filesystem operation failed.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause. Shown in the message and deliberately not returned as `source()`, so
        /// that an error chain printed with `{:#}` names the OS error once.
        error: std::io::Error,
    },
    /// A Parquet file could not be written or read.
    #[error("{path}: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// `manifest.json` is missing or malformed.
    #[error("{path}: bad manifest: {message}")]
    Manifest {
        /// The manifest's path.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// The recording was written by an incompatible format version.
    #[error("{path}: recording format {found} is not supported (this build reads {supported}.x)")]
    UnsupportedVersion {
        /// The file that declared it.
        path: PathBuf,
        /// The version found.
        found: String,
        /// The major version this build reads.
        supported: u32,
    },
    /// The path is not a recording directory.
    #[error("{0}: not a recording (no manifest.json and no recording files)")]
    NotARecording(PathBuf),
}
