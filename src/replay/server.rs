//! The replay's HTTP/1.1 server: std::net only (a scrape endpoint needs GET, Content-Length
//! and keep-alive, not a framework), one thread per connection, Nagle off so a keep-alive
//! answer is not held back ~40 ms waiting for an ACK.
//!
//! Routes: `GET /metrics` (the current turn's answer), `GET /version` (when the manifest
//! has a vLLM version), 404 otherwise, 405 for methods other than GET.

use super::{Answer, Replay, ReplayError, GARBAGE_BODY};
use crate::record::clock::Clock;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a blocked connection thread looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);
/// A request head larger than this is refused (a scraper sends a few hundred bytes).
const MAX_HEAD: usize = 16 * 1024;
/// Connections served at once; more are closed at once, so a flood cannot exhaust threads.
const MAX_CONNECTIONS: usize = 128;

struct Shared {
    replay: Replay,
    clock: Clock,
    stop: AtomicBool,
    /// The last rendered body, by scrape index: every scraper of one turn shares it.
    cache: Mutex<Option<(usize, Arc<String>)>>,
    metrics_requests: AtomicU64,
    connections: AtomicUsize,
}

/// A running replay server. Stops (and joins its accept thread) on [`ReplayServer::stop`]
/// or when dropped.
pub struct ReplayServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl ReplayServer {
    /// Starts serving `replay` on `listener`; the replay's clock starts now.
    pub fn start(listener: TcpListener, replay: Replay) -> Result<ReplayServer, ReplayError> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            replay,
            clock: Clock::start(),
            stop: AtomicBool::new(false),
            cache: Mutex::new(None),
            metrics_requests: AtomicU64::new(0),
            connections: AtomicUsize::new(0),
        });
        let s = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("profile-replay".into())
            .spawn(move || accept_loop(&listener, &s))?;
        Ok(ReplayServer {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Time since the replay started.
    pub fn elapsed(&self) -> Duration {
        self.shared.clock.elapsed()
    }

    /// The scrape whose turn it is now, and whether a non-looping replay is over.
    pub fn turn(&self) -> (usize, bool) {
        self.shared.replay.turn_at(self.elapsed())
    }

    /// `GET /metrics` requests answered (or stalled, or closed) so far.
    pub fn metrics_requests(&self) -> u64 {
        self.shared.metrics_requests.load(Ordering::SeqCst)
    }

    /// Stops accepting, ends the connection threads at their next poll, and waits for the
    /// accept thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept with a connection of our own.
        let wake = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.addr.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), self.addr.port())
            }
            _ => self.addr,
        };
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.shutdown();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        if shared.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let s = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("profile-replay-conn".into())
            .spawn(move || {
                let _ = serve_connection(stream, &s);
                s.connections.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A parsed request head.
struct Request {
    method: String,
    path: String,
    close: bool,
    body_len: usize,
}

fn parse_head(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let method = parts.next()?.to_string();
    let target = parts.next()?;
    let version = parts.next()?;
    let path = target.split('?').next().unwrap_or("").to_string();
    let mut close = version == "HTTP/1.0";
    let mut body_len = 0;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                close = true;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                close = false;
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            body_len = value.parse().unwrap_or(0);
        }
    }
    Some(Request {
        method,
        path,
        close,
        body_len,
    })
}

fn serve_connection(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(POLL))?;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if buf.len() > MAX_HEAD {
                let _ = respond(
                    &mut stream,
                    431,
                    "text/plain",
                    b"request head too large\n",
                    true,
                );
                return Ok(());
            }
            if shared.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            match stream.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let Some(req) = parse_head(&head) else {
            let _ = respond(&mut stream, 400, "text/plain", b"bad request\n", true);
            return Ok(());
        };
        // Drop the head and any request body (a GET has none, but a client may send one).
        let consumed = head_end.saturating_add(req.body_len).min(buf.len());
        buf.drain(..consumed);
        let keep = handle(&mut stream, shared, &req)?;
        if !keep || req.close {
            return Ok(());
        }
    }
}

/// Answers one request; returns whether the connection may serve another.
fn handle(stream: &mut TcpStream, shared: &Shared, req: &Request) -> io::Result<bool> {
    if req.method != "GET" {
        respond(
            stream,
            405,
            "text/plain",
            b"only GET is served\n",
            req.close,
        )?;
        return Ok(true);
    }
    let replay = &shared.replay;
    match req.path.as_str() {
        "/metrics" => {}
        "/version" => {
            match replay.version_body() {
                Some(v) => respond(stream, 200, "application/json", v.as_bytes(), req.close)?,
                None => respond(
                    stream,
                    404,
                    "text/plain",
                    b"no version recorded\n",
                    req.close,
                )?,
            }
            return Ok(true);
        }
        _ => {
            respond(stream, 404, "text/plain", b"not found\n", req.close)?;
            return Ok(true);
        }
    }
    shared.metrics_requests.fetch_add(1, Ordering::SeqCst);
    let (k, _) = replay.turn_at(shared.clock.elapsed());
    match replay.answer(k) {
        Answer::Metrics => {
            let body = cached_body(shared, k);
            respond(
                stream,
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                body.as_bytes(),
                req.close,
            )?;
            Ok(true)
        }
        Answer::Status(code) => {
            let body = format!("replayed failed scrape {k}: HTTP {code}\n");
            respond(stream, code, "text/plain", body.as_bytes(), req.close)?;
            Ok(true)
        }
        Answer::Garbage => {
            respond(
                stream,
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                GARBAGE_BODY.as_bytes(),
                req.close,
            )?;
            Ok(true)
        }
        Answer::Stall => {
            let until = shared.clock.elapsed() + replay.config().stall;
            while shared.clock.elapsed() < until && !shared.stop.load(Ordering::SeqCst) {
                std::thread::sleep(POLL.min(replay.config().stall));
            }
            Ok(false)
        }
        Answer::Close => Ok(false),
        Answer::Oversize(len) => {
            write_head(
                stream,
                200,
                "text/plain; version=0.0.4; charset=utf-8",
                len,
                req.close,
            )?;
            let line = b"# replayed oversize body: padding to exceed the scraper's cap ####\n";
            let block: Vec<u8> = line.iter().copied().cycle().take(64 * 1024).collect();
            let mut left = len;
            while left > 0 {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(block.len());
                stream.write_all(&block[..n])?;
                left -= n as u64;
            }
            stream.flush()?;
            Ok(true)
        }
    }
}

fn cached_body(shared: &Shared, k: usize) -> Arc<String> {
    let mut cache = shared.cache.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((at, body)) = cache.as_ref() {
        if *at == k {
            return Arc::clone(body);
        }
    }
    let body = Arc::new(shared.replay.body(k));
    *cache = Some((k, Arc::clone(&body)));
    body
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn write_head(
    stream: &mut TcpStream,
    code: u16,
    ctype: &str,
    len: u64,
    close: bool,
) -> io::Result<()> {
    let conn = if close { "Connection: close\r\n" } else { "" };
    let head = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {ctype}\r\nContent-Length: {len}\r\n{conn}\r\n",
        reason(code)
    );
    stream.write_all(head.as_bytes())
}

fn respond(
    stream: &mut TcpStream,
    code: u16,
    ctype: &str,
    body: &[u8],
    close: bool,
) -> io::Result<()> {
    // One write for head and body: two small writes would be two packets.
    let conn = if close { "Connection: close\r\n" } else { "" };
    let mut out = format!(
        "HTTP/1.1 {code} {}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{conn}\r\n",
        reason(code),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    stream.write_all(&out)?;
    stream.flush()
}
