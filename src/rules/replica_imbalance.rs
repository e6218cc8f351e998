//! Replica imbalance (ours): across the targets of a fleet that serve the same model, one
//! replica holds a queue at its cap while another has free slots at the same moment. Each
//! replica alone looks like a capacity problem (R5 on the busy one, R1 on the idle one), but
//! the fleet has room: the router in front spreads the requests badly, and raising caps or
//! adding replicas would pay for capacity that already sits idle.
//!
//! The replicas' windows are set on one clock (the wall time of each window's middle,
//! through each recording's start anchor) and cut into [`CELL_NS`] cells. In a cell, a
//! replica is *saturated* when at least [`WAITING_MIN`] requests wait and, where its cap is
//! known, it runs at least [`AT_CAP_SHARE`] of it; it has *free slots* when fewer than
//! [`FREE_WAITING_MAX`] wait and it runs at most [`FREE_SHARE_MAX`] of its cap (of the
//! saturated replica's running count when its own cap is unknown). A pair fires in the cells
//! where one is saturated and the other has free slots, and surfaces through the standard
//! significance gate over the cells both replicas were observed in. Idle windows count: an
//! idle replica beside a queueing one is the clearest case of all.

use super::gate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Cell length on the shared clock: the analyzer's default window (spec "Per-window
/// collection (~2s)"), so each cell holds about one window of each replica.
pub const CELL_NS: i64 = crate::window::DEFAULT_WINDOW_NS;
/// Waiting requests that make a queue: the spec's R1 backlog line (`waiting < 2` is none).
pub const WAITING_MIN: f64 = 2.0;
/// Share of its cap at which a replica is at its cap (ours): 90% leaves room for the time
/// weighting of a mean that touches the cap in most of its scrapes.
pub const AT_CAP_SHARE: f64 = 0.9;
/// Waiting requests below which a replica has no queue (ours): under one on average.
pub const FREE_WAITING_MAX: f64 = 1.0;
/// Share of its cap at or below which a replica has free slots (ours): half its slots empty
/// is room a router could fill, not a rounding difference.
pub const FREE_SHARE_MAX: f64 = 0.5;

/// One replica's windows, as the rule reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaTimeline {
    /// The target's name.
    pub name: String,
    /// The model it serves; `None` when no scrape named it (never matched with another).
    pub model: Option<String>,
    /// Its concurrency cap, when known.
    pub cap: Option<f64>,
    /// Per observed window: `(wall time of its middle in ns, running mean, waiting mean)`.
    pub windows: Vec<(i64, f64, f64)>,
}

/// A replica pair found imbalanced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaImbalance {
    /// The model both serve.
    pub model: String,
    /// The replica that queued at its cap.
    pub busy: String,
    /// The replica that had free slots meanwhile.
    pub idle: String,
    /// Cells in which the pair was imbalanced.
    pub cells_fired: u64,
    /// Cells in which both replicas were observed.
    pub cells_shared: u64,
    /// Cell length, seconds.
    pub cell_s: f64,
    /// The busy replica's mean running requests over the fired cells.
    pub busy_running_mean: f64,
    /// Its mean waiting requests over the fired cells.
    pub busy_waiting_mean: f64,
    /// Its cap, when known.
    pub busy_cap: Option<f64>,
    /// The idle replica's mean running requests over the fired cells.
    pub idle_running_mean: f64,
    /// Its cap, when known.
    pub idle_cap: Option<f64>,
    /// The fix, in one line.
    pub fix: String,
}

/// Which replicas the rule compared, and why it said nothing when it did not fire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaImbalanceOutcome {
    /// The imbalanced pairs, at most one per model (the pair with the most fired cells).
    pub findings: Vec<ReplicaImbalance>,
    /// Why nothing fired, when nothing did.
    pub silent_reason: Option<String>,
}

/// Cell values of one replica: `(running, waiting)`; a later window in the same cell wins.
fn cells(t: &ReplicaTimeline) -> BTreeMap<i64, (f64, f64)> {
    t.windows
        .iter()
        .map(|&(wall, r, q)| (wall.div_euclid(CELL_NS), (r, q)))
        .collect()
}

fn saturated(t: &ReplicaTimeline, running: f64, waiting: f64) -> bool {
    waiting >= WAITING_MIN && t.cap.is_none_or(|c| running >= AT_CAP_SHARE * c)
}

