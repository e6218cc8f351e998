//! What a recording holds, without analysing it: time span, scrape outcomes, gaps, files and
//! bytes, metric families and series, vLLM version and model, GPUs. `profile inspect` renders
//! this; bug reports quote it.

use crate::gpu::GpuInfo;
use crate::recording::{Recording, ScrapeStatus};
use crate::units::WallNs;
use serde::Serialize;
use std::collections::BTreeMap;

/// Everything `profile inspect` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inspection {
    /// The recording directory, as given.
    pub path: String,
    /// Recording format version from the manifest.
    pub format_version: String,
    /// The scraped URL.
    pub target_url: String,
    /// First scrape attempt (request time), RFC 3339 UTC.
    pub first_scrape_at: Option<String>,
    /// Last scrape attempt (completion time), RFC 3339 UTC.
    pub last_scrape_at: Option<String>,
    /// Monotonic span from the first request to the last completion, seconds.
    pub span_s: Option<f64>,
    /// Whether the recorder stopped cleanly (the manifest was rewritten at stop).
    pub clean_stop: bool,
    /// Why it stopped, at a clean stop.
    pub stop_reason: Option<String>,
    /// Configured scrape interval, ms.
    pub interval_ms: u64,
    /// Scrape attempts.
    pub scrapes_total: u64,
    /// Successful scrapes.
    pub scrapes_ok: u64,
    /// Failed scrapes by kind (`timeout`, `connect`, ...).
    pub scrapes_failed: BTreeMap<String, u64>,
    /// Ticks the scraper skipped because an earlier scrape overran (gaps in `seq`).
    pub ticks_skipped: u64,
    /// The longest time between two consecutive successful scrapes, seconds.
    pub longest_gap_s: Option<f64>,
    /// Where the longest gap began, RFC 3339 UTC.
    pub longest_gap_at: Option<String>,
    /// Samples stored.
    pub samples: u64,
    /// Bytes of the recording's files on disk (manifest included).
    pub bytes_on_disk: u64,
    /// Bytes on disk per stored sample.
    pub bytes_per_sample: Option<f64>,
    /// Every file, with its size and any problem.
    pub files: Vec<InspectedFile>,
    /// Metric families seen, by name.
    pub families: Vec<FamilySummary>,
    /// Distinct series across all families.
    pub series_total: u64,
    /// vLLM version, from the manifest.
    pub vllm_version: Option<String>,
    /// Served model names seen in `model_name` labels (the manifest's first if none).
    pub model_names: Vec<String>,
    /// GPUs from the manifest, with their poll counts.
    pub gpus: Vec<InspectedGpu>,
    /// Why GPUs were not recorded, if so.
    pub gpu_note: Option<String>,
    /// GPU poll rounds (each polls every GPU once).
    pub gpu_polls: u64,
    /// Successful scrapes whose body sent some series more than once (stored as sent; the
    /// analysis uses the first).
    pub scrapes_with_duplicates: u64,
    /// Outages and slow answers seen in the attempts (restarts need the analysis' windows:
    /// `profile analyze` reports them).
    pub availability: Vec<crate::availability::AvailabilityFinding>,
}

/// One file of the recording.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectedFile {
    /// File name within the recording.
    pub name: String,
    /// Size on disk.
    pub bytes: u64,
    /// Rows read.
    pub rows: u64,
    /// Why it could not be read, if so.
    pub problem: Option<String>,
}

/// One metric family.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FamilySummary {
    /// Family name.
    pub name: String,
    /// Declared type.
    pub metric_type: String,
    /// Distinct series (bucket rows count once per `le`).
    pub series: u64,
}

/// One GPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectedGpu {
    /// What the manifest says about it.
    #[serde(flatten)]
    pub info: GpuInfo,
    /// Polls recorded for it.
    pub polls: u64,
}

/// Whether one scrape holds two samples of the same series.
fn has_duplicates(s: &crate::recording::Scrape) -> bool {
    let mut ids: Vec<u32> = s.samples.iter().map(|x| x.series).collect();
    ids.sort_unstable();
    ids.windows(2).any(|w| w[0] == w[1])
}

