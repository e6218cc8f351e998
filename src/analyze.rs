//! The analysis engine's entry point: a recording, a catalog and plain options in, a
//! serializable [`Report`] out.
//!
//! [`analyze`] is a pure function: it reads no clock, no environment and no terminal, and it
//! iterates no `HashMap` into its output, so the same inputs always give the same report,
//! byte for byte once rendered, whatever the number of rayon threads (windows are computed in
//! parallel but collected in order). Everything the operator could have said at record time
//! (`-m`, `--tensor-parallel-size`, `--dtype`, `--cost-per-hour`) was captured in the
//! manifest; a value given here beats the manifest's, which keeps its own source label
//! (a flag to `record`, or an environment variable it read).
//!
//! The diagnosis is computed inside the report builder, right after the ceiling section,
//! because R4 must use the very tensor-parallel degree, bytes per parameter, weight size and
//! VRAM the ceiling used; `-m` given here beats the manifest's cap for the rules exactly as it
//! does for the report's `inputs`.
//!
//! The CLI (`src/cli/analyze.rs`) turns flags into an [`AnalyzeConfig`]; nothing here knows
//! about clap.

use crate::aggregate::aggregate;
use crate::catalog::Catalog;
use crate::recording::Recording;
use crate::report::Report;
use crate::vllm::resolve;
use crate::window::{build_windows_resolved, TimeBound, WindowError, WindowOptions};

pub use crate::window::DEFAULT_WINDOW_NS;

/// What `profile analyze` was asked for, as plain values.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalyzeConfig {
    /// Window length, ns (default 2 s).
    pub window_ns: i64,
    /// Analyse only scrapes and polls completed at or after this.
    pub from: Option<TimeBound>,
    /// Analyse only scrapes and polls completed at or before this.
    pub to: Option<TimeBound>,
    /// vLLM's `--max-num-seqs`, given at analysis time (beats the manifest's value; the
    /// `vllm:max_num_seqs` gauge, where a server exposes it, beats both, as the spec's
    /// Fallbacks table orders it).
    pub max_num_seqs: Option<u32>,
    /// Tensor-parallel degree, given at analysis time (beats the manifest's value).
    pub tensor_parallel_size: Option<u32>,
    /// Weight dtype (`bfloat16`, `fp8`, ...), given at analysis time (beats the manifest's).
    pub dtype: Option<String>,
    /// What the server's GPUs cost, dollars per hour in all (beats the manifest's value, which
    /// beats the catalog's on-demand price).
    pub cost_per_hour: Option<f64>,
    /// vLLM's `--gpu-memory-utilization`, when known from elsewhere (beats the
    /// `gpu_memory_utilization` label of `vllm:cache_config_info`).
    pub gpu_memory_utilization: Option<f64>,
    /// How the report names the recording (default: its directory as stored in `Recording`).
    /// Golden tests set it so that the output does not depend on where the checkout lives.
    pub recording_label: Option<String>,
    /// Add one row per window to the report. (The diagnosis is the same either way; how much
    /// of it the text shows is the renderer's `TextOptions::verbose`.)
    pub verbose: bool,
}

impl Default for AnalyzeConfig {
    fn default() -> Self {
        AnalyzeConfig {
            window_ns: DEFAULT_WINDOW_NS,
            from: None,
            to: None,
            max_num_seqs: None,
            tensor_parallel_size: None,
            dtype: None,
            cost_per_hour: None,
            gpu_memory_utilization: None,
            recording_label: None,
            verbose: false,
        }
    }
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
    #[error("invalid {name} {value}: {reason}")]
    InvalidInput {
        /// The flag or manifest field with its source, e.g. `--tensor-parallel-size (analyze)`.
        name: String,
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

/// Analyses a recording: windows, gates and aggregation, the catalog's ceilings, economics,
/// the rules' diagnosis (R1-R5, run on the same windows and aggregate, with the inputs the
/// ceiling section resolved), and the list of what could not be computed. Pure: see the
/// module header.
pub fn analyze(
    rec: &Recording,
    catalog: &Catalog,
    config: &AnalyzeConfig,
) -> Result<Report, AnalyzeError> {
    let resolved = resolve(&rec.series);
    let opts = WindowOptions {
        window_ns: config.window_ns,
        from: config.from,
        to: config.to,
    };
    let set = build_windows_resolved(rec, &resolved, &opts)?;
    let agg = aggregate(&set);
    crate::report::build(rec, &set, &agg, catalog, config)
}
