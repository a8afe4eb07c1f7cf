//! `tcp: HOST:PORT`: a TCP connection held open to the service, nothing ever sent on it.
//!
//! When the service's process dies, the kernel closes its sockets at once and our end reads
//! EOF (or a reset) within microseconds: that starts a round. The loop then reconnects:
//! at once after a connection that lived [`STABLE`] or longer (a server that closes idle
//! connections costs one extra round and nothing else), else after a back-off that doubles
//! from [`BACKOFF_MIN`] to [`BACKOFF_MAX`], so that a server that closes every connection
//! at once, or refuses them, is not hammered. Which events start a round is decided by
//! [`starts_round`].

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::context::{Context, WatchState};
use crate::backoff::Backoff;
use crate::config::watches::tcp::Spec;

/// A connection that lived this long was a good one: the next reconnect is immediate.
pub const STABLE: Duration = Duration::from_secs(1);
/// The first pause before a reconnect after a short-lived connection or a failed attempt.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest pause between reconnect attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Bound on one connect attempt (an unreachable host would otherwise take minutes).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// What the loop saw, also the `event` label of `anycastd_watch_events_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Connected,
    /// The other end closed the connection (EOF).
    Closed,
    /// The connection failed under us (reset, or another read error).
    Reset,
    /// A connect attempt failed (refused, unreachable, timed out).
    ConnectFailed,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Connected => "connected",
            Event::Closed => "closed",
            Event::Reset => "reset",
            Event::ConnectFailed => "connect_failed",
        }
    }
}

/// Whether `event` starts a round, given the event before it (`None` at start) and whether
/// the attempt that produced it followed a pause.
///
/// - A close or a reset: always (the service may have died).
/// - A failed attempt: when it follows a close or reset after a pause: the round of that
///   close has passed, and the server now refuses. Not the immediate retry after a close
///   (the close's round, which starts at the same moment, covers it), not the further
///   attempts of a series (nothing new), not at start (the first round runs anyway).
/// - A connection after failed attempts: the service is back; a round lets it rise now.
pub fn starts_round(previous: Option<Event>, event: Event, paused: bool) -> bool {
    match event {
        Event::Closed | Event::Reset => true,
        Event::ConnectFailed => {
            paused && matches!(previous, Some(Event::Closed) | Some(Event::Reset))
        }
        Event::Connected => previous == Some(Event::ConnectFailed),
    }
}

/// Holds a connection to `spec.address` for as long as the daemon runs.
pub(super) async fn run(spec: Spec, cx: Context) {
    let addr = spec.address.trim().to_string();
    let mut previous: Option<Event> = None;
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
    let mut pause = Duration::ZERO;
    loop {
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        let paused = !pause.is_zero();
        let (event, detail) =
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await {
                Ok(Ok(stream)) => {
                    note(&cx, &mut previous, Event::Connected, paused, None);
                    let opened = Instant::now();
                    let (event, detail) = hold(stream).await;
                    // Reconnect at once after a good connection; back off after a short one.
                    if opened.elapsed() >= STABLE {
                        backoff.reset();
                        pause = Duration::ZERO;
                    } else {
                        pause = backoff.next_wait();
                    }
                    // The close is seen at once, never after a pause.
                    note(&cx, &mut previous, event, false, detail);
                    continue;
                }
                Ok(Err(e)) => (
                    Event::ConnectFailed,
                    format!("cannot connect: {}", crate::wording::error_chain(&e)),
                ),
                Err(_) => (
                    Event::ConnectFailed,
                    format!(
                        "cannot connect: no connection within {}",
                        crate::duration::Dur(CONNECT_TIMEOUT)
                    ),
                ),
            };
        pause = backoff.next_wait();
        note(&cx, &mut previous, event, paused, Some(detail));
    }
}

/// Counts, publishes and logs one event, and starts a round when it should.
fn note(
    cx: &Context,
    previous: &mut Option<Event>,
    event: Event,
    paused: bool,
    detail: Option<String>,
) {
    cx.count(event.as_str());
    let round = starts_round(*previous, event, paused);
    let repeated = *previous == Some(event);
    *previous = Some(event);
    let state = match event {
        Event::Connected => WatchState::Connected,
        _ => WatchState::Reconnecting,
    };
    let why = detail.clone().unwrap_or_else(|| event.as_str().to_string());
    cx.publish(state, None, detail);
    if round {
        cx.start_round(&why);
    } else if repeated {
        debug!(service = %cx.service, watch = %cx.label, event = event.as_str(), detail = %why, "watch event");
    } else if event == Event::ConnectFailed {
        // A watch that cannot connect watches nothing (a wrong port, say): the operator must
        // see it at the default level, even while the checks pass.
        warn!(service = %cx.service, watch = %cx.label, event = event.as_str(), detail = %why, "tcp watch cannot connect; it keeps trying");
    } else {
        info!(service = %cx.service, watch = %cx.label, event = event.as_str(), detail = %why, "watch event");
    }
}

/// Waits until the connection ends: `Closed` on EOF, `Reset` on an error. Whatever the
/// server sends (a banner, say) is read and dropped.
async fn hold(mut stream: TcpStream) -> (Event, Option<String>) {
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => return (Event::Closed, Some("closed by the other end".to_string())),
            Ok(_) => continue,
            Err(e) => {
                return (
                    Event::Reset,
                    Some(format!(
                        "connection lost: {}",
                        crate::wording::error_chain(&e)
                    )),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(a: &str) -> Result<(), String> {
        Spec {
            address: a.to_string(),
        }
        .validate()
    }

    #[test]
    fn address_needs_a_host_and_a_port_in_range() {
        assert_eq!(check("127.0.0.1:8080"), Ok(()));
        assert_eq!(check("[::1]:8080"), Ok(()));
        assert_eq!(check("localhost:1"), Ok(()));
        let e = check("127.0.0.1").expect_err("no port");
        assert!(e.contains("has no port") && e.contains("HOST:PORT"), "{e}");
        let e = check("127.0.0.1:65536").expect_err("out of range");
        assert!(e.contains("out of range") && e.contains("1..65535"), "{e}");
        assert!(check("127.0.0.1:0").is_err());
        assert!(check("127.0.0.1:http").is_err());
        assert!(check(":8080").expect_err("no host").contains("no host"));
        assert!(check("::1").expect_err("v6").contains("brackets"));
        assert!(check("").is_err());
    }

    #[test]
    fn a_lost_connection_starts_one_round() {
        use Event::*;
        // The service dies: the close starts a round, the immediate retry's refusal does not,
        // nor do the refusals that follow.
        assert!(starts_round(Some(Connected), Closed, false));
        assert!(!starts_round(Some(Closed), ConnectFailed, false));
        assert!(!starts_round(Some(ConnectFailed), ConnectFailed, true));
        assert!(starts_round(Some(Connected), Reset, false));
        // An idle close and an immediate reconnect: one round.
        assert!(!starts_round(Some(Closed), Connected, false));
        // A short-lived connection, then a refusal after the pause: news, a round.
        assert!(starts_round(Some(Closed), ConnectFailed, true));
        // Back after refusals: a round, so that the service can rise now.
        assert!(starts_round(Some(ConnectFailed), Connected, true));
        // At start: nothing (the first round runs anyway).
        assert!(!starts_round(None, Connected, false));
        assert!(!starts_round(None, ConnectFailed, false));
    }
}
