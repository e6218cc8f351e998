//! `profile compact`: merges a recording's small segments (one a minute, as recorded) into a
//! few large ones (one an hour by default), so that a week of recording is tens of files,
//! not tens of thousands, and the samples compress better (a series' values of a whole hour
//! lie next to each other).
//!
//! What it guarantees:
//! - **Nothing is lost.** Only segments the reader reads without a problem are merged; a
//!   damaged, missing or orphaned file and its segment are left exactly as they are. Every
//!   merged file is read back and checked, row for row (a digest of every row of every
//!   column, independent of order, and the row count), against the files it replaces
//!   before any of them is touched.
//! - **Safe to interrupt and to re-run.** Merged files are written under hidden temporary
//!   names (`.compact-…tmp`, invisible to the reader). Before the first rename a journal
//!   (`.compact-journal.json`) lists every rename and deletion of the group; a re-run finds it
//!   and finishes the group first. While a journal exists the reader names it as a problem,
//!   so an analysis of a half-committed group says so at the top.
//! - **Same analysis.** Rows are only moved: scrapes and GPU polls keep their order, samples
//!   are reordered series-major (the format's row order) across the merged segments. No
//!   column, value or key-value metadata changes, except the added
//!   `profile.compacted_from`, which lists the files merged.
//! - **Idempotent.** A segment keeps the number of the first segment merged into it; a
//!   segment that already spans its whole time bucket is left alone, so a second run with the
//!   same span changes nothing.
//!
//! Segments are grouped by time, on the monotonic clock: segment `N` falls into bucket
//! `floor(first requested_mono_ns / span)`; consecutive segments of one bucket, with the same
//! format version and the same Arrow schema, are merged. `scrapes`/`samples` pairs, `gpu` and
//! `host` segments are grouped independently (they are numbered independently).

use super::checksum::{self, Hashing};
use super::reader::{self, FileReport};
use super::schema::{self, col, Table};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use digest::{row_hashes, Digest};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The journal of the group being committed; its presence means a compaction was interrupted.
pub const JOURNAL_FILE: &str = ".compact-journal.json";
/// Prefix of the temporary files a compaction writes (hidden, ignored by the reader).
const TEMP_PREFIX: &str = ".compact-";
/// Parquet key-value metadata key listing the files a compacted file was merged from.
pub const COMPACTED_FROM_KEY: &str = "profile.compacted_from";
/// The key under which Parquet's Arrow writer stores the Arrow schema; it writes its own.
const ARROW_SCHEMA_KEY: &str = "ARROW:schema";
/// Default time span of one compacted segment. Ours: an hour at 4 Hz is ~6 M samples of a
/// real vLLM body, ~2 MB on disk; a week becomes 168 file pairs, and one hour's decoded rows
/// (~300 MB at most while merging) fit on any host that runs vLLM.
pub const DEFAULT_SPAN: Duration = Duration::from_secs(3600);
/// Rows per row group of a compacted samples file. Ours: bounds what one written chunk holds
/// in memory beside the decoded sources; zstd compresses each page (up to the writer's 16 MiB
/// page limit) on its own, so larger groups gain nothing measurable.
const ROW_GROUP_ROWS: usize = 1 << 20;

