//! `profile analyze REC`: windows, aggregates, the catalog ceiling, economics and the rules'
//! diagnosis of a recording, as tables or JSON. This file only turns flags into an
//! [`AnalyzeConfig`] and picks a renderer; the engine is `profile::analyze`.

use super::inputs::InputArgs;
use anyhow::Context;
use profile::analyze::{analyze_deferred, AnalyzeConfig};
use profile::capacity::{parse_slo, SloTarget};
use profile::catalog::Catalog;
use profile::report::{render_json, render_text_with, Html, Render, TextOptions};
use profile::units::{MonoNs, WallNs};
use profile::window::TimeBound;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `profile analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    /// The recording: a directory or a bundle file.
    recording: PathBuf,
    /// Print the report as JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write the report as one self-contained HTML file (timelines, no network).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Colour the tables: auto (only on a terminal, and not when NO_COLOR is set), always,
    /// never.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    color: ColorWhen,
    /// Window length, e.g. 2s, 500ms, 1m (default 2s; 4 steps for an imported recording,
    /// which refuses fewer than 2).
    #[arg(long, value_parser = parse_window)]
    window: Option<i64>,
    /// Analyse from this point: an offset from the recording's start (30s, 1m30s) or an
    /// RFC 3339 time (2026-11-23T09:01:02Z).
    #[arg(long, value_parser = parse_bound)]
    from: Option<TimeBound>,
    /// Analyse up to this point (same forms as --from).
    #[arg(long, value_parser = parse_bound)]
    to: Option<TimeBound>,
    #[command(flatten)]
    inputs: InputArgs,
    /// Read gpus.toml and models.toml from this directory instead of the built-in catalog.
    #[arg(long, value_name = "DIR")]
    catalog: Option<PathBuf>,
    /// Also list every window, the findings below the significance gate, and why each rule
    /// that did not fire stayed silent.
    #[arg(short, long)]
    verbose: bool,
    /// Keep the active windows in the report as samples (JSON `samples`), so that a saved
    /// `--json` report compares with intervals later.
    #[arg(long)]
    samples: bool,
    /// Capacity under a latency target: the load at which it breaks and the share of requests
    /// meeting it, e.g. `ttft-p99=2s,tpot-p99=50ms`. For several recordings of one server use
    /// `profile capacity`.
    #[arg(long, value_name = "TARGETS", value_parser = parse_slo_arg)]
    slo: Option<SloArg>,
    /// Of a fleet recording, analyse only this target (its name or its URL)
    #[arg(long, value_name = "NAME|URL")]
    target: Option<String>,
}

/// The targets of `--slo` (a newtype, so clap takes the list as one value).
#[derive(Debug, Clone)]
pub(super) struct SloArg(pub Vec<SloTarget>);

/// `--slo`: `ttft-p99=2s[,tpot-p99=50ms]`.
pub(super) fn parse_slo_arg(text: &str) -> Result<SloArg, String> {
    parse_slo(text).map(SloArg).map_err(|e| e.to_string())
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// Only when stdout is a terminal and NO_COLOR is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl ColorWhen {
    /// Whether to colour output written to `out`. The one place that looks at the terminal
    /// and the environment; renderers are told, never ask.
    pub fn decide(self, out: &impl IsTerminal) -> bool {
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => out.is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

/// Writes `html` to `path`, naming the file on failure.
pub fn write_html(path: &Path, html: &str) -> anyhow::Result<()> {
    std::fs::write(path, html).with_context(|| format!("writing {}", path.display()))
}

/// Loads `--catalog DIR`, or the embedded catalog.
pub fn load_catalog(dir: Option<&Path>) -> anyhow::Result<Catalog> {
    Ok(match dir {
        Some(d) => Catalog::load_dir(d)?,
        None => Catalog::embedded()?,
    })
}

/// A progress line on stderr while a long recording is read: only on a terminal, only once the
/// read has taken [`PROGRESS_AFTER`], and erased when it ends, so a short analysis, a pipe or a
/// redirect never sees it.
struct Progress {
    start: std::time::Instant,
    tty: bool,
    shown: std::sync::atomic::AtomicBool,
}

/// How long a read runs before it shows progress (issue "Production scale": "analyses longer
/// than a second").
const PROGRESS_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

impl Progress {
    #[allow(clippy::disallowed_methods)] // the CLI times its own progress line
    fn start() -> Progress {
        Progress {
            start: std::time::Instant::now(),
            tty: std::io::stderr().is_terminal(),
            shown: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn show(&self, p: profile::recording::ReadProgress) {
        let elapsed = self.start.elapsed();
        if !self.tty || elapsed < PROGRESS_AFTER {
            return;
        }
        self.shown.store(true, std::sync::atomic::Ordering::Relaxed);
        let rate = p.rows as f64 / elapsed.as_secs_f64() / 1e6;
        let what = if p.values { "samples" } else { "series" };
        eprint!(
            "\rreading {what}: {}/{} files, {:.1} M samples, {rate:.1} M samples/s   ",
            p.files_done,
            p.files_total,
            p.rows as f64 / 1e6
        );
    }

    fn done(&self) {
        if self.shown.load(std::sync::atomic::Ordering::Relaxed) {
            eprint!("\r{:70}\r", "");
        }
    }
}

pub fn run(mut args: AnalyzeArgs) -> anyhow::Result<ExitCode> {
    // A fleet recording (or `--target`) goes through the fleet path; a recording the targets
    // reader cannot place (a bundle file) is one server.
    if let Ok(targets) = profile::recording::fleet::targets(&args.recording) {
        let is_fleet = targets.iter().any(|t| t.dir != args.recording);
        if let Some(wanted) = args.target.take() {
            let t = profile::recording::fleet::pick(&targets, &wanted).with_context(|| {
                let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
                format!(
                    "{}: no target named {wanted:?} (targets: {})",
                    args.recording.display(),
                    names.join(", ")
                )
            })?;
            args.recording = t.dir.clone();
        } else if is_fleet {
            return run_fleet(args, &targets);
        }
    } else if let Some(wanted) = &args.target {
        anyhow::bail!(
            "{}: --target {wanted:?} needs a recording directory",
            args.recording.display()
        );
    }
    let catalog = load_catalog(args.catalog.as_deref())?;
    let progress = Progress::start();
    let deferred =
        profile::bundle::open_any_deferred(&args.recording, &profile::vllm::may_have_role, &|p| {
            progress.show(p)
        })
        .with_context(|| format!("reading recording {}", args.recording.display()))?;
    let config = AnalyzeConfig {
        window_ns: args.window,
        from: args.from,
        to: args.to,
        inputs: args.inputs.to_operator(),
        recording_label: Some(args.recording.display().to_string()),
        // The HTML timelines need the per-window rows, which the analysis fills for -v.
        verbose: args.verbose || args.html.is_some(),
        samples: args.samples,
        slo: args.slo.clone().map(|s| s.0),
    };
    let analysed = analyze_deferred(deferred, &catalog, &config, &|p| progress.show(p));
    progress.done();
    let (report, _, _) =
        analysed.with_context(|| format!("analysing {}", args.recording.display()))?;
    if let Some(path) = &args.html {
        write_html(path, &Html.render(&report)?)?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        out.write_all(render_json(&report)?.as_bytes())?;
    } else {
        let color = args.color.decide(&out);
        let opts = TextOptions {
            color,
            verbose: args.verbose,
        };
        out.write_all(render_text_with(&report, opts).as_bytes())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// A fleet recording: the fleet table and totals, then each target's own report.
fn run_fleet(
    args: AnalyzeArgs,
    targets: &[profile::recording::fleet::TargetDir],
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.html.is_none(),
        "{}: a fleet recording has no HTML report yet; pick one target with --target",
        args.recording.display()
    );
    let catalog = load_catalog(args.catalog.as_deref())?;
    let recs = open_targets(targets)?;
    let config = AnalyzeConfig {
        window_ns: args.window,
        from: args.from,
        to: args.to,
        inputs: args.inputs.to_operator(),
        recording_label: None,
        verbose: args.verbose,
        samples: args.samples,
        slo: args.slo.clone().map(|s| s.0),
    };
    let label = args.recording.display().to_string();
    let fleet = profile::analyze::fleet::analyze_fleet(&label, recs, &catalog, &config)
        .with_context(|| format!("analysing {label}"))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        out.write_all(profile::report::Json.render(&fleet)?.as_bytes())?;
    } else {
        let opts = TextOptions {
            color: args.color.decide(&out),
            verbose: args.verbose,
        };
        out.write_all(profile::report::fleet::render_fleet_summary(&fleet).as_bytes())?;
        for t in &fleet.targets {
            writeln!(out, "\n=== target {} ({}) ===\n", t.name, t.url)?;
            out.write_all(render_text_with(&t.report, opts).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Every target of a fleet, read but for its samples (the fleet analysis reads those one
/// target at a time).
pub(super) fn open_targets(
    targets: &[profile::recording::fleet::TargetDir],
) -> anyhow::Result<
    Vec<(
        profile::recording::fleet::TargetDir,
        profile::recording::Deferred,
    )>,
> {
    targets
        .iter()
        .map(|t| {
            let rec = profile::recording::open_deferred(&t.dir)
                .with_context(|| format!("reading target {} ({})", t.name, t.dir.display()))?;
            Ok((t.clone(), rec))
        })
        .collect()
}

/// `--window`: a positive duration, in integer ns.
fn parse_window(text: &str) -> Result<i64, String> {
    let ns = parse_duration_ns(text)?;
    if ns <= 0 {
        return Err(format!("{text:?}: the window must be longer than zero"));
    }
    Ok(ns)
}

/// `--from`/`--to`: an RFC 3339 time when it looks like a date, else an offset.
fn parse_bound(text: &str) -> Result<TimeBound, String> {
    let t = text.trim();
    if t.len() >= 10 && t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-' {
        parse_rfc3339(t).map(TimeBound::Wall)
    } else {
        parse_duration_ns(t).map(|ns| TimeBound::Offset(MonoNs(ns)))
    }
}

/// A duration in `record`'s syntax (`250ms`, `30s`, `1m30s`), as integer ns.
fn parse_duration_ns(text: &str) -> Result<i64, String> {
    let d = super::record::parse_duration(text)?;
    i64::try_from(d.as_nanos()).map_err(|_| format!("{text:?}: too long"))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` into ns since the Unix epoch.
