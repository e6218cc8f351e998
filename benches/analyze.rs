//! Analysis throughput, end to end from Parquet to report: `recording::open` + `analyze` on
//! the embedded catalog + rendering the text report, in samples per second, on long
//! recordings made by replaying the real recording `recordings/vllm-cpu-0.32-load` (vLLM 0.32,
//! idle -> load -> idle, looped with counters kept monotone) through the real writer.
//!
//! The recordings are generated once under `big-benchmark-fixtures/` (gitignored): 1 h at
//! 4 Hz is about 6 M samples, 24 h about 146 M. Each measurement runs in a child process of
//! this benchmark, so that the peak resident memory it reports (`VmHWM`) is the analysis's
//! own and not the generator's.
//!
//! Two ways in: `recording::open` (every sample, the figure held against the target) and
//! `recording::open_filtered` keeping only the series `vllm::may_have_role` accepts (about
//! 40% of a vLLM 0.32 body's samples; the report is the same), which an analysis-only caller
//! can use.
//!
//! `BENCH_ANALYZE_HOURS` picks the recordings (default `1`; `scripts/bench.sh` uses `1,24`);
//! `BENCH_FIXTURE_ONLY=1` only writes them (`scripts/bench-vs-duckdb.sh` makes a week so), and
//! with `BENCH_GPUS=8` a copy with 8 GPUs' polls beside it (`GPUS=8` there).
//! Target: 50 M samples/s. Unless `BENCH_SUMMARY_ONLY=1`, criterion then times `open` and
//! `analyze` apart on the 1 h recording.

#[path = "support/mod.rs"]
mod support;

use criterion::{Criterion, Throughput};
use profile::analyze::{analyze, AnalyzeConfig};
use profile::catalog::Catalog;
use profile::recording::{self, Recording};
use std::path::{Path, PathBuf};
use std::process::Command;
use support::{Replay, FIXTURE_DIR, SCRAPES_PER_HOUR};

/// Target throughput, samples per second.
const TARGET_SAMPLES_PER_S: f64 = 50e6;
/// Set in the child process: the recording to measure.
const CHILD_ENV: &str = "BENCH_ANALYZE_CHILD";
/// Set in the child process: `full` (`open`) or `filtered` (`open_filtered`).
const MODE_ENV: &str = "BENCH_ANALYZE_MODE";
/// Bump when the generator changes, so that old fixtures are not reused.
const FIXTURE_VERSION: u32 = 4;

