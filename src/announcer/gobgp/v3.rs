//! GoBGP 3.x (3.10 to 3.37): its gRPC API (package `apipb`, service `GobgpApi`, path
//! attributes as `google.protobuf.Any`), generated from `proto/v3/` by `build.rs`. The
//! generated types stay in this file: [`Client`] speaks [`super::ops`]'s types and converts
//! at this boundary.

use std::future::Future;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use prost::Message;
use prost_types::Any;
use tonic::transport::Channel;

use self::api::{
    AddDefinedSetRequest, AddPathRequest, AddPeerRequest, AsPathAttribute, AsSegment,
    CommunitiesAttribute, DefinedType, DeleteDefinedSetRequest, DeletePathRequest,
    DeletePeerRequest, EbgpMultihop, Family, GetBgpRequest, IpAddressPrefix,
    LargeCommunitiesAttribute, ListDefinedSetRequest, ListPathRequest, ListPeerRequest,
    LocalPrefAttribute, MpReachNlriAttribute, MultiExitDiscAttribute, NextHopAttribute,
    OriginAttribute, Path, Peer, PeerConf, StartBgpRequest, TableType, Transport,
    UpdatePeerRequest, WatchEventRequest, gobgp_api_client::GobgpApiClient,
};
use super::codec::{self, Attr, SeenPeer};
use super::ops::{
    Advert, Api, BestPathChange, BestPaths, BfdSupport, GlobalSettings, Gobgp, GobgpError,
    Messages, OriginatedPath, PeerChange, PeerEvents, PeerNumbers, PeerReport, PeerSettings,
    SessionState,
};
use super::path_cache::RawPaths;
use super::rpc::{Calls, stream_error};
use crate::config::attributes::{LargeCommunity, PathAttributes};

/// GoBGP 3's API, generated from `proto/v3/` by `build.rs`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
mod api {
    tonic::include_proto!("apipb");
}

/// A client of a gobgpd 3.x.
#[derive(Clone)]
pub struct Client {
    calls: Calls,
    inner: GobgpApiClient<Channel>,
    /// `ListPath` read raw, and the paths of the last listing (issue 20).
    paths: std::sync::Arc<RawPaths<OriginatedPath>>,
}

impl Client {
    /// A client on an open channel to gobgpd.
    pub fn new(channel: Channel, calls: Calls) -> Client {
        Client {
            calls,
            paths: std::sync::Arc::new(RawPaths::new(channel.clone())),
            inner: GobgpApiClient::new(channel),
        }
    }

