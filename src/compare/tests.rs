use super::testutil::{minimal_report, report_with};
use super::*;
use crate::report::{GpuFact, Money};
use crate::rules::{
    Diagnosis, Finding, Fix, IssueGroup, R2Path, RootCause, RuleId, Significance, WindowCounts,
};

fn verdict(before: &Report, after: &Report) -> Verdict {
    compare(before, after, &CompareConfig::default())
        .unwrap()
        .verdict
}

fn dir_of(eff_before: f64, eff_after: f64) -> Direction {
    let b = report_with(Some(eff_before), Some(100.0), Some(100.0));
    let a = report_with(Some(eff_after), Some(100.0), Some(100.0));
    verdict(&b, &a).direction
}

// ---------------------------------------------------------------------------------------------
// Direction: efficiency
// ---------------------------------------------------------------------------------------------

#[test]
fn efficiency_better_threshold_is_strictly_above_two_pp() {
    assert_eq!(dir_of(50.0, 51.9), Direction::Plateau, "just below");
    assert_eq!(dir_of(50.0, 52.0), Direction::Plateau, "at +2.0 pp");
    assert_eq!(dir_of(50.0, 52.1), Direction::Better, "just above");
}

#[test]
fn efficiency_worse_threshold_is_strictly_below_minus_five_pp() {
    assert_eq!(dir_of(50.0, 45.1), Direction::Plateau, "just above");
    assert_eq!(dir_of(50.0, 45.0), Direction::Plateau, "at -5.0 pp");
    assert_eq!(dir_of(50.0, 44.9), Direction::Worse, "just below");
}

#[test]
fn efficiency_path_is_named_with_its_figures() {
    let v = verdict(
        &report_with(Some(40.0), Some(100.0), Some(100.0)),
        &report_with(Some(43.1), Some(90.0), Some(105.0)),
    );
    assert_eq!(v.direction, Direction::Better);
    assert_eq!(v.decided_by, DecidedBy::Efficiency);
    assert!(!v.latency_veto);
    assert!(
        v.reason.starts_with("efficiency +3.1 pp (> +2.0 pp)"),
        "{}",
        v.reason
    );
    // Throughput fell 10%, yet efficiency decides: the primary signal wins.
    let v = verdict(
        &report_with(Some(40.0), Some(100.0), None),
        &report_with(Some(30.0), Some(200.0), None),
    );
    assert_eq!(v.direction, Direction::Worse);
    assert_eq!(v.reason, "efficiency -10.0 pp (< -5.0 pp)");
}

// ---------------------------------------------------------------------------------------------
// Latency veto
// ---------------------------------------------------------------------------------------------

fn with_ttft(eff_after: f64, ttft_after: f64) -> Verdict {
    verdict(
        &report_with(Some(40.0), Some(100.0), Some(100.0)),
        &report_with(Some(eff_after), Some(100.0), Some(ttft_after)),
    )
}

#[test]
fn latency_veto_turns_better_into_plateau_above_twenty_percent() {
    let v = with_ttft(45.0, 119.9);
    assert_eq!(
        (v.direction, v.latency_veto),
        (Direction::Better, false),
        "below"
    );
    let v = with_ttft(45.0, 120.0);
    assert_eq!(
        (v.direction, v.latency_veto),
        (Direction::Better, false),
        "at +20%"
    );
    let v = with_ttft(45.0, 120.1);
    assert_eq!(
        (v.direction, v.latency_veto),
        (Direction::Plateau, true),
        "above"
    );
    assert!(
        v.reason
            .contains("but TTFT p99 +20.1% (> +20.0%): latency veto"),
        "{}",
        v.reason
    );
    let v = with_ttft(43.1, 135.0);
    assert_eq!(
        v.reason,
        "efficiency +3.1 pp (> +2.0 pp), but TTFT p99 +35.0% (> +20.0%): latency veto"
    );
}

#[test]
fn latency_veto_does_not_touch_worse_or_plateau() {
    let v = with_ttft(30.0, 300.0);
    assert_eq!((v.direction, v.latency_veto), (Direction::Worse, false));
    let v = with_ttft(41.0, 300.0);
    assert_eq!((v.direction, v.latency_veto), (Direction::Plateau, false));
}

#[test]
fn latency_veto_without_ttft_is_said_not_checked() {
    let v = verdict(
        &report_with(Some(40.0), Some(100.0), None),
        &report_with(Some(45.0), Some(100.0), Some(500.0)),
    );
    assert_eq!(v.direction, Direction::Better);
    assert!(
        v.reason.contains("latency veto not checked"),
        "{}",
        v.reason
    );
}

