//! Decoding one Parquet file of each table into plain rows. Every check that can fail on a
//! damaged or foreign file returns a message (which the reader files under that file's name)
//! instead of panicking; only an unsupported format version is fatal for the whole read.

use crate::gpu::GpuMetrics;
use crate::host::ProcReading;
use crate::promtext::MetricType;
use crate::recording::checksum;
use crate::recording::schema::{self, col, Table};
use crate::recording::{GpuPoll, HostSample, HostStatus, RecordingError, ScrapeMeta, ScrapeStatus};
use crate::units::{MonoNs, WallNs};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, Float64Type, Int32Type, Int64Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, PrimitiveArray, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReaderBuilder, RowSelection};
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::ParquetMetaData;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Why a file was not read.
pub(super) enum Problem {
    /// The whole read must fail (an unsupported format version).
    Fatal(RecordingError),
    /// This file is skipped; the message says why.
    Damaged(String),
}

impl From<String> for Problem {
    fn from(s: String) -> Self {
        Problem::Damaged(s)
    }
}

/// What a file yielded: its rows plus notes about values it had to reinterpret.
pub(super) struct Decoded<T> {
    pub rows: T,
    pub row_count: u64,
    pub notes: Vec<String>,
}

/// Opens `path`, checks its format version and table, and returns all its record batches.
///
/// The Parquet decoder panics on some damaged files instead of returning an error (parquet
/// 60: a flipped byte in a page's definition levels trips an assertion in arrow-buffer's
/// `BitChunks`); such a panic is caught here and the file is reported damaged like any other.
fn read_batches(path: &Path, table: Table) -> Result<Vec<RecordBatch>, Problem> {
    read_part(path, table, &|_, _| &[], None, None)
}

/// Picks the columns to decode once the file's bytes and footer are read and checked (all of
/// them when empty).
type Pick<'a> = dyn Fn(&[u8], &ParquetMetaData) -> &'static [&'static str] + 'a;

/// [`read_batches`] of only the columns `columns` picks, the row group `row_group` (all when
/// `None`) and the rows `rows` selects in it (all when `None`): what is not asked for is never
/// decoded.
fn read_part(
    path: &Path,
    table: Table,
    columns: &Pick<'_>,
    row_group: Option<usize>,
    rows: Option<RowSelection>,
) -> Result<Vec<RecordBatch>, Problem> {
    let mut batches = Vec::new();
    each_batch(path, table, columns, row_group, rows, &mut |b| {
        batches.push(b);
        Ok(())
    })?;
    Ok(batches)
}

/// [`read_part`], handing each record batch to `each` as it is decoded instead of holding
/// them all: what a file of millions of rows (a compacted hour) needs.
fn each_batch(
    path: &Path,
    table: Table,
    columns: &Pick<'_>,
    row_group: Option<usize>,
    rows: Option<RowSelection>,
    each: &mut dyn FnMut(RecordBatch) -> Result<(), Problem>,
) -> Result<(), Problem> {
    let read = std::panic::AssertUnwindSafe(|| {
        read_batches_unguarded(path, table, columns, row_group, rows, each)
    });
    std::panic::catch_unwind(read).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(format!("damaged data: the Parquet decoder failed ({why})").into())
    })
}

