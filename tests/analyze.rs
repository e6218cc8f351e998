//! `profile analyze` and `profile catalog` through the binary: the catalog listing in both
//! forms, a synthetic recording written with the real Parquet writer and analysed end to end,
//! the real `recordings/vllm-cpu-0.32-load` with its expected diagnosis, and golden snapshots
//! plus a determinism check for every recording under `recordings/`.

use crate::support::profile;
use profile::gpu::fake::{FakeGpuSource, GpmReading};
use profile::gpu::{GpuInfo, GpuMetrics, GpuSource};
use profile::recording::writer::write_manifest;
use profile::recording::{
    AnalysisInputs, GpuPoll, GpuWriter, Manifest, ScrapeMeta, ScrapeStatus, ScrapeWriter, Sourced,
};
use profile::report::{Report, SCHEMA_VERSION};
use profile::rules::RuleId;
use profile::units::{MonoNs, WallNs};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The real recording the lead commits to main (vLLM 0.32 on CPU, under load).
const REAL_RECORDING: &str = "recordings/vllm-cpu-0.32-load";

fn stdout_of(args: &[&str]) -> String {
    let out = profile().args(args).assert().success().get_output().clone();
    String::from_utf8(out.stdout).unwrap()
}

// ---------------------------------------------------------------------------------------------
// profile catalog
// ---------------------------------------------------------------------------------------------

#[test]
fn catalog_lists_gpus_and_models_with_sources() {
    let text = stdout_of(&["catalog"]);
    assert!(text.starts_with("catalog: embedded"));
    let h100 = text.lines().find(|l| l.contains("h100-sxm")).unwrap();
    assert!(h100.contains("3350") && h100.contains("67.0") && h100.contains("3.45"));
    assert!(h100.contains("spec catalog table"));
    let llama = text.lines().find(|l| l.contains("llama-3-70b")).unwrap();
    assert!(llama.contains("70.0") && llama.contains("no"));
    let a10g = text.lines().find(|l| l.contains("a10g")).unwrap();
    assert!(
        a10g.contains(" - "),
        "price-only GPU shows '-' peaks: {a10g}"
    );
}

#[derive(Deserialize)]
struct CatalogJson {
    origin: String,
    gpus: Vec<profile::catalog::GpuSpec>,
    models: Vec<profile::catalog::ModelSpec>,
}

#[test]
fn catalog_json_deserializes_into_the_catalog_types() {
    let json = stdout_of(&["catalog", "--json"]);
    assert!(json.ends_with("}\n"));
    let c: CatalogJson = serde_json::from_str(&json).unwrap();
    assert_eq!(c.origin, "embedded");
    let h100 = c.gpus.iter().find(|g| g.id == "h100-sxm").unwrap();
    assert_eq!(h100.mem_bw_gbps, Some(3350.0));
    assert_eq!(h100.fp32_tflops, Some(67.0));
    let a10g = c.gpus.iter().find(|g| g.id == "a10g").unwrap();
    assert!(!a10g.has_roofline());
    let maverick = c
        .models
        .iter()
        .find(|m| m.moe && m.total_params_b == Some(400.0));
    assert_eq!(maverick.unwrap().active_params_b, Some(17.0));
    assert_eq!(c.models.len(), 32);
    // Same catalog, same bytes.
    assert_eq!(json, stdout_of(&["catalog", "--json"]));
}

