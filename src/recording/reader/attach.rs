//! Attaching a decoded samples file to the recording being built: finding each row's scrape,
//! giving the file's series their recording-wide ids, and appending the rows to their scrapes,
//! with exact capacity and, where the files of a batch cover disjoint scrapes, in parallel.
//! Kept apart from `reader.rs` because this is the reader's hot path (every sample passes
//! here once) and is written for speed: no per-row allocation, no per-row search.

use super::tables::{SeriesKey, ValueChunk};
use super::{Scrape, SeriesId, SeriesInfo, StoredSample};
use arrow_array::types::UInt64Type;
use arrow_array::PrimitiveArray;
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;

/// Where a samples file's rows go: the range of the indices (in the scrapes, sorted by
/// `seq`) of the rows' scrapes, and each row's scrape, as spans of rows that step one scrape
/// per row or, where two scrapes share a `seq` or a row's scrape is missing, row by row.
pub(super) struct Located {
    pub range: Option<(usize, usize)>,
    /// Rows located (found or not).
    pub rows: u64,
    how: How,
}

enum How {
    /// In file order, `(first, rows)`: the span's row `k` belongs to scrape `first + k`. Rows
    /// run series-major, so a recorder's segment, where every scrape holds every series once,
    /// is one span per series.
    Spans(Vec<(usize, u32)>),
    /// Each row's scrape index, `usize::MAX` for a row whose scrape is in no scrapes file.
    Rows(Vec<usize>),
}

impl Located {
    fn spans(spans: Vec<(usize, u32)>) -> Located {
        let ends = spans
            .iter()
            .filter(|s| s.1 > 0)
            .map(|&(first, n)| (first, first + n as usize - 1));
        let range = ends.reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
        Located {
            range,
            rows: spans.iter().map(|s| u64::from(s.1)).sum(),
            how: How::Spans(spans),
        }
    }

    /// Rows per scrape over `range` (from its low end), and the rows whose scrape is missing.
    pub fn counts(&self) -> (Vec<u32>, u64) {
        let Some((lo, hi)) = self.range else {
            return (Vec::new(), self.rows);
        };
        let mut counts = vec![0u32; hi - lo + 1];
        match &self.how {
            How::Spans(spans) => {
                // Each span adds one row to each of its scrapes: +1 where it starts and -1
                // after it ends, summed from the low end.
                let mut step = vec![0i64; counts.len() + 1];
                for &(first, n) in spans {
                    step[first - lo] += 1;
                    step[first - lo + n as usize] -= 1;
                }
                let mut level = 0i64;
                for (c, d) in counts.iter_mut().zip(&step) {
                    level += d;
                    *c = u32::try_from(level).unwrap_or(u32::MAX);
                }
                (counts, 0)
            }
            How::Rows(at) => {
                let mut orphans = 0u64;
                for &a in at {
                    match a.checked_sub(lo).and_then(|k| counts.get_mut(k)) {
                        Some(c) => *c = c.saturating_add(1),
                        None => orphans += 1,
                    }
                }
                (counts, orphans)
            }
        }
    }

    /// The spans, relative to the range's low end and with repeats folded ([`RelSpan`]),
    /// when the rows were placed by spans whose scrapes all fit that form (a file of fewer
    /// than 4 G scrapes); `None` for rows placed one by one.
    pub fn relative_spans(&self) -> Option<Box<[RelSpan]>> {
        let (How::Spans(spans), Some((lo, _))) = (&self.how, self.range) else {
            return None;
        };
        let mut out: Vec<RelSpan> = Vec::new();
        for &(first, rows) in spans {
            let first = u32::try_from(first - lo).ok()?;
            match out.last_mut() {
                Some(s) if s.first == first && s.rows == rows => s.times += 1,
                _ => out.push(RelSpan {
                    first,
                    rows,
                    times: 1,
                }),
            }
        }
        Some(out.into_boxed_slice())
    }

    /// Whether every run of rows (`(rows, series)`, in file order) steps one scrape per row
    /// from the low end of the range (the layout of a recorder's segment where every scrape
    /// holds every series once): then [`Place::FromLo`] places them.
    pub fn steps_from_lo(&self, runs: &[(u32, u32)]) -> bool {
        let Some((lo, _)) = self.range else {
            return false;
        };
        match &self.how {
            How::Spans(spans) => {
                spans.len() == runs.len()
                    && spans.iter().zip(runs).all(|(s, r)| s.0 == lo && s.1 == r.0)
            }
            How::Rows(at) => {
                let mut at = at.as_slice();
                for &(n, _) in runs {
                    let (run, rest) = at.split_at((n as usize).min(at.len()));
                    if run.len() != n as usize || run.iter().enumerate().any(|(k, &a)| a != lo + k)
                    {
                        return false;
                    }
                    at = rest;
                }
                at.is_empty()
            }
        }
    }
}

