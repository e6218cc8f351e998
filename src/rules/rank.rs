//! Ranking and grouping (spec "Ranking"; Design, "One recommendation per iteration"):
//! `score = impact × confidence`, findings sorted by score, and grouped by root cause so that
//! each group surfaces one primary recommendation with the rest as supporting evidence.
//!
//! Impacts (the spec leaves them to us, 1-5) rate what the problem costs when it is real:
//! - R4 OOM risk, 5: the server cannot load the model, or falls over under load.
//! - R2 KV pressure, 5: preemptions recompute work and spike latency for every request.
//! - R5 concurrency saturation, 4: a queue inflates TTFT for users while the cap holds.
//! - R1 under-batching, 3: capacity paid for and idle; users are not hurt.
//! - R3 low prefix reuse, 2: an optimisation left on the table.
//! - R6 prefill-bound, 3; R7 oversized GPU, 2; R8 frontend-bound, 4 (reasons at the constants;
//!   the table in `docs/decisions.md`).
//!
//! Root causes: R2 and R5 both say the KV pool and `--max-num-seqs` are sized wrongly for each
//! other, and their fixes move the same flag in opposite directions, so they share one group
//! ([`RootCause::KvCapacity`]) and only the higher-scored fix is the recommendation. R1, R3 and
//! R4 each have their own cause. R4 is kept apart from R2 although more tensor parallelism
//! would relieve both: R4 is about the weights, a fact of configuration, R2 about traffic.

use super::model::{Finding, IssueGroup, R2Path, RootCause, RuleId};
use std::cmp::Ordering;

/// Impact of R1 (see the module header).
pub const R1_IMPACT: u8 = 3;
/// Impact of R2, both paths.
pub const R2_IMPACT: u8 = 5;
/// Impact of R3.
pub const R3_IMPACT: u8 = 2;
/// Impact of R4.
pub const R4_IMPACT: u8 = 5;
/// Impact of R5.
pub const R5_IMPACT: u8 = 4;
/// Impact of R6 (ours): long prompts cost TTFT for every user; below R5, since the fixes are
/// tuning, not a cap that refuses work.
pub const R6_IMPACT: u8 = 3;
/// Impact of R7 (ours): money only; users are not hurt.
pub const R7_IMPACT: u8 = 2;
/// Impact of R8 (ours): throughput capped below what the GPUs could do, with a queue building
/// in front of the API server.
pub const R8_IMPACT: u8 = 4;
/// Impact of R9 (ours): one rank's queue inflates TTFT while paid-for capacity idles beside
/// it, as R5's queue does.
pub const R9_IMPACT: u8 = 4;

/// The impact of a rule (R2's two paths share one: the same harm, KV exhaustion).
pub fn impact(rule: RuleId, _r2_path: Option<R2Path>) -> u8 {
    match rule {
        RuleId::R1 => R1_IMPACT,
        RuleId::R2 => R2_IMPACT,
        RuleId::R3 => R3_IMPACT,
        RuleId::R4 => R4_IMPACT,
        RuleId::R5 => R5_IMPACT,
        RuleId::R6 => R6_IMPACT,
        RuleId::R7 => R7_IMPACT,
        RuleId::R8 => R8_IMPACT,
        RuleId::R9 => R9_IMPACT,
    }
}

/// `impact × confidence` (spec "Ranking").
pub fn score(impact: u8, confidence: f64) -> f64 {
    f64::from(impact) * confidence
}

/// The root cause a rule's finding belongs to.
pub fn root_cause(rule: RuleId) -> RootCause {
    match rule {
        RuleId::R1 => RootCause::OfferedLoad,
        RuleId::R2 | RuleId::R5 => RootCause::KvCapacity,
        RuleId::R3 => RootCause::PrefixReuse,
        RuleId::R4 => RootCause::MemoryFit,
        RuleId::R6 => RootCause::PrefillBound,
        RuleId::R7 => RootCause::RightSizing,
        RuleId::R8 => RootCause::Frontend,
        RuleId::R9 => RootCause::EngineBalance,
    }
}

