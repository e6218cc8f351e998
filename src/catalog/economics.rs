//! What a server's throughput costs, in energy and money (spec, Math / Economics).
//!
//! Pure functions; missing, zero or non-finite inputs give `None` rather than NaN or infinity.
//! A price taken from the catalog is a market average, so everything derived from it carries
//! `estimated: true` and must be labelled `(est)`; a rate the operator passed is exact.

use serde::{Deserialize, Serialize};

/// Seconds per hour, to turn tokens/s into tokens per hour.
pub const SECONDS_PER_HOUR: f64 = 3600.0;

/// Tokens in the "$ per 1M tokens" unit.
pub const TOKENS_PER_MILLION: f64 = 1e6;

/// `Some(v)` when `v` is finite and above zero.
fn positive(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite() && *v > 0.0)
}

/// `Some(v)` when `v` is finite and not negative (a price of zero is a valid price).
fn non_negative(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite() && *v >= 0.0)
}

/// Tokens per joule, i.e. per watt-second (spec, Math / Economics, tok / W):
/// `generation_tokens_per_sec / power_watts`. Zero throughput is a valid 0.
pub fn tokens_per_watt(generation_tps: Option<f64>, power_w: Option<f64>) -> Option<f64> {
    Some(non_negative(generation_tps)? / positive(power_w)?)
}

/// Energy per generated token, joules (spec, Math / Economics, J / token):
/// `power_watts / generation_tokens_per_sec`. `None` at zero throughput.
pub fn joules_per_token(power_w: Option<f64>, generation_tps: Option<f64>) -> Option<f64> {
    Some(non_negative(power_w)? / positive(generation_tps)?)
}

/// A money figure and whether it rests on a catalog estimate (shown `(est)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Money {
    /// US dollars.
    pub usd: f64,
    /// True when it rests on a catalog figure (a market-average price, or the catalog ceiling).
    pub estimated: bool,
}

/// Cost per million generated tokens, dollars (spec, Math / Economics, $ / 1M tokens):
/// `cost_per_hr / (generation_tokens_per_sec × 3600) × 1e6`. `None` at zero throughput.
/// The hourly cost is resolved in [`crate::inputs`] (flag, recorded, catalog price × GPUs).
pub fn usd_per_million_tokens(
    usd_per_hour: Option<f64>,
    generation_tps: Option<f64>,
) -> Option<f64> {
    let tokens_per_hour = positive(generation_tps)? * SECONDS_PER_HOUR;
    non_negative(Some(
        non_negative(usd_per_hour)? / tokens_per_hour * TOKENS_PER_MILLION,
    ))
}

/// Money per hour spent on unused ceiling, dollars (spec, Math / Economics, recoverable $/hr):
/// `cost_per_hr × (1 − efficiency_pct / 100)`. `None` when efficiency is not shown.
pub fn recoverable_usd_per_hour(
    usd_per_hour: Option<f64>,
    efficiency_pct: Option<f64>,
) -> Option<f64> {
    let pct = non_negative(efficiency_pct)?.min(100.0);
    non_negative(Some(non_negative(usd_per_hour)? * (1.0 - pct / 100.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn energy_per_token() {
        // 1000 tok/s at 700 W: 1.428571 tok/J, 0.7 J/token.
        assert!(close(
            tokens_per_watt(Some(1000.0), Some(700.0)).unwrap(),
            1000.0 / 700.0
        ));
        assert!(close(
            joules_per_token(Some(700.0), Some(1000.0)).unwrap(),
            0.7
        ));
        assert_eq!(tokens_per_watt(Some(0.0), Some(700.0)), Some(0.0));
        assert_eq!(joules_per_token(Some(700.0), Some(0.0)), None);
        assert_eq!(tokens_per_watt(Some(1000.0), Some(0.0)), None);
        assert_eq!(tokens_per_watt(None, Some(700.0)), None);
        assert_eq!(joules_per_token(None, Some(1000.0)), None);
    }

    #[test]
    fn dollars_per_million_tokens_and_recoverable() {
        // 1000 tok/s is 3.6M tokens/h: 3.45 / 3.6 = $0.958333 per 1M.
        let per_m = usd_per_million_tokens(Some(3.45), Some(1000.0)).unwrap();
        assert!(close(per_m, 3.45 / 3.6));
        assert_eq!(usd_per_million_tokens(Some(3.45), Some(0.0)), None);
        assert_eq!(usd_per_million_tokens(None, Some(1000.0)), None);
        assert_eq!(usd_per_million_tokens(Some(-1.0), Some(1000.0)), None);
        // 60% efficient: 40% of $3.45/h recoverable.
        let rec = recoverable_usd_per_hour(Some(3.45), Some(60.0)).unwrap();
        assert!(close(rec, 3.45 * 0.4));
        assert_eq!(recoverable_usd_per_hour(Some(3.45), None), None);
        assert_eq!(recoverable_usd_per_hour(Some(2.0), Some(100.0)), Some(0.0));
        assert_eq!(recoverable_usd_per_hour(Some(2.0), Some(130.0)), Some(0.0));
    }
}
