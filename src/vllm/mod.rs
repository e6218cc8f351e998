//! vLLM's metric names, their aliases across versions, and the per-scrape extraction of the
//! quantities analysis needs.
//!
//! vLLM renamed several metrics between 0.6 and 0.33 (see `shared/reference/vllm-metrics.md`),
//! so each quantity is looked up through an explicit, ordered list of candidate names, each
//! tagged with the vLLM versions that emit it. Where the spec and a real vLLM disagree, the
//! real vLLM wins and the alias is written down here.
//!
//! Names are matched on the *sample* name together with the family's declared type, never on
//! the family name alone: an OpenMetrics body (vLLM 0.6-0.7) declares a counter family
//! `vllm:num_preemptions` whose samples are `vllm:num_preemptions_total`, and
//! `vllm:iteration_tokens_total` is a histogram despite its suffix.
//!
//! Work is split so that the hot loop does no string work: [`resolve`] maps every series of a
//! recording to a role once, and [`Resolved::extract`] then walks one scrape's samples and
//! dispatches on that role by index.

mod extract;
mod resolve;
#[cfg(test)]
pub(crate) mod testutil;

pub use extract::ScrapeValues;
pub use resolve::{
    may_have_role, resolve, CounterKind, HistKind, QuantityStatus, Resolved, VllmMapping,
};

use serde::Serialize;

