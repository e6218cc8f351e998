//! Wiring between the report and the rules: the rules' inputs are taken from what the report
//! already resolved, so the ceiling section and the diagnosis can never disagree on the
//! tensor-parallel degree, the bytes per parameter, the weight footprint or the VRAM per GPU
//! (one resolution, not two).
//!
//! Precedence of the concurrency cap is the report's: the `vllm:max_num_seqs` gauge, then `-m`
//! given to `analyze`, then the value the manifest recorded (a flag to `record`).

use super::build::{sourced_label, FROM_ANALYZE};
use super::model::{Ceiling, DtypeSource, Inputs, TpSource};
use crate::aggregate::Aggregate;
use crate::analyze::AnalyzeConfig;
use crate::catalog::roofline::{self, BytesSource};
use crate::recording::{AnalysisInputs, Recording, Sourced};
use crate::rules::{self, Diagnosis, MemoryFacts, RuleInputs};
use crate::window::WindowSet;

/// The report's tensor-parallel source as the rules name it.
pub(super) fn tp_source(s: TpSource) -> roofline::TpSource {
    match s {
        TpSource::Flag => roofline::TpSource::Flag,
        TpSource::TensorParallelSizeEnv => roofline::TpSource::TensorParallelSizeEnv,
        TpSource::VllmTensorParallelSizeEnv => roofline::TpSource::VllmTensorParallelSizeEnv,
        TpSource::Default => roofline::TpSource::Default,
    }
}

/// The report's dtype source as the rules name it. A `--dtype` flag is the operator saying
/// what the server runs, exactly as `DTYPE`/`VLLM_DTYPE` are, so it earns R4's operator-stated
/// confidence (0.95), not the configuration-derived 0.90; `BytesSource` has no flag variant of
/// its own because the catalog's chain starts at the environment.
pub(super) fn bytes_source(s: DtypeSource) -> BytesSource {
    match s {
        DtypeSource::Flag | DtypeSource::DtypeEnv => BytesSource::DtypeEnv,
        DtypeSource::VllmDtypeEnv => BytesSource::VllmDtypeEnv,
        DtypeSource::KvCacheDtype => BytesSource::KvCacheDtype,
        DtypeSource::CatalogDefault => BytesSource::CatalogDefault,
        DtypeSource::Bf16Fallback => BytesSource::Bf16Fallback,
    }
}

/// R4's facts, read off the ceiling section.
pub(super) fn memory_facts(c: &Ceiling) -> MemoryFacts {
    MemoryFacts {
        weight_gb: c.weight_gb,
        tp: c.tensor_parallel.value,
        tp_source: tp_source(c.tensor_parallel.source),
        vram_total_gb: c.vram_total_gb.as_ref().map(|v| v.value),
        bytes_source: bytes_source(c.bytes_per_param.source),
    }
}

/// The operator's inputs as the rules see them: the manifest's, with `-m` given to `analyze`
/// beating the recorded cap. Source labels match the report's (`-m (analyze)`,
/// `-m (recorded)`).
pub(super) fn operator_inputs(rec: &Recording, cfg: &AnalyzeConfig) -> AnalysisInputs {
    let recorded = &rec.manifest.analysis_inputs;
    let relabel = |s: &Sourced<u32>| Sourced {
        value: s.value,
        source: sourced_label(s),
    };
    AnalysisInputs {
        max_num_seqs: cfg
            .max_num_seqs
            .map(|v| Sourced {
                value: v,
                source: format!("-m {FROM_ANALYZE}"),
            })
            .or_else(|| recorded.max_num_seqs.as_ref().map(relabel)),
        ..recorded.clone()
    }
}

/// Resolves the rules' inputs and runs them. `inputs` and `ceiling` are the report's sections
/// for the same recording.
pub(super) fn diagnosis(
    rec: &Recording,
    set: &WindowSet,
    agg: &Aggregate,
    cfg: &AnalyzeConfig,
    inputs: &Inputs,
    ceiling: &Ceiling,
) -> Diagnosis {
    let operator = operator_inputs(rec, cfg);
    let mut ri = RuleInputs::resolve(set, agg, &operator, memory_facts(ceiling));
    // The report resolved --gpu-memory-utilization (flag, then cache_config label) and used it
    // for the ceiling's usable VRAM; R4's min_tp must use the same figure.
    if let Some(g) = inputs
        .gpu_memory_utilization
        .as_ref()
        .map(|g| g.value)
        .filter(|g| g.is_finite() && *g > 0.0 && *g <= 1.0)
    {
        ri.gpu_memory_utilization = Some(g);
    }
    rules::diagnose(set, agg, &ri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_map_onto_the_rules_names() {
        assert_eq!(bytes_source(DtypeSource::Flag), BytesSource::DtypeEnv);
        assert_eq!(
            bytes_source(DtypeSource::Bf16Fallback),
            BytesSource::Bf16Fallback
        );
        assert_eq!(
            bytes_source(DtypeSource::CatalogDefault),
            BytesSource::CatalogDefault
        );
        assert_eq!(tp_source(TpSource::Default), roofline::TpSource::Default);
        assert_eq!(
            tp_source(TpSource::VllmTensorParallelSizeEnv),
            roofline::TpSource::VllmTensorParallelSizeEnv
        );
    }
}
