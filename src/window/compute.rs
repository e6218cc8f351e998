//! One window's snapshot from its scrapes and GPU polls: the spec's "Per-window collection"
//! table, formula by formula.

use super::quantile::{histogram_quantile, Bucket, P99};
use crate::recording::{GpuPoll, Scrape};
use crate::units::{MonoNs, BYTES_PER_MIB};
use crate::vllm::{CounterKind, HistKind, Resolved, ScrapeValues};
use serde::Serialize;
use std::collections::BTreeMap;

/// vLLM's `*_cache_usage_perc` is a fraction 0-1 (vllm-metrics.md §0.6); windows carry percent.
const FRACTION_TO_PCT: f64 = 100.0;

/// One data-parallel engine over one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EngineWindow {
    /// Requests running, time-weighted mean.
    pub running_mean: Option<f64>,
    /// Requests waiting, time-weighted mean.
    pub waiting_mean: Option<f64>,
    /// Highest KV-cache usage, percent.
    pub kv_cache_peak_pct: Option<f64>,
    /// Preemptions in the window (`increase()`).
    pub preemptions_delta: Option<f64>,
}

/// One histogram over one window. Values are in the metric's own unit (seconds, or tokens for
/// prompt length); the report converts seconds to ms (spec: "×1000 for seconds-based").
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HistWindow {
    /// Δsum first→last scrape; `None` on reset or when absent.
    pub delta_sum: Option<f64>,
    /// Δcount first→last scrape; `None` on reset or when absent.
    pub delta_count: Option<f64>,
    /// Δsum/Δcount, or the last scrape's cumulative sum/count when Δcount <= 0 (spec
    /// "Per-window collection": histogram mean, on failure).
    pub mean: Option<f64>,
    /// Whether `mean` is the cumulative fallback.
    pub mean_is_cumulative: bool,
    /// q=0.99 from the delta buckets; `None` without observations (no cumulative fallback).
    pub p99: Option<f64>,
    /// Delta buckets `(le, count)`; empty when the window saw no observation or a reset.
    pub buckets: Vec<Bucket>,
}

/// NVML polls over one window. With several GPUs: utilisation (the GPM figures too) is the
/// mean over every poll of every GPU, power the sum of the per-GPU means (the server's draw), VRAM used and temperature
/// the largest per-GPU value (the fullest, hottest GPU), VRAM total and SM clock the smallest.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GpuWindow {
    /// Polls in the window (all GPUs).
    pub polls: u32,
    /// Distinct GPUs polled.
    pub gpus: u32,
    /// Mean GPU utilisation, percent, over polls that have it.
    pub util_pct_mean: Option<f64>,
    /// Mean memory-controller utilisation, percent.
    pub mem_util_pct_mean: Option<f64>,
    /// Mean GPM SM activity, percent, over polls that have it (Hopper and newer).
    pub sm_active_pct_mean: Option<f64>,
    /// Mean GPM SM occupancy, percent.
    pub sm_occupancy_pct_mean: Option<f64>,
    /// Mean GPM DRAM bandwidth use, percent of peak.
    pub dram_bw_util_pct_mean: Option<f64>,
    /// Mean power draw, watts (summed over GPUs).
    pub power_w_mean: Option<f64>,
    /// VRAM in use at the last poll, MiB.
    pub vram_used_mib_last: Option<f64>,
    /// VRAM total at the last poll, MiB.
    pub vram_total_mib_last: Option<f64>,
    /// Temperature at the last poll, °C.
    pub temperature_c_last: Option<f64>,
    /// SM clock at the last poll, MHz.
    pub sm_clock_mhz_last: Option<f64>,
    /// Largest VRAM in use over the window's polls, MiB (`vram_peak_mb`).
    pub vram_peak_mib: Option<f64>,
    /// Highest temperature over the window's polls, °C (`temperature_peak_c`).
    pub temperature_peak_c: Option<f64>,
    /// Completion time of the window's last poll (`gpu_observed_at`).
    pub observed_mono: Option<MonoNs>,
}

