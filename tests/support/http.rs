//! A scriptable HTTP/1.1 server for tests: each request is handed to the test's handler, which
//! says what to answer. Keep-alive connections, Nagle off (a Nagle delay would read as a slow
//! server), and a reply may close the listener for a while so that connects are refused, as a
//! crashed server's are. Stops when dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request, as the handler sees it.
#[derive(Debug, Clone)]
#[allow(dead_code)] // not every test reads every header
pub struct Request {
    /// The path, e.g. `/metrics`.
    pub path: String,
    /// The `Authorization` header, if sent.
    pub authorization: Option<String>,
    /// The `Accept` header, if sent.
    pub accept: Option<String>,
}

/// What to answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Close the connection after this answer.
    pub close: bool,
    /// After answering, refuse every connection for this long.
    pub then_refuse: Option<Duration>,
}

impl Response {
    /// A keep-alive answer with this status and body.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            body: body.into(),
            close: false,
            then_refuse: None,
        }
    }
}

type Handler = Box<dyn Fn(&Request) -> Response + Send + Sync>;

struct State {
    handler: Handler,
    refuse_for: Mutex<Option<Duration>>,
    stop: AtomicBool,
}

/// A running server.
pub struct HttpServer {
    addr: SocketAddr,
    state: Arc<State>,
}

impl HttpServer {
    /// Starts a server on a free 127.0.0.1 port answering with `handler`.
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            handler: Box::new(handler),
            refuse_for: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let s = Arc::clone(&state);
        std::thread::spawn(move || accept_loop(listener, addr, &s));
        HttpServer { addr, state }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for HttpServer {
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
        let mut req = Request {
            path: request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_string(),
            authorization: None,
            accept: None,
        };
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
                    "authorization" => req.authorization = Some(value.trim().to_string()),
                    "accept" => req.accept = Some(value.trim().to_string()),
                    _ => {}
                }
            }
        }
        let r = (state.handler)(&req);
        if let Some(d) = r.then_refuse {
            *state.refuse_for.lock().unwrap() = Some(d);
        }
        let close = r.close || r.then_refuse.is_some();
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: {}\r\n\r\n",
            r.status,
            if r.status == 200 { "OK" } else { "Error" },
            r.body.len(),
            if close { "close" } else { "keep-alive" },
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&r.body).is_err() || close
        {
            return;
        }
    }
}