// ---------------------------------------------------------------------------------------------
// Throughput fallback
// ---------------------------------------------------------------------------------------------

fn fallback(eff_before: Option<f64>, tps_after: f64, ttft_after: f64) -> Verdict {
    verdict(
        &report_with(eff_before, Some(100.0), Some(100.0)),
        &report_with(None, Some(tps_after), Some(ttft_after)),
    )
}

#[test]
fn throughput_fallback_thresholds() {
    for (tps, want) in [
        (109.9, Direction::Plateau),
        (110.0, Direction::Plateau),
        (110.1, Direction::Better),
        (90.1, Direction::Plateau),
        (90.0, Direction::Plateau),
        (89.9, Direction::Worse),
    ] {
        let v = fallback(None, tps, 100.0);
        assert_eq!(v.direction, want, "{tps} tok/s after 100");
        assert_eq!(v.decided_by, DecidedBy::Throughput);
    }
}

#[test]
fn fallback_when_efficiency_is_missing_on_either_side_and_no_veto() {
    // Efficiency shown before only: still the fallback, and the veto is skipped.
    let v = fallback(Some(40.0), 150.0, 1000.0);
    assert_eq!(v.direction, Direction::Better);
    assert_eq!(v.decided_by, DecidedBy::Throughput);
    assert!(!v.latency_veto);
    assert!(
        v.reason
            .starts_with("efficiency unavailable after (no decode ceiling:"),
        "{}",
        v.reason
    );
    assert!(
        v.reason.contains("throughput +50.0% (> +10.0%)"),
        "{}",
        v.reason
    );
    assert!(
        v.reason.contains("latency veto not applied"),
        "{}",
        v.reason
    );
}

#[test]
fn both_signals_absent_is_plateau_with_reasons() {
    let v = verdict(
        &report_with(None, None, None),
        &report_with(None, None, None),
    );
    assert_eq!(
        (v.direction, v.decided_by),
        (Direction::Plateau, DecidedBy::Nothing)
    );
    assert!(
        v.reason.contains("efficiency unavailable on both sides"),
        "{}",
        v.reason
    );
    assert!(
        v.reason.contains("throughput unavailable on both sides"),
        "{}",
        v.reason
    );
    let v = verdict(
        &report_with(None, Some(100.0), None),
        &report_with(None, None, None),
    );
    assert_eq!(v.direction, Direction::Plateau);
    assert!(
        v.reason.contains("throughput unavailable after"),
        "{}",
        v.reason
    );
    // 0 tok/s before: no percentage, no direction.
    let v = verdict(
        &report_with(None, Some(0.0), None),
        &report_with(None, Some(50.0), None),
    );
    assert_eq!(
        (v.direction, v.decided_by),
        (Direction::Plateau, DecidedBy::Nothing)
    );
    assert!(
        v.reason.contains("throughput before is 0 tok/s"),
        "{}",
        v.reason
    );
}

#[test]
fn percent_changes_are_exact_on_round_numbers_and_undefined_from_zero() {
    assert_eq!(pct_change(Some(100.0), Some(110.0)), Some(10.0));
    assert_eq!(pct_change(Some(50.0), Some(40.0)), Some(-20.0));
    assert_eq!(pct_change(Some(0.0), Some(0.0)), Some(0.0));
    assert_eq!(pct_change(Some(0.0), Some(1.0)), None);
    assert_eq!(pct_change(None, Some(1.0)), None);
    assert_eq!(pct_change(Some(f64::NAN), Some(1.0)), None);
}

// ---------------------------------------------------------------------------------------------
// Side by side
// ---------------------------------------------------------------------------------------------

