//! Reading a recording back into memory: the manifest, then every segment file, tolerating
//! damage. A recorder killed mid-run leaves whole files plus perhaps a `.tmp` leftover, and a
//! disk fault may damage one file; the reader reports such files by name in
//! [`Recording::files`] and reads everything else, because a recording with one bad minute is
//! still worth analyzing. Only a missing or malformed manifest, or a format version this build
//! does not know, fails the whole read.

mod attach;
mod deferred;
mod heads;
mod pages;
mod tables;

pub use deferred::Deferred;
use deferred::{PendingFile, PendingGpu, Placed};
use heads::{Errors, Head, Heads};

use super::schema::{self, SampleRow, Table};
use super::{GpuPoll, HostSample, Manifest, RecordingError, ScrapeMeta, ScrapeStatus};
use crate::promtext::MetricType;
use rayon::prelude::*;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tables::{Decoded, Problem, SeriesKey};

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
    /// The family's `# HELP` text, unescaped, if it had one. Part of the series' identity, so
    /// a family whose help text changed mid-recording (a server upgrade) shows up as new series.
    pub help: Option<Arc<str>>,
    /// Full sample name (e.g. `vllm:e2e_request_latency_seconds_bucket`).
    pub name: Arc<str>,
    /// Canonical label string: `name="value"` pairs sorted by name, Prometheus-escaped, joined
    /// by `,`; `le` is left out of it (see `le`).
    pub labels: Arc<str>,
    /// The parsed `le` of a histogram bucket row.
    pub le: Option<f64>,
}

impl SeriesInfo {
    /// The labels as `(name, value)` pairs, values unescaped (without `le`, see `le`).
    pub fn label_pairs(&self) -> Result<Vec<(String, String)>, schema::LabelsError> {
        schema::parse_canonical_labels(&self.labels)
    }
}

/// One stored sample of one scrape: 16 bytes, because a day of recording holds over a
/// hundred million of them. Its exposition timestamp, which vLLM never sets, lives beside the
/// samples in [`Scrape::timestamps`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoredSample {
    /// Which series.
    pub series: SeriesId,
    /// The value, bit for bit as parsed.
    pub value: f64,
}

/// One scrape attempt and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Scrape {
    /// The attempt.
    pub meta: ScrapeMeta,
    /// Its samples, in the order of its segment's series (first appearance in that segment;
    /// for the first scrape of a segment this is exposition order). Empty for a failed attempt.
    /// A streamed read may leave them in their file's columns instead: read them with
    /// [`Scrape::each_sample`].
    pub samples: Vec<StoredSample>,
    /// The exposition timestamps the body carried, as `(index into samples, ms)` in index
    /// order; empty when it carried none (vLLM sets none).
    pub timestamps: Vec<(u32, i64)>,
    /// Sample rows found for it in the samples files, before any series filter: fewer than
    /// `meta.sample_count` means rows were lost (a truncated, damaged or missing file).
    pub rows_read: u64,
    /// Samples left in their file's decoded columns (a streamed read, see
    /// [`Deferred::samples_in_place`]); they come before `samples` in
    /// [`Scrape::each_sample`].
    pub(crate) columns: Option<attach::ColumnsAt>,
}