#[test]
fn catalog_dir_that_is_missing_fails_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = profile()
        .args(["catalog", "--catalog"])
        .arg(tmp.path())
        .assert()
        .failure()
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("gpus.toml"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// profile analyze on a synthetic recording (real writer, real reader)
// ---------------------------------------------------------------------------------------------

const T0: i64 = 1_800_000_000_000_000_000;
const MODEL: &str = "meta-llama/Meta-Llama-3-70B-Instruct";

/// One vLLM 0.11-style body: 8 running, 100 tok/s, one request per scrape.
fn body(i: u64) -> String {
    let n = i as f64;
    let t = n * 0.25;
    format!(
        "# TYPE vllm:num_requests_running gauge\n\
         vllm:num_requests_running{{model_name=\"{MODEL}\"}} 8\n\
         # TYPE vllm:num_requests_waiting gauge\n\
         vllm:num_requests_waiting{{model_name=\"{MODEL}\"}} 1\n\
         # TYPE vllm:kv_cache_usage_perc gauge\n\
         vllm:kv_cache_usage_perc{{model_name=\"{MODEL}\"}} 0.5\n\
         # TYPE vllm:generation_tokens_total counter\n\
         vllm:generation_tokens_total{{model_name=\"{MODEL}\"}} {gen}\n\
         # TYPE vllm:request_success_total counter\n\
         vllm:request_success_total{{finished_reason=\"stop\",model_name=\"{MODEL}\"}} {n}\n\
         # TYPE vllm:time_to_first_token_seconds histogram\n\
         vllm:time_to_first_token_seconds_bucket{{le=\"0.1\",model_name=\"{MODEL}\"}} 0\n\
         vllm:time_to_first_token_seconds_bucket{{le=\"0.5\",model_name=\"{MODEL}\"}} {n}\n\
         vllm:time_to_first_token_seconds_bucket{{le=\"+Inf\",model_name=\"{MODEL}\"}} {n}\n\
         vllm:time_to_first_token_seconds_sum{{model_name=\"{MODEL}\"}} {ttft}\n\
         vllm:time_to_first_token_seconds_count{{model_name=\"{MODEL}\"}} {n}\n",
        gen = 100.0 * t,
        ttft = 0.2 * n,
    )
}

/// Writes a 10 s recording of an H100 serving Llama 3 70B, with a recorded cost and dtype.
fn write_recording(dir: &Path) {
    write_recording_with_gpm(dir, Vec::new());
}

/// The same recording, its GPU polls answered by a fake GPU whose GPM fields follow `gpm`
/// (cycling; none when empty, as on a GPU without GPM).
fn write_recording_with_gpm(dir: &Path, gpm: Vec<GpmReading>) {
    std::fs::create_dir_all(dir).unwrap();
    let manifest = Manifest {
        format_version: "1.0".into(),
        tool_version: "test".into(),
        started_at_ns: T0,
        started_at: WallNs(T0).to_rfc3339_millis(),
        stopped_at_ns: Some(T0 + 10_000_000_000),
        stop_reason: Some("duration".into()),
        target_url: "http://127.0.0.1:8000/metrics".into(),
        recorder_host: None,
        interval_ms: 250,
        rotate_ms: 60_000,
        vllm_version: Some("0.11.0".into()),
        model_name: Some(MODEL.into()),
        gpu_note: None,
        driver_version: None,
        gpus: vec![GpuInfo {
            index: 0,
            name: Some("NVIDIA H100 80GB HBM3".into()),
            uuid: None,
            serial: None,
            vram_total_bytes: Some(85_520_809_984),
            power_limit_w: Some(700.0),
        }],
        analysis_inputs: AnalysisInputs {
            max_num_seqs: None,
            tensor_parallel_size: None,
            dtype: Some(Sourced {
                value: "bfloat16".into(),
                source: "VLLM_DTYPE".into(),
            }),
            cost_per_hour: Some(Sourced {
                value: 2.0,
                source: "--cost-per-hour".into(),
            }),
            gpu_memory_utilization: None,
        },
        totals: None,
        import: None,
        host: None,
        targets: Vec::new(),
    };
    write_manifest(dir, &manifest).unwrap();
    let mut scrapes = ScrapeWriter::new(dir).unwrap();
    let mut gpus = GpuWriter::new(dir).unwrap();
    let reading = GpuMetrics {
        util_pct: Some(90),
        power_w: Some(400.0),
        vram_total_bytes: Some(85_520_809_984),
        ..GpuMetrics::default()
    };
    let mut fake = FakeGpuSource::new(vec![FakeGpuSource::device(0, "NVIDIA H100 80GB HBM3")])
        .with_script(0, vec![reading])
        .with_gpm(0, gpm);
    for i in 0..=40u64 {
        let t = i as i64 * 250_000_000;
        let text = body(i);
        let exp = profile::promtext::parse(&text).unwrap();
        let meta = ScrapeMeta {
            seq: i,
            requested_at: WallNs(T0 + t - 1_000_000),
            completed_at: WallNs(T0 + t),
            requested_mono: MonoNs(t - 1_000_000),
            completed_mono: MonoNs(t),
            status: ScrapeStatus::Ok,
            http_status: Some(200),
            error: None,
            body_bytes: Some(text.len() as u64),
            sample_count: Some(exp.sample_count() as u64),
        };
        scrapes.push(&meta, Some(&exp)).unwrap();
        gpus.push(&GpuPoll {
            seq: i,
            gpu_index: 0,
            requested_at: WallNs(T0 + t - 1_000_000),
            completed_at: WallNs(T0 + t),
            requested_mono: MonoNs(t - 1_000_000),
            completed_mono: MonoNs(t),
            metrics: fake.poll(0),
        })
        .unwrap();
    }
    scrapes.finish().unwrap();
    gpus.finish().unwrap();
}

#[test]
fn analyze_a_written_recording_as_text_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    write_recording(&dir);
    let dir_s = dir.to_str().unwrap();

    let json = stdout_of(&["analyze", dir_s, "--json"]);
    let r: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(r.schema_version, SCHEMA_VERSION);
    assert_eq!(r.recording.scrapes_ok, 41);
    assert_eq!(r.ceiling.gpu.as_ref().unwrap().id, "h100-sxm");
    assert_eq!(r.ceiling.model.as_ref().unwrap().id, "llama-3-70b");
    assert_eq!(
        r.ceiling.bytes_per_param.source_label,
        "VLLM_DTYPE (recorded)"
    );
    let gen = r.metrics.generation_tokens_per_s.unwrap();
    assert!((gen - 100.0).abs() < 1e-9, "{gen}");
    let eff = r.ceiling.efficiency.pct().unwrap();
    assert!((eff - 100.0 / (3350e9 / 140e9 * 8.0) * 100.0).abs() < 1e-9);
    let cost = r.economics.cost_per_hour.as_ref().unwrap();
    assert_eq!((cost.usd_per_hour, cost.estimated), (2.0, false));
    // Determinism through the whole pipeline, files included.
    assert_eq!(json, stdout_of(&["analyze", dir_s, "--json"]));

    // Flags given to analyze beat the recorded values.
    let json = stdout_of(&[
        "analyze",
        dir_s,
        "--json",
        "--cost-per-hour",
        "7",
        "--dtype",
        "fp8",
        "--tensor-parallel-size",
        "2",
        "-m",
        "32",
        "--window",
        "1s",
        "--from",
        "2s",
        "-v",
    ]);
    let r: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(r.economics.cost_per_hour.unwrap().usd_per_hour, 7.0);
    assert_eq!(r.ceiling.bytes_per_param.value, 1.0);
    assert_eq!(r.ceiling.tensor_parallel.value, 2);
    assert_eq!(r.inputs.max_num_seqs.unwrap().value, 32.0);
    assert_eq!(r.windows.window_s, 1.0);
    assert_eq!(r.recording.range_from.as_deref(), Some("offset 2.000 s"));
    assert_eq!(r.recording.scrapes_total, 33);
    assert_eq!(r.windows.rows.len() as u32, r.windows.total);

    let text = stdout_of(&["analyze", dir_s]);
    assert!(text.contains("decode ceiling / request"));
    assert!(text.contains("(est)"));
    assert!(
        !text.contains('\u{1b}'),
        "no colour when stdout is not a terminal"
    );
    assert!(text.contains("not available"));
}

