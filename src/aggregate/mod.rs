//! Windows combined into one snapshot of the recording: the spec's "Evaluable window gate"
//! (one function, [`window_gate`], used by everyone) and its "Aggregation" table.
//!
//! Which windows feed which field, per the spec's Math → "Aggregation: combining windows":
//! - active windows: time-weighted means of GPU util, power, running/waiting means and rates;
//!   histogram means as ΣΔsum/ΣΔcount; p99 from merged delta buckets (never an average of p99s);
//! - evaluable windows: KV mean (time-weighted), prefix hit rate (ΣΔhits/ΣΔqueries), prompt
//!   length mean, peaks (max of window peaks and the last evaluable landing value), state
//!   gauges (the last evaluable window's landing values);
//! - all windows: cumulative totals from the chronologically last window with a scrape.
//!
//! One extension of the spec, flagged in the output: a recording with no GPU data at all
//! cannot use the GPU arm of the active gate, so prefill-heavy windows with an empty KV cache
//! would all count as idle. There, a window with running > 0 that generated tokens counts as
//! active too (see [`window_gate`]).

pub mod host;
mod kept;

use crate::units::MS_PER_SECOND;
use crate::vllm::HistKind;
use crate::window::quantile::{histogram_quantile, merge_buckets, Bucket, P99};
use crate::window::{HistWindow, Window, WindowSet};
pub use kept::{KeptGpu, KeptHist, KeptWindow};
use serde::{Deserialize, Serialize};

/// Tier 2 KV arm: "kv_cache_pct > 30%" (spec "Data" → "Evaluable window gate").
pub const ACTIVE_KV_PCT: f64 = 30.0;
/// Tier 2 GPU arm: "gpu_util_pct > 20%" (spec "Data" → "Evaluable window gate").
pub const ACTIVE_GPU_UTIL_PCT: f64 = 20.0;

/// What the gate says about one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Tier 1 failed: no positive duration, or `running` missing.
    NotEvaluable,
    /// Evaluable, not under load.
    Idle,
    /// Evaluable and under load by the spec's tier 2.
    Active,
    /// Evaluable and counted as active only by the no-GPU extension.
    ActiveNoGpuFallback,
}

impl Gate {
    /// Tier 1 passed.
    pub fn is_evaluable(self) -> bool {
        self != Gate::NotEvaluable
    }

    /// Tier 2 passed (by the spec, or by the no-GPU extension).
    pub fn is_active(self) -> bool {
        matches!(self, Gate::Active | Gate::ActiveNoGpuFallback)
    }

    /// The name used in text output.
    pub fn label(self) -> &'static str {
        match self {
            Gate::NotEvaluable => "not evaluable",
            Gate::Idle => "idle",
            Gate::Active => "active",
            Gate::ActiveNoGpuFallback => "active (no-GPU fallback)",
        }
    }
}

/// The two-tier gate (spec "Data" → "Evaluable window gate"). Tier 1: `duration_s` present and
/// positive, and `running` present (zero is valid). Tier 2: running > 0 AND (KV > 30% OR GPU
/// util > 20%); with one arm absent only the other is evaluated; with both absent, running > 0
/// alone. `running` and KV are the window's landing (last-scrape) values, as the spec's gauge
/// treatment says; GPU util is the window's poll mean.
///
/// Extension: when `has_gpu_data` is false (the recording holds no GPU reading at all), a
/// window with running > 0 and generated tokens > 0 counts as active even with KV <= 30%.
pub fn window_gate(w: &Window, has_gpu_data: bool) -> Gate {
    let (Some(d), Some(running)) = (w.duration_s, w.running_last) else {
        return Gate::NotEvaluable;
    };
    if d <= 0.0 {
        return Gate::NotEvaluable;
    }
    // A sleeping engine (vLLM's sleep mode) serves nothing: idle, like an empty server, so its
    // windows stay out of the active averages (ours: the spec predates sleep mode).
    if running <= 0.0 || w.engine_asleep {
        return Gate::Idle;
    }
    let kv = w.kv_cache_pct_last.map(|k| k > ACTIVE_KV_PCT);
    let gpu = w.gpu.util_pct_mean.map(|u| u > ACTIVE_GPU_UTIL_PCT);
    let loaded = match (kv, gpu) {
        (None, None) => true,
        (Some(a), None) | (None, Some(a)) => a,
        (Some(a), Some(b)) => a || b,
    };
    if loaded {
        Gate::Active
    } else if !has_gpu_data && w.generation_tokens_delta.is_some_and(|g| g > 0.0) {
        Gate::ActiveNoGpuFallback
    } else {
        Gate::Idle
    }
}

