//! R7, oversized GPU (ours, from the inferscope post: an H100 serving a 7B model at 24% of its
//! power limit): the GPUs run cool and their memory mostly empty, so a cheaper catalog GPU,
//! at the same tensor-parallel degree, would carry the measured throughput with headroom.
//!
//! Trigger, per active window with GPU data: mean power below [`POWER_SHARE_MAX`] of the power
//! limit, and memory mostly unused: VRAM in use below [`VRAM_SHARE_MAX`] of the total, or the KV
//! cache's peak below [`KV_PEAK_MAX`] (vLLM reserves its KV pool up front, so a full VRAM can
//! still hold an empty pool). Standard significance gate; and, when efficiency is known, it
//! must be below [`EFFICIENCY_MAX`] too. The fix names the cheapest catalog GPU whose decode
//! ceiling × running still carries the throughput × [`HEADROOM`], whose memory fits the
//! weights, and that costs less; with none, R7 stays silent and says so. Nothing without a
//! catalogued GPU and model (no [`SizingFacts`](super::SizingFacts)).

use super::model::{Cmp, Fix, FixStep, FlagValue, Measure, RuleId, Unit, WindowCounts};
use super::{gate, tw_mean, Ctx, Draft, Outcome, Tally};
use crate::aggregate::KeptWindow;
use crate::catalog::roofline::{ACTIVATION_KV_BUFFER_GB, DEFAULT_GPU_MEMORY_UTILIZATION};

/// Power share of the limit below which a GPU idles (ours): the post's 24% sits well under it,
/// and a decode-bound server at work draws 60-90%.
pub const POWER_SHARE_MAX: f64 = 0.40;
/// VRAM share below which memory is mostly unused (ours).
pub const VRAM_SHARE_MAX: f64 = 0.50;
/// KV-cache peak below which the reserved pool is mostly empty, percent (ours).
pub const KV_PEAK_MAX: f64 = 50.0;
/// Efficiency from which the GPU is considered well used, percent (ours): half the decode
/// ceiling is good for a real server.
pub const EFFICIENCY_MAX: f64 = 50.0;
/// Headroom the cheaper GPU must leave over the measured throughput (ours): 1.5x, so a busier
/// hour still fits.
pub const HEADROOM: f64 = 1.5;
/// R7's confidence (ours): power, memory and the catalog all agree, but the catalog's
/// ceilings are estimates.
pub const CONFIDENCE: f64 = 0.70;

const C_DATA: usize = 0;
const C_POWER: usize = 1;
const C_MEMORY: usize = 2;

fn power_share(w: &KeptWindow, limit: f64) -> Option<f64> {
    Some(w.gpu.power_w_mean? / limit)
}

fn vram_share(w: &KeptWindow) -> Option<f64> {
    Some(w.gpu.vram_used_mib_last? / w.gpu.vram_total_mib_last.filter(|t| *t > 0.0)?)
}

fn judge(w: &KeptWindow, limit: f64) -> Result<(), (usize, Option<f64>)> {
    let Some(p) = power_share(w, limit) else {
        return Err((C_DATA, None));
    };
    if p >= POWER_SHARE_MAX {
        return Err((C_POWER, Some(p * 100.0)));
    }
    let vram_low = vram_share(w).is_some_and(|v| v < VRAM_SHARE_MAX);
    let kv_low = w.kv_cache_peak_pct.is_some_and(|k| k < KV_PEAK_MAX);
    if vram_low || kv_low {
        Ok(())
    } else {
        Err((C_MEMORY, w.kv_cache_peak_pct))
    }
}

