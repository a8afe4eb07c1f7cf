//! The daemon's state in one document: served as JSON at `GET /status`, and printed as
//! tables by `anycastd status`. It answers "why is this prefix (not) announced?": each
//! service with its counters and each check's last result and error, each prefix wanted
//! and announced, each BGP session.
//!
//! Nothing here is kept twice: a [`StatusView`] reads the latest round reports, the gate,
//! the announcer's state and the peer table from their watch channels when asked.

use std::collections::BTreeMap;
use std::fmt::Write;
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
use crate::config::fleet::OnUnreachable;
use crate::fleet::policy::Fleet;
use crate::fleet::view::{FleetStatus, SiteState};
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

/// The status as tables, for `anycastd status`.
pub fn render_table(s: &Status) -> String {
    let mut out = String::new();
    header(&mut out, s);
    out.push('\n');
    services_table(&mut out, &s.services);
    out.push('\n');
    checks_table(&mut out, &s.services);
    watches_table(&mut out, &s.watches);
    out.push('\n');
    prefixes_table(&mut out, &s.prefixes, s.gobgp.up);
    transitions_table(&mut out, &s.prefixes);
    out.push('\n');
    peers_table(&mut out, s.peers.as_deref());
    if let Some(f) = &s.fleet {
        out.push('\n');
        out.push_str(&fleet_table(f));
    }
    out
}

/// The watches, when there are any (with the blank line before them).
fn watches_table(out: &mut String, watches: &[WatchStatus]) {
    if watches.is_empty() {
        return;
    }
    out.push('\n');
    let mut rows = vec![row(&[
        "SERVICE", "WATCH", "STATE", "PID", "SINCE", "DETAIL",
    ])];
    for w in watches {
        rows.push(row(&[
            &w.service,
            &w.watch,
            &w.state.as_str().to_uppercase(),
            &w.pid.map_or("-".to_string(), |p| p.to_string()),
            &w.since,
            w.detail.as_deref().unwrap_or(""),
        ]));
    }
    table(out, &rows);
}

fn header(out: &mut String, s: &Status) {
    let g = &s.gobgp;
    let _ = writeln!(
        out,
        "gobgpd {}  {}{}  router id {}  AS{}  (anycastd {})",
        g.address,
        if g.up { "connected" } else { "UNUSABLE" },
        g.api
            .map(|a| format!(" (GoBGP {a} API)"))
            .unwrap_or_default(),
        g.router_id,
        g.asn,
        s.version
    );
    if let Some(e) = &g.error {
        let since = g.unusable_since.as_deref().unwrap_or("-");
        let _ = writeln!(out, "  since {since}: {e}");
    }
    if let Some(c) = &g.foreign_change {
        let _ = writeln!(out, "  changed by someone else at {c}");
    }
    if let Some(e) = &g.bfd_error {
        let _ = writeln!(out, "  BFD: {e}");
    }
    if let Some(r) = &s.reload {
        let verdict = if r.ok { "applied" } else { "REFUSED" };
        let _ = writeln!(out, "last reload {}: {verdict}: {}", r.at, r.message);
    }
}

/// The counters that can change a service's state, against rise/fall.
fn health_counters(h: &Health, rise: u32, fall: u32) -> String {
    match *h {
        Health::Down { passes } => format!("passing {passes}/{rise}"),
        Health::Up { fails, unclean } if unclean > fails => {
            format!("failing {fails}/{fall}, degrading {unclean}/{fall}")
        }
        Health::Up { fails, .. } => format!("failing {fails}/{fall}"),
        Health::Degraded { fails, cleans } => {
            format!("failing {fails}/{fall}, clean {cleans}/{rise}")
        }
    }
}

fn services_table(out: &mut String, services: &[ServiceStatus]) {
    let mut rows = vec![row(&[
        "SERVICE",
        "STATE",
        "SINCE",
        "CHECKS SAY",
        "RISE/FALL",
        "EVERY",
        "LAST ROUND",
        "DRAINED BY",
    ])];
    for svc in services {
        rows.push(row(&[
            &svc.name,
            &svc.state.name().to_uppercase(),
            &svc.since,
            svc.health.level_name(),
            &health_counters(&svc.health, svc.rise, svc.fall),
            &svc.check_interval,
            svc.last_round.as_deref().unwrap_or("-"),
            &svc.drained_by.join("; "),
        ]));
    }
    table(out, &rows);
}