/// What went wrong. Whatever it is, no file that was not already replaced has been touched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompactError {
    /// The recording could not be read at all (no manifest, unsupported version, ...).
    #[error(transparent)]
    Recording(#[from] super::RecordingError),
    /// A file could not be read, written, renamed or removed.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A merged file did not read back as the rows of the files it was to replace. The
    /// originals are untouched and the temporary file removed.
    #[error(
        "{path}: read back differs from the files it merges ({message}); nothing was replaced"
    )]
    Verify {
        /// The merged (temporary) file.
        path: PathBuf,
        /// How it differed.
        message: String,
    },
    /// The span is zero.
    #[error("the span must be longer than zero")]
    ZeroSpan,
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> CompactError {
    CompactError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// One merge that was done: `sources` (file names, in order) became `target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Merge {
    /// The file written (it keeps the first source's name).
    pub target: String,
    /// The files it replaced, in segment order (the target's old self first, when it existed:
    /// a segment whose scrapes all failed has no samples file of its own).
    pub sources: Vec<String>,
    /// Rows it holds.
    pub rows: u64,
    /// Its size on disk.
    pub bytes: u64,
}

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CompactSummary {
    /// Whether an interrupted compaction was finished first.
    pub recovered: bool,
    /// Each merge, in table and segment order.
    pub merges: Vec<Merge>,
    /// Segment files before and after.
    pub files_before: usize,
    /// Segment files after.
    pub files_after: usize,
    /// Bytes of segment files before.
    pub bytes_before: u64,
    /// Bytes of segment files after.
    pub bytes_after: u64,
    /// Files left alone because the reader found a problem with them (or with their
    /// segment's partner), with the problem.
    pub left_alone: Vec<(String, String)>,
}

/// The journal: what committing one group does, in order. Re-applying it is harmless.
#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    /// `(temporary, final)` names to rename, in order (samples before scrapes, as the
    /// recorder does).
    renames: Vec<(String, String)>,
    /// Names to remove once every rename is done.
    deletes: Vec<String>,
}

/// Merges the segments of the recording in `dir` into segments of `span` each; see the module
/// documentation for what is guaranteed.
pub fn compact(dir: &Path, span: Duration) -> Result<CompactSummary, CompactError> {
    let span_ns = i64::try_from(span.as_nanos()).unwrap_or(i64::MAX);
    if span_ns == 0 {
        return Err(CompactError::ZeroSpan);
    }
    let mut summary = CompactSummary {
        recovered: recover(dir)?,
        ..CompactSummary::default()
    };
    // The reader decides what is intact: a file it has any problem with is not touched.
    let rec = reader::open(dir)?;
    let mut flagged: BTreeMap<(Table, u64), String> = BTreeMap::new();
    let mut segments: BTreeMap<(Table, u64), &FileReport> = BTreeMap::new();
    for f in &rec.files {
        let Some(parsed) = f
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(Table::parse_file_name)
        else {
            continue;
        };
        if let Some(p) = &f.problem {
            flagged.insert(parsed, p.clone());
        } else if f.bytes > 0 {
            segments.insert(parsed, f);
        }
    }
    summary.files_before = segments.len();
    summary.bytes_before = segments.values().map(|f| f.bytes).sum();
    for ((t, n), why) in &flagged {
        summary.left_alone.push((t.file_name(*n), why.clone()));
    }

    let numbers = |t: Table| -> BTreeSet<u64> {
        segments
            .keys()
            .chain(flagged.keys())
            .filter(|(table, _)| *table == t)
            .map(|(_, n)| *n)
            .collect()
    };
    // scrapes/samples pairs: segment N is one unit, eligible when neither file is flagged and
    // its scrapes file exists (a samples file may be absent when no scrape had a sample).
    let pair_numbers: BTreeSet<u64> = numbers(Table::Scrapes)
        .union(&numbers(Table::Samples))
        .copied()
        .collect();
    let pair_units: Vec<Unit> = pair_numbers
        .iter()
        .map(|&n| {
            let ok = segments.contains_key(&(Table::Scrapes, n))
                && !flagged.contains_key(&(Table::Scrapes, n))
                && !flagged.contains_key(&(Table::Samples, n));
            unit(dir, Table::Scrapes, n, ok, span_ns)
        })
        .collect::<Result<_, _>>()?;
    for group in groups(&pair_units) {
        let mut tables = vec![Table::Samples, Table::Scrapes];
        tables.retain(|t| group.iter().any(|n| segments.contains_key(&(*t, *n))));
        summary
            .merges
            .extend(merge_group(dir, &tables, &group, &segments)?);
    }
    // Tables numbered on their own (GPU polls, host samples): each segment is one unit.
    for table in [Table::Gpu, Table::Host] {
        let units: Vec<Unit> = numbers(table)
            .iter()
            .map(|&n| {
                let ok = segments.contains_key(&(table, n));
                unit(dir, table, n, ok, span_ns)
            })
            .collect::<Result<_, _>>()?;
        for group in groups(&units) {
            summary
                .merges
                .extend(merge_group(dir, &[table], &group, &segments)?);
        }
    }

    let merged_away: BTreeSet<String> = summary
        .merges
        .iter()
        .flat_map(|m| m.sources.iter().filter(|s| **s != m.target).cloned())
        .collect();
    let rewritten: BTreeMap<&str, u64> = summary
        .merges
        .iter()
        .map(|m| (m.target.as_str(), m.bytes))
        .collect();
    let mut after = 0usize;
    let mut bytes_after = 0u64;
    for ((t, n), f) in &segments {
        let name = t.file_name(*n);
        if merged_away.contains(&name) {
            continue;
        }
        after += 1;
        bytes_after += rewritten.get(name.as_str()).copied().unwrap_or(f.bytes);
    }
    summary.files_after = after;
    summary.bytes_after = bytes_after;
    Ok(summary)
}

