//! The report's recording, inputs, windows and metrics sections, built from the windows, the
//! aggregate and the resolved inputs.
//!
//! No clock, no environment, no `HashMap`; every list is built in a fixed order (manifest
//! order, alias-table order, code order), and every float is computed by the same sequence
//! of operations on the same inputs, so identical inputs give identical `f64`s.

use super::AnalyzeConfig;
use crate::aggregate::{window_gate, Aggregate, HistAggregate};
use crate::inputs::ResolvedInputs;
use crate::recording::{Recording, ScrapeMeta};
use crate::report::*;
use crate::units::{bytes_to_gb, MS_PER_SECOND};
use crate::vllm::{Quantity, VllmMapping};
use crate::window::{TimeBound, Window, WindowSet};
use std::path::Path;

/// `Some(v)` only for finite values: NaN and infinity never reach the report (serde_json would
/// write them as `null`, and a round trip would change the value).
pub(super) fn fin(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

pub(super) fn push(un: &mut Vec<Unavailable>, what: &str, why: impl Into<String>) {
    un.push(Unavailable {
        what: what.to_string(),
        why: why.into(),
    });
}

fn bound_label(b: &TimeBound) -> String {
    match b {
        TimeBound::Offset(m) => format!("offset {:.3} s", m.as_secs_f64()),
        TimeBound::Wall(w) => w.to_rfc3339_millis(),
    }
}

// ---------------------------------------------------------------------------------------------
// Recording facts
// ---------------------------------------------------------------------------------------------

/// How far apart a scrape's wall clock and the start anchor's wall clock plus its monotonic
/// offset are, seconds: the report warns of the largest over the recording's scrapes when it
/// exceeds [`CLOCK_STEP_WARN_S`].
pub(super) fn clock_disagreement_s(started_at_ns: i64, m: &ScrapeMeta) -> f64 {
    let expected = started_at_ns.saturating_add(m.completed_mono.0);
    ((m.completed_at.0.saturating_sub(expected)) as f64 / 1e9).abs()
}

/// Wall and monotonic clocks may disagree by this much before the report says so, seconds
/// (issue "Nothing counted that was not measured": 1 s). NTP slews a few ms; a second is a step.
const CLOCK_STEP_WARN_S: f64 = 1.0;

/// One sentence per kind of loss or repair, in a fixed order.
fn data_warnings(
    rec: &Recording,
    set: &WindowSet,
    agg: &Aggregate,
    clock_step_s: Option<f64>,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(imp) = &rec.manifest.import {
        out.push(format!(
            "imported from {} ({}) at a {:.3} s step, not recorded: {:.0} s windows, one \
             sample per series per step",
            imp.source,
            imp.server_url,
            imp.step_ms as f64 / MS_PER_SECOND,
            set.window_ns as f64 / 1e9
        ));
        if let Some(missing) = &imp.incomplete {
            out.push(format!(
                "the import stopped before the end; not imported: {missing}"
            ));
        }
    }
    for f in rec.problems() {
        let name = f.path.file_name().map_or_else(
            || f.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        out.push(format!(
            "file {name}: {}",
            f.problem.as_deref().unwrap_or("unreadable")
        ));
    }
    if set.scrapes_rows_lost > 0 {
        out.push(format!(
            "{} scrape(s) lost some or all of their samples (see the files above): counted as \
             failed, so no figure rests on a partial body",
            set.scrapes_rows_lost
        ));
    }
    if set.scrapes_empty > 0 {
        out.push(format!(
            "{} scrape(s) answered 200 with an empty body: counted as failed",
            set.scrapes_empty
        ));
    }
    if agg.duplicate_samples > 0 {
        out.push(format!(
            "{} sample(s) repeated a series already in the same body: the first of each was \
             used",
            agg.duplicate_samples
        ));
    }
    if let Some(step) = clock_step_s.filter(|d| *d > CLOCK_STEP_WARN_S) {
        out.push(format!(
            "the wall clock and the monotonic clock drifted {step:.1} s apart during the \
             recording (a clock step or NTP slew): rates and --from/--to use the monotonic \
             clock, so only the printed wall times are affected"
        ));
    }
    if agg.counter_resets > 0 {
        let at = match (agg.first_reset_mono, set.anchor_mono) {
            (Some(t), Some(a)) => format!(" (first at +{:.1} s)", (t.0 - a.0) as f64 / 1e9),
            _ => String::new(),
        };
        out.push(format!(
            "the server's counters reset {} time(s){at}: it restarted; rates span the reset \
             as Prometheus's increase() does, and totals add up across it",
            agg.counter_resets
        ));
    }
    out
}

pub(super) fn recording_facts(
    rec: &Recording,
    set: &WindowSet,
    agg: &Aggregate,
    cfg: &AnalyzeConfig,
    clock_step_s: Option<f64>,
) -> RecordingFacts {
    let m = &rec.manifest;
    let (first, last) = (set.first_scrape, set.last_scrape);
    let span_s = match (first, last) {
        (Some(a), Some(b)) => fin(Some((b.completed_mono.0 - a.completed_mono.0) as f64 / 1e9)),
        _ => None,
    };
    let file_name = |p: &Path| {
        p.file_name()
            .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
    };
    RecordingFacts {
        label: cfg
            .recording_label
            .clone()
            .unwrap_or_else(|| rec.dir.display().to_string()),
        target_url: m.target_url.clone(),
        vllm_version: m.vllm_version.clone(),
        model_name: m.model_name.clone(),
        started_at: m.started_at.clone(),
        range_from: cfg.from.as_ref().map(bound_label),
        range_to: cfg.to.as_ref().map(bound_label),
        first_scrape_at: first.map(|s| s.completed_at.to_rfc3339_millis()),
        last_scrape_at: last.map(|s| s.completed_at.to_rfc3339_millis()),
        span_s,
        scrapes_total: set.scrapes_in_range,
        scrapes_ok: set.scrapes_ok,
        scrapes_failed: set.scrapes_in_range.saturating_sub(set.scrapes_ok),
        gpu_count: m.gpus.len() as u32,
        gpus: m
            .gpus
            .iter()
            .map(|g| GpuFact {
                index: g.index,
                name: g.name.clone(),
                vram_total_gb: g.vram_total_bytes.map(bytes_to_gb),
            })
            .collect(),
        gpu_note: m.gpu_note.clone(),
        engines: set.mapping.engines.clone(),
        damaged_files: rec
            .files
            .iter()
            .filter_map(|f| {
                f.problem.as_ref().map(|p| DamagedFile {
                    name: file_name(&f.path),
                    problem: p.clone(),
                })
            })
            .collect(),
        data_warnings: data_warnings(rec, set, agg, clock_step_s),
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

/// A quantity's name in snake case (as in JSON) and in words (as in the text report).
fn quantity_names(q: Quantity) -> (&'static str, &'static str) {
    match q {
        Quantity::Running => ("running", "requests running"),
        Quantity::Waiting => ("waiting", "requests waiting"),
        Quantity::Swapped => ("swapped", "requests swapped"),
        Quantity::KvCacheUsage => ("kv_cache_usage", "KV-cache usage"),
        Quantity::MaxNumSeqs => ("max_num_seqs", "max_num_seqs"),
        Quantity::CacheConfig => ("cache_config", "cache configuration"),
        Quantity::GenerationTokens => ("generation_tokens", "generated tokens"),
        Quantity::PromptTokens => ("prompt_tokens", "prompt tokens"),
        Quantity::RequestSuccess => ("request_success", "finished requests"),
        Quantity::Preemptions => ("preemptions", "preemptions"),
        Quantity::PrefixCacheHits => ("prefix_cache_hits", "prefix-cache hits"),
        Quantity::PrefixCacheQueries => ("prefix_cache_queries", "prefix-cache queries"),
        Quantity::Ttft => ("ttft", "TTFT"),
        Quantity::Tpot => ("tpot", "TPOT"),
        Quantity::InterTokenLatency => ("inter_token_latency", "inter-token latency"),
        Quantity::PrefillTime => ("prefill_time", "prefill time"),
        Quantity::QueueTime => ("queue_time", "queue time"),
        Quantity::PromptTokensHist => ("prompt_tokens_hist", "prompt length"),
        Quantity::E2eLatency => ("e2e_latency", "end-to-end latency"),
        Quantity::ApiServerCpu => ("api_server_cpu", "API server CPU time"),
        Quantity::WaitingDeferred => ("waiting_deferred", "requests waiting, deferred"),
        Quantity::EngineAwake => ("engine_awake", "engine sleep state"),
        Quantity::EstimatedFlops => ("estimated_flops", "estimated FLOPs per GPU"),
        Quantity::EstimatedReadBytes => ("estimated_read_bytes", "estimated bytes read per GPU"),
        Quantity::PromptTokensComputed => ("prompt_tokens_computed", "prompt tokens computed"),
        Quantity::PromptTokensCached => ("prompt_tokens_cached", "prompt tokens from cache"),
    }
}

pub(super) fn inputs(
    set: &WindowSet,
    resolved: &ResolvedInputs,
    un: &mut Vec<Unavailable>,
) -> Inputs {
    let mapping = &set.mapping;
    // Shown as the gauge's own unit (a float), whichever source decided it.
    let max_num_seqs = resolved
        .max_num_seqs
        .as_ref()
        .map(|s| s.map(|v| f64::from(*v)));
    let gpu_memory_utilization = Some(resolved.gpu_memory_utilization.clone());
    for st in &mapping.quantities {
        if st.used.is_some() {
            continue;
        }
        let (_, words) = quantity_names(st.quantity);
        let names = st.candidates.join(" or ");
        match st.quantity {
            // V0-only, or only in newer vLLM and used when present: absence says nothing.
            Quantity::Swapped
            | Quantity::WaitingDeferred
            | Quantity::EngineAwake
            | Quantity::EstimatedFlops
            | Quantity::EstimatedReadBytes => {}
            Quantity::MaxNumSeqs if max_num_seqs.is_some() => {}
            Quantity::MaxNumSeqs => push(
                un,
                "max_num_seqs",
                format!(
                    "no vLLM version exposes {names}; pass -m N to analyze or record \
                     (rules R1 and R5 need it)"
                ),
            ),
            _ => push(un, words, format!("no series of {names} in the recording")),
        }
    }
    Inputs {
        max_num_seqs,
        gpu_memory_utilization,
        cache_config: mapping.cache_config.clone(),
        metrics_used: mapping
            .quantities
            .iter()
            .map(|s| MetricUsed {
                quantity: quantity_names(s.quantity).0.to_string(),
                metric: s.used.map(|m| m.name.to_string()),
                candidates: s.candidates.iter().map(|c| c.to_string()).collect(),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Windows and metrics
// ---------------------------------------------------------------------------------------------

fn window_row(set: &WindowSet, w: &Window) -> WindowRow {
    let anchor = set.anchor_mono.map_or(0, |a| a.0);
    WindowRow {
        index: w.index,
        start_s: (w.start_mono.0 - anchor) as f64 / 1e9,
        duration_s: fin(w.duration_s),
        gate: window_gate(w, set.has_gpu_data),
        scrapes_ok: w.scrapes_ok,
        scrapes_failed: w.scrapes_failed,
        running: fin(w.running_last),
        waiting: fin(w.waiting_last),
        kv_cache_pct: fin(w.kv_cache_pct_last),
        generation_tokens_per_s: fin(w.generation_tokens_per_s),
        gpu_util_pct: fin(w.gpu.util_pct_mean),
        running_mean: fin(w.running_mean),
        waiting_mean: fin(w.waiting_mean),
        max_num_seqs: fin(w.max_num_seqs_last),
        kv_cache_pct_mean: fin(w.kv_cache_pct_mean),
        kv_cache_peak_pct: fin(w.kv_cache_peak_pct),
        preemptions: fin(w.preemptions_delta),
        ttft_p99_ms: fin(w.ttft_s.p99.map(|s| s * 1e3)),
        tpot_p99_ms: fin(w.tpot_s.p99.map(|s| s * 1e3)),
        prefix_cache_hit_pct: fin(w.prefix_cache_hit_pct),
        power_w: fin(w.gpu.power_w_mean),
        vram_used_mib: fin(w.gpu.vram_peak_mib.or(w.gpu.vram_used_mib_last)),
        vram_total_mib: fin(w.gpu.vram_total_mib_last),
        host_cpu_cores: fin(w.host_cpu_cores),
        gpu_sm_active_pct: fin(w.gpu.sm_active_pct_mean),
        gpu_sm_occupancy_pct: fin(w.gpu.sm_occupancy_pct_mean),
        gpu_dram_bw_util_pct: fin(w.gpu.dram_bw_util_pct_mean),
    }
}

pub(super) fn window_summary(set: &WindowSet, agg: &Aggregate, verbose: bool) -> WindowSummary {
    WindowSummary {
        window_s: set.window_ns as f64 / 1e9,
        total: agg.windows_total,
        evaluable: agg.windows_evaluable,
        active: agg.windows_active,
        active_no_gpu_fallback: agg.windows_active_no_gpu_fallback,
        has_gpu_data: set.has_gpu_data,
        no_gpu_fallback: agg.no_gpu_fallback_used,
        no_gpu_fallback_note: agg.no_gpu_fallback_used.then(|| {
            format!(
                "the recording holds no GPU reading, so the gate's GPU-utilisation arm could not \
                 run; {} window(s) with requests running and tokens generated but KV usage at or \
                 below 30% were counted as active",
                agg.windows_active_no_gpu_fallback
            )
        }),
        all_non_evaluable: agg.all_non_evaluable,
        last_raw_window: agg.last_raw_window.as_ref().map(|w| window_row(set, w)),
        active_duration_s: fin(agg.active_duration_s),
        evaluable_duration_s: fin(agg.evaluable_duration_s),
        rows: if verbose {
            set.windows.iter().map(|w| window_row(set, w)).collect()
        } else {
            Vec::new()
        },
    }
}

fn latency(h: &HistAggregate, metric: Option<&'static str>, scale: f64) -> Latency {
    Latency {
        metric: metric.map(str::to_string),
        mean_ms: fin(h.mean.map(|v| v * scale)),
        p99_ms: fin(h.p99.map(|v| v * scale)),
        mean_is_cumulative: h.mean_is_cumulative,
        observations: fin(h.delta_count),
    }
}

pub(super) fn metrics(agg: &Aggregate, mapping: &VllmMapping) -> Metrics {
    let ms = |h: &HistAggregate, q| latency(h, mapping.used(q), MS_PER_SECOND);
    Metrics {
        generation_tokens_per_s: fin(agg.generation_tokens_per_s),
        prompt_tokens_per_s: fin(agg.prompt_tokens_per_s),
        requests_per_s: fin(agg.requests_per_s),
        running_mean: fin(agg.running_mean),
        waiting_mean: fin(agg.waiting_mean),
        ttft: ms(&agg.ttft_s, Quantity::Ttft),
        tpot: ms(&agg.tpot_s, Quantity::Tpot),
        itl: ms(&agg.itl_s, Quantity::InterTokenLatency),
        prefill: ms(&agg.prefill_s, Quantity::PrefillTime),
        queue: ms(&agg.queue_s, Quantity::QueueTime),
        e2e: ms(&agg.e2e_s, Quantity::E2eLatency),
        prompt_tokens_mean: fin(agg.prompt_tokens_mean),
        kv_cache_pct_mean: fin(agg.kv_cache_pct_mean),
        kv_cache_peak_pct: fin(agg.kv_cache_peak_pct),
        kv_cache_pct_last: fin(agg.kv_cache_pct_last),
        prefix_cache_hit_pct: fin(agg.prefix_cache_hit_pct),
        prompt_tokens_computed_per_s: fin(agg.prompt_tokens_computed_per_s),
        prompt_tokens_cached_pct: fin(agg.prompt_tokens_cached_pct),
        preemptions_per_s: fin(agg.preemptions_per_s),
        gpu_util_pct: fin(agg.gpu_util_pct),
        gpu_mem_util_pct: fin(agg.gpu_mem_util_pct),
        gpu_sm_active_pct: fin(agg.gpu_sm_active_pct),
        gpu_sm_occupancy_pct: fin(agg.gpu_sm_occupancy_pct),
        gpu_dram_bw_util_pct: fin(agg.gpu_dram_bw_util_pct),
        power_w: fin(agg.power_w),
        vram_used_mib: fin(agg.vram_used_mib),
        vram_total_mib: fin(agg.vram_total_mib),
        vram_peak_mib: fin(agg.vram_peak_mib),
        temperature_c: fin(agg.temperature_c),
        temperature_peak_c: fin(agg.temperature_peak_c),
        sm_clock_mhz: fin(agg.sm_clock_mhz),
        per_engine: agg
            .engines
            .iter()
            .zip(&mapping.engines)
            .map(|(e, name)| EngineRow {
                engine: name.clone(),
                running_mean: fin(e.running_mean),
                waiting_mean: fin(e.waiting_mean),
                kv_cache_peak_pct: fin(e.kv_cache_peak_pct),
                preemptions: fin(e.preemptions),
            })
            .collect(),
        totals: Totals {
            generation_tokens: fin(agg.generation_tokens_total),
            prompt_tokens: fin(agg.prompt_tokens_total),
            requests: fin(agg.requests_total),
            preemptions: fin(agg.preemptions_total),
        },
    }
}

pub(super) fn explain_windows_and_gpu(
    rec: &Recording,
    set: &WindowSet,
    w: &WindowSummary,
    agg: &Aggregate,
    un: &mut Vec<Unavailable>,
) {
    let active_only = "throughput, request rates, running/waiting means, latencies, GPU means";
    if w.total == 0 {
        push(un, "windows", "no successful scrape in the analysed range");
    } else if w.all_non_evaluable {
        push(
            un,
            "evaluable windows",
            "no window has two good scrapes and a requests-running value; every aggregate is \
             absent and the last raw window is shown instead",
        );
    } else if w.active == 0 {
        push(
            un,
            active_only,
            "no active window: the server was idle throughout (no request running, or KV usage \
             <= 30% and GPU utilisation <= 20%); these are averaged over active windows only",
        );
    } else {
        for (what, h) in [("TTFT p99", &agg.ttft_s), ("TPOT p99", &agg.tpot_s)] {
            if h.p99.is_none() && h.delta_count.is_some() {
                push(
                    un,
                    what,
                    "no request completed in the active windows (no cumulative fallback: a stale \
                     p99 is worse than none)",
                );
            }
        }
    }
    if !w.has_gpu_data {
        let why = match &rec.manifest.gpu_note {
            Some(note) => format!("the recording holds no GPU reading ({note})"),
            None => "the recording holds no GPU reading".to_string(),
        };
        push(un, "GPU utilisation, power, VRAM, temperature", why);
    }
    if set.gpu_polls_late > 0 {
        push(
            un,
            "some GPU polls",
            format!(
                "{} GPU polls are in no window: their file's clock column said they completed                  later than they did (a damaged or hand-edited GPU file)",
                set.gpu_polls_late
            ),
        );
    }
}

/// What an imported recording cannot show, from its step: one sample per step per series.
pub(super) fn explain_import(rec: &Recording, set: &WindowSet, un: &mut Vec<Unavailable>) {
    let Some(imp) = &rec.manifest.import else {
        return;
    };
    let step_s = imp.step_ms as f64 / MS_PER_SECOND;
    push(
        un,
        "KV cache and queue spikes shorter than the step",
        format!(
            "imported from {} at a {step_s:.3} s step: gauges (KV usage, running, waiting) are \
             seen once per step, so a peak between two steps is missed; counters and histograms \
             lose nothing (their totals are cumulative)",
            imp.source
        ),
    );
    if set.gpu_polls > 0 {
        push(
            un,
            "R2 GPU/vLLM skew check",
            "imported GPU and vLLM values share each step's timestamp, so the 1 s skew between \
             the two sources cannot be checked; R2 judges every window as if in step",
        );
    }
}