fn checks_table(out: &mut String, services: &[ServiceStatus]) {
    let mut rows = vec![row(&[
        "SERVICE",
        "CHECK",
        "KIND",
        "ON FAILURE",
        "RESULT",
        "TIME",
        "TARGET",
        "ERROR",
    ])];
    for svc in services {
        for c in &svc.checks {
            rows.push(row(&[
                &svc.name,
                &c.name,
                &c.kind,
                &c.on_failure.to_string(),
                c.result.shouted(),
                &c.duration_seconds
                    .map_or("-".to_string(), |d| format!("{d:.3}s")),
                &c.target,
                c.error.as_deref().unwrap_or(""),
            ]));
        }
    }
    table(out, &rows);
}

/// `gobgp_up`: whether gobgpd can be asked now; while it cannot, ANNOUNCED is what it was
/// last seen to announce, and says so.
fn prefixes_table(out: &mut String, prefixes: &[PrefixStatus], gobgp_up: bool) {
    let mut rows = vec![row(&[
        "PREFIX",
        "NEXT HOP",
        "WANTED",
        "ANNOUNCED",
        "ATTRIBUTES",
        "GATED BY",
        "SINCE",
        "WHY",
    ])];
    for p in prefixes {
        rows.push(row(&[
            &p.prefix,
            p.next_hop.as_deref().unwrap_or("-"),
            if p.held {
                "no (held)"
            } else {
                yes_no(p.wanted)
            },
            &announced(p.announced, gobgp_up),
            p.attributes.as_deref().unwrap_or("-"),
            &p.gated_by.join(", "),
            p.since.as_deref().unwrap_or("-"),
            p.cause.as_deref().unwrap_or(""),
        ]));
    }
    table(out, &rows);
}

/// The most transitions `anycastd status` prints (`--json` has every prefix's last ones).
const TRANSITIONS_SHOWN: usize = 30;

/// The last transitions of every prefix, newest last, at most [`TRANSITIONS_SHOWN`].
fn transitions_table(out: &mut String, prefixes: &[PrefixStatus]) {
    let mut all: Vec<(&str, &TransitionStatus)> = prefixes
        .iter()
        .flat_map(|p| p.history.iter().map(move |t| (p.prefix.as_str(), t)))
        .collect();
    if all.is_empty() {
        return;
    }
    // RFC 3339 in UTC with a fixed precision: the text sorts as the time does.
    all.sort_by(|a, b| a.1.at.cmp(&b.1.at).then(a.0.cmp(b.0)));
    out.push('\n');
    let skipped = all.len().saturating_sub(TRANSITIONS_SHOWN);
    if skipped > 0 {
        let _ = writeln!(
            out,
            "last {TRANSITIONS_SHOWN} route transitions ({skipped} earlier: anycastd status --json)"
        );
    }
    let mut rows = vec![row(&["TIME", "PREFIX", "FROM", "TO", "REASON"])];
    for (prefix, t) in &all[skipped..] {
        rows.push(row(&[&t.at, prefix, t.from.name(), t.to.name(), &t.reason]));
    }
    table(out, &rows);
}

