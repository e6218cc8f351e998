//! Host process sampling: one reading of a process (and, when asked, of every process below it)
//! from Linux's `/proc/PID/stat` and `/proc/PID/status`, as raw counters. The recorder stores
//! each reading as one row per process; analysis sums and differentiates them later, so a child
//! that comes or goes between two ticks is a change in the rows, not a wrong total.
//!
//! Only Linux has this `/proc`; elsewhere [`check_supported`] says so.

use std::collections::BTreeSet;
use std::path::PathBuf;

/// The kernel's `USER_HZ`, the unit of `utime`/`stime`/`starttime` in `/proc/PID/stat`. It is
/// 100 on every Linux architecture the kernel's ABI documents for user space (`sysconf(
/// _SC_CLK_TCK)` returns it), whatever the scheduler tick `CONFIG_HZ` is; this crate calls no
/// libc function, so the value is fixed here and stored in the manifest beside the ticks.
pub const CLOCK_TICKS_PER_S: u64 = 100;

/// Bytes per kB of `VmRSS:` in `/proc/PID/status` (the kernel prints KiB as "kB").
const BYTES_PER_KB: u64 = 1024;

/// Why a process could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// This system has no Linux `/proc`.
    #[error("host process sampling (--pid) reads Linux's /proc and is not available on {0}")]
    Unsupported(&'static str),
    /// No process with this PID exists.
    #[error("no process with PID {0} (is it running, and in this PID namespace?)")]
    NoSuchProcess(u32),
    /// The process is a zombie: it exited and its parent has not reaped it.
    #[error("PID {0} has exited (a zombie waiting for its parent)")]
    Exited(u32),
    /// A file under `/proc/PID` could not be read or parsed.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// One reading of one process. Counters are raw (clock ticks); `None` where the kernel gave
/// nothing (a kernel thread has no `VmRSS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcReading {
    /// The PID.
    pub pid: u32,
    /// Its parent's PID.
    pub ppid: u32,
    /// The command name (`comm`, at most 15 bytes).
    pub comm: String,
    /// The one-letter state (`R`, `S`, `Z`, ...).
    pub state: String,
    /// Start time after boot, clock ticks: with the PID, identifies the process across PID
    /// reuse.
    pub start_ticks: u64,
    /// CPU time in user mode, clock ticks.
    pub utime_ticks: u64,
    /// CPU time in kernel mode, clock ticks.
    pub stime_ticks: u64,
    /// Resident set size, bytes.
    pub rss_bytes: Option<u64>,
    /// Threads.
    pub threads: Option<u32>,
}

/// `Ok` where `/proc` sampling works (Linux), else the message to show.
pub fn check_supported() -> Result<(), HostError> {
    if cfg!(target_os = "linux") {
        Ok(())
    } else {
        Err(HostError::Unsupported(std::env::consts::OS))
    }
}

fn proc_path(pid: u32, file: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/{file}"))
}

/// Reads one process. A PID without a `/proc` entry is [`HostError::NoSuchProcess`].
pub fn read_process(pid: u32) -> Result<ProcReading, HostError> {
    check_supported()?;
    let read = |file: &str| -> Result<String, HostError> {
        let path = proc_path(pid, file);
        std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => HostError::NoSuchProcess(pid),
            // ESRCH: the process went away between open and read.
            _ if e.raw_os_error() == Some(3) => HostError::NoSuchProcess(pid),
            _ => HostError::Read {
                path,
                message: e.to_string(),
            },
        })
    };
    let stat = read("stat")?;
    let status = read("status")?;
    let mut r = parse_stat(&stat).map_err(|message| HostError::Read {
        path: proc_path(pid, "stat"),
        message,
    })?;
    let (rss, threads) = parse_status(&status);
    r.rss_bytes = rss;
    r.threads = threads;
    Ok(r)
}

/// Checks that `pid` names a live process, for a clear error before recording starts.
pub fn check_target(pid: u32) -> Result<ProcReading, HostError> {
    let r = read_process(pid)?;
    if r.state == "Z" || r.state == "X" {
        return Err(HostError::Exited(pid));
    }
    Ok(r)
}

/// The direct children of `pid`: the union of `/proc/PID/task/*/children` (a child belongs to
/// the thread that forked it), sorted. Falls back to scanning every `/proc/*/stat` for the
/// parent PID when the kernel lacks the `children` files (`CONFIG_PROC_CHILDREN`).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut found_file = false;
    if let Ok(tasks) = std::fs::read_dir(proc_path(pid, "task")) {
        for t in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
                found_file = true;
                out.extend(
                    text.split_whitespace()
                        .filter_map(|s| s.parse::<u32>().ok()),
                );
            }
        }
    }
    if !found_file {
        if let Ok(all) = std::fs::read_dir("/proc") {
            for e in all.flatten() {
                let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                    continue;
                };
                let stat = std::fs::read_to_string(e.path().join("stat")).ok();
                if stat
                    .and_then(|s| parse_stat(&s).ok())
                    .is_some_and(|r| r.ppid == pid)
                {
                    out.push(child);
                }
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Every descendant of `pid` (its children, theirs, and so on), sorted. Direct children are not
/// enough for vLLM: the API server starts the engine core, and the engine core starts the
/// worker process that runs the model (vLLM 0.32's CPU build, under long-prompt load: the
/// grandchild `VLLM::Worker` at 0.97 cores, the API server and engine core at 0.11 together).
/// vLLM's multiprocessing executor, which tensor parallelism uses on GPUs too, starts its
/// workers from the engine core in the same way.
pub fn descendants_of(pid: u32) -> Vec<u32> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for c in children_of(p) {
            // A PID listed twice (reused while the tree was walked) is read once, and never
            // the target again.
            if c != pid && seen.insert(c) {
                todo.push(c);
            }
        }
    }
    seen.into_iter().collect()
}

