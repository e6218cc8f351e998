//! Prometheus text exposition (format 0.0.4) and OpenMetrics 1.0 text, parsed into metric
//! families. Generic: nothing here knows vLLM's metric names.
//!
//! Suffixes (`_bucket`, `_sum`, `_count`, `_created`, `_total`, ...) are resolved against the
//! family declared by `# TYPE`, never guessed from the name alone: vLLM's
//! `vllm:iteration_tokens_total` is a histogram, and its `_created` companions are declared as
//! gauges of their own.

mod parse;

pub use parse::parse;

use std::borrow::Cow;

/// The declared type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MetricType {
    /// `counter`
    Counter,
    /// `gauge`
    Gauge,
    /// `histogram`
    Histogram,
    /// `gaugehistogram` (OpenMetrics)
    GaugeHistogram,
    /// `summary`
    Summary,
    /// `info` (OpenMetrics)
    Info,
    /// `stateset` (OpenMetrics)
    StateSet,
    /// `untyped` (0.0.4), `unknown` (OpenMetrics), or no `# TYPE` line at all.
    Unknown,
}

impl MetricType {
    /// The name as written in a `# TYPE` line of format 0.0.4 (`unknown` is written `untyped`).
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "untyped",
        }
    }

    /// Parses a `# TYPE` keyword; `None` for an unknown keyword.
    pub fn from_keyword(s: &str) -> Option<MetricType> {
        Some(match s {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::StateSet,
            "untyped" | "unknown" => MetricType::Unknown,
            _ => return None,
        })
    }
}

/// Which of the exposition formats a body was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Text004,
    /// OpenMetrics 1.0 text (ends with `# EOF`).
    OpenMetrics,
}

/// What a sample name adds to its family name, as resolved by the family's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Suffix {
    /// The sample name equals the family name.
    None,
    /// `_total` (an OpenMetrics counter whose family is declared without it).
    Total,
    /// `_bucket`
    Bucket,
    /// `_sum`
    Sum,
    /// `_count`
    Count,
    /// `_created`
    Created,
    /// `_gcount` (gauge histogram)
    Gcount,
    /// `_gsum` (gauge histogram)
    Gsum,
    /// `_info` (OpenMetrics info)
    Info,
}

/// One `name="value"` pair. The value is unescaped (`\\`, `\"`, `\n` resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label<'a> {
    /// Label name.
    pub name: &'a str,
    /// Label value, unescaped; borrowed when it held no escapes.
    pub value: Cow<'a, str>,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The full sample name as written, e.g. `vllm:e2e_request_latency_seconds_bucket`.
    pub name: &'a str,
    /// What the name adds to the family name.
    pub suffix: Suffix,
    /// Labels in the order written, `le` and `quantile` included.
    pub labels: Vec<Label<'a>>,
    /// The value; `NaN`, `+Inf` and `-Inf` are kept as such.
    pub value: f64,
    /// The optional sample timestamp, in milliseconds (OpenMetrics seconds are converted).
    pub timestamp_ms: Option<i64>,
}

/// A metric family: the samples that share one `# TYPE` declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct Family<'a> {
    /// The family name as declared (or the sample name when nothing declared it).
    pub name: &'a str,
    /// The declared type; `Unknown` when undeclared.
    pub metric_type: MetricType,
    /// The `# HELP` text, unescaped, if any.
    pub help: Option<Cow<'a, str>>,
    /// Samples in the order they appeared.
    pub samples: Vec<Sample<'a>>,
}

/// A parsed body.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposition<'a> {
    /// Which format the body was in.
    pub format: Format,
    /// Families in the order they first appeared.
    pub families: Vec<Family<'a>>,
}

impl Exposition<'_> {
    /// Number of samples across all families.
    pub fn sample_count(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }
}

/// A line that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub kind: ParseErrorKind,
}

/// What was wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A metric or label name that is empty or has a character names may not contain.
    #[error("invalid name {0:?}")]
    InvalidName(String),
    /// A label set that is not `{name="value",...}`.
    #[error("malformed labels: {0}")]
    MalformedLabels(String),
    /// A value that is not a float.
    #[error("invalid value {0:?}")]
    InvalidValue(String),
    /// A timestamp that is not an integer (or, in OpenMetrics, a float).
    #[error("invalid timestamp {0:?}")]
    InvalidTimestamp(String),
    /// A `# TYPE` line with an unknown type or missing parts.
    #[error("malformed TYPE line: {0}")]
    MalformedType(String),
    /// A second `# TYPE` for a family already declared.
    #[error("duplicate TYPE for {0:?}")]
    DuplicateType(String),
    /// Text after `# EOF`.
    #[error("content after # EOF")]
    AfterEof,
    /// The body is not UTF-8 (reported by callers that hold bytes).
    #[error("body is not valid UTF-8")]
    NotUtf8,
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}