/// Tier 1 alone (`window_is_evaluable` in the spec's rules).
pub fn window_is_evaluable(w: &Window) -> bool {
    window_gate(w, true).is_evaluable()
}

/// One histogram over a set of windows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HistAggregate {
    /// ΣΔsum over the windows that had both deltas.
    pub delta_sum: Option<f64>,
    /// ΣΔcount over the same windows.
    pub delta_count: Option<f64>,
    /// ΣΔsum/ΣΔcount (weighted by observations, not time); when ΣΔcount <= 0, the last
    /// window's cumulative mean, flagged.
    pub mean: Option<f64>,
    /// Whether `mean` is that cumulative fallback.
    pub mean_is_cumulative: bool,
    /// q=0.99 of the merged delta buckets.
    pub p99: Option<f64>,
    /// The merged delta buckets.
    pub buckets: Vec<Bucket>,
}

/// The aggregate snapshot of a recording (or of its `--from/--to` range).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregate {
    /// Windows listed.
    pub windows_total: u32,
    /// Windows passing tier 1.
    pub windows_evaluable: u32,
    /// Windows passing tier 2 (extension included).
    pub windows_active: u32,
    /// Of those, windows active only through the no-GPU extension.
    pub windows_active_no_gpu_fallback: u32,
    /// Whether the no-GPU extension made any window active.
    pub no_gpu_fallback_used: bool,
    /// No window is evaluable: `last_raw_window` holds the chronologically last window.
    pub all_non_evaluable: bool,
    /// The last window in full, when no window is evaluable (spec: "All windows
    /// non-evaluable → chronologically last raw window", labelled as such).
    pub last_raw_window: Option<Window>,
    /// Σ duration of active windows, seconds.
    pub active_duration_s: Option<f64>,
    /// Σ duration of evaluable windows, seconds.
    pub evaluable_duration_s: Option<f64>,

    /// GPU utilisation, percent (active, time-weighted).
    pub gpu_util_pct: Option<f64>,
    /// Memory-controller utilisation, percent (active, time-weighted).
    pub gpu_mem_util_pct: Option<f64>,
    /// GPM SM activity, percent (active, time-weighted over the windows that have it).
    pub gpu_sm_active_pct: Option<f64>,
    /// GPM SM occupancy, percent (active, time-weighted).
    pub gpu_sm_occupancy_pct: Option<f64>,
    /// GPM DRAM bandwidth use, percent of peak (active, time-weighted).
    pub gpu_dram_bw_util_pct: Option<f64>,
    /// Power draw, watts (active, time-weighted).
    pub power_w: Option<f64>,
    /// Requests running (active, time-weighted mean of window means).
    pub running_mean: Option<f64>,
    /// Requests waiting (active, time-weighted mean of window means).
    pub waiting_mean: Option<f64>,
    /// Generated tokens per second (active, time-weighted).
    pub generation_tokens_per_s: Option<f64>,
    /// Prompt tokens per second (active, time-weighted).
    pub prompt_tokens_per_s: Option<f64>,
    /// Finished requests per second (active, time-weighted).
    pub requests_per_s: Option<f64>,
    /// Preemptions per second (active, time-weighted).
    pub preemptions_per_s: Option<f64>,

    /// Time to first token, seconds (active).
    pub ttft_s: HistAggregate,
    /// Time per output token, seconds (active).
    pub tpot_s: HistAggregate,
    /// Inter-token latency, seconds (active).
    pub itl_s: HistAggregate,
    /// Prefill time, seconds (active).
    pub prefill_s: HistAggregate,
    /// Queue time, seconds (active).
    pub queue_s: HistAggregate,
    /// End-to-end latency, seconds (active).
    pub e2e_s: HistAggregate,
    /// Prompt length, tokens (evaluable).
    pub prompt_tokens: HistAggregate,
    /// TTFT mean, ms.
    pub ttft_mean_ms: Option<f64>,
    /// TTFT p99, ms.
    pub ttft_p99_ms: Option<f64>,
    /// TPOT mean, ms.
    pub tpot_mean_ms: Option<f64>,
    /// TPOT p99, ms.
    pub tpot_p99_ms: Option<f64>,
    /// Mean prompt length, tokens (`prompt_tokens_mean`, evaluable).
    pub prompt_tokens_mean: Option<f64>,

    /// KV-cache usage, percent (evaluable, time-weighted).
    pub kv_cache_pct_mean: Option<f64>,
    /// ΣΔhits over evaluable windows.
    pub prefix_hits_delta: Option<f64>,
    /// ΣΔqueries over evaluable windows.
    pub prefix_queries_delta: Option<f64>,
    /// ΣΔhits/ΣΔqueries, percent (evaluable); `None` when ΣΔqueries <= 0.
    pub prefix_cache_hit_pct: Option<f64>,
    /// Prompt tokens the engine computed per second (active, time-weighted): the prefill
    /// work actually done, cache hits excluded (`prompt_tokens_by_source`, vLLM >= 0.18).
    pub prompt_tokens_computed_per_s: Option<f64>,
    /// ΣΔcached prompt tokens / ΣΔprompt tokens, percent, over the evaluable windows that
    /// have both: prefix reuse in tokens, independent of the hit-rate counters; `None` when
    /// no prompt token was counted.
    pub prompt_tokens_cached_pct: Option<f64>,

    /// Highest KV usage, percent (evaluable).
    pub kv_cache_peak_pct: Option<f64>,
    /// Highest VRAM in use, MiB (evaluable).
    pub vram_peak_mib: Option<f64>,
    /// Highest GPU temperature, °C (evaluable).
    pub temperature_peak_c: Option<f64>,

    /// Index of the last evaluable window, whose landing values follow.
    pub last_evaluable_window: Option<u32>,
    /// Requests running at its last scrape.
    pub running_last: Option<f64>,
    /// Requests waiting at its last scrape.
    pub waiting_last: Option<f64>,
    /// KV usage at its last scrape, percent.
    pub kv_cache_pct_last: Option<f64>,
    /// `vllm:max_num_seqs` at its last scrape.
    pub max_num_seqs: Option<f64>,
    /// VRAM in use at its last poll, MiB.
    pub vram_used_mib: Option<f64>,
    /// VRAM total at its last poll, MiB.
    pub vram_total_mib: Option<f64>,
    /// Temperature at its last poll, °C.
    pub temperature_c: Option<f64>,
    /// SM clock at its last poll, MHz.
    pub sm_clock_mhz: Option<f64>,

    /// Server total of generated tokens (chronologically last window with a scrape).
    pub generation_tokens_total: Option<f64>,
    /// Server total of prompt tokens.
    pub prompt_tokens_total: Option<f64>,
    /// Server total of finished requests.
    pub requests_total: Option<f64>,
    /// Server total of preemptions.
    pub preemptions_total: Option<f64>,

    /// vLLM's estimated FLOPs per GPU per second (active, time-weighted).
    pub est_flops_per_gpu_per_s: Option<f64>,
    /// vLLM's estimated bytes read per GPU per second (active, time-weighted).
    pub est_read_bytes_per_gpu_per_s: Option<f64>,
    /// Per data-parallel engine (in `mapping.engines` order), with two or more engines.
    pub engines: Vec<EngineAggregate>,
    /// Counter resets (server restarts) seen, over all windows.
    pub counter_resets: u32,
    /// When the first one was seen, monotonic.
    pub first_reset_mono: Option<crate::units::MonoNs>,
    /// Samples skipped as repeats of a series already in the same body.
    pub duplicate_samples: u64,
}