/// One ~2 s window of a recording.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    /// Position from 0.
    pub index: u32,
    /// Nominal start, `anchor + index × length` (inclusive).
    pub start_mono: MonoNs,
    /// Nominal end (exclusive).
    pub end_mono: MonoNs,
    /// Good scrapes used, the shared boundary scrape included.
    pub scrapes_ok: u32,
    /// Failed scrapes inside the window (skipped).
    pub scrapes_failed: u32,
    /// `seq` of the first good scrape (the previous window's last, when shared).
    pub first_scrape_seq: Option<u64>,
    /// `seq` of the last good scrape.
    pub last_scrape_seq: Option<u64>,
    /// Completion time of the first good scrape.
    pub first_scrape_mono: Option<MonoNs>,
    /// Completion time of the last good scrape (`vllm_observed_at`).
    pub last_scrape_mono: Option<MonoNs>,
    /// First→last good scrape, seconds; `None` with fewer than two good scrapes.
    pub duration_s: Option<f64>,

    /// Requests running at the last scrape.
    pub running_last: Option<f64>,
    /// Time-weighted mean of running over the window's scrapes.
    pub running_mean: Option<f64>,
    /// Requests waiting at the last scrape.
    pub waiting_last: Option<f64>,
    /// Time-weighted mean of waiting.
    pub waiting_mean: Option<f64>,
    /// Requests swapped at the last scrape.
    pub swapped_last: Option<f64>,
    /// KV-cache usage at the last scrape, percent.
    pub kv_cache_pct_last: Option<f64>,
    /// Time-weighted mean KV-cache usage, percent.
    pub kv_cache_pct_mean: Option<f64>,
    /// Highest KV-cache usage over every good scrape of the window, percent
    /// (`kv_cache_peak_perc`).
    pub kv_cache_peak_pct: Option<f64>,
    /// `vllm:max_num_seqs` at the last scrape (no released vLLM has it).
    pub max_num_seqs_last: Option<f64>,

    /// Generated tokens in the window (`increase()`: a reset adds the new value).
    pub generation_tokens_delta: Option<f64>,
    /// Prompt tokens in the window.
    pub prompt_tokens_delta: Option<f64>,
    /// Prompt tokens the engine computed in the window (`prompt_tokens_by_source`
    /// `local_compute`): the prefill work done, cache hits excluded.
    pub prompt_tokens_computed_delta: Option<f64>,
    /// Prompt tokens served from a cache in the window (`prompt_tokens_cached`).
    pub prompt_tokens_cached_delta: Option<f64>,
    /// Finished requests in the window.
    pub requests_delta: Option<f64>,
    /// Preemptions in the window.
    pub preemptions_delta: Option<f64>,
    /// Generated tokens per second.
    pub generation_tokens_per_s: Option<f64>,
    /// Prompt tokens per second.
    pub prompt_tokens_per_s: Option<f64>,
    /// Prompt tokens computed by the engine per second (cache hits excluded).
    pub prompt_tokens_computed_per_s: Option<f64>,
    /// Finished requests per second.
    pub requests_per_s: Option<f64>,
    /// Preemptions per second.
    pub preemptions_per_s: Option<f64>,
    /// vLLM's estimated FLOPs per GPU per second (`--enable-mfu-metrics`).
    pub est_flops_per_gpu_per_s: Option<f64>,
    /// vLLM's estimated bytes read per GPU per second (`--enable-mfu-metrics`).
    pub est_read_bytes_per_gpu_per_s: Option<f64>,
    /// Requests waiting for a reason other than capacity (LoRA budget, KV transfer, a blocked
    /// status), time-weighted mean; `None` before vLLM exposed the reason.
    pub waiting_deferred_mean: Option<f64>,
    /// Per data-parallel engine (in `mapping.engines` order), with two or more engines.
    pub engines: Vec<EngineWindow>,
    /// Whether the engine reported itself asleep (`engine_sleep_state{sleep_state="awake"}`
    /// 0) at some scrape of the window: such a window is not under load, whatever else it says.
    pub engine_asleep: bool,
    /// The API server process's CPU use, cores (CPU seconds per second of
    /// `process_cpu_seconds_total`): R8's frontend load.
    pub api_server_cpu_cores: Option<f64>,
    /// The `record --pid` process's own CPU use, cores (its children left out); `None`
    /// without host sampling. R8 prefers it to `api_server_cpu_cores`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_cpu_cores: Option<f64>,
    /// Samples skipped as repeats of a series already in the same body (the first counts).
    pub duplicate_samples: u32,
    /// The most counter resets (server restarts) seen in any one counter in the window.
    pub counter_resets: u32,
    /// When the first reset in the window was seen (the scrape after it).
    pub first_reset_mono: Option<MonoNs>,
    /// Generated tokens counted before each reset in the window (Σ of the last values before
    /// each), so that recording totals add up across restarts.
    pub generation_tokens_before_resets: f64,
    /// Prompt tokens counted before each reset in the window.
    pub prompt_tokens_before_resets: f64,
    /// Finished requests counted before each reset in the window.
    pub requests_before_resets: f64,
    /// Preemptions counted before each reset in the window.
    pub preemptions_before_resets: f64,
    /// Cumulative generated tokens at the last scrape (server total).
    pub generation_tokens_total: Option<f64>,
    /// Cumulative prompt tokens at the last scrape.
    pub prompt_tokens_total: Option<f64>,
    /// Cumulative finished requests at the last scrape.
    pub requests_total: Option<f64>,
    /// Cumulative preemptions at the last scrape.
    pub preemptions_total: Option<f64>,
    /// Prefix-cache hits in the window.
    pub prefix_hits_delta: Option<f64>,
    /// Prefix-cache queries in the window.
    pub prefix_queries_delta: Option<f64>,
    /// Δhits/Δqueries, percent; `None` when Δqueries <= 0.
    pub prefix_cache_hit_pct: Option<f64>,

    /// Time to first token, seconds.
    pub ttft_s: HistWindow,
    /// Time per output token, seconds (which metric: `VllmMapping::tpot_source`).
    pub tpot_s: HistWindow,
    /// Inter-token latency, seconds.
    pub itl_s: HistWindow,
    /// Prefill time, seconds (rule R1 reads `delta_sum`).
    pub prefill_s: HistWindow,
    /// Queue time, seconds.
    pub queue_s: HistWindow,
    /// End-to-end latency, seconds.
    pub e2e_s: HistWindow,
    /// Prompt length, tokens.
    pub prompt_tokens: HistWindow,

    /// NVML polls.
    pub gpu: GpuWindow,
}