fn peers_table(out: &mut String, peers: Option<&[PeerInfo]>) {
    let Some(peers) = peers else {
        out.push_str("peers: unknown (gobgpd not reachable)\n");
        return;
    };
    let secs = |s: Option<u64>| {
        s.map_or("-".to_string(), |u| {
            humantime::format_duration(std::time::Duration::from_secs(u)).to_string()
        })
    };
    let mut rows = vec![row(&[
        "PEER",
        "ADDRESS",
        "ASN",
        "SESSION",
        "UPTIME",
        "HOLD/KEEPALIVE",
        "BFD",
    ])];
    for p in peers {
        let timers = match (p.hold_time_seconds, p.keepalive_seconds) {
            (Some(h), Some(k)) => format!("{h}s/{k}s"),
            _ => "-".to_string(),
        };
        let bfd = match &p.bfd {
            None => "-".to_string(),
            Some(b) if !b.supported => format!("{}: NOT RUN by gobgpd", b.configured),
            Some(b) => format!(
                "{} {} ({} sent, {} received)",
                b.state.to_uppercase(),
                b.configured,
                b.packets_sent,
                b.packets_received
            ),
        };
        rows.push(row(&[
            &p.name,
            &p.address,
            &p.asn.to_string(),
            &p.session_state,
            &secs(p.uptime_seconds),
            &timers,
            &bfd,
        ]));
    }
    table(out, &rows);
}

