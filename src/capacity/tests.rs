use super::series::fraction_at_most;
use super::*;

/// TTFT bounds of the hand-made windows, seconds.
const LE: [f64; 7] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Cumulative counts of `n` observations all at `latency_s`.
fn counts_at(latency_s: f64, n: f64) -> Vec<f64> {
    LE.iter()
        .map(|&le| if latency_s <= le { n } else { 0.0 })
        .chain(std::iter::once(n))
        .collect()
}

/// An active 2 s window with `running` + `waiting` requests and `n` TTFT observations at
/// `latency_s` (none when `n` is 0).
fn window(index: u32, running: f64, waiting: f64, latency_s: f64, n: f64) -> WindowSample {
    WindowSample {
        index,
        // 18 s apart: a TTFT's lag (below 10 s here) never reaches the previous window, so a
        // window's load is its own.
        start_s: f64::from(index) * 20.0,
        duration_s: 2.0,
        generation_tokens_per_s: Some(running * 50.0),
        requests_per_s: Some(n / 2.0),
        running_mean: Some(running),
        waiting_mean: Some(waiting),
        ttft: Some(HistSample {
            sum: latency_s * n,
            count: n,
            counts: counts_at(latency_s, n),
        }),
        tpot: None,
    }
}

fn series(windows: Vec<WindowSample>) -> WindowSeries {
    WindowSeries {
        window_s: 2.0,
        ttft_le_s: LE.to_vec(),
        tpot_le_s: vec![],
        windows,
    }
}

/// A closed-loop ramp on a server capped at 8: running follows the clients up to 8, then
/// the queue grows and TTFT with it (0.2 s up to 8 clients, +0.7 s per queued client).
fn ramp() -> WindowSeries {
    let mut w = Vec::new();
    let mut i = 0;
    for clients in 1..=16u32 {
        let c = f64::from(clients);
        let (running, waiting) = (c.min(8.0), (c - 8.0).max(0.0));
        let ttft = 0.2 + 0.7 * waiting;
        for _ in 0..3 {
            w.push(window(i, running, waiting, ttft, 8.0));
            i += 1;
        }
    }
    series(w)
}

fn slo(text: &str) -> Vec<SloTarget> {
    parse_slo(text).unwrap()
}

#[test]
fn a_ramp_breaks_where_the_queue_pushes_ttft_past_the_bound() {
    let s = ramp();
    let a = assess(&[("ramp", &s)], &slo("ttft-p99=2s"));
    assert_eq!(a.windows_used, 48);
    // 3 windows of 8 observations each: one level per client count.
    assert_eq!(a.levels.len(), 16);
    let Capacity::BreaksAt {
        holds,
        breaks,
        crossing_in_system,
        ref missed,
        ref missed_below,
        ref met_above,
    } = a.capacity
    else {
        panic!("{:?}", a.capacity);
    };
    // TTFT 0.2 + 0.7 × 2 = 1.6 s at 10 clients meets 2 s; 2.3 s at 11 does not. The
    // observations sit at one value, which the buckets (1, 2.5] spread out: p99 at 10
    // clients interpolates to 2.485 s > 2 s. So the buckets move the break to 10 in the
    // server: p99 at 9 clients (0.9 s, bucket (0.5, 1]) is 0.995 s.
    assert_eq!(a.levels[holds].in_system, 9.0);
    assert_eq!(a.levels[breaks].in_system, 10.0);
    assert_eq!(missed, &["ttft-p99".to_string()]);
    assert!(missed_below.is_empty() && met_above.is_empty());
    let x = crossing_in_system.unwrap();
    assert!(x > 9.0 && x < 10.0, "{x}");
    // Evidence: the breaking level's windows are those of 10 clients (indices 27-29).
    let idx: Vec<u32> = a.levels[breaks].windows.iter().map(|w| w.index).collect();
    assert_eq!(idx, vec![27, 28, 29]);
    assert_eq!(a.levels[breaks].running_mean, Some(8.0));
    assert_eq!(a.levels[breaks].waiting_mean, Some(2.0));
}

