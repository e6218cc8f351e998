//! The reader's second pass: a recording whose series and scrapes are known, its sample
//! values and GPU polls read a few files at a time as the caller (the window builder) needs
//! them, so that nothing holds a long recording's samples at once.

use super::heads::{Errors, Heads};
use super::tables::{self, ValueChunk};
use super::{attach, note_problem, samples_files_at_once, ReadProgress, Recording};
use super::{SeriesId, SAMPLES_BYTES_AT_ONCE_PER_THREAD, SAMPLES_ROWS_AT_ONCE_PER_THREAD};
use crate::units::MonoNs;
use parquet::arrow::arrow_reader::{RowSelection, RowSelector};
use rayon::prelude::*;
use std::path::PathBuf;
use std::sync::Arc;

/// A samples file between the reader's two passes: which series its rows hold and which
/// scrapes they belong to.
pub(super) struct PendingFile {
    /// Its path, as in `Recording::files`.
    pub(super) path: PathBuf,
    pub(super) bytes: u64,
    /// Its rows in file order as runs of one series: `(rows, series)`; shared by the files of
    /// one layout.
    pub(super) runs: Arc<Vec<(u32, SeriesId)>>,
    /// The lowest and highest index of the scrapes its rows belong to.
    pub(super) range: Option<(usize, usize)>,
    /// Its rows per scrape over `range`: counted into `rows_read` by the first pass, taken
    /// back when the values cannot be read.
    pub(super) counts: Vec<u32>,
    /// How the second pass places its rows without reading `scrape_seq` again, if it can.
    pub(super) placed: Placed,
    /// Its rows per row group, in file order.
    pub(super) row_groups: Vec<u64>,
}

/// How the first pass found a samples file's rows to lie, which the second pass places them
/// by.
pub(super) enum Placed {
    /// Every run steps one scrape per row from the file's lowest scrape.
    FromLo,
    /// In spans of rows that step one scrape per row, in file order, relative to the file's
    /// lowest scrape and with alike spans folded (a recorder's segment whose series come and
    /// go), shared by files whose rows lie alike. Held until the file is loaded: decoding
    /// `scrape_seq` a second time cost more than a tenth of a day's analysis.
    Spans(Arc<[attach::RelSpan]>),
    /// Row by row: `scrape_seq` is read again.
    BySeq,
}

/// A GPU file between the reader's two passes: checked, its readings not decoded yet.
pub(super) struct PendingGpu {
    pub(super) path: PathBuf,
    /// Its earliest poll completion (monotonic ns).
    pub(super) first: i64,
}

/// A recording read but for its sample values and GPU polls: the manifest, every series and
/// host reading, every file's report, and every scrape's metadata (with `rows_read` counted),
/// packed. The values are then read a few files at a time ([`Deferred::load_next`]), in
/// scrape order, keeping only the series asked for, and the GPU files as the scrapes loaded
/// reach their time, so that a caller can fold each batch into its result and drop it: memory
/// then stays flat however long the recording (a day of 8 GPUs polled at 4 Hz is 2.8 M polls,
/// 600 MB held). The scrapes themselves come into `recording.scrapes` as their files are
/// loaded, and go again when the caller releases them ([`Deferred::release_below`]).
pub struct Deferred {
    /// The recording. Its `scrapes` are those from index [`Deferred::base`] up to the last
    /// loaded (every one once [`Deferred::load_all`] is done), their `samples` filled in as
    /// their files are loaded; `gpu_polls` gains each GPU file's polls as it is loaded (a
    /// caller may take them as they come).
    pub recording: Recording,
    /// The index of `recording.scrapes[0]`: the scrapes below it were released.
    base: usize,
    /// Scrapes in the recording.
    total: usize,
    /// Every scrape not yet in `recording.scrapes`, packed (empty for [`Deferred::loaded`]).
    heads: Heads,
    errors: Errors,
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
    /// Whether [`Deferred::load_next`] may leave a file's values in its columns.
    in_place: bool,
}

impl Deferred {
    /// A recording after the first pass (no scrape in `recording.scrapes` yet): its scrapes
    /// as `heads` (their error texts in `errors`, their `seq`s in `seqs`), its samples and
    /// GPU files still to load.
    pub(super) fn new(
        recording: Recording,
        (heads, errors): (Heads, Errors),
        pending: Vec<PendingFile>,
        gpu_pending: Vec<PendingGpu>,
        seqs: Vec<u64>,
        unique_seqs: bool,
    ) -> Deferred {
        let files_total = pending.len();
        let total = recording.scrapes.len() + heads.len();
        Deferred {
            recording,
            base: 0,
            total,
            heads,
            errors,
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
            in_place: false,
        }
    }

