//! R3, low prefix reuse (spec "R3: Low prefix reuse"): under real traffic with non-trivial
//! prompts, few prompt tokens come from the prefix cache, so prefill recomputes what could
//! have been reused.
//!
//! Trigger, per active window: prefix-cache hit rate `Δhits / Δqueries < 35%`, mean prompt
//! length >= 20 tokens, >= 5 finished requests per second, and `running_mean > 0.75`.
//! Decisions:
//! - A window without prefix-cache queries has no hit rate and does not fire, except when
//!   `cache_config_info` says prefix caching is off: then no prompt token can hit, the rate
//!   is 0% by construction (vLLM stops counting queries when the cache is off), and the
//!   window is judged at 0%. That is a fact of configuration, not a guess.
//! - Prompt length is the window's histogram mean (with the spec's cumulative fallback),
//!   else the recording's mean.

use super::model::{Cmp, Fix, FixStep, Measure, RuleId, Unit, WindowCounts};
use super::{gate, tw_mean, Ctx, Draft, Outcome, Tally};
use crate::aggregate::KeptWindow;

/// Hit rate below which reuse is low (spec "R3": "<35%").
pub const HIT_RATE_MAX: f64 = 0.35;
/// Mean prompt tokens at or above which prefix reuse matters (spec "R3": "≥20").
pub const PROMPT_TOKENS_MIN: f64 = 20.0;
/// Request rate at or above which the traffic is real (spec "R3": "≥5 req/s").
pub const REQUESTS_PER_S_MIN: f64 = 5.0;
/// Running requests above which the server is serving (spec "R3": ">0.75").
pub const RUNNING_MIN: f64 = 0.75;
/// R3's confidence (spec "Confidence": R3 0.90, fixed).
pub const CONFIDENCE: f64 = 0.90;

const C_HIT_UNKNOWN: usize = 0;
const C_HIT: usize = 1;
const C_PROMPT: usize = 2;
const C_RATE: usize = 3;
const C_RUNNING: usize = 4;

/// The window's hit rate as a fraction; 0 when caching is known to be off and nothing was
/// queried.
fn hit_rate(w: &KeptWindow, caching: Option<bool>) -> Option<f64> {
    match (w.prefix_hits_delta, w.prefix_queries_delta) {
        (Some(h), Some(q)) if q > 0.0 => Some(h / q),
        _ if caching == Some(false) => Some(0.0),
        _ => None,
    }
}

fn judge(w: &KeptWindow, ctx: &Ctx<'_>) -> Result<(), (usize, Option<f64>)> {
    let Some(hit) = hit_rate(w, ctx.inputs.prefix_caching_enabled) else {
        return Err((C_HIT_UNKNOWN, None));
    };
    if hit >= HIT_RATE_MAX {
        return Err((C_HIT, Some(hit * 100.0)));
    }
    match w.prompt_tokens.mean.or(ctx.agg.prompt_tokens_mean) {
        Some(p) if p >= PROMPT_TOKENS_MIN => {}
        p => return Err((C_PROMPT, p)),
    }
    match w.requests_per_s {
        Some(r) if r >= REQUESTS_PER_S_MIN => {}
        r => return Err((C_RATE, r)),
    }
    match w.running_mean {
        Some(r) if r > RUNNING_MIN => Ok(()),
        r => Err((C_RUNNING, r)),
    }
}

fn silent_reason(t: &Tally) -> String {
    let Some(d) = t.dominant() else {
        return "not triggered".to_string();
    };
    let v = d.mean.unwrap_or(0.0);
    match d.cond {
        C_HIT_UNKNOWN => "not triggered (no prefix-cache queries: hit rate unknown)".to_string(),
        C_HIT => format!(
            "not triggered (prefix hit rate {v:.1}% >= {:.0}%)",
            HIT_RATE_MAX * 100.0
        ),
        C_PROMPT => format!(
            "not triggered (prompts short: {v:.1} tokens < {PROMPT_TOKENS_MIN:.0}, or unknown)"
        ),
        C_RATE => format!(
            "not triggered (request rate {v:.2} req/s < {REQUESTS_PER_S_MIN:.0}, or unknown)"
        ),
        _ => format!("not triggered (running {v:.2} <= {RUNNING_MIN})"),
    }
}

fn fix(caching: Option<bool>) -> Fix {
    let restructure = [
        "Move shared instructions and context to the start of the prompt",
        "Standardize prompt templates across clients",
        "Avoid unique tokens (ids, timestamps) at the beginning of prompts",
    ];
    let mut steps = Vec::new();
    let summary = match caching {
        Some(true) => "Restructure prompts for prefix reuse",
        Some(false) => "Enable prefix caching, then restructure prompts",
        None => "Enable prefix caching if it is off; restructure prompts",
    };
    if caching != Some(true) {
        let text = if caching == Some(false) {
            "Enable prefix caching (it is off)"
        } else {
            "Enable prefix caching if it is off (cache_config_info does not say)"
        };
        steps.push(FixStep::flag(text, "--enable-prefix-caching", None, None));
    }
    steps.extend(restructure.iter().map(|t| FixStep::text(t)));
    Fix {
        summary: summary.to_string(),
        steps,
    }
}

