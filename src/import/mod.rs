//! `profile import prometheus`: a time range of a vLLM server's series, read back from a
//! Prometheus server's HTTP API and written as a recording in this project's own format, so
//! that `profile analyze` diagnoses an incident from data the user already has.
//!
//! - **`query_range`, not `/federate` or remote read** (`docs/decisions.md`): it is the one
//!   call every compatible server answers (VictoriaMetrics, Thanos, Mimir), it returns each
//!   series on one grid of steps, which is what a scrape row per step needs, and it is JSON
//!   over ureq (remote read needs protobuf and snappy; `/federate` gives only the latest
//!   value). A plain selector returns the raw stored value at each step (counters as
//!   counters, buckets as buckets), never a rate.
//! - **One recording per instance.** A recording is one server; several instances matching
//!   the selector are refused with their list, and `--instance` picks one (see
//!   `docs/decisions.md`).
//! - **Chunks are segments.** The range is split so that no query returns more than 11,000
//!   points per series or [`MAX_POINTS_PER_QUERY`] points in all; each chunk is written as
//!   its own segment (files renamed into place when complete), so a failure mid-way leaves
//!   every chunk before it readable and the error names the range that is missing.
//! - **Data flows one way**: this module writes a recording and never calls analysis.
//!
//! Nothing here reads the environment or a clock: the CLI passes credentials and times in.

pub mod client;
pub mod dcgm;
pub mod families;
mod plan;
mod run;

pub use client::{HttpApi, PromApi};
pub use plan::{discover, Plan};
pub use run::{run, ImportSummary, Progress};

use crate::recording::{AnalysisInputs, RecordingError};
use crate::units::WallNs;
use std::path::PathBuf;
use std::time::Duration;

/// Prometheus's own cap on a `query_range` answer: "exceeded maximum resolution of 11,000
/// points per timeseries" (prometheus/web/api/v1/api.go, `queryRange`). A chunk asks for at
/// most this many steps, both ends included.
pub const MAX_POINTS_PER_SERIES: u64 = 11_000;

/// At most this many points (series x steps) per query. Ours: Prometheus refuses a query that
/// would load more than `--query.max-samples` (default 50,000,000) and Mimir/Thanos have
/// lower per-query limits; one million points is ~30-40 MB of JSON, which bounds the
/// importer's memory and keeps each answer well inside every default limit.
pub const MAX_POINTS_PER_QUERY: u64 = 1_000_000;

/// More series than this for one instance is refused. Ours: a vLLM server exposes ~425 series
/// (plus ~10 `process_*` and ~10 per GPU of DCGM); 50,000 means the selector matched far
/// more than one server, and one step of it is already 5% of a query's point budget.
pub const MAX_SERIES: usize = 50_000;

/// Default wait for one API answer. Prometheus gives up on a query after `--query.timeout`,
/// 2 minutes by default, so waiting longer gains nothing.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Default step, ms: Prometheus's own default scrape interval is 1 m, but 15 s is the most
/// common configured one (kube-prometheus, the Prometheus docs' example configuration).
pub const DEFAULT_STEP_MS: u64 = 15_000;

/// How to authenticate to the server. The CLI fills it from the environment.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// No `Authorization` header.
    #[default]
    None,
    /// `Authorization: Bearer TOKEN`.
    Bearer(String),
    /// HTTP basic authentication.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    /// Never prints a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer(_) => f.write_str("Bearer(..)"),
            Auth::Basic { user, .. } => write!(f, "Basic({user:?}, ..)"),
        }
    }
}

impl Auth {
    /// The `Authorization` header value, if any.
    pub fn header(&self) -> Option<String> {
        match self {
            Auth::None => None,
            Auth::Bearer(t) => Some(format!("Bearer {t}")),
            Auth::Basic { user, password } => Some(format!(
                "Basic {}",
                base64(format!("{user}:{password}").as_bytes())
            )),
        }
    }
}

/// Standard base64 with padding (RFC 4648 §4), for the basic-auth header.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What `profile import prometheus` was asked for, as plain values.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportConfig {
    /// The server's base URL (`http://host:9090`), no credentials in it.
    pub url: String,
    /// First step of the range.
    pub from: WallNs,
    /// End of the range (the last step is the last one at or before it).
    pub to: WallNs,
    /// Step, ms: one scrape row per step.
    pub step_ms: u64,
    /// Extra label matchers for the vLLM series, as a selector in braces (`{job="vllm"}`).
    pub selector: Option<String>,
    /// The `instance` to import when several match.
    pub instance: Option<String>,
    /// Label matchers in braces for the DCGM exporter's series, replacing the default match
    /// (same host, or same pod, as the vLLM instance).
    pub gpu_selector: Option<String>,
    /// The analysis inputs vLLM does not expose (`-m`, TP, dtype, cost), stored in the
    /// manifest as `profile record` stores them.
    pub analysis_inputs: AnalysisInputs,
    /// Points (series x steps) per query, at most [`MAX_POINTS_PER_QUERY`]; lower it for a
    /// server with a lower limit (and in tests, to get many chunks from a small server).
    pub max_points_per_query: u64,
}

