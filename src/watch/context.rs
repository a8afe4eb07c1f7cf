//! What the watch loops share: the state each publishes for `/status`
//! ([`WatchReport`]), and the [`Context`] a loop runs in (its service's trigger, its
//! metrics, where its state goes).

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::info;

use crate::metrics::{Metrics, names};
use crate::service::rounds::Trigger;

/// What a watch knows about its target, for `/status` and `anycastd status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchState {
    /// Not started yet, or making its first connection.
    Starting,
    /// tcp: the connection is open.
    Connected,
    /// tcp: the connection closed, reset or could not be made; trying again with back-off.
    Reconnecting,
    /// pid_file: the process named in the file runs and is watched.
    ProcessAlive,
    /// pid_file: the file names a process that does not exist (or exited).
    ProcessNotRunning,
    /// pid_file: the file does not exist.
    PidFileMissing,
    /// pid_file: the file is empty.
    PidFileEmpty,
    /// pid_file: the file holds something other than a process id.
    PidFileGarbage,
    /// pid_file: the file cannot be read, or the process cannot be watched (the detail
    /// says why).
    Error,
}

impl WatchState {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchState::Starting => "starting",
            WatchState::Connected => "connected",
            WatchState::Reconnecting => "reconnecting",
            WatchState::ProcessAlive => "process_alive",
            WatchState::ProcessNotRunning => "process_not_running",
            WatchState::PidFileMissing => "pid_file_missing",
            WatchState::PidFileEmpty => "pid_file_empty",
            WatchState::PidFileGarbage => "pid_file_garbage",
            WatchState::Error => "error",
        }
    }
}

impl fmt::Display for WatchState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The latest state of one watch.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchReport {
    pub state: WatchState,
    /// pid_file: the process id read from the file, when it holds one.
    pub pid: Option<u32>,
    /// Why it is in that state (the connect error, the file's content), when it helps.
    pub detail: Option<String>,
    /// When it entered that state.
    pub since: SystemTime,
}

impl WatchReport {
    pub(super) fn starting() -> WatchReport {
        WatchReport {
            state: WatchState::Starting,
            pid: None,
            detail: None,
            since: SystemTime::now(),
        }
    }
}

/// One watch's view for status: whose it is, what it watches, and its latest report.
#[derive(Clone)]
pub struct WatchView {
    pub service: String,
    pub watch: String,
    pub report: watch::Receiver<WatchReport>,
}

/// What a watch loop needs besides its spec: the service's trigger, where its events are
/// counted, and where its state goes.
pub struct Context {
    pub service: String,
    pub label: String,
    pub trigger: Trigger,
    pub metrics: Metrics,
    pub report: watch::Sender<WatchReport>,
}

impl Context {
    /// Counts `event` in `anycastd_watch_events_total`.
    pub fn count(&self, event: &str) {
        self.metrics
            .counter(
                names::WATCH_EVENTS,
                &[
                    ("service", self.service.as_str()),
                    ("watch", self.label.as_str()),
                    ("event", event),
                ],
            )
            .increment(1);
    }

    /// Starts a round of the service now, saying why.
    pub fn start_round(&self, why: &str) {
        info!(service = %self.service, watch = %self.label, why, "watch event: starting a round now");
        self.trigger.run_now();
    }

    /// Publishes a new state (`since` moves only when the state itself changes).
    pub fn publish(&self, state: WatchState, pid: Option<u32>, detail: Option<String>) {
        self.report.send_if_modified(|r| {
            let changed = r.state != state;
            let new = WatchReport {
                state,
                pid,
                detail,
                since: if changed { SystemTime::now() } else { r.since },
            };
            if *r == new {
                false
            } else {
                *r = new;
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_serialize_as_their_names() {
        for s in [
            WatchState::Connected,
            WatchState::PidFileGarbage,
            WatchState::ProcessNotRunning,
        ] {
            let json = serde_json::to_string(&s).expect("json");
            assert_eq!(json, format!("\"{s}\""));
        }
    }
}
