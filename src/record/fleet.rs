//! Recording several servers at once: one [`Recorder`] per target, each with its own threads
//! and its own schedule anchored at its own start, so that a slow or dead target never delays
//! another. Each target is recorded into `targets/NNN/` of the fleet directory as a complete
//! recording of that server alone; the fleet's `manifest.json` lists the targets (format 1.3).
//!
//! All targets share one stop handle: Ctrl-C, the duration or a write failure (the disk is
//! shared) ends every target.

use super::setup::prepare_dir;
use super::{clock, setup, RecordConfig, RecordError, RecordSummary, Recorder, StopHandle};
use crate::recording::fleet::name_from_url;
use crate::recording::manifest::Totals;
use crate::recording::writer::write_manifest;
use crate::recording::{AnalysisInputs, FleetTarget, Manifest};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a fleet records no GPU: which GPU serves which target is not known here. Ours: a
/// host's polls stored under one target would be read as that target's GPUs.
pub const FLEET_GPU_NOTE: &str =
    "GPUs are not polled in a multi-target recording (which GPU serves which target is unknown)";

/// One server of a fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetConfig {
    /// Its name; `None` derives one from the URL's host and port.
    pub name: Option<String>,
    /// Its metrics URL.
    pub url: String,
    /// Its own inputs; each one given beats the fleet-wide one in `FleetConfig::base`.
    pub analysis_inputs: AnalysisInputs,
}

/// A fleet to record: the settings every target shares, and the targets.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Shared settings; its `url` is ignored, its `out_dir` is the fleet directory and its
    /// `analysis_inputs` apply to every target that does not give its own.
    pub base: RecordConfig,
    /// The targets, at least one.
    pub targets: Vec<TargetConfig>,
}

/// A running fleet recording.
pub struct FleetRecorder {
    dir: PathBuf,
    manifest: Manifest,
    stop: StopHandle,
    /// `(name, recorder)` in target order.
    recorders: Vec<(String, Recorder)>,
}

/// The result of a fleet recording that stopped cleanly.
#[derive(Debug, Clone)]
pub struct FleetSummary {
    /// The fleet directory.
    pub dir: PathBuf,
    /// The fleet manifest as rewritten at the stop.
    pub manifest: Manifest,
    /// Each target's name and summary, in target order.
    pub targets: Vec<(String, RecordSummary)>,
}

/// Merges a target's inputs over the fleet-wide ones, input by input.
fn merge(own: &AnalysisInputs, fleet: &AnalysisInputs) -> AnalysisInputs {
    AnalysisInputs {
        max_num_seqs: own.max_num_seqs.clone().or(fleet.max_num_seqs.clone()),
        tensor_parallel_size: own
            .tensor_parallel_size
            .clone()
            .or(fleet.tensor_parallel_size.clone()),
        dtype: own.dtype.clone().or(fleet.dtype.clone()),
        cost_per_hour: own.cost_per_hour.clone().or(fleet.cost_per_hour.clone()),
        gpu_memory_utilization: own
            .gpu_memory_utilization
            .clone()
            .or(fleet.gpu_memory_utilization.clone()),
    }
}

/// The fleet's target table: names given or derived, refused when two are equal (a name is
/// how `analyze --target` and `compare` find a target).
fn target_table(config: &FleetConfig) -> Result<Vec<FleetTarget>, RecordError> {
    if config.targets.is_empty() {
        return Err(RecordError::Config(
            "a fleet needs at least one target".into(),
        ));
    }
    let mut table: Vec<FleetTarget> = Vec::with_capacity(config.targets.len());
    for (i, t) in config.targets.iter().enumerate() {
        let name = t.name.clone().unwrap_or_else(|| name_from_url(&t.url));
        if let Some(other) = table.iter().find(|o| o.name == name) {
            return Err(RecordError::Config(format!(
                "targets {} ({}) and {} ({}) are both named {name:?}; give them distinct names",
                other.id, other.url, i, t.url
            )));
        }
        let id = u32::try_from(i).map_err(|_| RecordError::Config("too many targets".into()))?;
        table.push(FleetTarget {
            id,
            name,
            url: t.url.clone(),
            dir: format!("targets/{id:03}"),
            analysis_inputs: merge(&t.analysis_inputs, &config.base.analysis_inputs),
        });
    }
    Ok(table)
}

