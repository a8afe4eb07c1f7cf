//! What the BGP sessions are doing: polls gobgpd's `ListPeer` for the `anycastd_gobgp_*`
//! peer metrics and the status view, and follows its `WatchEvent` stream to log every
//! session state change.
//!
//! The peer table is a snapshot replaced at every poll, and the metrics are rendered from
//! it at scrape time: a peer removed from gobgpd disappears from the next scrape, and while
//! gobgpd cannot be reached there is no table and so no stale peer series.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::Stop;
use super::client::{
    ClientError, ESTABLISHED, GobgpClient, PeerEvents, PeerNumbers, PeerReport, session_state_name,
};
use super::connection::{Attempt, Link};
use super::intent::Intent;
use crate::metrics::names;

/// One peer as gobgpd reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// The configured name, or the address for a peer that is not in the config.
    pub name: String,
    pub address: String,
    pub asn: u32,
    /// `ESTABLISHED`, `ACTIVE`, ...
    pub session_state: String,
    /// Seconds since the session was established; `None` while it is not.
    pub uptime_seconds: Option<u64>,
    /// When the session was established, from which `uptime_seconds` is computed again
    /// whenever it is shown (the table is polled every few seconds).
    #[serde(skip)]
    pub established_at: Option<SystemTime>,
    /// The hold time in force (the smaller of both sides'), in seconds, while established.
    #[serde(default)]
    pub hold_time_seconds: Option<u64>,
    /// The keepalive interval in force, in seconds, while established.
    #[serde(default)]
    pub keepalive_seconds: Option<u64>,
    #[serde(skip)]
    pub numbers: PeerNumbers,
}

/// The peers of gobgpd at one poll.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerTable {
    pub router_id: String,
    pub peers: Vec<PeerInfo>,
}

impl PeerInfo {
    /// Names a peer gobgpd reported; `names` maps configured addresses to their names.
    pub fn new(p: PeerReport, names: &BTreeMap<IpAddr, String>, now: SystemTime) -> Self {
        let name = p
            .address
            .parse::<IpAddr>()
            .ok()
            .and_then(|a| names.get(&a).cloned())
            .unwrap_or_else(|| p.address.clone());
        PeerInfo {
            name,
            session_state: session_state_name(p.numbers.session_state),
            uptime_seconds: uptime(p.established_at, now),
            established_at: p.established_at,
            hold_time_seconds: p.hold_time,
            keepalive_seconds: p.keepalive_interval,
            address: p.address,
            asn: p.asn,
            numbers: p.numbers,
        }
    }

    /// This peer with its uptime as of `now`.
    pub fn as_of(mut self, now: SystemTime) -> PeerInfo {
        self.uptime_seconds = uptime(self.established_at, now);
        self
    }
}

fn uptime(established_at: Option<SystemTime>, now: SystemTime) -> Option<u64> {
    established_at
        .and_then(|at| now.duration_since(at).ok())
        .map(|d| d.as_secs())
}

/// A per-peer series: its name and how to read it off a peer.
type Reader = fn(&PeerNumbers) -> f64;

