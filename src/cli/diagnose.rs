//! `profile diagnose`: record a live server for a fixed duration, analyse the recording, print
//! the report; with `--loop`, repeat after each change the operator makes and compare with
//! the baseline. The loop itself is `profile::diagnose::run`; this file supplies its live
//! [`Measure`] (record + analyse), its answers (stdin), Ctrl-C handling, and where the
//! recordings go.
//!
//! Decisions:
//! - Recordings go to `--save DIR` as `DIR/iter-0`, `DIR/iter-1`, ... (also without `--loop`,
//!   so a script finds them in one place). DIR must be empty or absent, so that two sessions
//!   never mix. Without `--save`, they go to a temporary directory that is deleted at exit.
//! - Answers are read from stdin whether or not it is a terminal: a pipe is a script of
//!   answers, one per line. End of input ends the loop, so a script never hangs on a prompt
//!   it has no answer for. Without `--loop`, stdin is not read at all. Prompts go to stderr,
//!   and when stdin is not a terminal each answer is echoed after its prompt for the log.
//! - Ctrl-C while recording stops that recording cleanly (its files are finished and it is
//!   analysed and printed), then the loop ends; an interrupted measurement never becomes the
//!   baseline. Ctrl-C at a prompt, or a second Ctrl-C, exits at once with status 130.

use super::analyze::load_catalog;
use super::compare::parse_window;
use super::record::{open_gpus, parse_duration, parse_gpus, to_config, GpuChoice, RecordArgs};
use super::signals::{self, StopSignal};
use anyhow::Context;
use profile::analyze::{analyze, AnalyzeConfig};
use profile::catalog::Catalog;
use profile::compare::CompareConfig;
use profile::diagnose::{
    self, DiagnoseConfig, DiagnoseError, Format, Io, Measure, MeasureError, Measured,
};
use profile::record::{RecordConfig, Recorder, StopHandle};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How often the progress line on a terminal is redrawn. Ours: it shows whole seconds.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Arguments of `profile diagnose`.
#[derive(Debug, clap::Args)]
pub struct DiagnoseArgs {
    /// The vLLM Prometheus endpoint, e.g. http://127.0.0.1:8000/metrics (a bearer token is read
    /// from PROFILE_BEARER_TOKEN).
    #[arg(long)]
    url: String,
    /// How long each measurement records, e.g. 90s, 2m.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = parse_duration)]
    duration: Duration,
    /// Keep the recordings in DIR/iter-0, DIR/iter-1, ... (DIR must be empty or absent)
    /// [default: a temporary directory, deleted at exit]
    #[arg(long, value_name = "DIR")]
    save: Option<PathBuf>,
    /// After each report, wait for one change to the server and Enter, measure again and
    /// compare with the baseline; on WORSE ask whether to [r]evert or [c]ontinue. `q` or the
    /// end of input stops. Answers may be piped in, one per line.
    #[arg(long = "loop")]
    repeat: bool,
    /// Print JSON: without --loop the report as `profile analyze --json` does; with --loop
    /// one JSON object per iteration and line.
    #[arg(long)]
    json: bool,
    /// Compare even when a measurement names another model or GPU type than its baseline.
    #[arg(long)]
    allow_different: bool,
    /// Scrape and GPU poll period
    #[arg(long, value_name = "DURATION", default_value = "250ms", value_parser = parse_duration)]
    interval: Duration,
    /// GPUs to poll: all, none, or NVML indices such as 0,1
    #[arg(long, value_name = "all|none|LIST", default_value = "all", value_parser = parse_gpus)]
    gpus: GpuChoice,
    /// vLLM's --max-num-seqs, which vLLM does not expose as a metric before 0.19
    #[arg(short = 'm', long, value_name = "N")]
    max_num_seqs: Option<u32>,
    /// Tensor-parallel degree [default: $TENSOR_PARALLEL_SIZE, else $VLLM_TENSOR_PARALLEL_SIZE]
    #[arg(long, value_name = "N")]
    tensor_parallel_size: Option<u32>,
    /// Model weight dtype, e.g. bfloat16, fp8 [default: $DTYPE, else $VLLM_DTYPE]
    #[arg(long, value_name = "DTYPE")]
    dtype: Option<String>,
    /// What the GPUs cost, dollars per hour
    #[arg(long, value_name = "USD")]
    cost_per_hour: Option<f64>,
    /// vLLM's --gpu-memory-utilization, a fraction [default: the server's cache_config_info
    /// label]
    #[arg(long, value_name = "FRACTION")]
    gpu_memory_utilization: Option<f64>,
    /// Window length for the analysis, e.g. 2s, 500ms.
    #[arg(long, default_value = "2s", value_parser = parse_window)]
    window: i64,
    /// Read gpus.toml and models.toml from this directory instead of the built-in catalog.
    #[arg(long, value_name = "DIR")]
    catalog: Option<PathBuf>,
    /// Also list every window.
    #[arg(short, long)]
    verbose: bool,
    /// Also sample this process from /proc during each measurement (Linux only)
    #[arg(long, value_name = "PID")]
    pid: Option<u32>,
    /// With --pid, sample every process below it too (children, grandchildren, ...)
    #[arg(long, requires = "pid")]
    children: bool,
}

