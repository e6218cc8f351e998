//! Test helpers: hand-built expositions (the parser is not needed to test the format), scrape
//! and GPU rows, and a seeded synthetic vLLM-like body generator for size and speed checks.

use crate::gpu::GpuMetrics;
use crate::promtext::{Exposition, Family, Format, Label, MetricType, Sample, Suffix};
use crate::recording::{GpuPoll, ScrapeMeta, ScrapeStatus};
use crate::units::{MonoNs, WallNs};
use std::borrow::Cow;

/// Start of every test recording: 2026-11-23T09:01:02Z.
pub const T0: i64 = 1_795_424_462_000_000_000;

/// A successful scrape `seq`, 250 ms apart, that took 3 ms.
pub fn ok_meta(seq: u64, samples: usize) -> ScrapeMeta {
    let at = seq as i64 * 250_000_000;
    ScrapeMeta {
        seq,
        requested_at: WallNs(T0 + at),
        completed_at: WallNs(T0 + at + 3_000_000),
        requested_mono: MonoNs(at),
        completed_mono: MonoNs(at + 3_000_000),
        status: ScrapeStatus::Ok,
        http_status: Some(200),
        error: None,
        body_bytes: Some(40_000 + seq),
        sample_count: Some(samples as u64),
    }
}

/// A failed scrape `seq`.
pub fn failed_meta(seq: u64, status: ScrapeStatus) -> ScrapeMeta {
    let mut m = ok_meta(seq, 0);
    m.status = status;
    m.http_status = (status == ScrapeStatus::HttpStatus).then_some(503);
    m.error = Some(format!(
        "attempt {seq} failed: \"{}\"\nsecond line",
        status.as_str()
    ));
    m.body_bytes = None;
    m.sample_count = None;
    m
}

/// A GPU poll with every field set, or with some left `None`.
pub fn gpu_poll(seq: u64, gpu_index: u32, sparse: bool) -> GpuPoll {
    let at = seq as i64 * 250_000_000 + i64::from(gpu_index) * 1000;
    GpuPoll {
        seq,
        gpu_index,
        requested_at: WallNs(T0 + at),
        completed_at: WallNs(T0 + at + 500_000),
        requested_mono: MonoNs(at),
        completed_mono: MonoNs(at + 500_000),
        metrics: GpuMetrics {
            util_pct: Some(97),
            mem_util_pct: (!sparse).then_some(41),
            power_w: Some(612.25 + seq as f64),
            power_limit_w: (!sparse).then_some(700.0),
            vram_used_bytes: Some(70_000_000_000 + seq),
            vram_total_bytes: (!sparse).then_some(85_899_345_920),
            temperature_c: (!sparse).then_some(64),
            sm_clock_mhz: Some(1980),
            error: sparse.then(|| "mem_util: NVML error \"unknown\"".to_string()),
            sm_active_pct: Some(62.5 + seq as f64 / 8.0),
            sm_occupancy_pct: (!sparse).then_some(31.25),
            dram_bw_util_pct: (!sparse).then_some(48.0),
        },
    }
}

fn label<'a>(name: &'a str, value: &'a str) -> Label<'a> {
    Label {
        name,
        value: Cow::Borrowed(value),
    }
}

fn sample<'a>(name: &'a str, suffix: Suffix, labels: Vec<Label<'a>>, value: f64) -> Sample<'a> {
    Sample {
        name,
        suffix,
        labels,
        value,
        timestamp_ms: None,
    }
}

