use crate::analyze::{analyze, analyze_deferred, AnalyzeConfig, AnalyzeError};
use crate::catalog::Catalog;
use crate::gpu::{GpuInfo, GpuMetrics};
use crate::recording::{Recording, Sourced};
use crate::report::*;
use crate::vllm::names::*;
use crate::vllm::testutil::RecBuilder;

/// What the hand-made server did: steady load for 10 s, scraped every 250 ms.
#[derive(Clone)]
struct Fx {
    running: f64,
    gen_tps: f64,
    kv_frac: f64,
    gpu: bool,
    gpu_name: &'static str,
    model: Option<&'static str>,
    cache_config: &'static str,
}

const H100: &str = "NVIDIA H100 80GB HBM3";
const LLAMA70: &str = "meta-llama/Meta-Llama-3-70B-Instruct";
const H100_BYTES: u64 = 85_520_809_984;

fn fx() -> Fx {
    Fx {
        running: 8.0,
        gen_tps: 100.0,
        kv_frac: 0.5,
        gpu: true,
        gpu_name: H100,
        model: Some(LLAMA70),
        cache_config: "",
    }
}

fn rec(f: &Fx) -> Recording {
    let mut b = RecBuilder::new();
    let run = b.gauge(NUM_REQUESTS_RUNNING, "");
    let wait = b.gauge(NUM_REQUESTS_WAITING, "");
    let kv = b.gauge(KV_CACHE_USAGE_PERC, "");
    let gen = b.counter(GENERATION_TOKENS_TOTAL, "");
    let req = b.counter(REQUEST_SUCCESS_TOTAL, "");
    let ttft = b.hist(TIME_TO_FIRST_TOKEN_SECONDS, "", &[0.1, 0.5, 1.0]);
    let tpot = b.hist(
        REQUEST_TIME_PER_OUTPUT_TOKEN_SECONDS,
        "",
        &[0.01, 0.05, 0.1],
    );
    let prompt = b.hist(REQUEST_PROMPT_TOKENS, "", &[100.0, 500.0, 1000.0]);
    if !f.cache_config.is_empty() {
        b.gauge(CACHE_CONFIG_INFO, f.cache_config);
    }
    for i in 0..=40i64 {
        let t_ms = i * 250;
        // One request finishes per scrape: TTFT 0.2 s, TPOT 40 ms, 300 prompt tokens.
        let n = i as f64;
        let mut s = vec![
            (run, f.running),
            (wait, 1.0),
            (kv, f.kv_frac),
            (gen, f.gen_tps * t_ms as f64 / 1000.0),
            (req, n),
        ];
        for (h, lo) in [(&ttft, 1), (&tpot, 1), (&prompt, 1)] {
            for (k, id) in h.buckets.iter().enumerate() {
                s.push((*id, if k < lo { 0.0 } else { n }));
            }
        }
        s.extend([
            (ttft.sum, 0.2 * n),
            (ttft.count, n),
            (tpot.sum, 0.04 * n),
            (tpot.count, n),
            (prompt.sum, 300.0 * n),
            (prompt.count, n),
        ]);
        b.scrape(t_ms, &s);
        if f.gpu {
            b.gpu(
                t_ms,
                0,
                GpuMetrics {
                    util_pct: Some(90),
                    power_w: Some(400.0),
                    vram_used_bytes: Some(70_000 * 1024 * 1024),
                    vram_total_bytes: Some(H100_BYTES),
                    temperature_c: Some(60),
                    ..GpuMetrics::default()
                },
            );
        }
    }
    let mut r = b.build();
    r.manifest.model_name = f.model.map(str::to_string);
    if f.gpu {
        r.manifest.gpus = vec![GpuInfo {
            index: 0,
            name: Some(f.gpu_name.to_string()),
            uuid: None,
            serial: None,
            vram_total_bytes: Some(H100_BYTES),
            power_limit_w: Some(700.0),
        }];
    } else {
        r.manifest.gpu_note = Some("--gpus none".to_string());
    }
    r
}

fn cat() -> Catalog {
    Catalog::embedded().unwrap()
}

fn run(r: &Recording, cfg: &AnalyzeConfig) -> Report {
    analyze(r, &cat(), cfg).unwrap()
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() <= 1e-9 * b.abs().max(1.0))
}

fn why<'a>(r: &'a Report, what: &str) -> Option<&'a str> {
    r.unavailable
        .iter()
        .find(|u| u.what == what)
        .map(|u| u.why.as_str())
}

