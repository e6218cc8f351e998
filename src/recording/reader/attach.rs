//! Attaching a decoded samples file to the recording being built: finding each row's scrape,
//! giving the file's series their recording-wide ids, and appending the rows to their scrapes,
//! with exact capacity and, where the files of a batch cover disjoint scrapes, in parallel.
//! Kept apart from `reader.rs` because this is the reader's hot path (every sample passes
//! here once) and is written for speed: no per-row allocation, no per-row search.

use super::tables::{SeriesKey, ValueChunk};
use super::{Scrape, SeriesId, SeriesInfo, StoredSample};
use arrow_array::types::UInt64Type;
use arrow_array::PrimitiveArray;
use std::collections::HashMap;

/// Where a samples file's rows go: the index in the scrapes (sorted by `seq`) of each row's
/// scrape, `usize::MAX` for a row whose scrape is in no scrapes file, and the range of the
/// indices found.
pub(super) struct Located {
    pub at: Vec<usize>,
    pub range: Option<(usize, usize)>,
}

impl Located {
    /// Rows per scrape over `range` (from its low end), and the rows whose scrape is missing.
    pub fn counts(&self) -> (Vec<u32>, u64) {
        let Some((lo, hi)) = self.range else {
            return (Vec::new(), self.at.len() as u64);
        };
        let mut counts = vec![0u32; hi - lo + 1];
        let mut orphans = 0u64;
        for &a in &self.at {
            match a.checked_sub(lo).and_then(|k| counts.get_mut(k)) {
                Some(c) => *c = c.saturating_add(1),
                None => orphans += 1,
            }
        }
        (counts, orphans)
    }
}

/// Finds each row's scrape in `seqs` (the scrapes' `seq`, sorted). Rows run series-major, so
/// a row's scrape is usually the one after the previous row's: that guess is checked first.
/// Where two scrapes share a `seq` (a damaged recording), every row takes the binary search's
/// answer, as it always did.
pub(super) fn locate<'a>(
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
        at,
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
}

/// Whether every run of rows steps one scrape per row from the low end of the located range
/// (the layout of a recorder's segment where every scrape holds every series once): then
/// [`Place::FromLo`] places them.
pub(super) fn steps_from_lo(located: &Located, runs: &[(u32, u32)]) -> bool {
    let Some((lo, _)) = located.range else {
        return false;
    };
    let mut at = located.at.as_slice();
    for &(n, _) in runs {
        let (run, rest) = at.split_at((n as usize).min(at.len()));
        if run.len() != n as usize || run.iter().enumerate().any(|(k, &a)| a != lo + k) {
            return false;
        }
        at = rest;
    }
    at.is_empty()
}

/// Appends the selected rows of a samples file (`chunks`, the rows of `runs` in order: each
/// run is `(rows, series)`) to their scrapes. `scrapes` is the part of the recording's scrapes
/// that starts at index `base` and holds every scrape the rows belong to; a row whose scrape
/// is missing (counted when the file was first read) is skipped.
pub(super) fn push_values(
    chunks: &[ValueChunk],
    runs: &[(u32, SeriesId)],
    place: Place<'_>,
    scrapes: &mut [Scrape],
    base: usize,
) {
    let located = match place {
        Place::BySeq(seqs, unique_seqs) => locate(
            seqs,
            unique_seqs,
            chunks.iter().filter_map(|c| c.seq.as_ref()),
        ),
        Place::FromLo(lo) => {
            let n: usize = runs.iter().map(|r| r.0 as usize).sum();
            let mut at = Vec::with_capacity(n);
            let mut hi = lo;
            for &(rows, _) in runs {
                at.extend(lo..lo + rows as usize);
                hi = hi.max(lo + (rows as usize).saturating_sub(1));
            }
            Located {
                range: (!at.is_empty()).then_some((lo, hi)),
                at,
            }
        }
    };
    // Room for exactly this file's rows in each scrape, so that the vectors are not regrown
    // (and copied) row by row.
    if let Some((lo, hi)) = located.range {
        let (counts, _) = located.counts();
        let part = scrapes.get_mut(lo - base..=hi - base).unwrap_or_default();
        for (scrape, n) in part.iter_mut().zip(counts) {
            scrape.samples.reserve_exact(n as usize);
        }
    }
    let mut runs = runs.iter();
    let (mut left, mut series) = (0u32, 0);
    let mut rest = located.at.as_slice();
    for chunk in chunks {
        let (at, after) = rest.split_at(chunk.value.len().min(rest.len()));
        rest = after;
        // A column of nulls (vLLM sets no exposition timestamps) needs no per-row check.
        let no_ts = chunk.no_timestamps();
        let values = chunk.value.values();
        for (i, (&a, &value)) in at.iter().zip(values).enumerate() {
            if left == 0 {
                let Some(&(n, id)) = runs.next() else {
                    return;
                };
                (left, series) = (n, id);
            }
            left -= 1;
            let Some(scrape) = a.checked_sub(base).and_then(|k| scrapes.get_mut(k)) else {
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
