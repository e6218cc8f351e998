//! Capacity under a latency target: from per-window latency against load, the load at which a
//! service-level objective (`ttft-p99=2s`, `tpot-p99=50ms`) breaks, and goodput, the share of
//! requests that met it.
//!
//! - The *load* of a window is the requests in the server, running + waiting (time-weighted
//!   means), over the time its observed requests waited: from a TTFT mean before the window
//!   to its end, since a latency is observed only once the wait is over. Running alone stops at `--max-num-seqs`, and req/s stops at the server's
//!   throughput, exactly where latency starts to climb; requests in the server keep rising
//!   with the offered load (clients of a closed loop; arrivals × time in system for an open
//!   one, by Little's law). Each level also shows its req/s, the answer to "how much traffic".
//! - Windows are sorted by load and cut into *levels* of at least [`MIN_LEVEL_WINDOWS`]
//!   windows and [`MIN_LEVEL_OBSERVATIONS`] observations of every target's histogram; each
//!   level's quantile is read from its merged delta buckets, Prometheus-exact (spec
//!   "Aggregation": p99 from merged buckets, never an average of p99s). Windows of several
//!   recordings of the same server pool into one ladder.
//! - The SLO *breaks* at the level that best separates the levels meeting it from those
//!   missing it (the least time on the wrong side of the split); it *holds up to* the level
//!   below. "Not reached" when the best split lies above every level, "already broken at the
//!   lowest load seen" when it lies below the lowest; levels on the wrong side of the split
//!   are named, not hidden. A p99 over a few dozen requests is noisy, and the first level to
//!   miss is often one slow request, not the break.
//! - *Goodput* is the share of observations at or below each bound, interpolated inside the
//!   bucket as Prometheus' `histogram_fraction` does ([`series::fraction_at_most`]). Two
//!   targets are two histograms, and which request missed which is not recorded, so the share
//!   meeting both is given as its bounds: `max(0, a + b − 1) ..= min(a, b)`.
//!
//! Pure: series in, an [`SloAssessment`] out; lists in a fixed order, no clock.

pub mod series;
pub mod slo;

pub use series::{HistSample, Latency, WindowSample, WindowSeries};
pub use slo::{parse_slo, SloError, SloTarget};

use crate::aggregate::window_gate;
use crate::vllm::HistKind;
use crate::window::quantile::{histogram_quantile, merge_buckets, Bucket};
use crate::window::{HistWindow, WindowSet};
use serde::{Deserialize, Serialize};

/// Ours: a level's quantile rests on at least this many observations of each target's
/// histogram. At 20, p99's rank (19.8) lies in the bucket of the slowest request, so a level's
/// p99 is its slowest request, interpolated: what a p99 target means over so few requests.
/// More would leave a CPU ramp of a few hundred requests with two or three levels.
pub const MIN_LEVEL_OBSERVATIONS: f64 = 20.0;
/// Ours: a level spans at least 3 windows (6 s at the default 2 s), so no level is one
/// window's 2 s snapshot of a queue.
pub const MIN_LEVEL_WINDOWS: usize = 3;

/// The histograms whose per-window delta buckets [`series_of`] reads: windows kept for it
/// must keep these.
pub const BUCKETS_READ: [HistKind; 2] = [HistKind::Ttft, HistKind::Tpot];

/// The per-window series of a recording's active windows (the report's `samples` section),
/// in time order. Histogram buckets follow the layout of the first window that has any; a
/// window with another layout (a server restarted with another version) keeps its rates and
/// loses its histograms.
pub fn series_of(set: &WindowSet) -> WindowSeries {
    let anchor = set.anchor_mono.map_or(0, |a| a.0);
    let active: Vec<_> = set
        .windows
        .iter()
        .filter(|w| window_gate(w, set.has_gpu_data).is_active())
        .filter(|w| w.duration_s.is_some_and(|d| d > 0.0 && d.is_finite()))
        .collect();
    let layout = |h: HistKind| -> Vec<f64> {
        active
            .iter()
            .map(|w| &w.hist(h).buckets)
            .find(|b| !b.is_empty())
            .map(|b| b.iter().map(|x| x.le).filter(|le| le.is_finite()).collect())
            .unwrap_or_default()
    };
    let (ttft_le_s, tpot_le_s) = (layout(HistKind::Ttft), layout(HistKind::Tpot));
    let fin = |v: Option<f64>| v.filter(|v| v.is_finite());
    let windows = active
        .iter()
        .map(|w| WindowSample {
            index: w.index,
            start_s: (w.start_mono.0 - anchor) as f64 / 1e9,
            duration_s: w.duration_s.unwrap_or(0.0),
            generation_tokens_per_s: fin(w.generation_tokens_per_s),
            requests_per_s: fin(w.requests_per_s),
            running_mean: fin(w.running_mean),
            waiting_mean: fin(w.waiting_mean),
            ttft: hist_sample(&w.ttft_s, &ttft_le_s),
            tpot: hist_sample(&w.tpot_s, &tpot_le_s),
        })
        .collect();
    WindowSeries {
        window_s: set.window_ns as f64 / 1e9,
        ttft_le_s,
        tpot_le_s,
        windows,
    }
}