/// Parses `/proc/PID/stat`. The command name sits in parentheses and may itself hold spaces
/// and parentheses, so the fields after it are found from the last `)`.
pub fn parse_stat(text: &str) -> Result<ProcReading, String> {
    let open = text.find('(').ok_or("no '(' before the command name")?;
    let close = text.rfind(')').ok_or("no ')' after the command name")?;
    if close < open {
        return Err("')' before '('".to_string());
    }
    let pid: u32 = text[..open]
        .trim()
        .parse()
        .map_err(|_| "the PID is not a number".to_string())?;
    let comm = text[open + 1..close].to_string();
    // Fields from 3 (state) on; field n is rest[n - 3].
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |n: usize| -> Result<u64, String> {
        rest.get(n - 3)
            .ok_or(format!("field {n} is missing"))?
            .parse()
            .map_err(|_| format!("field {n} is not a number"))
    };
    let state = rest.first().ok_or("no state field")?.to_string();
    Ok(ProcReading {
        pid,
        ppid: u32::try_from(field(4)?).map_err(|_| "ppid out of range".to_string())?,
        comm,
        state,
        utime_ticks: field(14)?,
        stime_ticks: field(15)?,
        start_ticks: field(22)?,
        rss_bytes: None,
        threads: u32::try_from(field(20)?).ok(),
    })
}

/// `VmRSS` (bytes) and `Threads` from `/proc/PID/status`; `None` for a line not there.
pub fn parse_status(text: &str) -> (Option<u64>, Option<u32>) {
    let mut rss = None;
    let mut threads = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("VmRSS:") {
            let kb = v.trim().trim_end_matches("kB").trim();
            rss = kb
                .parse::<u64>()
                .ok()
                .map(|k| k.saturating_mul(BYTES_PER_KB));
        } else if let Some(v) = line.strip_prefix("Threads:") {
            threads = v.trim().parse().ok();
        }
    }
    (rss, threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_a_hostile_command_name() {
        let line = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    123 45 0 0 20 0 7 0 98765 1000000 500 18446744073709551615";
        let r = parse_stat(line).unwrap();
        assert_eq!(r.pid, 4242);
        assert_eq!(r.comm, "a) b (c)");
        assert_eq!((r.state.as_str(), r.ppid), ("S", 1));
        assert_eq!((r.utime_ticks, r.stime_ticks), (123, 45));
        assert_eq!((r.threads, r.start_ticks), (Some(7), 98765));
        assert!(parse_stat("4242 (x) S 1").unwrap_err().contains("missing"));
        assert!(parse_stat("no parens").is_err());
    }

    #[test]
    fn status_fields_and_their_absence() {
        let text = "Name:\tsleep\nVmPeak:\t  8000 kB\nVmRSS:\t    2144 kB\nThreads:\t1\n";
        assert_eq!(parse_status(text), (Some(2144 * 1024), Some(1)));
        // A kernel thread has no VmRSS line.
        assert_eq!(
            parse_status("Name:\tkthreadd\nThreads:\t1\n"),
            (None, Some(1))
        );
    }

    #[test]
    fn reads_this_process_and_refuses_a_missing_one() {
        let me = read_process(std::process::id()).unwrap();
        assert_eq!(me.pid, std::process::id());
        // A test binary holds several MiB and runs test threads.
        assert!(me.rss_bytes.unwrap() > 1 << 20);
        assert!(me.threads.unwrap() >= 1);
        // PIDs stop well below u32::MAX (the kernel's limit is 2^22).
        assert_eq!(
            check_target(u32::MAX - 1),
            Err(HostError::NoSuchProcess(u32::MAX - 1))
        );
    }

    #[test]
    fn finds_a_spawned_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let kids = children_of(std::process::id());
        let id = child.id();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(kids.contains(&id), "{kids:?} lacks {id}");
    }

    /// A shell that keeps a `sleep` as its child: the sleep is a grandchild of this test, so
    /// `children_of` leaves it out and `descendants_of` has both.
    #[test]
    fn finds_a_grandchild() {
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .spawn()
            .unwrap();
        let me = std::process::id();
        let mut grand = Vec::new();
        // Up to 5 s for the shell to fork, on a loaded machine.
        for _ in 0..250 {
            grand = children_of(sh.id());
            if !grand.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let all = descendants_of(me);
        let direct = children_of(me);
        for g in &grand {
            let _ = std::process::Command::new("kill")
                .arg(g.to_string())
                .status();
        }
        sh.kill().unwrap();
        sh.wait().unwrap();
        assert_eq!(grand.len(), 1, "the shell's sleep: {grand:?}");
        assert!(all.contains(&sh.id()) && all.contains(&grand[0]), "{all:?}");
        assert!(
            direct.contains(&sh.id()) && !direct.contains(&grand[0]),
            "{direct:?}"
        );
    }
}
