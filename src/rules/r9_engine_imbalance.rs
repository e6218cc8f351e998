//! R9, engine imbalance (ours): a server with several data-parallel engines (`engine` labels)
//! where one rank queues requests or preempts while another idles. Summed over engines the
//! server looks half busy and healthy; per engine, one rank is the bottleneck, and the fix is
//! how requests are spread (the DP load balancer, or the router in front), not vLLM's caps.
//!
//! Trigger, per evaluable window with two or more engines: some engine is under pressure
//! (at least [`WAITING_MIN`] requests waiting, or a preemption) while another has no queue
//! (fewer than [`IDLE_WAITING_MAX`] waiting) and runs at most [`IDLE_SHARE_MAX`] of the busy
//! engine's requests. Standard significance gate.

use super::model::{Cmp, Fix, FixStep, Measure, RuleId, Unit, WindowCounts};
use super::{gate, Ctx, Draft, Outcome};
use crate::aggregate::KeptWindow;

/// Waiting requests that put an engine under pressure: the spec's R1 backlog line
/// (`waiting < 2` is no backlog).
pub const WAITING_MIN: f64 = 2.0;
/// Waiting requests below which an engine has no queue (ours): under one on average.
pub const IDLE_WAITING_MAX: f64 = 1.0;
/// Share of the busy engine's running requests at or below which another engine idles
/// (ours): half the load of its neighbour is not a rounding difference.
pub const IDLE_SHARE_MAX: f64 = 0.5;
/// R9's confidence (ours): both sides are read from the same scrape.
pub const CONFIDENCE: f64 = 0.80;

/// The busy and the idle engine of a window, when it is imbalanced.
fn pair(w: &KeptWindow) -> Option<(usize, usize)> {
    let pressure = |i: usize| {
        let e = &w.engines[i];
        e.waiting_mean.is_some_and(|q| q >= WAITING_MIN)
            || e.preemptions_delta.is_some_and(|p| p > 0.0)
    };
    let busy = (0..w.engines.len())
        .filter(|&i| pressure(i))
        .max_by(|&a, &b| {
            let r = |i: usize| w.engines[i].running_mean.unwrap_or(0.0);
            r(a).total_cmp(&r(b))
        })?;
    let busy_running = w.engines[busy].running_mean?;
    let idle = (0..w.engines.len())
        .filter(|&i| i != busy)
        .filter(|&i| {
            let e = &w.engines[i];
            e.waiting_mean.is_some_and(|q| q < IDLE_WAITING_MAX)
                && e.running_mean
                    .is_some_and(|r| r <= busy_running * IDLE_SHARE_MAX)
        })
        .min_by(|&a, &b| {
            let r = |i: usize| w.engines[i].running_mean.unwrap_or(0.0);
            r(a).total_cmp(&r(b))
        })?;
    Some((busy, idle))
}

