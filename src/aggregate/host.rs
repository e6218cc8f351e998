//! The host process sampled by `record --pid` over the whole recording: CPU rate, RSS and
//! threads of the target alone and of its tree (target + every process below it, summed), and the
//! wrapper-PID warning. `None` for a recording without host sampling (before format 1.4, or
//! without `--pid`), never zeros.
//!
//! CPU is followed per process, keyed by (PID, start time): each process adds the increase of
//! its user + system ticks from its first reading to its last, so a child that starts or
//! exits mid-recording adds what it was seen to use and nothing more, and a gap in the ticks
//! is spanned, not counted as zero. The rate divides by the span of the target's readings.

use crate::recording::{HostSample, HostStatus, Recording};
use crate::units::{MonoNs, BYTES_PER_MIB};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Wrapper-PID test, RSS: the sampled tree held less than this at every tick. From the
/// inferscope post (seed 001, "Three responses", "Runtime warning": "RSS stays below 10 MiB").
pub const WRAPPER_RSS_MIB_MAX: f64 = 10.0;
/// Wrapper-PID test, threads: exactly one at every tick (seed 001, same paragraph: "exactly
/// one thread").
pub const WRAPPER_THREADS: u32 = 1;

/// The sampled process over the recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostSummary {
    /// The PID given to `record --pid`.
    pub pid: u32,
    /// Its command name at start.
    pub comm: String,
    /// Whether the processes below it were sampled (`--children`).
    pub children_sampled: bool,
    /// Ticks at which the target was read.
    pub ticks: u64,
    /// Most processes below the target seen at one tick (with `--children`).
    pub children_max: Option<u32>,
    /// CPU of the target and its sampled children, cores (CPU seconds per second).
    pub cpu_cores: Option<f64>,
    /// CPU of the target process alone, cores.
    pub target_cpu_cores: Option<f64>,
    /// Resident memory of the tree, MiB, mean over the ticks.
    pub rss_mib_mean: Option<f64>,
    /// Resident memory of the tree, MiB, highest tick.
    pub rss_mib_peak: Option<f64>,
    /// Threads of the tree, highest tick.
    pub threads_peak: Option<u32>,
    /// When the target was found gone, seconds after the recording started.
    pub exited_after_s: Option<f64>,
    /// Set when the readings look like a wrapper (a shell that started the real server),
    /// not the workload: below 10 MiB, one thread and no CPU used, at every tick.
    pub wrapper_warning: Option<String>,
}

/// Summarises the host readings of `rec`; `None` without host sampling.
pub fn summarize(rec: &Recording) -> Option<HostSummary> {
    summarize_where(rec, |_| true)
}