#[test]
fn not_reached_and_already_broken_are_said_as_such() {
    let s = ramp();
    let a = assess(&[("ramp", &s)], &slo("ttft-p99=10s"));
    assert_eq!(a.capacity, Capacity::NotReached { highest: 15 });
    let a = assess(&[("ramp", &s)], &slo("ttft-p99=100ms"));
    assert!(matches!(
        a.capacity,
        Capacity::BrokenAtLowest { lowest: 0, .. }
    ));
    let empty = series(vec![]);
    let a = assess(&[("empty", &empty)], &slo("ttft-p99=1s"));
    assert!(matches!(a.capacity, Capacity::Unknown { .. }));
    // Windows without observations: no level can be judged.
    let quiet = series((0..6).map(|i| window(i, 4.0, 0.0, 0.2, 0.0)).collect());
    let a = assess(&[("quiet", &quiet)], &slo("ttft-p99=1s"));
    assert!(
        matches!(a.capacity, Capacity::Unknown { .. }),
        "{:?}",
        a.capacity
    );
}

#[test]
fn levels_need_enough_observations_and_a_short_tail_joins_the_level_below() {
    // 2 observations per window: a level needs 10 windows for 20 observations; 25 windows
    // make two levels of 10 and a tail of 5 that joins the second.
    let s = series(
        (0..25)
            .map(|i| window(i, f64::from(i), 0.0, 0.2, 2.0))
            .collect(),
    );
    let a = assess(&[("s", &s)], &slo("ttft-p99=1s"));
    let sizes: Vec<usize> = a.levels.iter().map(|l| l.windows.len()).collect();
    assert_eq!(sizes, vec![10, 15]);
    assert_eq!(a.levels[0].in_system_min, 0.0);
    assert_eq!(a.levels[0].in_system_max, 9.0);
    assert_eq!(a.levels[0].targets[0].observations, 20.0);
}

#[test]
fn several_recordings_pool_into_one_ladder() {
    let s = ramp();
    let low = series(s.windows[..24].to_vec());
    let high = series(s.windows[24..].to_vec());
    let pooled = assess(&[("low", &low), ("high", &high)], &slo("ttft-p99=2s"));
    let one = assess(&[("ramp", &s)], &slo("ttft-p99=2s"));
    assert_eq!(pooled.levels.len(), one.levels.len());
    for (p, o) in pooled.levels.iter().zip(&one.levels) {
        assert_eq!(p.in_system, o.in_system);
        assert_eq!(p.targets, o.targets);
    }
    assert_eq!(pooled.sources, vec!["low".to_string(), "high".to_string()]);
    let Capacity::BreaksAt { breaks, .. } = pooled.capacity else {
        panic!("{:?}", pooled.capacity);
    };
    assert!(pooled.levels[breaks].windows.iter().all(|w| w.source == 1));
}

/// Levels of 3 windows each at loads 1, 2, ... with the given TTFT per level.
fn ladder(ttfts: &[f64]) -> WindowSeries {
    let mut w: Vec<WindowSample> = Vec::new();
    for (k, &ttft) in ttfts.iter().enumerate() {
        for j in 0..3 {
            let i = (k * 3 + j) as u32;
            w.push(window(i, (k + 1) as f64, 0.0, ttft, 8.0));
        }
    }
    series(w)
}

#[test]
fn one_noisy_level_on_either_side_does_not_move_the_break() {
    // met, missed (one slow request), met, met, missed, met (noise), missed, missed
    let s = ladder(&[0.2, 3.0, 0.2, 0.2, 3.0, 0.2, 3.0, 3.0]);
    let a = assess(&[("s", &s)], &slo("ttft-p99=1s"));
    let Capacity::BreaksAt {
        holds,
        breaks,
        ref missed_below,
        ref met_above,
        ..
    } = a.capacity
    else {
        panic!("{:?}", a.capacity);
    };
    // Splitting before level 4 leaves two levels on the wrong side (1 and 5), as splitting
    // before 6 does (1 and 4): the lower, cautious split wins the tie.
    assert_eq!((holds, breaks), (3, 4));
    assert_eq!(missed_below, &vec![1]);
    assert_eq!(met_above, &vec![5]);
    // The first miss alone is not a break.
    let a = assess(
        &[("s", &ladder(&[0.2, 3.0, 0.2, 0.2]))],
        &slo("ttft-p99=1s"),
    );
    assert_eq!(a.capacity, Capacity::NotReached { highest: 3 });
    let a = assess(
        &[("s", &ladder(&[3.0, 3.0, 0.2, 3.0]))],
        &slo("ttft-p99=1s"),
    );
    assert!(matches!(
        a.capacity,
        Capacity::BrokenAtLowest { lowest: 0, .. }
    ));
}

