//! `assigned_address`: passes while the given addresses are assigned on this host (on the
//! given interface, when one is named). Typical use: the anycast address itself must be up
//! on the loopback or dummy interface before it is announced.
//!
//! This file is the kind's spec (the config side); its prober is `check/assigned_address.rs`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::Deserialize;

use super::attempts::{Attempts, KindSpec};
use crate::problem::Problem;

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AssignedAddressSpec")]
pub struct Spec {
    /// Only look at this interface (e.g. `lo`, `dummy0`).
    #[serde(default)]
    pub interface: Option<String>,
    #[serde(default)]
    pub ipv4: Option<Ipv4Addr>,
    #[serde(default)]
    pub ipv6: Option<Ipv6Addr>,
}

impl Spec {
    pub fn wanted(&self) -> Vec<IpAddr> {
        self.ipv4
            .map(IpAddr::V4)
            .into_iter()
            .chain(self.ipv6.map(IpAddr::V6))
            .collect()
    }
}

impl KindSpec for Spec {
    fn attempts(&self) -> Attempts {
        Attempts {
            tries: 1,
            interval: Duration::ZERO,
            timeout: Duration::from_secs(1),
        }
    }

    fn validate(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        if self.ipv4.is_none() && self.ipv6.is_none() {
            p.push(Problem::new(
                "",
                "give `ipv4`, `ipv6` or both: the addresses that must be assigned",
            ));
        }
        if self
            .interface
            .as_deref()
            .is_some_and(|i| i.trim().is_empty())
        {
            p.push(Problem::new(
                "interface",
                "must not be empty; leave it out to look at every interface",
            ));
        }
        p
    }

    fn target(&self) -> String {
        let addrs: Vec<String> = self.wanted().iter().map(ToString::to_string).collect();
        match &self.interface {
            Some(i) => format!("{} on {i}", addrs.join(", ")),
            None => addrs.join(", "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_an_address() {
        let s = Spec {
            interface: Some("lo".into()),
            ipv4: None,
            ipv6: None,
        };
        assert_eq!(s.validate().len(), 1);
    }
}