/// Whether the fixture `dir` was written whole (its `COMPLETE` marker is there); a
/// generation that was interrupted is removed, to start again rather than append to it.
fn written(dir: &Path) -> Result<bool, String> {
    if dir.join("COMPLETE").exists() {
        return Ok(true);
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(false)
}

/// The replayed recording of `hours` hours, written if it is not there yet.
fn fixture(replay: &Replay, hours: u64) -> Result<PathBuf, String> {
    let dir = Path::new(FIXTURE_DIR).join(format!("replay-{hours}h-v{FIXTURE_VERSION}"));
    let done = dir.join("COMPLETE");
    if written(&dir)? {
        return Ok(dir);
    }
    eprintln!(
        "writing {hours} h of replayed scrapes to {} (once)...",
        dir.display()
    );
    let w = support::write_replay(replay, &dir, hours * SCRAPES_PER_HOUR)?;
    let note = format!(
        "scrapes {}\nsamples {}\nbytes {}\n",
        w.scrapes, w.samples, w.bytes
    );
    std::fs::write(&done, note).map_err(|e| format!("{}: {e}", done.display()))?;
    Ok(dir)
}

/// The replayed recording of `hours` hours with `gpus` GPUs' polls beside it (see
/// `support::write_gpus`), written from [`fixture`]'s if it is not there yet.
fn gpu_fixture(replay: &Replay, hours: u64, gpus: u32) -> Result<PathBuf, String> {
    let base = fixture(replay, hours)?;
    let dir = Path::new(FIXTURE_DIR).join(format!("replay-{hours}h-v{FIXTURE_VERSION}-{gpus}gpu"));
    let done = dir.join("COMPLETE");
    if written(&dir)? {
        return Ok(dir);
    }
    eprintln!(
        "adding {gpus} GPUs to a copy of {} (once)...",
        base.display()
    );
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in std::fs::read_dir(&base).map_err(|e| format!("{}: {e}", base.display()))? {
        let e = e.map_err(|e| e.to_string())?;
        if e.file_name() != "COMPLETE" {
            std::fs::copy(e.path(), dir.join(e.file_name())).map_err(|e| e.to_string())?;
        }
    }
    let bytes = support::write_gpus(&dir, hours * SCRAPES_PER_HOUR, gpus)?;
    std::fs::write(&done, format!("gpus {gpus}\ngpu_bytes {bytes}\n"))
        .map_err(|e| format!("{}: {e}", done.display()))?;
    Ok(dir)
}

/// Wall and CPU seconds of one end-to-end analysis (CPU includes freeing the recording, in
/// 10 ms ticks), and its parts (wall).
struct Timing {
    samples: u64,
    wall_s: f64,
    cpu_s: f64,
    open_s: f64,
    analyze_s: f64,
    render_s: f64,
}

/// Opens (every sample, or with `filtered` only those analysis reads), analyses and renders
/// `dir` once.
#[allow(clippy::disallowed_methods)] // timing a measurement, not recording data
fn once(dir: &Path, catalog: &Catalog, filtered: bool) -> Result<Timing, String> {
    use std::time::Instant;
    let cpu0 = support::process_cpu_ticks_ns().ok_or("no /proc/self/stat")?;
    let t0 = Instant::now();
    let rec = if filtered {
        recording::open_filtered(dir, &profile::vllm::may_have_role)
    } else {
        recording::open(dir)
    }
    .map_err(|e| e.to_string())?;
    let t1 = Instant::now();
    let report = analyze(&rec, catalog, &AnalyzeConfig::default()).map_err(|e| e.to_string())?;
    let t2 = Instant::now();
    let text = profile::report::render_text(&report, false);
    let t3 = Instant::now();
    std::hint::black_box(&text);
    // The recording's samples, read or not: a filtered read still decodes every one.
    let samples = rec
        .files
        .iter()
        .filter(|f| is_samples_file(&f.path))
        .map(|f| f.rows)
        .sum();
    // Freeing the recording is part of the job (the CLI does it on exit, or not at all).
    drop(rec);
    let cpu1 = support::process_cpu_ticks_ns().ok_or("no /proc/self/stat")?;
    Ok(Timing {
        samples,
        wall_s: (t3 - t0).as_secs_f64(),
        cpu_s: (cpu1 - cpu0) as f64 / 1e9,
        open_s: (t1 - t0).as_secs_f64(),
        analyze_s: (t2 - t1).as_secs_f64(),
        render_s: (t3 - t2).as_secs_f64(),
    })
}

fn is_samples_file(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("samples-"))
}

/// The child: measures `dir` `runs` times and prints one line per run plus peak memory.
fn child(dir: &Path, runs: usize, filtered: bool) -> Result<(), String> {
    let catalog = Catalog::embedded().map_err(|e| e.to_string())?;
    for _ in 0..runs {
        let t = once(dir, &catalog, filtered)?;
        println!(
            "RUN samples={} wall={:.4} cpu={:.4} open={:.4} analyze={:.4} render={:.4}",
            t.samples, t.wall_s, t.cpu_s, t.open_s, t.analyze_s, t.render_s
        );
    }
    println!("PEAK_RSS {}", support::peak_rss_bytes().unwrap_or(0));
    Ok(())
}

fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