/// Finds each row's scrape in `seqs` (the scrapes' `seq`, sorted). Rows run series-major, so
/// a row's scrape is usually the one after the previous row's: each span of rows that follows
/// the scrapes is found by comparing it with `seqs` as a slice, and only a row that breaks
/// the span is searched for. Where two scrapes share a `seq` (a damaged recording), or a
/// row's scrape is missing, every row takes the binary search's answer, as it always did.
pub(super) fn locate<'a>(
    seqs: &[u64],
    unique_seqs: bool,
    rows: impl Iterator<Item = &'a PrimitiveArray<UInt64Type>> + Clone,
) -> Located {
    if unique_seqs {
        if let Some(spans) = spans_of(seqs, rows.clone()) {
            return Located::spans(spans);
        }
    }
    locate_rows(seqs, unique_seqs, rows)
}

/// The rows as spans that step one scrape per row (see [`How::Spans`]); `None` if a row's
/// scrape is missing. `seqs` must be unique.
fn spans_of<'a>(
    seqs: &[u64],
    rows: impl Iterator<Item = &'a PrimitiveArray<UInt64Type>>,
) -> Option<Vec<(usize, u32)>> {
    let mut spans: Vec<(usize, u32)> = Vec::new();
    for chunk in rows {
        let mut chunk: &[u64] = chunk.values().as_ref();
        while let Some(&seq) = chunk.first() {
            // Continue the last span as far as the rows follow the scrapes...
            if let Some((first, n)) = spans.last_mut() {
                let next = *first + *n as usize;
                let room = (u32::MAX - *n) as usize;
                let k = common_prefix(chunk, seqs.get(next..).unwrap_or_default()).min(room);
                if k > 0 {
                    *n += k as u32;
                    chunk = &chunk[k..];
                    continue;
                }
            }
            // ...and start a new one where they do not.
            let at = seqs.binary_search(&seq).ok()?;
            spans.push((at, 1));
            chunk = &chunk[1..];
        }
    }
    Some(spans)
}

/// How many leading elements `a` and `b` share, compared a block at a time (the common case is
/// a few hundred equal values in a row).
fn common_prefix(a: &[u64], b: &[u64]) -> usize {
    const BLOCK: usize = 16;
    let n = a.len().min(b.len());
    let mut k = 0;
    while k + BLOCK <= n && a[k..k + BLOCK] == b[k..k + BLOCK] {
        k += BLOCK;
    }
    while k < n && a[k] == b[k] {
        k += 1;
    }
    k
}

/// [`locate`] row by row: each row's scrape by binary search, the row after the previous
/// row's scrape checked first where `seqs` are unique.
fn locate_rows<'a>(
    seqs: &[u64],
    unique_seqs: bool,
    rows: impl Iterator<Item = &'a PrimitiveArray<UInt64Type>> + Clone,
) -> Located {
    let n = rows.clone().map(|c| c.len()).sum();
    let mut at = Vec::with_capacity(n);
    let (mut lo, mut hi) = (usize::MAX, 0usize);
    let mut guess = 0usize;
    for chunk in rows {
        for &seq in chunk.values().iter() {
            let hit = unique_seqs && seqs.get(guess) == Some(&seq);
            let found = if hit {
                Some(guess)
            } else {
                seqs.binary_search(&seq).ok()
            };
            match found {
                Some(a) => {
                    at.push(a);
                    lo = lo.min(a);
                    hi = hi.max(a);
                    guess = a + 1;
                }
                None => at.push(usize::MAX),
            }
        }
    }
    Located {
        range: (lo <= hi).then_some((lo, hi)),
        rows: at.len() as u64,
        how: How::Rows(at),
    }
}

/// Gives a samples file's series their recording-wide ids: a series seen in an earlier file
/// keeps its id, a new one gets the next.
pub(super) fn global_ids(
    keys: Vec<SeriesKey>,
    series: &mut Vec<SeriesInfo>,
    series_ids: &mut HashMap<SeriesKey, SeriesId>,
) -> Vec<SeriesId> {
    let mut global = Vec::with_capacity(keys.len());
    for key in keys {
        let next = SeriesId::try_from(series.len()).unwrap_or(SeriesId::MAX);
        let id = *series_ids.entry(key.clone()).or_insert(next);
        if id == next {
            series.push(SeriesInfo {
                family: key.family,
                metric_type: key.metric_type,
                help: key.help,
                name: key.name,
                labels: key.labels,
                le: key.le.map(f64::from_bits),
            });
        }
        global.push(id);
    }
    global
}

