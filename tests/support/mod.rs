//! What the integration tests share: running the binary, one way to run a child process
//! beside a test (a recorder, a replay; killed and reaped however the test ends), and one small
//! HTTP/1.1 server on 127.0.0.1 that each test scripts with a handler. Every test server is
//! built on it, so the accept loop, keep-alive, Nagle and "refuse connections for a while" are
//! written once.

pub mod http;
pub mod process;

/// The `profile` binary, built for this test run.
pub fn profile() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("profile").unwrap()
}

/// Runs `profile ARGS...`, asserts that it succeeded (showing its stderr when not), and
/// returns its stdout.
pub fn stdout_of(args: &[&str]) -> String {
    let out = profile().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Held by the tests that assert a recorder's schedule (ticks at exact times) and by the ones
/// that start heavy processes (Chromium, Prometheus): on a 2-core CI machine a browser started
/// beside a 50 ms schedule makes the schedule miss ticks that it would not miss in production.
/// The guard serializes only these; every other test still runs in parallel.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A 127.0.0.1 port nothing listens on: bound, read, and released, so connects are refused.
pub fn refused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
