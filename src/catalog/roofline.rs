//! The roofline: what the hardware could do at best for a given model, and how much memory the
//! weights leave free. Pure functions of catalog figures and operator inputs, one formula each,
//! each citing the spec (seed 000) section it implements.
//!
//! Conventions, as in the spec: GB means 1e9 bytes (not GiB); bandwidth is GB/s; FLOP rates are
//! TFLOP/s (1e12); parameter counts enter the catalog in billions and leave these helpers as
//! absolute counts. Every input that may be missing is an `Option`, and every result is `None`
//! rather than NaN or infinity when an input is missing, zero or not finite. All outputs are
//! catalog-derived estimates and must be labelled `(est)` when shown.

use crate::units::BYTES_PER_GB;
use serde::{Deserialize, Serialize};

/// Parameters per catalog unit: the catalog counts parameters in billions.
pub const PARAMS_PER_CATALOG_UNIT: f64 = 1e9;

/// Bytes per parameter when nothing says otherwise: bf16 (spec, Math / Roofline,
/// `bytes_per_param` resolution, last step).
pub const FALLBACK_BYTES_PER_PARAM: f64 = 2.0;

/// Lower edge of the ceiling band, as a fraction of the expected ceiling (spec, Math /
/// Roofline, "Ceiling range": −15%).
pub const CEILING_LOWER_FACTOR: f64 = 0.85;

/// Upper edge of the ceiling band, as a fraction of the expected ceiling (spec, Math /
/// Roofline, "Ceiling range": +5%).
pub const CEILING_UPPER_FACTOR: f64 = 1.05;

/// FLOPs per parameter per prompt token in the prefill ceiling (spec, Math / Roofline,
/// prefill formula `6 × params × seq_len`).
pub const PREFILL_FLOPS_PER_PARAM_TOKEN: f64 = 6.0;

/// vLLM's `--gpu-memory-utilization` default, used by R4's `min_tp` (spec, Rules / R4).
pub const DEFAULT_GPU_MEMORY_UTILIZATION: f64 = 0.90;

/// GB kept back per GPU for activations and the first KV blocks before weights are counted
/// (spec, Rules / R4, `ACTIVATION_KV_BUFFER_GB`).
pub const ACTIVATION_KV_BUFFER_GB: f64 = 3.0;

/// `Some(v)` when `v` is a finite number, so no NaN or infinity leaves this module.
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// `Some(v)` when `v` is finite and above zero: the only values a divisor or a physical peak
/// may take.
fn positive(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite() && *v > 0.0)
}

// ---------------------------------------------------------------------------------------------
// Inputs: parameters, dtype, tensor parallelism, sequence length
// ---------------------------------------------------------------------------------------------

/// Parameters that bound the ceilings, absolute count: the active count if known, else the
/// total (spec, Math / Roofline, `roofline_params`). For a mixture of experts only the active
/// experts' weights are read per token.
pub fn roofline_params(active_params_b: Option<f64>, total_params_b: Option<f64>) -> Option<f64> {
    positive(positive(active_params_b).or(positive(total_params_b)))
        .map(|b| b * PARAMS_PER_CATALOG_UNIT)
}

/// Parameters that occupy memory, absolute count: the total if known, else the active count
/// (spec, Math / Roofline, `weight_params`). Every expert sits in VRAM whether used or not.
pub fn weight_params(active_params_b: Option<f64>, total_params_b: Option<f64>) -> Option<f64> {
    positive(positive(total_params_b).or(positive(active_params_b)))
        .map(|b| b * PARAMS_PER_CATALOG_UNIT)
}

