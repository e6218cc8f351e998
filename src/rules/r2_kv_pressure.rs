//! R2, KV-cache pressure (spec "R2: KV cache pressure"): the KV pool is nearly full or the
//! scheduler preempts, so requests are evicted and recomputed; or, before that point, the
//! scheduler holds a queue back because free KV blocks cannot take it.
//!
//! Per evaluable window:
//! - main path: KV peak >= 88% (the window's max over all scrapes, not its mean) or any
//!   preemption in the window. VRAM >= 78% of total is shown as corroboration only.
//! - admission backlog path: queue ratio `waiting / (running + waiting) >= 30%`, free KV tokens
//!   `(1 − kv) × num_gpu_blocks × block_size` below the queued demand
//!   `waiting × prompt_tokens_mean`, and the scheduler not at its cap.
//!
//! Decisions:
//! - The main path suppresses the backlog path per window: a window where the main path fires
//!   is not a backlog window. At the finding level the main path is reported when it is
//!   significant or when the backlog path is not; otherwise the backlog path is.
//! - "Not at cap" is `running_mean < max_num_seqs − 0.5`, the complement of R5's "within 0.5",
//!   so a window is either a backlog (R2) or a saturation (R5) case, never both. Without a cap,
//!   or without the KV pool size from `cache_config_info`, the backlog path is not evaluated.
//! - Free KV uses the window's mean KV usage and demand its mean waiting count, the same
//!   period for both; prompt length is the window's histogram mean, else the recording's.
//! - Source skew: a window whose last GPU poll and last scrape are > 1 s apart is skipped
//!   (spec "R2", "Data" → Cadence). A window with no GPU poll has no skew, and R2 then judges
//!   it on vLLM alone: KV and preemptions come from vLLM; only the corroborating VRAM figure
//!   needs NVML. Skipped windows still count in the gate's denominator.

use super::gate::{self, R2_KV_CRITICAL_PCT};
use super::model::{Cmp, Fix, FixStep, FlagValue, Measure, R2Path, RuleId, Unit, WindowCounts};
use super::AT_CAP_TOLERANCE;
use super::{max_over, tw_mean, Ctx, Draft, Outcome, Tally};
use crate::aggregate::KeptWindow;
use crate::window::MAX_SOURCE_SKEW_NS;

/// KV peak at which the main path fires, percent (spec "R2", Main path: "≥88%").
pub const KV_PEAK_PCT: f64 = 88.0;
/// VRAM share of total shown as corroboration, percent (spec "R2": "VRAM ≥78% is shown …
/// as corroborating evidence").
pub const VRAM_CORROBORATION_PCT: f64 = 78.0;
/// Queue ratio for the backlog path (spec "R2", Admission backlog path: "≥ 30%").
pub const QUEUE_RATIO_MIN: f64 = 0.30;
/// Largest GPU/vLLM observation gap, seconds (spec "R2": "more than 1 second apart, R2 is
/// skipped").
pub const MAX_SKEW_S: f64 = MAX_SOURCE_SKEW_NS as f64 / 1e9;
/// Confidence with preemptions (spec "Confidence": R2 0.95).
pub const CONFIDENCE_PREEMPTIONS: f64 = 0.95;
/// Confidence with KV >= 95% (spec "Confidence": R2 0.85).
pub const CONFIDENCE_KV_CRITICAL: f64 = 0.85;
/// Confidence with KV >= 88%, no preemptions (spec "Confidence": R2 0.70).
pub const CONFIDENCE_KV: f64 = 0.70;
/// Confidence of the backlog path (spec "Confidence": R2 0.85).
pub const CONFIDENCE_BACKLOG: f64 = 0.85;
/// KV peak the main path's fix aims for, percent: below R5's 80% headroom line, so that the
/// reduced cap neither re-triggers R2 nor leaves R5 unable to raise it later.
pub const FIX_TARGET_KV_PCT: f64 = 80.0;
/// Cap reduction when preemptions fired below the KV target (the spike fell between
/// scrapes): keep three quarters of the cap.
pub const FIX_FALLBACK_CAP_SHARE: f64 = 0.75;
/// Step and ceiling when proposing a higher `--gpu-memory-utilization` (the backlog fix).
pub const FIX_GMU_STEP: f64 = 0.05;
/// Highest `--gpu-memory-utilization` proposed: leave some VRAM for CUDA context and
/// fragmentation.
pub const FIX_GMU_MAX: f64 = 0.95;

