//! The pure builder: recording + windows + aggregate + catalog + config -> [`Report`].
//!
//! No clock, no environment, no `HashMap`; every list is built in a fixed order (manifest
//! order, alias-table order, code order), and every float is computed by the same sequence
//! of operations on the same inputs, so identical inputs give identical `f64`s.

use super::model::*;
use crate::aggregate::{window_gate, Aggregate, Gate, HistAggregate, SECONDS_TO_MS};
use crate::analyze::{AnalyzeConfig, AnalyzeError};
use crate::catalog::roofline::{
    self, bytes_per_param, efficiency, headroom_pct, kv_headroom_gb, min_tp, prefill_floor_shown,
    resolve_bytes_per_param, resolve_seq_len, usable_vram_gb, BytesSource, DtypeInputs,
    SeqLenSource, BYTES_PER_GB,
};
use crate::catalog::{economics, Catalog, GpuSpec, ModelSpec};
use crate::recording::{Recording, Sourced};
use crate::vllm::{Quantity, VllmMapping};
use crate::window::{TimeBound, Window, WindowSet};
use std::path::Path;

/// Bytes per MiB: NVML-derived window figures are MiB, the spec's ceilings GB.
const BYTES_PER_MIB: f64 = 1024.0 * 1024.0;

/// Suffix naming a value the analyze command line gave.
const FROM_ANALYZE: &str = "(analyze)";
/// Suffix naming a value the manifest recorded.
const FROM_RECORD: &str = "(recorded)";

/// `Some(v)` only for finite values: NaN and infinity never reach the report (serde_json would
/// write them as `null`, and a round trip would change the value).
fn fin(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite())
}

/// Builds the report. Fails only on unusable operator input (a zero tensor-parallel size, a
/// negative cost); missing data goes into `unavailable`.
pub fn build(
    rec: &Recording,
    set: &WindowSet,
    agg: &Aggregate,
    catalog: &Catalog,
    cfg: &AnalyzeConfig,
) -> Result<Report, AnalyzeError> {
    let mut un = Vec::new();
    let recording = recording_facts(rec, set, cfg);
    let inputs = inputs(rec, set, agg, cfg, &mut un);
    let windows = window_summary(set, agg, cfg.verbose);
    let metrics = metrics(agg, &set.mapping);
    explain_windows_and_gpu(rec, &windows, agg, &mut un);
    let gpu = match_gpu(rec, catalog, &mut un);
    let model = match_model(rec, catalog, &mut un);
    let ceiling = ceiling(rec, set, agg, catalog, (gpu, model), cfg, &inputs, &mut un)?;
    let economics = economics_section(rec, agg, cfg, gpu, &ceiling, &mut un)?;
    Ok(Report {
        schema_version: SCHEMA_VERSION.to_string(),
        recording,
        inputs,
        windows,
        metrics,
        ceiling,
        economics,
        unavailable: un,
    })
}

