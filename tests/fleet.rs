//! Fleets (issue 13): several servers recorded as one recording, each on its own schedule,
//! analysed into a fleet table and each target's own report.

use crate::support::http::{HttpServer, Response};
use crate::support::process::{profile_cmd, Process};
use crate::support::{profile, refused_port, stdout_of};
use profile::recording::fleet::targets;
use profile::report::fleet::FleetReport;
use profile::report::Report;
use std::path::Path;

const LOAD: &str = include_str!("fixtures/metrics/vllm-0.32-cpu-load.txt");
const IDLE: &str = include_str!("fixtures/metrics/vllm-0.32-cpu-idle.txt");

fn serve(body: &'static str) -> HttpServer {
    HttpServer::start(move |_| Response::new(200, body))
}

/// Two live targets and one whose port refuses connections, 2 s at 250 ms: the live ones
/// record every tick, the dead one records only failures and shows as down, and each target's
/// report in the fleet equals the report of its directory analysed alone.
#[test]
fn fleet_with_a_dead_target_records_the_live_ones_on_schedule() {
    let _serial = crate::support::exclusive();
    let (a, b) = (serve(LOAD), serve(IDLE));
    let dead = format!("http://127.0.0.1:{}/metrics", refused_port());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fleet");
    let list = tmp.path().join("targets.txt");
    std::fs::write(
        &list,
        format!(
            "# two live, one dead\n{} busy -m 4\n\n{dead} gone\n",
            a.url("/metrics")
        ),
    )
    .unwrap();
    let out = Process::start(
        profile_cmd()
            .args(["record", "--url", &b.url("/metrics"), "--targets"])
            .arg(&list)
            .args([
                "--duration",
                "2s",
                "--interval",
                "250ms",
                "--gpus",
                "none",
                "-m",
                "8",
            ])
            .arg("--out")
            .arg(&dir),
    )
    .finish();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let t = targets(&dir).unwrap();
    let names: Vec<&str> = t.iter().map(|t| t.name.as_str()).collect();
    let b_name = b
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    assert_eq!(names, [b_name.as_str(), "busy", "gone"]);
    let manifest = profile::recording::open(&dir).unwrap().manifest;
    assert_eq!(
        manifest.format_version,
        profile::recording::schema::FORMAT_VERSION
    );
    assert_eq!(manifest.targets.len(), 3);
    // The target's own -m beats the fleet-wide one; the others take the flag.
    let cap = |i: usize| {
        manifest.targets[i]
            .analysis_inputs
            .max_num_seqs
            .as_ref()
            .map(|s| s.value)
    };
    assert_eq!((cap(0), cap(1), cap(2)), (Some(8), Some(4), Some(8)));

    for (i, target) in t.iter().enumerate() {
        let rec = profile::recording::open(&target.dir).unwrap();
        let ok = rec.scrapes.iter().filter(|s| s.is_usable()).count();
        if i < 2 {
            // 2 s at 250 ms is 8 ticks; a loaded CI machine may skip one.
            assert!(
                rec.scrapes.len() >= 7 && ok == rec.scrapes.len(),
                "{}: {ok}",
                target.name
            );
            let seqs: Vec<u64> = rec.scrapes.iter().map(|s| s.meta.seq).collect();
            assert_eq!(seqs[0], 0, "{}", target.name);
        } else {
            assert!(
                rec.scrapes.len() >= 7 && ok == 0,
                "dead target: {ok} good scrapes"
            );
        }
    }

    let text = stdout_of(&["analyze", dir.to_str().unwrap(), "--color", "never"]);
    assert!(text.starts_with("Fleet "), "{text}");
    assert!(text.contains("3 targets, 2 up"), "{text}");
    for name in &names {
        assert!(
            text.contains(&format!("=== target {name} (")),
            "{name} missing"
        );
    }
    assert!(text.contains("DOWN: no scrape succeeded"), "{text}");

    let fleet: FleetReport =
        serde_json::from_str(&stdout_of(&["analyze", dir.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!(fleet.rows.len(), 3);
    assert_eq!(
        fleet.rows.iter().map(|r| r.up).collect::<Vec<_>>(),
        [true, true, false]
    );
    assert_eq!(fleet.totals.targets_up, 2);
    for (i, target) in t.iter().enumerate() {
        let alone: Report = serde_json::from_str(&stdout_of(&[
            "analyze",
            target.dir.to_str().unwrap(),
            "--json",
        ]))
        .unwrap();
        assert_eq!(fleet.targets[i].report, alone, "{}", target.name);
        let picked: Report = serde_json::from_str(&stdout_of(&[
            "analyze",
            dir.to_str().unwrap(),
            "--target",
            &target.name,
            "--json",
        ]))
        .unwrap();
        assert_eq!(picked, alone, "--target {}", target.name);
    }
    let err = profile()
        .args(["analyze", dir.to_str().unwrap(), "--target", "nope"])
        .output()
        .unwrap();
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("no target named \"nope\""));
}

/// A recording made before format 1.3 is one target: the directory itself.
#[test]
fn a_pre_fleet_recording_reads_as_one_target() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("recordings/vllm-cpu-0.32-kv-pressure");
    let version = profile::recording::open(&dir)
        .unwrap()
        .manifest
        .format_version;
    assert!(version.as_str() < "1.3", "{version}");
    let t = targets(&dir).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].dir, dir);
}

