//! What the integration tests share: running the binary, and one small HTTP/1.1 server on
//! 127.0.0.1 that each test scripts with a handler. Every test server is built on it, so the
//! accept loop, keep-alive, Nagle and "refuse connections for a while" are written once.

pub mod http;

/// The `profile` binary, built for this test run.
pub fn profile() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("profile").unwrap()
}