impl Window {
    /// The histogram of one kind.
    pub fn hist(&self, h: HistKind) -> &HistWindow {
        match h {
            HistKind::Ttft => &self.ttft_s,
            HistKind::Tpot => &self.tpot_s,
            HistKind::Itl => &self.itl_s,
            HistKind::Prefill => &self.prefill_s,
            HistKind::Queue => &self.queue_s,
            HistKind::PromptTokens => &self.prompt_tokens,
            HistKind::E2e => &self.e2e_s,
        }
    }

    /// Frees the delta buckets of every histogram not in `keep` (their `p99` stays): for a
    /// caller that has merged them already and reads only `keep`'s from here on.
    pub fn drop_buckets_except(&mut self, keep: &[HistKind]) {
        for h in HistKind::ALL {
            if !keep.contains(&h) {
                self.hist_mut(h).buckets = Vec::new();
            }
        }
    }

    /// The window's histogram `h`, to change.
    pub(crate) fn hist_mut(&mut self, h: HistKind) -> &mut HistWindow {
        match h {
            HistKind::Ttft => &mut self.ttft_s,
            HistKind::Tpot => &mut self.tpot_s,
            HistKind::Itl => &mut self.itl_s,
            HistKind::Prefill => &mut self.prefill_s,
            HistKind::Queue => &mut self.queue_s,
            HistKind::PromptTokens => &mut self.prompt_tokens,
            HistKind::E2e => &mut self.e2e_s,
        }
    }

