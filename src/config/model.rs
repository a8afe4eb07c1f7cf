//! The config's types, as the file writes them: every key, its default and its meaning.
//! Parsed by serde (strict: unknown keys are errors); the rules across fields are in
//! [`super::validate`], the check kinds' specs in [`super::checks`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::Deserialize;

use super::attributes::AttributesConfig;
use super::bfd::{Bfd, BfdConfig};
use super::checks::{CheckConfig, OnFailure};
use super::fleet::FleetConfig;
use super::watches::WatchSpec;
use crate::duration::Dur;

/// Where the config is read from when neither `--config` nor `CONFIG_PATH` says.
pub const DEFAULT_PATH: &str = "/config.yaml";

/// The whole, validated configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub announcer: AnnouncerConfig,
    pub services: Vec<ServiceConfig>,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub control: ControlConfig,
    /// The fleet guard (SPEC 14); none: every site decides alone.
    #[serde(default)]
    pub fleet: Option<FleetConfig>,
}

/// The control socket of `anycastd drain`, `undrain` and `reload` (SPEC 12).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// A Unix socket, mode 0660. Nothing that changes routes listens on TCP.
    #[serde(default = "default_control_socket")]
    pub socket: PathBuf,
}

/// Where the control socket is when the config does not say.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/anycastd/anycastd.sock";

