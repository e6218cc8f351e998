//! What the rules need beyond the windows: the concurrency cap, the cache configuration and
//! the memory facts for R4. The cap, the tensor-parallel degree, the dtype and
//! `--gpu-memory-utilization` come resolved from [`crate::inputs`], so the rules and the
//! report read the same values; the cache facts are read here from `cache_config_info`.
//!
//! Callers may fill [`RuleInputs`] by hand (tests, a future live mode) or build it with
//! [`RuleInputs::from_resolved`].

use crate::catalog::roofline::DEFAULT_GPU_MEMORY_UTILIZATION;
use crate::inputs::{DtypeSource, ResolvedInputs, Sourced, TpSource};
use crate::vllm::VllmMapping;
use std::collections::BTreeMap;

/// R4's configuration facts: the model's weight footprint and the GPUs it must fit on.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryFacts {
    /// Weight footprint across all GPUs, GB (`weight_gb`); `None` for an uncatalogued model.
    pub weight_gb: Option<f64>,
    /// Tensor-parallel degree in effect (1 when nothing said).
    pub tp: u32,
    /// Where `tp` came from; a defaulted 1 is worth saying next to an OOM finding.
    pub tp_source: TpSource,
    /// Total VRAM of one GPU, decimal GB; `None` when unknown.
    pub vram_total_gb: Option<f64>,
    /// Where the dtype (bytes per parameter) came from: R4's confidence.
    pub dtype_source: DtypeSource,
}

impl Default for MemoryFacts {
    fn default() -> Self {
        MemoryFacts {
            weight_gb: None,
            tp: 1,
            tp_source: TpSource::Default,
            vram_total_gb: None,
            dtype_source: DtypeSource::Bf16Fallback,
        }
    }
}

/// Everything the rules read besides windows and the aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleInputs {
    /// The concurrency cap. Without it R1 and R5 do not evaluate (spec "Fallbacks"), nor
    /// does R2's backlog path.
    pub max_num_seqs: Option<Sourced<u32>>,
    /// Whether prefix caching is on (`cache_config_info`); `None` when not said.
    pub prefix_caching_enabled: Option<bool>,
    /// KV pool size in tokens over all engines: `num_gpu_blocks × block_size` (R2 backlog).
    pub kv_capacity_tokens: Option<f64>,
    /// `--gpu-memory-utilization` in effect (vLLM's default when nothing said).
    pub gpu_memory_utilization: f64,
    /// The KV-cache dtype (`cache_dtype` label, e.g. `auto`, `fp8`).
    pub kv_cache_dtype: Option<String>,
    /// R4's facts.
    pub memory: MemoryFacts,
    /// The catalog's prefill floor per prompt, ms (R6's evidence), when known.
    pub prefill_floor_ms: Option<f64>,
    /// R7's facts; `None` without a catalogued GPU and model.
    pub sizing: Option<SizingFacts>,
}

/// One catalog GPU a server could move to, at the same model, dtype and tensor-parallel
/// degree (R7).
#[derive(Debug, Clone, PartialEq)]
pub struct GpuOption {
    /// Display name.
    pub name: String,
    /// Per-request decode ceiling at this TP, tokens/s.
    pub decode_ceiling_tps: f64,
    /// On-demand price of the whole server (TP GPUs), dollars per hour.
    pub usd_per_hour: f64,
    /// Memory per GPU, decimal GB, as marketed.
    pub vram_gb: f64,
}

/// What R7 weighs: the GPUs in use, their cost and power limit, and the alternatives.
#[derive(Debug, Clone, PartialEq)]
pub struct SizingFacts {
    /// The GPU in use (catalog name).
    pub current: String,
    /// What the server costs now, dollars per hour (the resolved cost).
    pub usd_per_hour: f64,
    /// The sum of the GPUs' power limits, watts (NVML, at start).
    pub power_limit_w: Option<f64>,
    /// The weights per GPU at the TP in use, GB.
    pub weight_gb_per_gpu: Option<f64>,
    /// Efficiency % against the decode ceiling, when shown.
    pub efficiency_pct: Option<f64>,
    /// Every other priced catalog GPU with a roofline, cheapest first.
    pub options: Vec<GpuOption>,
}

impl Default for RuleInputs {
    fn default() -> Self {
        RuleInputs {
            max_num_seqs: None,
            prefix_caching_enabled: None,
            kv_capacity_tokens: None,
            gpu_memory_utilization: DEFAULT_GPU_MEMORY_UTILIZATION,
            kv_cache_dtype: None,
            memory: MemoryFacts::default(),
            prefill_floor_ms: None,
            sizing: None,
        }
    }
}

impl RuleInputs {
    /// The rules' inputs from the resolved inputs, the metric mapping's cache configuration
    /// and R4's memory facts.
    pub fn from_resolved(
        mapping: &VllmMapping,
        resolved: &ResolvedInputs,
        memory: MemoryFacts,
    ) -> RuleInputs {
        let cfg = &mapping.cache_config;
        RuleInputs {
            max_num_seqs: resolved.max_num_seqs.clone(),
            prefix_caching_enabled: prefix_caching_enabled(cfg),
            kv_capacity_tokens: kv_capacity_tokens(cfg, mapping.engines.len()),
            gpu_memory_utilization: resolved.gpu_memory_utilization.value,
            kv_cache_dtype: cfg
                .get("cache_dtype")
                .filter(|s| !s.is_empty() && s.as_str() != "None")
                .cloned(),
            memory,
            prefill_floor_ms: None,
            sizing: None,
        }
    }
}

/// `enable_prefix_caching` (every vLLM checked) or `prefix_caching` (the spec's name):
/// "True"/"False"; anything else ("None": V1's "use the default") is unknown.
pub fn prefix_caching_enabled(cfg: &BTreeMap<String, String>) -> Option<bool> {
    ["enable_prefix_caching", "prefix_caching"]
        .iter()
        .find_map(|k| match cfg.get(*k)?.to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        })
}

fn positive(cfg: &BTreeMap<String, String>, key: &str) -> Option<f64> {
    cfg.get(key)?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
}

/// KV pool in tokens: `num_gpu_blocks × block_size`, else `kv_cache_size_tokens` (0.33), times
/// the number of data-parallel engines (the labels come from one engine; each has its own).
pub fn kv_capacity_tokens(cfg: &BTreeMap<String, String>, engines: usize) -> Option<f64> {
    let one = match (positive(cfg, "num_gpu_blocks"), positive(cfg, "block_size")) {
        (Some(n), Some(b)) => Some(n * b),
        _ => positive(cfg, "kv_cache_size_tokens"),
    }?;
    Some(one * engines.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cache_config_labels() {
        assert_eq!(
            prefix_caching_enabled(&cfg(&[("enable_prefix_caching", "True")])),
            Some(true)
        );
        assert_eq!(
            prefix_caching_enabled(&cfg(&[("prefix_caching", "False")])),
            Some(false)
        );
        assert_eq!(
            prefix_caching_enabled(&cfg(&[("enable_prefix_caching", "None")])),
            None
        );
        let c = cfg(&[("num_gpu_blocks", "2340"), ("block_size", "16")]);
        assert_eq!(kv_capacity_tokens(&c, 0), Some(37440.0));
        assert_eq!(kv_capacity_tokens(&c, 2), Some(74880.0));
        let c = cfg(&[
            ("num_gpu_blocks", "None"),
            ("kv_cache_size_tokens", "65536"),
        ]);
        assert_eq!(kv_capacity_tokens(&c, 1), Some(65536.0));
        assert_eq!(kv_capacity_tokens(&cfg(&[("block_size", "16")]), 1), None);
    }
}
