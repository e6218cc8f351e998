//! The recorder's clock and schedule arithmetic: the one place in the crate that reads the
//! system clocks (clippy forbids `SystemTime::now`/`Instant::now` elsewhere), so that every
//! other stage works only on timestamps it is handed.
//!
//! Both sampling threads share one anchor: tick `k` of a thread is due at
//! `start + k * interval` on the monotonic clock. The wall clock is read next to it at every
//! stamp, for humans and for joining with other systems; durations use the monotonic offset.

use super::StopHandle;
use crate::units::{MonoNs, WallNs};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Reads the current wall clock as ns since the Unix epoch (negative before 1970).
#[allow(clippy::disallowed_methods)] // the recorder is the one place allowed to read the clock
pub(crate) fn wall_now() -> WallNs {
    wall_of(SystemTime::now())
}

fn wall_of(t: SystemTime) -> WallNs {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => WallNs(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        Err(e) => WallNs(-i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX)),
    }
}

/// The anchor of one recording: a monotonic instant and the wall clock read next to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    start: Instant,
    start_wall: WallNs,
}

impl Clock {
    /// Anchors a new recording now.
    #[allow(clippy::disallowed_methods)] // the recorder is the one place allowed to read the clock
    pub(crate) fn start() -> Clock {
        let start = Instant::now();
        let start_wall = wall_now();
        Clock { start, start_wall }
    }

    /// The wall clock at the anchor.
    pub(crate) fn start_wall(&self) -> WallNs {
        self.start_wall
    }

    /// Time since the anchor, on the monotonic clock.
    #[allow(clippy::disallowed_methods)] // the recorder is the one place allowed to read the clock
    pub(crate) fn elapsed(&self) -> Duration {
        Instant::now().saturating_duration_since(self.start)
    }

    /// A sample's timestamp: wall clock and monotonic offset, read together.
    pub(crate) fn stamp(&self) -> (WallNs, MonoNs) {
        let mono = self.elapsed();
        (wall_now(), mono_ns(mono))
    }

    /// Sleeps until `due` (an offset from the anchor) in one wait that a stop request ends at
    /// once. Returns `false` when it stopped early for `stop`.
    pub(crate) fn sleep_until(&self, due: Duration, stop: &StopHandle) -> bool {
        loop {
            if stop.is_stopped() {
                return false;
            }
            let now = self.elapsed();
            if now >= due {
                return true;
            }
            // A spurious or early wake-up just goes round again.
            stop.wait_timeout(due - now);
        }
    }
}

/// A duration as monotonic nanoseconds, saturating (292 years is beyond any recording).
pub(crate) fn mono_ns(d: Duration) -> MonoNs {
    MonoNs(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// When tick `tick` is due, as an offset from the anchor.
pub(crate) fn tick_due(interval: Duration, tick: u64) -> Duration {
    let ns = interval.as_nanos().saturating_mul(u128::from(tick));
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}

/// The tick to run after `tick` finished at offset `now`: the next one, or, when the work ran
/// past later ticks, the first tick not yet in the past. Missed ticks are skipped, never
/// squeezed in late, so that the schedule never drifts and the gap shows in `seq`.
pub(crate) fn next_tick(tick: u64, now: Duration, interval: Duration) -> u64 {
    let step = interval.as_nanos().max(1);
    // ceil(now / interval): the first tick due at or after now.
    let first_not_past = now.as_nanos().div_ceil(step);
    let first_not_past = u64::try_from(first_not_past).unwrap_or(u64::MAX);
    first_not_past.max(tick.saturating_add(1))
}

/// The index of the rotation segment that an offset falls in.
pub(crate) fn segment_of(rotate: Duration, at: Duration) -> u64 {
    let step = rotate.as_nanos().max(1);
    u64::try_from(at.as_nanos() / step).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn on_time_work_takes_the_next_tick() {
        assert_eq!(next_tick(0, 30 * MS, 100 * MS), 1);
        assert_eq!(next_tick(4, 430 * MS, 100 * MS), 5);
    }

    #[test]
    fn slow_work_skips_missed_ticks_without_shifting_later_ones() {
        // Tick 2 (due 200 ms) ran until 470 ms: ticks 3 and 4 are gone, tick 5 is next.
        assert_eq!(next_tick(2, 470 * MS, 100 * MS), 5);
        assert_eq!(tick_due(100 * MS, 5), 500 * MS);
        // Finishing exactly on a tick's due time takes that tick.
        assert_eq!(next_tick(2, 500 * MS, 100 * MS), 5);
    }

    #[test]
    fn segments_follow_the_anchor() {
        assert_eq!(segment_of(1000 * MS, 999 * MS), 0);
        assert_eq!(segment_of(1000 * MS, 1000 * MS), 1);
        assert_eq!(segment_of(1000 * MS, 3500 * MS), 3);
    }

    #[test]
    fn wall_before_epoch_is_negative() {
        let t = UNIX_EPOCH - Duration::from_nanos(5);
        assert_eq!(wall_of(t), WallNs(-5));
        assert_eq!(
            wall_of(UNIX_EPOCH + Duration::from_secs(2)),
            WallNs(2_000_000_000)
        );
    }

    #[test]
    fn sleep_until_returns_early_on_stop() {
        let clock = Clock::start();
        let stop = StopHandle::new();
        assert!(clock.sleep_until(Duration::ZERO, &stop));
        assert!(clock.sleep_until(Duration::from_millis(2), &stop));
        let other = stop.clone();
        let sleeper =
            std::thread::spawn(move || clock.sleep_until(Duration::from_secs(3600), &other));
        stop.stop(super::super::StopReason::Interrupt);
        assert!(!sleeper.join().unwrap());
    }
}
