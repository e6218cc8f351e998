//! The report's data model: plain, serializable values, every missing figure an `Option`.
//!
//! The report holds the engine's own result types where one exists (the catalog entries, the
//! ceiling band, efficiency, the resolved inputs, the window gate, money, the rules'
//! diagnosis): each derives `Serialize` and `Deserialize` itself, so there is one definition
//! and no converter. What is defined here is what only the report has: the sections, the
//! recording facts and the aggregate measurements in display units (ms, GB). A change to one
//! of the borrowed types is therefore a change to this schema. No struct denies unknown
//! fields, so a section added later neither breaks older readers nor, with
//! `#[serde(default)]`, older files.
//!
//! This module imports types only, never a stage's function (a test checks it): the report is
//! built in [`crate::analyze`] and only formatted here.

pub use crate::aggregate::Gate;
pub use crate::availability::{AvailabilityFinding, AvailabilityKind};
pub use crate::catalog::economics::Money;
pub use crate::catalog::roofline::{CeilingEstimate, Efficiency};
pub use crate::catalog::{GpuSpec, ModelSpec};
pub use crate::inputs::{
    BytesPerParam, Cost, CostSource, DtypeSource, Sourced, TensorParallel, TpSource,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the report's JSON schema. Bump it when a field changes meaning or is removed;
/// adding an optional field or section does not need a bump.
pub const SCHEMA_VERSION: &str = "1";

/// Everything `profile analyze` found in one recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`] at the time of writing.
    pub schema_version: String,
    /// What was analysed.
    pub recording: RecordingFacts,
    /// Operator inputs and server configuration, each with where it came from.
    pub inputs: Inputs,
    /// How the recording was cut into windows, and which windows counted.
    pub windows: WindowSummary,
    /// The aggregated measurements.
    pub metrics: Metrics,
    /// The catalog-derived hardware ceiling and how far below it the server ran.
    pub ceiling: Ceiling,
    /// Energy and money.
    pub economics: Economics,
    /// Everything that could not be computed, and why, in a fixed order.
    pub unavailable: Vec<Unavailable>,
    /// What the rules R1-R8 concluded. Always present in a report `analyze` writes; `None`
    /// (JSON `null`, or the key missing in a file written before the rules existed) only for
    /// reports that did not run them. It always carries `not_fired`, with `-v` or without:
    /// the JSON is data, and only the text renderer decides how much of it to show.
    #[serde(default)]
    pub diagnosis: Option<crate::rules::Diagnosis>,
    /// Whether the endpoint answered at all: outages, restarts, slow answers. These rank
    /// above the diagnosis (every figure rests on the scrapes that succeeded). Empty, and left
    /// out of the JSON, when the endpoint answered throughout.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub availability: Vec<AvailabilityFinding>,
    /// The active windows as samples (rates, running/waiting means, TTFT/TPOT delta buckets),
    /// which `compare` resamples for its intervals. Only when asked (`analyze --samples`;
    /// `compare` and `diagnose` ask), so a plain report's JSON is as it was; a report
    /// without it compares with no interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<crate::capacity::WindowSeries>,
    /// Capacity under the latency target of `analyze --slo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<crate::capacity::SloAssessment>,
    /// The process `record --pid` sampled; left out of the JSON when the recording has no
    /// host sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<crate::aggregate::host::HostSummary>,
}

/// One thing the report could not compute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unavailable {
    /// What is missing, as the text report names it.
    pub what: String,
    /// Why, naming the metric (with its aliases), the catalog entry or the input that was
    /// missing.
    pub why: String,
}

// ---------------------------------------------------------------------------------------------
// Recording
// ---------------------------------------------------------------------------------------------

