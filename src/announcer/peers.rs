//! What the BGP sessions are doing: polls gobgpd's `ListPeer` for the `anycastd_gobgp_*`
//! peer metrics and the status view, and follows its `WatchEvent` stream to log every
//! session state change.
//!
//! The peer table is a snapshot replaced at every poll; the metrics are set from it at scrape
//! time ([`crate::observe::series::peers`]): a peer removed from gobgpd disappears from the
//! next scrape, and while gobgpd cannot be reached there is no table and so no stale peer
//! series.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::priority::NOTICE;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::connection::{Attempt, Link};
use super::gobgp::ops::{
    BfdReport, BfdState, Gobgp, GobgpError, PeerEvents, PeerNumbers, PeerReport, SessionState,
};
use super::intent::Intent;
use super::state::Stop;
use crate::config::bfd::Bfd;

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
    /// BFD with this peer, for a peer configured with it (SPEC 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bfd: Option<BfdInfo>,
}

/// BFD with a peer configured for it, as gobgpd reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BfdInfo {
    /// What the config asks: `300ms x 3`.
    pub configured: String,
    /// Whether gobgpd runs it: false on GoBGP 3.x and 4.0 to 4.5.
    pub supported: bool,
    /// `up`, `init`, `down`, `admin_down`, or `unknown`.
    pub state: String,
    pub packets_sent: u64,
    pub packets_received: u64,
    /// The state in `anycastd_gobgp_peer_bfd_state`'s numbering.
    #[serde(skip)]
    pub state_number: u8,
}