/// The file is read into memory first: on some damaged files the decoder reads on past the end
/// millions of times (parquet 60's thrift skip of a corrupt page header), one `read` system
/// call each from a `File`, a few nanoseconds each from memory (found by fuzzing: 13 s of CPU
/// for one 8 KB file, now milliseconds).
fn read_batches_unguarded(
    path: &Path,
    table: Table,
    columns: &Pick<'_>,
    row_group: Option<usize>,
    rows: Option<RowSelection>,
    each: &mut dyn FnMut(RecordBatch) -> Result<(), Problem>,
) -> Result<(), Problem> {
    let bytes = bytes::Bytes::from(std::fs::read(path).map_err(|e| format!("cannot open: {e}"))?);
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
        .map_err(|e| format!("not a readable Parquet file: {e}"))?;
    super::pages::check(&bytes, builder.metadata()).map_err(|e| format!("damaged data: {e}"))?;
    let kv = builder.metadata().file_metadata().key_value_metadata();
    let lookup = |key: &str| {
        kv.and_then(|kv| kv.iter().find(|e| e.key == key))
            .and_then(|e| e.value.clone())
    };
    let Some(version) = lookup(schema::VERSION_KEY) else {
        return Err(format!(
            "no `{}` metadata: not a recording file",
            schema::VERSION_KEY
        )
        .into());
    };
    if schema::major_of(&version) != Some(schema::FORMAT_MAJOR) {
        return Err(Problem::Fatal(RecordingError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: schema::FORMAT_MAJOR,
        }));
    }
    checksum::verify_file(&bytes, kv).map_err(|e| format!("damaged data: {e}"))?;
    if let Some(t) = lookup(schema::TABLE_KEY) {
        if t != table.as_str() {
            return Err(
                format!("holds table `{t}`, but its name says `{}`", table.as_str()).into(),
            );
        }
    }
    let columns = columns(&bytes, builder.metadata());
    let mut builder = builder.with_batch_size(64 * 1024);
    if !columns.is_empty() {
        let mask = ProjectionMask::columns(builder.parquet_schema(), columns.iter().copied());
        builder = builder.with_projection(mask);
    }
    if let Some(g) = row_group {
        if g >= builder.metadata().num_row_groups() {
            return Err(format!("has no row group {g}").into());
        }
        builder = builder.with_row_groups(vec![g]);
    }
    if let Some(rows) = rows {
        builder = builder.with_row_selection(rows);
    }
    let reader = builder.build().map_err(|e| format!("cannot read: {e}"))?;
    for batch in reader {
        each(batch.map_err(|e| format!("damaged data: {e}"))?)?;
    }
    Ok(())
}

fn column<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a dyn Array, String> {
    b.column_by_name(name)
        .map(|a| a.as_ref())
        .ok_or_else(|| format!("no column `{name}`"))
}

/// A column of type `T` that may hold nulls.
fn prim<'a, T: ArrowPrimitiveType>(
    b: &'a RecordBatch,
    name: &str,
) -> Result<&'a PrimitiveArray<T>, String> {
    let a = column(b, name)?;
    a.as_primitive_opt::<T>().ok_or_else(|| {
        format!(
            "column `{name}` is {}, expected {}",
            a.data_type(),
            T::DATA_TYPE
        )
    })
}

/// A column of type `T` that may hold nulls and that files of an older minor version lack
/// (`None`); present with another type, it is an error like any column.
fn prim_since<'a, T: ArrowPrimitiveType>(
    b: &'a RecordBatch,
    name: &str,
) -> Result<Option<&'a PrimitiveArray<T>>, String> {
    if b.column_by_name(name).is_none() {
        return Ok(None);
    }
    prim::<T>(b, name).map(Some)
}

/// A column of type `T` that must not hold nulls.
fn required<'a, T: ArrowPrimitiveType>(
    b: &'a RecordBatch,
    name: &str,
) -> Result<&'a PrimitiveArray<T>, String> {
    let a = prim::<T>(b, name)?;
    if a.null_count() > 0 {
        return Err(format!("column `{name}` holds nulls"));
    }
    Ok(a)
}

/// The four clock columns every timed table has: requested and completed, wall and monotonic.
fn times(b: &RecordBatch) -> Result<[&PrimitiveArray<Int64Type>; 4], String> {
    Ok([
        required(b, col::REQUESTED_AT_NS)?,
        required(b, col::COMPLETED_AT_NS)?,
        required(b, col::REQUESTED_MONO_NS)?,
        required(b, col::COMPLETED_MONO_NS)?,
    ])
}

fn opt<T: ArrowPrimitiveType>(a: &PrimitiveArray<T>, i: usize) -> Option<T::Native> {
    a.is_valid(i).then(|| a.value(i))
}

