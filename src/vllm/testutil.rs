//! Test helpers: recordings built by hand, without Parquet.

use crate::gpu::GpuMetrics;
use crate::promtext::MetricType;
use crate::recording::{
    AnalysisInputs, GpuPoll, Manifest, Recording, Scrape, ScrapeMeta, ScrapeStatus, SeriesInfo,
    StoredSample,
};
use crate::units::{MonoNs, WallNs};
use std::path::PathBuf;

/// A series description.
pub fn series(
    family: &str,
    t: MetricType,
    name: &str,
    labels: &str,
    le: Option<f64>,
) -> SeriesInfo {
    SeriesInfo {
        family: family.into(),
        metric_type: t,
        help: None,
        name: name.into(),
        labels: labels.into(),
        le,
    }
}

/// A stored sample.
pub fn sample(series: u32, value: f64) -> StoredSample {
    StoredSample { series, value }
}

/// Wall clock at mono 0 in tests.
pub const WALL0: i64 = 1_800_000_000_000_000_000;

/// Builds a `Recording` scrape by scrape. Times are monotonic milliseconds.
pub struct RecBuilder {
    series: Vec<SeriesInfo>,
    scrapes: Vec<Scrape>,
    polls: Vec<GpuPoll>,
}

/// The series ids of one histogram: `(buckets by le, sum, count)`.
pub struct Hist {
    pub buckets: Vec<u32>,
    pub sum: u32,
    pub count: u32,
}

impl RecBuilder {
    pub fn new() -> RecBuilder {
        RecBuilder {
            series: Vec::new(),
            scrapes: Vec::new(),
            polls: Vec::new(),
        }
    }

    fn add(&mut self, s: SeriesInfo) -> u32 {
        self.series.push(s);
        (self.series.len() - 1) as u32
    }

    pub fn gauge(&mut self, name: &str, labels: &str) -> u32 {
        self.add(series(name, MetricType::Gauge, name, labels, None))
    }

    pub fn counter(&mut self, name: &str, labels: &str) -> u32 {
        self.add(series(name, MetricType::Counter, name, labels, None))
    }

    /// A histogram family `name` with the given finite bounds plus `+Inf`.
    pub fn hist(&mut self, name: &str, labels: &str, les: &[f64]) -> Hist {
        let mut buckets = Vec::new();
        for le in les.iter().copied().chain([f64::INFINITY]) {
            let b = format!("{name}_bucket");
            buckets.push(self.add(series(name, MetricType::Histogram, &b, labels, Some(le))));
        }
        let sum = self.add(series(
            name,
            MetricType::Histogram,
            &format!("{name}_sum"),
            labels,
            None,
        ));
        let count = self.add(series(
            name,
            MetricType::Histogram,
            &format!("{name}_count"),
            labels,
            None,
        ));
        Hist {
            buckets,
            sum,
            count,
        }
    }

    /// A successful scrape at `t_ms` with the given samples.
    pub fn scrape(&mut self, t_ms: i64, samples: &[(u32, f64)]) -> &mut Self {
        let samples: Vec<StoredSample> = samples.iter().map(|&(s, v)| sample(s, v)).collect();
        self.push(t_ms, ScrapeStatus::Ok, samples)
    }

    /// A failed scrape at `t_ms`.
    pub fn failed(&mut self, t_ms: i64) -> &mut Self {
        self.push(t_ms, ScrapeStatus::Timeout, Vec::new())
    }

    fn push(&mut self, t_ms: i64, status: ScrapeStatus, samples: Vec<StoredSample>) -> &mut Self {
        let t = t_ms * 1_000_000;
        let seq = self.scrapes.len() as u64;
        self.scrapes.push(Scrape {
            meta: ScrapeMeta {
                seq,
                requested_at: WallNs(WALL0 + t - 1_000_000),
                completed_at: WallNs(WALL0 + t),
                requested_mono: MonoNs(t - 1_000_000),
                completed_mono: MonoNs(t),
                status,
                http_status: (status == ScrapeStatus::Ok).then_some(200),
                error: (status != ScrapeStatus::Ok).then(|| "timed out".to_string()),
                body_bytes: None,
                sample_count: Some(samples.len() as u64),
            },
            rows_read: samples.len() as u64,
            columns: None,
            samples,
            timestamps: Vec::new(),
        });
        self
    }

    /// A GPU poll of GPU `gpu` at `t_ms`.
    pub fn gpu(&mut self, t_ms: i64, gpu: u32, metrics: GpuMetrics) -> &mut Self {
        let t = t_ms * 1_000_000;
        self.polls.push(GpuPoll {
            seq: self.polls.len() as u64,
            gpu_index: gpu,
            requested_at: WallNs(WALL0 + t - 1_000_000),
            completed_at: WallNs(WALL0 + t),
            requested_mono: MonoNs(t - 1_000_000),
            completed_mono: MonoNs(t),
            metrics,
        });
        self
    }

    pub fn build(&self) -> Recording {
        Recording {
            dir: PathBuf::from("/test"),
            manifest: Manifest {
                format_version: "1.0".into(),
                tool_version: "test".into(),
                started_at_ns: WALL0,
                started_at: String::new(),
                stopped_at_ns: None,
                stop_reason: None,
                target_url: "http://test/metrics".into(),
                recorder_host: None,
                interval_ms: 250,
                rotate_ms: 60_000,
                vllm_version: None,
                model_name: None,
                gpu_note: None,
                driver_version: None,
                gpus: Vec::new(),
                analysis_inputs: AnalysisInputs::default(),
                totals: None,
                import: None,
                host: None,
                targets: Vec::new(),
            },
            series: self.series.clone(),
            scrapes: self.scrapes.clone(),
            gpu_polls: self.polls.clone(),
            host_samples: Vec::new(),
            files: Vec::new(),
        }
    }
}

/// GPU metrics with utilisation and power set.
pub fn gpu_metrics(util: u32, power_w: f64) -> GpuMetrics {
    GpuMetrics {
        util_pct: Some(util),
        power_w: Some(power_w),
        ..GpuMetrics::default()
    }
}