/// One segment as the grouping sees it.
struct Unit {
    n: u64,
    /// `(bucket, format version, schema)` when the segment may be merged.
    key: Option<(i64, String, arrow_schema::Fields)>,
}

fn unit(dir: &Path, table: Table, n: u64, ok: bool, span_ns: i64) -> Result<Unit, CompactError> {
    if !ok {
        return Ok(Unit { n, key: None });
    }
    let path = dir.join(table.file_name(n));
    let file = read(&path)?;
    let first = file
        .batches
        .iter()
        .filter_map(|b| min_i64(b, col::REQUESTED_MONO_NS))
        .min();
    Ok(Unit {
        n,
        key: first.map(|t| {
            (
                t.div_euclid(span_ns),
                file.version,
                file.schema.fields().clone(),
            )
        }),
    })
}

/// Runs of two or more consecutive mergeable units with the same key.
fn groups(units: &[Unit]) -> Vec<Vec<u64>> {
    let mut out = Vec::new();
    let mut run: Vec<u64> = Vec::new();
    let mut run_key: Option<&(i64, String, arrow_schema::Fields)> = None;
    let mut close = |run: &mut Vec<u64>| {
        if run.len() > 1 {
            out.push(std::mem::take(run));
        }
        run.clear();
    };
    for u in units {
        match (&u.key, run_key) {
            (Some(k), Some(r)) if k.0 == r.0 && k.1 == r.1 && k.2 == r.2 => run.push(u.n),
            (Some(k), _) => {
                close(&mut run);
                run.push(u.n);
                run_key = Some(k);
            }
            (None, _) => {
                close(&mut run);
                run_key = None;
            }
        }
    }
    close(&mut run);
    out
}

/// A Parquet file read whole.
struct ReadFile {
    batches: Vec<RecordBatch>,
    schema: SchemaRef,
    version: String,
    metadata: Vec<KeyValue>,
    rows: u64,
}

fn read(path: &Path) -> Result<ReadFile, CompactError> {
    let bytes = bytes::Bytes::from(fs::read(path).map_err(|e| file_err(path, e))?);
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).map_err(|e| file_err(path, e))?;
    let metadata: Vec<KeyValue> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned()
        .unwrap_or_default();
    // A source whose pages changed since it was written is refused: merged, its values would
    // be sealed under a new, valid checksum.
    checksum::verify_file(&bytes, Some(&metadata)).map_err(|e| file_err(path, e))?;
    let version = metadata
        .iter()
        .find(|kv| kv.key == schema::VERSION_KEY)
        .and_then(|kv| kv.value.clone())
        .unwrap_or_default();
    let schema = Arc::clone(builder.schema());
    let reader = builder
        .with_batch_size(64 * 1024)
        .build()
        .map_err(|e| file_err(path, e))?;
    let mut batches = Vec::new();
    let mut rows = 0u64;
    for b in reader {
        let b = b.map_err(|e| file_err(path, e))?;
        rows += b.num_rows() as u64;
        batches.push(b);
    }
    Ok(ReadFile {
        batches,
        schema,
        version,
        metadata,
        rows,
    })
}

