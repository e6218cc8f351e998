//! The per-window series a report can carry: for every active window, the figures whose
//! aggregates the verdicts rest on (throughput, requests, running and waiting means) and the
//! TTFT and TPOT delta buckets. It is what makes a report's figures *samples*: `compare`
//! resamples it for intervals and the SLO assessment reads latency against load from it, so
//! both work from a saved JSON report as well as from a recording.
//!
//! The series is additive by design: every aggregate the report shows over active windows is
//! a ratio of sums over windows (spec "Aggregation": time-weighted means are Σ(v × d) / Σd,
//! histogram means ΣΔsum / ΣΔcount, p99 the quantile of the summed delta buckets). So
//! [`Components`] turns a window into a vector of those sums, and any set of windows (the
//! whole recording, a load level, a bootstrap replicate) is summarised by adding vectors.

use crate::window::quantile::{histogram_quantile, Bucket};
use serde::{Deserialize, Serialize};

/// One histogram over one window: its delta sum and count and its delta buckets, cumulative,
/// aligned with the series' bounds (one more count than finite bounds: the last is `+Inf`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistSample {
    /// Δsum, in the metric's unit (seconds).
    pub sum: f64,
    /// Δcount: observations in the window.
    pub count: f64,
    /// Cumulative delta counts at each finite bound, then at `+Inf`.
    pub counts: Vec<f64>,
}

/// One active window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowSample {
    /// The window's position in its recording (as in the report's window rows).
    pub index: u32,
    /// Nominal start, seconds after the first analysed scrape.
    pub start_s: f64,
    /// First to last good scrape, seconds (positive: active windows are evaluable).
    pub duration_s: f64,
    /// Generated tokens per second.
    pub generation_tokens_per_s: Option<f64>,
    /// Finished requests per second.
    pub requests_per_s: Option<f64>,
    /// Requests running, time-weighted mean.
    pub running_mean: Option<f64>,
    /// Requests waiting, time-weighted mean.
    pub waiting_mean: Option<f64>,
    /// TTFT delta buckets; `None` without observations' buckets or with another layout.
    pub ttft: Option<HistSample>,
    /// TPOT delta buckets (the histogram the report's TPOT reads).
    pub tpot: Option<HistSample>,
}

impl WindowSample {
    /// Requests in the server (running + waiting, time-weighted means): the offered load of
    /// a closed-loop client, and by Little's law the arrival rate times the time in system
    /// of an open-loop one. `None` without `running`.
    pub fn in_system(&self) -> Option<f64> {
        Some(self.running_mean? + self.waiting_mean.unwrap_or(0.0))
    }
}

/// The active windows of one report, in time order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowSeries {
    /// Window length, seconds.
    pub window_s: f64,
    /// TTFT's finite bucket bounds, seconds.
    pub ttft_le_s: Vec<f64>,
    /// TPOT's finite bucket bounds, seconds.
    pub tpot_le_s: Vec<f64>,
    /// The active windows.
    pub windows: Vec<WindowSample>,
}

/// Which histogram of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Latency {
    /// Time to first token.
    Ttft,
    /// Time per output token.
    Tpot,
}

impl Latency {
    /// The short name (`ttft`, `tpot`).
    pub fn name(self) -> &'static str {
        match self {
            Latency::Ttft => "ttft",
            Latency::Tpot => "tpot",
        }
    }

    /// The display name (`TTFT`, `TPOT`).
    pub fn title(self) -> &'static str {
        match self {
            Latency::Ttft => "TTFT",
            Latency::Tpot => "TPOT",
        }
    }
}

impl WindowSeries {
    /// The finite bounds of one histogram.
    pub fn le_s(&self, h: Latency) -> &[f64] {
        match h {
            Latency::Ttft => &self.ttft_le_s,
            Latency::Tpot => &self.tpot_le_s,
        }
    }

    /// Layout of the additive components of this series' windows.
    pub fn layout(&self) -> Layout {
        Layout {
            ttft_buckets: self.ttft_le_s.len() + 1,
            tpot_buckets: self.tpot_le_s.len() + 1,
        }
    }
}

/// Where each sum sits in a component vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    ttft_buckets: usize,
    tpot_buckets: usize,
}

/// Offsets of the fixed part of a component vector.
const D_TPS: usize = 0;
const TPS: usize = 1;
const D_REQ: usize = 2;
const REQ: usize = 3;
const D_RUN: usize = 4;
const RUN: usize = 5;
const D_WAIT: usize = 6;
const WAIT: usize = 7;
const FIXED: usize = 8;

impl Layout {
    /// Length of a component vector.
    pub fn len(&self) -> usize {
        FIXED + 2 * 2 + self.ttft_buckets + self.tpot_buckets
    }

    /// Whether a vector holds nothing (never: the fixed part is always there).
    pub fn is_empty(&self) -> bool {
        false
    }

    fn hist_at(&self, h: Latency) -> (usize, usize) {
        match h {
            Latency::Ttft => (FIXED, self.ttft_buckets),
            Latency::Tpot => (FIXED + 2 + self.ttft_buckets, self.tpot_buckets),
        }
    }

