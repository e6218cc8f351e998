//! The recording format's single source of truth: the format version, file names, the Arrow
//! schema of each table, the Parquet writer settings, and the mapping from a parsed scrape body
//! to the sample rows that are stored. The writer and the reader both go through this module, so
//! the two can never disagree about a column; `docs/recording-format.md` describes the result.

use super::ScrapeMeta;
use crate::promtext::{Exposition, Family, MetricType, Sample, Suffix};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::sync::Arc;

/// Recording format version: `MAJOR.MINOR`. A reader accepts any minor of its major.
pub const FORMAT_VERSION: &str = "1.6";
/// The major version this build reads.
pub const FORMAT_MAJOR: u32 = 1;
/// The manifest's file name.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Parquet key-value metadata key holding [`FORMAT_VERSION`] in every data file.
pub const VERSION_KEY: &str = "profile.format_version";
/// Parquet key-value metadata key naming the table a file holds (`scrapes`, `samples`, `gpu`).
pub const TABLE_KEY: &str = "profile.table";

/// zstd level for every file. Measured on synthetic 4 Hz recordings (the writer's
/// `size_report` test, numbers in docs/recording-format.md): level 6 is 5-7% smaller than
/// level 3 at the same rotation cost within noise (~30 ms per one-minute segment), while 9 and
/// above gain under 1% more and 19 costs ~5x the CPU.
pub const ZSTD_LEVEL: i32 = 6;

/// The tables of a recording, one file kind each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// `scrapes-NNNNNN.parquet`: one row per scrape attempt.
    Scrapes,
    /// `samples-NNNNNN.parquet`: one row per stored sample.
    Samples,
    /// `gpu-NNNNNN.parquet`: one row per GPU per poll.
    Gpu,
    /// `host-NNNNNN.parquet`: one row per sampled process per tick (`record --pid`). New in
    /// format 1.4.
    Host,
}

impl Table {
    /// The table's name: the file name prefix and the value of [`TABLE_KEY`].
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Scrapes => "scrapes",
            Table::Samples => "samples",
            Table::Gpu => "gpu",
            Table::Host => "host",
        }
    }

    /// The file name of segment `n`, e.g. `samples-000003.parquet`.
    pub fn file_name(self, n: u64) -> String {
        format!("{}-{n:06}.parquet", self.as_str())
    }

    /// The temporary name a segment is written under before its rename.
    pub fn temp_file_name(self, n: u64) -> String {
        format!(".{}.tmp", self.file_name(n))
    }

    /// Recognises a segment file name; returns its table and segment number.
    pub fn parse_file_name(name: &str) -> Option<(Table, u64)> {
        let stem = name.strip_suffix(".parquet")?;
        let (prefix, digits) = stem.rsplit_once('-')?;
        let table = match prefix {
            "scrapes" => Table::Scrapes,
            "samples" => Table::Samples,
            "gpu" => Table::Gpu,
            "host" => Table::Host,
            _ => return None,
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((table, digits.parse().ok()?))
    }

    /// The Arrow schema of the table.
    pub fn schema(self) -> SchemaRef {
        match self {
            Table::Scrapes => scrapes_schema(),
            Table::Samples => samples_schema(),
            Table::Gpu => gpu_schema(),
            Table::Host => host_schema(),
        }
    }
}

