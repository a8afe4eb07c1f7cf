//! Watches: events that start a service's round at once instead of at its next tick.
//!
//! A service's `watch:` list names things whose going away the kernel tells us about in
//! microseconds: a TCP connection held open to the service ([`tcp`]) closes or resets when
//! its process dies; a process watched through a pidfd ([`pid_file`]) becomes readable when
//! it exits. Polling alone waits half a `check_interval` on average for the next round; a
//! watch event starts that round now ([`Trigger::run_now`]). A watch never decides health
//! by itself: the round's checks do, so a spurious event (a server closing idle
//! connections, a restart by the supervisor) costs one extra round and nothing else.
//!
//! Each kind lives in its own file and owns its config (`Spec`, with validation) and its
//! loop. This file holds what they share: the `watch:` item of the config, the state each
//! watch publishes for `/status`, and a service's [`ServiceWatches`], which run beside the
//! service and stop with it (a reload that changes or removes the service).

pub mod pid_file;
pub mod tcp;

use std::fmt;
use std::time::SystemTime;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::info;

use crate::config::ServiceConfig;
use crate::metrics::{Metrics, names};
use crate::problem::Problem;
use crate::service::Trigger;

/// Every watch kind, as written in the config.
pub const KINDS: &[&str] = &["tcp", "pid_file"];

/// One item of a service's `watch:` list: a map with one key, the kind, whose value is the
/// kind's config (`- tcp: 127.0.0.1:8080`, `- pid_file: /run/nginx.pid`).
#[derive(Debug, Clone, PartialEq)]
pub enum WatchSpec {
    Tcp(tcp::Spec),
    PidFile(pid_file::Spec),
}

impl WatchSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            WatchSpec::Tcp(_) => "tcp",
            WatchSpec::PidFile(_) => "pid_file",
        }
    }

    /// What it watches: `127.0.0.1:8080`, `/run/nginx.pid`.
    pub fn target(&self) -> String {
        match self {
            WatchSpec::Tcp(s) => s.address.clone(),
            WatchSpec::PidFile(s) => s.path.display().to_string(),
        }
    }

    /// The `watch` label of its metrics and its name in status: `tcp:127.0.0.1:8080`.
    pub fn label(&self) -> String {
        format!("{}:{}", self.kind(), self.target())
    }

    /// Problems with its fields, with paths relative to the item (`tcp`, `pid_file`).
    pub fn validate(&self) -> Vec<Problem> {
        let problem = match self {
            WatchSpec::Tcp(s) => s.validate(),
            WatchSpec::PidFile(s) => s.validate(),
        };
        problem
            .err()
            .map(|m| Problem::new(self.kind(), m))
            .into_iter()
            .collect()
    }
}

impl<'de> Deserialize<'de> for WatchSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = WatchSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a watch: a map with one key, `tcp: HOST:PORT` or `pid_file: PATH`")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<WatchSpec, A::Error> {
                let unknown = |k: &str| {
                    de::Error::custom(format!(
                        "unknown field `{k}`, expected `tcp` or `pid_file` (one per watch item)"
                    ))
                };
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(
                        "empty watch: write `- tcp: HOST:PORT` or `- pid_file: PATH`",
                    ));
                };
                let spec = match key.as_str() {
                    "tcp" => WatchSpec::Tcp(map.next_value()?),
                    "pid_file" => WatchSpec::PidFile(map.next_value()?),
                    other => return Err(unknown(other)),
                };
                if let Some(more) = map.next_key::<String>()? {
                    return Err(if KINDS.contains(&more.as_str()) {
                        de::Error::custom(format!(
                            "a `watch` item has one kind: write `{}` and `{more}` as two items",
                            spec.kind()
                        ))
                    } else {
                        unknown(&more)
                    });
                }
                Ok(spec)
            }
        }
        d.deserialize_map(V)
    }
}

