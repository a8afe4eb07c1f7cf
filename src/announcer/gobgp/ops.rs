//! What anycastd needs of gobgpd, as one trait ([`Gobgp`]), and the types those operations
//! speak: anycastd's own, never GoBGP's generated ones. Each API generation implements the
//! trait in a module of its own, which converts at its boundary (as GoBGP's `pkg/server`
//! does with its API types): [`super::v3`] for GoBGP 3.x, [`super::v4`] for 4.x.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use ipnet::IpNet;

use crate::config::attributes::PathAttributes;

/// Which gRPC API gobgpd speaks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// GoBGP 3.x: service `apipb.GobgpApi`.
    V3,
    /// GoBGP 4.x: service `api.GoBgpService`.
    V4,
}

impl Api {
    /// Every API anycastd speaks.
    pub const ALL: [Api; 2] = [Api::V3, Api::V4];

    /// `v3` or `v4`, as logs, status and `anycastd_gobgp_api_info{api}` say it.
    pub fn name(self) -> &'static str {
        match self {
            Api::V3 => "v3",
            Api::V4 => "v4",
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// gobgpd's global settings, as far as anycastd sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalSettings {
    pub router_id: Ipv4Addr,
    pub asn: u32,
    pub listen_port: i32,
}

impl fmt::Display for GlobalSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "router id {}, ASN {}, listen port {}",
            self.router_id, self.asn, self.listen_port
        )
    }
}

/// A BGP peer as anycastd configures it in gobgpd.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerSettings {
    /// The configured name; stored as the peer's description.
    pub name: String,
    pub address: IpAddr,
    pub asn: u32,
    pub port: Option<u16>,
    pub local_address: IpAddr,
    /// TCP-MD5 secret (never printed: see the `Debug` impl).
    pub password: Option<String>,
    /// 0: no eBGP multihop.
    pub multihop_ttl: u8,
    pub passive: bool,
    pub timers: PeerTimers,
    /// BFD with this peer, when enabled (GoBGP 4.6 and later run it; others ignore it).
    pub bfd: Option<crate::config::bfd::Bfd>,
}

/// A peer's BGP timers, in seconds as BGP counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerTimers {
    pub hold_time: u64,
    pub keepalive_interval: u64,
    pub connect_retry: u64,
}

impl fmt::Debug for PeerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerSettings")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("asn", &self.asn)
            .field("port", &self.port)
            .field("local_address", &self.local_address)
            .field("password", &self.password.as_ref().map(|_| "<secret>"))
            .field("multihop_ttl", &self.multihop_ttl)
            .field("passive", &self.passive)
            .field("timers", &self.timers)
            .field("bfd", &self.bfd)
            .finish()
    }
}

/// What [`Gobgp::ensure_peer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerChange {
    Added,
    Updated,
    Unchanged,
}

/// A BGP session's state (RFC 4271's finite state machine), with the numbers of the seed's
/// `anycastd_gobgp_peer_session_state`: 1 idle ... 6 established.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SessionState {
    /// gobgpd said nothing, or something anycastd does not know.
    #[default]
    Unknown,
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl SessionState {
    /// Its number in `anycastd_gobgp_peer_session_state` (0 unknown).
    pub fn number(self) -> u8 {
        match self {
            SessionState::Unknown => 0,
            SessionState::Idle => 1,
            SessionState::Connect => 2,
            SessionState::Active => 3,
            SessionState::OpenSent => 4,
            SessionState::OpenConfirm => 5,
            SessionState::Established => 6,
        }
    }

    /// `ESTABLISHED`, `IDLE`, ..., as `gobgp neighbor` and anycastd's status write it.
    pub fn name(self) -> &'static str {
        match self {
            SessionState::Unknown => "UNKNOWN",
            SessionState::Idle => "IDLE",
            SessionState::Connect => "CONNECT",
            SessionState::Active => "ACTIVE",
            SessionState::OpenSent => "OPENSENT",
            SessionState::OpenConfirm => "OPENCONFIRM",
            SessionState::Established => "ESTABLISHED",
        }
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A peer as gobgpd reports it (`ListPeer`, peer events), in anycastd's terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerReport {
    pub address: String,
    pub asn: u32,
    /// When the session came up, while it is established.
    pub established_at: Option<SystemTime>,
    /// The hold time in force (the smaller of both sides'), while established.
    pub hold_time: Option<u64>,
    /// The keepalive interval in force, while established.
    pub keepalive_interval: Option<u64>,
    pub numbers: PeerNumbers,
    /// What gobgpd says of BFD with this peer; `None` when its API has no BFD (3.x, 4.0 to
    /// 4.4).
    pub bfd: Option<BfdReport>,
}

