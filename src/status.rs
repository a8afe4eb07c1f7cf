//! The daemon's state in one document: served as JSON at `GET /status`, and printed as
//! tables by `anycastd status`. It answers "why is this prefix (not) announced?": each
//! service with its counters and each check's last result and error, each prefix wanted
//! and announced, each BGP session.
//!
//! Nothing here is kept twice: a [`StatusView`] reads the latest round reports, the gate,
//! the announcer's state and the peer table from their watch channels when asked.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::net::IpAddr;
use std::time::SystemTime;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::announcer::peers::{PeerInfo, PeerTable};
use crate::announcer::{AnnouncerState, GobgpHealth};
use crate::config::Config;
use crate::service::{Gate, Health, RoundReport};
use crate::watch::{WatchState, WatchView};

/// The whole status document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub gobgp: GobgpStatus,
    pub services: Vec<ServiceStatus>,
    pub prefixes: Vec<PrefixStatus>,
    /// `None` while gobgpd cannot be asked.
    pub peers: Option<Vec<PeerInfo>>,
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
    /// Whether gobgpd is usable: set up and reconciled, its calls succeeding.
    pub up: bool,
    /// Why it is not, while it is not (the last failed call or connect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Since when it has not been usable (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unusable_since: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    /// `up` or `down`.
    pub state: String,
    /// Consecutive passing rounds while down (it goes up at `rise`).
    pub passes: u32,
    /// Consecutive failing rounds while up (it goes down at `fall`).
    pub fails: u32,
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
    /// `pass`, `fail`, or `pending` before the first round.
    pub result: String,
    pub error: Option<String>,
    pub duration_seconds: Option<f64>,
    pub attempts: Option<u32>,
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
}

/// What a service looks like before its first round, from the config.
struct ServiceShape {
    name: String,
    rise: u32,
    fall: u32,
    check_interval: String,
    checks: Vec<(String, String, String)>,
}

/// Reads the daemon's state from the channels its tasks publish on.
pub struct StatusView {
    gobgp_address: String,
    router_id: String,
    asn: u32,
    shapes: Vec<ServiceShape>,
    prefixes: Vec<(IpNet, Option<IpAddr>, Vec<String>)>,
    reports: Vec<watch::Receiver<Option<RoundReport>>>,
    gate: watch::Receiver<Gate>,
    announcer: watch::Receiver<AnnouncerState>,
    peers: watch::Receiver<Option<PeerTable>>,
    watches: Vec<WatchView>,
}

impl StatusView {
    /// Adds the services' watches to the view.
    pub fn with_watches(mut self, watches: Vec<WatchView>) -> StatusView {
        self.watches = watches;
        self
    }

    /// `reports` holds one receiver per service, in config order.
    pub fn new(
        cfg: &Config,
        reports: Vec<watch::Receiver<Option<RoundReport>>>,
        gate: watch::Receiver<Gate>,
        announcer: watch::Receiver<AnnouncerState>,
        peers: watch::Receiver<Option<PeerTable>>,
    ) -> StatusView {
        let all: Vec<String> = cfg.services.iter().map(|s| s.name.clone()).collect();
        let mut prefixes = Vec::new();
        for p in &cfg.announcer.routes {
            prefixes.push((*p, cfg.next_hop_for(p), all.clone()));
        }
        for s in &cfg.services {
            for p in &s.routes {
                prefixes.push((*p, cfg.next_hop_for(p), vec![s.name.clone()]));
            }
        }
        StatusView {
            gobgp_address: cfg.announcer.gobgp.address.clone(),
            router_id: cfg.announcer.router_id.to_string(),
            asn: cfg.announcer.local_asn,
            shapes: cfg
                .services
                .iter()
                .map(|s| ServiceShape {
                    name: s.name.clone(),
                    rise: s.rise,
                    fall: s.fall,
                    check_interval: s.check_interval.to_string(),
                    checks: s
                        .checks
                        .iter()
                        .map(|c| (c.name.clone(), c.kind().to_string(), c.spec.target()))
                        .collect(),
                })
                .collect(),
            prefixes,
            reports,
            gate,
            announcer,
            peers,
            watches: Vec::new(),
        }
    }

    pub fn snapshot(&self) -> Status {
        let wanted = self.gate.borrow().wanted();
        let (health, announced): (GobgpHealth, BTreeSet<IpNet>) = {
            let a = self.announcer.borrow();
            (a.gobgp.clone(), a.announced.clone())
        };
        let (error, unusable_since) = match &health {
            GobgpHealth::Unusable { error, since } => (Some(error.clone()), Some(rfc3339(*since))),
            _ => (None, None),
        };
        let services = self
            .shapes
            .iter()
            .zip(&self.reports)
            .map(|(shape, rx)| service_status(shape, rx.borrow().as_ref()))
            .collect();
        let prefixes = self
            .prefixes
            .iter()
            .map(|(p, nh, gated_by)| PrefixStatus {
                prefix: p.to_string(),
                next_hop: nh.map(|n| n.to_string()),
                gated_by: gated_by.clone(),
                wanted: wanted.contains(p),
                announced: announced.contains(p),
            })
            .collect();
        Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            gobgp: GobgpStatus {
                address: self.gobgp_address.clone(),
                router_id: self.router_id.clone(),
                asn: self.asn,
                up: health.is_usable(),
                error,
                unusable_since,
            },
            services,
            prefixes,
            peers: self.peers.borrow().as_ref().map(|t| t.peers.clone()),
            watches: self.watches.iter().map(watch_status).collect(),
        }
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(&self.snapshot())
            .unwrap_or_else(|e| format!("{{\"error\": \"cannot encode the status: {e}\"}}"))
    }
}

