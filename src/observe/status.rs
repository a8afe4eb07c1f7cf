//! The daemon's state in one document: served as JSON at `GET /status`, and printed as
//! tables by `anycastd status`. It answers "why is this prefix (not) announced?": each
//! service with its counters and each check's last result and error, each prefix wanted
//! and announced, each BGP session.
//!
//! Nothing here is kept twice: a [`StatusView`] reads the latest round reports, the gate,
//! the announcer's state and the peer table from their watch channels when asked.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::announcer::gobgp::ops::Api;
use crate::announcer::history::{PrefixState, RouteHistory};
use crate::announcer::intent::{Intent, Route};
use crate::announcer::peers::{PeerInfo, PeerTable};
use crate::announcer::{AnnouncerState, GobgpHealth};
use crate::config::attributes::{RouteState, describe};

use crate::config::ServiceConfig;
use crate::config::checks::OnFailure;
use crate::fleet::policy::Fleet;
use crate::fleet::view::FleetStatus;
use crate::runtime::drain::Reason;
use crate::service::gate::{Desired, Gate};
use crate::service::health::{Health, ServiceState};
use crate::service::rounds::RoundReport;
use crate::watch::context::{WatchState, WatchView};
use crate::wording::rfc3339;

/// The whole status document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub gobgp: GobgpStatus,
    pub services: Vec<ServiceStatus>,
    pub prefixes: Vec<PrefixStatus>,
    /// `None` while gobgpd cannot be asked.
    pub peers: Option<Vec<PeerInfo>>,
    /// The last reload, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload: Option<ReloadStatus>,
    /// The fleet guard's view of each prefix, with a `fleet` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetStatus>,
    /// Every service's watches, in config order (absent from older daemons' documents).
    #[serde(default)]
    pub watches: Vec<WatchStatus>,
}

/// One watch of a service (`watch:` in the config) and what it knows about its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchStatus {
    pub service: String,
    /// `tcp:127.0.0.1:8080`, `pid_file:/run/nginx.pid`.
    pub watch: String,
    pub state: WatchState,
    /// The process id the pid file names, when it names one.
    pub pid: Option<u32>,
    /// Why it is in that state (a connect error, what the pid file holds).
    pub detail: Option<String>,
    /// When it entered that state (RFC 3339).
    pub since: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GobgpStatus {
    pub address: String,
    pub router_id: String,
    pub asn: u32,
    /// The GoBGP API gobgpd spoke at the last connect (`v3`: GoBGP 3.x, `v4`: 4.x); none
    /// before the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<Api>,
    /// Whether gobgpd is usable: set up and reconciled, its calls succeeding.
    pub up: bool,
    /// Why it is not, while it is not (the last failed call or connect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Since when it has not been usable (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unusable_since: Option<String>,
    /// The last change someone else made to anycastd's paths or peers in gobgpd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign_change: Option<String>,
    /// Why the peers configured with BFD run without it (SPEC 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    /// What its routes follow: `up`, `degraded`, `down` or `drained`.
    pub state: ServiceState,
    /// Since when (RFC 3339): its last change of state, or its start.
    pub since: String,
    /// What its checks say, with the counters that can change it (rise/fall).
    pub health: Health,
    /// Why it is drained (files, commands); empty when it is not.
    #[serde(default)]
    pub drained_by: Vec<String>,
    pub rise: u32,
    pub fall: u32,
    pub check_interval: String,
    /// When the last round ended (RFC 3339); `None` before the first.
    pub last_round: Option<String>,
    pub checks: Vec<CheckStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    pub name: String,
    pub kind: String,
    pub target: String,
    /// What its failure does: `withdraw` or `degrade`.
    pub on_failure: OnFailure,
    /// `pass`, `fail`, or `pending` before the first round.
    pub result: CheckResult,
    pub error: Option<String>,
    pub duration_seconds: Option<f64>,
    pub attempts: Option<u32>,
}

/// A check's last result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckResult {
    Pass,
    Fail,
    /// No round has run yet.
    Pending,
}