pub(super) fn parse_rfc3339(t: &str) -> Result<WallNs, String> {
    let bad = |why: &str| format!("{t:?}: {why} (expected e.g. 2026-11-23T09:01:02Z)");
    let b = t.as_bytes();
    if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return Err(bad("not an RFC 3339 time"));
    }
    let field = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let s = &t[r];
        if s.chars().all(|c| c.is_ascii_digit()) {
            s.parse().map_err(|_| bad("bad number"))
        } else {
            Err(bad("bad number"))
        }
    };
    let (y, mo, d) = (field(0..4)?, field(5..7)?, field(8..10)?);
    let (h, mi, s) = (field(11..13)?, field(14..16)?, field(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(bad("field out of range"));
    }
    let mut rest = &t[19..];
    let mut frac_ns: i64 = 0;
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
        if n == 0 {
            return Err(bad("empty fraction"));
        }
        let digits = &r[..n.min(9)];
        frac_ns = digits.parse::<i64>().map_err(|_| bad("bad fraction"))?
            * 10_i64.pow(9 - digits.len() as u32);
        rest = &r[n..];
    }
    let offset_s: i64 = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(&rest[3..4], ":") => {
            let sign = match &rest[..1] {
                "+" => 1,
                "-" => -1,
                _ => return Err(bad("bad zone")),
            };
            let oh = field_of(&rest[1..3]).ok_or_else(|| bad("bad zone"))?;
            let om = field_of(&rest[4..6]).ok_or_else(|| bad("bad zone"))?;
            sign * (oh * 3600 + om * 60)
        }
        _ => return Err(bad("missing zone (Z or ±HH:MM)")),
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset_s;
    secs.checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac_ns))
        .map(WallNs)
        .ok_or_else(|| bad("out of range"))
}

