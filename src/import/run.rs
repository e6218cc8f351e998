//! Fetching the plan's chunks and writing each as one segment of the recording.
//!
//! Step `k` of the range becomes scrape `seq = k` at `from + k x step` (both clocks: the
//! monotonic offset is the time since the first step), holding every sample Prometheus has
//! for the instance at that step, exactly as `query_range` returns it. A step with no sample
//! at all is a failed scrape (`other`, with the reason), as the recorder stores a scrape that
//! got nothing. DCGM readings at the same step become one GPU poll round.

use super::client::{MetricMeta, RangeSeries};
use super::families::{family_of, FamilyOf, TARGET_LABELS};
use super::{dcgm, ImportError, Plan, PromApi};
use crate::promtext::{Exposition, Family, Format, Label, Sample};
use crate::recording::manifest::Totals;
use crate::recording::writer::write_manifest;
use crate::recording::{
    schema, GpuPoll, GpuWriter, ImportSource, Manifest, ScrapeMeta, ScrapeStatus, ScrapeWriter,
};
use crate::units::MonoNs;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Progress after each chunk, for the CLI's status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Chunks written.
    pub chunks_done: u64,
    /// Chunks in all.
    pub chunks: u64,
    /// Steps written.
    pub steps_done: u64,
    /// Steps in all.
    pub steps: u64,
}

/// What an import wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportSummary {
    /// The recording.
    pub dir: PathBuf,
    /// Scrape rows (steps).
    pub scrapes: u64,
    /// Steps with no sample (failed scrape rows).
    pub scrapes_failed: u64,
    /// Sample rows.
    pub samples: u64,
    /// GPU poll rounds.
    pub gpu_polls: u64,
    /// Segments written.
    pub chunks: u64,
    /// Families whose type was inferred, not read from metadata.
    pub inferred_types: Vec<String>,
}

/// Points of one series: (ms since the epoch, value).
type Points = Vec<(i64, f64)>;
/// Label pairs, sorted by name.
type Pairs = Vec<(String, String)>;

/// One series of a chunk, mapped to the recording's columns.
struct Mapped {
    family: usize,
    name: String,
    suffix: crate::promtext::Suffix,
    labels: Vec<(String, String)>,
    points: Vec<(i64, f64)>,
}

fn target_labels_removed(labels: &BTreeMap<String, String>) -> Vec<(String, String)> {
    labels
        .iter()
        .filter(|(n, _)| !TARGET_LABELS.contains(&n.as_str()))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect()
}

/// Maps a chunk's series to families, sorted by (family, name, labels) for a deterministic
/// order whatever order the server answered in.
fn map_series(
    rows: Vec<RangeSeries>,
    meta: &BTreeMap<String, MetricMeta>,
    inferred: &mut BTreeSet<String>,
) -> (Vec<FamilyOf>, Vec<Mapped>) {
    let names: BTreeSet<String> = rows
        .iter()
        .filter_map(|r| r.labels.get("__name__").cloned())
        .collect();
    let mut keyed: Vec<(FamilyOf, String, Pairs, Points)> = rows
        .into_iter()
        .filter_map(|r| {
            let name = r.labels.get("__name__")?.clone();
            let f = family_of(&name, r.labels.contains_key("le"), meta, &names);
            Some((f, name, target_labels_removed(&r.labels), r.points))
        })
        .collect();
    keyed.sort_by(|a, b| (&a.0.family, &a.1, &a.2).cmp(&(&b.0.family, &b.1, &b.2)));
    let mut families: Vec<FamilyOf> = Vec::new();
    let mut out = Vec::with_capacity(keyed.len());
    for (f, name, labels, points) in keyed {
        if f.inferred {
            inferred.insert(f.family.clone());
        }
        let suffix = f.suffix;
        let family = match families.iter().rposition(|g| g.family == f.family) {
            Some(i) => i,
            None => {
                families.push(f);
                families.len() - 1
            }
        };
        out.push(Mapped {
            family,
            name,
            suffix,
            labels,
            points,
        });
    }
    (families, out)
}

