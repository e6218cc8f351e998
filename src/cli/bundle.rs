//! `profile bundle REC -o FILE [--redact]` and `profile unbundle FILE -o DIR [--salvage]`: a
//! recording as one checksummed file and back.

use super::redact::{redact_config, KeepArg};
use anyhow::Context;
use profile::bundle::{self, ScratchDir};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `profile bundle`.
#[derive(Debug, clap::Args)]
pub struct BundleArgs {
    /// The recording directory.
    recording: PathBuf,
    /// The bundle file to write (refused if it exists).
    #[arg(short, long)]
    output: PathBuf,
    /// Redact host names, URLs, the model name, GPU UUIDs and path-like label values first
    /// (see `profile redact --help`).
    #[arg(long)]
    redact: bool,
    #[command(flatten)]
    keep: KeepArg,
}

/// Arguments of `profile unbundle`.
#[derive(Debug, clap::Args)]
pub struct UnbundleArgs {
    /// The bundle file.
    bundle: PathBuf,
    /// The directory to extract into (created; must be empty if it exists).
    #[arg(short, long)]
    output: PathBuf,
    /// Extract every intact entry of a damaged bundle instead of refusing it.
    #[arg(long)]
    salvage: bool,
}

pub fn run_bundle(args: BundleArgs) -> anyhow::Result<ExitCode> {
    let scratch;
    let source = if args.redact {
        let config = redact_config(&args.keep)?;
        scratch = ScratchDir::new("redact")?;
        let dir = scratch.path().join("rec");
        let summary = profile::redact::redact(&args.recording, &dir, &config)
            .with_context(|| format!("redacting {}", args.recording.display()))?;
        for (name, why) in &summary.skipped {
            eprintln!("profile: left out {name}: {why}");
        }
        dir
    } else {
        if args.keep.keep.is_some() {
            anyhow::bail!("--keep only applies with --redact");
        }
        args.recording.clone()
    };
    let summary = bundle::bundle_dir(&source, &args.output)
        .with_context(|| format!("bundling {}", args.recording.display()))?;
    for name in &summary.skipped {
        eprintln!("profile: left out {name}: not a recording file");
    }
    println!(
        "{}: {} files, {} bytes",
        args.output.display(),
        summary.entries.len(),
        summary.bytes
    );
    Ok(ExitCode::SUCCESS)
}

pub fn run_unbundle(args: UnbundleArgs) -> anyhow::Result<ExitCode> {
    if args.salvage {
        let report = bundle::salvage(&args.bundle, &args.output)
            .with_context(|| format!("salvaging {}", args.bundle.display()))?;
        for d in &report.damaged {
            eprintln!("profile: damaged: {d}");
        }
        println!(
            "{}: {} intact files extracted, {} damaged parts",
            args.output.display(),
            report.extracted.len(),
            report.damaged.len()
        );
        return Ok(if report.damaged.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let entries = bundle::unbundle(&args.bundle, &args.output)
        .with_context(|| format!("extracting {}", args.bundle.display()))?;
    println!("{}: {} files", args.output.display(), entries.len());
    Ok(ExitCode::SUCCESS)
}
