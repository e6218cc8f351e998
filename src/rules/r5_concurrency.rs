//! R5, concurrency saturation (spec "R5: Concurrency saturation"): the scheduler is pinned at
//! `max_num_seqs` while a queue builds and the KV pool still has room, so the cap, not memory,
//! is what holds requests back.
//!
//! Trigger, per active window: `running_mean` within 0.5 of the cap, queue ratio
//! `waiting / (running + waiting) >= 30%`, KV peak < 80% (the mean when no peak); the standard
//! significance gate is the spec's "sustained ≥3 windows, ≥25% of evaluable".
//! Decisions:
//! - A window whose running count exceeds the cap (mean or last scrape) is skipped: with
//!   chunked prefill, or a wrong `-m`, the cap is not the constraint (spec "Limitations").
//! - A window without any KV reading is judged on the other conditions; the missing KV lowers
//!   the confidence to 0.60 by the Confidence table.
//! - The fix branches on the recording's KV peak (the aggregate's, over every evaluable
//!   window), not the fired windows' (which are below 80% by construction): below 80%, raise
//!   the cap to where KV would reach 80% assuming KV scales with running sequences, at most
//!   twice the cap; at or above 80%, raising the cap would thrash, so add a replica or lower
//!   `--max-model-len`.

use super::model::{Cmp, Fix, FixStep, FlagValue, Measure, RuleId, Unit, WindowCounts};
use super::AT_CAP_TOLERANCE;
use super::{gate, max_over, tw_mean, Ctx, Draft, Outcome, Tally, NO_MAX_NUM_SEQS};
use crate::aggregate::KeptWindow;

/// Queue ratio at which a queue is building (spec "R5": "≥ 30%").
pub const QUEUE_RATIO_MIN: f64 = 0.30;
/// KV peak below which the pool has headroom, percent (spec "R5": "KV peak <80%").
pub const KV_HEADROOM_PCT: f64 = 80.0;
/// Confidence with TTFT and KV both present (spec "Confidence": R5 0.90).
pub const CONFIDENCE_FULL: f64 = 0.90;
/// Confidence with TTFT or KV absent (spec "Confidence": R5 0.60).
pub const CONFIDENCE_PARTIAL: f64 = 0.60;
/// Largest raise proposed at once: twice the cap, so one step stays measurable.
pub const FIX_MAX_RAISE: f64 = 2.0;

const C_DATA: usize = 0;
const C_AT_CAP: usize = 1;
const C_QUEUE: usize = 2;
const C_KV: usize = 3;
const C_DEFERRED: usize = 4;

enum Verdict {
    Fired,
    Skipped,
    Blocked(usize, Option<f64>),
}

fn judge(w: &KeptWindow, cap: f64) -> Verdict {
    let (Some(running), Some(waiting)) = (w.running_mean, w.waiting_mean) else {
        return Verdict::Blocked(C_DATA, None);
    };
    if running > cap || w.running_last.is_some_and(|r| r > cap) {
        return Verdict::Skipped;
    }
    if running < cap - AT_CAP_TOLERANCE {
        return Verdict::Blocked(C_AT_CAP, Some(running));
    }
    let total = running + waiting;
    let ratio = if total > 0.0 { waiting / total } else { 0.0 };
    if ratio < QUEUE_RATIO_MIN {
        return Verdict::Blocked(C_QUEUE, Some(ratio * 100.0));
    }
    // vLLM > 0.18 says why requests wait: a queue of `deferred` ones (LoRA budget, KV
    // transfer, a blocked status) is not held back by the cap, and a higher cap frees none.
    if let Some(deferred) = w.waiting_deferred_mean {
        let capacity = (waiting - deferred).max(0.0);
        let cap_ratio = if total > 0.0 { capacity / total } else { 0.0 };
        if cap_ratio < QUEUE_RATIO_MIN {
            return Verdict::Blocked(C_DEFERRED, Some(deferred));
        }
    }
    if let Some(kv) = w.kv_cache_peak_pct.or(w.kv_cache_pct_mean) {
        if kv >= KV_HEADROOM_PCT {
            return Verdict::Blocked(C_KV, Some(kv));
        }
    }
    Verdict::Fired
}

