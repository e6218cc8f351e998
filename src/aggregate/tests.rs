use super::*;
use crate::vllm::names::*;
use crate::vllm::testutil::{gpu_metrics, RecBuilder};
use crate::window::{blank_window, build_windows, set_of, WindowOptions};

const INF: f64 = f64::INFINITY;

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

/// An evaluable window unless `dur`/`running` say otherwise.
fn win(
    i: u32,
    dur: Option<f64>,
    running: Option<f64>,
    kv: Option<f64>,
    util: Option<f64>,
) -> Window {
    let mut w = blank_window(i);
    w.duration_s = dur;
    w.running_last = running;
    w.running_mean = running;
    w.kv_cache_pct_last = kv;
    w.kv_cache_pct_mean = kv;
    w.kv_cache_peak_pct = kv;
    w.gpu.util_pct_mean = util;
    w.last_scrape_seq = Some(u64::from(i));
    w
}

fn bk(v: &[(f64, f64)]) -> Vec<Bucket> {
    v.iter().map(|&(le, count)| Bucket { le, count }).collect()
}

#[test]
fn tier1_needs_positive_duration_and_running() {
    let g = |w: &Window| window_gate(w, true);
    assert_eq!(
        g(&win(0, None, Some(3.0), Some(90.0), None)),
        Gate::NotEvaluable
    );
    assert_eq!(
        g(&win(0, Some(0.0), Some(3.0), Some(90.0), None)),
        Gate::NotEvaluable
    );
    assert_eq!(
        g(&win(0, Some(2.0), None, Some(90.0), None)),
        Gate::NotEvaluable
    );
    // running = 0 is data: evaluable, idle.
    assert_eq!(
        g(&win(0, Some(2.0), Some(0.0), Some(90.0), Some(90.0))),
        Gate::Idle
    );
    assert!(window_is_evaluable(&win(
        0,
        Some(2.0),
        Some(0.0),
        None,
        None
    )));
    assert!(!window_is_evaluable(&win(0, Some(2.0), None, None, None)));
}

#[test]
fn tier2_four_cases() {
    let g = |kv, util| window_gate(&win(0, Some(2.0), Some(1.0), kv, util), true);
    // Both present: either arm.
    assert_eq!(g(Some(50.0), Some(5.0)), Gate::Active);
    assert_eq!(g(Some(10.0), Some(50.0)), Gate::Active);
    assert_eq!(g(Some(10.0), Some(5.0)), Gate::Idle);
    // KV only: thresholds are strict.
    assert_eq!(g(Some(31.0), None), Gate::Active);
    assert_eq!(g(Some(ACTIVE_KV_PCT), None), Gate::Idle);
    // GPU only.
    assert_eq!(g(None, Some(21.0)), Gate::Active);
    assert_eq!(g(None, Some(ACTIVE_GPU_UTIL_PCT)), Gate::Idle);
    // Both absent: running > 0 alone.
    assert_eq!(g(None, None), Gate::Active);
}

#[test]
fn no_gpu_fallback_counts_generating_windows_and_is_flagged() {
    let mut w = win(0, Some(2.0), Some(2.0), Some(10.0), None);
    w.generation_tokens_delta = Some(50.0);
    w.generation_tokens_per_s = Some(25.0);
    assert_eq!(window_gate(&w, false), Gate::ActiveNoGpuFallback);
    assert_eq!(window_gate(&w, true), Gate::Idle);
    let mut idle = w.clone();
    idle.index = 1;
    idle.generation_tokens_delta = Some(0.0);
    assert_eq!(window_gate(&idle, false), Gate::Idle);

    let a = aggregate(&set_of(vec![w.clone(), idle.clone()], false));
    assert!(a.no_gpu_fallback_used);
    assert_eq!((a.windows_active, a.windows_active_no_gpu_fallback), (1, 1));
    assert!(close(a.generation_tokens_per_s, 25.0));
    let a = aggregate(&set_of(vec![w, idle], true));
    assert!(!a.no_gpu_fallback_used);
    assert_eq!(a.windows_active, 0);
    assert_eq!(a.generation_tokens_per_s, None);
}

