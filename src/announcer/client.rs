//! A thin, typed client of gobgpd's gRPC API: just the calls anycastd makes, with anycastd's
//! own types in and out, and every call bounded by a timeout so that a hung gobgpd never
//! blocks the announcer.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ipnet::IpNet;
use prost::Message;
use prost_types::Any;
use tonic::transport::{Channel, Endpoint};

use super::api::{
    self, AddPathRequest, AddPeerRequest, DeletePathRequest, EbgpMultihop, Family, GetBgpRequest,
    IpAddressPrefix, ListPathRequest, ListPeerRequest, MpReachNlriAttribute, NextHopAttribute,
    OriginAttribute, Path, Peer, PeerConf, StartBgpRequest, TableType, Transport,
    UpdatePeerRequest, WatchEventRequest, gobgp_api_client::GobgpApiClient,
};

/// Retry interval of outgoing BGP connections. GoBGP's default (120 s, and then a random
/// extra of up to as much) would keep a session down for minutes after the router restarts.
const CONNECT_RETRY_SECS: u64 = 5;

/// gobgpd's global settings, as far as anycastd sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalSettings {
    pub router_id: Ipv4Addr,
    pub asn: u32,
    pub listen_port: i32,
}

impl std::fmt::Display for GlobalSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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
}

impl std::fmt::Debug for PeerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSettings")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("asn", &self.asn)
            .field("port", &self.port)
            .field("local_address", &self.local_address)
            .field("password", &self.password.as_ref().map(|_| "<secret>"))
            .field("multihop_ttl", &self.multihop_ttl)
            .field("passive", &self.passive)
            .finish()
    }
}

/// What `ensure_peer` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerChange {
    Added,
    Updated,
    Unchanged,
}

/// A path that was added to gobgpd's global RIB through the API (not learned from a peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OriginatedPath {
    pub prefix: IpNet,
    pub next_hop: IpAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to gobgpd at {endpoint}: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("gobgpd at {endpoint}: {call} failed: {}", status_text(*.code, .message))]
    Rpc {
        endpoint: String,
        call: &'static str,
        code: tonic::Code,
        message: String,
    },
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

#[derive(Clone)]
pub struct GobgpClient {
    endpoint: String,
    timeout: Duration,
    inner: GobgpApiClient<Channel>,
}

impl GobgpClient {
    /// Connects once to `endpoint` (`host:port`); the caller retries.
    pub async fn connect(endpoint: &str, timeout: Duration) -> Result<GobgpClient, ClientError> {
        let err = |reason: String| ClientError::Connect {
            endpoint: endpoint.to_string(),
            reason,
        };
        let ep = Endpoint::from_shared(format!("http://{endpoint}"))
            .map_err(|e| err(e.to_string()))?
            .connect_timeout(timeout)
            .tcp_nodelay(true);
        let channel = ep
            .connect()
            .await
            .map_err(|e| err(crate::error_chain(&e)))?;
        Ok(GobgpClient {
            endpoint: endpoint.to_string(),
            timeout,
            inner: GobgpApiClient::new(channel),
        })
    }

