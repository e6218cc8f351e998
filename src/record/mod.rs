//! The recorder: an HTTP thread scraping `/metrics`, a GPU thread polling NVML and, with
//! `--pid`, a host thread reading `/proc`, each on its own schedule anchored to the start, all
//! writing raw rows into a recording directory.
//!
//! Two threads, because a slow scrape must neither stall GPU polls nor shift either schedule:
//! tick `k` of each thread is due at `start + k * interval`, and a thread that overran skips the
//! ticks it missed (the gap shows in `seq`). Each sample is stamped when it completes. Every
//! failure to scrape is a row, not a stop; only a failure to write the recording stops it.
//!
//! Use: [`Recorder::start`] with a [`RecordConfig`], poll [`Recorder::progress`] for a status
//! line, ask it to stop through a [`StopHandle`], then [`Recorder::wait`] for the
//! [`RecordSummary`]. [`record`] does all of that for callers that only need the result.

pub(crate) mod clock;
mod events;
pub mod fleet;
mod gpu_loop;
mod host_loop;
mod http_loop;
mod scrape;
mod setup;
mod stop;

pub use host_loop::HostConfig;
pub use stop::{StopHandle, StopReason};

use crate::gpu::GpuSource;
use crate::recording::manifest::Totals;
use crate::recording::writer::write_manifest;
use crate::recording::{
    AnalysisInputs, GpuWriter, HostTarget, HostWriter, Manifest, RecordingError, ScrapeStatus,
    ScrapeWriter, WrittenFile,
};
use clock::Clock;
use events::Events;
use setup::{check_config, prepare_dir, start_manifest};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Everything the recorder needs, free of any command-line type.
#[derive(Clone)]
pub struct RecordConfig {
    /// The metrics URL, e.g. `http://127.0.0.1:8000/metrics`.
    pub url: String,
    /// Where to write; `None` means `recordings/<UTC start, e.g. 20261123T090102Z>` under the
    /// current directory. An existing directory must be empty.
    pub out_dir: Option<PathBuf>,
    /// Stop after this long; `None` records until stopped.
    pub duration: Option<Duration>,
    /// Scrape and poll period.
    pub interval: Duration,
    /// File rotation period.
    pub rotate: Duration,
    /// How far this recorder's rotations are shifted ahead on its clock (0 for one server): the
    /// fleet recorder spreads its targets' rotations over the period, so that they do not all
    /// encode their segments at the same instant. Below `rotate`.
    pub rotate_phase: Duration,
    /// Cap on a scrape body, bytes; a bigger body is an `oversize` row.
    pub max_body_bytes: u64,
    /// Whole-request timeout of one scrape (connect included). Keep it below `interval`, or a
    /// slow server makes the recorder skip ticks.
    pub timeout: Duration,
    /// Timeout of the one `GET <base>/version` at start.
    pub version_timeout: Duration,
    /// Sent as `Authorization: Bearer <token>`. Never printed (see the `Debug` impl).
    pub bearer_token: Option<String>,
    /// Operator-given inputs, stored in the manifest.
    pub analysis_inputs: AnalysisInputs,
    /// Why no GPU is recorded, for the manifest, when the caller passes no GPU source.
    pub gpu_note: Option<String>,
    /// The process to sample from `/proc` (`--pid`, Linux only); `None`: no host sampling.
    pub host: Option<HostConfig>,
    /// A stop handle shared with other recorders (a fleet's targets stop together); `None`
    /// gives the recorder its own.
    pub stop: Option<StopHandle>,
}

impl RecordConfig {
    /// A config with the defaults of `profile record`: 250 ms interval, 60 s rotation, 16 MiB
    /// body cap, 200 ms timeout, 1 s version timeout, no duration, no GPU note.
    pub fn new(url: impl Into<String>) -> RecordConfig {
        RecordConfig {
            url: url.into(),
            out_dir: None,
            duration: None,
            interval: Duration::from_millis(250),
            rotate: Duration::from_secs(60),
            rotate_phase: Duration::ZERO,
            max_body_bytes: 16 * 1024 * 1024,
            timeout: Duration::from_millis(200),
            version_timeout: Duration::from_secs(1),
            bearer_token: None,
            analysis_inputs: AnalysisInputs::default(),
            gpu_note: None,
            host: None,
            stop: None,
        }
    }
}