#[test]
fn ceiling_for_h100_sxm_and_llama_3_70b() {
    let r = run(&rec(&fx()), &AnalyzeConfig::default());
    let c = &r.ceiling;
    assert_eq!(c.gpu.as_ref().unwrap().id, "h100-sxm");
    assert_eq!(c.model.as_ref().unwrap().id, "llama-3-70b");
    assert_eq!(c.bytes_per_param.value, 2.0);
    assert_eq!(c.bytes_per_param.source, DtypeSource::Bf16Fallback);
    assert_eq!(c.tensor_parallel.value, 1);
    assert_eq!(c.tensor_parallel.source, TpSource::Default);
    // 3350 GB/s / (70e9 params × 2 bytes).
    let decode = 3350e9 / 140e9;
    let d = c.decode_tps.unwrap();
    assert!(close(Some(d.expected), decode));
    assert!(close(Some(d.lower), decode * 0.85));
    assert!(close(Some(d.upper), decode * 1.05));
    assert!(close(r.metrics.generation_tokens_per_s, 100.0));
    assert!(close(r.metrics.running_mean, 8.0));
    let eff = 100.0 / (decode * 8.0) * 100.0;
    assert!(close(c.efficiency.pct(), eff));
    assert!(close(c.headroom_pct, 100.0 - eff));
    assert!(close(c.aggregate_ceiling_tps, decode * 8.0));
    assert!(close(c.weight_gb, 140.0));
    assert!(close(c.kv_headroom_gb, H100_BYTES as f64 / 1e9 - 140.0));
    assert!(close(c.tpot_floor_ms, 1000.0 / decode));
    // Ridge 67e12 × 2 / 3350e9 = 40 > 8 running: the prefill floor is shown.
    assert!(close(c.ridge_batch_size, 40.0));
    assert!(!c.prefill_floor_suppressed);
    assert_eq!(c.seq_len.as_ref().unwrap().tokens, 300);
    let prefill = 67e12 / (6.0 * 70e9 * 300.0);
    assert!(close(c.prefill_per_s.map(|p| p.expected), prefill));
    assert!(close(c.prefill_floor_ms, 1000.0 / prefill));
    // Economics: catalog price, one GPU.
    let e = &r.economics;
    let cost = e.cost_per_hour.as_ref().unwrap();
    assert_eq!(cost.source, CostSource::CatalogOnDemand);
    assert!(cost.estimated);
    assert!(close(Some(cost.usd_per_hour), 3.45));
    assert!(close(
        e.usd_per_million_tokens.map(|m| m.usd),
        3.45 / 360_000.0 * 1e6
    ));
    assert!(close(
        e.recoverable_usd_per_hour.map(|m| m.usd),
        3.45 * (1.0 - eff / 100.0)
    ));
    assert!(close(e.tokens_per_watt, 100.0 / 400.0));
    assert!(close(e.joules_per_token, 4.0));
    // Latencies in ms, TPOT from the newer metric.
    assert!(close(r.metrics.ttft.mean_ms, 200.0));
    assert!(close(r.metrics.tpot.mean_ms, 40.0));
    assert_eq!(
        r.metrics.tpot.metric.as_deref(),
        Some(REQUEST_TIME_PER_OUTPUT_TOKEN_SECONDS)
    );
    assert!(why(&r, "efficiency %").is_none());
    assert!(why(&r, "GPU catalog entry").is_none());

    let text = render_text(&r, false);
    let line = |key: &str| {
        text.lines()
            .find(|l| l.contains(key))
            .unwrap_or_else(|| panic!("no {key} line in\n{text}"))
            .to_string()
    };
    assert!(line("decode ceiling").contains("23.9 tok/s (20.3 .. 25.1) (est)"));
    assert!(line("efficiency").contains("52.2 % (est)"));
    // The table row, not the verdict line naming R4 ("Model weights do not fit ...").
    assert!(line("│ weights").contains("140.0 GB (est)"));
    assert!(line("cost").contains("$3.45/h") && line("cost").contains("(est)"));
    assert!(!text.contains('\u{1b}'), "no colour was asked for");
    assert!(render_text(&r, true).contains('\u{1b}'));
}

#[test]
fn uncatalogued_gpu_and_model_say_why() {
    let f = Fx {
        gpu_name: "Tesla T4",
        model: Some("my-org/house-model"),
        ..fx()
    };
    let r = run(&rec(&f), &AnalyzeConfig::default());
    let c = &r.ceiling;
    assert!(c.gpu.is_none() && c.model.is_none());
    assert!(c.decode_tps.is_none() && c.weight_gb.is_none());
    assert_eq!(c.efficiency, Efficiency::NoCeiling);
    assert!(why(&r, "GPU catalog entry")
        .unwrap()
        .contains("\"Tesla T4\""));
    assert!(why(&r, "model catalog entry")
        .unwrap()
        .contains("\"my-org/house-model\""));
    assert!(r.economics.cost_per_hour.is_none());
    assert!(why(&r, "cost per hour, $/1M tokens, recoverable $/h").is_some());
    // No model name at all is a different reason.
    let r = run(
        &rec(&Fx {
            model: None,
            ..fx()
        }),
        &AnalyzeConfig::default(),
    );
    assert!(why(&r, "model catalog entry")
        .unwrap()
        .contains("no model_name"));
    let text = render_text(&r, false);
    assert!(text.contains("not available"));
    assert!(text.contains("no model_name"));
}

#[test]
fn missing_metrics_are_named_with_their_aliases() {
    let r = run(&rec(&fx()), &AnalyzeConfig::default());
    let prefix = why(&r, "prefix-cache hits").unwrap();
    assert!(
        prefix.contains(PREFIX_CACHE_HITS_TOTAL) && prefix.contains(GPU_PREFIX_CACHE_HITS_TOTAL)
    );
    assert!(why(&r, "max_num_seqs").unwrap().contains("-m N"));
    assert!(why(&r, "requests swapped").is_none());
    assert!(r.metrics.prefix_cache_hit_pct.is_none());
    // Given -m, max_num_seqs is no longer missing.
    let cfg = AnalyzeConfig {
        inputs: crate::inputs::OperatorInputs {
            max_num_seqs: Some(64),
            ..Default::default()
        },
        ..AnalyzeConfig::default()
    };
    let r = run(&rec(&fx()), &cfg);
    assert!(why(&r, "max_num_seqs").is_none());
    let m = r.inputs.max_num_seqs.unwrap();
    assert_eq!((m.value, m.source.as_str()), (64.0, "-m (analyze)"));
}