/// Column names, shared by writer, reader and docs.
pub mod col {
    /// Scrape or poll sequence number (`scrapes`, `gpu`).
    pub const SEQ: &str = "seq";
    /// Wall clock at request, ns since the Unix epoch, UTC.
    pub const REQUESTED_AT_NS: &str = "requested_at_ns";
    /// Wall clock at completion, ns since the Unix epoch, UTC.
    pub const COMPLETED_AT_NS: &str = "completed_at_ns";
    /// Monotonic ns since recording start, at request.
    pub const REQUESTED_MONO_NS: &str = "requested_mono_ns";
    /// Monotonic ns since recording start, at completion.
    pub const COMPLETED_MONO_NS: &str = "completed_mono_ns";
    /// Scrape outcome (`ok`, `timeout`, ...).
    pub const STATUS: &str = "status";
    /// HTTP status code.
    pub const HTTP_STATUS: &str = "http_status";
    /// Error text.
    pub const ERROR: &str = "error";
    /// Body size in bytes.
    pub const BODY_BYTES: &str = "body_bytes";
    /// Samples stored for the scrape.
    pub const SAMPLE_COUNT: &str = "sample_count";
    /// `samples`: the scrape a sample belongs to.
    pub const SCRAPE_SEQ: &str = "scrape_seq";
    /// `samples`: family name as declared by `# TYPE`.
    pub const FAMILY: &str = "family";
    /// `samples`: the family's declared type.
    pub const FAMILY_TYPE: &str = "family_type";
    /// `samples`: the family's `# HELP` text.
    pub const HELP: &str = "help";
    /// `samples`: full sample name.
    pub const NAME: &str = "name";
    /// `samples`: canonical label string.
    pub const LABELS: &str = "labels";
    /// `samples`: parsed `le` of a bucket row.
    pub const LE: &str = "le";
    /// `samples`: the value.
    pub const VALUE: &str = "value";
    /// `samples`: the exposition timestamp, ms.
    pub const TIMESTAMP_MS: &str = "timestamp_ms";
    /// `gpu`: NVML device index.
    pub const GPU_INDEX: &str = "gpu_index";
    /// `gpu`: kernel-busy percent.
    pub const UTIL_PCT: &str = "util_pct";
    /// `gpu`: memory-busy percent.
    pub const MEM_UTIL_PCT: &str = "mem_util_pct";
    /// `gpu`: power draw, W.
    pub const POWER_W: &str = "power_w";
    /// `gpu`: enforced power limit, W.
    pub const POWER_LIMIT_W: &str = "power_limit_w";
    /// `gpu`: memory in use, bytes.
    pub const VRAM_USED_BYTES: &str = "vram_used_bytes";
    /// `gpu`: total memory, bytes.
    pub const VRAM_TOTAL_BYTES: &str = "vram_total_bytes";
    /// `gpu`: core temperature, °C.
    pub const TEMPERATURE_C: &str = "temperature_c";
    /// `gpu`: SM clock, MHz.
    pub const SM_CLOCK_MHZ: &str = "sm_clock_mhz";
    /// `gpu`: GPM SM activity, percent (format 1.5).
    pub const SM_ACTIVE_PCT: &str = "sm_active_pct";
    /// `gpu`: GPM SM occupancy, percent (format 1.5).
    pub const SM_OCCUPANCY_PCT: &str = "sm_occupancy_pct";
    /// `gpu`: GPM DRAM bandwidth use, percent of peak (format 1.5).
    pub const DRAM_BW_UTIL_PCT: &str = "dram_bw_util_pct";
    /// `host`: the process's PID.
    pub const PID: &str = "pid";
    /// `host`: its parent's PID.
    pub const PPID: &str = "ppid";
    /// `host`: `ok`, `exited` or `error`.
    pub const HOST_STATUS: &str = "status";
    /// `host`: the command name (`comm`).
    pub const COMM: &str = "comm";
    /// `host`: the one-letter process state.
    pub const STATE: &str = "state";
    /// `host`: start time after boot, clock ticks.
    pub const START_TICKS: &str = "start_ticks";
    /// `host`: user CPU time, clock ticks.
    pub const UTIME_TICKS: &str = "utime_ticks";
    /// `host`: system CPU time, clock ticks.
    pub const STIME_TICKS: &str = "stime_ticks";
    /// `host`: resident set size, bytes.
    pub const RSS_BYTES: &str = "rss_bytes";
    /// `host`: thread count.
    pub const THREADS: &str = "threads";
}

/// The Arrow type of every string column with few distinct values: a dictionary with `Int32`
/// keys, which pandas, polars and DuckDB all read (as categoricals or plain strings).
pub fn dict_type() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

fn times(fields: &mut Vec<Field>) {
    for name in [
        col::REQUESTED_AT_NS,
        col::COMPLETED_AT_NS,
        col::REQUESTED_MONO_NS,
        col::COMPLETED_MONO_NS,
    ] {
        fields.push(Field::new(name, DataType::Int64, false));
    }
}

fn scrapes_schema() -> SchemaRef {
    let mut f = vec![Field::new(col::SEQ, DataType::UInt64, false)];
    times(&mut f);
    f.extend([
        Field::new(col::STATUS, dict_type(), false),
        Field::new(col::HTTP_STATUS, DataType::UInt16, true),
        Field::new(col::ERROR, DataType::Utf8, true),
        Field::new(col::BODY_BYTES, DataType::UInt64, true),
        Field::new(col::SAMPLE_COUNT, DataType::UInt64, true),
    ]);
    Arc::new(Schema::new(f))
}