/// Bytes per parameter for a dtype name, case-insensitive, with an optional `torch.` prefix
/// (spec, Math / Roofline, `bytes_per_param`: fp8 = 1, fp16/bf16 = 2, fp32 = 4).
///
/// Any `fp8*`/`float8*` name (`fp8_e4m3`, `fp8_e5m2`, `float8_e4m3fn`, ...) is 1 byte. `auto`
/// is vLLM's "use the model's own dtype", which names no width, so it gives `None` like any
/// unknown name and the resolution moves to its next source.
pub fn bytes_per_param(dtype: &str) -> Option<f64> {
    let d = dtype.trim().to_ascii_lowercase();
    let d = d.strip_prefix("torch.").unwrap_or(&d);
    if d.starts_with("fp8") || d.starts_with("float8") {
        return Some(1.0);
    }
    match d {
        "fp16" | "float16" | "half" | "bf16" | "bfloat16" => Some(2.0),
        "fp32" | "float32" | "float" => Some(4.0),
        _ => None,
    }
}

/// Where the prefill ceiling's sequence length came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeqLenSource {
    /// The mean of `vllm:request_prompt_tokens`, rounded.
    PromptTokensMean,
    /// vLLM's `max_model_len`.
    MaxModelLen,
}

/// The prefill sequence length (spec, Math / Roofline, `seq_len`): the mean prompt length
/// rounded to the nearest token, else `max_model_len`, else `None` (prefill ceiling skipped).
/// A mean that rounds to zero tokens is no length at all and falls through too.
pub fn resolve_seq_len(
    prompt_tokens_mean: Option<f64>,
    max_model_len: Option<u64>,
) -> Option<(u64, SeqLenSource)> {
    let rounded = positive(prompt_tokens_mean)
        .map(f64::round)
        .filter(|r| *r >= 1.0 && *r <= u64::MAX as f64)
        .map(|r| (r as u64, SeqLenSource::PromptTokensMean));
    rounded.or(max_model_len
        .filter(|l| *l > 0)
        .map(|l| (l, SeqLenSource::MaxModelLen)))
}

// ---------------------------------------------------------------------------------------------
// Ceilings
// ---------------------------------------------------------------------------------------------

/// A catalog-derived ceiling with its uncertainty band (spec, Design, "Physics ceiling as a
/// range"; Math / Roofline, "Ceiling range").
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CeilingEstimate {
    /// `expected × 0.85`.
    pub lower: f64,
    /// The formula's value.
    pub expected: f64,
    /// `expected × 1.05`.
    pub upper: f64,
}

impl CeilingEstimate {
    /// The band around an expected ceiling; `None` unless `expected` is finite and positive.
    pub fn around(expected: f64) -> Option<CeilingEstimate> {
        let expected = positive(Some(expected))?;
        Some(CeilingEstimate {
            lower: finite(expected * CEILING_LOWER_FACTOR)?,
            expected,
            upper: finite(expected * CEILING_UPPER_FACTOR)?,
        })
    }
}

/// Decode ceiling per request, tokens/s (spec, Math / Roofline, decode formula):
/// `(peak_bw_gbps × tp) × 1e9 / (params × bytes_per_param)`. Each generated token reads every
/// roofline parameter once, and tp GPUs read in parallel. `params` is an absolute count.
pub fn decode_ceiling_tps(
    peak_bw_gbps: Option<f64>,
    tp: u32,
    params: Option<f64>,
    bytes_per_param: f64,
) -> Option<f64> {
    let bw = positive(peak_bw_gbps)?;
    let bytes_per_token = positive(Some(params? * bytes_per_param))?;
    positive(Some(bw * f64::from(tp) * 1e9 / bytes_per_token))
}

/// Prefill ceiling (spec, Math / Roofline, prefill formula):
/// `(peak_flops × tp) × 1e12 / (6 × params × seq_len)`, with `peak_flops` in TFLOP/s.
/// `None` without a sequence length.
///
/// The spec labels this tok/s, but since the divisor is the work of a whole `seq_len`-token
/// prompt, the value is prompts per second, and `1000 /` it ([`prefill_floor_ms`]) is the
/// time to prefill one such prompt. It is implemented as written; show it with that meaning.
pub fn prefill_ceiling_tps(
    peak_tflops: Option<f64>,
    tp: u32,
    params: Option<f64>,
    seq_len: Option<u64>,
) -> Option<f64> {
    let flops = positive(peak_tflops)?;
    let work = PREFILL_FLOPS_PER_PARAM_TOKEN * params? * seq_len? as f64;
    let work = positive(Some(work))?;
    positive(Some(flops * f64::from(tp) * 1e12 / work))
}