/// GPM on the catalogued H100: the three means in the metrics, and the measured DRAM share
/// set beside the bandwidth-bound decode ceiling; without GPM none of it appears, not even
/// as a key in the JSON.
#[test]
fn gpm_dram_share_stands_beside_the_decode_ceiling() {
    let tmp = tempfile::tempdir().unwrap();
    let with = tmp.path().join("gpm");
    // The first poll has no GPM (no previous sample), then 40/20/80 and 60/30/70 alternate:
    // over the 40 later polls the means are 50, 25 and 75.
    let a = [Some(40.0), Some(20.0), Some(80.0)];
    let b = [Some(60.0), Some(30.0), Some(70.0)];
    let mut script = vec![[None; 3]];
    script.extend((0..40).map(|i| if i % 2 == 0 { a } else { b }));
    write_recording_with_gpm(&with, script);
    let dir_s = with.to_str().unwrap();
    let r: Report = serde_json::from_str(&stdout_of(&["analyze", dir_s, "--json"])).unwrap();
    let close = |v: Option<f64>, want: f64| v.is_some_and(|v| (v - want).abs() < 0.5);
    assert!(r.ceiling.decode_tps.is_some());
    assert!(close(r.metrics.gpu_sm_active_pct, 50.0), "{:?}", r.metrics);
    assert!(
        close(r.metrics.gpu_sm_occupancy_pct, 25.0),
        "{:?}",
        r.metrics
    );
    assert!(
        close(r.metrics.gpu_dram_bw_util_pct, 75.0),
        "{:?}",
        r.metrics
    );
    assert_eq!(
        r.ceiling.measured_dram_bw_util_pct,
        r.metrics.gpu_dram_bw_util_pct
    );
    let text = stdout_of(&["analyze", dir_s]);
    let line = text
        .lines()
        .find(|l| l.contains("measured DRAM bandwidth use (GPM)"))
        .unwrap_or_else(|| panic!("{text}"));
    let pct = r.ceiling.measured_dram_bw_util_pct.unwrap();
    assert!(
        line.contains(&format!(
            "{pct:.1} % of peak (NVML GPM; the decode ceiling assumes 100 %)"
        )),
        "{line}"
    );
    assert!(text.contains("SM active (GPM)") && text.contains("DRAM bandwidth (GPM)"));

    // The same recording without GPM: no field, no row.
    let without = tmp.path().join("plain");
    write_recording(&without);
    let without_s = without.to_str().unwrap();
    let json = stdout_of(&["analyze", without_s, "--json"]);
    for key in [
        "gpu_sm_active_pct",
        "gpu_sm_occupancy_pct",
        "gpu_dram_bw_util_pct",
        "measured_dram_bw_util_pct",
    ] {
        assert!(!json.contains(key), "{key} in a report without GPM");
    }
    let r: Report = serde_json::from_str(&json).unwrap();
    assert!(r.ceiling.decode_tps.is_some() && r.metrics.gpu_util_pct.is_some());
    assert!(!stdout_of(&["analyze", without_s]).contains("GPM"));
}