impl Scrape {
    /// Every sample of the scrape in file order: those a streamed read left in their file's
    /// columns, then `samples`. What analysis reads; `samples` alone misses the first.
    pub fn each_sample(&self) -> impl Iterator<Item = StoredSample> + '_ {
        let columns = self.columns.iter().flat_map(attach::ColumnsAt::samples);
        columns.chain(self.samples.iter().copied())
    }

    /// The samples of the series `among` marks (by series id), in file order, where they can
    /// be read without the others: every sample of the scrape lies in its file's columns and
    /// no series repeats in it (a repeat is counted, so it must be seen). `None` otherwise;
    /// then [`Scrape::each_sample`] gives them all.
    pub(crate) fn samples_among<'a>(
        &'a self,
        among: &'a [bool],
    ) -> Option<impl Iterator<Item = StoredSample> + 'a> {
        match &self.columns {
            Some(c) if self.samples.is_empty() => c.samples_among(among),
            _ => None,
        }
    }

    /// The exposition timestamp of `samples[i]`, when the body gave it one.
    pub fn timestamp_ms(&self, i: usize) -> Option<i64> {
        let i = u32::try_from(i).ok()?;
        let at = self.timestamps.binary_search_by_key(&i, |t| t.0).ok()?;
        Some(self.timestamps[at].1)
    }

    /// A successful attempt whose body held no sample at all: a server that answered 200 with
    /// nothing in it has told us nothing, so analysis treats it as a failed scrape.
    pub fn is_empty_body(&self) -> bool {
        self.meta.status == ScrapeStatus::Ok && self.meta.sample_count == Some(0)
    }

    /// How many of a successful attempt's sample rows could not be read (its samples file is
    /// truncated, damaged or missing); `None` when all were read. Such a scrape is only part
    /// of what the server said, so analysis treats it as failed rather than read a partial
    /// body as the whole.
    pub fn rows_lost(&self) -> Option<u64> {
        if self.meta.status != ScrapeStatus::Ok {
            return None;
        }
        let want = self.meta.sample_count?;
        Some(want.saturating_sub(self.rows_read)).filter(|n| *n > 0)
    }

    /// A successful attempt whose whole body was read and held samples: what analysis uses.
    pub fn is_usable(&self) -> bool {
        self.meta.status == ScrapeStatus::Ok && !self.is_empty_body() && self.rows_lost().is_none()
    }
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
    /// Every scrape attempt, sorted by `seq` (for a [`Deferred`], those loaded and not
    /// released yet, from [`Deferred::base`]).
    pub scrapes: Vec<Scrape>,
    /// Every GPU poll, sorted by `(seq, gpu_index)`, once read whole ([`open`],
    /// [`Deferred::load_all`]); a [`Deferred`] fills it as its GPU files are loaded, and the
    /// streaming window build takes the polls as they come.
    pub gpu_polls: Vec<GpuPoll>,
    /// Every host process reading (`record --pid`, format 1.4), sorted by `(seq, pid)`; empty
    /// when `manifest.host` is `None` (no host sampling, as in every older recording).
    pub host_samples: Vec<HostSample>,
    /// Every segment file and `.tmp` leftover found, sorted by file name, readable or not.
    pub files: Vec<FileReport>,
}

impl Recording {
    /// The series of one family, with their ids, in id order.
    pub fn series_by_family<'a>(
        &'a self,
        family: &'a str,
    ) -> impl Iterator<Item = (SeriesId, &'a SeriesInfo)> + 'a {
        self.series_with(move |s| &*s.family == family)
    }

    /// The series with one sample name, with their ids, in id order.
    pub fn series_by_name<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = (SeriesId, &'a SeriesInfo)> + 'a {
        self.series_with(move |s| &*s.name == name)
    }

    fn series_with<'a>(
        &'a self,
        keep: impl Fn(&SeriesInfo) -> bool + 'a,
    ) -> impl Iterator<Item = (SeriesId, &'a SeriesInfo)> + 'a {
        (0..).zip(&self.series).filter(move |(_, s)| keep(s))
    }

    /// The files the reader could not read in full.
    pub fn problems(&self) -> impl Iterator<Item = &FileReport> {
        self.files.iter().filter(|f| f.problem.is_some())
    }

    /// The rows stored for one scrape, as [`schema::sample_rows`] would produce them from the
    /// parsed body (in this scrape's stored order), for comparisons and exports.
    pub fn sample_rows(&self, scrape: &Scrape) -> Vec<SampleRow> {
        scrape
            .samples
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let info = self.series.get(s.series as usize)?;
                Some(SampleRow {
                    scrape_seq: scrape.meta.seq,
                    family: info.family.to_string(),
                    family_type: info.metric_type,
                    help: info.help.as_deref().map(str::to_string),
                    name: info.name.to_string(),
                    labels: info.labels.to_string(),
                    le: info.le,
                    value: s.value,
                    timestamp_ms: scrape.timestamp_ms(i),
                })
            })
            .collect()
    }
}

