//! Per-window CPU of the `record --pid` process itself (not its children), for R8: the API
//! server is one process, so its own CPU is what saturates at one core.
//!
//! Like the scrape counters, a window's rate runs from the last reading before the window
//! (the boundary the previous window ends on) to the window's last reading, so the windows'
//! CPU adds up to the recording's; the first window (or one after a PID reuse: another start
//! time) starts from its own first reading; a window without a reading of its own has `None`.

use super::Window;
use crate::recording::{HostStatus, Recording};

/// Sets `host_cpu_cores` of each window from the target's readings, window after window in
/// index order (as the windows are computed); nothing without host sampling.
pub(super) struct HostCpu {
    /// (completed ns, start ticks, CPU ticks) of the target, in time order.
    readings: Vec<(i64, u64, u64)>,
    hz: f64,
    /// The next reading not yet in a window.
    next: usize,
    /// The last reading before the next window.
    before: Option<(i64, u64, u64)>,
}

impl HostCpu {
    pub(super) fn new(rec: &Recording) -> HostCpu {
        let target = rec.manifest.host.as_ref();
        let hz = target.map_or(0.0, |t| t.clock_ticks_per_s as f64);
        let readings = match target {
            Some(target) if hz > 0.0 => rec
                .host_samples
                .iter()
                .filter(|s| s.pid == target.pid && s.status == HostStatus::Ok)
                .filter_map(|s| {
                    let r = s.reading.as_ref()?;
                    Some((
                        s.completed_mono.0,
                        r.start_ticks,
                        r.utime_ticks.saturating_add(r.stime_ticks),
                    ))
                })
                .collect(),
            _ => Vec::new(),
        };
        HostCpu {
            readings,
            hz,
            next: 0,
            before: None,
        }
    }

    /// Fills the next window's `host_cpu_cores`.
    pub(super) fn fill(&mut self, w: &mut Window) {
        let readings = &self.readings;
        let (mut first, mut last) = (None, None);
        while self.next < readings.len() && readings[self.next].0 < w.end_mono.0 {
            let r = readings[self.next];
            if r.0 >= w.start_mono.0 {
                // The window's first reading of the process it ends with.
                if first.is_none_or(|f: (i64, u64, u64)| f.1 != r.1) {
                    first = Some(r);
                }
                last = Some(r);
            } else {
                self.before = Some(r);
            }
            self.next += 1;
        }
        let Some(end) = last else {
            return;
        };
        let start = self.before.filter(|b| b.1 == end.1).or(first);
        if let Some(start) = start.filter(|s| end.0 > s.0) {
            let secs = (end.0 - start.0) as f64 / 1e9;
            w.host_cpu_cores = Some(end.2.saturating_sub(start.2) as f64 / self.hz / secs);
        }
        self.before = Some(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::ProcReading;
    use crate::recording::{HostSample, HostTarget};
    use crate::units::{MonoNs, WallNs};

    /// Readings every 0.5 s at 50 ticks/s of CPU (half a core): each window's rate spans from
    /// the previous window's last reading; the first window starts from its own first one; a
    /// window without readings is `None`; after a reused PID the window starts afresh.
    #[test]
    fn window_rates_share_their_boundary_reading() {
        let mut rec = crate::vllm::testutil::RecBuilder::new().build();
        rec.manifest.host = Some(HostTarget {
            pid: 7,
            children: false,
            comm: "vllm".to_string(),
            start_ticks: 1,
            clock_ticks_per_s: 100,
            exited_at_ns: None,
            exited_mono_ns: None,
        });
        let at = |seq: u64, start_ticks: u64, ticks: u64| HostSample {
            seq,
            requested_at: WallNs(0),
            completed_at: WallNs(0),
            requested_mono: MonoNs(seq as i64 * 500_000_000),
            completed_mono: MonoNs(seq as i64 * 500_000_000),
            pid: 7,
            status: HostStatus::Ok,
            error: None,
            reading: Some(ProcReading {
                pid: 7,
                ppid: 1,
                comm: "vllm".to_string(),
                state: "R".to_string(),
                start_ticks,
                utime_ticks: ticks,
                stime_ticks: 0,
                rss_bytes: None,
                threads: None,
            }),
        };
        // Window 0: seq 0-3, window 1: 4-7, window 2: none, window 3: 12-15 after a PID reuse.
        rec.host_samples = (0..8).map(|s| at(s, 1, s * 25)).collect();
        rec.host_samples
            .extend((12..16).map(|s| at(s, 9, s * 25 + 1000)));
        let mut ws: Vec<Window> = (0..4).map(crate::window::blank_window).collect();
        let mut host = HostCpu::new(&rec);
        for w in &mut ws {
            host.fill(w);
        }
        let got: Vec<Option<f64>> = ws.iter().map(|w| w.host_cpu_cores).collect();
        assert_eq!(got, vec![Some(0.5), Some(0.5), None, Some(0.5)]);
    }
}