/// One data-parallel engine over the recording: the means over active windows, the KV peak
/// over evaluable ones, the preemptions over all.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EngineAggregate {
    /// Requests running, time-weighted mean (active windows).
    pub running_mean: Option<f64>,
    /// Requests waiting, time-weighted mean (active windows).
    pub waiting_mean: Option<f64>,
    /// Highest KV-cache usage, percent (evaluable windows).
    pub kv_cache_peak_pct: Option<f64>,
    /// Preemptions seen (all windows).
    pub preemptions: Option<f64>,
}

/// A time-weighted mean being accumulated: Σ(value × duration) / Σ(duration) over the windows
/// where the value exists and the duration is positive (spec "Aggregation": time-weighted
/// mean). The one place that formula is written.
#[derive(Debug, Clone, Copy, Default)]
struct TimeWeighted {
    num: f64,
    den: f64,
}

impl TimeWeighted {
    fn add(&mut self, v: Option<f64>, duration_s: Option<f64>) {
        if let (Some(v), Some(d)) = (v, duration_s.filter(|d| *d > 0.0)) {
            self.num += v * d;
            self.den += d;
        }
    }

    fn mean(&self) -> Option<f64> {
        (self.den > 0.0).then(|| self.num / self.den)
    }
}

/// The time-weighted mean (Σ value × duration / Σ duration) over a list of windows (the
/// rules' means over the windows that fired).
pub fn time_weighted<W: Timed>(windows: &[&W], f: impl Fn(&W) -> Option<f64>) -> Option<f64> {
    let mut t = TimeWeighted::default();
    for w in windows {
        t.add(f(w), w.duration_s());
    }
    t.mean()
}

