//! The report's data model: plain, serializable values, every missing figure an `Option`.
//!
//! The model owns its types rather than reusing the engine's (`CeilingEstimate`, `BytesSource`,
//! ...) so that the JSON schema changes only when this file does, and so that a report read
//! back from JSON is the same typed value ([`Report`] derives `Deserialize`). Sections are
//! separate structs and no struct denies unknown fields, so a section added later neither
//! breaks older readers nor, with `#[serde(default)]`, older files.
//!
//! One exception: the `diagnosis` section is the rules' own [`crate::rules::Diagnosis`].
//! That type was designed as output (serializable, numbers raw, no engine internals), `compare`
//! reads it back as the same type, and a mirror here would be a second copy to keep in step.
//! A change to `src/rules/model.rs` is therefore a change to this schema.

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
    /// What the rules R1-R5 concluded. Always present in a report `analyze` writes; `None`
    /// (JSON `null`, or the key missing in a file written before the rules existed) only for
    /// reports that did not run them. It always carries `not_fired`, with `-v` or without:
    /// the JSON is data, and only the text renderer decides how much of it to show.
    #[serde(default)]
    pub diagnosis: Option<crate::rules::Diagnosis>,
}

/// A value with where it came from (`--tensor-parallel-size (analyze)`, `VLLM_DTYPE
/// (recorded)`, `vllm:cache_config_info`, `NVML`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourcedValue<T> {
    /// The value.
    pub value: T,
    /// Where it came from.
    pub source: String,
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
    pub max_num_seqs: Option<SourcedValue<f64>>,
    /// vLLM's `--gpu-memory-utilization` (R4's `min_tp` assumes 0.90 without it).
    pub gpu_memory_utilization: Option<SourcedValue<f64>>,
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

/// What the two-tier gate said about one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowGate {
    /// No positive duration, or `running` missing.
    NotEvaluable,
    /// Evaluable, not under load.
    Idle,
    /// Under load by the spec's tier 2.
    Active,
    /// Active only by the no-GPU extension.
    ActiveNoGpuFallback,
}

impl WindowGate {
    /// The name used in text output.
    pub fn label(self) -> &'static str {
        match self {
            WindowGate::NotEvaluable => "not evaluable",
            WindowGate::Idle => "idle",
            WindowGate::Active => "active",
            WindowGate::ActiveNoGpuFallback => "active (no-GPU fallback)",
        }
    }
}

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
    pub gate: WindowGate,
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
    /// Preemptions per second.
    pub preemptions_per_s: Option<f64>,
    /// GPU utilisation, percent.
    pub gpu_util_pct: Option<f64>,
    /// GPU memory-controller utilisation, percent.
    pub gpu_mem_util_pct: Option<f64>,
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
}

// ---------------------------------------------------------------------------------------------
// Ceiling
// ---------------------------------------------------------------------------------------------

/// A catalog-derived ceiling with its band (spec, Design, "Physics ceiling as a range").
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Range {
    /// `expected × 0.85`.
    pub lower: f64,
    /// The formula's value.
    pub expected: f64,
    /// `expected × 1.05`.
    pub upper: f64,
}

/// The GPU catalog entry used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuEntry {
    /// Catalog id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// FP32 TFLOP/s (no tensor cores).
    pub fp32_tflops: Option<f64>,
    /// Memory bandwidth, GB/s.
    pub mem_bw_gbps: Option<f64>,
    /// On-demand price per GPU-hour, USD.
    pub on_demand_usd_per_hour: Option<f64>,
    /// Where the figures come from.
    pub source: String,
}

/// The model catalog entry used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// Catalog id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// All parameters, billions.
    pub total_params_b: Option<f64>,
    /// Parameters per token, billions.
    pub active_params_b: Option<f64>,
    /// Mixture of experts.
    pub moe: bool,
    /// Where the figures come from.
    pub source: String,
}

/// Which step of the spec's dtype chain decided bytes per parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DtypeSource {
    /// A `--dtype` flag (to `analyze`, or to `record`).
    Flag,
    /// The `DTYPE` environment variable, captured at record time.
    DtypeEnv,
    /// The `VLLM_DTYPE` environment variable, captured at record time.
    VllmDtypeEnv,
    /// The `cache_dtype` label of `vllm:cache_config_info`.
    KvCacheDtype,
    /// The model's catalog default.
    CatalogDefault,
    /// Nothing said: bf16 assumed.
    Bf16Fallback,
}

/// Bytes per parameter and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BytesPerParam {
    /// Bytes per parameter (1, 2 or 4).
    pub value: f64,
    /// The dtype name that decided it; `None` for the bf16 fallback.
    pub dtype: Option<String>,
    /// Which step of the chain decided it.
    pub source: DtypeSource,
    /// The exact origin, e.g. `VLLM_DTYPE (recorded)`.
    pub source_label: String,
}