    /// |last scrape − last GPU poll| in seconds, when both exist. Rule R2 is skipped above
    /// [`super::MAX_SOURCE_SKEW_NS`].
    pub fn source_skew_s(&self) -> Option<f64> {
        skew_s(self.last_scrape_mono?, self.gpu.observed_mono?)
    }
}

/// |a − b| in seconds: how far apart a window's last scrape and last GPU poll completed.
pub fn skew_s(a: MonoNs, b: MonoNs) -> Option<f64> {
    Some((a.0 - b.0).unsigned_abs() as f64 / 1e9)
}

/// What one window is built from.
pub(crate) struct WindowInput<'a> {
    pub index: u32,
    pub start: MonoNs,
    pub end: MonoNs,
    /// Good scrapes in order, the shared boundary scrape first when there is one.
    pub scrapes: Vec<&'a Scrape>,
    pub failed: u32,
    pub polls: Vec<&'a GpuPoll>,
}

/// Histogram delta first → last scrape: `None` on a negative delta (a reset: the spec keeps
/// no stale p99) or when either scrape lacks the value. A value missing from the first scrape
/// is never counted from 0: it may have been lost (a NaN, a dropped series), and counting a
/// cumulative value as one window's events is exactly the error that inflates throughput.
fn delta(first: Option<f64>, last: Option<f64>) -> Option<f64> {
    let d = last? - first?;
    (d >= 0.0).then_some(d)
}

/// One counter series followed across a window's good scrapes with Prometheus's
/// `increase()` semantics: each step between two consecutive scrapes that both hold a finite
/// value adds its difference, or, when the value fell (a counter reset: the process that
/// serves it restarted), the new value itself. A scrape without the value is a gap the step
/// spans; it never counts as 0. The rate's duration is the span of the samples that exist.
/// Resets are found per series: one data-parallel engine restarting while another runs must
/// not read as a reset of their sum (which would count the other engine's whole cumulative
/// value as new events).
#[derive(Debug, Clone, Copy, Default)]
struct CounterTrack {
    prev: Option<f64>,
    increase: f64,
    first_t: Option<i64>,
    last_t: i64,
    /// The value just before each reset, summed: what the series had counted before its
    /// process restarted, so that totals add up across restarts.
    before_resets: f64,
}

impl CounterTrack {
    /// Adds the scrape at `t`; `true` when the value fell (a reset).
    fn push(&mut self, t: i64, v: Option<f64>) -> bool {
        let Some(v) = v.filter(|v| v.is_finite()) else {
            return false;
        };
        let mut reset = false;
        match self.prev {
            Some(p) if v >= p => self.increase += v - p,
            Some(p) => {
                self.increase += v;
                self.before_resets += p;
                reset = true;
            }
            None => self.first_t = Some(t),
        }
        self.prev = Some(v);
        self.last_t = t;
        reset
    }

    /// The increase, when two samples exist.
    fn delta(&self) -> Option<f64> {
        let first = self.first_t?;
        (self.last_t > first).then_some(self.increase)
    }
}

/// A counter's series combined: the sum of their increases, over the span from the earliest
/// to the latest sample of any series that has two.
#[derive(Debug, Clone, Copy, Default)]
struct CounterSum {
    delta: Option<f64>,
    first_t: Option<i64>,
    last_t: Option<i64>,
    before_resets: f64,
}

impl CounterSum {
    fn add(&mut self, t: &CounterTrack) {
        self.before_resets += t.before_resets;
        let (Some(d), Some(first)) = (t.delta(), t.first_t) else {
            return;
        };
        self.delta = Some(self.delta.unwrap_or(0.0) + d);
        self.first_t = Some(self.first_t.map_or(first, |f| f.min(first)));
        self.last_t = Some(self.last_t.map_or(t.last_t, |l| l.max(t.last_t)));
    }

    /// Seconds from the first to the last sample.
    fn span_s(&self) -> Option<f64> {
        let (first, last) = (self.first_t?, self.last_t?);
        (last > first).then(|| (last - first) as f64 / 1e9)
    }
}