/// A string column, dictionary-encoded (as written) or plain (as a foreign tool may rewrite it).
enum StrCol<'a> {
    Dict(&'a PrimitiveArray<Int32Type>, &'a StringArray),
    Plain(&'a StringArray),
}

impl<'a> StrCol<'a> {
    fn new(b: &'a RecordBatch, name: &str) -> Result<Self, String> {
        let a = column(b, name)?;
        if let Some(d) = a.as_dictionary_opt::<Int32Type>() {
            if let Some(v) = d.values().as_string_opt::<i32>() {
                return Ok(StrCol::Dict(d.keys(), v));
            }
        }
        if let Some(s) = a.as_string_opt::<i32>() {
            return Ok(StrCol::Plain(s));
        }
        Err(format!(
            "column `{name}` is {}, expected a string",
            a.data_type()
        ))
    }

    fn get(&self, i: usize) -> Result<Option<&'a str>, String> {
        match self {
            StrCol::Plain(s) => Ok(s.is_valid(i).then(|| s.value(i))),
            StrCol::Dict(keys, values) => {
                if !keys.is_valid(i) {
                    return Ok(None);
                }
                let k = usize::try_from(keys.value(i))
                    .ok()
                    .filter(|&k| k < values.len())
                    .ok_or_else(|| format!("row {i}: dictionary key out of range"))?;
                Ok(values.is_valid(k).then(|| values.value(k)))
            }
        }
    }

    fn required(&self, i: usize, name: &str) -> Result<&'a str, String> {
        self.get(i)?
            .ok_or_else(|| format!("row {i}: `{name}` is null"))
    }
}

/// Reads a `scrapes-*.parquet` file.
pub(super) fn read_scrapes(path: &Path) -> Result<Decoded<Vec<ScrapeMeta>>, Problem> {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut unknown_status = 0u64;
    for b in read_batches(path, Table::Scrapes)? {
        let seq = required::<UInt64Type>(&b, col::SEQ)?;
        let t = times(&b)?;
        let status = StrCol::new(&b, col::STATUS)?;
        let http = prim::<UInt16Type>(&b, col::HTTP_STATUS)?;
        let error = StrCol::new(&b, col::ERROR)?;
        let body = prim::<UInt64Type>(&b, col::BODY_BYTES)?;
        let count = prim::<UInt64Type>(&b, col::SAMPLE_COUNT)?;
        for i in 0..b.num_rows() {
            let s = status.required(i, col::STATUS)?;
            let status = ScrapeStatus::from_name(s).unwrap_or_else(|| {
                unknown_status += 1;
                ScrapeStatus::Other
            });
            rows.push(ScrapeMeta {
                seq: seq.value(i),
                requested_at: WallNs(t[0].value(i)),
                completed_at: WallNs(t[1].value(i)),
                requested_mono: MonoNs(t[2].value(i)),
                completed_mono: MonoNs(t[3].value(i)),
                status,
                http_status: opt(http, i),
                error: error.get(i)?.map(str::to_string),
                body_bytes: opt(body, i),
                sample_count: opt(count, i),
            });
        }
    }
    if unknown_status > 0 {
        notes.push(format!(
            "{unknown_status} rows with an unknown status read as `other`"
        ));
    }
    Ok(Decoded {
        row_count: rows.len() as u64,
        rows,
        notes,
    })
}

/// A series as stored in one file: family, type, help, name, labels, le.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct SeriesKey {
    pub family: Arc<str>,
    pub metric_type: MetricType,
    pub help: Option<Arc<str>>,
    pub name: Arc<str>,
    pub labels: Arc<str>,
    /// `le` as bits, so NaN-free floats hash and compare exactly.
    pub le: Option<u64>,
}

