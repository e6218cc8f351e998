//! `profile compare BEFORE AFTER`: analyse two recordings (or read two saved reports) and say
//! whether the server got better, worse or stayed put. This file turns flags into configs,
//! picks a renderer and maps `--fail-on` to the exit code; the engine is `profile::compare`.

use super::analyze::{load_catalog, write_html, ColorWhen};
use super::inputs::InputArgs;
use anyhow::Context;
use profile::analyze::{analyze, AnalyzeConfig};
use profile::catalog::Catalog;
use profile::compare::{compare, render_html, render_json, render_text, CompareConfig, Direction};
use profile::report::Report;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit code when `--fail-on` is met.
const EXIT_FAIL_ON: u8 = 1;

/// Arguments of `profile compare`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Exit status:
  0  compared (whatever the direction, unless --fail-on says otherwise)
  1  --fail-on worse and the direction is WORSE, or --fail-on plateau and it is WORSE or PLATEAU
  2  error: unreadable input, or different models/GPUs without --allow-different")]
pub struct CompareArgs {
    /// The baseline: a recording directory, or a report saved by `profile analyze --json`.
    before: PathBuf,
    /// The recording (or saved report) after the change.
    after: PathBuf,
    /// Print the comparison as JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write the comparison as one self-contained HTML file (both timelines overlaid).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Colour the tables: auto (only on a terminal, and not when NO_COLOR is set), always,
    /// never.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    color: ColorWhen,
    /// Compare even when the two name different models or GPU types.
    #[arg(long)]
    allow_different: bool,
    /// Exit with status 1 when the direction is this bad: `worse` (WORSE only) or `plateau`
    /// (WORSE or PLATEAU), e.g. to fail a CI job.
    #[arg(long, value_name = "worse|plateau")]
    fail_on: Option<FailOn>,
    /// Window length for analysing recordings, e.g. 2s, 500ms (default 2s; 4 steps for an
    /// imported recording).
    #[arg(long, value_parser = parse_window)]
    window: Option<i64>,
    /// The analysis inputs, for both sides (each recording's own values otherwise). Give
    /// them to `profile record` instead when they changed between the two.
    #[command(flatten)]
    inputs: InputArgs,
    /// Read gpus.toml and models.toml from this directory instead of the built-in catalog.
    #[arg(long, value_name = "DIR")]
    catalog: Option<PathBuf>,
}

/// `--fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FailOn {
    /// Fail on WORSE.
    Worse,
    /// Fail on WORSE or PLATEAU.
    Plateau,
}

impl FailOn {
    fn trips(self, d: Direction) -> bool {
        match self {
            FailOn::Worse => d == Direction::Worse,
            FailOn::Plateau => d != Direction::Better,
        }
    }
}

pub fn run(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let mut catalog = None;
    let mut report_of = |path: &Path| -> anyhow::Result<Report> {
        if path.is_dir() || profile::bundle::is_bundle(path) {
            let cat = match &catalog {
                Some(c) => c,
                None => catalog.insert(load_catalog(args.catalog.as_deref())?),
            };
            analyse(path, cat, &args)
        } else {
            read_report(path)
        }
    };
    let before = report_of(&args.before)?;
    let after = report_of(&args.after)?;
    let config = CompareConfig {
        allow_different: args.allow_different,
    };
    let comparison = compare(&before, &after, &config).with_context(|| {
        format!(
            "refusing to compare {} with {} (pass --allow-different to compare anyway)",
            args.before.display(),
            args.after.display()
        )
    })?;
    if let Some(path) = &args.html {
        write_html(path, &render_html(&comparison, &before, &after))?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        out.write_all(render_json(&comparison)?.as_bytes())?;
    } else {
        let color = args.color.decide(&out);
        out.write_all(render_text(&comparison, color).as_bytes())?;
    }
    out.flush()?;
    let direction = comparison.verdict.direction;
    Ok(match args.fail_on {
        Some(f) if f.trips(direction) => ExitCode::from(EXIT_FAIL_ON),
        _ => ExitCode::SUCCESS,
    })
}

fn analyse(dir: &Path, catalog: &Catalog, args: &CompareArgs) -> anyhow::Result<Report> {
    let rec = profile::bundle::open_any_filtered(dir, &profile::vllm::may_have_role)
        .with_context(|| format!("reading recording {}", dir.display()))?;
    let config = AnalyzeConfig {
        window_ns: args.window,
        inputs: args.inputs.to_operator(),
        recording_label: Some(dir.display().to_string()),
        // The HTML timelines need the per-window rows; the text and JSON do not show them.
        verbose: args.html.is_some(),
        // The intervals resample the active windows.
        samples: true,
        ..AnalyzeConfig::default()
    };
    analyze(&rec, catalog, &config).with_context(|| format!("analysing {}", dir.display()))
}

/// A report saved as JSON. The analyze flags do not apply to it: it was analysed already.
pub(super) fn read_report(path: &Path) -> anyhow::Result<Report> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading {} (a recording directory, a bundle or a report JSON file)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a report written by `profile analyze --json`",
            path.display()
        )
    })
}

/// `--window`: a positive duration, in integer ns.
pub(super) fn parse_window(text: &str) -> Result<i64, String> {
    let d = super::record::parse_duration(text)?;
    let ns = i64::try_from(d.as_nanos()).map_err(|_| format!("{text:?}: too long"))?;
    if ns <= 0 {
        return Err(format!("{text:?}: the window must be longer than zero"));
    }
    Ok(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_on_levels() {
        use Direction::*;
        assert!(!FailOn::Worse.trips(Better));
        assert!(!FailOn::Worse.trips(Plateau));
        assert!(FailOn::Worse.trips(Worse));
        assert!(!FailOn::Plateau.trips(Better));
        assert!(FailOn::Plateau.trips(Plateau));
        assert!(FailOn::Plateau.trips(Worse));
    }

    #[test]
    fn windows_must_be_positive() {
        assert_eq!(parse_window("500ms"), Ok(500_000_000));
        assert!(parse_window("0s").is_err());
        assert!(parse_window("2").is_err());
    }
}
