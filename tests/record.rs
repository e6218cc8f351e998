//! The recorder end to end against a scripted HTTP server and a fake GPU: every kind of failed
//! scrape is a row and recording goes on, one GET per tick, no schedule drift, rotation,
//! `--duration`, and a SIGKILLed recorder leaving only whole files.

mod host;
mod server;

use profile::gpu::fake::FakeGpuSource;
use profile::gpu::GpuMetrics;
use profile::record::{record, RecordConfig, RecordError, Recorder, StopReason};
use profile::recording::{self, Recording, ScrapeStatus};
use server::{Reply, TestServer};
use std::path::Path;
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

/// The wall clock, for measuring how long a run took (tests may read it).
#[allow(clippy::disallowed_methods)]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

fn config(server: &TestServer, dir: &Path, interval_ms: u64, duration_ms: u64) -> RecordConfig {
    let mut c = RecordConfig::new(server.url());
    c.out_dir = Some(dir.to_path_buf());
    c.interval = Duration::from_millis(interval_ms);
    c.timeout = Duration::from_millis(interval_ms * 8 / 10);
    c.duration = Some(Duration::from_millis(duration_ms));
    c
}

fn statuses(rec: &Recording) -> Vec<ScrapeStatus> {
    rec.scrapes.iter().map(|s| s.meta.status).collect()
}

fn files_named(dir: &Path, prefix: &str) -> Vec<String> {
    // A directory not created yet holds no files.
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".parquet"))
        .collect();
    names.sort();
    names
}

#[test]
fn records_scrapes_and_gpu_polls_one_get_per_tick() {
    let _serial = crate::support::exclusive();
    let server = TestServer::start(|_| Reply::Metrics);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    let mut c = config(&server, &dir, 50, 1000);
    c.rotate = 300 * MS;
    c.bearer_token = Some("t0ken".into());
    // GPU 1 never reports its temperature and fails one poll in three.
    let unsupported = GpuMetrics {
        temperature_c: None,
        ..FakeGpuSource::plausible(0)
    };
    let failing = GpuMetrics {
        error: Some("power: GPU lost".into()),
        power_w: None,
        ..unsupported.clone()
    };
    let gpu = FakeGpuSource::new(vec![
        FakeGpuSource::device(0, "Fake A"),
        FakeGpuSource::device(1, "Fake B"),
    ])
    .with_script(1, vec![unsupported.clone(), unsupported, failing]);

    let t0 = now();
    let summary = record(c, Some(Box::new(gpu))).unwrap();
    let took = t0.elapsed();
    // `--duration` stops on time: not before, and not long after.
    assert!(took >= 1000 * MS && took < 1600 * MS, "took {took:?}");
    assert_eq!(summary.stop_reason, StopReason::Duration);

    let rec = recording::open(&dir).unwrap();
    let m = &rec.manifest;
    assert_eq!(m.stop_reason.as_deref(), Some("duration"));
    assert!(m.stopped_at_ns.is_some_and(|t| t > m.started_at_ns));
    assert_eq!(m.vllm_version.as_deref(), Some("0.32.0-test"));
    assert_eq!(m.model_name.as_deref(), Some("tiny-llama"));
    assert_eq!(m.interval_ms, 50);
    assert_eq!(m.gpus.len(), 2);
    assert_eq!(m.driver_version.as_deref(), Some("fake-1.0"));
    let totals = m.totals.as_ref().expect("totals at a clean stop");

    // One GET per tick: the server saw exactly as many requests as there are rows, and the
    // rows' seq numbers are distinct ticks before the end of the duration.
    let n = rec.scrapes.len();
    assert_eq!(server.metrics_requests(), n);
    assert!((15..=20).contains(&n), "{n} scrapes in 1 s at 50 ms");
    assert_eq!(totals.scrapes, n as u64);
    assert_eq!(totals.scrapes_failed, 0);
    assert!(statuses(&rec).iter().all(|s| *s == ScrapeStatus::Ok));
    let seqs: Vec<u64> = rec.scrapes.iter().map(|s| s.meta.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]) && *seqs.last().unwrap() < 20,
        "{seqs:?}"
    );
    assert!(rec
        .scrapes
        .iter()
        .all(|s| s.meta.sample_count.unwrap_or(0) > 0 && !s.samples.is_empty()));
    assert_eq!(
        totals.samples,
        rec.scrapes
            .iter()
            .map(|s| s.samples.len() as u64)
            .sum::<u64>()
    );
    for s in &rec.scrapes {
        assert!(s.meta.completed_mono >= s.meta.requested_mono);
        assert!(s.meta.completed_at >= s.meta.requested_at);
    }

    // Headers: the bearer token, and no Accept header (vLLM then answers text 0.0.4).
    let hits = server.hits();
    assert!(hits.iter().all(|h| h.accept.is_none()), "{:?}", hits[0]);
    assert!(hits
        .iter()
        .all(|h| h.authorization.as_deref() == Some("Bearer t0ken")));

    // GPU rows: both devices every round; the unsupported field reads back None, not 0.
    assert_eq!(totals.gpu_polls as usize * 2, rec.gpu_polls.len());
    assert!(totals.gpu_polls >= 15, "{totals:?}");
    let gpu1: Vec<_> = rec.gpu_polls.iter().filter(|p| p.gpu_index == 1).collect();
    assert!(gpu1.iter().all(|p| p.metrics.temperature_c.is_none()));
    assert!(gpu1
        .iter()
        .any(|p| p.metrics.error.is_some() && p.metrics.power_w.is_none()));
    assert!(gpu1
        .iter()
        .any(|p| p.metrics.error.is_none() && p.metrics.power_w.is_some()));
    let gpu0: Vec<_> = rec.gpu_polls.iter().filter(|p| p.gpu_index == 0).collect();
    assert!(gpu0.iter().all(|p| p.metrics.temperature_c.is_some()));

    // Rotation every 300 ms over 1 s: several files of each kind, all readable.
    assert!(
        files_named(&dir, "scrapes-").len() >= 3,
        "{:?}",
        files_named(&dir, "")
    );
    assert!(files_named(&dir, "samples-").len() >= 3);
    assert!(files_named(&dir, "gpu-").len() >= 3);
    assert!(
        rec.files.iter().all(|f| f.problem.is_none()),
        "{:?}",
        rec.files
    );
    assert_eq!(
        totals.bytes_written,
        summary.files.iter().map(|f| f.bytes).sum::<u64>()
    );
    assert!(totals.bytes_written > 0);
}

