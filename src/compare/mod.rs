//! Closed-loop delta: two reports of the same server, before and after one change, turned into
//! a direction (Better, Plateau, Worse), the figures side by side, and what the rules found
//! that was resolved, new or persisting (spec "Closed-loop delta"; Design, "Delta, not
//! snapshot").
//!
//! [`compare`] is pure, like `analyze`: reports in, a serializable [`Comparison`] out. The
//! direction is decided by [`direction`] from four numbers per side, so every threshold can be
//! tested on its own:
//!
//! 1. Efficiency (primary). Efficiency divides throughput by the aggregate ceiling at the
//!    measured concurrency, which cancels a change of traffic; what remains is how well the
//!    hardware serves each request. `> +2.0 pp` is Better, `< −5.0 pp` Worse, else Plateau.
//! 2. Latency veto: Better with TTFT p99 up more than 20 % becomes Plateau. It never touches
//!    Plateau or Worse, and it is not applied on the fallback path.
//! 3. Throughput (fallback, when efficiency is missing on either side): `> +10 %` Better,
//!    `< −10 %` Worse, between (or not measurable) Plateau.
//!
//! Comparing two different models or GPU types says nothing about one change to one server,
//! so [`compare`] refuses it unless [`CompareConfig::allow_different`] is set.
//!
//! Noise: when both reports carry their per-window samples, every resampled figure's delta
//! gets a 95 % interval ([`noise`]: a circular block bootstrap over active windows). The
//! thresholds and the direction logic above are the spec's and decide on the point delta;
//! the interval then only *confirms* or *withholds* it: Better or Worse whose interval
//! reaches back across the threshold it crossed becomes Plateau, "within noise"
//! ([`Verdict::within_noise`], the spec's call kept in [`Verdict::point_direction`]). A
//! Plateau is "within noise" when its interval holds 0 or reaches past either threshold.

mod diff;
pub mod fleet;
pub mod noise;
mod render;
mod rows;
#[cfg(test)]
mod tests;
#[doc(hidden)]
pub mod testutil;

pub use diff::{diff_diagnoses, ChangeKind, DiagnosisDiff, FindingChange, NextStep};
pub use noise::{Interval, Noise};
pub use render::{render_fleet_text, render_html, render_json, render_text};

use crate::report::format::signed;
use crate::report::{Efficiency, Report};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Version of the comparison's JSON schema (same policy as the report's).
pub const SCHEMA_VERSION: &str = "1";

/// Spec "Closed-loop delta": `efficiency_delta_pp > +2.0 pp` is Better.
pub const BETTER_EFFICIENCY_PP: f64 = 2.0;
/// Spec "Closed-loop delta": `efficiency_delta_pp < −5.0 pp` is Worse. The band is lopsided on
/// purpose: a loss must be bigger than a gain before the loop pauses.
pub const WORSE_EFFICIENCY_PP: f64 = -5.0;
/// Spec "Closed-loop delta", latency veto: Better with `ttft_p99_delta_pct > +20 %` is Plateau.
pub const LATENCY_VETO_TTFT_P99_PCT: f64 = 20.0;
/// Spec "Closed-loop delta", fallback: `throughput_delta_pct > +10 %` is Better.
pub const BETTER_THROUGHPUT_PCT: f64 = 10.0;
/// Spec "Closed-loop delta", fallback: `throughput_delta_pct < −10 %` is Worse.
pub const WORSE_THROUGHPUT_PCT: f64 = -10.0;

/// What `profile compare` was asked for, as plain values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompareConfig {
    /// Compare even when the reports name different models or GPU types.
    pub allow_different: bool,
}

/// Where the server went between the two reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The change helped.
    Better,
    /// No change worth acting on (or one the latency veto cancelled).
    Plateau,
    /// The change hurt.
    Worse,
}

impl Direction {
    /// Upper-case word for text output.
    pub fn label(self) -> &'static str {
        match self {
            Direction::Better => "BETTER",
            Direction::Plateau => "PLATEAU",
            Direction::Worse => "WORSE",
        }
    }
}

