//! The diagnosis rules R1-R5 (spec "Rules") and R6-R8 (ours), their confidence, the
//! significance gate, and the ranking and grouping of what they find.
//!
//! [`diagnose`] is a pure function of the windows, their aggregate and [`RuleInputs`]: no
//! clock, no flags, no hash-map iteration, so the same recording gives the same
//! [`Diagnosis`]. The shared traffic gate ([`crate::aggregate::window_gate`]) is called once
//! per window here and its verdicts are handed to every rule (spec Design, "Shared traffic
//! gate").
//!
//! Which windows each rule reads:
//! - R2 evaluates every *evaluable* window (tier 1): KV near full or preemptions are a
//!   problem whatever the traffic looked like at the last scrape.
//! - R1, R3 and R5 evaluate *active* windows only (tier 2): the spec's rules fire "under
//!   load", and an idle server has no waste to cut. An idle window never makes R1 fire.
//! - R4 reads no window: it is a configuration fact.
//!
//! The significance gate's denominator is, as the spec writes it, every evaluable window, for
//! every rule; a window a rule could not judge (idle for R1/R3/R5, skewed sources for R2)
//! counts as not fired.
//!
//! Per-window gauges: occupancy, queue ratios and the running count are compared on the
//! window's time-weighted *means* (`running_mean`, `waiting_mean`), not the last scrape: a
//! ratio such as "occupancy" describes the whole window, and R3's "running > 0.75" threshold
//! only makes sense for a mean. KV pressure uses the window's peak (spec: "Peak over average").

mod gate;
mod inputs;
mod model;
mod r1_under_batching;
mod r2_kv_pressure;
mod r3_prefix_reuse;
mod r4_oom;
mod r5_concurrency;
mod r6_prefill_bound;
mod r7_right_sizing;
mod r8_frontend_bound;
mod r9_engine_imbalance;
mod rank;
pub mod replica_imbalance;
#[cfg(test)]
mod testutil;

pub use gate::{
    standard as significance_gate, MIN_FIRED_FRACTION, MIN_FIRED_WINDOWS, R2_KV_CRITICAL_PCT,
};
pub use inputs::{
    kv_capacity_tokens, prefix_caching_enabled, GpuOption, MemoryFacts, RuleInputs, SizingFacts,
};
pub use model::{
    Cmp, Diagnosis, Finding, Fix, FixStep, FlagValue, IssueGroup, Measure, MeasureRole, NotFired,
    R2Path, RootCause, RuleId, Significance, Unit, WindowCounts,
};
pub use rank::{impact, root_cause, score};

use crate::aggregate::KeptWindow;
use crate::aggregate::{time_weighted, Aggregate, Gate};
use crate::window::WindowSet;

/// How close running must be to the cap to count as "at the cap" (spec "R5": "running ≈
/// max_num_seqs, within 0.5"). R5 fires at the cap; R2's backlog path needs the exact opposite
/// ("running < max_num_seqs"), so both read this one constant.
pub const AT_CAP_TOLERANCE: f64 = 0.5;

/// The reason R1 and R5 give when no cap is known (spec "Fallbacks": "R1 and R5 silent").
pub const NO_MAX_NUM_SEQS: &str = "no max_num_seqs: pass -m";

/// What every rule sees: the windows with their gate verdicts, the aggregate and the inputs.
pub(crate) struct Ctx<'a> {
    pub windows: &'a [KeptWindow],
    pub gates: Vec<Gate>,
    pub evaluable: u64,
    pub active: u64,
    pub agg: &'a Aggregate,
    pub inputs: &'a RuleInputs,
    /// The data-parallel engines' `engine` labels, in the windows' per-engine order.
    pub engines: &'a [String],
}

impl<'a> Ctx<'a> {
    pub fn new(
        set: &'a WindowSet,
        kept: &'a [KeptWindow],
        agg: &'a Aggregate,
        inputs: &'a RuleInputs,
    ) -> Ctx<'a> {
        let gates: Vec<Gate> = kept.iter().map(|w| w.gate(set.has_gpu_data)).collect();
        let evaluable = gates.iter().filter(|g| g.is_evaluable()).count() as u64;
        let active = gates.iter().filter(|g| g.is_active()).count() as u64;
        Ctx {
            windows: kept,
            gates,
            evaluable,
            active,
            agg,
            inputs,
            engines: &set.mapping.engines,
        }
    }

    /// Windows passing tier 1.
    pub fn evaluable_windows(&self) -> impl Iterator<Item = &'a KeptWindow> + '_ {
        self.windows
            .iter()
            .zip(&self.gates)
            .filter(|(_, g)| g.is_evaluable())
            .map(|(w, _)| w)
    }

    /// Windows passing tier 2.
    pub fn active_windows(&self) -> impl Iterator<Item = &'a KeptWindow> + '_ {
        self.windows
            .iter()
            .zip(&self.gates)
            .filter(|(_, g)| g.is_active())
            .map(|(w, _)| w)
    }

    /// The silent reason shared by the rules that need load, when there was none.
    pub fn no_load_reason(&self) -> Option<String> {
        if self.evaluable == 0 {
            Some("no evaluable window".to_string())
        } else if self.active == 0 {
            Some(format!(
                "no active window: the server was idle in all {} evaluable windows",
                self.evaluable
            ))
        } else {
            None
        }
    }
}

