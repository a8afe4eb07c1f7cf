//! The client of a gobgpd, whichever API it speaks: [`Client::connect`] finds out which
//! (SPEC 15: GoBGP 4's `GetBgp` first; on UNIMPLEMENTED, GoBGP 3's), and [`Client`]
//! dispatches each operation of [`Gobgp`] to the module of that API.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use super::ops::{
    Advert, Api, BestPathChange, BestPaths, BfdSupport, GlobalSettings, Gobgp, GobgpError,
    OriginatedPath, PeerChange, PeerEvents, PeerReport, PeerSettings,
};
use super::rpc::{self, Calls};
use super::{v3, v4};

/// A connected client of gobgpd.
#[derive(Clone)]
pub enum Client {
    V3(v3::Client),
    V4(v4::Client),
}

impl Client {
    /// Connects once to `endpoint` (`host:port`) and finds out which API it speaks; the
    /// caller retries. Asked at every (re)connect, so a gobgpd replaced by another version
    /// in place is picked up.
    pub async fn connect(endpoint: &str, timeout: Duration) -> Result<Client, GobgpError> {
        let channel = rpc::connect(endpoint, timeout).await?;
        let calls = Calls {
            endpoint: endpoint.to_string(),
            timeout,
        };
        let v4 = v4::Client::new(channel.clone(), calls.clone());
        if v4.speaks().await.map_err(not_grpc)? {
            return Ok(Client::V4(v4));
        }
        let v3 = v3::Client::new(channel, calls);
        if v3.speaks().await? {
            return Ok(Client::V3(v3));
        }
        Err(GobgpError::NoKnownApi {
            endpoint: endpoint.to_string(),
        })
    }
}

/// A probe's failure at the HTTP/2 level (the peer is no gRPC server) as one stable error.
fn not_grpc(e: GobgpError) -> GobgpError {
    match e {
        GobgpError::Rpc {
            endpoint,
            code: tonic::Code::Internal | tonic::Code::Unknown | tonic::Code::Cancelled,
            ..
        } => GobgpError::NotGrpc { endpoint },
        e => e,
    }
}

/// Runs `$call` on the client of whichever API.
macro_rules! each {
    ($self:ident, $c:ident => $call:expr) => {
        match $self {
            Client::V3($c) => $call,
            Client::V4($c) => $call,
        }
    };
}

/// The peer events of whichever API.
pub enum Events {
    V3(<v3::Client as Gobgp>::PeerEvents),
    V4(<v4::Client as Gobgp>::PeerEvents),
}

impl PeerEvents for Events {
    async fn next(&mut self) -> Result<Option<PeerReport>, GobgpError> {
        match self {
            Events::V3(e) => e.next().await,
            Events::V4(e) => e.next().await,
        }
    }
}

/// The best-path changes of whichever API.
pub enum Table {
    V3(<v3::Client as Gobgp>::BestPaths),
    V4(<v4::Client as Gobgp>::BestPaths),
}

impl BestPaths for Table {
    async fn next(&mut self) -> Result<Option<Vec<BestPathChange>>, GobgpError> {
        match self {
            Table::V3(t) => t.next().await,
            Table::V4(t) => t.next().await,
        }
    }
}

impl Gobgp for Client {
    type PeerEvents = Events;
    type BestPaths = Table;

    fn api(&self) -> Api {
        each!(self, c => c.api())
    }

    fn endpoint(&self) -> &str {
        each!(self, c => c.endpoint())
    }

    fn bfd_support(&self) -> BfdSupport {
        each!(self, c => c.bfd_support())
    }

    async fn global(&self) -> Result<Option<GlobalSettings>, GobgpError> {
        each!(self, c => c.global().await)
    }

    async fn start_bgp(&self, g: &GlobalSettings) -> Result<(), GobgpError> {
        each!(self, c => c.start_bgp(g).await)
    }

    async fn ensure_peer(&self, p: &PeerSettings) -> Result<PeerChange, GobgpError> {
        each!(self, c => c.ensure_peer(p).await)
    }

    async fn delete_peer(&self, address: IpAddr) -> Result<(), GobgpError> {
        each!(self, c => c.delete_peer(address).await)
    }

    async fn list_peers(&self) -> Result<Vec<PeerReport>, GobgpError> {
        each!(self, c => c.list_peers().await)
    }

    async fn community_set(&self, name: &str) -> Result<Vec<String>, GobgpError> {
        each!(self, c => c.community_set(name).await)
    }

    async fn add_to_community_set(
        &self,
        name: &str,
        entries: Vec<String>,
    ) -> Result<(), GobgpError> {
        each!(self, c => c.add_to_community_set(name, entries).await)
    }

    async fn remove_from_community_set(
        &self,
        name: &str,
        entries: Vec<String>,
    ) -> Result<(), GobgpError> {
        each!(self, c => c.remove_from_community_set(name, entries).await)
    }

    async fn add_path(
        &self,
        prefix: IpNet,
        advert: &Advert,
        local_asn: u32,
    ) -> Result<(), GobgpError> {
        each!(self, c => c.add_path(prefix, advert, local_asn).await)
    }

    async fn delete_path(&self, prefix: IpNet, next_hop: IpAddr) -> Result<(), GobgpError> {
        each!(self, c => c.delete_path(prefix, next_hop).await)
    }

    async fn originated_paths(
        &self,
        local_asn: u32,
    ) -> Result<std::sync::Arc<Vec<OriginatedPath>>, GobgpError> {
        each!(self, c => c.originated_paths(local_asn).await)
    }

    async fn watch_peer_events(&self) -> Result<Events, GobgpError> {
        match self {
            Client::V3(c) => c.watch_peer_events().await.map(Events::V3),
            Client::V4(c) => c.watch_peer_events().await.map(Events::V4),
        }
    }

    async fn watch_best_paths(&self) -> Result<Table, GobgpError> {
        match self {
            Client::V3(c) => c.watch_best_paths().await.map(Table::V3),
            Client::V4(c) => c.watch_best_paths().await.map(Table::V4),
        }
    }
}