/// Reads and checks `manifest.json`.
fn read_manifest(path: &Path) -> Result<Manifest, RecordingError> {
    let bad = |message: String| RecordingError::Manifest {
        path: path.to_path_buf(),
        message,
    };
    let text = fs::read(path).map_err(|e| bad(e.to_string()))?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    if schema::major_of(&manifest.format_version) != Some(schema::FORMAT_MAJOR) {
        return Err(RecordingError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: manifest.format_version,
            supported: schema::FORMAT_MAJOR,
        });
    }
    Ok(manifest)
}

/// A directory entry the reader cares about.
struct Entry {
    name: String,
    path: PathBuf,
    bytes: u64,
    table: Option<(Table, u64)>,
}

fn list(dir: &Path) -> Result<Vec<Entry>, RecordingError> {
    let io = |error| RecordingError::Io {
        path: dir.to_path_buf(),
        error,
    };
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(io)? {
        let e = e.map_err(io)?;
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let table = Table::parse_file_name(&name);
        let leftover = name.starts_with('.')
            && name.ends_with(".tmp")
            && Table::parse_file_name(&name[1..name.len() - 4]).is_some();
        let journal = name == super::compact::JOURNAL_FILE;
        if table.is_some() || leftover || journal {
            let bytes = e.metadata().map(|m| m.len()).unwrap_or(0);
            out.push(Entry {
                path: e.path(),
                name,
                bytes,
                table,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Samples files decoded at once: enough to keep every thread busy, few enough that a long
/// recording's decoded columns are never all in memory beside the samples built from them.
fn samples_files_at_once() -> usize {
    rayon::current_num_threads().max(1) * 4
}

/// Compressed bytes of samples files decoded at once, per thread. Ours: a minute segment is
/// ~16-30 KB, so this never binds on recorded files; a compacted hour (~0.75 MB, 6 M rows,
/// ~300 MB decoded) is then decoded about one per thread instead of four, which keeps the
/// decoded columns of a compacted day within what a minute-file day holds.
const SAMPLES_BYTES_AT_ONCE_PER_THREAD: u64 = 1 << 20;

/// Scrape, GPU and host tables decoded at once by the first pass. Ours: enough to keep every
/// thread busy on tables of a few KB, few enough that what they decode to (a minute's scrape
/// table is ~25 KB in memory) stays a few MB however many files a recording has. Three in
/// unit tests, so that every reader test of a recording of a few files crosses groups.
const SMALL_FILES_AT_ONCE: usize = if cfg!(test) { 3 } else { 256 };

/// Sample rows loaded at once by the second pass, per thread (but at least one file). Ours:
/// a minute segment is about 100,000 rows, so this never binds on recorded files; a
/// compacted hour is 6 M, and three of them at once (as the byte budget allows) held 240 MB
/// of decoded values and kept samples. One at a time holds a third.
const SAMPLES_ROWS_AT_ONCE_PER_THREAD: u64 = 2_000_000;

/// `files` (indices into `entries`) in the groups they are decoded in: at most
/// [`samples_files_at_once`] files, and no more compressed bytes than
/// [`SAMPLES_BYTES_AT_ONCE_PER_THREAD`] per thread (but at least one file).
fn decode_groups(files: &[usize], entries: &[Entry]) -> Vec<Vec<usize>> {
    let threads = rayon::current_num_threads().max(1) as u64;
    let budget = threads * SAMPLES_BYTES_AT_ONCE_PER_THREAD;
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0u64;
    for &i in files {
        let full = groups.last().is_none_or(|g| {
            g.len() >= samples_files_at_once() || bytes + entries[i].bytes > budget
        });
        if full {
            groups.push(Vec::new());
            bytes = 0;
        }
        bytes += entries[i].bytes;
        if let Some(g) = groups.last_mut() {
            g.push(i);
        }
    }
    groups
}

/// Sets `report.problem` from a file's notes (nothing when there are none), or records why
/// the file was skipped, or keeps the first (in file-name order) fatal error.
fn settle<T>(
    i: usize,
    result: Result<Decoded<T>, Problem>,
    report: &mut FileReport,
    fatal: &mut Option<(usize, RecordingError)>,
) -> Option<T> {
    match result {
        Ok(d) => {
            report.rows = d.row_count;
            if !d.notes.is_empty() {
                report.problem = Some(d.notes.join("; "));
            }
            Some(d.rows)
        }
        Err(Problem::Fatal(err)) => {
            if fatal.as_ref().is_none_or(|(j, _)| i < *j) {
                *fatal = Some((i, err));
            }
            None
        }
        Err(Problem::Damaged(why)) => {
            report.problem = Some(why);
            None
        }
    }
}

/// Reads a whole recording. A damaged Parquet file is reported in `files` and skipped; only a
/// missing or unreadable manifest, or an unsupported format version, fails the whole read.
///
/// Files are decoded in parallel (rayon), scrapes and GPU polls first, then the samples files
/// a few at a time, each attached to its scrapes in file-name order as soon as it is decoded;
/// the result is the same as reading the files one by one in name order.
pub fn open(dir: &Path) -> Result<Recording, RecordingError> {
    open_filtered(dir, &|_| true)
}

/// Reads a recording as [`open`] does, but keeps the samples of only the series for which
/// `keep` is true: `series`, `files` and the scrapes' metadata are exactly `open`'s (series
/// ids included), and each scrape's `samples` are `open`'s with the other series' samples left
/// out. For a reader that needs a few series of a long recording (analysis reads about 40% of
/// a vLLM body's series): it holds and builds only those samples. Every file's series and
/// scrape columns are decoded and checked; the values only of the series kept, so damage
/// confined to the values of series left out goes unreported (it cannot change what is kept).
pub fn open_filtered(
    dir: &Path,
    keep: &(dyn Fn(&SeriesInfo) -> bool + Sync),
) -> Result<Recording, RecordingError> {
    open_filtered_progress(dir, keep, &|_| {})
}

/// How far a read has come, for a progress line: the caller times it (the reader reads no
/// clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadProgress {
    /// Whether the samples' values are being read (the second pass); `false` while the first
    /// pass learns which series and scrapes each file holds.
    pub values: bool,
    /// Samples files read so far (in this pass).
    pub files_done: usize,
    /// Samples files in the recording.
    pub files_total: usize,
    /// Sample rows read so far (kept or not).
    pub rows: u64,
}

/// [`open_filtered`], calling `progress` after each group of samples files.
pub fn open_filtered_progress(
    dir: &Path,
    keep: &(dyn Fn(&SeriesInfo) -> bool + Sync),
    progress: &(dyn Fn(ReadProgress) + Sync),
) -> Result<Recording, RecordingError> {
    let deferred = open_deferred_progress(dir, progress)?;
    let mask: Vec<bool> = deferred.recording.series.iter().map(keep).collect();
    Ok(deferred.load_all(&mask, progress))
}

/// Reads a recording but for its sample values (see [`Deferred`]): the first of the reader's
/// two passes. Every file is read and checked as [`open`] does; a samples file's values are
/// decoded only when [`Deferred::load_next`] reaches it.
pub fn open_deferred(dir: &Path) -> Result<Deferred, RecordingError> {
    open_deferred_progress(dir, &|_| {})
}

/// [`open_deferred`], calling `progress` after each group of samples files.
pub fn open_deferred_progress(
    dir: &Path,
    progress: &(dyn Fn(ReadProgress) + Sync),
) -> Result<Deferred, RecordingError> {
    let entries = list(dir)?;
    let manifest_path = dir.join(schema::MANIFEST_FILE);
    if !manifest_path.exists() && entries.iter().all(|e| e.table.is_none()) {
        return Err(RecordingError::NotARecording(dir.to_path_buf()));
    }
    let manifest = read_manifest(&manifest_path)?;

    let mut files: Vec<FileReport> = entries
        .iter()
        .map(|e| FileReport {
            path: e.path.clone(),
            bytes: e.bytes,
            rows: 0,
            problem: match e.table {
                Some(_) => None,
                None if e.name == super::compact::JOURNAL_FILE => Some(
                    "a `profile compact` was interrupted here: run it again; until then rows \
                     of its merged segment may be counted twice"
                        .to_string(),
                ),
                None => Some("temporary file left by an interrupted write; ignored".to_string()),
            },
        })
        .collect();
    let table_of = |i: usize| entries[i].table.map(|(t, _)| t);
    // An unknown major version in any file refuses the recording; the first such file in
    // name order is the one named, as if the files were read one by one.
    let mut fatal: Option<(usize, RecordingError)> = None;

    enum Small {
        Scrapes(Result<Decoded<Vec<ScrapeMeta>>, Problem>),
        Gpu(Result<Decoded<Option<i64>>, Problem>),
        Host(Result<Decoded<Vec<HostSample>>, Problem>),
    }
    let read_small = |i: usize| match table_of(i)? {
        Table::Scrapes => Some((i, Small::Scrapes(tables::read_scrapes(&entries[i].path)))),
        Table::Gpu => Some((
            i,
            Small::Gpu(tables::read_gpu_first_completion(&entries[i].path)),
        )),
        Table::Host => Some((i, Small::Host(tables::read_host(&entries[i].path)))),
        Table::Samples => None,
    };
    // Every scrape, packed (see `heads`), and its `seq` beside it.
    let (mut heads, mut seqs): (Vec<Head>, Vec<u64>) = (Vec::new(), Vec::new());
    let mut errors = Errors::default();
    let mut gpu_pending: Vec<PendingGpu> = Vec::new();
    let mut host_samples: Vec<HostSample> = Vec::new();
    let samples_segments: std::collections::BTreeSet<u64> = entries
        .iter()
        .filter_map(|e| {
            e.table
                .filter(|(t, _)| *t == Table::Samples)
                .map(|(_, n)| n)
        })
        .collect();
    let mut missing: Vec<FileReport> = Vec::new();
    // A few files at a time, in parallel: a week's scrape tables decoded all at once before
    // any was appended held its scrapes twice (250 MB of decoded tables beside the 390 MB
    // of scrapes they become).
    let indices: Vec<usize> = (0..entries.len()).collect();
    let scrape_tables = indices
        .iter()
        .filter(|&&i| table_of(i) == Some(Table::Scrapes))
        .count();
    let small = indices.chunks(SMALL_FILES_AT_ONCE).flat_map(|group| {
        group
            .par_iter()
            .filter_map(|&i| read_small(i))
            .collect::<Vec<_>>()
    });
    for (i, result) in small {
        match result {
            Small::Scrapes(r) => {
                let read = settle(i, r, &mut files[i], &mut fatal).unwrap_or_default();
                // A segment whose scrapes carried samples but whose samples file is gone (a
                // partial copy, `unbundle --salvage`): name the missing file, since nothing
                // else on disk would.
                let segment = entries[i].table.map(|(_, n)| n);
                let had_samples = read
                    .iter()
                    .any(|m| m.status == ScrapeStatus::Ok && m.sample_count.is_some_and(|n| n > 0));
                if let Some(n) = segment.filter(|n| had_samples && !samples_segments.contains(n)) {
                    missing.push(FileReport {
                        path: dir.join(Table::Samples.file_name(n)),
                        bytes: 0,
                        rows: 0,
                        problem: Some(format!(
                            "missing: {} lists scrapes with samples, and their samples file is \
                             not there",
                            entries[i].name
                        )),
                    });
                }
                if heads.capacity() == 0 {
                    // Room for as many scrapes in every table as in the first: segments of
                    // one recording are alike. Grown by doubling instead, the vectors leave
                    // their outgrown copies in the heap (25 MB more on a compacted day); an
                    // estimate too high costs only address space, never touched.
                    heads.reserve(read.len().saturating_mul(scrape_tables));
                    seqs.reserve(read.len().saturating_mul(scrape_tables));
                }
                for meta in &read {
                    heads.push(Head::pack(meta, &mut errors));
                    seqs.push(meta.seq);
                }
            }
            Small::Gpu(r) => {
                if let Some(first) = settle(i, r, &mut files[i], &mut fatal).flatten() {
                    gpu_pending.push(PendingGpu {
                        path: entries[i].path.clone(),
                        first,
                    });
                }
            }
            Small::Host(r) => host_samples.extend(
                settle(i, r, &mut files[i], &mut fatal)
                    .into_iter()
                    .flatten(),
            ),
        }
    }

    // Stable sorts keep file order for equal keys, so the result never depends on the
    // directory listing's order (files were sorted by name above).
    if !seqs.is_sorted() {
        let mut order: Vec<usize> = (0..seqs.len()).collect();
        order.sort_by_key(|&i| seqs[i]);
        heads = order.iter().map(|&i| heads[i]).collect();
        seqs = order.iter().map(|&i| seqs[i]).collect();
    }
    heads.shrink_to_fit();
    seqs.shrink_to_fit();
    errors.seal();
    // Stable: files that start at the same time keep name order.
    gpu_pending.sort_by_key(|g| g.first);
    host_samples.sort_by_key(|h| (h.seq, h.pid));
    let unique_seqs = seqs.windows(2).all(|w| w[0] != w[1]);

    let mut series: Vec<SeriesInfo> = Vec::new();
    let mut series_ids: HashMap<SeriesKey, SeriesId> = HashMap::new();
    let sample_files: Vec<usize> = (0..entries.len())
        .filter(|&i| table_of(i) == Some(Table::Samples))
        .collect();
    // The first pass: every samples file's series and scrapes, not its values.
    let mut pending: Vec<PendingFile> = Vec::new();
    let mut layouts: Vec<Layout> = Vec::new();
    let mut shared_spans = SharedSpans::default();
    let (mut files_done, mut rows_done) = (0usize, 0u64);
    for group in decode_groups(&sample_files, &entries) {
        files_done += group.len();
        // Files after a fatal one need not be read: the read fails anyway.
        let group: Vec<usize> = group
            .iter()
            .copied()
            .filter(|&i| fatal.as_ref().is_none_or(|(j, _)| i < *j))
            .collect();
        let decoded: Vec<_> = group
            .par_iter()
            .map(|&i| {
                let known = |l: &[u8]| find_layout(&layouts, l).is_some();
                let mut d = tables::read_sample_keys(&entries[i].path, &known);
                let located = d.as_mut().ok().map(|d| {
                    let located = attach::locate(&seqs, unique_seqs, d.rows.seq.iter());
                    // Placed: the scrape column is not needed again in this pass.
                    d.rows.seq = Vec::new();
                    located
                });
                (i, d, located)
            })
            .collect();
        let mut new_layouts: Vec<Layout> = Vec::new();
        for (i, mut d, located) in decoded {
            // A file of a known layout has its series, and its notes, from the first of them.
            let reused = d.as_mut().ok().and_then(|d| {
                if d.rows.series.is_some() {
                    return None;
                }
                let known = find_layout(&layouts, &d.rows.layout)?;
                d.notes = known.notes.clone();
                Some(known.runs.clone())
            });
            let (Some(keys), Some(located)) = (settle(i, d, &mut files[i], &mut fatal), located)
            else {
                continue;
            };
            let runs = match (keys.series, reused) {
                (_, Some(runs)) => runs,
                (Some(fs), None) => {
                    let global = attach::global_ids(fs.keys, &mut series, &mut series_ids);
                    let runs: Vec<(u32, SeriesId)> = fs
                        .runs
                        .iter()
                        .map(|&(n, local)| (n, global.get(local as usize).copied().unwrap_or(0)))
                        .collect();
                    let runs = Arc::new(runs);
                    let notes = files[i].problem.iter().cloned().collect();
                    new_layouts.push(Layout {
                        hash: layout_hash(&keys.layout),
                        bytes: keys.layout,
                        runs: runs.clone(),
                        notes,
                    });
                    runs
                }
                (None, None) => continue,
            };
            let placed = match located.steps_from_lo(&runs) {
                true => Placed::FromLo,
                false => match located.relative_spans() {
                    Some(spans) => Placed::Spans(shared_spans.share(spans)),
                    None => Placed::BySeq,
                },
            };
            let (counts, orphans) = located.counts();
            rows_done += located.rows;
            if let Some((lo, _)) = located.range {
                for (head, n) in heads[lo..].iter_mut().zip(&counts) {
                    head.add_rows(*n);
                }
            }
            if orphans > 0 {
                note_problem(
                    &mut files[i],
                    format!(
                        "{orphans} rows belong to scrapes found in no scrapes file (missing or \
                         damaged); skipped"
                    ),
                );
            }
            if located.range.is_some() {
                pending.push(PendingFile {
                    path: entries[i].path.clone(),
                    bytes: entries[i].bytes,
                    runs,
                    range: located.range,
                    counts,
                    placed,
                    row_groups: keys.row_groups,
                });
            }
        }
        progress(ReadProgress {
            values: false,
            files_done,
            files_total: sample_files.len(),
            rows: rows_done,
        });
        // The latest layouts first; a recording whose series change keeps a few.
        new_layouts.reverse();
        new_layouts.append(&mut layouts);
        new_layouts.truncate(LAYOUTS_KEPT);
        layouts = new_layouts;
    }
    if let Some((_, err)) = fatal {
        return Err(err);
    }
    files.extend(missing);
    files.sort_by(|a, b| a.path.cmp(&b.path));
    // Stable: files covering the same scrapes keep their name order.
    pending.sort_by_key(|p| p.range.map(|r| r.0));
    Ok(Deferred::new(
        Recording {
            dir: dir.to_path_buf(),
            manifest,
            series,
            scrapes: Vec::new(),
            gpu_polls: Vec::new(),
            host_samples,
            files,
        },
        (Heads::from_vec(heads), errors),
        pending,
        gpu_pending,
        seqs,
        unique_seqs,
    ))
}

/// Adds `note` to a file's problem.
fn note_problem(report: &mut FileReport, note: String) {
    report.problem = Some(match report.problem.take() {
        Some(p) => format!("{p}; {note}"),
        None => note,
    });
}

/// The layouts of series the first pass remembers (see [`Layout`]). Ours: a recorder in a
/// steady state writes one layout over and over, but a series that comes and goes (a label
/// value, a per-reason counter seen only under load) gives each segment one of a few dozen
/// layouts, in a cycle: the replayed benchmark day has 38, and with 8 kept a fifth of its
/// files decoded their series again. A layout is a few kilobytes.
const LAYOUTS_KEPT: usize = 64;

/// A layout of series already decoded: a later samples file with the same key column bytes
/// has the same series in the same rows (`runs`, with recording-wide ids) and the same notes.
struct Layout {
    /// [`layout_hash`] of `bytes`, compared first.
    hash: u64,
    bytes: Vec<u8>,
    runs: Arc<Vec<(u32, SeriesId)>>,
    notes: Vec<String>,
}

/// A hash of a layout's bytes (or of a file's spans), so that a file's layout is compared in
/// full only with one that probably is the same.
fn layout_hash<T: std::hash::Hash + ?Sized>(v: &T) -> u64 {
    use std::hash::Hasher;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// The spans of the samples files read last ([`Placed::Spans`]), so that files whose rows
/// lie alike (one layout, no scrape missed: a recorder in a steady state) share one copy.
/// Unfolded and unshared, a week's spans were 30 MB, which, freed file by file in small
/// pieces, malloc never gave back: the week's peak went from 240 to 268 MB.
#[derive(Default)]
struct SharedSpans(Vec<(u64, Arc<[attach::RelSpan]>)>);

impl SharedSpans {
    fn share(&mut self, spans: Box<[attach::RelSpan]>) -> Arc<[attach::RelSpan]> {
        let hash = layout_hash(&*spans);
        if let Some((_, known)) = self.0.iter().find(|(k, s)| *k == hash && **s == *spans) {
            return Arc::clone(known);
        }
        let spans: Arc<[attach::RelSpan]> = Arc::from(spans);
        self.0.insert(0, (hash, Arc::clone(&spans)));
        self.0.truncate(LAYOUTS_KEPT);
        spans
    }
}

/// The remembered layout whose bytes are `bytes`.
fn find_layout<'a>(layouts: &'a [Layout], bytes: &[u8]) -> Option<&'a Layout> {
    let hash = layout_hash(bytes);
    layouts.iter().find(|k| k.hash == hash && k.bytes == bytes)
}

#[cfg(test)]
mod tests;
