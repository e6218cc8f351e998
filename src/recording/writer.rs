//! Writers for the scrape/sample files and the GPU files, and the atomic manifest write.
//!
//! Each writer buffers one segment in memory and writes it as one Parquet file per table when
//! it rotates: to a hidden temporary name, footer written by `close()`, fsynced, then renamed.
//! A crash therefore loses at most the segment in memory and never leaves a half-written file
//! under a real name; a leftover `.…tmp` file is what an interrupted write looks like.

mod host;
mod segment;

pub use host::HostWriter;

use super::checksum::{self, Hashing};
use super::schema::{self, Table};
use super::{GpuPoll, Manifest, RecordingError, ScrapeMeta};
use crate::promtext::Exposition;
use arrow_array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use parquet::arrow::ArrowWriter;
use segment::ScrapeSegment;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file that a rotation wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Its path.
    pub path: PathBuf,
    /// Its size on disk.
    pub bytes: u64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RecordingError + '_ {
    move |error| RecordingError::Io {
        path: path.to_path_buf(),
        error,
    }
}

fn pq_err(path: &Path, e: impl std::fmt::Display) -> RecordingError {
    RecordingError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Makes renames inside `dir` durable. Directories cannot be opened for sync on every
/// platform; where that fails, the rename is still atomic, only its durability is weaker.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `bytes` to `dir/name` through `dir/.name.tmp`, fsync and rename.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), RecordingError> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    let result = (|| {
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(bytes).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_err(&path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    sync_dir(dir);
    result
}

/// Writes `manifest.json` atomically (temporary file + fsync + rename), pretty-printed.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), RecordingError> {
    let path = dir.join(schema::MANIFEST_FILE);
    let mut json = serde_json::to_vec_pretty(manifest).map_err(|e| RecordingError::Manifest {
        path: path.clone(),
        message: e.to_string(),
    })?;
    json.push(b'\n');
    write_atomic(dir, schema::MANIFEST_FILE, &json)
}

/// Writes one batch as segment `n` of `table` in `dir`, atomically.
fn write_segment(
    dir: &Path,
    table: Table,
    n: u64,
    batch: &RecordBatch,
) -> Result<WrittenFile, RecordingError> {
    write_segment_with(dir, table, n, batch, schema::writer_properties(table))
}

