//! Series that say what some part of the daemon's state says, set from that state at every
//! scrape through the registry's gauges ([`Metrics::refresh_with`]): the routes (from the
//! announcer), the services' states (from the gate) and gobgpd's peers (from the peer
//! monitor). A series whose subject is gone (a prefix or service a reload removed, a peer
//! removed from gobgpd, every peer while gobgpd cannot be asked) is hidden, and shown again
//! when it comes back.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::SystemTime;

use tokio::sync::watch;

use crate::announcer::AnnouncerState;
use crate::announcer::gobgp::ops::PeerNumbers;
use crate::announcer::history::PrefixState;
use crate::announcer::peers::PeerTable;
use crate::metrics::{Metrics, names};
use crate::service::gate::Gate;
use crate::service::health::ServiceState;

/// The label values a refresher set at its last run, to hide those that are gone.
#[derive(Default)]
struct Shown(Mutex<BTreeSet<String>>);

impl Shown {
    /// Records `now` as the values shown; hides the values shown before and not now, shows
    /// the new ones (a value may come back after it was hidden).
    fn update(&self, metrics: &Metrics, label: &str, now: BTreeSet<String>) {
        let Ok(mut before) = self.0.lock() else {
            return;
        };
        for gone in before.difference(&now) {
            metrics.hide(label, gone);
        }
        for new in now.difference(&before) {
            metrics.show(label, new);
        }
        *before = now;
    }
}

/// `anycastd_route_announced{prefix}` and `anycastd_route_state{prefix,state}` of every
/// prefix anycastd manages. While gobgpd cannot be asked they keep saying what gobgpd was
/// last seen to announce (`anycastd_gobgp_up` says that it cannot be asked).
pub fn routes(metrics: &Metrics, state: watch::Receiver<AnnouncerState>) {
    let shown = Shown::default();
    let state_now = state.clone();
    metrics.refresh_with(Box::new(move |m| {
        let s = state.borrow();
        let mut now = BTreeSet::new();
        for p in s.prefixes.iter() {
            let label = p.to_string();
            let on = s.announced.contains_key(p);
            m.gauge(names::ROUTE_ANNOUNCED, &[("prefix", label.as_str())])
                .set(if on { 1.0 } else { 0.0 });
            now.insert(label);
        }
        shown.update(m, "prefix", now);
    }));
    metrics.add_collector(Box::new(move || route_states(&state_now.borrow())));
}

/// `anycastd_route_state{prefix,state}`: four series a prefix, written straight from the
/// state at each scrape (through the registry, 20,000 prefixes' 80,000 series took a
/// second a scrape); a prefix no longer managed has none.
pub fn route_states(s: &AnnouncerState) -> String {
    use std::fmt::Write;
    let name = names::ROUTE_STATE;
    let mut out = String::with_capacity(64 + s.prefixes.len() * 4 * 64);
    let _ = writeln!(
        out,
        "# HELP {name} {}\n# TYPE {name} gauge",
        names::help(name)
    );
    for p in s.prefixes.iter() {
        let now = PrefixState::of(s.announced.get(p).map(|r| r.state));
        for candidate in PrefixState::ALL {
            let _ = writeln!(
                out,
                "{name}{{prefix=\"{p}\",state=\"{}\"}} {}",
                candidate.name(),
                u8::from(candidate == now)
            );
        }
    }
    out
}

