//! The report of a fleet recording: one row per target, the fleet's totals, then each
//! target's own report (the very report its recording alone gives). Types and the text
//! renderer only; `crate::analyze::fleet` fills them.

use super::Report;
use crate::rules::replica_imbalance::ReplicaImbalanceOutcome;
use serde::{Deserialize, Serialize};

/// A fleet's analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetReport {
    /// Same as [`Report::schema_version`].
    pub schema_version: String,
    /// How the fleet recording is named.
    pub label: String,
    /// One row per target, in target order.
    pub rows: Vec<FleetRow>,
    /// Sums over the targets.
    pub totals: FleetTotals,
    /// Replicas of one model queueing at their cap while another had free slots.
    pub replica_imbalance: ReplicaImbalanceOutcome,
    /// Each target's full report, in target order.
    pub targets: Vec<TargetReport>,
}

/// One target's line of the fleet table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetRow {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// False when no scrape of it succeeded: the target was down the whole recording.
    pub up: bool,
    /// The served model, when a scrape named it.
    pub model: Option<String>,
    /// Generated tokens per second over its active windows.
    pub generation_tokens_per_s: Option<f64>,
    /// Mean running requests.
    pub running_mean: Option<f64>,
    /// The cap on running requests (`--max-num-seqs`), when known.
    pub max_num_seqs: Option<f64>,
    /// Peak KV-cache use, percent.
    pub kv_cache_peak_pct: Option<f64>,
    /// TTFT p99, ms.
    pub ttft_p99_ms: Option<f64>,
    /// Efficiency against the catalog ceiling, percent, when it could be computed.
    pub efficiency_pct: Option<f64>,
    /// Hourly cost, USD.
    pub cost_per_hour_usd: Option<f64>,
    /// Recoverable USD per hour.
    pub recoverable_usd_per_hour: Option<f64>,
    /// Its top finding: `(rule id, title)`; `None` when nothing fired.
    pub top_finding: Option<(String, String)>,
    /// That finding's fix, in one line.
    pub top_fix: Option<String>,
}

/// Sums over the fleet. A sum is `None` when no target has the figure, and says how many of
/// the targets it covers when only some have it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetTotals {
    /// Targets in the fleet.
    pub targets: u32,
    /// Targets with at least one good scrape.
    pub targets_up: u32,
    /// Generated tokens per second, summed.
    pub generation_tokens_per_s: Option<f64>,
    /// Hourly cost, summed.
    pub cost_per_hour_usd: Option<f64>,
    /// Targets whose cost is known.
    pub cost_known: u32,
    /// Recoverable USD per hour, summed.
    pub recoverable_usd_per_hour: Option<f64>,
    /// Targets whose recoverable cost is known.
    pub recoverable_known: u32,
}

/// One target's name, URL and report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetReport {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// Its report: what analysing its recording alone gives.
    pub report: Report,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.digits$}"))
}

/// The fleet table and totals as text (the targets' reports are rendered by the caller with
/// the single-report renderer, so that each reads exactly as its recording alone).
pub fn render_fleet_summary(r: &FleetReport) -> String {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header([
        "target",
        "model",
        "tok/s",
        "running/cap",
        "KV peak %",
        "TTFT p99 ms",
        "eff %",
        "top finding",
        "fix",
    ]);
    for row in &r.rows {
        let running = match (row.running_mean, row.max_num_seqs) {
            (Some(run), Some(cap)) => format!("{run:.1}/{cap:.0}"),
            (Some(run), None) => format!("{run:.1}/?"),
            _ => "-".to_string(),
        };
        let (finding, fix) = if row.up {
            (
                row.top_finding
                    .as_ref()
                    .map_or_else(|| "none".to_string(), |(id, t)| format!("{id} {t}")),
                row.top_fix.clone().unwrap_or_else(|| "-".to_string()),
            )
        } else {
            (
                "DOWN: no scrape succeeded".to_string(),
                "check the server and its URL".to_string(),
            )
        };
        table.add_row([
            row.name.clone(),
            row.model.clone().unwrap_or_else(|| "-".to_string()),
            opt(row.generation_tokens_per_s, 1),
            running,
            opt(row.kv_cache_peak_pct, 1),
            opt(row.ttft_p99_ms, 0),
            opt(row.efficiency_pct, 1),
            finding,
            fix,
        ]);
    }
    let t = &r.totals;
    let part = |known: u32| {
        if known < t.targets {
            format!(" ({known} of {} targets)", t.targets)
        } else {
            String::new()
        }
    };
    let mut out = format!(
        "Fleet {}: {} targets, {} up\n{table}\n",
        r.label, t.targets, t.targets_up
    );
    out.push_str(&format!(
        "Fleet totals: {} tok/s, ${} /h{}, recoverable ${} /h{}\n",
        opt(t.generation_tokens_per_s, 1),
        opt(t.cost_per_hour_usd, 2),
        part(t.cost_known),
        opt(t.recoverable_usd_per_hour, 2),
        part(t.recoverable_known),
    ));
    for f in &r.replica_imbalance.findings {
        let cap = |c: Option<f64>| c.map_or_else(|| "?".to_string(), |c| format!("{c:.0}"));
        out.push_str(&format!(
            "Replica imbalance ({}): {} queued at its cap ({:.1} running of {}, {:.1} waiting) \
             while {} had free slots ({:.1} running of {}), in {} of {} shared {:.0} s cells\n  \
             Fix: {}\n",
            f.model,
            f.busy,
            f.busy_running_mean,
            cap(f.busy_cap),
            f.busy_waiting_mean,
            f.idle,
            f.idle_running_mean,
            cap(f.idle_cap),
            f.cells_fired,
            f.cells_shared,
            f.cell_s,
            f.fix,
        ));
    }
    out
}
