use super::*;
use crate::catalog::Catalog;

fn sourced<T>(value: T, source: &str) -> Sourced<T> {
    Sourced {
        value,
        source: source.to_string(),
    }
}

fn cfg(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

struct Case {
    operator: OperatorInputs,
    recorded: AnalysisInputs,
    gauge: Option<f64>,
    cache: BTreeMap<String, String>,
    gpu: Option<&'static str>,
    model: Option<&'static str>,
}

fn case() -> Case {
    Case {
        operator: OperatorInputs::default(),
        recorded: AnalysisInputs::default(),
        gauge: None,
        cache: BTreeMap::new(),
        gpu: None,
        model: None,
    }
}

fn run(c: &Case) -> Result<(ResolvedInputs, Vec<InputNote>), InputError> {
    let cat = Catalog::embedded().unwrap();
    resolve(&InputSources {
        operator: &c.operator,
        recorded: &c.recorded,
        max_num_seqs_gauge: c.gauge,
        cache_config: &c.cache,
        model: c.model.and_then(|m| cat.match_model(m)),
        gpu: c.gpu.and_then(|g| cat.match_gpu(g)),
    })
}

fn ok(c: &Case) -> ResolvedInputs {
    run(c).unwrap().0
}

fn refused(c: &Case) -> String {
    match run(c) {
        Err(InputError::Invalid { name, .. }) => name,
        Ok(r) => panic!("accepted: {r:?}"),
    }
}

#[test]
fn nothing_said_gives_the_spec_defaults() {
    let r = ok(&case());
    assert_eq!(r.max_num_seqs, None);
    assert_eq!(
        (r.tensor_parallel.value, r.tensor_parallel.source),
        (1, TpSource::Default)
    );
    assert_eq!(
        (r.bytes_per_param.value, r.bytes_per_param.source),
        (2.0, DtypeSource::Bf16Fallback)
    );
    assert_eq!(r.gpu_memory_utilization, sourced(0.90, GMU_DEFAULT_SOURCE));
    assert_eq!(r.cost_per_hour, None);
}

#[test]
fn cap_gauge_then_analyze_flag_then_recorded() {
    let mut c = case();
    c.recorded.max_num_seqs = Some(sourced(16, "--max-num-seqs"));
    assert_eq!(
        ok(&c).max_num_seqs,
        Some(sourced(16, "--max-num-seqs (recorded)"))
    );
    c.operator.max_num_seqs = Some(32);
    assert_eq!(ok(&c).max_num_seqs, Some(sourced(32, "-m (analyze)")));
    c.gauge = Some(256.0);
    assert_eq!(
        ok(&c).max_num_seqs,
        Some(sourced(256, MAX_NUM_SEQS_GAUGE_SOURCE))
    );
    // A gauge that is no cap is skipped with a note; the flag decides.
    c.gauge = Some(0.0);
    let (r, notes) = run(&c).unwrap();
    assert_eq!(r.max_num_seqs.map(|m| m.value), Some(32));
    assert!(notes[0].why.contains("reported 0"), "{notes:?}");
}

#[test]
fn a_zero_cap_or_degree_is_refused_naming_its_source() {
    let mut c = case();
    c.operator.max_num_seqs = Some(0);
    assert_eq!(refused(&c), "-m (analyze)");
    // Refused even where the gauge would win: the flag is a mistake to report.
    c.gauge = Some(8.0);
    assert_eq!(refused(&c), "-m (analyze)");
    let mut c = case();
    c.recorded.max_num_seqs = Some(sourced(0, "--max-num-seqs"));
    assert_eq!(refused(&c), "--max-num-seqs (recorded)");
    let mut c = case();
    c.operator.tensor_parallel_size = Some(0);
    assert_eq!(refused(&c), "--tensor-parallel-size (analyze)");
    let mut c = case();
    c.recorded.tensor_parallel_size = Some(sourced(0, "VLLM_TENSOR_PARALLEL_SIZE"));
    assert_eq!(refused(&c), "VLLM_TENSOR_PARALLEL_SIZE (recorded)");
}

#[test]
fn tensor_parallel_sources() {
    let mut c = case();
    c.recorded.tensor_parallel_size = Some(sourced(2, "TENSOR_PARALLEL_SIZE"));
    let tp = ok(&c).tensor_parallel;
    assert_eq!(
        (tp.value, tp.source, tp.source_label.as_str()),
        (
            2,
            TpSource::TensorParallelSizeEnv,
            "TENSOR_PARALLEL_SIZE (recorded)"
        )
    );
    c.recorded.tensor_parallel_size = Some(sourced(8, "VLLM_TENSOR_PARALLEL_SIZE"));
    assert_eq!(
        ok(&c).tensor_parallel.source,
        TpSource::VllmTensorParallelSizeEnv
    );
    c.operator.tensor_parallel_size = Some(4);
    let tp = ok(&c).tensor_parallel;
    assert_eq!((tp.value, tp.source), (4, TpSource::Flag));
}

#[test]
fn dtype_follows_the_chain() {
    let mut c = case();
    c.model = Some("deepseek-ai/DeepSeek-V3");
    // The catalog default (DeepSeek ships fp8).
    let b = ok(&c).bytes_per_param;
    assert_eq!((b.value, b.source), (1.0, DtypeSource::CatalogDefault));
    // The KV-cache dtype beats the catalog; "auto" names no width and is skipped.
    c.cache = cfg(&[("cache_dtype", "auto")]);
    assert_eq!(ok(&c).bytes_per_param.source, DtypeSource::CatalogDefault);
    c.cache = cfg(&[("cache_dtype", "fp8_e5m2")]);
    let b = ok(&c).bytes_per_param;
    assert_eq!((b.value, b.source), (1.0, DtypeSource::KvCacheDtype));
    // The recorded environment beats the KV-cache dtype; DTYPE and VLLM_DTYPE are told apart.
    c.recorded.dtype = Some(sourced("float32".to_string(), "VLLM_DTYPE"));
    let b = ok(&c).bytes_per_param;
    assert_eq!(
        (b.value, b.source, b.source_label.as_str()),
        (4.0, DtypeSource::VllmDtypeEnv, "VLLM_DTYPE (recorded)")
    );
    c.recorded.dtype = Some(sourced("bf16".to_string(), "DTYPE"));
    assert_eq!(ok(&c).bytes_per_param.source, DtypeSource::DtypeEnv);
    // The analyze flag beats everything.
    c.operator.dtype = Some("fp8".to_string());
    let b = ok(&c).bytes_per_param;
    assert_eq!((b.value, b.source), (1.0, DtypeSource::Flag));
    assert!(b.source.is_operator());
}

#[test]
fn an_operator_dtype_auto_falls_through_and_an_unknown_one_is_refused() {
    let mut c = case();
    c.operator.dtype = Some("auto".to_string());
    let (r, notes) = run(&c).unwrap();
    assert_eq!(r.bytes_per_param.source, DtypeSource::Bf16Fallback);
    assert_eq!(notes[0].what, "operator dtype");
    c.operator.dtype = Some("int4".to_string());
    assert_eq!(refused(&c), "--dtype (analyze)");
    let mut c = case();
    c.recorded.dtype = Some(sourced("q4".to_string(), "DTYPE"));
    assert_eq!(refused(&c), "DTYPE (recorded)");
}

#[test]
fn gpu_memory_utilization_flag_recorded_label_default() {
    let mut c = case();
    c.cache = cfg(&[("gpu_memory_utilization", "0.92")]);
    assert_eq!(
        ok(&c).gpu_memory_utilization,
        sourced(0.92, GMU_LABEL_SOURCE)
    );
    c.recorded.gpu_memory_utilization = Some(sourced(0.85, "--gpu-memory-utilization"));
    assert_eq!(ok(&c).gpu_memory_utilization.value, 0.85);
    c.operator.gpu_memory_utilization = Some(0.95);
    assert_eq!(
        ok(&c).gpu_memory_utilization,
        sourced(0.95, "--gpu-memory-utilization (analyze)")
    );
    for bad in [0.0, 1.5, f64::NAN, -0.2] {
        c.operator.gpu_memory_utilization = Some(bad);
        assert_eq!(refused(&c), "--gpu-memory-utilization (analyze)");
    }
    // A label that is no fraction is skipped with a note.
    let mut c = case();
    c.cache = cfg(&[("gpu_memory_utilization", "1.5")]);
    let (r, notes) = run(&c).unwrap();
    assert_eq!(r.gpu_memory_utilization.source, GMU_DEFAULT_SOURCE);
    assert_eq!(notes.len(), 1);
}

#[test]
fn cost_flag_then_recorded_then_catalog_times_gpus() {
    let mut c = case();
    c.gpu = Some("NVIDIA H100 80GB HBM3");
    let cost = ok(&c).cost_per_hour.unwrap();
    assert_eq!(
        (cost.usd_per_hour, cost.source, cost.estimated),
        (3.45, CostSource::CatalogOnDemand, true)
    );
    // Two GPUs rented, twice the price.
    c.operator.tensor_parallel_size = Some(2);
    assert!((ok(&c).cost_per_hour.unwrap().usd_per_hour - 6.90).abs() < 1e-12);
    c.recorded.cost_per_hour = Some(sourced(4.0, "--cost-per-hour"));
    let cost = ok(&c).cost_per_hour.unwrap();
    assert_eq!(
        (cost.usd_per_hour, cost.source, cost.estimated),
        (4.0, CostSource::Recorded, false)
    );
    c.operator.cost_per_hour = Some(0.0);
    assert_eq!(
        ok(&c).cost_per_hour.unwrap().source,
        CostSource::AnalyzeFlag
    );
    c.operator.cost_per_hour = Some(-1.0);
    assert_eq!(refused(&c), "--cost-per-hour (analyze)");
    c.operator.cost_per_hour = Some(f64::NAN);
    assert_eq!(refused(&c), "--cost-per-hour (analyze)");
    // A GPU without a price, and no GPU at all: no cost.
    let mut c = case();
    c.gpu = Some("NVIDIA GeForce RTX 4090");
    assert_eq!(ok(&c).cost_per_hour, None);
}