/// The manifest of the import, before anything is fetched.
fn start_manifest(plan: &Plan, gpu_note: Option<String>) -> Manifest {
    let target = match &plan.instance {
        Some(i) => format!("{i} via {}", plan.url),
        None => plan.url.clone(),
    };
    let range_to = plan.last_step();
    Manifest {
        format_version: schema::FORMAT_VERSION.to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at_ns: plan.from.0,
        started_at: plan.from.to_rfc3339_millis(),
        stopped_at_ns: None,
        stop_reason: None,
        target_url: target,
        recorder_host: None,
        interval_ms: plan.step_ms,
        rotate_ms: plan.step_ms.saturating_mul(plan.chunk_steps),
        vllm_version: None,
        model_name: plan.model_name.clone(),
        gpu_note,
        driver_version: None,
        gpus: plan
            .gpus
            .iter()
            .map(|(i, l)| dcgm::gpu_info(*i, l))
            .collect(),
        analysis_inputs: plan.analysis_inputs.clone(),
        totals: None,
        import: Some(ImportSource {
            source: "prometheus".to_string(),
            server_url: plan.url.clone(),
            selector: plan.selector.clone(),
            job: plan.job.clone(),
            instance: plan.instance.clone(),
            step_ms: plan.step_ms,
            range_from_ns: plan.from.0,
            range_to_ns: range_to.0,
            gpu_selectors: plan.gpu_queries.clone(),
            inferred_types: Vec::new(),
            incomplete: None,
        }),
        host: None,
        targets: Vec::new(),
    }
}

/// Refuses a directory that already holds a recording; creates it otherwise.
fn prepare_dir(dir: &Path) -> Result<(), ImportError> {
    let io = |error| crate::recording::RecordingError::Io {
        path: dir.to_path_buf(),
        error,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let name = entry.map_err(io)?.file_name();
        let name = name.to_string_lossy();
        if name == schema::MANIFEST_FILE || schema::Table::parse_file_name(&name).is_some() {
            return Err(ImportError::OutputExists(dir.to_path_buf()));
        }
    }
    Ok(())
}

