//! Change notifications from the recorder's threads to whoever shows its progress: a thread
//! ended, or scrapes started or stopped failing. A generation counter under a mutex with a
//! condition variable, so a status display sleeps until something changed (or its redraw
//! time) instead of polling the recorder.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

/// A counter bumped at every change, and the condition variable its waiters sleep on.
#[derive(Debug, Default)]
pub(super) struct Events {
    generation: Mutex<u64>,
    changed: Condvar,
}

impl Events {
    /// Records a change and wakes every waiter.
    pub(super) fn notify(&self) {
        let mut g = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *g = g.wrapping_add(1);
        drop(g);
        self.changed.notify_all();
    }

    /// Waits until the generation differs from `seen`, or `timeout` passed (`None`: no
    /// timeout). Returns the generation now.
    pub(super) fn wait_past(&self, seen: u64, timeout: Option<Duration>) -> u64 {
        let g = self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let g = match timeout {
            Some(t) => {
                self.changed
                    .wait_timeout_while(g, t, |g| *g == seen)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => self
                .changed
                .wait_while(g, |g| *g == seen)
                .unwrap_or_else(PoisonError::into_inner),
        };
        *g
    }

    /// The generation now.
    pub(super) fn current(&self) -> u64 {
        *self
            .generation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_change_wakes_a_waiter_and_a_timeout_ends_the_wait() {
        let e = Arc::new(Events::default());
        let seen = e.current();
        assert_eq!(e.wait_past(seen, Some(Duration::from_millis(1))), seen);
        let other = Arc::clone(&e);
        let waiter = std::thread::spawn(move || other.wait_past(seen, None));
        e.notify();
        // Without the notification this join would never return.
        assert_eq!(waiter.join().unwrap(), seen + 1);
        // A change made before the wait is not lost.
        e.notify();
        assert_eq!(e.wait_past(seen + 1, None), seen + 2);
    }
}
