//! Shared by the benchmarks: the real recording `recordings/vllm-cpu-0.32-load` (vLLM 0.32 on
//! CPU, idle -> 24 clients -> idle), replayed scrape by scrape as long as a benchmark needs.
//!
//! Each stored scrape is rebuilt as a `promtext::Exposition` (family, type, help, sample name,
//! labels parsed back from the canonical string, plus `le`) or rendered back to Prometheus
//! text. Replaying past the end loops to the first scrape; counters and histogram rows then
//! get the previous loops' last values added, so that a long replay looks like one long run
//! of a server (no counter resets) rather than a restart every 70 s.
//!
//! Used from the `record` and `analyze` benches through `#[path]`, so not every item is used
//! by both.
#![allow(dead_code)]

use profile::promtext::{Exposition, Family, Format, Label, MetricType, Sample, Suffix};
use profile::recording::{self, Manifest, ScrapeMeta, ScrapeStatus, ScrapeWriter};
use profile::units::{MonoNs, WallNs};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The real recording, relative to the crate root.
pub const REAL_RECORDING: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/recordings/vllm-cpu-0.32-load");

/// Generated fixtures (gitignored): long recordings are expensive to write, so they are kept.
pub const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/big-benchmark-fixtures");

/// Scrape interval of the replay: 4 Hz, as `profile record` scrapes.
pub const INTERVAL_NS: i64 = 250_000_000;

/// Scrapes per segment: the recorder rotates every 60 s, 240 scrapes at 4 Hz.
pub const SCRAPES_PER_SEGMENT: u64 = 240;

/// Scrapes in one hour at 4 Hz.
pub const SCRAPES_PER_HOUR: u64 = 3600 * 4;

/// One series of the real recording, in the shape the writer takes it.
struct SeriesDef {
    name: String,
    suffix: Suffix,
    labels: Vec<(String, String)>,
    /// `le` as text, put back among the labels.
    le: Option<String>,
    /// Cumulative (counter or histogram row): offset when looping.
    monotone: bool,
}

/// A family: its declaration and its series, in first-appearance order.
struct FamilyDef {
    name: String,
    metric_type: MetricType,
    help: Option<String>,
    series: Vec<usize>,
}

/// One stored scrape: its timing inside its 250 ms slot and its values by series.
struct ScrapeDef {
    /// completed - requested, ns (how long the server took to answer).
    latency_ns: i64,
    body_bytes: Option<u64>,
    values: Vec<Option<f64>>,
}

/// The real recording's good scrapes, ready to replay.
pub struct Replay {
    manifest: Manifest,
    series: Vec<SeriesDef>,
    families: Vec<FamilyDef>,
    scrapes: Vec<ScrapeDef>,
}

/// The suffix that `name` adds to `family` for a family of type `t`, as `promtext` resolves it
/// (the writer only needs `Bucket` right, to move `le` out of the label string).
fn suffix_of(family: &str, t: MetricType, name: &str) -> Suffix {
    let rest = name.strip_prefix(family).unwrap_or("");
    let s = match rest {
        "_bucket" => Suffix::Bucket,
        "_sum" => Suffix::Sum,
        "_count" => Suffix::Count,
        "_total" => Suffix::Total,
        "_created" => Suffix::Created,
        "_gsum" => Suffix::Gsum,
        "_gcount" => Suffix::Gcount,
        "_info" => Suffix::Info,
        _ => return Suffix::None,
    };
    let allowed = match t {
        MetricType::Histogram => {
            matches!(
                s,
                Suffix::Bucket | Suffix::Sum | Suffix::Count | Suffix::Created
            )
        }
        MetricType::Summary => matches!(s, Suffix::Sum | Suffix::Count | Suffix::Created),
        MetricType::Counter => matches!(s, Suffix::Total | Suffix::Created),
        MetricType::GaugeHistogram => {
            matches!(
                s,
                Suffix::Bucket | Suffix::Gsum | Suffix::Gcount | Suffix::Created
            )
        }
        MetricType::Info => s == Suffix::Info,
        _ => false,
    };
    if allowed {
        s
    } else {
        Suffix::None
    }
}

/// `le` as Prometheus client libraries print it (`0.005`, `1.0`, `+Inf`).
fn le_text(le: f64) -> String {
    if le == f64::INFINITY {
        "+Inf".to_string()
    } else {
        format!("{le:?}")
    }
}