#[test]
fn no_gpu_fallback_from_a_real_recording() {
    let mut b = RecBuilder::new();
    let run = b.gauge(NUM_REQUESTS_RUNNING, "");
    let kv = b.gauge(KV_CACHE_USAGE_PERC, "");
    let gen = b.counter(GENERATION_TOKENS_TOTAL, "");
    for i in 0..=8i64 {
        b.scrape(i * 500, &[(run, 1.0), (kv, 0.05), (gen, (i * 100) as f64)]);
    }
    let set = build_windows(&b.build(), &WindowOptions::default()).unwrap();
    assert!(!set.has_gpu_data);
    let a = aggregate(&set);
    assert_eq!(
        (a.windows_total, a.windows_evaluable, a.windows_active),
        (3, 3, 3)
    );
    assert!(a.no_gpu_fallback_used);
    assert!(close(a.generation_tokens_per_s, 200.0));
    // The same with a GPU poll anywhere: the extension is off, KV 5% keeps windows idle.
    b.gpu(100, 0, gpu_metrics(5, 100.0));
    let set = build_windows(&b.build(), &WindowOptions::default()).unwrap();
    let a = aggregate(&set);
    assert_eq!(a.windows_active, 0);
    assert!(!a.no_gpu_fallback_used);
}

#[test]
fn all_non_evaluable_returns_the_last_raw_window() {
    let mut w0 = win(0, None, Some(1.0), Some(50.0), None);
    w0.generation_tokens_total = Some(5.0);
    let mut w1 = win(1, Some(2.0), None, Some(60.0), None);
    w1.generation_tokens_total = Some(9.0);
    let a = aggregate(&set_of(vec![w0, w1.clone()], true));
    assert!(a.all_non_evaluable);
    assert_eq!(a.last_raw_window, Some(w1));
    assert_eq!(
        (a.windows_total, a.windows_evaluable, a.windows_active),
        (2, 0, 0)
    );
    assert_eq!(a.kv_cache_peak_pct, None);
    assert_eq!(a.running_last, None);
    assert_eq!(a.generation_tokens_total, Some(9.0));
    let a = aggregate(&set_of(vec![], true));
    assert!(a.all_non_evaluable);
    assert_eq!(a.last_raw_window, None);
}

#[test]
fn active_means_are_time_weighted() {
    let mut w0 = win(0, Some(2.0), Some(4.0), Some(50.0), Some(50.0));
    w0.generation_tokens_per_s = Some(10.0);
    w0.gpu.power_w_mean = Some(300.0);
    let mut w1 = win(1, Some(1.0), Some(1.0), Some(50.0), Some(80.0));
    w1.generation_tokens_per_s = Some(40.0);
    w1.gpu.power_w_mean = Some(600.0);
    // Idle (running 0): excluded from active means.
    let mut w2 = win(2, Some(2.0), Some(0.0), Some(50.0), Some(90.0));
    w2.generation_tokens_per_s = Some(1000.0);
    let a = aggregate(&set_of(vec![w0, w1, w2], true));
    assert_eq!((a.windows_evaluable, a.windows_active), (3, 2));
    assert!(close(a.generation_tokens_per_s, 20.0)); // (10×2 + 40×1) / 3
    assert!(close(a.gpu_util_pct, 60.0)); // (50×2 + 80×1) / 3
    assert!(close(a.power_w, 400.0));
    assert!(close(a.running_mean, 3.0)); // (4×2 + 1×1) / 3
    assert!(close(a.active_duration_s, 3.0));
    assert!(close(a.evaluable_duration_s, 5.0));
    assert_eq!(a.requests_per_s, None);
}

#[test]
fn gpm_means_are_time_weighted_over_the_active_windows_that_have_them() {
    let mut w0 = win(0, Some(2.0), Some(4.0), Some(50.0), Some(50.0));
    w0.gpu.sm_active_pct_mean = Some(60.0);
    w0.gpu.sm_occupancy_pct_mean = Some(20.0);
    w0.gpu.dram_bw_util_pct_mean = Some(70.0);
    // An active window without GPM (the device's first poll): left out, not a 0.
    let mut w1 = win(1, Some(1.0), Some(1.0), Some(50.0), Some(80.0));
    w1.gpu.sm_active_pct_mean = Some(90.0);
    let w2 = win(2, Some(3.0), Some(2.0), Some(50.0), Some(80.0));
    // Idle: excluded from active means.
    let mut w3 = win(3, Some(2.0), Some(0.0), Some(50.0), Some(90.0));
    w3.gpu.dram_bw_util_pct_mean = Some(5.0);
    let a = aggregate(&set_of(vec![w0, w1, w2, w3], true));
    assert_eq!(a.windows_active, 3);
    assert!(close(a.gpu_sm_active_pct, (60.0 * 2.0 + 90.0) / 3.0));
    assert!(close(a.gpu_sm_occupancy_pct, 20.0));
    assert!(close(a.gpu_dram_bw_util_pct, 70.0));
    // No window with GPM: None.
    let b = aggregate(&set_of(
        vec![win(0, Some(2.0), Some(4.0), None, Some(50.0))],
        true,
    ));
    assert_eq!(
        (
            b.gpu_sm_active_pct,
            b.gpu_sm_occupancy_pct,
            b.gpu_dram_bw_util_pct
        ),
        (None, None, None)
    );
}