/// Which signal decided the direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    /// `efficiency_delta_pp` (the primary signal).
    Efficiency,
    /// `throughput_delta_pct` (efficiency missing on at least one side).
    Throughput,
    /// Neither could be computed: Plateau by default.
    Nothing,
}

/// The direction and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Better, Plateau or Worse.
    pub direction: Direction,
    /// The path that decided it.
    pub decided_by: DecidedBy,
    /// Whether the latency veto turned Better into Plateau.
    pub latency_veto: bool,
    /// One line naming the figures and thresholds that decided it, e.g.
    /// `efficiency +3.1 pp (> +2.0 pp), but TTFT p99 +35.0% (> +20.0%): latency veto`.
    pub reason: String,
    /// The 95 % interval of the deciding delta (pp on the efficiency path, percent on the
    /// throughput path), when both reports carry samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
    /// The interval does not let the deciding delta be told from noise: it reaches across a
    /// threshold, or (for a Plateau) holds 0. A Better or Worse so judged is Plateau here.
    #[serde(default)]
    pub within_noise: bool,
    /// The spec's direction from the point delta alone, before the interval was consulted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point_direction: Option<Direction>,
}

/// The four figures of one side that the direction rests on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Signals {
    /// Efficiency %, when shown.
    pub efficiency_pct: Option<f64>,
    /// Why efficiency is not shown, when it is not.
    pub efficiency_missing: Option<String>,
    /// Generated tokens per second.
    pub throughput_tps: Option<f64>,
    /// TTFT p99, ms.
    pub ttft_p99_ms: Option<f64>,
}

impl Signals {
    /// The signals of a report.
    pub fn of(r: &Report) -> Signals {
        let eff: &Efficiency = &r.ceiling.efficiency;
        Signals {
            efficiency_pct: eff.pct(),
            efficiency_missing: match eff {
                // The report's wording points at its own catalog table; say it plainly here.
                Efficiency::NoCeiling => {
                    Some("no decode ceiling: GPU or model not in the catalog".to_string())
                }
                other => other.reason(),
            },
            throughput_tps: r.metrics.generation_tokens_per_s,
            ttft_p99_ms: r.metrics.ttft.p99_ms,
        }
    }
}

/// One recording as the comparison names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Side {
    /// The report's recording label (its directory).
    pub label: String,
    /// Recording start, RFC 3339.
    pub started_at: String,
    /// Served model name.
    pub model_name: Option<String>,
    /// GPU names in NVML index order (`?` where NVML gave none).
    pub gpus: Vec<String>,
    /// Active windows: the data behind rates, means and latencies.
    pub active_windows: u32,
}

impl Side {
    fn of(r: &Report) -> Side {
        Side {
            label: r.recording.label.clone(),
            started_at: r.recording.started_at.clone(),
            model_name: r.recording.model_name.clone(),
            gpus: r
                .recording
                .gpus
                .iter()
                .map(|g| g.name.clone().unwrap_or_else(|| "?".to_string()))
                .collect(),
            active_windows: r.windows.active,
        }
    }
}

/// Which way a figure should move for the server to be better off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// More is better (throughput, efficiency).
    Higher,
    /// Less is better (latency, cost, queue, preemptions).
    Lower,
    /// Neither: context (KV use, running requests).
    Neutral,
}

/// The unit of a compared figure, so the renderer can format it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeltaUnit {
    /// Tokens per second.
    TokensPerSecond,
    /// Requests per second.
    RequestsPerSecond,
    /// Percent; its delta is in percentage points.
    Percent,
    /// Milliseconds.
    Milliseconds,
    /// US dollars per million generated tokens.
    UsdPerMillionTokens,
    /// A number of requests (time-weighted mean).
    Requests,
    /// Events per second.
    PerSecond,
    /// US dollars per hour.
    UsdPerHour,
    /// A whole number of things (targets).
    Count,
}