fn samples_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(col::SCRAPE_SEQ, DataType::UInt64, false),
        Field::new(col::FAMILY, dict_type(), false),
        Field::new(col::FAMILY_TYPE, dict_type(), false),
        Field::new(col::HELP, dict_type(), true),
        Field::new(col::NAME, dict_type(), false),
        Field::new(col::LABELS, dict_type(), false),
        Field::new(col::LE, DataType::Float64, true),
        Field::new(col::VALUE, DataType::Float64, false),
        Field::new(col::TIMESTAMP_MS, DataType::Int64, true),
    ]))
}

fn gpu_schema() -> SchemaRef {
    let mut f = vec![
        Field::new(col::SEQ, DataType::UInt64, false),
        Field::new(col::GPU_INDEX, DataType::UInt32, false),
    ];
    times(&mut f);
    f.extend([
        Field::new(col::UTIL_PCT, DataType::UInt32, true),
        Field::new(col::MEM_UTIL_PCT, DataType::UInt32, true),
        Field::new(col::POWER_W, DataType::Float64, true),
        Field::new(col::POWER_LIMIT_W, DataType::Float64, true),
        Field::new(col::VRAM_USED_BYTES, DataType::UInt64, true),
        Field::new(col::VRAM_TOTAL_BYTES, DataType::UInt64, true),
        Field::new(col::TEMPERATURE_C, DataType::UInt32, true),
        Field::new(col::SM_CLOCK_MHZ, DataType::UInt32, true),
        Field::new(col::ERROR, DataType::Utf8, true),
        // Format 1.5, at the end so that every earlier column keeps its place.
        Field::new(col::SM_ACTIVE_PCT, DataType::Float64, true),
        Field::new(col::SM_OCCUPANCY_PCT, DataType::Float64, true),
        Field::new(col::DRAM_BW_UTIL_PCT, DataType::Float64, true),
    ]);
    Arc::new(Schema::new(f))
}

fn host_schema() -> SchemaRef {
    let mut f = vec![Field::new(col::SEQ, DataType::UInt64, false)];
    times(&mut f);
    f.extend([
        Field::new(col::PID, DataType::UInt32, false),
        Field::new(col::PPID, DataType::UInt32, true),
        Field::new(col::HOST_STATUS, DataType::Utf8, false),
        Field::new(col::ERROR, DataType::Utf8, true),
        Field::new(col::COMM, DataType::Utf8, true),
        Field::new(col::STATE, DataType::Utf8, true),
        Field::new(col::START_TICKS, DataType::UInt64, true),
        Field::new(col::UTIME_TICKS, DataType::UInt64, true),
        Field::new(col::STIME_TICKS, DataType::UInt64, true),
        Field::new(col::RSS_BYTES, DataType::UInt64, true),
        Field::new(col::THREADS, DataType::UInt32, true),
    ]);
    Arc::new(Schema::new(f))
}

/// How the `value` column is encoded. Byte-stream-split won the measurement (see the docs):
/// it puts each of the 8 bytes of every double in its own stream, so the constant sign,
/// exponent and high mantissa bytes of a series become long runs that zstd folds, while runs
/// of unchanged values stay runs in every stream. Under load it is ~10% smaller than PLAIN and
/// ~35% smaller than a dictionary, and no bigger when idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueEncoding {
    /// PLAIN, then zstd.
    Plain,
    /// BYTE_STREAM_SPLIT, then zstd.
    ByteStreamSplit,
    /// Parquet dictionary (RLE'd indices), falling back to PLAIN when the dictionary fills.
    Dictionary,
}

/// The encoding the writer uses for `value`.
pub const VALUE_ENCODING: ValueEncoding = ValueEncoding::ByteStreamSplit;

/// Parquet writer settings for one table, with the default `value` encoding and zstd level.
pub fn writer_properties(table: Table) -> WriterProperties {
    writer_properties_with(table, VALUE_ENCODING, ZSTD_LEVEL)
}