/// What [`time_weighted`] weighs by: a window's first→last scrape span.
pub trait Timed {
    /// The window's duration, seconds.
    fn duration_s(&self) -> Option<f64>;
}

impl Timed for Window {
    fn duration_s(&self) -> Option<f64> {
        self.duration_s
    }
}

/// Adds `v` to a sum that starts with its first value (`reduce(+)`: a missing value is not 0).
fn add_to(sum: &mut Option<f64>, v: Option<f64>) {
    if let Some(v) = v {
        *sum = Some(sum.map_or(v, |s| s + v));
    }
}

/// Keeps the largest of the values seen (`reduce(f64::max)`).
fn max_into(max: &mut Option<f64>, v: Option<f64>) {
    if let Some(v) = v {
        *max = Some(max.map_or(v, |m| m.max(v)));
    }
}

/// Which windows feed a recording-level histogram (spec "Aggregation"): prompt length is a
/// property of every evaluable window's requests, the latencies only of the active ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HistScope {
    Evaluable,
    Active,
}

impl HistScope {
    fn of(h: HistKind) -> HistScope {
        match h {
            HistKind::PromptTokens => HistScope::Evaluable,
            _ => HistScope::Active,
        }
    }

    fn admits(self, g: Gate) -> bool {
        match self {
            HistScope::Evaluable => g.is_evaluable(),
            HistScope::Active => g.is_active(),
        }
    }
}