// The `watch:` item is read by hand (a map with one key, the kind), so its schema is written
// here too: one of `{tcp: HOST:PORT}` and `{pid_file: PATH}`.
impl schemars::JsonSchema for WatchSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Watch".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An event that starts a round at once (the checks still decide)",
            "oneOf": [
                {
                    "type": "object",
                    "properties": {
                        "tcp": {
                            "type": "string",
                            "pattern": r"^\s*(\[[0-9a-fA-F:.]+\]|[^:\s\[\]]+):[0-9]{1,5}\s*$",
                            "description": "HOST:PORT of a TCP connection held open: its close, reset or refusal starts a round",
                            "examples": ["127.0.0.1:8080", "[::1]:8080"]
                        }
                    },
                    "required": ["tcp"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "properties": {
                        "pid_file": {
                            "type": "string",
                            "pattern": "^/",
                            "description": "Absolute path of a pid file: the exit of the process it names starts a round",
                            "examples": ["/run/nginx.pid"]
                        }
                    },
                    "required": ["pid_file"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// Problems with a service's `watch` list, with paths relative to the service
/// (`watch[1].tcp`).
pub fn problems(watches: &[WatchSpec]) -> Vec<Problem> {
    watches
        .iter()
        .enumerate()
        .flat_map(|(i, w)| {
            w.validate()
                .into_iter()
                .map(move |x| x.under(&format!("watch[{i}]")))
        })
        .collect()
}

/// The lines of a service's watches in `anycastd check-config` (at most `max`).
pub fn summary_lines(watches: &[WatchSpec], max: usize) -> Vec<String> {
    let mut out: Vec<String> = watches
        .iter()
        .take(max)
        .map(|w| format!("  watch  {}", w.label()))
        .collect();
    if watches.len() > max {
        out.push(format!("  watch  ({} more)", watches.len() - max));
    }
    out
}

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
    fn starting() -> WatchReport {
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
struct Context {
    service: String,
    label: String,
    trigger: Trigger,
    metrics: Metrics,
    report: watch::Sender<WatchReport>,
}

impl Context {
    /// Counts `event` in `anycastd_watch_events_total`.
    fn count(&self, event: &str) {
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
    fn start_round(&self, why: &str) {
        info!(service = %self.service, watch = %self.label, why, "watch event: starting a round now");
        self.trigger.run_now();
    }

    /// Publishes a new state (`since` moves only when the state itself changes).
    fn publish(&self, state: WatchState, pid: Option<u32>, detail: Option<String>) {
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

/// A service's watches, ready to run.
pub struct ServiceWatches {
    loops: Vec<(WatchSpec, Context)>,
}

impl ServiceWatches {
    /// One loop per item of the service's `watch:` list, starting rounds through `trigger`.
    pub fn new(svc: &ServiceConfig, trigger: &Trigger, metrics: &Metrics) -> ServiceWatches {
        let loops = svc
            .watch
            .iter()
            .map(|spec| {
                let (report, _) = watch::channel(WatchReport::starting());
                let cx = Context {
                    service: svc.name.clone(),
                    label: spec.label(),
                    trigger: trigger.clone(),
                    metrics: metrics.clone(),
                    report,
                };
                (spec.clone(), cx)
            })
            .collect();
        ServiceWatches { loops }
    }

    /// The watches' states, for the status view, in config order.
    pub fn views(&self) -> Vec<WatchView> {
        self.loops
            .iter()
            .map(|(_, cx)| WatchView {
                service: cx.service.clone(),
                watch: cx.label.clone(),
                report: cx.report.subscribe(),
            })
            .collect()
    }

    /// Runs every watch; they stop when the returned set is dropped (with their service).
    pub fn spawn(self) -> JoinSet<()> {
        // Each watch holds a descriptor for as long as it runs: the soft limit of open files
        // was raised to the hard one at start (crate::fdlimit).
        let mut tasks = JoinSet::new();
        for (spec, cx) in self.loops {
            match spec {
                WatchSpec::Tcp(s) => tasks.spawn(tcp::run(s, cx)),
                WatchSpec::PidFile(s) => tasks.spawn(pid_file::run(s, cx)),
            };
        }
        tasks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Vec<WatchSpec>, String> {
        serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn items_are_maps_with_one_kind() {
        let w = parse("- tcp: 127.0.0.1:8080\n- pid_file: /run/nginx.pid\n").expect("parses");
        assert_eq!(w[0].label(), "tcp:127.0.0.1:8080");
        assert_eq!(w[1].label(), "pid_file:/run/nginx.pid");
        assert_eq!(w[1].kind(), "pid_file");
    }

    #[test]
    fn unknown_and_doubled_kinds_say_how_to_write_them() {
        let e = parse("- tpc: 127.0.0.1:8080\n").expect_err("typo");
        assert!(
            e.contains("unknown field `tpc`") && e.contains("`pid_file`"),
            "{e}"
        );
        let e = parse("- tcp: 127.0.0.1:8080\n  pid_file: /run/x.pid\n").expect_err("two");
        assert!(e.contains("as two items"), "{e}");
        let e = parse("- {}\n").expect_err("empty");
        assert!(e.contains("empty watch"), "{e}");
    }

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