    /// Runs one call under the timeout, mapping errors.
    async fn call<T>(
        &self,
        call: &'static str,
        fut: impl Future<Output = Result<T, tonic::Status>>,
    ) -> Result<T, ClientError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(s)) => Err(self.rpc_error(call, &s)),
            Err(_) => Err(ClientError::Timeout {
                endpoint: self.endpoint.clone(),
                call,
                timeout: self.timeout,
            }),
        }
    }

    fn rpc_error(&self, call: &'static str, s: &tonic::Status) -> ClientError {
        ClientError::Rpc {
            endpoint: self.endpoint.clone(),
            call,
            code: s.code(),
            message: s.message().to_string(),
        }
    }

    /// The error for a stream of `call` that ended.
    pub fn stream_ended(&self, call: &'static str) -> ClientError {
        ClientError::StreamEnded {
            endpoint: self.endpoint.clone(),
            call,
        }
    }

    /// gobgpd's global settings; `None` when BGP has not been started in it.
    pub async fn global(&self) -> Result<Option<GlobalSettings>, ClientError> {
        let mut c = self.inner.clone();
        let r = match self.call("GetBgp", c.get_bgp(GetBgpRequest {})).await {
            Ok(r) => r.into_inner(),
            // gobgpd without a global config may answer with an error rather than an empty one.
            Err(ClientError::Rpc { message, .. }) if message.contains("not started") => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        Ok(r.global.and_then(|g| {
            let router_id = g.router_id.parse().ok()?;
            (g.asn != 0).then_some(GlobalSettings {
                router_id,
                asn: g.asn,
                listen_port: g.listen_port,
            })
        }))
    }

    pub async fn start_bgp(&self, g: &GlobalSettings) -> Result<(), ClientError> {
        let req = StartBgpRequest {
            global: Some(api::Global {
                asn: g.asn,
                router_id: g.router_id.to_string(),
                listen_port: g.listen_port,
                ..Default::default()
            }),
        };
        let mut c = self.inner.clone();
        self.call("StartBgp", c.start_bgp(req)).await.map(drop)
    }

    /// Adds the peer, or updates it when any of its settings differ. Leaves other peers alone.
    pub async fn ensure_peer(&self, p: &PeerSettings) -> Result<PeerChange, ClientError> {
        let want = peer_message(p);
        let existing = self.list_peers_at(&p.address.to_string()).await?;
        let mut c = self.inner.clone();
        match existing.into_iter().find(|e| same_neighbor(e, p.address)) {
            None => {
                self.call("AddPeer", c.add_peer(AddPeerRequest { peer: Some(want) }))
                    .await?;
                Ok(PeerChange::Added)
            }
            Some(have) if peer_matches(&have, &want) => Ok(PeerChange::Unchanged),
            Some(_) => {
                let req = UpdatePeerRequest {
                    peer: Some(want),
                    do_soft_reset_in: false,
                };
                self.call("UpdatePeer", c.update_peer(req)).await?;
                Ok(PeerChange::Updated)
            }
        }
    }

    /// Every peer of gobgpd, with its state and message counters.
    pub async fn list_peers(&self) -> Result<Vec<Peer>, ClientError> {
        self.list_peers_at("").await
    }

    async fn list_peers_at(&self, address: &str) -> Result<Vec<Peer>, ClientError> {
        let mut c = self.inner.clone();
        let req = ListPeerRequest {
            address: address.to_string(),
            enable_advertised: false,
        };
        self.call("ListPeer", async move {
            let mut stream = c.list_peer(req).await?.into_inner();
            let mut peers = Vec::new();
            while let Some(r) = stream.message().await? {
                peers.extend(r.peer);
            }
            Ok(peers)
        })
        .await
    }

    /// Announces `prefix` with `next_hop` from gobgpd's global RIB.
    pub async fn add_path(&self, prefix: IpNet, next_hop: IpAddr) -> Result<(), ClientError> {
        let req = AddPathRequest {
            table_type: TableType::Global as i32,
            vrf_id: String::new(),
            path: Some(path_message(prefix, next_hop)),
        };
        let mut c = self.inner.clone();
        self.call("AddPath", c.add_path(req)).await.map(drop)
    }

    /// Withdraws a path added by [`add_path`](Self::add_path).
    pub async fn delete_path(&self, prefix: IpNet, next_hop: IpAddr) -> Result<(), ClientError> {
        let req = DeletePathRequest {
            table_type: TableType::Global as i32,
            vrf_id: String::new(),
            family: Some(family_of(&prefix)),
            path: Some(path_message(prefix, next_hop)),
            uuid: Vec::new(),
        };
        let mut c = self.inner.clone();
        self.call("DeletePath", c.delete_path(req)).await.map(drop)
    }

    /// The paths of gobgpd's global RIB (IPv4 and IPv6 unicast) that were added through the
    /// API, as opposed to learned from a peer.
    pub async fn originated_paths(&self) -> Result<Vec<OriginatedPath>, ClientError> {
        let mut out = Vec::new();
        for family in [family(api::family::Afi::Ip), family(api::family::Afi::Ip6)] {
            let mut c = self.inner.clone();
            let req = ListPathRequest {
                table_type: TableType::Global as i32,
                name: String::new(),
                family: Some(family),
                sort_type: 0,
            };
            let dests = self
                .call("ListPath", async move {
                    let mut stream = c.list_path(req).await?.into_inner();
                    let mut dests = Vec::new();
                    while let Some(r) = stream.message().await? {
                        dests.extend(r.destination);
                    }
                    Ok(dests)
                })
                .await?;
            for d in dests {
                for p in d.paths.iter().filter(|p| is_local(p)) {
                    if let Some(o) = decode_path(p) {
                        out.push(o);
                    }
                }
            }
        }
        Ok(out)
    }

    /// A stream of peer events (state changes). gobgpd sends the stream's headers only with
    /// the first event, so run this in a task of its own; the stream has no timeout.
    pub async fn watch_peer_events(
        &self,
    ) -> Result<tonic::Streaming<api::WatchEventResponse>, ClientError> {
        let req = WatchEventRequest {
            peer: Some(api::watch_event_request::Peer {}),
            table: None,
        };
        self.watch(req).await
    }

    /// A stream of best-path changes of the global RIB, starting with the paths already
    /// there. Used by the benchmark to see routes arrive at and leave a router; like
    /// [`GobgpClient::watch_peer_events`], run it in a task of its own.
    pub async fn watch_best_paths(
        &self,
    ) -> Result<tonic::Streaming<api::WatchEventResponse>, ClientError> {
        use api::watch_event_request::{Table, table::Filter, table::filter::Type};
        let req = WatchEventRequest {
            peer: None,
            table: Some(Table {
                filters: vec![Filter {
                    r#type: Type::Best as i32,
                    init: true,
                }],
            }),
        };
        self.watch(req).await
    }

    /// Opens a WatchEvent stream. No timeout: the stream lives as long as the connection.
    async fn watch(
        &self,
        req: WatchEventRequest,
    ) -> Result<tonic::Streaming<api::WatchEventResponse>, ClientError> {
        let mut c = self.inner.clone();
        c.watch_event(req)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| self.rpc_error("WatchEvent", &s))
    }
}