// Backlog blockers, in the spec's order.
const B_DATA: usize = 0;
const B_QUEUE: usize = 1;
const B_FREE_KV: usize = 2;
const B_AT_CAP: usize = 3;

enum Verdict {
    Skipped,
    Main {
        preempted: bool,
        critical: bool,
    },
    Backlog,
    /// The main path's best value (KV peak), and the backlog blocker when it was evaluated.
    Blocked(Option<f64>, Option<(usize, Option<f64>)>),
}

/// The backlog path's per-window figures.
struct Backlog {
    ratio: f64,
    free: f64,
    demand: f64,
}

fn backlog(
    w: &KeptWindow,
    ctx: &Ctx<'_>,
    cap: f64,
    capacity: f64,
) -> Result<Backlog, (usize, Option<f64>)> {
    let (Some(running), Some(waiting)) = (w.running_mean, w.waiting_mean) else {
        return Err((B_DATA, None));
    };
    if running + waiting <= 0.0 {
        return Err((B_QUEUE, Some(0.0)));
    }
    let ratio = waiting / (running + waiting);
    if ratio < QUEUE_RATIO_MIN {
        return Err((B_QUEUE, Some(ratio * 100.0)));
    }
    let kv = w.kv_cache_pct_mean.or(w.kv_cache_pct_last);
    let prompt = w.prompt_tokens.mean.or(ctx.agg.prompt_tokens_mean);
    let (Some(kv), Some(prompt)) = (kv, prompt) else {
        return Err((B_DATA, None));
    };
    let free = (1.0 - kv / 100.0).max(0.0) * capacity;
    let demand = waiting * prompt;
    if free >= demand {
        return Err((B_FREE_KV, Some(free)));
    }
    if running >= cap - AT_CAP_TOLERANCE {
        return Err((B_AT_CAP, Some(running)));
    }
    Ok(Backlog {
        ratio,
        free,
        demand,
    })
}

fn judge(w: &KeptWindow, ctx: &Ctx<'_>, backlog_inputs: Option<(f64, f64)>) -> Verdict {
    if w.source_skew_s().is_some_and(|s| s > MAX_SKEW_S) {
        return Verdict::Skipped;
    }
    let preempted = w.preemptions_delta.is_some_and(|p| p > 0.0);
    let peak = w.kv_cache_peak_pct;
    if preempted || peak.is_some_and(|k| k >= KV_PEAK_PCT) {
        return Verdict::Main {
            preempted,
            critical: peak.is_some_and(|k| k >= R2_KV_CRITICAL_PCT),
        };
    }
    match backlog_inputs.map(|(cap, capacity)| backlog(w, ctx, cap, capacity)) {
        Some(Ok(_)) => Verdict::Backlog,
        Some(Err(b)) => Verdict::Blocked(peak, Some(b)),
        None => Verdict::Blocked(peak, None),
    }
}

fn vram_pct(w: &KeptWindow) -> Option<f64> {
    let total = w.gpu.vram_total_mib_last.filter(|t| *t > 0.0)?;
    Some(w.gpu.vram_peak_mib.or(w.gpu.vram_used_mib_last)? / total * 100.0)
}