fn push(un: &mut Vec<Unavailable>, what: &str, why: impl Into<String>) {
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

fn recording_facts(rec: &Recording, set: &WindowSet, cfg: &AnalyzeConfig) -> RecordingFacts {
    let m = &rec.manifest;
    let first = set.windows.iter().find_map(|w| w.first_scrape_seq);
    let last = set.windows.iter().rev().find_map(|w| w.last_scrape_seq);
    let scrape = |seq: Option<u64>| {
        let seq = seq?;
        rec.scrapes.iter().find(|s| s.meta.seq == seq)
    };
    let (first, last) = (scrape(first), scrape(last));
    let span_s = match (first, last) {
        (Some(a), Some(b)) => fin(Some(
            (b.meta.completed_mono.0 - a.meta.completed_mono.0) as f64 / 1e9,
        )),
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
        first_scrape_at: first.map(|s| s.meta.completed_at.to_rfc3339_millis()),
        last_scrape_at: last.map(|s| s.meta.completed_at.to_rfc3339_millis()),
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
                vram_total_gb: g.vram_total_bytes.map(roofline::bytes_to_gb),
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
    }
}

fn sourced_label<T>(s: &Sourced<T>) -> String {
    format!("{} {FROM_RECORD}", s.source)
}

fn inputs(
    rec: &Recording,
    set: &WindowSet,
    agg: &Aggregate,
    cfg: &AnalyzeConfig,
    un: &mut Vec<Unavailable>,
) -> Inputs {
    let mapping = &set.mapping;
    let recorded = &rec.manifest.analysis_inputs;
    // The spec's Fallbacks table: the gauge first, then the operator's value.
    let max_num_seqs = fin(agg.max_num_seqs)
        .map(|v| SourcedValue {
            value: v,
            source: crate::vllm::names::MAX_NUM_SEQS.to_string(),
        })
        .or_else(|| {
            cfg.max_num_seqs.map(|v| SourcedValue {
                value: f64::from(v),
                source: format!("-m {FROM_ANALYZE}"),
            })
        })
        .or_else(|| {
            recorded.max_num_seqs.as_ref().map(|s| SourcedValue {
                value: f64::from(s.value),
                source: sourced_label(s),
            })
        });
    let gmu_label = mapping
        .cache_config
        .get("gpu_memory_utilization")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0);
    let gpu_memory_utilization = cfg
        .gpu_memory_utilization
        .map(|v| SourcedValue {
            value: v,
            source: format!("--gpu-memory-utilization {FROM_ANALYZE}"),
        })
        .or_else(|| {
            gmu_label.map(|v| SourcedValue {
                value: v,
                source: format!("{} label", crate::vllm::names::CACHE_CONFIG_INFO),
            })
        });
    for st in &mapping.quantities {
        if st.used.is_some() {
            continue;
        }
        let (_, words) = quantity_names(st.quantity);
        let names = st.candidates.join(" or ");
        match st.quantity {
            // V0-only and not shown anywhere: its absence says nothing.
            Quantity::Swapped => {}
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

fn gate_of(g: Gate) -> WindowGate {
    match g {
        Gate::NotEvaluable => WindowGate::NotEvaluable,
        Gate::Idle => WindowGate::Idle,
        Gate::Active => WindowGate::Active,
        Gate::ActiveNoGpuFallback => WindowGate::ActiveNoGpuFallback,
    }
}

fn window_row(set: &WindowSet, w: &Window) -> WindowRow {
    let anchor = set.anchor_mono.map_or(0, |a| a.0);
    WindowRow {
        index: w.index,
        start_s: (w.start_mono.0 - anchor) as f64 / 1e9,
        duration_s: fin(w.duration_s),
        gate: gate_of(window_gate(w, set.has_gpu_data)),
        scrapes_ok: w.scrapes_ok,
        scrapes_failed: w.scrapes_failed,
        running: fin(w.running_last),
        waiting: fin(w.waiting_last),
        kv_cache_pct: fin(w.kv_cache_pct_last),
        generation_tokens_per_s: fin(w.generation_tokens_per_s),
        gpu_util_pct: fin(w.gpu.util_pct_mean),
    }
}

fn window_summary(set: &WindowSet, agg: &Aggregate, verbose: bool) -> WindowSummary {
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

fn metrics(agg: &Aggregate, mapping: &VllmMapping) -> Metrics {
    let ms = |h: &HistAggregate, q| latency(h, mapping.used(q), SECONDS_TO_MS);
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
        preemptions_per_s: fin(agg.preemptions_per_s),
        gpu_util_pct: fin(agg.gpu_util_pct),
        gpu_mem_util_pct: fin(agg.gpu_mem_util_pct),
        power_w: fin(agg.power_w),
        vram_used_mib: fin(agg.vram_used_mib),
        vram_total_mib: fin(agg.vram_total_mib),
        vram_peak_mib: fin(agg.vram_peak_mib),
        temperature_c: fin(agg.temperature_c),
        temperature_peak_c: fin(agg.temperature_peak_c),
        sm_clock_mhz: fin(agg.sm_clock_mhz),
        totals: Totals {
            generation_tokens: fin(agg.generation_tokens_total),
            prompt_tokens: fin(agg.prompt_tokens_total),
            requests: fin(agg.requests_total),
            preemptions: fin(agg.preemptions_total),
        },
    }
}

fn explain_windows_and_gpu(
    rec: &Recording,
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
}

// ---------------------------------------------------------------------------------------------
// Ceiling
// ---------------------------------------------------------------------------------------------

fn invalid(name: String, value: String, reason: &str) -> AnalyzeError {
    AnalyzeError::InvalidInput {
        name,
        value,
        reason: reason.to_string(),
    }
}

fn tensor_parallel(rec: &Recording, cfg: &AnalyzeConfig) -> Result<TensorParallel, AnalyzeError> {
    let (value, label, source) = if let Some(v) = cfg.tensor_parallel_size {
        let label = format!("--tensor-parallel-size {FROM_ANALYZE}");
        (v, label, TpSource::Flag)
    } else if let Some(s) = &rec.manifest.analysis_inputs.tensor_parallel_size {
        let source = match s.source.as_str() {
            "TENSOR_PARALLEL_SIZE" => TpSource::TensorParallelSizeEnv,
            "VLLM_TENSOR_PARALLEL_SIZE" => TpSource::VllmTensorParallelSizeEnv,
            _ => TpSource::Flag,
        };
        (s.value, sourced_label(s), source)
    } else {
        return Ok(TensorParallel {
            value: 1,
            source: TpSource::Default,
            source_label: "default".to_string(),
        });
    };
    if value == 0 {
        return Err(invalid(
            label,
            "0".into(),
            "tensor-parallel size must be at least 1",
        ));
    }
    Ok(TensorParallel {
        value,
        source,
        source_label: label,
    })
}

fn bytes_per_param_of(
    rec: &Recording,
    set: &WindowSet,
    model: Option<&ModelSpec>,
    cfg: &AnalyzeConfig,
    un: &mut Vec<Unavailable>,
) -> BytesPerParam {
    let operator = cfg
        .dtype
        .as_ref()
        .map(|d| (d.clone(), format!("--dtype {FROM_ANALYZE}"), "--dtype"))
        .or_else(|| {
            rec.manifest
                .analysis_inputs
                .dtype
                .as_ref()
                .map(|s| (s.value.clone(), sourced_label(s), s.source.as_str()))
        });
    if let Some((dtype, label, raw_source)) = &operator {
        if let Some(b) = bytes_per_param(dtype) {
            let source = match *raw_source {
                "DTYPE" => DtypeSource::DtypeEnv,
                "VLLM_DTYPE" => DtypeSource::VllmDtypeEnv,
                _ => DtypeSource::Flag,
            };
            return BytesPerParam {
                value: b,
                dtype: Some(dtype.clone()),
                source,
                source_label: label.clone(),
            };
        }
        push(
            un,
            "operator dtype",
            format!(
                "{dtype:?} from {label} names no width (fp8, bf16, fp16, fp32); the next source \
                 was used"
            ),
        );
    }
    let kv = set
        .mapping
        .cache_config
        .get("cache_dtype")
        .map(String::as_str);
    let default = model.and_then(|m| m.default_dtype.as_deref());
    let (value, src) = resolve_bytes_per_param(&DtypeInputs {
        dtype_env: None,
        vllm_dtype_env: None,
        kv_cache_dtype: kv,
        catalog_default: default,
    });
    let (source, dtype, label) = match src {
        BytesSource::KvCacheDtype => (
            DtypeSource::KvCacheDtype,
            kv,
            "kv_cache_dtype (vllm:cache_config_info)".to_string(),
        ),
        BytesSource::CatalogDefault => (
            DtypeSource::CatalogDefault,
            default,
            format!(
                "catalog default of {}",
                model.map_or("?", |m| m.name.as_str())
            ),
        ),
        // The operator steps were handled above; anything else is the fallback.
        _ => (DtypeSource::Bf16Fallback, None, src.label().to_string()),
    };
    BytesPerParam {
        value,
        dtype: dtype.map(str::to_string),
        source,
        source_label: label,
    }
}

fn range(c: Option<roofline::CeilingEstimate>) -> Option<Range> {
    c.map(|c| Range {
        lower: c.lower,
        expected: c.expected,
        upper: c.upper,
    })
}

fn gpu_entry(g: &GpuSpec) -> GpuEntry {
    GpuEntry {
        id: g.id.clone(),
        name: g.name.clone(),
        fp32_tflops: g.fp32_tflops,
        mem_bw_gbps: g.mem_bw_gbps,
        on_demand_usd_per_hour: g.on_demand_usd_per_hour,
        source: g.source.clone(),
    }
}

fn model_entry(m: &ModelSpec) -> ModelEntry {
    ModelEntry {
        id: m.id.clone(),
        name: m.name.clone(),
        total_params_b: m.total_params_b,
        active_params_b: m.active_params_b,
        moe: m.moe,
        source: m.source.clone(),
    }
}

/// The NVML name the ceiling is computed for: the first GPU (index order) that has a name.
pub(super) fn gpu_name(rec: &Recording) -> Option<&str> {
    rec.manifest.gpus.iter().find_map(|g| g.name.as_deref())
}

/// The matched GPU entry, with the reasons for a miss pushed to `un`.
fn match_gpu<'c>(
    rec: &Recording,
    catalog: &'c Catalog,
    un: &mut Vec<Unavailable>,
) -> Option<&'c GpuSpec> {
    let what = "GPU catalog entry";
    let Some(name) = gpu_name(rec) else {
        push(
            un,
            what,
            "the recording names no GPU, so no hardware ceiling can be looked up",
        );
        return None;
    };
    let Some(g) = catalog.match_gpu(name) else {
        push(
            un,
            what,
            format!(
                "GPU {name:?} matches no entry of the {} catalog; add one with --catalog DIR",
                catalog.origin()
            ),
        );
        return None;
    };
    if !g.has_roofline() {
        push(
            un,
            "decode and prefill ceilings",
            format!(
                "catalog entry {} has prices only (no FP32 TFLOPs or memory bandwidth)",
                g.name
            ),
        );
    }
    let names: Vec<&str> = rec
        .manifest
        .gpus
        .iter()
        .filter_map(|g| g.name.as_deref())
        .collect();
    if names.iter().any(|n| *n != name) {
        push(
            un,
            "one GPU model",
            format!(
                "the GPUs differ ({}); ceilings use {name:?}",
                names.join(", ")
            ),
        );
    }
    Some(g)
}

fn match_model<'c>(
    rec: &Recording,
    catalog: &'c Catalog,
    un: &mut Vec<Unavailable>,
) -> Option<&'c ModelSpec> {
    let what = "model catalog entry";
    let Some(name) = rec.manifest.model_name.as_deref() else {
        push(
            un,
            what,
            "vLLM reported no model_name label, so no parameter count can be looked up",
        );
        return None;
    };
    let m = catalog.match_model(name);
    if m.is_none() {
        push(
            un,
            what,
            format!(
                "model {name:?} matches no entry of the {} catalog; roofline skipped (add one \
                 with --catalog DIR)",
                catalog.origin()
            ),
        );
    }
    m
}