impl CheckResult {
    /// `PASS`, `FAIL`, `PENDING`, as the table shows it.
    pub fn shouted(self) -> &'static str {
        match self {
            CheckResult::Pass => "PASS",
            CheckResult::Fail => "FAIL",
            CheckResult::Pending => "PENDING",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrefixStatus {
    pub prefix: String,
    pub next_hop: Option<String>,
    /// The services that gate it: every service for `announcer.routes`, else its own.
    pub gated_by: Vec<String>,
    /// Whether the services' states call for it now.
    pub wanted: bool,
    /// Whether gobgpd announces it (as of anycastd's last look).
    pub announced: bool,
    /// The attributes it is announced with, by state: `up`, `degraded: med 500, prepend 3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<String>,
    /// Its state in gobgpd: `up`, `degraded`, `draining` (announced so) or `withdrawn`.
    #[serde(default = "withdrawn")]
    pub state: PrefixState,
    /// Since when (RFC 3339): its last transition; `None` if it has not changed since
    /// anycastd started.
    #[serde(default)]
    pub since: Option<String>,
    /// Why it is in that state: the reason of its last transition, or what the gate says of
    /// it while it has none.
    #[serde(default)]
    pub cause: Option<String>,
    /// Held announced by the fleet guard, while its services (or a drain) would withdraw it.
    #[serde(default)]
    pub held: bool,
    /// Its last transitions, oldest first (at most `announcer::history::KEPT`).
    #[serde(default)]
    pub history: Vec<TransitionStatus>,
}

/// One change of a prefix's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionStatus {
    /// RFC 3339, with milliseconds.
    pub at: String,
    pub from: PrefixState,
    pub to: PrefixState,
    pub reason: String,
}

fn withdrawn() -> PrefixState {
    PrefixState::Withdrawn
}

/// The outcome of the last reload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReloadStatus {
    pub at: String,
    pub ok: bool,
    /// What changed, or why the file was refused.
    pub message: String,
}

/// What a service looks like before its first round, from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceShape {
    name: String,
    rise: u32,
    fall: u32,
    check_interval: String,
    checks: Vec<CheckShape>,
}

/// A check as the config gives it.
#[derive(Debug, Clone, PartialEq)]
struct CheckShape {
    name: String,
    kind: &'static str,
    target: String,
    on_failure: OnFailure,
}

impl ServiceShape {
    pub fn of(s: &ServiceConfig) -> ServiceShape {
        ServiceShape {
            name: s.name.clone(),
            rise: s.rise,
            fall: s.fall,
            check_interval: s.check_interval.to_string(),
            checks: s
                .checks
                .iter()
                .map(|c| CheckShape {
                    name: c.name.clone(),
                    kind: c.kind(),
                    target: c.spec.target(),
                    on_failure: c.on_failure,
                })
                .collect(),
        }
    }
}

/// A running service as the status view sees it: its shape and its round reports.
#[derive(Clone)]
pub struct ServiceEntry {
    pub shape: ServiceShape,
    pub reports: watch::Receiver<Option<RoundReport>>,
    /// Its watches' states.
    pub watches: Vec<WatchView>,
}

/// The daemon's channels the status is read from.
#[derive(Clone)]
pub struct Sources {
    pub intents: watch::Receiver<Arc<Intent>>,
    /// The running services, in config order (a reload replaces the list).
    pub services: watch::Receiver<Vec<ServiceEntry>>,
    pub gate: watch::Receiver<Gate>,
    pub drains: watch::Receiver<BTreeMap<String, Vec<Reason>>>,
    pub announcer: watch::Receiver<AnnouncerState>,
    pub peers: watch::Receiver<Option<PeerTable>>,
    pub reload: watch::Receiver<Option<ReloadStatus>>,
    pub fleet: Option<Fleet>,
    /// Each prefix's last transitions.
    pub history: RouteHistory,
}

/// Reads the daemon's state from the channels its tasks publish on.
pub struct StatusView {
    sources: Sources,
}

impl StatusView {
    pub fn new(sources: Sources) -> StatusView {
        StatusView { sources }
    }