fn silent_reason(
    ctx: &Ctx<'_>,
    skipped: u64,
    kv_max: Option<f64>,
    backlog_off: Option<&str>,
    tally: &Tally,
) -> String {
    if ctx.evaluable == 0 {
        return "no evaluable window".to_string();
    }
    if skipped == ctx.evaluable {
        return format!(
            "skipped: GPU and vLLM observations more than {MAX_SKEW_S:.0} s apart in all \
             {skipped} evaluable windows"
        );
    }
    let main = match kv_max {
        Some(k) => format!("KV peak {k:.1}% < {KV_PEAK_PCT:.0}%, no preemptions"),
        None => "no KV-cache usage reported, no preemptions".to_string(),
    };
    let backlog = match (backlog_off, tally.dominant()) {
        (Some(off), _) => format!("admission backlog not evaluated: {off}"),
        (None, Some(d)) => match d.cond {
            B_QUEUE => format!(
                "queue ratio {:.1}% < {:.0}%",
                d.mean.unwrap_or(0.0),
                QUEUE_RATIO_MIN * 100.0
            ),
            B_FREE_KV => "free KV tokens cover the queued demand".to_string(),
            B_AT_CAP => "running at max_num_seqs (R5's case, not a KV backlog)".to_string(),
            _ => "waiting, KV usage or prompt length not reported".to_string(),
        },
        (None, None) => "no backlog".to_string(),
    };
    format!("not triggered ({main}; {backlog})")
}

/// Evaluates R2 over the evaluable windows.
pub(crate) fn evaluate(ctx: &Ctx<'_>) -> Outcome {
    let inputs = ctx.inputs;
    let cap = inputs.max_num_seqs.as_ref().map(|c| f64::from(c.value));
    let backlog_off = match (cap, inputs.kv_capacity_tokens) {
        (None, _) => Some("no max_num_seqs: pass -m"),
        (_, None) => Some("KV pool size unknown (cache_config_info num_gpu_blocks, block_size)"),
        _ => None,
    };
    let backlog_inputs = cap.zip(inputs.kv_capacity_tokens);
    let (mut main, mut back): (Vec<&KeptWindow>, Vec<&KeptWindow>) = (Vec::new(), Vec::new());
    let (mut skipped, mut preempt_n, mut critical_n) = (0u64, 0u64, 0u64);
    let mut kv_max: Option<f64> = None;
    let mut tally = Tally::new(4);
    for w in ctx.evaluable_windows() {
        match judge(w, ctx, backlog_inputs) {
            Verdict::Skipped => skipped += 1,
            Verdict::Main {
                preempted,
                critical,
            } => {
                main.push(w);
                preempt_n += u64::from(preempted);
                critical_n += u64::from(critical);
            }
            Verdict::Backlog => back.push(w),
            Verdict::Blocked(k, b) => {
                kv_max = match (kv_max, k) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                if let Some((c, v)) = b {
                    tally.add(c, v);
                }
            }
        }
    }
    let main_sig = gate::r2_main(main.len() as u64, preempt_n, critical_n, ctx.evaluable);
    let back_sig = gate::standard_significance(back.len() as u64, ctx.evaluable);
    let counts = |fired: &[&KeptWindow]| Some(WindowCounts::of(fired, ctx.evaluable, skipped));
    if !main.is_empty() && (main_sig.is_significant() || !back_sig.is_significant()) {
        let (confidence, basis) = if preempt_n > 0 {
            (CONFIDENCE_PREEMPTIONS, "preemptions active")
        } else if critical_n > 0 {
            (CONFIDENCE_KV_CRITICAL, "KV cache >= 95%")
        } else {
            (CONFIDENCE_KV, "KV cache >= 88%, no preemptions")
        };
        return Outcome::fired(Draft {
            rule: RuleId::R2,
            r2_path: Some(R2Path::Main),
            confidence,
            confidence_basis: basis,
            windows: counts(&main),
            significance: main_sig,
            measures: main_measures(ctx, &main, preempt_n, critical_n),
            fix: main_fix(ctx, max_over(&main, |w| w.kv_cache_peak_pct)),
        });
    }
    if !back.is_empty() {
        return Outcome::fired(Draft {
            rule: RuleId::R2,
            r2_path: Some(R2Path::AdmissionBacklog),
            confidence: CONFIDENCE_BACKLOG,
            confidence_basis: "KV admission backlog",
            windows: counts(&back),
            significance: back_sig,
            measures: backlog_measures(ctx, &back),
            fix: backlog_fix(ctx, &back),
        });
    }
    Outcome::silent(
        RuleId::R2,
        silent_reason(ctx, skipped, kv_max, backlog_off, &tally),
    )
}

