//! Reading a recording back into memory: the manifest, then every segment file, tolerating
//! damage. A recorder killed mid-run leaves whole files plus perhaps a `.tmp` leftover, and a
//! disk fault may damage one file; the reader reports such files by name in
//! [`Recording::files`] and reads everything else, because a recording with one bad minute is
//! still worth analyzing. Only a missing or malformed manifest, or a format version this build
//! does not know, fails the whole read.

mod attach;
mod pages;
mod tables;

use super::schema::{self, SampleRow, Table};
use super::{GpuPoll, HostSample, Manifest, RecordingError, ScrapeMeta, ScrapeStatus};
use crate::promtext::MetricType;
use parquet::arrow::arrow_reader::{RowSelection, RowSelector};
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
    pub samples: Vec<StoredSample>,
    /// The exposition timestamps the body carried, as `(index into samples, ms)` in index
    /// order; empty when it carried none (vLLM sets none).
    pub timestamps: Vec<(u32, i64)>,
    /// Sample rows found for it in the samples files, before any series filter: fewer than
    /// `meta.sample_count` means rows were lost (a truncated, damaged or missing file).
    pub rows_read: u64,
}

impl Scrape {
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
    /// Every scrape attempt, sorted by `seq`.
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
    let small: Vec<(usize, Small)> = (0..entries.len())
        .into_par_iter()
        .filter_map(|i| match table_of(i)? {
            Table::Scrapes => Some((i, Small::Scrapes(tables::read_scrapes(&entries[i].path)))),
            Table::Gpu => Some((
                i,
                Small::Gpu(tables::read_gpu_first_completion(&entries[i].path)),
            )),
            Table::Host => Some((i, Small::Host(tables::read_host(&entries[i].path)))),
            Table::Samples => None,
        })
        .collect();
    let mut metas: Vec<ScrapeMeta> = Vec::new();
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
                metas.extend(read);
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
    metas.sort_by_key(|m| m.seq);
    // Stable: files that start at the same time keep name order.
    gpu_pending.sort_by_key(|g| g.first);
    host_samples.sort_by_key(|h| (h.seq, h.pid));
    let seqs: Vec<u64> = metas.iter().map(|m| m.seq).collect();
    let unique_seqs = seqs.windows(2).all(|w| w[0] != w[1]);
    let mut scrapes: Vec<Scrape> = metas
        .into_iter()
        .map(|meta| Scrape {
            meta,
            samples: Vec::new(),
            timestamps: Vec::new(),
            rows_read: 0,
        })
        .collect();