/// Every per-peer series, labels `{router_id, peer}`, in the seed's order.
const PEER_SERIES: &[(&str, Reader)] = &[
    (names::GOBGP_PEER_ADMIN_STATE, |n| f64::from(n.admin_state)),
    (names::GOBGP_PEER_FLOPS, |n| f64::from(n.flops)),
    (names::GOBGP_PEER_OUT_QUEUE, |n| f64::from(n.out_q)),
    (names::GOBGP_PEER_PASSWORD_SET, |n| {
        f64::from(u8::from(n.password_set))
    }),
    (names::GOBGP_PEER_REMOVE_PRIVATE, |n| {
        f64::from(n.remove_private)
    }),
    (names::GOBGP_PEER_SEND_COMMUNITY, |n| {
        f64::from(n.send_community)
    }),
    (names::GOBGP_PEER_SESSION_STATE, |n| {
        f64::from(n.session_state)
    }),
    (names::GOBGP_PEER_TYPE, |n| f64::from(n.peer_type)),
    (names::GOBGP_RECEIVED_KEEPALIVE, |n| {
        n.received.keepalive as f64
    }),
    (names::GOBGP_RECEIVED_NOTIFICATION, |n| {
        n.received.notification as f64
    }),
    (names::GOBGP_RECEIVED_OPEN, |n| n.received.open as f64),
    (names::GOBGP_RECEIVED_REFRESH, |n| n.received.refresh as f64),
    (names::GOBGP_RECEIVED_TOTAL, |n| n.received.total as f64),
    (names::GOBGP_RECEIVED_UPDATE, |n| n.received.update as f64),
    (names::GOBGP_RECEIVED_WITHDRAW_PREFIX, |n| {
        n.received.withdraw_prefix as f64
    }),
    (names::GOBGP_RECEIVED_WITHDRAW_UPDATE, |n| {
        n.received.withdraw_update as f64
    }),
    (names::GOBGP_SENT_KEEPALIVE, |n| n.sent.keepalive as f64),
    (names::GOBGP_SENT_NOTIFICATION, |n| {
        n.sent.notification as f64
    }),
    (names::GOBGP_SENT_OPEN, |n| n.sent.open as f64),
    (names::GOBGP_SENT_REFRESH, |n| n.sent.refresh as f64),
    (names::GOBGP_SENT_TOTAL, |n| n.sent.total as f64),
    (names::GOBGP_SENT_UPDATE, |n| n.sent.update as f64),
    (names::GOBGP_SENT_WITHDRAW_PREFIX, |n| {
        n.sent.withdraw_prefix as f64
    }),
    (names::GOBGP_SENT_WITHDRAW_UPDATE, |n| {
        n.sent.withdraw_update as f64
    }),
];

/// The `anycastd_gobgp_*` peer series of `table` in the Prometheus text format; empty when
/// there is no table (gobgpd not reachable).
pub fn render_metrics(table: Option<&PeerTable>) -> String {
    use std::fmt::Write;
    let Some(t) = table else {
        return String::new();
    };
    let mut s = String::new();
    let rid = crate::metrics::escape_label(&t.router_id);
    let _ = writeln!(
        s,
        "# HELP {n} {h}\n# TYPE {n} gauge\n{n}{{router_id=\"{rid}\"}} {c}",
        n = names::GOBGP_PEER_COUNT,
        h = names::help(names::GOBGP_PEER_COUNT),
        c = t.peers.len()
    );
    if t.peers.is_empty() {
        return s;
    }
    for (name, read) in PEER_SERIES {
        // The seed's names: those ending in _total are counters; the other message counts
        // keep the seed's names without the suffix a counter needs, and so stay gauges.
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        let _ = writeln!(
            s,
            "# HELP {name} {}\n# TYPE {name} {kind}",
            names::help(name)
        );
        for p in &t.peers {
            let _ = writeln!(
                s,
                "{name}{{router_id=\"{rid}\",peer=\"{}\"}} {}",
                crate::metrics::escape_label(&p.name),
                read(&p.numbers)
            );
        }
    }
    s
}

/// Polls gobgpd's peers and logs their session changes, until shut down.
pub struct PeerMonitor {
    intents: watch::Receiver<Arc<Intent>>,
    table: watch::Sender<Option<PeerTable>>,
    /// Each peer's last session state, across connections: a reconnect does not log the
    /// states again as if they were new.
    last: Arc<Mutex<BTreeMap<String, i32>>>,
}

impl PeerMonitor {
    /// The monitor, and the receiver of its peer table (`None` while gobgpd is unreachable).
    pub fn new(
        intents: watch::Receiver<Arc<Intent>>,
    ) -> (PeerMonitor, watch::Receiver<Option<PeerTable>>) {
        let (tx, rx) = watch::channel(None);
        let m = PeerMonitor {
            intents,
            table: tx,
            last: Arc::default(),
        };
        (m, rx)
    }

    /// Configured peer addresses and their names, from the intent in force.
    fn names(&self) -> BTreeMap<IpAddr, String> {
        self.intents
            .borrow()
            .peers
            .iter()
            .map(|p| (p.address, p.name.clone()))
            .collect()
    }