#[test]
fn no_gpu_data_flags_the_fallback() {
    // KV at 10% fails the KV arm; without GPU data only the extension makes windows active.
    let f = Fx {
        gpu: false,
        kv_frac: 0.1,
        ..fx()
    };
    let r = run(&rec(&f), &AnalyzeConfig::default());
    let w = &r.windows;
    assert!(!w.has_gpu_data);
    assert!(w.no_gpu_fallback);
    assert!(w.active > 0 && w.active_no_gpu_fallback == w.active);
    assert!(w
        .no_gpu_fallback_note
        .as_ref()
        .unwrap()
        .contains("no GPU reading"));
    let gpu = why(&r, "GPU utilisation, power, VRAM, temperature").unwrap();
    assert!(gpu.contains("--gpus none"));
    assert!(r.metrics.power_w.is_none() && r.economics.tokens_per_watt.is_none());
    assert!(why(&r, "GPU catalog entry")
        .unwrap()
        .contains("names no GPU"));
    assert!(render_text(&r, false).contains("no-GPU fallback"));
    // With GPU data the same flag stays off.
    let r = run(&rec(&fx()), &AnalyzeConfig::default());
    assert!(!r.windows.no_gpu_fallback && r.windows.no_gpu_fallback_note.is_none());
}

#[test]
fn efficiency_not_shown_when_actual_exceeds_the_ceiling() {
    let f = Fx {
        gen_tps: 400.0,
        ..fx()
    };
    let r = run(&rec(&f), &AnalyzeConfig::default());
    match r.ceiling.efficiency {
        Efficiency::ExceedsCeiling {
            actual_tps,
            aggregate_ceiling_tps,
        } => {
            assert!(close(Some(actual_tps), 400.0));
            assert!(close(Some(aggregate_ceiling_tps), 3350e9 / 140e9 * 8.0));
        }
        other => panic!("expected ExceedsCeiling, got {other:?}"),
    }
    assert!(r.ceiling.headroom_pct.is_none());
    assert!(r.economics.recoverable_usd_per_hour.is_none());
    assert!(why(&r, "efficiency %").unwrap().contains("mismatch"));
    let text = render_text(&r, false);
    assert!(text.contains("not shown: measured 400.0 tok/s exceeds"));
}

#[test]
fn cost_source_priority() {
    let base = rec(&fx());
    // Catalog on-demand price, per GPU × tensor-parallel GPUs.
    let mut tp2 = base.clone();
    tp2.manifest.analysis_inputs.tensor_parallel_size = Some(Sourced {
        value: 2,
        source: "TENSOR_PARALLEL_SIZE".into(),
    });
    let r = run(&tp2, &AnalyzeConfig::default());
    let c = r.economics.cost_per_hour.unwrap();
    assert_eq!(c.source, CostSource::CatalogOnDemand);
    assert!(close(Some(c.usd_per_hour), 6.90) && c.estimated);
    assert_eq!(
        r.ceiling.tensor_parallel.source,
        TpSource::TensorParallelSizeEnv
    );
    assert_eq!(
        r.ceiling.tensor_parallel.source_label,
        "TENSOR_PARALLEL_SIZE (recorded)"
    );
    // The recorded flag beats the catalog and is exact.
    let mut recorded = base.clone();
    recorded.manifest.analysis_inputs.cost_per_hour = Some(Sourced {
        value: 2.0,
        source: "--cost-per-hour".into(),
    });
    let r = run(&recorded, &AnalyzeConfig::default());
    let c = r.economics.cost_per_hour.as_ref().unwrap();
    assert_eq!(c.source, CostSource::Recorded);
    assert_eq!(c.source_label, "--cost-per-hour (recorded)");
    assert!(close(Some(c.usd_per_hour), 2.0) && !c.estimated);
    assert!(!r.economics.usd_per_million_tokens.unwrap().estimated);
    assert!(r.economics.recoverable_usd_per_hour.unwrap().estimated);
    let text = render_text(&r, false);
    let cost_line = text.lines().find(|l| l.contains("│ cost")).unwrap();
    assert!(!cost_line.contains("(est)"), "{cost_line}");
    // The analyze flag beats both.
    let cfg = AnalyzeConfig {
        inputs: crate::inputs::OperatorInputs {
            cost_per_hour: Some(5.0),
            ..Default::default()
        },
        ..AnalyzeConfig::default()
    };
    let r = run(&recorded, &cfg);
    let c = r.economics.cost_per_hour.unwrap();
    assert_eq!(c.source, CostSource::AnalyzeFlag);
    assert!(close(Some(c.usd_per_hour), 5.0));
    // A negative rate is refused, naming where it came from.
    let cfg = AnalyzeConfig {
        inputs: crate::inputs::OperatorInputs {
            cost_per_hour: Some(-1.0),
            ..Default::default()
        },
        ..AnalyzeConfig::default()
    };
    match analyze(&base, &cat(), &cfg) {
        Err(AnalyzeError::Input(crate::inputs::InputError::Invalid { name, .. })) => {
            assert_eq!(name, "--cost-per-hour (analyze)")
        }
        other => panic!("expected an invalid input, got {other:?}"),
    }
}