/// The prefix of a path (IPv4 or IPv6 unicast), and whether the path is a withdraw.
pub fn path_prefix(p: &Path) -> Option<(IpNet, bool)> {
    let n: IpAddressPrefix = unpack(p.nlri.as_ref()?, "IPAddressPrefix")?;
    let addr: IpAddr = n.prefix.parse().ok()?;
    let prefix = IpNet::new(addr, u8::try_from(n.prefix_len).ok()?).ok()?;
    Some((prefix, p.is_withdraw))
}

fn status_text(code: tonic::Code, message: &str) -> String {
    if message.is_empty() {
        format!("{code:?}")
    } else {
        format!("{code:?}: {message}")
    }
}

fn family(afi: api::family::Afi) -> Family {
    Family {
        afi: afi as i32,
        safi: api::family::Safi::Unicast as i32,
    }
}

fn family_of(prefix: &IpNet) -> Family {
    match prefix {
        IpNet::V4(_) => family(api::family::Afi::Ip),
        IpNet::V6(_) => family(api::family::Afi::Ip6),
    }
}

/// Packs a message as a `google.protobuf.Any` of GoBGP's `apipb` package.
fn any<M: Message>(name: &str, m: &M) -> Any {
    Any {
        type_url: format!("type.googleapis.com/apipb.{name}"),
        value: m.encode_to_vec(),
    }
}

