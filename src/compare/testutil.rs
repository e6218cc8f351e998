//! Hand-made reports for the comparison's and the loop's tests, unit and integration alike
//! (hence public, and hidden from the docs): a minimal valid [`Report`] and setters for the
//! figures the direction rests on.

use crate::report::*;
use std::collections::BTreeMap;

/// A report with nothing measured: no efficiency, no throughput, no latency, model `m`, one
/// GPU named `H100`.
pub fn minimal_report(label: &str) -> Report {
    Report {
        schema_version: SCHEMA_VERSION.to_string(),
        recording: RecordingFacts {
            label: label.to_string(),
            target_url: "http://127.0.0.1:8000/metrics".to_string(),
            vllm_version: None,
            model_name: Some("m".to_string()),
            started_at: "2026-11-23T09:00:00.000Z".to_string(),
            range_from: None,
            range_to: None,
            first_scrape_at: None,
            last_scrape_at: None,
            span_s: None,
            scrapes_total: 0,
            scrapes_ok: 0,
            scrapes_failed: 0,
            gpu_count: 1,
            gpus: vec![GpuFact {
                index: 0,
                name: Some("H100".to_string()),
                vram_total_gb: None,
            }],
            gpu_note: None,
            engines: vec![],
            damaged_files: vec![],
            data_warnings: vec![],
        },
        inputs: Inputs {
            max_num_seqs: None,
            gpu_memory_utilization: None,
            cache_config: BTreeMap::new(),
            metrics_used: vec![],
        },
        windows: WindowSummary {
            window_s: 2.0,
            total: 0,
            evaluable: 0,
            active: 0,
            active_no_gpu_fallback: 0,
            has_gpu_data: true,
            no_gpu_fallback: false,
            no_gpu_fallback_note: None,
            all_non_evaluable: false,
            last_raw_window: None,
            active_duration_s: None,
            evaluable_duration_s: None,
            rows: vec![],
        },
        metrics: Metrics::default(),
        ceiling: Ceiling {
            catalog: "embedded".to_string(),
            gpu_name: None,
            gpu: None,
            model_name: None,
            model: None,
            bytes_per_param: BytesPerParam {
                value: 2.0,
                dtype: None,
                source: DtypeSource::Bf16Fallback,
                source_label: "bf16 assumed".to_string(),
            },
            tensor_parallel: TensorParallel {
                value: 1,
                source: TpSource::Default,
                source_label: "default".to_string(),
            },
            roofline_params: None,
            weight_params: None,
            decode_tps: None,
            seq_len: None,
            prefill_per_s: None,
            ridge_batch_size: None,
            aggregate_ceiling_tps: None,
            efficiency: Efficiency::NoCeiling,
            headroom_pct: None,
            weight_gb: None,
            vram_total_gb: None,
            kv_headroom_gb: None,
            usable_vram_gb: None,
            min_tp: None,
            tpot_floor_ms: None,
            prefill_floor_ms: None,
            prefill_floor_suppressed: false,
            measured_tflops_per_gpu: None,
            measured_mbu_pct: None,
            measured_dram_bw_util_pct: None,
        },
        economics: Economics {
            tokens_per_watt: None,
            joules_per_token: None,
            cost_per_hour: None,
            usd_per_million_tokens: None,
            recoverable_usd_per_hour: None,
        },
        unavailable: vec![],
        diagnosis: None,
        availability: Vec::new(),
        samples: None,
        slo: None,
        host: None,
    }
}

/// A report with the given efficiency %, throughput (tok/s) and TTFT p99 (ms); `None` leaves
/// a figure missing.
pub fn report_with(eff: Option<f64>, tps: Option<f64>, ttft_p99: Option<f64>) -> Report {
    let mut r = minimal_report("rec");
    if let Some(pct) = eff {
        r.ceiling.efficiency = Efficiency::Shown { pct };
    }
    r.metrics.generation_tokens_per_s = tps;
    r.metrics.ttft.p99_ms = ttft_p99;
    r
}