/// A finding before ranking.
pub(crate) struct Draft {
    pub rule: RuleId,
    pub r2_path: Option<R2Path>,
    pub confidence: f64,
    pub confidence_basis: &'static str,
    pub windows: Option<WindowCounts>,
    pub significance: Significance,
    pub measures: Vec<Measure>,
    pub fix: Fix,
}

/// What one rule concluded: a finding when it fired, a reason when it did not surface.
pub(crate) struct Outcome {
    pub finding: Option<Finding>,
    pub not_fired: Option<NotFired>,
}

impl Outcome {
    /// The rule stayed silent.
    pub fn silent(rule: RuleId, reason: impl Into<String>) -> Outcome {
        Outcome {
            finding: None,
            not_fired: Some(NotFired {
                rule,
                reason: reason.into(),
            }),
        }
    }

    /// The rule fired; below the gate it also explains itself in `not_fired`.
    pub fn fired(d: Draft) -> Outcome {
        let impact = rank::impact(d.rule, d.r2_path);
        let significant = d.significance.is_significant();
        let not_fired = match (significant, &d.windows) {
            (false, Some(w)) => Some(NotFired {
                rule: d.rule,
                reason: gate::below_gate_reason(w.fired, w.evaluable),
            }),
            _ => None,
        };
        Outcome {
            finding: Some(Finding {
                rule: d.rule,
                r2_path: d.r2_path,
                title: d.rule.title().to_string(),
                confidence: d.confidence,
                confidence_basis: d.confidence_basis.to_string(),
                impact,
                score: rank::score(impact, d.confidence),
                windows: d.windows,
                significant,
                significance: d.significance,
                measures: d.measures,
                fix: d.fix,
                group: None,
            }),
            not_fired,
        }
    }
}

/// Counts why windows did not fire, per condition (indexed in the spec's order), to explain a
/// silent rule by its most common blocker.
pub(crate) struct Tally {
    /// Per condition: windows blocked, Σ value, values seen.
    slots: Vec<(u64, f64, u64)>,
}

/// The most common blocker and the mean of its offending values.
pub(crate) struct Dominant {
    pub cond: usize,
    pub mean: Option<f64>,
}

impl Tally {
    pub fn new(conditions: usize) -> Tally {
        Tally {
            slots: vec![(0, 0.0, 0); conditions],
        }
    }

    /// One window blocked by `cond`, with the offending value when there is one.
    pub fn add(&mut self, cond: usize, value: Option<f64>) {
        if let Some(s) = self.slots.get_mut(cond) {
            s.0 += 1;
            if let Some(v) = value.filter(|v| v.is_finite()) {
                s.1 += v;
                s.2 += 1;
            }
        }
    }

    /// The condition that blocked most windows (ties: the earlier condition).
    pub fn dominant(&self) -> Option<Dominant> {
        let mut best: Option<(usize, &(u64, f64, u64))> = None;
        for (i, s) in self.slots.iter().enumerate() {
            if s.0 > 0 && best.is_none_or(|(_, b)| s.0 > b.0) {
                best = Some((i, s));
            }
        }
        best.map(|(cond, s)| Dominant {
            cond,
            mean: (s.2 > 0).then(|| s.1 / s.2 as f64),
        })
    }
}

/// Time-weighted mean of a value over some windows (the aggregate's formula).
pub(crate) fn tw_mean(
    windows: &[&KeptWindow],
    f: impl Fn(&KeptWindow) -> Option<f64>,
) -> Option<f64> {
    time_weighted(windows, f)
}

/// Largest value over some windows.
pub(crate) fn max_over(
    windows: &[&KeptWindow],
    f: impl Fn(&KeptWindow) -> Option<f64>,
) -> Option<f64> {
    windows
        .iter()
        .filter_map(|w| f(w).filter(|v| v.is_finite()))
        .reduce(f64::max)
}

/// Runs every rule over a recording's windows and ranks what they find.
///
/// `windows`, `kept` (what is kept of each of its windows, [`KeptWindow::of`]) and `agg` must
/// come from the same recording (`agg = aggregate(windows)`); the aggregate supplies recording-wide figures (the KV peak for R5's fix, TTFT presence for R5's
/// confidence, the prompt-length fallback for R2's backlog path).
pub fn diagnose(
    windows: &WindowSet,
    kept: &[KeptWindow],
    agg: &Aggregate,
    inputs: &RuleInputs,
) -> Diagnosis {
    let ctx = Ctx::new(windows, kept, agg, inputs);
    let outcomes = [
        r1_under_batching::evaluate(&ctx),
        r2_kv_pressure::evaluate(&ctx),
        r3_prefix_reuse::evaluate(&ctx),
        r4_oom::evaluate(&ctx),
        r5_concurrency::evaluate(&ctx),
        r6_prefill_bound::evaluate(&ctx),
        r7_right_sizing::evaluate(&ctx),
        r8_frontend_bound::evaluate(&ctx),
        r9_engine_imbalance::evaluate(&ctx),
    ];
    let mut findings = Vec::new();
    let mut not_fired = Vec::new();
    for o in outcomes {
        findings.extend(o.finding);
        not_fired.extend(o.not_fired);
    }
    let groups = rank::rank(&mut findings);
    not_fired.sort_by_key(|n| n.rule);
    Diagnosis {
        windows_total: kept.len() as u64,
        windows_evaluable: ctx.evaluable,
        windows_active: ctx.active,
        findings,
        groups,
        not_fired,
    }
}

#[cfg(test)]
mod tests;
