//! Loop hygiene: a fix ping-pong. R5 (concurrency saturation) says raise `--max-num-seqs`,
//! R2 (KV-cache pressure) says lower it; an operator who follows each iteration's primary
//! recommendation can bounce between the two for ever, because the balance point lies between
//! the caps they tried. Once the KV-capacity group's primary has alternated R5, R2, R5 (or
//! R2, R5, R2) over consecutive iterations, the loop says so and where the balance lies.
//!
//! The balance is read from what was measured, not from the cap flags: `-m` is often left
//! at its first value while the server's cap changes (no released vLLM exposes the cap), but
//! the running mean of an R5 iteration is its cap (R5 means running sat at the cap), and KV
//! use grows with running. So the KV peak is interpolated linearly in running between the
//! busiest iteration without KV pressure (R5) and the least busy with it (R2), to where it
//! reaches R2's own fix target ([`FIX_TARGET_KV_PCT`]). A KV peak pinned at 100 % understates
//! how fast KV grew, so the estimate is then an upper bound, and the text says so.

use crate::report::Report;
use crate::rules::{RootCause, RuleId};
use serde::Serialize;

/// The KV peak the balance aims at: R2's own fix target (80 %, `FIX_TARGET_KV_PCT` in
/// `src/rules/r2_kv_pressure.rs`, private to the rules), so the cap suggested is one R2 would
/// accept, below its 88 % trigger with room for a burst.
pub const FIX_TARGET_KV_PCT: f64 = 80.0;

/// Ours: R5, R2, R5 is the first time the loop goes back over ground it already covered.
pub const MIN_ALTERNATIONS: usize = 3;

/// Ours: a KV peak at or above this is pinned at the pool's size (the true demand is higher).
const KV_PINNED_PCT: f64 = 99.5;

/// What one iteration said about the KV pool and the cap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Step {
    /// The iteration.
    pub iteration: u32,
    /// The KV-capacity group's primary rule (R2 or R5), if that group surfaced.
    pub primary: Option<RuleId>,
    /// Requests running, time-weighted mean.
    pub running_mean: Option<f64>,
    /// KV-cache peak, percent.
    pub kv_peak_pct: Option<f64>,
}

impl Step {
    /// The step of a report.
    pub fn of(iteration: u32, r: &Report) -> Step {
        let primary = r.diagnosis.as_ref().and_then(|d| {
            d.groups
                .iter()
                .find(|g| g.root_cause == RootCause::KvCapacity)
                .map(|g| g.primary)
                .filter(|p| matches!(p, RuleId::R2 | RuleId::R5))
        });
        Step {
            iteration,
            primary,
            running_mean: r.metrics.running_mean,
            kv_peak_pct: r.metrics.kv_cache_peak_pct,
        }
    }
}

/// A detected ping-pong and where the balance lies.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PingPong {
    /// Iterations where R5 asked to raise `--max-num-seqs`.
    pub raise_at: Vec<u32>,
    /// Iterations where R2 asked to lower it.
    pub lower_at: Vec<u32>,
    /// The highest running mean measured without KV pressure (an R5 iteration).
    pub without_pressure_running: Option<f64>,
    /// Its KV peak, percent.
    pub without_pressure_kv_pct: Option<f64>,
    /// The lowest running mean measured with KV pressure (an R2 iteration).
    pub with_pressure_running: Option<f64>,
    /// Its KV peak, percent.
    pub with_pressure_kv_pct: Option<f64>,
    /// The running level where KV would reach R2's fix target, interpolated.
    pub balance_running: Option<f64>,
    /// Whether `balance_running` is an upper bound (the KV peak was pinned at the pool size).
    pub balance_is_upper_bound: bool,
    /// The cap to try: `balance_running` rounded down, at least the highest cap without
    /// pressure.
    pub suggest_max_num_seqs: Option<u64>,
}

/// Looks for a ping-pong at the end of the steps so far (in iteration order).
pub fn detect(steps: &[Step]) -> Option<PingPong> {
    // The tail where the KV group's primary alternates between R2 and R5.
    let mut run: Vec<&Step> = Vec::new();
    for s in steps.iter().rev() {
        let Some(p) = s.primary else {
            break;
        };
        if run.last().is_some_and(|l| l.primary == Some(p)) {
            break;
        }
        run.push(s);
    }
    if run.len() < MIN_ALTERNATIONS {
        return None;
    }
    run.reverse();
    let of = |rule: RuleId| -> Vec<&Step> {
        run.iter()
            .copied()
            .filter(|s| s.primary == Some(rule))
            .collect()
    };
    let (raise, lower) = (of(RuleId::R5), of(RuleId::R2));
    let busiest_ok = raise
        .iter()
        .filter(|s| s.running_mean.is_some())
        .max_by(|a, b| {
            a.running_mean
                .unwrap_or(0.0)
                .total_cmp(&b.running_mean.unwrap_or(0.0))
        });
    let calmest_hot = lower
        .iter()
        .filter(|s| s.running_mean.is_some())
        .min_by(|a, b| {
            a.running_mean
                .unwrap_or(0.0)
                .total_cmp(&b.running_mean.unwrap_or(0.0))
        });
    let (r1, k1) = (
        busiest_ok.and_then(|s| s.running_mean),
        busiest_ok.and_then(|s| s.kv_peak_pct),
    );
    let (r2, k2) = (
        calmest_hot.and_then(|s| s.running_mean),
        calmest_hot.and_then(|s| s.kv_peak_pct),
    );
    let balance = match (r1, k1, r2, k2) {
        (Some(r1), Some(k1), Some(r2), Some(k2)) if r2 > r1 && k2 > k1 => {
            let x = r1 + (FIX_TARGET_KV_PCT - k1) / (k2 - k1) * (r2 - r1);
            Some(x.clamp(r1, r2))
        }
        (Some(r1), _, Some(r2), _) if r2 > r1 => Some((r1 + r2) / 2.0),
        (Some(r1), _, _, _) => Some(r1),
        _ => None,
    };
    let suggest = balance.map(|b| {
        let floor = r1.map_or(1.0, |r| r.round()).max(1.0);
        b.floor().max(floor) as u64
    });
    Some(PingPong {
        raise_at: raise.iter().map(|s| s.iteration).collect(),
        lower_at: lower.iter().map(|s| s.iteration).collect(),
        without_pressure_running: r1,
        without_pressure_kv_pct: k1,
        with_pressure_running: r2,
        with_pressure_kv_pct: k2,
        balance_running: balance,
        balance_is_upper_bound: k2.is_some_and(|k| k >= KV_PINNED_PCT),
        suggest_max_num_seqs: suggest,
    })
}