/// One recording-level histogram being accumulated: ΣΔsum/ΣΔcount and the merged delta
/// buckets (spec "Aggregation": histogram means and p99, never an average of p99s); windows
/// lacking a delta (a reset) are left out of both sums.
#[derive(Debug, Clone, Default)]
struct HistFold {
    delta_sum: Option<f64>,
    delta_count: Option<f64>,
    buckets: Vec<Bucket>,
    /// The last admitted window's own mean (the cumulative fallback when ΣΔcount <= 0).
    last_mean: Option<f64>,
}

impl HistFold {
    fn add(&mut self, hw: &HistWindow) {
        if let (Some(s), Some(c)) = (hw.delta_sum, hw.delta_count) {
            self.delta_sum = Some(self.delta_sum.unwrap_or(0.0) + s);
            self.delta_count = Some(self.delta_count.unwrap_or(0.0) + c);
        }
        if !hw.buckets.is_empty() {
            merge_buckets(&mut self.buckets, &hw.buckets);
        }
        if hw.mean.is_some() {
            self.last_mean = hw.mean;
        }
    }

    fn finish(self) -> HistAggregate {
        let mut a = HistAggregate {
            delta_sum: self.delta_sum,
            delta_count: self.delta_count,
            buckets: self.buckets,
            ..HistAggregate::default()
        };
        match (a.delta_sum, a.delta_count) {
            (Some(s), Some(c)) if c > 0.0 => a.mean = Some(s / c),
            _ => {
                if self.last_mean.is_some() {
                    a.mean = self.last_mean;
                    a.mean_is_cumulative = true;
                }
            }
        }
        a.p99 = histogram_quantile(P99, &a.buckets);
        a
    }
}

/// One data-parallel engine being accumulated.
#[derive(Debug, Clone, Default)]
struct EngineFold {
    running: TimeWeighted,
    waiting: TimeWeighted,
    kv_cache_peak_pct: Option<f64>,
}

/// The landing values of the last evaluable window (spec "Aggregation": state gauges).
#[derive(Debug, Clone, Copy, Default)]
struct Landing {
    index: u32,
    running: Option<f64>,
    waiting: Option<f64>,
    kv_cache_pct: Option<f64>,
    max_num_seqs: Option<f64>,
    vram_used_mib: Option<f64>,
    vram_total_mib: Option<f64>,
    temperature_c: Option<f64>,
    sm_clock_mhz: Option<f64>,
}

impl Landing {
    fn of(w: &Window) -> Landing {
        Landing {
            index: w.index,
            running: w.running_last,
            waiting: w.waiting_last,
            kv_cache_pct: w.kv_cache_pct_last,
            max_num_seqs: w.max_num_seqs_last,
            vram_used_mib: w.gpu.vram_used_mib_last,
            vram_total_mib: w.gpu.vram_total_mib_last,
            temperature_c: w.gpu.temperature_c_last,
            sm_clock_mhz: w.gpu.sm_clock_mhz_last,
        }
    }
}

/// What depends on the gate, for one answer of "has the recording GPU data".
#[derive(Debug, Clone, Default)]
struct GatedFold {
    evaluable: u32,
    active: u32,
    fallback: u32,
    active_duration_s: Option<f64>,
    evaluable_duration_s: Option<f64>,
    gpu_util: TimeWeighted,
    gpu_mem_util: TimeWeighted,
    sm_active: TimeWeighted,
    sm_occupancy: TimeWeighted,
    dram_bw: TimeWeighted,
    power: TimeWeighted,
    running: TimeWeighted,
    waiting: TimeWeighted,
    generation_per_s: TimeWeighted,
    prompt_per_s: TimeWeighted,
    requests_per_s: TimeWeighted,
    preemptions_per_s: TimeWeighted,
    prompt_computed_per_s: TimeWeighted,
    est_flops: TimeWeighted,
    est_read_bytes: TimeWeighted,
    kv_cache_pct: TimeWeighted,
    hists: [HistFold; HistKind::ALL.len()],
    hits: Option<f64>,
    queries: Option<f64>,
    cached: Option<f64>,
    prompted: Option<f64>,
    kv_cache_peak_pct: Option<f64>,
    vram_peak_mib: Option<f64>,
    temperature_peak_c: Option<f64>,
    landing: Option<Landing>,
    engines: Vec<EngineFold>,
}