/// An exposition full of edge cases: special floats, NaN with a payload, hostile label values,
/// a histogram (with an unparseable `le` and labels in varying order), help with escapes,
/// sample timestamps, a family with no help and no labels.
pub fn hostile(seq: u64) -> Exposition<'static> {
    let nan_payload = f64::from_bits(0x7ff8_0000_dead_beef);
    let v = |x: f64| x + seq as f64;
    let mut counter = Family {
        name: "vllm:prompt_tokens",
        metric_type: MetricType::Counter,
        help: Some(Cow::Borrowed(
            "Prompt tokens.\nWith \\ backslash and \"quotes\"",
        )),
        samples: vec![
            sample(
                "vllm:prompt_tokens_total",
                Suffix::Total,
                vec![label("model_name", "m"), label("engine", "0")],
                v(1e6),
            ),
            sample(
                "vllm:prompt_tokens_total",
                Suffix::Total,
                vec![
                    label("model_name", "we\\ird \"name\"\nline2, a=b"),
                    label("engine", "1"),
                ],
                v(2.5),
            ),
        ],
    };
    counter.samples[1].timestamp_ms = Some(1_795_424_462_123 + seq as i64);
    let specials = Family {
        name: "special",
        metric_type: MetricType::Gauge,
        help: None,
        samples: [
            f64::NAN,
            nan_payload,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            0.0,
        ]
        .into_iter()
        .zip(["nan", "nan_payload", "pinf", "ninf", "negzero", "zero"])
        .map(|(x, k)| sample("special", Suffix::None, vec![label("k", k)], x))
        .collect(),
    };
    let mut buckets: Vec<Sample<'static>> = ["0.005", "0.1", "1e+06", "+Inf", "bogus"]
        .into_iter()
        .enumerate()
        .map(|(i, le)| {
            // Vary the label order between series: the canonical string must not care.
            let labels = if i % 2 == 0 {
                vec![label("le", le), label("model_name", "m")]
            } else {
                vec![label("model_name", "m"), label("le", le)]
            };
            sample("lat_seconds_bucket", Suffix::Bucket, labels, v(i as f64))
        })
        .collect();
    buckets.push(sample(
        "lat_seconds_sum",
        Suffix::Sum,
        vec![label("model_name", "m")],
        v(0.3),
    ));
    buckets.push(sample(
        "lat_seconds_count",
        Suffix::Count,
        vec![label("model_name", "m")],
        v(4.0),
    ));
    let histogram = Family {
        name: "lat_seconds",
        metric_type: MetricType::Histogram,
        help: Some(Cow::Borrowed("Latency, seconds.")),
        samples: buckets,
    };
    // A gauge with an `le` label: not a bucket, so `le` stays in the label string.
    let gauge_le = Family {
        name: "odd_gauge",
        metric_type: MetricType::Gauge,
        help: Some(Cow::Borrowed("")),
        samples: vec![sample(
            "odd_gauge",
            Suffix::None,
            vec![label("le", "1")],
            7.0,
        )],
    };
    let bare = Family {
        name: "bare",
        metric_type: MetricType::Unknown,
        help: None,
        samples: vec![sample("bare", Suffix::None, vec![], v(-1.5))],
    };
    Exposition {
        format: Format::Text004,
        families: vec![counter, specials, histogram, gauge_le, bare],
    }
}

/// splitmix64: a tiny seeded generator, so synthetic recordings are reproducible.
pub struct Rng(pub u64);

impl Rng {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Bucket bounds shared by the synthetic histograms (24 bounds + `+Inf`).
const BOUNDS: [&str; 25] = [
    "0.001", "0.005", "0.01", "0.02", "0.04", "0.06", "0.08", "0.1", "0.25", "0.5", "0.75", "1.0",
    "2.5", "5.0", "7.5", "10.0", "15.0", "20.0", "30.0", "40.0", "50.0", "60.0", "120.0", "240.0",
    "+Inf",
];

/// A synthetic vLLM-like server: 14 histograms (25 buckets + sum + count), 26 counters and
/// 21 gauges, 425 samples per scrape. Idle, only the process's CPU counter and memory gauge
/// move; under load, counters grow, a few requests land in each histogram per scrape, and
/// the gauges wander.
pub struct Synth {
    rng: Rng,
    names: Vec<[String; 4]>,
    counters: Vec<String>,
    gauges: Vec<String>,
    hist: Vec<[f64; 27]>,
    counter_v: Vec<f64>,
    gauge_v: Vec<f64>,
}

impl Synth {
    /// A generator with a fixed seed.
    pub fn new(seed: u64) -> Synth {
        let names = (0..14)
            .map(|i| {
                let f = format!("vllm:synthetic_latency_{i}_seconds");
                [
                    format!("{f}_bucket"),
                    format!("{f}_sum"),
                    format!("{f}_count"),
                    f,
                ]
            })
            .collect();
        Synth {
            rng: Rng(seed),
            names,
            counters: (0..26)
                .map(|i| format!("vllm:synthetic_counter_{i}_total"))
                .collect(),
            gauges: (0..21)
                .map(|i| format!("vllm:synthetic_gauge_{i}"))
                .collect(),
            hist: vec![[0.0; 27]; 14],
            counter_v: vec![0.0; 26],
            gauge_v: vec![0.0; 21],
        }
    }