fn announced(announced: bool, gobgp_up: bool) -> String {
    if gobgp_up {
        yes_no(announced).to_string()
    } else {
        format!("{}, last seen (gobgpd unusable)", yes_no(announced))
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

pub(crate) fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.replace('\n', " ")).collect()
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
pub(crate) fn table(out: &mut String, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c:<w$}  ", w = widths[i]);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
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

/// The fleet as a table, for `anycastd status`.
fn fleet_table(s: &FleetStatus) -> String {
    let mut out = format!(
        "fleet: site {}  etcd {}  min_sites {}  on_unreachable {}\n",
        s.site,
        if s.etcd_up {
            "reachable"
        } else {
            "NOT REACHABLE"
        },
        s.min_sites,
        match s.on_unreachable {
            OnUnreachable::Hold => "hold",
            OnUnreachable::Withdraw => "withdraw",
        }
    );
    if let Some(d) = &s.duplicate {
        out.push_str(&format!("DUPLICATE SITE NAME: {d}\n"));
    }
    let mut rows = vec![row(&["PREFIX", "SITES", "ANNOUNCED BY", "HELD HERE"])];
    for p in &s.prefixes {
        let by: Vec<String> = p
            .sites
            .iter()
            .map(|x| match x.state {
                SiteState::Up => x.site.clone(),
                SiteState::Held => format!("{} (held)", x.site),
                SiteState::Unknown => format!("{} (?)", x.site),
            })
            .collect();
        rows.push(row(&[
            &p.prefix,
            &p.sites.len().to_string(),
            &if by.is_empty() {
                "-".to_string()
            } else {
                by.join(", ")
            },
            if p.held_here { "YES" } else { "no" },
        ]));
    }
    table(&mut out, &rows);
    out
}

/// The state a route announced in `announced` goes back to when `announcer.attribute_hold`
/// is over: the gate's `want`, when that is more preferred (the hold counts from the
/// route's last change, its last transition).
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
    let why = fleet
        .zip(announced)
        .and_then(|(f, r)| f.held_why(prefix, r.state));
    Some(match why {
        Some(why) => format!("{cause}; held by the fleet guard: {why}"),
        None => format!("{cause}; held by the fleet guard"),
    })
}

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

    #[test]
    fn announced_says_it_is_stale_while_gobgpd_is_unusable() {
        let p = PrefixStatus {
            prefix: "192.0.2.1/32".into(),
            next_hop: None,
            gated_by: vec!["web".into()],
            wanted: false,
            announced: true,
            attributes: None,
            state: PrefixState::Up,
            since: None,
            cause: None,
            held: false,
            history: Vec::new(),
        };
        let mut up = String::new();
        prefixes_table(&mut up, std::slice::from_ref(&p), true);
        assert!(
            up.lines().nth(1).is_some_and(|l| l.contains("no      yes")),
            "{up}"
        );
        let mut down = String::new();
        prefixes_table(&mut down, &[p], false);
        assert!(down.contains("yes, last seen (gobgpd unusable)"), "{down}");
    }

    #[test]
    fn table_columns_line_up() {
        let mut out = String::new();
        table(
            &mut out,
            &[row(&["A", "LONGER", "Z"]), row(&["wide cell", "b", "c"])],
        );
        assert_eq!(out, "A          LONGER  Z\nwide cell  b       c\n");
    }

    fn transition(at: &str, from: PrefixState, to: PrefixState, reason: &str) -> TransitionStatus {
        TransitionStatus {
            at: at.into(),
            from,
            to,
            reason: reason.into(),
        }
    }

    /// SPEC 19: why a route went away, after its service came back; a prefix held by the
    /// fleet is not wanted, whatever holds it (a drain or failed services).
    #[test]
    fn prefixes_say_since_when_and_why_and_their_last_transitions() {
        use PrefixState::{Degraded, Draining, Up, Withdrawn};
        let dns = PrefixStatus {
            prefix: "192.0.2.53/32".into(),
            next_hop: Some("198.51.100.1".into()),
            gated_by: vec!["dns".into()],
            wanted: true,
            announced: true,
            attributes: Some("up".into()),
            state: Up,
            since: Some("2024-05-01T10:00:07.250Z".into()),
            cause: Some("service dns is up".into()),
            held: false,
            history: vec![
                transition(
                    "2024-05-01T09:00:00.000Z",
                    Withdrawn,
                    Up,
                    "service dns is up",
                ),
                transition(
                    "2024-05-01T10:00:02.100Z",
                    Up,
                    Withdrawn,
                    "service dns is down",
                ),
                transition(
                    "2024-05-01T10:00:07.250Z",
                    Withdrawn,
                    Up,
                    "service dns is up",
                ),
            ],
        };
        let web = PrefixStatus {
            prefix: "192.0.2.80/32".into(),
            next_hop: Some("198.51.100.1".into()),
            gated_by: vec!["web".into()],
            wanted: false,
            announced: true,
            attributes: Some("degraded: med 500".into()),
            state: Degraded,
            since: Some("2024-05-01T10:00:03.000Z".into()),
            cause: Some("service web is down".into()),
            held: true,
            history: vec![transition(
                "2024-05-01T10:00:03.000Z",
                Draining,
                Degraded,
                "service web is down",
            )],
        };
        let mut out = String::new();
        prefixes_table(&mut out, &[dns.clone(), web], true);
        transitions_table(&mut out, std::slice::from_ref(&dns));
        assert_eq!(
            out,
            "\
PREFIX         NEXT HOP      WANTED     ANNOUNCED  ATTRIBUTES         GATED BY  SINCE                     WHY
192.0.2.53/32  198.51.100.1  yes        yes        up                 dns       2024-05-01T10:00:07.250Z  service dns is up
192.0.2.80/32  198.51.100.1  no (held)  yes        degraded: med 500  web       2024-05-01T10:00:03.000Z  service web is down

TIME                      PREFIX         FROM       TO         REASON
2024-05-01T09:00:00.000Z  192.0.2.53/32  withdrawn  up         service dns is up
2024-05-01T10:00:02.100Z  192.0.2.53/32  up         withdrawn  service dns is down
2024-05-01T10:00:07.250Z  192.0.2.53/32  withdrawn  up         service dns is up
"
        );
        // The JSON of one prefix, as /status serves it.
        let json = serde_json::to_value(&dns).expect("json");
        assert_eq!(json["state"], "up");
        assert_eq!(json["since"], "2024-05-01T10:00:07.250Z");
        assert_eq!(json["cause"], "service dns is up");
        assert_eq!(
            json["history"][1],
            serde_json::json!({"at": "2024-05-01T10:00:02.100Z", "from": "up", "to": "withdrawn", "reason": "service dns is down"})
        );
        // Many transitions: the newest, and how many are left out.
        let mut many = dns;
        many.history = (0..40)
            .map(|i| transition(&format!("2024-05-01T10:00:{i:02}.000Z"), Up, Withdrawn, "x"))
            .collect();
        let mut out = String::new();
        transitions_table(&mut out, &[many]);
        assert!(
            out.starts_with(
                "\nlast 30 route transitions (10 earlier: anycastd status --json)\nTIME "
            ),
            "{out}"
        );
        assert!(out.contains("2024-05-01T10:00:10.000Z") && !out.contains("T10:00:09.000Z"));
    }
}