/// The selected rows of one record batch of a samples file, kept as Arrow arrays (no copy):
/// each row's scrape, value and exposition timestamp.
#[derive(Clone)]
pub(super) struct ValueChunk {
    /// `None` when the rows were placed without it.
    pub seq: Option<PrimitiveArray<UInt64Type>>,
    pub value: PrimitiveArray<Float64Type>,
    /// `None` when the file's column holds only nulls.
    pub timestamp_ms: Option<PrimitiveArray<Int64Type>>,
}

impl ValueChunk {
    /// Row `i`'s exposition timestamp.
    pub fn timestamp_ms(&self, i: usize) -> Option<i64> {
        let ts = self.timestamp_ms.as_ref()?;
        (i < ts.len()).then(|| opt(ts, i)).flatten()
    }

    /// Whether no row has a timestamp.
    pub fn no_timestamps(&self) -> bool {
        self.timestamp_ms
            .as_ref()
            .is_none_or(|ts| ts.null_count() == ts.len())
    }
}

/// A samples file without its values: its layout (see [`key_layout`]), each row's scrape (one
/// array per record batch), and, unless its layout was already known, its series.
pub(super) struct SampleKeys {
    pub layout: Vec<u8>,
    /// Rows per row group, in file order.
    pub row_groups: Vec<u64>,
    pub series: Option<FileSeries>,
    pub seq: Vec<PrimitiveArray<UInt64Type>>,
}

/// A samples file's distinct series (file-local ids) and its rows as runs of one series,
/// `(rows, local id)` in file order.
pub(super) struct FileSeries {
    pub keys: Vec<SeriesKey>,
    pub runs: Vec<(u32, u32)>,
}

/// The exact bytes, codecs and value counts of every column chunk that says which series a
/// row is. Two files with equal layouts decode to the same series in the same rows, so the
/// second need not decode them: a recorder's segments in a steady state hold the same series
/// for the same number of scrapes, and only their scrape numbers and values differ.
fn key_layout(bytes: &[u8], meta: &ParquetMetaData) -> Vec<u8> {
    let mut out = Vec::new();
    for rg in meta.row_groups() {
        out.extend_from_slice(&rg.num_rows().to_le_bytes());
        for chunk in rg.columns() {
            let path = chunk.column_path().string();
            if !KEY_COLUMNS[1..].contains(&path.as_str()) {
                continue;
            }
            out.extend_from_slice(path.as_bytes());
            out.extend_from_slice(format!("{:?}", chunk.compression()).as_bytes());
            out.extend_from_slice(&chunk.num_values().to_le_bytes());
            let (start, len) = chunk.byte_range();
            let range = usize::try_from(start)
                .ok()
                .zip(usize::try_from(start.saturating_add(len)).ok());
            // Out-of-range chunks were refused by the page check before this runs.
            if let Some(chunk_bytes) = range.and_then(|(s, e)| bytes.get(s..e)) {
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(chunk_bytes);
            }
        }
    }
    out
}

/// The columns [`read_sample_keys`] decodes: which series and which scrape each row is.
const KEY_COLUMNS: [&str; 7] = [
    col::SCRAPE_SEQ,
    col::FAMILY,
    col::FAMILY_TYPE,
    col::HELP,
    col::NAME,
    col::LABELS,
    col::LE,
];

/// The columns [`read_sample_values`] decodes.
const VALUE_COLUMNS: [&str; 3] = [col::SCRAPE_SEQ, col::VALUE, col::TIMESTAMP_MS];

/// A row's series as read: family, type, name, labels; help; `le` bits; and its local id.
type RowKey<'a> = ([&'a str; 4], Option<&'a str>, Option<u64>, u32);

/// Marks in `differs` every row `i` (> 0) that may hold another string than row `i - 1` in
/// column `c`: another dictionary key (or validity), or another string. A false mark only
/// sends a row down the full check, so marks may err that way, never the other.
fn mark_changes(c: &StrCol<'_>, differs: &mut [bool]) {
    match c {
        StrCol::Dict(keys, _) => {
            mark_value_changes(keys.values(), differs, |a, b| a != b);
            if let Some(n) = keys.nulls() {
                mark_validity_changes(n, differs);
            }
        }
        StrCol::Plain(s) => {
            for (i, d) in differs.iter_mut().enumerate().skip(1) {
                *d |= s.is_valid(i) != s.is_valid(i - 1) || s.value(i) != s.value(i - 1);
            }
        }
    }
}