    pub fn snapshot(&self) -> Status {
        let src = &self.sources;
        let intent = src.intents.borrow().clone();
        let gate = src.gate.borrow().clone();
        let drains = src.drains.borrow().clone();
        let a = src.announcer.borrow().clone();
        let services = src
            .services
            .borrow()
            .iter()
            .map(|e| {
                let state = gate.state(&e.shape.name).unwrap_or(ServiceState::Down);
                let drained_by = drains
                    .get(&e.shape.name)
                    .map(|r| r.iter().map(ToString::to_string).collect())
                    .unwrap_or_default();
                let since = gate.since(&e.shape.name).map(rfc3339).unwrap_or_default();
                service_status(
                    &e.shape,
                    e.reports.borrow().as_ref(),
                    state,
                    since,
                    drained_by,
                )
            })
            .collect();
        let desired = gate.desired();
        let fleet = src.fleet.as_ref().map(Fleet::status);
        let held: std::collections::BTreeSet<&str> = fleet
            .iter()
            .flat_map(|f| f.prefixes.iter())
            .filter(|p| p.held_here)
            .map(|p| p.prefix.as_str())
            .collect();
        let history = src.history.lock();
        let prefixes = a
            .prefixes
            .iter()
            .map(|p| {
                let announced = a.announced.get(p);
                let record = history.get(p);
                let label = p.to_string();
                let held = held.contains(label.as_str()) && announced.is_some();
                let current = record.and_then(|r| r.current());
                PrefixStatus {
                    next_hop: intent.routes.get(p).map(|r| r.next_hop.to_string()),
                    gated_by: desired
                        .get(p)
                        .map_or_else(Vec::new, |w| w.cause.names().map(str::to_string).collect()),
                    wanted: !held
                        && is_wanted(
                            desired.get(p).and_then(|w| w.desire.route_state()),
                            announced.is_some(),
                        ),
                    announced: announced.is_some(),
                    attributes: announced.map(|r| describe(r.state, &r.advert.attrs)),
                    state: PrefixState::of(announced.map(|r| r.state)),
                    since: current.map(|t| rfc3339(t.at)),
                    cause: held_cause(held, src.fleet.as_ref(), p, announced, &desired)
                        .or_else(|| {
                            current.map(|t| {
                                let want = desired.get(p).and_then(|w| w.desire.route_state());
                                let back = held_back(announced.map(|r| r.state), want);
                                match back {
                                    Some(s) => format!(
                                        "{}; {} again at {} (announcer.attribute_hold)",
                                        t.reason,
                                        s.name(),
                                        rfc3339(t.at + intent.attribute_hold)
                                    ),
                                    None => t.reason.to_string(),
                                }
                            })
                        })
                        .or_else(|| desired.get(p).map(|w| w.cause.to_string())),
                    held,
                    history: record.map_or_else(Vec::new, |r| {
                        r.last
                            .iter()
                            .map(|t| TransitionStatus {
                                at: rfc3339(t.at),
                                from: t.from,
                                to: t.to,
                                reason: t.reason.to_string(),
                            })
                            .collect()
                    }),
                    prefix: label,
                }
            })
            .collect();
        drop(history);
        let (error, unusable_since) = match &a.gobgp {
            GobgpHealth::Unusable { error, since } => (Some(error.clone()), Some(rfc3339(*since))),
            _ => (None, None),
        };
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            gobgp: GobgpStatus {
                address: intent.address.clone(),
                router_id: intent.global.router_id.to_string(),
                asn: intent.global.asn,
                api: a.api,
                up: a.gobgp.is_usable(),
                error,
                unusable_since,
                foreign_change: a
                    .foreign_change
                    .as_ref()
                    .map(|(at, what)| format!("{}: {what}", rfc3339(*at))),
                bfd_error: a.bfd_error.clone(),
            },
            services,
            prefixes,
            peers: src.peers.borrow().as_ref().map(|t| {
                let now = SystemTime::now();
                t.peers.iter().map(|p| p.clone().as_of(now)).collect()
            }),
            reload: src.reload.borrow().clone(),
            fleet,
            watches: src
                .services
                .borrow()
                .iter()
                .flat_map(|e| e.watches.iter().map(watch_status))
                .collect(),
        }
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(&self.snapshot())
            .unwrap_or_else(|e| format!("{{\"error\": \"cannot encode the status: {e}\"}}"))
    }
}