#[test]
fn dtype_and_tp_sources() {
    let f = Fx {
        cache_config: r#"cache_dtype="fp8",gpu_memory_utilization="0.85""#,
        ..fx()
    };
    let base = rec(&f);
    // kv_cache_dtype decides when the operator said nothing.
    let r = run(&base, &AnalyzeConfig::default());
    let b = &r.ceiling.bytes_per_param;
    assert_eq!((b.value, b.source), (1.0, DtypeSource::KvCacheDtype));
    let gmu = r.inputs.gpu_memory_utilization.as_ref().unwrap();
    assert_eq!(gmu.value, 0.85);
    // usable = 85.52 × 0.85 − 3 = 69.69 GB; min_tp = ceil(70 GB / 69.69 GB) = 2.
    let usable = H100_BYTES as f64 / 1e9 * 0.85 - 3.0;
    assert!(close(r.ceiling.usable_vram_gb, usable));
    assert!(close(r.ceiling.weight_gb, 70.0));
    assert_eq!(r.ceiling.min_tp, Some(2));
    // The recorded env var beats it.
    let mut env = base.clone();
    env.manifest.analysis_inputs.dtype = Some(Sourced {
        value: "bfloat16".into(),
        source: "VLLM_DTYPE".into(),
    });
    let r = run(&env, &AnalyzeConfig::default());
    let b = &r.ceiling.bytes_per_param;
    assert_eq!((b.value, b.source), (2.0, DtypeSource::VllmDtypeEnv));
    assert_eq!(b.source_label, "VLLM_DTYPE (recorded)");
    // The analyze flag beats that; "auto" names no width, falls through, and says so.
    let cfg = AnalyzeConfig {
        inputs: crate::inputs::OperatorInputs {
            dtype: Some("fp32".into()),
            tensor_parallel_size: Some(4),
            ..Default::default()
        },
        ..AnalyzeConfig::default()
    };
    let r = run(&env, &cfg);
    assert_eq!(r.ceiling.bytes_per_param.source, DtypeSource::Flag);
    assert_eq!(r.ceiling.bytes_per_param.value, 4.0);
    assert_eq!(r.ceiling.tensor_parallel.value, 4);
    assert_eq!(r.ceiling.tensor_parallel.source, TpSource::Flag);
    let cfg = AnalyzeConfig {
        inputs: crate::inputs::OperatorInputs {
            dtype: Some("auto".into()),
            ..Default::default()
        },
        ..AnalyzeConfig::default()
    };
    let r = run(&base, &cfg);
    assert_eq!(r.ceiling.bytes_per_param.source, DtypeSource::KvCacheDtype);
    assert!(why(&r, "operator dtype").unwrap().contains("\"auto\""));
    // TP 0 is refused.
    let cfg = AnalyzeConfig {
        inputs: crate::inputs::OperatorInputs {
            tensor_parallel_size: Some(0),
            ..Default::default()
        },
        ..AnalyzeConfig::default()
    };
    assert!(matches!(
        analyze(&base, &cat(), &cfg),
        Err(AnalyzeError::Input(_))
    ));
}

#[test]
fn all_windows_non_evaluable_shows_the_last_raw_window() {
    let mut b = RecBuilder::new();
    let run_id = b.gauge(NUM_REQUESTS_RUNNING, "");
    b.scrape(0, &[(run_id, 3.0)]);
    b.failed(250);
    let r = run(&b.build(), &AnalyzeConfig::default());
    assert!(r.windows.all_non_evaluable);
    let last = r.windows.last_raw_window.as_ref().unwrap();
    assert_eq!(last.gate, Gate::NotEvaluable);
    assert_eq!(last.running, Some(3.0));
    assert!(why(&r, "evaluable windows").is_some());
    assert_eq!((r.recording.scrapes_ok, r.recording.scrapes_failed), (1, 1));
    let text = render_text(&r, false);
    assert!(text.contains("window 0 (not evaluable): running 3.0"));
    // Nothing at all in range.
    let cfg = AnalyzeConfig {
        from: Some(crate::window::TimeBound::Offset(crate::units::MonoNs(
            60_000_000_000,
        ))),
        ..AnalyzeConfig::default()
    };
    // A range that selects nothing is refused, naming the recording's span.
    let err = analyze(&b.build(), &cat(), &cfg).unwrap_err();
    assert!(err.to_string().contains("select no scrape"), "{err}");
}

#[test]
fn verbose_adds_window_rows() {
    let r = run(&rec(&fx()), &AnalyzeConfig::default());
    assert!(r.windows.rows.is_empty());
    assert!(!render_json(&r).unwrap().contains("\"rows\""));
    let cfg = AnalyzeConfig {
        verbose: true,
        ..AnalyzeConfig::default()
    };
    let r = run(&rec(&fx()), &cfg);
    assert_eq!(r.windows.rows.len() as u32, r.windows.total);
    assert_eq!(r.windows.rows[0].gate, Gate::Active);
    assert!(render_text(&r, true).contains("active"));
}

#[test]
fn same_inputs_give_identical_json_and_text() {
    let r = rec(&fx());
    let cfg = AnalyzeConfig {
        verbose: true,
        ..AnalyzeConfig::default()
    };
    let a = render_json(&run(&r, &cfg)).unwrap();
    let b = render_json(&run(&r, &cfg)).unwrap();
    assert_eq!(a, b);
    assert!(a.ends_with("}\n"));
    assert_eq!(
        render_text(&run(&r, &cfg), false),
        render_text(&run(&r, &cfg), false)
    );
}

#[test]
fn thread_count_does_not_change_the_output() {
    let r = rec(&fx());
    let cfg = AnalyzeConfig {
        verbose: true,
        ..AnalyzeConfig::default()
    };
    let in_pool = |n: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap();
        pool.install(|| render_json(&run(&r, &cfg)).unwrap())
    };
    let one = in_pool(1);
    assert_eq!(one, in_pool(2));
    assert_eq!(one, in_pool(4));
}

/// The CLI's path: samples read as the windows need them, one file at a time here so that
/// windows straddle the loads, and dropped behind. It must give the report of the recording
/// read whole, byte for byte, with and without a range.
#[test]
fn a_recording_read_as_the_analysis_goes_gives_the_report_of_one_read_whole() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings");
    let ranged = AnalyzeConfig {
        verbose: true,
        samples: true,
        from: Some(crate::window::TimeBound::Offset(crate::units::MonoNs(
            9_000_000_000,
        ))),
        to: Some(crate::window::TimeBound::Offset(crate::units::MonoNs(
            70_000_000_000,
        ))),
        ..AnalyzeConfig::default()
    };
    let whole = AnalyzeConfig {
        verbose: true,
        samples: true,
        ..AnalyzeConfig::default()
    };
    // Without samples the streamed windows drop every delta bucket once merged.
    let plain = AnalyzeConfig::default();
    for name in ["vllm-cpu-0.32-ramp", "vllm-cpu-0.32-prefill-host"] {
        let dir = root.join(name);
        let full = crate::recording::open(&dir).unwrap();
        for cfg in [&whole, &ranged, &plain] {
            let want = render_json(&run(&full, cfg)).unwrap();
            let deferred = crate::recording::open_deferred(&dir)
                .unwrap()
                .with_files_per_load(1);
            let (got, _, rec) = analyze_deferred(deferred, &cat(), cfg, &|_| {}).unwrap();
            assert_eq!(render_json(&got).unwrap(), want, "{name}");
            // Every scrape was released once the windows were built.
            assert!(rec.scrapes.is_empty());
        }
    }
}

