//! `assigned_address`: passes while the given addresses are assigned on this host (on the
//! given interface, when one is named). Typical use: the anycast address itself must be up
//! on the loopback or dummy interface before it is announced.
//!
//! This file is the kind's prober; its spec is `config/checks/assigned_address.rs`.

use super::probe::{AttemptFuture, Check, CheckContext, Failure};
use crate::config::checks::assigned_address::Spec;

/// The prober of `spec`.
pub fn build(spec: &Spec, _ctx: &CheckContext) -> Result<Box<dyn Check>, String> {
    Ok(Box::new(AssignedAddress { spec: spec.clone() }))
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
}