/// The recording and the part of it that was analysed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordingFacts {
    /// How the recording is named (its directory, or a label the caller chose).
    pub label: String,
    /// The scraped URL.
    pub target_url: String,
    /// vLLM version, from the manifest.
    pub vllm_version: Option<String>,
    /// The served model name vLLM reported.
    pub model_name: Option<String>,
    /// Recording start, RFC 3339 UTC, from the manifest.
    pub started_at: String,
    /// `--from`, as understood (`offset 30.000 s` or an RFC 3339 time).
    pub range_from: Option<String>,
    /// `--to`, as understood.
    pub range_to: Option<String>,
    /// Completion time of the first good scrape analysed, RFC 3339 UTC.
    pub first_scrape_at: Option<String>,
    /// Completion time of the last good scrape analysed, RFC 3339 UTC.
    pub last_scrape_at: Option<String>,
    /// First to last good scrape analysed, seconds (monotonic).
    pub span_s: Option<f64>,
    /// Scrape attempts in range.
    pub scrapes_total: u64,
    /// Successful scrapes in range.
    pub scrapes_ok: u64,
    /// Failed scrapes in range.
    pub scrapes_failed: u64,
    /// GPUs in the manifest.
    pub gpu_count: u32,
    /// The GPUs, in NVML index order.
    pub gpus: Vec<GpuFact>,
    /// Why no GPU was recorded, when none was.
    pub gpu_note: Option<String>,
    /// Data-parallel ranks (`engine` label values) seen.
    pub engines: Vec<String>,
    /// Files of the recording that could not be read (whole or in part).
    pub damaged_files: Vec<DamagedFile>,
    /// What was lost or repaired on the way in, one sentence each, for the top of every
    /// rendering: empty bodies and scrapes whose samples were lost (counted as failed),
    /// damaged files, series sent twice, counter resets. Empty for an intact recording.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_warnings: Vec<String>,
}

/// One GPU as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuFact {
    /// NVML index.
    pub index: u32,
    /// NVML product name.
    pub name: Option<String>,
    /// Total memory, GB (1e9 bytes).
    pub vram_total_gb: Option<f64>,
}

/// A recording file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DamagedFile {
    /// File name within the recording.
    pub name: String,
    /// What went wrong.
    pub problem: String,
}

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

/// Operator inputs and server configuration that rules and ceilings depend on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inputs {
    /// The concurrency cap: the `vllm:max_num_seqs` gauge, else `-m` at analysis, else the
    /// value recorded. Absent means rules R1 and R5 stay silent.
    pub max_num_seqs: Option<Sourced<f64>>,
    /// vLLM's `--gpu-memory-utilization` (R4's `min_tp` assumes 0.90 without it).
    pub gpu_memory_utilization: Option<Sourced<f64>>,
    /// The `vllm:cache_config_info` labels (`cache_dtype`, `enable_prefix_caching`, ...).
    pub cache_config: BTreeMap<String, String>,
    /// Which metric served each quantity (`None` when missing), in the alias table's order.
    pub metrics_used: Vec<MetricUsed>,
}

/// Which metric name served one quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricUsed {
    /// The quantity, in snake case (`tpot`, `kv_cache_usage`, ...).
    pub quantity: String,
    /// The metric used; `None` when no candidate was in the recording.
    pub metric: Option<String>,
    /// Every candidate, in order of preference.
    pub candidates: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Windows
// ---------------------------------------------------------------------------------------------

/// How the recording was cut, and which windows counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowSummary {
    /// Window length, seconds.
    pub window_s: f64,
    /// Windows listed, empty ones included.
    pub total: u32,
    /// Windows passing tier 1 (structurally valid).
    pub evaluable: u32,
    /// Windows passing tier 2 (under load), the no-GPU extension included.
    pub active: u32,
    /// Of those, windows active only through the no-GPU extension.
    pub active_no_gpu_fallback: u32,
    /// Whether the recording holds any GPU reading.
    pub has_gpu_data: bool,
    /// Whether the no-GPU extension made any window active.
    pub no_gpu_fallback: bool,
    /// What that extension means, when it was used.
    pub no_gpu_fallback_note: Option<String>,
    /// No window is evaluable; `last_raw_window` then describes the last one.
    pub all_non_evaluable: bool,
    /// The chronologically last window, when no window is evaluable (labelled as such).
    pub last_raw_window: Option<WindowRow>,
    /// Σ duration of active windows, seconds.
    pub active_duration_s: Option<f64>,
    /// Σ duration of evaluable windows, seconds.
    pub evaluable_duration_s: Option<f64>,
    /// One row per window; only with `verbose`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<WindowRow>,
}