/// Counter rate (spec "Per-window collection": (last − first) / window_duration_secs; `None`
/// on a negative delta or zero duration; zero is a value).
pub fn counter_rate(delta: Option<f64>, duration_s: Option<f64>) -> Option<f64> {
    let d = duration_s.filter(|d| *d > 0.0)?;
    Some(delta? / d)
}

/// Time-weighted (trapezoid) mean of a gauge over `(t_ns, value)` points in time order; the
/// plain value with one point, the plain mean when all points share one instant.
pub fn time_weighted_mean(points: &[(i64, f64)]) -> Option<f64> {
    match points {
        [] => None,
        [(_, v)] => Some(*v),
        _ => {
            let span = (points[points.len() - 1].0 - points[0].0) as f64;
            if span <= 0.0 {
                return Some(points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64);
            }
            let area: f64 = points
                .windows(2)
                .map(|w| (w[0].1 + w[1].1) / 2.0 * (w[1].0 - w[0].0) as f64)
                .sum();
            Some(area / span)
        }
    }
}

fn hist_window(
    r: &Resolved,
    h: HistKind,
    first: &ScrapeValues,
    last: &ScrapeValues,
    two: bool,
) -> HistWindow {
    let Some(l) = r.layout.hist(h) else {
        return HistWindow::default();
    };
    let (ls, lc) = (last.slot(l.sum), last.slot(l.count));
    let (ds, dc) = if two {
        (delta(first.slot(l.sum), ls), delta(first.slot(l.count), lc))
    } else {
        (None, None)
    };
    let mut w = HistWindow {
        delta_sum: ds,
        delta_count: dc,
        ..HistWindow::default()
    };
    match (ds, dc) {
        (Some(s), Some(c)) if c > 0.0 => w.mean = Some(s / c),
        _ => {
            if let (Some(s), Some(c)) = (ls, lc.filter(|c| *c > 0.0)) {
                w.mean = Some(s / c);
                w.mean_is_cumulative = true;
            }
        }
    }
    if two {
        let mut buckets = Vec::with_capacity(l.les.len());
        for (i, le) in l.les.iter().enumerate() {
            let slot = l.first_bucket + i;
            match (first.slot(slot), last.slot(slot)) {
                (None, None) => continue,
                (f, lv) => match delta(f, lv) {
                    Some(count) => buckets.push(Bucket { le: *le, count }),
                    None => {
                        buckets.clear();
                        break;
                    }
                },
            }
        }
        let observed = buckets
            .last()
            .is_some_and(|b| b.le == f64::INFINITY && b.count > 0.0);
        if observed {
            w.p99 = histogram_quantile(P99, &buckets);
            w.buckets = buckets;
        }
    }
    w
}

#[derive(Default)]
struct GpuAcc {
    last_t: i64,
    vram_used: Option<f64>,
    vram_total: Option<f64>,
    temperature: Option<f64>,
    sm_clock: Option<f64>,
    power_sum: f64,
    power_n: u32,
}

fn set_last(slot: &mut Option<f64>, v: Option<f64>) {
    if v.is_some() {
        *slot = v;
    }
}

fn fold(acc: Option<f64>, v: Option<f64>, f: fn(f64, f64) -> f64) -> Option<f64> {
    match (acc, v) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, b) => a.or(b),
    }
}

fn mean_of(sum: f64, n: u32) -> Option<f64> {
    (n > 0).then(|| sum / f64::from(n))
}

/// A running mean of the finite values given to it.
#[derive(Default)]
struct Mean {
    sum: f64,
    n: u32,
}

impl Mean {
    fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.sum += v;
            self.n += 1;
        }
    }

    fn get(&self) -> Option<f64> {
        mean_of(self.sum, self.n)
    }
}