    /// Advances the server by one scrape interval.
    pub fn step(&mut self, load: bool) {
        self.counter_v[0] += 0.01 + (self.rng.f64() * 100.0).round() / 10_000.0;
        self.gauge_v[0] = 2.1e9 + (self.rng.f64() * 64.0).round() * 4096.0;
        if !load {
            return;
        }
        for c in self.counter_v.iter_mut().skip(1) {
            if self.rng.f64() < 0.6 {
                *c += (self.rng.f64() * 500.0).round();
            }
        }
        for g in self.gauge_v.iter_mut().skip(1) {
            if self.rng.f64() < 0.5 {
                *g = (self.rng.f64() * 64.0).round();
            }
        }
        self.gauge_v[1] = self.rng.f64();
        for h in &mut self.hist {
            for _ in 0..(self.rng.next_u64() % 4) {
                let x = (self.rng.f64() * 6.0).exp() / 100.0;
                for (i, b) in BOUNDS.iter().enumerate() {
                    if b.parse::<f64>().is_ok_and(|b| x <= b) {
                        h[i] += 1.0;
                    }
                }
                h[25] += x;
                h[26] += 1.0;
            }
        }
    }

    /// The current state as a parsed body.
    pub fn exposition(&self) -> Exposition<'_> {
        let m = |extra: Option<(&'static str, &'static str)>| {
            let mut l = vec![
                label("engine", "0"),
                label("model_name", "meta-llama/Llama-3.1-8B"),
            ];
            if let Some((n, v)) = extra {
                l.push(label(n, v));
            }
            l
        };
        let mut families = Vec::new();
        for (names, h) in self.names.iter().zip(&self.hist) {
            let mut samples: Vec<Sample<'_>> = BOUNDS
                .iter()
                .zip(h)
                .map(|(b, &v)| sample(&names[0], Suffix::Bucket, m(Some(("le", b))), v))
                .collect();
            samples.push(sample(&names[1], Suffix::Sum, m(None), h[25]));
            samples.push(sample(&names[2], Suffix::Count, m(None), h[26]));
            families.push(Family {
                name: &names[3],
                metric_type: MetricType::Histogram,
                help: Some(Cow::Borrowed(
                    "Histogram of a synthetic latency in seconds.",
                )),
                samples,
            });
        }
        for (name, &v) in self.counters.iter().zip(&self.counter_v) {
            families.push(Family {
                name: name.strip_suffix("_total").unwrap_or(name),
                metric_type: MetricType::Counter,
                help: Some(Cow::Borrowed("A synthetic counter.")),
                samples: vec![sample(name, Suffix::Total, m(None), v)],
            });
        }
        for (name, &v) in self.gauges.iter().zip(&self.gauge_v) {
            families.push(Family {
                name,
                metric_type: MetricType::Gauge,
                help: Some(Cow::Borrowed("A synthetic gauge.")),
                samples: vec![sample(name, Suffix::None, m(None), v)],
            });
        }
        Exposition {
            format: Format::Text004,
            families,
        }
    }
}