/// One figure side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricDelta {
    /// Stable key, snake case (`ttft_p99_ms`).
    pub key: String,
    /// Display name.
    pub name: String,
    /// Unit of `before`, `after` and `delta`.
    pub unit: DeltaUnit,
    /// Which way is better.
    pub goal: Goal,
    /// Before.
    pub before: Option<f64>,
    /// After.
    pub after: Option<f64>,
    /// `after − before` (percentage points for a percent).
    pub delta: Option<f64>,
    /// `(after − before) / before × 100`; `None` when `before` is 0 (and `after` is not) or
    /// either side is missing.
    pub delta_pct: Option<f64>,
    /// Whether either side rests on a catalog figure.
    pub estimated: bool,
    /// 95 % interval of `delta`, when both reports carry samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_interval: Option<Interval>,
    /// 95 % interval of `delta_pct`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_pct_interval: Option<Interval>,
}

/// Everything `profile compare` says about two reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// [`SCHEMA_VERSION`] at the time of writing.
    pub schema_version: String,
    /// The baseline.
    pub before: Side,
    /// The recording after the change.
    pub after: Side,
    /// Direction and why.
    pub verdict: Verdict,
    /// `efficiency_pct_after − efficiency_pct_before`, when both are shown.
    pub efficiency_delta_pp: Option<f64>,
    /// Generation throughput change, percent.
    pub throughput_delta_pct: Option<f64>,
    /// TTFT p99 change, percent.
    pub ttft_p99_delta_pct: Option<f64>,
    /// The figures side by side, in a fixed order.
    pub metrics: Vec<MetricDelta>,
    /// What the rules found that changed; `None` when either report has no diagnosis.
    pub diagnosis: Option<DiagnosisDiff>,
    /// Availability findings (down, restarted, struggling) resolved, new or persisting, by
    /// kind, ranked before the rules' diff. Empty when neither side had one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub availability: Vec<AvailabilityChange>,
    /// Caveats: different models allowed through, a model or GPU that could not be checked.
    pub notes: Vec<String>,
    /// How the intervals were computed, or why there are none.
    #[serde(default)]
    pub noise: Noise,
}

/// How one kind of availability finding changed between the two sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AvailabilityChange {
    /// The kind.
    pub kind: crate::availability::AvailabilityKind,
    /// Resolved (before only), new (after only) or persisting.
    pub change: ChangeKind,
    /// The after side's summary, else the before side's.
    pub summary: String,
}

/// The availability findings of both sides, set against each other by kind.
pub fn availability_changes(before: &Report, after: &Report) -> Vec<AvailabilityChange> {
    use crate::availability::AvailabilityKind as K;
    fn find(
        r: &Report,
        k: crate::availability::AvailabilityKind,
    ) -> Option<&crate::availability::AvailabilityFinding> {
        r.availability.iter().find(|a| a.kind == k)
    }
    [K::Down, K::Restarted, K::Struggling]
        .into_iter()
        .filter_map(|k| {
            let (b, a) = (find(before, k), find(after, k));
            let change = match (b, a) {
                (Some(_), Some(_)) => ChangeKind::Persisting,
                (Some(_), None) => ChangeKind::Resolved,
                (None, Some(_)) => ChangeKind::New,
                (None, None) => return None,
            };
            Some(AvailabilityChange {
                kind: k,
                change,
                summary: a.or(b).map(|f| f.summary.clone()).unwrap_or_default(),
            })
        })
        .collect()
}

/// Why two reports were not compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompareError {
    /// The reports name different served models.
    #[error("different models: before {before:?}, after {after:?}")]
    DifferentModels {
        /// The model before.
        before: String,
        /// The model after.
        after: String,
    },
    /// The reports name different GPU types.
    #[error("different GPUs: before [{before}], after [{after}]")]
    DifferentGpus {
        /// The GPU names before, comma-separated.
        before: String,
        /// The GPU names after, comma-separated.
        after: String,
    },
}

