//! R4, OOM risk (spec "R4: OOM risk"): a configuration fact, judged regardless of traffic.
//! Each GPU holds `weight_gb / tp` of the weights; when that exceeds its VRAM
//! (`kv_headroom_gb < 0`), the model cannot fit at this tensor-parallel degree. The fix names
//! the least degree that fits in the VRAM vLLM may use:
//! `min_tp = ceil(weight_gb / (vram_total_gb × gpu_memory_utilization − 3 GB))`.
//!
//! Decisions: no window counts and no significance gate apply (the finding is significant
//! whenever it fires); a model missing from the catalog or an unknown VRAM total means R4
//! does not evaluate, and says which. When `tp` was not given and defaulted to 1, the finding
//! says so: on a multi-GPU server that default, not the model, may be what does not fit.

use super::model::{Cmp, Fix, FixStep, FlagValue, Measure, RuleId, Significance, Unit};
use super::{Ctx, Draft, Outcome};
use crate::catalog::roofline::{kv_headroom_gb, min_tp, usable_vram_gb};
use crate::inputs::{DtypeSource, TpSource};

/// Headroom below which R4 fires, GB (spec "R4": "fires when kv_headroom_gb < 0").
pub const HEADROOM_MIN_GB: f64 = 0.0;
/// Confidence with dtype from `DTYPE`/`VLLM_DTYPE` (spec "Confidence": R4 0.95).
pub const CONFIDENCE_DTYPE_ENV: f64 = 0.95;
/// Confidence with dtype from kv_cache_dtype or the catalog (spec "Confidence": R4 0.90).
pub const CONFIDENCE_DTYPE_CONFIG: f64 = 0.90;
/// Confidence with the bf16 fallback (spec "Confidence": R4 0.60).
pub const CONFIDENCE_DTYPE_FALLBACK: f64 = 0.60;

/// R4's confidence and its basis, by where the dtype came from.
pub fn confidence(source: DtypeSource) -> (f64, &'static str) {
    match source {
        DtypeSource::Flag | DtypeSource::DtypeEnv | DtypeSource::VllmDtypeEnv => (
            CONFIDENCE_DTYPE_ENV,
            "dtype stated by the operator: DTYPE / VLLM_DTYPE / --dtype",
        ),
        DtypeSource::KvCacheDtype | DtypeSource::CatalogDefault => (
            CONFIDENCE_DTYPE_CONFIG,
            "dtype from kv_cache_dtype or catalog",
        ),
        DtypeSource::Bf16Fallback => (CONFIDENCE_DTYPE_FALLBACK, "dtype from bf16 fallback"),
    }
}

