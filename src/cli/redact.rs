//! `profile redact REC -o DIR [--keep ...]`: a copy of a recording that can be shared, with
//! host names, URLs, the model name, GPU UUIDs and path-like label values replaced.

use anyhow::Context;
use profile::bundle::{self, ScratchDir};
use profile::catalog::Catalog;
use profile::redact::{Keep, RedactConfig};
use std::path::PathBuf;
use std::process::ExitCode;

/// The `--keep` and `--catalog` flags, shared with `profile bundle --redact`.
#[derive(Debug, clap::Args)]
pub struct KeepArg {
    /// Keep these fields verbatim, comma-separated: model, host, url, gpu-uuid, labels.
    #[arg(long, value_name = "FIELDS")]
    pub keep: Option<String>,
    /// Catalog directory whose model tokens survive in the redacted model name (default: the
    /// built-in catalog).
    #[arg(long, value_name = "DIR")]
    pub catalog: Option<PathBuf>,
}

/// Arguments of `profile redact`.
#[derive(Debug, clap::Args)]
pub struct RedactArgs {
    /// The recording: a directory or a bundle.
    recording: PathBuf,
    /// The directory to write (created; must be empty if it exists).
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    keep: KeepArg,
}

/// The engine config of `--keep`/`--catalog`.
pub fn redact_config(k: &KeepArg) -> anyhow::Result<RedactConfig> {
    let keep = match &k.keep {
        Some(list) => Keep::parse(list).map_err(|e| anyhow::anyhow!("--keep: {e}"))?,
        None => Keep::default(),
    };
    let catalog = match &k.catalog {
        Some(dir) => Catalog::load_dir(dir)
            .with_context(|| format!("loading the catalog {}", dir.display()))?,
        None => Catalog::embedded().context("loading the built-in catalog")?,
    };
    Ok(RedactConfig::new(keep, &catalog))
}

pub fn run(args: RedactArgs) -> anyhow::Result<ExitCode> {
    let config = redact_config(&args.keep)?;
    let scratch;
    let source = if bundle::is_bundle(&args.recording) {
        scratch = ScratchDir::new("unbundle")?;
        bundle::unbundle(&args.recording, scratch.path())
            .with_context(|| format!("extracting {}", args.recording.display()))?;
        scratch.path().to_path_buf()
    } else {
        args.recording.clone()
    };
    let summary = profile::redact::redact(&source, &args.output, &config)
        .with_context(|| format!("redacting {}", args.recording.display()))?;
    for (name, why) in &summary.skipped {
        eprintln!("profile: left out {name}: {why}");
    }
    let replaced: Vec<String> = summary
        .replaced
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    println!(
        "{}: {} files; replaced {}",
        args.output.display(),
        summary.written.len(),
        if replaced.is_empty() {
            "nothing".to_string()
        } else {
            replaced.join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
}