fn default_control_socket() -> PathBuf {
    PathBuf::from(DEFAULT_CONTROL_SOCKET)
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: default_control_socket(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnnouncerConfig {
    pub router_id: Ipv4Addr,
    pub local_address: IpAddr,
    #[schemars(range(min = 1, max = 4294967295u32))]
    pub local_asn: u32,
    /// `-1`: gobgpd makes outgoing sessions only.
    #[serde(default = "default_listen_port")]
    pub listen_port: i32,
    /// Next hop of IPv4 routes; `local_address` when that is IPv4.
    #[serde(default)]
    pub next_hop: Option<Ipv4Addr>,
    /// Next hop of IPv6 routes; `local_address` when that is IPv6.
    #[serde(default)]
    pub next_hop_ipv6: Option<Ipv6Addr>,
    /// Prefixes announced only while every service is up.
    #[serde(default, deserialize_with = "super::prefix::prefixes")]
    #[schemars(with = "Vec<super::prefix::Prefix>")]
    pub routes: Vec<IpNet>,
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// BFD (SPEC 16): every peer's default; a peer's own `bfd` merges over it.
    #[serde(default)]
    pub bfd: BfdConfig,
    #[serde(default)]
    pub gobgp: GobgpConfig,
    /// How routes are announced in each state (SPEC 10); a service's own replace these.
    #[serde(default)]
    pub attributes: AttributesConfig,
    /// How long a route leaving for another reason than failing health (drain, shutdown,
    /// reload) keeps its `draining` attributes before it is withdrawn.
    #[serde(default = "default_drain_linger")]
    pub drain_linger: Dur,
    /// How long a route announced in a less preferred state than up (degraded, draining)
    /// stays so before it goes back toward up; a change away from up is never held.
    #[serde(default = "default_attribute_hold")]
    pub attribute_hold: Dur,
    /// Every service is drained while this file exists.
    #[serde(default)]
    pub drain_file: Option<PathBuf>,
    /// Where `anycastd drain` is remembered across restarts.
    #[serde(default = "default_state_directory")]
    pub state_directory: PathBuf,
}

fn default_state_directory() -> PathBuf {
    PathBuf::from("/var/lib/anycastd")
}

fn default_attribute_hold() -> Dur {
    Dur::secs(1)
}

fn default_drain_linger() -> Dur {
    Dur::secs(5)
}

fn default_listen_port() -> i32 {
    -1
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub name: String,
    pub remote_address: IpAddr,
    #[schemars(range(min = 1, max = 4294967295u32))]
    pub remote_asn: u32,
    #[serde(default)]
    pub remote_port: Option<u16>,
    /// File holding the TCP-MD5 secret; read at start, never logged.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// `0`: no eBGP multihop.
    #[serde(default)]
    pub multihop_ttl: u8,
    #[serde(default)]
    pub passive: bool,
    /// BGP hold time: 0 (no keepalives) or at least 3s, whole seconds.
    #[serde(default = "default_hold_time")]
    pub hold_time: Dur,
    /// Default: a third of `hold_time`.
    #[serde(default)]
    pub keepalive_interval: Option<Dur>,
    /// Wait between attempts to open the session.
    #[serde(default = "default_connect_retry")]
    pub connect_retry: Dur,
    /// BFD with this peer, merged key by key over `announcer.bfd`.
    #[serde(default)]
    pub bfd: BfdConfig,
}

fn default_hold_time() -> Dur {
    Dur::secs(90)
}
fn default_connect_retry() -> Dur {
    // GoBGP's own default (120 s, then a random extra of up to as much) would keep a
    // session down for minutes after the router restarts.
    Dur::secs(5)
}

impl PeerConfig {
    /// The BFD this peer runs (its `bfd` over `announcer.bfd`); `None` when not enabled.
    pub fn bfd_over(&self, default: BfdConfig) -> Option<Bfd> {
        self.bfd.over(default).resolve()
    }

    /// The keepalive interval in force: as given, or a third of the hold time.
    pub fn keepalive(&self) -> Dur {
        self.keepalive_interval
            .unwrap_or(Dur(Duration::from_secs(self.hold_time.0.as_secs() / 3)))
    }
}

/// The largest `password_file` read (a TCP-MD5 key is at most 80 bytes).
pub const MAX_PASSWORD_BYTES: u64 = 4096;

/// The TCP-MD5 secret in `password_file`, without its trailing line break.
pub fn read_password_file(file: &Path) -> Result<String, crate::small_file::ReadError> {
    let s = crate::small_file::read_to_string(file, MAX_PASSWORD_BYTES)?;
    Ok(s.trim_end_matches(['\r', '\n']).to_string())
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GobgpConfig {
    /// gobgpd's gRPC API, `host:port`.
    #[serde(default = "default_gobgp_address")]
    pub address: String,
    /// How often the wanted paths are compared with gobgpd's RIB.
    #[serde(default = "default_reconcile_interval")]
    pub reconcile_interval: Dur,
    /// How often `ListPeer` is polled for the peer metrics.
    #[serde(default = "default_peer_poll_interval")]
    pub peer_poll_interval: Dur,
    /// Bound on every gRPC call to gobgpd.
    #[serde(default = "default_rpc_timeout")]
    pub timeout: Dur,
}

fn default_gobgp_address() -> String {
    "127.0.0.1:50051".to_string()
}
fn default_reconcile_interval() -> Dur {
    Dur(Duration::from_secs(5))
}
fn default_peer_poll_interval() -> Dur {
    Dur(Duration::from_secs(5))
}
fn default_rpc_timeout() -> Dur {
    Dur(Duration::from_secs(3))
}

impl Default for GobgpConfig {
    fn default() -> Self {
        GobgpConfig {
            address: default_gobgp_address(),
            reconcile_interval: default_reconcile_interval(),
            peer_poll_interval: default_peer_poll_interval(),
            timeout: default_rpc_timeout(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub name: String,
    pub check_interval: Dur,
    /// How often rounds run while the state is in doubt (a round disagreed with it); at
    /// most check_interval; default check_interval.
    #[serde(default)]
    pub fast_interval: Option<Dur>,
    #[serde(default = "one")]
    pub rise: u32,
    #[serde(default = "one")]
    pub fall: u32,
    /// Prefixes announced only while this service is up.
    #[serde(default, deserialize_with = "super::prefix::prefixes")]
    #[schemars(with = "Vec<super::prefix::Prefix>")]
    pub routes: Vec<IpNet>,
    /// Replace `announcer.attributes` for this service's own routes.
    #[serde(default)]
    pub attributes: Option<AttributesConfig>,
    /// The service is drained while this file exists.
    #[serde(default)]
    pub drain_file: Option<PathBuf>,
    /// Events that start a round at once: `tcp: HOST:PORT` (a connection held open) or
    /// `pid_file: PATH` (the process it names); the checks still decide.
    #[serde(default)]
    pub watch: Vec<WatchSpec>,
    pub checks: Vec<CheckConfig>,
}

impl ServiceConfig {
    /// The pace of rounds while the state is in doubt.
    pub fn fast_interval(&self) -> Duration {
        self.fast_interval.unwrap_or(self.check_interval).0
    }

    /// Whether any of its checks degrades rather than withdraws.
    pub fn has_degrade_checks(&self) -> bool {
        self.checks
            .iter()
            .any(|c| c.on_failure == OnFailure::Degrade)
    }
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_metrics_address")]
    pub address: SocketAddr,
}

fn yes() -> bool {
    true
}
fn default_metrics_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            address: default_metrics_address(),
        }
    }
}