/// Target `i` of `n` rotates `i/n` of a period ahead of the first: with every target on the
/// same schedule, 64 targets encoded and wrote their segments at the same instant, skipping
/// 5% of the ticks around each rotation on a 2-core machine (docs/benchmarks.md, section 5).
fn rotation_phase(i: usize, n: usize, rotate: Duration) -> Duration {
    let (i, n) = (i as u128, n.max(1) as u128);
    let ns = rotate.as_nanos() * i / n;
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}

impl FleetRecorder {
    /// Checks every target, creates the fleet directory, writes the fleet manifest and starts
    /// every target's recorder (the starts run side by side: each asks its server for its
    /// version first, and a silent server must not hold the others back).
    pub fn start(config: FleetConfig) -> Result<FleetRecorder, RecordError> {
        let table = target_table(&config)?;
        let mut configs: Vec<RecordConfig> = Vec::with_capacity(table.len());
        let dir = match &config.base.out_dir {
            Some(d) => d.clone(),
            None => Path::new("recordings").join(clock::wall_now().to_compact_utc()),
        };
        let stop = StopHandle::new();
        let n = table.len();
        for (i, t) in table.iter().enumerate() {
            let mut c = config.base.clone();
            c.rotate_phase = rotation_phase(i, n, c.rotate);
            c.url = t.url.clone();
            c.out_dir = Some(dir.join(&t.dir));
            c.analysis_inputs = t.analysis_inputs.clone();
            c.gpu_note = Some(FLEET_GPU_NOTE.to_string());
            c.stop = Some(stop.clone());
            setup::check_config(&c)
                .map_err(|e| RecordError::Config(format!("target {}: {e}", t.name)))?;
            configs.push(c);
        }
        prepare_dir(&dir)?;
        let mut fleet_config = config.base.clone();
        fleet_config.url = table
            .iter()
            .map(|t| t.url.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        fleet_config.gpu_note = Some(FLEET_GPU_NOTE.to_string());
        let mut manifest = setup::start_manifest(&fleet_config, clock::wall_now(), None, None);
        manifest.targets = table.clone();
        write_manifest(&dir, &manifest).map_err(RecordError::Start)?;

        let started: Vec<Result<Recorder, RecordError>> = std::thread::scope(|s| {
            let handles: Vec<_> = configs
                .into_iter()
                .map(|c| s.spawn(move || Recorder::start(c, None)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(RecordError::Thread("a target's start panicked".into()))
                    })
                })
                .collect()
        });
        let mut recorders = Vec::with_capacity(started.len());
        let mut first_error = None;
        for (t, r) in table.iter().zip(started) {
            match r {
                Ok(rec) => recorders.push((t.name.clone(), rec)),
                Err(e) => {
                    first_error.get_or_insert((t.name.clone(), e));
                }
            }
        }
        if let Some((name, e)) = first_error {
            stop.stop(super::StopReason::WriteError);
            drop(recorders);
            return Err(RecordError::Config(format!("target {name}: {e}")));
        }
        Ok(FleetRecorder {
            dir,
            manifest,
            stop,
            recorders,
        })
    }

    /// The fleet directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A handle that stops every target.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Whether every target's recorder has ended.
    pub fn is_finished(&self) -> bool {
        self.recorders.iter().all(|(_, r)| r.is_finished())
    }

    /// Each target's name and current counts, in target order.
    pub fn progress(&self) -> Vec<(String, super::Progress)> {
        self.recorders
            .iter()
            .map(|(n, r)| (n.clone(), r.progress()))
            .collect()
    }

    /// Waits for every target's files, then rewrites the fleet manifest with the stop time,
    /// reason and the targets' summed totals. The first target's error is returned after every
    /// target was waited for.
    pub fn wait(self) -> Result<FleetSummary, RecordError> {
        let FleetRecorder {
            dir,
            mut manifest,
            stop,
            recorders,
        } = self;
        let mut targets = Vec::with_capacity(recorders.len());
        let mut first_error = None;
        for (name, rec) in recorders {
            match rec.wait() {
                Ok(s) => targets.push((name, s)),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        let mut totals = Totals::default();
        for (_, s) in &targets {
            totals.scrapes += s.totals.scrapes;
            totals.scrapes_failed += s.totals.scrapes_failed;
            totals.samples += s.totals.samples;
            totals.bytes_written += s.totals.bytes_written;
        }
        manifest.stopped_at_ns = Some(stop.requested_at().unwrap_or_else(clock::wall_now).0);
        let reason = targets
            .first()
            .map(|(_, s)| s.stop_reason)
            .or(stop.reason())
            .unwrap_or(super::StopReason::Interrupt);
        manifest.stop_reason = Some(reason.as_str().to_string());
        manifest.totals = Some(totals);
        let written = write_manifest(&dir, &manifest);
        if let Some(e) = first_error {
            return Err(e);
        }
        written.map_err(RecordError::Write)?;
        Ok(FleetSummary {
            dir,
            manifest,
            targets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::Sourced;

    /// Four targets at 60 s rotate 0, 15, 30 and 45 s apart; one target is not shifted; on
    /// the shifted clock, target 1's first rotation comes at 45 s, not 60 s.
    #[test]
    fn rotations_are_spread_over_the_period() {
        let p = |i, n| rotation_phase(i, n, Duration::from_secs(60));
        assert_eq!(
            (0..4).map(|i| p(i, 4).as_secs()).collect::<Vec<_>>(),
            [0, 15, 30, 45]
        );
        assert_eq!(p(0, 1), Duration::ZERO);
        let seg = |at: u64, phase| {
            clock::segment_of(Duration::from_secs(60), Duration::from_secs(at) + phase)
        };
        assert_eq!((seg(44, p(1, 4)), seg(45, p(1, 4))), (0, 1));
        assert_eq!((seg(59, p(0, 4)), seg(60, p(0, 4))), (0, 1));
    }

    fn target(name: Option<&str>, url: &str) -> TargetConfig {
        TargetConfig {
            name: name.map(str::to_string),
            url: url.to_string(),
            analysis_inputs: AnalysisInputs::default(),
        }
    }

    #[test]
    fn names_are_derived_and_must_differ() {
        let base = RecordConfig::new("");
        let ok = FleetConfig {
            base: base.clone(),
            targets: vec![
                target(None, "http://a:1/metrics"),
                target(Some("b"), "http://b:1/metrics"),
            ],
        };
        let t = target_table(&ok).unwrap();
        assert_eq!(t[0].name, "a:1");
        assert_eq!(t[1].dir, "targets/001");
        let clash = FleetConfig {
            base,
            targets: vec![
                target(None, "http://a:1/metrics"),
                target(Some("a:1"), "http://b:1/metrics"),
            ],
        };
        let e = target_table(&clash).unwrap_err().to_string();
        assert!(e.contains("both named \"a:1\""), "{e}");
    }

    #[test]
    fn a_targets_own_input_beats_the_fleet_flag() {
        let s = |v: u32, src: &str| {
            Some(Sourced {
                value: v,
                source: src.to_string(),
            })
        };
        let fleet = AnalysisInputs {
            max_num_seqs: s(8, "-m"),
            tensor_parallel_size: s(1, "--tensor-parallel-size"),
            ..Default::default()
        };
        let own = AnalysisInputs {
            max_num_seqs: s(4, "targets file"),
            ..Default::default()
        };
        let m = merge(&own, &fleet);
        assert_eq!(m.max_num_seqs.map(|x| x.value), Some(4));
        assert_eq!(m.tensor_parallel_size.map(|x| x.value), Some(1));
    }
}
