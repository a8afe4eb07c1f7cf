//! What the BGP sessions are doing: polls gobgpd's `ListPeer` for the `anycastd_gobgp_*`
//! peer metrics and the status view, and follows its `WatchEvent` stream to log every
//! session state change.
//!
//! The peer table is a snapshot replaced at every poll, and the metrics are rendered from
//! it at scrape time: a peer removed from gobgpd disappears from the next scrape, and while
//! gobgpd cannot be reached there is no table and so no stale peer series.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::api;
use super::client::{ClientError, GobgpClient};
use super::connection::{Attempt, Link};
use crate::config::Config;
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
    #[serde(skip)]
    pub numbers: PeerNumbers,
}

/// The figures behind the `anycastd_gobgp_*` series, as GoBGP encodes them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerNumbers {
    pub session_state: i32,
    pub admin_state: i32,
    pub peer_type: i32,
    pub flops: u32,
    pub out_q: u32,
    pub password_set: bool,
    pub remove_private: i32,
    pub send_community: u32,
    pub received: api::Message,
    pub sent: api::Message,
}

/// The peers of gobgpd at one poll.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerTable {
    pub router_id: String,
    pub peers: Vec<PeerInfo>,
}

/// `ESTABLISHED`, `IDLE`, ... for GoBGP's session state number.
pub fn session_state_name(n: i32) -> String {
    api::peer_state::SessionState::try_from(n)
        .map(|s| s.as_str_name().to_string())
        .unwrap_or_else(|_| format!("STATE_{n}"))
}

impl PeerInfo {
    /// Reads a peer of `ListPeer`; `names` maps configured addresses to their names.
    pub fn from_api(p: &api::Peer, names: &BTreeMap<IpAddr, String>, now: SystemTime) -> Self {
        let state = p.state.clone().unwrap_or_default();
        let conf = p.conf.clone().unwrap_or_default();
        let address = if state.neighbor_address.is_empty() {
            conf.neighbor_address.clone()
        } else {
            state.neighbor_address.clone()
        };
        let name = address
            .parse::<IpAddr>()
            .ok()
            .and_then(|a| names.get(&a).cloned())
            .unwrap_or_else(|| address.clone());
        let established = state.session_state == api::peer_state::SessionState::Established as i32;
        let uptime_seconds = p
            .timers
            .as_ref()
            .and_then(|t| t.state.as_ref())
            .and_then(|s| s.uptime.as_ref())
            .filter(|_| established)
            .and_then(|t| {
                let since =
                    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t.seconds).ok()?);
                now.duration_since(since).ok().map(|d| d.as_secs())
            });
        let messages = state.messages.unwrap_or_default();
        PeerInfo {
            name,
            address,
            asn: if state.peer_asn != 0 {
                state.peer_asn
            } else {
                conf.peer_asn
            },
            session_state: session_state_name(state.session_state),
            uptime_seconds,
            numbers: PeerNumbers {
                session_state: state.session_state,
                admin_state: state.admin_state,
                peer_type: state.r#type,
                flops: state.flops,
                out_q: state.out_q,
                password_set: !state.auth_password.is_empty() || !conf.auth_password.is_empty(),
                remove_private: state.remove_private,
                send_community: state.send_community,
                received: messages.received.unwrap_or_default(),
                sent: messages.sent.unwrap_or_default(),
            },
        }
    }
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
    let rid = escape(&t.router_id);
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
        let _ = writeln!(
            s,
            "# HELP {name} {}\n# TYPE {name} gauge",
            names::help(name)
        );
        for p in &t.peers {
            let _ = writeln!(
                s,
                "{name}{{router_id=\"{rid}\",peer=\"{}\"}} {}",
                escape(&p.name),
                read(&p.numbers)
            );
        }
    }
    s
}

/// A label value, escaped for the text format.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Polls gobgpd's peers and logs their session changes, until shut down.
pub struct PeerMonitor {
    address: String,
    rpc_timeout: Duration,
    poll_interval: Duration,
    router_id: String,
    names: BTreeMap<IpAddr, String>,
    table: watch::Sender<Option<PeerTable>>,
}

