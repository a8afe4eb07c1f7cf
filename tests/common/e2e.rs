//! The end-to-end lab: a speaker gobgpd that anycastd drives, a router gobgpd peering with
//! it (whose RIB the tests read), a directory for files, and the metrics address; and
//! config snippets for it.

use std::net::SocketAddr;
use std::time::Duration;

use super::gobgpd::{Gobgpd, RouterOpts, require_gobgpd};
use super::lab::{Anycastd, free_tcp_port};

/// BGP sessions take 5–9 s to establish on loopback.
pub const SESSION: Duration = Duration::from_secs(40);
/// A change after the session is up: a round, a reconcile, an UPDATE.
pub const CHANGE: Duration = Duration::from_secs(15);

pub const SPEAKER_ASN: u32 = 65001;
pub const ROUTER_ASN: u32 = 65000;

pub struct Lab {
    pub speaker: Gobgpd,
    pub router: Gobgpd,
    pub dir: tempfile::TempDir,
    pub metrics: SocketAddr,
}

impl Lab {
    pub fn new() -> Lab {
        require_gobgpd();
        let speaker = Gobgpd::speaker();
        let router = Gobgpd::router(RouterOpts {
            asn: ROUTER_ASN,
            router_id: "10.255.0.2".parse().expect("router id"),
            listen_addr: "127.0.0.1".parse().expect("listen addr"),
            neighbor_addr: "127.0.0.1".parse().expect("neighbor addr"),
            neighbor_asn: SPEAKER_ASN,
        });
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
        Lab {
            speaker,
            router,
            dir: tempfile::tempdir().expect("tempdir"),
            metrics,
        }
    }

    /// A config with `routes` gated by all services, and `services` as YAML list items.
    pub fn config(&self, routes: &[&str], services: &str) -> String {
        self.config_with(routes, services, "", "")
    }

    /// Like [`Lab::config`], with more `announcer` keys (`announcer`, indented by two) and
    /// more keys of the router peer (`peer`, indented by six). The state directory and the
    /// control socket are in the lab's directory.
    pub fn config_with(
        &self,
        routes: &[&str],
        services: &str,
        announcer: &str,
        peer: &str,
    ) -> String {
        format!(
            r#"announcer:
  router_id: 10.255.0.1
  local_address: 127.0.0.1
  local_asn: {SPEAKER_ASN}
  next_hop: 198.51.100.1
  next_hop_ipv6: 2001:db8::1
  routes: [{routes}]
  state_directory: {dir}/state
{announcer}  peers:
    - name: router
      remote_address: 127.0.0.1
      remote_asn: {ROUTER_ASN}
      remote_port: {port}
{peer}  gobgp:
    address: 127.0.0.1:{api}
    reconcile_interval: 1s
services:
{services}
metrics:
  address: {metrics}
control:
  socket: {dir}/control.sock
"#,
            routes = routes.join(", "),
            dir = self.dir.path().display(),
            port = self.router.bgp_port(),
            api = self.speaker.api_port(),
            metrics = self.metrics,
        )
    }

    /// The control socket of the lab's daemon.
    pub fn socket(&self) -> std::path::PathBuf {
        self.dir.path().join("control.sock")
    }

    pub fn start(&self, config: &str) -> Anycastd {
        Anycastd::start(self.dir.path(), config, self.metrics)
    }

    pub fn wait(&self, prefix: &str, present: bool, deadline: Duration) -> Duration {
        self.router.wait_for_prefix(prefix, present, deadline)
    }
}

/// One service with one http_2xx check on `url`, its own `routes`.
pub fn http_service(name: &str, url: &str, routes: &[&str]) -> String {
    format!(
        r#"  - name: {name}
    check_interval: 200ms
    routes: [{routes}]
    checks:
      - kind: http_2xx
        spec:
          url: {url}
          timeout: 500ms
"#,
        routes = routes.join(", ")
    )
}
