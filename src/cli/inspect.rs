//! `profile inspect`. (Stub: to be written.)

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `profile inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The recording directory.
    recording: PathBuf,
}

pub fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let _ = args.recording;
    anyhow::bail!("inspect: not written yet")
}