#[test]
fn json_round_trips_into_the_typed_report() {
    for f in [
        fx(),
        Fx {
            gen_tps: 400.0,
            ..fx()
        },
        Fx {
            gpu: false,
            model: None,
            ..fx()
        },
    ] {
        let cfg = AnalyzeConfig {
            verbose: true,
            ..AnalyzeConfig::default()
        };
        let report = run(&rec(&f), &cfg);
        let json = render_json(&report).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
        assert_eq!(render_json(&back).unwrap(), json);
        assert_eq!(back.schema_version, SCHEMA_VERSION);
    }
}

// ---------------------------------------------------------------------------------------------
// Diagnosis wiring
// ---------------------------------------------------------------------------------------------

fn not_fired(r: &Report, rule: crate::rules::RuleId) -> String {
    let d = r.diagnosis.as_ref().expect("analyze always diagnoses");
    d.not_fired
        .iter()
        .find(|n| n.rule == rule)
        .map(|n| n.reason.clone())
        .unwrap_or_else(|| panic!("{rule:?} fired: {d:?}"))
}

#[test]
fn diagnosis_r4_uses_the_ceilings_tp_dtype_weights_and_vram() {
    use crate::rules::RuleId;
    // Llama 3 70B in bf16 (fallback) is 140 GB: it cannot fit one 85.5 GB H100.
    let r = run(&rec(&fx()), &AnalyzeConfig::default());
    let d = r.diagnosis.as_ref().unwrap();
    let r4 = d.finding(RuleId::R4).expect("R4 fires at tp 1");
    assert!(r4.significant);
    assert_eq!(
        r4.confidence, 0.60,
        "bf16 fallback: {}",
        r4.confidence_basis
    );
    let weights = r4.measures.iter().find(|m| m.name == "weights").unwrap();
    assert_eq!(Some(weights.value), r.ceiling.weight_gb, "one resolution");
    let vram = r4
        .measures
        .iter()
        .find(|m| m.name == "VRAM per GPU")
        .unwrap();
    assert_eq!(
        Some(vram.value),
        r.ceiling.vram_total_gb.as_ref().map(|v| v.value)
    );
    let step = &r4.fix.steps[0];
    assert!(step.text.contains("1 was assumed"), "{}", step.text);
    // min_tp: ceil(140 / (85.52 × 0.90 − 3)) = 2, and the ceiling section says the same.
    assert_eq!(
        step.command_line().as_deref(),
        Some("--tensor-parallel-size 2")
    );
    assert_eq!(r.ceiling.min_tp, Some(2));

    // --dtype given to analyze: the operator said it, R4's 0.95 row applies.
    let cfg = AnalyzeConfig {
        inputs: crate::inputs::OperatorInputs {
            dtype: Some("bfloat16".into()),
            ..Default::default()
        },
        ..AnalyzeConfig::default()
    };
    let r = run(&rec(&fx()), &cfg);
    let r4 = r.diagnosis.as_ref().unwrap().finding(RuleId::R4).unwrap();
    assert_eq!(r4.confidence, 0.95, "{}", r4.confidence_basis);

    // The same tp the ceiling used: at 2 the weights fit, at fp8 too.
    for cfg in [
        AnalyzeConfig {
            inputs: crate::inputs::OperatorInputs {
                tensor_parallel_size: Some(2),
                ..Default::default()
            },
            ..AnalyzeConfig::default()
        },
        AnalyzeConfig {
            inputs: crate::inputs::OperatorInputs {
                dtype: Some("fp8".into()),
                ..Default::default()
            },
            ..AnalyzeConfig::default()
        },
    ] {
        let r = run(&rec(&fx()), &cfg);
        let why = not_fired(&r, RuleId::R4);
        assert!(
            why.starts_with("not triggered (weights 70.0 GB per GPU"),
            "{why}"
        );
    }
}

#[test]
fn diagnosis_cap_comes_from_analyze_m_before_the_recorded_value() {
    use crate::rules::{RuleId, NO_MAX_NUM_SEQS};
    // Without any cap R1 and R5 are silent and say how to fix that.
    let r = run(&rec(&fx()), &AnalyzeConfig::default());
    assert_eq!(not_fired(&r, RuleId::R5), NO_MAX_NUM_SEQS);
    assert_eq!(not_fired(&r, RuleId::R1), NO_MAX_NUM_SEQS);
    // Recorded -m 8: 8 running at the cap, 1 waiting (11%): no queue worth the name.
    let mut recorded = rec(&fx());
    recorded.manifest.analysis_inputs.max_num_seqs = Some(Sourced {
        value: 8,
        source: "--max-num-seqs".into(),
    });
    let r = run(&recorded, &AnalyzeConfig::default());
    let why = not_fired(&r, RuleId::R5);
    assert!(why.contains("queue ratio 11.1% < 30%"), "{why}");
    // -m 32 given to analyze beats the recorded 8: now running is far below the cap.
    let cfg = AnalyzeConfig {
        inputs: crate::inputs::OperatorInputs {
            max_num_seqs: Some(32),
            ..Default::default()
        },
        ..AnalyzeConfig::default()
    };
    let r = run(&recorded, &cfg);
    let why = not_fired(&r, RuleId::R5);
    assert!(why.contains("below max_num_seqs 32"), "{why}");
    assert_eq!(
        r.inputs.max_num_seqs.as_ref().map(|m| m.source.as_str()),
        Some("-m (analyze)")
    );
}

