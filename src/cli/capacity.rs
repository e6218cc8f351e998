//! `profile capacity --slo ttft-p99=2s REC [REC ...]`: capacity under a latency target over
//! one or more recordings (or saved `analyze --json --samples` reports) of the same server,
//! their active windows pooled into one ladder of load levels. `analyze --slo` answers the
//! same question for one recording inside its report; this command exists because pooling
//! is not a property of one report: several short runs at different client counts are the
//! usual way a capacity sweep is made. The engine is `profile::capacity`.

use super::analyze::{load_catalog, parse_slo_arg, SloArg};
use super::compare::{parse_window, read_report};
use super::inputs::InputArgs;
use anyhow::Context;
use profile::analyze::{analyze_deferred, AnalyzeConfig};
use profile::capacity::assess;
use profile::catalog::Catalog;
use profile::report::{render_slo, Json, Render, Report};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `profile capacity`.
#[derive(Debug, clap::Args)]
pub struct CapacityArgs {
    /// The latency target, e.g. `ttft-p99=2s` or `ttft-p99=2s,tpot-p99=50ms`.
    #[arg(long, value_name = "TARGETS", value_parser = parse_slo_arg)]
    slo: SloArg,
    /// Recordings (directories or bundles) or saved `analyze --json --samples` reports of the
    /// same server; their windows are pooled.
    #[arg(required = true)]
    recordings: Vec<PathBuf>,
    /// Print the assessment as JSON.
    #[arg(long)]
    json: bool,
    /// Pool recordings even when they name different models or GPU types.
    #[arg(long)]
    allow_different: bool,
    /// Window length for analysing recordings, e.g. 2s, 500ms [default: 2s, or 4 steps for a
    /// recording imported from Prometheus]
    #[arg(long, value_parser = parse_window)]
    window: Option<i64>,
    #[command(flatten)]
    inputs: InputArgs,
    /// Read gpus.toml and models.toml from this directory instead of the built-in catalog.
    #[arg(long, value_name = "DIR")]
    catalog: Option<PathBuf>,
}

pub fn run(args: CapacityArgs) -> anyhow::Result<ExitCode> {
    let mut catalog: Option<Catalog> = None;
    let mut reports: Vec<(String, Report)> = Vec::new();
    for path in &args.recordings {
        let label = path.display().to_string();
        let report = if path.is_dir() || profile::bundle::is_bundle(path) {
            let cat = match &catalog {
                Some(c) => c,
                None => catalog.insert(load_catalog(args.catalog.as_deref())?),
            };
            let deferred =
                profile::bundle::open_any_deferred(path, &profile::vllm::may_have_role, &|_| {})
                    .with_context(|| format!("reading recording {label}"))?;
            let config = AnalyzeConfig {
                window_ns: args.window,
                inputs: args.inputs.to_operator(),
                recording_label: Some(label.clone()),
                samples: true,
                ..AnalyzeConfig::default()
            };
            analyze_deferred(deferred, cat, &config, &|_| {})
                .with_context(|| format!("analysing {label}"))?
                .0
        } else {
            read_report(path)?
        };
        reports.push((label, report));
    }
    check_same_server(&reports, args.allow_different)?;
    let mut sources = Vec::new();
    for (label, r) in &reports {
        let s = r.samples.as_ref().with_context(|| {
            format!(
                "{label}: the report has no per-window samples (save it with `analyze --json \
                 --samples`)"
            )
        })?;
        sources.push((label.as_str(), s));
    }
    let a = assess(&sources, &args.slo.0);
    let mut out = std::io::stdout().lock();
    if args.json {
        out.write_all(Json.render(&a)?.as_bytes())?;
    } else {
        out.write_all(render_slo(&a, false).as_bytes())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Different models or GPU types are different servers: their windows do not pool.
fn check_same_server(reports: &[(String, Report)], allow: bool) -> anyhow::Result<()> {
    let Some((first_label, first)) = reports.first() else {
        return Ok(());
    };
    let gpus = |r: &Report| -> Vec<Option<String>> {
        let mut g: Vec<Option<String>> = r.recording.gpus.iter().map(|g| g.name.clone()).collect();
        g.sort();
        g.dedup();
        g
    };
    for (label, r) in &reports[1..] {
        let same_model = r.recording.model_name == first.recording.model_name;
        if !allow && (!same_model || gpus(r) != gpus(first)) {
            anyhow::bail!(
                "{label} and {first_label} name different models or GPU types: not the same \
                 server (pass --allow-different to pool them anyway)"
            );
        }
    }
    Ok(())
}
