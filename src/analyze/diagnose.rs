//! The rules' inputs, from the resolved inputs and the roofline the ceiling section was built
//! from: the report and the diagnosis can never disagree on the cap, the tensor-parallel
//! degree, the bytes per parameter, the weight footprint or the VRAM per GPU, since each is
//! computed once.

use super::ceiling::Roof;
use crate::aggregate::Aggregate;
use crate::inputs::ResolvedInputs;
use crate::rules::{self, Diagnosis, MemoryFacts, RuleInputs};
use crate::window::WindowSet;

/// Runs the rules on the windows and aggregate with the resolved inputs.
pub(super) fn diagnosis(
    set: &WindowSet,
    agg: &Aggregate,
    inputs: &ResolvedInputs,
    roof: &Roof,
) -> Diagnosis {
    let memory = MemoryFacts {
        weight_gb: roof.rl.weight_gb,
        tp: inputs.tensor_parallel.value,
        tp_source: inputs.tensor_parallel.source,
        vram_total_gb: roof.vram_gb(),
        dtype_source: inputs.bytes_per_param.source,
    };
    let ri = RuleInputs::from_resolved(&set.mapping, inputs, memory);
    rules::diagnose(set, agg, &ri)
}
