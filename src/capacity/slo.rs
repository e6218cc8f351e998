//! The latency target `--slo` names: `ttft-p99=2s`, `tpot-p99=50ms`, comma-separated.

use super::series::Latency;
use serde::{Deserialize, Serialize};

/// One latency target: the `quantile` of a histogram at or below `bound_s`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SloTarget {
    /// TTFT or TPOT.
    pub latency: Latency,
    /// The quantile, 0-1 exclusive (0.99 for `p99`).
    pub quantile: f64,
    /// The bound, seconds.
    pub bound_s: f64,
}

impl SloTarget {
    /// `ttft-p99`, `tpot-p99.9`.
    pub fn name(&self) -> String {
        format!(
            "{}-p{}",
            self.latency.name(),
            percentile_text(self.quantile)
        )
    }
}

/// `0.99` -> `99`, `0.999` -> `99.9`.
fn percentile_text(q: f64) -> String {
    let p = format!("{:.3}", q * 100.0);
    p.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Why an `--slo` text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SloError {
    /// The text named no target.
    #[error("no target: write e.g. ttft-p99=2s,tpot-p99=50ms")]
    Empty,
    /// One target is not `NAME-pQQ=DURATION`.
    #[error("{0:?}: not LATENCY-pQQ=DURATION (LATENCY ttft or tpot, e.g. ttft-p99=2s)")]
    Syntax(String),
    /// The latency is neither `ttft` nor `tpot`.
    #[error("{0:?}: unknown latency (ttft or tpot)")]
    Latency(String),
    /// The percentile is not in (0, 100).
    #[error("{0:?}: the percentile must lie strictly between 0 and 100")]
    Percentile(String),
    /// The bound is not a positive duration (`2s`, `50ms`, `800us`).
    #[error("{0:?}: the bound must be a positive duration such as 2s, 50ms or 800us")]
    Bound(String),
    /// The same latency and percentile twice.
    #[error("{0} is given twice")]
    Repeated(String),
}

/// Parses `ttft-p99=2s[,tpot-p99=50ms]`. Targets keep the order given.
pub fn parse_slo(text: &str) -> Result<Vec<SloTarget>, SloError> {
    let mut out: Vec<SloTarget> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, bound) = part
            .split_once('=')
            .ok_or_else(|| SloError::Syntax(part.to_string()))?;
        let (lat, pct) = name
            .trim()
            .split_once("-p")
            .ok_or_else(|| SloError::Syntax(part.to_string()))?;
        let latency = match lat.to_ascii_lowercase().as_str() {
            "ttft" => Latency::Ttft,
            "tpot" => Latency::Tpot,
            _ => return Err(SloError::Latency(lat.to_string())),
        };
        let quantile = pct
            .parse::<f64>()
            .ok()
            .filter(|p| *p > 0.0 && *p < 100.0)
            .map(|p| p / 100.0)
            .ok_or_else(|| SloError::Percentile(pct.to_string()))?;
        let bound_s =
            parse_seconds(bound.trim()).ok_or_else(|| SloError::Bound(bound.to_string()))?;
        let t = SloTarget {
            latency,
            quantile,
            bound_s,
        };
        if out
            .iter()
            .any(|o| o.latency == latency && o.quantile == quantile)
        {
            return Err(SloError::Repeated(t.name()));
        }
        out.push(t);
    }
    if out.is_empty() {
        return Err(SloError::Empty);
    }
    Ok(out)
}

/// `2s`, `1.5s`, `50ms`, `800us` as seconds; positive and finite only.
fn parse_seconds(text: &str) -> Option<f64> {
    let (num, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else {
        return None;
    };
    let v = num.trim().parse::<f64>().ok()? * scale;
    (v.is_finite() && v > 0.0).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets_in_order_and_refuses_what_it_cannot_read() {
        let t = parse_slo("ttft-p99=2s, tpot-p99.9=50ms").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].latency, Latency::Ttft);
        assert_eq!(t[0].bound_s, 2.0);
        assert_eq!(t[0].name(), "ttft-p99");
        assert_eq!(t[1].latency, Latency::Tpot);
        assert!((t[1].quantile - 0.999).abs() < 1e-12);
        assert!((t[1].bound_s - 0.05).abs() < 1e-15);
        assert_eq!(t[1].name(), "tpot-p99.9");
        assert!((parse_slo("ttft-p50=800us").unwrap()[0].bound_s - 800e-6).abs() < 1e-15);
        assert!(matches!(parse_slo(""), Err(SloError::Empty)));
        assert!(matches!(parse_slo("ttft=2s"), Err(SloError::Syntax(_))));
        assert!(matches!(parse_slo("e2e-p99=2s"), Err(SloError::Latency(_))));
        assert!(matches!(
            parse_slo("ttft-p100=2s"),
            Err(SloError::Percentile(_))
        ));
        assert!(matches!(parse_slo("ttft-p99=2"), Err(SloError::Bound(_))));
        assert!(matches!(parse_slo("ttft-p99=-1s"), Err(SloError::Bound(_))));
        assert!(matches!(
            parse_slo("ttft-p99=1s,ttft-p99=2s"),
            Err(SloError::Repeated(_))
        ));
    }
}
