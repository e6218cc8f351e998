//! The figures a comparison shows side by side, in a fixed order, each with which way is
//! better for the server, so the renderer can colour a change as a gain or a loss.

use super::{pct_change, pp_change, DeltaUnit, Goal, MetricDelta};
use crate::report::Report;

/// One figure side by side, its deltas computed, no interval yet.
pub(super) fn row(
    key: &str,
    name: &str,
    unit: DeltaUnit,
    goal: Goal,
    before: Option<f64>,
    after: Option<f64>,
) -> MetricDelta {
    MetricDelta {
        key: key.to_string(),
        name: name.to_string(),
        unit,
        goal,
        before,
        after,
        delta: pp_change(before, after),
        delta_pct: pct_change(before, after),
        estimated: false,
        delta_interval: None,
        delta_pct_interval: None,
    }
}

/// The side-by-side figures, in the order the table shows them.
pub(super) fn metric_rows(b: &Report, a: &Report) -> Vec<MetricDelta> {
    use DeltaUnit as U;
    use Goal as G;
    let (mb, ma) = (&b.metrics, &a.metrics);
    let usd = |r: &Report| r.economics.usd_per_million_tokens;
    let eff = |r: &Report| r.ceiling.efficiency.pct();
    vec![
        row(
            "generation_tokens_per_s",
            "throughput",
            U::TokensPerSecond,
            G::Higher,
            mb.generation_tokens_per_s,
            ma.generation_tokens_per_s,
        ),
        row(
            "requests_per_s",
            "requests finished",
            U::RequestsPerSecond,
            G::Higher,
            mb.requests_per_s,
            ma.requests_per_s,
        ),
        MetricDelta {
            // Efficiency rests on the catalog ceiling: always an estimate.
            estimated: true,
            ..row(
                "efficiency_pct",
                "efficiency",
                U::Percent,
                G::Higher,
                eff(b),
                eff(a),
            )
        },
        row(
            "ttft_mean_ms",
            "TTFT mean",
            U::Milliseconds,
            G::Lower,
            mb.ttft.mean_ms,
            ma.ttft.mean_ms,
        ),
        row(
            "ttft_p99_ms",
            "TTFT p99",
            U::Milliseconds,
            G::Lower,
            mb.ttft.p99_ms,
            ma.ttft.p99_ms,
        ),
        row(
            "tpot_mean_ms",
            "TPOT mean",
            U::Milliseconds,
            G::Lower,
            mb.tpot.mean_ms,
            ma.tpot.mean_ms,
        ),
        row(
            "tpot_p99_ms",
            "TPOT p99",
            U::Milliseconds,
            G::Lower,
            mb.tpot.p99_ms,
            ma.tpot.p99_ms,
        ),
        MetricDelta {
            estimated: usd(b).is_some_and(|m| m.estimated) || usd(a).is_some_and(|m| m.estimated),
            ..row(
                "usd_per_million_tokens",
                "cost per 1M tokens",
                U::UsdPerMillionTokens,
                G::Lower,
                usd(b).map(|m| m.usd),
                usd(a).map(|m| m.usd),
            )
        },
        row(
            "kv_cache_pct_mean",
            "KV cache (mean)",
            U::Percent,
            G::Neutral,
            mb.kv_cache_pct_mean,
            ma.kv_cache_pct_mean,
        ),
        row(
            "kv_cache_peak_pct",
            "KV cache (peak)",
            U::Percent,
            G::Neutral,
            mb.kv_cache_peak_pct,
            ma.kv_cache_peak_pct,
        ),
        row(
            "running_mean",
            "running (mean)",
            U::Requests,
            G::Neutral,
            mb.running_mean,
            ma.running_mean,
        ),
        row(
            "waiting_mean",
            "waiting (mean)",
            U::Requests,
            G::Lower,
            mb.waiting_mean,
            ma.waiting_mean,
        ),
        row(
            "preemptions_per_s",
            "preemptions",
            U::PerSecond,
            G::Lower,
            mb.preemptions_per_s,
            ma.preemptions_per_s,
        ),
        row(
            "prefix_cache_hit_pct",
            "prefix-cache hits",
            U::Percent,
            G::Higher,
            mb.prefix_cache_hit_pct,
            ma.prefix_cache_hit_pct,
        ),
    ]
}