/// The batch size at which decode turns from bandwidth-bound to compute-bound (spec, Math /
/// Roofline, ridge batch size): `(peak_flops × 1e12 × bytes_per_param) / (peak_bw × 1e9)`.
/// Tensor parallelism scales both peaks alike and cancels out.
pub fn ridge_batch_size(
    peak_tflops: Option<f64>,
    peak_bw_gbps: Option<f64>,
    bytes_per_param: f64,
) -> Option<f64> {
    let flops = positive(peak_tflops)?;
    let bw = positive(peak_bw_gbps)?;
    positive(Some(flops * 1e12 * bytes_per_param / (bw * 1e9)))
}

/// Whether the prefill floor may be shown: the spec suppresses it once the running batch
/// reaches the ridge (Math / Roofline, ridge batch size row). Unknown inputs hide nothing.
pub fn prefill_floor_shown(num_running: Option<f64>, ridge: Option<f64>) -> bool {
    match (num_running, ridge) {
        (Some(running), Some(ridge)) => running < ridge,
        _ => true,
    }
}

/// Decode latency floor per output token, ms (spec, Math / Weight footprint and headroom):
/// `1000 / decode_ceiling_tps`.
pub fn tpot_floor_ms(decode_ceiling_tps: Option<f64>) -> Option<f64> {
    positive(Some(1000.0 / positive(decode_ceiling_tps)?))
}

/// Prefill latency floor, ms (spec, Math / Weight footprint and headroom):
/// `1000 / prefill_ceiling_tps`.
pub fn prefill_floor_ms(prefill_ceiling_tps: Option<f64>) -> Option<f64> {
    positive(Some(1000.0 / positive(prefill_ceiling_tps)?))
}

// ---------------------------------------------------------------------------------------------
// Efficiency
// ---------------------------------------------------------------------------------------------

/// Efficiency %, or why it is not shown (spec, Math / Efficiency %).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Efficiency {
    /// `actual_tps / aggregate_ceiling × 100`, in (0, 100].
    Shown {
        /// The percentage.
        pct: f64,
    },
    /// No decode ceiling: GPU or model not in the catalog, or the GPU has no peak figures.
    NoCeiling,
    /// `num_requests_running` missing or not above zero: nothing to be efficient at.
    NotRunning,
    /// Generation throughput missing or not above zero.
    NoThroughput,
    /// Measured throughput exceeds the aggregate ceiling, which points at a catalog or
    /// measurement mismatch, not at 100%+ efficiency.
    ExceedsCeiling {
        /// Measured generation tokens/s.
        actual_tps: f64,
        /// `decode_ceiling_tps × num_running`.
        aggregate_ceiling_tps: f64,
    },
}