/// Parquet writer settings for one table; the knobs exist so the size test can compare them.
pub fn writer_properties_with(
    table: Table,
    value_encoding: ValueEncoding,
    zstd_level: i32,
) -> WriterProperties {
    // A level outside zstd's range is a programming error in this module's callers; fall back
    // to the default rather than panic.
    let level = ZstdLevel::try_new(zstd_level).unwrap_or_default();
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_created_by(format!("profile {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(vec![
            KeyValue::new(VERSION_KEY.to_string(), FORMAT_VERSION.to_string()),
            KeyValue::new(TABLE_KEY.to_string(), table.as_str().to_string()),
        ]))
        // One row group per file: a segment is small, and one group keeps every column's
        // dictionary and zstd frame as large (and so as effective) as possible.
        .set_max_row_group_row_count(None)
        .set_max_row_group_bytes(None)
        // Pages as large as a segment's column: zstd compresses each page on its own, and
        // bigger frames find more of the repeats between series.
        .set_data_page_row_count_limit(usize::MAX)
        .set_data_page_size_limit(16 << 20)
        .set_statistics_enabled(EnabledStatistics::Chunk);
    // Sequence numbers step by one and times by about the interval: delta encoding makes
    // them nearly free, where a dictionary of distinct values would not.
    let delta_cols: &[&str] = match table {
        Table::Samples => &[col::SCRAPE_SEQ],
        Table::Scrapes | Table::Gpu | Table::Host => &[
            col::SEQ,
            col::REQUESTED_AT_NS,
            col::COMPLETED_AT_NS,
            col::REQUESTED_MONO_NS,
            col::COMPLETED_MONO_NS,
        ],
    };
    for &c in delta_cols {
        b = b
            .set_column_dictionary_enabled(ColumnPath::from(c), false)
            .set_column_encoding(ColumnPath::from(c), Encoding::DELTA_BINARY_PACKED);
    }
    for &c in uncompressed_columns(table) {
        b = b.set_column_compression(ColumnPath::from(c), Compression::UNCOMPRESSED);
    }
    if table == Table::Samples {
        let v = ColumnPath::from(col::VALUE);
        b = match value_encoding {
            ValueEncoding::Plain => b
                .set_column_dictionary_enabled(v.clone(), false)
                .set_column_encoding(v, Encoding::PLAIN),
            ValueEncoding::ByteStreamSplit => b
                .set_column_dictionary_enabled(v.clone(), false)
                .set_column_encoding(v, Encoding::BYTE_STREAM_SPLIT),
            ValueEncoding::Dictionary => b.set_column_dictionary_enabled(v, true),
        };
    }
    b.build()
}

/// Columns of the small tables written without zstd. Ours: a segment's scrape, GPU and host
/// tables hold a few hundred to a few thousand rows, and these columns are delta- or
/// dictionary-encoded to a few dozen bytes (about a kilobyte for a clock that jitters), which
/// zstd barely shrinks or even grows (measured on a replayed day: 31 -> 40 bytes for `seq`,
/// 1,025 -> 978 for `completed_mono_ns`, 81 -> 63 for `sample_count`, 366 -> 765 for
/// `body_bytes`; on a synthetic minute of 8 GPUs at 4 Hz, 987 -> 1,050 for `util_pct`,
/// 817 -> 798 for `temperature_c`, 103 -> 790 for `gpu_index`). Each compressed column
/// chunk, though, costs its reader a zstd context pair to set up, 50-100 µs on a virtual
/// machine (each context asks the CPU for its features, which traps to the hypervisor): 13
/// per scrapes file was most of the time spent reading those files, and a GPU file had 13
/// too. The samples table, and the columns zstd does shrink (the GPU's float readings and
/// used memory, the host's CPU ticks and RSS), stay compressed.
pub fn uncompressed_columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::Samples => &[],
        Table::Scrapes => &[
            col::SEQ,
            col::REQUESTED_AT_NS,
            col::COMPLETED_AT_NS,
            col::REQUESTED_MONO_NS,
            col::COMPLETED_MONO_NS,
            col::STATUS,
            col::HTTP_STATUS,
            col::ERROR,
            col::BODY_BYTES,
            col::SAMPLE_COUNT,
        ],
        Table::Gpu => &[
            col::SEQ,
            col::GPU_INDEX,
            col::REQUESTED_AT_NS,
            col::COMPLETED_AT_NS,
            col::REQUESTED_MONO_NS,
            col::COMPLETED_MONO_NS,
            col::UTIL_PCT,
            col::MEM_UTIL_PCT,
            col::POWER_LIMIT_W,
            col::VRAM_TOTAL_BYTES,
            col::TEMPERATURE_C,
            col::SM_CLOCK_MHZ,
            col::ERROR,
        ],
        Table::Host => &[
            col::SEQ,
            col::REQUESTED_AT_NS,
            col::COMPLETED_AT_NS,
            col::REQUESTED_MONO_NS,
            col::COMPLETED_MONO_NS,
            col::PID,
            col::PPID,
            col::HOST_STATUS,
            col::COMM,
            col::STATE,
            col::START_TICKS,
            col::THREADS,
        ],
    }
}