#[test]
fn analyze_refuses_bad_flags_and_missing_recordings() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    write_recording(&dir);
    let bad = |args: &[&str]| {
        let out = profile()
            .arg("analyze")
            .arg(&dir)
            .args(args)
            .assert()
            .failure()
            .get_output()
            .clone();
        String::from_utf8(out.stderr).unwrap()
    };
    assert!(bad(&["--window", "0s"]).contains("longer than zero"));
    assert!(bad(&["--from", "30"]).contains("missing unit"));
    assert!(bad(&["--tensor-parallel-size", "0"]).contains("tensor-parallel"));
    assert!(bad(&["--cost-per-hour=-1"]).contains("--cost-per-hour (analyze)"));
    let out = profile()
        .args(["analyze"])
        .arg(tmp.path().join("nope"))
        .assert()
        .failure()
        .get_output()
        .clone();
    assert!(String::from_utf8(out.stderr).unwrap().contains("nope"));
}

// ---------------------------------------------------------------------------------------------
// The real recording, and golden snapshots
// ---------------------------------------------------------------------------------------------

/// The shipped recording; a checkout without it fails the test rather than skip it.
fn real_recording() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(REAL_RECORDING);
    assert!(
        p.join("manifest.json").is_file(),
        "{REAL_RECORDING} is missing from this checkout"
    );
    p
}

