//! The one loop that keeps a connection to gobgpd, shared by the announcer and the peer
//! monitor: connect, run a session on the client, and after *any* failure (connect, set-up,
//! a call in the middle of the session) wait with backoff before the next attempt, until
//! shutdown.
//!
//! Two rules keep a broken gobgpd from turning into a busy loop (issue 10: a `StartBgp`
//! that failed right after a successful connect used to reset the backoff and reconnect at
//! once, 1,600 times a second, writing 430 KB of log a second):
//! - the backoff is reset only by a session that lasted at least the longest wait of [`BACKOFF`]: a
//!   session that fails quickly, however it fails, waits longer each time;
//! - a failure is logged at WARN when it starts and when its message changes, and then at
//!   most once a minute while it repeats ([`FailureLog`]); the attempts in between log at
//!   DEBUG.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{debug, error, warn};

use super::gobgp::client::Client;
use super::gobgp::ops::GobgpError;
use super::state::Stop;
use crate::backoff::Backoff;

/// How one [`Link::attempt`] ended.
#[derive(Debug)]
pub enum Attempt<T> {
    /// The session returned this.
    Done(T),
    /// Shutdown came while connecting, or before.
    Shutdown,
    /// Connecting or the session failed; wait `retry_in` before the next attempt.
    Failed {
        error: GobgpError,
        retry_in: Duration,
    },
}

/// The waits between attempts to reach gobgpd: 200 ms, doubling up to 5 s, and back to
/// 200 ms after a session that lasted.
pub const BACKOFF: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));

/// How often a failure that keeps repeating is logged again at WARN.
const REPEAT_LOG_EVERY: Duration = Duration::from_secs(60);

/// Connects to gobgpd and runs sessions on it, with backoff and a bounded log rate.
pub struct Link {
    address: String,
    timeout: Duration,
    backoff: Backoff,
}

impl Link {
    pub fn new(address: &str, timeout: Duration) -> Link {
        Link {
            address: address.to_string(),
            timeout,
            backoff: BACKOFF,
        }
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// One attempt: connects and runs `session` on the client. On failure, says how long
    /// to wait before the next attempt ([`Link::pause`]); the caller logs it ([`FailureLog`]).
    /// Shutdown cancels the connect, never the session: the announcer withdraws its routes
    /// inside its session, which must watch `shutdown` itself.
    pub async fn attempt<T, Fut>(
        &mut self,
        shutdown: &mut watch::Receiver<Stop>,
        session: impl FnOnce(Client) -> Fut,
    ) -> Attempt<T>
    where
        Fut: Future<Output = Result<T, GobgpError>>,
    {
        if *shutdown.borrow() != Stop::Running {
            return Attempt::Shutdown;
        }
        let started = Instant::now();
        let connected = tokio::select! {
            c = Client::connect(&self.address, self.timeout) => c,
            _ = shutdown.changed() => return Attempt::Shutdown,
        };
        let error = match connected {
            Ok(client) => match session(client).await {
                Ok(v) => return Attempt::Done(v),
                Err(e) => e,
            },
            Err(e) => e,
        };
        if started.elapsed() >= self.backoff.max() {
            self.backoff.reset();
        }
        let retry_in = self.backoff.next_wait();
        Attempt::Failed { error, retry_in }
    }

    /// Waits `wait`; `false` when shutdown came first.
    pub async fn pause(&self, wait: Duration, shutdown: &mut watch::Receiver<Stop>) -> bool {
        if *shutdown.borrow() != Stop::Running {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = shutdown.changed() => false,
        }
    }
}

/// Logs a repeating failure once when it starts, again when its message changes, and at
/// most once a [`REPEAT_LOG_EVERY`] while it repeats.
#[derive(Debug)]
pub struct FailureLog {
    what: &'static str,
    /// The failure being repeated: its message, when it began, when it was last logged at
    /// WARN, and how many attempts failed since it began.
    current: Option<Failing>,
}

#[derive(Debug)]
struct Failing {
    message: String,
    since: Instant,
    logged: Instant,
    attempts: u64,
}

/// What [`FailureLog::failed`] decided to do with one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logged {
    /// A new failure, or a new message: logged at WARN.
    New,
    /// The same failure, logged again at WARN after a quiet minute.
    Reminder,
    /// The same failure, at DEBUG only.
    Quiet,
}

impl FailureLog {
    pub fn new(what: &'static str) -> FailureLog {
        FailureLog {
            what,
            current: None,
        }
    }

    pub fn failed(&mut self, error: &GobgpError, retry_in: Duration) -> Logged {
        self.failed_at(error, retry_in, Instant::now())
    }