/// Runs the child on `dir` and prints the `analyze:` line: the best run, and the spread.
fn measure(dir: &Path, hours: u64, runs: usize, filtered: bool) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new(exe)
        .env(CHILD_ENV, dir)
        .env(MODE_ENV, if filtered { "filtered" } else { "full" })
        .env("BENCH_ANALYZE_RUNS", runs.to_string())
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "child failed: {}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let runs: Vec<&str> = stdout.lines().filter(|l| l.starts_with("RUN ")).collect();
    let peak = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PEAK_RSS "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    let rate = |l: &&str| field(l, "samples").unwrap_or(0.0) / field(l, "wall").unwrap_or(f64::MAX);
    let mut sorted = runs.clone();
    sorted.sort_by(|a, b| rate(b).total_cmp(&rate(a)));
    let Some(best) = sorted.first() else {
        return Err(format!("child printed no run: {stdout}"));
    };
    let worst = sorted.last().unwrap_or(best);
    let get = |k| field(best, k).unwrap_or(f64::NAN);
    let samples = get("samples");
    let r = rate(best);
    let how = if filtered {
        "open_filtered(may_have_role)"
    } else {
        "open"
    };
    println!(
        "analyze: {:.1} M samples/s (target {:.0} M/s: {:.2}x) [{hours} h, {:.1} M samples, \
         {how}]",
        r / 1e6,
        TARGET_SAMPLES_PER_S / 1e6,
        r / TARGET_SAMPLES_PER_S,
        samples / 1e6
    );
    println!(
        "  {hours} h: best of {} runs {:.3} s wall (open {:.3} s, analyze {:.3} s, render \
         {:.3} s), {:.2} s CPU; worst {:.1} M samples/s; peak RSS {:.0} MB",
        sorted.len(),
        get("wall"),
        get("open"),
        get("analyze"),
        get("render"),
        get("cpu"),
        rate(worst) / 1e6,
        peak / 1e6
    );
    Ok(())
}

/// Criterion, wall clock: `open` alone and `analyze` on a recording already in memory.
fn bench_parts(c: &mut Criterion, dir: &Path, rec: &Recording, catalog: &Catalog) {
    let samples: u64 = rec.scrapes.iter().map(|s| s.samples.len() as u64).sum();
    let mut group = c.benchmark_group("analyze-1h");
    group.sample_size(10);
    group.throughput(Throughput::Elements(samples));
    group.bench_function("open", |b| b.iter(|| recording::open(dir)));
    group.bench_function("open_filtered", |b| {
        b.iter(|| recording::open_filtered(dir, &profile::vllm::may_have_role))
    });
    group.bench_function("analyze", |b| {
        b.iter(|| analyze(rec, catalog, &AnalyzeConfig::default()))
    });
    group.finish();
}

fn main() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        let runs = std::env::var("BENCH_ANALYZE_RUNS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(3);
        let filtered = std::env::var(MODE_ENV).is_ok_and(|m| m == "filtered");
        if let Err(e) = child(Path::new(&dir), runs, filtered) {
            eprintln!("{e}");
            std::process::exit(1);
        }
        return;
    }
    let Some(replay) = Replay::load() else {
        eprintln!("skipping analyze benchmark: the real recording is unreadable");
        return;
    };
    let hours: Vec<u64> = std::env::var("BENCH_ANALYZE_HOURS")
        .unwrap_or_else(|_| "1".to_string())
        .split(',')
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    // `BENCH_FIXTURE_ONLY=1`: write the recordings and stop (a week is read by
    // `profile analyze` in scripts/bench-vs-duckdb.sh, not opened whole here).
    // `BENCH_GPUS=8`: the fixtures written have that many GPUs' polls beside them.
    let gpus: Option<u32> = std::env::var("BENCH_GPUS")
        .ok()
        .and_then(|g| g.parse().ok());
    if std::env::var_os("BENCH_FIXTURE_ONLY").is_some_and(|v| v == "1") {
        for &h in &hours {
            let written = match gpus {
                Some(g) => gpu_fixture(&replay, h, g),
                None => fixture(&replay, h),
            };
            if let Err(e) = written {
                eprintln!("analyze benchmark ({h} h) failed: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    for &h in &hours {
        let result = fixture(&replay, h).and_then(|dir| {
            // Long recordings take seconds a run: fewer runs.
            let runs = if h >= 12 { 3 } else { 7 };
            measure(&dir, h, runs, false)?;
            measure(&dir, h, runs, true)
        });
        if let Err(e) = result {
            eprintln!("analyze benchmark ({h} h) failed: {e}");
            std::process::exit(1);
        }
    }
    if std::env::var_os("BENCH_SUMMARY_ONLY").is_some_and(|v| v == "1") {
        return;
    }
    let run = || -> Result<(), String> {
        let dir = fixture(&replay, 1)?;
        let catalog = Catalog::embedded().map_err(|e| e.to_string())?;
        let rec = recording::open(&dir).map_err(|e| e.to_string())?;
        let mut criterion = Criterion::default().configure_from_args();
        bench_parts(&mut criterion, &dir, &rec, &catalog);
        criterion.final_summary();
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("analyze benchmark failed: {e}");
        std::process::exit(1);
    }
}