/// Compares two reports of the same server: see the module header. Refuses different models
/// or GPU types unless `config.allow_different`.
pub fn compare(
    before: &Report,
    after: &Report,
    config: &CompareConfig,
) -> Result<Comparison, CompareError> {
    let (b, a) = (Side::of(before), Side::of(after));
    let notes = check_same_setup(&b, &a, config)?;
    let (sb, sa) = (Signals::of(before), Signals::of(after));
    let mut metrics = rows::metric_rows(before, after);
    let (noise, verdict) = match noise::intervals(before, after) {
        Ok((method, iv)) => {
            for m in &mut metrics {
                if let Some(f) = iv.get(m.key.as_str()) {
                    // No interval on a side of a figure the report itself does not show.
                    if m.delta.is_some() {
                        m.delta_interval = f.delta;
                    }
                    if m.delta_pct.is_some() {
                        m.delta_pct_interval = f.delta_pct;
                    }
                }
            }
            let pick = |key: &str, pp: bool| {
                metrics.iter().find(|m| m.key == key).and_then(|m| {
                    if pp {
                        m.delta_interval
                    } else {
                        m.delta_pct_interval
                    }
                })
            };
            let eff = pick("efficiency_pct", true);
            let tput = pick("generation_tokens_per_s", false);
            (
                Noise {
                    bootstrap: Some(method),
                    unavailable: None,
                },
                direction_with(&sb, &sa, eff, tput),
            )
        }
        Err(why) => (
            Noise {
                bootstrap: None,
                unavailable: Some(why),
            },
            direction(&sb, &sa),
        ),
    };
    Ok(Comparison {
        schema_version: SCHEMA_VERSION.to_string(),
        verdict,
        efficiency_delta_pp: pp_change(sb.efficiency_pct, sa.efficiency_pct),
        throughput_delta_pct: pct_change(sb.throughput_tps, sa.throughput_tps),
        ttft_p99_delta_pct: pct_change(sb.ttft_p99_ms, sa.ttft_p99_ms),
        metrics,
        diagnosis: diff_diagnoses(before.diagnosis.as_ref(), after.diagnosis.as_ref()),
        availability: availability_changes(before, after),
        before: b,
        after: a,
        notes,
        noise,
    })
}

/// `(after − before) / before × 100`. `None` when either is missing or not finite, or when
/// `before` is 0 and `after` is not (no finite percentage); 0 → 0 is 0 %.
pub fn pct_change(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    let (b, a) = (before?, after?);
    if !b.is_finite() || !a.is_finite() {
        return None;
    }
    if b == 0.0 {
        return (a == 0.0).then_some(0.0);
    }
    // Multiplying before dividing keeps round inputs exact (110 vs 100 gives exactly 10.0),
    // which matters at the thresholds.
    Some((a - b) * 100.0 / b.abs())
}

/// `after − before`, when both are present and finite.
pub(crate) fn pp_change(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    let (b, a) = (before?, after?);
    (b.is_finite() && a.is_finite()).then_some(a - b)
}

/// Decides the direction from each side's signals (spec "Closed-loop delta"), without
/// intervals.
pub fn direction(before: &Signals, after: &Signals) -> Verdict {
    direction_with(before, after, None, None)
}

/// The spec's direction, then, when the deciding delta has an interval (`efficiency_pp` on
/// the efficiency path, `throughput_pct` on the throughput path), the noise check: see the
/// module header.
pub fn direction_with(
    before: &Signals,
    after: &Signals,
    efficiency_pp: Option<Interval>,
    throughput_pct: Option<Interval>,
) -> Verdict {
    let mut v = spec_direction(before, after, efficiency_pp, throughput_pct);
    let (iv, band) = match v.decided_by {
        DecidedBy::Efficiency => (efficiency_pp, (WORSE_EFFICIENCY_PP, BETTER_EFFICIENCY_PP)),
        DecidedBy::Throughput => (
            throughput_pct,
            (WORSE_THROUGHPUT_PCT, BETTER_THROUGHPUT_PCT),
        ),
        DecidedBy::Nothing => (None, (0.0, 0.0)),
    };
    let Some(iv) = iv else {
        return v;
    };
    let unit = if v.decided_by == DecidedBy::Efficiency {
        " pp"
    } else {
        "%"
    };
    let (worse, better) = band;
    let thr = |t: f64| format!("{}{unit}", signed(t, 1));
    // The spec's call before any veto: the veto is a Plateau that efficiency called Better.
    let call = if v.latency_veto {
        Direction::Better
    } else {
        v.direction
    };
    v.point_direction = Some(v.direction);
    v.interval = Some(iv);
    let note = match call {
        Direction::Better if iv.lo <= better => Some(format!(
            "its 95% interval reaches down to {} (not above {}): within noise",
            thr(iv.lo),
            thr(better)
        )),
        Direction::Worse if iv.hi >= worse => Some(format!(
            "its 95% interval reaches up to {} (not below {}): within noise",
            thr(iv.hi),
            thr(worse)
        )),
        Direction::Plateau if iv.lo <= worse && iv.hi >= better => Some(format!(
            "its 95% interval reaches past both {} and {}: within noise",
            thr(worse),
            thr(better)
        )),
        Direction::Plateau if iv.lo <= worse || iv.hi >= better => Some(format!(
            "its 95% interval reaches past {}: within noise",
            thr(if iv.lo <= worse { worse } else { better })
        )),
        Direction::Plateau if iv.contains(0.0) => Some("within noise".to_string()),
        Direction::Plateau => Some("a change, but inside the band".to_string()),
        _ => None,
    };
    v.within_noise = match call {
        Direction::Better => iv.lo <= better,
        Direction::Worse => iv.hi >= worse,
        Direction::Plateau => iv.lo <= worse || iv.hi >= better || iv.contains(0.0),
    };
    if v.within_noise {
        v.direction = Direction::Plateau;
    }
    if let Some(n) = note {
        v.reason = format!("{}; {n}", v.reason);
    }
    v
}