/// Where the recordings go; a temporary root is deleted when this is dropped.
struct Root {
    dir: PathBuf,
    temporary: bool,
}

impl Root {
    fn new(save: Option<PathBuf>) -> anyhow::Result<Root> {
        if let Some(dir) = save {
            if dir.exists() {
                let mut entries =
                    std::fs::read_dir(&dir).with_context(|| format!("--save {}", dir.display()))?;
                anyhow::ensure!(
                    entries.next().is_none(),
                    "--save {}: the directory is not empty (give a new or empty one)",
                    dir.display()
                );
            }
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            return Ok(Root {
                dir,
                temporary: false,
            });
        }
        // Named after the process: unique among live processes, and no clock needed.
        let base = std::env::temp_dir();
        let pid = std::process::id();
        for n in 0..100u32 {
            let dir = base.join(format!("profile-diagnose-{pid}-{n}"));
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    return Ok(Root {
                        dir,
                        temporary: true,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("creating {}", dir.display()));
                }
            }
        }
        anyhow::bail!(
            "could not create a temporary directory under {}",
            base.display()
        )
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// What the Ctrl-C handler and the measurement share.
#[derive(Default)]
struct Interrupts {
    /// The running recording's stop handle; `None` between recordings.
    current: Mutex<Option<StopHandle>>,
    /// A recording was interrupted.
    interrupted: AtomicBool,
    /// Ctrl-C presses so far.
    presses: AtomicU32,
    /// The temporary root to delete before exiting from a prompt.
    temp_root: Mutex<Option<PathBuf>>,
}

impl Interrupts {
    fn on_signal(&self, sig: StopSignal) {
        let first = self.presses.fetch_add(1, Ordering::SeqCst) == 0;
        let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        match current.as_ref() {
            Some(stop) if first => {
                self.interrupted.store(true, Ordering::SeqCst);
                stop.stop(sig.reason());
            }
            _ => {
                if let Some(dir) = self
                    .temp_root
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_ref()
                {
                    let _ = std::fs::remove_dir_all(dir);
                }
                eprintln!("\nprofile: interrupted");
                std::process::exit(sig.exit_status());
            }
        }
    }
}

/// The live measurement: record into `root/iter-N`, then analyse.
struct Live {
    config: RecordConfig,
    gpus: GpuChoice,
    root: PathBuf,
    catalog: Catalog,
    analyze: AnalyzeConfig,
    interrupts: Arc<Interrupts>,
    tty: bool,
}

impl Live {
    fn record(&mut self, iteration: u32) -> anyhow::Result<Measured> {
        let dir = self.root.join(format!("iter-{iteration}"));
        let mut config = self.config.clone();
        config.out_dir = Some(dir.clone());
        let gpu = open_gpus(&self.gpus, &mut config)?;
        if gpu.is_none() && self.gpus != GpuChoice::None {
            // Said once (by open_gpus); later iterations record vLLM alone without asking NVML.
            self.gpus = GpuChoice::None;
            self.config.gpu_note = config.gpu_note.clone();
        }
        let total = config.duration.unwrap_or_default().as_secs();
        eprintln!(
            "profile: iteration {iteration}: recording {} for {}s into {}",
            config.url,
            total,
            dir.display()
        );
        let recorder = Recorder::start(config, gpu).context("starting the recording")?;
        *self.lock_current() = Some(recorder.stop_handle());
        // Off a terminal nothing is shown, so the wait has no timeout at all.
        let redraw = self.tty.then_some(PROGRESS_EVERY);
        while !recorder.is_finished() {
            recorder.wait_change(redraw);
            if self.tty {
                let p = recorder.progress();
                eprint!(
                    "\r{}s / {total}s  scrapes {} ok, {} failed\x1b[K",
                    p.elapsed.as_secs(),
                    p.scrapes_ok,
                    p.scrapes_failed
                );
            }
        }
        if self.tty {
            eprint!("\r\x1b[K");
        }
        *self.lock_current() = None;
        recorder
            .wait()
            .with_context(|| format!("recording {}", dir.display()))?;
        let rec = profile::recording::open(&dir)
            .with_context(|| format!("reading recording {}", dir.display()))?;
        let mut analyze_config = self.analyze.clone();
        analyze_config.recording_label = Some(dir.display().to_string());
        let report = analyze(&rec, &self.catalog, &analyze_config)
            .with_context(|| format!("analysing {}", dir.display()))?;
        Ok(Measured {
            dir,
            report,
            interrupted: self.interrupts.interrupted.load(Ordering::SeqCst),
        })
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<StopHandle>> {
        self.interrupts
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Measure for Live {
    fn measure(&mut self, iteration: u32) -> Result<Measured, MeasureError> {
        // `{:#}` keeps anyhow's chain of context in the one message.
        self.record(iteration)
            .map_err(|e| MeasureError::from(format!("{e:#}")))
    }
}

pub fn run(args: DiagnoseArgs) -> anyhow::Result<ExitCode> {
    let catalog = load_catalog(args.catalog.as_deref())?;
    let record_args = RecordArgs {
        url: vec![args.url],
        targets: None,
        out: None,
        duration: Some(args.duration),
        interval: args.interval,
        rotate: Duration::from_secs(60),
        gpus: args.gpus.clone(),
        max_body: 16 * 1024 * 1024,
        timeout: None,
        max_num_seqs: args.max_num_seqs,
        tensor_parallel_size: args.tensor_parallel_size,
        dtype: args.dtype.clone(),
        cost_per_hour: args.cost_per_hour,
        gpu_memory_utilization: args.gpu_memory_utilization,
        pid: args.pid,
        children: args.children,
    };
    let config = to_config(record_args, |name| std::env::var(name).ok())?;
    let analyze = AnalyzeConfig {
        window_ns: Some(args.window),
        // Operator inputs were stored in each recording's manifest; analysis reads them there.
        verbose: args.verbose,
        // The loop's comparisons resample the windows for their intervals.
        samples: args.repeat,
        ..AnalyzeConfig::default()
    };
    let root = Root::new(args.save)?;
    let interrupts = Arc::new(Interrupts::default());
    if root.temporary {
        *interrupts
            .temp_root
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(root.dir.clone());
    }
    let handler = Arc::clone(&interrupts);
    signals::on_stop_signals(move |sig| handler.on_signal(sig))?;

    let stdin = std::io::stdin();
    let stdin_tty = stdin.is_terminal();
    let stdout = std::io::stdout();
    let color = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut live = Live {
        config,
        gpus: args.gpus,
        root: root.dir.clone(),
        catalog,
        analyze,
        interrupts,
        tty: std::io::stderr().is_terminal(),
    };
    let config = DiagnoseConfig {
        repeat: args.repeat,
        format: if args.json {
            Format::Json
        } else {
            Format::Text { color }
        },
        compare: CompareConfig {
            allow_different: args.allow_different,
        },
        echo_answers: !stdin_tty,
    };
    let (mut answers, mut out, mut prompts) = (stdin.lock(), stdout.lock(), std::io::stderr());
    let mut io = Io {
        answers: &mut answers,
        out: &mut out,
        prompts: &mut prompts,
    };
    diagnose::run(&mut live, &mut io, &config).map_err(|e| {
        let refused = matches!(e, DiagnoseError::Compare { .. });
        let e = anyhow::Error::new(e);
        if refused {
            e.context("stopping the loop (pass --allow-different to compare anyway)")
        } else {
            e
        }
    })?;
    if root.temporary {
        eprintln!(
            "profile: the recordings were temporary and are deleted now (--save DIR keeps them)"
        );
    } else {
        eprintln!("profile: recordings kept in {}", root.dir.display());
    }
    Ok(ExitCode::SUCCESS)
}