/// How the second pass finds each selected row's scrape.
#[derive(Clone, Copy)]
pub(super) enum Place<'a> {
    /// By its `scrape_seq`, in the scrapes' sorted `seq` (and whether those are unique).
    BySeq(&'a [u64], bool),
    /// Every run of the file steps one scrape per row from this scrape index (the first pass
    /// checked it), so `scrape_seq` need not be read again.
    FromLo(usize),
    /// The selected rows' spans, as the first pass found them ([`kept_spans`]): `scrape_seq`
    /// need not be read again either.
    Spans(&'a [(usize, u32)]),
}

/// `times` spans in a row of `rows` rows each, all from the scrape `first` scrapes after a
/// file's lowest: how the first pass keeps a file's spans. In a recorder's segment most
/// series are in every scrape, so most spans are alike and one of these stands for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct RelSpan {
    first: u32,
    rows: u32,
    times: u32,
}

/// The spans of the rows of the runs `kept` selects, as absolute `(first scrape, rows)`, from
/// a file's `runs` and the `spans` of all its rows relative to its scrapes' low end `lo`
/// ([`Located::relative_spans`]): what [`Place::Spans`] takes for the rows the second pass
/// decodes. A span that crosses runs is cut where they meet.
pub(super) fn kept_spans(
    runs: &[(u32, SeriesId)],
    spans: &[RelSpan],
    lo: usize,
    kept: impl Fn(SeriesId) -> bool,
) -> Vec<(usize, u32)> {
    let mut out = Vec::new();
    let mut spans = spans
        .iter()
        .flat_map(|s| std::iter::repeat_n((s.first, s.rows), s.times as usize));
    let (mut first, mut left) = (0u32, 0u32);
    for &(n, id) in runs {
        let keep = kept(id);
        let mut need = n;
        while need > 0 {
            if left == 0 {
                let Some(next) = spans.next() else {
                    return out;
                };
                (first, left) = next;
                continue;
            }
            let take = need.min(left);
            if keep {
                out.push((lo + first as usize, take));
            }
            (first, left, need) = (first + take, left - take, need - take);
        }
    }
    out
}

/// Appends the selected rows of a samples file (`chunks`, the rows of `runs` in order: each
/// run is `(rows, series)`) to their scrapes. `scrapes` is the part of the recording's scrapes
/// that starts at index `base` and holds every scrape the rows belong to; a row whose scrape
/// is missing (counted when the file was first read) is skipped. The chunks' scrape column is
/// dropped once the rows are placed, before the scrapes grow (a compacted hour's is 20 MB).
/// With `in_place`, rows placed by spans into scrapes that hold no samples yet are left in
/// their columns ([`SampleColumns`]) where that is cheap to read.
pub(super) fn push_values(
    mut chunks: Vec<ValueChunk>,
    runs: &[(u32, SeriesId)],
    place: Place<'_>,
    scrapes: &mut [Scrape],
    base: usize,
    in_place: bool,
) {
    let located = match place {
        Place::BySeq(seqs, unique_seqs) => locate(
            seqs,
            unique_seqs,
            chunks.iter().filter_map(|c| c.seq.as_ref()),
        ),
        Place::FromLo(lo) => Located::spans(runs.iter().map(|r| (lo, r.0)).collect()),
        Place::Spans(spans) => Located::spans(spans.to_vec()),
    };
    for c in &mut chunks {
        c.seq = None;
    }
    let chunks = chunks.as_slice();
    if let (true, Some((lo, hi)), How::Spans(spans)) = (in_place, located.range, &located.how) {
        // Only into scrapes with no samples yet, so that `each_sample` gives each scrape's
        // samples in the order its files were loaded (columns first, then `samples`).
        let part = scrapes.get_mut(lo - base..=hi - base).unwrap_or_default();
        let fresh = |s: &Scrape| s.samples.is_empty() && s.columns.is_none();
        if part.iter().all(fresh) {
            if let Some(c) = SampleColumns::of(chunks, runs, spans, part.len()) {
                let c = Arc::new(c);
                for (k, s) in part.iter_mut().enumerate() {
                    s.columns = Some(ColumnsAt::new(Arc::clone(&c), lo + k));
                }
                return;
            }
        }
    }
    // Room for exactly this file's rows in each scrape, so that the vectors are not regrown
    // (and copied) row by row.
    if let Some((lo, hi)) = located.range {
        let (counts, _) = located.counts();
        let part = scrapes.get_mut(lo - base..=hi - base).unwrap_or_default();
        for (scrape, n) in part.iter_mut().zip(counts) {
            scrape.samples.reserve_exact(n as usize);
        }
    }
    match &located.how {
        // No exposition timestamps (vLLM sets none): whole spans at a time.
        How::Spans(spans) if chunks.iter().all(ValueChunk::no_timestamps) => {
            push_spans(chunks, runs, spans, scrapes, base)
        }
        How::Spans(spans) => {
            let at = spans
                .iter()
                .flat_map(|&(first, n)| (first..first + n as usize).map(Some));
            push_placed(chunks, runs, at, scrapes, base);
        }
        How::Rows(at) => {
            let at = at.iter().map(|&a| (a != usize::MAX).then_some(a));
            push_placed(chunks, runs, at, scrapes, base);
        }
    }
}

