//! The one orchestrator: a recording, a catalog and plain options in, a serializable
//! [`Report`] out. Every stage is called from here, in the order data flows, and each only
//! returns a value to the next:
//!
//! ```text
//! recording -> metric mapping -> windows -> aggregate -> catalog match -> inputs -> ceiling
//!           -> economics -> rules -> Report
//! ```
//!
//! [`analyze`] is a pure function: it reads no clock, no environment and no terminal, and it
//! iterates no `HashMap` into its output, so the same inputs always give the same report,
//! byte for byte once rendered, whatever the number of rayon threads (windows are computed in
//! parallel but collected in order).
//!
//! The operator inputs (`-m`, `--tensor-parallel-size`, `--dtype`, `--gpu-memory-utilization`,
//! `--cost-per-hour`) are resolved once, by [`crate::inputs::resolve`], against what the
//! manifest recorded and what the server reported; the report's sections, the ceiling and the
//! rules all read that one [`ResolvedInputs`](crate::inputs::ResolvedInputs).
//!
//! - `sections`: the report's recording, inputs, windows and metrics sections.
//! - `ceiling`: catalog matching, the roofline section and economics.
//! - `diagnose`: the rules' inputs from the resolved inputs and the roofline, then the rules.
//! - then, when asked, the active windows as samples and the SLO assessment
//!   ([`crate::capacity`]).
//!
//! The CLI (`src/cli/analyze.rs`) turns flags into an [`AnalyzeConfig`]; nothing here knows
//! about clap, and `src/report/` only formats what this returns.

mod ceiling;
mod diagnose;
pub mod fleet;
mod sections;
#[cfg(test)]
mod tests;

use crate::aggregate::{aggregate, Aggregate, AggregateFold, KeptWindow};
use crate::availability;
use crate::capacity::{self, SloTarget};
use crate::catalog::Catalog;
use crate::inputs::{self, InputError, InputSources, OperatorInputs};
use crate::recording::{Deferred, ReadProgress, Recording, Scrape};
use crate::report::{Report, Unavailable, SCHEMA_VERSION};
use crate::units::{MonoNs, WallNs};
use crate::vllm::{resolve, HistKind};
use crate::window::{
    build_windows_resolved, build_windows_streaming, in_range, TimeBound, WindowError,
    WindowOptions, WindowSet,
};

pub use crate::window::DEFAULT_WINDOW_NS;

/// What `profile analyze` was asked for, as plain values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnalyzeConfig {
    /// Window length, ns; `None` for the recording's default ([`default_window_ns`]: 2 s, or
    /// 4 steps of an imported recording).
    pub window_ns: Option<i64>,
    /// Analyse only scrapes and polls completed at or after this.
    pub from: Option<TimeBound>,
    /// Analyse only scrapes and polls completed at or before this.
    pub to: Option<TimeBound>,
    /// What the operator said at analysis time (`-m`, `--tensor-parallel-size`, `--dtype`,
    /// `--gpu-memory-utilization`, `--cost-per-hour`); each beats the manifest's value, in
    /// the orders [`crate::inputs`] gives.
    pub inputs: OperatorInputs,
    /// How the report names the recording (default: its directory as stored in `Recording`).
    /// Golden tests set it so that the output does not depend on where the checkout lives.
    pub recording_label: Option<String>,
    /// Add one row per window to the report. (The diagnosis is the same either way; how much
    /// of it the text shows is the renderer's `TextOptions::verbose`.)
    pub verbose: bool,
    /// Put the active windows into the report as samples (its `samples` section), for
    /// `compare`'s intervals.
    pub samples: bool,
    /// Assess capacity under this latency target (the report's `slo` section).
    pub slo: Option<Vec<SloTarget>>,
}

/// Why a recording could not be analysed at all. Missing data is not an error: it shows up in
/// the report's `unavailable` list. Only unusable operator input and impossible windows are.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyzeError {
    /// Windows could not be built (non-positive length, absurd span).
    #[error(transparent)]
    Window(#[from] WindowError),
    /// An operator-given value (a flag, or a value the manifest recorded) is unusable.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A window shorter than two steps of an imported recording: a window then holds one
    /// step, and every rate rests on a single difference.
    #[error(
        "window {window_ms} ms is shorter than {IMPORT_MIN_WINDOW_STEPS} steps of this imported \
         recording (step {step_ms} ms); use --window {min_ms}ms or more"
    )]
    WindowBelowStep {
        /// The window asked for, ms.
        window_ms: i64,
        /// The recording's step, ms.
        step_ms: i64,
        /// The shortest window allowed, ms.
        min_ms: i64,
    },
}

/// Windows of an imported recording default to this many steps (60 s at the default 15 s
/// step). Ours: at 4 steps a window's rates rest on 4 differences and its time-weighted
/// means on 5 samples, while 1 h still gives 60 windows for the rules' significance gate.
pub const IMPORT_DEFAULT_WINDOW_STEPS: i64 = 4;

/// The shortest window allowed for an imported recording, in steps. Ours: a window of one
/// step holds two samples, its "peak" is one of them and its mean a guess.
pub const IMPORT_MIN_WINDOW_STEPS: i64 = 2;

