//! A fleet recording's analysis: each target analysed by [`super::analyze_deferred`] on its
//! own recording, exactly as if it had been recorded alone, then one row per target and the
//! fleet's sums. The caller opens the targets' recordings; their samples are read here, one
//! target at a time.

use super::{analyze_deferred, Analysed, AnalyzeConfig, AnalyzeError};
use crate::catalog::Catalog;
use crate::recording::fleet::TargetDir;
use crate::recording::{Deferred, Recording};
use crate::report::fleet::{FleetReport, FleetRow, FleetTotals, TargetReport};
use crate::report::{Report, SCHEMA_VERSION};
use crate::rules::replica_imbalance::{self, ReplicaTimeline};

/// Analyses every target with `config` (its label set to the target's directory, as
/// analysing that directory alone would name it) and builds the fleet table and totals.
///
/// The targets come as read but for their samples ([`Deferred`]); each is analysed in turn
/// with [`super::analyze_deferred`], so that only one target's samples, a few segments at a
/// time, are ever in memory.
pub fn analyze_fleet(
    label: &str,
    targets: Vec<(TargetDir, Deferred)>,
    catalog: &Catalog,
    config: &AnalyzeConfig,
) -> Result<FleetReport, AnalyzeError> {
    let mut reports: Vec<TargetReport> = Vec::with_capacity(targets.len());
    let mut timelines: Vec<ReplicaTimeline> = Vec::with_capacity(targets.len());
    for (t, deferred) in targets {
        let mut c = config.clone();
        c.recording_label = Some(t.dir.display().to_string());
        let (report, analysed, rec) = analyze_deferred(deferred, catalog, &c, &|_| {})?;
        timelines.push(timeline(&t.name, &rec, &report, &analysed));
        reports.push(TargetReport {
            name: t.name.clone(),
            url: t.url.clone(),
            report,
        });
    }
    let rows: Vec<FleetRow> = reports.iter().map(row).collect();
    let totals = totals(&rows);
    Ok(FleetReport {
        schema_version: SCHEMA_VERSION.to_string(),
        label: label.to_string(),
        rows,
        totals,
        replica_imbalance: replica_imbalance::evaluate(&timelines),
        targets: reports,
    })
}

/// A target's windows as the replica-imbalance rule reads them: every window with a duration
/// and both gauges, idle ones included, placed on the wall clock through the recording's start
/// anchor (the monotonic clock of one recording means nothing to another).
fn timeline(name: &str, rec: &Recording, report: &Report, a: &Analysed) -> ReplicaTimeline {
    let start = rec.manifest.started_at_ns;
    ReplicaTimeline {
        name: name.to_string(),
        model: report.recording.model_name.clone(),
        cap: report.inputs.max_num_seqs.as_ref().map(|s| s.value),
        windows: a
            .kept
            .iter()
            .filter(|w| w.duration_s.is_some())
            .filter_map(|w| {
                let mid = start
                    .saturating_add(w.start_mono.0)
                    .saturating_add(a.set.window_ns / 2);
                Some((mid, w.running_mean?, w.waiting_mean?))
            })
            .collect(),
    }
}

fn row(t: &TargetReport) -> FleetRow {
    let r: &Report = &t.report;
    let top = r
        .diagnosis
        .as_ref()
        .and_then(|d| d.recommendations().next());
    let up = r.recording.scrapes_ok > 0;
    FleetRow {
        name: t.name.clone(),
        url: t.url.clone(),
        up,
        model: r.recording.model_name.clone(),
        generation_tokens_per_s: r.metrics.generation_tokens_per_s,
        running_mean: r.metrics.running_mean,
        max_num_seqs: r.inputs.max_num_seqs.as_ref().map(|s| s.value),
        kv_cache_peak_pct: r.metrics.kv_cache_peak_pct,
        ttft_p99_ms: r.metrics.ttft.p99_ms,
        efficiency_pct: r.ceiling.efficiency.pct(),
        cost_per_hour_usd: r.economics.cost_per_hour.as_ref().map(|c| c.usd_per_hour),
        recoverable_usd_per_hour: r.economics.recoverable_usd_per_hour.map(|m| m.usd),
        // An availability finding leads the target's own report, so it leads its row too: a
        // replica that stopped answering under load is the first thing to know about it.
        top_finding: match r.availability.first().filter(|_| up) {
            Some(a) => Some((
                a.kind.title().to_string(),
                match a.duration_s {
                    // `+ 0.0` turns a -0.0 start into 0 for printing.
                    Some(d) => format!("at +{:.0} s for {d:.0} s", a.at_s + 0.0),
                    None => format!("at +{:.0} s", a.at_s + 0.0),
                },
            )),
            None => top.map(|f| (format!("{:?}", f.rule), f.title.clone())),
        },
        top_fix: match (r.availability.first().filter(|_| up), top) {
            (Some(_), Some(f)) => Some(format!("then: {}", f.fix.summary)),
            (Some(_), None) => None,
            (None, f) => f.map(|f| f.fix.summary.clone()),
        },
    }
}

/// Sums a column over the targets that have it: `None` when none has it, with how many did.
fn sum(rows: &[FleetRow], get: impl Fn(&FleetRow) -> Option<f64>) -> (Option<f64>, u32) {
    let known: Vec<f64> = rows.iter().filter_map(get).collect();
    let n = u32::try_from(known.len()).unwrap_or(u32::MAX);
    ((!known.is_empty()).then(|| known.iter().sum()), n)
}

fn totals(rows: &[FleetRow]) -> FleetTotals {
    let (tps, _) = sum(rows, |r| r.generation_tokens_per_s);
    let (cost, cost_known) = sum(rows, |r| r.cost_per_hour_usd);
    let (rec, recoverable_known) = sum(rows, |r| r.recoverable_usd_per_hour);
    FleetTotals {
        targets: u32::try_from(rows.len()).unwrap_or(u32::MAX),
        targets_up: u32::try_from(rows.iter().filter(|r| r.up).count()).unwrap_or(u32::MAX),
        generation_tokens_per_s: tps,
        cost_per_hour_usd: cost,
        cost_known,
        recoverable_usd_per_hour: rec,
        recoverable_known,
    }
}