/// A window's histogram against the series' bounds: zeros when it saw no observation.
fn hist_sample(h: &HistWindow, le_s: &[f64]) -> Option<HistSample> {
    let (sum, count) = (h.delta_sum?, h.delta_count?);
    if !(sum.is_finite() && count.is_finite()) {
        return None;
    }
    let counts = if h.buckets.is_empty() {
        if count > 0.0 {
            return None;
        }
        vec![0.0; le_s.len() + 1]
    } else {
        let same = h.buckets.len() == le_s.len() + 1
            && h.buckets.iter().zip(le_s).all(|(b, le)| b.le == *le)
            && h.buckets.last().is_some_and(|b| b.le == f64::INFINITY);
        if !same {
            return None;
        }
        h.buckets.iter().map(|b| b.count).collect()
    };
    Some(HistSample { sum, count, counts })
}

/// A window named by its recording (index into [`SloAssessment::sources`]) and position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WindowRef {
    /// Which recording.
    pub source: u32,
    /// The window's index in it.
    pub index: u32,
}

/// One target over a set of windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetResult {
    /// Observations of the target's histogram.
    pub observations: f64,
    /// The target's quantile, seconds; `None` without observations.
    pub value_s: Option<f64>,
    /// Whether `value_s` is at or below the bound.
    pub meets: Option<bool>,
    /// Share of observations at or below the bound, 0-1.
    pub share: Option<f64>,
}

/// A set of windows of similar load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadLevel {
    /// Requests in the server, time-weighted mean over the level.
    pub in_system: f64,
    /// Lowest window load in the level.
    pub in_system_min: f64,
    /// Highest window load in the level.
    pub in_system_max: f64,
    /// Requests running, time-weighted mean.
    pub running_mean: Option<f64>,
    /// Requests waiting, time-weighted mean.
    pub waiting_mean: Option<f64>,
    /// Finished requests per second.
    pub requests_per_s: Option<f64>,
    /// Generated tokens per second.
    pub generation_tokens_per_s: Option<f64>,
    /// Σ window durations, seconds.
    pub duration_s: f64,
    /// Its windows, by recording and index.
    pub windows: Vec<WindowRef>,
    /// Each target, in the order given.
    pub targets: Vec<TargetResult>,
    /// Every target met (`None` when one could not be read).
    pub meets: Option<bool>,
}

/// What the ladder of levels says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Capacity {
    /// The SLO holds at level `holds` and breaks at level `breaks`, the lowest that misses.
    BreaksAt {
        /// The highest level below the break that meets the SLO.
        holds: usize,
        /// The lowest level that misses it.
        breaks: usize,
        /// Load where the missed target's quantile crosses its bound, interpolated linearly
        /// between the two levels (the lowest over the missed targets).
        crossing_in_system: Option<f64>,
        /// The targets missed at `breaks`.
        missed: Vec<String>,
        /// Levels below the break that missed it anyway (noise the split outweighed).
        missed_below: Vec<usize>,
        /// Levels above the break that met it anyway.
        met_above: Vec<usize>,
    },
    /// Every level meets the SLO: the break lies above the highest load seen.
    NotReached {
        /// The highest level.
        highest: usize,
    },
    /// The lowest level already misses it: the break lies below the lowest load seen.
    BrokenAtLowest {
        /// The lowest level.
        lowest: usize,
        /// The targets it misses.
        missed: Vec<String>,
    },
    /// No level could be judged.
    Unknown {
        /// Why.
        why: String,
    },
}

/// The share of requests meeting the SLO.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goodput {
    /// Per target, in the order given: the share at or below its bound, 0-1.
    pub shares: Vec<Option<f64>>,
    /// All targets met, lower bound (`max(0, Σ shares − (n − 1))`), 0-1.
    pub all_low: Option<f64>,
    /// All targets met, upper bound (the least share), 0-1. Equal to `all_low` with one target.
    pub all_high: Option<f64>,
}

