//! What the rules need beyond the windows: the concurrency cap, the cache configuration and
//! the memory facts for R4, each resolved once from the recording and the operator's inputs.
//!
//! Callers may fill [`RuleInputs`] by hand (tests, a future live mode) or resolve it with
//! [`RuleInputs::resolve`] from what a recording holds.

use crate::aggregate::Aggregate;
use crate::catalog::roofline::{BytesSource, TpSource};
use crate::recording::manifest::{AnalysisInputs, Sourced};
use crate::window::WindowSet;
use std::collections::BTreeMap;

/// Source label of a cap read from the `vllm:max_num_seqs` gauge.
pub const MAX_NUM_SEQS_GAUGE_SOURCE: &str = "vllm:max_num_seqs";

/// Bytes per MiB: NVML-derived window figures are MiB, R4 works in decimal GB.
const BYTES_PER_MIB: f64 = 1024.0 * 1024.0;
/// Bytes per decimal GB (spec Math: `weight_gb = … / 1e9`).
const BYTES_PER_GB: f64 = 1e9;

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
    /// Where `bytes_per_param` came from (R4's confidence).
    pub bytes_source: BytesSource,
}

impl Default for MemoryFacts {
    fn default() -> Self {
        MemoryFacts {
            weight_gb: None,
            tp: 1,
            tp_source: TpSource::Default,
            vram_total_gb: None,
            bytes_source: BytesSource::Bf16Fallback,
        }
    }
}

/// Everything the rules read besides windows and the aggregate.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleInputs {
    /// The concurrency cap: the `vllm:max_num_seqs` gauge when present, else `-m`. Without it
    /// R1 and R5 do not evaluate (spec "Fallbacks"), nor does R2's backlog path.
    pub max_num_seqs: Option<Sourced<u32>>,
    /// Whether prefix caching is on (`cache_config_info`); `None` when not said.
    pub prefix_caching_enabled: Option<bool>,
    /// KV pool size in tokens over all engines: `num_gpu_blocks × block_size` (R2 backlog).
    pub kv_capacity_tokens: Option<f64>,
    /// `--gpu-memory-utilization` in effect; `None` means vLLM's default 0.90.
    pub gpu_memory_utilization: Option<f64>,
    /// The KV-cache dtype (`cache_dtype` label, e.g. `auto`, `fp8`).
    pub kv_cache_dtype: Option<String>,
    /// R4's facts.
    pub memory: MemoryFacts,
}

impl RuleInputs {
    /// Resolves the inputs from a recording: the cap from the gauge, else the operator's
    /// `-m`; the cache facts from `cache_config_info`; a missing VRAM total from the last
    /// evaluable GPU poll.
    pub fn resolve(
        set: &WindowSet,
        agg: &Aggregate,
        operator: &AnalysisInputs,
        mut memory: MemoryFacts,
    ) -> RuleInputs {
        let cfg = &set.mapping.cache_config;
        if memory.vram_total_gb.is_none() {
            memory.vram_total_gb = agg
                .vram_total_mib
                .filter(|m| m.is_finite() && *m > 0.0)
                .map(|m| m * BYTES_PER_MIB / BYTES_PER_GB);
        }
        RuleInputs {
            max_num_seqs: resolve_max_num_seqs(agg.max_num_seqs, operator.max_num_seqs.as_ref()),
            prefix_caching_enabled: prefix_caching_enabled(cfg),
            kv_capacity_tokens: kv_capacity_tokens(cfg, set.mapping.engines.len()),
            gpu_memory_utilization: gpu_memory_utilization(cfg),
            kv_cache_dtype: cfg
                .get("cache_dtype")
                .filter(|s| !s.is_empty() && s.as_str() != "None")
                .cloned(),
            memory,
        }
    }
}

/// The cap (spec "Fallbacks"): the gauge first, then the flag. A gauge that is not a whole
/// number of at least 1 is ignored; a flag of 0 is no cap either.
pub fn resolve_max_num_seqs(
    gauge: Option<f64>,
    flag: Option<&Sourced<u32>>,
) -> Option<Sourced<u32>> {
    let from_gauge = gauge
        .filter(|g| g.is_finite() && *g >= 1.0 && *g <= f64::from(u32::MAX))
        .map(|g| Sourced {
            value: g.round() as u32,
            source: MAX_NUM_SEQS_GAUGE_SOURCE.to_string(),
        });
    from_gauge.or_else(|| flag.filter(|f| f.value >= 1).cloned())
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

/// `gpu_memory_utilization` when it is a fraction in (0, 1].
pub fn gpu_memory_utilization(cfg: &BTreeMap<String, String>) -> Option<f64> {
    positive(cfg, "gpu_memory_utilization").filter(|u| *u <= 1.0)
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
    fn gauge_wins_over_flag_and_zero_is_no_cap() {
        let flag = Sourced {
            value: 64,
            source: "-m".to_string(),
        };
        let g = resolve_max_num_seqs(Some(128.0), Some(&flag)).unwrap();
        assert_eq!(
            (g.value, g.source.as_str()),
            (128, MAX_NUM_SEQS_GAUGE_SOURCE)
        );
        assert_eq!(resolve_max_num_seqs(None, Some(&flag)).unwrap().value, 64);
        assert_eq!(
            resolve_max_num_seqs(Some(0.0), Some(&flag)).unwrap().value,
            64
        );
        let zero = Sourced {
            value: 0,
            source: "-m".to_string(),
        };
        assert_eq!(resolve_max_num_seqs(None, Some(&zero)), None);
        assert_eq!(resolve_max_num_seqs(Some(f64::NAN), None), None);
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
        assert_eq!(
            gpu_memory_utilization(&cfg(&[("gpu_memory_utilization", "0.92")])),
            Some(0.92)
        );
        assert_eq!(
            gpu_memory_utilization(&cfg(&[("gpu_memory_utilization", "1.5")])),
            None
        );
    }

    #[test]
    fn resolve_reads_cache_config_and_falls_back_to_polled_vram() {
        use crate::aggregate::aggregate;
        use crate::rules::testutil::{base, set};
        let mut w = base(0);
        w.gpu.vram_total_mib_last = Some(81_559.0);
        w.max_num_seqs_last = None;
        let mut s = set(vec![w], true);
        s.mapping.cache_config = cfg(&[
            ("enable_prefix_caching", "False"),
            ("num_gpu_blocks", "100"),
            ("block_size", "16"),
            ("gpu_memory_utilization", "0.85"),
            ("cache_dtype", "fp8_e4m3"),
        ]);
        let agg = aggregate(&s);
        let operator = AnalysisInputs {
            max_num_seqs: Some(Sourced {
                value: 32,
                source: "-m".to_string(),
            }),
            ..AnalysisInputs::default()
        };
        let r = RuleInputs::resolve(&s, &agg, &operator, MemoryFacts::default());
        assert_eq!(r.max_num_seqs.map(|m| m.value), Some(32));
        assert_eq!(r.prefix_caching_enabled, Some(false));
        assert_eq!(r.kv_capacity_tokens, Some(1600.0));
        assert_eq!(r.gpu_memory_utilization, Some(0.85));
        assert_eq!(r.kv_cache_dtype.as_deref(), Some("fp8_e4m3"));
        // 81 559 MiB (an H100 80GB) is 85.5 GB.
        let gb = r.memory.vram_total_gb.unwrap();
        assert!((gb - 85.520_809_984).abs() < 1e-6, "{gb}");
    }
}
