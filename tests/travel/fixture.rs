//! A small recording full of identifying strings, written with the project's writers: a
//! host name, IP, URL and port, a served model name, GPU UUIDs and serials, a path and an
//! e-mail address in label values, the host in a help text and in error texts. Values change
//! in every scrape, so consecutive scrapes always differ (the replay test relies on it).

use profile::gpu::{GpuInfo, GpuMetrics};
use profile::recording::manifest::{AnalysisInputs, Manifest, Sourced};
use profile::recording::writer::write_manifest;
use profile::recording::{GpuPoll, GpuWriter, ScrapeMeta, ScrapeStatus, ScrapeWriter};
use profile::units::{MonoNs, WallNs};
use std::path::Path;

pub const HOST: &str = "gpu-node-7.corp.example";
pub const RECORDER: &str = "alice-laptop.corp.example";
pub const URL: &str = "http://gpu-node-7.corp.example:8123/metrics";
pub const IP: &str = "10.20.30.40";
pub const MODEL: &str = "acme-ai/Llama-3.1-70B-Instruct-secretft";
pub const UUIDS: [&str; 2] = [
    "GPU-1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901",
    "GPU-99887766-5544-3322-1100-ffeeddccbbaa",
];
pub const SERIALS: [&str; 2] = ["1652920012345", "1652920067890"];
pub const PATH: &str = "/home/alice/adapters/lora-finance";
pub const EMAIL: &str = "alice@corp.example";
pub const GPU_NAME: &str = "NVIDIA H100 80GB HBM3";

/// Every string that must not survive redaction.
pub fn secrets() -> Vec<&'static str> {
    let mut v = vec![
        HOST, RECORDER, URL, IP, MODEL, PATH, EMAIL, "8123", "secretft", "acme",
    ];
    v.extend(UUIDS);
    v.extend(SERIALS);
    v
}

/// The recorded interval, and the spacing of the scrapes' request times.
pub const INTERVAL_MS: u64 = 1000;

/// Which scrapes fail, and how.
pub fn status_of(seq: u64) -> ScrapeStatus {
    match seq {
        4 => ScrapeStatus::HttpStatus,
        7 => ScrapeStatus::Parse,
        9 => ScrapeStatus::Other,
        _ => ScrapeStatus::Ok,
    }
}

/// The body of scrape `seq`.
pub fn body(seq: u64) -> String {
    let n = seq as f64;
    let m = format!("engine=\"0\",model_name=\"{MODEL}\"");
    format!(
        "# HELP vllm:num_requests_running Number of requests in model execution batches (served by {HOST}).\n\
         # TYPE vllm:num_requests_running gauge\n\
         vllm:num_requests_running{{{m}}} {running}\n\
         # HELP vllm:generation_tokens_total Number of generation tokens processed.\n\
         # TYPE vllm:generation_tokens_total counter\n\
         vllm:generation_tokens_total{{{m}}} {gen}\n\
         # HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.\n\
         # TYPE vllm:e2e_request_latency_seconds histogram\n\
         vllm:e2e_request_latency_seconds_bucket{{{m},le=\"0.1\"}} {b0}\n\
         vllm:e2e_request_latency_seconds_bucket{{{m},le=\"1.0\"}} {b1}\n\
         vllm:e2e_request_latency_seconds_bucket{{{m},le=\"2500000.0\"}} {b2}\n\
         vllm:e2e_request_latency_seconds_bucket{{{m},le=\"+Inf\"}} {b2}\n\
         vllm:e2e_request_latency_seconds_count{{{m}}} {b2}\n\
         vllm:e2e_request_latency_seconds_sum{{{m}}} {sum}\n\
         # HELP vllm:lora_requests_info Running stats on lora requests.\n\
         # TYPE vllm:lora_requests_info gauge\n\
         vllm:lora_requests_info{{max_lora=\"1\",owner=\"{EMAIL}\",running_lora_adapters=\"{PATH}\",peer=\"{IP}\",note=\"quote \\\" back\\\\slash\\nnewline\"}} {lora}\n\
         # HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
         # TYPE process_cpu_seconds_total counter\n\
         process_cpu_seconds_total {cpu}\n",
        running = seq % 3,
        gen = 100.0 * n + 0.5,
        b0 = seq,
        b1 = 2 * seq,
        b2 = 3 * seq + 1,
        sum = 0.37 * n + 0.125,
        lora = 1e6 + n,
        cpu = 7.75 + n / 8.0,
    )
}