fn field_of(s: &str) -> Option<i64> {
    s.chars()
        .all(|c| c.is_ascii_digit())
        .then(|| s.parse().ok())
        .flatten()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, the inverse of `units::civil_from_unix`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_integer_ns() {
        assert_eq!(parse_duration_ns("2s"), Ok(2_000_000_000));
        assert_eq!(parse_duration_ns("250ms"), Ok(250_000_000));
        assert_eq!(parse_duration_ns("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration_ns("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration_ns("0.1s"), Ok(100_000_000));
        assert_eq!(parse_duration_ns("1h"), Ok(3_600_000_000_000));
        assert!(parse_duration_ns("30").is_err());
        assert!(parse_duration_ns("s").is_err());
        assert!(parse_duration_ns("5 parsecs").is_err());
        assert!(parse_duration_ns("").is_err());
        assert!(parse_duration_ns("9999999999999999h").is_err());
        assert!(parse_window("0s").is_err());
    }

    #[test]
    fn rfc3339_round_trips_through_the_formatter() {
        let t = WallNs(1_795_424_462_345_000_000);
        assert_eq!(parse_rfc3339("2026-11-23T09:01:02.345Z"), Ok(t));
        assert_eq!(t.to_rfc3339_millis(), "2026-11-23T09:01:02.345Z");
        assert_eq!(parse_rfc3339("2026-11-23T10:01:02.345+01:00"), Ok(t));
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:00Z"),
            Ok(WallNs(0)),
            "epoch"
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z").map(|w| w.to_rfc3339_millis()),
            Ok("2000-02-29T00:00:00.000Z".to_string())
        );
        assert!(parse_rfc3339("2026-11-23T09:01:02").is_err());
        assert!(parse_rfc3339("2026-13-23T09:01:02Z").is_err());
        assert!(parse_rfc3339("2026-11-23X09:01:02Z").is_err());
    }

    #[test]
    fn bounds_pick_offset_or_wall_time() {
        assert_eq!(
            parse_bound("30s"),
            Ok(TimeBound::Offset(MonoNs(30_000_000_000)))
        );
        assert_eq!(
            parse_bound("1970-01-01T00:00:01Z"),
            Ok(TimeBound::Wall(WallNs(1_000_000_000)))
        );
        assert!(parse_bound("yesterday").is_err());
    }
}