/// GPM readings from a fake GPU go through the recorder, the files and the analysis into the
/// report: GPU 0 has GPM on every other poll (as a real one has none at its first poll),
/// GPU 1 has none at all, and the report's means are GPU 0's values, not diluted by zeros.
#[test]
fn gpm_readings_reach_the_report_and_a_gpu_without_gpm_adds_none() {
    let _serial = crate::support::exclusive();
    let server = TestServer::start(|_| Reply::Metrics);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    let c = config(&server, &dir, 100, 2_500);
    let gpm = [Some(62.5), Some(31.5), Some(48.0)];
    let gpu = FakeGpuSource::new(vec![
        FakeGpuSource::device(0, "Fake H"),
        FakeGpuSource::device(1, "Fake A"),
    ])
    .with_gpm(0, vec![[None; 3], gpm]);
    record(c, Some(Box::new(gpu))).unwrap();

    let rec = recording::open(&dir).unwrap();
    let fields = |p: &profile::recording::GpuPoll| {
        let m = &p.metrics;
        [m.sm_active_pct, m.sm_occupancy_pct, m.dram_bw_util_pct]
    };
    let gpu0: Vec<_> = rec.gpu_polls.iter().filter(|p| p.gpu_index == 0).collect();
    assert!(gpu0.len() >= 20, "{} polls", gpu0.len());
    for (n, p) in gpu0.iter().enumerate() {
        let want = if n % 2 == 0 { [None; 3] } else { gpm };
        assert_eq!(fields(p), want, "poll {n}");
    }
    let gpu1 = rec.gpu_polls.iter().filter(|p| p.gpu_index == 1);
    assert!(gpu1.map(fields).all(|f| f == [None; 3]));

    let out = crate::support::profile()
        .args(["analyze", "--json"])
        .arg(&dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let r: profile::report::Report = serde_json::from_slice(&out).unwrap();
    assert!(r.windows.active > 0, "{:?}", r.windows);
    // Time-weighted over windows of unequal length: equal up to rounding.
    let close = |v: Option<f64>, want: f64| v.is_some_and(|v| (v - want).abs() < 1e-9);
    let m = &r.metrics;
    assert!(close(m.gpu_sm_active_pct, 62.5), "{m:?}");
    assert!(close(m.gpu_sm_occupancy_pct, 31.5), "{m:?}");
    assert!(close(m.gpu_dram_bw_util_pct, 48.0), "{m:?}");
    // Fake GPUs have no catalog entry, so no ceiling to set the DRAM share beside.
    assert_eq!(r.ceiling.measured_dram_bw_util_pct, None);

    // Per window (-v): every window with a GPM value has GPU 0's.
    let out = crate::support::profile()
        .args(["analyze", "--json", "-v"])
        .arg(&dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: profile::report::Report = serde_json::from_slice(&out).unwrap();
    let with_gpm: Vec<_> = v
        .windows
        .rows
        .iter()
        .filter(|w| w.gpu_sm_active_pct.is_some())
        .collect();
    assert!(with_gpm.len() >= 2, "{:?}", v.windows.rows);
    assert!(with_gpm.iter().all(|w| close(w.gpu_sm_active_pct, 62.5)
        && close(w.gpu_sm_occupancy_pct, 31.5)
        && close(w.gpu_dram_bw_util_pct, 48.0)));

    // The HTML timeline carries the GPM series in the utilisation chart.
    let html = tmp.path().join("gpm.html");
    crate::support::profile()
        .arg("analyze")
        .arg(&dir)
        .arg("--html")
        .arg(&html)
        .assert()
        .success();
    let page = std::fs::read_to_string(&html).unwrap();
    for key in ["\"sm_active\":[", "\"sm_occupancy\":[", "\"dram_bw\":["] {
        assert!(page.contains(key), "no {key} series");
    }
    assert!(page.contains("DRAM bandwidth % of peak (GPM)"));

    let out = crate::support::profile()
        .arg("analyze")
        .arg(&dir)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let row = |name: &str| {
        text.lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no {name:?} row:\n{text}"))
            .to_string()
    };
    assert!(row("SM active (GPM)").contains("62.5 %"), "{text}");
    assert!(row("SM occupancy (GPM)").contains("31.5 %"), "{text}");
    assert!(
        row("DRAM bandwidth (GPM)").contains("48.0 % of peak"),
        "{text}"
    );
    assert!(!text.contains("measured DRAM bandwidth use"), "{text}");
}

#[test]
fn every_failure_is_a_row_and_recording_goes_on() {
    let _serial = crate::support::exclusive();
    // Requests 3..=8 fail in every way; after request 8 the server refuses connections
    // for 250 ms; then it answers again.
    let server = TestServer::start(|n| match n {
        3 => Reply::Status(500),
        4 => Reply::Garbage,
        5 => Reply::NotUtf8,
        6 => Reply::Stall(Duration::from_millis(400)),
        7 => Reply::Oversize(300 * 1024),
        8 => Reply::ThenRefuse(Duration::from_millis(250)),
        _ => Reply::Metrics,
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    let mut c = config(&server, &dir, 100, 2000);
    c.max_body_bytes = 256 * 1024;
    let summary = record(c, None).unwrap();

    let rec = recording::open(&dir).unwrap();
    let st = statuses(&rec);
    use ScrapeStatus::*;
    assert_eq!(
        &st[..9],
        &[Ok, Ok, Ok, HttpStatus, Parse, Parse, Timeout, Oversize, Ok],
        "{st:?}"
    );
    let m3 = &rec.scrapes[3].meta;
    assert_eq!(m3.http_status, Some(500));
    assert!(m3.error.as_deref().unwrap().contains("500"), "{m3:?}");
    assert!(rec.scrapes[5]
        .meta
        .error
        .as_deref()
        .unwrap()
        .contains("UTF-8"));
    assert!(rec.scrapes[6]
        .meta
        .error
        .as_deref()
        .unwrap()
        .contains("timed out"));
    assert!(rec.scrapes[7]
        .meta
        .error
        .as_deref()
        .unwrap()
        .contains("cap"));
    for s in &rec.scrapes[3..8] {
        assert!(
            s.samples.is_empty() && s.meta.sample_count.is_none(),
            "{:?}",
            s.meta
        );
        assert!(s.meta.error.is_some());
    }
    // The refusal: at least one connect failure, then success again until the end.
    let refused = st[9..].iter().take_while(|s| **s == Connect).count();
    assert!(refused >= 1, "{st:?}");
    assert!(
        st[9 + refused..].len() >= 5 && st[9 + refused..].iter().all(|s| *s == Ok),
        "{st:?}"
    );
    let totals = summary.totals;
    assert_eq!(totals.scrapes_failed, (5 + refused) as u64);
    // The refused attempts never reached the server; every other row is one request.
    assert_eq!(server.metrics_requests(), rec.scrapes.len() - refused);
}

/// See: issue "Nothing counted that was not measured". A 200 that carries no sample is a
/// failed scrape of its own kind, and the reader and `inspect` count it as one.
#[test]
fn a_200_without_samples_is_an_empty_failure() {
    let _serial = crate::support::exclusive();
    let server = TestServer::start(|n| match n {
        1 => Reply::Empty,
        2 => Reply::NoSamples,
        _ => Reply::Metrics,
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    let summary = record(config(&server, &dir, 100, 600), None).unwrap();
    assert_eq!(summary.totals.scrapes_failed, 2);

    let rec = recording::open(&dir).unwrap();
    let st = statuses(&rec);
    use ScrapeStatus::*;
    assert_eq!(&st[..4], &[Ok, Empty, Empty, Ok], "{st:?}");
    let (empty, comments) = (&rec.scrapes[1].meta, &rec.scrapes[2].meta);
    assert_eq!(empty.http_status, Some(200));
    assert_eq!(empty.body_bytes, Some(0));
    assert_eq!(empty.sample_count, Some(0));
    assert!(
        empty.error.as_deref().unwrap().contains("empty body"),
        "{empty:?}"
    );
    assert!(comments.body_bytes.unwrap() > 0);
    assert!(
        comments.error.as_deref().unwrap().contains("no sample"),
        "{comments:?}"
    );
    assert!(rec.scrapes[1].samples.is_empty() && rec.scrapes[2].samples.is_empty());
    assert_eq!(
        rec.manifest.format_version,
        profile::recording::schema::FORMAT_VERSION
    );

    let seen = profile::inspect::inspect(&rec, "rec");
    assert_eq!(
        seen.scrapes_failed.get("empty"),
        Some(&2),
        "{:?}",
        seen.scrapes_failed
    );
    assert_eq!(seen.scrapes_ok, rec.scrapes.len() as u64 - 2);
}

#[test]
fn a_slow_answer_skips_ticks_without_shifting_later_ones() {
    let _serial = crate::support::exclusive();
    // Request 5 takes 180 ms at a 50 ms interval; the timeout is long enough to wait for it.
    let server = TestServer::start(|n| {
        if n == 5 {
            Reply::Stall(Duration::from_millis(180))
        } else {
            Reply::Metrics
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    let mut c = config(&server, &dir, 50, 1000);
    c.timeout = Duration::from_secs(1);
    record(c, None).unwrap();

    let rec = recording::open(&dir).unwrap();
    let seqs: Vec<u64> = rec.scrapes.iter().map(|s| s.meta.seq).collect();
    assert_eq!(&seqs[..6], &[0, 1, 2, 3, 4, 5], "{seqs:?}");
    // Tick 5 ran until ~430 ms, so ticks 6..=8 were skipped, and tick 9 (450 ms) came next.
    assert!(seqs[6] >= 8 && seqs[6] <= 10, "{seqs:?}");
    assert!(statuses(&rec).iter().all(|s| *s == ScrapeStatus::Ok));
    assert_eq!(server.metrics_requests(), rec.scrapes.len());
    // Every tick, after the stall too, was requested at start + seq * interval.
    for s in &rec.scrapes {
        let due = s.meta.seq as i64 * 50_000_000;
        let late = s.meta.requested_mono.0 - due;
        assert!(
            (0..40_000_000).contains(&late),
            "seq {} requested {} ms late",
            s.meta.seq,
            late / 1_000_000
        );
    }
}

#[test]
fn a_stop_request_ends_recording_quickly_and_cleanly() {
    let _serial = crate::support::exclusive();
    let server = TestServer::start(|_| Reply::Metrics);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    let mut c = config(&server, &dir, 50, 60_000);
    c.duration = None;
    let recorder = Recorder::start(
        c,
        Some(Box::new(FakeGpuSource::new(vec![FakeGpuSource::device(
            0, "A",
        )]))),
    )
    .unwrap();
    assert_eq!(recorder.dir(), dir);
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        recorder.progress().scrapes_ok >= 3,
        "{:?}",
        recorder.progress()
    );
    let t0 = now();
    recorder.stop_handle().stop(StopReason::Interrupt);
    let summary = recorder.wait().unwrap();
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(summary.stop_reason, StopReason::Interrupt);
    let rec = recording::open(&dir).unwrap();
    assert_eq!(rec.manifest.stop_reason.as_deref(), Some("interrupt"));
    assert_eq!(rec.scrapes.len() as u64, summary.totals.scrapes);
    assert_eq!(rec.gpu_polls.len() as u64, summary.totals.gpu_polls);
}

#[test]
fn an_unreachable_server_is_recorded_as_failed_scrapes() {
    let _serial = crate::support::exclusive();
    let port = crate::support::refused_port();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    let mut c = RecordConfig::new(format!("http://127.0.0.1:{port}/metrics"));
    c.out_dir = Some(dir.clone());
    c.interval = 50 * MS;
    c.timeout = 40 * MS;
    c.duration = Some(400 * MS);
    let summary = record(c, None).unwrap();
    assert!(summary.totals.scrapes >= 6);
    assert_eq!(summary.totals.scrapes, summary.totals.scrapes_failed);
    let rec = recording::open(&dir).unwrap();
    assert!(
        statuses(&rec).iter().all(|s| *s == ScrapeStatus::Connect),
        "{:?}",
        statuses(&rec)
    );
    assert_eq!(rec.manifest.vllm_version, None);
    assert_eq!(rec.manifest.model_name, None);
}

#[test]
fn a_write_failure_stops_recording_and_keeps_finished_files() {
    let _serial = crate::support::exclusive();
    let server = TestServer::start(|_| Reply::Metrics);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    let mut c = config(&server, &dir, 50, 60_000);
    c.duration = None;
    c.rotate = 200 * MS;
    let gpu = FakeGpuSource::new(vec![FakeGpuSource::device(0, "A")]);
    let recorder = Recorder::start(c, Some(Box::new(gpu))).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // Moving the directory away makes the next rotation fail, as a vanished disk would.
    let moved = tmp.path().join("moved");
    std::fs::rename(&dir, &moved).unwrap();
    let t0 = now();
    while !recorder.is_finished() {
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "still recording after a write failure"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = recorder.wait().unwrap_err();
    assert!(matches!(err, RecordError::Write(_)), "{err}");
    // The chain names the file and says the OS error once (it used to repeat it).
    let chain = format!("{:#}", anyhow::Error::new(err));
    assert!(chain.contains("rec"), "{chain}");
    assert_eq!(chain.matches("os error").count(), 1, "{chain}");
    // What was finished before the failure is intact.
    let rec = recording::open(&moved).unwrap();
    assert!(
        rec.files.iter().all(|f| f.problem.is_none()),
        "{:?}",
        rec.files
    );
    assert!(rec.scrapes.len() >= 4, "{}", rec.scrapes.len());
    assert!(!rec.gpu_polls.is_empty());
}

mod cli {
    use super::*;
    use crate::support::process::{profile_cmd, Process};

    #[test]
    fn duration_run_prints_the_path_and_rewrites_the_manifest() {
        let _serial = crate::support::exclusive();
        let server = TestServer::start(|_| Reply::Metrics);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rec");
        let out = Process::start(
            profile_cmd()
                .args([
                    "record",
                    "--url",
                    &server.url(),
                    "--duration",
                    "600ms",
                    "--interval",
                    "100ms",
                ])
                .args(["-m", "64", "--out"])
                .arg(&dir)
                .env("VLLM_DTYPE", "fp8"),
        )
        .finish();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            dir.display().to_string()
        );
        let rec = recording::open(&dir).unwrap();
        let m = &rec.manifest;
        assert!(m.totals.is_some());
        assert_eq!(m.stop_reason.as_deref(), Some("duration"));
        assert_eq!(
            m.analysis_inputs.max_num_seqs.as_ref().map(|s| s.value),
            Some(64)
        );
        assert_eq!(
            m.analysis_inputs.dtype.as_ref().map(|s| s.source.as_str()),
            Some("VLLM_DTYPE")
        );
        // Without NVML (CI), one line says so and the manifest notes it.
        if m.gpus.is_empty() {
            assert_eq!(stderr.matches("no GPU data").count(), 1, "{stderr}");
            assert!(m.gpu_note.as_deref().unwrap().contains("NVML"), "{m:?}");
        }
        // Not a terminal: nothing else on stderr.
        assert!(stderr.lines().count() <= 1, "{stderr}");
    }

    #[test]
    fn refuses_a_non_empty_directory() {
        let _serial = crate::support::exclusive();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("keep.txt"), "mine").unwrap();
        let out = profile_cmd()
            .args([
                "record",
                "--url",
                "http://127.0.0.1:9/metrics",
                "--gpus",
                "none",
                "--out",
            ])
            .arg(tmp.path())
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("keep.txt")).unwrap(),
            "mine"
        );
    }

    /// A stop signal finishes the files and rewrites the manifest with its own reason.
    fn stops_cleanly_on(signal: &str, reason: &str) {
        let server = TestServer::start(|_| Reply::Metrics);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rec");
        let mut recorder = Process::start(
            profile_cmd()
                .args([
                    "record",
                    "--url",
                    &server.url(),
                    "--interval",
                    "100ms",
                    "--gpus",
                    "none",
                ])
                .arg("--out")
                .arg(&dir),
        );
        recorder.wait_until("scraped 3 times", Duration::from_secs(8), || {
            server.metrics_requests() >= 3
        });
        recorder.signal(signal);
        let out = recorder.finish();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            dir.display().to_string()
        );
        let rec = recording::open(&dir).unwrap();
        let totals = rec
            .manifest
            .totals
            .as_ref()
            .expect("totals after the signal");
        assert_eq!(rec.manifest.stop_reason.as_deref(), Some(reason));
        assert_eq!(totals.scrapes as usize, rec.scrapes.len());
        assert!(rec.scrapes.len() >= 3);
    }

    /// SIGTERM is stored as `terminate`, not as the `interrupt` of Ctrl-C.
    /// See: issue "Nothing counted that was not measured".
    #[test]
    fn sigterm_stops_cleanly() {
        let _serial = crate::support::exclusive();
        stops_cleanly_on("-TERM", "terminate");
    }

    /// SIGINT (Ctrl-C) finishes the files and is stored as `interrupt`.
    #[test]
    fn sigint_stops_cleanly() {
        let _serial = crate::support::exclusive();
        stops_cleanly_on("-INT", "interrupt");
    }

    /// A second Ctrl-C while the first one waits for a scrape in flight exits at once, 130.
    #[test]
    fn a_second_ctrl_c_exits_at_once() {
        let _serial = crate::support::exclusive();
        // From the second request on, each answer takes 20 s: the first Ctrl-C cannot finish
        // while one is in flight, so only the second one can end the process in this test.
        let server = TestServer::start(|n| {
            if n == 0 {
                Reply::Metrics
            } else {
                Reply::Stall(Duration::from_secs(20))
            }
        });
        let tmp = tempfile::tempdir().unwrap();
        let mut recorder = Process::start(
            profile_cmd()
                .args(["record", "--url", &server.url(), "--gpus", "none"])
                .args(["--interval", "100ms", "--timeout", "30s", "--out"])
                .arg(tmp.path().join("rec")),
        );
        recorder.wait_until("scraped twice", Duration::from_secs(8), || {
            server.metrics_requests() >= 2
        });
        for _ in 0..2 {
            recorder.signal("-INT");
            std::thread::sleep(Duration::from_millis(200));
        }
        let status = recorder.finish().status;
        assert_eq!(status.code(), Some(130), "{status:?}");
    }

    /// A run in which no scrape succeeded fails with one line saying why, the OS error once.
    /// See: issue "Nothing counted that was not measured".
    #[test]
    fn no_successful_scrape_fails_with_a_summary() {
        let _serial = crate::support::exclusive();
        let port = crate::support::refused_port();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rec");
        let out = Process::start(
            profile_cmd()
                .args([
                    "record",
                    "--url",
                    &format!("http://127.0.0.1:{port}/metrics"),
                ])
                .args([
                    "--duration",
                    "500ms",
                    "--interval",
                    "100ms",
                    "--gpus",
                    "none",
                ])
                .arg("--out")
                .arg(&dir),
        )
        .finish();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let line = stderr
            .lines()
            .find(|l| l.contains("none succeeded"))
            .unwrap_or_else(|| panic!("{stderr}"));
        assert!(
            line.contains("recorded ") && line.contains("connect "),
            "{line}"
        );
        assert_eq!(line.matches("os error").count(), 1, "{line}");
        // The failures are still a recording: the evidence is kept.
        let rec = recording::open(&dir).unwrap();
        assert!(!rec.scrapes.is_empty());
        assert!(rec
            .scrapes
            .iter()
            .all(|s| s.meta.status == ScrapeStatus::Connect));
    }

    /// A failure before the first tick says that nothing was recorded, not that finished files
    /// were kept, and names the OS error once.
    #[test]
    fn a_start_up_failure_says_nothing_was_recorded() {
        let _serial = crate::support::exclusive();
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        let unwritable = file.join("rec");
        // (URL, directory, OS errors in the message): an uncreatable directory, a bad URL.
        let runs: [(&str, &Path, usize); 2] = [
            ("http://127.0.0.1:9/metrics", &unwritable, 1),
            ("127.0.0.1:9/metrics", &tmp.path().join("rec"), 0),
        ];
        for (url, dir, os_errors) in runs {
            let out = profile_cmd()
                .args(["record", "--url", url, "--gpus", "none", "--out"])
                .arg(dir)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            assert!(stderr.contains("nothing was recorded"), "{stderr}");
            assert!(!stderr.contains("kept"), "{stderr}");
            assert_eq!(stderr.matches("os error").count(), os_errors, "{stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(out.stdout.is_empty());
        }
    }

    /// A SIGKILLed recorder loses at most its in-memory segment: every file under a real name
    /// is whole and reads back.
    #[test]
    fn sigkill_leaves_only_whole_files() {
        let _serial = crate::support::exclusive();
        let server = TestServer::start(|_| Reply::Metrics);
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rec");
        let mut recorder = Process::start(
            profile_cmd()
                .args([
                    "record",
                    "--url",
                    &server.url(),
                    "--rotate",
                    "1s",
                    "--interval",
                    "100ms",
                    "--gpus",
                    "none",
                ])
                .arg("--out")
                .arg(&dir),
        );
        recorder.wait_until("rotated twice", Duration::from_secs(8), || {
            files_named(&dir, "scrapes-").len() >= 2
        });
        recorder.signal("-KILL");
        recorder.finish();

        for name in files_named(&dir, "") {
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            assert!(
                bytes.len() > 8 && bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"),
                "{name} is truncated"
            );
        }
        let rec = recording::open(&dir).unwrap();
        assert!(
            rec.files.iter().all(|f| f.problem.is_none()),
            "{:?}",
            rec.files
        );
        assert!(rec.scrapes.len() >= 15, "{} scrapes", rec.scrapes.len());
        assert!(rec
            .scrapes
            .iter()
            .all(|s| s.meta.status == ScrapeStatus::Ok));
        // Killed: the start manifest only.
        assert_eq!(rec.manifest.stopped_at_ns, None);
        assert_eq!(rec.manifest.totals, None);
    }
}

/// A server that dies mid-recording and never comes back leads the analysis with "down", and
/// not with whatever the rules make of its last windows.
/// See: the issue "Nothing counted that was not measured", item 5.
#[test]
fn a_server_that_dies_is_reported_down_and_not_back() {
    let _serial = crate::support::exclusive();
    let server = TestServer::start(|n| {
        if n < 12 {
            Reply::Metrics
        } else {
            Reply::ThenRefuse(Duration::from_secs(600))
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rec");
    record(config(&server, &dir, 100, 4000), None).unwrap();
    let rec = recording::open(&dir).unwrap();
    let catalog = profile::catalog::Catalog::embedded().unwrap();
    let report =
        profile::analyze::analyze(&rec, &catalog, &profile::analyze::AnalyzeConfig::default())
            .unwrap();
    let down = report
        .availability
        .iter()
        .find(|a| a.kind == profile::availability::AvailabilityKind::Down)
        .unwrap_or_else(|| panic!("no down finding: {:?}", report.availability));
    assert_eq!(down.recovered, Some(false));
    assert!(
        down.by_kind.get("connect").copied().unwrap_or(0) > 10,
        "{down:?}"
    );
    assert!(down.at_s > 0.5 && down.at_s < 2.0, "{down:?}");
    let text = profile::report::render_text(&report, false);
    let first: Vec<&str> = text.lines().take(8).collect();
    assert!(
        first.iter().any(|l| l.contains("Endpoint down")),
        "{}",
        first.join("\n")
    );
}