/// One window, briefly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowRow {
    /// Position from 0.
    pub index: u32,
    /// Nominal start, seconds after the first analysed scrape.
    pub start_s: f64,
    /// First to last good scrape, seconds.
    pub duration_s: Option<f64>,
    /// What the gate said.
    pub gate: Gate,
    /// Good scrapes used (the shared boundary scrape included).
    pub scrapes_ok: u32,
    /// Failed scrapes skipped.
    pub scrapes_failed: u32,
    /// Requests running at the last scrape.
    pub running: Option<f64>,
    /// Requests waiting at the last scrape.
    pub waiting: Option<f64>,
    /// KV-cache usage at the last scrape, percent.
    pub kv_cache_pct: Option<f64>,
    /// Generated tokens per second.
    pub generation_tokens_per_s: Option<f64>,
    /// Mean GPU utilisation, percent.
    pub gpu_util_pct: Option<f64>,
    // The timeline series (the HTML report's charts). Added after schema 1 was written, so
    // each is optional on read and left out of the JSON when absent.
    /// Requests running, time-weighted mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_mean: Option<f64>,
    /// Requests waiting, time-weighted mean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_mean: Option<f64>,
    /// The `vllm:max_num_seqs` gauge at the last scrape, where the server exposes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_num_seqs: Option<f64>,
    /// KV-cache usage, time-weighted mean, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_cache_pct_mean: Option<f64>,
    /// Highest KV-cache usage, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_cache_peak_pct: Option<f64>,
    /// Preemptions in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preemptions: Option<f64>,
    /// TTFT p99 of the window's delta buckets, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_p99_ms: Option<f64>,
    /// TPOT p99 of the window's delta buckets, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot_p99_ms: Option<f64>,
    /// Prefix-cache hits / queries, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_cache_hit_pct: Option<f64>,
    /// Mean power of all GPUs, watts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_w: Option<f64>,
    /// Highest VRAM in use (fullest GPU), MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vram_used_mib: Option<f64>,
    /// VRAM total (smallest GPU), MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vram_total_mib: Option<f64>,
    /// CPU of the `record --pid` process itself, cores (CPU seconds per second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_cpu_cores: Option<f64>,
    /// Mean GPM SM activity, percent (GPUs with GPM only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_sm_active_pct: Option<f64>,
    /// Mean GPM SM occupancy, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_sm_occupancy_pct: Option<f64>,
    /// Mean GPM DRAM bandwidth use, percent of peak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_dram_bw_util_pct: Option<f64>,
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

/// One latency (or length) histogram, aggregated over its window set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// The metric read (e.g. which TPOT histogram); `None` when absent.
    pub metric: Option<String>,
    /// ΣΔsum/ΣΔcount, ms.
    pub mean_ms: Option<f64>,
    /// q=0.99 of the merged delta buckets, ms.
    pub p99_ms: Option<f64>,
    /// Whether the mean is the last window's cumulative mean (no new observation in range).
    pub mean_is_cumulative: bool,
    /// Observations counted (ΣΔcount).
    pub observations: Option<f64>,
}

/// Server totals, from the chronologically last scrape analysed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Generated tokens.
    pub generation_tokens: Option<f64>,
    /// Prompt tokens.
    pub prompt_tokens: Option<f64>,
    /// Finished requests.
    pub requests: Option<f64>,
    /// Preemptions.
    pub preemptions: Option<f64>,
}