fn silent_reason(t: &Tally, skipped: u64, cap: u32) -> String {
    let reason = match t.dominant() {
        None => "not triggered".to_string(),
        Some(d) => {
            let v = d.mean.unwrap_or(0.0);
            match d.cond {
                C_AT_CAP => format!(
                    "not triggered (running {v:.1} below max_num_seqs {cap} by more than \
                     {AT_CAP_TOLERANCE})"
                ),
                C_QUEUE => format!(
                    "not triggered (queue ratio {v:.1}% < {:.0}%)",
                    QUEUE_RATIO_MIN * 100.0
                ),
                C_DEFERRED => format!(
                    "not triggered (the queue is {v:.1} deferred requests on average: waiting \
                     on LoRA, KV transfer or a blocked status, not on the cap)"
                ),
                C_KV => format!(
                    "not triggered (KV peak {v:.1}% >= {KV_HEADROOM_PCT:.0}%: memory, not the \
                     cap, is the limit)"
                ),
                _ => "not triggered (running or waiting not reported)".to_string(),
            }
        }
    };
    if skipped > 0 {
        format!(
            "{reason}; {skipped} windows skipped: running above max_num_seqs {cap} (chunked \
             prefill, or -m is not the server's cap)"
        )
    } else {
        reason
    }
}

/// The raised cap: where KV would reach [`KV_HEADROOM_PCT`], at most twice the cap, at least
/// one more.
fn raised_cap(cap: u32, kv_peak: Option<f64>) -> u64 {
    let capf = f64::from(cap);
    let most = capf * FIX_MAX_RAISE;
    let target = match kv_peak {
        Some(k) if k > 0.0 => (capf * KV_HEADROOM_PCT / k).min(most),
        _ => most,
    };
    (target.floor() as u64).max(u64::from(cap) + 1)
}

fn fix(ctx: &Ctx<'_>, cap: u32) -> Fix {
    let kv = ctx.agg.kv_cache_peak_pct.or(ctx.agg.kv_cache_pct_mean);
    match kv {
        Some(k) if k >= KV_HEADROOM_PCT => Fix {
            summary: "Add a replica or lower --max-model-len".to_string(),
            steps: vec![
                FixStep::text(&format!(
                    "Add a replica: KV peaked at {k:.1}%, so a higher cap would thrash"
                )),
                FixStep::flag(
                    "or lower --max-model-len to fit more sequences in the KV pool",
                    "--max-model-len",
                    None,
                    None,
                ),
            ],
        },
        _ => Fix {
            summary: "Raise --max-num-seqs".to_string(),
            steps: vec![FixStep::flag(
                &match kv {
                    Some(k) => format!(
                        "Raise --max-num-seqs: KV peaked at {k:.1}%, room for more sequences"
                    ),
                    None => {
                        "Raise --max-num-seqs (no KV reading: watch for preemptions)".to_string()
                    }
                },
                "--max-num-seqs",
                Some(FlagValue::Count(raised_cap(cap, kv))),
                Some(FlagValue::Count(u64::from(cap))),
            )],
        },
    }
}

