//! The analysis inputs that vLLM's metrics do not carry, or carry only sometimes: the
//! concurrency cap, the tensor-parallel degree, the weight dtype (and so bytes per parameter),
//! `--gpu-memory-utilization` and the hourly cost. Each is resolved here, once, into a value
//! with its source; the report, the ceiling and the rules all read that one value, so they can
//! never name different caps or degrees.
//!
//! Orders (spec seed 000, "Baseline inputs" and "Fallbacks"; where the spec names no place for
//! a value given to `analyze`, it goes before the value recorded with `record`, since the
//! operator is correcting the recording):
//!
//! | input | order |
//! | --- | --- |
//! | `max_num_seqs` | `vllm:max_num_seqs` gauge → `-m` (analyze) → `-m` (recorded) → none |
//! | tensor parallel | `--tensor-parallel-size` (analyze) → recorded flag or `TENSOR_PARALLEL_SIZE` / `VLLM_TENSOR_PARALLEL_SIZE` → 1 |
//! | dtype | `--dtype` (analyze) → recorded flag or `DTYPE` / `VLLM_DTYPE` → `cache_dtype` label → catalog default → bf16 |
//! | GPU memory utilisation | `--gpu-memory-utilization` (analyze) → recorded → `cache_config_info` label → vLLM's 0.90 |
//! | cost per hour | `--cost-per-hour` (analyze) → recorded → catalog on-demand × GPUs → none |
//!
//! A value the operator gave (a flag, or an environment variable the recorder captured) that
//! is unusable (zero, negative, NaN, a dtype that names no width) is refused with an
//! [`InputError`] naming where it came from: the operator meant something, and silently
//! replacing it would change every figure. A value the *server* reported that is unusable (a
//! cap gauge of 0, a utilisation label of 1.5) is skipped with a note, since the operator can
//! not correct the server's metrics and the next source may still be good. `auto` as a dtype
//! is vLLM's "the model's own dtype": it names no width, so the next source decides, with a
//! note.
//!
//! The analyzer reads no environment: environment variables count only as the recorder
//! captured them in the manifest.

use crate::catalog::roofline::{bytes_per_param, DEFAULT_GPU_MEMORY_UTILIZATION};
use crate::catalog::{GpuSpec, ModelSpec};
use crate::recording::manifest::AnalysisInputs;
pub use crate::recording::manifest::Sourced;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Suffix naming a value the analyze command line gave.
pub const FROM_ANALYZE: &str = "(analyze)";
/// Suffix naming a value the manifest recorded.
pub const FROM_RECORD: &str = "(recorded)";
/// Source label of a cap read from the `vllm:max_num_seqs` gauge.
pub const MAX_NUM_SEQS_GAUGE_SOURCE: &str = "vllm:max_num_seqs";
/// Source label of a utilisation read from the `cache_config_info` label.
pub const GMU_LABEL_SOURCE: &str = "vllm:cache_config_info label";
/// Source label of vLLM's default utilisation.
pub const GMU_DEFAULT_SOURCE: &str = "vLLM default";

/// What the operator told `analyze` (or `compare`, `diagnose`), as plain values, unchecked:
/// [`resolve`] checks them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperatorInputs {
    /// `-m` / `--max-num-seqs`.
    pub max_num_seqs: Option<u32>,
    /// `--tensor-parallel-size`.
    pub tensor_parallel_size: Option<u32>,
    /// `--dtype` (`bfloat16`, `fp8`, ...).
    pub dtype: Option<String>,
    /// `--gpu-memory-utilization`, a fraction in (0, 1].
    pub gpu_memory_utilization: Option<f64>,
    /// `--cost-per-hour`, dollars per hour for the whole server.
    pub cost_per_hour: Option<f64>,
}