/// Metric names as vLLM puts them on the wire (text format 0.0.4: counters with `_total`).
pub mod names {
    /// Gauge: requests running on the GPU.
    pub const NUM_REQUESTS_RUNNING: &str = "vllm:num_requests_running";
    /// Gauge: requests queued, not yet scheduled.
    pub const NUM_REQUESTS_WAITING: &str = "vllm:num_requests_waiting";
    /// Gauge: requests swapped to CPU (V0 only).
    pub const NUM_REQUESTS_SWAPPED: &str = "vllm:num_requests_swapped";
    /// Gauge: KV-cache fill, fraction 0-1 (>= 0.10).
    pub const KV_CACHE_USAGE_PERC: &str = "vllm:kv_cache_usage_perc";
    /// Gauge: KV-cache fill, fraction 0-1 (older name, <= 0.11).
    pub const GPU_CACHE_USAGE_PERC: &str = "vllm:gpu_cache_usage_perc";
    /// Gauge: the concurrency cap. No released vLLM emits it (checked up to 0.33).
    pub const MAX_NUM_SEQS: &str = "vllm:max_num_seqs";
    /// Gauge = 1 whose labels are the cache configuration.
    pub const CACHE_CONFIG_INFO: &str = "vllm:cache_config_info";
    /// Counter: generated tokens.
    pub const GENERATION_TOKENS_TOTAL: &str = "vllm:generation_tokens_total";
    /// Histogram (despite the suffix): tokens per engine iteration.
    pub const ITERATION_TOKENS_TOTAL: &str = "vllm:iteration_tokens_total";
    /// Counter: prompt tokens.
    pub const PROMPT_TOKENS_TOTAL: &str = "vllm:prompt_tokens_total";
    /// Counter: prompt tokens by where their KV came from (`source` = `local_compute`,
    /// `local_cache_hit`, `external_kv_transfer`; >= 0.18).
    pub const PROMPT_TOKENS_BY_SOURCE_TOTAL: &str = "vllm:prompt_tokens_by_source_total";
    /// Counter: prompt tokens served from a cache rather than computed (>= 0.18).
    pub const PROMPT_TOKENS_CACHED_TOTAL: &str = "vllm:prompt_tokens_cached_total";
    /// Counter: finished requests, labelled by `finished_reason`.
    pub const REQUEST_SUCCESS_TOTAL: &str = "vllm:request_success_total";
    /// Counter: preemptions.
    pub const NUM_PREEMPTIONS_TOTAL: &str = "vllm:num_preemptions_total";
    /// Counter: vLLM's estimate of floating-point operations per GPU (`--enable-mfu-metrics`).
    pub const ESTIMATED_FLOPS_PER_GPU_TOTAL: &str = "vllm:estimated_flops_per_gpu_total";
    /// Counter: vLLM's estimate of bytes read from GPU memory per GPU (`--enable-mfu-metrics`).
    pub const ESTIMATED_READ_BYTES_PER_GPU_TOTAL: &str = "vllm:estimated_read_bytes_per_gpu_total";
    /// Gauge: requests waiting, by `reason` (`capacity`, `deferred`).
    pub const NUM_REQUESTS_WAITING_BY_REASON: &str = "vllm:num_requests_waiting_by_reason";
    /// Gauge: the engine's sleep state, one series per `sleep_state`.
    pub const ENGINE_SLEEP_STATE: &str = "vllm:engine_sleep_state";
    /// Counter: CPU seconds of the process serving `/metrics` (vLLM's API server), from the
    /// Prometheus client's process collector.
    pub const PROCESS_CPU_SECONDS_TOTAL: &str = "process_cpu_seconds_total";
    /// Counter: prefix-cache hits (>= 0.10; tokens).
    pub const PREFIX_CACHE_HITS_TOTAL: &str = "vllm:prefix_cache_hits_total";
    /// Counter: prefix-cache queries (>= 0.10; tokens).
    pub const PREFIX_CACHE_QUERIES_TOTAL: &str = "vllm:prefix_cache_queries_total";
    /// Counter: prefix-cache hits, older V1 name (0.7-0.11; blocks before 0.9, tokens after).
    pub const GPU_PREFIX_CACHE_HITS_TOTAL: &str = "vllm:gpu_prefix_cache_hits_total";
    /// Counter: prefix-cache queries, older V1 name.
    pub const GPU_PREFIX_CACHE_QUERIES_TOTAL: &str = "vllm:gpu_prefix_cache_queries_total";
    /// Histogram: time to first token, seconds.
    pub const TIME_TO_FIRST_TOKEN_SECONDS: &str = "vllm:time_to_first_token_seconds";
    /// Histogram: per-request decode time per output token, seconds (>= 0.11).
    pub const REQUEST_TIME_PER_OUTPUT_TOKEN_SECONDS: &str =
        "vllm:request_time_per_output_token_seconds";
    /// Histogram: per-step inter-token gap, seconds (<= 0.10; hidden 0.12-0.13; gone 0.18).
    pub const TIME_PER_OUTPUT_TOKEN_SECONDS: &str = "vllm:time_per_output_token_seconds";
    /// Histogram: per-step inter-token gap, seconds (>= 0.11).
    pub const INTER_TOKEN_LATENCY_SECONDS: &str = "vllm:inter_token_latency_seconds";
    /// Histogram: prefill time per request, seconds.
    pub const REQUEST_PREFILL_TIME_SECONDS: &str = "vllm:request_prefill_time_seconds";
    /// Histogram: queue time per request, seconds.
    pub const REQUEST_QUEUE_TIME_SECONDS: &str = "vllm:request_queue_time_seconds";
    /// Histogram: prompt length per request, tokens.
    pub const REQUEST_PROMPT_TOKENS: &str = "vllm:request_prompt_tokens";
    /// Histogram: end-to-end latency per request, seconds.
    pub const E2E_REQUEST_LATENCY_SECONDS: &str = "vllm:e2e_request_latency_seconds";
    /// Label naming the data-parallel rank (V1 >= 0.8.5).
    pub const ENGINE_LABEL: &str = "engine";
}

/// How a candidate metric is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// A gauge sample named exactly as the candidate.
    Gauge,
    /// A counter: the sample is the candidate name (with `_total`), or the same without
    /// `_total` (legacy exporters).
    Counter,
    /// A histogram family: samples `<name>_bucket`, `<name>_sum`, `<name>_count`.
    Histogram,
    /// Only the `_sum` sample of a histogram family, read as a counter.
    HistogramSum,
    /// A gauge read for its labels only.
    Info,
}

/// One candidate metric for a quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MetricName {
    /// The wire name (for histograms, the family name).
    pub name: &'static str,
    /// How it is read.
    pub kind: MetricKind,
    /// The vLLM versions that emit it, from `shared/reference/vllm-metrics.md`.
    pub versions: &'static str,
    /// A label the series must carry (`reason="deferred"`), for a quantity that is one value
    /// of a labelled family.
    pub label: Option<(&'static str, &'static str)>,
}