/// Which step decided the tensor-parallel degree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TpSource {
    /// A `--tensor-parallel-size` flag (to `analyze`, or to `record`).
    Flag,
    /// `TENSOR_PARALLEL_SIZE`, captured at record time.
    TensorParallelSizeEnv,
    /// `VLLM_TENSOR_PARALLEL_SIZE`, captured at record time.
    VllmTensorParallelSizeEnv,
    /// Nothing said: 1 assumed.
    Default,
}

/// The tensor-parallel degree and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorParallel {
    /// The degree.
    pub value: u32,
    /// Which step decided it.
    pub source: TpSource,
    /// The exact origin.
    pub source_label: String,
}

/// The prefill ceiling's sequence length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeqLen {
    /// Tokens.
    pub tokens: u64,
    /// `prompt_tokens_mean` or `max_model_len`.
    pub source: String,
}

/// Efficiency % or why it is not shown (spec, Math / Efficiency %).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Efficiency {
    /// `actual / (decode ceiling × running) × 100`.
    Shown {
        /// The percentage, in (0, 100].
        pct: f64,
    },
    /// No decode ceiling (GPU or model not catalogued, or no peak figures).
    NoCeiling,
    /// No request running in active windows.
    NotRunning,
    /// No generation throughput.
    NoThroughput,
    /// Measured throughput above the aggregate ceiling: a catalog or measurement mismatch.
    ExceedsCeiling {
        /// Measured tokens/s.
        actual_tps: f64,
        /// Decode ceiling × running.
        aggregate_ceiling_tps: f64,
    },
}

impl Efficiency {
    /// The percentage, when shown.
    pub fn pct(&self) -> Option<f64> {
        match self {
            Efficiency::Shown { pct } => Some(*pct),
            _ => None,
        }
    }

    /// Why it is not shown, when it is not.
    pub fn reason(&self) -> Option<String> {
        Some(match self {
            Efficiency::Shown { .. } => return None,
            Efficiency::NoCeiling => "no decode ceiling (see the catalog entries above)".into(),
            Efficiency::NotRunning => "no request running in active windows".into(),
            Efficiency::NoThroughput => "no generation throughput in active windows".into(),
            Efficiency::ExceedsCeiling {
                actual_tps,
                aggregate_ceiling_tps,
            } => format!(
                "measured {actual_tps:.1} tok/s exceeds the aggregate ceiling \
                 {aggregate_ceiling_tps:.1} tok/s: a catalog or measurement mismatch \
                 (wrong GPU, model, dtype or tensor-parallel size?)"
            ),
        })
    }
}

/// The catalog-derived ceiling section. Every figure here is an estimate, shown `(est)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ceiling {
    /// Where the catalog came from (`embedded` or a directory).
    pub catalog: String,
    /// The NVML name looked up.
    pub gpu_name: Option<String>,
    /// The GPU entry it matched.
    pub gpu: Option<GpuEntry>,
    /// The served model name looked up.
    pub model_name: Option<String>,
    /// The model entry it matched.
    pub model: Option<ModelEntry>,
    /// Bytes per parameter.
    pub bytes_per_param: BytesPerParam,
    /// Tensor-parallel degree.
    pub tensor_parallel: TensorParallel,
    /// Parameters that bound the ceilings (active for MoE), absolute count.
    pub roofline_params: Option<f64>,
    /// Parameters in memory (total), absolute count.
    pub weight_params: Option<f64>,
    /// Per-request decode ceiling, tokens/s, tp-scaled.
    pub decode_tps: Option<Range>,
    /// Prefill sequence length.
    pub seq_len: Option<SeqLen>,
    /// Prefill ceiling by the spec's formula, per second; the divisor is the work of a whole
    /// `seq_len`-token prompt, so this counts prompts of that length per second.
    pub prefill_per_s: Option<Range>,
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
    pub vram_total_gb: Option<SourcedValue<f64>>,
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
}

// ---------------------------------------------------------------------------------------------
// Economics
// ---------------------------------------------------------------------------------------------

/// Which step decided the hourly cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CostSource {
    /// `--cost-per-hour` given to `analyze`.
    AnalyzeFlag,
    /// `--cost-per-hour` given to `record`, stored in the manifest.
    Recorded,
    /// The catalog's on-demand price per GPU × GPUs.
    CatalogOnDemand,
}

/// The hourly cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// USD per hour for the server's GPUs.
    pub usd_per_hour: f64,
    /// Which step decided it.
    pub source: CostSource,
    /// The exact origin, e.g. `catalog on-demand H100 SXM × 2 GPUs`.
    pub source_label: String,
    /// True for a catalog price (a market average).
    pub estimated: bool,
}

/// A money figure and whether it is an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Money {
    /// US dollars.
    pub usd: f64,
    /// Whether it rests on a catalog figure.
    pub estimated: bool,
}

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