/// Why a request to the server failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiFailure {
    /// No answer within the timeout.
    #[error("timed out after {secs:.0} s")]
    Timeout {
        /// The timeout, seconds.
        secs: f64,
    },
    /// An HTTP status other than 200, with Prometheus's own error text.
    #[error("HTTP {status}: {message}")]
    Status {
        /// The status code.
        status: u16,
        /// Prometheus's `errorType: error`, or the start of the body.
        message: String,
    },
    /// The answer exceeded the response cap.
    #[error("answer larger than {limit} bytes")]
    TooLarge {
        /// The cap, bytes.
        limit: u64,
    },
    /// A 200 that is not the API's JSON.
    #[error("bad answer: {0}")]
    BadResponse(String),
    /// Connection refused, DNS, TLS, reset.
    #[error("{0}")]
    Transport(String),
}

/// Errors of an import. Each names the server and what was asked of it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// A request failed.
    #[error("{url}: query {query}: {failure}")]
    Api {
        /// The endpoint's URL.
        url: String,
        /// The PromQL query or selector sent.
        query: String,
        /// What went wrong.
        failure: ApiFailure,
    },
    /// Nothing matched.
    #[error("{url}: no series match {selector} between {from} and {to}")]
    NoSeries {
        /// The server.
        url: String,
        /// The selector.
        selector: String,
        /// Range start, RFC 3339.
        from: String,
        /// Range end, RFC 3339.
        to: String,
    },
    /// Too many series for one server.
    #[error(
        "{url}: {selector} matches {count} series, more than {max} for one server; narrow it \
         with --match"
    )]
    TooManySeries {
        /// The server.
        url: String,
        /// The selector.
        selector: String,
        /// Series found.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// Several instances match and none was picked.
    #[error(
        "{url}: {selector} matches {} instances; a recording is one server, pick one with \
         --instance: {}", instances.len(), instances.join(", ")
    )]
    SeveralInstances {
        /// The server.
        url: String,
        /// The selector.
        selector: String,
        /// `instance (job J, N series)` of each.
        instances: Vec<String>,
    },
    /// `--instance` names none of the matching instances.
    #[error("{url}: no instance {instance:?} among those {selector} matches: {}", found.join(", "))]
    NoSuchInstance {
        /// The server.
        url: String,
        /// The selector.
        selector: String,
        /// The instance asked for.
        instance: String,
        /// The instances found.
        found: Vec<String>,
    },
    /// A `--match`/`--gpu-match` that is not a selector in braces.
    #[error("{flag} {given:?}: expected label matchers in braces, e.g. {{job=\"vllm\"}}")]
    BadSelector {
        /// The flag.
        flag: &'static str,
        /// What was given.
        given: String,
    },
    /// The range or step cannot be imported.
    #[error("bad range: {0}")]
    BadRange(String),
    /// The output directory already holds a recording.
    #[error("{0}: already holds a recording; importing into it would mix two sources")]
    OutputExists(PathBuf),
    /// Writing the recording failed.
    #[error(transparent)]
    Recording(#[from] RecordingError),
    /// The import stopped mid-way: what was written is readable, this range is missing.
    #[error(
        "{dir}: {done}; not imported: {missing_from} to {missing_to} (import that range again \
         into another directory)",
        dir = dir.display()
    )]
    Incomplete {
        /// The recording written so far.
        dir: PathBuf,
        /// What was imported, in words.
        done: String,
        /// First missing step, RFC 3339.
        missing_from: String,
        /// End of the range, RFC 3339.
        missing_to: String,
        /// Why it stopped.
        #[source]
        cause: Box<ImportError>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_header_is_rfc_base64() {
        let a = Auth::Basic {
            user: "Aladdin".into(),
            password: "open sesame".into(),
        };
        assert_eq!(
            a.header().as_deref(),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(format!("{a:?}"), "Basic(\"Aladdin\", ..)");
        assert_eq!(
            Auth::Bearer("s3cret".into()).header().as_deref(),
            Some("Bearer s3cret")
        );
        assert!(!format!("{:?}", Auth::Bearer("s3cret".into())).contains("s3cret"));
    }
}

#[cfg(test)]
mod fake_tests;
