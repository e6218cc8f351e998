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

use crate::units::MS_PER_SECOND;
use crate::vllm::HistKind;
use crate::window::quantile::{histogram_quantile, merge_buckets, Bucket, P99};
use crate::window::{Window, WindowSet};
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

/// Σ(value × duration) / Σ(duration) over the windows where the value exists (spec
/// "Aggregation": time-weighted mean).
pub fn time_weighted(windows: &[&Window], f: impl Fn(&Window) -> Option<f64>) -> Option<f64> {
    let (mut num, mut den) = (0.0, 0.0);
    for w in windows {
        if let (Some(v), Some(d)) = (f(w), w.duration_s.filter(|d| *d > 0.0)) {
            num += v * d;
            den += d;
        }
    }
    (den > 0.0).then(|| num / den)
}

fn sum_of(windows: &[&Window], f: impl Fn(&Window) -> Option<f64>) -> Option<f64> {
    windows.iter().filter_map(|w| f(w)).reduce(|a, b| a + b)
}

fn max_of(it: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    it.flatten().reduce(f64::max)
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

/// ΣΔsum/ΣΔcount and merged-bucket p99 over a window set (spec "Aggregation": histogram means
/// and p99). Windows lacking a delta (reset) are left out of both sums.
pub fn hist_aggregate(windows: &[&Window], h: HistKind) -> HistAggregate {
    hist_aggregate_with(windows, h, None)
}

/// [`hist_aggregate`], with the windows' buckets merged already (by a [`BucketFold`]) when
/// `merged` is given: the windows' own buckets are then not read.
fn hist_aggregate_with(
    windows: &[&Window],
    h: HistKind,
    merged: Option<&[Bucket]>,
) -> HistAggregate {
    let mut a = HistAggregate::default();
    for w in windows {
        let hw = w.hist(h);
        if let (Some(s), Some(c)) = (hw.delta_sum, hw.delta_count) {
            a.delta_sum = Some(a.delta_sum.unwrap_or(0.0) + s);
            a.delta_count = Some(a.delta_count.unwrap_or(0.0) + c);
        }
        if merged.is_none() && !hw.buckets.is_empty() {
            merge_buckets(&mut a.buckets, &hw.buckets);
        }
    }
    if let Some(m) = merged {
        a.buckets = m.to_vec();
    }
    match (a.delta_sum, a.delta_count) {
        (Some(s), Some(c)) if c > 0.0 => a.mean = Some(s / c),
        _ => {
            if let Some(last) = windows
                .iter()
                .rev()
                .map(|w| w.hist(h))
                .find(|hw| hw.mean.is_some())
            {
                a.mean = last.mean;
                a.mean_is_cumulative = true;
            }
        }
    }
    a.p99 = histogram_quantile(P99, &a.buckets);
    a
}

/// The windows' delta buckets merged window by window as the windows are computed, so that a
/// long recording's windows need not keep their own (a 2 s window of a vLLM server holds about
/// 1.4 KB of them; a week has 302,400 windows). It merges, in window order, what [`aggregate`]
/// would merge: as whether the recording has GPU data (which the gate reads) is known only
/// once every poll is read, it keeps both answers. [`aggregate_folded`] then gives
/// [`aggregate`]'s figures exactly.
#[derive(Debug, Clone, Default)]
pub struct BucketFold {
    /// `merged[has_gpu_data as usize][slot]`, slots in [`HistKind::ALL`] order.
    merged: [[Vec<Bucket>; HistKind::ALL.len()]; 2],
}

impl BucketFold {
    /// Merges one window's buckets; windows must come in index order.
    pub fn add(&mut self, w: &Window) {
        for (gpu, merged) in [false, true].into_iter().zip(&mut self.merged) {
            let g = window_gate(w, gpu);
            for (h, acc) in HistKind::ALL.into_iter().zip(merged.iter_mut()) {
                let b = &w.hist(h).buckets;
                if HistScope::of(h).admits(g) && !b.is_empty() {
                    merge_buckets(acc, b);
                }
            }
        }
    }

    fn of(&self, has_gpu_data: bool, h: HistKind) -> &[Bucket] {
        let slot = HistKind::ALL.iter().position(|k| *k == h).unwrap_or(0);
        &self.merged[usize::from(has_gpu_data)][slot]
    }
}

fn ms(v: Option<f64>) -> Option<f64> {
    v.map(|s| s * MS_PER_SECOND)
}

/// Combines a recording's windows into one snapshot.
pub fn aggregate(set: &WindowSet) -> Aggregate {
    aggregate_with(set, None)
}

/// [`aggregate`] of windows whose buckets `fold` merged as they were computed (every window
/// of `set`, in order): the windows may have dropped their buckets since.
pub fn aggregate_folded(set: &WindowSet, fold: &BucketFold) -> Aggregate {
    aggregate_with(set, Some(fold))
}

fn aggregate_with(set: &WindowSet, fold: Option<&BucketFold>) -> Aggregate {
    let gates: Vec<Gate> = set
        .windows
        .iter()
        .map(|w| window_gate(w, set.has_gpu_data))
        .collect();
    let pick = |f: fn(Gate) -> bool| -> Vec<&Window> {
        set.windows
            .iter()
            .zip(&gates)
            .filter(|(_, g)| f(**g))
            .map(|(w, _)| w)
            .collect()
    };
    let active = pick(Gate::is_active);
    let evaluable = pick(Gate::is_evaluable);
    let fallback_n = gates
        .iter()
        .filter(|g| **g == Gate::ActiveNoGpuFallback)
        .count() as u32;
    let last_eval = evaluable.last().copied();
    let all_non_evaluable = evaluable.is_empty();
    // Cumulative totals: the last window that has a good scrape (a trailing window may hold
    // only failed attempts).
    let last_seen = set
        .windows
        .iter()
        .rev()
        .find(|w| w.last_scrape_seq.is_some());
    let all = &set.windows;

    let hist = |h: HistKind| {
        let over = match HistScope::of(h) {
            HistScope::Evaluable => &evaluable,
            HistScope::Active => &active,
        };
        hist_aggregate_with(over, h, fold.map(|f| f.of(set.has_gpu_data, h)))
    };
    let ttft = hist(HistKind::Ttft);
    let tpot = hist(HistKind::Tpot);
    let prompt = hist(HistKind::PromptTokens);
    let hits = sum_of(&evaluable, |w| {
        w.prefix_hits_delta.zip(w.prefix_queries_delta).map(|p| p.0)
    });
    let queries = sum_of(&evaluable, |w| {
        w.prefix_hits_delta.zip(w.prefix_queries_delta).map(|p| p.1)
    });
    let cached = sum_of(&evaluable, |w| {
        w.prompt_tokens_cached_delta
            .zip(w.prompt_tokens_delta)
            .map(|p| p.0)
    });
    let prompted = sum_of(&evaluable, |w| {
        w.prompt_tokens_cached_delta
            .zip(w.prompt_tokens_delta)
            .map(|p| p.1)
    });
    let lv = |f: fn(&Window) -> Option<f64>| last_eval.and_then(f);

    Aggregate {
        windows_total: set.windows.len() as u32,
        windows_evaluable: evaluable.len() as u32,
        windows_active: active.len() as u32,
        windows_active_no_gpu_fallback: fallback_n,
        no_gpu_fallback_used: fallback_n > 0,
        all_non_evaluable,
        last_raw_window: if all_non_evaluable {
            set.windows.last().cloned()
        } else {
            None
        },
        active_duration_s: sum_of(&active, |w| w.duration_s),
        evaluable_duration_s: sum_of(&evaluable, |w| w.duration_s),

        gpu_util_pct: time_weighted(&active, |w| w.gpu.util_pct_mean),
        gpu_mem_util_pct: time_weighted(&active, |w| w.gpu.mem_util_pct_mean),
        gpu_sm_active_pct: time_weighted(&active, |w| w.gpu.sm_active_pct_mean),
        gpu_sm_occupancy_pct: time_weighted(&active, |w| w.gpu.sm_occupancy_pct_mean),
        gpu_dram_bw_util_pct: time_weighted(&active, |w| w.gpu.dram_bw_util_pct_mean),
        power_w: time_weighted(&active, |w| w.gpu.power_w_mean),
        running_mean: time_weighted(&active, |w| w.running_mean),
        waiting_mean: time_weighted(&active, |w| w.waiting_mean),
        generation_tokens_per_s: time_weighted(&active, |w| w.generation_tokens_per_s),
        prompt_tokens_per_s: time_weighted(&active, |w| w.prompt_tokens_per_s),
        requests_per_s: time_weighted(&active, |w| w.requests_per_s),
        preemptions_per_s: time_weighted(&active, |w| w.preemptions_per_s),

        ttft_mean_ms: ms(ttft.mean),
        ttft_p99_ms: ms(ttft.p99),
        tpot_mean_ms: ms(tpot.mean),
        tpot_p99_ms: ms(tpot.p99),
        prompt_tokens_mean: prompt.mean,
        ttft_s: ttft,
        tpot_s: tpot,
        itl_s: hist(HistKind::Itl),
        prefill_s: hist(HistKind::Prefill),
        queue_s: hist(HistKind::Queue),
        e2e_s: hist(HistKind::E2e),
        prompt_tokens: prompt,

        kv_cache_pct_mean: time_weighted(&evaluable, |w| w.kv_cache_pct_mean),
        prefix_hits_delta: hits,
        prefix_queries_delta: queries,
        prefix_cache_hit_pct: match (hits, queries) {
            (Some(h), Some(q)) if q > 0.0 => Some(h / q * 100.0),
            _ => None,
        },
        prompt_tokens_computed_per_s: time_weighted(&active, |w| w.prompt_tokens_computed_per_s),
        prompt_tokens_cached_pct: match (cached, prompted) {
            (Some(c), Some(p)) if p > 0.0 => Some(c / p * 100.0),
            _ => None,
        },

        kv_cache_peak_pct: max_of(
            evaluable
                .iter()
                .map(|w| w.kv_cache_peak_pct)
                .chain([lv(|w| w.kv_cache_pct_last)]),
        ),
        vram_peak_mib: max_of(
            evaluable
                .iter()
                .map(|w| w.gpu.vram_peak_mib)
                .chain([lv(|w| w.gpu.vram_used_mib_last)]),
        ),
        temperature_peak_c: max_of(
            evaluable
                .iter()
                .map(|w| w.gpu.temperature_peak_c)
                .chain([lv(|w| w.gpu.temperature_c_last)]),
        ),

        last_evaluable_window: last_eval.map(|w| w.index),
        running_last: lv(|w| w.running_last),
        waiting_last: lv(|w| w.waiting_last),
        kv_cache_pct_last: lv(|w| w.kv_cache_pct_last),
        max_num_seqs: lv(|w| w.max_num_seqs_last),
        vram_used_mib: lv(|w| w.gpu.vram_used_mib_last),
        vram_total_mib: lv(|w| w.gpu.vram_total_mib_last),
        temperature_c: lv(|w| w.gpu.temperature_c_last),
        sm_clock_mhz: lv(|w| w.gpu.sm_clock_mhz_last),

        // The spec takes totals from the last window (the server's own counters). Across a
        // restart that counter started again from 0, so what it had counted before each
        // reset is added back: the totals are what the recording saw.
        generation_tokens_total: last_seen.and_then(|w| w.generation_tokens_total).map(|t| {
            t + all
                .iter()
                .map(|w| w.generation_tokens_before_resets)
                .sum::<f64>()
        }),
        prompt_tokens_total: last_seen.and_then(|w| w.prompt_tokens_total).map(|t| {
            t + all
                .iter()
                .map(|w| w.prompt_tokens_before_resets)
                .sum::<f64>()
        }),
        requests_total: last_seen
            .and_then(|w| w.requests_total)
            .map(|t| t + all.iter().map(|w| w.requests_before_resets).sum::<f64>()),
        preemptions_total: last_seen
            .and_then(|w| w.preemptions_total)
            .map(|t| t + all.iter().map(|w| w.preemptions_before_resets).sum::<f64>()),
        est_flops_per_gpu_per_s: time_weighted(&active, |w| w.est_flops_per_gpu_per_s),
        est_read_bytes_per_gpu_per_s: time_weighted(&active, |w| w.est_read_bytes_per_gpu_per_s),
        engines: (0..all.first().map_or(0, |w| w.engines.len()))
            .map(|e| EngineAggregate {
                running_mean: time_weighted(&active, |w| w.engines.get(e)?.running_mean),
                waiting_mean: time_weighted(&active, |w| w.engines.get(e)?.waiting_mean),
                kv_cache_peak_pct: evaluable
                    .iter()
                    .filter_map(|w| w.engines.get(e)?.kv_cache_peak_pct)
                    .reduce(f64::max),
                preemptions: all
                    .iter()
                    .filter_map(|w| w.engines.get(e)?.preemptions_delta)
                    .reduce(|a, b| a + b),
            })
            .collect(),
        counter_resets: all.iter().map(|w| w.counter_resets).sum(),
        first_reset_mono: all.iter().find_map(|w| w.first_reset_mono),
        duplicate_samples: all.iter().map(|w| u64::from(w.duplicate_samples)).sum(),
    }
}

#[cfg(test)]
mod tests;