/// A quantity analysis uses, independent of what vLLM version named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// Requests running (gauge, summed over engines).
    Running,
    /// Requests waiting (gauge, summed over engines).
    Waiting,
    /// Requests swapped (gauge, summed over engines).
    Swapped,
    /// KV-cache usage (gauge, max over engines).
    KvCacheUsage,
    /// The concurrency cap (gauge, summed over engines like `running`).
    MaxNumSeqs,
    /// Cache configuration labels.
    CacheConfig,
    /// Generated tokens (counter).
    GenerationTokens,
    /// Prompt tokens (counter).
    PromptTokens,
    /// Finished requests (counter, summed over `finished_reason`).
    RequestSuccess,
    /// Preemptions (counter).
    Preemptions,
    /// Prefix-cache hits (counter).
    PrefixCacheHits,
    /// Prefix-cache queries (counter).
    PrefixCacheQueries,
    /// Time to first token (histogram, seconds).
    Ttft,
    /// Time per output token (histogram, seconds).
    Tpot,
    /// Inter-token latency (histogram, seconds).
    InterTokenLatency,
    /// Prefill time (histogram, seconds).
    PrefillTime,
    /// Queue time (histogram, seconds).
    QueueTime,
    /// Prompt length (histogram, tokens).
    PromptTokensHist,
    /// End-to-end latency (histogram, seconds).
    E2eLatency,
    /// CPU time of the API server process (counter, seconds): R8's frontend load.
    ApiServerCpu,
    /// Requests waiting for a reason other than scheduling capacity (gauge, summed): LoRA
    /// budget, KV transfer, a blocked status.
    WaitingDeferred,
    /// Whether the engine is awake (gauge, 1 awake, 0 sleeping; min over engines).
    EngineAwake,
    /// vLLM's estimated FLOPs per GPU (counter): a measured compute rate.
    EstimatedFlops,
    /// vLLM's estimated bytes read per GPU (counter): a measured bandwidth use.
    EstimatedReadBytes,
    /// Prompt tokens the engine computed itself (counter): the true prefill work.
    PromptTokensComputed,
    /// Prompt tokens served from a cache (counter): prefix reuse measured in tokens.
    PromptTokensCached,
}

const fn m(name: &'static str, kind: MetricKind, versions: &'static str) -> MetricName {
    MetricName {
        name,
        kind,
        versions,
        label: None,
    }
}

/// A candidate that is one labelled value of a family.
const fn ml(
    name: &'static str,
    kind: MetricKind,
    versions: &'static str,
    label: (&'static str, &'static str),
) -> MetricName {
    MetricName {
        name,
        kind,
        versions,
        label: Some(label),
    }
}

use names::*;
use MetricKind::{Counter, Gauge, Histogram, HistogramSum, Info};

