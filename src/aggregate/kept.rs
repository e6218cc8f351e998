//! What is kept of every window once the aggregate has folded it: the fields the rules, the
//! fleet's replica timeline and the report's availability read after the last window is
//! computed. A full [`Window`] is 1.6 KB (seven histograms, every gauge, rate and total); this
//! is about a quarter of that, so that a week of 2 s windows (302,400) need not hold 480 MB of
//! windows for rules that read a few of their fields. Full windows are kept as well only where
//! the report lists them (per-window rows) or reads their buckets (samples, SLO).

use super::{window_gate, Gate, Timed};
use crate::units::MonoNs;
use crate::window::{skew_s, EngineWindow, Window};
use serde::Serialize;

/// The two figures the rules read of a histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct KeptHist {
    /// Δsum first→last scrape ([`crate::window::HistWindow::delta_sum`]).
    pub delta_sum: Option<f64>,
    /// The window's mean ([`crate::window::HistWindow::mean`]).
    pub mean: Option<f64>,
}

/// What the rules read of a window's GPU polls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct KeptGpu {
    /// Mean power draw, watts (summed over GPUs).
    pub power_w_mean: Option<f64>,
    /// VRAM in use at the last poll, MiB.
    pub vram_used_mib_last: Option<f64>,
    /// VRAM total at the last poll, MiB.
    pub vram_total_mib_last: Option<f64>,
    /// Largest VRAM in use over the window's polls, MiB.
    pub vram_peak_mib: Option<f64>,
    /// Completion time of the window's last poll.
    pub observed_mono: Option<MonoNs>,
}

/// One window as the stages after the aggregate read it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeptWindow {
    /// [`Window::index`].
    pub index: u32,
    /// [`Window::start_mono`].
    pub start_mono: MonoNs,
    /// [`Window::end_mono`].
    pub end_mono: MonoNs,
    /// [`Window::duration_s`].
    pub duration_s: Option<f64>,
    /// [`Window::last_scrape_mono`].
    pub last_scrape_mono: Option<MonoNs>,
    /// [`Window::running_last`].
    pub running_last: Option<f64>,
    /// [`Window::running_mean`].
    pub running_mean: Option<f64>,
    /// [`Window::waiting_mean`].
    pub waiting_mean: Option<f64>,
    /// [`Window::waiting_deferred_mean`].
    pub waiting_deferred_mean: Option<f64>,
    /// [`Window::kv_cache_pct_last`].
    pub kv_cache_pct_last: Option<f64>,
    /// [`Window::kv_cache_pct_mean`].
    pub kv_cache_pct_mean: Option<f64>,
    /// [`Window::kv_cache_peak_pct`].
    pub kv_cache_peak_pct: Option<f64>,
    /// [`Window::generation_tokens_delta`].
    pub generation_tokens_delta: Option<f64>,
    /// [`Window::prompt_tokens_delta`].
    pub prompt_tokens_delta: Option<f64>,
    /// [`Window::preemptions_delta`].
    pub preemptions_delta: Option<f64>,
    /// [`Window::generation_tokens_per_s`].
    pub generation_tokens_per_s: Option<f64>,
    /// [`Window::requests_per_s`].
    pub requests_per_s: Option<f64>,
    /// [`Window::prefix_hits_delta`].
    pub prefix_hits_delta: Option<f64>,
    /// [`Window::prefix_queries_delta`].
    pub prefix_queries_delta: Option<f64>,
    /// [`Window::prefix_cache_hit_pct`].
    pub prefix_cache_hit_pct: Option<f64>,
    /// [`Window::api_server_cpu_cores`].
    pub api_server_cpu_cores: Option<f64>,
    /// [`Window::host_cpu_cores`].
    pub host_cpu_cores: Option<f64>,
    /// [`Window::first_reset_mono`].
    pub first_reset_mono: Option<MonoNs>,
    /// [`Window::engines`].
    pub engines: Vec<EngineWindow>,
    /// [`Window::prefill_s`].
    pub prefill_s: KeptHist,
    /// [`Window::prompt_tokens`].
    pub prompt_tokens: KeptHist,
    /// [`Window::gpu`].
    pub gpu: KeptGpu,
    /// The gate's verdict without and with GPU data in the recording (known only at the end).
    gates: [Gate; 2],
}

impl KeptWindow {
    /// What is kept of `w`.
    pub fn of(w: &Window) -> KeptWindow {
        KeptWindow {
            index: w.index,
            start_mono: w.start_mono,
            end_mono: w.end_mono,
            duration_s: w.duration_s,
            last_scrape_mono: w.last_scrape_mono,
            running_last: w.running_last,
            running_mean: w.running_mean,
            waiting_mean: w.waiting_mean,
            waiting_deferred_mean: w.waiting_deferred_mean,
            kv_cache_pct_last: w.kv_cache_pct_last,
            kv_cache_pct_mean: w.kv_cache_pct_mean,
            kv_cache_peak_pct: w.kv_cache_peak_pct,
            generation_tokens_delta: w.generation_tokens_delta,
            prompt_tokens_delta: w.prompt_tokens_delta,
            preemptions_delta: w.preemptions_delta,
            generation_tokens_per_s: w.generation_tokens_per_s,
            requests_per_s: w.requests_per_s,
            prefix_hits_delta: w.prefix_hits_delta,
            prefix_queries_delta: w.prefix_queries_delta,
            prefix_cache_hit_pct: w.prefix_cache_hit_pct,
            api_server_cpu_cores: w.api_server_cpu_cores,
            host_cpu_cores: w.host_cpu_cores,
            first_reset_mono: w.first_reset_mono,
            engines: w.engines.clone(),
            prefill_s: KeptHist {
                delta_sum: w.prefill_s.delta_sum,
                mean: w.prefill_s.mean,
            },
            prompt_tokens: KeptHist {
                delta_sum: w.prompt_tokens.delta_sum,
                mean: w.prompt_tokens.mean,
            },
            gpu: KeptGpu {
                power_w_mean: w.gpu.power_w_mean,
                vram_used_mib_last: w.gpu.vram_used_mib_last,
                vram_total_mib_last: w.gpu.vram_total_mib_last,
                vram_peak_mib: w.gpu.vram_peak_mib,
                observed_mono: w.gpu.observed_mono,
            },
            gates: [window_gate(w, false), window_gate(w, true)],
        }
    }

    /// The shared gate's verdict ([`window_gate`]) for a recording with or without GPU data.
    pub fn gate(&self, has_gpu_data: bool) -> Gate {
        self.gates[usize::from(has_gpu_data)]
    }

    /// [`Window::source_skew_s`].
    pub fn source_skew_s(&self) -> Option<f64> {
        skew_s(self.last_scrape_mono?, self.gpu.observed_mono?)
    }
}

impl Timed for KeptWindow {
    fn duration_s(&self) -> Option<f64> {
        self.duration_s
    }
}
