//! Stopping a recording: why it stopped, and the handle that asks it to. The handle is an
//! atomic flag that both sampling threads poll between ticks, so that a signal handler can
//! stop a recording without locks.

use super::clock;
use crate::units::WallNs;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::Arc;

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
    pub(super) flag: Arc<AtomicBool>,
    reason: Arc<AtomicU8>,
    /// Wall clock of the first request, ns: the recording's stop time.
    at_ns: Arc<AtomicI64>,
}

impl StopHandle {
    pub(super) fn new() -> StopHandle {
        StopHandle {
            flag: Arc::new(AtomicBool::new(false)),
            reason: Arc::new(AtomicU8::new(0)),
            at_ns: Arc::new(AtomicI64::new(i64::MIN)),
        }
    }

    /// Requests a stop. The first reason given is the one recorded. Both threads notice within
    /// about 10 ms, or when their attempt in flight ends (at most the scrape timeout).
    pub fn stop(&self, reason: StopReason) {
        let first =
            self.reason
                .compare_exchange(0, reason.code(), Ordering::SeqCst, Ordering::SeqCst);
        if first.is_ok() {
            self.at_ns.store(clock::wall_now().0, Ordering::SeqCst);
        }
        self.flag.store(true, Ordering::SeqCst);
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