fn service_status(
    shape: &ServiceShape,
    report: Option<&RoundReport>,
    state: ServiceState,
    since: String,
    drained_by: Vec<String>,
) -> ServiceStatus {
    let checks = shape
        .checks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let outcome = report.and_then(|r| r.checks.get(i)).map(|(_, o)| o);
            CheckStatus {
                name: c.name.clone(),
                kind: c.kind.to_string(),
                target: c.target.clone(),
                on_failure: c.on_failure,
                result: match outcome {
                    None => CheckResult::Pending,
                    Some(o) if o.passed() => CheckResult::Pass,
                    Some(_) => CheckResult::Fail,
                },
                error: outcome.and_then(|o| o.result.as_ref().err().map(|f| f.0.clone())),
                duration_seconds: outcome.map(|o| o.duration.as_secs_f64()),
                attempts: outcome.map(|o| o.attempts),
            }
        })
        .collect();
    ServiceStatus {
        name: shape.name.clone(),
        state,
        since,
        health: report.map_or(Health::START, |r| r.health),
        drained_by,
        rise: shape.rise,
        fall: shape.fall,
        check_interval: shape.check_interval.clone(),
        last_round: report.map(|r| rfc3339(r.at)),
        checks,
    }
}

fn watch_status(w: &WatchView) -> WatchStatus {
    let r = w.report.borrow();
    WatchStatus {
        service: w.service.clone(),
        watch: w.watch.clone(),
        state: r.state,
        pid: r.pid,
        detail: r.detail.clone(),
        since: rfc3339(r.since),
    }
}

/// Whether a prefix the gate puts in `state` (`None`: withdrawn) is wanted in gobgpd. A
/// draining route is wanted only while gobgpd still announces it: the announcer withdraws it
/// after the linger, and never announces a route just to drain it (reconcile::Wanted).
fn is_wanted(state: Option<RouteState>, announced: bool) -> bool {
    match state {
        Some(RouteState::Draining) => announced,
        Some(_) => true,
        None => false,
    }
}

/// The WHY of a prefix the fleet guard holds: what its services say now, and why the guard
/// keeps it. Its last transition's reason may be older (the hold began while it was up).
fn held_cause(
    held: bool,
    fleet: Option<&Fleet>,
    prefix: &IpNet,
    announced: Option<&Route>,
    desired: &Desired,
) -> Option<String> {
    if !held {
        return None;
    }
    let cause = desired.get(prefix).map(|w| w.cause.to_string())?;
    let held = fleet
        .zip(announced)
        .and_then(|(f, r)| f.held_said(prefix, r.state));
    Some(format!(
        "{cause}; {}",
        held.as_deref()
            .unwrap_or(crate::fleet::policy::HELD_BY_THE_GUARD)
    ))
}

/// The state a route announced in `announced` goes back to when `announcer.attribute_hold`
/// is over: the gate's `want`, when that is more preferred (the hold counts from the
/// route's last change, its last transition).
fn held_back(announced: Option<RouteState>, want: Option<RouteState>) -> Option<RouteState> {
    let (now, want) = (announced?, want?);
    (want.preference() > now.preference()).then_some(want)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_route_is_held_back_only_toward_a_more_preferred_state() {
        use RouteState::*;
        assert_eq!(held_back(Some(Draining), Some(Up)), Some(Up));
        assert_eq!(held_back(Some(Draining), Some(Degraded)), Some(Degraded));
        assert_eq!(held_back(Some(Degraded), Some(Up)), Some(Up));
        assert_eq!(held_back(Some(Up), Some(Draining)), None);
        assert_eq!(held_back(Some(Up), Some(Up)), None);
        assert_eq!(
            held_back(None, Some(Up)),
            None,
            "withdrawn: announced, not held"
        );
        assert_eq!(held_back(Some(Degraded), None), None);
    }

    #[test]
    fn a_draining_prefix_is_wanted_only_while_announced() {
        assert!(is_wanted(Some(RouteState::Draining), true));
        assert!(!is_wanted(Some(RouteState::Draining), false));
        assert!(is_wanted(Some(RouteState::Up), false));
        assert!(is_wanted(Some(RouteState::Degraded), true));
        assert!(!is_wanted(None, true));
    }

    use super::*;
}