    /// Loads at most `n` samples files per [`Deferred::load_next`] (default: enough to keep
    /// every thread busy): less memory in flight, less parallel decoding.
    pub fn with_files_per_load(mut self, n: usize) -> Deferred {
        self.files_per_load = Some(n.max(1));
        self
    }

    /// Lets [`Deferred::load_next`] leave the values of a recorder's segment (rows placed by
    /// spans, no exposition timestamps) in the columns they were decoded into, each scrape
    /// reading its own in place ([`Scrape::each_sample`]) rather than being handed a copy in
    /// `samples`. For a caller that reads the samples with `each_sample` alone (the window
    /// stage); [`Deferred::load_all`] never does it.
    ///
    /// [`Scrape::each_sample`]: super::Scrape::each_sample
    pub fn samples_in_place(&mut self) {
        self.in_place = true;
    }

    /// A recording already read whole, as a `Deferred` with nothing left to load.
    pub fn loaded(recording: Recording) -> Deferred {
        let none = (Heads::default(), Errors::default());
        Deferred::new(recording, none, Vec::new(), Vec::new(), Vec::new(), true)
    }

    /// Whether every samples and GPU file, and every scrape, has been loaded.
    pub fn is_done(&self) -> bool {
        self.samples_done() && self.gpu_next >= self.gpu_pending.len()
    }

    fn samples_done(&self) -> bool {
        self.next >= self.pending.len() && self.end() >= self.total
    }

    /// The recording, as it stands; the rest of what the reader holds goes.
    pub fn into_recording(self) -> Recording {
        self.recording
    }

    /// Scrape attempts in the recording, loaded or not.
    pub fn scrape_count(&self) -> usize {
        self.total
    }

    /// The index (among all the recording's scrapes, sorted by `seq`) of
    /// `recording.scrapes[0]`.
    pub fn base(&self) -> usize {
        self.base
    }

    /// One past the index of the last scrape loaded.
    fn end(&self) -> usize {
        self.base + self.recording.scrapes.len()
    }