/// As [`mark_changes`], for the `le` column: another bound bit for bit, or another validity.
fn mark_le_changes(le: &PrimitiveArray<Float64Type>, differs: &mut [bool]) {
    mark_value_changes(le.values(), differs, |a, b| a.to_bits() != b.to_bits());
    if let Some(n) = le.nulls() {
        mark_validity_changes(n, differs);
    }
}

/// Marks the rows `i` (> 0) whose raw value differs from row `i - 1`'s. Written over
/// equal-length slices so that the compiler vectorizes it.
#[inline]
fn mark_value_changes<T: Copy>(values: &[T], differs: &mut [bool], ne: impl Fn(T, T) -> bool) {
    let n = values.len().min(differs.len());
    if n < 2 {
        return;
    }
    let (before, after) = (&values[..n - 1], &values[1..n]);
    for ((d, &a), &b) in differs[1..n].iter_mut().zip(before).zip(after) {
        *d |= ne(a, b);
    }
}

/// Marks the rows whose validity differs from the previous row's (row 0 is marked anyway).
fn mark_validity_changes(nulls: &arrow_buffer::NullBuffer, differs: &mut [bool]) {
    if nulls.null_count() == 0 {
        return;
    }
    let mut prev = true;
    for (d, valid) in differs.iter_mut().zip(nulls.iter()) {
        *d |= valid != prev;
        prev = valid;
    }
}

