use super::*;
use crate::gpu::GpuMetrics;
use crate::vllm::names::*;
use crate::vllm::testutil::{gpu_metrics, RecBuilder, WALL0};
use crate::vllm::Quantity;

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

fn windows(b: &RecBuilder) -> WindowSet {
    build_windows(&b.build(), &WindowOptions::default()).unwrap()
}

#[test]
fn boundary_scrape_is_shared_and_deltas_telescope() {
    let mut b = RecBuilder::new();
    let gen = b.counter(GENERATION_TOKENS_TOTAL, "");
    let run = b.gauge(NUM_REQUESTS_RUNNING, "");
    // 41 scrapes, 250 ms apart, starting at 1 s: irregular increments.
    let mut total = 0.0;
    let mut values = Vec::new();
    for i in 0..41i64 {
        total += ((i * 7) % 5) as f64 * 3.0;
        values.push(total);
        b.scrape(1000 + i * 250, &[(gen, total), (run, 1.0)]);
    }
    let set = windows(&b);
    assert_eq!(set.anchor_mono, Some(MonoNs(1_000_000_000)));
    // 10 s of scrapes in 2 s windows: 5 full windows plus the one holding t = 11 s.
    assert_eq!(set.windows.len(), 6);
    let sum: f64 = set
        .windows
        .iter()
        .filter_map(|w| w.generation_tokens_delta)
        .sum();
    assert_eq!(sum, values[40] - values[0]);
    for pair in set.windows.windows(2) {
        assert_eq!(pair[1].first_scrape_seq, pair[0].last_scrape_seq);
    }
    // Window 0 holds scrapes 0..=7 (t < 3 s); window 1 starts at scrape 7.
    assert_eq!(set.windows[0].scrapes_ok, 8);
    assert_eq!(set.windows[1].first_scrape_seq, Some(7));
    assert_eq!(set.windows[1].scrapes_ok, 9);
    assert!(close(set.windows[1].duration_s, 2.0));
    assert!(close(set.windows[0].duration_s, 1.75));
    // The last window: boundary scrape (t = 10.75 s) + t = 11 s.
    assert!(close(set.windows[5].duration_s, 0.25));
    let w1 = &set.windows[1];
    let d = values[15] - values[7];
    assert_eq!(w1.generation_tokens_delta, Some(d));
    assert!(close(w1.generation_tokens_per_s, d / 2.0));
    assert_eq!(w1.generation_tokens_total, Some(values[15]));
}

#[test]
fn single_scrape_window_has_no_duration_or_deltas() {
    let mut b = RecBuilder::new();
    let gen = b.counter(GENERATION_TOKENS_TOTAL, "");
    let run = b.gauge(NUM_REQUESTS_RUNNING, "");
    b.scrape(500, &[(gen, 10.0), (run, 2.0)]);
    let set = windows(&b);
    assert_eq!(set.windows.len(), 1);
    let w = &set.windows[0];
    assert_eq!(w.duration_s, None);
    assert_eq!(w.running_last, Some(2.0));
    assert_eq!(w.generation_tokens_delta, None);
    assert_eq!(w.generation_tokens_per_s, None);
    assert_eq!(w.generation_tokens_total, Some(10.0));
}

#[test]
fn failed_scrapes_are_counted_and_skipped() {
    let mut b = RecBuilder::new();
    let gen = b.counter(GENERATION_TOKENS_TOTAL, "");
    b.failed(0); // before the first good scrape: window 0, counted
    b.scrape(100, &[(gen, 10.0)]);
    b.failed(350);
    b.failed(600);
    b.scrape(850, &[(gen, 40.0)]);
    let set = windows(&b);
    assert_eq!(set.anchor_mono, Some(MonoNs(100_000_000)));
    assert_eq!(set.scrapes_in_range, 5);
    assert_eq!(set.scrapes_ok, 2);
    let w = &set.windows[0];
    assert_eq!((w.scrapes_ok, w.scrapes_failed), (2, 3));
    assert!(close(w.duration_s, 0.75));
    assert!(close(w.generation_tokens_per_s, 40.0));
}

#[test]
fn gap_without_good_scrapes_is_absorbed_by_the_next_window() {
    let mut b = RecBuilder::new();
    let gen = b.counter(GENERATION_TOKENS_TOTAL, "");
    b.scrape(0, &[(gen, 0.0)]).scrape(1000, &[(gen, 10.0)]);
    b.failed(3000);
    b.scrape(6500, &[(gen, 70.0)]);
    let set = windows(&b);
    assert_eq!(set.windows.len(), 4);
    assert_eq!(set.windows[1].scrapes_ok, 0);
    assert_eq!(set.windows[1].scrapes_failed, 1);
    assert_eq!(set.windows[2].scrapes_ok, 0);
    let w = &set.windows[3];
    assert_eq!(w.first_scrape_seq, Some(1));
    assert!(close(w.duration_s, 5.5));
    assert_eq!(w.generation_tokens_delta, Some(60.0));
}