#[test]
fn histogram_means_weigh_by_count_and_p99_merges_buckets() {
    let mut w0 = win(0, Some(2.0), Some(1.0), Some(50.0), None);
    w0.ttft_s.delta_sum = Some(1.0);
    w0.ttft_s.delta_count = Some(10.0);
    w0.ttft_s.buckets = bk(&[(0.1, 10.0), (1.0, 10.0), (INF, 10.0)]);
    let mut w1 = win(1, Some(2.0), Some(1.0), Some(50.0), None);
    w1.ttft_s.delta_sum = Some(9.0);
    w1.ttft_s.delta_count = Some(30.0);
    w1.ttft_s.buckets = bk(&[(0.1, 0.0), (1.0, 30.0), (INF, 30.0)]);
    let a = aggregate(&set_of(vec![w0, w1], true));
    // 10 / 40, not the mean of means (0.1 + 0.3) / 2.
    assert!(close(a.ttft_s.mean, 0.25));
    assert!(close(a.ttft_mean_ms, 250.0));
    assert_eq!(
        a.ttft_s.buckets,
        bk(&[(0.1, 10.0), (1.0, 40.0), (INF, 40.0)])
    );
    // rank 39.6 in (0.1, 1]: 0.1 + 0.9 × 29.6/30 (the mean of the two p99s would be 0.545).
    assert!(close(a.ttft_s.p99, 0.1 + 0.9 * 29.6 / 30.0));
    assert!(close(a.ttft_p99_ms, 1000.0 * (0.1 + 0.9 * 29.6 / 30.0)));
    assert_eq!(a.tpot_s.p99, None);
    assert_eq!(a.tpot_s.mean, None);
}

#[test]
fn histogram_mean_without_new_observations_falls_back_to_cumulative() {
    let mut w0 = win(0, Some(2.0), Some(1.0), Some(50.0), None);
    w0.tpot_s.delta_sum = Some(0.0);
    w0.tpot_s.delta_count = Some(0.0);
    w0.tpot_s.mean = Some(0.04);
    w0.tpot_s.mean_is_cumulative = true;
    let a = aggregate(&set_of(vec![w0], true));
    assert!(close(a.tpot_s.mean, 0.04));
    assert!(a.tpot_s.mean_is_cumulative);
    assert_eq!(a.tpot_p99_ms, None);
}

#[test]
fn evaluable_fields_peaks_state_and_totals() {
    let mut w0 = win(0, Some(2.0), Some(5.0), Some(80.0), Some(90.0));
    w0.kv_cache_peak_pct = Some(90.0);
    w0.prefix_hits_delta = Some(10.0);
    w0.prefix_queries_delta = Some(100.0);
    w0.prompt_tokens.delta_sum = Some(1000.0);
    w0.prompt_tokens.delta_count = Some(10.0);
    w0.gpu.vram_peak_mib = Some(300.0);
    w0.gpu.temperature_peak_c = Some(85.0);
    // Idle but evaluable: counts for KV mean, prefix hits, prompt length, peaks, state.
    let mut w1 = win(1, Some(1.0), Some(0.0), Some(40.0), Some(5.0));
    w1.kv_cache_peak_pct = Some(50.0);
    w1.prefix_hits_delta = Some(30.0);
    w1.prefix_queries_delta = Some(50.0);
    w1.prompt_tokens.delta_sum = Some(200.0);
    w1.prompt_tokens.delta_count = Some(10.0);
    w1.gpu.vram_peak_mib = Some(400.0);
    w1.gpu.vram_used_mib_last = Some(500.0); // landing value above the window peaks
    w1.gpu.vram_total_mib_last = Some(1000.0);
    w1.gpu.temperature_c_last = Some(60.0);
    w1.gpu.sm_clock_mhz_last = Some(1400.0);
    w1.waiting_last = Some(3.0);
    // Not evaluable: ignored for peaks, but the chronological last for totals.
    let mut w2 = win(2, None, Some(9.0), Some(99.0), None);
    w2.generation_tokens_total = Some(12345.0);
    w2.requests_total = Some(77.0);
    // A trailing window with no good scrape at all.
    let mut w3 = blank_window(3);
    w3.scrapes_failed = 2;
    let a = aggregate(&set_of(vec![w0, w1, w2, w3], true));
    assert_eq!(
        (a.windows_total, a.windows_evaluable, a.windows_active),
        (4, 2, 1)
    );
    assert!(close(a.kv_cache_pct_mean, (80.0 * 2.0 + 40.0) / 3.0));
    assert!(close(a.prefix_cache_hit_pct, 40.0 / 150.0 * 100.0));
    assert!(close(a.prompt_tokens_mean, 60.0));
    assert!(close(a.kv_cache_peak_pct, 90.0));
    assert!(close(a.vram_peak_mib, 500.0));
    assert!(close(a.temperature_peak_c, 85.0));
    assert_eq!(a.last_evaluable_window, Some(1));
    assert_eq!(a.running_last, Some(0.0));
    assert_eq!(a.waiting_last, Some(3.0));
    assert!(close(a.kv_cache_pct_last, 40.0));
    assert_eq!(a.vram_used_mib, Some(500.0));
    assert_eq!(a.vram_total_mib, Some(1000.0));
    assert_eq!(a.temperature_c, Some(60.0));
    assert_eq!(a.sm_clock_mhz, Some(1400.0));
    assert_eq!(a.generation_tokens_total, Some(12345.0));
    assert_eq!(a.requests_total, Some(77.0));
    assert_eq!(a.prompt_tokens_total, None);
    assert!(!a.all_non_evaluable);
    assert_eq!(a.last_raw_window, None);
}