    fn failed_at(&mut self, error: &GobgpError, retry_in: Duration, now: Instant) -> Logged {
        let message = error.to_string();
        let what = self.what;
        match &mut self.current {
            Some(f) if f.message == message => {
                f.attempts += 1;
                if now.duration_since(f.logged) >= REPEAT_LOG_EVERY {
                    f.logged = now;
                    warn!(
                        loop_name = %what,
                        error = message.as_str(),
                        attempts = f.attempts,
                        failing_for = %humantime::format_duration(round_secs(now.duration_since(f.since))),
                        retry_in = %humantime::format_duration(retry_in),
                        "gobgpd is still unusable"
                    );
                    Logged::Reminder
                } else {
                    debug!(loop_name = %what, error = message.as_str(), retry_in = %humantime::format_duration(retry_in), "gobgpd is still unusable");
                    Logged::Quiet
                }
            }
            _ => {
                let since = self.current.as_ref().map_or(now, |f| f.since);
                if matches!(error, GobgpError::Owned { .. }) {
                    // Not a fault that passes by itself: a person must stop one of the two.
                    error!(loop_name = %what, error = message.as_str(), retry_in = %humantime::format_duration(retry_in), "gobgpd is driven by another anycastd");
                } else {
                    warn!(loop_name = %what, error = message.as_str(), retry_in = %humantime::format_duration(retry_in), "gobgpd is not reachable or not usable");
                }
                self.current = Some(Failing {
                    message,
                    since,
                    logged: now,
                    attempts: 1,
                });
                Logged::New
            }
        }
    }

    /// The failure (if any) is over.
    pub fn recovered(&mut self, address: &str) {
        if let Some(f) = self.current.take() {
            warn!(
                loop_name = self.what,
                address = %address,
                failed_attempts = f.attempts,
                failing_for = %humantime::format_duration(round_secs(f.since.elapsed())),
                "gobgpd is usable again"
            );
        }
    }
}

fn round_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(status: &str) -> GobgpError {
        GobgpError::Rpc {
            endpoint: "127.0.0.1:1".into(),
            call: "StartBgp",
            code: tonic::Code::Unavailable,
            message: status.into(),
        }
    }

    #[test]
    fn a_repeated_failure_is_logged_once_a_minute() {
        let mut log = FailureLog::new("test");
        let t0 = Instant::now();
        let e = rpc("address already in use");
        assert_eq!(log.failed_at(&e, Duration::ZERO, t0), Logged::New);
        let mut warned = 1;
        // Ten minutes of attempts every 100 ms: one WARN at the start, one a minute after.
        for i in 1..6000u64 {
            let at = t0 + Duration::from_millis(100 * i);
            if log.failed_at(&e, Duration::ZERO, at) != Logged::Quiet {
                warned += 1;
            }
        }
        assert_eq!(warned, 10, "one at the start and one per minute after");
    }

    #[test]
    fn a_new_message_is_logged_at_once() {
        let mut log = FailureLog::new("test");
        let t0 = Instant::now();
        assert_eq!(log.failed_at(&rpc("a"), Duration::ZERO, t0), Logged::New);
        assert_eq!(log.failed_at(&rpc("a"), Duration::ZERO, t0), Logged::Quiet);
        assert_eq!(log.failed_at(&rpc("b"), Duration::ZERO, t0), Logged::New);
        log.recovered("x");
        assert_eq!(log.failed_at(&rpc("b"), Duration::ZERO, t0), Logged::New);
    }

    #[tokio::test]
    async fn quick_failures_back_off_whatever_stage_failed() {
        // A "gobgpd" that accepts TCP and then never answers: the API probe of every
        // connect times out (50 ms here), the failure of a stage before the session; a
        // session that would fail at once (a StartBgp refused with "address already in
        // use") goes through the same wait.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            loop {
                if let Ok((s, _)) = listener.accept().await {
                    // Keep it open and say nothing: the sessions fail by themselves.
                    tokio::spawn(async move {
                        let _keep = s;
                        std::future::pending::<()>().await;
                    });
                }
            }
        });
        let mut link = Link::new(&addr, Duration::from_millis(50));
        let (_tx, mut shutdown) = watch::channel(Stop::Running);
        let mut waits = Vec::new();
        let mut sessions = 0;
        let run = async {
            loop {
                let a = link
                    .attempt(&mut shutdown, |_c| {
                        sessions += 1;
                        async { Err::<(), _>(rpc("address already in use")) }
                    })
                    .await;
                let Attempt::Failed { retry_in, .. } = a else {
                    panic!("every session fails: {a:?}")
                };
                waits.push(retry_in);
                link.pause(retry_in, &mut shutdown).await;
            }
        };
        // 2.5 s: waits of 0.2, 0.4, 0.8 s and a fourth of 1.6 s under way; the spin this
        // replaced made thousands of attempts in that time.
        let _ = tokio::time::timeout(Duration::from_millis(2500), run).await;
        assert!(
            (3..=5).contains(&waits.len()),
            "{} attempts in 2.5 s",
            waits.len()
        );
        assert_eq!(sessions, 0, "no API answered, so no session ran");
        assert!(
            waits.windows(2).all(|w| w[1] > w[0]),
            "the waits grow: {waits:?}"
        );
    }
}