    /// Adds window `w`'s components into `acc` (of length [`Layout::len`]).
    pub fn add(&self, acc: &mut [f64], w: &WindowSample) {
        let d = w.duration_s;
        if d.is_nan() || d <= 0.0 {
            return;
        }
        let mut tw = |dd: usize, vv: usize, v: Option<f64>| {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                acc[dd] += d;
                acc[vv] += v * d;
            }
        };
        tw(D_TPS, TPS, w.generation_tokens_per_s);
        tw(D_REQ, REQ, w.requests_per_s);
        tw(D_RUN, RUN, w.running_mean);
        tw(D_WAIT, WAIT, w.waiting_mean);
        for (h, s) in [(Latency::Ttft, &w.ttft), (Latency::Tpot, &w.tpot)] {
            let (at, n) = self.hist_at(h);
            if let Some(s) = s.as_ref().filter(|s| s.counts.len() == n) {
                acc[at] += s.sum;
                acc[at + 1] += s.count;
                for (a, c) in acc[at + 2..at + 2 + n].iter_mut().zip(&s.counts) {
                    *a += c;
                }
            }
        }
    }

    /// The components of a set of windows.
    pub fn sum<'a>(&self, windows: impl IntoIterator<Item = &'a WindowSample>) -> Vec<f64> {
        let mut acc = vec![0.0; self.len()];
        for w in windows {
            self.add(&mut acc, w);
        }
        acc
    }
}

/// The aggregates of a set of windows, read from its summed components.
#[derive(Debug, Clone, Copy)]
pub struct Components<'a> {
    layout: Layout,
    sums: &'a [f64],
}

fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den).filter(|v| v.is_finite())
}

impl<'a> Components<'a> {
    /// Reads summed components laid out by `layout`.
    pub fn new(layout: Layout, sums: &'a [f64]) -> Components<'a> {
        Components { layout, sums }
    }

    /// Generated tokens per second (time-weighted).
    pub fn generation_tokens_per_s(&self) -> Option<f64> {
        ratio(self.sums[TPS], self.sums[D_TPS])
    }

    /// Finished requests per second (time-weighted).
    pub fn requests_per_s(&self) -> Option<f64> {
        ratio(self.sums[REQ], self.sums[D_REQ])
    }

    /// Requests running (time-weighted mean).
    pub fn running_mean(&self) -> Option<f64> {
        ratio(self.sums[RUN], self.sums[D_RUN])
    }

    /// Requests waiting (time-weighted mean).
    pub fn waiting_mean(&self) -> Option<f64> {
        ratio(self.sums[WAIT], self.sums[D_WAIT])
    }

    /// Σ duration of the windows with a running value, seconds.
    pub fn duration_s(&self) -> f64 {
        self.sums[D_RUN]
    }

    /// Observations of a histogram.
    pub fn observations(&self, h: Latency) -> f64 {
        let (at, _) = self.layout.hist_at(h);
        self.sums[at + 1]
    }

    /// ΣΔsum / ΣΔcount of a histogram, in its unit.
    pub fn mean(&self, h: Latency) -> Option<f64> {
        let (at, _) = self.layout.hist_at(h);
        ratio(self.sums[at], self.sums[at + 1])
    }

    /// The merged delta buckets of a histogram against the series' bounds.
    pub fn buckets(&self, h: Latency, le_s: &[f64]) -> Vec<Bucket> {
        let (at, n) = self.layout.hist_at(h);
        le_s.iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(&self.sums[at + 2..at + 2 + n])
            .map(|(le, &count)| Bucket { le, count })
            .collect()
    }

    /// The `q` quantile of a histogram, Prometheus-exact on the merged buckets.
    pub fn quantile(&self, h: Latency, le_s: &[f64], q: f64) -> Option<f64> {
        histogram_quantile(q, &self.buckets(h, le_s))
    }
}

/// The share of observations at or below `bound`, from cumulative buckets, as Prometheus'
/// `histogram_fraction(-Inf, bound, …)` computes it for classic buckets (`promql/quantile.go`,
/// `BucketFraction`): linear interpolation inside the bucket the bound falls in, the lowest
/// bucket starting at 0 when its bound is positive, and observations in the `+Inf` bucket
/// counted above any finite bound (nothing can be interpolated there). `None` without
/// observations or without a `+Inf` bucket, where Prometheus gives NaN.
pub fn fraction_at_most(bound: f64, buckets: &[Bucket]) -> Option<f64> {
    let mut b: Vec<Bucket> = buckets.iter().copied().filter(|b| !b.le.is_nan()).collect();
    b.sort_by(|x, y| x.le.total_cmp(&y.le));
    let mut merged: Vec<Bucket> = Vec::with_capacity(b.len());
    for x in b {
        match merged.last_mut() {
            Some(last) if last.le == x.le => last.count += x.count,
            _ => merged.push(x),
        }
    }
    let last = merged.last()?;
    if last.le != f64::INFINITY || bound.is_nan() {
        return None;
    }
    let count = last.count;
    if count.is_nan() || count <= 0.0 {
        return None;
    }
    let mut lower = if merged[0].le <= 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    let mut rank = 0.0;
    let mut upper_rank = None;
    for (i, x) in merged.iter().enumerate() {
        if i > 0 {
            lower = merged[i - 1].le;
        }
        if lower >= bound {
            upper_rank = Some(rank);
            break;
        }
        if lower < bound && x.le > bound {
            upper_rank = Some(if lower == f64::NEG_INFINITY {
                x.count
            } else {
                rank + (x.count - rank) * (bound - lower) / (x.le - lower)
            });
            break;
        }
        rank = x.count;
    }
    let upper_rank = upper_rank.unwrap_or(count).min(count);
    Some(upper_rank / count)
}