/// A samples file's kept values as they were decoded, for the scrapes its rows belong to to
/// read in place ([`Scrape::each_sample`]) instead of each being handed a copy. Only for a
/// file whose rows were placed by spans (each piece of a series' run steps one scrape per
/// row) and which carries no exposition timestamps: a recorder's segment. A scrape's samples
/// are then one value of each piece that covers it, in file order. Pushing them one by one
/// into each scrape's vector was a fifth of a day's analysis (a 2,800-byte vector per scrape,
/// written and read back once).
#[derive(Debug)]
pub struct SampleColumns {
    /// In file order; `at` is a scrape index in the recording.
    pieces: Vec<Piece>,
    values: Vec<arrow_buffer::ScalarBuffer<f64>>,
    /// Whether a series has two samples in one scrape.
    repeats: bool,
}

impl SampleColumns {
    /// The values of the file's rows `chunks` (the rows of `runs`, in order, placed by
    /// `spans`) for its `scrapes` scrapes, when no row has a timestamp and each scrape would
    /// not look through more than [`IN_PLACE_SCAN`] pieces per sample; `None` otherwise.
    fn of(
        chunks: &[ValueChunk],
        runs: &[(u32, SeriesId)],
        spans: &[(usize, u32)],
        scrapes: usize,
    ) -> Option<SampleColumns> {
        if !chunks.iter().all(ValueChunk::no_timestamps) {
            return None;
        }
        let pieces = pieces_of(chunks, runs, spans);
        let rows: usize = pieces.iter().map(|p| p.len).sum();
        if pieces.len().saturating_mul(scrapes) > rows.saturating_mul(IN_PLACE_SCAN) {
            return None;
        }
        // A series repeats in a scrape where two of its pieces cover it (a body that sent it
        // twice).
        let mut by_series: Vec<_> = pieces.iter().map(|p| (p.series, p.at, p.len)).collect();
        by_series.sort_unstable();
        let repeats = by_series
            .windows(2)
            .any(|w| w[0].0 == w[1].0 && w[0].1 + w[0].2 > w[1].1);
        Some(SampleColumns {
            pieces,
            values: chunks.iter().map(|c| c.value.values().clone()).collect(),
            repeats,
        })
    }

    /// The samples of the scrape at index `at` of the series `among` marks (every series when
    /// `None`), in file order.
    fn samples_of<'a>(
        &'a self,
        at: usize,
        among: Option<&'a [bool]>,
    ) -> impl Iterator<Item = StoredSample> + 'a {
        let wanted = move |p: &Piece| among.is_none_or(|m| m.get(p.series as usize) == Some(&true));
        self.pieces
            .iter()
            .filter(move |p| p.at <= at && at < p.at + p.len && wanted(p))
            .filter_map(move |p| {
                let value = *self.values.get(p.chunk)?.get(p.offset + (at - p.at))?;
                Some(StoredSample {
                    series: p.series,
                    value,
                })
            })
    }
}

/// How many pieces of a [`SampleColumns`] a scrape may look through per sample it finds.
/// Ours: each scrape reads its samples by checking every piece of its file, which costs
/// about what it finds where every series is in every scrape (one piece per series, a few
/// more where a decoded batch ends); a file whose series come and go in short stretches has
/// many more pieces than any scrape has samples, and is pushed into the scrapes instead.
const IN_PLACE_SCAN: usize = 4;

/// One scrape's share of a [`SampleColumns`]: its index, and the file's columns.
#[derive(Debug, Clone)]
pub struct ColumnsAt {
    columns: Arc<SampleColumns>,
    at: usize,
}

