//! `pid_file: PATH`: the process named in a pid file, watched through a pidfd.
//!
//! A pidfd (`pidfd_open(2)`, Linux 5.3+) becomes readable the moment its process exits, so
//! the exit starts a round within microseconds; the process may belong to any user, and
//! need not be our child. The file is read again at once after an exit (the supervisor may
//! already have written the new process id) and whenever it changes.
//!
//! Changes of the file are found by a light poll: its identity (device, inode, size, mtime)
//! is compared every [`POLL`] while no process is watched (the file is missing, or names
//! no running process), every [`ALIVE_POLL`] while one is, and the file is read only when
//! its identity changed. Why not inotify: the exit, the one event that must be fast,
//! already comes from the pidfd, and the file is re-read right after it; the poll only has
//! to notice a file that appears (a service starting) or that names another process while
//! the old one lives on (a binary upgrade), where seconds are ahead of any round that
//! matters. It costs one `stat` per watch every few seconds (1,000 watches: +0.8 % of a
//! core with a 1 s poll while alive, measured, hence the slower [`ALIVE_POLL`]), and works
//! where inotify does not (a replaced directory, network file systems, the default limit
//! of 128 inotify instances per user against 1,000 watches).
//!
//! A missing, empty or unreadable file, garbage in it, or a process that does not exist,
//! is a state shown in status and logged once, never an error of the daemon: the checks
//! decide, as always.

use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::process::{Pid, PidfdFlags, pidfd_open};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tracing::{info, warn};

use super::context::{Context, WatchState};
use crate::config::watches::pid_file::Spec;

/// How often the file's identity is compared while no process is watched.
pub const POLL: Duration = Duration::from_secs(1);
/// How often it is compared while its process runs and is watched.
pub const ALIVE_POLL: Duration = Duration::from_secs(5);
/// The most of a pid file that is read (a pid is at most 10 digits).
const READ_LIMIT: u64 = 64;

/// What the file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Pid(u32),
    Missing,
    Empty,
    /// Not a process id; the first characters, for the operator.
    Garbage(String),
    Unreadable(String),
}

/// Parses a pid file's text: one positive process id, surrounding white space allowed.
pub fn parse(text: &str) -> Content {
    let t = text.trim();
    if t.is_empty() {
        return Content::Empty;
    }
    match t.parse::<u32>() {
        // A pid is a positive i32 (pidfd_open takes a pid_t).
        Ok(p) if p > 0 && i32::try_from(p).is_ok() => Content::Pid(p),
        // Kept as read (its first 32 characters): it is escaped where it is shown.
        _ => Content::Garbage(t.chars().take(32).collect()),
    }
}

// The file is read on the runtime's thread: pid files are tiny and live on tmpfs (/run), and
// a hop to the blocking pool for every read would cost more than the syscalls. It is read
// as the config's own files are (crate::small_file): a FIFO or a device at that path is
// refused, never opened for a read that could block the runtime.
fn read(path: &Path) -> Content {
    use crate::small_file::ReadError;
    match crate::small_file::read_to_string(path, READ_LIMIT) {
        Ok(text) => parse(&text),
        Err(ReadError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
            Content::Missing
        }
        Err(ReadError::NotText { .. }) => Content::Garbage("(not text)".to_string()),
        Err(ReadError::TooLarge { .. }) => {
            Content::Garbage(format!("(longer than {READ_LIMIT} bytes)"))
        }
        Err(e) => Content::Unreadable(e.to_string()),
    }
}

/// A file's device, inode, length and modification time.
type Stamp = (u64, u64, u64, i64, i64);

/// The file's identity: it changed when this did. `None` while it cannot be looked at.
fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
}

/// A pidfd for `pid`, or why not. `Ok(None)`: no such process (or it already exited).
fn open(pid: u32) -> Result<Option<OwnedFd>, String> {
    let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return Ok(None);
    };
    let fd = match pidfd_open(p, PidfdFlags::NONBLOCK) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Ok(None),
        Err(e) => return Err(format!("cannot watch process {pid}: pidfd_open: {e}")),
    };
    // A process that exited but was not reaped yet (a zombie) still has its pid, and its
    // pidfd is readable at once: that is a process that does not run.
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&zero)) {
        Ok(0) => Ok(Some(fd)),
        Ok(_) => Ok(None),
        Err(e) => Err(format!("cannot watch process {pid}: poll: {e}")),
    }
}