/// A manifest with every optional part filled in.
pub fn manifest() -> crate::recording::Manifest {
    use crate::recording::{manifest::Totals, AnalysisInputs, Manifest, Sourced};
    Manifest {
        format_version: crate::recording::schema::FORMAT_VERSION.to_string(),
        tool_version: "0.1.0".to_string(),
        started_at_ns: T0,
        started_at: WallNs(T0).to_rfc3339_millis(),
        stopped_at_ns: Some(T0 + 60_000_000_000),
        stop_reason: Some("interrupt".to_string()),
        target_url: "http://127.0.0.1:8000/metrics".to_string(),
        recorder_host: Some("host \"a\"\n".to_string()),
        interval_ms: 250,
        rotate_ms: 60_000,
        vllm_version: Some("0.11.0".to_string()),
        model_name: Some("meta-llama/Llama-3.1-8B".to_string()),
        gpu_note: None,
        driver_version: Some("580.82".to_string()),
        gpus: vec![crate::gpu::GpuInfo {
            index: 0,
            name: Some("NVIDIA H100 80GB HBM3".to_string()),
            uuid: Some("GPU-0".to_string()),
            serial: None,
            vram_total_bytes: Some(85_899_345_920),
            power_limit_w: Some(700.0),
        }],
        analysis_inputs: AnalysisInputs {
            max_num_seqs: Some(Sourced {
                value: 256,
                source: "--max-num-seqs".to_string(),
            }),
            tensor_parallel_size: None,
            dtype: Some(Sourced {
                value: "bfloat16".to_string(),
                source: "VLLM_DTYPE".to_string(),
            }),
            cost_per_hour: Some(Sourced {
                value: 2.49,
                source: "--cost-per-hour".to_string(),
            }),
            gpu_memory_utilization: None,
        },
        totals: Some(Totals {
            scrapes: 240,
            scrapes_failed: 1,
            gpu_polls: 240,
            samples: 102_000,
            bytes_written: 123_456,
        }),
        import: None,
        host: None,
        targets: Vec::new(),
    }
}

/// Copies the recording `src` to `dst` and adds GPU files to it: `gpus` GPUs polled every
/// 250 ms from a second before its first scrape to a second after its last, with readings
/// that change every poll, rotated every `per_file` polls (so that GPU files straddle the
/// samples files and the windows).
pub fn copy_with_gpu(src: &std::path::Path, dst: &std::path::Path, gpus: u32, per_file: usize) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    let rec = crate::recording::open(src).unwrap();
    let first = rec.scrapes.first().unwrap().meta.completed_mono.0 - 1_000_000_000;
    let last = rec.scrapes.last().unwrap().meta.completed_mono.0 + 1_000_000_000;
    let mut w = crate::recording::GpuWriter::new(dst).unwrap();
    let mut pushed = 0usize;
    for (seq, at) in (first..=last).step_by(250_000_000).enumerate() {
        let seq = seq as u64;
        for g in 0..gpus {
            let at = at + i64::from(g) * 700_000;
            let wave = (seq % 37) as f64;
            w.push(&GpuPoll {
                seq,
                gpu_index: g,
                requested_at: WallNs(rec.manifest.started_at_ns + at - 400_000),
                completed_at: WallNs(rec.manifest.started_at_ns + at),
                requested_mono: MonoNs(at - 400_000),
                completed_mono: MonoNs(at),
                metrics: GpuMetrics {
                    util_pct: Some((seq * 7 + u64::from(g)) as u32 % 101),
                    mem_util_pct: Some((seq * 3) as u32 % 90),
                    power_w: Some(90.0 + wave * 11.25 + f64::from(g)),
                    power_limit_w: Some(700.0),
                    vram_used_bytes: Some(60_000_000_000 + seq * 1_048_576),
                    vram_total_bytes: Some(85_899_345_920),
                    temperature_c: Some(40 + (seq % 25) as u32),
                    sm_clock_mhz: Some(1_400 + (seq % 5) as u32 * 100),
                    error: None,
                    sm_active_pct: Some(wave * 2.5),
                    sm_occupancy_pct: Some(wave * 1.25),
                    dram_bw_util_pct: Some(wave * 2.0),
                },
            })
            .unwrap();
            pushed += 1;
            if pushed % per_file == 0 {
                w.rotate().unwrap();
            }
        }
    }
    w.finish().unwrap();
}
