//! What the rules found before and after, set against each other: findings resolved
//! (significant before, not after), new (significant after, not before) and persisting. A
//! finding is identified by its rule and, for R2, its path (main vs admission backlog): moving
//! from one R2 path to the other is a different problem, so it shows as resolved plus new.
//!
//! Only significant findings count: one that fired below the significance gate is noise on
//! either side, and letting it in would report "resolved" every time a window or two changed.

use crate::rules::{Diagnosis, Finding, R2Path, RuleId};
use serde::{Deserialize, Serialize};

/// How a finding changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Significant before, not after.
    Resolved,
    /// Significant after, not before.
    New,
    /// Significant on both sides.
    Persisting,
}

/// One finding's change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingChange {
    /// The rule.
    pub rule: RuleId,
    /// R2's path; `None` for other rules.
    pub r2_path: Option<R2Path>,
    /// The finding's heading.
    pub title: String,
    /// Resolved, new or persisting.
    pub kind: ChangeKind,
    /// Its score before (impact × confidence), when significant before.
    pub score_before: Option<f64>,
    /// Its score after, when significant after.
    pub score_after: Option<f64>,
}

/// The recommendation to act on next: the primary finding of the after side's top group
/// (spec Design, "One recommendation per iteration").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NextStep {
    /// The rule.
    pub rule: RuleId,
    /// The finding's heading.
    pub title: String,
    /// Its fix, in one line.
    pub fix: String,
}

/// Findings resolved, new and persisting between two diagnoses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiagnosisDiff {
    /// Significant before, not after; in the before side's rank order.
    pub resolved: Vec<FindingChange>,
    /// Significant after, not before; in the after side's rank order.
    pub new: Vec<FindingChange>,
    /// Significant on both; in the after side's rank order.
    pub persisting: Vec<FindingChange>,
    /// What to change next, from the after side.
    pub next: Option<NextStep>,
}

type Key = (RuleId, Option<R2Path>);

fn find<'a>(list: &[&'a Finding], k: Key) -> Option<&'a Finding> {
    list.iter().copied().find(|f| key(f) == k)
}

fn key(f: &Finding) -> Key {
    (f.rule, f.r2_path)
}

/// The significant findings in rank order, first of each key only.
fn significant(d: &Diagnosis) -> Vec<&Finding> {
    let mut out: Vec<&Finding> = Vec::new();
    for f in d.recommendations() {
        if !out.iter().any(|g| key(g) == key(f)) {
            out.push(f);
        }
    }
    out
}

/// Diffs two diagnoses; `None` when either side has none (nothing to set against).
pub fn diff_diagnoses(
    before: Option<&Diagnosis>,
    after: Option<&Diagnosis>,
) -> Option<DiagnosisDiff> {
    let (b, a) = (significant(before?), significant(after?));
    let change =
        |f: &Finding, kind, before: Option<&Finding>, after: Option<&Finding>| FindingChange {
            rule: f.rule,
            r2_path: f.r2_path,
            title: f.title.clone(),
            kind,
            score_before: before.map(|x| x.score),
            score_after: after.map(|x| x.score),
        };
    let resolved = b
        .iter()
        .filter(|f| find(&a, key(f)).is_none())
        .map(|f| change(f, ChangeKind::Resolved, Some(f), None))
        .collect();
    let mut new = Vec::new();
    let mut persisting = Vec::new();
    for f in &a {
        match find(&b, key(f)) {
            Some(old) => persisting.push(change(f, ChangeKind::Persisting, Some(old), Some(f))),
            None => new.push(change(f, ChangeKind::New, None, Some(f))),
        }
    }
    let after = after?;
    let next = after.groups.first().and_then(|g| {
        after.finding(g.primary).map(|f| NextStep {
            rule: f.rule,
            title: f.title.clone(),
            fix: f.fix.summary.clone(),
        })
    });
    Some(DiagnosisDiff {
        resolved,
        new,
        persisting,
        next,
    })
}