#[test]
fn side_by_side_rows_carry_deltas_and_goals() {
    let mut b = report_with(Some(40.0), Some(100.0), Some(200.0));
    let mut a = report_with(Some(46.0), Some(150.0), Some(180.0));
    b.metrics.kv_cache_peak_pct = Some(97.0);
    a.metrics.kv_cache_peak_pct = Some(60.0);
    b.economics.usd_per_million_tokens = Some(Money {
        usd: 2.0,
        estimated: true,
    });
    a.economics.usd_per_million_tokens = Some(Money {
        usd: 1.5,
        estimated: false,
    });
    let c = compare(&b, &a, &CompareConfig::default()).unwrap();
    let row = |k: &str| c.metrics.iter().find(|m| m.key == k).unwrap().clone();
    let eff = row("efficiency_pct");
    assert_eq!(
        (eff.delta, eff.goal, eff.estimated),
        (Some(6.0), Goal::Higher, true)
    );
    assert_eq!(row("generation_tokens_per_s").delta_pct, Some(50.0));
    assert_eq!(row("ttft_p99_ms").delta_pct, Some(-10.0));
    assert_eq!(row("ttft_p99_ms").goal, Goal::Lower);
    assert_eq!(row("kv_cache_peak_pct").delta, Some(-37.0));
    let usd = row("usd_per_million_tokens");
    assert_eq!((usd.delta_pct, usd.estimated), (Some(-25.0), true));
    assert_eq!(row("tpot_mean_ms").delta, None, "missing on both sides");
    assert_eq!(c.efficiency_delta_pp, Some(6.0));
    assert_eq!(c.throughput_delta_pct, Some(50.0));
    assert_eq!(c.ttft_p99_delta_pct, Some(-10.0));

    let text = render_text(&c, false);
    assert!(text.contains("BETTER (efficiency)"), "{text}");
    let eff_line = text
        .lines()
        .find(|l| l.contains("efficiency (est)"))
        .unwrap();
    assert!(
        eff_line.contains("+6.0 pp") && !eff_line.contains("+15.0%"),
        "{eff_line}"
    );
    assert!(!text.contains('\x1b'), "no colour unless asked");
    assert!(render_text(&c, true).contains("\x1b["));
    let back: Comparison = serde_json::from_str(&render_json(&c).unwrap()).unwrap();
    assert_eq!(back, c);
}

// ---------------------------------------------------------------------------------------------
// Same model, same GPUs
// ---------------------------------------------------------------------------------------------

#[test]
fn different_models_are_refused_unless_allowed() {
    let b = minimal_report("a");
    let mut a = minimal_report("b");
    a.recording.model_name = Some("other".to_string());
    let err = compare(&b, &a, &CompareConfig::default()).unwrap_err();
    assert!(matches!(err, CompareError::DifferentModels { .. }));
    assert_eq!(
        err.to_string(),
        "different models: before \"m\", after \"other\""
    );
    let allow = CompareConfig {
        allow_different: true,
    };
    let c = compare(&b, &a, &allow).unwrap();
    assert!(
        c.notes.iter().any(|n| n.contains("different models")),
        "{:?}",
        c.notes
    );
}

#[test]
fn different_gpu_types_are_refused_but_a_different_count_is_a_note() {
    let b = minimal_report("a");
    let mut a = minimal_report("b");
    a.recording.gpus[0].name = Some("A100".to_string());
    let err = compare(&b, &a, &CompareConfig::default()).unwrap_err();
    assert!(matches!(err, CompareError::DifferentGpus { .. }), "{err}");
    assert!(err.to_string().contains("[H100], after [A100]"), "{err}");
    assert!(compare(
        &b,
        &a,
        &CompareConfig {
            allow_different: true
        }
    )
    .is_ok());

    let mut two = minimal_report("b");
    two.recording.gpus.push(GpuFact {
        index: 1,
        name: Some("H100".to_string()),
        vram_total_gb: None,
    });
    let c = compare(&b, &two, &CompareConfig::default()).unwrap();
    assert_eq!(
        c.notes,
        vec!["GPU count changed: 1 before, 2 after".to_string()]
    );
}

#[test]
fn unknown_model_or_gpus_on_one_side_is_a_note_not_a_refusal() {
    let b = minimal_report("a");
    let mut a = minimal_report("b");
    a.recording.model_name = None;
    a.recording.gpus.clear();
    let c = compare(&b, &a, &CompareConfig::default()).unwrap();
    assert_eq!(c.notes.len(), 2, "{:?}", c.notes);
}

// ---------------------------------------------------------------------------------------------
// Diagnosis diff
// ---------------------------------------------------------------------------------------------

fn finding(rule: RuleId, path: Option<R2Path>, significant: bool, score: f64) -> Finding {
    Finding {
        rule,
        r2_path: path,
        title: rule.title().to_string(),
        confidence: 0.8,
        confidence_basis: "test".to_string(),
        impact: 4,
        score,
        windows: Some(WindowCounts {
            fired: 5,
            evaluable: 10,
            skipped: 0,
            fired_runs: Vec::new(),
        }),
        significant,
        significance: if significant {
            Significance::Standard
        } else {
            Significance::BelowGate
        },
        measures: vec![],
        fix: Fix {
            summary: format!("fix {rule:?}"),
            steps: vec![],
        },
        group: significant.then_some(RootCause::KvCapacity),
    }
}

