//! The pure part of reconciling: given what should be announced and what gobgpd has, what
//! to add and what to delete. Only prefixes of the config are ever touched: paths that other
//! tools added to gobgpd are left alone.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;

/// One path as anycastd adds or deletes it: a prefix and its next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub prefix: IpNet,
    pub next_hop: IpAddr,
}

/// The changes that make gobgpd's RIB match the wanted routes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Paths to delete (they carry the next hop gobgpd has, so that the delete matches).
    pub delete: Vec<Route>,
    pub add: Vec<Route>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty() && self.add.is_empty()
    }
}

/// Compares `present` (gobgpd's locally originated paths) with `wanted` (the routes that
/// should be announced), for the prefixes in `ours` only.
pub fn plan(ours: &BTreeSet<IpNet>, wanted: &BTreeSet<Route>, present: &[Route]) -> Plan {
    let mut p = Plan::default();
    for r in present {
        if ours.contains(&r.prefix) && !wanted.contains(r) {
            p.delete.push(*r);
        }
    }
    for w in wanted {
        if !present.contains(w) {
            p.add.push(*w);
        }
    }
    p.delete.sort();
    p.delete.dedup();
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(prefix: &str, nh: &str) -> Route {
        Route {
            prefix: prefix.parse().expect("test prefix"),
            next_hop: nh.parse().expect("test next hop"),
        }
    }

    fn ours() -> BTreeSet<IpNet> {
        ["192.0.2.1/32", "192.0.2.2/32", "2001:db8::/48"]
            .iter()
            .map(|s| s.parse().expect("test prefix"))
            .collect()
    }

    #[test]
    fn adds_missing_and_deletes_unwanted() {
        let wanted = BTreeSet::from([r("192.0.2.1/32", "198.51.100.1")]);
        let present = [r("192.0.2.2/32", "198.51.100.1")];
        let p = plan(&ours(), &wanted, &present);
        assert_eq!(p.add, [r("192.0.2.1/32", "198.51.100.1")]);
        assert_eq!(p.delete, [r("192.0.2.2/32", "198.51.100.1")]);
    }

    #[test]
    fn leaves_foreign_paths_alone() {
        let present = [r("203.0.113.0/24", "198.51.100.9")];
        assert!(plan(&ours(), &BTreeSet::new(), &present).is_empty());
    }

    #[test]
    fn wrong_next_hop_is_replaced() {
        let wanted = BTreeSet::from([r("2001:db8::/48", "2001:db8::1")]);
        let present = [r("2001:db8::/48", "2001:db8::99")];
        let p = plan(&ours(), &wanted, &present);
        assert_eq!(p.delete, [r("2001:db8::/48", "2001:db8::99")]);
        assert_eq!(p.add, [r("2001:db8::/48", "2001:db8::1")]);
    }

    #[test]
    fn in_sync_is_empty() {
        let wanted = BTreeSet::from([r("192.0.2.1/32", "198.51.100.1")]);
        let present = [r("192.0.2.1/32", "198.51.100.1")];
        assert!(plan(&ours(), &wanted, &present).is_empty());
    }
}