/// Evaluates R5 over the active windows.
pub(crate) fn evaluate(ctx: &Ctx<'_>) -> Outcome {
    let Some(cap) = ctx.inputs.max_num_seqs.as_ref() else {
        return Outcome::silent(RuleId::R5, NO_MAX_NUM_SEQS);
    };
    if let Some(r) = ctx.no_load_reason() {
        return Outcome::silent(RuleId::R5, r);
    }
    let capf = f64::from(cap.value);
    let mut fired: Vec<&KeptWindow> = Vec::new();
    let mut skipped = 0u64;
    let mut tally = Tally::new(5);
    for w in ctx.active_windows() {
        match judge(w, capf) {
            Verdict::Fired => fired.push(w),
            Verdict::Skipped => skipped += 1,
            Verdict::Blocked(c, v) => tally.add(c, v),
        }
    }
    if fired.is_empty() {
        return Outcome::silent(RuleId::R5, silent_reason(&tally, skipped, cap.value));
    }
    let n = fired.len() as u64;
    let mut measures = Vec::new();
    if let Some(r) = tw_mean(&fired, |w| w.running_mean) {
        measures.push(Measure::condition(
            "requests running vs max_num_seqs − 0.5",
            r,
            Unit::Requests,
            Cmp::Ge,
            capf - AT_CAP_TOLERANCE,
        ));
    }
    let ratio = |w: &KeptWindow| {
        let (r, q) = (w.running_mean?, w.waiting_mean?);
        (r + q > 0.0).then(|| q / (r + q))
    };
    if let Some(q) = tw_mean(&fired, ratio) {
        measures.push(Measure::condition(
            "queue ratio",
            q * 100.0,
            Unit::Percent,
            Cmp::Ge,
            QUEUE_RATIO_MIN * 100.0,
        ));
    }
    let kv_fired = max_over(&fired, |w| w.kv_cache_peak_pct.or(w.kv_cache_pct_mean));
    if let Some(k) = kv_fired {
        measures.push(Measure::condition(
            "KV cache peak",
            k,
            Unit::Percent,
            Cmp::Lt,
            KV_HEADROOM_PCT,
        ));
    }
    let agg = ctx.agg;
    let ttft = agg.ttft_mean_ms.or(agg.ttft_p99_ms);
    // Name which TTFT is shown: a p99 labelled plain "TTFT" reads as a mean.
    match (agg.ttft_p99_ms, agg.ttft_mean_ms) {
        (Some(t), _) => measures.push(Measure::context("TTFT p99", t, Unit::Milliseconds)),
        (None, Some(t)) => measures.push(Measure::context("TTFT mean", t, Unit::Milliseconds)),
        (None, None) => {}
    }
    measures.push(Measure::context("max_num_seqs", capf, Unit::Requests));
    let kv_known = kv_fired.is_some() && agg.kv_cache_peak_pct.or(agg.kv_cache_pct_mean).is_some();
    let (confidence, basis) = if ttft.is_some() && kv_known {
        (CONFIDENCE_FULL, "TTFT and KV cache both present")
    } else {
        (CONFIDENCE_PARTIAL, "TTFT or KV cache absent")
    };
    Outcome::fired(Draft {
        rule: RuleId::R5,
        r2_path: None,
        confidence,
        confidence_basis: basis,
        windows: Some(WindowCounts::of(&fired, ctx.evaluable, skipped)),
        significance: gate::standard_significance(n, ctx.evaluable),
        measures,
        fix: fix(ctx, cap.value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::{idle, inputs_m, windows, Fixture};
    use crate::rules::{RuleInputs, Significance};
    use crate::window::Window;

    /// `n` windows at `running` of a cap of 16 with 8 waiting, KV 60%.
    fn pinned(n: u32, running: f64) -> Vec<Window> {
        windows(n, move |w| {
            w.running_mean = Some(running);
            w.running_last = Some(running.round());
            w.waiting_mean = Some(8.0);
            w.kv_cache_peak_pct = Some(60.0);
        })
    }

    fn run(ws: Vec<Window>, inputs: RuleInputs) -> Outcome {
        evaluate(&Fixture::new(ws, inputs).ctx())
    }

    fn fires(ws: Vec<Window>) -> bool {
        run(ws, inputs_m(16)).finding.is_some_and(|f| f.significant)
    }

    #[test]
    fn at_cap_within_half_below_at_above() {
        assert!(!fires(pinned(4, 15.49)));
        assert!(fires(pinned(4, 15.5)));
        assert!(fires(pinned(4, 16.0)));
    }

    #[test]
    fn running_above_the_cap_is_skipped() {
        let o = run(pinned(4, 16.2), inputs_m(16));
        assert!(o.finding.is_none());
        let reason = o.not_fired.unwrap().reason;
        assert!(reason.contains("4 windows skipped"), "{reason}");
        // The last scrape alone above the cap skips too.
        let mut ws = pinned(4, 16.0);
        ws[0].running_last = Some(17.0);
        let f = run(ws, inputs_m(16)).finding.unwrap();
        let w = f.windows.unwrap();
        assert_eq!((w.skipped, w.fired), (1, 3));
        // Windows 1, 2 and 3 fired: one run.
        assert_eq!(w.fired_runs, [[1, 3]]);
    }

    #[test]
    fn queue_ratio_below_at_above() {
        let with = |q: f64| {
            windows(4, move |w| {
                w.running_mean = Some(14.0);
                w.running_last = Some(14.0);
                w.waiting_mean = Some(q);
                w.kv_cache_peak_pct = Some(60.0);
            })
        };
        let run14 = |ws| run(ws, inputs_m(14)).finding.is_some_and(|f| f.significant);
        assert!(!run14(with(5.9))); // 29.65%
        assert!(run14(with(6.0))); // exactly 30%
        assert!(run14(with(6.1)));
    }

    #[test]
    fn kv_peak_below_at_above_with_mean_fallback() {
        let with = |peak: Option<f64>, mean: Option<f64>| {
            let mut ws = pinned(4, 16.0);
            for w in &mut ws {
                w.kv_cache_peak_pct = peak;
                w.kv_cache_pct_mean = mean;
                w.kv_cache_pct_last = mean;
            }
            ws
        };
        assert!(fires(with(Some(79.9), Some(50.0))));
        assert!(!fires(with(Some(80.0), Some(50.0))));
        assert!(!fires(with(Some(80.1), Some(50.0))));
        // No peak: the mean decides.
        assert!(!fires(with(None, Some(80.0))));
        assert!(fires(with(None, Some(79.9))));
    }

    #[test]
    fn sustained_needs_three_windows_and_a_quarter() {
        let mut ws = pinned(2, 16.0);
        ws.extend(windows(2, |_| {}));
        let o = run(ws, inputs_m(16));
        assert_eq!(o.finding.unwrap().significance, Significance::BelowGate);
        let mut ws = pinned(3, 16.0);
        ws.extend(windows(9, |_| {}));
        assert!(fires(ws)); // 3 of 12
        let mut ws = pinned(3, 16.0);
        ws.extend(windows(10, |_| {}));
        assert!(!fires(ws)); // 3 of 13
    }

    #[test]
    fn confidence_needs_ttft_and_kv() {
        let f = run(pinned(4, 16.0), inputs_m(16)).finding.unwrap();
        assert_eq!(f.confidence, 0.90);
        let mut ws = pinned(4, 16.0);
        for w in &mut ws {
            w.ttft_s = Default::default();
        }
        assert_eq!(run(ws, inputs_m(16)).finding.unwrap().confidence, 0.60);
        let mut ws = pinned(4, 16.0);
        for w in &mut ws {
            w.kv_cache_peak_pct = None;
            w.kv_cache_pct_mean = None;
            w.kv_cache_pct_last = None;
        }
        // Without KV the window is judged on running and queue alone.
        let f = run(ws, inputs_m(16)).finding.unwrap();
        assert!(f.significant);
        assert_eq!(f.confidence, 0.60);
    }

    #[test]
    fn fix_raises_the_cap_or_adds_a_replica() {
        // KV peak 60% everywhere: 16 × 80 / 60 = 21.3 -> 21.
        let f = run(pinned(4, 16.0), inputs_m(16)).finding.unwrap();
        assert_eq!(
            f.fix.steps[0].command_line().as_deref(),
            Some("--max-num-seqs 21")
        );
        // KV peak 20%: capped at 2x.
        assert_eq!(raised_cap(16, Some(20.0)), 32);
        assert_eq!(raised_cap(16, None), 32);
        // KV 79.9%: at least one more.
        assert_eq!(raised_cap(16, Some(79.9)), 17);
        // KV reached 85% elsewhere in the recording: a replica, not a higher cap.
        let mut ws = pinned(4, 16.0);
        ws.extend(windows(1, |w| w.kv_cache_peak_pct = Some(85.0)));
        let f = run(ws, inputs_m(16)).finding.unwrap();
        assert_eq!(f.fix.summary, "Add a replica or lower --max-model-len");
    }

    #[test]
    fn needs_a_cap_and_load() {
        let o = run(pinned(4, 16.0), RuleInputs::default());
        assert_eq!(o.not_fired.unwrap().reason, NO_MAX_NUM_SEQS);
        let o = run(vec![idle(0), idle(1)], inputs_m(16));
        assert!(o.not_fired.unwrap().reason.starts_with("no active window"));
    }

    #[test]
    fn a_queue_of_deferred_requests_is_not_the_caps_doing() {
        // 16 running at a cap of 16, 8 waiting: R5 fires...
        assert!(fires(pinned(4, 16.0)));
        // ...unless vLLM says 6 of the 8 wait on something else (2 of 24 is under 30%).
        let mut ws = pinned(4, 16.0);
        for w in &mut ws {
            w.waiting_deferred_mean = Some(6.0);
        }
        let o = run(ws, inputs_m(16));
        assert!(o.finding.is_none());
        assert!(o.not_fired.unwrap().reason.contains("6.0 deferred"));
        // With half a request deferred, 7.5 of 24 (31%) still wait on the cap: it fires.
        let mut ws = pinned(4, 16.0);
        for w in &mut ws {
            w.waiting_deferred_mean = Some(0.5);
        }
        assert!(fires(ws));
    }
}