/// Evaluates R7 over the active windows.
pub(crate) fn evaluate(ctx: &Ctx<'_>) -> Outcome {
    if let Some(r) = ctx.no_load_reason() {
        return Outcome::silent(RuleId::R7, r);
    }
    let Some(s) = ctx.inputs.sizing.as_ref() else {
        return Outcome::silent(
            RuleId::R7,
            "not evaluated (GPU or model not in the catalog, or no price)",
        );
    };
    let Some(limit) = s.power_limit_w.filter(|l| *l > 0.0) else {
        return Outcome::silent(RuleId::R7, "not evaluated (no GPU power limit recorded)");
    };
    if let Some(e) = s.efficiency_pct.filter(|e| *e >= EFFICIENCY_MAX) {
        return Outcome::silent(
            RuleId::R7,
            format!("not triggered (efficiency {e:.1}% >= {EFFICIENCY_MAX:.0}%)"),
        );
    }
    let mut fired: Vec<&KeptWindow> = Vec::new();
    let mut tally = Tally::new(3);
    for w in ctx.active_windows() {
        match judge(w, limit) {
            Ok(()) => fired.push(w),
            Err((c, v)) => tally.add(c, v),
        }
    }
    if fired.is_empty() {
        let why = match tally.dominant() {
            Some(d) if d.cond == C_POWER => format!(
                "not triggered (power {:.0}% of the limit >= {:.0}%)",
                d.mean.unwrap_or(f64::NAN),
                POWER_SHARE_MAX * 100.0
            ),
            Some(d) if d.cond == C_MEMORY => {
                "not triggered (VRAM and KV cache both well used)".to_string()
            }
            _ => "not evaluated (no GPU power reading in active windows)".to_string(),
        };
        return Outcome::silent(RuleId::R7, why);
    }
    let tps = tw_mean(&fired, |w| w.generation_tokens_per_s).unwrap_or(0.0);
    let running = tw_mean(&fired, |w| w.running_mean).unwrap_or(0.0);
    let need_gb = s
        .weight_gb_per_gpu
        .map(|w| (w + ACTIVATION_KV_BUFFER_GB) / DEFAULT_GPU_MEMORY_UTILIZATION);
    let pick = s.options.iter().find(|o| {
        o.usd_per_hour < s.usd_per_hour
            && o.decode_ceiling_tps * running.max(1.0) >= tps * HEADROOM
            && need_gb.is_none_or(|g| o.vram_gb >= g)
    });
    let Some(pick) = pick else {
        return Outcome::silent(
            RuleId::R7,
            format!(
                "not triggered (the GPUs idle, but no cheaper catalog GPU carries {tps:.0} \
                 tok/s x {HEADROOM} at this TP and fits the weights)"
            ),
        );
    };
    let n = fired.len() as u64;
    let mut measures = Vec::new();
    if let Some(p) = tw_mean(&fired, |w| power_share(w, limit)) {
        measures.push(Measure::condition(
            "power of the limit",
            p * 100.0,
            Unit::Percent,
            Cmp::Lt,
            POWER_SHARE_MAX * 100.0,
        ));
    }
    if let Some(v) = tw_mean(&fired, vram_share) {
        measures.push(Measure::context("VRAM in use", v * 100.0, Unit::Percent));
    }
    if let Some(k) = tw_mean(&fired, |w| w.kv_cache_peak_pct) {
        measures.push(Measure::context("KV cache peak", k, Unit::Percent));
    }
    if let Some(e) = s.efficiency_pct {
        measures.push(Measure::condition(
            "efficiency (est)",
            e,
            Unit::Percent,
            Cmp::Lt,
            EFFICIENCY_MAX,
        ));
    }
    measures.push(Measure::context("generation", tps, Unit::TokensPerSecond));
    measures.push(Measure::context(
        &format!("{} aggregate ceiling (est)", pick.name),
        pick.decode_ceiling_tps * running.max(1.0),
        Unit::TokensPerSecond,
    ));
    let saved = s.usd_per_hour - pick.usd_per_hour;
    measures.push(Measure::context(
        "saved per hour (est)",
        saved,
        Unit::UsdPerHour,
    ));
    Outcome::fired(Draft {
        rule: RuleId::R7,
        r2_path: None,
        confidence: CONFIDENCE,
        confidence_basis: "power, memory and catalog agree (ours)",
        windows: Some(WindowCounts::of(&fired, ctx.evaluable, 0)),
        significance: gate::standard_significance(n, ctx.evaluable),
        measures,
        fix: Fix {
            summary: format!("Move from {} to {}", s.current, pick.name),
            steps: vec![FixStep {
                text: format!(
                    "Serve on {} instead of {}: its ceiling carries {tps:.0} tok/s with {HEADROOM}x \
                     headroom, saving about ${saved:.2}/h (catalog prices, est)",
                    pick.name, s.current
                ),
                flag: None,
                value: Some(FlagValue::Text(pick.name.clone())),
                current: Some(FlagValue::Text(s.current.clone())),
            }],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::{windows, Fixture};
    use crate::rules::{GpuOption, RuleInputs, SizingFacts};

    fn sizing() -> SizingFacts {
        SizingFacts {
            current: "H100 SXM".into(),
            usd_per_hour: 3.45,
            power_limit_w: Some(700.0),
            weight_gb_per_gpu: Some(16.0),
            efficiency_pct: Some(20.0),
            options: vec![
                GpuOption {
                    name: "L40S".into(),
                    decode_ceiling_tps: 54.0,
                    usd_per_hour: 1.80,
                    vram_gb: 48.0,
                },
                GpuOption {
                    name: "A100 80GB".into(),
                    decode_ceiling_tps: 127.0,
                    usd_per_hour: 1.50,
                    vram_gb: 80.0,
                },
            ],
        }
    }

    fn run(power_w: f64, kv: f64, s: SizingFacts) -> Outcome {
        let ws = windows(4, |w| {
            w.gpu.power_w_mean = Some(power_w);
            w.kv_cache_peak_pct = Some(kv);
            w.gpu.vram_used_mib_last = Some(70_000.0);
            w.gpu.vram_total_mib_last = Some(81_000.0);
        });
        let inputs = RuleInputs {
            sizing: Some(s),
            ..RuleInputs::default()
        };
        Fixture::with_gpu(ws, true, inputs).run(evaluate)
    }

    #[test]
    fn an_idle_gpu_names_the_cheapest_that_carries_the_load() {
        // 200 tok/s with 8 running: A100 at 127 x 8 = 1016 >= 300; cheapest first in the list
        // is the L40S (54 x 8 = 432 >= 300) at $1.80.
        let f = run(168.0, 30.0, sizing()).finding.unwrap();
        assert_eq!(f.fix.summary, "Move from H100 SXM to L40S");
        assert!(
            f.fix.steps[0].text.contains("$1.65/h"),
            "{}",
            f.fix.steps[0].text
        );
    }

    #[test]
    fn silent_at_the_power_threshold_with_memory_used_or_when_efficient() {
        // 280 W of 700 is exactly 40%: not below.
        let o = run(280.0, 30.0, sizing());
        assert!(o.not_fired.unwrap().reason.contains("power 40%"));
        let o = run(168.0, 80.0, sizing());
        assert!(o.not_fired.unwrap().reason.contains("well used"));
        let mut s = sizing();
        s.efficiency_pct = Some(50.0);
        assert!(run(168.0, 30.0, s)
            .not_fired
            .unwrap()
            .reason
            .contains("efficiency"));
        // No cheaper GPU that fits.
        let mut s = sizing();
        s.options.retain(|o| o.vram_gb > 100.0);
        assert!(run(168.0, 30.0, s)
            .not_fired
            .unwrap()
            .reason
            .contains("no cheaper"));
    }
}
