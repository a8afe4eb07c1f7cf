//! systemd integration: the sd_notify protocol, spoken directly (no libsystemd).
//!
//! Under `Type=notify`, systemd passes `$NOTIFY_SOCKET` (a filesystem path, or an abstract
//! socket written `@name`) and, with `WatchdogSec=`, `$WATCHDOG_USEC`. anycastd sends:
//! - `READY=1` once the config is loaded and the first connection attempt to gobgpd has
//!   finished (success or failure), so that `systemctl start` returns when the daemon is
//!   really at work;
//! - `WATCHDOG=1` every half `WATCHDOG_USEC`, but only while [`Liveness`] says every loop of
//!   the daemon is alive: a wedged loop stops the pings, and systemd kills and restarts the
//!   daemon (which withdraws nothing, but the restart reconciles gobgpd's RIB);
//! - `STOPPING=1` when it starts shutting down.
//!
//! Everything is a no-op when `$NOTIFY_SOCKET` is unset (not run by systemd).

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, warn};

use crate::metrics::Liveness;

/// A handle to the service manager's notification socket; does nothing when there is none.
/// Cheap to clone.
#[derive(Clone, Default)]
pub struct Notifier {
    inner: Option<Arc<(UnixDatagram, SocketAddr)>>,
}

impl Notifier {
    /// The notifier for `$NOTIFY_SOCKET`; a no-op one when it is unset or unusable (the
    /// latter is logged: the daemon works without systemd).
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        match Notifier::new(socket.as_deref()) {
            Ok(n) => n,
            Err(e) => {
                warn!(
                    error = e.to_string().as_str(),
                    "NOTIFY_SOCKET is set but unusable; not notifying systemd"
                );
                Notifier::default()
            }
        }
    }

    /// The notifier for the socket named `socket` (as in `$NOTIFY_SOCKET`); `None` or an
    /// empty name gives a no-op notifier.
    pub fn new(socket: Option<&OsStr>) -> io::Result<Notifier> {
        let Some(name) = socket.filter(|s| !s.is_empty()) else {
            return Ok(Notifier::default());
        };
        let bytes = name.as_bytes();
        let target = match bytes.first() {
            Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..])?,
            Some(b'/') => SocketAddr::from_pathname(name)?,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{:?} is neither an absolute path nor an abstract socket (@name)",
                        name
                    ),
                ));
            }
        };
        let sock = UnixDatagram::unbound()?;
        Ok(Notifier {
            inner: Some(Arc::new((sock, target))),
        })
    }

    /// Whether notifications go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Sends one notification (`READY=1`, ...). A no-op without a socket.
    pub fn notify(&self, state: &str) -> io::Result<()> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let (sock, target) = &**inner;
        let sent = sock.send_to_addr(state.as_bytes(), target)?;
        if sent != state.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "notification truncated",
            ));
        }
        debug!(state = %state, "notified systemd");
        Ok(())
    }

    /// `READY=1`, logging a failure.
    pub fn ready(&self) {
        self.send_logged("READY=1");
    }

    /// `STOPPING=1`, logging a failure.
    pub fn stopping(&self) {
        self.send_logged("STOPPING=1");
    }

    fn send_logged(&self, state: &str) {
        if let Err(e) = self.notify(state) {
            warn!(state = %state, error = e.to_string().as_str(), "could not notify systemd");
        }
    }

    /// Pings `WATCHDOG=1` every `every` while `liveness` is healthy; never returns. When a
    /// loop is late or gone the pings stop (logged once per episode), so that systemd's
    /// watchdog ends the daemon.
    pub async fn watchdog(self, every: Duration, liveness: Liveness) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut withheld = false;
        loop {
            tick.tick().await;
            match liveness.check() {
                Ok(()) => {
                    withheld = false;
                    self.send_logged("WATCHDOG=1");
                }
                Err(bad) => {
                    if !withheld {
                        warn!(
                            stuck = bad.join("; ").as_str(),
                            "not pinging systemd's watchdog: a loop is stuck"
                        );
                    }
                    withheld = true;
                }
            }
        }
    }
}