/// Evaluates R3 over the active windows.
pub(crate) fn evaluate(ctx: &Ctx<'_>) -> Outcome {
    if let Some(r) = ctx.no_load_reason() {
        return Outcome::silent(RuleId::R3, r);
    }
    let caching = ctx.inputs.prefix_caching_enabled;
    let mut fired: Vec<&KeptWindow> = Vec::new();
    let mut tally = Tally::new(5);
    for w in ctx.active_windows() {
        match judge(w, ctx) {
            Ok(()) => fired.push(w),
            Err((c, v)) => tally.add(c, v),
        }
    }
    if fired.is_empty() {
        return Outcome::silent(RuleId::R3, silent_reason(&tally));
    }
    let n = fired.len() as u64;
    // Over the fired windows: Σhits/Σqueries, like the aggregate's rate.
    let (h, q) = fired.iter().fold((0.0, 0.0), |(h, q), w| {
        match (w.prefix_hits_delta, w.prefix_queries_delta) {
            (Some(a), Some(b)) if b > 0.0 => (h + a, q + b),
            _ => (h, q),
        }
    });
    let hit = if q > 0.0 { h / q } else { 0.0 };
    let mut measures = vec![Measure::condition(
        "prefix cache hit rate",
        hit * 100.0,
        Unit::Percent,
        Cmp::Lt,
        HIT_RATE_MAX * 100.0,
    )];
    if let Some(p) = tw_mean(&fired, |w| {
        w.prompt_tokens.mean.or(ctx.agg.prompt_tokens_mean)
    }) {
        measures.push(Measure::condition(
            "mean prompt tokens",
            p,
            Unit::Tokens,
            Cmp::Ge,
            PROMPT_TOKENS_MIN,
        ));
    }
    if let Some(r) = tw_mean(&fired, |w| w.requests_per_s) {
        measures.push(Measure::condition(
            "request rate",
            r,
            Unit::RequestsPerSecond,
            Cmp::Ge,
            REQUESTS_PER_S_MIN,
        ));
    }
    if let Some(r) = tw_mean(&fired, |w| w.running_mean) {
        measures.push(Measure::condition(
            "requests running",
            r,
            Unit::Requests,
            Cmp::Gt,
            RUNNING_MIN,
        ));
    }
    Outcome::fired(Draft {
        rule: RuleId::R3,
        r2_path: None,
        confidence: CONFIDENCE,
        confidence_basis: "fixed",
        windows: Some(WindowCounts::of(&fired, ctx.evaluable, 0)),
        significance: gate::standard_significance(n, ctx.evaluable),
        measures,
        fix: fix(caching),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::{windows, Fixture};
    use crate::rules::RuleInputs;
    use crate::window::Window;

    /// Four busy windows (6 req/s, 2 running, 100-token prompts) with `hits` of 1000 queries.
    fn busy(hits: f64) -> Vec<Window> {
        windows(4, move |w| {
            w.requests_per_s = Some(6.0);
            w.running_mean = Some(2.0);
            w.prefix_hits_delta = Some(hits);
        })
    }

    fn run(ws: Vec<Window>, caching: Option<bool>) -> Outcome {
        let inputs = RuleInputs {
            prefix_caching_enabled: caching,
            ..RuleInputs::default()
        };
        evaluate(&Fixture::new(ws, inputs).ctx())
    }

    fn fires(ws: Vec<Window>) -> bool {
        run(ws, Some(true)).finding.is_some_and(|f| f.significant)
    }

    #[test]
    fn hit_rate_below_at_above() {
        assert!(fires(busy(349.0)));
        assert!(!fires(busy(350.0)));
        let o = run(busy(351.0), Some(true));
        assert_eq!(
            o.not_fired.unwrap().reason,
            "not triggered (prefix hit rate 35.1% >= 35%)"
        );
    }

    #[test]
    fn prompt_length_below_at_above() {
        let with = |p: f64| {
            let mut ws = busy(100.0);
            for w in &mut ws {
                w.prompt_tokens.mean = Some(p);
            }
            ws
        };
        assert!(!fires(with(19.9)));
        assert!(fires(with(20.0)));
        assert!(fires(with(20.1)));
    }

    #[test]
    fn request_rate_below_at_above() {
        let with = |r: f64| {
            let mut ws = busy(100.0);
            for w in &mut ws {
                w.requests_per_s = Some(r);
            }
            ws
        };
        assert!(!fires(with(4.99)));
        assert!(fires(with(5.0)));
        assert!(fires(with(5.01)));
    }

    #[test]
    fn running_below_at_above() {
        let with = |r: f64| {
            let mut ws = busy(100.0);
            for w in &mut ws {
                w.running_mean = Some(r);
            }
            ws
        };
        assert!(!fires(with(0.74)));
        assert!(!fires(with(0.75)));
        assert!(fires(with(0.76)));
    }

    #[test]
    fn no_queries_is_unknown_unless_caching_is_off() {
        let mut ws = busy(0.0);
        for w in &mut ws {
            w.prefix_hits_delta = Some(0.0);
            w.prefix_queries_delta = Some(0.0);
        }
        let o = run(ws.clone(), None);
        assert!(o.finding.is_none());
        assert!(o.not_fired.unwrap().reason.contains("hit rate unknown"));
        let f = run(ws, Some(false)).finding.unwrap();
        assert!(f.significant);
        assert_eq!(f.measures[0].value, 0.0);
    }

    #[test]
    fn fix_depends_on_prefix_caching() {
        let off = run(busy(100.0), Some(false)).finding.unwrap();
        assert_eq!(off.confidence, 0.90);
        assert_eq!(
            off.fix.steps[0].command_line().as_deref(),
            Some("--enable-prefix-caching")
        );
        let on = run(busy(100.0), Some(true)).finding.unwrap();
        assert!(on.fix.steps.iter().all(|s| s.flag.is_none()));
        assert_eq!(on.fix.summary, "Restructure prompts for prefix reuse");
        let unknown = run(busy(100.0), None).finding.unwrap();
        assert!(unknown.fix.steps[0].text.contains("if it is off"));
    }
}