/// [`summarize`] over the readings completed at the monotonic times `keep` accepts (the
/// analysis's `--from/--to`).
pub fn summarize_where(rec: &Recording, keep: impl Fn(MonoNs) -> bool) -> Option<HostSummary> {
    let target = rec.manifest.host.as_ref()?;
    let hz = target.clock_ticks_per_s as f64;
    let kept: Vec<&HostSample> = rec
        .host_samples
        .iter()
        .filter(|s| keep(s.completed_mono))
        .collect();
    let mut by_tick: BTreeMap<u64, Vec<&HostSample>> = BTreeMap::new();
    for s in kept.iter().copied().filter(|s| s.reading.is_some()) {
        by_tick.entry(s.seq).or_default().push(s);
    }
    let target_times: Vec<i64> = kept
        .iter()
        .filter(|s| s.pid == target.pid && s.status == HostStatus::Ok)
        .map(|s| s.completed_mono.0)
        .collect();
    let span_s = match (target_times.first(), target_times.last()) {
        (Some(a), Some(b)) if b > a => Some((b - a) as f64 / 1e9),
        _ => None,
    };
    // (pid, start) -> (first ticks, last ticks).
    let mut cpu: BTreeMap<(u32, u64), (u64, u64)> = BTreeMap::new();
    let (mut rss_sum, mut rss_n, mut rss_peak) = (0.0, 0u64, None::<f64>);
    let (mut threads_peak, mut children_max) = (None::<u32>, None::<u32>);
    for rows in by_tick.values() {
        let (mut rss, mut threads, mut have_rss, mut have_threads) = (0u64, 0u32, false, false);
        for r in rows.iter().filter_map(|s| s.reading.as_ref()) {
            let ticks = r.utime_ticks.saturating_add(r.stime_ticks);
            cpu.entry((r.pid, r.start_ticks))
                .and_modify(|e| e.1 = ticks)
                .or_insert((ticks, ticks));
            if let Some(b) = r.rss_bytes {
                rss = rss.saturating_add(b);
                have_rss = true;
            }
            if let Some(t) = r.threads {
                threads = threads.saturating_add(t);
                have_threads = true;
            }
        }
        if have_rss {
            let mib = rss as f64 / BYTES_PER_MIB;
            rss_sum += mib;
            rss_n += 1;
            rss_peak = Some(rss_peak.map_or(mib, |p| p.max(mib)));
        }
        if have_threads {
            threads_peak = Some(threads_peak.map_or(threads, |p| p.max(threads)));
        }
        if target.children {
            let n = rows.iter().filter(|s| s.pid != target.pid).count() as u32;
            children_max = Some(children_max.map_or(n, |m| m.max(n)));
        }
    }
    let used = |keep: &dyn Fn(u32) -> bool| -> u64 {
        cpu.iter()
            .filter(|((pid, _), _)| keep(*pid))
            .map(|(_, (a, b))| b.saturating_sub(*a))
            .sum()
    };
    let tree_ticks = used(&|_| true);
    let rate = |ticks: u64| span_s.map(|s| ticks as f64 / hz / s);
    let wrapper = span_s.is_some()
        && rss_peak.is_some_and(|p| p < WRAPPER_RSS_MIB_MAX)
        && threads_peak == Some(WRAPPER_THREADS)
        && tree_ticks == 0;
    Some(HostSummary {
        pid: target.pid,
        comm: target.comm.clone(),
        children_sampled: target.children,
        ticks: target_times.len() as u64,
        children_max,
        cpu_cores: rate(tree_ticks),
        target_cpu_cores: rate(used(&|pid| pid == target.pid)),
        rss_mib_mean: (rss_n > 0).then(|| rss_sum / rss_n as f64),
        rss_mib_peak: rss_peak,
        threads_peak,
        exited_after_s: target.exited_mono_ns.map(|ns| ns as f64 / 1e9),
        wrapper_warning: wrapper.then(|| {
            format!(
                "PID {} ({}) stayed below {WRAPPER_RSS_MIB_MAX:.0} MiB with one thread and used \
                 no CPU: it looks like a wrapper (a shell that started the server), not the \
                 server; record its child with --children, or the server's own PID",
                target.pid, target.comm
            )
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::ProcReading;
    use crate::recording::HostTarget;
    use crate::units::{MonoNs, WallNs};

    fn rec(children: bool, rows: &[(u64, u32, u64, u64, u32)]) -> Recording {
        let mut r = crate::vllm::testutil::RecBuilder::new().build();
        r.manifest.host = Some(HostTarget {
            pid: 10,
            children,
            comm: "sh".to_string(),
            start_ticks: 5,
            clock_ticks_per_s: 100,
            exited_at_ns: None,
            exited_mono_ns: None,
        });
        r.host_samples = rows
            .iter()
            .map(|&(seq, pid, ticks, rss_kib, threads)| HostSample {
                seq,
                requested_at: WallNs(0),
                completed_at: WallNs(0),
                requested_mono: MonoNs(seq as i64 * 1_000_000_000),
                completed_mono: MonoNs(seq as i64 * 1_000_000_000),
                pid,
                status: HostStatus::Ok,
                error: None,
                reading: Some(ProcReading {
                    pid,
                    ppid: 1,
                    comm: "x".to_string(),
                    state: "S".to_string(),
                    start_ticks: 5,
                    utime_ticks: ticks,
                    stime_ticks: 0,
                    rss_bytes: Some(rss_kib * 1024),
                    threads: Some(threads),
                }),
            })
            .collect();
        r
    }

    #[test]
    fn no_host_sampling_is_none() {
        assert_eq!(
            summarize(&crate::vllm::testutil::RecBuilder::new().build()),
            None
        );
    }

    /// Just under the thresholds: the warning; one thread more, or one tick of CPU, or 10 MiB:
    /// none.
    #[test]
    fn wrapper_warning_at_its_thresholds() {
        let below = 10 * 1024 - 1;
        let w = |rows: &[(u64, u32, u64, u64, u32)]| summarize(&rec(false, rows)).unwrap();
        let idle = w(&[(0, 10, 3, below, 1), (1, 10, 3, below, 1)]);
        assert!(idle.wrapper_warning.unwrap().contains("PID 10 (sh)"));
        assert_eq!(idle.cpu_cores, Some(0.0));
        assert!(w(&[(0, 10, 3, 10 * 1024, 1), (1, 10, 3, below, 1)])
            .wrapper_warning
            .is_none());
        assert!(w(&[(0, 10, 3, below, 2), (1, 10, 3, below, 1)])
            .wrapper_warning
            .is_none());
        assert!(w(&[(0, 10, 3, below, 1), (1, 10, 4, below, 1)])
            .wrapper_warning
            .is_none());
    }

    /// Children add up per tick; a child that appears late counts from its first reading.
    #[test]
    fn children_are_summed_and_followed_per_process() {
        let s = summarize(&rec(
            true,
            &[
                (0, 10, 0, 2048, 1),
                (0, 11, 100, 4096, 5),
                (1, 10, 0, 2048, 1),
                (1, 11, 200, 4096, 5),
                (1, 12, 1000, 1024, 1),
                (2, 10, 0, 2048, 1),
                (2, 11, 300, 4096, 5),
                (2, 12, 1050, 1024, 1),
            ],
        ))
        .unwrap();
        // Child 11: 200 ticks, child 12: 50 ticks over 2 s at 100 Hz.
        assert_eq!(s.cpu_cores, Some(1.25));
        assert_eq!(s.target_cpu_cores, Some(0.0));
        assert_eq!((s.children_max, s.threads_peak), (Some(2), Some(7)));
        assert_eq!(s.rss_mib_peak, Some(7.0));
        assert!(s.wrapper_warning.is_none());
    }

    /// `--from/--to`: only the readings inside the range count. The target used 100 ticks a
    /// second for its first 2 s and nothing after; the range 2-4 s shows an idle process.
    #[test]
    fn a_range_keeps_only_its_readings() {
        let r = rec(
            false,
            &[
                (0, 10, 0, 4096, 4),
                (1, 10, 100, 4096, 4),
                (2, 10, 200, 8192, 4),
                (3, 10, 200, 8192, 4),
                (4, 10, 200, 8192, 4),
            ],
        );
        let all = summarize(&r).unwrap();
        assert_eq!(all.cpu_cores, Some(0.5));
        let late = summarize_where(&r, |m| m.0 >= 2_000_000_000).unwrap();
        assert_eq!((late.ticks, late.cpu_cores), (3, Some(0.0)));
        assert_eq!(late.rss_mib_mean, Some(8.0));
    }
}