/// Evaluates R4 from the memory facts.
pub(crate) fn evaluate(ctx: &Ctx<'_>) -> Outcome {
    let m = &ctx.inputs.memory;
    let Some(weight) = m.weight_gb else {
        return Outcome::silent(
            RuleId::R4,
            "not evaluated (model not in the catalog: weight size unknown)",
        );
    };
    let Some(vram) = m.vram_total_gb else {
        return Outcome::silent(RuleId::R4, "not evaluated (GPU memory size unknown)");
    };
    let tp = m.tp.max(1);
    let Some(headroom) = kv_headroom_gb(Some(vram), Some(weight), tp) else {
        return Outcome::silent(RuleId::R4, "not evaluated (weight or VRAM not positive)");
    };
    if headroom >= HEADROOM_MIN_GB {
        return Outcome::silent(
            RuleId::R4,
            format!(
                "not triggered (weights {:.1} GB per GPU fit in {vram:.1} GB: headroom \
                 {headroom:.1} GB)",
                weight / f64::from(tp)
            ),
        );
    }
    let usable = usable_vram_gb(Some(vram), Some(ctx.inputs.gpu_memory_utilization));
    let needed = min_tp(Some(weight), usable).map(|n| n.max(tp + 1));
    let mut measures = vec![
        Measure::condition(
            "KV headroom per GPU",
            headroom,
            Unit::Gigabytes,
            Cmp::Lt,
            HEADROOM_MIN_GB,
        ),
        Measure::context("weights", weight, Unit::Gigabytes),
        Measure::context("weights per GPU", weight / f64::from(tp), Unit::Gigabytes),
        Measure::context("VRAM per GPU", vram, Unit::Gigabytes),
        Measure::context("tensor-parallel size", f64::from(tp), Unit::Count),
    ];
    if let Some(u) = usable {
        measures.push(Measure::context("usable VRAM per GPU", u, Unit::Gigabytes));
    }
    let mut text = match needed {
        Some(n) => format!(
            "Set --tensor-parallel-size {n}: the least degree whose share of the weights fits \
             usable VRAM (round up to a divisor of the model's attention heads)"
        ),
        None => "Raise --tensor-parallel-size (usable VRAM per GPU unknown)".to_string(),
    };
    if m.tp_source == TpSource::Default {
        text.push_str("; tensor-parallel size was not given and 1 was assumed: pass it if wrong");
    }
    let (confidence, basis) = confidence(m.dtype_source);
    Outcome::fired(Draft {
        rule: RuleId::R4,
        r2_path: None,
        confidence,
        confidence_basis: basis,
        windows: None,
        significance: Significance::Configuration,
        measures,
        fix: Fix {
            summary: "Add tensor parallelism".to_string(),
            steps: vec![FixStep::flag(
                &text,
                "--tensor-parallel-size",
                needed.map(|n| FlagValue::Count(u64::from(n))),
                Some(FlagValue::Count(u64::from(tp))),
            )],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::{idle, Fixture};
    use crate::rules::{MemoryFacts, RuleInputs};

    fn run(weight: Option<f64>, vram: Option<f64>, tp: u32, src: DtypeSource) -> Outcome {
        let inputs = RuleInputs {
            memory: MemoryFacts {
                weight_gb: weight,
                tp,
                tp_source: TpSource::Flag,
                vram_total_gb: vram,
                dtype_source: src,
            },
            ..RuleInputs::default()
        };
        // Idle windows only: R4 does not depend on traffic.
        evaluate(&Fixture::new(vec![idle(0)], inputs).ctx())
    }

    #[test]
    fn headroom_below_at_above_zero() {
        let src = DtypeSource::CatalogDefault;
        // 80 GB GPU: 80.1 GB of weights does not fit; exactly 80 and 79.9 do.
        let f = run(Some(80.1), Some(80.0), 1, src).finding.unwrap();
        assert!(f.significant);
        assert_eq!(f.significance, Significance::Configuration);
        assert!(f.windows.is_none());
        assert!(run(Some(80.0), Some(80.0), 1, src).finding.is_none());
        let o = run(Some(79.9), Some(80.0), 1, src);
        assert!(o
            .not_fired
            .unwrap()
            .reason
            .starts_with("not triggered (weights 79.9 GB"));
    }

    #[test]
    fn fix_names_min_tp_from_usable_vram() {
        // Llama 3 70B bf16: 140 GB on one 80 GB GPU. Usable = 80 × 0.9 − 3 = 69 GB;
        // ceil(140 / 69) = 3.
        let f = run(Some(140.0), Some(80.0), 1, DtypeSource::DtypeEnv)
            .finding
            .unwrap();
        assert_eq!(
            f.fix.steps[0].command_line().as_deref(),
            Some("--tensor-parallel-size 3")
        );
        assert_eq!(f.fix.steps[0].current, Some(FlagValue::Count(1)));
        // Same model at tp 2 on 80 GB: 70 GB per GPU fits (headroom 10 GB).
        assert!(run(Some(140.0), Some(80.0), 2, DtypeSource::DtypeEnv)
            .finding
            .is_none());
    }

    #[test]
    fn confidence_by_dtype_source() {
        let c = |s| {
            run(Some(100.0), Some(80.0), 1, s)
                .finding
                .unwrap()
                .confidence
        };
        assert_eq!(c(DtypeSource::Flag), 0.95);
        assert_eq!(c(DtypeSource::DtypeEnv), 0.95);
        assert_eq!(c(DtypeSource::VllmDtypeEnv), 0.95);
        assert_eq!(c(DtypeSource::KvCacheDtype), 0.90);
        assert_eq!(c(DtypeSource::CatalogDefault), 0.90);
        assert_eq!(c(DtypeSource::Bf16Fallback), 0.60);
    }

    #[test]
    fn unknown_inputs_say_why() {
        let src = DtypeSource::Bf16Fallback;
        let r = |o: Outcome| o.not_fired.unwrap().reason;
        assert!(r(run(None, Some(80.0), 1, src)).contains("weight size unknown"));
        assert!(r(run(Some(100.0), None, 1, src)).contains("GPU memory size unknown"));
    }
}