#[test]
fn diagnosis_is_in_the_json_and_after_the_economics_in_the_text() {
    let r = run(&rec(&fx()), &AnalyzeConfig::default());
    let json = render_json(&r).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["diagnosis"]["findings"].is_array());
    assert!(
        v["diagnosis"]["not_fired"].is_array(),
        "not_fired always in JSON"
    );
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    // A report written before the rules existed still reads, without a diagnosis.
    let mut old = v.clone();
    old.as_object_mut().unwrap().remove("diagnosis");
    let old: Report = serde_json::from_value(old).unwrap();
    assert_eq!(old.diagnosis, None);

    let text = render_text(&r, false);
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle}\n{text}"))
    };
    assert!(at("economics") < at("diagnosis (rules R1-R8)"));
    assert!(at("diagnosis (rules R1-R8)") < at("not available"));
    assert!(
        text.contains("[!] 1. Model weights do not fit GPU memory"),
        "{text}"
    );
    assert!(text.contains("--tensor-parallel-size 2 (now 1)"), "{text}");
}

#[test]
fn a_wall_clock_step_is_said_at_the_top() {
    let mut r = rec(&fx());
    let clean = run(&r, &AnalyzeConfig::default());
    assert!(clean.recording.data_warnings.is_empty());
    for s in r.scrapes.iter_mut().skip(20) {
        s.meta.completed_at.0 += 2_500_000_000;
    }
    let stepped = run(&r, &AnalyzeConfig::default());
    let w = &stepped.recording.data_warnings;
    assert!(w.iter().any(|w| w.contains("drifted 2.5 s apart")), "{w:?}");
    // The figures read the monotonic clock: unchanged.
    assert_eq!(
        stepped.metrics.generation_tokens_per_s,
        clean.metrics.generation_tokens_per_s
    );
}

