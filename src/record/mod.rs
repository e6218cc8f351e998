//! The recorder: an HTTP thread scraping `/metrics` and a GPU thread polling NVML, each on its
//! own schedule anchored to the start, both writing raw rows into a recording directory.
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
mod gpu_loop;
mod http_loop;
mod scrape;
mod stop;

pub use stop::{StopHandle, StopReason};

use crate::gpu::GpuSource;
use crate::recording::manifest::Totals;
use crate::recording::writer::write_manifest;
use crate::recording::{
    AnalysisInputs, GpuWriter, Manifest, RecordingError, ScrapeWriter, WrittenFile,
};
use crate::units::WallNs;
use clock::Clock;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
            max_body_bytes: 16 * 1024 * 1024,
            timeout: Duration::from_millis(200),
            version_timeout: Duration::from_secs(1),
            bearer_token: None,
            analysis_inputs: AnalysisInputs::default(),
            gpu_note: None,
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
    #[error("{path}: {source}")]
    OutDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Writing the recording failed; recording stopped after keeping what it could.
    #[error("writing the recording failed, recording stopped (finished files were kept): {0}")]
    Write(#[source] RecordingError),
    /// A recorder thread could not be started or died.
    #[error("recorder thread: {0}")]
    Thread(String),
}

/// Counters shared by both threads and read by `progress()`.
#[derive(Debug, Default)]
struct Counters {
    scrapes_ok: AtomicU64,
    scrapes_failed: AtomicU64,
    gpu_polls: AtomicU64,
    samples: AtomicU64,
    bytes_written: AtomicU64,
    last_scrape_failed: AtomicBool,
    last_scrape_error: Mutex<Option<String>>,
}

/// What the two threads share.
struct Shared {
    dir: PathBuf,
    clock: Clock,
    interval: Duration,
    rotate: Duration,
    duration: Option<Duration>,
    stop: StopHandle,
    counters: Counters,
    manifest: Mutex<Manifest>,
    /// Set once `manifest.model_name` is known, so later scrapes skip looking for it.
    model_known: AtomicBool,
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
                if shared.clock.sleep_until(end, &shared.stop.flag) {
                    shared.stop.stop(StopReason::Duration);
                }
                return Ok(());
            }
        }
        if !shared.clock.sleep_until(due, &shared.stop.flag) {
            return Ok(());
        }
        let due_segment = clock::segment_of(shared.rotate, due);
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
}

