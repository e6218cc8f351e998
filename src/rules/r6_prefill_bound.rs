//! R6, prefill-bound (ours; the spec's Limitations table names the case: "prefill-heavy
//! workloads show artificially low efficiency %"): long prompts and short outputs, so the
//! server spends its windows processing prompts, and the decode roofline says little.
//!
//! Trigger, per active window: the prefill time share of the window
//! (`Δprefill_sum / window_secs`, the histogram mass the spec's R1 gate reads) at least
//! [`PREFILL_SHARE_MIN`], mean prompt length at least [`PROMPT_TOKENS_MIN`], and at least
//! [`PROMPT_TO_OUTPUT_MIN`] prompt tokens per generated token. Standard significance gate.
//!
//! The fix names what the numbers point at: prefix caching when it is off or hits little
//! (prompts are recomputed), a larger `--max-num-batched-tokens` (more prompt tokens per step,
//! with chunked prefill keeping decode steps short), and disaggregated prefill when prefill
//! takes most of every window. The prefill ceiling and floor (catalog) are shown when known.

use super::model::{Cmp, Fix, FixStep, FlagValue, Measure, RuleId, Unit, WindowCounts};
use super::{gate, max_over, tw_mean, Ctx, Draft, Outcome, Tally};
use crate::aggregate::KeptWindow;

/// Prefill share of a window from which it is prefill-bound: 40%, the share at which the
/// spec's R1 calls prefill saturated (`Δprefill_sum / window_secs < 0.40`).
pub const PREFILL_SHARE_MIN: f64 = 0.40;
/// Mean prompt length that counts as long, tokens (ours): past ~1k tokens prefill compute
/// outweighs the per-request overhead on any GPU in the catalog.
pub const PROMPT_TOKENS_MIN: f64 = 1024.0;
/// Prompt tokens per generated token from which outputs count as short (ours): 4 prompt
/// tokens per output token means most of the work is prefill.
pub const PROMPT_TO_OUTPUT_MIN: f64 = 4.0;
/// Prefill share past which splitting prefill onto its own GPUs is worth proposing (ours):
/// when 80% of every window is prefill, decode requests wait behind it all the time.
pub const DISAGGREGATE_SHARE_MIN: f64 = 0.80;
/// Prefix-cache hit rate under which caching is proposed as the first fix, percent: R3's
/// threshold (spec "R3": hit rate < 35%).
pub const PREFIX_HIT_LOW_PCT: f64 = 35.0;
/// R6's confidence (ours): the signals are direct histogram and counter readings, as R1's
/// (0.80, spec) are.
pub const CONFIDENCE: f64 = 0.80;

const C_DATA: usize = 0;
const C_SHARE: usize = 1;
const C_PROMPT: usize = 2;
const C_RATIO: usize = 3;

fn share(w: &KeptWindow) -> Option<f64> {
    Some(w.prefill_s.delta_sum? / w.duration_s.filter(|d| *d > 0.0)?)
}

fn ratio(w: &KeptWindow) -> Option<f64> {
    let gen = w.generation_tokens_delta.filter(|g| *g > 0.0)?;
    Some(w.prompt_tokens_delta? / gen)
}

fn prompt_mean(w: &KeptWindow) -> Option<f64> {
    w.prompt_tokens.mean
}

fn judge(w: &KeptWindow) -> Result<(), (usize, Option<f64>)> {
    let (Some(s), Some(p)) = (share(w), prompt_mean(w)) else {
        return Err((C_DATA, None));
    };
    if s < PREFILL_SHARE_MIN {
        return Err((C_SHARE, Some(s * 100.0)));
    }
    if p < PROMPT_TOKENS_MIN {
        return Err((C_PROMPT, Some(p)));
    }
    match ratio(w) {
        Some(r) if r >= PROMPT_TO_OUTPUT_MIN => Ok(()),
        Some(r) => Err((C_RATIO, Some(r))),
        None => Err((C_DATA, None)),
    }
}

fn silent_reason(t: &Tally) -> String {
    let Some(d) = t.dominant() else {
        return "not triggered".to_string();
    };
    let v = d.mean.unwrap_or(f64::NAN);
    match d.cond {
        C_SHARE => format!(
            "not triggered (prefill {v:.0}% of the window < {:.0}%)",
            PREFILL_SHARE_MIN * 100.0
        ),
        C_PROMPT => format!("not triggered (prompts {v:.0} tokens < {PROMPT_TOKENS_MIN:.0})"),
        C_RATIO => format!(
            "not triggered ({v:.1} prompt tokens per output token < {PROMPT_TO_OUTPUT_MIN:.0})"
        ),
        _ => "not evaluated (no prefill-time or prompt-length histogram delta)".to_string(),
    }
}