fn main_measures(
    ctx: &Ctx<'_>,
    main: &[&KeptWindow],
    preempt_n: u64,
    critical_n: u64,
) -> Vec<Measure> {
    let mut m = Vec::new();
    if let Some(k) = max_over(main, |w| w.kv_cache_peak_pct) {
        m.push(Measure::condition(
            "KV cache peak",
            k,
            Unit::Percent,
            Cmp::Ge,
            KV_PEAK_PCT,
        ));
    }
    let preemptions: f64 = main.iter().filter_map(|w| w.preemptions_delta).sum();
    if main.iter().any(|w| w.preemptions_delta.is_some()) {
        m.push(Measure::condition(
            "preemptions",
            preemptions,
            Unit::Count,
            Cmp::Gt,
            0.0,
        ));
    }
    m.push(Measure::context(
        "windows with preemptions",
        preempt_n as f64,
        Unit::Count,
    ));
    m.push(Measure::context(
        "windows with KV cache >= 95%",
        critical_n as f64,
        Unit::Count,
    ));
    if let Some(v) = max_over(main, vram_pct) {
        m.push(Measure::corroborating(
            "VRAM peak of total",
            v,
            Unit::Percent,
            Cmp::Ge,
            VRAM_CORROBORATION_PCT,
        ));
    }
    if let Some(cap) = &ctx.inputs.max_num_seqs {
        m.push(Measure::context(
            "max_num_seqs",
            f64::from(cap.value),
            Unit::Requests,
        ));
    }
    m
}

/// Reduce the cap so that the KV peak would land near [`FIX_TARGET_KV_PCT`], assuming KV
/// use scales with the number of running sequences.
fn reduced_cap(cap: u32, kv_peak: Option<f64>) -> Option<u64> {
    if cap <= 1 {
        return None;
    }
    let capf = f64::from(cap);
    let target = match kv_peak {
        Some(k) if k > FIX_TARGET_KV_PCT => capf * FIX_TARGET_KV_PCT / k,
        _ => capf * FIX_FALLBACK_CAP_SHARE,
    };
    Some((target.floor() as u64).clamp(1, u64::from(cap) - 1))
}

fn main_fix(ctx: &Ctx<'_>, kv_peak: Option<f64>) -> Fix {
    let cap = ctx.inputs.max_num_seqs.as_ref();
    let cap_step = match cap.and_then(|c| reduced_cap(c.value, kv_peak).map(|n| (c.value, n))) {
        Some((now, n)) => FixStep::flag(
            "Reduce --max-num-seqs so fewer sequences share the KV pool",
            "--max-num-seqs",
            Some(FlagValue::Count(n)),
            Some(FlagValue::Count(u64::from(now))),
        ),
        None => FixStep::flag(
            "Reduce --max-num-seqs (pass -m with the current value for a number)",
            "--max-num-seqs",
            None,
            None,
        ),
    };
    Fix {
        summary: "Reduce --max-num-seqs or --max-model-len".to_string(),
        steps: vec![
            cap_step,
            FixStep::flag(
                "or lower --max-model-len so each sequence reserves less KV",
                "--max-model-len",
                None,
                None,
            ),
        ],
    }
}

fn backlog_measures(ctx: &Ctx<'_>, back: &[&KeptWindow]) -> Vec<Measure> {
    let mut m = Vec::new();
    let cap = ctx.inputs.max_num_seqs.as_ref().map(|c| f64::from(c.value));
    let capacity = ctx.inputs.kv_capacity_tokens;
    let fig = |w: &KeptWindow| match (cap, capacity) {
        (Some(c), Some(k)) => backlog(w, ctx, c, k).ok(),
        _ => None,
    };
    if let Some(r) = tw_mean(back, |w| fig(w).map(|b| b.ratio)) {
        m.push(Measure::condition(
            "queue ratio",
            r * 100.0,
            Unit::Percent,
            Cmp::Ge,
            QUEUE_RATIO_MIN * 100.0,
        ));
    }
    let free = tw_mean(back, |w| fig(w).map(|b| b.free));
    let demand = tw_mean(back, |w| fig(w).map(|b| b.demand));
    if let (Some(f), Some(d)) = (free, demand) {
        m.push(Measure::condition(
            "free KV tokens vs queued demand",
            f,
            Unit::Tokens,
            Cmp::Lt,
            d,
        ));
    }
    if let (Some(r), Some(c)) = (tw_mean(back, |w| w.running_mean), cap) {
        m.push(Measure::condition(
            "requests running vs max_num_seqs",
            r,
            Unit::Requests,
            Cmp::Lt,
            c - AT_CAP_TOLERANCE,
        ));
    }
    if let Some(k) = max_over(back, |w| w.kv_cache_peak_pct) {
        m.push(Measure::context("KV cache peak", k, Unit::Percent));
    }
    m
}

