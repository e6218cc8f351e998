//! What a server's throughput costs, in energy and money (spec, Math / Economics).
//!
//! Pure functions; missing, zero or non-finite inputs give `None` rather than NaN or infinity.
//! A price taken from the catalog is a market average, so everything derived from it carries
//! `estimated: true` and must be labelled `(est)`; a rate the operator passed is exact.

use super::{CatalogError, GpuSpec};
use serde::Serialize;

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

/// Where the hourly cost came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// `--cost-per-hour`: the operator's own rate for the whole deployment.
    Flag,
    /// The catalog's on-demand price per GPU, times the number of GPUs.
    CatalogOnDemand,
}

/// An hourly cost and whether it is an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CostPerHour {
    /// US dollars per hour, for all GPUs the server uses.
    pub usd_per_hour: f64,
    /// Where it came from.
    pub source: CostSource,
    /// True when it came from the catalog (a market average, shown as `(est)`).
    pub estimated: bool,
}

/// A money figure derived from an hourly cost, carrying that cost's `estimated` flag.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct UsdFigure {
    /// US dollars.
    pub usd: f64,
    /// True when derived from a catalog price.
    pub estimated: bool,
}

/// Resolves the hourly cost (spec, Math / Economics, cost priority): `--cost-per-hour`, else the
/// matched GPU's on-demand price, else `None`.
///
/// The catalog price is per GPU, and a tensor-parallel server rents `gpu_count` of them, so the
/// catalog figure is multiplied by `gpu_count` (the spec is silent on this; one GPU's price for
/// a TP=4 server would understate its cost four-fold). The flag is taken as the whole rate.
/// A negative or non-finite flag is an error: the operator meant something.
pub fn resolve_cost_per_hour(
    flag_usd_per_hour: Option<f64>,
    gpu: Option<&GpuSpec>,
    gpu_count: u32,
) -> Result<Option<CostPerHour>, CatalogError> {
    if let Some(flag) = flag_usd_per_hour {
        return match non_negative(Some(flag)) {
            Some(usd) => Ok(Some(CostPerHour {
                usd_per_hour: usd,
                source: CostSource::Flag,
                estimated: false,
            })),
            None => Err(CatalogError::InvalidInput {
                name: "--cost-per-hour".to_string(),
                value: flag.to_string(),
                reason: "must be a finite number of dollars, zero or more".to_string(),
            }),
        };
    }
    let per_gpu = non_negative(gpu.and_then(|g| g.on_demand_usd_per_hour));
    Ok(per_gpu.map(|p| CostPerHour {
        usd_per_hour: p * f64::from(gpu_count.max(1)),
        source: CostSource::CatalogOnDemand,
        estimated: true,
    }))
}

/// Cost per million generated tokens (spec, Math / Economics, $ / 1M tokens):
/// `cost_per_hr / (generation_tokens_per_sec × 3600) × 1e6`. `None` at zero throughput.
pub fn usd_per_million_tokens(
    cost: Option<&CostPerHour>,
    generation_tps: Option<f64>,
) -> Option<UsdFigure> {
    let cost = cost?;
    let tokens_per_hour = positive(generation_tps)? * SECONDS_PER_HOUR;
    let usd = non_negative(Some(cost.usd_per_hour))? / tokens_per_hour * TOKENS_PER_MILLION;
    non_negative(Some(usd)).map(|usd| UsdFigure {
        usd,
        estimated: cost.estimated,
    })
}

/// Money per hour spent on unused ceiling (spec, Math / Economics, recoverable $/hr):
/// `cost_per_hr × (1 − efficiency_pct / 100)`. `None` when efficiency is not shown.
pub fn recoverable_usd_per_hour(
    cost: Option<&CostPerHour>,
    efficiency_pct: Option<f64>,
) -> Option<UsdFigure> {
    let cost = cost?;
    let pct = non_negative(efficiency_pct)?.min(100.0);
    let usd = non_negative(Some(cost.usd_per_hour * (1.0 - pct / 100.0)))?;
    Some(UsdFigure {
        usd,
        estimated: cost.estimated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

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
    fn cost_resolution_prefers_the_flag() {
        let c = Catalog::embedded().unwrap();
        let h100 = c.match_gpu("NVIDIA H100 80GB HBM3");
        let flag = resolve_cost_per_hour(Some(2.0), h100, 2).unwrap().unwrap();
        assert_eq!(
            flag,
            CostPerHour {
                usd_per_hour: 2.0,
                source: CostSource::Flag,
                estimated: false
            }
        );
        let cat = resolve_cost_per_hour(None, h100, 1).unwrap().unwrap();
        assert_eq!(
            (cat.usd_per_hour, cat.source, cat.estimated),
            (3.45, CostSource::CatalogOnDemand, true)
        );
        // Two GPUs rented, twice the price.
        let tp2 = resolve_cost_per_hour(None, h100, 2).unwrap().unwrap();
        assert!(close(tp2.usd_per_hour, 6.90));
        // A10G has a price without peak figures; the RTX 4090 has no price.
        let a10g = resolve_cost_per_hour(None, c.match_gpu("NVIDIA A10G"), 1)
            .unwrap()
            .unwrap();
        assert_eq!(a10g.usd_per_hour, 1.00);
        assert_eq!(
            resolve_cost_per_hour(None, c.match_gpu("NVIDIA GeForce RTX 4090"), 1).unwrap(),
            None
        );
        assert_eq!(resolve_cost_per_hour(None, None, 1).unwrap(), None);
        let err = resolve_cost_per_hour(Some(-1.0), h100, 1).unwrap_err();
        assert!(
            matches!(&err, CatalogError::InvalidInput { name, .. } if name == "--cost-per-hour")
        );
        assert!(resolve_cost_per_hour(Some(f64::NAN), h100, 1).is_err());
        assert_eq!(
            resolve_cost_per_hour(Some(0.0), h100, 1)
                .unwrap()
                .unwrap()
                .usd_per_hour,
            0.0
        );
    }

    #[test]
    fn dollars_per_million_tokens_and_recoverable() {
        let cost = CostPerHour {
            usd_per_hour: 3.45,
            source: CostSource::CatalogOnDemand,
            estimated: true,
        };
        // 1000 tok/s is 3.6M tokens/h: 3.45 / 3.6 = $0.958333 per 1M, estimated.
        let per_m = usd_per_million_tokens(Some(&cost), Some(1000.0)).unwrap();
        assert!(close(per_m.usd, 3.45 / 3.6));
        assert!(per_m.estimated);
        assert_eq!(usd_per_million_tokens(Some(&cost), Some(0.0)), None);
        assert_eq!(usd_per_million_tokens(None, Some(1000.0)), None);
        // 60% efficient: 40% of $3.45/h recoverable.
        let rec = recoverable_usd_per_hour(Some(&cost), Some(60.0)).unwrap();
        assert!(close(rec.usd, 3.45 * 0.4));
        assert!(rec.estimated);
        assert_eq!(recoverable_usd_per_hour(Some(&cost), None), None);
        let exact = CostPerHour {
            usd_per_hour: 2.0,
            source: CostSource::Flag,
            estimated: false,
        };
        let rec = recoverable_usd_per_hour(Some(&exact), Some(100.0)).unwrap();
        assert_eq!((rec.usd, rec.estimated), (0.0, false));
        assert!(
            !usd_per_million_tokens(Some(&exact), Some(500.0))
                .unwrap()
                .estimated
        );
    }
}