/// The window length `analyze` uses for `rec` by default: [`DEFAULT_WINDOW_NS`] for a
/// recording, [`IMPORT_DEFAULT_WINDOW_STEPS`] steps (at least the default) for an import.
pub fn default_window_ns(rec: &Recording) -> i64 {
    match rec.manifest.import_step_ns() {
        Some(step) => step
            .saturating_mul(IMPORT_DEFAULT_WINDOW_STEPS)
            .max(DEFAULT_WINDOW_NS),
        None => DEFAULT_WINDOW_NS,
    }
}

/// The window in effect: the one asked for, or the default; refused when an imported
/// recording's window is below [`IMPORT_MIN_WINDOW_STEPS`] steps.
pub fn window_ns(rec: &Recording, asked: Option<i64>) -> Result<i64, AnalyzeError> {
    let Some(window) = asked else {
        return Ok(default_window_ns(rec));
    };
    if let Some(step) = rec.manifest.import_step_ns() {
        let min = step.saturating_mul(IMPORT_MIN_WINDOW_STEPS);
        if window < min {
            return Err(AnalyzeError::WindowBelowStep {
                window_ms: window / 1_000_000,
                step_ms: step / 1_000_000,
                min_ms: min / 1_000_000,
            });
        }
    }
    Ok(window)
}

/// Analyses a recording: windows, gates and aggregation, the resolved inputs, the catalog's
/// ceilings, economics, the rules' diagnosis (R1-R8, on the same windows and aggregate, with
/// the same inputs), and the list of what could not be computed. Pure: see the module header.
pub fn analyze(
    rec: &Recording,
    catalog: &Catalog,
    config: &AnalyzeConfig,
) -> Result<Report, AnalyzeError> {
    analyze_keeping_windows(rec, catalog, config).map(|(report, _)| report)
}

/// [`analyze`], also handing back the windows the report was built on (the fleet analysis
/// sets the targets' windows side by side).
pub fn analyze_keeping_windows(
    rec: &Recording,
    catalog: &Catalog,
    config: &AnalyzeConfig,
) -> Result<(Report, WindowSet), AnalyzeError> {
    let mapping = resolve(&rec.series);
    let opts = window_options(rec, config)?;
    let set = build_windows_resolved(rec, &mapping, &opts)?;
    let kept: Vec<KeptWindow> = set.windows.iter().map(KeptWindow::of).collect();
    let mut attempts = Attempts::new(rec, &opts);
    for s in &rec.scrapes {
        attempts.add(s);
    }
    let agg = aggregate(&set);
    let report = report_on(rec, &set, &kept, agg, attempts, &opts, catalog, config)?;
    Ok((report, set))
}

/// What the report reads of the scrape attempts themselves, folded from each attempt in
/// `seq` order as the window stage feeds them, so that no stage after it needs them all:
/// the attempts in range for the availability findings, and every attempt for the largest
/// disagreement of the two clocks.
struct Attempts {
    opts: WindowOptions,
    started_at_ns: i64,
    availability: availability::AvailabilityFold,
    clock_step_s: Option<f64>,
}

impl Attempts {
    fn new(rec: &Recording, opts: &WindowOptions) -> Attempts {
        Attempts {
            opts: opts.clone(),
            started_at_ns: rec.manifest.started_at_ns,
            availability: availability::AvailabilityFold::default(),
            clock_step_s: None,
        }
    }

    fn add(&mut self, s: &Scrape) {
        let d = sections::clock_disagreement_s(self.started_at_ns, &s.meta);
        self.clock_step_s = Some(self.clock_step_s.map_or(d, |m| m.max(d)));
        if in_range(
            &self.opts,
            WallNs(self.started_at_ns),
            s.meta.completed_mono,
        ) {
            self.availability.add(&s.meta);
        }
    }
}

/// The windows a report was built on: the set (holding its windows whole only where the report
/// needed them, see `keeps_windows`) and what is kept of every window.
#[derive(Debug)]
pub struct Analysed {
    /// The windows' set.
    pub set: WindowSet,
    /// What is kept of each window, in time order.
    pub kept: Vec<KeptWindow>,
}

