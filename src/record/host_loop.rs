//! The host thread (`record --pid`): one reading of the target process per tick, and with
//! `--children` one of each process below it (children, grandchildren, ...), on the same anchored schedule as the scrapes and GPU
//! polls. Its own thread, so that a slow `/proc` (a process stuck in the kernel) delays neither.
//!
//! When the target is gone the tick stores one `exited` row, the manifest records when (at
//! once, so a recorder killed later still has it), a progress display is told, and this thread
//! ends: the scrapes and GPU polls go on until the recording stops.

use super::{run_ticks, Shared, Step};
use crate::host::{self, HostError};
use crate::recording::writer::write_manifest;
use crate::recording::{HostSample, HostStatus, HostWriter, RecordingError, WrittenFile};
use std::sync::atomic::Ordering;
use std::sync::PoisonError;

/// What `--pid`/`--children` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostConfig {
    /// The process to sample.
    pub pid: u32,
    /// Whether to sample every process below it too (children at any depth), summed at
    /// analysis.
    pub children: bool,
}

/// Why the tick loop ended early.
enum End {
    Write(RecordingError),
    Exited,
}

/// Runs until a stop request, the end of the duration or the target's exit; returns the files.
pub(super) fn run(
    shared: &Shared,
    config: HostConfig,
    mut writer: HostWriter,
) -> Result<Vec<WrittenFile>, RecordingError> {
    let mut files = Vec::new();
    let outcome = match sample_loop(shared, config, &mut writer, &mut files) {
        Ok(()) | Err(End::Exited) => Ok(()),
        Err(End::Write(e)) => Err(e),
    };
    shared.close_writer(outcome, files, || writer.finish())
}

fn sample_loop(
    shared: &Shared,
    config: HostConfig,
    writer: &mut HostWriter,
    files: &mut Vec<WrittenFile>,
) -> Result<(), End> {
    run_ticks(shared, |step| match step {
        Step::Rotate => {
            let written = writer.rotate().map_err(End::Write)?;
            shared.add_written(&written);
            files.extend(written);
            Ok(())
        }
        Step::Tick(seq) => {
            let (requested_at, requested_mono) = shared.clock.stamp();
            let target = host::read_process(config.pid);
            let (completed_at, completed_mono) = shared.clock.stamp();
            let mut row = HostSample {
                seq,
                requested_at,
                completed_at,
                requested_mono,
                completed_mono,
                pid: config.pid,
                status: HostStatus::Ok,
                error: None,
                reading: None,
            };
            let exited = match target {
                // A zombie has exited; only its parent's wait() is missing.
                Ok(r) if r.state == "Z" || r.state == "X" => true,
                Ok(r) => {
                    row.reading = Some(r);
                    false
                }
                Err(HostError::NoSuchProcess(_)) => true,
                Err(e) => {
                    row.status = HostStatus::Error;
                    row.error = Some(e.to_string());
                    false
                }
            };
            if exited {
                row.status = HostStatus::Exited;
                writer.push(row);
                record_exit(shared, completed_at.0, completed_mono.0).map_err(End::Write)?;
                return Err(End::Exited);
            }
            writer.push(row);
            if config.children {
                for pid in host::descendants_of(config.pid) {
                    // A child that went between the listing and the read is simply not there.
                    let Ok(r) = host::read_process(pid) else {
                        continue;
                    };
                    let (completed_at, completed_mono) = shared.clock.stamp();
                    writer.push(HostSample {
                        seq,
                        requested_at,
                        completed_at,
                        requested_mono,
                        completed_mono,
                        pid,
                        status: HostStatus::Ok,
                        error: None,
                        reading: Some(r),
                    });
                }
            }
            shared.counters.host_samples.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    })
}

/// Stores the exit in the manifest now and tells a progress display.
fn record_exit(shared: &Shared, at_ns: i64, mono_ns: i64) -> Result<(), RecordingError> {
    let result = {
        let mut m = shared
            .manifest
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match m.host.as_mut() {
            Some(h) => {
                h.exited_at_ns = Some(at_ns);
                h.exited_mono_ns = Some(mono_ns);
                write_manifest(&shared.dir, &m)
            }
            None => Ok(()),
        }
    };
    shared.counters.host_exited.store(true, Ordering::SeqCst);
    shared.events.notify();
    result
}
