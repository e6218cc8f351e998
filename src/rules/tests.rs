//! `diagnose` end to end over hand-built windows: every rule reports once, findings are ranked
//! and grouped, and the result survives a JSON round trip.

use super::testutil::{idle, inputs_m, set, windows};
use super::*;
use crate::aggregate::aggregate;
use crate::inputs::{DtypeSource, TpSource};

fn run(ws: Vec<crate::window::Window>, inputs: &RuleInputs) -> Diagnosis {
    let s = set(ws, false);
    let agg = aggregate(&s);
    let kept: Vec<KeptWindow> = s.windows.iter().map(KeptWindow::of).collect();
    diagnose(&s, &kept, &agg, inputs)
}

#[test]
fn every_rule_reports_once_when_nothing_fires() {
    let d = run(windows(8, |_| {}), &inputs_m(16));
    assert!(d.findings.is_empty());
    assert!(d.groups.is_empty());
    let rules: Vec<RuleId> = d.not_fired.iter().map(|n| n.rule).collect();
    assert_eq!(rules, RuleId::ALL);
    assert_eq!(
        (d.windows_total, d.windows_evaluable, d.windows_active),
        (8, 8, 8)
    );
    assert_eq!(
        d.not_fired[3].reason,
        "not evaluated (model not in the catalog: weight size unknown)"
    );
}

#[test]
fn preemptions_kv_saturation_and_oom_rank_and_group() {
    // 8 windows pinned at a cap of 16 with a queue (R5), KV peaking at 97% with preemptions
    // in two of them (R2 main), and a model too big for its GPU (R4).
    let mut ws = windows(8, |w| {
        w.running_mean = Some(16.0);
        w.running_last = Some(16.0);
        w.waiting_mean = Some(10.0);
        w.kv_cache_peak_pct = Some(60.0);
    });
    for w in ws.iter_mut().take(2) {
        w.kv_cache_peak_pct = Some(97.0);
        w.preemptions_delta = Some(4.0);
    }
    let inputs = RuleInputs {
        memory: MemoryFacts {
            weight_gb: Some(140.0),
            tp: 1,
            tp_source: TpSource::Flag,
            vram_total_gb: Some(80.0),
            dtype_source: DtypeSource::CatalogDefault,
        },
        ..inputs_m(16)
    };
    let d = run(ws, &inputs);
    let order: Vec<(RuleId, f64)> = d.findings.iter().map(|f| (f.rule, f.score)).collect();
    // R2 5 × 0.95 = 4.75, then R4 5 × 0.90 = 4.5, then R5 4 × 0.90 = 3.6.
    assert_eq!(
        order,
        [
            (RuleId::R2, 4.75),
            (RuleId::R4, 4.5),
            (RuleId::R5, 4.0 * 0.9)
        ]
    );
    let groups: Vec<(RootCause, RuleId, Vec<RuleId>)> = d
        .groups
        .iter()
        .map(|g| (g.root_cause, g.primary, g.supporting.clone()))
        .collect();
    assert_eq!(
        groups,
        [
            (RootCause::KvCapacity, RuleId::R2, vec![RuleId::R5]),
            (RootCause::MemoryFit, RuleId::R4, vec![]),
        ]
    );
    // R5's fix follows the recording's KV peak (97%): a replica, not a higher cap, which
    // agrees with its group's primary.
    let r5 = d.finding(RuleId::R5).unwrap();
    assert_eq!(r5.fix.summary, "Add a replica or lower --max-model-len");
    assert_eq!(r5.windows.as_ref().unwrap().fired, 6);
    let r2 = d.finding(RuleId::R2).unwrap();
    assert_eq!(r2.significance, Significance::Preemptions);
    assert_eq!(
        r2.fix.steps[0].command_line().as_deref(),
        Some("--max-num-seqs 13")
    );
    let silent: Vec<RuleId> = d.not_fired.iter().map(|n| n.rule).collect();
    assert_eq!(
        silent,
        [
            RuleId::R1,
            RuleId::R3,
            RuleId::R6,
            RuleId::R7,
            RuleId::R8,
            RuleId::R9
        ]
    );
}

#[test]
fn insignificant_findings_rank_last_without_a_group() {
    // R1 in 3 of 13 windows (23%): a finding below the gate, plus a not_fired line.
    let mut ws = windows(3, |w| w.running_mean = Some(1.0));
    ws.extend((3..13).map(idle));
    let d = run(ws, &inputs_m(16));
    let f = d.finding(RuleId::R1).unwrap();
    assert!(!f.significant);
    assert_eq!(f.group, None);
    assert!(d.groups.is_empty());
    assert_eq!(d.recommendations().count(), 0);
    let r1 = d.not_fired.iter().find(|n| n.rule == RuleId::R1).unwrap();
    assert!(r1.reason.starts_with("fired in 3 of 13 evaluable windows"));
}

#[test]
fn json_round_trip_and_determinism() {
    let mut ws = windows(6, |w| w.kv_cache_peak_pct = Some(91.0));
    ws.extend(windows(2, |w| w.running_mean = Some(1.0)));
    let a = run(ws.clone(), &inputs_m(16));
    let b = run(ws, &inputs_m(16));
    let ja = serde_json::to_string(&a).unwrap();
    assert_eq!(ja, serde_json::to_string(&b).unwrap());
    let back: Diagnosis = serde_json::from_str(&ja).unwrap();
    assert_eq!(back, a);
    assert!(ja.contains("\"rule\":\"R2\""));
    assert!(ja.contains("\"r2_path\":\"main\""));
}

#[test]
fn no_evaluable_window() {
    let mut ws = windows(3, |_| {});
    for w in &mut ws {
        w.duration_s = None;
    }
    let d = run(ws, &inputs_m(16));
    assert_eq!(d.windows_evaluable, 0);
    assert!(d.findings.is_empty());
    assert!(d
        .not_fired
        .iter()
        .all(|n| n.rule == RuleId::R4 || n.reason == "no evaluable window"));
}
