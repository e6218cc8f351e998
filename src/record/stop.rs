//! Stopping a recording: why it stopped, and the handle that asks it to. The handle is an
//! atomic flag plus a condition variable: the sampling threads sleep on the condition
//! variable until their next tick, so a stop request wakes them at once while an idle
//! recorder does not wake at all between ticks (no polling slices).

use super::clock;
use crate::units::WallNs;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Why recording stopped, as stored in `manifest.stop_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// `--duration` elapsed.
    Duration,
    /// Ctrl-C (or another stop request from the operator).
    Interrupt,
    /// SIGTERM, when the caller can tell it from Ctrl-C.
    Terminate,
    /// Writing the recording failed (disk full, ...).
    WriteError,
}

impl StopReason {
    /// The name stored in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Duration => "duration",
            StopReason::Interrupt => "interrupt",
            StopReason::Terminate => "terminate",
            StopReason::WriteError => "write_error",
        }
    }

    fn code(self) -> u8 {
        match self {
            StopReason::Duration => 1,
            StopReason::Interrupt => 2,
            StopReason::Terminate => 3,
            StopReason::WriteError => 4,
        }
    }

    fn from_code(c: u8) -> Option<StopReason> {
        Some(match c {
            1 => StopReason::Duration,
            2 => StopReason::Interrupt,
            3 => StopReason::Terminate,
            4 => StopReason::WriteError,
            _ => return None,
        })
    }
}

/// Asks a running recorder to stop; cheap to clone, safe to use from a signal handler thread.
#[derive(Debug, Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    reason: Arc<AtomicU8>,
    /// Wall clock of the first request, ns: the recording's stop time.
    at_ns: Arc<AtomicI64>,
    /// Wakes the threads sleeping in [`StopHandle::wait_timeout`].
    wake: Arc<(Mutex<()>, Condvar)>,
}

impl StopHandle {
    pub(super) fn new() -> StopHandle {
        StopHandle {
            flag: Arc::new(AtomicBool::new(false)),
            reason: Arc::new(AtomicU8::new(0)),
            at_ns: Arc::new(AtomicI64::new(i64::MIN)),
            wake: Arc::new((Mutex::new(()), Condvar::new())),
        }
    }

    /// Requests a stop. The first reason given is the one recorded. A sleeping thread wakes at
    /// once; one with an attempt in flight notices when it ends (at most the scrape timeout).
    pub fn stop(&self, reason: StopReason) {
        let first =
            self.reason
                .compare_exchange(0, reason.code(), Ordering::SeqCst, Ordering::SeqCst);
        if first.is_ok() {
            self.at_ns.store(clock::wall_now().0, Ordering::SeqCst);
        }
        self.flag.store(true, Ordering::SeqCst);
        // Taking the lock orders this after any waiter's check of the flag, so the
        // notification cannot fall between that check and its wait.
        drop(self.wake.0.lock().unwrap_or_else(PoisonError::into_inner));
        self.wake.1.notify_all();
    }

    /// Sleeps for at most `timeout`, returning early (with `true`) once a stop is requested.
    /// May return early without a stop (a spurious wake-up); callers loop on their deadline.
    pub(super) fn wait_timeout(&self, timeout: Duration) -> bool {
        let guard = self.wake.0.lock().unwrap_or_else(PoisonError::into_inner);
        if self.is_stopped() {
            return true;
        }
        let (_guard, _) = self
            .wake
            .1
            .wait_timeout(guard, timeout)
            .unwrap_or_else(PoisonError::into_inner);
        self.is_stopped()
    }

    /// Whether a stop was requested.
    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Wall clock of the first stop request, if any.
    pub(super) fn requested_at(&self) -> Option<WallNs> {
        let ns = self.at_ns.load(Ordering::SeqCst);
        (ns != i64::MIN).then_some(WallNs(ns))
    }

    /// The reason of the first stop request, if any.
    pub fn reason(&self) -> Option<StopReason> {
        StopReason::from_code(self.reason.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_keeps_the_first_reason() {
        let h = StopHandle::new();
        assert!(!h.is_stopped());
        assert_eq!(h.reason(), None);
        h.stop(StopReason::Duration);
        h.stop(StopReason::Interrupt);
        assert!(h.is_stopped());
        assert_eq!(h.reason(), Some(StopReason::Duration));
    }

    #[test]
    fn a_stop_wakes_a_sleeping_thread() {
        let h = StopHandle::new();
        assert!(!h.wait_timeout(Duration::from_millis(1)));
        let other = h.clone();
        let sleeper = std::thread::spawn(move || other.wait_timeout(Duration::from_secs(3600)));
        h.stop(StopReason::Terminate);
        // Without the wake-up this join would wait an hour.
        assert!(sleeper.join().unwrap());
        assert_eq!(h.reason(), Some(StopReason::Terminate));
    }

    #[test]
    fn stop_reason_codes_round_trip() {
        for r in [
            StopReason::Duration,
            StopReason::Interrupt,
            StopReason::Terminate,
            StopReason::WriteError,
        ] {
            assert_eq!(StopReason::from_code(r.code()), Some(r));
        }
    }
}