impl GatedFold {
    fn add(&mut self, w: &Window, g: Gate) {
        for (h, acc) in HistKind::ALL.into_iter().zip(self.hists.iter_mut()) {
            if HistScope::of(h).admits(g) {
                acc.add(w.hist(h));
            }
        }
        let d = w.duration_s;
        if g.is_active() {
            self.active += 1;
            if g == Gate::ActiveNoGpuFallback {
                self.fallback += 1;
            }
            add_to(&mut self.active_duration_s, d);
            self.gpu_util.add(w.gpu.util_pct_mean, d);
            self.gpu_mem_util.add(w.gpu.mem_util_pct_mean, d);
            self.sm_active.add(w.gpu.sm_active_pct_mean, d);
            self.sm_occupancy.add(w.gpu.sm_occupancy_pct_mean, d);
            self.dram_bw.add(w.gpu.dram_bw_util_pct_mean, d);
            self.power.add(w.gpu.power_w_mean, d);
            self.running.add(w.running_mean, d);
            self.waiting.add(w.waiting_mean, d);
            self.generation_per_s.add(w.generation_tokens_per_s, d);
            self.prompt_per_s.add(w.prompt_tokens_per_s, d);
            self.requests_per_s.add(w.requests_per_s, d);
            self.preemptions_per_s.add(w.preemptions_per_s, d);
            self.prompt_computed_per_s
                .add(w.prompt_tokens_computed_per_s, d);
            self.est_flops.add(w.est_flops_per_gpu_per_s, d);
            self.est_read_bytes.add(w.est_read_bytes_per_gpu_per_s, d);
            for (e, acc) in self.engines.iter_mut().enumerate() {
                let ew = w.engines.get(e);
                acc.running.add(ew.and_then(|x| x.running_mean), d);
                acc.waiting.add(ew.and_then(|x| x.waiting_mean), d);
            }
        }
        if g.is_evaluable() {
            self.evaluable += 1;
            add_to(&mut self.evaluable_duration_s, d);
            self.kv_cache_pct.add(w.kv_cache_pct_mean, d);
            let prefix = w.prefix_hits_delta.zip(w.prefix_queries_delta);
            add_to(&mut self.hits, prefix.map(|p| p.0));
            add_to(&mut self.queries, prefix.map(|p| p.1));
            let cached = w.prompt_tokens_cached_delta.zip(w.prompt_tokens_delta);
            add_to(&mut self.cached, cached.map(|p| p.0));
            add_to(&mut self.prompted, cached.map(|p| p.1));
            max_into(&mut self.kv_cache_peak_pct, w.kv_cache_peak_pct);
            max_into(&mut self.vram_peak_mib, w.gpu.vram_peak_mib);
            max_into(&mut self.temperature_peak_c, w.gpu.temperature_peak_c);
            for (e, acc) in self.engines.iter_mut().enumerate() {
                let peak = w.engines.get(e).and_then(|x| x.kv_cache_peak_pct);
                max_into(&mut acc.kv_cache_peak_pct, peak);
            }
            self.landing = Some(Landing::of(w));
        }
    }
}

/// A recording's windows folded into its [`Aggregate`] one at a time, in index order, so that
/// the windows need not be kept for it: a week of 2 s windows is 302,400 of them, 1.6 KB each.
/// Whether the recording has GPU data (which the gate reads) is known only once every poll is
/// read, so both answers are folded; [`AggregateFold::finish`] takes the right one. Every
/// figure is computed in the same order, by the same operations, as over the whole list, so
/// [`aggregate`] of the windows and the fold of them agree to the bit.
#[derive(Debug, Clone, Default)]
pub struct AggregateFold {
    total: u32,
    /// By `has_gpu_data as usize`.
    gated: [GatedFold; 2],
    /// The last window, while none is evaluable (tier 1 does not read GPU data).
    last_raw: Option<Window>,
    any_evaluable: bool,
    /// The last window with a good scrape: its cumulative totals.
    totals: Option<[Option<f64>; 4]>,
    before_resets: [f64; 4],
    engine_preemptions: Vec<Option<f64>>,
    counter_resets: u32,
    first_reset_mono: Option<crate::units::MonoNs>,
    duplicate_samples: u64,
}