/// A bad targets file stops `record` before anything is written, naming file and line.
#[test]
fn a_bad_targets_file_names_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let list = tmp.path().join("t.txt");
    std::fs::write(
        &list,
        "http://127.0.0.1:1/metrics a\nhttp://127.0.0.1:2/metrics b -m x\n",
    )
    .unwrap();
    let out = profile()
        .args(["record", "--gpus", "none", "--targets"])
        .arg(&list)
        .arg("--out")
        .arg(tmp.path().join("rec"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:2: -m \"x\"", list.display())),
        "{err}"
    );
    assert!(!tmp.path().join("rec").exists());
}

/// Records `urls` as one fleet for `secs` seconds at 250 ms with cap 8 and returns the fleet
/// report.
fn record_fleet(dir: &Path, urls: &[String], secs: u32) -> FleetReport {
    let mut cmd = profile_cmd();
    cmd.arg("record");
    for u in urls {
        cmd.args(["--url", u]);
    }
    let out = Process::start(
        cmd.args(["--duration", &format!("{secs}s"), "--interval", "250ms"])
            .args(["--gpus", "none", "-m", "8", "--out"])
            .arg(dir),
    )
    .finish();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout_of(&["analyze", dir.to_str().unwrap(), "--json"])).unwrap()
}

/// Two replicas of one model, one queueing at its cap (8 running of 8, 16 waiting) while the
/// other idles, for 8 s: the replica-imbalance finding names both and says the router is the
/// fix. Two replicas both queueing, recorded at the same time, stay silent.
#[test]
fn replica_imbalance_fires_on_a_queue_beside_free_slots_and_not_on_balanced_replicas() {
    let _serial = crate::support::exclusive();
    let (busy, calm) = (serve(LOAD), serve(IDLE));
    let (twin_a, twin_b) = (serve(LOAD), serve(LOAD));
    let tmp = tempfile::tempdir().unwrap();
    let (d1, d2) = (tmp.path().join("imbalanced"), tmp.path().join("balanced"));
    let urls1 = [busy.url("/metrics"), calm.url("/metrics")];
    let urls2 = [twin_a.url("/metrics"), twin_b.url("/metrics")];
    let balanced = std::thread::spawn(move || record_fleet(&d2, &urls2, 8));
    let fleet = record_fleet(&d1, &urls1, 8);
    let balanced = balanced.join().unwrap();

    let out = &fleet.replica_imbalance;
    assert_eq!(out.findings.len(), 1, "{out:?}");
    let f = &out.findings[0];
    assert_eq!(f.model, "tiny-llama");
    assert_eq!(f.busy, fleet.rows[0].name);
    assert_eq!(f.idle, fleet.rows[1].name);
    assert!(
        f.cells_fired >= 3 && f.cells_fired == f.cells_shared,
        "{f:?}"
    );
    assert_eq!((f.busy_running_mean, f.busy_waiting_mean), (8.0, 16.0));
    assert_eq!(f.idle_running_mean, 0.0);
    assert!(f.fix.starts_with("Route by load"), "{}", f.fix);

    let text = stdout_of(&["analyze", tmp.path().join("imbalanced").to_str().unwrap()]);
    assert!(
        text.contains(&format!(
            "Replica imbalance (tiny-llama): {} queued",
            f.busy
        )),
        "{text}"
    );

    assert!(balanced.replica_imbalance.findings.is_empty());
    assert!(balanced
        .replica_imbalance
        .silent_reason
        .as_deref()
        .is_some_and(|r| r.starts_with("not triggered")));
}