/// `(-29.1% .. -19.8%, 95%)` after a figure, or nothing.
fn interval_text(iv: Option<Interval>, unit: &str) -> String {
    match iv {
        Some(i) => format!(
            " ({}{unit} .. {}{unit}, 95%)",
            signed(i.lo, 1),
            signed(i.hi, 1)
        ),
        None => String::new(),
    }
}

/// The spec's direction from the point deltas, the intervals only quoted.
fn spec_direction(
    before: &Signals,
    after: &Signals,
    efficiency_pp: Option<Interval>,
    throughput_pct: Option<Interval>,
) -> Verdict {
    if let Some(pp) = pp_change(before.efficiency_pct, after.efficiency_pct) {
        return by_efficiency(
            pp,
            pct_change(before.ttft_p99_ms, after.ttft_p99_ms),
            &interval_text(efficiency_pp, " pp"),
        );
    }
    let why_no_eff = missing_reason(
        "efficiency",
        before.efficiency_missing.as_deref(),
        after.efficiency_missing.as_deref(),
    );
    match pct_change(before.throughput_tps, after.throughput_tps) {
        Some(pct) => {
            let (direction, cmp) = if pct > BETTER_THROUGHPUT_PCT {
                (
                    Direction::Better,
                    format!("> {}%", signed(BETTER_THROUGHPUT_PCT, 1)),
                )
            } else if pct < WORSE_THROUGHPUT_PCT {
                (
                    Direction::Worse,
                    format!("< {}%", signed(WORSE_THROUGHPUT_PCT, 1)),
                )
            } else {
                (
                    Direction::Plateau,
                    format!(
                        "within {}%..{}%",
                        signed(WORSE_THROUGHPUT_PCT, 1),
                        signed(BETTER_THROUGHPUT_PCT, 1)
                    ),
                )
            };
            let mut reason = format!(
                "{why_no_eff}; throughput {}%{} ({cmp})",
                signed(pct, 1),
                interval_text(throughput_pct, "%")
            );
            if direction == Direction::Better {
                reason.push_str("; latency veto not applied on the throughput path");
            }
            Verdict {
                direction,
                decided_by: DecidedBy::Throughput,
                latency_veto: false,
                reason,
                interval: None,
                within_noise: false,
                point_direction: None,
            }
        }
        None => {
            let why_no_tput = match (before.throughput_tps, after.throughput_tps) {
                (Some(0.0), Some(_)) => "throughput before is 0 tok/s (no percentage)".to_string(),
                (b, a) => missing_reason(
                    "throughput",
                    b.is_none().then_some("not measured"),
                    a.is_none().then_some("not measured"),
                ),
            };
            Verdict {
                direction: Direction::Plateau,
                decided_by: DecidedBy::Nothing,
                latency_veto: false,
                reason: format!("{why_no_eff}; {why_no_tput}: no direction"),
                interval: None,
                within_noise: false,
                point_direction: None,
            }
        }
    }
}