impl Efficiency {
    /// The percentage when shown.
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

/// Efficiency % (spec, Math / Efficiency %): `aggregate = decode_ceiling_tps × num_running`,
/// `efficiency = actual_tps / aggregate × 100`. Compared against the expected ceiling, not
/// the band's upper edge, as the spec's `aggregate_ceiling` is. `decode_ceiling_tps` must be the
/// tp-scaled ceiling.
pub fn efficiency(
    decode_ceiling_tps: Option<f64>,
    num_running: Option<f64>,
    actual_tps: Option<f64>,
) -> Efficiency {
    let Some(ceiling) = positive(decode_ceiling_tps) else {
        return Efficiency::NoCeiling;
    };
    let Some(running) = positive(num_running) else {
        return Efficiency::NotRunning;
    };
    let Some(actual) = positive(actual_tps) else {
        return Efficiency::NoThroughput;
    };
    let Some(aggregate) = positive(Some(ceiling * running)) else {
        return Efficiency::NoCeiling;
    };
    if actual > aggregate {
        return Efficiency::ExceedsCeiling {
            actual_tps: actual,
            aggregate_ceiling_tps: aggregate,
        };
    }
    Efficiency::Shown {
        pct: actual / aggregate * 100.0,
    }
}

/// Unused share of the decode ceiling, % (spec, Math / Weight footprint and headroom):
/// `100 − min(efficiency_pct, 100)`.
pub fn headroom_pct(efficiency: &Efficiency) -> Option<f64> {
    efficiency.pct().map(|pct| 100.0 - pct.min(100.0))
}

// ---------------------------------------------------------------------------------------------
// Weight footprint, KV headroom, R4
// ---------------------------------------------------------------------------------------------

/// Memory the weights take across all GPUs, GB (spec, Math / Weight footprint and headroom):
/// `weight_params × bytes_per_param / 1e9`. `weight_params` is an absolute count.
pub fn weight_gb(weight_params: Option<f64>, bytes_per_param: f64) -> Option<f64> {
    positive(Some(
        positive(weight_params)? * bytes_per_param / BYTES_PER_GB,
    ))
}

/// VRAM left per GPU once its share of the weights is loaded, GB (spec, Math / Weight
/// footprint and headroom): `vram_total_gb − weight_gb / tp`. Negative means the weights do
/// not fit at this tensor-parallel degree (R4).
pub fn kv_headroom_gb(vram_total_gb: Option<f64>, weight_gb: Option<f64>, tp: u32) -> Option<f64> {
    let vram = positive(vram_total_gb)?;
    let per_gpu = positive(weight_gb)? / f64::from(tp.max(1));
    finite(vram - per_gpu)
}

/// VRAM per GPU that vLLM may give to weights, GB (spec, Rules / R4):
/// `vram_total_gb × gpu_memory_utilization − 3.0`. `None` when nothing is left.
pub fn usable_vram_gb(
    vram_total_gb: Option<f64>,
    gpu_memory_utilization: Option<f64>,
) -> Option<f64> {
    let vram = positive(vram_total_gb)?;
    let util = match gpu_memory_utilization {
        Some(u) => positive(Some(u))?,
        None => DEFAULT_GPU_MEMORY_UTILIZATION,
    };
    positive(Some(vram * util - ACTIVATION_KV_BUFFER_GB))
}

/// The least tensor-parallel degree whose per-GPU share of the weights fits (spec, Rules / R4):
/// `ceil(weight_gb / usable_vram)`, at least 1. It does not round up to what vLLM accepts for
/// a given model (a divisor of its attention heads); the recommendation should say so.
pub fn min_tp(weight_gb: Option<f64>, usable_vram_gb: Option<f64>) -> Option<u32> {
    let ratio = positive(weight_gb)? / positive(usable_vram_gb)?;
    let n = ratio.ceil().max(1.0);
    (n.is_finite() && n <= f64::from(u32::MAX)).then_some(n as u32)
}

/// The ceilings and footprint for one GPU and model at one dtype and tensor-parallel degree:
/// the formulas above applied together, for callers that want all of them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Roofline {
    /// Per-request decode ceiling, tokens/s, tp-scaled; `None` without GPU bandwidth or model.
    pub decode: Option<CeilingEstimate>,
    /// Prefill ceiling, tokens/s, tp-scaled; `None` also without a sequence length.
    pub prefill: Option<CeilingEstimate>,
    /// Ridge batch size.
    pub ridge_batch_size: Option<f64>,
    /// Weight footprint across all GPUs, GB.
    pub weight_gb: Option<f64>,
    /// `1000 / decode.expected`, ms.
    pub tpot_floor_ms: Option<f64>,
    /// `1000 / prefill.expected`, ms.
    pub prefill_floor_ms: Option<f64>,
}