fn diagnosis(findings: Vec<Finding>) -> Diagnosis {
    let groups = findings
        .iter()
        .filter(|f| f.significant)
        .take(1)
        .map(|f| IssueGroup {
            root_cause: RootCause::KvCapacity,
            title: RootCause::KvCapacity.title().to_string(),
            primary: f.rule,
            supporting: vec![],
            score: f.score,
        })
        .collect();
    Diagnosis {
        windows_total: 10,
        windows_evaluable: 10,
        windows_active: 10,
        findings,
        groups,
        not_fired: vec![],
    }
}

#[test]
fn diagnosis_diff_sorts_findings_into_resolved_new_and_persisting() {
    let before = diagnosis(vec![
        finding(RuleId::R2, Some(R2Path::Main), true, 3.8),
        finding(RuleId::R5, None, true, 3.0),
        finding(RuleId::R3, None, false, 1.0),
    ]);
    let after = diagnosis(vec![
        finding(RuleId::R5, None, true, 2.5),
        finding(RuleId::R1, None, true, 2.0),
        finding(RuleId::R2, Some(R2Path::Main), false, 1.0),
    ]);
    let d = diff_diagnoses(Some(&before), Some(&after)).unwrap();
    let rules = |l: &[FindingChange]| l.iter().map(|f| f.rule).collect::<Vec<_>>();
    assert_eq!(
        rules(&d.resolved),
        vec![RuleId::R2],
        "below the gate after counts as gone"
    );
    assert_eq!(rules(&d.new), vec![RuleId::R1]);
    assert_eq!(rules(&d.persisting), vec![RuleId::R5]);
    assert_eq!(d.persisting[0].score_before, Some(3.0));
    assert_eq!(d.persisting[0].score_after, Some(2.5));
    assert_eq!(d.resolved[0].kind, ChangeKind::Resolved);
    let next = d.next.unwrap();
    assert_eq!((next.rule, next.fix.as_str()), (RuleId::R5, "fix R5"));
    // A non-significant finding before is not "resolved".
    assert!(!rules(&d.resolved).contains(&RuleId::R3));
}

#[test]
fn diagnosis_diff_tells_r2_paths_apart_and_needs_both_sides() {
    let before = diagnosis(vec![finding(RuleId::R2, Some(R2Path::Main), true, 3.0)]);
    let after = diagnosis(vec![finding(
        RuleId::R2,
        Some(R2Path::AdmissionBacklog),
        true,
        2.0,
    )]);
    let d = diff_diagnoses(Some(&before), Some(&after)).unwrap();
    assert_eq!(d.resolved[0].r2_path, Some(R2Path::Main));
    assert_eq!(d.new[0].r2_path, Some(R2Path::AdmissionBacklog));
    assert!(d.persisting.is_empty());
    assert_eq!(diff_diagnoses(None, Some(&after)), None);
    assert_eq!(diff_diagnoses(Some(&before), None), None);
}

#[test]
fn availability_changes_lead_the_diff() {
    use crate::availability::{AvailabilityFinding, AvailabilityKind};
    let finding = |kind, summary: &str| AvailabilityFinding {
        kind,
        at_s: 1.0,
        duration_s: None,
        recovered: None,
        by_kind: Default::default(),
        summary: summary.to_string(),
    };
    let mut before = report_with(None, Some(100.0), None);
    before.availability = vec![finding(AvailabilityKind::Struggling, "slow")];
    let mut after = report_with(None, Some(100.0), None);
    after.availability = vec![finding(AvailabilityKind::Down, "gone at +14.0 s")];
    let c = compare(&before, &after, &CompareConfig::default()).unwrap();
    let kinds: Vec<_> = c.availability.iter().map(|a| (a.kind, a.change)).collect();
    assert_eq!(
        kinds,
        [
            (AvailabilityKind::Down, ChangeKind::New),
            (AvailabilityKind::Struggling, ChangeKind::Resolved)
        ]
    );
    let text = render_text(&c, false);
    let new_at = text.find("new: Endpoint down (gone at +14.0 s)").unwrap();
    let resolved_at = text.find("resolved: Endpoint struggling").unwrap();
    assert!(new_at > 0 && resolved_at > 0);
}