/// Reads the series and scrape of every row of a `samples-*.parquet` file, not its values:
/// the reader's first pass, which learns every series of the recording before any value is
/// read, so that only the series the caller needs are decoded in the second.
/// `known` says whether a file of this layout was decoded already; then only the scrape
/// column is.
pub(super) fn read_sample_keys(
    path: &Path,
    known: &(dyn Fn(&[u8]) -> bool + Sync),
) -> Result<Decoded<SampleKeys>, Problem> {
    // The file's layout, and whether it was known (then only `scrape_seq` is decoded).
    let picked = RefCell::new((Vec::new(), false));
    let row_groups = RefCell::new(Vec::new());
    let pick = |bytes: &[u8], meta: &ParquetMetaData| -> &'static [&'static str] {
        let l = key_layout(bytes, meta);
        let seen = known(&l);
        *picked.borrow_mut() = (l, seen);
        *row_groups.borrow_mut() = meta
            .row_groups()
            .iter()
            .map(|rg| u64::try_from(rg.num_rows()).unwrap_or(0))
            .collect();
        if seen {
            &KEY_COLUMNS[..1]
        } else {
            &KEY_COLUMNS
        }
    };
    let mut data = FileSeries {
        keys: Vec::new(),
        runs: Vec::new(),
    };
    let mut seqs = Vec::new();
    let mut ids: HashMap<SeriesKey, u32> = HashMap::new();
    let mut unknown_types = 0u64;
    let mut row_count = 0u64;
    // Batch by batch, so that a file of millions of rows (a compacted hour) holds one batch of
    // its key columns at a time, and only `scrape_seq` of the rest.
    each_batch(path, Table::Samples, &pick, None, None, &mut |b| {
        row_count += b.num_rows() as u64;
        if picked.borrow().1 {
            seqs.push(required::<UInt64Type>(&b, col::SCRAPE_SEQ)?.clone());
            return Ok(());
        }
        let seq = required::<UInt64Type>(&b, col::SCRAPE_SEQ)?;
        let family = StrCol::new(&b, col::FAMILY)?;
        let ftype = StrCol::new(&b, col::FAMILY_TYPE)?;
        let help = StrCol::new(&b, col::HELP)?;
        let name = StrCol::new(&b, col::NAME)?;
        let labels = StrCol::new(&b, col::LABELS)?;
        let le = prim::<Float64Type>(&b, col::LE)?;
        // Rows come series-major, so consecutive rows usually share a series. A row whose
        // dictionary keys (and `le`) equal the previous row's has the previous row's strings,
        // already checked: it takes its id without reading a string. Any other row compares
        // its strings with the previous row's before paying for a hash lookup.
        let mut differs = vec![false; b.num_rows()];
        if let Some(d) = differs.first_mut() {
            *d = true;
        }
        for c in [&labels, &name, &family, &ftype, &help] {
            mark_changes(c, &mut differs);
        }
        mark_le_changes(le, &mut differs);
        let mut prev: Option<RowKey<'_>> = None;
        let mut i = 0;
        while i < differs.len() {
            let l = opt(le, i).map(f64::to_bits);
            let strs = [
                family.required(i, col::FAMILY)?,
                ftype.required(i, col::FAMILY_TYPE)?,
                name.required(i, col::NAME)?,
                labels.required(i, col::LABELS)?,
            ];
            let h = help.get(i)?;
            let id = match prev {
                Some((p, ph, pl, id)) if p == strs && ph == h && pl == l => id,
                _ => {
                    let metric_type = MetricType::from_keyword(strs[1]).unwrap_or_else(|| {
                        unknown_types += 1;
                        MetricType::Unknown
                    });
                    let key = SeriesKey {
                        family: strs[0].into(),
                        metric_type,
                        help: h.map(Arc::from),
                        name: strs[2].into(),
                        labels: strs[3].into(),
                        le: l,
                    };
                    let next = u32::try_from(data.keys.len())
                        .map_err(|_| "too many series".to_string())?;
                    let id = *ids.entry(key.clone()).or_insert(next);
                    if id == next {
                        data.keys.push(key);
                    }
                    id
                }
            };
            prev = Some((strs, h, l, id));
            // Row `i` and the unmarked rows after it are one series.
            let run = differs[i + 1..]
                .iter()
                .position(|&d| d)
                .unwrap_or(differs.len() - i - 1);
            let len = u32::try_from(1 + run).map_err(|_| "too many rows".to_string())?;
            match data.runs.last_mut() {
                Some((n, last)) if *last == id => *n += len,
                _ => data.runs.push((len, id)),
            }
            i += 1 + run;
        }
        seqs.push(seq.clone());
        Ok(())
    })?;
    let (layout, seen) = picked.into_inner();
    let row_groups = row_groups.into_inner();
    if seen {
        return Ok(Decoded {
            row_count,
            rows: SampleKeys {
                layout,
                row_groups,
                series: None,
                seq: seqs,
            },
            notes: Vec::new(),
        });
    }
    let mut notes = Vec::new();
    if unknown_types > 0 {
        notes.push(format!(
            "{unknown_types} series with an unknown family_type read as `untyped`"
        ));
    }
    Ok(Decoded {
        row_count,
        rows: SampleKeys {
            layout,
            row_groups,
            series: Some(data),
            seq: seqs,
        },
        notes,
    })
}

