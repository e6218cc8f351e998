//! `profile record`. (Stub: to be written.)

use std::process::ExitCode;

/// Arguments of `profile record`.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// The vLLM Prometheus endpoint, e.g. http://127.0.0.1:8000/metrics
    #[arg(long)]
    url: String,
}

pub fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let _ = args.url;
    anyhow::bail!("record: not written yet")
}