#[test]
fn counter_reset_counts_the_new_value_and_zero_delta_is_zero() {
    let mut b = RecBuilder::new();
    let gen = b.counter(GENERATION_TOKENS_TOTAL, "");
    let req = b.counter(REQUEST_SUCCESS_TOTAL, r#"finished_reason="stop""#);
    b.scrape(0, &[(gen, 100.0), (req, 5.0)]);
    b.scrape(1000, &[(gen, 10.0), (req, 5.0)]);
    let w = &windows(&b).windows[0];
    // increase(): the counter restarted from 0 and reached 10.
    assert_eq!(w.generation_tokens_delta, Some(10.0));
    assert_eq!(w.generation_tokens_per_s, Some(10.0));
    assert_eq!(w.counter_resets, 1);
    assert_eq!(w.requests_delta, Some(0.0));
    assert_eq!(w.requests_per_s, Some(0.0));
}

#[test]
fn zero_duration_gives_no_rate() {
    assert_eq!(counter_rate(Some(5.0), Some(0.0)), None);
    assert_eq!(counter_rate(Some(5.0), None), None);
    assert_eq!(counter_rate(None, Some(1.0)), None);
    assert_eq!(counter_rate(Some(5.0), Some(2.0)), Some(2.5));
}

/// Cumulative TTFT buckets at `0.1, 0.5, 1, +Inf`, then sum and count.
fn ttft_scrape(h: &crate::vllm::testutil::Hist, c: [f64; 4], sum: f64) -> Vec<(u32, f64)> {
    let mut v: Vec<(u32, f64)> = h.buckets.iter().copied().zip(c).collect();
    v.push((h.sum, sum));
    v.push((h.count, c[3]));
    v
}

#[test]
fn histogram_mean_and_p99_from_deltas() {
    let mut b = RecBuilder::new();
    let h = b.hist(TIME_TO_FIRST_TOKEN_SECONDS, "", &[0.1, 0.5, 1.0]);
    b.scrape(0, &ttft_scrape(&h, [10.0, 15.0, 20.0, 20.0], 5.0));
    b.scrape(250, &ttft_scrape(&h, [30.0, 40.0, 50.0, 50.0], 9.0));
    b.scrape(500, &ttft_scrape(&h, [60.0, 105.0, 120.0, 120.0], 30.0));
    let w = &windows(&b).windows[0];
    let t = &w.ttft_s;
    assert_eq!(t.delta_sum, Some(25.0));
    assert_eq!(t.delta_count, Some(100.0));
    assert!(close(t.mean, 0.25));
    assert!(!t.mean_is_cumulative);
    // Delta buckets 50, 90, 100, 100: rank 99 in (0.5, 1] → 0.5 + 0.5 × 9/10.
    assert!(close(t.p99, 0.95));
    assert_eq!(t.buckets.len(), 4);
    assert_eq!(t.buckets[1].count, 90.0);
    assert_eq!(w.tpot_s, HistWindow::default());
}

#[test]
fn no_new_observations_fall_back_to_cumulative_mean_without_p99() {
    let mut b = RecBuilder::new();
    let h = b.hist(TIME_TO_FIRST_TOKEN_SECONDS, "", &[0.1, 0.5, 1.0]);
    b.scrape(0, &ttft_scrape(&h, [60.0, 105.0, 120.0, 120.0], 30.0));
    b.scrape(500, &ttft_scrape(&h, [60.0, 105.0, 120.0, 120.0], 30.0));
    let t = windows(&b).windows[0].ttft_s.clone();
    assert_eq!(t.delta_count, Some(0.0));
    assert!(close(t.mean, 0.25));
    assert!(t.mean_is_cumulative);
    assert_eq!(t.p99, None);
    assert!(t.buckets.is_empty());
}

#[test]
fn histogram_reset_gives_cumulative_mean_and_no_p99() {
    let mut b = RecBuilder::new();
    let h = b.hist(TIME_TO_FIRST_TOKEN_SECONDS, "", &[0.1, 0.5, 1.0]);
    b.scrape(0, &ttft_scrape(&h, [60.0, 105.0, 120.0, 120.0], 30.0));
    b.scrape(500, &ttft_scrape(&h, [1.0, 2.0, 4.0, 4.0], 2.0));
    let t = windows(&b).windows[0].ttft_s.clone();
    assert_eq!(t.delta_count, None);
    assert!(close(t.mean, 0.5));
    assert!(t.mean_is_cumulative);
    assert_eq!(t.p99, None);
}

#[test]
fn p99_landing_in_inf_bucket_is_the_largest_finite_bound() {
    let mut b = RecBuilder::new();
    let h = b.hist(TIME_TO_FIRST_TOKEN_SECONDS, "", &[0.1, 0.5, 1.0]);
    b.scrape(0, &ttft_scrape(&h, [0.0; 4], 0.0));
    b.scrape(500, &ttft_scrape(&h, [1.0, 2.0, 3.0, 10.0], 40.0));
    let t = windows(&b).windows[0].ttft_s.clone();
    assert_eq!(t.p99, Some(1.0));
    assert!(close(t.mean, 4.0));
}

#[test]
fn a_histogram_missing_from_the_first_scrape_is_not_counted_from_zero() {
    let mut b = RecBuilder::new();
    let h = b.hist(REQUEST_PROMPT_TOKENS, "", &[10.0, 100.0]);
    let run = b.gauge(NUM_REQUESTS_RUNNING, "");
    b.scrape(0, &[(run, 0.0)]);
    let mut s = vec![(run, 1.0), (h.sum, 150.0), (h.count, 3.0)];
    s.extend(h.buckets.iter().copied().zip([1.0, 3.0, 3.0]));
    b.scrape(500, &s);
    let t = windows(&b).windows[0].prompt_tokens.clone();
    // It may have been born here or lost from the first scrape: either way the window holds
    // one cumulative value, not a delta, so there is no delta and no p99; the mean falls
    // back to the cumulative one, labelled so.
    assert_eq!(t.delta_count, None);
    assert_eq!(t.p99, None);
    assert!(close(t.mean, 50.0));
    assert!(t.mean_is_cumulative);
}

#[test]
fn prefix_hit_rate_and_its_none_case() {
    let mut b = RecBuilder::new();
    let hits = b.counter(PREFIX_CACHE_HITS_TOTAL, "");
    let q = b.counter(PREFIX_CACHE_QUERIES_TOTAL, "");
    b.scrape(0, &[(hits, 10.0), (q, 100.0)]);
    b.scrape(1000, &[(hits, 40.0), (q, 200.0)]);
    b.scrape(2500, &[(hits, 40.0), (q, 200.0)]);
    let set = windows(&b);
    assert!(close(set.windows[0].prefix_cache_hit_pct, 30.0));
    assert_eq!(set.windows[1].prefix_queries_delta, Some(0.0));
    assert_eq!(set.windows[1].prefix_cache_hit_pct, None);
}

#[test]
fn gauges_last_mean_and_kv_peak_over_every_scrape() {
    let mut b = RecBuilder::new();
    let run = b.gauge(NUM_REQUESTS_RUNNING, "");
    let wait = b.gauge(NUM_REQUESTS_WAITING, "");
    let kv = b.gauge(KV_CACHE_USAGE_PERC, "");
    b.scrape(0, &[(run, 2.0), (wait, 0.0), (kv, 0.5)]);
    b.scrape(1000, &[(run, 4.0), (wait, 2.0), (kv, 0.95)]);
    b.scrape(1500, &[(run, 4.0), (wait, 4.0), (kv, 0.6)]);
    // Window 1: the boundary scrape (0.6) and a failed one.
    b.failed(2200);
    b.scrape(2400, &[(run, 0.0), (wait, 0.0), (kv, 0.1)]);
    let set = windows(&b);
    let w = &set.windows[0];
    assert_eq!(w.running_last, Some(4.0));
    // Trapezoid: (2+4)/2 × 1 + 4 × 0.5 = 5 over 1.5 s.
    assert!(close(w.running_mean, 5.0 / 1.5));
    assert!(close(w.waiting_mean, (1.0 + 1.5) / 1.5));
    assert!(close(w.kv_cache_pct_last, 60.0));
    assert!(close(w.kv_cache_peak_pct, 95.0));
    let w1 = &set.windows[1];
    assert!(close(w1.kv_cache_peak_pct, 60.0));
    assert!(close(w1.kv_cache_pct_mean, 35.0));
    assert_eq!(w1.running_last, Some(0.0));
    assert_eq!(time_weighted_mean(&[]), None);
    assert_eq!(time_weighted_mean(&[(5, 3.0)]), Some(3.0));
    assert_eq!(time_weighted_mean(&[(5, 3.0), (5, 5.0)]), Some(4.0));
}

#[test]
fn two_engines_sum_running_and_counters_but_max_kv() {
    let mut b = RecBuilder::new();
    let r0 = b.gauge(NUM_REQUESTS_RUNNING, r#"engine="0",model_name="m""#);
    let r1 = b.gauge(NUM_REQUESTS_RUNNING, r#"engine="1",model_name="m""#);
    let k0 = b.gauge(KV_CACHE_USAGE_PERC, r#"engine="0",model_name="m""#);
    let k1 = b.gauge(KV_CACHE_USAGE_PERC, r#"engine="1",model_name="m""#);
    let g0 = b.counter(GENERATION_TOKENS_TOTAL, r#"engine="0",model_name="m""#);
    let g1 = b.counter(GENERATION_TOKENS_TOTAL, r#"engine="1",model_name="m""#);
    b.scrape(
        0,
        &[
            (r0, 1.0),
            (r1, 2.0),
            (k0, 0.2),
            (k1, 0.4),
            (g0, 10.0),
            (g1, 20.0),
        ],
    );
    b.scrape(
        1000,
        &[
            (r0, 3.0),
            (r1, 4.0),
            (k0, 0.9),
            (k1, 0.3),
            (g0, 15.0),
            (g1, 45.0),
        ],
    );
    let set = windows(&b);
    let w = &set.windows[0];
    assert_eq!(w.running_last, Some(7.0));
    assert!(close(w.kv_cache_pct_last, 90.0));
    assert!(close(w.kv_cache_peak_pct, 90.0));
    assert_eq!(w.generation_tokens_delta, Some(30.0));
    assert_eq!(w.generation_tokens_total, Some(60.0));
    assert_eq!(set.mapping.engines, vec!["0".to_string(), "1".to_string()]);
}

#[test]
fn old_names_and_openmetrics_counters_resolve() {
    use crate::promtext::MetricType;
    use crate::vllm::testutil::series;
    let mut rec = RecBuilder::new();
    let kv = rec.gauge(GPU_CACHE_USAGE_PERC, "");
    let run = rec.gauge(NUM_REQUESTS_RUNNING, "");
    rec.scrape(0, &[(kv, 0.5), (run, 1.0), (2, 1.0)]);
    rec.scrape(1000, &[(kv, 0.7), (run, 1.0), (2, 4.0)]);
    let mut r = rec.build();
    // An OpenMetrics body: counter family declared without `_total`, sample with it.
    r.series.push(series(
        "vllm:num_preemptions",
        MetricType::Counter,
        NUM_PREEMPTIONS_TOTAL,
        "",
        None,
    ));
    let set = build_windows(&r, &WindowOptions::default()).unwrap();
    let w = &set.windows[0];
    assert!(close(w.kv_cache_pct_last, 70.0));
    assert_eq!(w.preemptions_delta, Some(3.0));
    assert!(close(w.preemptions_per_s, 3.0));
    assert_eq!(
        set.mapping.used(Quantity::KvCacheUsage),
        Some(GPU_CACHE_USAGE_PERC)
    );
    assert_eq!(set.mapping.used(Quantity::Ttft), None);
    assert!(set
        .mapping
        .missing()
        .any(|m| m.quantity == Quantity::GenerationTokens));
}

#[test]
fn gpu_polls_join_windows_by_time() {
    let mut b = RecBuilder::new();
    let run = b.gauge(NUM_REQUESTS_RUNNING, "");
    b.scrape(0, &[(run, 1.0)]).scrape(1900, &[(run, 1.0)]);
    b.scrape(2100, &[(run, 1.0)]);
    let gib = 1u64 << 30;
    let poll = |util, power, used_gib: u64, temp| GpuMetrics {
        util_pct: util,
        power_w: Some(power),
        vram_used_bytes: Some(used_gib * gib),
        vram_total_bytes: Some(80 * gib),
        temperature_c: Some(temp),
        sm_clock_mhz: Some(1980),
        ..GpuMetrics::default()
    };
    b.gpu(-100, 0, poll(Some(99), 999.0, 1, 99)); // before the anchor: ignored
    b.gpu(200, 0, poll(Some(50), 300.0, 40, 60));
    b.gpu(700, 0, poll(None, 400.0, 70, 75));
    b.gpu(1200, 0, poll(Some(70), 350.0, 60, 70));
    b.gpu(1200, 1, poll(Some(30), 100.0, 10, 50));
    b.gpu(2050, 0, gpu_metrics(10, 1.0));
    let set = windows(&b);
    let g = &set.windows[0].gpu;
    assert_eq!((g.polls, g.gpus), (4, 2));
    assert!(close(g.util_pct_mean, 50.0)); // (50 + 70 + 30) / 3
    assert!(close(g.power_w_mean, 350.0 + 100.0)); // GPU 0's mean + GPU 1's
    assert!(close(g.vram_used_mib_last, 60.0 * 1024.0));
    assert!(close(g.vram_peak_mib, 70.0 * 1024.0));
    assert!(close(g.vram_total_mib_last, 80.0 * 1024.0));
    assert!(close(g.temperature_c_last, 70.0));
    assert!(close(g.temperature_peak_c, 75.0));
    assert!(close(g.sm_clock_mhz_last, 1980.0));
    assert_eq!(g.observed_mono, Some(MonoNs(1_200_000_000)));
    // Last scrape at 1.9 s, last poll at 1.2 s.
    assert!(close(set.windows[0].source_skew_s(), 0.7));
    let g1 = &set.windows[1].gpu;
    assert_eq!(g1.polls, 1);
    assert!(close(g1.util_pct_mean, 10.0));
    assert!(set.has_gpu_data);
}

#[test]
fn gpm_window_means_count_only_the_polls_that_have_them() {
    let mut b = RecBuilder::new();
    let run = b.gauge(NUM_REQUESTS_RUNNING, "");
    b.scrape(0, &[(run, 1.0)]).scrape(1900, &[(run, 1.0)]);
    let gpm = |active, occupancy, dram| GpuMetrics {
        util_pct: Some(100),
        sm_active_pct: active,
        sm_occupancy_pct: occupancy,
        dram_bw_util_pct: dram,
        ..GpuMetrics::default()
    };
    // GPU 0's first poll has no GPM values; a NaN from a foreign writer is not a value.
    b.gpu(200, 0, gpm(None, None, None));
    b.gpu(700, 0, gpm(Some(40.0), Some(10.0), Some(f64::NAN)));
    b.gpu(1200, 0, gpm(Some(60.0), None, Some(80.0)));
    b.gpu(1200, 1, gpm(Some(20.0), Some(30.0), Some(50.0)));
    let set = windows(&b);
    let g = &set.windows[0].gpu;
    assert!(close(g.sm_active_pct_mean, 40.0)); // (40 + 60 + 20) / 3
    assert!(close(g.sm_occupancy_pct_mean, 20.0)); // (10 + 30) / 2
    assert!(close(g.dram_bw_util_pct_mean, 65.0)); // (80 + 50) / 2
    assert!(close(g.util_pct_mean, 100.0));

    // A GPU without GPM: the means are None, not 0.
    let mut b = RecBuilder::new();
    let run = b.gauge(NUM_REQUESTS_RUNNING, "");
    b.scrape(0, &[(run, 1.0)]).scrape(1900, &[(run, 1.0)]);
    b.gpu(200, 0, gpu_metrics(90, 300.0));
    let g = &windows(&b).windows[0].gpu;
    assert_eq!(
        (
            g.sm_active_pct_mean,
            g.sm_occupancy_pct_mean,
            g.dram_bw_util_pct_mean
        ),
        (None, None, None)
    );
}

#[test]
fn from_to_restricts_scrapes_by_offset_or_wall_clock() {
    let mut b = RecBuilder::new();
    let gen = b.counter(GENERATION_TOKENS_TOTAL, "");
    for i in 0..=20i64 {
        b.scrape(i * 500, &[(gen, (i * 10) as f64)]);
    }
    let rec = b.build();
    let opts = WindowOptions {
        from: Some(TimeBound::Offset(MonoNs(3_000_000_000))),
        to: Some(TimeBound::Offset(MonoNs(6_000_000_000))),
        ..WindowOptions::default()
    };
    let set = build_windows(&rec, &opts).unwrap();
    assert_eq!(set.anchor_mono, Some(MonoNs(3_000_000_000)));
    assert_eq!(set.scrapes_in_range, 7);
    let sum: f64 = set
        .windows
        .iter()
        .filter_map(|w| w.generation_tokens_delta)
        .sum();
    assert_eq!(sum, 60.0);
    let wall = WindowOptions {
        from: Some(TimeBound::Wall(WallNs(WALL0 + 3_000_000_000))),
        to: Some(TimeBound::Wall(WallNs(WALL0 + 6_000_000_000))),
        ..WindowOptions::default()
    };
    assert_eq!(build_windows(&rec, &wall).unwrap(), set);
    let none = WindowOptions {
        from: Some(TimeBound::Offset(MonoNs(60_000_000_000))),
        ..WindowOptions::default()
    };
    // A range past the last scrape selects nothing: an error, not an empty analysis.
    assert!(matches!(
        build_windows(&rec, &none),
        Err(WindowError::EmptyRange(_))
    ));
}

#[test]
fn bad_length_is_an_error() {
    let rec = RecBuilder::new().build();
    let opts = WindowOptions {
        window_ns: 0,
        ..WindowOptions::default()
    };
    assert_eq!(build_windows(&rec, &opts), Err(WindowError::BadLength(0)));
}

#[test]
fn window_length_is_configurable() {
    let mut b = RecBuilder::new();
    let gen = b.counter(GENERATION_TOKENS_TOTAL, "");
    for i in 0..=8i64 {
        b.scrape(i * 250, &[(gen, i as f64)]);
    }
    let opts = WindowOptions {
        window_ns: 1_000_000_000,
        ..WindowOptions::default()
    };
    let set = build_windows(&b.build(), &opts).unwrap();
    assert_eq!(set.windows.len(), 3);
    assert_eq!(set.windows[1].start_mono, MonoNs(1_000_000_000));
    assert_eq!(set.windows[1].end_mono, MonoNs(2_000_000_000));
}

#[test]
fn result_does_not_depend_on_thread_count() {
    let mut b = RecBuilder::new();
    let gen = b.counter(GENERATION_TOKENS_TOTAL, "");
    let h = b.hist(TIME_TO_FIRST_TOKEN_SECONDS, "", &[0.1, 0.5, 1.0]);
    for i in 0..200i64 {
        let n = (i * i % 17) as f64 + i as f64 * 3.0;
        let mut s = ttft_scrape(&h, [n, n * 1.5, n * 2.0, n * 2.0], n * 0.3);
        s.push((gen, (i * 13) as f64));
        b.scrape(i * 250 + (i % 3) * 7, &s);
    }
    let rec = b.build();
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| build_windows(&rec, &WindowOptions::default()).unwrap())
    };
    let one = run(1);
    let two = run(2);
    assert_eq!(one, two);
    assert_eq!(
        serde_json::to_string(&one).unwrap(),
        serde_json::to_string(&run(3)).unwrap()
    );
}

/// Throughput of windows + aggregate over a synthetic hour. Run with
/// `cargo test --release --lib analysis_throughput -- --ignored --nocapture`.
#[test]
#[ignore]
#[allow(clippy::disallowed_methods)] // timing a benchmark, not reading data time
fn analysis_throughput() {
    let mut b = RecBuilder::new();
    let mut ids: Vec<u32> = Vec::new();
    for name in [
        TIME_TO_FIRST_TOKEN_SECONDS,
        REQUEST_TIME_PER_OUTPUT_TOKEN_SECONDS,
        INTER_TOKEN_LATENCY_SECONDS,
        REQUEST_PREFILL_TIME_SECONDS,
        REQUEST_QUEUE_TIME_SECONDS,
        E2E_REQUEST_LATENCY_SECONDS,
        REQUEST_PROMPT_TOKENS,
    ] {
        let les: Vec<f64> = (1..22).map(|i| f64::from(i) * 0.1).collect();
        let h = b.hist(name, r#"engine="0",model_name="m""#, &les);
        ids.extend(h.buckets);
        ids.push(h.sum);
        ids.push(h.count);
    }
    for name in [
        NUM_REQUESTS_RUNNING,
        NUM_REQUESTS_WAITING,
        KV_CACHE_USAGE_PERC,
    ] {
        ids.push(b.gauge(name, r#"engine="0",model_name="m""#));
    }
    for name in [
        GENERATION_TOKENS_TOTAL,
        PROMPT_TOKENS_TOTAL,
        PREFIX_CACHE_HITS_TOTAL,
    ] {
        ids.push(b.counter(name, r#"engine="0",model_name="m""#));
    }
    for i in 0..200 {
        ids.push(b.gauge(&format!("python_gc_{i}"), ""));
    }
    let scrapes = 14_400i64;
    for t in 0..scrapes {
        let s: Vec<(u32, f64)> = ids
            .iter()
            .map(|&id| (id, (t * (id as i64 + 1)) as f64))
            .collect();
        b.scrape(t * 250, &s);
        b.gpu(t * 250 + 3, 0, gpu_metrics(50, 300.0));
    }
    let rec = b.build();
    let samples: usize = rec.scrapes.iter().map(|s| s.samples.len()).sum();
    let start = std::time::Instant::now();
    let mut windows = 0;
    let reps = 5;
    for _ in 0..reps {
        let set = build_windows(&rec, &WindowOptions::default()).unwrap();
        let a = crate::aggregate::aggregate(&set);
        windows = a.windows_total;
    }
    let el = start.elapsed().as_secs_f64() / f64::from(reps);
    println!(
        "{samples} samples, {windows} windows: {:.1} ms per analysis, {:.1} M samples/s on {} threads",
        el * 1e3,
        samples as f64 / el / 1e6,
        rayon::current_num_threads()
    );
}

// ---- Lost data is a gap, never a zero (issue "Nothing counted that was not measured") ----

/// 100 tok/s for 8 s, scraped every 250 ms, with `hole(i)` deciding which scrapes lose the
/// counter (a NaN) and which answer 200 with an empty body.
fn steady(nan: impl Fn(i64) -> bool, empty: impl Fn(i64) -> bool) -> WindowSet {
    let mut b = RecBuilder::new();
    let gen = b.counter(GENERATION_TOKENS_TOTAL, "");
    let run = b.gauge(NUM_REQUESTS_RUNNING, "");
    for i in 0..=32i64 {
        let v = if nan(i) {
            f64::NAN
        } else {
            1000.0 + 25.0 * i as f64
        };
        if empty(i) {
            b.scrape(i * 250, &[]);
        } else {
            b.scrape(i * 250, &[(gen, v), (run, 4.0)]);
        }
    }
    windows(&b)
}

#[test]
fn a_counter_missing_from_a_scrape_is_a_gap_not_a_zero() {
    // A NaN at the first scrape of every window (8, 16, 24 are window boundaries) and more.
    let set = steady(|i| i % 8 == 0 || i == 13, |_| false);
    for w in &set.windows {
        if let Some(r) = w.generation_tokens_per_s {
            assert!((r - 100.0).abs() < 1e-9, "window {}: {r} tok/s", w.index);
        }
    }
}

#[test]
fn an_empty_body_is_a_failed_scrape() {
    let set = steady(|_| false, |i| i % 5 == 2);
    assert_eq!(set.scrapes_empty, 7);
    assert_eq!(set.scrapes_ok, 33 - 7);
    for w in &set.windows {
        if let Some(r) = w.generation_tokens_per_s {
            assert!((r - 100.0).abs() < 1e-9, "window {}: {r} tok/s", w.index);
        }
    }
}

#[test]
fn a_counter_reset_counts_like_increase_and_keeps_the_totals() {
    let mut b = RecBuilder::new();
    let gen = b.counter(GENERATION_TOKENS_TOTAL, "");
    let run = b.gauge(NUM_REQUESTS_RUNNING, "");
    // 500, 600, 700, restart, 50, 150: increase() = 100 + 100 + 50 + 100 = 350.
    for (i, v) in [500.0, 600.0, 700.0, 50.0, 150.0].into_iter().enumerate() {
        b.scrape(i as i64 * 250, &[(gen, v), (run, 1.0)]);
    }
    let set = windows(&b);
    let w = &set.windows[0];
    assert_eq!(w.generation_tokens_delta, Some(350.0));
    assert_eq!(w.counter_resets, 1);
    assert_eq!(w.first_reset_mono, Some(MonoNs(750_000_000)));
    let agg = crate::aggregate::aggregate(&set);
    // The server's own counter says 150; the recording saw 700 before the restart, too.
    assert_eq!(agg.generation_tokens_total, Some(850.0));
    assert_eq!(agg.counter_resets, 1);
}

#[test]
fn a_series_sent_twice_in_one_body_counts_once() {
    let mut b = RecBuilder::new();
    let run = b.gauge(NUM_REQUESTS_RUNNING, "");
    for i in 0..4i64 {
        b.scrape(i * 250, &[(run, 8.0), (run, 999.0)]);
    }
    let set = windows(&b);
    assert_eq!(set.windows[0].running_last, Some(8.0));
    assert_eq!(set.windows[0].duplicate_samples, 4);
}

// ---- Time that cannot be fooled ----

fn ten_seconds() -> crate::recording::Recording {
    let mut b = RecBuilder::new();
    let run = b.gauge(NUM_REQUESTS_RUNNING, "");
    for i in 0..=40i64 {
        b.scrape(i * 250, &[(run, 1.0)]);
    }
    b.build()
}

#[test]
fn a_wall_clock_bound_goes_through_the_start_anchor_not_each_scrapes_clock() {
    let mut rec = ten_seconds();
    // The wall clock steps back 1 h after 5 s: scrape walls say 08:xx, the anchor says 09:xx.
    for s in rec
        .scrapes
        .iter_mut()
        .filter(|s| s.meta.completed_mono.0 > 5_000_000_000)
    {
        s.meta.completed_at.0 -= 3_600_000_000_000;
    }
    let opts = WindowOptions {
        from: Some(TimeBound::Wall(WallNs(WALL0 + 6_000_000_000))),
        ..WindowOptions::default()
    };
    let set = build_windows_resolved(&rec, &resolve(&rec.series), &opts).unwrap();
    // 6.0 s .. 10.0 s on the monotonic clock: 17 attempts, whatever their wall clocks say.
    assert_eq!(set.scrapes_in_range, 17);
}

#[test]
fn an_inverted_or_empty_range_is_an_error_naming_the_span() {
    let rec = ten_seconds();
    let bad = |from: i64, to: i64| {
        let opts = WindowOptions {
            from: Some(TimeBound::Offset(MonoNs(from))),
            to: Some(TimeBound::Offset(MonoNs(to))),
            ..WindowOptions::default()
        };
        build_windows_resolved(&rec, &resolve(&rec.series), &opts).unwrap_err()
    };
    let e = bad(8_000_000_000, 2_000_000_000);
    assert!(matches!(e, WindowError::InvertedRange(_)), "{e}");
    assert!(e.to_string().contains("run from 0.000 s"), "{e}");
    let e = bad(20_000_000_000, 30_000_000_000);
    assert!(matches!(e, WindowError::EmptyRange(_)), "{e}");
    assert!(e.to_string().contains("to 10.000 s"), "{e}");
}

#[test]
fn deferred_waiting_and_a_sleeping_engine_are_read() {
    let mut b = RecBuilder::new();
    let run = b.gauge(NUM_REQUESTS_RUNNING, "");
    let wait = b.gauge(NUM_REQUESTS_WAITING, "");
    let deferred = b.gauge(NUM_REQUESTS_WAITING_BY_REASON, r#"reason="deferred""#);
    let capacity = b.gauge(NUM_REQUESTS_WAITING_BY_REASON, r#"reason="capacity""#);
    let awake = b.gauge(ENGINE_SLEEP_STATE, r#"sleep_state="awake""#);
    for i in 0..=8i64 {
        let up = if i < 4 { 1.0 } else { 0.0 };
        b.scrape(
            i * 250,
            &[
                (run, 2.0),
                (wait, 5.0),
                (deferred, 3.0),
                (capacity, 2.0),
                (awake, up),
            ],
        );
    }
    let set = windows(&b);
    let w = &set.windows[0];
    assert!(close(w.waiting_deferred_mean, 3.0));
    assert!(w.engine_asleep);
    // Asleep: not active, whatever else the window says.
    assert_eq!(
        crate::aggregate::window_gate(w, false),
        crate::aggregate::Gate::Idle
    );
}

#[test]
fn one_series_of_a_counter_lost_from_a_scrape_is_a_gap_not_a_reset() {
    // Two engines' generation counters; engine 1's value is NaN in the middle scrape, so the
    // summed counter drops there. Before, that read as a reset and counted the whole
    // remaining sum (~1,000 tokens) as new; now the scrape is a gap for this counter.
    let mut b = RecBuilder::new();
    let g0 = b.counter(GENERATION_TOKENS_TOTAL, r#"engine="0",model_name="m""#);
    let g1 = b.counter(GENERATION_TOKENS_TOTAL, r#"engine="1",model_name="m""#);
    b.scrape(0, &[(g0, 1000.0), (g1, 1000.0)]);
    b.scrape(500, &[(g0, 1010.0), (g1, f64::NAN)]);
    b.scrape(1000, &[(g0, 1020.0), (g1, 1020.0)]);
    let w = &windows(&b).windows[0];
    assert_eq!(w.generation_tokens_delta, Some(40.0));
    assert_eq!(w.counter_resets, 0);
}

#[test]
fn a_series_born_mid_window_counts_its_events_through_the_sum() {
    // A second label of a counter that vLLM creates on first use: the sum rises by its
    // value, which is what happened since the last scrape.
    let mut b = RecBuilder::new();
    let g0 = b.counter(GENERATION_TOKENS_TOTAL, r#"engine="0",model_name="m""#);
    let g1 = b.counter(GENERATION_TOKENS_TOTAL, r#"engine="1",model_name="m""#);
    b.scrape(0, &[(g0, 100.0)]);
    b.scrape(500, &[(g0, 110.0), (g1, 5.0)]);
    b.scrape(1000, &[(g0, 120.0), (g1, 9.0)]);
    assert_eq!(windows(&b).windows[0].generation_tokens_delta, Some(29.0));
}

#[test]
fn one_engine_restarting_is_a_reset_of_its_own_series_not_of_the_sum() {
    // Engine 1 restarts (5,010 -> 3) while engine 0 runs on. Per series: engine 0 adds 30,
    // engine 1 adds 10 + 3 + 10. Read as a sum (6,020 -> 1,023) the drop would be a reset of
    // the sum, and increase() would count engine 0's whole 1,020 again.
    let mut b = RecBuilder::new();
    let g0 = b.counter(GENERATION_TOKENS_TOTAL, r#"engine="0",model_name="m""#);
    let g1 = b.counter(GENERATION_TOKENS_TOTAL, r#"engine="1",model_name="m""#);
    let p0 = b.counter(NUM_PREEMPTIONS_TOTAL, r#"engine="0",model_name="m""#);
    let p1 = b.counter(NUM_PREEMPTIONS_TOTAL, r#"engine="1",model_name="m""#);
    let rows = [
        (1000.0, 5000.0, 7.0, 40.0),
        (1010.0, 5010.0, 7.0, 42.0),
        (1020.0, 3.0, 8.0, 1.0),
        (1030.0, 13.0, 8.0, 2.0),
    ];
    for (i, (a, b1, c, d)) in rows.into_iter().enumerate() {
        b.scrape(i as i64 * 250, &[(g0, a), (g1, b1), (p0, c), (p1, d)]);
    }
    let set = windows(&b);
    let w = &set.windows[0];
    assert_eq!(w.generation_tokens_delta, Some(53.0));
    assert_eq!(
        w.counter_resets, 1,
        "both of engine 1's counters reset in one scrape"
    );
    assert_eq!(w.first_reset_mono, Some(MonoNs(500_000_000)));
    assert_eq!(w.engines[0].preemptions_delta, Some(1.0));
    assert_eq!(w.engines[1].preemptions_delta, Some(2.0 + 1.0 + 1.0));
    assert_eq!(w.preemptions_delta, Some(5.0));
    // Totals: what the counters say at the end (1,043) plus what engine 1 had counted before
    // it restarted (5,010).
    let agg = crate::aggregate::aggregate(&set);
    assert_eq!(agg.generation_tokens_total, Some(6053.0));
}

#[test]
fn a_series_born_in_a_later_window_counts_from_zero_but_a_lost_one_does_not() {
    // `stop` exists from the start; `length` is born at 2.5 s (vLLM creates the label on its
    // first use). `abort` is seen at 0 s, missing from the bodies at 0.5-3 s (lost), and back at
    // 3.5 s with its cumulative 500: a gap closing, not 500 new requests.
    let mut b = RecBuilder::new();
    let stop = b.counter(REQUEST_SUCCESS_TOTAL, r#"finished_reason="stop""#);
    let length = b.counter(REQUEST_SUCCESS_TOTAL, r#"finished_reason="length""#);
    let abort = b.counter(REQUEST_SUCCESS_TOTAL, r#"finished_reason="abort""#);
    for i in 0..8i64 {
        let t = i * 500;
        let mut s = vec![(stop, 10.0 + i as f64)];
        if t >= 2500 {
            s.push((length, 2.0 + (t - 2500) as f64 / 500.0));
        }
        if t == 0 || t >= 3500 {
            s.push((abort, 500.0));
        }
        b.scrape(t, &s);
    }
    let set = windows(&b);
    // Window 1 (its boundary scrape at 1.5 s, then 2-3.5 s): stop 13 -> 17 (+4), length born
    // at 2.5 s with 2, then 3, 4 (+4), abort only at 3.5 s (no step).
    assert_eq!(set.windows.len(), 2);
    let w = &set.windows[1];
    assert_eq!(w.requests_delta, Some(8.0));
    assert_eq!(w.counter_resets, 0);
    assert_eq!(set.windows[0].requests_delta, Some(3.0));
}

/// Windows built as the samples are read, one file at a time and dropped behind, equal the
/// windows of the recording read whole, at every window length from 0.5 s to 4 s: some of
/// them end exactly where a file does, so the next window's boundary scrape must outlive its
/// load.
#[test]
fn windows_built_while_reading_equal_the_windows_of_a_whole_read() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings/vllm-cpu-0.32-ramp");
    let full = crate::recording::open(&dir).unwrap();
    let resolved = resolve(&full.series);
    for quarter_s in 2..=16i64 {
        let opts = WindowOptions {
            window_ns: quarter_s * 250_000_000,
            ..WindowOptions::default()
        };
        let want = build_windows_resolved(&full, &resolved, &opts).unwrap();
        let mut deferred = crate::recording::open_deferred(&dir)
            .unwrap()
            .with_files_per_load(1);
        // Every window is handed over once, in order, as it is computed.
        let mut handed = Vec::new();
        let got = build_windows_streaming(
            &mut deferred,
            &resolved,
            &opts,
            true,
            &|_| {},
            &mut |_| {},
            &mut |w| handed.push(w.clone()),
        )
        .unwrap();
        assert_eq!(got, want, "window {} ms", quarter_s * 250);
        assert_eq!(handed, got.windows, "window {} ms", quarter_s * 250);
        // Not kept whole, the windows are still handed over, and what is kept of each is
        // the same.
        let mut deferred = crate::recording::open_deferred(&dir).unwrap();
        let mut handed = Vec::new();
        let slim = build_windows_streaming(
            &mut deferred,
            &resolved,
            &opts,
            false,
            &|_| {},
            &mut |_| {},
            &mut |w| handed.push(w.clone()),
        )
        .unwrap();
        assert!(slim.windows.is_empty());
        assert_eq!(handed, want.windows, "window {} ms", quarter_s * 250);
        assert_eq!(
            WindowSet {
                windows: want.windows.clone(),
                ..slim
            },
            want,
            "window {} ms",
            quarter_s * 250
        );
    }
}

/// GPU polls read as the windows reach their time (GPU files that straddle the samples files
/// and the windows, loaded one samples file at a time) join the windows a whole read gives
/// them, at several window lengths and with a range.
#[test]
fn gpu_polls_read_as_the_windows_go_join_the_windows_of_a_whole_read() {
    let src =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings/vllm-cpu-0.32-ramp");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    crate::recording::writer::testutil::copy_with_gpu(&src, &dir, 2, 37);
    let full = crate::recording::open(&dir).unwrap();
    assert!(full.gpu_polls.len() > 500, "{} polls", full.gpu_polls.len());
    let resolved = resolve(&full.series);
    for (window_ms, from) in [
        (500, None),
        (2_000, None),
        (3_250, None),
        (2_000, Some(9_000)),
    ] {
        let opts = WindowOptions {
            window_ns: window_ms * 1_000_000,
            from: from.map(|ms: i64| TimeBound::Offset(MonoNs(ms * 1_000_000))),
            ..WindowOptions::default()
        };
        let want = build_windows_resolved(&full, &resolved, &opts).unwrap();
        assert!(want.has_gpu_data);
        assert_eq!(want.gpu_polls, full.gpu_polls.len() as u64);
        assert!(want
            .windows
            .iter()
            .all(|w| w.gpu.polls > 0 || w.scrapes_ok == 0));
        let mut deferred = crate::recording::open_deferred(&dir)
            .unwrap()
            .with_files_per_load(1);
        assert!(
            deferred.recording.gpu_polls.is_empty(),
            "polls wait for their time"
        );
        let got = build_windows_streaming(
            &mut deferred,
            &resolved,
            &opts,
            true,
            &|_| {},
            &mut |_| {},
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(got, want, "window {window_ms} ms from {from:?}");
        assert_eq!(got.gpu_polls_late, 0);
        assert!(
            deferred.recording.gpu_polls.is_empty(),
            "the builder took them"
        );
    }
    // The first of the four samples files brings only the GPU files its scrapes reach.
    let mut deferred = crate::recording::open_deferred(&dir)
        .unwrap()
        .with_files_per_load(1);
    deferred.load_next(&resolved.read_mask(), &|_| {});
    let loaded = deferred.recording.gpu_polls.len();
    assert!(
        loaded > 0 && loaded < full.gpu_polls.len() / 2,
        "{loaded} of {} polls loaded with the first samples file",
        full.gpu_polls.len()
    );
}