    /// gobgpd went away: what its sessions do is unknown now. Said once, at WARN, for the
    /// sessions that were established (their loss would otherwise be logged only when a
    /// gobgpd answers again); the next gobgpd's sessions are logged from scratch.
    fn forget_sessions(&self, error: &ClientError) {
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let names = self.names();
        let were: Vec<String> = last
            .iter()
            .filter(|(_, s)| **s == ESTABLISHED)
            .map(|(a, _)| {
                a.parse::<IpAddr>()
                    .ok()
                    .and_then(|ip| names.get(&ip).cloned())
                    .unwrap_or_else(|| a.clone())
            })
            .collect();
        last.clear();
        if !were.is_empty() {
            warn!(
                peers = were.join(", ").as_str(),
                error = error.to_string().as_str(),
                "BGP sessions unknown: gobgpd is not usable"
            );
        }
    }

    pub async fn run(self, mut stop: watch::Receiver<Stop>) {
        let (address, timeout) = {
            let i = self.intents.borrow();
            (i.address.clone(), i.rpc_timeout)
        };
        let mut link = Link::new(&address, timeout);
        loop {
            let session_stop = stop.clone();
            let attempt = link
                .attempt(&mut stop, |c| self.session(c, session_stop))
                .await;
            match attempt {
                Attempt::Done(()) | Attempt::Shutdown => return,
                Attempt::Failed { error, retry_in } => {
                    self.table.send_replace(None);
                    self.forget_sessions(&error);
                    // The announcer logs gobgpd's failures for the operator.
                    debug!(error = error.to_string().as_str(), retry_in = %humantime::format_duration(retry_in), "peer monitor: gobgpd not usable");
                    if !link.pause(retry_in, &mut stop).await {
                        return;
                    }
                }
            }
        }
    }

    /// Follows the events and polls until shutdown (`Ok`) or an error. The event follower
    /// is part of the session: when its stream ends (gobgpd restarted) the session ends
    /// too, so that the next one opens a new stream and session changes keep being logged.
    async fn session(
        &self,
        client: GobgpClient,
        mut stop: watch::Receiver<Stop>,
    ) -> Result<(), ClientError> {
        // gobgpd sends the stream's headers only with its first event: its own task. A
        // JoinSet aborts its tasks when dropped: the follower ends with this session.
        let mut events = tokio::task::JoinSet::new();
        let watcher = client.clone();
        let intents = self.intents.clone();
        let last = self.last.clone();
        events.spawn(async move {
            let stream = watcher.watch_peer_events().await?;
            log_events(stream, intents, last).await;
            Err::<(), _>(watcher.stream_ended("WatchEvent"))
        });
        let mut tick = tokio::time::interval(self.intents.borrow().peer_poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                ended = events.join_next() => {
                    return match ended {
                        Some(Ok(Err(e))) => Err(e),
                        _ => Err(client.stream_ended("WatchEvent")),
                    };
                }
                _ = stop.changed() => return Ok(()),
            }
            let reports = client.list_peers().await?;
            let now = SystemTime::now();
            let names = self.names();
            let mut peers: Vec<PeerInfo> = reports
                .into_iter()
                .map(|p| PeerInfo::new(p, &names, now))
                .collect();
            peers.sort_by(|a, b| a.name.cmp(&b.name));
            let router_id = self.intents.borrow().global.router_id.to_string();
            self.table
                .send_replace(Some(PeerTable { router_id, peers }));
        }
    }
}