fn backlog_fix(ctx: &Ctx<'_>, back: &[&KeptWindow]) -> Fix {
    let mut steps = Vec::new();
    let gmu = ctx.inputs.gpu_memory_utilization;
    let vram = max_over(back, vram_pct);
    let room = vram.is_none_or(|v| v < FIX_GMU_MAX * 100.0);
    if gmu < FIX_GMU_MAX && room {
        let next = ((gmu + FIX_GMU_STEP).min(FIX_GMU_MAX) * 100.0).round() / 100.0;
        let text = match vram {
            Some(v) => format!("Raise --gpu-memory-utilization (VRAM peak {v:.1}% of total)"),
            None => {
                "Raise --gpu-memory-utilization if VRAM headroom exists (no GPU data)".to_string()
            }
        };
        steps.push(FixStep::flag(
            &text,
            "--gpu-memory-utilization",
            Some(FlagValue::Real(next)),
            Some(FlagValue::Real(gmu)),
        ));
    }
    let dtype = ctx.inputs.kv_cache_dtype.as_deref().unwrap_or("auto");
    if !dtype.to_ascii_lowercase().starts_with("fp8") {
        steps.push(FixStep::flag(
            "or store the KV cache in fp8 (about twice the tokens per GB)",
            "--kv-cache-dtype",
            Some(FlagValue::Text("fp8".to_string())),
            Some(FlagValue::Text(dtype.to_string())),
        ));
    }
    steps.push(FixStep::flag(
        "or lower --max-model-len",
        "--max-model-len",
        None,
        None,
    ));
    Fix {
        summary: "Expand the KV pool (not lower concurrency)".to_string(),
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testutil::{idle, inputs_m, windows, Fixture};
    use crate::rules::{RuleInputs, Significance};
    use crate::units::MonoNs;
    use crate::window::Window;

    fn run(ws: Vec<Window>, inputs: RuleInputs) -> Outcome {
        evaluate(&Fixture::new(ws, inputs).ctx())
    }

    /// Which gate R2's finding (when any) passed.
    fn exception(o: &Outcome) -> Option<Significance> {
        o.finding.as_ref().map(|f| f.significance)
    }

    /// `n` windows with KV peak `k`, then `rest` healthy ones.
    fn kv(n: u32, k: f64, rest: u32) -> Vec<Window> {
        let mut ws = windows(n, |w| w.kv_cache_peak_pct = Some(k));
        ws.extend(windows(rest, |_| {}));
        ws
    }

    #[test]
    fn kv_peak_threshold_below_at_above() {
        assert!(run(kv(4, 87.9, 0), RuleInputs::default()).finding.is_none());
        let at = run(kv(4, 88.0, 0), RuleInputs::default()).finding.unwrap();
        assert!(at.significant);
        assert_eq!(
            (at.confidence, at.significance),
            (0.70, Significance::Standard)
        );
        assert_eq!(at.measures[0].describe(), "KV cache peak 88.0% >= 88.0%");
        let above = run(kv(4, 88.1, 0), RuleInputs::default()).finding.unwrap();
        assert_eq!(above.r2_path, Some(R2Path::Main));
    }

    #[test]
    fn peak_not_mean_decides() {
        let ws = windows(4, |w| {
            w.kv_cache_pct_mean = Some(70.0);
            w.kv_cache_peak_pct = Some(92.0);
        });
        assert!(run(ws, RuleInputs::default()).finding.unwrap().significant);
    }

    #[test]
    fn one_preemption_window_is_significant_at_once() {
        let mut ws = windows(40, |_| {});
        ws[7].preemptions_delta = Some(3.0);
        let o = run(ws, RuleInputs::default());
        let f = o.finding.unwrap();
        assert_eq!(f.significance, Significance::Preemptions);
        assert_eq!(f.confidence, 0.95);
        assert_eq!(f.windows.unwrap().fired, 1);
        assert!(o.not_fired.is_none());
    }

    #[test]
    fn kv_critical_needs_two_windows() {
        // One window at 95% in 40: standard gate, below it; confidence 0.85.
        let o = run(kv(1, 95.0, 39), RuleInputs::default());
        let f = o.finding.unwrap();
        assert_eq!(
            (f.significance, f.confidence),
            (Significance::BelowGate, 0.85)
        );
        assert!(o.not_fired.unwrap().reason.starts_with("fired in 1 of 40"));
        // Two windows at 95%: significant by the exception.
        assert_eq!(
            exception(&run(kv(2, 95.0, 38), RuleInputs::default())),
            Some(Significance::KvCritical)
        );
        // Two windows at 94.9%: 88-95% band, standard gate, 2 < 3.
        assert_eq!(
            exception(&run(kv(2, 94.9, 38), RuleInputs::default())),
            Some(Significance::BelowGate)
        );
    }

    #[test]
    fn vram_corroborates_but_is_not_required() {
        let vram = |used: f64| {
            windows(4, move |w| {
                w.kv_cache_peak_pct = Some(90.0);
                w.gpu.vram_peak_mib = Some(used);
                w.gpu.vram_total_mib_last = Some(100.0);
            })
        };
        let f = run(vram(78.0), RuleInputs::default()).finding.unwrap();
        let v = f
            .measures
            .iter()
            .find(|m| m.name == "VRAM peak of total")
            .unwrap();
        assert_eq!(
            (v.met, v.role),
            (true, crate::rules::MeasureRole::Corroborating)
        );
        let f = run(vram(77.9), RuleInputs::default()).finding.unwrap();
        assert!(f.significant);
        let v = f
            .measures
            .iter()
            .find(|m| m.name == "VRAM peak of total")
            .unwrap();
        assert!(!v.met);
        // High VRAM alone does not fire.
        let ws = windows(4, |w| {
            w.gpu.vram_peak_mib = Some(99.0);
            w.gpu.vram_total_mib_last = Some(100.0);
        });
        assert!(run(ws, RuleInputs::default()).finding.is_none());
    }

    #[test]
    fn skewed_windows_are_skipped_only_with_gpu_data() {
        let skew = |gap_ns: i64| {
            windows(4, move |w| {
                w.kv_cache_peak_pct = Some(97.0);
                w.gpu.observed_mono = w.last_scrape_mono.map(|m| MonoNs(m.0 - gap_ns));
            })
        };
        // 1.0 s apart: still judged. 1.001 s: skipped, and R2 says why.
        let f = run(skew(1_000_000_000), RuleInputs::default())
            .finding
            .unwrap();
        assert_eq!(f.windows.unwrap().skipped, 0);
        let o = run(skew(1_001_000_000), RuleInputs::default());
        assert!(o.finding.is_none());
        assert!(o.not_fired.unwrap().reason.starts_with("skipped"));
        // No GPU poll in the window: no skew, judged on vLLM alone.
        let f = run(kv(4, 97.0, 0), RuleInputs::default()).finding.unwrap();
        assert_eq!(f.significance, Significance::KvCritical);
    }

    fn backlog_inputs(cap: u32, capacity: f64) -> RuleInputs {
        RuleInputs {
            kv_capacity_tokens: Some(capacity),
            ..inputs_m(cap)
        }
    }

    /// Backlog windows: 8 running, `waiting` queued, KV 60%, 100-token prompts.
    fn queued(waiting: f64) -> Vec<Window> {
        windows(4, move |w| {
            w.waiting_mean = Some(waiting);
            w.kv_cache_pct_mean = Some(60.0);
            w.kv_cache_peak_pct = Some(60.0);
        })
    }

    #[test]
    fn backlog_queue_ratio_below_at_above() {
        // Free = 40% of 1000 = 400 tokens; demand = waiting × 100.
        // 8 running: waiting 3.4 is 29.8%, 3.428571.. is 30%: use 12 running for exact 30%.
        let with = |running: f64, waiting: f64| {
            let ws = windows(4, move |w| {
                w.running_mean = Some(running);
                w.waiting_mean = Some(waiting);
                w.kv_cache_pct_mean = Some(60.0);
            });
            run(ws, backlog_inputs(64, 1000.0))
        };
        let at = with(14.0, 6.0).finding.unwrap(); // 6/20 = 30%
        assert_eq!(at.r2_path, Some(R2Path::AdmissionBacklog));
        assert_eq!((at.confidence, at.significant), (0.85, true));
        assert!(with(14.1, 6.0).finding.is_none()); // 29.85%
        assert!(with(13.9, 6.0).finding.unwrap().significant);
    }

    #[test]
    fn backlog_needs_kv_short_of_demand_and_room_under_the_cap() {
        // 8 running, 4 waiting (33%): demand 400 tokens vs free 400 -> not short.
        assert!(run(queued(4.0), backlog_inputs(64, 1000.0))
            .finding
            .is_none());
        // Capacity 990: free 396 < 400 -> fires.
        let f = run(queued(4.0), backlog_inputs(64, 990.0)).finding.unwrap();
        assert_eq!(f.r2_path, Some(R2Path::AdmissionBacklog));
        assert_eq!(
            f.fix.steps[0].command_line().unwrap(),
            "--gpu-memory-utilization 0.95"
        );
        assert_eq!(
            f.fix.steps[1].command_line().unwrap(),
            "--kv-cache-dtype fp8"
        );
        // Cap 8.5 is not expressible; cap 8 with running 8: at the cap -> R5's case.
        let o = run(queued(4.0), backlog_inputs(8, 990.0));
        assert!(o.finding.is_none());
        assert!(o.not_fired.unwrap().reason.contains("R5's case"));
        // No cap or no pool size: backlog path not evaluated, said so.
        let o = run(queued(4.0), RuleInputs::default());
        assert!(o.not_fired.unwrap().reason.contains("no max_num_seqs"));
        let o = run(queued(4.0), inputs_m(64));
        assert!(o.not_fired.unwrap().reason.contains("KV pool size unknown"));
    }

    #[test]
    fn main_path_suppresses_backlog() {
        // KV peak 90% and a KV-starved queue: the main path wins and the fix reduces the cap.
        let ws = windows(4, |w| {
            w.waiting_mean = Some(6.0);
            w.kv_cache_pct_mean = Some(85.0);
            w.kv_cache_peak_pct = Some(90.0);
        });
        let f = run(ws, backlog_inputs(64, 1000.0)).finding.unwrap();
        assert_eq!(f.r2_path, Some(R2Path::Main));
        // 64 × 80 / 90 = 56.9 -> 56.
        assert_eq!(f.fix.steps[0].command_line().unwrap(), "--max-num-seqs 56");
        assert_eq!(f.fix.steps[0].current, Some(FlagValue::Count(64)));
    }

    #[test]
    fn reduced_cap_numbers() {
        assert_eq!(reduced_cap(256, Some(97.0)), Some(211));
        assert_eq!(reduced_cap(16, Some(50.0)), Some(12)); // preemptions at low KV: 3/4
        assert_eq!(reduced_cap(2, Some(99.0)), Some(1));
        assert_eq!(reduced_cap(1, Some(99.0)), None);
    }

    #[test]
    fn silent_reason_names_the_kv_peak() {
        let o = run(vec![idle(0), idle(1)], RuleInputs::default());
        assert_eq!(
            o.not_fired.unwrap().reason,
            "not triggered (KV peak 0.0% < 88%, no preemptions; admission backlog not \
             evaluated: no max_num_seqs: pass -m)"
        );
    }
}
