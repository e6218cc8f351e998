//! The command line: clap definitions, and their conversion into the engine's plain config
//! types. This is the only place clap is used; the library never sees a flag.

mod analyze;
mod bundle;
mod capacity;
mod catalog;
mod compact;
mod compare;
mod diagnose;
mod fleet_record;
mod import;
mod inputs;
mod inspect;
mod record;
mod redact;
mod replay;
mod signals;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Find out why a vLLM server is slower or more expensive than its hardware allows.
#[derive(Debug, Parser)]
#[command(name = "profile", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Record vLLM /metrics scrapes and NVML GPU polls into a recording directory.
    Record(record::RecordArgs),
    /// Describe what a recording holds: time span, scrapes, files, metric families, GPUs.
    Inspect(inspect::InspectArgs),
    /// Analyse a recording: throughput, latency, KV cache, the hardware ceiling and cost.
    Analyze(analyze::AnalyzeArgs),
    /// List the GPUs and models the ceilings are computed from, with figures and sources.
    Catalog(catalog::CatalogArgs),
    /// Compare two recordings (or saved reports): BETTER, PLATEAU or WORSE, and why.
    Compare(compare::CompareArgs),
    /// Capacity under a latency target (--slo ttft-p99=2s) over one or more recordings of the
    /// same server: the load at which it breaks, and goodput.
    Capacity(capacity::CapacityArgs),
    /// Record a live server and analyse it; with --loop, re-measure after each change and
    /// compare with the baseline.
    Diagnose(diagnose::DiagnoseArgs),
    /// Pack a recording into one checksummed file (optionally redacted).
    Bundle(bundle::BundleArgs),
    /// Extract a bundle into a recording directory (--salvage: what is intact).
    Unbundle(bundle::UnbundleArgs),
    /// Write a copy of a recording with hosts, URLs, model name and GPU UUIDs replaced.
    Redact(redact::RedactArgs),
    /// Serve a recording back as a live Prometheus /metrics endpoint.
    Replay(replay::ReplayArgs),
    /// Write a recording from data a metrics server already holds (a Prometheus time range).
    Import(import::ImportArgs),
    /// Merge a recording's minute segments into hourly ones (verified, safe to interrupt).
    Compact(compact::CompactArgs),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Record(args) => record::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Catalog(args) => catalog::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Capacity(args) => capacity::run(args),
        Command::Diagnose(args) => diagnose::run(args),
        Command::Bundle(args) => bundle::run_bundle(args),
        Command::Unbundle(args) => bundle::run_unbundle(args),
        Command::Redact(args) => redact::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Import(args) => import::run(args),
        Command::Compact(args) => compact::run(args),
    }
}