impl AggregateFold {
    /// Folds the next window (index order). Reads its buckets: fold a window before freeing
    /// them.
    pub fn add(&mut self, w: &Window) {
        if self.total == 0 {
            // The engines are those of the first window, as every window lists the same.
            let n = w.engines.len();
            for g in &mut self.gated {
                g.engines = vec![EngineFold::default(); n];
            }
            self.engine_preemptions = vec![None; n];
            // The sums of what each counter had counted before a reset start as an empty
            // `Iterator::sum` does, so that an all-zero sum has the same sign.
            self.before_resets = [std::iter::empty::<f64>().sum(); 4];
        }
        self.total += 1;
        for (gpu, acc) in [false, true].into_iter().zip(&mut self.gated) {
            acc.add(w, window_gate(w, gpu));
        }
        if window_is_evaluable(w) {
            self.any_evaluable = true;
            self.last_raw = None;
        } else if !self.any_evaluable {
            self.last_raw = Some(w.clone());
        }
        if w.last_scrape_seq.is_some() {
            self.totals = Some([
                w.generation_tokens_total,
                w.prompt_tokens_total,
                w.requests_total,
                w.preemptions_total,
            ]);
        }
        let before = [
            w.generation_tokens_before_resets,
            w.prompt_tokens_before_resets,
            w.requests_before_resets,
            w.preemptions_before_resets,
        ];
        for (acc, v) in self.before_resets.iter_mut().zip(before) {
            *acc += v;
        }
        for (e, acc) in self.engine_preemptions.iter_mut().enumerate() {
            add_to(acc, w.engines.get(e).and_then(|x| x.preemptions_delta));
        }
        self.counter_resets += w.counter_resets;
        if self.first_reset_mono.is_none() {
            self.first_reset_mono = w.first_reset_mono;
        }
        self.duplicate_samples += u64::from(w.duplicate_samples);
    }