fn gpu_window(polls: &[&GpuPoll]) -> GpuWindow {
    let mut g = GpuWindow {
        polls: polls.len() as u32,
        ..GpuWindow::default()
    };
    let (mut util, mut util_n, mut mem, mut mem_n) = (0.0, 0u32, 0.0, 0u32);
    let (mut sm_active, mut sm_occupancy, mut dram_bw) =
        (Mean::default(), Mean::default(), Mean::default());
    let mut per_gpu: BTreeMap<u32, GpuAcc> = BTreeMap::new();
    let mib = |b: Option<u64>| b.map(|b| b as f64 / BYTES_PER_MIB);
    for p in polls {
        let m = &p.metrics;
        if let Some(u) = m.util_pct {
            util += f64::from(u);
            util_n += 1;
        }
        if let Some(u) = m.mem_util_pct {
            mem += f64::from(u);
            mem_n += 1;
        }
        sm_active.add(m.sm_active_pct);
        sm_occupancy.add(m.sm_occupancy_pct);
        dram_bw.add(m.dram_bw_util_pct);
        g.vram_peak_mib = fold(g.vram_peak_mib, mib(m.vram_used_bytes), f64::max);
        g.temperature_peak_c = fold(
            g.temperature_peak_c,
            m.temperature_c.map(f64::from),
            f64::max,
        );
        let t = p.completed_mono.0;
        g.observed_mono = Some(MonoNs(g.observed_mono.map_or(t, |o| o.0.max(t))));
        let a = per_gpu.entry(p.gpu_index).or_default();
        if let Some(w) = m.power_w.filter(|w| w.is_finite()) {
            a.power_sum += w;
            a.power_n += 1;
        }
        // Polls come in seq order; a poll completing earlier than one already seen does not
        // overwrite the "last" readings.
        if t >= a.last_t {
            a.last_t = t;
            set_last(&mut a.vram_used, mib(m.vram_used_bytes));
            set_last(&mut a.vram_total, mib(m.vram_total_bytes));
            set_last(&mut a.temperature, m.temperature_c.map(f64::from));
            set_last(&mut a.sm_clock, m.sm_clock_mhz.map(f64::from));
        }
    }
    g.gpus = per_gpu.len() as u32;
    g.util_pct_mean = mean_of(util, util_n);
    g.mem_util_pct_mean = mean_of(mem, mem_n);
    g.sm_active_pct_mean = sm_active.get();
    g.sm_occupancy_pct_mean = sm_occupancy.get();
    g.dram_bw_util_pct_mean = dram_bw.get();
    for a in per_gpu.values() {
        g.power_w_mean = fold(g.power_w_mean, mean_of(a.power_sum, a.power_n), |x, y| {
            x + y
        });
        g.vram_used_mib_last = fold(g.vram_used_mib_last, a.vram_used, f64::max);
        g.vram_total_mib_last = fold(g.vram_total_mib_last, a.vram_total, f64::min);
        g.temperature_c_last = fold(g.temperature_c_last, a.temperature, f64::max);
        g.sm_clock_mhz_last = fold(g.sm_clock_mhz_last, a.sm_clock, f64::min);
    }
    g
}