/// Imports the plan into `dir`, one segment per chunk, calling `progress` after each.
pub fn run(
    api: &dyn PromApi,
    plan: &Plan,
    dir: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportSummary, ImportError> {
    prepare_dir(dir)?;
    let meta = api.metadata()?;
    let gpu_note = plan.gpu_queries.is_empty().then(|| {
        format!(
            "imported from {}: no DCGM exporter series matched the instance's host or pod",
            plan.url
        )
    });
    let mut manifest = start_manifest(plan, gpu_note);
    write_manifest(dir, &manifest)?;
    let mut scrapes = ScrapeWriter::new(dir)?;
    let mut gpus = GpuWriter::new(dir)?;
    let mut summary = ImportSummary {
        dir: dir.to_path_buf(),
        scrapes: 0,
        scrapes_failed: 0,
        samples: 0,
        gpu_polls: 0,
        chunks: 0,
        inferred_types: Vec::new(),
    };
    let mut inferred = BTreeSet::new();
    let mut vram_total: BTreeMap<u32, u64> = BTreeMap::new();
    let chunks = plan.chunks();
    for c in 0..chunks {
        let first = c * plan.chunk_steps;
        let last = (first + plan.chunk_steps).min(plan.steps) - 1;
        let written =
            import_chunk(api, plan, (first, last), &meta, &mut inferred).and_then(|chunk| {
                let writers = (&mut scrapes, &mut gpus);
                let counts = write_chunk(plan, (first, last), &chunk, writers, &mut vram_total)?;
                scrapes.rotate()?;
                gpus.rotate()?;
                Ok(counts)
            });
        match written {
            Ok((ok, failed, samples, polls)) => {
                summary.scrapes += ok + failed;
                summary.scrapes_failed += failed;
                summary.samples += samples;
                summary.gpu_polls += polls;
                summary.chunks += 1;
            }
            Err(cause) => {
                let done = if first == 0 {
                    "nothing imported".to_string()
                } else {
                    format!(
                        "imported {} to {} ({} of {} chunks)",
                        plan.from.to_rfc3339_millis(),
                        plan.step_at(first - 1).to_rfc3339_millis(),
                        c,
                        chunks
                    )
                };
                let missing_from = plan.step_at(first).to_rfc3339_millis();
                let missing_to = plan.last_step().to_rfc3339_millis();
                if let Some(imp) = &mut manifest.import {
                    imp.incomplete = Some(format!("{missing_from} to {missing_to}: {cause}"));
                    imp.inferred_types = inferred.iter().cloned().collect();
                }
                // Best effort: the error below says what is missing even if this fails.
                let _ = write_manifest(dir, &manifest);
                return Err(ImportError::Incomplete {
                    dir: dir.to_path_buf(),
                    done,
                    missing_from,
                    missing_to,
                    cause: Box::new(cause),
                });
            }
        }
        progress(Progress {
            chunks_done: c + 1,
            chunks,
            steps_done: last + 1,
            steps: plan.steps,
        });
    }
    scrapes.finish()?;
    gpus.finish()?;
    for g in &mut manifest.gpus {
        g.vram_total_bytes = vram_total.get(&g.index).copied();
    }
    manifest.stopped_at_ns = Some(plan.last_step().0);
    manifest.stop_reason = Some("imported".to_string());
    manifest.totals = Some(Totals {
        scrapes: summary.scrapes,
        scrapes_failed: summary.scrapes_failed,
        gpu_polls: summary.gpu_polls,
        samples: summary.samples,
        bytes_written: 0,
    });
    summary.inferred_types = inferred.into_iter().collect();
    if let Some(imp) = &mut manifest.import {
        imp.inferred_types = summary.inferred_types.clone();
    }
    write_manifest(dir, &manifest)?;
    Ok(summary)
}

/// A chunk's data, mapped.
struct Chunk {
    families: Vec<FamilyOf>,
    series: Vec<Mapped>,
    /// GPU series: (gpu index, field, points).
    gpu: Vec<(u32, String, Points)>,
}

fn import_chunk(
    api: &dyn PromApi,
    plan: &Plan,
    (first, last): (u64, u64),
    meta: &BTreeMap<String, MetricMeta>,
    inferred: &mut BTreeSet<String>,
) -> Result<Chunk, ImportError> {
    let (start, end) = (plan.step_at(first), plan.step_at(last));
    let mut rows = Vec::new();
    for q in &plan.queries {
        rows.extend(api.query_range(q, start, end, plan.step_ms)?);
    }
    let (families, series) = map_series(rows, meta, inferred);
    let index_of: BTreeMap<(u32, String), u32> = plan
        .gpus
        .iter()
        .filter_map(|(i, l)| dcgm::gpu_key(l).map(|k| (k, *i)))
        .collect();
    let mut gpu = Vec::new();
    for q in &plan.gpu_queries {
        for r in api.query_range(q, start, end, plan.step_ms)? {
            let (Some(key), Some(name)) = (dcgm::gpu_key(&r.labels), r.labels.get("__name__"))
            else {
                continue;
            };
            if let Some(i) = index_of.get(&key) {
                gpu.push((*i, name.clone(), r.points));
            }
        }
    }
    gpu.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    Ok(Chunk {
        families,
        series,
        gpu,
    })
}

/// Writes a chunk's steps; returns (ok steps, failed steps, samples, GPU rounds). The first
/// VRAM total of each GPU goes into `vram_total` (for the manifest).
fn write_chunk(
    plan: &Plan,
    (first, last): (u64, u64),
    chunk: &Chunk,
    (scrapes, gpus): (&mut ScrapeWriter, &mut GpuWriter),
    vram_total: &mut BTreeMap<u32, u64>,
) -> Result<(u64, u64, u64, u64), ImportError> {
    let (mut ok, mut failed, mut samples, mut polls) = (0, 0, 0, 0);
    let mut cursor = vec![0usize; chunk.series.len()];
    let mut gpu_cursor = vec![0usize; chunk.gpu.len()];
    for k in first..=last {
        let at = plan.step_at(k);
        let t_ms = at.0.div_euclid(1_000_000);
        let mut families: Vec<Family<'_>> = chunk
            .families
            .iter()
            .map(|f| Family {
                name: &f.family,
                metric_type: f.metric_type,
                help: f.help.as_deref().map(Cow::Borrowed),
                samples: Vec::new(),
            })
            .collect();
        for (s, c) in chunk.series.iter().zip(cursor.iter_mut()) {
            while s.points.get(*c).is_some_and(|p| p.0 < t_ms) {
                *c += 1;
            }
            if let Some(&(t, value)) = s.points.get(*c) {
                if t == t_ms {
                    families[s.family].samples.push(Sample {
                        name: &s.name,
                        suffix: s.suffix,
                        labels: s
                            .labels
                            .iter()
                            .map(|(n, v)| Label {
                                name: n,
                                value: Cow::Borrowed(v),
                            })
                            .collect(),
                        value,
                        timestamp_ms: None,
                    });
                    *c += 1;
                }
            }
        }
        families.retain(|f| !f.samples.is_empty());
        let exposition = Exposition {
            format: Format::Text004,
            families,
        };
        let n = exposition.sample_count() as u64;
        let mono = MonoNs(at.0 - plan.from.0);
        let meta = ScrapeMeta {
            seq: k,
            requested_at: at,
            completed_at: at,
            requested_mono: mono,
            completed_mono: mono,
            status: if n > 0 {
                ScrapeStatus::Ok
            } else {
                ScrapeStatus::Other
            },
            http_status: None,
            error: (n == 0).then(|| {
                "no sample in Prometheus at this step (target down, not scraped yet, or stale)"
                    .to_string()
            }),
            body_bytes: None,
            sample_count: (n > 0).then_some(n),
        };
        if n > 0 {
            scrapes.push(&meta, Some(&exposition))?;
            ok += 1;
            samples += n;
        } else {
            scrapes.push(&meta, None)?;
            failed += 1;
        }
        let round = gpu_round(chunk, &mut gpu_cursor, t_ms);
        if !round.is_empty() {
            polls += 1;
        }
        for (index, fields) in round {
            let metrics = dcgm::metrics(&fields);
            if let Some(v) = metrics.vram_total_bytes {
                vram_total.entry(index).or_insert(v);
            }
            gpus.push(&GpuPoll {
                seq: k,
                gpu_index: index,
                requested_at: at,
                completed_at: at,
                requested_mono: mono,
                completed_mono: mono,
                metrics,
            })?;
        }
    }
    Ok((ok, failed, samples, polls))
}

/// The DCGM fields of each GPU at `t_ms`.
fn gpu_round<'c>(
    chunk: &'c Chunk,
    cursor: &mut [usize],
    t_ms: i64,
) -> BTreeMap<u32, BTreeMap<&'c str, f64>> {
    let mut round: BTreeMap<u32, BTreeMap<&str, f64>> = BTreeMap::new();
    for ((index, field, points), c) in chunk.gpu.iter().zip(cursor.iter_mut()) {
        while points.get(*c).is_some_and(|p| p.0 < t_ms) {
            *c += 1;
        }
        if let Some(&(t, v)) = points.get(*c) {
            if t == t_ms {
                round.entry(*index).or_default().insert(field.as_str(), v);
                *c += 1;
            }
        }
    }
    round
}
