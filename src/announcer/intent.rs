//! What anycastd wants of gobgpd, taken from the config once: its global settings, the
//! peers, and for every prefix of the config its next hop and attributes. A reload builds
//! a new [`Intent`] and hands it to the running announcer.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

use super::gobgp::ops::{Advert, GlobalSettings, PeerSettings, PeerTimers};
use crate::config::Config;
use crate::config::attributes::{Attributes, PathAttributes, RouteState};

/// A route anycastd wants announced: a prefix, the state it is announced in, and what that
/// state makes gobgpd advertise (shared with every route of the same spec and state: a
/// route is copied with a refcount, never with its attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: IpNet,
    pub state: RouteState,
    pub advert: Arc<Advert>,
}

/// How one prefix is announced: its next hop, and what it advertises in each state. One
/// spec serves every prefix of a service (or of `announcer.routes`) of one address family:
/// an update of 20,000 routes clones refcounts, not 20,000 sets of attributes (issue 20).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub next_hop: IpAddr,
    up: Arc<Advert>,
    degraded: Arc<Advert>,
    draining: Arc<Advert>,
}

impl RouteSpec {
    pub fn new(next_hop: IpAddr, attrs: &Attributes) -> RouteSpec {
        let advert = |state| {
            Arc::new(Advert {
                next_hop,
                attrs: attrs.of(state).clone(),
            })
        };
        RouteSpec {
            next_hop,
            up: advert(RouteState::Up),
            degraded: advert(RouteState::Degraded),
            draining: advert(RouteState::Draining),
        }
    }

    /// What it advertises in `state`.
    pub fn advert(&self, state: RouteState) -> &Arc<Advert> {
        match state {
            RouteState::Up => &self.up,
            RouteState::Degraded => &self.degraded,
            RouteState::Draining => &self.draining,
        }
    }

    pub fn attrs(&self, state: RouteState) -> &PathAttributes {
        &self.advert(state).attrs
    }

    /// The route this spec makes of `prefix` announced in `state`.
    pub fn route(&self, prefix: IpNet, state: RouteState) -> Route {
        Route {
            prefix,
            state,
            advert: self.advert(state).clone(),
        }
    }
}

/// How long a draining route lingers, and how long a lowered one is held (see
/// [`super::reconcile::Wanted`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub linger: Duration,
    pub hold: Duration,
}

/// Everything the announcer needs from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    pub address: String,
    pub rpc_timeout: Duration,
    pub reconcile_interval: Duration,
    pub peer_poll_interval: Duration,
    pub global: GlobalSettings,
    pub peers: Vec<PeerSettings>,
    pub routes: BTreeMap<IpNet, RouteSpec>,
    /// How long a route leaving for another reason than failing health keeps its
    /// `draining` attributes before it is withdrawn (RFC 8326).
    pub drain_linger: Duration,
    /// How long a route announced in a less preferred state (degraded, draining) stays so
    /// before it goes back toward up.
    pub attribute_hold: Duration,
    /// How often the fleet guard is asked again about a prefix it holds: every round of
    /// the fastest service.
    pub fleet_retry: Duration,
}

/// Why an intent could not be built.
#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    #[error("announcer.peers[{index}].password_file: {error}")]
    Password {
        index: usize,
        #[source]
        error: crate::small_file::ReadError,
    },
    #[error("no next hop for {0}: set announcer.next_hop (IPv4) or announcer.next_hop_ipv6")]
    NoNextHop(IpNet),
}

impl Intent {
    /// The linger of draining routes and the hold of lowered ones.
    pub fn pace(&self) -> Pace {
        Pace {
            linger: self.drain_linger,
            hold: self.attribute_hold,
        }
    }

    /// Reads the peers' password files; everything else comes from `cfg` as validated.
    pub fn from_config(cfg: &Config) -> Result<Intent, IntentError> {
        let a = &cfg.announcer;
        let mut peers = Vec::with_capacity(a.peers.len());
        for (index, p) in a.peers.iter().enumerate() {
            let password = match &p.password_file {
                Some(file) => Some(
                    crate::config::read_password_file(file)
                        .map_err(|error| IntentError::Password { index, error })?,
                ),
                None => None,
            };
            peers.push(PeerSettings {
                name: p.name.clone(),
                address: p.remote_address,
                asn: p.remote_asn,
                port: p.remote_port,
                local_address: a.local_address,
                password,
                multihop_ttl: p.multihop_ttl,
                passive: p.passive,
                timers: PeerTimers {
                    hold_time: p.hold_time.0.as_secs(),
                    keepalive_interval: p.keepalive().0.as_secs(),
                    connect_retry: p.connect_retry.0.as_secs(),
                },
                bfd: p.bfd_over(a.bfd),
            });
        }
        let mut routes = Vec::new();
        let sources = std::iter::once((&a.attributes, &a.routes)).chain(
            cfg.services
                .iter()
                .map(|s| (cfg.service_attributes(s), &s.routes)),
        );
        for (attributes, prefixes) in sources {
            // One spec per source and family, resolved once.
            let attrs = attributes.resolve();
            let (mut v4, mut v6) = (None, None);
            for prefix in prefixes {
                let spec = match prefix {
                    IpNet::V4(_) => &mut v4,
                    IpNet::V6(_) => &mut v6,
                };
                if spec.is_none() {
                    let next_hop = cfg
                        .next_hop_for(prefix)
                        .ok_or(IntentError::NoNextHop(*prefix))?;
                    *spec = Some(RouteSpec::new(next_hop, &attrs));
                }
                if let Some(spec) = spec {
                    routes.push((*prefix, spec.clone()));
                }
            }
        }
        // A prefix is in one place only (validated); were it not, the last one counts, as
        // when collected into a map.
        let routes: BTreeMap<IpNet, RouteSpec> = routes.into_iter().collect();
        Ok(Intent {
            address: a.gobgp.address.clone(),
            rpc_timeout: a.gobgp.timeout.0,
            reconcile_interval: a.gobgp.reconcile_interval.0,
            peer_poll_interval: a.gobgp.peer_poll_interval.0,
            global: GlobalSettings {
                router_id: a.router_id,
                asn: a.local_asn,
                listen_port: a.listen_port,
            },
            peers,
            routes,
            drain_linger: a.drain_linger.0,
            attribute_hold: a.attribute_hold.0,
            fleet_retry: cfg
                .services
                .iter()
                .map(|s| s.check_interval.0)
                .min()
                .unwrap_or(Duration::from_secs(1))
                .max(Duration::from_millis(100)),
        })
    }
}