/// The aggregated measurements (spec, Math / Aggregation). Rates, means of running/waiting,
/// latencies and GPU means cover active windows; KV, prefix hit rate, peaks and state gauges
/// cover evaluable windows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Generated tokens per second.
    pub generation_tokens_per_s: Option<f64>,
    /// Prompt tokens per second.
    pub prompt_tokens_per_s: Option<f64>,
    /// Finished requests per second.
    pub requests_per_s: Option<f64>,
    /// Requests running, time-weighted mean.
    pub running_mean: Option<f64>,
    /// Requests waiting, time-weighted mean.
    pub waiting_mean: Option<f64>,
    /// Time to first token.
    pub ttft: Latency,
    /// Time per output token (see `metric` for which histogram).
    pub tpot: Latency,
    /// Inter-token latency.
    pub itl: Latency,
    /// Prefill time.
    pub prefill: Latency,
    /// Queue time.
    pub queue: Latency,
    /// End-to-end request latency.
    pub e2e: Latency,
    /// Mean prompt length, tokens.
    pub prompt_tokens_mean: Option<f64>,
    /// KV-cache usage, time-weighted mean, percent.
    pub kv_cache_pct_mean: Option<f64>,
    /// Highest KV-cache usage, percent.
    pub kv_cache_peak_pct: Option<f64>,
    /// KV-cache usage at the last evaluable scrape, percent.
    pub kv_cache_pct_last: Option<f64>,
    /// Prefix-cache hits / queries, percent.
    pub prefix_cache_hit_pct: Option<f64>,
    /// Prompt tokens the engine computed per second, cache hits excluded (vLLM >= 0.18).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_computed_per_s: Option<f64>,
    /// Share of prompt tokens served from a cache, percent (vLLM >= 0.18).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_cached_pct: Option<f64>,
    /// Preemptions per second.
    pub preemptions_per_s: Option<f64>,
    /// GPU utilisation, percent.
    pub gpu_util_pct: Option<f64>,
    /// GPU memory-controller utilisation, percent.
    pub gpu_mem_util_pct: Option<f64>,
    /// GPM SM activity: percent of the time the SMs had a warp assigned, all GPUs (Hopper and
    /// newer; absent elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_sm_active_pct: Option<f64>,
    /// GPM SM occupancy: resident warps as a percent of the SMs' maximum, all GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_sm_occupancy_pct: Option<f64>,
    /// GPM DRAM bandwidth use, percent of the GPUs' peak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_dram_bw_util_pct: Option<f64>,
    /// Power draw of all GPUs, watts.
    pub power_w: Option<f64>,
    /// VRAM in use at the last evaluable poll (fullest GPU), MiB.
    pub vram_used_mib: Option<f64>,
    /// VRAM total (smallest GPU), MiB.
    pub vram_total_mib: Option<f64>,
    /// Highest VRAM in use, MiB.
    pub vram_peak_mib: Option<f64>,
    /// GPU temperature at the last evaluable poll (hottest GPU), °C.
    pub temperature_c: Option<f64>,
    /// Highest GPU temperature, °C.
    pub temperature_peak_c: Option<f64>,
    /// SM clock at the last evaluable poll, MHz.
    pub sm_clock_mhz: Option<f64>,
    /// Server totals.
    pub totals: Totals,
    /// The same figures per data-parallel engine (`engine` label), with two or more engines:
    /// the sums above hide one rank preempting while another idles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_engine: Vec<EngineRow>,
}

/// One data-parallel engine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineRow {
    /// The `engine` label value.
    pub engine: String,
    /// Requests running, time-weighted mean (active windows).
    pub running_mean: Option<f64>,
    /// Requests waiting, time-weighted mean (active windows).
    pub waiting_mean: Option<f64>,
    /// Highest KV-cache usage, percent.
    pub kv_cache_peak_pct: Option<f64>,
    /// Preemptions seen.
    pub preemptions: Option<f64>,
}

// ---------------------------------------------------------------------------------------------
// Ceiling
// ---------------------------------------------------------------------------------------------

/// The prefill ceiling's sequence length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeqLen {
    /// Tokens.
    pub tokens: u64,
    /// `prompt_tokens_mean` or `max_model_len`.
    pub source: String,
}

