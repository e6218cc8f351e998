//! `profile diagnose` end to end: the binary records a live HTTP server inside the test, with
//! answers piped into stdin. The server's throughput changes with each recording (it counts
//! the recorder's one `GET /version` per start), so the loop sees Better, then Worse.

use crate::support::http::{HttpServer, Response};
use crate::support::profile;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[allow(clippy::disallowed_methods)] // the test server keeps its own time
fn now() -> Instant {
    Instant::now()
}

/// Generated tokens per second in each phase (recording 0, 1, 2, ...; the last repeats).
const RATES: [f64; 3] = [100.0, 200.0, 50.0];

struct Counter {
    last: Instant,
    tokens: f64,
}

struct State {
    /// `GET /version` requests seen: one per recording started.
    starts: AtomicUsize,
    counter: Mutex<Counter>,
}

/// A vLLM-like `/metrics` server whose generation rate follows [`RATES`].
struct Server {
    /// Kept so the server lives as long as the test.
    _http: HttpServer,
    url: String,
    state: Arc<State>,
}

impl Server {
    fn start() -> Server {
        let state = Arc::new(State {
            starts: AtomicUsize::new(0),
            counter: Mutex::new(Counter {
                last: now(),
                tokens: 0.0,
            }),
        });
        let s = Arc::clone(&state);
        let http = HttpServer::start(move |req| match req.path.as_str() {
            "/version" => {
                s.starts.fetch_add(1, Ordering::SeqCst);
                Response::new(200, r#"{"version":"0.32.0-test"}"#)
            }
            "/metrics" => Response::new(200, body(&s)),
            _ => Response::new(404, "not found\n"),
        });
        let url = http.url("/metrics");
        Server {
            _http: http,
            url,
            state,
        }
    }
}

fn body(state: &State) -> String {
    let phase = state.starts.load(Ordering::SeqCst).saturating_sub(1);
    let rate = RATES[phase.min(RATES.len() - 1)];
    let tokens = {
        let mut c = state.counter.lock().unwrap();
        let t = now();
        c.tokens += rate * (t - c.last).as_secs_f64();
        c.last = t;
        c.tokens
    };
    let l = "engine=\"0\",model_name=\"tiny\"";
    format!(
        "# TYPE vllm:num_requests_running gauge\n\
         vllm:num_requests_running{{{l}}} 4\n\
         # TYPE vllm:num_requests_waiting gauge\n\
         vllm:num_requests_waiting{{{l}}} 0\n\
         # TYPE vllm:kv_cache_usage_perc gauge\n\
         vllm:kv_cache_usage_perc{{{l}}} 0.5\n\
         # TYPE vllm:generation_tokens_total counter\n\
         vllm:generation_tokens_total{{{l}}} {tokens}\n"
    )
}

fn diagnose(server: &Server, save: &Path, extra: &[&str], stdin: &str) -> (i32, String, String) {
    let out = profile()
        .args(["diagnose", "--url", &server.url])
        .args(["--duration", "1s", "--interval", "100ms", "--gpus", "none"])
        .arg("--save")
        .arg(save)
        .args(extra)
        .write_stdin(stdin)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn the_loop_driven_by_scripted_stdin_sees_better_then_worse() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let save = tmp.path().join("session");
    // Enter (measure 1: Better), Enter (measure 2: Worse), c (continue), q.
    let (code, out, err) = diagnose(&server, &save, &["--loop"], "\n\nc\nq\n");
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let directions: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("direction: "))
        .collect();
    assert_eq!(directions.len(), 2, "{out}");
    assert!(
        directions[0].starts_with("BETTER (throughput fallback)"),
        "{directions:?}"
    );
    assert!(
        directions[1].starts_with("WORSE (throughput fallback)"),
        "{directions:?}"
    );
    assert!(out.contains("== iteration 2 vs its baseline =="), "{out}");
    assert!(out.contains("since iteration 0: WORSE"), "{out}");
    assert!(err.contains("[r]evert"), "{err}");
    assert!(err.contains("Baseline is now iteration 2."), "{err}");
    assert!(
        err.contains("Done: 3 measurements; the baseline is iteration 2."),
        "{err}"
    );
    for i in 0..3 {
        let m = save.join(format!("iter-{i}")).join("manifest.json");
        assert!(m.is_file(), "{} missing", m.display());
    }
    assert!(!save.join("iter-3").exists());
    assert_eq!(server.state.starts.load(Ordering::SeqCst), 3);

    // The saved recordings compare the same way afterwards.
    let out = profile()
        .arg("compare")
        .arg(save.join("iter-0"))
        .arg(save.join("iter-1"))
        .args(["--fail-on", "plateau"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("direction: BETTER"));
}

#[test]
fn without_the_loop_it_measures_once_and_prints_the_report_json() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let save = tmp.path().join("once");
    let (code, out, err) = diagnose(&server, &save, &["--json"], "q\n");
    assert_eq!(code, 0, "{err}");
    let report: profile::report::Report = serde_json::from_str(&out).unwrap();
    assert_eq!(report.recording.model_name.as_deref(), Some("tiny"));
    assert!(report
        .metrics
        .generation_tokens_per_s
        .is_some_and(|t| t > 50.0));
    assert!(save.join("iter-0/manifest.json").is_file());
    assert!(
        !err.contains("press Enter"),
        "no prompt without --loop: {err}"
    );

    // An occupied --save directory is refused before anything is recorded.
    let (code, _, err) = diagnose(&server, &save, &[], "");
    assert_eq!(code, 2);
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(server.state.starts.load(Ordering::SeqCst), 1);
}

#[test]
fn end_of_input_at_the_first_prompt_ends_the_loop() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = diagnose(&server, &tmp.path().join("s"), &["--loop"], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("== iteration 0:"), "{out}");
    assert!(!out.contains("direction:"), "{out}");
    assert!(err.contains("(end of input)"), "{err}");
}
