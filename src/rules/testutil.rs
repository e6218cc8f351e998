//! Hand-built windows for the rule tests: a busy, healthy default that fires no rule, which
//! each test bends one field at a time.

use super::{Ctx, RuleInputs};
use crate::aggregate::{aggregate, Aggregate, KeptWindow};
use crate::recording::Sourced;
use crate::units::MonoNs;
use crate::window::{blank_window, set_of, Window, WindowSet};

/// An active 2 s window that fires nothing with a cap of 16: 8 running (50%), no queue,
/// KV 50%, light prefill, 4 req/s, 60% prefix hits, 100-token prompts, no preemptions, no GPU.
pub fn base(i: u32) -> Window {
    let mut w = blank_window(i);
    w.duration_s = Some(2.0);
    w.last_scrape_seq = Some(u64::from(i));
    w.last_scrape_mono = Some(MonoNs(i64::from(i) * 2_000_000_000 + 1_900_000_000));
    w.running_last = Some(8.0);
    w.running_mean = Some(8.0);
    w.waiting_last = Some(0.0);
    w.waiting_mean = Some(0.0);
    w.kv_cache_pct_last = Some(50.0);
    w.kv_cache_pct_mean = Some(50.0);
    w.kv_cache_peak_pct = Some(50.0);
    w.generation_tokens_delta = Some(400.0);
    w.generation_tokens_per_s = Some(200.0);
    w.preemptions_delta = Some(0.0);
    w.preemptions_per_s = Some(0.0);
    w.requests_delta = Some(8.0);
    w.requests_per_s = Some(4.0);
    w.prefix_hits_delta = Some(600.0);
    w.prefix_queries_delta = Some(1000.0);
    w.prefix_cache_hit_pct = Some(60.0);
    w.prefill_s.delta_sum = Some(0.2);
    w.prefill_s.delta_count = Some(8.0);
    w.prefill_s.mean = Some(0.025);
    w.prompt_tokens.delta_sum = Some(800.0);
    w.prompt_tokens.delta_count = Some(8.0);
    w.prompt_tokens.mean = Some(100.0);
    w.ttft_s.delta_sum = Some(0.4);
    w.ttft_s.delta_count = Some(8.0);
    w.ttft_s.mean = Some(0.05);
    w
}

/// An evaluable but idle window: nothing running.
pub fn idle(i: u32) -> Window {
    let mut w = base(i);
    w.running_last = Some(0.0);
    w.running_mean = Some(0.0);
    w.kv_cache_pct_last = Some(0.0);
    w.kv_cache_pct_mean = Some(0.0);
    w.kv_cache_peak_pct = Some(0.0);
    w.requests_per_s = Some(0.0);
    w
}

/// `n` base windows bent by `f`.
pub fn windows(n: u32, f: impl Fn(&mut Window)) -> Vec<Window> {
    (0..n)
        .map(|i| {
            let mut w = base(i);
            f(&mut w);
            w
        })
        .collect()
}

/// A window set around `windows`, renumbered in order.
pub fn set(mut windows: Vec<Window>, has_gpu_data: bool) -> WindowSet {
    for (i, w) in windows.iter_mut().enumerate() {
        w.index = i as u32;
    }
    set_of(windows, has_gpu_data)
}

/// Inputs with a cap of `m` given by `-m`.
pub fn inputs_m(m: u32) -> RuleInputs {
    RuleInputs {
        max_num_seqs: Some(Sourced {
            value: m,
            source: "-m".to_string(),
        }),
        ..RuleInputs::default()
    }
}

/// A set, its aggregate and inputs, held together so a `Ctx` can borrow them.
pub struct Fixture {
    pub set: WindowSet,
    pub kept: Vec<KeptWindow>,
    pub agg: Aggregate,
    pub inputs: RuleInputs,
}

impl Fixture {
    pub fn new(windows: Vec<Window>, inputs: RuleInputs) -> Fixture {
        Fixture::with_gpu(windows, false, inputs)
    }

    pub fn with_gpu(windows: Vec<Window>, has_gpu_data: bool, inputs: RuleInputs) -> Fixture {
        let set = set(windows, has_gpu_data);
        let agg = aggregate(&set);
        let kept = set.windows.iter().map(KeptWindow::of).collect();
        Fixture {
            set,
            kept,
            agg,
            inputs,
        }
    }

    pub fn ctx(&self) -> Ctx<'_> {
        Ctx::new(&self.set, &self.kept, &self.agg, &self.inputs)
    }

    /// Runs one rule's `evaluate` on these windows and inputs.
    pub fn run(&self, evaluate: fn(&Ctx<'_>) -> super::Outcome) -> super::Outcome {
        evaluate(&self.ctx())
    }
}