/// Builds one window's snapshot. `born` holds, per counter series (positions as in
/// `Resolved::counters`), the `seq` of the first usable scrape of the whole recording that
/// carried a sample of it, finite or not (`u64::MAX` when none did so far). A series whose
/// first finite value comes in that very scrape, after a usable scrape without it, was born
/// there (vLLM creates a labelled counter on its first use) and counts from 0. A series seen
/// before and missing since was lost, and its return is a gap closing, never a birth:
/// counting a lost series' cumulative value as new is exactly the error that inflates
/// throughput. (Ours: vLLM never removes a counter series while it runs.)
///
/// `every_scrape` marks the series read in every scrape ([`Resolved::every_scrape_mask`]):
/// between the first and last scrape only those are extracted where the scrape can give them
/// alone; the rest (a histogram's buckets) are read at the two ends.
pub(crate) fn compute(
    inp: &WindowInput<'_>,
    r: &Resolved,
    born: &[u64],
    every_scrape: &[bool],
) -> Window {
    let mut first = ScrapeValues::new(r);
    let mut cur = ScrapeValues::new(r);
    let (mut running, mut waiting, mut kv) = (Vec::new(), Vec::new(), Vec::new());
    let mut kv_peak: Option<f64> = None;
    let mut deferred = Vec::new();
    let mut asleep = false;
    let ne = r.n_engines_tracked();
    let mut e_running: Vec<Vec<(i64, f64)>> = vec![Vec::new(); ne];
    let mut e_waiting: Vec<Vec<(i64, f64)>> = vec![Vec::new(); ne];
    let mut e_kv_peak: Vec<Option<f64>> = vec![None; ne];
    let mut tracks = vec![CounterTrack::default(); r.counters.len()];
    let (mut counter_resets, mut first_reset_t) = (0u32, None);
    let mut prev_t = None;
    let mut duplicate_samples = 0u32;
    let n = inp.scrapes.len();
    for (i, s) in inp.scrapes.iter().enumerate() {
        let between = i > 0 && i + 1 < n;
        match s.samples_among(every_scrape).filter(|_| between) {
            Some(some) => r.extract(some, &mut cur),
            None => r.extract(s.each_sample(), &mut cur),
        }
        // The shared boundary scrape was counted in the window before.
        if i > 0 || inp.index == 0 {
            duplicate_samples = duplicate_samples.saturating_add(cur.duplicates);
        }
        let t = s.meta.completed_mono.0;
        let mut reset = false;
        for (pos, track) in tracks.iter_mut().enumerate() {
            let v = cur.counter_series_value(pos);
            if let (Some(p), None, true) = (prev_t, track.prev, v.is_some()) {
                if born.get(pos) == Some(&s.meta.seq) {
                    track.push(p, Some(0.0));
                }
            }
            reset |= track.push(t, v);
        }
        if reset {
            // A restart resets every counter of the process at once: one event per scrape.
            counter_resets += 1;
            first_reset_t.get_or_insert(t);
        }
        prev_t = Some(t);
        if let Some(v) = cur.running {
            running.push((t, v));
        }
        if let Some(v) = cur.waiting {
            waiting.push((t, v));
        }
        if let Some(v) = cur.waiting_deferred {
            deferred.push((t, v));
        }
        asleep |= cur.engine_awake.is_some_and(|a| a < 0.5);
        for (e, v) in cur.per_engine.iter().enumerate().take(ne) {
            if let Some(x) = v.running {
                e_running[e].push((t, x));
            }
            if let Some(x) = v.waiting {
                e_waiting[e].push((t, x));
            }
            if let Some(k) = v.kv_usage {
                e_kv_peak[e] = fold(e_kv_peak[e], Some(k * FRACTION_TO_PCT), f64::max);
            }
        }
        if let Some(v) = cur.kv_usage {
            kv.push((t, v * FRACTION_TO_PCT));
            kv_peak = fold(kv_peak, Some(v * FRACTION_TO_PCT), f64::max);
        }
        if i == 0 {
            std::mem::swap(&mut first, &mut cur);
        }
    }
    let two = n >= 2;
    let last = if two { &cur } else { &first };
    let (fs, ls) = (inp.scrapes.first(), inp.scrapes.last());
    let duration_s = match (fs, ls) {
        (Some(a), Some(b)) if two => {
            Some((b.meta.completed_mono.0 - a.meta.completed_mono.0) as f64 / 1e9)
        }
        _ => None,
    };
    let mut sums = [CounterSum::default(); CounterKind::ALL.len()];
    let mut e_preempt = vec![CounterSum::default(); ne];
    for (cs, track) in r.counters.iter().zip(&tracks) {
        sums[cs.kind as usize].add(track);
        if cs.kind == CounterKind::Preemptions {
            if let Some(e) = cs.engine.and_then(|e| e_preempt.get_mut(usize::from(e))) {
                e.add(track);
            }
        }
    }
    let track = |c: CounterKind| &sums[c as usize];
    let d = |c: CounterKind| track(c).delta;
    let rate = |c: CounterKind| counter_rate(track(c).delta, track(c).span_s());
    let (gen, prompt, reqs, pre) = (
        d(CounterKind::GenerationTokens),
        d(CounterKind::PromptTokens),
        d(CounterKind::RequestSuccess),
        d(CounterKind::Preemptions),
    );
    let first_reset_mono = first_reset_t.map(MonoNs);
    let (hits, queries) = (d(CounterKind::PrefixHits), d(CounterKind::PrefixQueries));
    let hit_pct = match (hits, queries) {
        (Some(h), Some(q)) if q > 0.0 => Some(h / q * FRACTION_TO_PCT),
        _ => None,
    };
    let mut w = Window {
        index: inp.index,
        start_mono: inp.start,
        end_mono: inp.end,
        scrapes_ok: n as u32,
        scrapes_failed: inp.failed,
        first_scrape_seq: fs.map(|s| s.meta.seq),
        last_scrape_seq: ls.map(|s| s.meta.seq),
        first_scrape_mono: fs.map(|s| s.meta.completed_mono),
        last_scrape_mono: ls.map(|s| s.meta.completed_mono),
        duration_s,
        running_last: if n > 0 { last.running } else { None },
        running_mean: time_weighted_mean(&running),
        waiting_last: if n > 0 { last.waiting } else { None },
        waiting_mean: time_weighted_mean(&waiting),
        waiting_deferred_mean: time_weighted_mean(&deferred),
        engine_asleep: asleep,
        engines: (0..ne)
            .map(|e| EngineWindow {
                running_mean: time_weighted_mean(&e_running[e]),
                waiting_mean: time_weighted_mean(&e_waiting[e]),
                kv_cache_peak_pct: e_kv_peak[e],
                preemptions_delta: e_preempt[e].delta,
            })
            .collect(),
        swapped_last: last.swapped,
        kv_cache_pct_last: last.kv_usage.map(|v| v * FRACTION_TO_PCT),
        kv_cache_pct_mean: time_weighted_mean(&kv),
        kv_cache_peak_pct: kv_peak,
        max_num_seqs_last: last.max_num_seqs,
        generation_tokens_delta: gen,
        prompt_tokens_delta: prompt,
        prompt_tokens_computed_delta: d(CounterKind::PromptComputed),
        prompt_tokens_cached_delta: d(CounterKind::PromptCached),
        requests_delta: reqs,
        preemptions_delta: pre,
        generation_tokens_per_s: rate(CounterKind::GenerationTokens),
        prompt_tokens_per_s: rate(CounterKind::PromptTokens),
        prompt_tokens_computed_per_s: rate(CounterKind::PromptComputed),
        requests_per_s: rate(CounterKind::RequestSuccess),
        preemptions_per_s: rate(CounterKind::Preemptions),
        counter_resets,
        first_reset_mono,
        duplicate_samples,
        api_server_cpu_cores: rate(CounterKind::ApiServerCpu),
        host_cpu_cores: None,
        est_flops_per_gpu_per_s: rate(CounterKind::EstimatedFlops),
        est_read_bytes_per_gpu_per_s: rate(CounterKind::EstimatedReadBytes),
        generation_tokens_before_resets: track(CounterKind::GenerationTokens).before_resets,
        prompt_tokens_before_resets: track(CounterKind::PromptTokens).before_resets,
        requests_before_resets: track(CounterKind::RequestSuccess).before_resets,
        preemptions_before_resets: track(CounterKind::Preemptions).before_resets,
        generation_tokens_total: last.counter(CounterKind::GenerationTokens),
        prompt_tokens_total: last.counter(CounterKind::PromptTokens),
        requests_total: last.counter(CounterKind::RequestSuccess),
        preemptions_total: last.counter(CounterKind::Preemptions),
        prefix_hits_delta: hits,
        prefix_queries_delta: queries,
        prefix_cache_hit_pct: hit_pct,
        ttft_s: HistWindow::default(),
        tpot_s: HistWindow::default(),
        itl_s: HistWindow::default(),
        prefill_s: HistWindow::default(),
        queue_s: HistWindow::default(),
        e2e_s: HistWindow::default(),
        prompt_tokens: HistWindow::default(),
        gpu: gpu_window(&inp.polls),
    };
    if n > 0 {
        for h in HistKind::ALL {
            *w.hist_mut(h) = hist_window(r, h, &first, last, two);
        }
    }
    w
}