impl Replay {
    /// Reads the real recording; `None` (after saying why) when it cannot be read.
    pub fn load() -> Option<Replay> {
        let rec = match recording::open(Path::new(REAL_RECORDING)) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("cannot read the real recording: {e}");
                return None;
            }
        };
        let mut series = Vec::with_capacity(rec.series.len());
        let mut families: Vec<FamilyDef> = Vec::new();
        let mut family_at: BTreeMap<String, usize> = BTreeMap::new();
        for (i, s) in rec.series.iter().enumerate() {
            let labels = match s.label_pairs() {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("series {i}: {e}");
                    return None;
                }
            };
            let suffix = suffix_of(&s.family, s.metric_type, &s.name);
            let monotone = suffix != Suffix::Created
                && matches!(s.metric_type, MetricType::Counter | MetricType::Histogram);
            series.push(SeriesDef {
                name: s.name.to_string(),
                suffix,
                labels,
                le: s.le.map(le_text),
                monotone,
            });
            // One declaration per family name: series that first appear mid-recording join
            // their family rather than declaring it again (a parser refuses a second TYPE).
            let at = *family_at.entry(s.family.to_string()).or_insert_with(|| {
                families.push(FamilyDef {
                    name: s.family.to_string(),
                    metric_type: s.metric_type,
                    help: s.help.as_deref().map(str::to_string),
                    series: Vec::new(),
                });
                families.len() - 1
            });
            families[at].series.push(i);
        }
        let scrapes: Vec<ScrapeDef> = rec
            .scrapes
            .iter()
            .filter(|s| s.meta.status == ScrapeStatus::Ok)
            .map(|s| {
                let mut values = vec![None; series.len()];
                for v in &s.samples {
                    values[v.series as usize] = Some(v.value);
                }
                ScrapeDef {
                    latency_ns: s.meta.completed_mono.0 - s.meta.requested_mono.0,
                    body_bytes: s.meta.body_bytes,
                    values,
                }
            })
            .collect();
        if scrapes.is_empty() {
            eprintln!("the real recording has no good scrape");
            return None;
        }
        Some(Replay {
            manifest: rec.manifest,
            series,
            families,
            scrapes,
        })
    }

    /// Good scrapes in one loop of the replay.
    pub fn loop_len(&self) -> usize {
        self.scrapes.len()
    }

    /// Distinct series.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// A replayer from the first scrape.
    pub fn replayer(&self) -> Replayer<'_> {
        Replayer {
            replay: self,
            next: 0,
            offsets: vec![0.0; self.series.len()],
            last_raw: vec![None; self.series.len()],
            values: vec![None; self.series.len()],
        }
    }

    /// The manifest to write beside a replayed recording: the real one's, without the totals
    /// of the real run.
    pub fn manifest(&self) -> Manifest {
        let mut m = self.manifest.clone();
        m.stopped_at_ns = None;
        m.stop_reason = None;
        m.totals = None;
        m
    }

    /// `values` as an exposition, borrowing the series' strings.
    pub fn exposition(&self, values: &[Option<f64>]) -> Exposition<'_> {
        let mut families = Vec::with_capacity(self.families.len());
        for f in &self.families {
            let samples: Vec<Sample<'_>> = f
                .series
                .iter()
                .filter_map(|&i| {
                    let value = values[i]?;
                    let s = &self.series[i];
                    let mut labels: Vec<Label<'_>> = s
                        .labels
                        .iter()
                        .map(|(n, v)| Label {
                            name: n,
                            value: Cow::Borrowed(v),
                        })
                        .collect();
                    if let Some(le) = &s.le {
                        labels.push(Label {
                            name: "le",
                            value: Cow::Borrowed(le),
                        });
                    }
                    Some(Sample {
                        name: &s.name,
                        suffix: s.suffix,
                        labels,
                        value,
                        timestamp_ms: None,
                    })
                })
                .collect();
            if samples.is_empty() {
                continue;
            }
            families.push(Family {
                name: &f.name,
                metric_type: f.metric_type,
                help: f.help.as_deref().map(Cow::Borrowed),
                samples,
            });
        }
        Exposition {
            format: Format::Text004,
            families,
        }
    }

    /// `values` as a Prometheus text 0.0.4 body, the way `prometheus_client` (Python) writes
    /// it: `# HELP`, `# TYPE`, then one line per sample with `le` last.
    pub fn render(&self, values: &[Option<f64>], out: &mut String) {
        out.clear();
        for f in &self.families {
            if !f.series.iter().any(|&i| values[i].is_some()) {
                continue;
            }
            if let Some(help) = &f.help {
                let help = help.replace('\\', "\\\\").replace('\n', "\\n");
                let _ = writeln!(out, "# HELP {} {help}", f.name);
            }
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.metric_type.as_str());
            for &i in &f.series {
                let Some(v) = values[i] else { continue };
                let s = &self.series[i];
                out.push_str(&s.name);
                if !s.labels.is_empty() || s.le.is_some() {
                    out.push('{');
                    let mut first = true;
                    for (n, val) in &s.labels {
                        if !first {
                            out.push(',');
                        }
                        first = false;
                        let val = val
                            .replace('\\', "\\\\")
                            .replace('"', "\\\"")
                            .replace('\n', "\\n");
                        let _ = write!(out, "{n}=\"{val}\"");
                    }
                    if let Some(le) = &s.le {
                        if !first {
                            out.push(',');
                        }
                        let _ = write!(out, "le=\"{le}\"");
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {v:?}");
            }
        }
    }
}