/// Significant first, then score (highest first), then rule id.
fn order(a: &Finding, b: &Finding) -> Ordering {
    b.significant
        .cmp(&a.significant)
        .then(b.score.total_cmp(&a.score))
        .then(a.rule.cmp(&b.rule))
}

/// Sorts findings, sets the group of each significant one, and returns the groups ordered by
/// their primary's score (ties: primary rule id).
pub fn rank(findings: &mut [Finding]) -> Vec<IssueGroup> {
    findings.sort_by(order);
    let mut groups: Vec<IssueGroup> = Vec::new();
    for f in findings.iter_mut() {
        if !f.significant {
            f.group = None;
            continue;
        }
        let cause = root_cause(f.rule);
        f.group = Some(cause);
        // Findings arrive best first, so the first of a cause is its primary.
        match groups.iter_mut().find(|g| g.root_cause == cause) {
            Some(g) => g.supporting.push(f.rule),
            None => groups.push(IssueGroup {
                root_cause: cause,
                title: cause.title().to_string(),
                primary: f.rule,
                supporting: Vec::new(),
                score: f.score,
            }),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::model::{Fix, Significance};

    fn f(rule: RuleId, confidence: f64, significant: bool) -> Finding {
        let impact = impact(rule, None);
        Finding {
            rule,
            r2_path: None,
            title: rule.title().to_string(),
            confidence,
            confidence_basis: String::new(),
            impact,
            score: score(impact, confidence),
            windows: None,
            significant,
            significance: if significant {
                Significance::Standard
            } else {
                Significance::BelowGate
            },
            measures: Vec::new(),
            fix: Fix {
                summary: String::new(),
                steps: Vec::new(),
            },
            group: None,
        }
    }

    #[test]
    fn scores_are_impact_times_confidence() {
        assert_eq!(score(R4_IMPACT, 0.95), 4.75);
        assert_eq!(score(R1_IMPACT, 0.80), 3.0 * 0.80);
        assert_eq!(score(R3_IMPACT, 0.90), 1.8);
    }

    #[test]
    fn sorted_by_score_then_id_with_insignificant_last() {
        let mut v = vec![
            f(RuleId::R3, 0.90, true),  // 1.8
            f(RuleId::R1, 0.80, true),  // 2.4
            f(RuleId::R4, 0.60, false), // 3.0 but below the gate
            f(RuleId::R5, 0.60, true),  // 2.4: ties with R1, R1 first by id
            f(RuleId::R2, 0.95, true),  // 4.75
        ];
        let groups = rank(&mut v);
        let ids: Vec<RuleId> = v.iter().map(|x| x.rule).collect();
        assert_eq!(
            ids,
            [RuleId::R2, RuleId::R1, RuleId::R5, RuleId::R3, RuleId::R4]
        );
        assert_eq!(v[4].group, None);
        // R2 and R5 share the KV-capacity group; R2 (higher score) is its primary.
        let kv = groups
            .iter()
            .find(|g| g.root_cause == RootCause::KvCapacity)
            .unwrap();
        assert_eq!(
            (kv.primary, kv.supporting.clone()),
            (RuleId::R2, vec![RuleId::R5])
        );
        let order: Vec<RootCause> = groups.iter().map(|g| g.root_cause).collect();
        assert_eq!(
            order,
            [
                RootCause::KvCapacity,
                RootCause::OfferedLoad,
                RootCause::PrefixReuse
            ]
        );
    }

    #[test]
    fn r5_leads_its_group_when_it_outscores_r2() {
        // R2 at 0.70 (KV 88-95%, no preemptions) scores 3.5; R5 at 0.90 scores 3.6.
        let mut v = vec![f(RuleId::R2, 0.70, true), f(RuleId::R5, 0.90, true)];
        let groups = rank(&mut v);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].primary, RuleId::R5);
        assert_eq!(groups[0].supporting, vec![RuleId::R2]);
        assert_eq!(v[1].group, Some(RootCause::KvCapacity));
    }
}
