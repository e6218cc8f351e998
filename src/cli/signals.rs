//! SIGINT and SIGTERM for the commands that stop cleanly on them (`record`, `diagnose`,
//! `replay`): one place that installs the handler and tells the two apart, so that a
//! recording stores `interrupt` or `terminate` as what really happened.
//!
//! `signal-hook`'s iterator runs the handler on a thread of its own (the signal itself only
//! writes to a self-pipe), so the handler may take locks, print, and exit the process. The
//! `ctrlc` crate it replaces reported both signals as one event.

use anyhow::Context;
use profile::record::StopReason;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::sync::atomic::{AtomicU32, Ordering};

/// A stop signal the process received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StopSignal {
    /// SIGINT: Ctrl-C at a terminal.
    Interrupt,
    /// SIGTERM: `kill`, systemd, Kubernetes.
    Terminate,
}

impl StopSignal {
    /// The stop reason a recording stores for it.
    pub(super) fn reason(self) -> StopReason {
        match self {
            StopSignal::Interrupt => StopReason::Interrupt,
            StopSignal::Terminate => StopReason::Terminate,
        }
    }

    /// The exit status of a process ended by this signal without cleaning up, as shells
    /// report it: 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
    pub(super) fn exit_status(self) -> i32 {
        128 + match self {
            StopSignal::Interrupt => SIGINT,
            StopSignal::Terminate => SIGTERM,
        }
    }
}

/// Calls `handler` on a dedicated thread for every SIGINT or SIGTERM from now on.
pub(super) fn on_stop_signals(handler: impl Fn(StopSignal) + Send + 'static) -> anyhow::Result<()> {
    let mut signals =
        Signals::new([SIGINT, SIGTERM]).context("installing the SIGINT/SIGTERM handler")?;
    std::thread::Builder::new()
        .name("profile-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                handler(if sig == SIGTERM {
                    StopSignal::Terminate
                } else {
                    StopSignal::Interrupt
                });
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}

/// Stops a recording on SIGINT or SIGTERM: the first signal finishes the files (stored as
/// what it was), a second one gives up on them and exits at once.
pub(super) fn stop_on_signals(stop: profile::record::StopHandle) -> anyhow::Result<()> {
    let signals = AtomicU32::new(0);
    on_stop_signals(move |sig| {
        if signals.fetch_add(1, Ordering::SeqCst) == 0 {
            stop.stop(sig.reason());
        } else {
            eprintln!("\nprofile: interrupted again, exiting without finishing the files");
            std::process::exit(sig.exit_status());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_signal_keeps_its_name_and_status() {
        assert_eq!(StopSignal::Interrupt.reason(), StopReason::Interrupt);
        assert_eq!(StopSignal::Terminate.reason(), StopReason::Terminate);
        assert_eq!(StopSignal::Interrupt.exit_status(), 130);
        assert_eq!(StopSignal::Terminate.exit_status(), 143);
    }
}
