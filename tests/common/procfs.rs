//! What a running process holds, read from /proc: threads, open files, memory; and a
//! command run under a deadline and a memory ceiling, so that a test of a hang or a runaway
//! read fails with a figure instead of hanging or eating the machine.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Threads of process `pid` (entries of /proc/PID/task); 0 once it is gone.
pub fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, Iterator::count)
}

/// Open file descriptors of process `pid` (entries of /proc/PID/fd); 0 once it is gone.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// A `kB` field of /proc/PID/status (`VmRSS`, `VmHWM`, ...), in KiB; 0 once it is gone.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The soft and hard RLIMIT_NOFILE of process `pid`, from /proc/PID/limits.
pub fn nofile_limits(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let mut nums = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .filter_map(|w| w.parse().ok());
    Some((nums.next()?, nums.next()?))
}

/// Raises this test process's soft RLIMIT_NOFILE to its hard limit and returns it; fails
/// with how to fix it when the hard limit is below `need`.
pub fn raise_own_nofile(need: u64) -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    let hard = lim.maximum.unwrap_or(u64::MAX);
    assert!(
        hard >= need,
        "this test opens {need} sockets but the hard open-files limit is {hard}: run it with \
         `ulimit -Hn {need}` or more (as root: `prlimit --pid $$ --nofile={need}:{need}`)"
    );
    lim.current = Some(hard);
    setrlimit(Resource::Nofile, lim).expect("raise the soft open-files limit");
    hard
}

/// How a bounded run ended.
#[derive(Debug)]
pub struct Bounded {
    /// `None` when the run was killed (deadline passed or memory ceiling hit).
    pub status: Option<ExitStatus>,
    pub elapsed: Duration,
    /// The highest resident set seen, in MiB.
    pub peak_rss_mib: u64,
    /// Why it was killed, if it was.
    pub killed: Option<String>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to its end, killing it when it runs past `deadline` or its resident memory
/// passes `max_rss_mib` (checked every 5 ms).
pub fn run_bounded(mut cmd: Command, deadline: Duration, max_rss_mib: u64) -> Bounded {
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the command");
    let pid = child.id();
    let (mut out, mut err) = (
        child.stdout.take().expect("stdout"),
        child.stderr.take().expect("stderr"),
    );
    let out = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut peak = 0;
    let mut killed = None;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break Some(s);
        }
        peak = peak.max(status_kib(pid, "VmRSS") / 1024);
        if peak > max_rss_mib {
            killed = Some(format!("resident memory passed {max_rss_mib} MiB"));
        } else if start.elapsed() > deadline {
            killed = Some(format!("still running after {deadline:?}"));
        }
        if killed.is_some() {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(5));
    };
    Bounded {
        status,
        elapsed: start.elapsed(),
        peak_rss_mib: peak,
        killed,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}