/// See: issue "Diagnose the data users already have" (analysis at coarse resolution).
#[test]
fn imported_recordings_take_their_windows_from_the_step() {
    use crate::analyze::window_ns;
    use crate::recording::ImportSource;
    let plain = rec(&fx());
    assert_eq!(window_ns(&plain, None).unwrap(), 2_000_000_000);
    assert_eq!(window_ns(&plain, Some(500_000_000)).unwrap(), 500_000_000);
    let mut imported = rec(&fx());
    imported.manifest.import = Some(ImportSource {
        source: "prometheus".into(),
        server_url: "http://prometheus:9090".into(),
        selector: "{__name__=~\"vllm:.+\"}".into(),
        job: Some("vllm".into()),
        instance: Some("10.0.0.5:8000".into()),
        step_ms: 1000,
        range_from_ns: 0,
        range_to_ns: 0,
        gpu_selectors: Vec::new(),
        inferred_types: Vec::new(),
        incomplete: Some("a to b: HTTP 503".into()),
    });
    assert_eq!(window_ns(&imported, None).unwrap(), 4_000_000_000);
    assert_eq!(
        window_ns(&imported, Some(2_000_000_000)).unwrap(),
        2_000_000_000
    );
    let cfg = AnalyzeConfig {
        window_ns: Some(1_999_000_000),
        ..AnalyzeConfig::default()
    };
    let err = analyze(&imported, &cat(), &cfg).unwrap_err();
    assert!(
        matches!(
            err,
            AnalyzeError::WindowBelowStep {
                step_ms: 1000,
                min_ms: 2000,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("(step 1000 ms)"), "{err}");
    let r = run(&imported, &AnalyzeConfig::default());
    assert_eq!(r.windows.window_s, 4.0);
    let data = &r.recording.data_warnings;
    assert!(
        data[0].contains("at a 1.000 s step, not recorded: 4 s windows"),
        "{data:?}"
    );
    assert!(
        data[1].contains("not imported: a to b: HTTP 503"),
        "{data:?}"
    );
    assert!(why(&r, "KV cache and queue spikes shorter than the step").is_some());
    assert!(
        why(&r, "R2 GPU/vLLM skew check").is_some(),
        "the fixture has GPU polls"
    );
    // A recorded recording says none of this.
    let r = run(&plain, &AnalyzeConfig::default());
    assert!(why(&r, "R2 GPU/vLLM skew check").is_none());
    assert!(r.recording.data_warnings.is_empty());
}

/// R7 end to end: a fake-GPU recording of an H100 serving an 8B model at 150 W of 700 and a
/// KV cache a fifth full names the cheapest catalog GPU that carries the load, and the $/h.
/// See: issue "Deeper diagnosis", item 8.
#[test]
fn an_idle_h100_serving_an_8b_model_is_told_to_move() {
    use crate::rules::RuleId;
    let f = Fx {
        model: Some("meta-llama/Meta-Llama-3-8B-Instruct"),
        kv_frac: 0.2,
        ..fx()
    };
    let mut r = rec(&f);
    for p in &mut r.gpu_polls {
        p.metrics.power_w = Some(150.0);
    }
    let report = run(&r, &AnalyzeConfig::default());
    let d = report.diagnosis.as_ref().unwrap();
    let r7 = d
        .finding(RuleId::R7)
        .unwrap_or_else(|| panic!("R7 silent: {}", not_fired(&report, RuleId::R7)));
    assert!(r7.significant);
    assert_eq!(r7.fix.summary, "Move from H100 SXM to A100 80GB");
    assert!(
        r7.fix.steps[0].text.contains("$1.95/h"),
        "{}",
        r7.fix.steps[0].text
    );
    // At 400 W (57% of the limit) the same server is not idle.
    let busy = run(&rec(&Fx { kv_frac: 0.2, ..f }), &AnalyzeConfig::default());
    assert!(not_fired(&busy, RuleId::R7).contains("power 57%"));
}

/// vLLM's own FLOPs and bytes estimates (`--enable-mfu-metrics`) become a measured compute
/// rate and bandwidth use beside the catalog ceiling; counters that never move say the flag
/// is off. See: issue "Deeper diagnosis", item 5.
#[test]
fn estimated_flops_and_bytes_give_a_measured_bandwidth_use() {
    let build = |bytes_per_s: f64| {
        let mut b = RecBuilder::new();
        let run_id = b.gauge(NUM_REQUESTS_RUNNING, "");
        let kv = b.gauge(KV_CACHE_USAGE_PERC, "");
        let gen = b.counter(GENERATION_TOKENS_TOTAL, "");
        let flops = b.counter(ESTIMATED_FLOPS_PER_GPU_TOTAL, "");
        let bytes = b.counter(ESTIMATED_READ_BYTES_PER_GPU_TOTAL, "");
        for i in 0..=40i64 {
            let t = i as f64 / 4.0;
            b.scrape(
                i * 250,
                &[
                    (run_id, 8.0),
                    (kv, 0.5),
                    (gen, 100.0 * t),
                    (flops, bytes_per_s * 10.0 * t),
                    (bytes, bytes_per_s * t),
                ],
            );
            b.gpu(i * 250, 0, crate::vllm::testutil::gpu_metrics(90, 400.0));
        }
        let mut r = b.build();
        r.manifest.model_name = Some(LLAMA70.to_string());
        r.manifest.gpus = vec![GpuInfo {
            index: 0,
            name: Some(H100.to_string()),
            uuid: None,
            serial: None,
            vram_total_bytes: Some(H100_BYTES),
            power_limit_w: Some(700.0),
        }];
        r
    };
    // 1675 GB/s read per GPU of the H100 SXM's 3350 GB/s: 50%.
    let r = run(&build(1.675e12), &AnalyzeConfig::default());
    assert!(
        close(r.ceiling.measured_mbu_pct, 50.0),
        "{:?}",
        r.ceiling.measured_mbu_pct
    );
    assert!(close(r.ceiling.measured_tflops_per_gpu, 16.75));
    assert!(why(&r, "measured FLOPs and bandwidth use (MBU)").is_none());
    // Counters present but flat: the flag is off, and the report says so.
    let flat = run(&build(0.0), &AnalyzeConfig::default());
    assert_eq!(flat.ceiling.measured_mbu_pct, None);
    assert!(why(&flat, "measured FLOPs and bandwidth use (MBU)")
        .unwrap()
        .contains("--enable-mfu-metrics"));
}

/// Two data-parallel engines, one queueing while the other idles: the per-engine view shows
/// it and R9 names the ranks; the sums alone (9 running, 5 waiting) would not.
/// See: issue "Fleets", items 3 and 4.
#[test]
fn an_unbalanced_pair_of_engines_is_seen_per_engine() {
    use crate::rules::RuleId;
    let mut b = RecBuilder::new();
    let e = |i: u32| format!("engine=\"{i}\"");
    let run0 = b.gauge(NUM_REQUESTS_RUNNING, &e(0));
    let run1 = b.gauge(NUM_REQUESTS_RUNNING, &e(1));
    let wait0 = b.gauge(NUM_REQUESTS_WAITING, &e(0));
    let wait1 = b.gauge(NUM_REQUESTS_WAITING, &e(1));
    let kv0 = b.gauge(KV_CACHE_USAGE_PERC, &e(0));
    let kv1 = b.gauge(KV_CACHE_USAGE_PERC, &e(1));
    let gen0 = b.counter(GENERATION_TOKENS_TOTAL, &e(0));
    let gen1 = b.counter(GENERATION_TOKENS_TOTAL, &e(1));
    for i in 0..=40i64 {
        let t = i as f64 / 4.0;
        b.scrape(
            i * 250,
            &[
                (run0, 8.0),
                (run1, 1.0),
                (wait0, 5.0),
                (wait1, 0.0),
                (kv0, 0.6),
                (kv1, 0.1),
                (gen0, 160.0 * t),
                (gen1, 20.0 * t),
            ],
        );
    }
    let r = run(&b.build(), &AnalyzeConfig::default());
    let engines: Vec<(&str, Option<f64>)> = r
        .metrics
        .per_engine
        .iter()
        .map(|e| (e.engine.as_str(), e.running_mean))
        .collect();
    assert_eq!(engines, [("0", Some(8.0)), ("1", Some(1.0))]);
    let d = r.diagnosis.as_ref().unwrap();
    let r9 = d.finding(RuleId::R9).expect("R9 fires");
    assert!(r9.significant);
    assert!(r9.fix.steps[0]
        .text
        .starts_with("Engine 0 queues while engine 1 idles"));
    // One engine: no per-engine rows, R9 not evaluated.
    let one = run(&rec(&fx()), &AnalyzeConfig::default());
    assert!(one.metrics.per_engine.is_empty());
    assert_eq!(not_fired(&one, RuleId::R9), "not evaluated (one engine)");
}

/// The shipped ramp recording (real vLLM 0.32 scrapes), read whole.
fn ramp() -> Recording {
    let src =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings/vllm-cpu-0.32-ramp");
    crate::recording::open(&src).unwrap()
}

/// `rec` written again into a new directory, scrape by scrape, each one's body rendered and
/// parsed and handed to `edit` with its index and metadata first: `true` writes the body (its
/// `sample_count` counted again), `false` the attempt alone. Segments rotate every
/// `rotate_every` scrapes.
fn rewritten(
    rec: &Recording,
    rotate_every: usize,
    mut edit: impl FnMut(
        usize,
        &mut crate::recording::ScrapeMeta,
        &mut crate::promtext::Exposition<'_>,
    ) -> bool,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut w = crate::recording::ScrapeWriter::new(dir.path()).unwrap();
    for (i, s) in rec.scrapes.iter().enumerate() {
        let mut meta = s.meta.clone();
        let text = crate::replay::render_scrape(rec, s);
        let mut e = crate::promtext::parse(&text).unwrap();
        if edit(i, &mut meta, &mut e) {
            meta.sample_count = Some(e.sample_count() as u64);
            w.push(&meta, Some(&e)).unwrap();
        } else {
            w.push(&meta, None).unwrap();
        }
        if i % rotate_every == rotate_every - 1 {
            w.rotate().unwrap();
        }
    }
    w.finish().unwrap();
    crate::recording::writer::write_manifest(dir.path(), &rec.manifest).unwrap();
    dir
}

/// See: issue "Production scale" (streamed scrapes). A recording with stretches of failed
/// attempts longer than the reader loads at once (one at its end, where no samples file
/// follows) and a samples file lost, analysed as it is read, gives the report of the same
/// recording read whole: the availability, the lost rows and the first and last scrape are
/// the same, although the streamed read holds only the scrapes its open windows need.
#[test]
fn failed_stretches_and_a_lost_file_streamed_give_the_report_of_a_whole_read() {
    use crate::recording::ScrapeStatus;
    let rec = ramp();
    let n = rec.scrapes.len();
    assert!(n > 200, "{n} scrapes");
    let dir = rewritten(&rec, 25, |i, meta, _| {
        if (40..75).contains(&i) || i + 30 >= n {
            meta.status = ScrapeStatus::Timeout;
            meta.http_status = None;
            meta.error = Some(format!("timed out ({})", i % 2));
            meta.body_bytes = None;
            meta.sample_count = None;
            return false;
        }
        true
    });
    let mut samples: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("samples-"))
        .collect();
    samples.sort();
    std::fs::remove_file(&samples[4]).unwrap();

    let whole = crate::recording::open(dir.path()).unwrap();
    for cfg in [
        AnalyzeConfig::default(),
        AnalyzeConfig {
            verbose: true,
            ..AnalyzeConfig::default()
        },
    ] {
        let want = run(&whole, &cfg);
        let deferred = crate::recording::open_deferred(dir.path())
            .unwrap()
            .with_files_per_load(1);
        let (got, _, _) = analyze_deferred(deferred, &cat(), &cfg, &|_| {}).unwrap();
        assert_eq!(render_json(&got).unwrap(), render_json(&want).unwrap());
        let down: Vec<_> = want
            .availability
            .iter()
            .filter(|f| f.kind == crate::availability::AvailabilityKind::Down)
            .collect();
        assert_eq!(down.len(), 2, "{:?}", want.availability);
        assert_eq!(down[1].recovered, Some(false));
        assert!(
            want.recording
                .data_warnings
                .iter()
                .any(|w| w.contains("lost some or all of their samples")),
            "{:?}",
            want.recording.data_warnings
        );
        assert!(want.recording.last_scrape_at.is_some());
    }
}

/// A streamed read leaves a recorder's segments in the columns they were decoded into, and a
/// window reads only the series it follows scrape by scrape between its first and last
/// scrape. A restart between those two (every counter drops), a labelled counter first seen
/// there and a series sent twice in one body must read as they do when every sample of every
/// scrape is read: the report is a whole read's, and it says the counters reset.
#[test]
fn a_restart_a_birth_and_a_repeat_mid_window_read_in_place_as_in_a_whole_read() {
    use crate::promtext::MetricType;
    let rec = ramp();
    let n = rec.scrapes.len();
    let (birth, restart) = (n / 4 + 3, n / 2 + 5);
    let dir = rewritten(&rec, 40, |i, _, e| {
        for f in &mut e.families {
            if f.metric_type == MetricType::Counter && i >= restart {
                for smp in &mut f.samples {
                    smp.value = (smp.value * 0.25).floor();
                }
            }
            if f.name == REQUEST_SUCCESS_TOTAL.trim_end_matches("_total") && i < birth {
                assert!(f.samples.len() >= 2, "{:?}", f.samples);
                f.samples.pop();
            }
            // A bucket, which the middle of a window does not read, and a gauge, which it
            // does.
            let twice = [TIME_TO_FIRST_TOKEN_SECONDS, NUM_REQUESTS_RUNNING];
            if twice.contains(&f.name) && (60..66).contains(&i) {
                let mut again = f.samples[0].clone();
                again.value += 100.0;
                f.samples.push(again);
            }
        }
        true
    });

    // The segments without the repeat are left in place.
    let mut deferred = crate::recording::open_deferred(dir.path()).unwrap();
    deferred.samples_in_place();
    let all = vec![true; deferred.recording.series.len()];
    deferred.load_next(&all, &|_| {});
    let scrapes = &deferred.recording.scrapes;
    assert!(scrapes
        .iter()
        .any(|s| s.columns.is_some() && s.samples.is_empty()));

    let whole = crate::recording::open(dir.path()).unwrap();
    let cfg = AnalyzeConfig::default();
    let want = run(&whole, &cfg);
    let deferred = crate::recording::open_deferred(dir.path()).unwrap();
    let (got, _, _) = analyze_deferred(deferred, &cat(), &cfg, &|_| {}).unwrap();
    assert_eq!(render_json(&got).unwrap(), render_json(&want).unwrap());
    let warnings = &want.recording.data_warnings;
    assert!(
        warnings.iter().any(|w| w.contains("counters reset 1 time")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("12 sample(s) repeated")),
        "{warnings:?}"
    );
}
