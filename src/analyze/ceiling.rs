//! The catalog half of the analysis: which GPU and model entries apply, the roofline with
//! its sequence length, efficiency, memory footprint, and economics. The roofline is computed
//! once, as a [`Roof`], from the resolved inputs; the report's ceiling section and the rules'
//! memory facts are both read off it. Every reason a figure is missing is pushed to
//! `unavailable` in code order.

use super::sections::{fin, push};
use crate::aggregate::Aggregate;
use crate::catalog::economics::{self, Money};
use crate::catalog::roofline::{
    self, efficiency, headroom_pct, kv_headroom_gb, min_tp, prefill_floor_shown, resolve_seq_len,
    usable_vram_gb, Efficiency, Roofline, SeqLenSource,
};
use crate::catalog::{Catalog, GpuSpec, ModelSpec};
use crate::inputs::{ResolvedInputs, Sourced};
use crate::recording::Recording;
use crate::report::{Ceiling, Economics, SeqLen, Unavailable};
use crate::units::{bytes_to_gb, mib_to_gb};

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

/// The roofline of one recording at its resolved inputs, and the VRAM it is checked against:
/// the one computation the ceiling section and R4 share.
#[derive(Debug, Clone)]
pub(super) struct Roof {
    /// The formulas' results.
    pub rl: Roofline,
    /// The prefill sequence length and where it came from.
    pub seq: Option<(u64, SeqLenSource)>,
    /// VRAM per GPU, GB: NVML's live total (smallest GPU), else the manifest's.
    pub vram_total_gb: Option<Sourced<f64>>,
    /// Efficiency % against the aggregate decode ceiling, or why not.
    pub efficiency: Efficiency,
}

impl Roof {
    /// Applies the roofline to the matched entries at the resolved inputs.
    pub(super) fn compute(
        rec: &Recording,
        agg: &Aggregate,
        (gpu, model): (Option<&GpuSpec>, Option<&ModelSpec>),
        inputs: &ResolvedInputs,
    ) -> Roof {
        let tp = inputs.tensor_parallel.value;
        let seq = resolve_seq_len(agg.prompt_tokens_mean, None);
        let rl = roofline::roofline(
            gpu,
            model,
            inputs.bytes_per_param.value,
            tp,
            seq.map(|s| s.0),
        );
        let vram_total_gb = fin(agg.vram_total_mib)
            .map(|mib| Sourced {
                value: mib_to_gb(mib),
                source: "NVML".to_string(),
            })
            .or_else(|| {
                rec.manifest
                    .gpus
                    .iter()
                    .filter_map(|g| g.vram_total_bytes)
                    .min()
                    .map(|b| Sourced {
                        value: bytes_to_gb(b),
                        source: "manifest".to_string(),
                    })
            });
        let efficiency = efficiency(
            rl.decode.map(|d| d.expected),
            fin(agg.running_mean),
            fin(agg.generation_tokens_per_s),
        );
        Roof {
            rl,
            seq,
            vram_total_gb,
            efficiency,
        }
    }

    /// VRAM per GPU, GB, when known.
    pub(super) fn vram_gb(&self) -> Option<f64> {
        self.vram_total_gb.as_ref().map(|v| v.value)
    }