fn list(v: &[u32]) -> String {
    v.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

/// The ping-pong in one sentence.
pub fn describe(p: &PingPong) -> String {
    use crate::report::format::num;
    let side = |r: Option<f64>, k: Option<f64>| match (r, k) {
        (Some(r), Some(k)) => format!("{} running (KV peak {}%)", num(Some(r), 1), num(Some(k), 1)),
        (Some(r), None) => format!("{} running", num(Some(r), 1)),
        _ => "-".to_string(),
    };
    let mut s = format!(
        "fix ping-pong: R5 asked to raise --max-num-seqs (iterations {}) and R2 to lower it \
         (iterations {}); the balance lies between {} and {}",
        list(&p.raise_at),
        list(&p.lower_at),
        side(p.without_pressure_running, p.without_pressure_kv_pct),
        side(p.with_pressure_running, p.with_pressure_kv_pct),
    );
    if let Some(b) = p.balance_running {
        s.push_str(&format!(
            "; KV would reach R2's {}% target near {}{} running",
            num(Some(FIX_TARGET_KV_PCT), 0),
            if p.balance_is_upper_bound {
                "at most "
            } else {
                ""
            },
            num(Some(b), 1)
        ));
    }
    if let Some(m) = p.suggest_max_num_seqs {
        s.push_str(&format!(
            ": set --max-num-seqs {m} and stop moving it; for more throughput add KV capacity \
             (--gpu-memory-utilization, --kv-cache-dtype fp8, more GPUs) instead"
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(iteration: u32, primary: Option<RuleId>, running: f64, kv: f64) -> Step {
        Step {
            iteration,
            primary,
            running_mean: Some(running),
            kv_peak_pct: Some(kv),
        }
    }

    #[test]
    fn three_alternations_are_a_ping_pong_with_the_balance_interpolated() {
        use RuleId::{R2, R5};
        let steps = [step(0, Some(R5), 8.0, 40.0), step(1, Some(R2), 16.0, 96.0)];
        assert_eq!(
            detect(&steps),
            None,
            "two steps are one fix and its reversal"
        );
        let mut steps = steps.to_vec();
        steps.push(step(2, Some(R5), 8.0, 40.0));
        let p = detect(&steps).unwrap();
        assert_eq!(p.raise_at, vec![0, 2]);
        assert_eq!(p.lower_at, vec![1]);
        // KV 40% at 8 running, 96% at 16: 80% at 8 + 40/56 × 8 = 13.71 running.
        let b = p.balance_running.unwrap();
        assert!((b - (8.0 + 40.0 / 56.0 * 8.0)).abs() < 1e-9, "{b}");
        assert!(!p.balance_is_upper_bound);
        assert_eq!(p.suggest_max_num_seqs, Some(13));
        let text = describe(&p);
        assert!(text.contains("iterations 0, 2"), "{text}");
        assert!(text.contains("--max-num-seqs 13"), "{text}");
    }

    #[test]
    fn a_pinned_kv_peak_makes_the_balance_an_upper_bound() {
        use RuleId::{R2, R5};
        let steps = [
            step(3, Some(R2), 12.0, 100.0),
            step(4, Some(R5), 8.0, 60.0),
            step(5, Some(R2), 12.0, 100.0),
        ];
        let p = detect(&steps).unwrap();
        assert_eq!(p.lower_at, vec![3, 5]);
        assert!(p.balance_is_upper_bound);
        assert_eq!(p.balance_running, Some(10.0));
        assert!(describe(&p).contains("at most 10.0 running"));
    }

    #[test]
    fn no_ping_pong_without_alternation() {
        use RuleId::{R2, R5};
        // The same fix asked twice is progress, not a ping-pong.
        let steps = [
            step(0, Some(R5), 8.0, 10.0),
            step(1, Some(R5), 16.0, 20.0),
            step(2, Some(R2), 32.0, 95.0),
        ];
        assert_eq!(detect(&steps), None);
        // An iteration without the KV group breaks the run.
        let steps = [
            step(0, Some(R5), 8.0, 10.0),
            step(1, Some(R2), 16.0, 95.0),
            step(2, None, 8.0, 10.0),
            step(3, Some(R5), 8.0, 10.0),
        ];
        assert_eq!(detect(&steps), None);
    }
}