/// One window's goodput.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowGoodput {
    /// The window.
    pub window: WindowRef,
    /// Its load.
    pub in_system: Option<f64>,
    /// Its goodput (`None` shares where it saw no observation).
    pub goodput: Goodput,
}

/// Capacity under an SLO, over one recording or several of the same server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloAssessment {
    /// The targets, in the order given.
    pub targets: Vec<SloTarget>,
    /// The recordings the windows came from (labels), in the order given.
    pub sources: Vec<String>,
    /// Active windows with a load value.
    pub windows_used: u32,
    /// The levels, by load.
    pub levels: Vec<LoadLevel>,
    /// Where the SLO breaks.
    pub capacity: Capacity,
    /// Goodput over every window used.
    pub goodput: Goodput,
    /// Goodput per window, in source then time order.
    pub windows: Vec<WindowGoodput>,
    /// Caveats (windows left out, a recording without samples).
    pub notes: Vec<String>,
}

/// The buckets of one window's histogram.
fn window_buckets(s: &WindowSeries, w: &WindowSample, h: Latency) -> Option<(f64, Vec<Bucket>)> {
    let hs = match h {
        Latency::Ttft => w.ttft.as_ref(),
        Latency::Tpot => w.tpot.as_ref(),
    }?;
    let le = s.le_s(h);
    if hs.counts.len() != le.len() + 1 {
        return None;
    }
    let b = le
        .iter()
        .copied()
        .chain(std::iter::once(f64::INFINITY))
        .zip(&hs.counts)
        .map(|(le, &count)| Bucket { le, count })
        .collect();
    Some((hs.count, b))
}

/// Merged buckets and observations of one target over some windows.
#[derive(Default)]
struct Merged {
    observations: f64,
    buckets: Vec<Bucket>,
}

fn target_result(t: &SloTarget, m: &Merged) -> TargetResult {
    let value_s = (m.observations > 0.0)
        .then(|| histogram_quantile(t.quantile, &m.buckets))
        .flatten();
    TargetResult {
        observations: m.observations,
        value_s,
        meets: value_s.map(|v| v <= t.bound_s),
        share: (m.observations > 0.0)
            .then(|| series::fraction_at_most(t.bound_s, &m.buckets))
            .flatten(),
    }
}

fn goodput(results: &[TargetResult]) -> Goodput {
    let shares: Vec<Option<f64>> = results.iter().map(|r| r.share).collect();
    let all: Option<Vec<f64>> = shares.iter().copied().collect();
    let (all_low, all_high) = match all {
        Some(v) if !v.is_empty() => {
            let n = v.len() as f64;
            let low = (v.iter().sum::<f64>() - (n - 1.0)).max(0.0);
            let high = v.iter().copied().fold(f64::INFINITY, f64::min);
            (Some(low), Some(high))
        }
        _ => (None, None),
    };
    Goodput {
        shares,
        all_low,
        all_high,
    }
}

/// One window of the pooled ladder.
struct Point<'a> {
    series: &'a WindowSeries,
    w: &'a WindowSample,
    at: WindowRef,
    /// Requests in the server while the window's observed requests waited (see [`lagged`]).
    load: f64,
    running: f64,
    waiting: f64,
}

/// The running and waiting means the requests observed in window `i` lived through: over
/// `[start − TTFT mean, end]`, time-weighted across the windows it overlaps. A request's TTFT
/// is observed when its first token comes out, after it waited; without the lag a drain
/// (load falling, long-queued requests finishing) would pin the latency of a full queue on
/// a light load. Windows without TTFT observations use their own span.
fn lagged(s: &WindowSeries, i: usize) -> Option<(f64, f64)> {
    let w = &s.windows[i];
    let lag = w
        .ttft
        .as_ref()
        .filter(|h| h.count > 0.0)
        .map_or(0.0, |h| (h.sum / h.count).max(0.0));
    let (from, to) = (w.start_s - lag, w.start_s + w.duration_s);
    let (mut run, mut wait, mut den) = (0.0, 0.0, 0.0);
    for v in s.windows[..=i].iter().rev() {
        let end = v.start_s + v.duration_s;
        if end <= from {
            break;
        }
        let overlap = end.min(to) - v.start_s.max(from);
        if let (Some(r), true) = (v.running_mean, overlap > 0.0) {
            run += r * overlap;
            wait += v.waiting_mean.unwrap_or(0.0) * overlap;
            den += overlap;
        }
    }
    (den > 0.0 && w.running_mean.is_some()).then(|| (run / den, wait / den))
}