impl ColumnsAt {
    fn new(columns: Arc<SampleColumns>, at: usize) -> ColumnsAt {
        ColumnsAt { columns, at }
    }

    /// The scrape's samples held in the columns, in file order.
    pub(super) fn samples(&self) -> impl Iterator<Item = StoredSample> + '_ {
        self.columns.samples_of(self.at, None)
    }

    /// The scrape's samples of the series `among` marks, in file order, when no series
    /// repeats in it (so none of the samples passed over is a repeat that would count).
    pub(super) fn samples_among<'a>(
        &'a self,
        among: &'a [bool],
    ) -> Option<impl Iterator<Item = StoredSample> + 'a> {
        (!self.columns.repeats).then(|| self.columns.samples_of(self.at, Some(among)))
    }
}

/// Two scrapes' shares are equal when they are the same scrape of the same columns.
impl PartialEq for ColumnsAt {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.columns, &other.columns) && self.at == other.at
    }
}

/// Scrapes per task when [`push_spans`] splits a file's scrapes between threads. Ours: below
/// a few thousand scrapes (a minute file has 240) the split costs more than it gives, and the
/// files of one load are pushed in parallel already; a compacted hour (14,400 scrapes, one
/// file per load) is pushed by every thread.
const SCRAPES_PER_PUSH_TASK: usize = 2_048;

/// A piece of a file's rows: one series' values (`len` of them, from `offset` in chunk
/// `chunk`) for the consecutive scrapes from index `at`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Piece {
    at: usize,
    len: usize,
    series: SeriesId,
    chunk: usize,
    offset: usize,
}

/// The rows of `spans` cut into [`Piece`]s where a span, a run or a chunk ends, in file order.
fn pieces_of(
    chunks: &[ValueChunk],
    runs: &[(u32, SeriesId)],
    spans: &[(usize, u32)],
) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut chunk_lens = chunks.iter().map(|c| c.value.len()).enumerate();
    let mut runs = runs.iter().copied();
    let (mut chunk, mut chunk_at, mut chunk_left) = (0usize, 0usize, 0usize);
    let (mut run_left, mut series) = (0usize, 0);
    for &(first, n) in spans {
        let (mut at, mut span_left) = (first, n as usize);
        while span_left > 0 {
            if chunk_left == 0 {
                let Some((i, len)) = chunk_lens.next() else {
                    return pieces;
                };
                (chunk, chunk_at, chunk_left) = (i, 0, len);
                continue;
            }
            if run_left == 0 {
                let Some((rows, id)) = runs.next() else {
                    return pieces;
                };
                (run_left, series) = (rows as usize, id);
                continue;
            }
            let len = span_left.min(run_left).min(chunk_left);
            pieces.push(Piece {
                at,
                len,
                series,
                chunk,
                offset: chunk_at,
            });
            (at, span_left, run_left) = (at + len, span_left - len, run_left - len);
            (chunk_at, chunk_left) = (chunk_at + len, chunk_left - len);
        }
    }
    pieces
}

/// [`push_values`] of rows without timestamps placed by spans: each piece of rows that share a
/// span, a run and a chunk is one series' values pushed to consecutive scrapes. A file of many
/// scrapes has them split into ranges pushed in parallel; each range takes the pieces in file
/// order, so every scrape gets its samples in the order a single pass gives them.
fn push_spans(
    chunks: &[ValueChunk],
    runs: &[(u32, SeriesId)],
    spans: &[(usize, u32)],
    scrapes: &mut [Scrape],
    base: usize,
) {
    let pieces = pieces_of(chunks, runs, spans);
    let values: Vec<&[f64]> = chunks.iter().map(|c| c.value.values().as_ref()).collect();
    let push = |part: &mut [Scrape], lo: usize| {
        let hi = lo + part.len();
        for p in &pieces {
            let (from, to) = (p.at.max(lo), (p.at + p.len).min(hi));
            if from >= to {
                continue;
            }
            let skip = p.offset + (from - p.at);
            let Some(vals) = values
                .get(p.chunk)
                .and_then(|v| v.get(skip..skip + (to - from)))
            else {
                continue;
            };
            for (scrape, &value) in part[from - lo..to - lo].iter_mut().zip(vals) {
                scrape.samples.push(StoredSample {
                    series: p.series,
                    value,
                });
            }
        }
    };
    if scrapes.len() <= SCRAPES_PER_PUSH_TASK {
        push(scrapes, base);
    } else {
        scrapes
            .par_chunks_mut(SCRAPES_PER_PUSH_TASK)
            .enumerate()
            .for_each(|(k, part)| push(part, base + k * SCRAPES_PER_PUSH_TASK));
    }
}