/// BFD with one peer, as gobgpd reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BfdReport {
    /// Whether gobgpd runs BFD with the peer: false when it was not asked to, and always
    /// on GoBGP 4.5 (which has the field but no BFD).
    pub enabled: bool,
    pub state: BfdState,
    pub packets_sent: u64,
    pub packets_received: u64,
}

/// A BFD session's state, numbered as `anycastd_gobgp_peer_bfd_state` says it (SPEC 16).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum BfdState {
    #[default]
    Unknown = 0,
    AdminDown = 1,
    Down = 2,
    Init = 3,
    Up = 4,
}

impl BfdState {
    pub fn name(self) -> &'static str {
        match self {
            BfdState::Unknown => "unknown",
            BfdState::AdminDown => "admin_down",
            BfdState::Down => "down",
            BfdState::Init => "init",
            BfdState::Up => "up",
        }
    }
}

/// Whether a gobgpd runs BFD, as far as anycastd found out on this connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BfdSupport {
    /// Not asked yet (no peer with BFD set up on this connection).
    #[default]
    Unknown,
    /// A peer set up with BFD reads back with BFD enabled (GoBGP 4.6 and later).
    Yes,
    /// It does not: GoBGP 3.x (no such field), 4.0 to 4.4 (drop it), 4.5 (ignores it).
    No,
}

impl PeerReport {
    pub fn is_established(&self) -> bool {
        self.numbers.session_state == SessionState::Established
    }
}

/// The figures behind the `anycastd_gobgp_*` series, with the seed's numbering.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerNumbers {
    pub session_state: SessionState,
    /// 0 up, 1 down, 2 pfx_ct.
    pub admin_state: u8,
    /// 0 internal (iBGP), 1 external (eBGP).
    pub peer_type: u8,
    pub flops: u32,
    pub out_q: u32,
    pub password_set: bool,
    pub remove_private: i32,
    pub send_community: u32,
    pub received: Messages,
    pub sent: Messages,
}

/// BGP message counters of one direction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Messages {
    pub notification: u64,
    pub update: u64,
    pub open: u64,
    pub keepalive: u64,
    pub refresh: u64,
    pub total: u64,
    pub withdraw_update: u64,
    pub withdraw_prefix: u64,
}

/// What gobgpd advertises for a prefix: the next hop and the path attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    pub next_hop: IpAddr,
    pub attrs: PathAttributes,
}

/// A path that was added to gobgpd's global RIB through the API (not learned from a peer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginatedPath {
    pub prefix: IpNet,
    /// Next hop and attributes; `None` when the path carries something anycastd never sets
    /// (another ORIGIN, an AS path that is not a prepend of the local ASN, other attributes).
    pub advert: Option<Advert>,
}

/// A change of gobgpd's best paths: the prefix, and whether it was withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BestPathChange {
    pub prefix: IpNet,
    pub withdrawn: bool,
}

/// Why a call to gobgpd failed. Each message names gobgpd's address.
#[derive(Debug, thiserror::Error)]
pub enum GobgpError {
    #[error("cannot connect to gobgpd at {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("gobgpd at {endpoint}: {call} failed: {}", status_text(*.code, .message))]
    Rpc {
        endpoint: String,
        call: &'static str,
        code: tonic::Code,
        message: String,
    },
    #[error(
        "gobgpd at {endpoint} is driven by another anycastd ({owner}): anycastd leaves its peers and paths alone until that one stops; stop one of the two, or point announcer.gobgp.address elsewhere"
    )]
    Owned { endpoint: String, owner: String },
    #[error(
        "{endpoint} answers neither GoBGP 4's API (api.GoBgpService/GetBgp) nor GoBGP 3's (apipb.GobgpApi/GetBgp): both are UNIMPLEMENTED there; anycastd drives GoBGP 3.10 to 3.37 and 4.0 to 4.8: check that announcer.gobgp.address is gobgpd's --api-hosts address"
    )]
    NoKnownApi { endpoint: String },
    /// The API probe got an answer that is not gRPC (an HTTP/1 server, say). Its transport
    /// errors vary from one attempt to the next ("h2 protocol error", "transport error",
    /// "operation was canceled"): one message for them all keeps the log at one line per
    /// change (measured: 8 WARN lines in 6 s before, each a new message).
    #[error(
        "{endpoint} answers, but not with gRPC over HTTP/2: it is not gobgpd's API; check that announcer.gobgp.address is gobgpd's --api-hosts address"
    )]
    NotGrpc { endpoint: String },
    #[error("gobgpd at {endpoint}: its {call} stream ended")]
    StreamEnded {
        endpoint: String,
        call: &'static str,
    },
    #[error("gobgpd at {endpoint}: {call} got no answer within {timeout:?}")]
    Timeout {
        endpoint: String,
        call: &'static str,
        timeout: Duration,
    },
}