fn min_i64(b: &RecordBatch, column: &str) -> Option<i64> {
    let a = b.column_by_name(column)?.as_primitive_opt::<Int64Type>()?;
    a.iter().flatten().min()
}

/// Merges segments `numbers` of `tables` (the samples before the scrapes of a pair): writes
/// each merged file, verifies it, then commits the group through the journal.
fn merge_group(
    dir: &Path,
    tables: &[Table],
    numbers: &[u64],
    segments: &BTreeMap<(Table, u64), &FileReport>,
) -> Result<Vec<Merge>, CompactError> {
    let target_n = numbers[0];
    let mut staged: Vec<(PathBuf, Merge)> = Vec::new();
    let cleanup = |staged: &[(PathBuf, Merge)]| {
        for (tmp, _) in staged {
            let _ = fs::remove_file(tmp);
        }
    };
    for &table in tables {
        let sources: Vec<u64> = numbers
            .iter()
            .copied()
            .filter(|n| segments.contains_key(&(table, *n)))
            .collect();
        match stage(dir, table, target_n, &sources) {
            Ok(s) => staged.push(s),
            Err(e) => {
                cleanup(&staged);
                return Err(e);
            }
        }
    }
    let journal = Journal {
        renames: staged
            .iter()
            .map(|(tmp, m)| (name_of(tmp), m.target.clone()))
            .collect(),
        // Samples before scrapes, as at recording: a crash between the two leaves samples
        // whose scrapes are gone, which the reader reports, never the reverse.
        deletes: staged
            .iter()
            .flat_map(|(_, m)| m.sources.iter().filter(|s| **s != m.target).cloned())
            .collect(),
    };
    let text = serde_json::to_vec_pretty(&journal).map_err(|e| file_err(dir, e))?;
    if let Err(e) = write_synced(&dir.join(JOURNAL_FILE), &text) {
        cleanup(&staged);
        let _ = fs::remove_file(dir.join(JOURNAL_FILE));
        return Err(e);
    }
    sync_dir(dir);
    #[cfg(test)]
    if INTERRUPT.with(std::cell::Cell::get) == Some(Interrupt::AfterJournal) {
        return Err(file_err(dir, "interrupted (test) after the journal"));
    }
    apply(dir, &journal)?;
    Ok(staged.into_iter().map(|(_, m)| m).collect())
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Writes the merge of `sources` of `table` under a temporary name and checks it; returns
/// the temporary path and what the merge will be once renamed.
fn stage(
    dir: &Path,
    table: Table,
    target_n: u64,
    sources: &[u64],
) -> Result<(PathBuf, Merge), CompactError> {
    let target = table.file_name(target_n);
    let tmp = dir.join(format!("{TEMP_PREFIX}{target}.tmp"));
    let mut files = Vec::with_capacity(sources.len());
    for &n in sources {
        files.push(read(&dir.join(table.file_name(n)))?);
    }
    let Some(first) = files.first() else {
        return Err(file_err(&dir.join(&target), "no file to merge"));
    };
    // The fields alone: the reader puts the file's key-value metadata into the Arrow
    // schema's, and the writer writes it back from `metadata` below.
    let schema = Arc::new(arrow_schema::Schema::new(first.schema.fields().clone()));
    let source_names: Vec<String> = sources.iter().map(|n| table.file_name(*n)).collect();
    let mut metadata: Vec<KeyValue> = first
        .metadata
        .iter()
        .filter(|kv| {
            ![COMPACTED_FROM_KEY, ARROW_SCHEMA_KEY, checksum::CHECKSUM_KEY]
                .contains(&kv.key.as_str())
        })
        .cloned()
        .collect();
    // A source that was itself compacted passes its own list on.
    let from: Vec<String> = files
        .iter()
        .zip(&source_names)
        .flat_map(
            |(f, name)| match f.metadata.iter().find(|kv| kv.key == COMPACTED_FROM_KEY) {
                Some(KeyValue {
                    value: Some(list), ..
                }) => list.split(',').map(str::to_string).collect(),
                _ => vec![name.clone()],
            },
        )
        .collect();
    metadata.push(KeyValue::new(
        COMPACTED_FROM_KEY.to_string(),
        from.join(","),
    ));
    let batches: Vec<&RecordBatch> = files.iter().flat_map(|f| f.batches.iter()).collect();
    let rows: u64 = files.iter().map(|f| f.rows).sum();
    let expected = Digest::of(&batches, &tmp)?;

    let result = (|| {
        let props = schema::writer_properties(table)
            .into_builder()
            .set_key_value_metadata(Some(metadata))
            .build();
        let mut f = File::create(&tmp).map_err(|e| file_err(&tmp, e))?;
        let mut w = ArrowWriter::try_new(Hashing::new(&mut f), Arc::clone(&schema), Some(props))
            .map_err(|e| file_err(&tmp, e))?;
        if table == Table::Samples {
            for chunk in series_major(&batches, &tmp)? {
                w.write(&chunk).map_err(|e| file_err(&tmp, e))?;
                w.flush().map_err(|e| file_err(&tmp, e))?;
            }
        } else {
            for b in &batches {
                w.write(b).map_err(|e| file_err(&tmp, e))?;
            }
        }
        checksum::seal(&mut w).map_err(|e| file_err(&tmp, e))?;
        w.close().map_err(|e| file_err(&tmp, e))?;
        f.sync_all().map_err(|e| file_err(&tmp, e))?;
        let back = read(&tmp)?;
        let back_refs: Vec<&RecordBatch> = back.batches.iter().collect();
        let got = Digest::of(&back_refs, &tmp)?;
        if back.rows != rows || got != expected {
            return Err(CompactError::Verify {
                path: tmp.clone(),
                message: format!("{} rows read back of {rows}", back.rows),
            });
        }
        if back.schema.fields() != schema.fields() {
            return Err(CompactError::Verify {
                path: tmp.clone(),
                message: "the schema changed".to_string(),
            });
        }
        let bytes = fs::metadata(&tmp).map_err(|e| file_err(&tmp, e))?.len();
        Ok(Merge {
            target: target.clone(),
            sources: source_names,
            rows,
            bytes,
        })
    })();
    match result {
        Ok(m) => Ok((tmp, m)),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// The samples of `batches` reordered series-major (series in order of first appearance,
/// each series' rows in their original order, which is `scrape_seq` order), in chunks of at
/// most [`ROW_GROUP_ROWS`] rows. A series is every column but the scrape, the value and the
/// timestamp (so a column a later format adds to the series key is part of it). Rows are
/// only permuted: the digest check downstream proves it.
fn series_major(batches: &[&RecordBatch], path: &Path) -> Result<Vec<RecordBatch>, CompactError> {
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let schema = first.schema();
    let key_columns: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            ![col::SCRAPE_SEQ, col::VALUE, col::TIMESTAMP_MS].contains(&f.name().as_str())
        })
        .map(|(i, _)| i)
        .collect();
    // Ordinal of each row's series, by first appearance. A hash collision would only put two
    // series' rows side by side: the order is for compression, never for meaning.
    let mut ordinal_of: HashMap<u64, u32> = HashMap::new();
    let mut ordinals: Vec<Vec<u32>> = Vec::with_capacity(batches.len());
    for b in batches {
        let hashes = row_hashes(b, &key_columns, path)?;
        ordinals.push(
            hashes
                .into_iter()
                .map(|h| {
                    let next = u32::try_from(ordinal_of.len()).unwrap_or(u32::MAX);
                    *ordinal_of.entry(h).or_insert(next)
                })
                .collect(),
        );
    }
    // A stable counting sort by ordinal.
    let series = ordinal_of.len();
    let mut start = vec![0usize; series + 1];
    for o in ordinals.iter().flatten() {
        start[*o as usize + 1] += 1;
    }
    for i in 0..series {
        start[i + 1] += start[i];
    }
    let total = start[series];
    let mut order = vec![(0usize, 0usize); total];
    for (bi, os) in ordinals.iter().enumerate() {
        for (ri, o) in os.iter().enumerate() {
            let slot = &mut start[*o as usize];
            order[*slot] = (bi, ri);
            *slot += 1;
        }
    }
    let mut out = Vec::new();
    for chunk in order.chunks(ROW_GROUP_ROWS) {
        let columns = (0..schema.fields().len())
            .map(|c| {
                let arrays: Vec<&dyn Array> =
                    batches.iter().map(|b| b.column(c).as_ref()).collect();
                arrow_select::interleave::interleave(&arrays, chunk)
            })
            .collect::<Result<Vec<ArrayRef>, _>>()
            .map_err(|e| file_err(path, e))?;
        out.push(
            RecordBatch::try_new(Arc::clone(&schema), columns).map_err(|e| file_err(path, e))?,
        );
    }
    Ok(out)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), CompactError> {
    use std::io::Write;
    let mut f = File::create(path).map_err(|e| file_err(path, e))?;
    f.write_all(bytes).map_err(|e| file_err(path, e))?;
    f.sync_all().map_err(|e| file_err(path, e))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Carries out a journal: every rename whose temporary file is still there, then every
/// deletion, then removes the journal. Each step is harmless to repeat.
fn apply(dir: &Path, journal: &Journal) -> Result<(), CompactError> {
    for (tmp, final_name) in &journal.renames {
        let from = dir.join(tmp);
        if from.exists() {
            let to = dir.join(final_name);
            fs::rename(&from, &to).map_err(|e| file_err(&to, e))?;
            #[cfg(test)]
            if INTERRUPT.with(std::cell::Cell::get) == Some(Interrupt::AfterFirstRename) {
                return Err(file_err(&to, "interrupted (test) after a rename"));
            }
        }
    }
    sync_dir(dir);
    for name in &journal.deletes {
        let p = dir.join(name);
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(file_err(&p, e)),
        }
    }
    sync_dir(dir);
    let j = dir.join(JOURNAL_FILE);
    fs::remove_file(&j).map_err(|e| file_err(&j, e))?;
    sync_dir(dir);
    Ok(())
}

/// Finishes an interrupted compaction (a journal left behind) and removes temporary files a
/// compaction left before it wrote its journal. Returns whether a journal was found.
fn recover(dir: &Path) -> Result<bool, CompactError> {
    let journal_path = dir.join(JOURNAL_FILE);
    let recovered = match fs::read(&journal_path) {
        Ok(text) => {
            let journal: Journal = serde_json::from_slice(&text).map_err(|e| {
                file_err(
                    &journal_path,
                    format!("unreadable journal of an interrupted compaction: {e}"),
                )
            })?;
            apply(dir, &journal)?;
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(file_err(&journal_path, e)),
    };
    let entries = fs::read_dir(dir).map_err(|e| file_err(dir, e))?;
    for e in entries {
        let e = e.map_err(|e| file_err(dir, e))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TEMP_PREFIX) && name.ends_with(".tmp") {
            fs::remove_file(e.path()).map_err(|err| file_err(&e.path(), err))?;
        }
    }
    Ok(recovered)
}

/// Where a test stops a compaction, as a crash would.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupt {
    AfterJournal,
    AfterFirstRename,
}

#[cfg(test)]
thread_local! {
    static INTERRUPT: std::cell::Cell<Option<Interrupt>> = const { std::cell::Cell::new(None) };
}

mod digest;

#[cfg(test)]
mod tests;