fn unpack<M: Message + Default>(a: &Any, name: &str) -> Option<M> {
    a.type_url
        .rsplit_once('/')
        .is_some_and(|(_, n)| n == format!("apipb.{name}"))
        .then(|| M::decode(a.value.as_slice()).ok())
        .flatten()
}

fn nlri(prefix: &IpNet) -> Any {
    any(
        "IPAddressPrefix",
        &IpAddressPrefix {
            prefix_len: u32::from(prefix.prefix_len()),
            prefix: prefix.network().to_string(),
        },
    )
}

/// A path as anycastd announces it: ORIGIN IGP, and NEXT_HOP (IPv4) or MP_REACH_NLRI (IPv6).
fn path_message(prefix: IpNet, next_hop: IpAddr) -> Path {
    let fam = family_of(&prefix);
    let origin = any("OriginAttribute", &OriginAttribute { origin: 0 });
    let hop = match prefix {
        IpNet::V4(_) => any(
            "NextHopAttribute",
            &NextHopAttribute {
                next_hop: next_hop.to_string(),
            },
        ),
        IpNet::V6(_) => any(
            "MpReachNLRIAttribute",
            &MpReachNlriAttribute {
                family: Some(fam),
                next_hops: vec![next_hop.to_string()],
                nlris: vec![nlri(&prefix)],
            },
        ),
    };
    Path {
        nlri: Some(nlri(&prefix)),
        pattrs: vec![origin, hop],
        family: Some(fam),
        ..Default::default()
    }
}

/// Locally originated: added through the API (it has a uuid) or with no neighbor.
fn is_local(p: &Path) -> bool {
    !p.is_from_external
        && (!p.uuid.is_empty() || p.neighbor_ip.is_empty() || p.neighbor_ip == "<nil>")
}

fn decode_path(p: &Path) -> Option<OriginatedPath> {
    let (prefix, _) = path_prefix(p)?;
    let next_hop = p.pattrs.iter().find_map(|a| {
        unpack::<NextHopAttribute>(a, "NextHopAttribute")
            .and_then(|n| n.next_hop.parse().ok())
            .or_else(|| {
                unpack::<MpReachNlriAttribute>(a, "MpReachNLRIAttribute")
                    .and_then(|m| m.next_hops.first().and_then(|h| h.parse().ok()))
            })
    })?;
    Some(OriginatedPath { prefix, next_hop })
}

fn peer_message(p: &PeerSettings) -> Peer {
    let afi_safis = [api::family::Afi::Ip, api::family::Afi::Ip6]
        .into_iter()
        .map(|afi| api::AfiSafi {
            config: Some(api::AfiSafiConfig {
                family: Some(family(afi)),
                enabled: true,
            }),
            state: None,
        })
        .collect();
    Peer {
        conf: Some(PeerConf {
            neighbor_address: p.address.to_string(),
            peer_asn: p.asn,
            description: p.name.clone(),
            auth_password: p.password.clone().unwrap_or_default(),
            ..Default::default()
        }),
        ebgp_multihop: (p.multihop_ttl > 0).then_some(EbgpMultihop {
            enabled: true,
            multihop_ttl: u32::from(p.multihop_ttl),
        }),
        state: None,
        timers: Some(api::Timers {
            config: Some(api::TimersConfig {
                connect_retry: CONNECT_RETRY_SECS,
                ..Default::default()
            }),
            state: None,
        }),
        transport: Some(Transport {
            local_address: p.local_address.to_string(),
            remote_port: u32::from(p.port.unwrap_or(179)),
            passive_mode: p.passive,
            ..Default::default()
        }),
        afi_safis,
    }
}

fn same_neighbor(have: &Peer, address: IpAddr) -> bool {
    let conf = have.conf.as_ref().map(|c| c.neighbor_address.as_str());
    let state = have.state.as_ref().map(|s| s.neighbor_address.as_str());
    [conf, state]
        .into_iter()
        .flatten()
        .any(|a| a.parse::<IpAddr>().is_ok_and(|a| a == address))
}