    /// The aggregate of every window added, for a recording with (or without) GPU data.
    pub fn finish(self, has_gpu_data: bool) -> Aggregate {
        let [without, with] = self.gated;
        let g = if has_gpu_data { with } else { without };
        let all_non_evaluable = g.evaluable == 0;
        let lv = |f: fn(&Landing) -> Option<f64>| g.landing.as_ref().and_then(f);
        let peak = |max: Option<f64>, last: Option<f64>| {
            let mut m = max;
            max_into(&mut m, last);
            m
        };
        let [ttft, tpot, itl, prefill, queue, prompt, e2e] = g.hists.map(HistFold::finish);
        let total = |i: usize| {
            self.totals
                .and_then(|t| t[i])
                .map(|t| t + self.before_resets[i])
        };
        let (hits, queries, cached, prompted) = (g.hits, g.queries, g.cached, g.prompted);
        Aggregate {
            windows_total: self.total,
            windows_evaluable: g.evaluable,
            windows_active: g.active,
            windows_active_no_gpu_fallback: g.fallback,
            no_gpu_fallback_used: g.fallback > 0,
            all_non_evaluable,
            last_raw_window: if all_non_evaluable {
                self.last_raw
            } else {
                None
            },
            active_duration_s: g.active_duration_s,
            evaluable_duration_s: g.evaluable_duration_s,

            gpu_util_pct: g.gpu_util.mean(),
            gpu_mem_util_pct: g.gpu_mem_util.mean(),
            gpu_sm_active_pct: g.sm_active.mean(),
            gpu_sm_occupancy_pct: g.sm_occupancy.mean(),
            gpu_dram_bw_util_pct: g.dram_bw.mean(),
            power_w: g.power.mean(),
            running_mean: g.running.mean(),
            waiting_mean: g.waiting.mean(),
            generation_tokens_per_s: g.generation_per_s.mean(),
            prompt_tokens_per_s: g.prompt_per_s.mean(),
            requests_per_s: g.requests_per_s.mean(),
            preemptions_per_s: g.preemptions_per_s.mean(),

            ttft_mean_ms: ms(ttft.mean),
            ttft_p99_ms: ms(ttft.p99),
            tpot_mean_ms: ms(tpot.mean),
            tpot_p99_ms: ms(tpot.p99),
            prompt_tokens_mean: prompt.mean,
            ttft_s: ttft,
            tpot_s: tpot,
            itl_s: itl,
            prefill_s: prefill,
            queue_s: queue,
            e2e_s: e2e,
            prompt_tokens: prompt,

            kv_cache_pct_mean: g.kv_cache_pct.mean(),
            prefix_hits_delta: hits,
            prefix_queries_delta: queries,
            prefix_cache_hit_pct: match (hits, queries) {
                (Some(h), Some(q)) if q > 0.0 => Some(h / q * 100.0),
                _ => None,
            },
            prompt_tokens_computed_per_s: g.prompt_computed_per_s.mean(),
            prompt_tokens_cached_pct: match (cached, prompted) {
                (Some(c), Some(p)) if p > 0.0 => Some(c / p * 100.0),
                _ => None,
            },

            kv_cache_peak_pct: peak(g.kv_cache_peak_pct, lv(|l| l.kv_cache_pct)),
            vram_peak_mib: peak(g.vram_peak_mib, lv(|l| l.vram_used_mib)),
            temperature_peak_c: peak(g.temperature_peak_c, lv(|l| l.temperature_c)),

            last_evaluable_window: g.landing.map(|l| l.index),
            running_last: lv(|l| l.running),
            waiting_last: lv(|l| l.waiting),
            kv_cache_pct_last: lv(|l| l.kv_cache_pct),
            max_num_seqs: lv(|l| l.max_num_seqs),
            vram_used_mib: lv(|l| l.vram_used_mib),
            vram_total_mib: lv(|l| l.vram_total_mib),
            temperature_c: lv(|l| l.temperature_c),
            sm_clock_mhz: lv(|l| l.sm_clock_mhz),

            // The spec takes totals from the last window (the server's own counters). Across a
            // restart that counter started again from 0, so what it had counted before each
            // reset is added back: the totals are what the recording saw.
            generation_tokens_total: total(0),
            prompt_tokens_total: total(1),
            requests_total: total(2),
            preemptions_total: total(3),
            est_flops_per_gpu_per_s: g.est_flops.mean(),
            est_read_bytes_per_gpu_per_s: g.est_read_bytes.mean(),
            engines: g
                .engines
                .iter()
                .zip(self.engine_preemptions)
                .map(|(e, preemptions)| EngineAggregate {
                    running_mean: e.running.mean(),
                    waiting_mean: e.waiting.mean(),
                    kv_cache_peak_pct: e.kv_cache_peak_pct,
                    preemptions,
                })
                .collect(),
            counter_resets: self.counter_resets,
            first_reset_mono: self.first_reset_mono,
            duplicate_samples: self.duplicate_samples,
        }
    }
}

fn ms(v: Option<f64>) -> Option<f64> {
    v.map(|s| s * MS_PER_SECOND)
}

/// Combines a recording's windows into one snapshot: [`AggregateFold`] over every window.
pub fn aggregate(set: &WindowSet) -> Aggregate {
    let mut fold = AggregateFold::default();
    for w in &set.windows {
        fold.add(w);
    }
    fold.finish(set.has_gpu_data)
}

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;
