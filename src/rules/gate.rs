//! The rule significance gate (spec "Rule significance gate"): a rule that fired once is noise,
//! so a recommendation surfaces only when its signal persists, except for R2's critical KV
//! conditions, which surface early.

use super::model::Significance;

/// Fewest windows a rule must fire in (spec "Rule significance gate": `fired ≥ 3`).
pub const MIN_FIRED_WINDOWS: u64 = 3;
/// Smallest share of evaluable windows a rule must fire in (spec "Rule significance gate":
/// `fired / total_evaluable_windows ≥ 25%`).
pub const MIN_FIRED_FRACTION: f64 = 0.25;
/// R2 main path: windows with preemptions needed (spec "R2 main path exception": "Any window
/// with active preemptions → 1 (significant immediately)").
pub const R2_PREEMPTION_MIN_WINDOWS: u64 = 1;
/// R2 main path: windows with KV >= [`R2_KV_CRITICAL_PCT`] needed (spec "R2 main path
/// exception": "KV ≥ 95% in ≥ 2 windows").
pub const R2_KV_CRITICAL_MIN_WINDOWS: u64 = 2;
/// R2 main path: the critical KV level, percent (spec "R2 main path exception" and
/// "Confidence": "KV cache ≥ 95%").
pub const R2_KV_CRITICAL_PCT: f64 = 95.0;

/// The standard gate: `fired ≥ 3 AND fired / evaluable ≥ 25%`. No evaluable window, no
/// significance.
pub fn standard(fired: u64, evaluable: u64) -> bool {
    evaluable > 0
        && fired >= MIN_FIRED_WINDOWS
        && fired as f64 / evaluable as f64 >= MIN_FIRED_FRACTION
}

/// The standard gate as a [`Significance`].
pub fn standard_significance(fired: u64, evaluable: u64) -> Significance {
    if standard(fired, evaluable) {
        Significance::Standard
    } else {
        Significance::BelowGate
    }
}

/// R2 main path: preemptions in any window, or critical KV in two, bypass the standard gate;
/// otherwise the standard gate applies. The exceptions are checked first because they are
/// the stronger evidence and name why the finding surfaced.
pub fn r2_main(
    fired: u64,
    preemption_windows: u64,
    kv_critical_windows: u64,
    evaluable: u64,
) -> Significance {
    if preemption_windows >= R2_PREEMPTION_MIN_WINDOWS {
        Significance::Preemptions
    } else if kv_critical_windows >= R2_KV_CRITICAL_MIN_WINDOWS {
        Significance::KvCritical
    } else {
        standard_significance(fired, evaluable)
    }
}

/// The `-v` text for a rule that fired but stayed below the gate.
pub fn below_gate_reason(fired: u64, evaluable: u64) -> String {
    format!(
        "fired in {fired} of {evaluable} evaluable windows: below the significance gate \
         (at least {MIN_FIRED_WINDOWS} windows and {:.0}% of evaluable)",
        MIN_FIRED_FRACTION * 100.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_needs_three_windows_and_a_quarter() {
        assert!(!standard(2, 4)); // 50% but only 2 windows
        assert!(standard(3, 12)); // exactly 3 and exactly 25%
        assert!(!standard(3, 13)); // 3 windows, 23%
        assert!(standard(4, 13));
        assert!(!standard(0, 0));
        assert!(!standard(3, 0));
    }

    #[test]
    fn r2_exceptions_bypass_the_standard_gate() {
        // One preemption window in 40 is significant at once.
        assert_eq!(r2_main(1, 1, 0, 40), Significance::Preemptions);
        // KV >= 95% in 2 windows of 40.
        assert_eq!(r2_main(2, 0, 2, 40), Significance::KvCritical);
        // KV >= 95% in 1 window only: standard gate, which 1/40 fails.
        assert_eq!(r2_main(1, 0, 1, 40), Significance::BelowGate);
        // KV 88-95% without preemptions: standard gate.
        assert_eq!(r2_main(2, 0, 0, 4), Significance::BelowGate);
        assert_eq!(r2_main(3, 0, 0, 12), Significance::Standard);
        assert_eq!(r2_main(3, 0, 0, 13), Significance::BelowGate);
    }

    #[test]
    fn below_gate_text_names_the_counts() {
        assert_eq!(
            below_gate_reason(2, 40),
            "fired in 2 of 40 evaluable windows: below the significance gate \
             (at least 3 windows and 25% of evaluable)"
        );
    }
}