/// Whether gobgpd's view of a peer has the settings anycastd wants.
fn peer_matches(have: &Peer, want: &Peer) -> bool {
    let (Some(hc), Some(wc)) = (&have.conf, &want.conf) else {
        return false;
    };
    let ht = have.transport.clone().unwrap_or_default();
    let wt = want.transport.clone().unwrap_or_default();
    let hm = have.ebgp_multihop.unwrap_or_default();
    let wm = want.ebgp_multihop.unwrap_or_default();
    let ttl = |m: &EbgpMultihop| if m.enabled { m.multihop_ttl } else { 0 };
    hc.peer_asn == wc.peer_asn
        && hc.description == wc.description
        && hc.auth_password == wc.auth_password
        && same_addr(&ht.local_address, &wt.local_address)
        && (ht.remote_port == wt.remote_port || (ht.remote_port == 0 && wt.remote_port == 179))
        && ht.passive_mode == wt.passive_mode
        && ttl(&hm) == ttl(&wm)
}

fn same_addr(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_path_has_origin_and_next_hop() {
        let p = path_message(
            "192.0.2.1/32".parse().expect("prefix"),
            "198.51.100.1".parse().expect("nh"),
        );
        assert_eq!(p.pattrs.len(), 2);
        assert!(p.pattrs[1].type_url.ends_with("apipb.NextHopAttribute"));
        assert_eq!(
            decode_path(&p),
            Some(OriginatedPath {
                prefix: "192.0.2.1/32".parse().expect("prefix"),
                next_hop: "198.51.100.1".parse().expect("nh"),
            })
        );
    }

    #[test]
    fn ipv6_path_carries_mp_reach_nlri() {
        let p = path_message(
            "2001:db8:100::/48".parse().expect("prefix"),
            "2001:db8::1".parse().expect("nh"),
        );
        assert!(p.pattrs[1].type_url.ends_with("apipb.MpReachNLRIAttribute"));
        let m: MpReachNlriAttribute =
            unpack(&p.pattrs[1], "MpReachNLRIAttribute").expect("decodes");
        assert_eq!(m.next_hops, ["2001:db8::1"]);
        assert_eq!(m.nlris.len(), 1);
        assert_eq!(
            decode_path(&p).map(|o| o.next_hop.to_string()),
            Some("2001:db8::1".into())
        );
    }

    #[test]
    fn unpack_checks_the_type() {
        let a = any("OriginAttribute", &OriginAttribute { origin: 0 });
        assert!(unpack::<NextHopAttribute>(&a, "NextHopAttribute").is_none());
    }

    #[test]
    fn password_is_not_in_debug_output() {
        let p = PeerSettings {
            name: "r".into(),
            address: "192.0.2.1".parse().expect("addr"),
            asn: 1,
            port: None,
            local_address: "192.0.2.2".parse().expect("addr"),
            password: Some("hunter2".into()),
            multihop_ttl: 0,
            passive: false,
        };
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn peer_comparison_sees_each_setting() {
        let base = PeerSettings {
            name: "r".into(),
            address: "192.0.2.1".parse().expect("addr"),
            asn: 65000,
            port: Some(1179),
            local_address: "192.0.2.2".parse().expect("addr"),
            password: None,
            multihop_ttl: 0,
            passive: false,
        };
        let want = peer_message(&base);
        assert!(peer_matches(&want, &want));
        let variants = [
            PeerSettings {
                asn: 65001,
                ..base.clone()
            },
            PeerSettings {
                port: Some(179),
                ..base.clone()
            },
            PeerSettings {
                password: Some("x".into()),
                ..base.clone()
            },
            PeerSettings {
                multihop_ttl: 3,
                ..base.clone()
            },
            PeerSettings {
                passive: true,
                ..base.clone()
            },
            PeerSettings {
                local_address: "192.0.2.3".parse().expect("addr"),
                ..base.clone()
            },
        ];
        for v in variants {
            assert!(!peer_matches(&peer_message(&v), &want), "{v:?}");
        }
    }
}