/// Builds the inspection of a recording that has been read.
pub fn inspect(rec: &Recording, path_label: &str) -> Inspection {
    let m = &rec.manifest;
    let mut scrapes_ok = 0;
    let mut failed: BTreeMap<String, u64> = BTreeMap::new();
    let mut samples = 0u64;
    let mut ticks_skipped = 0u64;
    let mut prev_seq: Option<u64> = None;
    let mut prev_ok: Option<(i64, WallNs)> = None;
    let mut longest: Option<(i64, WallNs)> = None;
    for s in &rec.scrapes {
        if let Some(p) = prev_seq {
            ticks_skipped += s.meta.seq.saturating_sub(p + 1);
        }
        prev_seq = Some(s.meta.seq);
        samples += s.samples.len() as u64;
        if s.meta.status == ScrapeStatus::Ok {
            scrapes_ok += 1;
            let t = s.meta.completed_mono.0;
            if let Some((pt, pwall)) = prev_ok {
                let gap = t - pt;
                if longest.is_none_or(|(g, _)| gap > g) {
                    longest = Some((gap, pwall));
                }
            }
            prev_ok = Some((t, s.meta.completed_at));
        } else {
            *failed
                .entry(s.meta.status.as_str().to_string())
                .or_default() += 1;
        }
    }

    let first = rec.scrapes.first();
    let last = rec.scrapes.last();
    let span_s = match (first, last) {
        (Some(f), Some(l)) => {
            Some((l.meta.completed_mono.0 - f.meta.requested_mono.0) as f64 / 1e9)
        }
        _ => None,
    };

    // Families and series counts, and model names from `model_name` labels.
    let mut fams: BTreeMap<&str, (String, u64)> = BTreeMap::new();
    let mut models: BTreeMap<String, ()> = BTreeMap::new();
    for s in &rec.series {
        let e = fams
            .entry(&s.family)
            .or_insert_with(|| (s.metric_type.as_str().to_string(), 0));
        e.1 += 1;
        if let Some(v) = label_value(&s.labels, "model_name") {
            models.insert(v, ());
        }
    }
    let mut model_names: Vec<String> = models.into_keys().collect();
    if model_names.is_empty() {
        model_names.extend(m.model_name.clone());
    }

    let manifest_bytes = std::fs::metadata(rec.dir.join(crate::recording::schema::MANIFEST_FILE))
        .map(|md| md.len())
        .unwrap_or(0);
    let files: Vec<InspectedFile> = rec
        .files
        .iter()
        .map(|f| InspectedFile {
            name: f
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| f.path.display().to_string()),
            bytes: f.bytes,
            rows: f.rows,
            problem: f.problem.clone(),
        })
        .collect();
    let bytes_on_disk = manifest_bytes + files.iter().map(|f| f.bytes).sum::<u64>();
    let sample_bytes: u64 = files
        .iter()
        .filter(|f| f.name.starts_with("samples-") || f.name.starts_with("scrapes-"))
        .map(|f| f.bytes)
        .sum();

    let mut polls_per_gpu: BTreeMap<u32, u64> = BTreeMap::new();
    let mut rounds: BTreeMap<u64, ()> = BTreeMap::new();
    for p in &rec.gpu_polls {
        *polls_per_gpu.entry(p.gpu_index).or_default() += 1;
        rounds.insert(p.seq, ());
    }

    Inspection {
        path: path_label.to_string(),
        format_version: m.format_version.clone(),
        target_url: m.target_url.clone(),
        first_scrape_at: first.map(|s| s.meta.requested_at.to_rfc3339_millis()),
        last_scrape_at: last.map(|s| s.meta.completed_at.to_rfc3339_millis()),
        span_s,
        clean_stop: m.stopped_at_ns.is_some(),
        stop_reason: m.stop_reason.clone(),
        interval_ms: m.interval_ms,
        scrapes_total: rec.scrapes.len() as u64,
        scrapes_ok,
        scrapes_failed: failed,
        ticks_skipped,
        longest_gap_s: longest.map(|(g, _)| g as f64 / 1e9),
        longest_gap_at: longest.map(|(_, w)| w.to_rfc3339_millis()),
        samples,
        bytes_on_disk,
        // Scrape and sample files together are what a sample costs; GPU files are separate.
        bytes_per_sample: (samples > 0).then(|| sample_bytes as f64 / samples as f64),
        files,
        series_total: rec.series.len() as u64,
        families: fams
            .into_iter()
            .map(|(name, (t, n))| FamilySummary {
                name: name.to_string(),
                metric_type: t,
                series: n,
            })
            .collect(),
        vllm_version: m.vllm_version.clone(),
        model_names,
        gpus: m
            .gpus
            .iter()
            .map(|g| InspectedGpu {
                info: g.clone(),
                polls: polls_per_gpu.get(&g.index).copied().unwrap_or(0),
            })
            .collect(),
        gpu_note: m.gpu_note.clone(),
        gpu_polls: rounds.len() as u64,
        scrapes_with_duplicates: rec.scrapes.iter().filter(|s| has_duplicates(s)).count() as u64,
        availability: crate::availability::assess(
            &rec.scrapes.iter().collect::<Vec<_>>(),
            m.interval_ms,
            &[],
            None,
        ),
    }
}

/// The value of one label in a canonical label string (`a="x",b="y"`), unescaped.
fn label_value(canonical: &str, name: &str) -> Option<String> {
    crate::recording::schema::parse_canonical_labels(canonical)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}
