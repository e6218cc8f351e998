//! R1, under-batching (spec "R1: Under-batching"): the scheduler runs far below its cap, no
//! queue waits, and prefill is not what keeps the batch small. The GPU is paid for and fed
//! too little; the fix is on the client side: send more requests at once.
//!
//! Trigger, per active window: `running_mean / max_num_seqs < 25%`, `waiting_mean < 2`, and
//! prefill not saturated: `Δprefill_sum / window_secs < 0.40` and `Δprefill_sum < 4.0 s`.
//! Decisions:
//! - Occupancy uses the window's time-weighted mean of `running`: it is the share of the
//!   window's capacity in use, which one scrape cannot tell.
//! - Only active windows (tier 2) are judged: an idle server (running = 0) has nothing to
//!   batch and no waste to cut, so idle windows never make R1 fire.
//! - A window with no prefill histogram delta (metric absent before vLLM 0.7, or reset) cannot
//!   pass the prefill gate and does not fire: missing is not zero.

use super::model::{Cmp, Fix, FixStep, FlagValue, Measure, RuleId, Unit, WindowCounts};
use super::{gate, max_over, tw_mean, Ctx, Draft, Outcome, Tally, NO_MAX_NUM_SEQS};
use crate::aggregate::KeptWindow;

/// Occupancy below which the batch is too small: running < 25% of `max_num_seqs` (spec "R1",
/// Scheduler occupancy).
pub const OCCUPANCY_MAX: f64 = 0.25;
/// No backlog: waiting < 2 (spec "R1", No backlog).
pub const WAITING_MAX: f64 = 2.0;
/// Prefill share of the window at which it counts as saturated: 40% (spec "R1", Prefill not
/// saturated: `Δprefill_sum / window_secs < 0.40`).
pub const PREFILL_SHARE_MAX: f64 = 0.40;
/// Absolute prefill seconds in one window at which it counts as saturated (spec "R1":
/// `Δprefill_sum < 4.0s`).
pub const PREFILL_SUM_MAX_S: f64 = 4.0;
/// R1's confidence (spec "Confidence": R1 0.80, fixed).
pub const CONFIDENCE: f64 = 0.80;

/// Blocking conditions, in the spec's order.
const C_DATA: usize = 0;
const C_OCCUPANCY: usize = 1;
const C_WAITING: usize = 2;
const C_PREFILL_UNKNOWN: usize = 3;
const C_PREFILL_SHARE: usize = 4;
const C_PREFILL_SUM: usize = 5;

/// Why one window did or did not fire.
enum Verdict {
    Fired,
    Blocked(usize, Option<f64>),
}

fn judge(w: &KeptWindow, cap: f64) -> Verdict {
    let (Some(running), Some(waiting), Some(secs)) = (w.running_mean, w.waiting_mean, w.duration_s)
    else {
        return Verdict::Blocked(C_DATA, None);
    };
    let occupancy = running / cap;
    if occupancy >= OCCUPANCY_MAX {
        return Verdict::Blocked(C_OCCUPANCY, Some(occupancy * 100.0));
    }
    if waiting >= WAITING_MAX {
        return Verdict::Blocked(C_WAITING, Some(waiting));
    }
    let Some(prefill) = w.prefill_s.delta_sum else {
        return Verdict::Blocked(C_PREFILL_UNKNOWN, None);
    };
    let share = prefill / secs;
    if share >= PREFILL_SHARE_MAX {
        return Verdict::Blocked(C_PREFILL_SHARE, Some(share * 100.0));
    }
    if prefill >= PREFILL_SUM_MAX_S {
        return Verdict::Blocked(C_PREFILL_SUM, Some(prefill));
    }
    Verdict::Fired
}

fn silent_reason(t: &Tally) -> String {
    let Some(d) = t.dominant() else {
        return "not triggered".to_string();
    };
    let v = d.mean.unwrap_or(f64::NAN);
    match d.cond {
        C_OCCUPANCY => format!(
            "not triggered (occupancy {v:.1}% of max_num_seqs >= {:.0}%)",
            OCCUPANCY_MAX * 100.0
        ),
        C_WAITING => format!("not triggered (backlog: {v:.1} waiting >= {WAITING_MAX:.0})"),
        C_PREFILL_UNKNOWN => {
            "not triggered (no prefill-time histogram: the prefill gate cannot be checked)"
                .to_string()
        }
        C_PREFILL_SHARE => format!("not triggered (prefill saturated at {v:.0}%)"),
        C_PREFILL_SUM => format!(
            "not triggered (prefill saturated: {v:.1} s of prefill per window >= \
             {PREFILL_SUM_MAX_S:.1} s)"
        ),
        _ => "not triggered (running or waiting not reported)".to_string(),
    }
}