/// Logs each peer's session state changes: into and out of ESTABLISHED at WARN (the default
/// level shows them), the steps in between at INFO.
async fn log_events(
    mut stream: PeerEvents,
    intents: watch::Receiver<Arc<Intent>>,
    last: Arc<Mutex<BTreeMap<String, i32>>>,
) {
    loop {
        let report = match stream.next().await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                debug!(
                    error = e.to_string().as_str(),
                    "gobgpd's event stream ended"
                );
                return;
            }
        };
        // gobgpd also reports events of its own listener and of peers being set up, with
        // no address ("<nil>"): nothing an operator can act on.
        if report.address.is_empty() || report.address == "<nil>" {
            continue;
        }
        let state = report.numbers.session_state;
        let before = match last.lock() {
            Ok(mut l) => l.insert(report.address.clone(), state),
            Err(_) => None,
        };
        if before == Some(state) {
            continue;
        }
        let name = report
            .address
            .parse::<IpAddr>()
            .ok()
            .and_then(|a| {
                intents
                    .borrow()
                    .peers
                    .iter()
                    .find(|p| p.address == a)
                    .map(|p| p.name.clone())
            })
            .unwrap_or_else(|| report.address.clone());
        let to = session_state_name(state);
        let from = before.map_or_else(|| "none".to_string(), session_state_name);
        let address = &report.address;
        if state == ESTABLISHED {
            warn!(peer = %name, %address, from = %from, to = %to, "BGP session established");
        } else if before == Some(ESTABLISHED) {
            warn!(peer = %name, %address, from = %from, to = %to, "BGP session lost");
        } else {
            info!(peer = %name, %address, from = %from, to = %to, "BGP session state changed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announcer::client::Messages;
    use std::time::Duration;

    fn peer(addr: &str, state: i32) -> PeerReport {
        PeerReport {
            address: addr.to_string(),
            asn: 65000,
            numbers: PeerNumbers {
                session_state: state,
                password_set: true,
                peer_type: 1,
                received: Messages {
                    withdraw_prefix: 7,
                    withdraw_update: 3,
                    update: 11,
                    ..Default::default()
                },
                sent: Messages {
                    update: 5,
                    withdraw_update: 2,
                    withdraw_prefix: 4,
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn uptime_is_counted_when_shown_not_when_polled() {
        let polled = SystemTime::now();
        let mut report = peer("10.0.0.252", 6);
        report.established_at = Some(polled - Duration::from_secs(7));
        let p = PeerInfo::new(report, &BTreeMap::new(), polled);
        assert_eq!(p.uptime_seconds, Some(7));
        let shown = p.as_of(polled + Duration::from_secs(5));
        assert_eq!(shown.uptime_seconds, Some(12));
    }

    fn table() -> PeerTable {
        let names = BTreeMap::from([("10.0.0.252".parse().expect("ip"), "r1".to_string())]);
        let now = SystemTime::now();
        PeerTable {
            router_id: "10.3.3.3".into(),
            peers: vec![
                PeerInfo::new(peer("10.0.0.252", 6), &names, now),
                PeerInfo::new(peer("10.0.0.9", 3), &names, now),
            ],
        }
    }

    fn value(text: &str, series: &str) -> String {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')
                    .map(str::to_string)
            })
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    #[test]
    fn configured_peers_are_named_others_are_their_address() {
        let t = table();
        assert_eq!(t.peers[0].name, "r1");
        assert_eq!(t.peers[0].session_state, "ESTABLISHED");
        assert_eq!(t.peers[1].name, "10.0.0.9");
        assert_eq!(t.peers[1].session_state, "ACTIVE");
    }

    #[test]
    fn every_series_reads_its_own_field() {
        let text = render_metrics(Some(&table()));
        let l = "{router_id=\"10.3.3.3\",peer=\"r1\"}";
        let v = |n: &str| value(&text, &format!("{n}{l}"));
        assert_eq!(
            value(&text, "anycastd_gobgp_peer_count{router_id=\"10.3.3.3\"}"),
            "2"
        );
        assert_eq!(v("anycastd_gobgp_peer_session_state"), "6");
        assert_eq!(v("anycastd_gobgp_peer_type"), "1");
        assert_eq!(v("anycastd_gobgp_peer_password_set_flag"), "1");
        assert_eq!(v("anycastd_gobgp_received_messages_update"), "11");
        assert_eq!(v("anycastd_gobgp_received_messages_withdraw_update"), "3");
        assert_eq!(v("anycastd_gobgp_received_messages_withdraw_prefix"), "7");
        assert_eq!(v("anycastd_gobgp_sent_messages_update"), "5");
        assert_eq!(v("anycastd_gobgp_sent_messages_withdraw_update"), "2");
        assert_eq!(v("anycastd_gobgp_sent_messages_withdraw_prefix"), "4");
        // The password itself is nowhere.
        assert!(!text.contains("s3cret"));
    }

    #[test]
    fn no_table_no_series_and_removed_peers_vanish() {
        assert_eq!(render_metrics(None), "");
        let mut t = table();
        t.peers.retain(|p| p.name == "r1");
        let text = render_metrics(Some(&t));
        assert!(!text.contains("10.0.0.9"), "{text}");
        assert_eq!(
            value(&text, "anycastd_gobgp_peer_count{router_id=\"10.3.3.3\"}"),
            "1"
        );
    }
}