/// An operator-given value that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The value and where it came from, and why it was refused.
    #[error("invalid {name} {value}: {reason}")]
    Invalid {
        /// The flag or variable with its origin, e.g. `--tensor-parallel-size (analyze)`.
        name: String,
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

fn invalid(name: &str, value: impl ToString, reason: &str) -> InputError {
    InputError::Invalid {
        name: name.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
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
    /// Nothing said: 1 assumed, which understates a multi-GPU server's ceilings.
    Default,
}

/// The tensor-parallel degree and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorParallel {
    /// The degree, at least 1.
    pub value: u32,
    /// Which step decided it.
    pub source: TpSource,
    /// The exact origin, e.g. `TENSOR_PARALLEL_SIZE (recorded)`.
    pub source_label: String,
}

/// Which step of the dtype chain decided bytes per parameter. R4's confidence depends on it
/// (spec, Rules / Confidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DtypeSource {
    /// A `--dtype` flag (to `analyze`, or to `record`): the operator saying what the server
    /// runs, exactly as `DTYPE` / `VLLM_DTYPE` do.
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

impl DtypeSource {
    /// Whether the operator stated the dtype (flag or environment).
    pub fn is_operator(self) -> bool {
        matches!(
            self,
            DtypeSource::Flag | DtypeSource::DtypeEnv | DtypeSource::VllmDtypeEnv
        )
    }
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

/// The hourly cost of the server's GPUs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// US dollars per hour for all the server's GPUs.
    pub usd_per_hour: f64,
    /// Which step decided it.
    pub source: CostSource,
    /// The exact origin, e.g. `catalog on-demand H100 SXM x 2 GPU(s)`.
    pub source_label: String,
    /// True for a catalog price (a market average, shown `(est)`).
    pub estimated: bool,
}

/// Every input, resolved: what the report shows, the ceiling computes with and the rules read.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedInputs {
    /// The concurrency cap; `None`: R1, R5 and R2's backlog path stay silent.
    pub max_num_seqs: Option<Sourced<u32>>,
    /// Tensor-parallel degree.
    pub tensor_parallel: TensorParallel,
    /// Bytes per parameter, from the dtype.
    pub bytes_per_param: BytesPerParam,
    /// `--gpu-memory-utilization` in effect, always known (vLLM's default when unsaid).
    pub gpu_memory_utilization: Sourced<f64>,
    /// Hourly cost; `None` when nothing gives one.
    pub cost_per_hour: Option<Cost>,
}

/// Something resolution skipped and why, for the report's "not available" list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputNote {
    /// What was skipped.
    pub what: String,
    /// Why.
    pub why: String,
}

/// What [`resolve`] looks at.
#[derive(Debug, Clone, Copy)]
pub struct InputSources<'a> {
    /// What the operator told the analysis.
    pub operator: &'a OperatorInputs,
    /// What the recorder stored in the manifest.
    pub recorded: &'a AnalysisInputs,
    /// The `vllm:max_num_seqs` gauge's aggregate value, when the server exposes it.
    pub max_num_seqs_gauge: Option<f64>,
    /// The labels of `vllm:cache_config_info`.
    pub cache_config: &'a BTreeMap<String, String>,
    /// The matched model entry (its default dtype).
    pub model: Option<&'a ModelSpec>,
    /// The matched GPU entry (its price).
    pub gpu: Option<&'a GpuSpec>,
}

/// Resolves every input in the orders of the module header. Fails only on an unusable
/// operator value; skipped server values come back as notes.
pub fn resolve(src: &InputSources<'_>) -> Result<(ResolvedInputs, Vec<InputNote>), InputError> {
    let mut notes = Vec::new();
    let max_num_seqs = max_num_seqs(src, &mut notes)?;
    let tensor_parallel = tensor_parallel(src)?;
    let bytes_per_param = dtype(src, &mut notes)?;
    let gpu_memory_utilization = gpu_memory_utilization(src, &mut notes)?;
    let cost_per_hour = cost_per_hour(src, tensor_parallel.value)?;
    let resolved = ResolvedInputs {
        max_num_seqs,
        tensor_parallel,
        bytes_per_param,
        gpu_memory_utilization,
        cost_per_hour,
    };
    Ok((resolved, notes))
}

fn recorded_label<T>(s: &Sourced<T>) -> String {
    format!("{} {FROM_RECORD}", s.source)
}

fn analyze_label(flag: &str) -> String {
    format!("{flag} {FROM_ANALYZE}")
}

/// A whole number of at least 1 given by the operator, or the error naming it.
fn at_least_one(value: u32, label: &str, what: &str) -> Result<u32, InputError> {
    if value >= 1 {
        Ok(value)
    } else {
        Err(invalid(
            label,
            value,
            &format!("{what} must be a whole number of at least 1"),
        ))
    }
}