/// The major number of a `MAJOR.MINOR` version string, if it has that shape.
pub fn major_of(version: &str) -> Option<u32> {
    let (major, minor) = version.split_once('.')?;
    if minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    major.parse().ok()
}

/// One stored sample row, as plain values: what `samples-*.parquet` holds for one sample.
/// `PartialEq` compares `value` and `le` bit for bit, so NaN payloads and `-0.0` count.
#[derive(Debug, Clone)]
pub struct SampleRow {
    /// The scrape it belongs to.
    pub scrape_seq: u64,
    /// Family name.
    pub family: String,
    /// Family type.
    pub family_type: MetricType,
    /// `# HELP` text, unescaped.
    pub help: Option<String>,
    /// Full sample name.
    pub name: String,
    /// Canonical label string (see [`canonical_labels`]).
    pub labels: String,
    /// Parsed `le` of a bucket row.
    pub le: Option<f64>,
    /// The value.
    pub value: f64,
    /// The exposition timestamp, ms.
    pub timestamp_ms: Option<i64>,
}

impl PartialEq for SampleRow {
    fn eq(&self, o: &Self) -> bool {
        self.scrape_seq == o.scrape_seq
            && self.family == o.family
            && self.family_type == o.family_type
            && self.help == o.help
            && self.name == o.name
            && self.labels == o.labels
            && self.le.map(f64::to_bits) == o.le.map(f64::to_bits)
            && self.value.to_bits() == o.value.to_bits()
            && self.timestamp_ms == o.timestamp_ms
    }
}

/// Exactly the sample rows the writer stores for one scrape, in exposition order (the file
/// regroups them by series). `None` (a failed scrape) stores no rows.
pub fn sample_rows(meta: &ScrapeMeta, exposition: Option<&Exposition<'_>>) -> Vec<SampleRow> {
    let Some(exposition) = exposition else {
        return Vec::new();
    };
    let mut rows = Vec::with_capacity(exposition.sample_count());
    for family in &exposition.families {
        for sample in &family.samples {
            let (labels, le) = series_labels(family, sample);
            rows.push(SampleRow {
                scrape_seq: meta.seq,
                family: family.name.to_string(),
                family_type: family.metric_type,
                help: family.help.as_deref().map(str::to_string),
                name: sample.name.to_string(),
                labels,
                le,
                value: sample.value,
                timestamp_ms: sample.timestamp_ms,
            });
        }
    }
    rows
}

/// The stored `labels` string and `le` of one sample. For a `_bucket` row of a histogram or
/// gauge histogram, a single `le` label that parses as a number (not NaN) moves to `le`; any
/// other `le` stays in the string so nothing is lost.
pub fn series_labels(family: &Family<'_>, sample: &Sample<'_>) -> (String, Option<f64>) {
    let mut le = None;
    let mut le_at = None;
    let is_bucket = sample.suffix == Suffix::Bucket
        && matches!(
            family.metric_type,
            MetricType::Histogram | MetricType::GaugeHistogram
        );
    if is_bucket {
        let mut found = sample
            .labels
            .iter()
            .enumerate()
            .filter(|(_, l)| l.name == "le");
        if let (Some((i, l)), None) = (found.next(), found.next()) {
            if let Some(v) = parse_le(&l.value) {
                le = Some(v);
                le_at = Some(i);
            }
        }
    }
    let mut pairs: Vec<(&str, &str)> = sample
        .labels
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != le_at)
        .map(|(_, l)| (l.name, l.value.as_ref()))
        .collect();
    pairs.sort_unstable();
    let mut out = String::new();
    write_canonical(&mut out, &pairs);
    (out, le)
}

/// Parses an `le` bound: any float Rust reads (`+Inf`, `1e+06`, `0.5`), except NaN.
pub fn parse_le(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| !v.is_nan())
}