/// Applies the roofline formulas to a matched GPU and model. An uncatalogued GPU or model (or a
/// GPU entry with prices only) leaves the ceilings `None`; the weight footprint needs only the
/// model.
pub fn roofline(
    gpu: Option<&super::GpuSpec>,
    model: Option<&super::ModelSpec>,
    bytes_per_param: f64,
    tp: u32,
    seq_len: Option<u64>,
) -> Roofline {
    let params = model.and_then(|m| m.roofline_params());
    let with_peaks = gpu.filter(|g| g.has_roofline());
    let decode_tps =
        with_peaks.and_then(|g| decode_ceiling_tps(g.mem_bw_gbps, tp, params, bytes_per_param));
    let prefill_tps =
        with_peaks.and_then(|g| prefill_ceiling_tps(g.fp32_tflops, tp, params, seq_len));
    Roofline {
        decode: decode_tps.and_then(CeilingEstimate::around),
        prefill: prefill_tps.and_then(CeilingEstimate::around),
        ridge_batch_size: with_peaks
            .filter(|_| params.is_some())
            .and_then(|g| ridge_batch_size(g.fp32_tflops, g.mem_bw_gbps, bytes_per_param)),
        weight_gb: weight_gb(model.and_then(|m| m.weight_params()), bytes_per_param),
        tpot_floor_ms: tpot_floor_ms(decode_tps),
        prefill_floor_ms: prefill_floor_ms(prefill_tps),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::units::bytes_to_gb;

    /// Equal to within 1e-9 relative: the formulas are a few float operations, so exact
    /// hand-computed values agree far closer than that.
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    fn assert_close(got: Option<f64>, want: f64) {
        let got = got.unwrap_or_else(|| panic!("expected {want}, got None"));
        assert!(close(got, want), "got {got}, want {want}");
    }

    #[test]
    fn params_pick_active_for_roofline_and_total_for_weights() {
        assert_eq!(roofline_params(Some(13.0), Some(47.0)), Some(13e9));
        assert_eq!(weight_params(Some(13.0), Some(47.0)), Some(47e9));
        assert_eq!(roofline_params(None, Some(47.0)), Some(47e9));
        assert_eq!(weight_params(Some(13.0), None), Some(13e9));
        assert_eq!(roofline_params(Some(0.0), Some(8.0)), Some(8e9));
        assert_eq!(roofline_params(None, None), None);
        assert_eq!(weight_params(Some(f64::NAN), None), None);
    }

    #[test]
    fn dtype_names_map_to_widths() {
        for d in [
            "fp8",
            "FP8",
            "fp8_e4m3",
            "fp8_e5m2",
            "fp8_inc",
            "float8_e4m3fn",
        ] {
            assert_eq!(bytes_per_param(d), Some(1.0), "{d}");
        }
        for d in [
            "fp16",
            "bf16",
            "bfloat16",
            "float16",
            "half",
            "torch.bfloat16",
            " BF16 ",
        ] {
            assert_eq!(bytes_per_param(d), Some(2.0), "{d}");
        }
        for d in ["fp32", "float32", "float", "torch.float32"] {
            assert_eq!(bytes_per_param(d), Some(4.0), "{d}");
        }
        for d in ["auto", "", "int4", "garbage", "fp"] {
            assert_eq!(bytes_per_param(d), None, "{d}");
        }
    }

    #[test]
    fn seq_len_prefers_rounded_prompt_mean() {
        assert_eq!(
            resolve_seq_len(Some(511.5), Some(8192)),
            Some((512, SeqLenSource::PromptTokensMean))
        );
        assert_eq!(
            resolve_seq_len(Some(511.4), None),
            Some((511, SeqLenSource::PromptTokensMean))
        );
        assert_eq!(
            resolve_seq_len(None, Some(8192)),
            Some((8192, SeqLenSource::MaxModelLen))
        );
        assert_eq!(
            resolve_seq_len(Some(0.3), Some(4096)),
            Some((4096, SeqLenSource::MaxModelLen))
        );
        assert_eq!(resolve_seq_len(Some(f64::NAN), None), None);
        assert_eq!(resolve_seq_len(None, Some(0)), None);
        assert_eq!(resolve_seq_len(None, None), None);
    }

    #[test]
    fn decode_ceilings_match_the_spec_examples() {
        // H100 SXM, 3350 GB/s, Llama 3 70B bf16: 3350e9 / 140e9 = 23.93 tok/s.
        let h100_70b = decode_ceiling_tps(Some(3350.0), 1, Some(70e9), 2.0);
        assert_close(h100_70b, 3350.0 / 140.0);
        assert_eq!((h100_70b.unwrap() * 10.0).round() / 10.0, 23.9);
        // Llama 3 8B: 3350 / 16 = 209.4 tok/s.
        let h100_8b = decode_ceiling_tps(Some(3350.0), 1, Some(8e9), 2.0);
        assert_close(h100_8b, 209.375);
        // A100 80GB, 2039 GB/s, 70B: 14.56 tok/s.
        let a100_70b = decode_ceiling_tps(Some(2039.0), 1, Some(70e9), 2.0);
        assert_close(a100_70b, 2039.0 / 140.0);
        assert_eq!((a100_70b.unwrap() * 10.0).round() / 10.0, 14.6);
        // fp8 halves the bytes and doubles the ceiling.
        assert_close(
            decode_ceiling_tps(Some(3350.0), 1, Some(70e9), 1.0),
            3350.0 / 70.0,
        );
        // TP=2 doubles it.
        assert_close(
            decode_ceiling_tps(Some(3350.0), 2, Some(70e9), 2.0),
            3350.0 / 70.0,
        );
        assert_eq!(decode_ceiling_tps(None, 1, Some(70e9), 2.0), None);
        assert_eq!(decode_ceiling_tps(Some(3350.0), 1, None, 2.0), None);
        assert_eq!(decode_ceiling_tps(Some(3350.0), 1, Some(70e9), 0.0), None);
        assert_eq!(decode_ceiling_tps(Some(0.0), 1, Some(70e9), 2.0), None);
        assert_eq!(decode_ceiling_tps(Some(3350.0), 0, Some(70e9), 2.0), None);
    }

    #[test]
    fn prefill_ceiling_and_floor() {
        // 67 TFLOP/s, 8B, 1000 tokens: 67e12 / (6 × 8e9 × 1000) = 1.395833 per s, 716.4 ms.
        let p = prefill_ceiling_tps(Some(67.0), 1, Some(8e9), Some(1000));
        assert_close(p, 67e12 / 4.8e13);
        assert_close(prefill_floor_ms(p), 1000.0 * 4.8e13 / 67e12);
        assert_close(
            prefill_ceiling_tps(Some(67.0), 2, Some(8e9), Some(1000)),
            2.0 * 67e12 / 4.8e13,
        );
        assert_eq!(prefill_ceiling_tps(Some(67.0), 1, Some(8e9), None), None);
        assert_eq!(prefill_ceiling_tps(Some(67.0), 1, Some(8e9), Some(0)), None);
        assert_eq!(prefill_ceiling_tps(None, 1, Some(8e9), Some(1000)), None);
        assert_eq!(prefill_floor_ms(None), None);
        assert_eq!(prefill_floor_ms(Some(0.0)), None);
    }

    #[test]
    fn ceiling_band_is_minus_15_plus_5() {
        let c = CeilingEstimate::around(100.0).unwrap();
        assert_close(Some(c.lower), 85.0);
        assert_close(Some(c.expected), 100.0);
        assert_close(Some(c.upper), 105.0);
        assert_eq!(CeilingEstimate::around(0.0), None);
        assert_eq!(CeilingEstimate::around(f64::INFINITY), None);
    }

    #[test]
    fn ridge_and_prefill_floor_gate() {
        // H100 SXM bf16: 67e12 × 2 / 3350e9 = 40 sequences.
        let ridge = ridge_batch_size(Some(67.0), Some(3350.0), 2.0);
        assert_close(ridge, 40.0);
        assert_close(
            ridge_batch_size(Some(19.5), Some(2039.0), 1.0),
            19.5e12 / 2039e9,
        );
        assert_eq!(ridge_batch_size(None, Some(3350.0), 2.0), None);
        assert!(prefill_floor_shown(Some(39.9), ridge));
        assert!(!prefill_floor_shown(Some(40.0), ridge));
        assert!(prefill_floor_shown(None, ridge));
        assert!(prefill_floor_shown(Some(100.0), None));
    }

    #[test]
    fn tpot_floor_is_the_inverse_ceiling() {
        assert_close(tpot_floor_ms(Some(3350.0 / 140.0)), 1000.0 * 140.0 / 3350.0);
        assert_close(tpot_floor_ms(Some(209.375)), 4.776119402985075);
        assert_eq!(tpot_floor_ms(Some(0.0)), None);
        assert_eq!(tpot_floor_ms(None), None);
    }

    #[test]
    fn efficiency_and_headroom() {
        let ceiling = Some(3350.0 / 140.0); // 23.93 tok/s per request
                                            // 4 running: aggregate 95.71 tok/s; 50 tok/s measured is 52.24%.
        let e = efficiency(ceiling, Some(4.0), Some(50.0));
        let want = 50.0 / (4.0 * 3350.0 / 140.0) * 100.0;
        assert_close(e.pct(), want);
        assert_close(headroom_pct(&e), 100.0 - want);
        // Exactly at the ceiling: 100%, headroom 0.
        let at = efficiency(Some(25.0), Some(2.0), Some(50.0));
        assert_close(at.pct(), 100.0);
        assert_close(headroom_pct(&at), 0.0);
        // Above the ceiling: not shown, with both figures.
        let over = efficiency(Some(25.0), Some(2.0), Some(60.0));
        assert_eq!(
            over,
            Efficiency::ExceedsCeiling {
                actual_tps: 60.0,
                aggregate_ceiling_tps: 50.0
            }
        );
        assert_eq!(over.pct(), None);
        assert_eq!(headroom_pct(&over), None);
        assert_eq!(
            efficiency(None, Some(4.0), Some(50.0)),
            Efficiency::NoCeiling
        );
        assert_eq!(
            efficiency(ceiling, Some(0.0), Some(50.0)),
            Efficiency::NotRunning
        );
        assert_eq!(
            efficiency(ceiling, None, Some(50.0)),
            Efficiency::NotRunning
        );
        assert_eq!(
            efficiency(ceiling, Some(4.0), Some(0.0)),
            Efficiency::NoThroughput
        );
        assert_eq!(
            efficiency(ceiling, Some(4.0), None),
            Efficiency::NoThroughput
        );
        let json = serde_json::to_string(&over).unwrap();
        assert!(json.contains("\"status\":\"exceeds_ceiling\""), "{json}");
    }

    #[test]
    fn weight_footprint_and_kv_headroom() {
        // 70B bf16: 140 GB. On an 80 GB GPU: -60 GB at TP=1, +10 GB at TP=2.
        let w = weight_gb(Some(70e9), 2.0);
        assert_close(w, 140.0);
        assert_close(kv_headroom_gb(Some(80.0), w, 1), -60.0);
        assert_close(kv_headroom_gb(Some(80.0), w, 2), 10.0);
        // Mixtral 8x7B bf16 weighs its 47B total: 94 GB.
        assert_close(weight_gb(Some(47e9), 2.0), 94.0);
        assert_close(weight_gb(Some(8e9), 1.0), 8.0);
        assert_eq!(weight_gb(None, 2.0), None);
        assert_eq!(kv_headroom_gb(None, w, 1), None);
        // NVML's 81,559 MiB H100 is 85.52 GB decimal.
        assert_close(Some(bytes_to_gb(81_559 * 1_048_576)), 85.520_809_984);
    }

    #[test]
    fn r4_usable_vram_and_min_tp() {
        // 80 GB × 0.90 − 3 = 69 GB; 140 GB of weights needs ceil(2.03) = 3 GPUs.
        let usable = usable_vram_gb(Some(80.0), None);
        assert_close(usable, 69.0);
        assert_eq!(min_tp(Some(140.0), usable), Some(3));
        // At 0.95: 73 GB per GPU, and 140 / 73 = 1.92 rounds up to 2.
        let usable95 = usable_vram_gb(Some(80.0), Some(0.95));
        assert_close(usable95, 73.0);
        assert_eq!(min_tp(Some(140.0), usable95), Some(2));
        // A small model still needs one GPU, not zero.
        assert_eq!(min_tp(Some(16.0), usable), Some(1));
        assert_eq!(min_tp(Some(138.0), Some(69.0)), Some(2));
        assert_eq!(usable_vram_gb(Some(3.0), None), None);
        assert_eq!(usable_vram_gb(Some(80.0), Some(0.0)), None);
        assert_eq!(min_tp(Some(140.0), None), None);
        assert_eq!(min_tp(None, usable), None);
    }

    #[test]
    fn roofline_from_catalog_entries() {
        let c = Catalog::embedded().unwrap();
        let h100 = c.match_gpu("NVIDIA H100 80GB HBM3");
        let l70 = c.match_model("meta-llama/Llama-3.1-70B-Instruct");
        let r = roofline(h100, l70, 2.0, 1, Some(1000));
        let d = r.decode.unwrap();
        assert_close(Some(d.expected), 3350.0 / 140.0);
        assert_close(Some(d.lower), 0.85 * 3350.0 / 140.0);
        assert_close(Some(d.upper), 1.05 * 3350.0 / 140.0);
        assert_close(r.prefill.map(|p| p.expected), 67e12 / (6.0 * 70e9 * 1000.0));
        assert_close(r.ridge_batch_size, 40.0);
        assert_close(r.weight_gb, 140.0);
        assert_close(r.tpot_floor_ms, 1000.0 * 140.0 / 3350.0);

        // TP=2 doubles the ceiling; the per-GPU weight share halves.
        let r2 = roofline(h100, l70, 2.0, 2, None);
        assert_close(r2.decode.map(|d| d.expected), 2.0 * 3350.0 / 140.0);
        assert_eq!(r2.prefill, None);
        assert_close(kv_headroom_gb(Some(80.0), r2.weight_gb, 2), 80.0 - 70.0);

        // Mixtral: 13B active for the ceiling, 47B total for the weights.
        let mixtral = c.match_model("mistralai/Mixtral-8x7B-Instruct-v0.1");
        let rm = roofline(h100, mixtral, 2.0, 1, None);
        assert_close(rm.decode.map(|d| d.expected), 3350.0 / 26.0);
        assert_close(rm.weight_gb, 94.0);

        // A100 80GB with 70B: 14.6 tok/s.
        let a100 = c.match_gpu("NVIDIA A100-SXM4-80GB");
        assert_close(
            roofline(a100, l70, 2.0, 1, None).decode.map(|d| d.expected),
            2039.0 / 140.0,
        );

        // Uncatalogued GPU or model: no ceiling. A10G and GB200 carry prices but no peaks.
        for gpu in [
            c.match_gpu("NVIDIA A100"),
            c.match_gpu("NVIDIA A10G"),
            c.match_gpu("NVIDIA GB200"),
        ] {
            let r = roofline(gpu, l70, 2.0, 1, Some(1000));
            assert_eq!(
                (r.decode, r.prefill, r.ridge_batch_size, r.tpot_floor_ms),
                (None, None, None, None)
            );
            assert_close(r.weight_gb, 140.0);
        }
        assert!(c
            .match_gpu("NVIDIA A10G")
            .unwrap()
            .on_demand_usd_per_hour
            .is_some());
        let none = roofline(h100, c.match_model("tiny-llama"), 2.0, 1, Some(1000));
        assert_eq!(
            (
                none.decode,
                none.prefill,
                none.weight_gb,
                none.ridge_batch_size
            ),
            (None, None, None, None)
        );
    }
}