fn max_num_seqs(
    src: &InputSources<'_>,
    notes: &mut Vec<InputNote>,
) -> Result<Option<Sourced<u32>>, InputError> {
    const WHAT: &str = "max_num_seqs";
    // Operator values are checked whether or not the gauge wins: a bad flag is a mistake to
    // report, not to hide behind a good gauge.
    let flag = match src.operator.max_num_seqs {
        Some(v) => {
            let label = analyze_label("-m");
            Some(Sourced {
                value: at_least_one(v, &label, WHAT)?,
                source: label,
            })
        }
        None => None,
    };
    let recorded = match &src.recorded.max_num_seqs {
        Some(s) => {
            let label = recorded_label(s);
            Some(Sourced {
                value: at_least_one(s.value, &label, WHAT)?,
                source: label,
            })
        }
        None => None,
    };
    let gauge = match src.max_num_seqs_gauge {
        Some(g) if g.is_finite() && g >= 1.0 && g.fract() == 0.0 && g <= f64::from(u32::MAX) => {
            Some(Sourced {
                value: g as u32,
                source: MAX_NUM_SEQS_GAUGE_SOURCE.to_string(),
            })
        }
        Some(g) => {
            notes.push(InputNote {
                what: format!("{MAX_NUM_SEQS_GAUGE_SOURCE} value"),
                why: format!(
                    "the server reported {g}, which is not a concurrency cap (a whole number of \
                     at least 1); the next source was used"
                ),
            });
            None
        }
        None => None,
    };
    Ok(gauge.or(flag).or(recorded))
}

fn tensor_parallel(src: &InputSources<'_>) -> Result<TensorParallel, InputError> {
    const WHAT: &str = "tensor-parallel size";
    if let Some(v) = src.operator.tensor_parallel_size {
        let label = analyze_label("--tensor-parallel-size");
        return Ok(TensorParallel {
            value: at_least_one(v, &label, WHAT)?,
            source: TpSource::Flag,
            source_label: label,
        });
    }
    if let Some(s) = &src.recorded.tensor_parallel_size {
        let label = recorded_label(s);
        let source = match s.source.as_str() {
            "TENSOR_PARALLEL_SIZE" => TpSource::TensorParallelSizeEnv,
            "VLLM_TENSOR_PARALLEL_SIZE" => TpSource::VllmTensorParallelSizeEnv,
            _ => TpSource::Flag,
        };
        return Ok(TensorParallel {
            value: at_least_one(s.value, &label, WHAT)?,
            source,
            source_label: label,
        });
    }
    Ok(TensorParallel {
        value: 1,
        source: TpSource::Default,
        source_label: "default".to_string(),
    })
}

/// `auto` and its spellings: vLLM's "use the model's own dtype", which names no width.
fn is_auto(dtype: &str) -> bool {
    dtype.trim().eq_ignore_ascii_case("auto")
}

fn dtype(src: &InputSources<'_>, notes: &mut Vec<InputNote>) -> Result<BytesPerParam, InputError> {
    let operator = match (&src.operator.dtype, &src.recorded.dtype) {
        (Some(d), _) => Some((d.clone(), analyze_label("--dtype"), DtypeSource::Flag)),
        (None, Some(s)) => {
            let source = match s.source.as_str() {
                "DTYPE" => DtypeSource::DtypeEnv,
                "VLLM_DTYPE" => DtypeSource::VllmDtypeEnv,
                _ => DtypeSource::Flag,
            };
            Some((s.value.clone(), recorded_label(s), source))
        }
        (None, None) => None,
    };
    if let Some((dtype, label, source)) = operator {
        if let Some(value) = bytes_per_param(&dtype) {
            return Ok(BytesPerParam {
                value,
                dtype: Some(dtype),
                source,
                source_label: label,
            });
        }
        if !is_auto(&dtype) {
            return Err(invalid(
                &label,
                format!("{dtype:?}"),
                "names no weight width profile knows (fp8, bf16, fp16, fp32; or auto); pass \
                 --dtype to analyze to override",
            ));
        }
        notes.push(InputNote {
            what: "operator dtype".to_string(),
            why: format!(
                "{dtype:?} from {label} names no width (fp8, bf16, fp16, fp32); the next source \
                 was used"
            ),
        });
    }
    let kv = src.cache_config.get("cache_dtype");
    if let Some((kv, value)) = kv.and_then(|d| Some((d, bytes_per_param(d)?))) {
        return Ok(BytesPerParam {
            value,
            dtype: Some(kv.clone()),
            source: DtypeSource::KvCacheDtype,
            source_label: "kv_cache_dtype (vllm:cache_config_info)".to_string(),
        });
    }
    let default = src.model.and_then(|m| {
        let d = m.default_dtype.as_ref()?;
        Some((m, d, bytes_per_param(d)?))
    });
    if let Some((m, d, value)) = default {
        return Ok(BytesPerParam {
            value,
            dtype: Some(d.clone()),
            source: DtypeSource::CatalogDefault,
            source_label: format!("catalog default of {}", m.name),
        });
    }
    Ok(BytesPerParam {
        value: crate::catalog::roofline::FALLBACK_BYTES_PER_PARAM,
        dtype: None,
        source: DtypeSource::Bf16Fallback,
        source_label: "bf16 fallback".to_string(),
    })
}

