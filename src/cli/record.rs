//! `profile record`: flags -> `RecordConfig`, GPU source choice, Ctrl-C/SIGTERM, and the
//! status line. The recording itself is the library's `record` engine.

use super::signals;
use anyhow::Context;
use profile::gpu::nvml::{self, GpuSelection};
use profile::gpu::{GpuError, GpuSource};
use profile::record::{HostConfig, Progress, RecordConfig, RecordError, RecordSummary, Recorder};
use profile::recording::{AnalysisInputs, Sourced};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Environment variable holding the bearer token (never a flag: `ps` shows argv).
const TOKEN_ENV: &str = "PROFILE_BEARER_TOKEN";
/// How often the status line on a terminal is redrawn. Ours: about the scrape rate, fast
/// enough for the clock on it to tick smoothly.
const REDRAW: Duration = Duration::from_millis(250);
/// The most of an error text quoted in the one-line summary of a run without a good scrape.
/// Ours: keeps the line within a terminal's width.
const ERROR_CHARS: usize = 80;
/// Context of an error before the first tick: the user must know no file holds anything.
const NOTHING_RECORDED: &str = "nothing was recorded";

/// Arguments of `profile record`.
#[derive(Debug, clap::Args)]
pub struct RecordArgs {
    /// The vLLM Prometheus endpoint, e.g. http://127.0.0.1:8000/metrics. A bearer token, if
    /// the server wants one, is read from the PROFILE_BEARER_TOKEN environment variable.
    /// Give it several times to record a fleet, one target per URL.
    #[arg(long, required_unless_present = "targets")]
    pub(super) url: Vec<String>,
    /// A file of targets to record as one fleet: one a line, its URL, then optionally a name
    /// and its own -m/--max-num-seqs, --tensor-parallel-size, --dtype, --cost-per-hour,
    /// --gpu-memory-utilization (the flags given here apply to every target that gives none);
    /// `#` starts a comment
    #[arg(long, value_name = "FILE")]
    pub(super) targets: Option<PathBuf>,
    /// Recording directory (created; an existing one must be empty)
    /// [default: recordings/<UTC start, e.g. 20261123T090102Z>]
    #[arg(long, value_name = "DIR")]
    pub(super) out: Option<PathBuf>,
    /// Stop after this long, e.g. 90s, 2m, 1h [default: until Ctrl-C]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(super) duration: Option<Duration>,
    /// Scrape and GPU poll period
    #[arg(long, value_name = "DURATION", default_value = "250ms", value_parser = parse_duration)]
    pub(super) interval: Duration,
    /// Start a new set of files this often
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub(super) rotate: Duration,
    /// GPUs to poll: all, none, or NVML indices such as 0,1
    #[arg(long, value_name = "all|none|LIST", default_value = "all", value_parser = parse_gpus)]
    pub(super) gpus: GpuChoice,
    /// Largest /metrics body accepted, e.g. 16MiB, 512KiB, 1000000; a bigger one is recorded
    /// as an oversize scrape
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_size)]
    pub(super) max_body: u64,
    /// Timeout of one scrape, connect included [default: 80% of the interval]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(super) timeout: Option<Duration>,
    /// vLLM's --max-num-seqs, which vLLM does not expose as a metric before 0.19
    #[arg(short = 'm', long, value_name = "N")]
    pub(super) max_num_seqs: Option<u32>,
    /// Tensor-parallel degree [default: $TENSOR_PARALLEL_SIZE, else $VLLM_TENSOR_PARALLEL_SIZE]
    #[arg(long, value_name = "N")]
    pub(super) tensor_parallel_size: Option<u32>,
    /// Model weight dtype, e.g. bfloat16, fp8 [default: $DTYPE, else $VLLM_DTYPE]
    #[arg(long, value_name = "DTYPE")]
    pub(super) dtype: Option<String>,
    /// What the GPUs cost, dollars per hour
    #[arg(long, value_name = "USD")]
    pub(super) cost_per_hour: Option<f64>,
    /// vLLM's --gpu-memory-utilization, a fraction (stored for R4's fix and the ceiling's usable
    /// VRAM) [default: the server's cache_config_info label at analysis]
    #[arg(long, value_name = "FRACTION")]
    pub(super) gpu_memory_utilization: Option<f64>,
    /// Also sample this process from /proc on every tick (RSS, CPU time, threads), e.g. the
    /// vLLM server's PID (Linux only)
    #[arg(long, value_name = "PID")]
    pub(super) pid: Option<u32>,
    /// With --pid, sample every process below it too: vLLM's engine core is a child of the
    /// API server, and the worker that runs the model a child of the engine core
    #[arg(long, requires = "pid")]
    pub(super) children: bool,
}