/// The efficiency path, with the latency veto.
fn by_efficiency(pp: f64, ttft_p99_pct: Option<f64>, interval: &str) -> Verdict {
    let eff = format!("efficiency {} pp{interval}", signed(pp, 1));
    let (direction, latency_veto, reason) = if pp > BETTER_EFFICIENCY_PP {
        let better = format!("{eff} (> {} pp)", signed(BETTER_EFFICIENCY_PP, 1));
        let veto = format!("{}%", signed(LATENCY_VETO_TTFT_P99_PCT, 1));
        match ttft_p99_pct {
            Some(t) if t > LATENCY_VETO_TTFT_P99_PCT => (
                Direction::Plateau,
                true,
                format!(
                    "{better}, but TTFT p99 {}% (> {veto}): latency veto",
                    signed(t, 1)
                ),
            ),
            Some(t) => (
                Direction::Better,
                false,
                format!("{better}; TTFT p99 {}% (veto above {veto})", signed(t, 1)),
            ),
            None => (
                Direction::Better,
                false,
                format!("{better}; TTFT p99 not comparable, latency veto not checked"),
            ),
        }
    } else if pp < WORSE_EFFICIENCY_PP {
        let worse = format!("{eff} (< {} pp)", signed(WORSE_EFFICIENCY_PP, 1));
        (Direction::Worse, false, worse)
    } else {
        let band = format!(
            "{eff} (within {}..{} pp)",
            signed(WORSE_EFFICIENCY_PP, 1),
            signed(BETTER_EFFICIENCY_PP, 1)
        );
        (Direction::Plateau, false, band)
    };
    Verdict {
        direction,
        decided_by: DecidedBy::Efficiency,
        latency_veto,
        reason,
        interval: None,
        within_noise: false,
        point_direction: None,
    }
}

/// `efficiency unavailable (before: why; after: why)`, or `on both sides` when alike.
fn missing_reason(what: &str, before: Option<&str>, after: Option<&str>) -> String {
    match (before, after) {
        (Some(b), Some(a)) if a == b => format!("{what} unavailable on both sides ({b})"),
        (Some(b), Some(a)) => format!("{what} unavailable (before: {b}; after: {a})"),
        (Some(b), None) => format!("{what} unavailable before ({b})"),
        (None, Some(a)) => format!("{what} unavailable after ({a})"),
        (None, None) => format!("{what} unavailable"),
    }
}

/// Checks that both reports describe the same model on the same GPU types. A side that does
/// not know (no model label, no NVML) cannot be checked: that is a note, not a refusal.
fn check_same_setup(
    b: &Side,
    a: &Side,
    config: &CompareConfig,
) -> Result<Vec<String>, CompareError> {
    let mut notes = Vec::new();
    match (&b.model_name, &a.model_name) {
        (Some(mb), Some(ma)) if mb != ma => {
            let err = CompareError::DifferentModels {
                before: mb.clone(),
                after: ma.clone(),
            };
            if !config.allow_different {
                return Err(err);
            }
            notes.push(format!("compared anyway: {err}"));
        }
        (None, _) | (_, None) => {
            notes.push("the model name is unknown on one side or both: not checked".to_string())
        }
        _ => {}
    }
    // GPU *types* must match; a different count of the same type (another --gpus choice, a
    // tensor-parallel change) is a change worth measuring, so it is only noted.
    let types = |s: &Side| -> BTreeSet<String> { s.gpus.iter().cloned().collect() };
    if b.gpus.is_empty() || a.gpus.is_empty() {
        if !(b.gpus.is_empty() && a.gpus.is_empty()) {
            notes.push("GPUs were recorded on one side only: not checked".to_string());
        }
    } else if types(b) != types(a) {
        let err = CompareError::DifferentGpus {
            before: b.gpus.join(", "),
            after: a.gpus.join(", "),
        };
        if !config.allow_different {
            return Err(err);
        }
        notes.push(format!("compared anyway: {err}"));
    } else if b.gpus.len() != a.gpus.len() {
        notes.push(format!(
            "GPU count changed: {} before, {} after",
            b.gpus.len(),
            a.gpus.len()
        ));
    }
    Ok(notes)
}