/// A utilisation fraction in (0, 1].
fn is_fraction(v: f64) -> bool {
    v.is_finite() && v > 0.0 && v <= 1.0
}

fn gpu_memory_utilization(
    src: &InputSources<'_>,
    notes: &mut Vec<InputNote>,
) -> Result<Sourced<f64>, InputError> {
    const REASON: &str = "must be a fraction above 0 and at most 1";
    if let Some(v) = src.operator.gpu_memory_utilization {
        let label = analyze_label("--gpu-memory-utilization");
        if !is_fraction(v) {
            return Err(invalid(&label, v, REASON));
        }
        return Ok(Sourced {
            value: v,
            source: label,
        });
    }
    if let Some(s) = &src.recorded.gpu_memory_utilization {
        let label = recorded_label(s);
        if !is_fraction(s.value) {
            return Err(invalid(&label, s.value, REASON));
        }
        return Ok(Sourced {
            value: s.value,
            source: label,
        });
    }
    if let Some(raw) = src.cache_config.get("gpu_memory_utilization") {
        match raw.trim().parse::<f64>() {
            Ok(v) if is_fraction(v) => {
                return Ok(Sourced {
                    value: v,
                    source: GMU_LABEL_SOURCE.to_string(),
                })
            }
            _ => notes.push(InputNote {
                what: "gpu_memory_utilization label".to_string(),
                why: format!(
                    "vllm:cache_config_info says {raw:?}, not a fraction in (0, 1]; vLLM's \
                     default {DEFAULT_GPU_MEMORY_UTILIZATION} was used"
                ),
            }),
        }
    }
    Ok(Sourced {
        value: DEFAULT_GPU_MEMORY_UTILIZATION,
        source: GMU_DEFAULT_SOURCE.to_string(),
    })
}

fn cost_per_hour(src: &InputSources<'_>, n_gpus: u32) -> Result<Option<Cost>, InputError> {
    const REASON: &str = "must be a finite number of dollars, zero or more";
    let given = match (src.operator.cost_per_hour, &src.recorded.cost_per_hour) {
        (Some(v), _) => Some((v, CostSource::AnalyzeFlag, analyze_label("--cost-per-hour"))),
        (None, Some(s)) => Some((s.value, CostSource::Recorded, recorded_label(s))),
        (None, None) => None,
    };
    if let Some((usd, source, label)) = given {
        if !(usd.is_finite() && usd >= 0.0) {
            return Err(invalid(&label, usd, REASON));
        }
        return Ok(Some(Cost {
            usd_per_hour: usd,
            source,
            source_label: label,
            estimated: false,
        }));
    }
    // The catalog price is per GPU, and a TP=N server rents N of them (the spec is silent; one
    // GPU's price for a TP=4 server would understate its cost four-fold).
    let priced = src.gpu.and_then(|g| {
        let p = g
            .on_demand_usd_per_hour
            .filter(|p| p.is_finite() && *p >= 0.0)?;
        Some((g, p))
    });
    Ok(priced.map(|(g, per_gpu)| Cost {
        usd_per_hour: per_gpu * f64::from(n_gpus.max(1)),
        source: CostSource::CatalogOnDemand,
        source_label: format!("catalog on-demand {} x {n_gpus} GPU(s)", g.name),
        estimated: true,
    }))
}

#[cfg(test)]
mod tests;