fn efficiency_of(e: roofline::Efficiency) -> Efficiency {
    use roofline::EfficiencyGap as G;
    match e {
        roofline::Efficiency::Shown { pct } => Efficiency::Shown { pct },
        roofline::Efficiency::NotShown(G::NoCeiling) => Efficiency::NoCeiling,
        roofline::Efficiency::NotShown(G::NotRunning) => Efficiency::NotRunning,
        roofline::Efficiency::NotShown(G::NoThroughput) => Efficiency::NoThroughput,
        roofline::Efficiency::NotShown(G::ExceedsCeiling {
            actual_tps,
            aggregate_ceiling_tps,
        }) => Efficiency::ExceedsCeiling {
            actual_tps,
            aggregate_ceiling_tps,
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn ceiling(
    rec: &Recording,
    set: &WindowSet,
    agg: &Aggregate,
    catalog: &Catalog,
    (gpu, model): (Option<&GpuSpec>, Option<&ModelSpec>),
    cfg: &AnalyzeConfig,
    inputs: &Inputs,
    un: &mut Vec<Unavailable>,
) -> Result<Ceiling, AnalyzeError> {
    let tp = tensor_parallel(rec, cfg)?;
    let bpp = bytes_per_param_of(rec, set, model, cfg, un);
    let seq = resolve_seq_len(agg.prompt_tokens_mean, None);
    let rl = roofline::roofline(gpu, model, bpp.value, tp.value, seq.map(|s| s.0));
    let has_ceiling = rl.decode.is_some();
    if has_ceiling && rl.prefill.is_none() {
        push(
            un,
            "prefill ceiling",
            "no sequence length: no prompt-length observations (vllm:request_prompt_tokens) in \
             evaluable windows, and max_model_len is not recorded",
        );
    }
    let running = fin(agg.running_mean);
    let actual = fin(agg.generation_tokens_per_s);
    let raw_eff = efficiency(rl.decode.map(|d| d.expected), running, actual);
    let eff = efficiency_of(raw_eff);
    if let (true, Some(why)) = (has_ceiling, eff.reason()) {
        push(un, "efficiency %", why);
    }
    let aggregate_ceiling_tps = match (rl.decode, running) {
        (Some(d), Some(r)) if r > 0.0 => fin(Some(d.expected * r)),
        _ => None,
    };
    // VRAM per GPU: NVML's live total (smallest GPU), else the manifest's.
    let vram_total_gb = fin(agg.vram_total_mib)
        .map(|mib| SourcedValue {
            value: mib * BYTES_PER_MIB / BYTES_PER_GB,
            source: "NVML".to_string(),
        })
        .or_else(|| {
            rec.manifest
                .gpus
                .iter()
                .filter_map(|g| g.vram_total_bytes)
                .min()
                .map(|b| SourcedValue {
                    value: roofline::bytes_to_gb(b),
                    source: "manifest".to_string(),
                })
        });
    let vram = vram_total_gb.as_ref().map(|v| v.value);
    if rl.weight_gb.is_some() && vram.is_none() {
        push(
            un,
            "KV headroom",
            "no GPU memory total in the recording (NVML or manifest)",
        );
    }
    let gmu = inputs.gpu_memory_utilization.as_ref().map(|g| g.value);
    let usable = usable_vram_gb(vram, gmu);
    let suppressed = !prefill_floor_shown(running, rl.ridge_batch_size);
    Ok(Ceiling {
        catalog: catalog.origin().to_string(),
        gpu_name: gpu_name(rec).map(str::to_string),
        gpu: gpu.map(gpu_entry),
        model_name: rec.manifest.model_name.clone(),
        model: model.map(model_entry),
        roofline_params: model.and_then(|m| m.roofline_params()),
        weight_params: model.and_then(|m| m.weight_params()),
        bytes_per_param: bpp,
        tensor_parallel: tp.clone(),
        decode_tps: range(rl.decode),
        seq_len: seq.map(|(tokens, s)| SeqLen {
            tokens,
            source: match s {
                SeqLenSource::PromptTokensMean => "prompt_tokens_mean (rounded)".to_string(),
                SeqLenSource::MaxModelLen => "max_model_len".to_string(),
            },
        }),
        prefill_per_s: range(rl.prefill),
        ridge_batch_size: rl.ridge_batch_size,
        aggregate_ceiling_tps,
        efficiency: eff,
        headroom_pct: fin(headroom_pct(&raw_eff)),
        weight_gb: rl.weight_gb,
        kv_headroom_gb: kv_headroom_gb(vram, rl.weight_gb, tp.value),
        vram_total_gb,
        usable_vram_gb: usable,
        min_tp: min_tp(rl.weight_gb, usable),
        tpot_floor_ms: rl.tpot_floor_ms,
        prefill_floor_ms: if suppressed {
            None
        } else {
            rl.prefill_floor_ms
        },
        prefill_floor_suppressed: suppressed && rl.prefill_floor_ms.is_some(),
    })
}

// ---------------------------------------------------------------------------------------------
// Economics
// ---------------------------------------------------------------------------------------------

fn economics_section(
    rec: &Recording,
    agg: &Aggregate,
    cfg: &AnalyzeConfig,
    gpu: Option<&GpuSpec>,
    ceiling: &Ceiling,
    un: &mut Vec<Unavailable>,
) -> Result<Economics, AnalyzeError> {
    let tps = fin(agg.generation_tokens_per_s);
    let power = fin(agg.power_w);
    let recorded = rec.manifest.analysis_inputs.cost_per_hour.as_ref();
    let (flag, source, label) = if let Some(v) = cfg.cost_per_hour {
        let label = format!("--cost-per-hour {FROM_ANALYZE}");
        (Some(v), CostSource::AnalyzeFlag, label)
    } else if let Some(s) = recorded {
        (Some(s.value), CostSource::Recorded, sourced_label(s))
    } else {
        (None, CostSource::CatalogOnDemand, String::new())
    };
    if let Some(v) = flag {
        if !(v.is_finite() && v >= 0.0) {
            return Err(invalid(
                label,
                v.to_string(),
                "must be a finite number of dollars, zero or more",
            ));
        }
    }
    // The server rents as many GPUs as its tensor-parallel degree; the ceiling assumes the
    // same, so cost and ceiling stay consistent.
    let n_gpus = ceiling.tensor_parallel.value;
    let resolved = economics::resolve_cost_per_hour(flag, gpu, n_gpus)
        .map_err(|e| invalid(label.clone(), format!("{flag:?}"), &e.to_string()))?;
    let cost = resolved.as_ref().map(|c| Cost {
        usd_per_hour: c.usd_per_hour,
        source,
        source_label: match source {
            CostSource::CatalogOnDemand => format!(
                "catalog on-demand {} x {n_gpus} GPU(s)",
                ceiling.gpu.as_ref().map_or("?", |g| g.name.as_str())
            ),
            _ => label.clone(),
        },
        estimated: c.estimated,
    });
    if cost.is_none() {
        let why = match &ceiling.gpu {
            Some(g) => format!(
                "no --cost-per-hour (to analyze or record) and catalog entry {} has no price",
                g.name
            ),
            None => "no --cost-per-hour (to analyze or record) and no catalogued GPU".to_string(),
        };
        push(un, "cost per hour, $/1M tokens, recoverable $/h", why);
    }
    if tps.is_some() && power.is_none() && agg.windows_active > 0 {
        push(
            un,
            "tok/W, J/token",
            "no GPU power reading in active windows",
        );
    }
    let per_m = economics::usd_per_million_tokens(resolved.as_ref(), tps);
    if cost.is_some() && per_m.is_none() && tps.is_some() {
        push(un, "$/1M tokens", "no generation in active windows");
    }
    let recoverable =
        economics::recoverable_usd_per_hour(resolved.as_ref(), ceiling.efficiency.pct());
    if cost.is_some() && recoverable.is_none() {
        push(
            un,
            "recoverable $/h",
            "efficiency % is not shown (see above)",
        );
    }
    Ok(Economics {
        tokens_per_watt: fin(economics::tokens_per_watt(tps, power)),
        joules_per_token: fin(economics::joules_per_token(power, tps)),
        cost_per_hour: cost,
        usd_per_million_tokens: per_m.map(|m| Money {
            usd: m.usd,
            estimated: m.estimated,
        }),
        // It rests on efficiency %, which rests on the catalog ceiling: always an estimate.
        recoverable_usd_per_hour: recoverable.map(|m| Money {
            usd: m.usd,
            estimated: true,
        }),
    })
}