#[test]
fn analyze_the_real_cpu_recording() {
    let dir = real_recording();
    // Run from the crate root with a relative path, so output names the recording the same
    // way wherever the checkout lives.
    let run = |json: bool| {
        let mut c = profile();
        c.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["analyze", REAL_RECORDING]);
        if json {
            c.arg("--json");
        }
        String::from_utf8(c.assert().success().get_output().stdout.clone()).unwrap()
    };
    let text = run(false);
    assert!(text.contains(REAL_RECORDING));
    let json = run(true);
    let r: Report = serde_json::from_str(&json).unwrap();
    assert!(r.recording.scrapes_ok > 0, "{dir:?}");
    assert!(r.windows.total > 0);
    // A CPU server has no GPU data: the ceiling cannot be looked up, and says why.
    if !r.windows.has_gpu_data {
        assert!(r.ceiling.decode_tps.is_none());
        assert!(r.unavailable.iter().any(|u| u.what == "GPU catalog entry"));
    }
    assert_eq!(json, run(true), "same recording, same bytes");
    // 24 clients against --max-num-seqs 8 with KV nearly empty: the cap holds requests back,
    // so R5 is the recommendation; the tiny model is uncatalogued, so R4 cannot evaluate.
    let d = r.diagnosis.as_ref().expect("analyze always diagnoses");
    let r5 = d.finding(RuleId::R5).expect("R5 fires");
    assert!(r5.significant, "{r5:?}");
    assert_eq!(d.groups.first().map(|g| g.primary), Some(RuleId::R5));
    let step = &r5.fix.steps[0];
    assert_eq!(step.command_line().as_deref(), Some("--max-num-seqs 16"));
    let r4 = d.not_fired.iter().find(|n| n.rule == RuleId::R4).unwrap();
    assert!(r4.reason.contains("not in the catalog"), "{}", r4.reason);
    assert!(
        text.contains("[!] 1. KV-cache capacity vs concurrency cap"),
        "{text}"
    );
    assert!(text.contains("--max-num-seqs 16 (now 8)"), "{text}");
}

/// Compares `output` with the reviewed snapshot `tests/snapshots/analyze__<name>.snap`.
/// A missing or different snapshot fails and leaves a `.snap.new` to review with
/// `cargo insta review` (or `INSTA_UPDATE=always`, then read the `.snap` diff before
/// committing); nothing is accepted silently (CI sets `INSTA_UPDATE=no`).
fn assert_golden(name: &str, output: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(format!("analyze__{name}"), output));
}

/// Every recording directory under `recordings/`, as a path relative to the crate root
/// (`recordings/NAME`), sorted by name.
fn all_recordings() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("manifest.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| format!("recordings/{n}"))
        .collect()
}

/// `profile analyze REL ARGS` run from the crate root, so the report names the recording by
/// its relative path (`recording_label`) wherever the checkout lives; no colour (stdout is a
/// pipe, and `NO_COLOR` is set besides).
fn analyze_rel(rel: &str, extra: &[&str], env: &[(&str, &str)]) -> String {
    let mut c = profile();
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .args(["analyze", rel])
        .args(extra);
    for (k, v) in env {
        c.env(k, v);
    }
    String::from_utf8(c.assert().success().get_output().stdout.clone()).unwrap()
}

