//! The GPU thread: one poll round per tick (every selected device, in order), each device's
//! reading one row stamped when that device's poll completed. It runs apart from the scrape
//! thread so that a slow vLLM answer never delays a GPU reading.

use super::{run_ticks, Shared, Step};
use crate::gpu::GpuSource;
use crate::recording::{GpuPoll, GpuWriter, RecordingError, WrittenFile};
use std::sync::atomic::Ordering;

/// Runs until a stop request or the end of the duration; returns the files written.
pub(super) fn run(
    shared: &Shared,
    mut source: Box<dyn GpuSource>,
    mut writer: GpuWriter,
) -> Result<Vec<WrittenFile>, RecordingError> {
    let mut files = Vec::new();
    let outcome = poll_loop(shared, source.as_mut(), &mut writer, &mut files);
    shared.close_writer(outcome, files, || writer.finish())
}

fn poll_loop(
    shared: &Shared,
    source: &mut dyn GpuSource,
    writer: &mut GpuWriter,
    files: &mut Vec<WrittenFile>,
) -> Result<(), RecordingError> {
    let indices: Vec<u32> = source.devices().iter().map(|d| d.index).collect();
    run_ticks(shared, |step| match step {
        Step::Rotate => {
            let written = writer.rotate()?;
            shared.add_written(&written);
            files.extend(written);
            Ok(())
        }
        Step::Tick(seq) => {
            for (position, &gpu_index) in indices.iter().enumerate() {
                let (requested_at, requested_mono) = shared.clock.stamp();
                let metrics = source.poll(position);
                let (completed_at, completed_mono) = shared.clock.stamp();
                writer.push(&GpuPoll {
                    seq,
                    gpu_index,
                    requested_at,
                    completed_at,
                    requested_mono,
                    completed_mono,
                    metrics,
                })?;
            }
            shared.counters.gpu_polls.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    })
}