impl PeerMonitor {
    /// The monitor, and the receiver of its peer table (`None` while gobgpd is unreachable).
    pub fn new(cfg: &Config) -> (PeerMonitor, watch::Receiver<Option<PeerTable>>) {
        let (tx, rx) = watch::channel(None);
        let a = &cfg.announcer;
        let m = PeerMonitor {
            address: a.gobgp.address.clone(),
            rpc_timeout: a.gobgp.timeout.0,
            poll_interval: a.gobgp.peer_poll_interval.0,
            router_id: a.router_id.to_string(),
            names: a
                .peers
                .iter()
                .map(|p| (p.remote_address, p.name.clone()))
                .collect(),
            table: tx,
        };
        (m, rx)
    }

    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut link = Link::new(&self.address, self.rpc_timeout);
        loop {
            let session_shutdown = shutdown.clone();
            let attempt = link
                .attempt(&mut shutdown, |c| self.session(c, session_shutdown))
                .await;
            match attempt {
                Attempt::Done(()) | Attempt::Shutdown => return,
                Attempt::Failed { error, retry_in } => {
                    self.table.send_replace(None);
                    // The announcer logs gobgpd's failures for the operator.
                    debug!(error = %error, retry_in = ?retry_in, "peer monitor: gobgpd not usable");
                    if !link.pause(retry_in, &mut shutdown).await {
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
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), ClientError> {
        // gobgpd sends the stream's headers only with its first event: its own task. A
        // JoinSet aborts its tasks when dropped: the follower ends with this session.
        let mut events = tokio::task::JoinSet::new();
        let watcher = client.clone();
        let names = self.names.clone();
        events.spawn(async move {
            let stream = watcher.watch_peer_events().await?;
            log_events(stream, names).await;
            Err::<(), _>(watcher.stream_ended("WatchEvent"))
        });
        let mut tick = tokio::time::interval(self.poll_interval);
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
                _ = shutdown.changed() => return Ok(()),
            }
            let peers = client.list_peers().await?;
            let now = SystemTime::now();
            let mut peers: Vec<PeerInfo> = peers
                .iter()
                .map(|p| PeerInfo::from_api(p, &self.names, now))
                .collect();
            peers.sort_by(|a, b| a.name.cmp(&b.name));
            self.table.send_replace(Some(PeerTable {
                router_id: self.router_id.clone(),
                peers,
            }));
        }
    }
}

/// Logs each peer's session state changes: into and out of ESTABLISHED at WARN (the default
/// level shows them), the steps in between at INFO.
async fn log_events(
    mut stream: tonic::Streaming<api::WatchEventResponse>,
    names: BTreeMap<IpAddr, String>,
) {
    let mut last: BTreeMap<String, i32> = BTreeMap::new();
    let established = api::peer_state::SessionState::Established as i32;
    loop {
        let event = match stream.message().await {
            Ok(Some(e)) => e,
            Ok(None) => return,
            Err(e) => {
                debug!(error = %e, "gobgpd's event stream ended");
                return;
            }
        };
        let Some(api::watch_event_response::Event::Peer(pe)) = event.event else {
            continue;
        };
        let Some(peer) = pe.peer else { continue };
        let info = PeerInfo::from_api(&peer, &names, SystemTime::now());
        // gobgpd also reports events of its own listener and of peers being set up, with
        // no address ("<nil>"): nothing an operator can act on.
        if info.address.is_empty() || info.address == "<nil>" {
            continue;
        }
        let state = info.numbers.session_state;
        let before = last.insert(info.address.clone(), state);
        if before == Some(state) {
            continue;
        }
        let from = before.map_or_else(|| "-".to_string(), session_state_name);
        if state == established {
            warn!(peer = %info.name, address = %info.address, from = %from, to = %info.session_state, "BGP session established");
        } else if before == Some(established) {
            warn!(peer = %info.name, address = %info.address, from = %from, to = %info.session_state, "BGP session lost");
        } else {
            info!(peer = %info.name, address = %info.address, from = %from, to = %info.session_state, "BGP session state changed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(addr: &str, state: i32) -> api::Peer {
        api::Peer {
            state: Some(api::PeerState {
                neighbor_address: addr.to_string(),
                peer_asn: 65000,
                session_state: state,
                auth_password: "s3cret".to_string(),
                r#type: 1,
                messages: Some(api::Messages {
                    received: Some(api::Message {
                        withdraw_prefix: 7,
                        withdraw_update: 3,
                        update: 11,
                        ..Default::default()
                    }),
                    sent: Some(api::Message {
                        update: 5,
                        withdraw_update: 2,
                        withdraw_prefix: 4,
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn table() -> PeerTable {
        let names = BTreeMap::from([("10.0.0.252".parse().expect("ip"), "r1".to_string())]);
        let now = SystemTime::now();
        PeerTable {
            router_id: "10.3.3.3".into(),
            peers: vec![
                PeerInfo::from_api(&peer("10.0.0.252", 6), &names, now),
                PeerInfo::from_api(&peer("10.0.0.9", 3), &names, now),
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