/// [`analyze`] of a recording whose samples are not read yet: its windows are built as the
/// samples are read, a few segments at a time, so that memory holds the windows and the
/// scrapes' metadata but never the whole recording's samples; each window is folded into the
/// aggregate as it is computed, and its delta buckets are then dropped, but for those the
/// report still reads per window (TTFT and TPOT, with `samples` or `slo`). The report is
/// [`analyze`]'s on the same recording, byte for byte. The windows come back too (as
/// [`analyze_keeping_windows`] gives them, less those buckets), and the recording, without
/// samples.
pub fn analyze_deferred(
    mut deferred: Deferred,
    catalog: &Catalog,
    config: &AnalyzeConfig,
    progress: &dyn Fn(ReadProgress),
) -> Result<(Report, Analysed, Recording), AnalyzeError> {
    let mapping = resolve(&deferred.recording.series);
    let opts = window_options(&deferred.recording, config)?;
    let keep: &[HistKind] = if wants_series(config) {
        &capacity::BUCKETS_READ
    } else {
        &[]
    };
    let mut fold = AggregateFold::default();
    let mut kept: Vec<KeptWindow> = Vec::new();
    let mut attempts = Attempts::new(&deferred.recording, &opts);
    let set = build_windows_streaming(
        &mut deferred,
        &mapping,
        &opts,
        keeps_windows(config),
        progress,
        &mut |s| attempts.add(s),
        &mut |w| {
            fold.add(w);
            kept.push(KeptWindow::of(w));
            w.drop_buckets_except(keep);
        },
    )?;
    // What the reader kept for the load (the scrapes' `seq`s, the files' layouts) goes now,
    // before the report is assembled.
    let rec = deferred.into_recording();
    let agg = fold.finish(set.has_gpu_data);
    let report = report_on(&rec, &set, &kept, agg, attempts, &opts, catalog, config)?;
    Ok((report, Analysed { set, kept }, rec))
}

/// Whether the report holds the per-window series (`--samples`, or an SLO assessed on them).
fn wants_series(config: &AnalyzeConfig) -> bool {
    config.samples || config.slo.is_some()
}

/// Whether the report reads whole windows after the aggregate: its per-window rows
/// (`verbose`) and series do; the rules, the availability and the fleet's timeline read only
/// what is kept of every window ([`KeptWindow`]).
fn keeps_windows(config: &AnalyzeConfig) -> bool {
    config.verbose || wants_series(config)
}

fn window_options(rec: &Recording, config: &AnalyzeConfig) -> Result<WindowOptions, AnalyzeError> {
    Ok(WindowOptions {
        window_ns: window_ns(rec, config.window_ns)?,
        from: config.from,
        to: config.to,
    })
}

/// Every stage after the windows, their aggregate `agg` and what was folded of the scrape
/// attempts: availability, inputs, ceiling, economics, rules, capacity.
#[allow(clippy::too_many_arguments)]
fn report_on(
    rec: &Recording,
    set: &WindowSet,
    kept: &[KeptWindow],
    agg: Aggregate,
    attempts: Attempts,
    opts: &WindowOptions,
    catalog: &Catalog,
    config: &AnalyzeConfig,
) -> Result<Report, AnalyzeError> {
    let resets: Vec<MonoNs> = kept.iter().filter_map(|w| w.first_reset_mono).collect();
    let availability =
        attempts
            .availability
            .finish(rec.manifest.interval_ms, &resets, set.anchor_mono);

    // What could not be computed, in a fixed order: the sections', the catalog's, the inputs',
    // the ceiling's, then economics'.
    let mut catalog_notes: Vec<Unavailable> = Vec::new();
    let gpu = ceiling::match_gpu(rec, catalog, &mut catalog_notes);
    let model = ceiling::match_model(rec, catalog, &mut catalog_notes);
    let (resolved, notes) = inputs::resolve(&InputSources {
        operator: &config.inputs,
        recorded: &rec.manifest.analysis_inputs,
        max_num_seqs_gauge: agg.max_num_seqs,
        cache_config: &set.mapping.cache_config,
        model,
        gpu,
    })?;

    let mut un: Vec<Unavailable> = Vec::new();
    let recording = sections::recording_facts(rec, set, &agg, config, attempts.clock_step_s);
    let inputs = sections::inputs(set, &resolved, &mut un);
    let windows = sections::window_summary(set, &agg, config.verbose);
    let metrics = sections::metrics(&agg, &set.mapping);
    sections::explain_windows_and_gpu(rec, set, &windows, &agg, &mut un);
    sections::explain_import(rec, set, &mut un);
    un.append(&mut catalog_notes);
    un.extend(notes.into_iter().map(|n| Unavailable {
        what: n.what,
        why: n.why,
    }));
    let roof = ceiling::Roof::compute(rec, &agg, (gpu, model), &resolved);
    let ceiling = roof.section(rec, &agg, catalog, (gpu, model), &resolved, &mut un);
    let economics = ceiling::economics(&agg, &ceiling, &resolved, &mut un);
    let diagnosis = diagnose::diagnosis(
        set,
        kept,
        &agg,
        &diagnose::RuleContext {
            rec,
            catalog,
            gpu,
            model,
            inputs: &resolved,
            roof: &roof,
        },
    );
    let series = wants_series(config).then(|| capacity::series_of(set));
    let slo = match (&config.slo, &series) {
        (Some(targets), Some(s)) => Some(capacity::assess(&[(&recording.label, s)], targets)),
        _ => None,
    };
    let report = Report {
        schema_version: SCHEMA_VERSION.to_string(),
        recording,
        inputs,
        windows,
        metrics,
        ceiling,
        economics,
        unavailable: un,
        availability,
        diagnosis: Some(diagnosis),
        samples: series.filter(|_| config.samples),
        slo,
        host: crate::aggregate::host::summarize_where(rec, |m| {
            crate::window::in_range(opts, crate::units::WallNs(rec.manifest.started_at_ns), m)
        }),
    };
    Ok(report)
}
