//! Two fleet reports compared: targets matched by name, each pair through [`compare`] exactly
//! as two single recordings would be, and the fleet's totals side by side.
//!
//! The fleet's direction is ours: WORSE when any matched target got worse (a regression on
//! one replica is what a fleet-wide change must not hide behind the others' gains), BETTER
//! when at least one got better and none worse, PLATEAU otherwise. A target on one side only
//! is listed, never compared; a target the single comparison refuses (a different model
//! without `--allow-different`) carries the refusal and counts for no direction.

use super::rows::row as total_row;
use super::{compare, CompareConfig, Comparison, DeltaUnit, Direction, Goal, MetricDelta};
use crate::report::fleet::{FleetReport, FleetTotals};
use crate::report::SCHEMA_VERSION;
use serde::{Deserialize, Serialize};

/// One target of the fleets compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetComparison {
    /// Its name, the key the two fleets were matched on.
    pub name: String,
    /// Which side holds it: `both`, `before` or `after`.
    pub present: Presence,
    /// The comparison of its two reports, when it is on both sides and could be compared.
    pub comparison: Option<Comparison>,
    /// Why it was not compared, when it is on both sides but was refused.
    pub refused: Option<String>,
}

/// Which side a target is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Both fleets.
    Both,
    /// The baseline only: the target went away.
    BeforeOnly,
    /// The later fleet only: a new target.
    AfterOnly,
}

/// Everything `profile compare` says about two fleet recordings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetComparison {
    /// [`SCHEMA_VERSION`] at the time of writing.
    pub schema_version: String,
    /// The baseline fleet's label.
    pub before: String,
    /// The later fleet's label.
    pub after: String,
    /// The fleet's direction (see the module header).
    pub direction: Direction,
    /// How many matched targets went each way: `(better, plateau, worse)`.
    pub counts: (u32, u32, u32),
    /// The fleet totals side by side: throughput, cost and recoverable cost.
    pub totals: Vec<MetricDelta>,
    /// Every target, in the baseline's order, then the later fleet's new ones.
    pub targets: Vec<TargetComparison>,
}

/// A total is compared only when it covers the same share of each fleet: a sum over 3 of 4
/// targets beside one over 4 of 4 would show a change that is only a gap.
fn comparable(b: &FleetTotals, a: &FleetTotals, known: fn(&FleetTotals) -> u32) -> bool {
    known(b) == b.targets && known(a) == a.targets
}

fn totals(b: &FleetTotals, a: &FleetTotals) -> Vec<MetricDelta> {
    let gate = |ok: bool, v: Option<f64>| v.filter(|_| ok);
    let cost_ok = comparable(b, a, |t| t.cost_known);
    let rec_ok = comparable(b, a, |t| t.recoverable_known);
    vec![
        total_row(
            "generation_tokens_per_s",
            "fleet throughput",
            DeltaUnit::TokensPerSecond,
            Goal::Higher,
            b.generation_tokens_per_s,
            a.generation_tokens_per_s,
        ),
        total_row(
            "cost_per_hour_usd",
            "fleet cost",
            DeltaUnit::UsdPerHour,
            Goal::Lower,
            gate(cost_ok, b.cost_per_hour_usd),
            gate(cost_ok, a.cost_per_hour_usd),
        ),
        total_row(
            "recoverable_usd_per_hour",
            "fleet recoverable",
            DeltaUnit::UsdPerHour,
            Goal::Lower,
            gate(rec_ok, b.recoverable_usd_per_hour),
            gate(rec_ok, a.recoverable_usd_per_hour),
        ),
        total_row(
            "targets_up",
            "targets up",
            DeltaUnit::Count,
            Goal::Higher,
            Some(f64::from(b.targets_up)),
            Some(f64::from(a.targets_up)),
        ),
    ]
}

/// Compares two fleets target by target.
pub fn compare_fleets(
    before: &FleetReport,
    after: &FleetReport,
    config: &CompareConfig,
) -> FleetComparison {
    let mut targets = Vec::new();
    let mut counts = (0u32, 0u32, 0u32);
    for b in &before.targets {
        let Some(a) = after.targets.iter().find(|a| a.name == b.name) else {
            targets.push(TargetComparison {
                name: b.name.clone(),
                present: Presence::BeforeOnly,
                comparison: None,
                refused: None,
            });
            continue;
        };
        let (comparison, refused) = match compare(&b.report, &a.report, config) {
            Ok(c) => {
                match c.verdict.direction {
                    Direction::Better => counts.0 += 1,
                    Direction::Plateau => counts.1 += 1,
                    Direction::Worse => counts.2 += 1,
                }
                (Some(c), None)
            }
            Err(e) => (None, Some(e.to_string())),
        };
        targets.push(TargetComparison {
            name: b.name.clone(),
            present: Presence::Both,
            comparison,
            refused,
        });
    }
    for a in &after.targets {
        if !before.targets.iter().any(|b| b.name == a.name) {
            targets.push(TargetComparison {
                name: a.name.clone(),
                present: Presence::AfterOnly,
                comparison: None,
                refused: None,
            });
        }
    }
    let direction = if counts.2 > 0 {
        Direction::Worse
    } else if counts.0 > 0 {
        Direction::Better
    } else {
        Direction::Plateau
    };
    FleetComparison {
        schema_version: SCHEMA_VERSION.to_string(),
        before: before.label.clone(),
        after: after.label.clone(),
        direction,
        counts,
        totals: totals(&before.totals, &after.totals),
        targets,
    }
}
