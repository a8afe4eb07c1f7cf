//! What the sample config (deploy/config.yaml, and the same in deploy/kubernetes/'s
//! ConfigMap) expects around anycastd, made real for the container tests: in the network
//! namespace where gobgpd and anycastd run (a pod's own, or the "node" whose network a
//! host-network pod shares) the DNS server and web service it checks, on the documentation
//! addresses it names; and the peer, a router gobgpd in a namespace of its own, linked only
//! to that one. Nothing here can reach another machine.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::dns::{Mode, answer};
use crate::common::gobgpd::{RouterOpts, withdrawn_prefixes};
use crate::common::lab::{HttpTarget, listen};
use crate::common::netns::{NetNs, NsRouter, link, run_in};
use serde_json::Value;

/// A DNS server on a UDP socket (bound by the caller, e.g. in a namespace) answering every
/// A query with 192.0.2.10, until dropped.
pub struct DnsServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DnsServer {
    pub fn serve(sock: UdpSocket) -> DnsServer {
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stopping.load(Ordering::SeqCst) {
                if let Ok((n, from)) = sock.recv_from(&mut buf)
                    && let Some(reply) = answer(&buf[..n], Mode::A)
                {
                    let _ = sock.send_to(&reply, from);
                }
            }
        });
        DnsServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"))
}

/// The sample config's surroundings. Dropped in order: router, servers, namespaces.
pub struct Site {
    pub router: NsRouter,
    pub web: HttpTarget,
    _dns: DnsServer,
    _router_ns: NetNs,
    /// Where gobgpd and anycastd run.
    pub ns: NetNs,
    /// The config's routes, global and per service.
    pub wanted: BTreeSet<String>,
    /// anycastd's local_address (the router's neighbor).
    pub local: String,
}

impl Site {
    /// Around `ns`, for the config `text` (the sample: its addresses are checked here);
    /// `what` names the router's namespace (`<what>-router`), unique among the tests of a
    /// process.
    pub fn around(what: &str, ns: NetNs, text: &str) -> Site {
        for needle in [
            "resolver: 192.0.2.53:53",
            "host: 192.0.2.53",
            "url: http://192.0.2.80:8080/healthz",
        ] {
            assert!(
                text.contains(needle),
                "the sample config no longer has `{needle}`: serve what it checks in this test"
            );
        }
        let sample: Value = serde_saphyr::from_str(text)
            .unwrap_or_else(|e| panic!("the sample config is not valid YAML: {e}"));
        let announcer = &sample["announcer"];
        let local = str_of(&announcer["local_address"], "local_address");
        let peer = &announcer["peers"][0];
        let peer_addr = str_of(&peer["remote_address"], "the peer's remote_address");
        let service_routes = sample["services"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["routes"].as_array().into_iter().flatten());
        let wanted: BTreeSet<String> = announcer["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(service_routes)
            .map(|r| str_of(r, "a route").to_string())
            .collect();
        assert_eq!(wanted.len(), 2, "the sample config's routes: {wanted:?}");

        let router_ns = NetNs::create(&format!("{what}-router"));
        link(
            &ns,
            "to-router",
            &format!("{local}/24"),
            &router_ns,
            "to-site",
            &format!("{peer_addr}/24"),
        );
        ns.ip(&["addr", "add", "192.0.2.53/32", "dev", "lo"]);
        ns.ip(&["addr", "add", "192.0.2.80/32", "dev", "lo"]);

        // The checked services, served from this process inside the namespace.
        let dns = DnsServer::serve(
            ns.run(|| UdpSocket::bind("192.0.2.53:53").expect("bind the DNS server")),
        );
        let ns_name = ns.name.clone();
        let web = HttpTarget::start_with(
            "192.0.2.80:8080".parse().expect("addr"),
            Arc::new(move |addr: SocketAddr| run_in(&ns_name, move || listen(addr))),
        );
        let router = NsRouter::start(
            &router_ns,
            &RouterOpts {
                asn: peer["remote_asn"].as_u64().expect("remote_asn") as u32,
                router_id: peer_addr.parse().expect("IPv4 peer"),
                listen_addr: peer_addr.parse().expect("IPv4 peer"),
                neighbor_addr: local.parse().expect("local_address"),
                neighbor_asn: announcer["local_asn"].as_u64().expect("local_asn") as u32,
            },
            peer["remote_port"].as_u64().unwrap_or(179) as u16,
        );
        Site {
            router,
            web,
            _dns: dns,
            _router_ns: router_ns,
            ns,
            wanted,
            local: local.to_string(),
        }
    }

    /// Every wanted route is at the router.
    pub fn all_at_router(&self) -> bool {
        self.router.prefixes().is_superset(&self.wanted)
    }

    /// None is.
    pub fn none_at_router(&self) -> bool {
        self.router.prefixes().is_disjoint(&self.wanted)
    }

    /// Prefixes the router saw withdrawn in UPDATEs (a closed session withdraws none).
    pub fn withdrawn(&self) -> Option<u64> {
        withdrawn_prefixes(&self.router.cli(&["neighbor", &self.local, "-j"])?)
    }
}