fn status_text(code: tonic::Code, message: &str) -> String {
    if message.is_empty() {
        format!("{code:?}")
    } else {
        format!("{code:?}: {message}")
    }
}

/// A stream of gobgpd's peer events (session state changes).
pub trait PeerEvents: Send {
    /// The next peer event; `None` when the stream ended.
    fn next(&mut self) -> impl Future<Output = Result<Option<PeerReport>, GobgpError>> + Send;
}

/// A stream of changes of gobgpd's best paths.
pub trait BestPaths: Send {
    /// The next changes; `None` when the stream ended.
    fn next(
        &mut self,
    ) -> impl Future<Output = Result<Option<Vec<BestPathChange>>, GobgpError>> + Send;
}

/// The operations anycastd needs of gobgpd: its global settings, the peers, the paths of
/// the global RIB, one community set (the ownership mark), and the peer and best-path
/// event streams. Every call is bounded by the client's timeout but the streams.
pub trait Gobgp: Clone + Send + Sync + 'static {
    type PeerEvents: PeerEvents;
    type BestPaths: BestPaths;

    /// The API this client speaks.
    fn api(&self) -> Api;

    /// gobgpd's address, as given.
    fn endpoint(&self) -> &str;

    /// gobgpd's global settings; `None` when BGP has not been started in it.
    fn global(&self) -> impl Future<Output = Result<Option<GlobalSettings>, GobgpError>> + Send;

    fn start_bgp(&self, g: &GlobalSettings) -> impl Future<Output = Result<(), GobgpError>> + Send;

    /// Whether this gobgpd runs BFD, as found when a peer with BFD was last set up.
    fn bfd_support(&self) -> BfdSupport;

    /// Adds the peer, or updates it when any of its settings differ. Leaves other peers
    /// alone.
    fn ensure_peer(
        &self,
        p: &PeerSettings,
    ) -> impl Future<Output = Result<PeerChange, GobgpError>> + Send;

    /// Removes a peer (the config no longer has it).
    fn delete_peer(&self, address: IpAddr) -> impl Future<Output = Result<(), GobgpError>> + Send;

    /// Every peer of gobgpd, with its state and message counters.
    fn list_peers(&self) -> impl Future<Output = Result<Vec<PeerReport>, GobgpError>> + Send;

    /// The entries of the community set `name` (empty when there is no such set).
    fn community_set(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<String>, GobgpError>> + Send;

    /// Adds `entries` to the community set `name` (created if missing).
    fn add_to_community_set(
        &self,
        name: &str,
        entries: Vec<String>,
    ) -> impl Future<Output = Result<(), GobgpError>> + Send;

    /// Removes `entries` from the community set `name`.
    fn remove_from_community_set(
        &self,
        name: &str,
        entries: Vec<String>,
    ) -> impl Future<Output = Result<(), GobgpError>> + Send;

    /// Announces `prefix` from gobgpd's global RIB, or replaces its path (one UPDATE at the
    /// routers). `local_asn` is what `as_path_prepend` repeats.
    fn add_path(
        &self,
        prefix: IpNet,
        advert: &Advert,
        local_asn: u32,
    ) -> impl Future<Output = Result<(), GobgpError>> + Send;

    /// Withdraws the path of `prefix` added by [`Gobgp::add_path`], whatever its
    /// attributes. `next_hop` (any of the prefix's family) tells gobgpd which table.
    fn delete_path(
        &self,
        prefix: IpNet,
        next_hop: IpAddr,
    ) -> impl Future<Output = Result<(), GobgpError>> + Send;

    /// The paths of gobgpd's global RIB (IPv4 and IPv6 unicast) that were added through
    /// the API. `local_asn` reads the AS path as a prepend.
    fn originated_paths(
        &self,
        local_asn: u32,
    ) -> impl Future<Output = Result<std::sync::Arc<Vec<OriginatedPath>>, GobgpError>> + Send;

    /// The stream of peer events. gobgpd sends its headers only with the first event: run
    /// this in a task of its own; the stream has no timeout.
    fn watch_peer_events(
        &self,
    ) -> impl Future<Output = Result<Self::PeerEvents, GobgpError>> + Send;

    /// The stream of best-path changes of the global RIB, starting with the paths already
    /// there (the benchmark follows a router with it); like the peer events, in a task of
    /// its own.
    fn watch_best_paths(&self) -> impl Future<Output = Result<Self::BestPaths, GobgpError>> + Send;

    /// The error for a gobgpd that another anycastd drives.
    fn owned_by(&self, owner: String) -> GobgpError {
        GobgpError::Owned {
            endpoint: self.endpoint().to_string(),
            owner,
        }
    }

    /// The error for a stream of `call` that ended.
    fn stream_ended(&self, call: &'static str) -> GobgpError {
        GobgpError::StreamEnded {
            endpoint: self.endpoint().to_string(),
            call,
        }
    }
}
