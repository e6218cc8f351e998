//! `manifest.json`: the static facts of a recording, written atomically at start and rewritten
//! at a clean stop. Readers must cope with the start-time version alone (a killed recorder
//! never rewrites it).

use crate::gpu::GpuInfo;
use serde::{Deserialize, Serialize};

/// A value with where it came from, e.g. `--tensor-parallel-size` vs `TENSOR_PARALLEL_SIZE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it came from: a flag (`--max-num-seqs`) or an environment variable (`VLLM_DTYPE`).
    pub source: String,
}

impl<T> Sourced<T> {
    /// The same source with the value converted, e.g. a cap shown as the gauge's `f64`.
    pub fn map<U>(&self, f: impl FnOnce(&T) -> U) -> Sourced<U> {
        Sourced {
            value: f(&self.value),
            source: self.source.clone(),
        }
    }
}

/// The inputs that analysis takes from the operator rather than from the scrape, captured at
/// record time so that a recording analyzed later gives the same answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnalysisInputs {
    /// vLLM's `--max-num-seqs`, which no vLLM version exposes as a metric.
    pub max_num_seqs: Option<Sourced<u32>>,
    /// Tensor-parallel degree.
    pub tensor_parallel_size: Option<Sourced<u32>>,
    /// Model weight dtype (`bfloat16`, `fp8`, ...).
    pub dtype: Option<Sourced<String>>,
    /// What the GPUs cost, dollars per hour.
    pub cost_per_hour: Option<Sourced<f64>>,
    /// vLLM's `--gpu-memory-utilization` (a fraction); absent in recordings made before
    /// `record` took it.
    #[serde(default)]
    pub gpu_memory_utilization: Option<Sourced<f64>>,
}

/// The contents of `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Recording format version, `MAJOR.MINOR`. Readers refuse an unknown major.
    pub format_version: String,
    /// The version of `profile` that wrote the recording.
    pub tool_version: String,
    /// Wall clock at start, ns since the Unix epoch (UTC).
    pub started_at_ns: i64,
    /// The same, as RFC 3339 text, for humans.
    pub started_at: String,
    /// Wall clock at a clean stop; `None` while recording or after a crash.
    pub stopped_at_ns: Option<i64>,
    /// Why recording stopped (`duration`, `interrupt`, `terminate`), at a clean stop.
    pub stop_reason: Option<String>,
    /// The scraped URL.
    pub target_url: String,
    /// The host name of the machine that recorded.
    pub recorder_host: Option<String>,
    /// Scrape and poll interval, ms.
    pub interval_ms: u64,
    /// File rotation period, ms.
    pub rotate_ms: u64,
    /// vLLM version, from `GET /version` at start, when the server answered it.
    pub vllm_version: Option<String>,
    /// The served model name, from the first scrape's `model_name` label.
    pub model_name: Option<String>,
    /// Why no GPU was recorded, when none was (`--gpus none`, NVML unavailable, ...).
    pub gpu_note: Option<String>,
    /// NVIDIA driver version, when NVML was available.
    pub driver_version: Option<String>,
    /// The GPUs polled.
    pub gpus: Vec<GpuInfo>,
    /// Operator-given inputs for analysis.
    pub analysis_inputs: AnalysisInputs,
    /// Counts at a clean stop (absent otherwise).
    pub totals: Option<Totals>,
    /// Where an imported recording came from (`profile import prometheus`); absent for a
    /// recording `profile record` made. New in format 1.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportSource>,
    /// The targets of a multi-target (fleet) recording, each recorded into its own
    /// subdirectory; empty for a recording of one server. New in format 1.3.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<FleetTarget>,
    /// The process sampled from `/proc` (`record --pid`); absent when none was, and in every
    /// recording older than format 1.4: such a recording has no host sampling at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostTarget>,
}

/// The process `record --pid` sampled, and what happened to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostTarget {
    /// The PID given.
    pub pid: u32,
    /// Whether the processes below it were sampled too (`--children`).
    pub children: bool,
    /// Its command name at start (`comm`).
    pub comm: String,
    /// Its start time after boot, clock ticks (identifies it across PID reuse).
    pub start_ticks: u64,
    /// The unit of every `*_ticks` column, ticks per second.
    pub clock_ticks_per_s: u64,
    /// Wall clock when the recorder found the process gone, ns since the Unix epoch; `None`
    /// while it ran to the end. Written into the manifest at once (a recorded event).
    #[serde(default)]
    pub exited_at_ns: Option<i64>,
    /// The same on the recording's monotonic clock, ns since the start.
    #[serde(default)]
    pub exited_mono_ns: Option<i64>,
}

/// One server of a fleet recording, as listed in the fleet's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetTarget {
    /// Position in the fleet, from 0; also the stem of its directory.
    pub id: u32,
    /// The name it was given (or derived from its URL's host and port).
    pub name: String,
    /// The scraped URL.
    pub url: String,
    /// Its directory, relative to the fleet's: a complete recording of this target alone.
    pub dir: String,
    /// Its operator-given inputs (command-line flags merged under the target's own).
    pub analysis_inputs: AnalysisInputs,
}

impl Manifest {
    /// The step of an imported recording, ns: the resolution its samples were taken at.
    /// `None` for a recording made by `profile record`.
    pub fn import_step_ns(&self) -> Option<i64> {
        let step = self.import.as_ref()?.step_ms;
        i64::try_from(step).ok()?.checked_mul(1_000_000)
    }
}

/// The provenance of a recording imported from a metrics server rather than recorded: which
/// server, which series, at which step, over which range. Stored in `manifest.import`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportSource {
    /// The kind of server: `prometheus` (the Prometheus HTTP API, also served by
    /// VictoriaMetrics, Thanos and Mimir).
    pub source: String,
    /// The server's base URL (`http://host:9090`), without credentials.
    pub server_url: String,
    /// The selector the vLLM series were found with, as sent (`{__name__=~"vllm:.+",...}`).
    pub selector: String,
    /// The `job` label of the imported instance, as Prometheus attached it.
    pub job: Option<String>,
    /// The `instance` label of the imported instance.
    pub instance: Option<String>,
    /// The query step, ms: one scrape row per step.
    pub step_ms: u64,
    /// First step of the range, ns since the Unix epoch (UTC).
    pub range_from_ns: i64,
    /// Last step asked for, ns since the Unix epoch (UTC).
    pub range_to_ns: i64,
    /// The selectors the GPU (DCGM exporter) series were read with; empty when none matched.
    #[serde(default)]
    pub gpu_selectors: Vec<String>,
    /// Families whose type the server's metadata did not give, with the type inferred from
    /// the sample names (`_bucket` with `le`: histogram; `_total`: counter; else gauge).
    #[serde(default)]
    pub inferred_types: Vec<String>,
    /// Set when the import stopped before the end: the range not imported and why. The
    /// segments written before it are complete and readable.
    #[serde(default)]
    pub incomplete: Option<String>,
}

/// Counts written into the manifest at a clean stop, for a quick look without reading Parquet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Scrape attempts.
    pub scrapes: u64,
    /// Failed scrape attempts.
    pub scrapes_failed: u64,
    /// GPU poll rounds (one round polls every device).
    pub gpu_polls: u64,
    /// Samples stored.
    pub samples: u64,
    /// Bytes of Parquet written.
    pub bytes_written: u64,
}