/// `anycastd_service_state{service,state}` of every service the gate knows (1 for its
/// state, 0 for the three others) and `anycastd_service_last_transition_timestamp_seconds`.
pub fn services(metrics: &Metrics, gate: watch::Receiver<Gate>) {
    metrics.refresh_with(Box::new(move |m| {
        let g = gate.borrow();
        for (service, state, since) in g.states() {
            for candidate in ServiceState::ALL {
                m.gauge(
                    names::SERVICE_STATE,
                    &[("service", service), ("state", candidate.name())],
                )
                .set(if candidate == state { 1.0 } else { 0.0 });
            }
            let at = since
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            m.gauge(names::SERVICE_LAST_TRANSITION, &[("service", service)])
                .set(at);
        }
    }));
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
        f64::from(n.session_state.number())
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

/// The `anycastd_gobgp_*` peer series from the peer table, and
/// `anycastd_gobgp_peer_count{router_id}`; none while there is no table (gobgpd cannot be
/// asked), and none of a peer removed from gobgpd.
pub fn peers(metrics: &Metrics, table: watch::Receiver<Option<PeerTable>>) {
    let (peers_shown, routers_shown) = (Shown::default(), Shown::default());
    metrics.refresh_with(Box::new(move |m| {
        let t = table.borrow();
        let (mut peers, mut routers) = (BTreeSet::new(), BTreeSet::new());
        if let Some(t) = t.as_ref() {
            let rid = t.router_id.as_str();
            m.gauge(names::GOBGP_PEER_COUNT, &[("router_id", rid)])
                .set(t.peers.len() as f64);
            routers.insert(rid.to_string());
            for p in &t.peers {
                let labels = [("router_id", rid), ("peer", p.name.as_str())];
                for (name, read) in PEER_SERIES {
                    // The seed's names: those ending in _total are counters; the other
                    // message counts keep the seed's names without the suffix a counter
                    // needs, and so stay gauges.
                    if name.ends_with("_total") {
                        m.counter(name, &labels).absolute(read(&p.numbers) as u64);
                    } else {
                        m.gauge(name, &labels).set(read(&p.numbers));
                    }
                }
                if let Some(b) = &p.bfd {
                    m.gauge(names::GOBGP_PEER_BFD_SUPPORTED, &labels)
                        .set(if b.supported { 1.0 } else { 0.0 });
                    m.gauge(names::GOBGP_PEER_BFD_STATE, &labels)
                        .set(f64::from(b.state_number));
                    m.counter(names::GOBGP_PEER_BFD_SENT, &labels)
                        .absolute(b.packets_sent);
                    m.counter(names::GOBGP_PEER_BFD_RECEIVED, &labels)
                        .absolute(b.packets_received);
                }
                peers.insert(p.name.clone());
            }
        }
        peers_shown.update(m, "peer", peers);
        routers_shown.update(m, "router_id", routers);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announcer::gobgp::ops::{Messages, PeerReport, SessionState};
    use crate::announcer::peers::PeerInfo;
    use std::collections::BTreeMap;

    fn peer(addr: &str, state: SessionState) -> PeerReport {
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

    fn table() -> PeerTable {
        let names = BTreeMap::from([("10.0.0.252".parse().expect("ip"), "r1".to_string())]);
        let now = SystemTime::now();
        PeerTable {
            router_id: "10.3.3.3".into(),
            peers: vec![
                PeerInfo::new(peer("10.0.0.252", SessionState::Established), &names, now),
                PeerInfo::new(peer("10.0.0.9", SessionState::Active), &names, now),
            ],
        }
    }

    fn value(text: &str, series: &str) -> Option<String> {
        text.lines().find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')
                .map(str::to_string)
        })
    }

    #[test]
    fn every_peer_series_reads_its_own_field() {
        let m = Metrics::new();
        let (_tx, rx) = watch::channel(Some(table()));
        peers(&m, rx);
        let text = m.render();
        let l = "{router_id=\"10.3.3.3\",peer=\"r1\"}";
        let v = |n: &str| value(&text, &format!("{n}{l}")).unwrap_or_else(|| panic!("{n}\n{text}"));
        assert_eq!(
            value(&text, "anycastd_gobgp_peer_count{router_id=\"10.3.3.3\"}").as_deref(),
            Some("2")
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
    }

    #[test]
    fn no_table_no_peer_series_and_removed_peers_vanish() {
        let m = Metrics::new();
        let (tx, rx) = watch::channel(Some(table()));
        peers(&m, rx);
        assert!(m.render().contains("peer=\"10.0.0.9\""));
        tx.send_modify(|t| {
            if let Some(t) = t {
                t.peers.retain(|p| p.name == "r1");
            }
        });
        let text = m.render();
        assert!(!text.contains("10.0.0.9"), "{text}");
        assert_eq!(
            value(&text, "anycastd_gobgp_peer_count{router_id=\"10.3.3.3\"}").as_deref(),
            Some("1")
        );
        tx.send_replace(None);
        let text = m.render();
        assert!(!text.contains("anycastd_gobgp_peer_count{"), "{text}");
        assert!(!text.contains("peer=\"r1\""), "{text}");
        // Back.
        tx.send_replace(Some(table()));
        assert!(m.render().contains("peer=\"r1\""));
    }

    #[test]
    fn service_state_series_say_one_state_each() {
        let text = "announcer:\n  router_id: 10.0.0.1\n  local_address: 10.0.0.1\n  local_asn: 65001\nservices:\n  - name: a\n    check_interval: 1s\n    checks: [{kind: assigned_address, spec: {ipv4: 127.0.0.1}}]\n  - name: b\n    check_interval: 1s\n    checks: [{kind: assigned_address, spec: {ipv4: 127.0.0.1}}]\n";
        let cfg = crate::config::parse(text, crate::config::Format::Yaml).expect("config");
        let mut g = Gate::new(&cfg);
        g.set("a", crate::service::health::Level::Degraded);
        let m = Metrics::new();
        let (_tx, rx) = watch::channel(g);
        services(&m, rx);
        let text = m.render();
        assert!(text.contains("anycastd_service_state{service=\"a\",state=\"degraded\"} 1"));
        assert!(text.contains("anycastd_service_state{service=\"a\",state=\"up\"} 0"));
        assert!(text.contains("anycastd_service_state{service=\"b\",state=\"down\"} 1"));
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("anycastd_service_state{") && l.ends_with("} 1"))
                .count(),
            2,
            "{text}"
        );
    }

    /// SPEC 19: one series a state of each managed prefix, 1 for the state it is in.
    #[test]
    fn route_states_say_each_prefix_state() {
        use crate::config::attributes::{PathAttributes, RouteState};
        let a: ipnet::IpNet = "192.0.2.1/32".parse().expect("prefix");
        let b: ipnet::IpNet = "192.0.2.2/32".parse().expect("prefix");
        let route = crate::announcer::intent::Route {
            prefix: a,
            state: RouteState::Degraded,
            advert: std::sync::Arc::new(crate::announcer::gobgp::ops::Advert {
                next_hop: "198.51.100.1".parse().expect("next hop"),
                attrs: PathAttributes::default(),
            }),
        };
        let state = AnnouncerState {
            prefixes: std::sync::Arc::new([a, b].into_iter().collect()),
            announced: std::sync::Arc::new([(a, route)].into_iter().collect()),
            ..AnnouncerState::default()
        };
        let text = route_states(&state);
        let series: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            series,
            [
                "anycastd_route_state{prefix=\"192.0.2.1/32\",state=\"up\"} 0",
                "anycastd_route_state{prefix=\"192.0.2.1/32\",state=\"degraded\"} 1",
                "anycastd_route_state{prefix=\"192.0.2.1/32\",state=\"draining\"} 0",
                "anycastd_route_state{prefix=\"192.0.2.1/32\",state=\"withdrawn\"} 0",
                "anycastd_route_state{prefix=\"192.0.2.2/32\",state=\"up\"} 0",
                "anycastd_route_state{prefix=\"192.0.2.2/32\",state=\"degraded\"} 0",
                "anycastd_route_state{prefix=\"192.0.2.2/32\",state=\"draining\"} 0",
                "anycastd_route_state{prefix=\"192.0.2.2/32\",state=\"withdrawn\"} 1",
            ]
        );
        assert!(text.starts_with("# HELP anycastd_route_state 1 for the prefix's state"));
        assert!(text.contains("\n# TYPE anycastd_route_state gauge\n"));
    }
}