impl Recorder {
    /// Creates the recording directory, asks the server for its version, writes the start
    /// manifest and starts the threads (the GPU thread only when `gpu` is given).
    pub fn start(
        config: RecordConfig,
        gpu: Option<Box<dyn GpuSource>>,
    ) -> Result<Recorder, RecordError> {
        check_config(&config)?;
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
        let scrape_writer = ScrapeWriter::new(&dir).map_err(RecordError::Write)?;
        let gpu_writer = match gpu {
            Some(_) => Some(GpuWriter::new(&dir).map_err(RecordError::Write)?),
            None => None,
        };

        let clock = Clock::start();
        let manifest = start_manifest(&config, clock.start_wall(), vllm_version, gpu.as_deref());
        write_manifest(&dir, &manifest).map_err(RecordError::Write)?;

        let shared = Arc::new(Shared {
            dir,
            clock,
            interval: config.interval,
            rotate: config.rotate,
            duration: config.duration,
            stop: StopHandle::new(),
            counters: Counters::default(),
            manifest: Mutex::new(manifest),
            model_known: AtomicBool::new(false),
        });
        let mut recorder = Recorder {
            shared: Arc::clone(&shared),
            http: None,
            gpu: None,
        };
        let s = Arc::clone(&shared);
        recorder.http = Some(
            std::thread::Builder::new()
                .name("profile-scrape".into())
                .spawn(move || http_loop::run(&s, &scraper, scrape_writer))
                .map_err(|e| RecordError::Thread(e.to_string()))?,
        );
        if let (Some(source), Some(writer)) = (gpu, gpu_writer) {
            let s = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name("profile-gpu".into())
                .spawn(move || gpu_loop::run(&s, source, writer));
            match spawned {
                Ok(h) => recorder.gpu = Some(h),
                Err(e) => {
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
        self.http.as_ref().is_none_or(JoinHandle::is_finished)
            && self.gpu.as_ref().is_none_or(JoinHandle::is_finished)
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
        Ok(RecordSummary {
            dir: self.shared.dir.clone(),
            manifest,
            stop_reason,
            totals,
            files,
        })
    }

    /// Joins both threads; returns the files written and the first write error.
    fn join_threads(&mut self) -> (Vec<WrittenFile>, Option<RecordingError>) {
        let mut files = Vec::new();
        let mut first_error = None;
        for handle in [self.http.take(), self.gpu.take()].into_iter().flatten() {
            match handle.join() {
                Ok(Ok(f)) => files.extend(f),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(RecordingError::Io {
                        path: self.shared.dir.clone(),
                        source: std::io::Error::other("a recorder thread panicked"),
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
        if self.http.is_some() || self.gpu.is_some() {
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

fn check_config(c: &RecordConfig) -> Result<(), RecordError> {
    let bad = |m: &str| Err(RecordError::Config(m.to_string()));
    if c.interval.is_zero() {
        return bad("the interval must be above zero");
    }
    if c.rotate.is_zero() {
        return bad("the rotation period must be above zero");
    }
    if c.timeout.is_zero() {
        return bad("the timeout must be above zero");
    }
    if c.max_body_bytes == 0 {
        return bad("the body cap must be above zero");
    }
    if c.duration.is_some_and(|d| d.is_zero()) {
        return bad("the duration must be above zero");
    }
    scrape::check_url(&c.url).map_err(RecordError::Config)
}

/// Creates `dir`, or accepts it when it exists and is empty.
fn prepare_dir(dir: &Path) -> Result<(), RecordError> {
    let io_err = |source| RecordError::OutDir {
        path: dir.to_path_buf(),
        source,
    };
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(RecordError::OutDirNotEmpty(dir.to_path_buf()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io_err)
        }
        Err(e) => Err(io_err(e)),
    }
}

fn start_manifest(
    config: &RecordConfig,
    started: WallNs,
    vllm_version: Option<String>,
    gpu: Option<&dyn GpuSource>,
) -> Manifest {
    Manifest {
        format_version: crate::recording::schema::FORMAT_VERSION.to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at_ns: started.0,
        started_at: started.to_rfc3339_millis(),
        stopped_at_ns: None,
        stop_reason: None,
        target_url: config.url.clone(),
        recorder_host: host_name(),
        interval_ms: millis(config.interval),
        rotate_ms: millis(config.rotate),
        vllm_version,
        model_name: None,
        gpu_note: if gpu.is_some() {
            None
        } else {
            config.gpu_note.clone()
        },
        driver_version: gpu.and_then(GpuSource::driver_version),
        gpus: gpu.map(|g| g.devices().to_vec()).unwrap_or_default(),
        analysis_inputs: config.analysis_inputs.clone(),
        totals: None,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// This machine's name: the kernel's, else `$HOSTNAME`.
fn host_name() -> Option<String> {
    let from_kernel = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    from_kernel
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_debug_hides_the_token() {
        let mut c = RecordConfig::new("http://127.0.0.1:1/metrics");
        c.bearer_token = Some("s3cret".into());
        let text = format!("{c:?}");
        assert!(!text.contains("s3cret"));
        assert!(text.contains("redacted"));
    }

    #[test]
    fn rejects_unusable_settings() {
        let mut c = RecordConfig::new("http://127.0.0.1:1/metrics");
        assert!(check_config(&c).is_ok());
        c.interval = Duration::ZERO;
        assert!(matches!(check_config(&c), Err(RecordError::Config(_))));
        let c = RecordConfig::new("127.0.0.1:8000/metrics");
        assert!(matches!(check_config(&c), Err(RecordError::Config(_))));
    }

    #[test]
    fn refuses_a_non_empty_directory() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(prepare_dir(tmp.path()).is_ok());
        let sub = tmp.path().join("a/b");
        assert!(prepare_dir(&sub).is_ok());
        assert!(sub.is_dir());
        std::fs::write(tmp.path().join("x"), "x").unwrap();
        assert!(matches!(
            prepare_dir(tmp.path()),
            Err(RecordError::OutDirNotEmpty(_))
        ));
    }
}
