//! A child process a test runs beside itself: a `profile record` or `profile replay`, or a
//! process a recorder watches (`record --pid`). Its stdout and stderr are collected, and it is
//! killed and reaped when dropped, so a failed assertion never leaves a process behind.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long [`Process::finish`] waits for an exit before it calls the process hung: longer
/// than any run of these tests takes (the longest records for 60 s).
const HUNG_AFTER: Duration = Duration::from_secs(120);

/// How often [`Process::wait_until`] and [`Process::finish`] look again.
const POLL: Duration = Duration::from_millis(20);

/// The wall clock, for the deadlines (tests may read it).
#[allow(clippy::disallowed_methods)]
fn now() -> std::time::Instant {
    std::time::Instant::now()
}

/// The `profile` binary built for this test run, not started: the caller adds the arguments
/// (and any environment). `PROFILE_BEARER_TOKEN` is removed, so that a token in the
/// developer's environment never reaches a test server.
pub fn profile_cmd() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_profile"));
    cmd.env_remove("PROFILE_BEARER_TOKEN");
    cmd
}

/// A running child; killed and reaped when dropped. [`Process::wait_until`] and
/// [`Process::finish`] read its output to the end, so they are for a child that does not leave
/// processes of its own holding the pipes (`profile` does not).
pub struct Process {
    child: Child,
    /// The command line, for failure messages.
    what: String,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Process {
    /// Starts `cmd` with stdin closed and stdout and stderr collected (read as they come, so
    /// a chatty child never blocks on a full pipe).
    pub fn start(cmd: &mut Command) -> Process {
        let what = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|s| s.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"));
        let stdout = drain(child.stdout.take().expect("stdout is piped"));
        let stderr = drain(child.stderr.take().expect("stderr is piped"));
        Process {
            child,
            what,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// The child's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (as `kill` spells it: `-INT`, `-TERM`, `-KILL`) and asserts that it was
    /// delivered.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("`kill` runs");
        assert!(sent.success(), "kill {signal} {}: {sent}", self.pid());
    }

    /// Whether the child has not exited yet.
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// Waits until `done()` holds, looking every 20 ms; fails the test, with the child's
    /// stderr, when the child exits first or `within` passes first. `what` names the
    /// condition in the failure message.
    pub fn wait_until(&mut self, what: &str, within: Duration, mut done: impl FnMut() -> bool) {
        let t0 = now();
        while !done() {
            if let Some(status) = self.exit_status() {
                self.fail(&format!("exited ({status}) before {what}"));
            }
            if t0.elapsed() >= within {
                self.fail(&format!("not {what} within {within:?}"));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits for the child to exit and returns its status and what it wrote; fails the test,
    /// with its stderr, when it is still running after two minutes (hung).
    pub fn finish(mut self) -> Output {
        let t0 = now();
        loop {
            if let Some(status) = self.exit_status() {
                return self.collect(status);
            }
            if t0.elapsed() >= HUNG_AFTER {
                self.fail(&format!("still running after {HUNG_AFTER:?}"));
            }
            std::thread::sleep(POLL);
        }
    }

    fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("the child can be waited for")
    }

    /// What the child wrote, once it has exited and closed its pipes.
    fn collect(&mut self, status: ExitStatus) -> Output {
        let read = |pipe: &mut Option<JoinHandle<Vec<u8>>>| {
            pipe.take()
                .map(|t| t.join().expect("the pipe reader does not panic"))
                .unwrap_or_default()
        };
        Output {
            status,
            stdout: read(&mut self.stdout),
            stderr: read(&mut self.stderr),
        }
    }

    /// Kills and reaps the child, then fails the test with `why` and the child's stderr.
    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let status = self.child.wait().expect("the child can be waited for");
        let out = self.collect(status);
        panic!(
            "`{}`: {why}\nstderr:\n{}",
            self.what,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // The pipe readers end when the pipes close; they are not joined here, since a
        // grandchild (a forked process tree) may still hold the pipes open.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `pipe` to its end on a thread of its own.
fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}