fn merge_points(points: &[&Point<'_>], targets: &[SloTarget]) -> Vec<Merged> {
    targets
        .iter()
        .map(|t| {
            let mut m = Merged::default();
            for p in points {
                if let Some((n, b)) = window_buckets(p.series, p.w, t.latency) {
                    m.observations += n;
                    merge_buckets(&mut m.buckets, &b);
                }
            }
            m
        })
        .collect()
}

fn level_of(points: &[&Point<'_>], targets: &[SloTarget]) -> LoadLevel {
    let (mut d, mut load) = (0.0, 0.0);
    let tw = |f: &dyn Fn(&WindowSample) -> Option<f64>| {
        let (mut num, mut den) = (0.0, 0.0);
        for p in points {
            if let Some(v) = f(p.w) {
                num += v * p.w.duration_s;
                den += p.w.duration_s;
            }
        }
        (den > 0.0).then(|| num / den)
    };
    for p in points {
        d += p.w.duration_s;
        load += p.load * p.w.duration_s;
    }
    let results: Vec<TargetResult> = merge_points(points, targets)
        .iter()
        .zip(targets)
        .map(|(m, t)| target_result(t, m))
        .collect();
    let meets = results
        .iter()
        .map(|r| r.meets)
        .collect::<Option<Vec<bool>>>()
        .map(|v| v.iter().all(|m| *m));
    let mut windows: Vec<WindowRef> = points.iter().map(|p| p.at).collect();
    windows.sort();
    LoadLevel {
        in_system: if d > 0.0 { load / d } else { 0.0 },
        in_system_min: points.iter().map(|p| p.load).fold(f64::INFINITY, f64::min),
        in_system_max: points
            .iter()
            .map(|p| p.load)
            .fold(f64::NEG_INFINITY, f64::max),
        running_mean: (d > 0.0).then(|| {
            points
                .iter()
                .map(|p| p.running * p.w.duration_s)
                .sum::<f64>()
                / d
        }),
        waiting_mean: (d > 0.0).then(|| {
            points
                .iter()
                .map(|p| p.waiting * p.w.duration_s)
                .sum::<f64>()
                / d
        }),
        requests_per_s: tw(&|w| w.requests_per_s),
        generation_tokens_per_s: tw(&|w| w.generation_tokens_per_s),
        duration_s: d,
        windows,
        targets: results,
        meets,
    }
}

/// Cuts the points (sorted by load) into levels: see the module header.
fn cut_levels<'a>(points: &'a [Point<'a>], targets: &[SloTarget]) -> Vec<Vec<&'a Point<'a>>> {
    let mut groups: Vec<Vec<&Point<'_>>> = Vec::new();
    let mut cur: Vec<&Point<'_>> = Vec::new();
    let mut obs = vec![0.0; targets.len()];
    for p in points {
        cur.push(p);
        for (o, t) in obs.iter_mut().zip(targets) {
            *o += window_buckets(p.series, p.w, t.latency).map_or(0.0, |(n, _)| n);
        }
        if cur.len() >= MIN_LEVEL_WINDOWS && obs.iter().all(|o| *o >= MIN_LEVEL_OBSERVATIONS) {
            groups.push(std::mem::take(&mut cur));
            obs.iter_mut().for_each(|o| *o = 0.0);
        }
    }
    // A short tail joins the level below it rather than stand on too little.
    if !cur.is_empty() {
        match groups.last_mut() {
            Some(last) => last.extend(cur),
            None => groups.push(cur),
        }
    }
    groups
}

/// Assesses the SLO over the windows of one or more recordings of the same server, each
/// given as its label and series.
pub fn assess(sources: &[(&str, &WindowSeries)], targets: &[SloTarget]) -> SloAssessment {
    let mut notes = Vec::new();
    let mut points: Vec<Point<'_>> = Vec::new();
    let mut no_load = 0u32;
    for (i, (_, s)) in sources.iter().enumerate() {
        for (k, w) in s.windows.iter().enumerate() {
            let at = WindowRef {
                source: i as u32,
                index: w.index,
            };
            match lagged(s, k).filter(|(r, q)| (r + q).is_finite()) {
                Some((running, waiting)) => points.push(Point {
                    series: s,
                    w,
                    at,
                    load: running + waiting,
                    running,
                    waiting,
                }),
                None => no_load += 1,
            }
        }
    }
    if no_load > 0 {
        notes.push(format!(
            "{no_load} active window(s) without a requests-running value were left out"
        ));
    }
    for t in targets {
        if t.latency == Latency::Tpot && sources.iter().all(|(_, s)| s.tpot_le_s.is_empty()) {
            notes.push(format!("{}: no TPOT buckets in the recording", t.name()));
        }
    }
    let windows: Vec<WindowGoodput> = points
        .iter()
        .map(|p| {
            let results: Vec<TargetResult> = merge_points(&[p], targets)
                .iter()
                .zip(targets)
                .map(|(m, t)| target_result(t, m))
                .collect();
            WindowGoodput {
                window: p.at,
                in_system: Some(p.load),
                goodput: goodput(&results),
            }
        })
        .collect();
    let all: Vec<&Point<'_>> = points.iter().collect();
    let overall: Vec<TargetResult> = merge_points(&all, targets)
        .iter()
        .zip(targets)
        .map(|(m, t)| target_result(t, m))
        .collect();
    points.sort_by(|a, b| a.load.total_cmp(&b.load).then(a.at.cmp(&b.at)));
    let levels: Vec<LoadLevel> = cut_levels(&points, targets)
        .iter()
        .map(|g| level_of(g, targets))
        .collect();
    let capacity = judge(&levels, targets, points.is_empty());
    SloAssessment {
        targets: targets.to_vec(),
        sources: sources.iter().map(|(l, _)| l.to_string()).collect(),
        windows_used: points.len() as u32,
        capacity,
        goodput: goodput(&overall),
        windows,
        levels,
        notes,
    }
}

fn missed(level: &LoadLevel, targets: &[SloTarget]) -> Vec<String> {
    level
        .targets
        .iter()
        .zip(targets)
        .filter(|(r, _)| r.meets == Some(false))
        .map(|(_, t)| t.name())
        .collect()
}

/// Reads the ladder: see the module header. The break is the level that best separates the
/// levels meeting the SLO from those missing it: the split with the least time on the wrong
/// side (levels below it that miss, levels from it on that meet), the lowest such split on a
/// tie (the cautious answer). One noisy level on either side then moves nothing.
fn judge(levels: &[LoadLevel], targets: &[SloTarget], no_windows: bool) -> Capacity {
    if no_windows {
        return Capacity::Unknown {
            why: "no active window with a load value".to_string(),
        };
    }
    let known: Vec<usize> = (0..levels.len())
        .filter(|&i| levels[i].meets.is_some())
        .collect();
    let Some(&lowest) = known.first() else {
        return Capacity::Unknown {
            why: "no level has observations of every target's histogram".to_string(),
        };
    };
    let highest = *known.last().unwrap_or(&lowest);
    // wrong(k): the split puts known[..k] below the break and known[k..] at or above it.
    let wrong = |k: usize| -> f64 {
        let below: f64 = known[..k]
            .iter()
            .filter(|&&i| levels[i].meets == Some(false))
            .map(|&i| levels[i].duration_s)
            .sum();
        let above: f64 = known[k..]
            .iter()
            .filter(|&&i| levels[i].meets == Some(true))
            .map(|&i| levels[i].duration_s)
            .sum();
        below + above
    };
    let mut split = 0;
    for k in 1..=known.len() {
        if wrong(k) < wrong(split) {
            split = k;
        }
    }
    if split == known.len() {
        return Capacity::NotReached { highest };
    }
    if split == 0 {
        return Capacity::BrokenAtLowest {
            lowest,
            missed: missed(&levels[lowest], targets),
        };
    }
    let breaks = known[split];
    // The split is never just above a missing level (moving it down would be better), so the
    // level below it meets the SLO.
    let holds = known[split - 1];
    let (h, b) = (&levels[holds], &levels[breaks]);
    let crossing_in_system = targets
        .iter()
        .enumerate()
        .filter(|(k, _)| b.targets[*k].meets == Some(false))
        .filter_map(|(k, t)| {
            let (v1, v2) = (h.targets[k].value_s?, b.targets[k].value_s?);
            (v2 > v1)
                .then(|| h.in_system + (t.bound_s - v1) / (v2 - v1) * (b.in_system - h.in_system))
        })
        .filter(|x| x.is_finite())
        .reduce(f64::min);
    Capacity::BreaksAt {
        holds,
        breaks,
        crossing_in_system,
        missed: missed(b, targets),
        missed_below: known[..split]
            .iter()
            .copied()
            .filter(|&i| levels[i].meets == Some(false))
            .collect(),
        met_above: known[split..]
            .iter()
            .copied()
            .filter(|&i| levels[i].meets == Some(true))
            .collect(),
    }
}

#[cfg(test)]
mod tests;