/// Evaluates R9 over the evaluable windows.
pub(crate) fn evaluate(ctx: &Ctx<'_>) -> Outcome {
    if ctx.evaluable == 0 {
        return Outcome::silent(RuleId::R9, "no evaluable window");
    }
    if ctx.engines.len() < 2 {
        return Outcome::silent(RuleId::R9, "not evaluated (one engine)");
    }
    let mut fired: Vec<&KeptWindow> = Vec::new();
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for w in ctx.evaluable_windows() {
        if let Some(p) = pair(w) {
            fired.push(w);
            pairs.push(p);
        }
    }
    if fired.is_empty() {
        return Outcome::silent(
            RuleId::R9,
            "not triggered (no engine queued or preempted while another idled)",
        );
    }
    // The pair seen most often names the engines in the finding (ties: the lower indices).
    let mut counts: Vec<((usize, usize), usize)> = Vec::new();
    for p in &pairs {
        match counts.iter_mut().find(|(q, _)| q == p) {
            Some((_, n)) => *n += 1,
            None => counts.push((*p, 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let (busy, idle) = counts[0].0;
    let name = |i: usize| ctx.engines.get(i).cloned().unwrap_or_else(|| i.to_string());
    let mean = |i: usize, f: fn(&crate::window::EngineWindow) -> Option<f64>| {
        let vals: Vec<f64> = fired.iter().filter_map(|w| f(w.engines.get(i)?)).collect();
        (!vals.is_empty()).then(|| vals.iter().sum::<f64>() / vals.len() as f64)
    };
    let mut measures = Vec::new();
    if let Some(q) = mean(busy, |e| e.waiting_mean) {
        measures.push(Measure::condition(
            &format!("engine {} waiting", name(busy)),
            q,
            Unit::Requests,
            Cmp::Ge,
            WAITING_MIN,
        ));
    }
    if let Some(r) = mean(busy, |e| e.running_mean) {
        measures.push(Measure::context(
            &format!("engine {} running", name(busy)),
            r,
            Unit::Requests,
        ));
    }
    if let Some(r) = mean(idle, |e| e.running_mean) {
        measures.push(Measure::context(
            &format!("engine {} running", name(idle)),
            r,
            Unit::Requests,
        ));
    }
    let n = fired.len() as u64;
    Outcome::fired(Draft {
        rule: RuleId::R9,
        r2_path: None,
        confidence: CONFIDENCE,
        confidence_basis: "per-engine gauges of one scrape (ours)",
        windows: Some(WindowCounts::of(&fired, ctx.evaluable, 0)),
        significance: gate::standard_significance(n, ctx.evaluable),
        measures,
        fix: Fix {
            summary: "Spread requests evenly over the data-parallel ranks".to_string(),
            steps: vec![FixStep {
                text: format!(
                    "Engine {} queues while engine {} idles: check the data-parallel load \
                     balancer or the router in front (sticky sessions, prefix-aware routing \
                     that piles on one rank); vLLM's caps are not the limit",
                    name(busy),
                    name(idle)
                ),
                flag: None,
                value: None,
                current: None,
            }],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::{windows, Fixture};
    use crate::rules::RuleInputs;
    use crate::window::EngineWindow;
    use crate::window::Window;

    fn two(busy: (f64, f64), idle: (f64, f64)) -> Vec<Window> {
        windows(4, move |w| {
            w.engines = vec![
                EngineWindow {
                    running_mean: Some(busy.0),
                    waiting_mean: Some(busy.1),
                    kv_cache_peak_pct: Some(50.0),
                    preemptions_delta: Some(0.0),
                },
                EngineWindow {
                    running_mean: Some(idle.0),
                    waiting_mean: Some(idle.1),
                    kv_cache_peak_pct: Some(10.0),
                    preemptions_delta: Some(0.0),
                },
            ];
        })
    }

    fn run(ws: Vec<Window>) -> Outcome {
        let mut fx = Fixture::new(ws, RuleInputs::default());
        fx.set.mapping.engines = vec!["0".into(), "1".into()];
        fx.run(evaluate)
    }

    #[test]
    fn one_rank_queueing_while_the_other_idles_fires_and_names_them() {
        let f = run(two((8.0, 5.0), (2.0, 0.0))).finding.unwrap();
        assert!(f.significant);
        assert!(f.fix.steps[0]
            .text
            .starts_with("Engine 0 queues while engine 1 idles"));
        // At the thresholds: 2 waiting, the other at exactly half the load.
        assert!(run(two((8.0, 2.0), (4.0, 0.0))).finding.is_some());
    }

    #[test]
    fn balanced_or_single_engine_servers_stay_silent() {
        assert!(run(two((8.0, 5.0), (8.0, 5.0))).finding.is_none());
        assert!(run(two((8.0, 1.9), (1.0, 0.0))).finding.is_none());
        assert!(run(two((8.0, 5.0), (4.1, 0.0))).finding.is_none());
        let one = Fixture::new(two((8.0, 5.0), (2.0, 0.0)), RuleInputs::default()).run(evaluate);
        assert_eq!(one.not_fired.unwrap().reason, "not evaluated (one engine)");
    }
}