/// Evaluates R1 over the active windows.
pub(crate) fn evaluate(ctx: &Ctx<'_>) -> Outcome {
    let Some(cap) = ctx.inputs.max_num_seqs.as_ref() else {
        return Outcome::silent(RuleId::R1, NO_MAX_NUM_SEQS);
    };
    if let Some(r) = ctx.no_load_reason() {
        return Outcome::silent(RuleId::R1, r);
    }
    let capf = f64::from(cap.value);
    let mut fired: Vec<&KeptWindow> = Vec::new();
    let mut tally = Tally::new(6);
    for w in ctx.active_windows() {
        match judge(w, capf) {
            Verdict::Fired => fired.push(w),
            Verdict::Blocked(c, v) => tally.add(c, v),
        }
    }
    if fired.is_empty() {
        return Outcome::silent(RuleId::R1, silent_reason(&tally));
    }
    let n = fired.len() as u64;
    let running = tw_mean(&fired, |w| w.running_mean).unwrap_or(0.0);
    let mut measures = vec![Measure::condition(
        "occupancy of max_num_seqs",
        running / capf * 100.0,
        Unit::Percent,
        Cmp::Lt,
        OCCUPANCY_MAX * 100.0,
    )];
    if let Some(waiting) = tw_mean(&fired, |w| w.waiting_mean) {
        measures.push(Measure::condition(
            "requests waiting",
            waiting,
            Unit::Requests,
            Cmp::Lt,
            WAITING_MAX,
        ));
    }
    let share = |w: &KeptWindow| Some(w.prefill_s.delta_sum? / w.duration_s?);
    if let Some(s) = max_over(&fired, share) {
        measures.push(Measure::condition(
            "prefill share of window (max)",
            s * 100.0,
            Unit::Percent,
            Cmp::Lt,
            PREFILL_SHARE_MAX * 100.0,
        ));
    }
    if let Some(s) = max_over(&fired, |w| w.prefill_s.delta_sum) {
        measures.push(Measure::condition(
            "prefill time per window (max)",
            s,
            Unit::Seconds,
            Cmp::Lt,
            PREFILL_SUM_MAX_S,
        ));
    }
    measures.push(Measure::context(
        "requests running",
        running,
        Unit::Requests,
    ));
    measures.push(Measure::context("max_num_seqs", capf, Unit::Requests));
    // Enough requests in flight to leave the under-batched zone: a quarter of the cap.
    let target = (capf * OCCUPANCY_MAX).ceil().max(1.0) as u64;
    let fix = Fix {
        summary: "Raise client concurrency".to_string(),
        steps: vec![FixStep {
            text: format!(
                "Keep at least {target} requests in flight (a quarter of max_num_seqs {}); \
                 check the client's connection pool or rate limiter",
                cap.value
            ),
            flag: None,
            value: Some(FlagValue::Count(target)),
            current: Some(FlagValue::Real(running)),
        }],
    };
    Outcome::fired(Draft {
        rule: RuleId::R1,
        r2_path: None,
        confidence: CONFIDENCE,
        confidence_basis: "fixed",
        windows: Some(WindowCounts::of(&fired, ctx.evaluable, 0)),
        significance: gate::standard_significance(n, ctx.evaluable),
        measures,
        fix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::{idle, inputs_m, windows, Fixture};
    use crate::rules::{RuleInputs, Significance};
    use crate::window::Window;

    fn run(ws: Vec<Window>, inputs: RuleInputs) -> Outcome {
        let fx = Fixture::new(ws, inputs);
        evaluate(&fx.ctx())
    }

    /// Four windows with `running` out of a cap of 16 and everything else under-batched.
    fn low(running: f64) -> Vec<Window> {
        windows(4, |w| {
            w.running_mean = Some(running);
            w.running_last = Some(running.max(1.0));
        })
    }

    fn fired(o: &Outcome) -> bool {
        o.finding.as_ref().is_some_and(|f| f.significant)
    }

    #[test]
    fn occupancy_threshold_below_at_above() {
        // 3.9/16 = 24.4% fires; 4/16 = 25% exactly does not; 4.1/16 does not.
        assert!(fired(&run(low(3.9), inputs_m(16))));
        assert!(!fired(&run(low(4.0), inputs_m(16))));
        let o = run(low(4.1), inputs_m(16));
        assert!(o.finding.is_none());
        assert_eq!(
            o.not_fired.unwrap().reason,
            "not triggered (occupancy 25.6% of max_num_seqs >= 25%)"
        );
    }

    #[test]
    fn waiting_threshold_below_at_above() {
        let with_waiting = |q: f64| {
            let mut ws = low(2.0);
            for w in &mut ws {
                w.waiting_mean = Some(q);
            }
            run(ws, inputs_m(16))
        };
        assert!(fired(&with_waiting(1.9)));
        assert!(!fired(&with_waiting(2.0)));
        assert!(!fired(&with_waiting(2.1)));
    }

    #[test]
    fn prefill_share_gate_below_at_above() {
        // Windows are 2 s: 0.79 s is 39.5%, 0.8 s is exactly 40%, 0.81 s is above.
        let with_prefill = |s: f64| {
            let mut ws = low(2.0);
            for w in &mut ws {
                w.prefill_s.delta_sum = Some(s);
            }
            run(ws, inputs_m(16))
        };
        assert!(fired(&with_prefill(0.79)));
        assert!(!fired(&with_prefill(0.8)));
        let o = with_prefill(1.1);
        assert!(o.finding.is_none());
        assert_eq!(
            o.not_fired.unwrap().reason,
            "not triggered (prefill saturated at 55%)"
        );
    }

    #[test]
    fn prefill_absolute_gate_below_at_above() {
        // 12 s windows so that the share stays below 40% while the sum crosses 4 s.
        let with_prefill = |s: f64| {
            let mut ws = low(2.0);
            for w in &mut ws {
                w.duration_s = Some(12.0);
                w.prefill_s.delta_sum = Some(s);
            }
            run(ws, inputs_m(16))
        };
        assert!(fired(&with_prefill(3.99)));
        assert!(!fired(&with_prefill(4.0)));
        let o = with_prefill(4.01);
        assert!(o.not_fired.unwrap().reason.contains("4.0 s of prefill"));
    }

    #[test]
    fn missing_prefill_histogram_does_not_fire() {
        let mut ws = low(2.0);
        for w in &mut ws {
            w.prefill_s.delta_sum = None;
        }
        let o = run(ws, inputs_m(16));
        assert!(o.finding.is_none());
        assert!(o.not_fired.unwrap().reason.contains("prefill gate cannot"));
    }

    #[test]
    fn no_cap_means_silent() {
        let o = run(low(1.0), RuleInputs::default());
        assert!(o.finding.is_none());
        assert_eq!(o.not_fired.unwrap().reason, NO_MAX_NUM_SEQS);
    }

    #[test]
    fn idle_windows_never_fire() {
        let o = run((0..6).map(idle).collect(), inputs_m(16));
        assert!(o.finding.is_none());
        assert!(o.not_fired.unwrap().reason.starts_with("no active window"));
        // Idle windows count in the denominator: 3 under-batched of 13 evaluable is 23%.
        let mut ws = low(1.0);
        ws.truncate(3);
        ws.extend((3..13).map(idle));
        let o = run(ws, inputs_m(16));
        let f = o.finding.unwrap();
        assert_eq!(f.significance, Significance::BelowGate);
        assert_eq!(f.windows.unwrap().evaluable, 13);
        assert!(o.not_fired.unwrap().reason.starts_with("fired in 3 of 13"));
    }

    #[test]
    fn finding_carries_confidence_measures_and_fix() {
        let f = run(low(2.0), inputs_m(16)).finding.unwrap();
        assert_eq!(f.confidence, 0.80);
        assert_eq!(
            f.measures[0].describe(),
            "occupancy of max_num_seqs 12.5% < 25.0%"
        );
        assert_eq!(f.fix.steps[0].value, Some(FlagValue::Count(4)));
        assert_eq!(f.windows.unwrap().fired, 4);
    }
}