/// The `--gpus` choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum GpuChoice {
    None,
    Some(GpuSelection),
}

pub fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    if args.targets.is_some() || args.url.len() > 1 {
        return super::fleet_record::run(args);
    }
    let env = |name: &str| std::env::var(name).ok();
    let gpus = args.gpus.clone();
    let url = args.url.first().cloned().unwrap_or_default();
    let mut config = to_config(args, env).context(NOTHING_RECORDED)?;
    if config.timeout >= config.interval {
        eprintln!(
            "profile: warning: --timeout {} ms is not below --interval {} ms; a slow server will \
             make the recorder skip ticks",
            config.timeout.as_millis(),
            config.interval.as_millis()
        );
    }
    let gpu = open_gpus(&gpus, &mut config).context(NOTHING_RECORDED)?;

    let recorder = Recorder::start(config, gpu).map_err(|e| match e {
        // Already says that nothing was recorded.
        e @ RecordError::Start(_) => anyhow::Error::new(e),
        e => anyhow::Error::new(e).context(NOTHING_RECORDED),
    })?;
    let dir = recorder.dir().to_path_buf();
    let stop = recorder.stop_handle();
    signals::stop_on_signals(stop)?;

    let tty = std::io::stderr().is_terminal();
    if tty {
        eprintln!(
            "profile: recording {} into {} (Ctrl-C to stop)",
            url,
            dir.display()
        );
    }
    let mut was_failing = false;
    let mut exit_told = false;
    // On a terminal the status line is redrawn; off one, only changes are reported, so the
    // wait has no timeout and an idle recorder never wakes this thread.
    let redraw = tty.then_some(REDRAW);
    while !recorder.is_finished() {
        recorder.wait_change(redraw);
        let p = recorder.progress();
        if tty {
            eprint!("\r{}\x1b[K", status_line(&p));
        } else if p.last_scrape_failed != was_failing {
            match (&p.last_scrape_error, p.last_scrape_failed) {
                (Some(e), true) => eprintln!("profile: scrape failed: {e}"),
                _ => eprintln!("profile: scrapes succeed again"),
            }
        }
        was_failing = p.last_scrape_failed;
        if p.host_exited && !exit_told {
            exit_told = true;
            if tty {
                eprint!("\r\x1b[K");
            }
            eprintln!("profile: the --pid process exited; recording /metrics goes on");
        }
    }
    if tty {
        eprint!("\r\x1b[K");
    }
    let result = recorder.wait();
    // The path goes to stdout whatever happened: even a failed recording keeps its files.
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", dir.display())?;
    let summary = result.with_context(|| format!("recording {}", dir.display()))?;
    let t = &summary.totals;
    if t.scrapes > 0 && t.scrapes_failed == t.scrapes {
        // Files that hold only failures are kept (they are the evidence), but the run failed.
        eprintln!("profile: error: {}", none_succeeded(&summary));
        return Ok(ExitCode::FAILURE);
    }
    if tty {
        eprintln!(
            "profile: stopped ({}): {} scrapes ({} failed), {} GPU polls, {} samples, {} written",
            summary.stop_reason.as_str(),
            t.scrapes,
            t.scrapes_failed,
            t.gpu_polls,
            t.samples,
            human_bytes(t.bytes_written),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One line for a recording in which no scrape succeeded, e.g. `recorded 240 scrapes, none
/// succeeded: connect 240 (last: connection refused)`.
fn none_succeeded(summary: &RecordSummary) -> String {
    let kinds: Vec<String> = summary
        .failed
        .iter()
        .map(|f| match &f.last_error {
            Some(e) => format!("{} {} (last: {})", f.status.as_str(), f.count, one_line(e)),
            None => format!("{} {}", f.status.as_str(), f.count),
        })
        .collect();
    format!(
        "recorded {} scrapes, none succeeded: {}",
        summary.totals.scrapes,
        kinds.join(", ")
    )
}

/// An error text cut to one short line.
fn one_line(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut short: String = flat.chars().take(ERROR_CHARS).collect();
    if flat.chars().count() > ERROR_CHARS {
        short.push_str("...");
    }
    short
}

/// Opens the GPU source. NVML missing is not an error: one line on stderr, a note in the
/// manifest, and the recording goes on with vLLM alone.
pub(super) fn open_gpus(
    choice: &GpuChoice,
    config: &mut RecordConfig,
) -> anyhow::Result<Option<Box<dyn GpuSource>>> {
    let selection = match choice {
        GpuChoice::None => {
            config.gpu_note = Some("GPU polling turned off (--gpus none)".to_string());
            return Ok(None);
        }
        GpuChoice::Some(s) => s,
    };
    match nvml::open(selection) {
        Ok(source) => Ok(Some(Box::new(source.with_poll_interval(config.interval)))),
        Err(e @ GpuError::Unavailable(_)) => {
            eprintln!("profile: no GPU data: {e}; recording vLLM only");
            config.gpu_note = Some(e.to_string());
            Ok(None)
        }
        Err(e) => Err(anyhow::Error::new(e).context("--gpus")),
    }
}

/// Turns the flags (and the environment, through `env`) into the engine's config.
pub(super) fn to_config(
    args: RecordArgs,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<RecordConfig> {
    let env = |name: &str| {
        env(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let mut config = RecordConfig::new(args.url.first().cloned().unwrap_or_default());
    config.out_dir = args.out;
    config.duration = args.duration;
    config.interval = args.interval;
    config.rotate = args.rotate;
    config.max_body_bytes = args.max_body;
    config.timeout = args.timeout.unwrap_or(args.interval.mul_f64(0.8));
    config.bearer_token = env(TOKEN_ENV);
    config.host = args.pid.map(|pid| HostConfig {
        pid,
        children: args.children,
    });

    let flag = |v, name: &str| Sourced {
        value: v,
        source: name.to_string(),
    };
    let mut inputs = AnalysisInputs {
        max_num_seqs: args.max_num_seqs.map(|v| flag(v, "--max-num-seqs")),
        tensor_parallel_size: args
            .tensor_parallel_size
            .map(|v| flag(v, "--tensor-parallel-size")),
        dtype: args.dtype.map(|v| Sourced {
            value: v,
            source: "--dtype".to_string(),
        }),
        cost_per_hour: args.cost_per_hour.map(|v| Sourced {
            value: v,
            source: "--cost-per-hour".to_string(),
        }),
        gpu_memory_utilization: args.gpu_memory_utilization.map(|v| Sourced {
            value: v,
            source: "--gpu-memory-utilization".to_string(),
        }),
    };
    if let Some(c) = &inputs.cost_per_hour {
        anyhow::ensure!(
            c.value.is_finite() && c.value >= 0.0,
            "--cost-per-hour must be a non-negative number"
        );
    }
    if let Some(g) = &inputs.gpu_memory_utilization {
        anyhow::ensure!(
            g.value.is_finite() && g.value > 0.0 && g.value <= 1.0,
            "--gpu-memory-utilization must be a fraction above 0 and at most 1"
        );
    }
    if inputs.tensor_parallel_size.is_none() {
        for name in ["TENSOR_PARALLEL_SIZE", "VLLM_TENSOR_PARALLEL_SIZE"] {
            if let Some(v) = env(name) {
                let value: u32 = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .with_context(|| format!("${name}={v:?} is not a positive integer"))?;
                inputs.tensor_parallel_size = Some(Sourced {
                    value,
                    source: name.to_string(),
                });
                break;
            }
        }
    }
    if inputs.dtype.is_none() {
        inputs.dtype = ["DTYPE", "VLLM_DTYPE"].into_iter().find_map(|name| {
            env(name).map(|value| Sourced {
                value,
                source: name.to_string(),
            })
        });
    }
    config.analysis_inputs = inputs;
    Ok(config)
}

/// One status line: elapsed, scrapes, GPU polls, bytes written, and the last error while
/// scrapes fail.
fn status_line(p: &Progress) -> String {
    let secs = p.elapsed.as_secs();
    let mut line = format!(
        "{:02}:{:02}:{:02}  scrapes {} ok, {} failed  GPU polls {}  written {}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        p.scrapes_ok,
        p.scrapes_failed,
        p.gpu_polls,
        human_bytes(p.bytes_written),
    );
    if p.last_scrape_failed {
        if let Some(e) = &p.last_scrape_error {
            let short: String = e.chars().take(60).collect();
            line.push_str(&format!("  last: {short}"));
        }
    }
    line
}

pub(super) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// Parses a duration such as `250ms`, `90s`, `2m`, `1h`, `1.5s` or `1m30s`. A bare number is
/// refused: the unit is what makes `--interval 250` unambiguous.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".to_string());
    }
    let mut total = 0.0_f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let unit_len = rest[num_len..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len() - num_len);
        let (num, unit) = (&rest[..num_len], &rest[num_len..num_len + unit_len]);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("{text:?}: expected a number, e.g. 250ms, 90s, 2m, 1h"))?;
        let scale = match unit {
            "ms" => 1e-3,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("{text:?}: missing unit (ms, s, m or h)")),
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (use ms, s, m or h)"
                ))
            }
        };
        total += value * scale;
        rest = &rest[num_len + unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|e| format!("{text:?}: {e}"))
}