/// The catalog-derived ceiling section. Every figure here is an estimate, shown `(est)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ceiling {
    /// Where the catalog came from (`embedded` or a directory).
    pub catalog: String,
    /// The NVML name looked up.
    pub gpu_name: Option<String>,
    /// The GPU entry it matched.
    pub gpu: Option<GpuSpec>,
    /// The served model name looked up.
    pub model_name: Option<String>,
    /// The model entry it matched.
    pub model: Option<ModelSpec>,
    /// Bytes per parameter.
    pub bytes_per_param: BytesPerParam,
    /// Tensor-parallel degree.
    pub tensor_parallel: TensorParallel,
    /// Parameters that bound the ceilings (active for MoE), absolute count.
    pub roofline_params: Option<f64>,
    /// Parameters in memory (total), absolute count.
    pub weight_params: Option<f64>,
    /// Per-request decode ceiling, tokens/s, tp-scaled.
    pub decode_tps: Option<CeilingEstimate>,
    /// Prefill sequence length.
    pub seq_len: Option<SeqLen>,
    /// Prefill ceiling by the spec's formula, per second; the divisor is the work of a whole
    /// `seq_len`-token prompt, so this counts prompts of that length per second.
    pub prefill_per_s: Option<CeilingEstimate>,
    /// Batch size where decode turns compute-bound.
    pub ridge_batch_size: Option<f64>,
    /// Decode ceiling (expected) × running mean, tokens/s.
    pub aggregate_ceiling_tps: Option<f64>,
    /// Efficiency % or why not.
    pub efficiency: Efficiency,
    /// `100 − min(efficiency, 100)`.
    pub headroom_pct: Option<f64>,
    /// Weights across all GPUs, GB.
    pub weight_gb: Option<f64>,
    /// Memory per GPU, GB (smallest GPU).
    pub vram_total_gb: Option<Sourced<f64>>,
    /// VRAM per GPU left after its share of the weights, GB; negative: weights do not fit.
    pub kv_headroom_gb: Option<f64>,
    /// VRAM per GPU vLLM may give to weights (R4), GB.
    pub usable_vram_gb: Option<f64>,
    /// Least tensor-parallel degree whose weight share fits (R4).
    pub min_tp: Option<u32>,
    /// `1000 / decode ceiling`, ms.
    pub tpot_floor_ms: Option<f64>,
    /// `1000 / prefill ceiling`, ms.
    pub prefill_floor_ms: Option<f64>,
    /// The prefill floor is hidden because running ≥ ridge batch size.
    pub prefill_floor_suppressed: bool,
    /// vLLM's own estimate of compute per GPU (`--enable-mfu-metrics`), TFLOP/s: measured,
    /// beside the catalog's ceiling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_tflops_per_gpu: Option<f64>,
    /// vLLM's estimated bytes read per GPU against the catalog's memory bandwidth, percent: a
    /// measured bandwidth use (MBU) beside the bandwidth-bound decode ceiling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_mbu_pct: Option<f64>,
    /// The DRAM bandwidth NVML's GPM measured in use, percent of the GPUs' peak (active
    /// windows), beside the bandwidth-bound decode ceiling, which assumes all of it; only
    /// when both exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_dram_bw_util_pct: Option<f64>,
}

// ---------------------------------------------------------------------------------------------
// Economics
// ---------------------------------------------------------------------------------------------

/// Energy and money (spec, Math / Economics).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Economics {
    /// Generated tokens per joule (tok/s per W).
    pub tokens_per_watt: Option<f64>,
    /// Joules per generated token.
    pub joules_per_token: Option<f64>,
    /// Hourly cost.
    pub cost_per_hour: Option<Cost>,
    /// USD per million generated tokens.
    pub usd_per_million_tokens: Option<Money>,
    /// USD per hour spent on unused decode ceiling; always an estimate, since efficiency is.
    pub recoverable_usd_per_hour: Option<Money>,
}