/// The canonical label string of `pairs`: sorted by name then value, each `name="value"` with
/// `\`, `"` and newline escaped as Prometheus does, joined by `,`. Empty for no labels.
pub fn canonical_labels(pairs: &[(&str, &str)]) -> String {
    let mut sorted = pairs.to_vec();
    sorted.sort_unstable();
    let mut out = String::new();
    write_canonical(&mut out, &sorted);
    out
}

fn write_canonical(out: &mut String, sorted: &[(&str, &str)]) {
    for (i, (name, value)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

/// A string that is not a canonical label string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad canonical label string at byte {at}: {message}")]
pub struct LabelsError {
    /// Byte offset of the problem.
    pub at: usize,
    /// What was expected.
    pub message: &'static str,
}

/// Splits a canonical label string back into `(name, value)` pairs, values unescaped: the
/// inverse of [`canonical_labels`].
pub fn parse_canonical_labels(s: &str) -> Result<Vec<(String, String)>, LabelsError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |at, message| Err(LabelsError { at, message });
    while i < b.len() {
        if !out.is_empty() {
            if b[i] != b',' {
                return err(i, "expected ','");
            }
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        if i == start || i >= b.len() {
            return err(start, "expected a label name and '='");
        }
        let name = s[start..i].to_string();
        i += 1;
        if b.get(i) != Some(&b'"') {
            return err(i, "expected '\"'");
        }
        i += 1;
        let mut value = String::new();
        let mut run = i;
        loop {
            match b.get(i) {
                None => return err(i, "unterminated value"),
                Some(b'"') => break,
                Some(b'\\') => {
                    value.push_str(&s[run..i]);
                    match b.get(i + 1) {
                        Some(b'\\') => value.push('\\'),
                        Some(b'"') => value.push('"'),
                        Some(b'n') => value.push('\n'),
                        _ => return err(i, "bad escape"),
                    }
                    i += 2;
                    run = i;
                }
                Some(_) => i += 1,
            }
        }
        value.push_str(&s[run..i]);
        i += 1;
        out.push((name, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_round_trip_with_hostile_values() {
        let pairs = [
            ("z", "a,b=c"),
            ("a", "back\\slash \"quoted\"\nnewline"),
            ("m", ""),
            ("u", "ünï=\"x\","),
        ];
        let s = canonical_labels(&pairs);
        assert_eq!(
            s,
            "a=\"back\\\\slash \\\"quoted\\\"\\nnewline\",m=\"\",u=\"ünï=\\\"x\\\",\",z=\"a,b=c\""
        );
        let back = parse_canonical_labels(&s).unwrap();
        let mut want: Vec<(String, String)> = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        want.sort();
        assert_eq!(back, want);
        assert_eq!(parse_canonical_labels("").unwrap(), vec![]);
    }

    #[test]
    fn parse_canonical_rejects_malformed() {
        for bad in [
            "a",
            "a=",
            "a=\"x",
            "a=\"x\"b=\"y\"",
            "=\"x\"",
            "a=\"\\q\"",
            "a=\"x\",",
        ] {
            assert!(parse_canonical_labels(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn file_names() {
        assert_eq!(Table::Samples.file_name(3), "samples-000003.parquet");
        assert_eq!(Table::Gpu.temp_file_name(12), ".gpu-000012.parquet.tmp");
        assert_eq!(
            Table::parse_file_name("scrapes-001234.parquet"),
            Some((Table::Scrapes, 1234))
        );
        assert_eq!(
            Table::parse_file_name("gpu-1234567.parquet"),
            Some((Table::Gpu, 1234567))
        );
        assert_eq!(
            Table::parse_file_name("host-000002.parquet"),
            Some((Table::Host, 2))
        );
        assert_eq!(Table::parse_file_name(".gpu-000001.parquet.tmp"), None);
        assert_eq!(Table::parse_file_name("gpu-.parquet"), None);
        assert_eq!(Table::parse_file_name("other-000001.parquet"), None);
    }

    #[test]
    fn versions() {
        assert_eq!(major_of(FORMAT_VERSION), Some(FORMAT_MAJOR));
        assert_eq!(major_of("2.13"), Some(2));
        assert_eq!(major_of("1"), None);
        assert_eq!(major_of("x.1"), None);
    }

    #[test]
    fn le_parsing() {
        assert_eq!(parse_le("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_le("1e+06"), Some(1e6));
        assert_eq!(parse_le("0.005"), Some(0.005));
        assert_eq!(parse_le("NaN"), None);
        assert_eq!(parse_le("abc"), None);
    }
}
