//! The catalog half of the builder: which GPU and model entries apply, the roofline with its
//! inputs (dtype, tensor parallelism, sequence length) and their sources, efficiency, memory
//! footprint, and economics. Every reason a figure is missing is pushed to `unavailable` in
//! code order.

use super::build::{fin, push, sourced_label, FROM_ANALYZE};
use super::model::*;
use crate::aggregate::Aggregate;
use crate::analyze::{AnalyzeConfig, AnalyzeError};
use crate::catalog::roofline::{
    self, bytes_per_param, efficiency, headroom_pct, kv_headroom_gb, min_tp, prefill_floor_shown,
    resolve_bytes_per_param, resolve_seq_len, usable_vram_gb, BytesSource, DtypeInputs,
    SeqLenSource, BYTES_PER_GB,
};
use crate::catalog::{economics, Catalog, GpuSpec, ModelSpec};
use crate::recording::Recording;
use crate::window::WindowSet;

/// Bytes per MiB: NVML-derived window figures are MiB, the spec's ceilings GB.
const BYTES_PER_MIB: f64 = 1024.0 * 1024.0;

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
fn gpu_name(rec: &Recording) -> Option<&str> {
    rec.manifest.gpus.iter().find_map(|g| g.name.as_deref())
}

/// The matched GPU entry, with the reasons for a miss pushed to `un`.
pub(super) fn match_gpu<'c>(
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

pub(super) fn match_model<'c>(
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
pub(super) fn ceiling(
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

pub(super) fn economics_section(
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
