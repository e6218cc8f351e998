//! A real Prometheus for the import tests: Debian's `prometheus` (2.42; `.ci/run` installs
//! it), on a free 127.0.0.1 port, with its own TSDB in a temporary directory. Missing, it
//! fails the test with the command that installs it: it is never skipped.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How many times readiness is asked, 100 ms apart, before the test fails (Prometheus 2.42
/// is ready in well under a second here; replaying a WAL of a few MB takes a few seconds).
const READY_TRIES: u32 = 600;

/// A Prometheus server, killed on drop.
pub struct Prometheus {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Fails with how to install `tool` when it is missing.
pub fn require(tool: &str) {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{tool}` is not installed; the import tests need a real Prometheus: \
         apt-get update && apt-get install -y prometheus (.ci/run does this)"
    );
}

impl Prometheus {
    /// Starts Prometheus with `config` (YAML) on a free port, its TSDB in `data`.
    pub fn start(dir: &Path, config: &str, data: &Path) -> Prometheus {
        require("prometheus");
        let cfg = dir.join("prometheus.yml");
        std::fs::write(&cfg, config).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Backfilled blocks are old; keep them whatever their age.
            .arg("--storage.tsdb.retention.time=100y")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..READY_TRIES {
            let ready = ureq::get(&format!("{}/-/ready", p.url))
                .call()
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return p;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
        panic!("prometheus did not become ready on {}:\n{log}", p.url);
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