/// A replica whose generation counter grows by `per_scrape` tokens at every scrape (the load
/// body otherwise: 8 running, KV 4%).
fn growing(per_scrape: f64) -> HttpServer {
    let n = std::sync::atomic::AtomicU64::new(0);
    let line = "vllm:generation_tokens_total{engine=\"0\",model_name=\"tiny-llama\"} 7969.0";
    assert!(LOAD.contains(line));
    HttpServer::start(move |_| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as f64;
        let now = format!(
            "vllm:generation_tokens_total{{engine=\"0\",model_name=\"tiny-llama\"}} {:.1}",
            7969.0 + i * per_scrape
        );
        Response::new(200, LOAD.replace(line, &now))
    })
}

/// Two fleets compared target by target: `a` doubled its throughput, `b` lost half of it,
/// `c` is new. The fleet is WORSE (one target got worse), `--fail-on worse` exits 1, each
/// matched target carries its own comparison, and the totals sit side by side.
#[test]
fn compare_of_two_fleets_matches_targets_by_name() {
    let _serial = crate::support::exclusive();
    let tmp = tempfile::tempdir().unwrap();
    let list = |path: &Path, rows: &[(&HttpServer, &str)]| {
        let text: String = rows
            .iter()
            .map(|(s, name)| format!("{} {name}\n", s.url("/metrics")))
            .collect();
        std::fs::write(path, text).unwrap();
    };
    let record = |targets: &Path, out: &Path| {
        let o = Process::start(
            profile_cmd()
                .args(["record", "--targets"])
                .arg(targets)
                .args(["--duration", "5s", "--interval", "250ms", "--gpus", "none"])
                .args(["-m", "8", "--out"])
                .arg(out),
        )
        .finish();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let (a0, b0) = (growing(100.0), growing(100.0));
    let (a1, b1, c1) = (growing(200.0), growing(50.0), growing(100.0));
    let (lb, la) = (tmp.path().join("before.txt"), tmp.path().join("after.txt"));
    list(&lb, &[(&a0, "a"), (&b0, "b")]);
    list(&la, &[(&a1, "a"), (&b1, "b"), (&c1, "c")]);
    let (before, after) = (tmp.path().join("before"), tmp.path().join("after"));
    std::thread::scope(|s| {
        s.spawn(|| record(&lb, &before));
        record(&la, &after);
    });

    let json = stdout_of(&[
        "compare",
        before.to_str().unwrap(),
        after.to_str().unwrap(),
        "--json",
    ]);
    let c: profile::compare::fleet::FleetComparison = serde_json::from_str(&json).unwrap();
    use profile::compare::fleet::Presence;
    use profile::compare::Direction;
    let dir_of = |name: &str| {
        let t = c.targets.iter().find(|t| t.name == name).unwrap();
        (
            t.present,
            t.comparison.as_ref().map(|c| c.verdict.direction),
        )
    };
    assert_eq!(dir_of("a"), (Presence::Both, Some(Direction::Better)));
    assert_eq!(dir_of("b"), (Presence::Both, Some(Direction::Worse)));
    assert_eq!(dir_of("c"), (Presence::AfterOnly, None));
    assert_eq!(c.direction, Direction::Worse);
    assert_eq!(c.counts, (1, 0, 1));
    let tput = c
        .totals
        .iter()
        .find(|m| m.key == "generation_tokens_per_s")
        .unwrap();
    // Before: 2 x 400 tok/s; after: 800 + 200 + 400.
    let near = |v: Option<f64>, want: f64| v.is_some_and(|v| (v - want).abs() < want * 0.15);
    assert!(
        near(tput.before, 800.0) && near(tput.after, 1400.0),
        "{tput:?}"
    );
    let up = c.totals.iter().find(|m| m.key == "targets_up").unwrap();
    assert_eq!((up.before, up.after), (Some(2.0), Some(3.0)));

    let out = profile()
        .args(["compare", before.to_str().unwrap(), after.to_str().unwrap()])
        .args(["--fail-on", "worse", "--color", "never"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("fleet direction: WORSE (1 better, 0 plateau, 1 worse"),
        "{text}"
    );
    assert!(text.contains("=== target a ===") && text.contains("=== target b ==="));
    assert!(text.contains("in the later fleet only"), "{text}");

    // One target of each, through --target, is the single comparison.
    let one = stdout_of(&[
        "compare",
        before.to_str().unwrap(),
        after.to_str().unwrap(),
        "--target",
        "a",
        "--json",
    ]);
    let one: profile::compare::Comparison = serde_json::from_str(&one).unwrap();
    assert_eq!(one.verdict.direction, Direction::Better);
    // A fleet against one server is refused with the way out.
    let err = profile()
        .args(["compare", before.to_str().unwrap()])
        .arg(before.join("targets/000"))
        .output()
        .unwrap();
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("--target"));
}