    let mut series: Vec<SeriesInfo> = Vec::new();
    let mut series_ids: HashMap<SeriesKey, SeriesId> = HashMap::new();
    let sample_files: Vec<usize> = (0..entries.len())
        .filter(|&i| table_of(i) == Some(Table::Samples))
        .collect();
    // The first pass: every samples file's series and scrapes, not its values.
    let mut pending: Vec<PendingFile> = Vec::new();
    let mut layouts: Vec<Layout> = Vec::new();
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
            let steps = located.steps_from_lo(&runs);
            let (counts, orphans) = located.counts();
            rows_done += located.rows;
            if let Some((lo, _)) = located.range {
                for (scrape, n) in scrapes[lo..].iter_mut().zip(&counts) {
                    scrape.rows_read += u64::from(*n);
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
                    steps_from_lo: steps,
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
    let files_total = pending.len();
    Ok(Deferred {
        recording: Recording {
            dir: dir.to_path_buf(),
            manifest,
            series,
            scrapes,
            gpu_polls: Vec::new(),
            host_samples,
            files,
        },
        pending,
        next: 0,
        gpu_pending,
        gpu_next: 0,
        scanned: 0,
        complete_until: i64::MIN,
        seqs,
        unique_seqs,
        files_total,
        rows_done: 0,
        files_per_load: None,
    })
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

/// A hash of a layout's bytes, so that a file's layout is compared byte for byte only with a
/// layout that probably is the same.
fn layout_hash(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// The remembered layout whose bytes are `bytes`.
fn find_layout<'a>(layouts: &'a [Layout], bytes: &[u8]) -> Option<&'a Layout> {
    let hash = layout_hash(bytes);
    layouts.iter().find(|k| k.hash == hash && k.bytes == bytes)
}

/// A samples file between the reader's two passes: which series its rows hold and which
/// scrapes they belong to.
struct PendingFile {
    /// Its path, as in `Recording::files`.
    path: PathBuf,
    bytes: u64,
    /// Its rows in file order as runs of one series: `(rows, series)`; shared by the files of
    /// one layout.
    runs: Arc<Vec<(u32, SeriesId)>>,
    /// The lowest and highest index of the scrapes its rows belong to.
    range: Option<(usize, usize)>,
    /// Its rows per scrape over `range`: counted into `rows_read` by the first pass, taken
    /// back when the values cannot be read.
    counts: Vec<u32>,
    /// Whether every run steps one scrape per row from `range`'s low end, so that the second
    /// pass places rows without reading `scrape_seq` again.
    steps_from_lo: bool,
}

/// A GPU file between the reader's two passes: checked, its readings not decoded yet.
struct PendingGpu {
    path: PathBuf,
    /// Its earliest poll completion (monotonic ns).
    first: i64,
}

/// A recording read but for its sample values and GPU polls: the manifest, every series,
/// scrape (with `rows_read` counted) and host reading, and every file's report. The values
/// are then read a few files at a time ([`Deferred::load_next`]), in scrape order, keeping
/// only the series asked for, and the GPU files as the scrapes loaded reach their time, so
/// that a caller can fold each batch into its result and drop it: memory then stays flat
/// however long the recording (a day of 8 GPUs polled at 4 Hz is 2.8 M polls, 600 MB held).
pub struct Deferred {
    /// The recording; its scrapes' `samples` fill in as files are loaded, and `gpu_polls`
    /// gains each GPU file's polls as it is loaded (a caller may take them as they come).
    pub recording: Recording,
    pending: Vec<PendingFile>,
    next: usize,
    /// GPU files by earliest completion, and the next to load.
    gpu_pending: Vec<PendingGpu>,
    gpu_next: usize,
    /// Scrapes whose completion `complete_until` covers: the latest completion (monotonic
    /// ns) of the scrapes below `scanned`, every one of which holds all its samples.
    scanned: usize,
    complete_until: i64,
    seqs: Vec<u64>,
    unique_seqs: bool,
    files_total: usize,
    rows_done: u64,
    files_per_load: Option<usize>,
}

impl Deferred {
    /// Loads at most `n` samples files per [`Deferred::load_next`] (default: enough to keep
    /// every thread busy): less memory in flight, less parallel decoding.
    pub fn with_files_per_load(mut self, n: usize) -> Deferred {
        self.files_per_load = Some(n.max(1));
        self
    }

    /// A recording already read whole, as a `Deferred` with nothing left to load.
    pub fn loaded(recording: Recording) -> Deferred {
        Deferred {
            recording,
            pending: Vec::new(),
            next: 0,
            gpu_pending: Vec::new(),
            gpu_next: 0,
            scanned: 0,
            complete_until: i64::MIN,
            seqs: Vec::new(),
            unique_seqs: true,
            files_total: 0,
            rows_done: 0,
            files_per_load: None,
        }
    }

    /// Whether every samples and GPU file has been loaded.
    pub fn is_done(&self) -> bool {
        self.next >= self.pending.len() && self.gpu_next >= self.gpu_pending.len()
    }

    /// Loads the next few samples files, keeping the samples of the series whose id `keep`
    /// marks `true`, and returns the index into `recording.scrapes` below which every scrape
    /// holds all its kept samples (the length of the scrapes once all are loaded). A file whose
    /// values cannot be read is reported in `recording.files`, and its rows are taken back
    /// from its scrapes' `rows_read`, so that analysis sees those scrapes as having lost rows.
    pub fn load_next(&mut self, keep: &[bool], progress: &dyn Fn(ReadProgress)) -> usize {
        let threads = rayon::current_num_threads().max(1) as u64;
        let budget = threads * SAMPLES_BYTES_AT_ONCE_PER_THREAD;
        let start = self.next;
        let at_once = self.files_per_load.unwrap_or_else(samples_files_at_once);
        let row_budget = threads * SAMPLES_ROWS_AT_ONCE_PER_THREAD;
        let (mut bytes, mut rows) = (0u64, 0u64);
        while let Some(p) = self.pending.get(self.next) {
            let n: u64 = p.counts.iter().map(|&c| u64::from(c)).sum();
            let fits =
                self.next - start < at_once && bytes + p.bytes <= budget && rows + n <= row_budget;
            if self.next > start && !fits {
                break;
            }
            (bytes, rows) = (bytes + p.bytes, rows + n);
            self.next += 1;
        }
        let group = &self.pending[start..self.next];
        let kept = |id: SeriesId| keep.get(id as usize).copied().unwrap_or(false);
        let decoded: Vec<_> = group
            .par_iter()
            .map(|p| {
                let (selection, kept_runs) = selection(&p.runs, kept);
                let want: u64 = kept_runs.iter().map(|r| u64::from(r.0)).sum();
                if want == 0 {
                    return Ok((Vec::new(), kept_runs));
                }
                match tables::read_sample_values(&p.path, selection, !p.steps_from_lo) {
                    Ok(d) if d.row_count == want => Ok((d.rows, kept_runs)),
                    Ok(d) => Err(format!(
                        "damaged data: {} of the {want} rows asked for could be read",
                        d.row_count
                    )),
                    Err(tables::Problem::Damaged(why)) => Err(why),
                    Err(tables::Problem::Fatal(e)) => Err(e.to_string()),
                }
            })
            .collect();
        let rec = &mut self.recording;
        let mut work = Vec::with_capacity(group.len());
        for (p, d) in group.iter().zip(decoded) {
            match d {
                Ok((chunks, runs)) => {
                    self.rows_done += p.counts.iter().map(|&n| u64::from(n)).sum::<u64>();
                    let from_lo = p.range.filter(|_| p.steps_from_lo).map(|r| r.0);
                    work.push((chunks, runs, p.range, from_lo));
                }
                Err(why) => {
                    if let Some((lo, _)) = p.range {
                        for (scrape, n) in rec.scrapes[lo..].iter_mut().zip(&p.counts) {
                            scrape.rows_read = scrape.rows_read.saturating_sub(u64::from(*n));
                        }
                    }
                    if let Some(f) = rec.files.iter_mut().find(|f| f.path == p.path) {
                        f.rows = 0;
                        note_problem(f, format!("{why}; its scrapes count as having lost rows"));
                    }
                }
            }
        }
        let ranges: Vec<_> = work.iter().map(|w| w.2).collect();
        let (seqs, unique) = (self.seqs.as_slice(), self.unique_seqs);
        let place = |from_lo: Option<usize>| match from_lo {
            Some(lo) => attach::Place::FromLo(lo),
            None => attach::Place::BySeq(seqs, unique),
        };
        match attach::split_by_file(&mut rec.scrapes, &ranges) {
            Some(parts) => {
                work.par_iter()
                    .zip(parts)
                    .for_each(|((chunks, runs, _, from_lo), (part, base))| {
                        attach::push_values(chunks, runs, place(*from_lo), part, base)
                    })
            }
            None => {
                for (chunks, runs, _, from_lo) in &work {
                    attach::push_values(chunks, runs, place(*from_lo), &mut rec.scrapes, 0);
                }
            }
        }
        progress(ReadProgress {
            values: true,
            files_done: self.next,
            files_total: self.files_total,
            rows: self.rows_done,
        });
        let complete = match self.pending.get(self.next).and_then(|p| p.range) {
            Some((lo, _)) => lo,
            None => rec.scrapes.len(),
        };
        self.load_gpu_until(complete);
        complete
    }

    /// Loads the GPU files that hold a poll completed by the time the scrapes below
    /// `complete` were (every GPU file once the samples are all loaded), into
    /// `recording.gpu_polls`. A poll can join only a window that one of those scrapes closes
    /// or a later one, so every poll such a window needs is then loaded. A file whose polls
    /// cannot be decoded is reported in `recording.files`, and its polls are missing.
    fn load_gpu_until(&mut self, complete: usize) {
        let rec = &mut self.recording;
        let complete = complete.min(rec.scrapes.len());
        for s in rec.scrapes.get(self.scanned..complete).unwrap_or_default() {
            self.complete_until = self.complete_until.max(s.meta.completed_mono.0);
        }
        self.scanned = self.scanned.max(complete);
        let samples_done = self.next >= self.pending.len();
        let start = self.gpu_next;
        while self
            .gpu_pending
            .get(self.gpu_next)
            .is_some_and(|g| samples_done || g.first <= self.complete_until)
        {
            self.gpu_next += 1;
        }
        let mut due: Vec<&PendingGpu> = self.gpu_pending[start..self.gpu_next].iter().collect();
        // Name order within a load, as a read of the whole recording appends them.
        due.sort_by(|a, b| a.path.cmp(&b.path));
        let decoded: Vec<_> = due.par_iter().map(|g| tables::read_gpu(&g.path)).collect();
        for (g, d) in due.into_iter().zip(decoded) {
            let report = rec
                .files
                .binary_search_by(|f| f.path.cmp(&g.path))
                .ok()
                .and_then(|i| rec.files.get_mut(i));
            match d {
                Ok(d) => {
                    if let Some(f) = report {
                        for note in d.notes {
                            note_problem(f, note);
                        }
                    }
                    rec.gpu_polls.extend(d.rows);
                }
                Err(problem) => {
                    let why = match problem {
                        tables::Problem::Damaged(why) => why,
                        tables::Problem::Fatal(e) => e.to_string(),
                    };
                    if let Some(f) = report {
                        f.rows = 0;
                        note_problem(f, format!("{why}; its GPU polls are missing"));
                    }
                }
            }
        }
    }

    /// Loads every samples and GPU file (see [`Deferred::load_next`]) and returns the
    /// recording, its GPU polls sorted by `(seq, gpu_index)`.
    pub fn load_all(mut self, keep: &[bool], progress: &dyn Fn(ReadProgress)) -> Recording {
        while !self.is_done() {
            self.load_next(keep, progress);
        }
        // Stable: a poll repeated in two files keeps the order the files were loaded in.
        self.recording
            .gpu_polls
            .sort_by_key(|p| (p.seq, p.gpu_index));
        self.recording
    }
}

/// The rows of `runs` to read (those of the series `kept` says yes to), as a Parquet row
/// selection, and the kept runs in order.
fn selection(
    runs: &[(u32, SeriesId)],
    kept: impl Fn(SeriesId) -> bool,
) -> (RowSelection, Vec<(u32, SeriesId)>) {
    let mut selectors: Vec<RowSelector> = Vec::new();
    let mut kept_runs = Vec::new();
    for &(n, id) in runs {
        let take = kept(id);
        if take {
            kept_runs.push((n, id));
        }
        match selectors.last_mut() {
            Some(s) if s.skip != take => s.row_count += n as usize,
            _ => selectors.push(if take {
                RowSelector::select(n as usize)
            } else {
                RowSelector::skip(n as usize)
            }),
        }
    }
    (RowSelection::from(selectors), kept_runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::writer::testutil::{
        self, failed_meta, gpu_poll, hostile, ok_meta, Synth,
    };
    use crate::recording::writer::{write_manifest, GpuWriter, ScrapeWriter};
    use crate::recording::ScrapeStatus;

    fn new_recording() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write_manifest(dir.path(), &testutil::manifest()).unwrap();
        dir
    }

    /// Writes `segments` segments of 3 scrapes each (the middle one failed) and 2 GPUs.
    fn write_hostile(dir: &Path, segments: u64) {
        let mut w = ScrapeWriter::new(dir).unwrap();
        let mut g = GpuWriter::new(dir).unwrap();
        for seg in 0..segments {
            for i in 0..3 {
                let seq = seg * 3 + i;
                if i == 1 {
                    w.push(&failed_meta(seq, ScrapeStatus::HttpStatus), None)
                        .unwrap();
                } else {
                    let e = hostile(seq);
                    w.push(&ok_meta(seq, e.sample_count()), Some(&e)).unwrap();
                }
                for gpu in [1, 0] {
                    g.push(&gpu_poll(seq, gpu, seq % 2 == 1)).unwrap();
                }
            }
            w.rotate().unwrap();
            g.rotate().unwrap();
        }
        w.finish().unwrap();
        g.finish().unwrap();
    }

    #[test]
    fn round_trip_is_bit_exact_across_rotations() {
        let dir = new_recording();
        write_hostile(dir.path(), 3);
        let rec = open(dir.path()).unwrap();
        assert_eq!(rec.manifest, testutil::manifest());
        assert_eq!(rec.files.len(), 3 * 3);
        assert!(rec.problems().next().is_none(), "{:?}", rec.files);
        assert_eq!(rec.scrapes.len(), 9);
        for (seq, scrape) in (0..).zip(&rec.scrapes) {
            if seq % 3 == 1 {
                assert_eq!(scrape.meta, failed_meta(seq, ScrapeStatus::HttpStatus));
                assert!(scrape.samples.is_empty());
                continue;
            }
            let e = hostile(seq);
            let meta = ok_meta(seq, e.sample_count());
            assert_eq!(scrape.meta, meta);
            assert_eq!(
                rec.sample_rows(scrape),
                schema::sample_rows(&meta, Some(&e))
            );
        }
        // Series are shared across files, not repeated per file.
        assert_eq!(rec.series.len(), hostile(0).sample_count());
        let want_gpu: Vec<GpuPoll> = (0..9)
            .flat_map(|s| [gpu_poll(s, 0, s % 2 == 1), gpu_poll(s, 1, s % 2 == 1)])
            .collect();
        assert_eq!(rec.gpu_polls, want_gpu);
        assert_eq!(rec.gpu_polls[3].metrics.temperature_c, None);
    }

    #[test]
    fn open_filtered_drops_only_the_samples_of_other_series() {
        let dir = new_recording();
        write_hostile(dir.path(), 3);
        let full = open(dir.path()).unwrap();
        let keep = |s: &SeriesInfo| s.name.ends_with("_bucket") || &*s.family == "special";
        let part = open_filtered(dir.path(), &keep).unwrap();
        assert_eq!(part.series, full.series);
        assert_eq!(part.files, full.files);
        assert_eq!(part.gpu_polls, full.gpu_polls);
        assert_eq!(part.scrapes.len(), full.scrapes.len());
        let mut kept = 0;
        for (p, f) in part.scrapes.iter().zip(&full.scrapes) {
            assert_eq!(p.meta, f.meta);
            // Bit for bit: NaN payloads are among these values; timestamps follow their
            // samples through the filter.
            let want: Vec<(u32, u64, Option<i64>)> = f
                .samples
                .iter()
                .enumerate()
                .filter(|(_, s)| keep(&full.series[s.series as usize]))
                .map(|(i, s)| (s.series, s.value.to_bits(), f.timestamp_ms(i)))
                .collect();
            let got: Vec<(u32, u64, Option<i64>)> = p
                .samples
                .iter()
                .enumerate()
                .map(|(i, s)| (s.series, s.value.to_bits(), p.timestamp_ms(i)))
                .collect();
            assert_eq!(got, want);
            kept += want.len();
        }
        assert!(kept > 0 && kept < full.scrapes.iter().map(|s| s.samples.len()).sum());
    }

    /// Samples files whose scrapes overlap (a segment copied under another number) are
    /// attached one after the other, not in parallel, and each scrape gets both copies in
    /// file-name order; a file whose rows all lack their scrape counts them all as orphans.
    #[test]
    fn overlapping_and_orphan_samples_files() {
        let dir = new_recording();
        write_hostile(dir.path(), 3);
        let p = |name: &str| dir.path().join(name);
        let once = open(dir.path()).unwrap();
        fs::copy(p("samples-000001.parquet"), p("samples-000007.parquet")).unwrap();
        fs::remove_file(p("scrapes-000002.parquet")).unwrap();
        let rec = open(dir.path()).unwrap();
        let n = hostile(3).sample_count();
        assert_eq!(rec.scrapes.len(), 6);
        let bits = |v: &[StoredSample]| -> Vec<(u32, u64)> {
            v.iter().map(|s| (s.series, s.value.to_bits())).collect()
        };
        assert_eq!(
            bits(&rec.scrapes[2].samples),
            bits(&once.scrapes[2].samples)
        );
        let seg1 = &rec.scrapes[3];
        assert_eq!(seg1.meta.seq, 3);
        assert_eq!(seg1.samples.len(), 2 * n);
        assert_eq!(bits(&seg1.samples[..n]), bits(&seg1.samples[n..]));
        assert_eq!(bits(&seg1.samples[..n]), bits(&once.scrapes[3].samples));
        let note = |name: &str| {
            rec.files
                .iter()
                .find(|f| f.path.ends_with(name))
                .and_then(|f| f.problem.clone())
        };
        assert_eq!(note("samples-000007.parquet"), None);
        let orphans = note("samples-000002.parquet").unwrap();
        let lost = hostile(6).sample_count() + hostile(8).sample_count();
        assert!(
            orphans.starts_with(&format!("{lost} rows belong")),
            "{orphans}"
        );
    }

    /// Rewrites a samples file as another tool would: each field through `field` and each
    /// column of each batch through `column` (given its original field), keeping the
    /// recording's version and table metadata.
    fn rewrite_samples(
        path: &Path,
        field: impl Fn(&arrow_schema::Field) -> arrow_schema::Field,
        column: impl Fn(&arrow_schema::Field, &arrow_array::ArrayRef) -> arrow_array::ArrayRef,
    ) {
        use arrow_array::RecordBatch;
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let reader = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        let original = batches[0].schema();
        let fields: Vec<_> = original.fields().iter().map(|f| field(f)).collect();
        let rewritten = Arc::new(arrow_schema::Schema::new(fields));
        let props = parquet::file::properties::WriterProperties::builder()
            .set_key_value_metadata(Some(
                [
                    (schema::VERSION_KEY, schema::FORMAT_VERSION),
                    (schema::TABLE_KEY, "samples"),
                ]
                .map(|(k, v)| parquet::file::metadata::KeyValue::new(k.into(), v.to_string()))
                .to_vec(),
            ))
            .build();
        let file = fs::File::create(path).unwrap();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(file, rewritten.clone(), Some(props)).unwrap();
        for b in &batches {
            let cols = original
                .fields()
                .iter()
                .zip(b.columns())
                .map(|(f, c)| column(f, c))
                .collect();
            w.write(&RecordBatch::try_new(rewritten.clone(), cols).unwrap())
                .unwrap();
        }
        w.close().unwrap();
    }

    /// A samples file whose string columns a foreign tool rewrote as plain strings (no
    /// dictionary) reads back the same.
    #[test]
    fn plain_string_columns_read_like_dictionaries() {
        use arrow_array::cast::AsArray;
        use arrow_array::types::Int32Type;
        use arrow_array::{Array, ArrayRef, StringArray};
        use arrow_schema::{DataType, Field};
        let dir = new_recording();
        write_hostile(dir.path(), 2);
        let want = open(dir.path()).unwrap();
        rewrite_samples(
            &dir.path().join("samples-000001.parquet"),
            |f| match f.data_type() {
                DataType::Dictionary(..) => Field::new(f.name(), DataType::Utf8, true),
                _ => f.clone(),
            },
            |_, c| match c.as_dictionary_opt::<Int32Type>() {
                Some(d) => {
                    let v = d.values().as_string::<i32>();
                    let s: StringArray = (0..d.len())
                        .map(|i| d.is_valid(i).then(|| v.value(d.keys().value(i) as usize)))
                        .collect();
                    Arc::new(s) as ArrayRef
                }
                None => c.clone(),
            },
        );
        let got = open(dir.path()).unwrap();
        assert!(got.problems().next().is_none(), "{:?}", got.files);
        assert_eq!(got.series, want.series);
        for (g, w) in got.scrapes.iter().zip(&want.scrapes) {
            assert_eq!(got.sample_rows(g), want.sample_rows(w));
        }
    }

    /// A second segment of the same series in the same rows decodes only its scrape column,
    /// and the recording reads back as if each file had been decoded whole (the round trip
    /// above reads such segments).
    #[test]
    fn a_file_of_a_known_layout_decodes_only_its_scrapes() {
        let dir = new_recording();
        write_hostile(dir.path(), 2);
        let path = |n: u64| dir.path().join(Table::Samples.file_name(n));
        let Ok(first) = tables::read_sample_keys(&path(0), &|_| false) else {
            panic!("segment 0 unreadable");
        };
        assert!(first.rows.series.is_some());
        let layout = first.rows.layout.clone();
        let Ok(second) = tables::read_sample_keys(&path(1), &|l| l == layout.as_slice()) else {
            panic!("segment 1 unreadable");
        };
        assert!(second.rows.series.is_none());
        assert_eq!(second.rows.layout, layout);
        assert_eq!(second.row_count, first.row_count);
    }

    /// A samples file whose series read but whose values do not (a null in `value`) is found
    /// out by the second pass: it is reported, and its scrapes count as having lost their
    /// rows, so analysis sees them as failed rather than empty.
    #[test]
    fn values_that_cannot_be_read_lose_their_scrapes_rows() {
        use arrow_array::{Array, ArrayRef, Float64Array};
        use arrow_schema::{DataType, Field};
        let dir = new_recording();
        write_hostile(dir.path(), 2);
        let path = dir.path().join("samples-000001.parquet");
        let is_value = |f: &Field| f.name() == schema::col::VALUE;
        rewrite_samples(
            &path,
            |f| match is_value(f) {
                true => Field::new(f.name(), DataType::Float64, true),
                false => f.clone(),
            },
            |f, c| match is_value(f) {
                true => {
                    let values: Float64Array =
                        (0..c.len()).map(|k| (k > 0).then_some(1.0)).collect();
                    Arc::new(values) as ArrayRef
                }
                false => c.clone(),
            },
        );
        let rec = open(dir.path()).unwrap();
        let problem = rec
            .files
            .iter()
            .find(|f| f.path == path)
            .and_then(|f| f.problem.clone())
            .unwrap();
        assert!(problem.contains("holds nulls"), "{problem}");
        for s in &rec.scrapes[..3] {
            assert_eq!(s.rows_lost(), None);
        }
        for s in rec.scrapes[3..]
            .iter()
            .filter(|s| s.meta.status == ScrapeStatus::Ok)
        {
            assert_eq!(s.rows_lost(), s.meta.sample_count);
            assert!(s.samples.is_empty() && !s.is_usable());
        }
    }

    #[test]
    fn special_values_and_labels_survive() {
        let dir = new_recording();
        write_hostile(dir.path(), 1);
        let rec = open(dir.path()).unwrap();
        let bits: Vec<u64> = rec
            .series_by_family("special")
            .map(|(id, _)| {
                let s = rec.scrapes[0]
                    .samples
                    .iter()
                    .find(|s| s.series == id)
                    .unwrap();
                s.value.to_bits()
            })
            .collect();
        let want = [
            f64::NAN,
            f64::from_bits(0x7ff8_0000_dead_beef),
            f64::INFINITY,
        ]
        .into_iter()
        .chain([f64::NEG_INFINITY, -0.0, 0.0])
        .map(f64::to_bits)
        .collect::<Vec<_>>();
        assert_eq!(bits, want);
        let buckets: Vec<(Option<f64>, String)> = rec
            .series_by_name("lat_seconds_bucket")
            .map(|(_, s)| (s.le, s.labels.to_string()))
            .collect();
        let m = "model_name=\"m\"".to_string();
        assert_eq!(
            buckets,
            vec![
                (Some(0.005), m.clone()),
                (Some(0.1), m.clone()),
                (Some(1e6), m.clone()),
                (Some(f64::INFINITY), m.clone()),
                (None, format!("le=\"bogus\",{m}")),
            ]
        );
        let (_, odd) = rec.series_by_family("odd_gauge").next().unwrap();
        assert_eq!((odd.le, &*odd.labels), (None, "le=\"1\""));
        let (_, weird) = rec
            .series_by_name("vllm:prompt_tokens_total")
            .nth(1)
            .unwrap();
        assert_eq!(
            weird.label_pairs().unwrap(),
            vec![
                ("engine".to_string(), "1".to_string()),
                (
                    "model_name".to_string(),
                    "we\\ird \"name\"\nline2, a=b".to_string()
                ),
            ]
        );
        assert_eq!(
            weird.help.as_deref(),
            Some("Prompt tokens.\nWith \\ backslash and \"quotes\"")
        );
        assert_eq!(rec.scrapes[0].timestamp_ms(1), Some(1_795_424_462_123));
        assert_eq!(rec.scrapes[0].timestamp_ms(0), None);
        assert_eq!(std::mem::size_of::<StoredSample>(), 16);
    }

    #[test]
    fn label_order_does_not_split_series() {
        let dir = new_recording();
        let mut w = ScrapeWriter::new(dir.path()).unwrap();
        let mut a = hostile(0);
        let mut b = hostile(1);
        b.families[0].samples[0].labels.reverse();
        // The same series twice in one body is stored twice, adjacent.
        let dup = a.families[4].samples[0].clone();
        a.families[4].samples.push(dup);
        w.push(&ok_meta(0, a.sample_count()), Some(&a)).unwrap();
        w.push(&ok_meta(1, b.sample_count()), Some(&b)).unwrap();
        w.finish().unwrap();
        let rec = open(dir.path()).unwrap();
        assert_eq!(rec.series.len(), b.sample_count());
        assert_eq!(rec.scrapes[0].samples.len(), a.sample_count());
        assert_eq!(rec.scrapes[1].samples.len(), b.sample_count());
        let first = &rec.scrapes[0].samples;
        assert_eq!(first[first.len() - 1], first[first.len() - 2]);
    }

    #[test]
    fn synthetic_rotations_read_back_complete() {
        let dir = new_recording();
        let mut w = ScrapeWriter::new(dir.path()).unwrap();
        let mut synth = Synth::new(1);
        let mut want = Vec::new();
        for seq in 0..50 {
            synth.step(seq % 3 != 0);
            let e = synth.exposition();
            let meta = ok_meta(seq, e.sample_count());
            want.push(schema::sample_rows(&meta, Some(&e)));
            w.push(&meta, Some(&e)).unwrap();
            if seq % 7 == 6 {
                w.rotate().unwrap();
            }
        }
        w.finish().unwrap();
        let rec = open(dir.path()).unwrap();
        assert_eq!(rec.files.len(), 2 * 8);
        let got: Vec<Vec<SampleRow>> = rec.scrapes.iter().map(|s| rec.sample_rows(s)).collect();
        assert_eq!(got, want);
        assert_eq!(rec.series.len(), 425);
    }

    /// Found by fuzzing (docs/fuzzing.md): one byte of a real scrapes file changed made the
    /// Parquet decoder panic inside `open`; the file must be reported damaged instead.
    #[test]
    fn a_file_that_makes_the_parquet_decoder_panic_is_reported_damaged() {
        let real =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings/vllm-cpu-0.32-kv-pressure");
        let dir = tempfile::tempdir().unwrap();
        for e in fs::read_dir(&real).unwrap() {
            let e = e.unwrap();
            fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
        let victim = dir.path().join("scrapes-000001.parquet");
        let mut bytes = fs::read(&victim).unwrap();
        assert_eq!(
            bytes[1967], 0xcc,
            "the shipped recording changed; find a new byte"
        );
        bytes[1967] = 0x35;
        fs::write(&victim, bytes).unwrap();
        let rec = open(dir.path()).unwrap();
        let victim = rec
            .files
            .iter()
            .find(|f| f.path.ends_with("scrapes-000001.parquet"))
            .unwrap();
        let why = victim.problem.as_deref().unwrap_or_default();
        assert!(why.contains("the Parquet decoder failed"), "{why}");
        // The other segment is still read.
        assert!(!rec.scrapes.is_empty());
    }

    #[test]
    fn damaged_files_are_reported_by_name_and_skipped() {
        let dir = new_recording();
        write_hostile(dir.path(), 3);
        let p = |name: &str| dir.path().join(name);
        let truncated = fs::read(p("samples-000001.parquet")).unwrap();
        fs::write(
            p("samples-000001.parquet"),
            &truncated[..truncated.len() / 2],
        )
        .unwrap();
        fs::write(p("scrapes-000002.parquet"), b"not parquet at all").unwrap();
        fs::write(p("gpu-000000.parquet"), b"PAR1garbagePAR1").unwrap();
        fs::write(p(".samples-000003.parquet.tmp"), b"PAR1 half").unwrap();
        fs::write(p("notes.txt"), b"ignored").unwrap();
        let rec = open(dir.path()).unwrap();
        let problems: Vec<String> = rec
            .problems()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            problems,
            vec![
                ".samples-000003.parquet.tmp",
                "gpu-000000.parquet",
                "samples-000001.parquet",
                "samples-000002.parquet",
                "scrapes-000002.parquet",
            ]
        );
        let orphan = rec
            .files
            .iter()
            .find(|f| f.path.ends_with("samples-000002.parquet"));
        assert!(orphan
            .unwrap()
            .problem
            .as_deref()
            .unwrap()
            .contains("found in no scrapes file"));
        // Segment 0 whole, segment 1's scrapes without samples, segment 2 gone.
        let seqs: Vec<u64> = rec.scrapes.iter().map(|s| s.meta.seq).collect();
        assert_eq!(seqs, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(rec.scrapes[0].samples.len(), hostile(0).sample_count());
        assert!(rec.scrapes[3].samples.is_empty());
        assert_eq!(rec.gpu_polls.first().map(|g| g.seq), Some(3));
        assert_eq!(rec.gpu_polls.len(), 12);
    }

    #[test]
    fn manifest_problems_fail_the_read() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            open(dir.path()),
            Err(RecordingError::NotARecording(_))
        ));
        write_hostile(dir.path(), 1);
        let path = dir.path().join("manifest.json");
        match open(dir.path()) {
            Err(RecordingError::Manifest { path: p, .. }) => assert_eq!(p, path),
            other => panic!("{other:?}"),
        }
        fs::write(&path, "{\"format_version\": ").unwrap();
        assert!(matches!(
            open(dir.path()),
            Err(RecordingError::Manifest { .. })
        ));
        let mut m = testutil::manifest();
        m.format_version = "2.0".to_string();
        write_manifest(dir.path(), &m).unwrap();
        match open(dir.path()) {
            Err(RecordingError::UnsupportedVersion {
                path: p,
                found,
                supported,
            }) => {
                assert_eq!((p, found.as_str(), supported), (path, "2.0", 1));
            }
            other => panic!("{other:?}"),
        }
        // A newer minor of the same major is read.
        m.format_version = "1.7".to_string();
        write_manifest(dir.path(), &m).unwrap();
        assert_eq!(open(dir.path()).unwrap().scrapes.len(), 3);
    }