/// Parses a size such as `16MiB`, `512KiB`, `1GiB`, `16MB`, `1000000` (bytes).
fn parse_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = (&s[..split], s[split..].trim());
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{text:?}: expected a size such as 16MiB"))?;
    let scale: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use B, KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    let bytes = (value * scale).round();
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("{text:?}: size out of range"));
    }
    Ok(bytes as u64)
}

/// Parses `--gpus`: `all`, `none`, or a comma-separated list of NVML indices.
pub(super) fn parse_gpus(text: &str) -> Result<GpuChoice, String> {
    match text.trim() {
        "all" => Ok(GpuChoice::Some(GpuSelection::All)),
        "none" => Ok(GpuChoice::None),
        list => {
            let mut indices = Vec::new();
            for part in list.split(',') {
                let i: u32 = part
                    .trim()
                    .parse()
                    .map_err(|_| format!("{text:?}: expected all, none, or indices like 0,1"))?;
                if !indices.contains(&i) {
                    indices.push(i);
                }
            }
            Ok(GpuChoice::Some(GpuSelection::Indices(indices)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        args: RecordArgs,
    }

    fn args(extra: &[&str]) -> RecordArgs {
        let mut argv = vec!["record", "--url", "http://127.0.0.1:8000/metrics"];
        argv.extend_from_slice(extra);
        Wrap::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn durations_in_humane_forms() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("250").unwrap_err().contains("missing unit"));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("ms").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16MiB"), Ok(16 * 1024 * 1024));
        assert_eq!(parse_size("512KiB"), Ok(512 * 1024));
        assert_eq!(parse_size("1000000"), Ok(1_000_000));
        assert_eq!(parse_size("2MB"), Ok(2_000_000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 parsecs").is_err());
    }

    #[test]
    fn gpu_choices() {
        assert_eq!(parse_gpus("all"), Ok(GpuChoice::Some(GpuSelection::All)));
        assert_eq!(parse_gpus("none"), Ok(GpuChoice::None));
        assert_eq!(
            parse_gpus("0, 2,0"),
            Ok(GpuChoice::Some(GpuSelection::Indices(vec![0, 2])))
        );
        assert!(parse_gpus("first").is_err());
    }

    #[test]
    fn defaults_and_timeout_below_the_interval() {
        let c = to_config(args(&[]), |_| None).unwrap();
        assert_eq!(c.interval, Duration::from_millis(250));
        assert_eq!(c.timeout, Duration::from_millis(200));
        assert_eq!(c.rotate, Duration::from_secs(60));
        assert_eq!(c.max_body_bytes, 16 * 1024 * 1024);
        assert_eq!(c.duration, None);
        assert_eq!(c.bearer_token, None);
        let c = to_config(args(&["--interval", "100ms"]), |_| None).unwrap();
        assert_eq!(c.timeout, Duration::from_millis(80));
    }

    #[test]
    fn analysis_inputs_record_their_source() {
        let env = |name: &str| match name {
            "TENSOR_PARALLEL_SIZE" => None,
            "VLLM_TENSOR_PARALLEL_SIZE" => Some("4".to_string()),
            "DTYPE" => Some("".to_string()),
            "VLLM_DTYPE" => Some("fp8".to_string()),
            "PROFILE_BEARER_TOKEN" => Some("tok".to_string()),
            _ => None,
        };
        let c = to_config(args(&["-m", "256", "--cost-per-hour", "2.5"]), env).unwrap();
        let i = &c.analysis_inputs;
        assert_eq!(
            i.max_num_seqs,
            Some(Sourced {
                value: 256,
                source: "--max-num-seqs".into()
            })
        );
        assert_eq!(
            i.tensor_parallel_size,
            Some(Sourced {
                value: 4,
                source: "VLLM_TENSOR_PARALLEL_SIZE".into()
            })
        );
        assert_eq!(
            i.dtype,
            Some(Sourced {
                value: "fp8".into(),
                source: "VLLM_DTYPE".into()
            })
        );
        assert_eq!(i.cost_per_hour.as_ref().map(|c| c.value), Some(2.5));
        assert_eq!(c.bearer_token.as_deref(), Some("tok"));
        // A flag wins over the environment.
        let c = to_config(
            args(&["--tensor-parallel-size", "2", "--dtype", "bfloat16"]),
            env,
        )
        .unwrap();
        assert_eq!(
            c.analysis_inputs.tensor_parallel_size.unwrap().source,
            "--tensor-parallel-size"
        );
        assert_eq!(c.analysis_inputs.dtype.unwrap().value, "bfloat16");
        // A bad environment value names its variable.
        let bad = |name: &str| (name == "TENSOR_PARALLEL_SIZE").then(|| "two".to_string());
        let err = to_config(args(&[]), bad).unwrap_err().to_string();
        assert!(err.contains("TENSOR_PARALLEL_SIZE"), "{err}");
    }

    #[test]
    fn status_line_shows_counts_and_the_last_error() {
        let p = Progress {
            elapsed: Duration::from_secs(3723),
            scrapes_ok: 10,
            scrapes_failed: 2,
            gpu_polls: 12,
            bytes_written: 3 * 1024 * 1024,
            last_scrape_failed: true,
            last_scrape_error: Some("timeout: timed out".into()),
            ..Progress::default()
        };
        let line = status_line(&p);
        assert!(line.starts_with("01:02:03"), "{line}");
        assert!(line.contains("10 ok, 2 failed"), "{line}");
        assert!(line.contains("3.0 MiB"), "{line}");
        assert!(line.contains("timeout"), "{line}");
        assert_eq!(human_bytes(512), "512 B");
    }
}