/// Watches the process named in `spec.path` for as long as the daemon runs.
pub(super) async fn run(spec: Spec, cx: Context) {
    let path = spec.path;
    // The pid whose exit we saw, and the file as it was then: not watched again while the
    // file is unchanged (it may still name it, and the pid may be reused by an unrelated
    // process). Once the file is written again, the pid it names is watched, even the same
    // one (issue 20: a service restarted with a reused pid was not watched, and its next
    // crash waited 2.3 s for a round instead of ~6 ms).
    let mut exited: Option<(u32, Option<Stamp>)> = None;
    let mut last: WatchState = WatchState::Starting;
    loop {
        let seen = stamp(&path);
        let content = read(&path);
        let (state, pid, detail) = match &content {
            Content::Pid(pid) if still_exited(exited, *pid, seen) => (
                WatchState::ProcessNotRunning,
                Some(*pid),
                Some(format!("process {pid} exited")),
            ),
            Content::Pid(pid) => match open(*pid) {
                // SAFETY: the AsyncFd owns the OwnedFd, which stays open and the same until
                // the AsyncFd is dropped (what register_with_interest asks).
                Ok(Some(fd)) => {
                    match unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) } {
                        Ok(fd) => {
                            enter(&cx, &mut last, WatchState::ProcessAlive, Some(*pid), None);
                            if wait_for_exit(&fd, &path, seen).await {
                                exited = Some((*pid, stamp(&path)));
                                cx.count("exited");
                                warn!(service = %cx.service, watch = %cx.label, pid, "watched process exited");
                                cx.start_round(&format!("process {pid} exited"));
                            }
                            // Read the file again at once: the next state comes from it.
                            continue;
                        }
                        Err(e) => (
                            WatchState::Error,
                            Some(*pid),
                            Some(format!("cannot watch process {pid}: {e}")),
                        ),
                    }
                }
                Ok(None) => (
                    WatchState::ProcessNotRunning,
                    Some(*pid),
                    Some(format!("no process {pid}")),
                ),
                Err(e) => (WatchState::Error, Some(*pid), Some(e)),
            },
            Content::Missing => (
                WatchState::PidFileMissing,
                None,
                Some("no such file".to_string()),
            ),
            Content::Empty => (
                WatchState::PidFileEmpty,
                None,
                Some("the file is empty".to_string()),
            ),
            Content::Garbage(g) => (
                WatchState::PidFileGarbage,
                None,
                Some(format!("holds {g:?}, not a process id")),
            ),
            Content::Unreadable(e) => (WatchState::Error, None, Some(e.clone())),
        };
        enter(&cx, &mut last, state, pid, detail);
        // Nothing to watch: wait for the file to change.
        until_changed(&path, seen, POLL).await;
    }
}

/// Whether `pid`, read from the file as `seen`, is the process whose exit was seen: the same
/// pid, and the file not written since.
fn still_exited(exited: Option<(u32, Option<Stamp>)>, pid: u32, seen: Option<Stamp>) -> bool {
    exited == Some((pid, seen))
}

/// Returns once the file's identity is no longer `seen`, looking every `every`.
async fn until_changed(path: &Path, seen: Option<Stamp>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if stamp(path) != seen {
            return;
        }
    }
}

/// `true` when the process exited; `false` when the file changed first.
async fn wait_for_exit(fd: &AsyncFd<OwnedFd>, path: &Path, seen: Option<Stamp>) -> bool {
    tokio::select! {
        // A pidfd reports readable once its process has exited, and stays so.
        r = fd.readable() => r.is_ok(),
        () = until_changed(path, seen, ALIVE_POLL) => false,
    }
}

