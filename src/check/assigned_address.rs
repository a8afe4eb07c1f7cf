//! `assigned_address`: passes while the given addresses are assigned on this host (on the
//! given interface, when one is named). Typical use: the anycast address itself must be up
//! on the loopback or dummy interface before it is announced.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde::Deserialize;

use super::{AttemptFuture, Attempts, Check, CheckContext, Failure, KindSpec};
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
    fn wanted(&self) -> Vec<IpAddr> {
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

    fn build(&self, _ctx: &CheckContext) -> Result<Box<dyn Check>, String> {
        Ok(Box::new(AssignedAddress { spec: self.clone() }))
    }
}

struct AssignedAddress {
    spec: Spec,
}

impl AssignedAddress {
    fn probe(&self) -> Result<(), Failure> {
        let ifaces = if_addrs::get_if_addrs()
            .map_err(|e| Failure(format!("cannot list the host's addresses: {e}")))?;
        let here: Vec<&if_addrs::Interface> = ifaces
            .iter()
            .filter(|i| self.spec.interface.as_ref().is_none_or(|n| &i.name == n))
            .collect();
        if let Some(name) = &self.spec.interface
            && here.is_empty()
        {
            return Err(Failure(format!(
                "interface {name} does not exist or has no address"
            )));
        }
        let missing: Vec<String> = self
            .spec
            .wanted()
            .into_iter()
            .filter(|w| !here.iter().any(|i| i.ip() == *w))
            .map(|w| w.to_string())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let place = self
            .spec
            .interface
            .as_ref()
            .map(|i| format!(" on {i}"))
            .unwrap_or_default();
        Err(Failure(format!(
            "{} not assigned{place}",
            missing.join(", ")
        )))
    }
}

impl Check for AssignedAddress {
    fn attempt(&self) -> AttemptFuture<'_> {
        Box::pin(async move { self.probe() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(
        interface: Option<&str>,
        ipv4: Option<&str>,
        ipv6: Option<&str>,
    ) -> Result<(), Failure> {
        let spec = Spec {
            interface: interface.map(String::from),
            ipv4: ipv4.map(|a| a.parse().expect("test address")),
            ipv6: ipv6.map(|a| a.parse().expect("test address")),
        };
        AssignedAddress { spec }.probe()
    }

    #[test]
    fn loopback_addresses_are_found() {
        assert_eq!(probe(Some("lo"), Some("127.0.0.1"), None), Ok(()));
        assert_eq!(probe(None, Some("127.0.0.1"), None), Ok(()));
    }

    #[test]
    fn absent_address_fails_and_says_which() {
        let e =
            probe(Some("lo"), Some("127.0.0.1"), Some("2001:db8::dead")).expect_err("must fail");
        assert_eq!(e.0, "2001:db8::dead not assigned on lo");
        let e = probe(None, Some("192.0.2.77"), None).expect_err("must fail");
        assert_eq!(e.0, "192.0.2.77 not assigned");
    }

    #[test]
    fn address_on_another_interface_fails() {
        let e = probe(Some("no-such-if0"), Some("127.0.0.1"), None).expect_err("must fail");
        assert!(e.0.contains("no-such-if0 does not exist"), "{e}");
    }

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