/// Walks the replay scrape by scrape, looping, with counters kept monotone.
pub struct Replayer<'a> {
    replay: &'a Replay,
    next: u64,
    /// Added to monotone series: the sum of their last values in the loops done.
    offsets: Vec<f64>,
    /// Last raw value of each series in the current loop.
    last_raw: Vec<Option<f64>>,
    values: Vec<Option<f64>>,
}

impl<'a> Replayer<'a> {
    /// The next scrape: its meta (seq from 0, at 4 Hz, with the real answer latency) and its
    /// values by series id.
    pub fn next_scrape(&mut self) -> (ScrapeMeta, &[Option<f64>]) {
        let r = self.replay;
        let n = r.scrapes.len() as u64;
        let seq = self.next;
        self.next += 1;
        let at = (seq % n) as usize;
        if at == 0 && seq > 0 {
            for (i, s) in r.series.iter().enumerate() {
                if s.monotone {
                    self.offsets[i] += self.last_raw[i].unwrap_or(0.0);
                }
            }
            self.last_raw.fill(None);
        }
        let def = &r.scrapes[at];
        let mut count = 0u64;
        for (i, v) in def.values.iter().enumerate() {
            self.values[i] = v.map(|v| {
                count += 1;
                self.last_raw[i] = Some(v);
                if r.series[i].monotone {
                    v + self.offsets[i]
                } else {
                    v
                }
            });
        }
        let requested_mono = seq as i64 * INTERVAL_NS;
        let completed_mono = requested_mono + def.latency_ns;
        let start = r.manifest.started_at_ns;
        let meta = ScrapeMeta {
            seq,
            requested_at: WallNs(start + requested_mono),
            completed_at: WallNs(start + completed_mono),
            requested_mono: MonoNs(requested_mono),
            completed_mono: MonoNs(completed_mono),
            status: ScrapeStatus::Ok,
            http_status: Some(200),
            error: None,
            body_bytes: def.body_bytes,
            sample_count: Some(count),
        };
        (meta, &self.values)
    }
}

/// What writing a replayed recording produced.
pub struct Written {
    /// The recording directory.
    pub dir: PathBuf,
    /// Scrapes written.
    pub scrapes: u64,
    /// Samples written.
    pub samples: u64,
    /// Bytes of the `samples` and `scrapes` files.
    pub bytes: u64,
}

/// Writes `scrapes` replayed scrapes into `dir` (created, must not hold a recording) with the
/// real writer, rotating every 240 scrapes as the recorder does every 60 s at 4 Hz.
pub fn write_replay(replay: &Replay, dir: &Path, scrapes: u64) -> Result<Written, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    recording::writer::write_manifest(dir, &replay.manifest()).map_err(|e| e.to_string())?;
    let mut w = ScrapeWriter::new(dir).map_err(|e| e.to_string())?;
    let mut player = replay.replayer();
    let (mut samples, mut bytes) = (0u64, 0u64);
    for i in 0..scrapes {
        let (meta, values) = player.next_scrape();
        let e = replay.exposition(values);
        samples += e.sample_count() as u64;
        w.push(&meta, Some(&e)).map_err(|e| e.to_string())?;
        if (i + 1) % SCRAPES_PER_SEGMENT == 0 {
            for f in w.rotate().map_err(|e| e.to_string())? {
                bytes += f.bytes;
            }
        }
    }
    for f in w.finish().map_err(|e| e.to_string())? {
        bytes += f.bytes;
    }
    Ok(Written {
        dir: dir.to_path_buf(),
        scrapes,
        samples,
        bytes,
    })
}