#[test]
fn a_window_is_placed_at_the_load_its_requests_waited_through() {
    // A drain: 20 in the server, then 2, whose requests report a 2 s TTFT: they waited
    // through the previous window's queue.
    let mut a = window(0, 8.0, 12.0, 0.2, 8.0);
    let mut b = window(1, 2.0, 0.0, 2.0, 8.0);
    a.start_s = 0.0;
    b.start_s = 2.0;
    let s = series(vec![a, b]);
    let (run, wait) = lagged(&s, 1).unwrap();
    // [0, 4]: half at 8 + 12, half at 2 + 0.
    assert!(
        (run - 5.0).abs() < 1e-12 && (wait - 6.0).abs() < 1e-12,
        "{run} {wait}"
    );
    // The first window's 0.2 s lag reaches back before any window: its own load.
    assert_eq!(lagged(&s, 0), Some((8.0, 12.0)));
}

#[test]
fn goodput_interpolates_inside_the_bucket_like_histogram_fraction() {
    let b = |v: &[(f64, f64)]| -> Vec<Bucket> {
        v.iter().map(|&(le, count)| Bucket { le, count }).collect()
    };
    let inf = f64::INFINITY;
    // 100 observations: 50 <= 0.5, 90 <= 1, 100 total.
    let h = b(&[(0.5, 50.0), (1.0, 90.0), (inf, 100.0)]);
    // At a bucket bound: the cumulative count there.
    assert_eq!(fraction_at_most(1.0, &h), Some(0.9));
    assert_eq!(fraction_at_most(0.5, &h), Some(0.5));
    // Inside (0.5, 1]: 50 + 40 × 0.25/0.5 = 70.
    assert!((fraction_at_most(0.75, &h).unwrap() - 0.7).abs() < 1e-12);
    // Inside the first bucket, which starts at 0: 50 × 0.25/0.5.
    assert!((fraction_at_most(0.25, &h).unwrap() - 0.25).abs() < 1e-12);
    // In the +Inf bucket nothing is interpolated: those 10 count as above.
    assert_eq!(fraction_at_most(5.0, &h), Some(0.9));
    assert_eq!(fraction_at_most(inf, &h), Some(1.0));
    // Unsorted input, no observations, no +Inf bucket.
    let mut r = h.clone();
    r.reverse();
    assert_eq!(fraction_at_most(0.75, &r), fraction_at_most(0.75, &h));
    assert_eq!(fraction_at_most(1.0, &b(&[(1.0, 0.0), (inf, 0.0)])), None);
    assert_eq!(fraction_at_most(1.0, &b(&[(1.0, 5.0)])), None);
}

#[test]
fn goodput_of_two_targets_is_given_as_its_bounds() {
    let mut s = ramp();
    // A TPOT histogram on every window: half the observations at 20 ms, half at 80 ms.
    s.tpot_le_s = vec![0.025, 0.05, 0.1];
    for w in &mut s.windows {
        w.tpot = Some(HistSample {
            sum: 0.4,
            count: 8.0,
            counts: vec![4.0, 4.0, 8.0, 8.0],
        });
    }
    let a = assess(&[("ramp", &s)], &slo("ttft-p99=2s,tpot-p99=50ms"));
    let g = &a.goodput;
    assert_eq!(g.shares[1], Some(0.5));
    let ttft = g.shares[0].unwrap();
    assert!(ttft > 0.5 && ttft < 1.0, "{ttft}");
    assert!((g.all_low.unwrap() - (ttft + 0.5 - 1.0).max(0.0)).abs() < 1e-12);
    assert_eq!(g.all_high, Some(0.5));
    // TPOT p99 (99 ms) is above 50 ms everywhere: broken at the lowest load.
    assert!(matches!(
        a.capacity,
        Capacity::BrokenAtLowest { ref missed, .. } if missed == &vec!["tpot-p99".to_string()]
    ));
    // Per window, in time order.
    assert_eq!(a.windows.len(), 48);
    assert_eq!(a.windows[0].window.index, 0);
    assert_eq!(a.windows[0].goodput.shares[1], Some(0.5));
}