/// A snapshot name for a recording: `recordings/vllm-cpu-0.32-load` -> `vllm_cpu_0_32_load`.
fn snapshot_stem(rel: &str) -> String {
    rel.trim_start_matches("recordings/")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Golden text (plain and `-v`) and JSON of every recording under `recordings/`. Each was
/// read and judged before its snapshot was committed; a new recording fails here until its
/// snapshots have been reviewed the same way.
#[test]
fn golden_every_recording() {
    for rel in all_recordings() {
        let stem = snapshot_stem(&rel);
        assert_golden(&format!("{stem}_text"), &analyze_rel(&rel, &[], &[]));
        assert_golden(
            &format!("{stem}_text_verbose"),
            &analyze_rel(&rel, &["-v"], &[]),
        );
        assert_golden(
            &format!("{stem}_json"),
            &analyze_rel(&rel, &["--json"], &[]),
        );
    }
}

/// The same recording gives the same bytes: twice in a row, and with one or two rayon
/// threads (separate processes, so the thread pool really differs).
#[test]
fn every_recording_analyses_deterministically() {
    for rel in all_recordings() {
        for extra in [&["--json"][..], &["-v"][..]] {
            let first = analyze_rel(&rel, extra, &[]);
            assert_eq!(
                first,
                analyze_rel(&rel, extra, &[]),
                "{rel} {extra:?}: rerun"
            );
            for threads in ["1", "2"] {
                let other = analyze_rel(&rel, extra, &[("RAYON_NUM_THREADS", threads)]);
                assert_eq!(first, other, "{rel} {extra:?}: RAYON_NUM_THREADS={threads}");
            }
        }
    }
}

/// The ramp (1 -> 24 clients against --max-num-seqs 8) under a 2 s TTFT p99 target: the SLO
/// holds while requests run without queueing and breaks once a queue forms behind the cap.
#[test]
fn golden_slo_capacity_of_the_ramp() {
    const RAMP: &str = "recordings/vllm-cpu-0.32-ramp";
    let slo = ["--slo", "ttft-p99=2s,tpot-p99=100ms"];
    let text = analyze_rel(RAMP, &slo, &[]);
    assert_golden("vllm_cpu_0_32_ramp_slo_text", &text);
    let json = analyze_rel(RAMP, &[&slo[..], &["--json"]].concat(), &[]);
    let r: Report = serde_json::from_str(&json).unwrap();
    assert!(r.samples.is_none(), "samples only with --samples");
    let a = r.slo.expect("--slo adds the section");
    let profile::capacity::Capacity::BreaksAt { holds, breaks, .. } = a.capacity else {
        panic!("{:?}", a.capacity);
    };
    let (h, b) = (&a.levels[holds], &a.levels[breaks]);
    // Holds with running below the cap and no queue; breaks with the cap full and a queue.
    assert!(h.in_system < 8.0 && h.waiting_mean.unwrap() < 0.5, "{h:?}");
    assert!(
        b.running_mean.unwrap() > 7.5 && b.waiting_mean.unwrap() > 0.5,
        "{b:?}"
    );
    assert!(b.targets[0].value_s.unwrap() > 2.0);
    // Goodput: what share met each bound, and the bounds of "both".
    let g = &a.goodput;
    assert!(g.shares[0].is_some_and(|s| s > 0.3 && s < 0.9), "{g:?}");
    assert_eq!(g.shares[1], Some(1.0));
    assert_eq!(g.all_low, g.shares[0]);
    // `profile capacity` over the same recording gives the same assessment.
    let mut c = profile();
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["capacity", "--json", RAMP])
        .args(slo);
    let out = c.assert().success().get_output().stdout.clone();
    let pooled: profile::capacity::SloAssessment = serde_json::from_slice(&out).unwrap();
    assert_eq!(pooled.levels, a.levels);
    assert_eq!(pooled.capacity, a.capacity);
}

/// The reader reports its progress file group by file group, ending at every samples file and
/// every row, so a progress line can say how far a long read has come.
/// See: issue "Production scale", item 6.
#[test]
fn the_reader_reports_progress_to_the_last_row() {
    let dir = real_recording();
    let seen = std::sync::Mutex::new(Vec::new());
    let rec = profile::recording::open_filtered_progress(&dir, &|_| true, &|p| {
        seen.lock().unwrap().push(p)
    })
    .unwrap();
    let seen = seen.into_inner().unwrap();
    let last = *seen.last().expect("progress reported");
    let samples_files: Vec<_> = rec
        .files
        .iter()
        .filter(|f| {
            f.path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("samples-"))
        })
        .collect();
    assert_eq!(last.files_done, last.files_total);
    assert_eq!(last.files_total, samples_files.len());
    assert_eq!(last.rows, samples_files.iter().map(|f| f.rows).sum::<u64>());
    assert!(seen.windows(2).all(|w| w[0].rows <= w[1].rows));
}