    /// The report's ceiling section.
    pub(super) fn section(
        &self,
        rec: &Recording,
        agg: &Aggregate,
        catalog: &Catalog,
        (gpu, model): (Option<&GpuSpec>, Option<&ModelSpec>),
        inputs: &ResolvedInputs,
        un: &mut Vec<Unavailable>,
    ) -> Ceiling {
        let rl = &self.rl;
        let has_ceiling = rl.decode.is_some();
        if has_ceiling && rl.prefill.is_none() {
            push(
                un,
                "prefill ceiling",
                "no sequence length: no prompt-length observations (vllm:request_prompt_tokens) \
                 in evaluable windows, and max_model_len is not recorded",
            );
        }
        if let (true, Some(why)) = (has_ceiling, self.efficiency.reason()) {
            push(un, "efficiency %", why);
        }
        let running = fin(agg.running_mean);
        let aggregate_ceiling_tps = match (rl.decode, running) {
            (Some(d), Some(r)) if r > 0.0 => fin(Some(d.expected * r)),
            _ => None,
        };
        let vram = self.vram_gb();
        if rl.weight_gb.is_some() && vram.is_none() {
            push(
                un,
                "KV headroom",
                "no GPU memory total in the recording (NVML or manifest)",
            );
        }
        let tp = inputs.tensor_parallel.value;
        let (flops, bytes) = (
            fin(agg.est_flops_per_gpu_per_s),
            fin(agg.est_read_bytes_per_gpu_per_s),
        );
        let moved = |v: Option<f64>| v.filter(|v| *v > 0.0);
        if flops.or(bytes).is_some()
            && moved(flops).or(moved(bytes)).is_none()
            && fin(agg.generation_tokens_per_s).is_some_and(|t| t > 0.0)
        {
            push(
                un,
                "measured FLOPs and bandwidth use (MBU)",
                "vLLM's estimated FLOPs and bytes counters never moved while it generated: \
                 start vLLM with --enable-mfu-metrics",
            );
        }
        let measured_mbu_pct = match (moved(bytes), gpu.and_then(|g| g.mem_bw_gbps)) {
            (Some(b), Some(bw)) if bw > 0.0 => fin(Some(b / (bw * 1e9) * 100.0)),
            _ => None,
        };
        let usable = usable_vram_gb(vram, Some(inputs.gpu_memory_utilization.value));
        let suppressed = !prefill_floor_shown(running, rl.ridge_batch_size);
        Ceiling {
            catalog: catalog.origin().to_string(),
            gpu_name: gpu_name(rec).map(str::to_string),
            gpu: gpu.cloned(),
            model_name: rec.manifest.model_name.clone(),
            model: model.cloned(),
            roofline_params: model.and_then(|m| m.roofline_params()),
            weight_params: model.and_then(|m| m.weight_params()),
            bytes_per_param: inputs.bytes_per_param.clone(),
            tensor_parallel: inputs.tensor_parallel.clone(),
            decode_tps: rl.decode,
            seq_len: self.seq.map(|(tokens, s)| SeqLen {
                tokens,
                source: match s {
                    SeqLenSource::PromptTokensMean => "prompt_tokens_mean (rounded)".to_string(),
                    SeqLenSource::MaxModelLen => "max_model_len".to_string(),
                },
            }),
            prefill_per_s: rl.prefill,
            ridge_batch_size: rl.ridge_batch_size,
            aggregate_ceiling_tps,
            efficiency: self.efficiency,
            headroom_pct: fin(headroom_pct(&self.efficiency)),
            weight_gb: rl.weight_gb,
            kv_headroom_gb: kv_headroom_gb(vram, rl.weight_gb, tp),
            vram_total_gb: self.vram_total_gb.clone(),
            usable_vram_gb: usable,
            min_tp: min_tp(rl.weight_gb, usable),
            tpot_floor_ms: rl.tpot_floor_ms,
            prefill_floor_ms: if suppressed {
                None
            } else {
                rl.prefill_floor_ms
            },
            prefill_floor_suppressed: suppressed && rl.prefill_floor_ms.is_some(),
            measured_tflops_per_gpu: moved(flops).map(|f| f / 1e12),
            measured_mbu_pct,
            // Measured by the GPUs themselves, beside the ceiling that assumes all of it.
            measured_dram_bw_util_pct: if has_ceiling {
                fin(agg.gpu_dram_bw_util_pct)
            } else {
                None
            },
        }
    }
}

/// The report's economics section (spec, Math / Economics), from the resolved hourly cost.
pub(super) fn economics(
    agg: &Aggregate,
    ceiling: &Ceiling,
    inputs: &ResolvedInputs,
    un: &mut Vec<Unavailable>,
) -> Economics {
    let tps = fin(agg.generation_tokens_per_s);
    let power = fin(agg.power_w);
    let cost = inputs.cost_per_hour.as_ref();
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
    let usd = cost.map(|c| c.usd_per_hour);
    let estimated = cost.is_some_and(|c| c.estimated);
    let per_m = economics::usd_per_million_tokens(usd, tps);
    if cost.is_some() && per_m.is_none() && tps.is_some() {
        push(un, "$/1M tokens", "no generation in active windows");
    }
    let recoverable = economics::recoverable_usd_per_hour(usd, ceiling.efficiency.pct());
    if cost.is_some() && recoverable.is_none() {
        push(
            un,
            "recoverable $/h",
            "efficiency % is not shown (see above)",
        );
    }
    Economics {
        tokens_per_watt: fin(economics::tokens_per_watt(tps, power)),
        joules_per_token: fin(economics::joules_per_token(power, tps)),
        cost_per_hour: cost.cloned(),
        usd_per_million_tokens: per_m.map(|usd| Money { usd, estimated }),
        // It rests on efficiency %, which rests on the catalog ceiling: always an estimate.
        recoverable_usd_per_hour: recoverable.map(|usd| Money {
            usd,
            estimated: true,
        }),
    }
}
