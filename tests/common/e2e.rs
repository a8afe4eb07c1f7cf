//! The end-to-end lab: a speaker gobgpd that anycastd drives, a router gobgpd peering with
//! it (whose RIB the tests read), a directory for files, and the metrics address; and
//! its config.

use std::net::SocketAddr;
use std::time::Duration;

use super::config::{CheckBuilder, ConfigBuilder, ServiceBuilder, check, config, peer, service};
use super::gobgpd::{Gobgpd, Release, RouterOpts, require_gobgpd};
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
    // Not `Default`: a lab is two running gobgpd, not a default value.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Lab {
        require_gobgpd();
        Lab::with(Gobgpd::speaker(), Gobgpd::router(router_opts()))
    }

    /// A lab of these two gobgpd (a speaker with no config, a router of [`router_opts`]).
    pub fn with(speaker: Gobgpd, router: Gobgpd) -> Lab {
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
        Lab {
            speaker,
            router,
            dir: tempfile::tempdir().expect("tempdir"),
            metrics,
        }
    }

    /// A lab whose speaker and router are of these GoBGP releases.
    pub fn of(speaker: Release, router: Release) -> Lab {
        Lab::with(
            Gobgpd::speaker_of(speaker),
            Gobgpd::router_of(router, router_opts(), &[]),
        )
    }

    /// The lab's config: anycastd as `SPEAKER_ASN` on the speaker's API, peering with the
    /// router; its state directory and control socket in the lab's directory, its metrics
    /// on the lab's address. No routes and no services yet.
    pub fn config(&self) -> ConfigBuilder {
        let dir = self.dir.path().display();
        config("10.255.0.1", "127.0.0.1", SPEAKER_ASN)
            .announcer("next_hop", "198.51.100.1")
            .announcer("next_hop_ipv6", "2001:db8::1")
            .routes(&[])
            .announcer("state_directory", format!("{dir}/state"))
            .peer(
                peer("router", "127.0.0.1", ROUTER_ASN).set("remote_port", self.router.bgp_port()),
            )
            .gobgp("address", format!("127.0.0.1:{}", self.speaker.api_port()))
            .gobgp("reconcile_interval", "1s")
            .metrics("address", self.metrics)
            .control("socket", format!("{dir}/control.sock"))
    }

    /// The control socket of the lab's daemon.
    pub fn socket(&self) -> std::path::PathBuf {
        self.dir.path().join("control.sock")
    }

    pub fn start(&self, config: &ConfigBuilder) -> Anycastd {
        Anycastd::start(self.dir.path(), &config.to_string(), self.metrics)
    }

    pub fn wait(&self, prefix: &str, present: bool, deadline: Duration) -> Duration {
        self.router.wait_for_prefix(prefix, present, deadline)
    }
}

/// The router's options: AS `ROUTER_ASN` on 127.0.0.1, anycastd's speaker its neighbor.
pub fn router_opts() -> RouterOpts {
    RouterOpts {
        asn: ROUTER_ASN,
        router_id: "10.255.0.2".parse().expect("router id"),
        listen_addr: "127.0.0.1".parse().expect("listen addr"),
        neighbor_addr: "127.0.0.1".parse().expect("neighbor addr"),
        neighbor_asn: SPEAKER_ASN,
    }
}

/// A service checked every 200 ms by one http_2xx check on `url` (timeout 500ms), no
/// routes of its own yet.
pub fn http_service(name: &str, url: &str) -> ServiceBuilder {
    service(name, "200ms").check(http_check(url))
}

/// An http_2xx check on `url` with a timeout of 500ms.
pub fn http_check(url: &str) -> CheckBuilder {
    check("http_2xx").spec("url", url).spec("timeout", "500ms")
}