fn has_free_slots(t: &ReplicaTimeline, running: f64, waiting: f64, busy_running: f64) -> bool {
    let limit = t.cap.unwrap_or(busy_running) * FREE_SHARE_MAX;
    waiting < FREE_WAITING_MAX && running <= limit
}

struct Pair {
    fired: Vec<(f64, f64, f64)>,
    shared: u64,
}

fn compare(busy: &ReplicaTimeline, idle: &ReplicaTimeline) -> Pair {
    let (b, i) = (cells(busy), cells(idle));
    let mut pair = Pair {
        fired: Vec::new(),
        shared: 0,
    };
    for (k, &(br, bq)) in &b {
        let Some(&(ir, iq)) = i.get(k) else {
            continue;
        };
        pair.shared += 1;
        if saturated(busy, br, bq) && has_free_slots(idle, ir, iq, br) {
            pair.fired.push((br, bq, ir));
        }
    }
    pair
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0u32), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        0.0
    } else {
        s / f64::from(n)
    }
}

/// Evaluates every ordered pair of replicas that serve the same model.
pub fn evaluate(replicas: &[ReplicaTimeline]) -> ReplicaImbalanceOutcome {
    let mut by_model: BTreeMap<&str, Vec<&ReplicaTimeline>> = BTreeMap::new();
    for r in replicas {
        if let Some(m) = &r.model {
            by_model.entry(m).or_default().push(r);
        }
    }
    if by_model.values().all(|g| g.len() < 2) {
        return ReplicaImbalanceOutcome {
            findings: Vec::new(),
            silent_reason: Some("not evaluated (no two targets serve the same model)".into()),
        };
    }
    let mut findings = Vec::new();
    for (model, group) in &by_model {
        let mut best: Option<(&ReplicaTimeline, &ReplicaTimeline, Pair)> = None;
        for busy in group {
            for idle in group {
                if std::ptr::eq(*busy, *idle) {
                    continue;
                }
                let p = compare(busy, idle);
                let n = p.fired.len() as u64;
                if !gate::standard(n, p.shared) {
                    continue;
                }
                if best
                    .as_ref()
                    .is_none_or(|(_, _, b)| n > b.fired.len() as u64)
                {
                    best = Some((busy, idle, p));
                }
            }
        }
        let Some((busy, idle, p)) = best else {
            continue;
        };
        findings.push(ReplicaImbalance {
            model: (*model).to_string(),
            busy: busy.name.clone(),
            idle: idle.name.clone(),
            cells_fired: p.fired.len() as u64,
            cells_shared: p.shared,
            cell_s: CELL_NS as f64 / 1e9,
            busy_running_mean: mean(p.fired.iter().map(|f| f.0)),
            busy_waiting_mean: mean(p.fired.iter().map(|f| f.1)),
            busy_cap: busy.cap,
            idle_running_mean: mean(p.fired.iter().map(|f| f.2)),
            idle_cap: idle.cap,
            fix: format!(
                "Route by load: {} queues at its cap while {} has free slots; use \
                 least-outstanding-requests (queue-aware) routing and check sticky sessions or \
                 prefix-affinity that pile onto one replica. Raising --max-num-seqs or adding \
                 replicas would buy capacity the fleet already has",
                busy.name, idle.name
            ),
        });
    }
    let silent_reason = findings.is_empty().then(|| {
        "not triggered (no replica queued at its cap while another of the same model had free \
         slots, in at least the significance gate's share of their shared time)"
            .to_string()
    });
    ReplicaImbalanceOutcome {
        findings,
        silent_reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replica observed in `n` consecutive cells with the same running and waiting.
    fn replica(name: &str, model: &str, cap: Option<f64>, cells: &[(f64, f64)]) -> ReplicaTimeline {
        ReplicaTimeline {
            name: name.into(),
            model: Some(model.into()),
            cap,
            windows: cells
                .iter()
                .enumerate()
                .map(|(i, &(r, q))| (i as i64 * CELL_NS + CELL_NS / 2, r, q))
                .collect(),
        }
    }

    fn busy_idle(busy: (f64, f64), idle: (f64, f64), n: usize) -> ReplicaImbalanceOutcome {
        evaluate(&[
            replica("a", "m", Some(8.0), &vec![busy; n]),
            replica("b", "m", Some(8.0), &vec![idle; n]),
        ])
    }

    #[test]
    fn a_queue_at_the_cap_beside_free_slots_fires_and_names_both() {
        let out = busy_idle((8.0, 5.0), (1.0, 0.0), 10);
        assert_eq!(out.findings.len(), 1);
        let f = &out.findings[0];
        assert_eq!((f.busy.as_str(), f.idle.as_str()), ("a", "b"));
        assert_eq!((f.cells_fired, f.cells_shared), (10, 10));
        assert_eq!(f.busy_waiting_mean, 5.0);
        assert!(f.fix.contains("a queues"));
    }

    #[test]
    fn each_threshold_is_a_boundary() {
        // Waiting exactly 2 is a queue; 1.99 is not.
        assert_eq!(busy_idle((8.0, 2.0), (4.0, 0.0), 10).findings.len(), 1);
        assert!(busy_idle((8.0, 1.99), (4.0, 0.0), 10).findings.is_empty());
        // Running 7.2 of 8 is at the cap (90%); 7.1 is not.
        assert_eq!(busy_idle((7.2, 3.0), (4.0, 0.0), 10).findings.len(), 1);
        assert!(busy_idle((7.1, 3.0), (4.0, 0.0), 10).findings.is_empty());
        // Free slots: at most half the cap (4 of 8) and under one waiting.
        assert!(busy_idle((8.0, 3.0), (4.1, 0.0), 10).findings.is_empty());
        assert!(busy_idle((8.0, 3.0), (2.0, 1.0), 10).findings.is_empty());
        assert_eq!(busy_idle((8.0, 3.0), (2.0, 0.99), 10).findings.len(), 1);
    }

    #[test]
    fn balanced_replicas_and_both_busy_stay_silent() {
        let both_busy = busy_idle((8.0, 4.0), (8.0, 4.0), 10);
        assert!(both_busy.findings.is_empty());
        assert!(both_busy.silent_reason.is_some());
        assert!(busy_idle((3.0, 0.0), (3.0, 0.0), 10).findings.is_empty());
    }

    #[test]
    fn imbalance_at_different_times_is_not_imbalance() {
        // a queues and b idles, but never at the same time: b's windows lie 100 cells after
        // a's (it was recorded later), so no cell is shared and nothing can be said.
        let a = replica("a", "m", Some(8.0), &[(8.0, 4.0); 10]);
        let mut b = replica("b", "m", Some(8.0), &[(0.0, 0.0); 10]);
        // b's windows lie 100 cells later: never at the same time as a's.
        for w in &mut b.windows {
            w.0 += 100 * CELL_NS;
        }
        let out = evaluate(&[a, b]);
        assert!(out.findings.is_empty());
    }

    #[test]
    fn below_the_significance_gate_stays_silent() {
        // 2 imbalanced cells of 10 shared: fewer than 3 and under 25%.
        let mut busy = vec![(3.0, 0.0); 10];
        busy[0] = (8.0, 4.0);
        busy[1] = (8.0, 4.0);
        let out = evaluate(&[
            replica("a", "m", Some(8.0), &busy),
            replica("b", "m", Some(8.0), &[(1.0, 0.0); 10]),
        ]);
        assert!(out.findings.is_empty());
    }

    #[test]
    fn different_models_and_unknown_models_are_never_compared() {
        let out = evaluate(&[
            replica("a", "m1", Some(8.0), &[(8.0, 5.0); 10]),
            replica("b", "m2", Some(8.0), &[(0.0, 0.0); 10]),
        ]);
        assert!(out.findings.is_empty());
        assert!(out.silent_reason.unwrap().contains("same model"));
        let mut b = replica("b", "m1", Some(8.0), &[(0.0, 0.0); 10]);
        b.model = None;
        let out = evaluate(&[replica("a", "m1", Some(8.0), &[(8.0, 5.0); 10]), b]);
        assert!(out.findings.is_empty());
    }

    #[test]
    fn without_caps_the_queue_alone_and_half_the_busy_load_decide() {
        let out = evaluate(&[
            replica("a", "m", None, &[(6.0, 3.0); 10]),
            replica("b", "m", None, &[(3.0, 0.0); 10]),
        ]);
        assert_eq!(out.findings.len(), 1);
        let out = evaluate(&[
            replica("a", "m", None, &[(6.0, 3.0); 10]),
            replica("b", "m", None, &[(3.5, 0.0); 10]),
        ]);
        assert!(out.findings.is_empty());
    }
}