impl std::fmt::Debug for RecordConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordConfig")
            .field("url", &self.url)
            .field("out_dir", &self.out_dir)
            .field("duration", &self.duration)
            .field("interval", &self.interval)
            .field("rotate", &self.rotate)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("timeout", &self.timeout)
            .field("version_timeout", &self.version_timeout)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("analysis_inputs", &self.analysis_inputs)
            .field("gpu_note", &self.gpu_note)
            .field("host", &self.host)
            .finish()
    }
}

/// A snapshot of a running recording, for a status line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Time since the start.
    pub elapsed: Duration,
    /// Successful scrapes.
    pub scrapes_ok: u64,
    /// Failed scrape attempts.
    pub scrapes_failed: u64,
    /// GPU poll rounds (one round polls every device).
    pub gpu_polls: u64,
    /// Samples stored (buffered or written).
    pub samples: u64,
    /// Bytes of Parquet written so far (grows at each rotation).
    pub bytes_written: u64,
    /// Whether the most recent scrape attempt failed.
    pub last_scrape_failed: bool,
    /// The error text of the most recent failed scrape, if any failed so far.
    pub last_scrape_error: Option<String>,
    /// Ticks at which the `--pid` process was read.
    pub host_samples: u64,
    /// Whether the `--pid` process has exited (host sampling then stopped; the rest goes on).
    pub host_exited: bool,
}

/// The result of a recording that stopped cleanly.
#[derive(Debug, Clone)]
pub struct RecordSummary {
    /// The recording directory.
    pub dir: PathBuf,
    /// The manifest as rewritten at the stop.
    pub manifest: Manifest,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// The counts also stored in the manifest.
    pub totals: Totals,
    /// Every Parquet file written, in order of writing per thread (scrape thread first).
    pub files: Vec<WrittenFile>,
    /// The failed scrapes by kind, most frequent first.
    pub failed: Vec<FailedScrapes>,
}

/// The failed scrapes of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedScrapes {
    /// The kind.
    pub status: ScrapeStatus,
    /// How many.
    pub count: u64,
    /// The error text of the last of them.
    pub last_error: Option<String>,
}

/// Why recording could not start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// A setting is unusable (zero interval, bad URL, ...).
    #[error("invalid setting: {0}")]
    Config(String),
    /// The output directory exists and holds files.
    #[error("{0}: directory exists and is not empty; refusing to mix recordings")]
    OutDirNotEmpty(PathBuf),
    /// The output directory could not be created or read.
    #[error("{path}: {error}")]
    OutDir {
        /// The directory.
        path: PathBuf,
        /// The cause (in the message, not also as `source`, so a chain prints it once).
        error: std::io::Error,
    },
    /// The recording could not begin (its directory, first files or manifest could not be
    /// written): nothing was recorded.
    #[error("could not start the recording, nothing was recorded")]
    Start(#[source] RecordingError),
    /// Writing the recording failed; recording stopped after keeping what it could.
    #[error("writing the recording failed, recording stopped (finished files were kept)")]
    Write(#[source] RecordingError),
    /// A recorder thread could not be started or died.
    #[error("recorder thread: {0}")]
    Thread(String),
    /// The `--pid` process cannot be sampled (it does not exist, or this is not Linux).
    #[error("--pid: {0}")]
    Host(#[from] crate::host::HostError),
}

/// Counters shared by both threads and read by `progress()`.
#[derive(Debug, Default)]
struct Counters {
    scrapes_ok: AtomicU64,
    scrapes_failed: AtomicU64,
    gpu_polls: AtomicU64,
    host_samples: AtomicU64,
    host_exited: AtomicBool,
    samples: AtomicU64,
    bytes_written: AtomicU64,
    last_scrape_failed: AtomicBool,
    last_scrape_error: Mutex<Option<String>>,
    /// Per kind of failure: how many, and the last error text.
    failed: Mutex<BTreeMap<ScrapeStatus, (u64, Option<String>)>>,
}

/// What the sampling threads share.
struct Shared {
    dir: PathBuf,
    clock: Clock,
    interval: Duration,
    rotate: Duration,
    rotate_phase: Duration,
    duration: Option<Duration>,
    stop: StopHandle,
    counters: Counters,
    manifest: Mutex<Manifest>,
    /// Set once `manifest.model_name` is known, so later scrapes skip looking for it.
    model_known: AtomicBool,
    /// Changes a progress display waits for.
    events: Events,
    /// Sampling threads not yet ended.
    running: AtomicUsize,
}

/// Marks a sampling thread ended when dropped (also when it panics) and says so.
struct Running<'a>(&'a Shared);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.events.notify();
    }
}