impl BfdInfo {
    /// A peer configured with `want`, of which gobgpd reported `have`.
    pub fn new(want: &Bfd, have: Option<BfdReport>) -> BfdInfo {
        let have = have.filter(|h| h.enabled);
        let state = have.map(|h| h.state).unwrap_or_default();
        BfdInfo {
            configured: want.describe(),
            supported: have.is_some(),
            state: state.name().to_string(),
            packets_sent: have.map_or(0, |h| h.packets_sent),
            packets_received: have.map_or(0, |h| h.packets_received),
            state_number: state as u8,
        }
    }
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
            session_state: p.numbers.session_state.name().to_string(),
            uptime_seconds: uptime(p.established_at, now),
            established_at: p.established_at,
            hold_time_seconds: p.hold_time,
            keepalive_seconds: p.keepalive_interval,
            address: p.address,
            asn: p.asn,
            numbers: p.numbers,
            bfd: None,
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

/// Polls gobgpd's peers and logs their session changes, until shut down.
pub struct PeerMonitor {
    intents: watch::Receiver<Arc<Intent>>,
    table: watch::Sender<Option<PeerTable>>,
    /// Each peer's last session state, across connections: a reconnect does not log the
    /// states again as if they were new.
    last: Arc<Mutex<BTreeMap<String, SessionState>>>,
    /// Each peer's BFD state at the last poll, for the log of a lost session.
    bfd_seen: Arc<Mutex<BTreeMap<IpAddr, BfdState>>>,
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
            bfd_seen: Arc::default(),
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
    fn forget_sessions(&self, error: &GobgpError) {
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let names = self.names();
        let were: Vec<String> = last
            .iter()
            .filter(|(_, s)| **s == SessionState::Established)
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
    async fn session<G: Gobgp>(
        &self,
        client: G,
        mut stop: watch::Receiver<Stop>,
    ) -> Result<(), GobgpError> {
        // gobgpd sends the stream's headers only with its first event: its own task. A
        // JoinSet aborts its tasks when dropped: the follower ends with this session.
        let mut events = tokio::task::JoinSet::new();
        let watcher = client.clone();
        let intents = self.intents.clone();
        let last = self.last.clone();
        let bfd_seen = self.bfd_seen.clone();
        // A session change polls at once: the peer table (status, metrics) shows it then,
        // not up to `peer_poll_interval` later (right after a start, the first poll ran
        // before the announcer had added the peers, and the table stayed empty until the
        // next).
        let poke = Arc::new(tokio::sync::Notify::new());
        let poked = poke.clone();
        events.spawn(async move {
            let stream = watcher.watch_peer_events().await?;
            let cause = BfdCause {
                client: watcher.clone(),
                seen: bfd_seen,
            };
            log_events(stream, intents, last, cause, &poked).await;
            Err::<(), _>(watcher.stream_ended("WatchEvent"))
        });
        let mut tick = tokio::time::interval(self.intents.borrow().peer_poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = poke.notified() => {}
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
            let bfd: BTreeMap<IpAddr, Bfd> = self
                .intents
                .borrow()
                .peers
                .iter()
                .filter_map(|p| Some((p.address, p.bfd?)))
                .collect();
            if let Ok(mut seen) = self.bfd_seen.lock() {
                for r in &reports {
                    if let Ok(a) = r.address.parse::<IpAddr>() {
                        seen.insert(a, r.bfd.map(|b| b.state).unwrap_or_default());
                    }
                }
            }
            let mut peers: Vec<PeerInfo> = reports
                .into_iter()
                .map(|p| {
                    let want = p.address.parse::<IpAddr>().ok().and_then(|a| bfd.get(&a));
                    let have = p.bfd;
                    let mut info = PeerInfo::new(p, &names, now);
                    info.bfd = want.map(|w| BfdInfo::new(w, have));
                    info
                })
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
async fn log_events<G: Gobgp>(
    mut stream: impl PeerEvents,
    intents: watch::Receiver<Arc<Intent>>,
    last: Arc<Mutex<BTreeMap<String, SessionState>>>,
    cause: BfdCause<G>,
    changed: &tokio::sync::Notify,
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
        let to = state.name();
        let from = before.map_or("none", SessionState::name);
        let address = &report.address;
        let with_bfd = report.address.parse::<IpAddr>().ok().is_some_and(|a| {
            intents
                .borrow()
                .peers
                .iter()
                .any(|p| p.address == a && p.bfd.is_some())
        });
        if state == SessionState::Established && before.is_none() {
            // The first word of this peer since anycastd started (every restart): there is
            // no `from` to tell (issue 23.7: `from=none` on every restart).
            warn!(target: NOTICE, peer = %name, %address, "BGP session established");
        } else if state == SessionState::Established {
            warn!(target: NOTICE, peer = %name, %address, from = %from, to = %to, "BGP session established");
        } else if before == Some(SessionState::Established)
            && with_bfd
            && cause.was_bfd(address).await
        {
            warn!(peer = %name, %address, from = %from, to = %to, reason = "BFD is down", "BGP session lost to BFD: the peer's BFD packets stopped or said down, and gobgpd reset the session");
        } else if before == Some(SessionState::Established) {
            warn!(peer = %name, %address, from = %from, to = %to, "BGP session lost");
        } else {
            info!(peer = %name, %address, from = %from, to = %to, "BGP session state changed");
        }
        // After the line above: `was_bfd` reads the BFD state of the poll before this
        // change, which the poll this asks for replaces.
        changed.notify_one();
    }
}

/// Finds out whether BFD took a session down: gobgpd resets the BGP session when the BFD
/// session leaves UP (GoBGP 4.6+, `pkg/server/bfd_peer.go`), so a lost session whose BFD
/// is down now, after being up at the last poll, was lost to BFD. gobgpd's event carries no
/// cause (4.8 does not fill `disconnect_reason` over gRPC).
struct BfdCause<G> {
    client: G,
    seen: Arc<Mutex<BTreeMap<IpAddr, BfdState>>>,
}

impl<G: Gobgp> BfdCause<G> {
    async fn was_bfd(&self, address: &str) -> bool {
        let Ok(a) = address.parse::<IpAddr>() else {
            return false;
        };
        let was_up = self
            .seen
            .lock()
            .map(|s| s.get(&a) == Some(&BfdState::Up))
            .unwrap_or(false);
        let now = match self.client.list_peers().await {
            Ok(peers) => peers
                .into_iter()
                .find(|p| p.address.parse::<IpAddr>().ok() == Some(a))
                .and_then(|p| p.bfd)
                .map(|b| b.state),
            Err(_) => None,
        };
        was_up && matches!(now, Some(BfdState::Down | BfdState::Init))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn uptime_is_counted_when_shown_not_when_polled() {
        let polled = SystemTime::now();
        let report = PeerReport {
            address: "10.0.0.252".to_string(),
            asn: 65000,
            established_at: Some(polled - Duration::from_secs(7)),
            numbers: PeerNumbers {
                session_state: SessionState::Established,
                ..Default::default()
            },
            ..Default::default()
        };
        let p = PeerInfo::new(report, &BTreeMap::new(), polled);
        assert_eq!(p.uptime_seconds, Some(7));
        let shown = p.as_of(polled + Duration::from_secs(5));
        assert_eq!(shown.uptime_seconds, Some(12));
    }

    #[test]
    fn configured_peers_are_named_others_are_their_address() {
        let names = BTreeMap::from([("10.0.0.252".parse().expect("ip"), "r1".to_string())]);
        let now = SystemTime::now();
        let report = |addr: &str, session_state| PeerReport {
            address: addr.to_string(),
            numbers: PeerNumbers {
                session_state,
                ..Default::default()
            },
            ..Default::default()
        };
        let a = PeerInfo::new(report("10.0.0.252", SessionState::Established), &names, now);
        let b = PeerInfo::new(report("10.0.0.9", SessionState::Active), &names, now);
        assert_eq!(
            (a.name.as_str(), a.session_state.as_str()),
            ("r1", "ESTABLISHED")
        );
        assert_eq!(
            (b.name.as_str(), b.session_state.as_str()),
            ("10.0.0.9", "ACTIVE")
        );
    }
}
