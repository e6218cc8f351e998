//! A scripted stand-in for vLLM's `/metrics`, on the shared test server
//! (`tests/support/http.rs`): each `/metrics` request gets the reply the script gives for its
//! number (from 0), so tests can make it fail in every way a real server does and check what
//! the recorder made of it.

use crate::support::http::{HttpServer, Response};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The capture the bodies are built from (real vLLM 0.32.0, idle), kept in the repository.
const REFERENCE: &str = include_str!("../fixtures/metrics/vllm-0.32-cpu-idle.txt");

/// What to answer one `/metrics` request with.
#[derive(Debug, Clone)]
#[allow(dead_code)] // not every test uses every reply
pub enum Reply {
    /// 200 with a real-looking body whose values change with the request number.
    Metrics,
    /// This status with a short text body.
    Status(u16),
    /// 200 with a body that is not Prometheus text.
    Garbage,
    /// 200 with a body that is not UTF-8.
    NotUtf8,
    /// Wait this long, then answer `Metrics`.
    Stall(Duration),
    /// 200 with a body of this many bytes.
    Oversize(usize),
    /// Answer `Metrics` with `Connection: close`, then refuse connections for this long.
    ThenRefuse(Duration),
    /// 200 with an empty body.
    Empty,
    /// 200 with a body of comments only: valid Prometheus text holding no sample.
    NoSamples,
}

/// One request the server saw.
pub type Hit = crate::support::http::Request;

/// A running server; stops when dropped.
pub struct TestServer {
    server: HttpServer,
    metrics_requests: Arc<AtomicUsize>,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl TestServer {
    /// Starts a server answering `/metrics` request `n` with `script(n)`.
    pub fn start(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> TestServer {
        let metrics_requests = Arc::new(AtomicUsize::new(0));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let (m, h) = (Arc::clone(&metrics_requests), Arc::clone(&hits));
        let server = HttpServer::start(move |req| {
            h.lock().unwrap().push(req.clone());
            match req.path.as_str() {
                "/version" => Response::new(200, br#"{"version":"0.32.0-test"}"#.to_vec()),
                "/metrics" => {
                    let n = m.fetch_add(1, Ordering::SeqCst);
                    reply(script(n), n)
                }
                _ => Response::new(404, b"not found\n".to_vec()),
            }
        });
        TestServer {
            server,
            metrics_requests,
            hits,
        }
    }

    /// The metrics URL.
    pub fn url(&self) -> String {
        self.server.url("/metrics")
    }

    /// How many `/metrics` requests arrived.
    pub fn metrics_requests(&self) -> usize {
        self.metrics_requests.load(Ordering::SeqCst)
    }

    /// Every request seen, in arrival order.
    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

/// The answer to `/metrics` request `n`.
fn reply(r: Reply, n: usize) -> Response {
    let metrics = || metrics_body(REFERENCE, n).into_bytes();
    match r {
        Reply::Metrics => Response::new(200, metrics()),
        Reply::Status(code) => Response::new(code, b"something broke\n".to_vec()),
        Reply::Garbage => Response::new(200, b"<html><body>not metrics</body></html>\n".to_vec()),
        Reply::NotUtf8 => Response::new(200, b"vllm:x 1\n\xff\xfe\n".to_vec()),
        Reply::Stall(d) => {
            std::thread::sleep(d);
            Response::new(200, metrics())
        }
        Reply::Oversize(len) => Response::new(200, vec![b'#'; len]),
        Reply::Empty => Response::new(200, Vec::new()),
        Reply::NoSamples => Response::new(
            200,
            b"# HELP vllm:x Nothing yet.\n# TYPE vllm:x gauge\n".to_vec(),
        ),
        Reply::ThenRefuse(d) => Response {
            then_refuse: Some(d),
            ..Response::new(200, metrics())
        },
    }
}

/// The reference body with a few values changed for request `n`, as a server under load would.
fn metrics_body(reference: &str, n: usize) -> String {
    let mut out = String::with_capacity(reference.len() + 64);
    for line in reference.lines() {
        let changed = [
            "vllm:num_requests_running{",
            "vllm:kv_cache_usage_perc{",
            "process_cpu_seconds_total ",
        ]
        .iter()
        .position(|p| line.starts_with(p));
        match (changed, line.rfind(' ')) {
            (Some(which), Some(space)) => {
                let value = match which {
                    0 => (n % 5) as f64,
                    1 => (n % 10) as f64 / 10.0,
                    _ => 7.75 + n as f64 * 0.01,
                };
                out.push_str(&line[..space]);
                out.push_str(&format!(" {value:?}"));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}
