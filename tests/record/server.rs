//! A tiny scripted HTTP/1.1 server on 127.0.0.1 standing in for vLLM's `/metrics`: each
//! `/metrics` request gets the reply the script gives for its number (from 0), so tests can
//! make it fail in every way a real server does and check what the recorder made of it.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub struct Hit {
    /// Request path.
    pub path: String,
    /// The `Authorization` header, if sent.
    pub authorization: Option<String>,
    /// The `Accept` header, if sent.
    pub accept: Option<String>,
}

struct State {
    script: Box<dyn Fn(usize) -> Reply + Send + Sync>,
    metrics_requests: AtomicUsize,
    hits: Mutex<Vec<Hit>>,
    refuse_for: Mutex<Option<Duration>>,
    stop: AtomicBool,
    reference: String,
}

/// A running server; stops when dropped.
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<State>,
}

impl TestServer {
    /// Starts a server answering `/metrics` request `n` with `script(n)`.
    pub fn start(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            script: Box::new(script),
            metrics_requests: AtomicUsize::new(0),
            hits: Mutex::new(Vec::new()),
            refuse_for: Mutex::new(None),
            stop: AtomicBool::new(false),
            reference: REFERENCE.to_string(),
        });
        let s = Arc::clone(&state);
        std::thread::spawn(move || accept_loop(listener, addr, &s));
        TestServer { addr, state }
    }

    /// The metrics URL.
    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }

    /// How many `/metrics` requests arrived.
    pub fn metrics_requests(&self) -> usize {
        self.state.metrics_requests.load(Ordering::SeqCst)
    }

    /// Every request seen, in arrival order.
    pub fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
    }
}

fn accept_loop(mut listener: TcpListener, addr: SocketAddr, state: &Arc<State>) {
    while !state.stop.load(Ordering::SeqCst) {
        if let Some(pause) = state.refuse_for.lock().unwrap().take() {
            // Closing the listener makes connects fail with "connection refused".
            drop(listener);
            std::thread::sleep(pause);
            listener = rebind(addr);
        }
        match listener.accept() {
            Ok((stream, _)) => {
                let s = Arc::clone(state);
                std::thread::spawn(move || serve(stream, &s));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

fn rebind(addr: SocketAddr) -> TcpListener {
    for _ in 0..200 {
        if let Ok(l) = TcpListener::bind(addr) {
            l.set_nonblocking(true).unwrap();
            return l;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("could not listen on {addr} again");
}

/// Serves one keep-alive connection.
fn serve(stream: TcpStream, state: &State) {
    stream.set_nonblocking(false).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        let (mut authorization, mut accept) = (None, None);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "authorization" => authorization = Some(value.trim().to_string()),
                    "accept" => accept = Some(value.trim().to_string()),
                    _ => {}
                }
            }
        }
        state.hits.lock().unwrap().push(Hit {
            path: path.clone(),
            authorization,
            accept,
        });
        let (status, body, close) = if path == "/version" {
            (200, br#"{"version":"0.32.0-test"}"#.to_vec(), false)
        } else if path == "/metrics" {
            let n = state.metrics_requests.fetch_add(1, Ordering::SeqCst);
            match (state.script)(n) {
                Reply::Metrics => (200, metrics_body(&state.reference, n).into_bytes(), false),
                Reply::Status(code) => (code, b"something broke\n".to_vec(), false),
                Reply::Garbage => (
                    200,
                    b"<html><body>not metrics</body></html>\n".to_vec(),
                    false,
                ),
                Reply::NotUtf8 => (200, b"vllm:x 1\n\xff\xfe\n".to_vec(), false),
                Reply::Stall(d) => {
                    std::thread::sleep(d);
                    (200, metrics_body(&state.reference, n).into_bytes(), false)
                }
                Reply::Oversize(len) => (200, vec![b'#'; len], false),
                Reply::Empty => (200, Vec::new(), false),
                Reply::NoSamples => (
                    200,
                    b"# HELP vllm:x Nothing yet.\n# TYPE vllm:x gauge\n".to_vec(),
                    false,
                ),
                Reply::ThenRefuse(d) => {
                    *state.refuse_for.lock().unwrap() = Some(d);
                    (200, metrics_body(&state.reference, n).into_bytes(), true)
                }
            }
        } else {
            (404, b"not found\n".to_vec(), false)
        };
        let head = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
            if status == 200 { "OK" } else { "Error" },
            body.len(),
            if close { "close" } else { "keep-alive" },
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&body).is_err() || close {
            return;
        }
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