/// CPU time this process has used so far, all threads, in ns: the sum of each live thread's
/// `/proc/self/task/*/schedstat` run time (ns resolution, unlike the 10 ms ticks of
/// `/proc/self/stat`). `None` where `/proc` is unavailable.
pub fn process_cpu_ns() -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// CPU time from `/proc/self/stat` (utime + stime), ns, assuming the usual 100 ticks per
/// second; counts threads that have exited, which `process_cpu_ns` does not.
pub fn process_cpu_ticks_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) * 10_000_000)
}

/// Peak resident memory of this process (`VmHWM` in `/proc/self/status`), bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Writes GPU files beside a replayed recording of `scrapes` scrapes in `dir`: `gpus` GPUs
/// polled on the scrapes' 250 ms ticks, with the recorder's 60 s rotation. The readings are
/// synthetic (the real recording was made on CPU): busy for two thirds of each 225 s and
/// idle for the rest, each reading jittering as NVML's do, so that the files compress as
/// real ones would rather than to nothing. Returns the bytes written.
pub fn write_gpus(dir: &Path, scrapes: u64, gpus: u32) -> Result<u64, String> {
    use profile::gpu::GpuMetrics;
    use profile::recording::{GpuPoll, GpuWriter};
    let started = recording::open_deferred(dir)
        .map_err(|e| e.to_string())?
        .recording
        .manifest
        .started_at_ns;
    let mut w = GpuWriter::new(dir).map_err(|e| e.to_string())?;
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut jitter = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n.max(1)
    };
    let mut bytes = 0u64;
    for seq in 0..scrapes {
        let busy = (seq / 300) % 3 != 0;
        for g in 0..gpus {
            let at = seq as i64 * INTERVAL_NS + i64::from(g) * 40_000 + jitter(300_000) as i64;
            let done = at + 400_000 + jitter(100_000) as i64;
            let pick = |busy_v: f64, idle_v: f64| if busy { busy_v } else { idle_v };
            let metrics = GpuMetrics {
                util_pct: Some(pick(90.0 + jitter(11) as f64, jitter(3) as f64) as u32),
                mem_util_pct: Some(pick(30.0 + jitter(40) as f64, 0.0) as u32),
                power_w: Some(pick(450.0, 70.0) + jitter(250_000) as f64 / 1000.0),
                power_limit_w: Some(700.0),
                vram_used_bytes: Some(76_000_000_000 + jitter(1_000) * 1_048_576),
                vram_total_bytes: Some(85_899_345_920),
                temperature_c: Some(pick(60.0, 38.0) as u32 + jitter(4) as u32),
                sm_clock_mhz: Some(pick(1755.0 + 15.0 * jitter(4) as f64, 345.0) as u32),
                error: None,
                sm_active_pct: Some(pick(40.0 + jitter(4000) as f64 / 100.0, 0.0)),
                sm_occupancy_pct: Some(pick(20.0 + jitter(2000) as f64 / 100.0, 0.0)),
                dram_bw_util_pct: Some(pick(30.0 + jitter(5000) as f64 / 100.0, 0.0)),
            };
            let poll = GpuPoll {
                seq,
                gpu_index: g,
                requested_at: WallNs(started + at),
                completed_at: WallNs(started + done),
                requested_mono: MonoNs(at),
                completed_mono: MonoNs(done),
                metrics,
            };
            w.push(&poll).map_err(|e| e.to_string())?;
        }
        if (seq + 1) % SCRAPES_PER_SEGMENT == 0 {
            bytes += w
                .rotate()
                .map_err(|e| e.to_string())?
                .iter()
                .map(|f| f.bytes)
                .sum::<u64>();
        }
    }
    bytes += w
        .finish()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|f| f.bytes)
        .sum::<u64>();
    Ok(bytes)
}