/// Reads the rows `rows` selects of a `samples-*.parquet` file (of its row group `row_group`
/// alone, when given: `rows` then counts from that group's first row): their value and
/// timestamp, and their scrape when `with_seq` (the reader's second pass; a file whose rows
/// the first pass could place without it skips it). A timestamp column whose statistics say
/// it holds only nulls (vLLM sets no exposition timestamp) is not decoded.
pub(super) fn read_sample_values(
    path: &Path,
    row_group: Option<usize>,
    rows: RowSelection,
    with_seq: bool,
) -> Result<Decoded<Vec<ValueChunk>>, Problem> {
    let pick = |_: &[u8], meta: &ParquetMetaData| -> &'static [&'static str] {
        let ts_all_null = meta.row_groups().iter().all(|rg| {
            rg.columns()
                .iter()
                .filter(|c| c.column_path().string() == col::TIMESTAMP_MS)
                .all(|c| {
                    let nulls = c.statistics().and_then(|s| s.null_count_opt());
                    nulls.is_some_and(|n| i64::try_from(n) == Ok(c.num_values()))
                })
        });
        match (with_seq, ts_all_null) {
            (true, false) => &VALUE_COLUMNS,
            (true, true) => &VALUE_COLUMNS[..2],
            (false, false) => &VALUE_COLUMNS[1..],
            (false, true) => &VALUE_COLUMNS[1..2],
        }
    };
    let mut chunks = Vec::new();
    let mut row_count = 0u64;
    for b in read_part(path, Table::Samples, &pick, row_group, Some(rows))? {
        row_count += b.num_rows() as u64;
        let seq = match with_seq {
            true => Some(required::<UInt64Type>(&b, col::SCRAPE_SEQ)?.clone()),
            false => None,
        };
        chunks.push(ValueChunk {
            seq,
            value: required::<Float64Type>(&b, col::VALUE)?.clone(),
            timestamp_ms: prim_since::<Int64Type>(&b, col::TIMESTAMP_MS)?.cloned(),
        });
    }
    Ok(Decoded {
        row_count,
        rows: chunks,
        notes: Vec::new(),
    })
}

/// The earliest poll completion in a `gpu-*.parquet` file (`None` when it has no rows), from
/// its monotonic clock column alone: the reader's first pass checks the file this way and
/// decodes its readings only when the windows reach that time ([`read_gpu`]).
pub(super) fn read_gpu_first_completion(path: &Path) -> Result<Decoded<Option<i64>>, Problem> {
    let pick =
        |_: &[u8], _: &ParquetMetaData| -> &'static [&'static str] { &[col::COMPLETED_MONO_NS] };
    let mut first: Option<i64> = None;
    let mut row_count = 0u64;
    for b in read_part(path, Table::Gpu, &pick, None, None)? {
        let done = required::<Int64Type>(&b, col::COMPLETED_MONO_NS)?;
        if let Some(m) = done.values().iter().min() {
            first = Some(first.map_or(*m, |f| f.min(*m)));
        }
        row_count += b.num_rows() as u64;
    }
    Ok(Decoded {
        row_count,
        rows: first,
        notes: Vec::new(),
    })
}

/// Reads a `gpu-*.parquet` file.
pub(super) fn read_gpu(path: &Path) -> Result<Decoded<Vec<GpuPoll>>, Problem> {
    let mut rows = Vec::new();
    for b in read_batches(path, Table::Gpu)? {
        let seq = required::<UInt64Type>(&b, col::SEQ)?;
        let index = required::<UInt32Type>(&b, col::GPU_INDEX)?;
        let t = times(&b)?;
        let util = prim::<UInt32Type>(&b, col::UTIL_PCT)?;
        let mem_util = prim::<UInt32Type>(&b, col::MEM_UTIL_PCT)?;
        let power = prim::<Float64Type>(&b, col::POWER_W)?;
        let limit = prim::<Float64Type>(&b, col::POWER_LIMIT_W)?;
        let used = prim::<UInt64Type>(&b, col::VRAM_USED_BYTES)?;
        let total = prim::<UInt64Type>(&b, col::VRAM_TOTAL_BYTES)?;
        let temp = prim::<UInt32Type>(&b, col::TEMPERATURE_C)?;
        let clock = prim::<UInt32Type>(&b, col::SM_CLOCK_MHZ)?;
        let error = StrCol::new(&b, col::ERROR)?;
        // Format 1.5: a file written before it has no GPM columns, read as `None`.
        let sm_active = prim_since::<Float64Type>(&b, col::SM_ACTIVE_PCT)?;
        let sm_occupancy = prim_since::<Float64Type>(&b, col::SM_OCCUPANCY_PCT)?;
        let dram_bw = prim_since::<Float64Type>(&b, col::DRAM_BW_UTIL_PCT)?;
        let since = |a: Option<&PrimitiveArray<Float64Type>>, i| a.and_then(|a| opt(a, i));
        for i in 0..b.num_rows() {
            rows.push(GpuPoll {
                seq: seq.value(i),
                gpu_index: index.value(i),
                requested_at: WallNs(t[0].value(i)),
                completed_at: WallNs(t[1].value(i)),
                requested_mono: MonoNs(t[2].value(i)),
                completed_mono: MonoNs(t[3].value(i)),
                metrics: GpuMetrics {
                    util_pct: opt(util, i),
                    mem_util_pct: opt(mem_util, i),
                    power_w: opt(power, i),
                    power_limit_w: opt(limit, i),
                    vram_used_bytes: opt(used, i),
                    vram_total_bytes: opt(total, i),
                    temperature_c: opt(temp, i),
                    sm_clock_mhz: opt(clock, i),
                    error: error.get(i)?.map(str::to_string),
                    sm_active_pct: since(sm_active, i),
                    sm_occupancy_pct: since(sm_occupancy, i),
                    dram_bw_util_pct: since(dram_bw, i),
                },
            });
        }
    }
    Ok(Decoded {
        row_count: rows.len() as u64,
        rows,
        notes: Vec::new(),
    })
}