/// Wires the daemon to systemd: `READY=1` when `first_attempt` resolves (not when its sender
/// is dropped: the announcer died first), then the watchdog pings when `$WATCHDOG_USEC` asks
/// for them (systemd arms the watchdog once the service is ready). Returns the notifier, for
/// `STOPPING=1`. Call from within the runtime.
pub fn spawn(first_attempt: tokio::sync::oneshot::Receiver<()>, liveness: Liveness) -> Notifier {
    let notifier = Notifier::from_env();
    if !notifier.is_enabled() {
        return notifier;
    }
    let n = notifier.clone();
    tokio::spawn(async move {
        if first_attempt.await.is_err() {
            return;
        }
        n.ready();
        if let Some(every) = watchdog_interval_from_env() {
            n.watchdog(every, liveness).await;
        }
    });
    notifier
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, when the watchdog is enabled for
/// this process (`WATCHDOG_PID` unset or equal to `pid`). Pass the variables' values.
pub fn watchdog_interval(
    watchdog_usec: Option<&str>,
    watchdog_pid: Option<&str>,
    pid: u32,
) -> Option<Duration> {
    if let Some(p) = watchdog_pid
        && p.trim().parse::<u32>().ok() != Some(pid)
    {
        return None;
    }
    let usec: u64 = watchdog_usec?.trim().parse().ok()?;
    // Half the timeout, and never zero (a zero period would panic the ticker).
    (usec > 0).then(|| Duration::from_micros((usec / 2).max(1)))
}

/// [`watchdog_interval`] from this process's environment.
pub fn watchdog_interval_from_env() -> Option<Duration> {
    let usec = std::env::var("WATCHDOG_USEC").ok();
    let pid = std::env::var("WATCHDOG_PID").ok();
    watchdog_interval(usec.as_deref(), pid.as_deref(), std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recv(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        let mut buf = [0u8; 256];
        let n = sock.recv(&mut buf).expect("a notification within 5s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn no_socket_is_a_no_op() {
        let n = Notifier::new(None).expect("no-op");
        assert!(!n.is_enabled());
        assert!(n.notify("READY=1").is_ok());
        let n = Notifier::new(Some(OsStr::new(""))).expect("no-op");
        assert!(!n.is_enabled());
    }

    #[test]
    fn relative_name_is_refused() {
        assert!(Notifier::new(Some(OsStr::new("notify.sock"))).is_err());
    }

    #[test]
    fn sends_to_a_path_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).expect("bind the notify socket");
        let n = Notifier::new(Some(path.as_os_str())).expect("notifier");
        assert!(n.is_enabled());
        n.ready();
        assert_eq!(recv(&server), "READY=1");
        n.stopping();
        assert_eq!(recv(&server), "STOPPING=1");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("anycastd-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .expect("abstract address");
        let server = UnixDatagram::bind_addr(&addr).expect("bind the abstract socket");
        let n = Notifier::new(Some(OsStr::new(&format!("@{name}")))).expect("notifier");
        n.notify("READY=1").expect("send");
        assert_eq!(recv(&server), "READY=1");
    }

    #[test]
    fn missing_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let n = Notifier::new(Some(dir.path().join("gone.sock").as_os_str())).expect("notifier");
        assert!(n.notify("READY=1").is_err());
        n.ready(); // logged, not fatal
    }

    #[test]
    fn watchdog_interval_is_half_and_for_this_pid_only() {
        assert_eq!(
            watchdog_interval(Some("30000000"), None, 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_interval(Some("30000000"), Some("7"), 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(watchdog_interval(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
        // One microsecond: half of it rounds to zero, which would panic the ticker.
        assert_eq!(
            watchdog_interval(Some("1"), None, 7),
            Some(Duration::from_micros(1))
        );
    }

    #[tokio::test]
    async fn watchdog_pings_only_while_the_loops_are_alive() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).expect("bind");
        let n = Notifier::new(Some(path.as_os_str())).expect("notifier");
        let liveness = Liveness::default();
        let beat = liveness.register("loop", Duration::from_secs(60));
        let task = tokio::spawn(n.watchdog(Duration::from_millis(20), liveness));
        let server = tokio::task::spawn_blocking(move || {
            assert_eq!(recv(&server), "WATCHDOG=1");
            server
        })
        .await
        .expect("first ping");
        // The loop ends: pings already queued may still be read, then silence (pings come
        // every 20 ms while alive, so 300 ms without one means they stopped).
        drop(beat);
        let silent = tokio::task::spawn_blocking(move || {
            server
                .set_read_timeout(Some(Duration::from_millis(300)))
                .expect("timeout");
            let mut buf = [0u8; 64];
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                if server.recv(&mut buf).is_err() {
                    return true;
                }
            }
            false
        })
        .await
        .expect("silence");
        task.abort();
        assert!(silent, "pings went on after the loop stopped");
    }
}