fn service_status(shape: &ServiceShape, report: Option<&RoundReport>) -> ServiceStatus {
    let health = report.map_or(Health::START, |r| r.health);
    let (state, passes, fails) = match health {
        Health::Down { passes } => ("down", passes, 0),
        Health::Up { fails } => ("up", 0, fails),
    };
    let checks = shape
        .checks
        .iter()
        .enumerate()
        .map(|(i, (name, kind, target))| {
            let outcome = report.and_then(|r| r.checks.get(i)).map(|(_, o)| o);
            CheckStatus {
                name: name.clone(),
                kind: kind.clone(),
                target: target.clone(),
                result: match outcome {
                    None => "pending",
                    Some(o) if o.passed() => "pass",
                    Some(_) => "fail",
                }
                .to_string(),
                error: outcome.and_then(|o| o.result.as_ref().err().map(|f| f.0.clone())),
                duration_seconds: outcome.map(|o| o.duration.as_secs_f64()),
                attempts: outcome.map(|o| o.attempts),
            }
        })
        .collect();
    ServiceStatus {
        name: shape.name.clone(),
        state: state.to_string(),
        passes,
        fails,
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

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// `GET /status` from the daemon whose metrics listen on `address` (host:port).
pub async fn fetch(address: &str) -> Result<String, String> {
    let url = format!("http://{address}/status");
    let fail = |e: String| {
        format!("cannot get {url}: {e} (is anycastd running there, with metrics enabled?)")
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let r = client
        .get(&url)
        .send()
        .await
        .map_err(|e| fail(crate::error_chain(&e)))?;
    if !r.status().is_success() {
        return Err(fail(format!("answered {}", r.status())));
    }
    r.text().await.map_err(|e| fail(e.to_string()))
}

/// The status as tables, for `anycastd status`.
pub fn render_table(s: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "gobgpd {}  {}  router id {}  AS{}  (anycastd {})",
        s.gobgp.address,
        if s.gobgp.up { "connected" } else { "UNUSABLE" },
        s.gobgp.router_id,
        s.gobgp.asn,
        s.version
    );
    if let Some(e) = &s.gobgp.error {
        let _ = writeln!(
            out,
            "  since {}: {e}",
            s.gobgp.unusable_since.as_deref().unwrap_or("-")
        );
    }

    out.push('\n');
    let mut rows = vec![row(&[
        "SERVICE",
        "STATE",
        "RISE/FALL",
        "EVERY",
        "LAST ROUND",
    ])];
    for svc in &s.services {
        let counter = match svc.state.as_str() {
            "up" => format!("failing {}/{}", svc.fails, svc.fall),
            _ => format!("passing {}/{}", svc.passes, svc.rise),
        };
        rows.push(row(&[
            &svc.name,
            &svc.state.to_uppercase(),
            &counter,
            &svc.check_interval,
            svc.last_round.as_deref().unwrap_or("-"),
        ]));
    }
    table(&mut out, &rows);

    out.push('\n');
    let mut rows = vec![row(&[
        "SERVICE", "CHECK", "KIND", "RESULT", "TIME", "TARGET", "ERROR",
    ])];
    for svc in &s.services {
        for c in &svc.checks {
            rows.push(row(&[
                &svc.name,
                &c.name,
                &c.kind,
                &c.result.to_uppercase(),
                &c.duration_seconds
                    .map_or("-".to_string(), |d| format!("{:.3}s", d)),
                &c.target,
                c.error.as_deref().unwrap_or(""),
            ]));
        }
    }
    table(&mut out, &rows);

    out.push('\n');
    let mut rows = vec![row(&[
        "PREFIX",
        "NEXT HOP",
        "WANTED",
        "ANNOUNCED",
        "GATED BY",
    ])];
    for p in &s.prefixes {
        rows.push(row(&[
            &p.prefix,
            p.next_hop.as_deref().unwrap_or("-"),
            yes_no(p.wanted),
            yes_no(p.announced),
            &p.gated_by.join(", "),
        ]));
    }
    table(&mut out, &rows);

    if !s.watches.is_empty() {
        out.push('\n');
        let mut rows = vec![row(&[
            "SERVICE", "WATCH", "STATE", "PID", "SINCE", "DETAIL",
        ])];
        for w in &s.watches {
            rows.push(row(&[
                &w.service,
                &w.watch,
                &w.state.as_str().to_uppercase(),
                &w.pid.map_or("-".to_string(), |p| p.to_string()),
                &w.since,
                w.detail.as_deref().unwrap_or(""),
            ]));
        }
        table(&mut out, &rows);
    }

    out.push('\n');
    match &s.peers {
        None => out.push_str("peers: unknown (gobgpd not reachable)\n"),
        Some(peers) => {
            let mut rows = vec![row(&["PEER", "ADDRESS", "ASN", "SESSION", "UPTIME"])];
            for p in peers {
                rows.push(row(&[
                    &p.name,
                    &p.address,
                    &p.asn.to_string(),
                    &p.session_state,
                    &p.uptime_seconds.map_or("-".to_string(), |u| {
                        humantime::format_duration(std::time::Duration::from_secs(u)).to_string()
                    }),
                ]));
            }
            table(&mut out, &rows);
        }
    }
    out
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.replace('\n', " ")).collect()
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
fn table(out: &mut String, rows: &[Vec<String>]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_line_up() {
        let mut out = String::new();
        table(
            &mut out,
            &[row(&["A", "LONGER", "Z"]), row(&["wide cell", "b", "c"])],
        );
        assert_eq!(out, "A          LONGER  Z\nwide cell  b       c\n");
    }
}