/// Publishes a state; counts and logs it when it is new. A process found after the
/// watch had seen none (the service started again) starts a round: it may rise now.
fn enter(
    cx: &Context,
    last: &mut WatchState,
    state: WatchState,
    pid: Option<u32>,
    detail: Option<String>,
) {
    cx.publish(state, pid, detail.clone());
    if *last == state {
        if state == WatchState::ProcessAlive {
            info!(service = %cx.service, watch = %cx.label, pid, "watching the process");
        }
        return;
    }
    let before = std::mem::replace(last, state);
    let event = match state {
        WatchState::ProcessAlive => "watching",
        WatchState::ProcessNotRunning => "not_running",
        WatchState::PidFileMissing => "missing",
        WatchState::PidFileEmpty => "empty",
        WatchState::PidFileGarbage => "garbage",
        // Starting, Connected and Reconnecting are the tcp watch's; never entered here.
        WatchState::Error
        | WatchState::Starting
        | WatchState::Connected
        | WatchState::Reconnecting => "error",
    };
    cx.count(event);
    let detail = detail.unwrap_or_default();
    match state {
        WatchState::ProcessAlive => {
            info!(service = %cx.service, watch = %cx.label, pid, "watching the process");
            if !matches!(before, WatchState::Starting | WatchState::ProcessAlive) {
                cx.start_round(&format!("process {} found", pid.unwrap_or_default()));
            }
        }
        // Its exit was logged at WARN already ("watched process exited").
        WatchState::ProcessNotRunning if before == WatchState::ProcessAlive => info!(
            service = %cx.service, watch = %cx.label, state = %state, detail = %detail,
            "pid file watch: nothing to watch; the checks still run"
        ),
        _ => warn!(
            service = %cx.service, watch = %cx.label, state = %state, detail = %detail,
            "pid file watch: nothing to watch; the checks still run"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_is_the_exited_one_only_while_the_file_is_unchanged() {
        let at = |t: i64| Some((1, 2, 4, t, 0));
        let exited = Some((100, at(10)));
        assert!(still_exited(exited, 100, at(10)));
        // Written again (a restart that got the same pid): watched again.
        assert!(!still_exited(exited, 100, at(11)));
        // Another pid: watched.
        assert!(!still_exited(exited, 101, at(10)));
        assert!(!still_exited(None, 100, at(10)));
    }

    #[test]
    fn path_must_be_given_and_absolute() {
        let v = |p: &str| Spec { path: p.into() }.validate();
        assert_eq!(v("/run/nginx.pid"), Ok(()));
        assert!(v("").expect_err("empty").contains("must not be empty"));
        assert!(v("run/x.pid").expect_err("relative").contains("absolute"));
    }

    #[test]
    fn parses_a_pid_and_names_what_is_not_one() {
        assert_eq!(parse("1234\n"), Content::Pid(1234));
        assert_eq!(parse("  42  "), Content::Pid(42));
        assert_eq!(parse(""), Content::Empty);
        assert_eq!(parse(" \n"), Content::Empty);
        assert_eq!(parse("0"), Content::Garbage("0".into()));
        assert_eq!(parse("-5"), Content::Garbage("-5".into()));
        assert_eq!(parse("4294967295"), Content::Garbage("4294967295".into()));
        assert_eq!(parse("nginx"), Content::Garbage("nginx".into()));
        assert_eq!(parse("12 34"), Content::Garbage("12 34".into()));
    }

    #[test]
    fn reads_missing_empty_and_garbage_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.pid");
        assert_eq!(read(&p), Content::Missing);
        std::fs::write(&p, "").expect("write");
        assert_eq!(read(&p), Content::Empty);
        std::fs::write(&p, [0xff, 0xfe, 0x00]).expect("write");
        assert_eq!(read(&p), Content::Garbage("(not text)".into()));
        std::fs::write(&p, format!("{}\n", std::process::id())).expect("write");
        assert_eq!(read(&p), Content::Pid(std::process::id()));
        // A FIFO at the path would block a read until a writer comes: it is refused.
        let fifo = dir.path().join("fifo.pid");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("run mkfifo");
        assert!(made.success());
        match read(&fifo) {
            Content::Unreadable(e) => assert!(e.contains("FIFO"), "{e}"),
            other => panic!("a FIFO must be refused, not read: {other:?}"),
        }
    }

    #[test]
    fn a_live_process_can_be_watched_and_a_dead_one_cannot() {
        assert!(matches!(open(std::process::id()), Ok(Some(_))));
        // A child that exited but is not reaped yet: its pid exists, the process does not run.
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("run true");
        let pid = child.id();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while matches!(open(pid), Ok(Some(_))) {
            assert!(std::time::Instant::now() < deadline, "`true` did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.wait();
        assert!(matches!(open(pid), Ok(None)));
    }
}