impl Shared {
    fn add_written(&self, files: &[WrittenFile]) {
        let bytes: u64 = files.iter().map(|f| f.bytes).sum();
        self.counters
            .bytes_written
            .fetch_add(bytes, Ordering::Relaxed);
    }

    /// Ends a recording thread's writer: after a clean loop, writes its last segment and
    /// returns every file the thread wrote; after a write error, stops the other thread too and
    /// keeps what the writer still holds if it can, then returns the error.
    fn close_writer(
        &self,
        outcome: Result<(), RecordingError>,
        mut files: Vec<WrittenFile>,
        finish: impl FnOnce() -> Result<Vec<WrittenFile>, RecordingError>,
    ) -> Result<Vec<WrittenFile>, RecordingError> {
        match outcome {
            Ok(()) => {
                let last = finish()?;
                self.add_written(&last);
                files.extend(last);
                Ok(files)
            }
            Err(e) => {
                self.stop.stop(StopReason::WriteError);
                if let Ok(last) = finish() {
                    self.add_written(&last);
                }
                Err(e)
            }
        }
    }

    /// Records the model name once and rewrites the manifest with it.
    fn set_model_name(&self, name: &str) -> Result<(), RecordingError> {
        let mut m = self.manifest.lock().unwrap_or_else(PoisonError::into_inner);
        if m.model_name.is_some() {
            return Ok(());
        }
        m.model_name = Some(name.to_string());
        self.model_known.store(true, Ordering::Relaxed);
        write_manifest(&self.dir, &m)
    }
}

/// What a sampling thread is asked to do next.
enum Step {
    /// The tick about to run starts a new rotation segment: write out the buffered one.
    Rotate,
    /// Run tick `seq` now.
    Tick(u64),
}

/// Drives one sampling thread's schedule: tick `k` at `start + k * interval`, skipping ticks
/// that an overrunning step missed, rotating at segment boundaries, until a stop request or
/// the end of the duration (which it waits for, so that a timed recording lasts its duration).
fn run_ticks<E>(shared: &Shared, mut step: impl FnMut(Step) -> Result<(), E>) -> Result<(), E> {
    let mut tick: u64 = 0;
    let mut segment: u64 = 0;
    loop {
        let due = clock::tick_due(shared.interval, tick);
        if let Some(end) = shared.duration {
            if due >= end {
                if shared.clock.sleep_until(end, &shared.stop) {
                    shared.stop.stop(StopReason::Duration);
                }
                return Ok(());
            }
        }
        if !shared.clock.sleep_until(due, &shared.stop) {
            return Ok(());
        }
        let due_segment = clock::segment_of(shared.rotate, due + shared.rotate_phase);
        if due_segment > segment {
            step(Step::Rotate)?;
            segment = due_segment;
        }
        step(Step::Tick(tick))?;
        tick = clock::next_tick(tick, shared.clock.elapsed(), shared.interval);
    }
}

/// A running recording.
pub struct Recorder {
    shared: Arc<Shared>,
    http: Option<JoinHandle<Result<Vec<WrittenFile>, RecordingError>>>,
    gpu: Option<JoinHandle<Result<Vec<WrittenFile>, RecordingError>>>,
    host: Option<JoinHandle<Result<Vec<WrittenFile>, RecordingError>>>,
    /// The event generation the last [`Recorder::wait_change`] returned at.
    seen: AtomicU64,
}