/// [`push_values`]'s loop: row by row, `at` giving each row's scrape index.
fn push_placed(
    chunks: &[ValueChunk],
    runs: &[(u32, SeriesId)],
    mut at: impl Iterator<Item = Option<usize>>,
    scrapes: &mut [Scrape],
    base: usize,
) {
    let mut runs = runs.iter();
    let (mut left, mut series) = (0u32, 0);
    for chunk in chunks {
        // A column of nulls (vLLM sets no exposition timestamps) needs no per-row check.
        let no_ts = chunk.no_timestamps();
        let values = chunk.value.values();
        for (i, &value) in values.iter().enumerate() {
            let Some(a) = at.next() else {
                return;
            };
            if left == 0 {
                let Some(&(n, id)) = runs.next() else {
                    return;
                };
                (left, series) = (n, id);
            }
            left -= 1;
            let Some(scrape) = a
                .and_then(|a| a.checked_sub(base))
                .and_then(|k| scrapes.get_mut(k))
            else {
                continue;
            };
            if !no_ts {
                if let (Some(ts), Ok(at)) =
                    (chunk.timestamp_ms(i), u32::try_from(scrape.samples.len()))
                {
                    scrape.timestamps.push((at, ts));
                }
            }
            scrape.samples.push(StoredSample { series, value });
        }
    }
}

