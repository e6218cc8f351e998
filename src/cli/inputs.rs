//! The analysis-input flags shared by `analyze` and `compare`, and their conversion into the
//! engine's [`OperatorInputs`]. Values are passed on unchecked: `profile::inputs::resolve`
//! checks every input in one place, whichever command it came from.

use profile::inputs::OperatorInputs;
use profile::recording::{AnalysisInputs, Sourced};

/// `-m`, `--tensor-parallel-size`, `--dtype`, `--gpu-memory-utilization`, `--cost-per-hour`.
/// Each beats the value the recording stored (for `compare`: on both sides).
#[derive(Debug, Clone, clap::Args)]
pub struct InputArgs {
    /// vLLM's --max-num-seqs (no vLLM before 0.19 exposes it) [default: the vllm:max_num_seqs
    /// gauge, else the recorded value]
    #[arg(short = 'm', long = "max-num-seqs", value_name = "N")]
    max_num_seqs: Option<u32>,
    /// Tensor-parallel degree [default: the recorded value, else 1]
    #[arg(long, value_name = "N")]
    tensor_parallel_size: Option<u32>,
    /// Model weight dtype, e.g. bfloat16, fp8 [default: the recorded value, else the KV-cache
    /// dtype, the catalog's, bf16]
    #[arg(long, value_name = "DTYPE")]
    dtype: Option<String>,
    /// vLLM's --gpu-memory-utilization, a fraction [default: the recorded value, else the
    /// cache_config_info label, else 0.90]
    #[arg(long, value_name = "FRACTION")]
    gpu_memory_utilization: Option<f64>,
    /// What the server's GPUs cost, dollars per hour in all [default: the recorded value, else
    /// the catalog's on-demand price]
    #[arg(long, value_name = "USD")]
    cost_per_hour: Option<f64>,
}

impl InputArgs {
    /// The flags as the engine takes them.
    pub fn to_operator(&self) -> OperatorInputs {
        OperatorInputs {
            max_num_seqs: self.max_num_seqs,
            tensor_parallel_size: self.tensor_parallel_size,
            dtype: self.dtype.clone(),
            gpu_memory_utilization: self.gpu_memory_utilization,
            cost_per_hour: self.cost_per_hour,
        }
    }

    /// The flags as a recording stores them (`profile import`), each with its flag as source.
    /// Checked when analysed, like every recorded value.
    pub fn to_recorded(&self) -> AnalysisInputs {
        fn sourced<T: Clone>(v: &Option<T>, flag: &str) -> Option<Sourced<T>> {
            v.clone().map(|value| Sourced {
                value,
                source: flag.to_string(),
            })
        }
        AnalysisInputs {
            max_num_seqs: sourced(&self.max_num_seqs, "--max-num-seqs"),
            tensor_parallel_size: sourced(&self.tensor_parallel_size, "--tensor-parallel-size"),
            dtype: sourced(&self.dtype, "--dtype"),
            cost_per_hour: sourced(&self.cost_per_hour, "--cost-per-hour"),
            gpu_memory_utilization: sourced(
                &self.gpu_memory_utilization,
                "--gpu-memory-utilization",
            ),
        }
    }
}