fn meta(seq: u64, status: ScrapeStatus, samples: Option<u64>) -> ScrapeMeta {
    // Request times on the interval, completions 3-12 ms later.
    let req = (seq * INTERVAL_MS * 1_000_000) as i64;
    let done = req + 3_000_000 + (seq % 4) as i64 * 3_000_000;
    let wall0 = 1_790_000_000_000_000_000i64;
    let (http_status, error) = match status {
        ScrapeStatus::Ok => (Some(200), None),
        ScrapeStatus::HttpStatus => (
            Some(503),
            Some(format!(
                "HTTP 503 Service Unavailable: \"overloaded at {HOST}:8123\""
            )),
        ),
        ScrapeStatus::Parse => (Some(200), Some("line 3: invalid value \"x\"".to_string())),
        _ => (
            None,
            Some(format!("io: {URL}: connection reset by peer ({IP}:8123)")),
        ),
    };
    ScrapeMeta {
        seq,
        requested_at: WallNs(wall0 + req),
        completed_at: WallNs(wall0 + done),
        requested_mono: MonoNs(req),
        completed_mono: MonoNs(done),
        status,
        http_status,
        error,
        body_bytes: samples.map(|_| 2000),
        sample_count: samples,
    }
}

pub fn manifest() -> Manifest {
    Manifest {
        format_version: "1.0".into(),
        tool_version: "0.1.0".into(),
        started_at_ns: 1_790_000_000_000_000_000,
        started_at: "2026-09-20T12:53:20.000Z".into(),
        stopped_at_ns: None,
        stop_reason: None,
        target_url: URL.into(),
        recorder_host: Some(RECORDER.into()),
        interval_ms: INTERVAL_MS,
        rotate_ms: 60_000,
        vllm_version: Some("0.32.0".into()),
        model_name: Some(MODEL.into()),
        gpu_note: Some(format!("polled on {HOST}")),
        driver_version: Some("580.65.06".into()),
        gpus: (0..2)
            .map(|i| GpuInfo {
                index: i,
                name: Some(GPU_NAME.into()),
                uuid: Some(UUIDS[i as usize].into()),
                serial: Some(SERIALS[i as usize].into()),
                vram_total_bytes: Some(80 << 30),
                power_limit_w: Some(700.0),
            })
            .collect(),
        analysis_inputs: AnalysisInputs {
            max_num_seqs: Some(Sourced {
                value: 64,
                source: "--max-num-seqs".into(),
            }),
            ..AnalysisInputs::default()
        },
        totals: None,
        import: None,
        host: None,
        targets: Vec::new(),
    }
}

/// Writes the fixture recording into `dir` (created): `scrapes` scrapes in segments of 5,
/// two GPUs polled with each scrape.
pub fn write(dir: &Path, scrapes: u64) {
    std::fs::create_dir_all(dir).unwrap();
    write_manifest(dir, &manifest()).unwrap();
    let mut w = ScrapeWriter::new(dir).unwrap();
    let mut g = GpuWriter::new(dir).unwrap();
    for seq in 0..scrapes {
        let status = status_of(seq);
        if status == ScrapeStatus::Ok {
            let text = body(seq);
            let e = profile::promtext::parse(&text).unwrap();
            w.push(&meta(seq, status, Some(e.sample_count() as u64)), Some(&e))
                .unwrap();
        } else {
            w.push(&meta(seq, status, None), None).unwrap();
        }
        for gpu in 0..2u32 {
            let t = (seq * INTERVAL_MS * 1_000_000) as i64;
            g.push(&GpuPoll {
                seq,
                gpu_index: gpu,
                requested_at: WallNs(1_790_000_000_000_000_000 + t),
                completed_at: WallNs(1_790_000_000_000_000_000 + t + 1000),
                requested_mono: MonoNs(t),
                completed_mono: MonoNs(t + 1000),
                metrics: GpuMetrics {
                    util_pct: Some(50 + seq as u32),
                    power_w: Some(300.5 + seq as f64),
                    error: (seq == 3).then(|| format!("clocks: {} lost", UUIDS[gpu as usize])),
                    ..GpuMetrics::default()
                },
            })
            .unwrap();
        }
        if seq % 5 == 4 {
            w.rotate().unwrap();
            g.rotate().unwrap();
        }
    }
    w.finish().unwrap();
    g.finish().unwrap();
}