#[test]
fn aggregate_serializes_deterministically() {
    let mut b = RecBuilder::new();
    let run = b.gauge(NUM_REQUESTS_RUNNING, "");
    let h = b.hist(TIME_TO_FIRST_TOKEN_SECONDS, "", &[0.5]);
    b.scrape(
        0,
        &[
            (run, 1.0),
            (h.buckets[0], 0.0),
            (h.buckets[1], 0.0),
            (h.sum, 0.0),
            (h.count, 0.0),
        ],
    );
    b.scrape(
        1000,
        &[
            (run, 1.0),
            (h.buckets[0], 1.0),
            (h.buckets[1], 2.0),
            (h.sum, 1.2),
            (h.count, 2.0),
        ],
    );
    let set = build_windows(&b.build(), &WindowOptions::default()).unwrap();
    let a = aggregate(&set);
    let j1 = serde_json::to_string(&a).unwrap();
    let j2 = serde_json::to_string(&aggregate(&set)).unwrap();
    assert_eq!(j1, j2);
    assert!(j1.contains(r#""le":"+Inf""#));
    // rank 1.98 of 2 lands in +Inf: the largest finite bound.
    assert_eq!(a.ttft_s.p99, Some(0.5));
    assert!(close(a.ttft_s.mean, 0.6));
}

#[test]
fn buckets_folded_as_windows_come_give_the_aggregate_of_windows_that_kept_them() {
    // Active, fallback-only (no KV load, generating), idle and not evaluable windows; prompt
    // length reaches the evaluable ones too; one window's TTFT buckets use other bounds.
    let mut windows = Vec::new();
    for i in 0..8u32 {
        let kv = if i % 3 == 0 { Some(10.0) } else { Some(50.0) };
        let running = if i == 5 { Some(0.0) } else { Some(2.0) };
        let dur = if i == 6 { None } else { Some(2.0) };
        let mut w = win(i, dur, running, kv, None);
        w.generation_tokens_delta = Some(f64::from(i) * 10.0);
        let n = f64::from(i + 1);
        for h in HistKind::ALL {
            let hw = w.hist_mut(h);
            hw.delta_sum = Some(0.3 * n);
            hw.delta_count = Some(n);
            hw.buckets = if i == 4 && h == HistKind::Ttft {
                bk(&[(0.05, 1.0), (0.5, n), (INF, n)])
            } else {
                bk(&[(0.1, n / 2.0), (1.0, n), (INF, n)])
            };
        }
        windows.push(w);
    }
    for has_gpu in [false, true] {
        let mut set = set_of(windows.clone(), has_gpu);
        let want = aggregate(&set);
        let mut fold = AggregateFold::default();
        for w in &mut set.windows {
            fold.add(w);
            w.drop_buckets_except(&[]);
        }
        assert!(set.windows.iter().all(|w| w.ttft_s.buckets.is_empty()));
        let got = fold.finish(has_gpu);
        assert_eq!(got, want, "has_gpu_data {has_gpu}");
        // The fold is not vacuous: buckets were merged, differently with and without GPU.
        assert!(!got.ttft_s.buckets.is_empty() && !got.prompt_tokens.buckets.is_empty());
        assert_ne!(got.ttft_s.buckets, got.prompt_tokens.buckets);
    }
    let folded = |gpu| aggregate(&set_of(windows.clone(), gpu)).ttft_s.buckets;
    assert_ne!(folded(false), folded(true));
}

/// A small deterministic generator for the oracle test (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in [0, 100), or `None` one time in four.
    fn opt(&mut self) -> Option<f64> {
        let r = self.next();
        (r % 4 != 0).then(|| (r >> 11) as f64 / (1u64 << 53) as f64 * 100.0)
    }
}

#[test]
fn the_fold_agrees_to_the_bit_with_the_whole_list_formulas_on_random_windows() {
    for seed in 1..=40u64 {
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let n = (r.next() % 60) as u32;
        let engines = (r.next() % 3) as usize;
        let mut windows = Vec::new();
        for i in 0..n {
            let mut w = blank_window(i);
            w.duration_s = r.opt().map(|d| d / 20.0 - 0.5);
            w.running_last = r.opt().map(|v| (v / 10.0).floor());
            w.engine_asleep = r.next() % 17 == 0;
            w.kv_cache_pct_last = r.opt();
            w.gpu.util_pct_mean = r.opt();
            w.generation_tokens_delta = r.opt();
            for f in [
                &mut w.running_mean,
                &mut w.waiting_mean,
                &mut w.waiting_last,
                &mut w.kv_cache_pct_mean,
                &mut w.kv_cache_peak_pct,
                &mut w.max_num_seqs_last,
                &mut w.prompt_tokens_delta,
                &mut w.prompt_tokens_cached_delta,
                &mut w.generation_tokens_per_s,
                &mut w.prompt_tokens_per_s,
                &mut w.prompt_tokens_computed_per_s,
                &mut w.requests_per_s,
                &mut w.preemptions_per_s,
                &mut w.est_flops_per_gpu_per_s,
                &mut w.est_read_bytes_per_gpu_per_s,
                &mut w.prefix_hits_delta,
                &mut w.prefix_queries_delta,
                &mut w.generation_tokens_total,
                &mut w.prompt_tokens_total,
                &mut w.requests_total,
                &mut w.preemptions_total,
                &mut w.gpu.mem_util_pct_mean,
                &mut w.gpu.sm_active_pct_mean,
                &mut w.gpu.sm_occupancy_pct_mean,
                &mut w.gpu.dram_bw_util_pct_mean,
                &mut w.gpu.power_w_mean,
                &mut w.gpu.vram_used_mib_last,
                &mut w.gpu.vram_total_mib_last,
                &mut w.gpu.temperature_c_last,
                &mut w.gpu.sm_clock_mhz_last,
                &mut w.gpu.vram_peak_mib,
                &mut w.gpu.temperature_peak_c,
            ] {
                *f = r.opt();
            }
            w.last_scrape_seq = (r.next() % 5 != 0).then_some(u64::from(i));
            if r.next() % 9 == 0 {
                w.counter_resets = 1;
                w.first_reset_mono = Some(w.start_mono);
                w.generation_tokens_before_resets = r.opt().unwrap_or(0.0);
                w.requests_before_resets = r.opt().unwrap_or(0.0);
            }
            w.duplicate_samples = (r.next() % 3) as u32;
            w.engines = (0..engines)
                .map(|_| crate::window::EngineWindow {
                    running_mean: r.opt(),
                    waiting_mean: r.opt(),
                    kv_cache_peak_pct: r.opt(),
                    preemptions_delta: r.opt(),
                })
                .collect();
            for h in HistKind::ALL {
                let (s, c, m) = (r.opt(), r.opt(), r.opt());
                let hw = w.hist_mut(h);
                hw.delta_sum = s;
                hw.delta_count = c.map(|c| c.floor());
                hw.mean = m;
                if let Some(c) = hw.delta_count.filter(|_| r.next() % 2 == 0) {
                    hw.buckets = bk(&[(0.1, (c / 2.0).floor()), (1.0, c), (INF, c)]);
                }
            }
            windows.push(w);
        }
        for has_gpu in [false, true] {
            let set = set_of(windows.clone(), has_gpu);
            let (got, want) = (aggregate(&set), super::oracle::aggregate_batch(&set));
            assert_eq!(got, want, "seed {seed}, has_gpu_data {has_gpu}");
            assert_eq!(
                serde_json::to_string(&got).unwrap(),
                serde_json::to_string(&want).unwrap(),
                "seed {seed}, has_gpu_data {has_gpu}"
            );
        }
    }
}