    /// Every scrape's completion time and whether it looks usable now (before any samples
    /// file fails to load), in `seq` order: what the window stage plans its windows from.
    /// Scrapes already released are not given: call it before releasing any.
    pub fn attempts(&self) -> impl Iterator<Item = (MonoNs, bool)> + '_ {
        (self.base..self.total).filter_map(move |i| {
            match self.recording.scrapes.get(i - self.base) {
                Some(s) => Some((s.meta.completed_mono, s.is_usable())),
                None => self
                    .heads
                    .get(i)
                    .map(|h| (h.completed_mono(), h.is_usable())),
            }
        })
    }

    /// Brings the scrapes up to index `end` (at most all) into `recording.scrapes`, with no
    /// samples yet.
    fn load_scrapes_until(&mut self, end: usize) {
        let end = end.min(self.total);
        let from = self.end();
        if end <= from {
            return;
        }
        self.recording.scrapes.reserve(end - from);
        for i in from..end {
            let (Some(h), Some(&seq)) = (self.heads.get(i), self.seqs.get(i)) else {
                // Released, which `release_below` never does above the loaded ones.
                break;
            };
            self.recording.scrapes.push(h.unpack(seq, &self.errors));
        }
    }

    /// Lets the scrapes below index `i` go (from `recording.scrapes` and from the packed
    /// ones): a caller that has folded them, samples and all, and needs none of them again.
    /// Scrapes not loaded yet stay.
    pub fn release_below(&mut self, i: usize) {
        let i = i.clamp(self.base, self.end());
        self.recording.scrapes.drain(..i - self.base);
        self.base = i;
        self.heads.release_below(i);
        let (len, cap) = (
            self.recording.scrapes.len(),
            self.recording.scrapes.capacity(),
        );
        if cap > 2 * len + SCRAPES_KEPT_SPARE {
            self.recording.scrapes.shrink_to_fit();
        }
    }

    /// Loads the next few samples files, keeping the samples of the series whose id `keep`
    /// marks `true`, and returns the index into `recording.scrapes` below which every scrape
    /// holds all its kept samples (the length of the scrapes once all are loaded). A file whose
    /// values cannot be read is reported in `recording.files`, and its rows are taken back
    /// from its scrapes' `rows_read`, so that analysis sees those scrapes as having lost rows.
    pub fn load_next(&mut self, keep: &[bool], progress: &dyn Fn(ReadProgress)) -> usize {
        // Scrapes with no samples file ahead (failed attempts, or samples files lost): a
        // stretch at a time, so that a long one is never loaded whole.
        let next_lo = self.next_lo();
        if next_lo > self.end().saturating_add(SCRAPES_AT_ONCE) {
            self.load_scrapes_until(self.end() + SCRAPES_AT_ONCE);
            let complete = self.end();
            self.load_gpu_until(complete);
            return complete;
        }
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
        let group_end = self.pending[start..self.next]
            .iter()
            .filter_map(|p| p.range.map(|r| r.1 + 1))
            .max()
            .unwrap_or(0);
        self.load_scrapes_until(group_end);
        let base = self.base;
        let group = &self.pending[start..self.next];
        let kept = |id: SeriesId| keep.get(id as usize).copied().unwrap_or(false);
        let picked: Vec<_> = group.iter().map(|p| selection(&p.runs, kept)).collect();
        // One task per file, or per row group of a file loaded alone (a compacted hour is one
        // file of several row groups: decoded whole, it would keep one thread busy).
        let tasks: Vec<(usize, Option<usize>, RowSelection)> = match (group, picked.as_slice()) {
            ([p], [(rows, _)]) if p.row_groups.len() > 1 => by_row_group(rows, &p.row_groups)
                .into_iter()
                .enumerate()
                .filter(|(_, r)| r.selects_any())
                .map(|(g, r)| (0, Some(g), r))
                .collect(),
            _ => picked
                .iter()
                .enumerate()
                .filter(|(_, (rows, _))| rows.selects_any())
                .map(|(i, (rows, _))| (i, None, rows.clone()))
                .collect(),
        };
        let read: Vec<_> = tasks
            .par_iter()
            .map(|(i, g, rows)| {
                tables::read_sample_values(
                    &group[*i].path,
                    *g,
                    rows.clone(),
                    matches!(group[*i].placed, Placed::BySeq),
                )
            })
            .collect();
        let mut decoded: Vec<Result<(Vec<ValueChunk>, u64), String>> =
            group.iter().map(|_| Ok((Vec::new(), 0))).collect();
        for ((i, _, _), r) in tasks.iter().zip(read) {
            let Some(Ok((chunks, rows))) = decoded.get_mut(*i) else {
                continue;
            };
            match r {
                Ok(d) => {
                    chunks.extend(d.rows);
                    *rows += d.row_count;
                }
                Err(tables::Problem::Damaged(why)) => decoded[*i] = Err(why),
                Err(tables::Problem::Fatal(e)) => decoded[*i] = Err(e.to_string()),
            }
        }
        let decoded: Vec<_> = decoded
            .into_iter()
            .zip(picked)
            .map(|(d, (_, kept_runs))| {
                let want: u64 = kept_runs.iter().map(|r| u64::from(r.0)).sum();
                match d {
                    Ok((chunks, got)) if got == want => Ok((chunks, kept_runs)),
                    Ok((_, got)) => Err(format!(
                        "damaged data: {got} of the {want} rows asked for could be read"
                    )),
                    Err(why) => Err(why),
                }
            })
            .collect();
        let rec = &mut self.recording;
        let mut work = Vec::with_capacity(group.len());
        for (p, d) in group.iter().zip(decoded) {
            match d {
                Ok((chunks, runs)) => {
                    self.rows_done += p.counts.iter().map(|&n| u64::from(n)).sum::<u64>();
                    let at = match (&p.placed, p.range) {
                        (Placed::FromLo, Some((lo, _))) => Work::FromLo(lo),
                        (Placed::Spans(spans), Some((lo, _))) => {
                            Work::Spans(attach::kept_spans(&p.runs, spans, lo, kept))
                        }
                        _ => Work::BySeq,
                    };
                    work.push((chunks, runs, p.range, at));
                }
                Err(why) => {
                    let from = p.range.and_then(|(lo, _)| lo.checked_sub(base));
                    if let Some(part) = from.and_then(|k| rec.scrapes.get_mut(k..)) {
                        for (scrape, n) in part.iter_mut().zip(&p.counts) {
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
        // Relative to `recording.scrapes`, which starts at `base`.
        let ranges: Vec<_> = work
            .iter()
            .map(|w| w.2.map(|(lo, hi)| (lo - base, hi - base)))
            .collect();
        let (seqs, unique) = (self.seqs.as_slice(), self.unique_seqs);
        fn place<'a>(at: &'a Work, seqs: &'a [u64], unique: bool) -> attach::Place<'a> {
            match at {
                Work::FromLo(lo) => attach::Place::FromLo(*lo),
                Work::Spans(spans) => attach::Place::Spans(spans),
                Work::BySeq => attach::Place::BySeq(seqs, unique),
            }
        }
        let in_place = self.in_place;
        match attach::split_by_file(&mut rec.scrapes, &ranges) {
            Some(parts) => {
                work.into_par_iter()
                    .zip(parts)
                    .for_each(|((chunks, runs, _, at), (part, lo))| {
                        let at = place(&at, seqs, unique);
                        attach::push_values(chunks, &runs, at, part, base + lo, in_place)
                    })
            }
            None => {
                for (chunks, runs, _, at) in work {
                    let at = place(&at, seqs, unique);
                    attach::push_values(chunks, &runs, at, &mut rec.scrapes, base, in_place);
                }
            }
        }
        // Loaded: what the first pass learnt of these files is not needed again (a week's
        // per-scrape row counts are 10 MB).
        for p in &mut self.pending[start..self.next] {
            p.counts = Vec::new();
            p.row_groups = Vec::new();
            p.placed = Placed::BySeq;
        }
        progress(ReadProgress {
            values: true,
            files_done: self.next,
            files_total: self.files_total,
            rows: self.rows_done,
        });
        // Every scrape before the next file's first is complete now; those without samples
        // come a stretch at a time.
        let next_lo = self.next_lo();
        self.load_scrapes_until(next_lo.min(self.end().saturating_add(SCRAPES_AT_ONCE)));
        let complete = next_lo.min(self.end());
        self.load_gpu_until(complete);
        complete
    }

    /// The index of the first scrape the next samples file to load holds rows of (all the
    /// scrapes once every samples file is loaded).
    fn next_lo(&self) -> usize {
        match self.pending.get(self.next).and_then(|p| p.range) {
            Some((lo, _)) => lo,
            None => self.total,
        }
    }

    /// Loads the GPU files that hold a poll completed by the time the scrapes below
    /// `complete` were (every GPU file once the samples are all loaded), into
    /// `recording.gpu_polls`. A poll can join only a window that one of those scrapes closes
    /// or a later one, so every poll such a window needs is then loaded. A file whose polls
    /// cannot be decoded is reported in `recording.files`, and its polls are missing.
    fn load_gpu_until(&mut self, complete: usize) {
        let complete = complete.min(self.end());
        let from = self.scanned.max(self.base) - self.base;
        let to = complete.saturating_sub(self.base);
        for s in self.recording.scrapes.get(from..to).unwrap_or_default() {
            self.complete_until = self.complete_until.max(s.meta.completed_mono.0);
        }
        self.scanned = self.scanned.max(complete);
        let samples_done = self.samples_done();
        let rec = &mut self.recording;
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
        self.load_scrapes_until(self.total);
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

/// Scrapes without samples loaded at once (see [`Deferred::load_next`]). Ours: a recorder
/// down for a day fails 345,600 attempts; loaded 64 Ki at a time they hold 10 MB. Five in
/// unit tests, so that a test recording's failed stretches are loaded in pieces.
const SCRAPES_AT_ONCE: usize = if cfg!(test) { 5 } else { 1 << 16 };

/// Spare room `recording.scrapes` may keep after a release before it is shrunk (see
/// [`Deferred::release_below`]).
const SCRAPES_KEPT_SPARE: usize = 4_096;

/// `rows`, a selection over a file's rows, cut at its row groups' bounds (`row_groups`, rows
/// per group): one selection per group, each counting from that group's first row.
fn by_row_group(rows: &RowSelection, row_groups: &[u64]) -> Vec<RowSelection> {
    let mut rest = rows.clone();
    row_groups
        .iter()
        .map(|&n| rest.split_off(usize::try_from(n).unwrap_or(usize::MAX)))
        .collect()
}

/// How a loaded file's rows are placed ([`attach::Place`], owned).
enum Work {
    FromLo(usize),
    Spans(Vec<(usize, u32)>),
    BySeq,
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
