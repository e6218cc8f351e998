//! The rules' inputs, from the resolved inputs and the roofline the ceiling section was built
//! from: the report and the diagnosis can never disagree on the cap, the tensor-parallel
//! degree, the bytes per parameter, the weight footprint or the VRAM per GPU, since each is
//! computed once. R7's alternatives are the catalog's other GPUs at the same model, dtype and
//! degree, priced like the cost resolution prices the one in use.

use super::ceiling::Roof;
use crate::aggregate::{Aggregate, KeptWindow};
use crate::catalog::roofline::decode_ceiling_tps;
use crate::catalog::{Catalog, GpuSpec, ModelSpec};
use crate::inputs::ResolvedInputs;
use crate::recording::Recording;
use crate::rules::{self, Diagnosis, GpuOption, MemoryFacts, RuleInputs, SizingFacts};
use crate::window::WindowSet;

/// What the rules are run with beyond the windows.
pub(super) struct RuleContext<'a> {
    pub rec: &'a Recording,
    pub catalog: &'a Catalog,
    pub gpu: Option<&'a GpuSpec>,
    pub model: Option<&'a ModelSpec>,
    pub inputs: &'a ResolvedInputs,
    pub roof: &'a Roof,
}

/// R7's facts: only with a catalogued, priced GPU and a catalogued model.
fn sizing(c: &RuleContext<'_>) -> Option<SizingFacts> {
    let (gpu, model) = (c.gpu?, c.model?);
    let cost = c.inputs.cost_per_hour.as_ref()?;
    let tp = c.inputs.tensor_parallel.value;
    let bpp = c.inputs.bytes_per_param.value;
    let limits: Vec<f64> = c
        .rec
        .manifest
        .gpus
        .iter()
        .filter_map(|g| g.power_limit_w)
        .collect();
    let power_limit_w = (!limits.is_empty() && limits.len() == c.rec.manifest.gpus.len())
        .then(|| limits.iter().sum());
    let mut options: Vec<GpuOption> = c
        .catalog
        .gpus()
        .iter()
        .filter(|g| g.id != gpu.id)
        .filter_map(|g| {
            let price = g.on_demand_usd_per_hour?;
            Some(GpuOption {
                name: g.name.clone(),
                decode_ceiling_tps: decode_ceiling_tps(
                    g.mem_bw_gbps,
                    tp,
                    model.roofline_params(),
                    bpp,
                )?,
                usd_per_hour: price * f64::from(tp),
                vram_gb: g.vram_gb?,
            })
        })
        .collect();
    // Cheapest first; the catalog's order breaks ties, so the answer is stable.
    options.sort_by(|a, b| a.usd_per_hour.total_cmp(&b.usd_per_hour));
    Some(SizingFacts {
        current: gpu.name.clone(),
        usd_per_hour: cost.usd_per_hour,
        power_limit_w,
        weight_gb_per_gpu: c.roof.rl.weight_gb.map(|w| w / f64::from(tp.max(1))),
        efficiency_pct: c.roof.efficiency.pct(),
        options,
    })
}

/// Runs the rules on the windows and aggregate with the resolved inputs.
pub(super) fn diagnosis(
    set: &WindowSet,
    kept: &[KeptWindow],
    agg: &Aggregate,
    c: &RuleContext<'_>,
) -> Diagnosis {
    let memory = MemoryFacts {
        weight_gb: c.roof.rl.weight_gb,
        tp: c.inputs.tensor_parallel.value,
        tp_source: c.inputs.tensor_parallel.source,
        vram_total_gb: c.roof.vram_gb(),
        dtype_source: c.inputs.bytes_per_param.source,
    };
    let mut ri = RuleInputs::from_resolved(&set.mapping, c.inputs, memory);
    ri.prefill_floor_ms = c.roof.rl.prefill_floor_ms;
    ri.sizing = sizing(c);
    rules::diagnose(set, kept, agg, &ri)
}
