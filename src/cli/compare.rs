//! `profile compare BEFORE AFTER`: analyse two recordings (or read two saved reports) and say
//! whether the server got better, worse or stayed put. This file turns flags into configs,
//! picks a renderer and maps `--fail-on` to the exit code; the engine is `profile::compare`.

use super::analyze::{load_catalog, write_html, ColorWhen};
use super::inputs::InputArgs;
use anyhow::Context;
use profile::analyze::{analyze_deferred, AnalyzeConfig};
use profile::catalog::Catalog;
use profile::compare::fleet::compare_fleets;
use profile::compare::{
    compare, render_fleet_text, render_html, render_json, render_text, CompareConfig, Direction,
};
use profile::report::fleet::FleetReport;
use profile::report::Render;
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
    /// Of fleet recordings (or saved fleet reports), compare only this target (its name or
    /// its URL); without it two fleets are compared target by target.
    #[arg(long, value_name = "NAME")]
    target: Option<String>,
}

/// One side of a comparison: a single server's report or a fleet's.
enum Input {
    One(Box<Report>),
    Fleet(FleetReport),
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
    let mut input_of = |path: &Path| -> anyhow::Result<Input> {
        let saved = !(path.is_dir() || profile::bundle::is_bundle(path));
        if saved {
            return read_input(path, args.target.as_deref());
        }
        let cat = match &catalog {
            Some(c) => c,
            None => catalog.insert(load_catalog(args.catalog.as_deref())?),
        };
        let fleet = profile::recording::fleet::targets(path)
            .ok()
            .filter(|t| t.iter().any(|t| t.dir != path));
        match (fleet, &args.target) {
            (Some(targets), Some(wanted)) => {
                let t = profile::recording::fleet::pick(&targets, wanted)
                    .with_context(|| no_target(path, wanted, targets.iter().map(|t| &t.name)))?;
                Ok(Input::One(Box::new(analyse(&t.dir, cat, &args)?)))
            }
            (Some(targets), None) => Ok(Input::Fleet(analyse_fleet(path, &targets, cat, &args)?)),
            (None, Some(wanted)) => anyhow::bail!(
                "{}: --target {wanted:?} needs a fleet recording, and this is one server",
                path.display()
            ),
            (None, None) => Ok(Input::One(Box::new(analyse(path, cat, &args)?))),
        }
    };
    let before = input_of(&args.before)?;
    let after = input_of(&args.after)?;
    let config = CompareConfig {
        allow_different: args.allow_different,
    };
    let mut out = std::io::stdout().lock();
    let direction = match (&before, &after) {
        (Input::One(before), Input::One(after)) => {
            let comparison = compare(before, after, &config).with_context(|| {
                format!(
                    "refusing to compare {} with {} (pass --allow-different to compare anyway)",
                    args.before.display(),
                    args.after.display()
                )
            })?;
            if let Some(path) = &args.html {
                write_html(path, &render_html(&comparison, before, after))?;
            }
            if args.json {
                out.write_all(render_json(&comparison)?.as_bytes())?;
            } else {
                let color = args.color.decide(&out);
                out.write_all(render_text(&comparison, color).as_bytes())?;
            }
            comparison.verdict.direction
        }
        (Input::Fleet(before), Input::Fleet(after)) => {
            anyhow::ensure!(
                args.html.is_none(),
                "two fleets have no HTML comparison yet; pick one target with --target"
            );
            let comparison = compare_fleets(before, after, &config);
            anyhow::ensure!(
                comparison.targets.iter().any(|t| t.comparison.is_some()),
                "{} and {} share no target that could be compared (targets are matched by \
                 name; pass --allow-different when their models differ)",
                args.before.display(),
                args.after.display()
            );
            if args.json {
                out.write_all(profile::report::Json.render(&comparison)?.as_bytes())?;
            } else {
                let color = args.color.decide(&out);
                out.write_all(render_fleet_text(&comparison, color).as_bytes())?;
            }
            comparison.direction
        }
        (b, _) => {
            let fleet = if matches!(b, Input::Fleet(_)) {
                &args.before
            } else {
                &args.after
            };
            anyhow::bail!(
                "{} is a fleet and the other side one server: pick the fleet's target to \
                 compare with --target",
                fleet.display()
            )
        }
    };
    out.flush()?;
    Ok(match args.fail_on {
        Some(f) if f.trips(direction) => ExitCode::from(EXIT_FAIL_ON),
        _ => ExitCode::SUCCESS,
    })
}

fn no_target<'a>(path: &Path, wanted: &str, names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    format!(
        "{}: no target named {wanted:?} (targets: {})",
        path.display(),
        names.join(", ")
    )
}

fn analysis_config(args: &CompareArgs, label: Option<String>) -> AnalyzeConfig {
    AnalyzeConfig {
        window_ns: args.window,
        inputs: args.inputs.to_operator(),
        recording_label: label,
        // The HTML timelines need the per-window rows; the text and JSON do not show them.
        verbose: args.html.is_some(),
        // The intervals resample the active windows.
        samples: true,
        ..AnalyzeConfig::default()
    }
}

fn analyse_fleet(
    path: &Path,
    targets: &[profile::recording::fleet::TargetDir],
    catalog: &Catalog,
    args: &CompareArgs,
) -> anyhow::Result<FleetReport> {
    let recs = super::analyze::open_targets(targets)?;
    let label = path.display().to_string();
    profile::analyze::fleet::analyze_fleet(&label, recs, catalog, &analysis_config(args, None))
        .with_context(|| format!("analysing {label}"))
}

/// A saved report: a fleet's (with `--target`, the one target's report in it) or one server's.
fn read_input(path: &Path, target: Option<&str>) -> anyhow::Result<Input> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading {} (a recording directory, a bundle or a report JSON file)",
            path.display()
        )
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let is_fleet = value.get("rows").is_some() && value.get("targets").is_some();
    if !is_fleet {
        if let Some(wanted) = target {
            anyhow::bail!(
                "{}: --target {wanted:?} needs a fleet report, and this is one server's",
                path.display()
            );
        }
        return Ok(Input::One(Box::new(read_report(path)?)));
    }
    let fleet: FleetReport = serde_json::from_value(value).with_context(|| {
        format!(
            "{}: not a fleet report written by `profile analyze --json`",
            path.display()
        )
    })?;
    match target {
        None => Ok(Input::Fleet(fleet)),
        Some(wanted) => {
            let t = fleet
                .targets
                .iter()
                .find(|t| t.name == wanted)
                .or_else(|| fleet.targets.iter().find(|t| t.url == wanted))
                .with_context(|| no_target(path, wanted, fleet.targets.iter().map(|t| &t.name)))?;
            Ok(Input::One(Box::new(t.report.clone())))
        }
    }
}

fn analyse(dir: &Path, catalog: &Catalog, args: &CompareArgs) -> anyhow::Result<Report> {
    let deferred = profile::bundle::open_any_deferred(dir, &profile::vllm::may_have_role, &|_| {})
        .with_context(|| format!("reading recording {}", dir.display()))?;
    let config = analysis_config(args, Some(dir.display().to_string()));
    let (report, _, _) = analyze_deferred(deferred, catalog, &config, &|_| {})
        .with_context(|| format!("analysing {}", dir.display()))?;
    Ok(report)
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
