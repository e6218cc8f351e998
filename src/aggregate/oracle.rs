//! The aggregation as it was written before it became a fold: every field computed over whole
//! window lists. Kept for the tests only, as the oracle [`super::AggregateFold`] must match
//! bit for bit on any windows.

use super::*;
use crate::window::quantile::{histogram_quantile, merge_buckets, Bucket, P99};

/// Σ(value × duration) / Σ(duration) over the windows where the value exists (spec
/// "Aggregation": time-weighted mean).
fn time_weighted(windows: &[&Window], f: impl Fn(&Window) -> Option<f64>) -> Option<f64> {
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

/// ΣΔsum/ΣΔcount and merged-bucket p99 over a window list.
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

fn ms(v: Option<f64>) -> Option<f64> {
    v.map(|s| s * MS_PER_SECOND)
}

pub(super) fn aggregate_batch(set: &WindowSet) -> Aggregate {
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
        hist_aggregate_with(over, h, None)
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