impl Recorder {
    /// Creates the recording directory, asks the server for its version, writes the start
    /// manifest and starts the threads (the GPU thread only when `gpu` is given).
    pub fn start(
        config: RecordConfig,
        gpu: Option<Box<dyn GpuSource>>,
    ) -> Result<Recorder, RecordError> {
        check_config(&config)?;
        // Before the directory exists: a PID that is not there must leave nothing behind.
        let host_start = match config.host {
            Some(h) => {
                crate::host::check_supported()?;
                Some((h, crate::host::check_target(h.pid)?))
            }
            None => None,
        };
        let dir = match &config.out_dir {
            Some(d) => d.clone(),
            None => Path::new("recordings").join(clock::wall_now().to_compact_utc()),
        };
        prepare_dir(&dir)?;
        let scraper = scrape::Scraper::new(
            &config.url,
            config.bearer_token.as_deref(),
            config.max_body_bytes,
            config.timeout,
        );
        let vllm_version = scraper.fetch_version(config.version_timeout);
        let scrape_writer = ScrapeWriter::new(&dir).map_err(RecordError::Start)?;
        let gpu_writer = match gpu {
            Some(_) => Some(GpuWriter::new(&dir).map_err(RecordError::Start)?),
            None => None,
        };

        let host_writer = match host_start {
            Some(_) => Some(HostWriter::new(&dir).map_err(RecordError::Start)?),
            None => None,
        };

        let clock = Clock::start();
        let mut manifest =
            start_manifest(&config, clock.start_wall(), vllm_version, gpu.as_deref());
        manifest.host = host_start.as_ref().map(|(h, r)| HostTarget {
            pid: h.pid,
            children: h.children,
            comm: r.comm.clone(),
            start_ticks: r.start_ticks,
            clock_ticks_per_s: crate::host::CLOCK_TICKS_PER_S,
            exited_at_ns: None,
            exited_mono_ns: None,
        });
        write_manifest(&dir, &manifest).map_err(RecordError::Start)?;

        let shared = Arc::new(Shared {
            dir,
            clock,
            interval: config.interval,
            rotate: config.rotate,
            rotate_phase: config.rotate_phase,
            duration: config.duration,
            stop: config.stop.clone().unwrap_or_else(StopHandle::new),
            counters: Counters::default(),
            manifest: Mutex::new(manifest),
            model_known: AtomicBool::new(false),
            events: Events::default(),
            running: AtomicUsize::new(0),
        });
        let mut recorder = Recorder {
            shared: Arc::clone(&shared),
            http: None,
            gpu: None,
            host: None,
            seen: AtomicU64::new(shared.events.current()),
        };
        let s = Arc::clone(&shared);
        shared.running.fetch_add(1, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name("profile-scrape".into())
            .spawn(move || {
                let _running = Running(&s);
                http_loop::run(&s, &scraper, scrape_writer)
            });
        match spawned {
            Ok(h) => recorder.http = Some(h),
            Err(e) => {
                shared.running.fetch_sub(1, Ordering::SeqCst);
                return Err(RecordError::Thread(e.to_string()));
            }
        }
        if let (Some(source), Some(writer)) = (gpu, gpu_writer) {
            let s = Arc::clone(&shared);
            shared.running.fetch_add(1, Ordering::SeqCst);
            let spawned = std::thread::Builder::new()
                .name("profile-gpu".into())
                .spawn(move || {
                    let _running = Running(&s);
                    gpu_loop::run(&s, source, writer)
                });
            match spawned {
                Ok(h) => recorder.gpu = Some(h),
                Err(e) => {
                    shared.running.fetch_sub(1, Ordering::SeqCst);
                    shared.stop.stop(StopReason::WriteError);
                    let _ = recorder.join_threads();
                    return Err(RecordError::Thread(e.to_string()));
                }
            }
        }
        if let (Some((host, _)), Some(writer)) = (host_start, host_writer) {
            let s = Arc::clone(&shared);
            shared.running.fetch_add(1, Ordering::SeqCst);
            let spawned = std::thread::Builder::new()
                .name("profile-host".into())
                .spawn(move || {
                    let _running = Running(&s);
                    host_loop::run(&s, host, writer)
                });
            match spawned {
                Ok(h) => recorder.host = Some(h),
                Err(e) => {
                    shared.running.fetch_sub(1, Ordering::SeqCst);
                    shared.stop.stop(StopReason::WriteError);
                    let _ = recorder.join_threads();
                    return Err(RecordError::Thread(e.to_string()));
                }
            }
        }
        Ok(recorder)
    }

    /// The recording directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// A handle that stops this recorder.
    pub fn stop_handle(&self) -> StopHandle {
        self.shared.stop.clone()
    }

    /// Whether both threads have ended (stop requested, duration over, or a write failed).
    pub fn is_finished(&self) -> bool {
        self.shared.running.load(Ordering::SeqCst) == 0
    }

    /// Sleeps until something a progress display shows changed since the last call (a
    /// thread ended, scrapes started or stopped failing) or `timeout` passed (`None`: no
    /// timeout, for a display that only reports changes). No polling: a recorder with nothing
    /// to report does not wake its caller.
    pub fn wait_change(&self, timeout: Option<Duration>) {
        let seen = self.seen.load(Ordering::SeqCst);
        let now = self.shared.events.wait_past(seen, timeout);
        self.seen.store(now, Ordering::SeqCst);
    }

    /// Current counts.
    pub fn progress(&self) -> Progress {
        let c = &self.shared.counters;
        Progress {
            elapsed: self.shared.clock.elapsed(),
            scrapes_ok: c.scrapes_ok.load(Ordering::Relaxed),
            scrapes_failed: c.scrapes_failed.load(Ordering::Relaxed),
            gpu_polls: c.gpu_polls.load(Ordering::Relaxed),
            samples: c.samples.load(Ordering::Relaxed),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            host_samples: c.host_samples.load(Ordering::Relaxed),
            host_exited: c.host_exited.load(Ordering::SeqCst),
            last_scrape_failed: c.last_scrape_failed.load(Ordering::Relaxed),
            last_scrape_error: c
                .last_scrape_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    /// Waits for both threads to finish their files (request a stop first unless a duration
    /// was set), then rewrites the manifest with the stop time, reason and totals.
    ///
    /// A write failure in either thread is returned as [`RecordError::Write`], after the other
    /// thread finished its files and a last manifest rewrite was attempted.
    pub fn wait(mut self) -> Result<RecordSummary, RecordError> {
        let (files, write_error) = self.join_threads();
        let stop_reason = if write_error.is_some() {
            StopReason::WriteError
        } else {
            self.shared.stop.reason().unwrap_or(StopReason::Interrupt)
        };
        let c = &self.shared.counters;
        let ok = c.scrapes_ok.load(Ordering::Relaxed);
        let failed = c.scrapes_failed.load(Ordering::Relaxed);
        let totals = Totals {
            scrapes: ok + failed,
            scrapes_failed: failed,
            gpu_polls: c.gpu_polls.load(Ordering::Relaxed),
            samples: c.samples.load(Ordering::Relaxed),
            bytes_written: files.iter().map(|f| f.bytes).sum(),
        };
        let manifest = {
            let mut m = self
                .shared
                .manifest
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // The stop time is when sampling was asked to end, not when the caller got round
            // to waiting for the files.
            let stopped = self
                .shared
                .stop
                .requested_at()
                .unwrap_or_else(clock::wall_now);
            m.stopped_at_ns = Some(stopped.0);
            m.stop_reason = Some(stop_reason.as_str().to_string());
            m.totals = Some(totals.clone());
            m.clone()
        };
        let manifest_result = write_manifest(&self.shared.dir, &manifest);
        if let Some(e) = write_error {
            return Err(RecordError::Write(e));
        }
        manifest_result.map_err(RecordError::Write)?;
        let mut failed: Vec<FailedScrapes> = c
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(&status, (count, last))| FailedScrapes {
                status,
                count: *count,
                last_error: last.clone(),
            })
            .collect();
        failed.sort_by(|a, b| b.count.cmp(&a.count).then(a.status.cmp(&b.status)));
        Ok(RecordSummary {
            dir: self.shared.dir.clone(),
            manifest,
            stop_reason,
            totals,
            files,
            failed,
        })
    }

    /// Joins both threads; returns the files written and the first write error.
    fn join_threads(&mut self) -> (Vec<WrittenFile>, Option<RecordingError>) {
        let mut files = Vec::new();
        let mut first_error = None;
        let handles = [self.http.take(), self.gpu.take(), self.host.take()];
        for handle in handles.into_iter().flatten() {
            match handle.join() {
                Ok(Ok(f)) => files.extend(f),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(RecordingError::Io {
                        path: self.shared.dir.clone(),
                        error: std::io::Error::other("a recorder thread panicked"),
                    });
                }
            }
        }
        (files, first_error)
    }
}

impl Drop for Recorder {
    /// A recorder dropped without `wait` still stops its threads and finishes their files.
    fn drop(&mut self) {
        if self.http.is_some() || self.gpu.is_some() || self.host.is_some() {
            self.shared.stop.stop(StopReason::Interrupt);
            let _ = self.join_threads();
        }
    }
}

/// Records for the configured duration, then finishes cleanly. A convenience over
/// [`Recorder`] for callers that need neither progress nor a way to stop early; without a
/// duration it only returns when writing fails, so use [`Recorder`] then.
pub fn record(
    config: RecordConfig,
    gpu: Option<Box<dyn GpuSource>>,
) -> Result<RecordSummary, RecordError> {
    Recorder::start(config, gpu)?.wait()
}