/// Splits `scrapes` into one disjoint part per file, each from its file's lowest scrape index
/// (the `base` of [`push_rows`]) to its highest, when the files' ranges follow each other in
/// order without overlapping (as segments do); `None` otherwise.
pub(super) fn split_by_file<'s>(
    mut scrapes: &'s mut [Scrape],
    ranges: &[Option<(usize, usize)>],
) -> Option<Vec<(&'s mut [Scrape], usize)>> {
    let mut parts = Vec::with_capacity(ranges.len());
    let mut start = 0usize;
    for r in ranges {
        // A file none of whose rows found a scrape gets no part: its rows are all orphans.
        let Some((lo, hi)) = *r else {
            parts.push((&mut [][..], 0));
            continue;
        };
        if lo < start || hi < lo {
            return None;
        }
        let skip = std::mem::take(&mut scrapes);
        let (_, from_lo) = skip.split_at_mut(lo - start);
        let (part, after) = from_lo.split_at_mut(hi + 1 - lo);
        parts.push((part, lo));
        scrapes = after;
        start = hi + 1;
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::writer::testutil::ok_meta;

    /// A file's rows: `(scrape_seq, series)` in file order, with values numbering the rows.
    struct File {
        rows: Vec<(u64, SeriesId)>,
    }

    impl File {
        fn runs(&self) -> Vec<(u32, SeriesId)> {
            let mut runs: Vec<(u32, SeriesId)> = Vec::new();
            for &(_, s) in &self.rows {
                match runs.last_mut() {
                    Some((n, last)) if *last == s => *n += 1,
                    _ => runs.push((1, s)),
                }
            }
            runs
        }

        /// The rows in chunks of `chunk` rows, as the reader decodes them.
        fn chunks(&self, chunk: usize) -> Vec<ValueChunk> {
            self.rows
                .chunks(chunk)
                .enumerate()
                .map(|(c, part)| ValueChunk {
                    seq: Some(PrimitiveArray::from_iter_values(part.iter().map(|r| r.0))),
                    value: PrimitiveArray::from_iter_values(
                        (0..part.len()).map(|i| (c * chunk + i) as f64),
                    ),
                    timestamp_ms: None,
                })
                .collect()
        }
    }

    /// xorshift64: the same cases on every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n.max(1)
        }
    }

    /// A samples file over scrapes `seqs` (unique, sorted): each series covers the scrapes,
    /// or a stretch of them, or has holes; now and then a row's scrape is missing or a row
    /// is repeated. A `clean` file is a recorder's segment: every series in every scrape.
    fn random_file(rng: &mut Rng, seqs: &[u64], clean: bool) -> File {
        let mut rows = Vec::new();
        for series in 0..rng.below(12) as SeriesId + 1 {
            if clean {
                rows.extend(seqs.iter().map(|&seq| (seq, series)));
                continue;
            }
            let (from, to) = match rng.below(4) {
                0 => (0, seqs.len()),
                1 => (rng.below(seqs.len() as u64) as usize, seqs.len()),
                2 => (0, rng.below(seqs.len() as u64) as usize + 1),
                _ => {
                    let a = rng.below(seqs.len() as u64) as usize;
                    (
                        a,
                        (a + rng.below(seqs.len() as u64) as usize + 1).min(seqs.len()),
                    )
                }
            };
            for (k, &seq) in seqs.iter().enumerate().take(to).skip(from) {
                match rng.below(40) {
                    0 => continue,
                    1 => rows.push((seq, series)),
                    2 if k > 0 => rows.push((seqs[k - 1], series)),
                    3 => rows.push((seqs.last().unwrap() + 100 + k as u64, series)),
                    _ => {}
                }
                rows.push((seq, series));
            }
        }
        File { rows }
    }

    /// What placing rows must give: each row to the scrape of its `scrape_seq`, found by
    /// binary search; rows of a missing scrape counted, not placed.
    fn reference(seqs: &[u64], f: &File) -> (Vec<Vec<StoredSample>>, Vec<u32>, u64) {
        let mut samples = vec![Vec::new(); seqs.len()];
        let mut counts = vec![0u32; seqs.len()];
        let mut orphans = 0;
        for (i, &(seq, series)) in f.rows.iter().enumerate() {
            match seqs.binary_search(&seq) {
                Ok(a) => {
                    samples[a].push(StoredSample {
                        series,
                        value: i as f64,
                    });
                    counts[a] += 1;
                }
                Err(_) => orphans += 1,
            }
        }
        (samples, counts, orphans)
    }

    /// Scrapes of `seqs` without samples, and the samples each has once `chunks` are pushed.
    /// The same rows left in place must read the same (checked here); `in_place` counts the
    /// calls where they were.
    fn pushed(
        seqs: &[u64],
        chunks: Vec<ValueChunk>,
        runs: &[(u32, SeriesId)],
        place: Place<'_>,
        in_place: &mut usize,
    ) -> Vec<Vec<StoredSample>> {
        let fresh = || -> Vec<Scrape> {
            seqs.iter()
                .map(|&s| Scrape {
                    meta: ok_meta(s, 0),
                    samples: Vec::new(),
                    timestamps: Vec::new(),
                    rows_read: 0,
                    columns: None,
                })
                .collect()
        };
        let mut scrapes = fresh();
        push_values(chunks.clone(), runs, place, &mut scrapes, 0, false);
        assert!(scrapes.iter().all(|s| s.columns.is_none()));
        let got: Vec<Vec<StoredSample>> = scrapes.into_iter().map(|s| s.samples).collect();
        let mut kept = fresh();
        push_values(chunks, runs, place, &mut kept, 0, true);
        *in_place += usize::from(kept.iter().any(|s| s.columns.is_some()));
        let read: Vec<Vec<StoredSample>> = kept.iter().map(|s| s.each_sample().collect()).collect();
        assert!(read == got, "left in place, the samples read otherwise");
        got
    }

    /// A file of more scrapes than one push task takes (a compacted hour) is pushed by
    /// several tasks, each over its own scrapes: every scrape still gets its rows in file
    /// order, whether the rows are placed by `scrape_seq` or from the low end, and whatever
    /// the chunk size (pieces cut where a chunk, a run or a span ends).
    #[test]
    fn a_file_of_many_scrapes_pushed_in_parallel_places_rows_as_one_pass_would() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let (mut split_by_spans, mut in_place) = (0, 0);
        for case in 0..8 {
            let n = 3 * SCRAPES_PER_PUSH_TASK + rng.below(2_000) as usize;
            let seqs: Vec<u64> = (0..n as u64).map(|k| 10 + k + k / 1_000).collect();
            let f = random_file(&mut rng, &seqs, case % 2 == 0);
            let runs = f.runs();
            let chunks = f.chunks([65_536, 777, 4_096, 1][case % 4]);
            let (want, _, _) = reference(&seqs, &f);
            let located = locate(&seqs, true, chunks.iter().filter_map(|c| c.seq.as_ref()));
            if matches!(located.how, How::Spans(_)) {
                split_by_spans += 1;
            }
            let by_seq = Place::BySeq(&seqs, true);
            let got = pushed(&seqs, chunks.clone(), &runs, by_seq, &mut in_place);
            assert!(got == want, "case {case}: by seq");
            if located.steps_from_lo(&runs) {
                let lo = located.range.unwrap().0;
                let from_lo = Place::FromLo(lo);
                let got = pushed(&seqs, chunks.clone(), &runs, from_lo, &mut in_place);
                assert!(got == want, "case {case}: from lo");
            }
        }
        assert!(split_by_spans >= 4, "{split_by_spans} of 8 by spans");
        assert!(in_place >= 4, "{in_place} left in place");
    }

    #[test]
    fn spans_place_every_row_where_a_search_row_by_row_would() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut spans_seen, mut from_lo_seen, mut in_place, mut kept_seen) = (0, 0, 0, 0);
        for case in 0..400 {
            // Scrape seqs with gaps, as failed or lost attempts leave them.
            let n = rng.below(30) as usize + 1;
            let mut seqs = Vec::with_capacity(n);
            let mut next = rng.below(5);
            for _ in 0..n {
                seqs.push(next);
                next += 1 + u64::from(rng.below(6) == 0);
            }
            let f = random_file(&mut rng, &seqs, case % 4 == 0);
            let runs = f.runs();
            let chunks = f.chunks(rng.below(50) as usize + 1);
            let (want_samples, want_counts, want_orphans) = reference(&seqs, &f);

            let fast = locate(&seqs, true, chunks.iter().filter_map(|c| c.seq.as_ref()));
            let slow = locate_rows(&seqs, true, chunks.iter().filter_map(|c| c.seq.as_ref()));
            spans_seen += usize::from(matches!(fast.how, How::Spans(_)));
            assert_eq!(fast.range, slow.range, "case {case}");
            assert_eq!(fast.rows, slow.rows, "case {case}");
            assert_eq!(fast.counts(), slow.counts(), "case {case}");
            assert_eq!(
                fast.steps_from_lo(&runs),
                slow.steps_from_lo(&runs),
                "case {case}"
            );
            let (counts, orphans) = fast.counts();
            assert_eq!(orphans, want_orphans, "case {case}");
            if let Some((lo, _)) = fast.range {
                assert_eq!(
                    counts[..],
                    want_counts[lo..lo + counts.len()],
                    "case {case}"
                );
            }

            let by_seq = Place::BySeq(&seqs, true);
            let got = pushed(&seqs, chunks.clone(), &runs, by_seq, &mut in_place);
            assert_eq!(got, want_samples, "case {case}");
            if fast.steps_from_lo(&runs) {
                from_lo_seen += 1;
                let lo = fast.range.unwrap().0;
                let no_seq: Vec<ValueChunk> = chunks
                    .iter()
                    .map(|c| ValueChunk {
                        seq: None,
                        value: c.value.clone(),
                        timestamp_ms: None,
                    })
                    .collect();
                let got = pushed(&seqs, no_seq, &runs, Place::FromLo(lo), &mut in_place);
                assert_eq!(got, want_samples, "case {case}, placed from lo");
            }
            // Placed by the spans the first pass found, every other series selected (only its
            // rows decoded, without their scrape column).
            if let (Some(rel), Some((lo, _))) = (fast.relative_spans(), fast.range) {
                kept_seen += 1;
                let kept = |id: SeriesId| id % 2 == 0;
                let values: Vec<f64> = (f.rows.iter().enumerate())
                    .filter(|(_, r)| kept(r.1))
                    .map(|(i, _)| i as f64)
                    .collect();
                let only: Vec<ValueChunk> = values
                    .chunks(rng.below(20) as usize + 1)
                    .map(|v| ValueChunk {
                        seq: None,
                        value: PrimitiveArray::from_iter_values(v.iter().copied()),
                        timestamp_ms: None,
                    })
                    .collect();
                let kept_runs: Vec<_> = runs.iter().copied().filter(|r| kept(r.1)).collect();
                let spans = kept_spans(&runs, &rel, lo, kept);
                let got = pushed(&seqs, only, &kept_runs, Place::Spans(&spans), &mut in_place);
                let want: Vec<Vec<StoredSample>> = (want_samples.iter())
                    .map(|w| w.iter().copied().filter(|s| kept(s.series)).collect())
                    .collect();
                assert_eq!(got, want, "case {case}, placed by the first pass's spans");
            }
        }
        // Every way was exercised: most files place by spans, those with a missing scrape
        // row by row, and the clean ones from the low end.
        assert!(
            (100..400).contains(&spans_seen),
            "{spans_seen} of 400 by spans"
        );
        assert!(
            from_lo_seen >= 100,
            "{from_lo_seen} of 400 from the low end"
        );
        assert!(
            kept_seen >= 100,
            "{kept_seen} of 400 by the first pass's spans"
        );
        // And left in place: the files placed by spans whose pieces a scrape reads cheaply.
        assert!(in_place >= 100, "{in_place} of 400 left in place");
    }
}