    /// Whether this gobgpd answers GoBGP 3's API: `GetBgp` answers (an error saying BGP is
    /// not started counts), or fails with `Err`. `Ok(false)`: UNIMPLEMENTED, another API.
    pub async fn speaks(&self) -> Result<bool, GobgpError> {
        match self.global().await {
            Ok(_) => Ok(true),
            Err(GobgpError::Rpc {
                code: tonic::Code::Unimplemented,
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn call<T>(
        &self,
        call: &'static str,
        fut: impl Future<Output = Result<T, tonic::Status>>,
    ) -> Result<T, GobgpError> {
        self.calls.call(call, fut).await
    }

    fn rpc_error(&self, call: &'static str, s: &tonic::Status) -> GobgpError {
        self.calls.error(call, s)
    }

    async fn list_peers_at(&self, address: &str) -> Result<Vec<Peer>, GobgpError> {
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

    /// Opens a WatchEvent stream. No timeout: the stream lives as long as the connection.
    async fn watch(
        &self,
        req: WatchEventRequest,
    ) -> Result<tonic::Streaming<api::WatchEventResponse>, GobgpError> {
        let mut c = self.inner.clone();
        c.watch_event(req)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| self.rpc_error("WatchEvent", &s))
    }
}

impl Gobgp for Client {
    type PeerEvents = Events;
    type BestPaths = Table;

    fn api(&self) -> Api {
        Api::V3
    }

    fn bfd_support(&self) -> BfdSupport {
        // GoBGP 3 has no BFD.
        BfdSupport::No
    }

    fn endpoint(&self) -> &str {
        &self.calls.endpoint
    }

    /// gobgpd's global settings; `None` when BGP has not been started in it.
    async fn global(&self) -> Result<Option<GlobalSettings>, GobgpError> {
        let mut c = self.inner.clone();
        let r = match self.call("GetBgp", c.get_bgp(GetBgpRequest {})).await {
            Ok(r) => r.into_inner(),
            // gobgpd without a global config may answer with an error rather than an empty one.
            Err(GobgpError::Rpc { message, .. }) if message.contains("not started") => {
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

    async fn start_bgp(&self, g: &GlobalSettings) -> Result<(), GobgpError> {
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
    async fn ensure_peer(&self, p: &PeerSettings) -> Result<PeerChange, GobgpError> {
        let want = peer_message(p);
        let existing = self.list_peers_at(&p.address.to_string()).await?;
        let mut c = self.inner.clone();
        match existing.into_iter().find(|e| same_neighbor(e, p.address)) {
            None => {
                self.call("AddPeer", c.add_peer(AddPeerRequest { peer: Some(want) }))
                    .await?;
                Ok(PeerChange::Added)
            }
            Some(have) if codec::peer_matches(&seen(&have), p) => Ok(PeerChange::Unchanged),
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

    /// Removes a peer (the config no longer has it).
    async fn delete_peer(&self, address: IpAddr) -> Result<(), GobgpError> {
        let req = DeletePeerRequest {
            address: address.to_string(),
            interface: String::new(),
        };
        let mut c = self.inner.clone();
        self.call("DeletePeer", c.delete_peer(req)).await.map(drop)
    }

    /// The entries of the community set `name` (empty when there is no such set).
    async fn community_set(&self, name: &str) -> Result<Vec<String>, GobgpError> {
        let mut c = self.inner.clone();
        let req = ListDefinedSetRequest {
            defined_type: DefinedType::Community as i32,
            name: name.to_string(),
        };
        let listed = self
            .call("ListDefinedSet", async move {
                let mut stream = c.list_defined_set(req).await?.into_inner();
                let mut list = Vec::new();
                while let Some(r) = stream.message().await? {
                    list.extend(r.defined_set.map(|d| d.list).unwrap_or_default());
                }
                Ok(list)
            })
            .await;
        match listed {
            // gobgpd answers an unknown set with an error rather than an empty list.
            Err(GobgpError::Rpc { message, .. }) if message.contains("not found") => Ok(Vec::new()),
            other => other,
        }
    }

    /// Adds `entries` to the community set `name` (created if missing).
    async fn add_to_community_set(
        &self,
        name: &str,
        entries: Vec<String>,
    ) -> Result<(), GobgpError> {
        let req = AddDefinedSetRequest {
            defined_set: Some(community_set(name, entries)),
        };
        let mut c = self.inner.clone();
        self.call("AddDefinedSet", c.add_defined_set(req))
            .await
            .map(drop)
    }

    /// Removes `entries` from the community set `name`.
    async fn remove_from_community_set(
        &self,
        name: &str,
        entries: Vec<String>,
    ) -> Result<(), GobgpError> {
        let req = DeleteDefinedSetRequest {
            defined_set: Some(community_set(name, entries)),
            all: false,
        };
        let mut c = self.inner.clone();
        self.call("DeleteDefinedSet", c.delete_defined_set(req))
            .await
            .map(drop)
    }

    /// Every peer of gobgpd, with its state and message counters.
    async fn list_peers(&self) -> Result<Vec<PeerReport>, GobgpError> {
        Ok(self
            .list_peers_at("")
            .await?
            .iter()
            .map(peer_report)
            .collect())
    }

    /// Announces `prefix` from gobgpd's global RIB, or replaces its path (one UPDATE at the
    /// routers). `local_asn` is what `as_path_prepend` repeats.
    async fn add_path(
        &self,
        prefix: IpNet,
        advert: &Advert,
        local_asn: u32,
    ) -> Result<(), GobgpError> {
        let req = AddPathRequest {
            table_type: TableType::Global as i32,
            vrf_id: String::new(),
            path: Some(path_message(prefix, advert, local_asn)),
        };
        let mut c = self.inner.clone();
        self.call("AddPath", c.add_path(req)).await.map(drop)
    }

    /// Withdraws the path of `prefix` added by [`add_path`](Self::add_path), whatever its
    /// attributes: gobgpd matches a withdraw by prefix and origin. `next_hop` (any of the
    /// prefix's family) is what tells gobgpd which table the withdraw is for.
    async fn delete_path(&self, prefix: IpNet, next_hop: IpAddr) -> Result<(), GobgpError> {
        let bare = Advert {
            next_hop,
            attrs: PathAttributes::default(),
        };
        let req = DeletePathRequest {
            table_type: TableType::Global as i32,
            vrf_id: String::new(),
            family: Some(family_of(&prefix)),
            path: Some(path_message(prefix, &bare, 0)),
            uuid: Vec::new(),
        };
        let mut c = self.inner.clone();
        self.call("DeletePath", c.delete_path(req)).await.map(drop)
    }

    /// The paths of gobgpd's global RIB (IPv4 and IPv6 unicast) that were added through the
    /// API, as opposed to learned from a peer. `local_asn` reads the AS path as a prepend.
    async fn originated_paths(
        &self,
        local_asn: u32,
    ) -> Result<std::sync::Arc<Vec<OriginatedPath>>, GobgpError> {
        // Read raw, and decoded only where a path's bytes changed since the last listing
        // (see `path_cache`: 54 ms of each reconcile with 20,000 prefixes).
        let mut dests = Vec::new();
        for family in [family(api::family::Afi::Ip), family(api::family::Afi::Ip6)] {
            let req = ListPathRequest {
                table_type: TableType::Global as i32,
                name: String::new(),
                family: Some(family),
                sort_type: 0,
            };
            let list = self.paths.list("/apipb.GobgpApi/ListPath", req);
            dests.extend(self.call("ListPath", list).await?);
        }
        self.paths
            .refresh(local_asn, dests, |raw| {
                let p = Path::decode(raw)?;
                if !is_local(&p) {
                    return Ok(None);
                }
                Ok(path_prefix(&p).map(|(prefix, _)| OriginatedPath {
                    prefix,
                    advert: decode_advert(&p, local_asn),
                }))
            })
            .map_err(|e: prost::DecodeError| {
                self.rpc_error("ListPath", &tonic::Status::internal(e.to_string()))
            })
    }

    /// A stream of peer events (state changes). gobgpd sends the stream's headers only with
    /// the first event, so run this in a task of its own; the stream has no timeout.
    async fn watch_peer_events(&self) -> Result<Events, GobgpError> {
        let req = WatchEventRequest {
            peer: Some(api::watch_event_request::Peer {}),
            table: None,
        };
        self.watch(req).await.map(Events)
    }

    async fn watch_best_paths(&self) -> Result<Table, GobgpError> {
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
        self.watch(req).await.map(Table)
    }
}

/// gobgpd's stream of peer events (session state changes).
pub struct Events(tonic::Streaming<api::WatchEventResponse>);

impl PeerEvents for Events {
    async fn next(&mut self) -> Result<Option<PeerReport>, GobgpError> {
        loop {
            let Some(event) = self.0.message().await.map_err(|s| stream_error(&s))? else {
                return Ok(None);
            };
            if let Some(api::watch_event_response::Event::Peer(pe)) = event.event
                && let Some(peer) = pe.peer
            {
                return Ok(Some(peer_report(&peer)));
            }
        }
    }
}

/// gobgpd's stream of best-path changes.
pub struct Table(tonic::Streaming<api::WatchEventResponse>);

impl BestPaths for Table {
    async fn next(&mut self) -> Result<Option<Vec<BestPathChange>>, GobgpError> {
        loop {
            let Some(event) = self.0.message().await.map_err(|s| stream_error(&s))? else {
                return Ok(None);
            };
            if let Some(api::watch_event_response::Event::Table(t)) = event.event {
                return Ok(Some(
                    t.paths
                        .iter()
                        .filter_map(path_prefix)
                        .map(|(prefix, withdrawn)| BestPathChange { prefix, withdrawn })
                        .collect(),
                ));
            }
        }
    }
}

/// Reads a peer of `ListPeer` or of a peer event.
fn peer_report(p: &Peer) -> PeerReport {
    let state = p.state.clone().unwrap_or_default();
    let conf = p.conf.clone().unwrap_or_default();
    let address = if state.neighbor_address.is_empty() {
        conf.neighbor_address.clone()
    } else {
        state.neighbor_address.clone()
    };
    let session_state = session_state(state.session_state);
    let established = session_state == SessionState::Established;
    let timers = p.timers.as_ref().and_then(|t| t.state.as_ref());
    let established_at = timers
        .and_then(|s| s.uptime.as_ref())
        .filter(|_| established)
        .and_then(|t| {
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t.seconds).ok()?))
        });
    let messages = state.messages.unwrap_or_default();
    PeerReport {
        address,
        asn: if state.peer_asn != 0 {
            state.peer_asn
        } else {
            conf.peer_asn
        },
        established_at,
        hold_time: timers
            .map(|t| t.negotiated_hold_time)
            .filter(|_| established),
        keepalive_interval: timers.map(|t| t.keepalive_interval).filter(|_| established),
        numbers: PeerNumbers {
            session_state,
            admin_state: u8::try_from(state.admin_state).unwrap_or(u8::MAX),
            peer_type: u8::try_from(state.r#type).unwrap_or(u8::MAX),
            flops: state.flops,
            out_q: state.out_q,
            password_set: !state.auth_password.is_empty() || !conf.auth_password.is_empty(),
            remove_private: state.remove_private,
            send_community: state.send_community,
            received: messages_of(messages.received.unwrap_or_default()),
            sent: messages_of(messages.sent.unwrap_or_default()),
        },
        // GoBGP 3 has no BFD.
        bfd: None,
    }
}

/// GoBGP 3's session state number in anycastd's terms.
fn session_state(n: i32) -> SessionState {
    use api::peer_state::SessionState as S;
    match S::try_from(n) {
        Ok(S::Idle) => SessionState::Idle,
        Ok(S::Connect) => SessionState::Connect,
        Ok(S::Active) => SessionState::Active,
        Ok(S::Opensent) => SessionState::OpenSent,
        Ok(S::Openconfirm) => SessionState::OpenConfirm,
        Ok(S::Established) => SessionState::Established,
        _ => SessionState::Unknown,
    }
}

fn messages_of(m: api::Message) -> Messages {
    Messages {
        notification: m.notification,
        update: m.update,
        open: m.open,
        keepalive: m.keepalive,
        refresh: m.refresh,
        total: m.total,
        withdraw_update: m.withdraw_update,
        withdraw_prefix: m.withdraw_prefix,
    }
}

/// The prefix of a path (IPv4 or IPv6 unicast), and whether the path is a withdraw.
fn path_prefix(p: &Path) -> Option<(IpNet, bool)> {
    Some((prefix_of(p.nlri.as_ref()?)?, p.is_withdraw))
}

/// The prefix of an `IPAddressPrefix` NLRI.
fn prefix_of(nlri: &Any) -> Option<IpNet> {
    let n: IpAddressPrefix = unpack(nlri, "IPAddressPrefix")?;
    let addr: IpAddr = n.prefix.parse().ok()?;
    IpNet::new(addr, u8::try_from(n.prefix_len).ok()?).ok()
}

fn community_set(name: &str, list: Vec<String>) -> api::DefinedSet {
    api::DefinedSet {
        defined_type: DefinedType::Community as i32,
        name: name.to_string(),
        list,
        prefixes: Vec::new(),
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

/// A path as anycastd announces it ([`codec::attrs_of`]), in GoBGP 3's terms.
fn path_message(prefix: IpNet, advert: &Advert, local_asn: u32) -> Path {
    let fam = family_of(&prefix);
    let pattrs = codec::attrs_of(prefix, advert, local_asn)
        .iter()
        .filter_map(|a| attribute(a, &fam))
        .collect();
    Path {
        nlri: Some(nlri(&prefix)),
        pattrs,
        family: Some(fam),
        ..Default::default()
    }
}

/// One attribute as GoBGP 3 packs it (`Foreign` is never sent).
fn attribute(a: &Attr, fam: &Family) -> Option<Any> {
    Some(match a {
        Attr::Origin(origin) => any("OriginAttribute", &OriginAttribute { origin: *origin }),
        Attr::NextHop(next_hop) => any(
            "NextHopAttribute",
            &NextHopAttribute {
                next_hop: next_hop.clone(),
            },
        ),
        Attr::MpReach { next_hop, prefix } => any(
            "MpReachNLRIAttribute",
            &MpReachNlriAttribute {
                family: Some(*fam),
                next_hops: vec![next_hop.clone()],
                nlris: vec![nlri(prefix)],
            },
        ),
        Attr::AsPath(numbers) => any(
            "AsPathAttribute",
            &AsPathAttribute {
                segments: vec![AsSegment {
                    r#type: api::as_segment::Type::AsSequence as i32,
                    numbers: numbers.clone(),
                }],
            },
        ),
        Attr::Med(med) => any(
            "MultiExitDiscAttribute",
            &MultiExitDiscAttribute { med: *med },
        ),
        Attr::LocalPref(local_pref) => any(
            "LocalPrefAttribute",
            &LocalPrefAttribute {
                local_pref: *local_pref,
            },
        ),
        Attr::Communities(communities) => any(
            "CommunitiesAttribute",
            &CommunitiesAttribute {
                communities: communities.clone(),
            },
        ),
        Attr::LargeCommunities(large) => any(
            "LargeCommunitiesAttribute",
            &LargeCommunitiesAttribute {
                communities: large
                    .iter()
                    .map(|c| api::LargeCommunity {
                        global_admin: c.global,
                        local_data1: c.local1,
                        local_data2: c.local2,
                    })
                    .collect(),
            },
        ),
        Attr::Foreign => return None,
    })
}

/// Locally originated: added through the API (it has a uuid) or with no neighbor.
fn is_local(p: &Path) -> bool {
    !p.is_from_external
        && (!p.uuid.is_empty() || p.neighbor_ip.is_empty() || p.neighbor_ip == "<nil>")
}

/// The next hop and attributes of a path, when they are ones anycastd could have set.
fn decode_advert(p: &Path, local_asn: u32) -> Option<Advert> {
    codec::advert_of(p.pattrs.iter().map(read_attribute), local_asn)
}

/// One attribute of GoBGP 3 in neutral terms; anything else (or one that does not
/// decode) is [`Attr::Foreign`].
fn read_attribute(a: &Any) -> Attr {
    let name = a.type_url.rsplit_once("apipb.").map_or("", |(_, n)| n);
    let read = || -> Option<Attr> {
        Some(match name {
            "OriginAttribute" => Attr::Origin(unpack::<OriginAttribute>(a, name)?.origin),
            "NextHopAttribute" => Attr::NextHop(unpack::<NextHopAttribute>(a, name)?.next_hop),
            "MpReachNLRIAttribute" => {
                let m: MpReachNlriAttribute = unpack(a, name)?;
                let prefix = m.nlris.first().and_then(prefix_of)?;
                Attr::MpReach {
                    next_hop: m.next_hops.into_iter().next()?,
                    prefix,
                }
            }
            "AsPathAttribute" => {
                let segments = unpack::<AsPathAttribute>(a, name)?.segments;
                let sequence = api::as_segment::Type::AsSequence as i32;
                if segments.iter().any(|s| s.r#type != sequence) {
                    return None;
                }
                Attr::AsPath(segments.into_iter().flat_map(|s| s.numbers).collect())
            }
            "MultiExitDiscAttribute" => Attr::Med(unpack::<MultiExitDiscAttribute>(a, name)?.med),
            "LocalPrefAttribute" => {
                Attr::LocalPref(unpack::<LocalPrefAttribute>(a, name)?.local_pref)
            }
            "CommunitiesAttribute" => {
                Attr::Communities(unpack::<CommunitiesAttribute>(a, name)?.communities)
            }
            "LargeCommunitiesAttribute" => Attr::LargeCommunities(
                unpack::<LargeCommunitiesAttribute>(a, name)?
                    .communities
                    .into_iter()
                    .map(|c| LargeCommunity {
                        global: c.global_admin,
                        local1: c.local_data1,
                        local2: c.local_data2,
                    })
                    .collect(),
            ),
            _ => return None,
        })
    };
    read().unwrap_or(Attr::Foreign)
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
                connect_retry: p.timers.connect_retry,
                hold_time: p.timers.hold_time,
                keepalive_interval: p.timers.keepalive_interval,
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
    codec::same_neighbor([conf, state], address)
}

/// gobgpd's view of a peer, in the terms anycastd sets it.
fn seen(have: &Peer) -> SeenPeer {
    let conf = have.conf.clone().unwrap_or_default();
    let t = have.transport.clone().unwrap_or_default();
    let m = have.ebgp_multihop.unwrap_or_default();
    SeenPeer {
        asn: conf.peer_asn,
        description: conf.description,
        password: conf.auth_password,
        local_address: t.local_address,
        remote_port: t.remote_port,
        passive: t.passive_mode,
        multihop_ttl: if m.enabled { m.multihop_ttl } else { 0 },
        timers: have
            .timers
            .as_ref()
            .and_then(|t| t.config.as_ref())
            .map(|c| (c.hold_time, c.keepalive_interval, c.connect_retry)),
        // GoBGP 3 has no BFD: nothing to compare.
        bfd: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announcer::gobgp::ops::PeerTimers;
    use crate::config::attributes::Community;

    fn bare(nh: &str) -> Advert {
        Advert {
            next_hop: nh.parse().expect("nh"),
            attrs: PathAttributes::default(),
        }
    }

    #[test]
    fn ipv4_path_has_origin_and_next_hop() {
        let a = bare("198.51.100.1");
        let p = path_message("192.0.2.1/32".parse().expect("prefix"), &a, 65001);
        assert_eq!(p.pattrs.len(), 2);
        assert!(p.pattrs[1].type_url.ends_with("apipb.NextHopAttribute"));
        assert_eq!(decode_advert(&p, 65001), Some(a));
    }

    #[test]
    fn ipv6_path_carries_mp_reach_nlri() {
        let a = bare("2001:db8::1");
        let p = path_message("2001:db8:100::/48".parse().expect("prefix"), &a, 65001);
        assert!(p.pattrs[1].type_url.ends_with("apipb.MpReachNLRIAttribute"));
        let m: MpReachNlriAttribute =
            unpack(&p.pattrs[1], "MpReachNLRIAttribute").expect("decodes");
        assert_eq!(m.next_hops, ["2001:db8::1"]);
        assert_eq!(m.nlris.len(), 1);
        assert_eq!(decode_advert(&p, 65001), Some(a));
    }

    #[test]
    fn every_attribute_survives_the_round_trip_for_both_families() {
        let attrs = PathAttributes {
            med: Some(500),
            local_pref: Some(0),
            as_path_prepend: 3,
            communities: [Community(0xFDE8_0064), Community::GRACEFUL_SHUTDOWN].into(),
            large_communities: [LargeCommunity {
                global: 65000,
                local1: 1,
                local2: 2,
            }]
            .into(),
        };
        for (prefix, nh) in [
            ("192.0.2.1/32", "198.51.100.1"),
            ("2001:db8:100::/48", "2001:db8::1"),
        ] {
            let a = Advert {
                next_hop: nh.parse().expect("nh"),
                attrs: attrs.clone(),
            };
            let p = path_message(prefix.parse().expect("prefix"), &a, 65001);
            assert_eq!(p.pattrs.len(), 7, "{prefix}");
            assert_eq!(decode_advert(&p, 65001), Some(a), "{prefix}");
            // Another ASN in the AS path is not a prepend anycastd made.
            assert_eq!(decode_advert(&p, 65002), None);
        }
    }

    #[test]
    fn a_path_with_another_origin_is_not_ours_to_keep() {
        let mut p = path_message(
            "192.0.2.1/32".parse().expect("prefix"),
            &bare("198.51.100.1"),
            65001,
        );
        // `gobgp global rib add` sets ORIGIN incomplete.
        p.pattrs[0] = any("OriginAttribute", &OriginAttribute { origin: 2 });
        assert_eq!(decode_advert(&p, 65001), None);
    }

    #[test]
    fn unpack_checks_the_type() {
        let a = any("OriginAttribute", &OriginAttribute { origin: 0 });
        assert!(unpack::<NextHopAttribute>(&a, "NextHopAttribute").is_none());
    }

    const TIMERS: PeerTimers = PeerTimers {
        hold_time: 90,
        keepalive_interval: 30,
        connect_retry: 5,
    };

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
            timers: TIMERS,
            bfd: None,
        };
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn a_peer_reads_back_as_it_was_set() {
        let mut p = PeerSettings {
            name: "r".into(),
            address: "192.0.2.1".parse().expect("addr"),
            asn: 65000,
            port: Some(1179),
            local_address: "192.0.2.2".parse().expect("addr"),
            password: Some("secret".into()),
            multihop_ttl: 3,
            passive: true,
            timers: TIMERS,
            bfd: None,
        };
        assert!(codec::peer_matches(&seen(&peer_message(&p)), &p));
        let set = peer_message(&p);
        p.multihop_ttl = 0;
        assert!(!codec::peer_matches(&seen(&set), &p));
        assert!(codec::peer_matches(&seen(&peer_message(&p)), &p));
    }
}
