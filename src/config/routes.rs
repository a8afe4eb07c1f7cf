//! What the config says about each route, derived once for the runtime: its next hop and
//! its attributes in each state, and the set of every configured prefix.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::attributes::{Attributes, AttributesConfig};
use super::model::{Config, ServiceConfig};

impl Config {
    /// The IPv4 next hop of the routes (`next_hop`, else `local_address`).
    pub fn next_hop_v4(&self) -> Option<IpAddr> {
        match (self.announcer.next_hop, self.announcer.local_address) {
            (Some(n), _) => Some(IpAddr::V4(n)),
            (None, IpAddr::V4(l)) => Some(IpAddr::V4(l)),
            _ => None,
        }
    }

    /// The IPv6 next hop of the routes (`next_hop_ipv6`, else an IPv6 `local_address`).
    pub fn next_hop_v6(&self) -> Option<IpAddr> {
        match (self.announcer.next_hop_ipv6, self.announcer.local_address) {
            (Some(n), _) => Some(IpAddr::V6(n)),
            (None, IpAddr::V6(l)) => Some(IpAddr::V6(l)),
            _ => None,
        }
    }

    /// The next hop a prefix is announced with.
    pub fn next_hop_for(&self, prefix: &IpNet) -> Option<IpAddr> {
        match prefix {
            IpNet::V4(_) => self.next_hop_v4(),
            IpNet::V6(_) => self.next_hop_v6(),
        }
    }

    /// The attributes that apply to a service's own routes: its own, else the announcer's.
    pub fn service_attributes<'a>(&'a self, svc: &'a ServiceConfig) -> &'a AttributesConfig {
        svc.attributes
            .as_ref()
            .unwrap_or(&self.announcer.attributes)
    }

    /// The resolved attributes of every prefix of the config.
    pub fn route_attributes(&self) -> BTreeMap<IpNet, Attributes> {
        let global = self.announcer.attributes.resolve();
        let mut out: BTreeMap<IpNet, Attributes> = self
            .announcer
            .routes
            .iter()
            .map(|p| (*p, global.clone()))
            .collect();
        for svc in &self.services {
            let a = self.service_attributes(svc).resolve();
            out.extend(svc.routes.iter().map(|p| (*p, a.clone())));
        }
        out
    }

    /// Every prefix of the config, global and per service.
    pub fn all_prefixes(&self) -> BTreeSet<IpNet> {
        self.announcer
            .routes
            .iter()
            .chain(self.services.iter().flat_map(|s| s.routes.iter()))
            .copied()
            .collect()
    }
}