/// Reads a `host-*.parquet` file (format 1.4).
pub(super) fn read_host(path: &Path) -> Result<Decoded<Vec<HostSample>>, Problem> {
    let mut rows = Vec::new();
    for b in read_batches(path, Table::Host)? {
        let seq = required::<UInt64Type>(&b, col::SEQ)?;
        let t = times(&b)?;
        let pid = required::<UInt32Type>(&b, col::PID)?;
        let ppid = prim::<UInt32Type>(&b, col::PPID)?;
        let status = StrCol::new(&b, col::HOST_STATUS)?;
        let error = StrCol::new(&b, col::ERROR)?;
        let comm = StrCol::new(&b, col::COMM)?;
        let state = StrCol::new(&b, col::STATE)?;
        let start = prim::<UInt64Type>(&b, col::START_TICKS)?;
        let utime = prim::<UInt64Type>(&b, col::UTIME_TICKS)?;
        let stime = prim::<UInt64Type>(&b, col::STIME_TICKS)?;
        let rss = prim::<UInt64Type>(&b, col::RSS_BYTES)?;
        let threads = prim::<UInt32Type>(&b, col::THREADS)?;
        for i in 0..b.num_rows() {
            let s = status.required(i, col::HOST_STATUS)?;
            let status = HostStatus::from_name(s)
                .ok_or_else(|| format!("row {i}: unknown host status {s:?}"))?;
            // A reading exists when the row is `ok` and its counters are there.
            let reading = match (status, opt(start, i), opt(utime, i), opt(stime, i)) {
                (HostStatus::Ok, Some(start_ticks), Some(utime_ticks), Some(stime_ticks)) => {
                    Some(ProcReading {
                        pid: pid.value(i),
                        ppid: opt(ppid, i).unwrap_or(0),
                        comm: comm.get(i)?.unwrap_or_default().to_string(),
                        state: state.get(i)?.unwrap_or_default().to_string(),
                        start_ticks,
                        utime_ticks,
                        stime_ticks,
                        rss_bytes: opt(rss, i),
                        threads: opt(threads, i),
                    })
                }
                (HostStatus::Ok, ..) => {
                    return Err(Problem::Damaged(format!(
                        "row {i}: an `ok` host row without its CPU counters"
                    )))
                }
                _ => None,
            };
            rows.push(HostSample {
                seq: seq.value(i),
                requested_at: WallNs(t[0].value(i)),
                completed_at: WallNs(t[1].value(i)),
                requested_mono: MonoNs(t[2].value(i)),
                completed_mono: MonoNs(t[3].value(i)),
                pid: pid.value(i),
                status,
                error: error.get(i)?.map(str::to_string),
                reading,
            });
        }
    }
    Ok(Decoded {
        row_count: rows.len() as u64,
        rows,
        notes: Vec::new(),
    })
}
