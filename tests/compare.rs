//! `profile compare` through the binary: `--fail-on` exit codes, JSON output, the refusal of
//! different models and GPUs, and — when present — the shipped real recordings, compared in
//! both directions.

use crate::support::profile;
use profile::compare::testutil::{minimal_report, report_with};
use profile::compare::{ChangeKind, Comparison, Direction};
use profile::report::*;
use profile::rules::RuleId;
use std::path::{Path, PathBuf};

/// Writes `before` and `after` as report JSON files in `dir`.
fn write_pair(dir: &Path, before: &Report, after: &Report) -> (PathBuf, PathBuf) {
    let (b, a) = (dir.join("before.json"), dir.join("after.json"));
    std::fs::write(&b, render_json(before).unwrap()).unwrap();
    std::fs::write(&a, render_json(after).unwrap()).unwrap();
    (b, a)
}

/// Runs `profile compare` on two hand-made reports; returns (exit code, stdout, stderr).
fn run(before: &Report, after: &Report, extra: &[&str]) -> (i32, String, String) {
    let tmp = tempfile::tempdir().unwrap();
    let (b, a) = write_pair(tmp.path(), before, after);
    let out = profile()
        .arg("compare")
        .arg(&b)
        .arg(&a)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn eff(before: f64, after: f64) -> (Report, Report) {
    (
        report_with(Some(before), Some(100.0), Some(100.0)),
        report_with(Some(after), Some(100.0), Some(100.0)),
    )
}

#[test]
fn fail_on_sets_exit_1_and_is_off_by_default() {
    let worse = eff(40.0, 30.0);
    let plateau = eff(40.0, 41.0);
    let better = eff(40.0, 45.0);
    for ((b, a), flag, want) in [
        (&worse, None, 0),
        (&worse, Some("worse"), 1),
        (&worse, Some("plateau"), 1),
        (&plateau, None, 0),
        (&plateau, Some("worse"), 0),
        (&plateau, Some("plateau"), 1),
        (&better, Some("worse"), 0),
        (&better, Some("plateau"), 0),
    ] {
        let mut extra = vec![];
        if let Some(f) = flag {
            extra.extend(["--fail-on", f]);
        }
        let (code, out, err) = run(b, a, &extra);
        assert_eq!(code, want, "{flag:?}\n{out}\n{err}");
        assert!(out.contains("direction: "), "{out}");
    }
    let (code, _, err) = run(&worse.0, &worse.1, &["--fail-on", "sometimes"]);
    assert_eq!(code, 2, "a bad flag value is a usage error: {err}");
}

#[test]
fn json_output_deserializes_into_the_comparison() {
    let (b, a) = eff(40.0, 43.1);
    let mut a = a;
    a.metrics.ttft.p99_ms = Some(135.0);
    let (code, out, _) = run(&b, &a, &["--json"]);
    assert_eq!(code, 0);
    let c: Comparison = serde_json::from_str(&out).unwrap();
    assert_eq!(c.verdict.direction, Direction::Plateau);
    assert!(c.verdict.latency_veto);
    assert_eq!(
        c.verdict.reason,
        "efficiency +3.1 pp (> +2.0 pp), but TTFT p99 +35.0% (> +20.0%): latency veto"
    );
    assert_eq!(c.ttft_p99_delta_pct, Some(35.0));
}

#[test]
fn different_models_or_gpus_are_refused_with_exit_2_unless_allowed() {
    let b = minimal_report("before");
    let mut other_model = minimal_report("after");
    other_model.recording.model_name = Some("other".to_string());
    let (code, _, err) = run(&b, &other_model, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("different models"), "{err}");
    assert!(err.contains("--allow-different"), "{err}");
    let (code, out, _) = run(&b, &other_model, &["--allow-different"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("note: compared anyway: different models"),
        "{out}"
    );

    let mut other_gpu = minimal_report("after");
    other_gpu.recording.gpus[0].name = Some("A100".to_string());
    let (code, _, err) = run(&b, &other_gpu, &["--fail-on", "worse"]);
    assert_eq!(code, 2, "a refusal is an error, not a verdict: {err}");
    assert!(err.contains("different GPUs"), "{err}");
    assert_eq!(run(&b, &other_gpu, &["--allow-different"]).0, 0);
}

#[test]
fn unreadable_inputs_exit_2_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.json");
    std::fs::write(&junk, "{}").unwrap();
    let out = profile()
        .arg("compare")
        .arg(&junk)
        .arg(tmp.path().join("missing.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("junk.json") && err.contains("not a report"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// The shipped real recordings
// ---------------------------------------------------------------------------------------------

/// vLLM 0.32 on CPU, 24 clients, --max-num-seqs 8: concurrency saturation (R5).
const LOAD: &str = "recordings/vllm-cpu-0.32-load";
/// The same with 16 KV blocks: KV pressure and preemptions (R2).
const KV_PRESSURE: &str = "recordings/vllm-cpu-0.32-kv-pressure";

/// Fails, rather than skip, where a shipped recording is missing from the checkout.
fn assert_real(rel: &str) {
    let present = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .join("manifest.json")
        .is_file();
    assert!(present, "{rel} is missing from this checkout");
}

fn compare_real(before: &str, after: &str) -> Comparison {
    let out = profile()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["compare", before, after, "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn real_kv_pressure_against_concurrency_saturation_both_ways() {
    assert_real(LOAD);
    assert_real(KV_PRESSURE);
    let worse = compare_real(LOAD, KV_PRESSURE);
    let better = compare_real(KV_PRESSURE, LOAD);
    // No GPU was recorded (CPU server): the throughput fallback decides.
    assert_eq!(
        worse.verdict.direction,
        Direction::Worse,
        "{}",
        worse.verdict.reason
    );
    assert_eq!(
        better.verdict.direction,
        Direction::Better,
        "{}",
        better.verdict.reason
    );
    let preempt = |c: &Comparison| {
        let row = c
            .metrics
            .iter()
            .find(|m| m.key == "preemptions_per_s")
            .unwrap();
        (row.before, row.after)
    };
    let (b, a) = preempt(&worse);
    assert!(
        b == Some(0.0) && a.is_some_and(|x| x > 0.0),
        "{b:?} -> {a:?}"
    );
    let r2 = |list: &[profile::compare::FindingChange], kind: ChangeKind| {
        list.iter().any(|f| f.rule == RuleId::R2 && f.kind == kind)
    };
    let (w, b) = (worse.diagnosis.unwrap(), better.diagnosis.unwrap());
    assert!(r2(&w.new, ChangeKind::New), "R2 new: {w:?}");
    assert!(r2(&b.resolved, ChangeKind::Resolved), "R2 resolved: {b:?}");
    // And the concurrency saturation the other way round; the next step follows the after side.
    assert!(w.resolved.iter().any(|f| f.rule == RuleId::R5), "{w:?}");
    assert!(b.new.iter().any(|f| f.rule == RuleId::R5), "{b:?}");
    assert_eq!(w.next.map(|n| n.rule), Some(RuleId::R2));
    assert_eq!(b.next.map(|n| n.rule), Some(RuleId::R5));
    let text = profile()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["compare", LOAD, KV_PRESSURE, "--fail-on", "worse"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("direction: WORSE (throughput fallback)"),
        "{text}"
    );
    assert!(text.contains("new: R2 KV cache pressure (main)"), "{text}");
    assert!(
        text.contains("resolved: R5 Concurrency saturation"),
        "{text}"
    );
}

#[test]
fn real_recordings_carry_intervals_and_a_self_compare_is_within_noise() {
    assert_real(LOAD);
    assert_real(KV_PRESSURE);
    // The same recording on both sides: no change, and the interval says so.
    let same = compare_real(LOAD, LOAD);
    assert_eq!(same.verdict.direction, Direction::Plateau);
    assert!(same.verdict.within_noise, "{}", same.verdict.reason);
    let iv = same.verdict.interval.expect("both sides carry samples");
    assert!(iv.lo < 0.0 && iv.hi > 0.0, "{iv:?}");
    let method = same.noise.bootstrap.as_ref().expect("bootstrap recorded");
    assert_eq!(method.replicates, 2000);
    assert!(method.method.contains("block bootstrap"));
    // The real regression stays Worse: its interval lies below -10 %.
    let worse = compare_real(LOAD, KV_PRESSURE);
    assert_eq!(worse.verdict.direction, Direction::Worse);
    assert!(!worse.verdict.within_noise, "{}", worse.verdict.reason);
    let iv = worse.verdict.interval.unwrap();
    let pct = worse.throughput_delta_pct.unwrap();
    assert!(
        iv.hi < -10.0 && iv.lo <= pct && pct <= iv.hi,
        "{iv:?} {pct}"
    );
    assert!(
        worse.verdict.reason.contains("throughput -24.5% ("),
        "{}",
        worse.verdict.reason
    );
    let tput = worse
        .metrics
        .iter()
        .find(|m| m.key == "generation_tokens_per_s")
        .unwrap();
    assert_eq!(tput.delta_pct_interval, Some(iv));
    // Same inputs, same intervals.
    assert_eq!(compare_real(LOAD, KV_PRESSURE), worse);
}

#[test]
fn saved_reports_compare_with_intervals_only_when_they_carry_samples() {
    assert_real(LOAD);
    let tmp = tempfile::tempdir().unwrap();
    let save = |extra: &[&str], name: &str| -> PathBuf {
        let out = profile()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["analyze", LOAD, "--json"])
            .args(extra)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let p = tmp.path().join(name);
        std::fs::write(&p, out).unwrap();
        p
    };
    let plain = save(&[], "plain.json");
    let sampled = save(&["--samples"], "sampled.json");
    let run = |a: &Path, b: &Path, json: bool| -> String {
        let mut c = profile();
        c.arg("compare").arg(a).arg(b);
        if json {
            c.arg("--json");
        }
        String::from_utf8(c.assert().success().get_output().stdout.clone()).unwrap()
    };
    let c: Comparison = serde_json::from_str(&run(&plain, &sampled, true)).unwrap();
    assert_eq!(
        c.noise.unavailable.as_deref(),
        Some("before: report has no per-window samples")
    );
    assert!(c.verdict.interval.is_none() && !c.verdict.within_noise);
    let text = run(&plain, &plain, false);
    assert!(
        text.contains("noise: no interval (before: report has no per-window samples; after:"),
        "{text}"
    );
    // With samples on both sides the saved reports give the recording's own intervals.
    let saved: Comparison = serde_json::from_str(&run(&sampled, &sampled, true)).unwrap();
    let live = compare_real(LOAD, LOAD);
    assert_eq!(saved.verdict.interval, live.verdict.interval);
    assert_eq!(saved.verdict.direction, Direction::Plateau);
}