/// Evaluates R6 over the active windows.
pub(crate) fn evaluate(ctx: &Ctx<'_>) -> Outcome {
    if let Some(r) = ctx.no_load_reason() {
        return Outcome::silent(RuleId::R6, r);
    }
    let mut fired: Vec<&KeptWindow> = Vec::new();
    let mut tally = Tally::new(4);
    for w in ctx.active_windows() {
        match judge(w) {
            Ok(()) => fired.push(w),
            Err((c, v)) => tally.add(c, v),
        }
    }
    if fired.is_empty() {
        return Outcome::silent(RuleId::R6, silent_reason(&tally));
    }
    let n = fired.len() as u64;
    let mean_share = tw_mean(&fired, share).unwrap_or(0.0);
    let mut measures = vec![Measure::condition(
        "prefill share of the window",
        mean_share * 100.0,
        Unit::Percent,
        Cmp::Ge,
        PREFILL_SHARE_MIN * 100.0,
    )];
    if let Some(p) = tw_mean(&fired, prompt_mean) {
        measures.push(Measure::condition(
            "mean prompt tokens",
            p,
            Unit::Tokens,
            Cmp::Ge,
            PROMPT_TOKENS_MIN,
        ));
    }
    if let Some(r) = tw_mean(&fired, ratio) {
        measures.push(Measure::condition(
            "prompt tokens per output token",
            r,
            Unit::Count,
            Cmp::Ge,
            PROMPT_TO_OUTPUT_MIN,
        ));
    }
    if let Some(f) = ctx.inputs.prefill_floor_ms {
        measures.push(Measure::context(
            "prefill floor per prompt (est)",
            f,
            Unit::Milliseconds,
        ));
    }
    if let Some(m) = ctx.agg.prefill_s.mean {
        measures.push(Measure::context(
            "prefill time per request (mean)",
            m * 1000.0,
            Unit::Milliseconds,
        ));
    }
    let hit = tw_mean(&fired, |w| w.prefix_cache_hit_pct);
    let peak_share = max_over(&fired, share).unwrap_or(mean_share);
    Outcome::fired(Draft {
        rule: RuleId::R6,
        r2_path: None,
        confidence: CONFIDENCE,
        confidence_basis: "fixed (ours)",
        windows: Some(WindowCounts::of(&fired, ctx.evaluable, 0)),
        significance: gate::standard_significance(n, ctx.evaluable),
        measures,
        fix: fix(ctx.inputs.prefix_caching_enabled, hit, peak_share),
    })
}

fn fix(caching: Option<bool>, hit_pct: Option<f64>, peak_share: f64) -> Fix {
    let mut steps = Vec::new();
    if caching == Some(false) {
        steps.push(FixStep::flag(
            "Enable prefix caching: prompts are recomputed from scratch",
            "--enable-prefix-caching",
            None,
            None,
        ));
    } else if hit_pct.is_some_and(|h| h < PREFIX_HIT_LOW_PCT) {
        steps.push(FixStep {
            text: format!(
                "Put shared instructions first so prefixes are reused (hit rate {:.0}%)",
                hit_pct.unwrap_or(0.0)
            ),
            flag: None,
            value: None,
            current: hit_pct.map(FlagValue::Real),
        });
    }
    steps.push(FixStep::flag(
        "Raise --max-num-batched-tokens so each step takes more prompt tokens (chunked prefill \
         keeps decode steps short meanwhile)",
        "--max-num-batched-tokens",
        None,
        None,
    ));
    if peak_share >= DISAGGREGATE_SHARE_MIN {
        steps.push(FixStep {
            text: format!(
                "Prefill takes {:.0}% of the busiest windows: move it to its own GPUs \
                 (disaggregated prefill)",
                peak_share * 100.0
            ),
            flag: None,
            value: None,
            current: None,
        });
    }
    Fix {
        summary: "Cut prefill work per request".to_string(),
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::{windows, Fixture};
    use crate::rules::RuleInputs;
    use crate::window::Window;

    /// Windows with `share` of the window in prefill, `prompt` tokens per prompt and
    /// `ratio` prompt tokens per generated token.
    fn prefill(n: u32, share_v: f64, prompt: f64, ratio_v: f64) -> Vec<Window> {
        windows(n, |w| {
            w.prefill_s.delta_sum = Some(share_v * 2.0);
            w.prompt_tokens.mean = Some(prompt);
            w.generation_tokens_delta = Some(100.0);
            w.prompt_tokens_delta = Some(100.0 * ratio_v);
        })
    }

    fn run(ws: Vec<Window>) -> Outcome {
        Fixture::new(ws, RuleInputs::default()).run(evaluate)
    }

    #[test]
    fn fires_at_the_thresholds_and_not_below() {
        assert!(run(prefill(4, 0.40, 1024.0, 4.0)).finding.is_some());
        assert!(run(prefill(4, 0.60, 4000.0, 10.0)).finding.is_some());
        let below = run(prefill(4, 0.39, 4000.0, 10.0));
        assert!(below.finding.is_none());
        assert!(below.not_fired.unwrap().reason.contains("prefill 39%"));
        let short = run(prefill(4, 0.60, 1023.0, 10.0));
        assert!(short
            .not_fired
            .unwrap()
            .reason
            .contains("prompts 1023 tokens"));
        let long_out = run(prefill(4, 0.60, 4000.0, 3.9));
        assert!(long_out
            .not_fired
            .unwrap()
            .reason
            .contains("3.9 prompt tokens"));
    }

    #[test]
    fn the_fix_follows_the_numbers() {
        let f = run(prefill(4, 0.90, 4000.0, 10.0)).finding.unwrap();
        let flags: Vec<_> = f.fix.steps.iter().filter_map(|s| s.flag.clone()).collect();
        assert!(flags.contains(&"--max-num-batched-tokens".to_string()));
        assert!(f.fix.steps.iter().any(|s| s.text.contains("disaggregated")));
        let off = RuleInputs {
            prefix_caching_enabled: Some(false),
            ..RuleInputs::default()
        };
        let f = Fixture::new(prefill(4, 0.5, 4000.0, 10.0), off)
            .run(evaluate)
            .finding
            .unwrap();
        assert_eq!(
            f.fix.steps[0].flag.as_deref(),
            Some("--enable-prefix-caching")
        );
        assert!(!f.fix.steps.iter().any(|s| s.text.contains("disaggregated")));
    }
}