fn write_segment_with(
    dir: &Path,
    table: Table,
    n: u64,
    batch: &RecordBatch,
    props: parquet::file::properties::WriterProperties,
) -> Result<WrittenFile, RecordingError> {
    let tmp = dir.join(table.temp_file_name(n));
    let path = dir.join(table.file_name(n));
    let result = (|| {
        let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
        let mut w = ArrowWriter::try_new(Hashing::new(&mut file), batch.schema(), Some(props))
            .map_err(|e| pq_err(&tmp, e))?;
        w.write(batch).map_err(|e| pq_err(&tmp, e))?;
        checksum::seal(&mut w).map_err(|e| pq_err(&tmp, e))?;
        // close() writes the footer; without it the file is unreadable.
        w.close().map_err(|e| pq_err(&tmp, e))?;
        file.sync_all().map_err(io_err(&tmp))?;
        let bytes = file.metadata().map_err(io_err(&tmp))?.len();
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        Ok(WrittenFile { path, bytes })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The segment number after the highest one of `tables` already in `dir`, so that a writer
/// opened on a directory that already holds segments never overwrites one.
fn first_free_segment(dir: &Path, tables: &[Table]) -> Result<u64, RecordingError> {
    let mut next = 0;
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        if let Some((t, n)) = entry.file_name().to_str().and_then(Table::parse_file_name) {
            if tables.contains(&t) {
                next = next.max(n.saturating_add(1));
            }
        }
    }
    Ok(next)
}

/// Sample rows buffered before they are written out as one row group of the segment's
/// samples file. Ours: a default vLLM segment (~425 series x 240 scrapes, ~102k rows) stays
/// well under it, so it is still one row group and compresses as measured in
/// `docs/recording-format.md`; at 100,000 series (a pathological exporter) a group is ~1.3 s
/// of scrapes and ~19 MB of buffered rows (36 bytes a row), which bounds the writer's memory
/// whatever the cardinality or the rotation period (`docs/decisions.md`).
pub const ROW_GROUP_ROWS: usize = 1 << 19;

/// The samples file of the segment being recorded, open under its temporary name once a first
/// row group was written; renamed to its real name only when the segment is complete.
struct OpenSamples {
    tmp: PathBuf,
    writer: ArrowWriter<Hashing<File>>,
}

/// Buffers scrape attempts and their samples; writes `scrapes-NNNNNN.parquet` and
/// `samples-NNNNNN.parquet` at each rotation. Sample rows beyond [`ROW_GROUP_ROWS`] are
/// written before the rotation, as row groups of the samples file under its temporary name.
pub struct ScrapeWriter {
    dir: PathBuf,
    next_segment: u64,
    segment: ScrapeSegment,
    samples: Option<OpenSamples>,
    row_group_rows: usize,
}

impl ScrapeWriter {
    /// A writer into `dir` (which must exist), starting at segment 0 (or, if `dir` already
    /// holds scrape or sample segments, after the highest of them).
    pub fn new(dir: &Path) -> Result<Self, RecordingError> {
        Self::with_row_group_rows(dir, ROW_GROUP_ROWS)
    }

    /// [`ScrapeWriter::new`] with another row-group size (at least 1), for tests and
    /// measurements.
    pub fn with_row_group_rows(dir: &Path, rows: usize) -> Result<Self, RecordingError> {
        Ok(ScrapeWriter {
            dir: dir.to_path_buf(),
            next_segment: first_free_segment(dir, &[Table::Scrapes, Table::Samples])?,
            segment: ScrapeSegment::default(),
            samples: None,
            row_group_rows: rows.max(1),
        })
    }

    /// Adds one attempt. `exposition` is the parsed body of a successful scrape, `None` for a
    /// failed one. When the buffered rows reach the row-group size they are written out as a
    /// row group; on a write error the segment is dropped (memory stays bounded when the disk
    /// is full) and its temporary file removed.
    pub fn push(
        &mut self,
        meta: &ScrapeMeta,
        exposition: Option<&Exposition<'_>>,
    ) -> Result<(), RecordingError> {
        self.segment.push(meta, exposition);
        if self.segment.sample_rows() >= self.row_group_rows {
            if let Err(e) = self.flush_row_group() {
                self.abandon_segment();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Number of sample rows buffered in memory (not yet written as a row group).
    pub fn buffered_samples(&self) -> usize {
        self.segment.sample_rows()
    }

    /// Writes the buffered rows as one row group of the current segment's samples file,
    /// opening it under its temporary name first if needed.
    fn flush_row_group(&mut self) -> Result<(), RecordingError> {
        let n = self.next_segment;
        let tmp = self.dir.join(Table::Samples.temp_file_name(n));
        let batch = self.segment.samples_batch().map_err(|e| pq_err(&tmp, e))?;
        if self.samples.is_none() {
            let file = File::create(&tmp).map_err(io_err(&tmp))?;
            let props = schema::writer_properties(Table::Samples);
            let writer = ArrowWriter::try_new(Hashing::new(file), batch.schema(), Some(props))
                .map_err(|e| pq_err(&tmp, e))?;
            self.samples = Some(OpenSamples { tmp, writer });
        }
        if let Some(open) = &mut self.samples {
            open.writer
                .write(&batch)
                .map_err(|e| pq_err(&open.tmp, e))?;
            // flush() ends the row group: its pages go to the file and leave memory.
            open.writer.flush().map_err(|e| pq_err(&open.tmp, e))?;
        }
        self.segment.clear_rows();
        Ok(())
    }

    /// Drops the segment in memory and the temporary file of its samples, if one was begun.
    fn abandon_segment(&mut self) {
        self.segment = ScrapeSegment::default();
        if let Some(open) = self.samples.take() {
            let tmp = open.tmp.clone();
            drop(open);
            let _ = fs::remove_file(tmp);
        }
        self.next_segment += 1;
    }

    /// Writes the segment's samples file: its last row group, the footer, fsync, and the
    /// rename to the real name. Returns `None` when the segment has no sample at all.
    fn finish_samples(&mut self) -> Result<Option<WrittenFile>, RecordingError> {
        let n = self.next_segment;
        if self.samples.is_none() {
            if self.segment.sample_rows() == 0 {
                return Ok(None);
            }
            // The usual case: the whole segment fits one row group, written in one go.
            let path = self.dir.join(Table::Samples.file_name(n));
            let batch = self.segment.samples_batch().map_err(|e| pq_err(&path, e))?;
            return write_segment(&self.dir, Table::Samples, n, &batch).map(Some);
        }
        if self.segment.sample_rows() > 0 {
            self.flush_row_group()?;
        }
        let Some(mut open) = self.samples.take() else {
            return Ok(None);
        };
        let tmp = open.tmp.clone();
        let path = self.dir.join(Table::Samples.file_name(n));
        let result = (|| {
            checksum::seal(&mut open.writer).map_err(|e| pq_err(&tmp, e))?;
            // finish() writes the footer; without it the file is unreadable.
            open.writer.finish().map_err(|e| pq_err(&tmp, e))?;
            let file = open.writer.inner().get_ref();
            file.sync_all().map_err(io_err(&tmp))?;
            let bytes = file.metadata().map_err(io_err(&tmp))?.len();
            fs::rename(&tmp, &path).map_err(io_err(&path))?;
            Ok(WrittenFile { path, bytes })
        })();
        drop(open);
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map(Some)
    }

    /// Writes the segment (if it holds anything) and starts the next one. The samples file is
    /// renamed into place before the scrapes file, so a crash between the two leaves samples
    /// without their scrapes (reported by the reader), never scrapes that silently lack
    /// samples. On error the segment is dropped, so memory stays bounded when the disk is full.
    pub fn rotate(&mut self) -> Result<Vec<WrittenFile>, RecordingError> {
        if self.segment.is_empty() && self.samples.is_none() {
            return Ok(Vec::new());
        }
        let result = self.write_segment_files();
        self.abandon_segment();
        result
    }

    fn write_segment_files(&mut self) -> Result<Vec<WrittenFile>, RecordingError> {
        let n = self.next_segment;
        let mut written = Vec::with_capacity(2);
        written.extend(self.finish_samples()?);
        let path = self.dir.join(Table::Scrapes.file_name(n));
        let batch = self.segment.scrapes_batch().map_err(|e| pq_err(&path, e))?;
        written.push(write_segment(&self.dir, Table::Scrapes, n, &batch)?);
        sync_dir(&self.dir);
        Ok(written)
    }

    /// Writes what is buffered and closes the writer.
    pub fn finish(mut self) -> Result<Vec<WrittenFile>, RecordingError> {
        self.rotate()
    }
}

impl Drop for ScrapeWriter {
    /// A writer dropped without `finish` leaves no temporary file behind.
    fn drop(&mut self) {
        if let Some(open) = self.samples.take() {
            let tmp = open.tmp.clone();
            drop(open);
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Buffers GPU polls; writes `gpu-NNNNNN.parquet` at each rotation.
pub struct GpuWriter {
    dir: PathBuf,
    next_segment: u64,
    polls: Vec<GpuPoll>,
}

impl GpuWriter {
    /// A writer into `dir` (which must exist), starting at segment 0 (or, if `dir` already
    /// holds GPU segments, after the highest of them).
    pub fn new(dir: &Path) -> Result<Self, RecordingError> {
        Ok(GpuWriter {
            dir: dir.to_path_buf(),
            next_segment: first_free_segment(dir, &[Table::Gpu])?,
            polls: Vec::new(),
        })
    }

    /// Adds one poll of one GPU.
    pub fn push(&mut self, poll: &GpuPoll) -> Result<(), RecordingError> {
        self.polls.push(poll.clone());
        Ok(())
    }

    /// Writes the buffered segment (if it holds anything) and starts the next one. On error
    /// the segment is dropped.
    pub fn rotate(&mut self) -> Result<Vec<WrittenFile>, RecordingError> {
        if self.polls.is_empty() {
            return Ok(Vec::new());
        }
        let polls = std::mem::take(&mut self.polls);
        let n = self.next_segment;
        self.next_segment += 1;
        let path = self.dir.join(Table::Gpu.file_name(n));
        let batch = gpu_batch(&polls).map_err(|e| pq_err(&path, e))?;
        let written = write_segment(&self.dir, Table::Gpu, n, &batch)?;
        sync_dir(&self.dir);
        Ok(vec![written])
    }

    /// Writes what is buffered and closes the writer.
    pub fn finish(mut self) -> Result<Vec<WrittenFile>, RecordingError> {
        self.rotate()
    }
}

fn gpu_batch(p: &[GpuPoll]) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let u32s = |f: fn(&GpuPoll) -> Option<u32>| -> ArrayRef {
        Arc::new(p.iter().map(f).collect::<UInt32Array>())
    };
    let u64s = |f: fn(&GpuPoll) -> Option<u64>| -> ArrayRef {
        Arc::new(p.iter().map(f).collect::<UInt64Array>())
    };
    let f64s = |f: fn(&GpuPoll) -> Option<f64>| -> ArrayRef {
        Arc::new(p.iter().map(f).collect::<Float64Array>())
    };
    let i64s = |f: fn(&GpuPoll) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(p.iter().map(f)))
    };
    let cols: Vec<ArrayRef> = vec![
        Arc::new(UInt64Array::from_iter_values(p.iter().map(|g| g.seq))),
        Arc::new(UInt32Array::from_iter_values(p.iter().map(|g| g.gpu_index))),
        i64s(|g| g.requested_at.0),
        i64s(|g| g.completed_at.0),
        i64s(|g| g.requested_mono.0),
        i64s(|g| g.completed_mono.0),
        u32s(|g| g.metrics.util_pct),
        u32s(|g| g.metrics.mem_util_pct),
        f64s(|g| g.metrics.power_w),
        f64s(|g| g.metrics.power_limit_w),
        u64s(|g| g.metrics.vram_used_bytes),
        u64s(|g| g.metrics.vram_total_bytes),
        u32s(|g| g.metrics.temperature_c),
        u32s(|g| g.metrics.sm_clock_mhz),
        Arc::new(
            p.iter()
                .map(|g| g.metrics.error.as_deref())
                .collect::<StringArray>(),
        ),
        f64s(|g| g.metrics.sm_active_pct),
        f64s(|g| g.metrics.sm_occupancy_pct),
        f64s(|g| g.metrics.dram_bw_util_pct),
    ];
    RecordBatch::try_new(Table::Gpu.schema(), cols)
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests {
    use super::testutil::{self, ok_meta, Synth};
    use super::*;
    use crate::recording::ScrapeStatus;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, UInt64Type};
    use arrow_array::Array;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn read_batch(path: &Path) -> RecordBatch {
        let b = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
        let batches: Vec<RecordBatch> = b
            .with_batch_size(1 << 20)
            .build()
            .unwrap()
            .map(|b| b.unwrap())
            .collect();
        assert_eq!(batches.len(), 1);
        batches.into_iter().next().unwrap()
    }

    #[test]
    fn manifest_write_is_atomic_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = testutil::manifest();
        write_manifest(dir.path(), &m).unwrap();
        m.stop_reason = None;
        m.totals = None;
        // A rewrite replaces the file whole and leaves no temporary behind.
        write_manifest(dir.path(), &m).unwrap();
        assert_eq!(names(dir.path()), vec!["manifest.json"]);
        let text = fs::read_to_string(dir.path().join("manifest.json")).unwrap();
        assert!(
            text.contains(&format!(
                "\n  \"format_version\": \"{}\"",
                schema::FORMAT_VERSION
            )),
            "not pretty: {text}"
        );
        let back: Manifest = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn empty_segments_write_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ScrapeWriter::new(dir.path()).unwrap();
        assert!(w.rotate().unwrap().is_empty());
        let g = GpuWriter::new(dir.path()).unwrap();
        assert!(g.finish().unwrap().is_empty());
        assert!(w.finish().unwrap().is_empty());
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn rotation_names_files_and_skips_empty_samples() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ScrapeWriter::new(dir.path()).unwrap();
        let e = testutil::hostile(0);
        w.push(&ok_meta(0, e.sample_count()), Some(&e)).unwrap();
        let first = w.rotate().unwrap();
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].path, dir.path().join("samples-000000.parquet"));
        assert_eq!(first[1].path, dir.path().join("scrapes-000000.parquet"));
        for f in &first {
            assert_eq!(f.bytes, fs::metadata(&f.path).unwrap().len());
        }
        // A segment of failed scrapes only has no samples file.
        w.push(&testutil::failed_meta(1, ScrapeStatus::Timeout), None)
            .unwrap();
        let second = w.finish().unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].path, dir.path().join("scrapes-000001.parquet"));
        let mut g = GpuWriter::new(dir.path()).unwrap();
        g.push(&testutil::gpu_poll(0, 0, false)).unwrap();
        g.rotate().unwrap();
        g.push(&testutil::gpu_poll(1, 0, true)).unwrap();
        g.finish().unwrap();
        assert_eq!(
            names(dir.path()),
            vec![
                "gpu-000000.parquet",
                "gpu-000001.parquet",
                "samples-000000.parquet",
                "scrapes-000000.parquet",
                "scrapes-000001.parquet"
            ]
        );
        // A writer reopened on the same directory continues the numbering.
        let mut w = ScrapeWriter::new(dir.path()).unwrap();
        w.push(&testutil::failed_meta(2, ScrapeStatus::Connect), None)
            .unwrap();
        assert_eq!(
            w.finish().unwrap()[0].path,
            dir.path().join("scrapes-000002.parquet")
        );
        let mut g = GpuWriter::new(dir.path()).unwrap();
        g.push(&testutil::gpu_poll(2, 0, true)).unwrap();
        assert_eq!(
            g.finish().unwrap()[0].path,
            dir.path().join("gpu-000002.parquet")
        );
    }

    /// Every column is zstd but the small tables' columns that `uncompressed_columns` names,
    /// in every table (the reader's cost per compressed chunk is why; see there).
    #[test]
    fn only_the_listed_small_table_columns_skip_zstd() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ScrapeWriter::new(dir.path()).unwrap();
        let mut g = GpuWriter::new(dir.path()).unwrap();
        let mut synth = Synth::new(3);
        for seq in 0..4 {
            synth.step(true);
            let e = synth.exposition();
            w.push(&ok_meta(seq, e.sample_count()), Some(&e)).unwrap();
            g.push(&testutil::gpu_poll(seq, 0, false)).unwrap();
        }
        w.finish().unwrap();
        g.finish().unwrap();
        for table in [Table::Samples, Table::Scrapes, Table::Gpu] {
            let path = dir.path().join(table.file_name(0));
            let meta = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
                .unwrap()
                .metadata()
                .clone();
            let plain = schema::uncompressed_columns(table);
            let columns = meta.row_group(0).columns();
            assert_eq!(columns.len(), table.schema().fields().len());
            for c in columns {
                let name = c.column_path().string();
                // (A file does not keep zstd's level: only the codec is compared.)
                let zstd = matches!(c.compression(), parquet::basic::Compression::ZSTD(_));
                let plain_here = c.compression() == parquet::basic::Compression::UNCOMPRESSED;
                if plain.contains(&name.as_str()) {
                    assert!(plain_here, "{table:?} column {name}: {:?}", c.compression());
                } else {
                    assert!(zstd, "{table:?} column {name}: {:?}", c.compression());
                }
            }
            // Every name listed is a column of the table.
            for name in plain {
                assert!(
                    columns.iter().any(|c| c.column_path().string() == *name),
                    "{table:?} has no column {name}"
                );
            }
        }
    }

    #[test]
    fn samples_are_series_major_with_format_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ScrapeWriter::new(dir.path()).unwrap();
        let mut synth = Synth::new(7);
        for seq in 0..3 {
            synth.step(true);
            let e = synth.exposition();
            w.push(&ok_meta(seq, e.sample_count()), Some(&e)).unwrap();
        }
        assert_eq!(w.buffered_samples(), 3 * 425);
        w.finish().unwrap();
        let path = dir.path().join("samples-000000.parquet");
        let meta = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        let kv = meta
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .unwrap()
            .clone();
        assert!(kv
            .iter()
            .any(|e| e.key == schema::VERSION_KEY
                && e.value.as_deref() == Some(schema::FORMAT_VERSION)));
        assert!(kv
            .iter()
            .any(|e| e.key == schema::TABLE_KEY && e.value.as_deref() == Some("samples")));
        assert_eq!(meta.metadata().num_row_groups(), 1);
        let b = read_batch(&path);
        let seq = b
            .column_by_name("scrape_seq")
            .unwrap()
            .as_primitive::<UInt64Type>();
        let want: Vec<u64> = (0..425).flat_map(|_| [0, 1, 2]).collect();
        assert_eq!(seq.values().to_vec(), want);
        // Each series' three rows are adjacent: series 25 (rows 75..78) is the first
        // histogram's `_sum`, after its 25 buckets.
        let name = b
            .column_by_name("name")
            .unwrap()
            .as_dictionary::<Int32Type>();
        let name_at = |row: usize| {
            name.values()
                .as_string::<i32>()
                .value(name.keys().value(row) as usize)
                .to_string()
        };
        assert_eq!(name_at(74), "vllm:synthetic_latency_0_seconds_bucket");
        for row in 75..78 {
            assert_eq!(name_at(row), "vllm:synthetic_latency_0_seconds_sum");
        }
        let le = b
            .column_by_name("le")
            .unwrap()
            .as_primitive::<arrow_array::types::Float64Type>();
        assert_eq!(
            (le.value(0), le.value(72), le.is_null(75)),
            (0.001, f64::INFINITY, true)
        );
        let labels = b
            .column_by_name("labels")
            .unwrap()
            .as_dictionary::<Int32Type>();
        // The first series is the first bucket of the first histogram, its `le` moved out.
        let values = labels.values().as_string::<i32>();
        assert_eq!(
            values.value(labels.keys().value(0) as usize),
            "engine=\"0\",model_name=\"meta-llama/Llama-3.1-8B\""
        );
    }

    /// See: issue "Nothing counted that was not measured" (recorder memory). However long
    /// the segment, the rows held in memory stay under the row-group size: the rest is in
    /// row groups of the segment's file, under its temporary name until the rotation, and
    /// the recording reads back exactly as one written in a single row group.
    #[test]
    fn memory_stays_bounded_by_row_groups_within_a_segment() {
        const ROWS: usize = 1000;
        let (one, many) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut whole = ScrapeWriter::new(one.path()).unwrap();
        let mut grouped = ScrapeWriter::with_row_group_rows(many.path(), ROWS).unwrap();
        let mut synth = Synth::new(3);
        let scrapes = 60;
        for seq in 0..scrapes {
            synth.step(seq % 3 == 0);
            // Every 7th scrape is another body, so series come and go between row groups.
            let hostile = testutil::hostile(seq);
            let e = if seq % 7 == 3 {
                hostile
            } else {
                synth.exposition()
            };
            let meta = ok_meta(seq, e.sample_count());
            whole.push(&meta, Some(&e)).unwrap();
            grouped.push(&meta, Some(&e)).unwrap();
            assert!(
                grouped.buffered_samples() < ROWS,
                "{}",
                grouped.buffered_samples()
            );
            if seq == scrapes / 2 {
                // Mid-segment: row groups went to the temporary name only.
                assert_eq!(names(many.path()), vec![".samples-000000.parquet.tmp"]);
            }
        }
        assert!(whole.buffered_samples() > 20 * ROWS);
        whole.finish().unwrap();
        grouped.finish().unwrap();
        for dir in [one.path(), many.path()] {
            write_manifest(dir, &testutil::manifest()).unwrap();
        }
        let path = many.path().join("samples-000000.parquet");
        let file = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap()).unwrap();
        assert!(file.metadata().num_row_groups() >= 10);
        assert!(!names(many.path()).iter().any(|n| n.ends_with(".tmp")));
        let (a, b) = (
            crate::recording::open(one.path()).unwrap(),
            crate::recording::open(many.path()).unwrap(),
        );
        assert_eq!(a.scrapes.len(), scrapes as usize);
        assert_eq!(a.series, b.series);
        // Bit for bit: NaN payloads compare by their bits.
        let bits = |s: &crate::recording::Scrape| -> Vec<(usize, u64, Option<i64>)> {
            s.samples
                .iter()
                .enumerate()
                .map(|(i, x)| (x.series as usize, x.value.to_bits(), s.timestamp_ms(i)))
                .collect()
        };
        for (x, y) in a.scrapes.iter().zip(&b.scrapes) {
            assert_eq!(x.meta, y.meta);
            assert_eq!(bits(x), bits(y), "seq {}", x.meta.seq);
        }
        // A file loaded alone is decoded one row group per thread; keeping some series only
        // cuts the rows selected at the row groups' bounds, and reads back the same rows.
        let keep = |s: &crate::recording::SeriesInfo| s.name.len() % 3 != 0;
        let (a, b) = (
            crate::recording::open_filtered(one.path(), &keep).unwrap(),
            crate::recording::open_filtered(many.path(), &keep).unwrap(),
        );
        let kept: usize = b.scrapes.iter().map(|s| s.samples.len()).sum();
        assert!(kept > 0 && kept < b.scrapes.iter().map(|s| s.rows_read as usize).sum());
        for (x, y) in a.scrapes.iter().zip(&b.scrapes) {
            assert_eq!(bits(x), bits(y), "seq {} filtered", x.meta.seq);
        }
    }

    /// Eight changed bytes inside the compressed values of one row group of a samples file
    /// (a file loaded alone, as a compacted hour is, is read one row group per thread) fail
    /// the whole file on its checksum: it is named, and its scrapes count as having lost rows,
    /// with no sample of the file kept, not those of the row groups that did decode.
    #[test]
    fn a_damaged_row_group_of_a_file_read_by_row_group_loses_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ScrapeWriter::with_row_group_rows(dir.path(), 1000).unwrap();
        let mut synth = Synth::new(3);
        for seq in 0..40 {
            synth.step(seq % 3 == 0);
            let e = synth.exposition();
            w.push(&ok_meta(seq, e.sample_count()), Some(&e)).unwrap();
        }
        w.finish().unwrap();
        write_manifest(dir.path(), &testutil::manifest()).unwrap();
        let path = dir.path().join("samples-000000.parquet");
        let meta = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .metadata()
            .clone();
        assert!(meta.num_row_groups() >= 4, "{}", meta.num_row_groups());
        let value = meta
            .row_group(2)
            .columns()
            .iter()
            .find(|c| c.column_path().string() == crate::recording::schema::col::VALUE);
        let (start, len) = value.unwrap().byte_range();
        let mut bytes = fs::read(&path).unwrap();
        // Past the page header, inside the compressed values.
        let at = usize::try_from(start + len / 2).unwrap();
        for b in &mut bytes[at..at + 8] {
            *b ^= 0x5a;
        }
        fs::write(&path, bytes).unwrap();

        let rec = crate::recording::open(dir.path()).unwrap();
        let report = rec.files.iter().find(|f| f.path == path).unwrap();
        let why = report.problem.as_deref().unwrap_or_default();
        // Without the checksum (format 1.5) these bytes decoded into other values of three
        // scrapes, and nothing said so.
        assert!(why.contains("do not match the checksum"), "{why}");
        assert_eq!(rec.scrapes.len(), 40);
        for s in &rec.scrapes {
            assert!(s.samples.is_empty(), "seq {} kept samples", s.meta.seq);
            assert!(s.rows_lost().is_some(), "seq {} counted whole", s.meta.seq);
        }
    }

    /// A write error while a segment's row groups are being written removes its temporary
    /// file and drops the segment: nothing half-written stays, nothing piles up in memory.
    #[test]
    fn a_failed_row_group_write_drops_the_segment() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rec");
        fs::create_dir(&dir).unwrap();
        let e = testutil::hostile(0);
        // The second push, not the first, fills a row group.
        let mut w = ScrapeWriter::with_row_group_rows(&dir, e.sample_count() + 1).unwrap();
        w.push(&ok_meta(0, e.sample_count()), Some(&e)).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        let err = w.push(&ok_meta(1, e.sample_count()), Some(&e));
        assert!(
            matches!(
                err,
                Err(RecordingError::Io { .. }) | Err(RecordingError::Parquet { .. })
            ),
            "{err:?}"
        );
        assert_eq!(w.buffered_samples(), 0);
    }

    /// Writes `minutes` one-minute segments of synthetic 4 Hz scrapes, the way `ScrapeWriter`
    /// does but with the given `value` encoding and zstd level; returns (samples, bytes of
    /// samples+scrapes files, push seconds, rotate seconds).
    #[allow(clippy::disallowed_methods)] // timing a measurement, not recording data
    fn synthetic(
        dir: &Path,
        minutes: u64,
        load: fn(u64) -> bool,
        enc: schema::ValueEncoding,
        level: i32,
    ) -> (u64, u64, f64, f64) {
        use std::time::Instant;
        let mut synth = Synth::new(42);
        let (mut samples, mut bytes, mut push_s, mut rotate_s) = (0u64, 0u64, 0.0, 0.0);
        for minute in 0..minutes {
            let mut seg = ScrapeSegment::default();
            for i in 0..240 {
                let seq = minute * 240 + i;
                synth.step(load(seq));
                let e = synth.exposition();
                samples += e.sample_count() as u64;
                let t = Instant::now();
                seg.push(&ok_meta(seq, e.sample_count()), Some(&e));
                push_s += t.elapsed().as_secs_f64();
            }
            let t = Instant::now();
            for table in [Table::Samples, Table::Scrapes] {
                let batch = match table {
                    Table::Samples => seg.samples_batch().unwrap(),
                    _ => seg.scrapes_batch().unwrap(),
                };
                let props = schema::writer_properties_with(table, enc, level);
                bytes += write_segment_with(dir, table, minute, &batch, props)
                    .unwrap()
                    .bytes;
            }
            rotate_s += t.elapsed().as_secs_f64();
        }
        (samples, bytes, push_s, rotate_s)
    }

    /// Size and speed of the format on synthetic data. Run with
    /// `cargo test --release --lib size_report -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement, prints a report"]
    fn size_report() {
        type Scenario = (&'static str, fn(u64) -> bool);
        let scenarios: [Scenario; 3] = [
            ("idle", |_| false),
            ("load", |_| true),
            ("mixed", |s| (s / 480) % 2 == 1),
        ];
        for enc in [
            schema::ValueEncoding::Plain,
            schema::ValueEncoding::ByteStreamSplit,
            schema::ValueEncoding::Dictionary,
        ] {
            for level in [1, 3, 6, 9] {
                for (name, load) in scenarios {
                    let dir = tempfile::tempdir().unwrap();
                    let minutes = 10;
                    let (samples, bytes, push_s, rotate_s) =
                        synthetic(dir.path(), minutes, load, enc, level);
                    let scrapes = minutes as f64 * 240.0;
                    println!(
                        "{enc:?} zstd {level} {name}: {:.3} B/sample; push {:.1} us/scrape; \
                         rotate {:.1} ms/minute = {:.1} us/scrape",
                        bytes as f64 / samples as f64,
                        push_s / scrapes * 1e6,
                        rotate_s / minutes as f64 * 1e3,
                        rotate_s / scrapes * 1e6,
                    );
                }
            }
        }
    }
}