/// The alias table: for each quantity, its candidate metrics in order of preference. A
/// recording uses the first candidate that has at least one series in it.
pub const ALIASES: &[(Quantity, &[MetricName])] = &[
    (Quantity::Running, &[m(NUM_REQUESTS_RUNNING, Gauge, "all")]),
    (Quantity::Waiting, &[m(NUM_REQUESTS_WAITING, Gauge, "all")]),
    (
        Quantity::Swapped,
        &[m(NUM_REQUESTS_SWAPPED, Gauge, "V0 only; hidden 0.8")],
    ),
    (
        Quantity::KvCacheUsage,
        &[
            m(KV_CACHE_USAGE_PERC, Gauge, ">=0.10"),
            m(GPU_CACHE_USAGE_PERC, Gauge, "<=0.11 (hidden in 0.11)"),
        ],
    ),
    (
        Quantity::MaxNumSeqs,
        &[m(MAX_NUM_SEQS, Gauge, "none up to 0.33")],
    ),
    (Quantity::CacheConfig, &[m(CACHE_CONFIG_INFO, Info, "all")]),
    (
        Quantity::GenerationTokens,
        &[
            m(GENERATION_TOKENS_TOTAL, Counter, "all"),
            m(
                ITERATION_TOKENS_TOTAL,
                HistogramSum,
                ">=0.7 (_sum of the histogram)",
            ),
        ],
    ),
    (
        Quantity::PromptTokens,
        &[m(PROMPT_TOKENS_TOTAL, Counter, "all")],
    ),
    (
        Quantity::PromptTokensComputed,
        &[ml(
            PROMPT_TOKENS_BY_SOURCE_TOTAL,
            Counter,
            ">=0.18",
            ("source", "local_compute"),
        )],
    ),
    (
        Quantity::PromptTokensCached,
        &[
            m(PROMPT_TOKENS_CACHED_TOTAL, Counter, ">=0.18"),
            ml(
                PROMPT_TOKENS_BY_SOURCE_TOTAL,
                Counter,
                ">=0.18 (local hits only)",
                ("source", "local_cache_hit"),
            ),
        ],
    ),
    (
        Quantity::RequestSuccess,
        &[m(REQUEST_SUCCESS_TOTAL, Counter, "all")],
    ),
    (
        Quantity::Preemptions,
        &[m(NUM_PREEMPTIONS_TOTAL, Counter, "V0 all; V1 >=0.8")],
    ),
    (
        Quantity::WaitingDeferred,
        &[ml(
            NUM_REQUESTS_WAITING_BY_REASON,
            Gauge,
            ">0.18",
            ("reason", "deferred"),
        )],
    ),
    (
        Quantity::EngineAwake,
        &[ml(
            ENGINE_SLEEP_STATE,
            Gauge,
            ">=0.12",
            ("sleep_state", "awake"),
        )],
    ),
    (
        Quantity::EstimatedFlops,
        &[m(
            ESTIMATED_FLOPS_PER_GPU_TOTAL,
            Counter,
            ">=0.12 with --enable-mfu-metrics",
        )],
    ),
    (
        Quantity::EstimatedReadBytes,
        &[m(
            ESTIMATED_READ_BYTES_PER_GPU_TOTAL,
            Counter,
            ">=0.12 with --enable-mfu-metrics",
        )],
    ),
    (
        Quantity::ApiServerCpu,
        &[m(
            PROCESS_CPU_SECONDS_TOTAL,
            Counter,
            "all (prometheus_client's process collector, API server process)",
        )],
    ),
    (
        Quantity::PrefixCacheHits,
        &[
            m(PREFIX_CACHE_HITS_TOTAL, Counter, ">=0.10"),
            m(GPU_PREFIX_CACHE_HITS_TOTAL, Counter, "V1 0.7-0.11"),
        ],
    ),
    (
        Quantity::PrefixCacheQueries,
        &[
            m(PREFIX_CACHE_QUERIES_TOTAL, Counter, ">=0.10"),
            m(GPU_PREFIX_CACHE_QUERIES_TOTAL, Counter, "V1 0.7-0.11"),
        ],
    ),
    (
        Quantity::Ttft,
        &[m(TIME_TO_FIRST_TOKEN_SECONDS, Histogram, "all")],
    ),
    (
        Quantity::Tpot,
        &[
            m(REQUEST_TIME_PER_OUTPUT_TOKEN_SECONDS, Histogram, ">=0.11"),
            m(
                TIME_PER_OUTPUT_TOKEN_SECONDS,
                Histogram,
                "<=0.13 (hidden 0.12-0.13)",
            ),
        ],
    ),
    (
        Quantity::InterTokenLatency,
        &[m(INTER_TOKEN_LATENCY_SECONDS, Histogram, ">=0.11")],
    ),
    (
        Quantity::PrefillTime,
        &[m(REQUEST_PREFILL_TIME_SECONDS, Histogram, ">=0.7")],
    ),
    (
        Quantity::QueueTime,
        &[m(REQUEST_QUEUE_TIME_SECONDS, Histogram, ">=0.7")],
    ),
    (
        Quantity::PromptTokensHist,
        &[m(REQUEST_PROMPT_TOKENS, Histogram, "all")],
    ),
    (
        Quantity::E2eLatency,
        &[m(E2E_REQUEST_LATENCY_SECONDS, Histogram, "all")],
    ),
];

/// The candidates for one quantity, in order of preference.
pub fn candidates(q: Quantity) -> &'static [MetricName] {
    ALIASES
        .iter()
        .find(|(qq, _)| *qq == q)
        .map(|(_, c)| *c)
        .unwrap_or(&[])
}