    /// Writes a small recording for checking the files with DuckDB/pandas/polars by hand:
    /// `RECFMT_OUT=/tmp/rec cargo test --lib write_example -- --ignored`.
    #[test]
    #[ignore = "writes into $RECFMT_OUT for a manual check"]
    fn write_example_recording() {
        let out = PathBuf::from(std::env::var("RECFMT_OUT").unwrap());
        fs::create_dir_all(&out).unwrap();
        write_manifest(&out, &testutil::manifest()).unwrap();
        write_hostile(&out, 2);
        let mut w = ScrapeWriter::new(&out).unwrap();
        let mut synth = Synth::new(3);
        for seq in 100..340 {
            synth.step(seq > 200);
            let e = synth.exposition();
            w.push(&ok_meta(seq, e.sample_count()), Some(&e)).unwrap();
        }
        w.finish().unwrap();
        assert!(open(&out).unwrap().problems().next().is_none());
    }

    #[test]
    fn unknown_major_in_a_file_is_refused() {
        use arrow_array::{Int32Array, RecordBatch};
        use arrow_schema::{DataType, Field, Schema};
        let dir = new_recording();
        write_hostile(dir.path(), 1);
        let path = dir.path().join("gpu-000001.parquet");
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)]));
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(vec![1]))])
            .unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
                schema::VERSION_KEY.to_string(),
                "2.0".to_string(),
            )]))
            .build();
        let file = fs::File::create(&path).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        match open(dir.path()) {
            Err(RecordingError::UnsupportedVersion { path: p, found, .. }) => {
                assert_eq!((p, found.as_str()), (path, "2.0"));
            }
            other => panic!("{other:?}"),
        }
    }

    /// A `gpu` file of format 1.4 has no GPM columns: its polls read as they were written,
    /// with the three GPM fields `None`, not 0.
    #[test]
    fn a_gpu_file_from_before_gpm_reads_with_the_gpm_fields_none() {
        use arrow_array::RecordBatch;
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let dir = new_recording();
        write_hostile(dir.path(), 1);
        let want: Vec<GpuPoll> = open(dir.path()).unwrap().gpu_polls;
        assert!(want.iter().all(|p| p.metrics.sm_active_pct.is_some()));
        let path = dir.path().join("gpu-000000.parquet");
        let reader = ParquetRecordBatchReaderBuilder::try_new(fs::File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        let gpm = [
            schema::col::SM_ACTIVE_PCT,
            schema::col::SM_OCCUPANCY_PCT,
            schema::col::DRAM_BW_UTIL_PCT,
        ];
        let keep: Vec<usize> = (0..batches[0].num_columns())
            .filter(|&i| !gpm.contains(&batches[0].schema().field(i).name().as_str()))
            .collect();
        assert_eq!(keep.len(), batches[0].num_columns() - 3);
        let old_schema = Arc::new(batches[0].schema().project(&keep).unwrap());
        let props = parquet::file::properties::WriterProperties::builder()
            .set_key_value_metadata(Some(
                [(schema::VERSION_KEY, "1.4"), (schema::TABLE_KEY, "gpu")]
                    .map(|(k, v)| {
                        parquet::file::metadata::KeyValue::new(k.to_string(), v.to_string())
                    })
                    .to_vec(),
            ))
            .build();
        let file = fs::File::create(&path).unwrap();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(file, old_schema.clone(), Some(props)).unwrap();
        for b in &batches {
            w.write(&b.project(&keep).unwrap()).unwrap();
        }
        w.close().unwrap();

        let got = open(dir.path()).unwrap();
        assert!(got.problems().next().is_none(), "{:?}", got.files);
        let expected: Vec<GpuPoll> = want
            .into_iter()
            .map(|mut p| {
                p.metrics.sm_active_pct = None;
                p.metrics.sm_occupancy_pct = None;
                p.metrics.dram_bw_util_pct = None;
                p
            })
            .collect();
        assert_eq!(got.gpu_polls, expected);
        assert!(got.gpu_polls[0].metrics.util_pct.is_some());
    }
}
