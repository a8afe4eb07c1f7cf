//! The pure part of reconciling: given what should be announced and what gobgpd has, what
//! to add and what to delete. Only prefixes of the config are ever touched: paths that other
//! tools added to gobgpd are left alone.
//!
//! A path whose next hop or attributes differ from the wanted ones is *replaced*: gobgpd's
//! AddPath with the prefix of an existing path of the same origin replaces it, so the
//! routers see one UPDATE with the new attributes and the prefix is never absent in
//! between (SPEC 10). Only unwanted prefixes are deleted.
//!
//! [`Wanted`] turns the services' states into routes, with the graceful withdraw of RFC
//! 8326: a route that leaves for another reason than failing health (drain, shutdown, a
//! reload that removes it) is first announced with its `draining` attributes, and withdrawn
//! only `drain_linger` later. A route whose service failed has no draining state: it is
//! simply not wanted, and goes at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ipnet::IpNet;
use tokio::time::Instant;

use super::gobgp::ops::Advert;
use super::intent::{Route, RouteSpec};
#[cfg(test)]
use crate::config::attributes::PathAttributes;
use crate::config::attributes::RouteState;

/// The changes that make gobgpd's RIB match the wanted routes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Prefixes to withdraw.
    pub delete: Vec<IpNet>,
    /// Routes to announce, or to replace (same prefix, other next hop or attributes).
    pub add: Vec<Route>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty() && self.add.is_empty()
    }
}

/// Compares `present` (gobgpd's locally originated paths of each prefix; `None` for a path
/// whose attributes anycastd cannot have set, such as another origin) with `wanted`, for
/// the prefixes in `ours` only.
pub fn plan(
    ours: impl Fn(&IpNet) -> bool,
    wanted: &BTreeMap<IpNet, Route>,
    present: &BTreeMap<IpNet, Option<Advert>>,
) -> Plan {
    let delete = present
        .keys()
        .filter(|p| ours(p) && !wanted.contains_key(p))
        .copied()
        .collect();
    let add = wanted
        .values()
        .filter(|r| present.get(&r.prefix) != Some(&Some(r.advert.clone())))
        .cloned()
        .collect();
    Plan { delete, add }
}

/// The routes to announce, from the states the gate wants, with each draining route's
/// linger: it keeps its draining attributes for `linger` from the moment it began to
/// drain, and is withdrawn after that. A route that is not announced is not drained: it
/// stays withdrawn (a drained service is not announced at start, for instance).
#[derive(Debug, Default)]
pub struct Wanted {
    /// When each draining route began draining.
    since: BTreeMap<IpNet, Instant>,
}

impl Wanted {
    /// `states`: the state each prefix should be announced in, for the prefixes `spec`
    /// knows (absent: withdrawn). `announced`: the prefixes gobgpd announces now.
    pub fn routes<'a>(
        &mut self,
        spec: impl Fn(&IpNet) -> Option<&'a RouteSpec>,
        states: &BTreeMap<IpNet, RouteState>,
        announced: &BTreeSet<IpNet>,
        linger: Duration,
        now: Instant,
    ) -> BTreeMap<IpNet, Route> {
        let mut out = BTreeMap::new();
        for (prefix, state) in states {
            let Some(spec) = spec(prefix) else {
                continue;
            };
            if *state == RouteState::Draining {
                if !announced.contains(prefix) {
                    continue;
                }
                let since = *self.since.entry(*prefix).or_insert(now);
                if now.duration_since(since) >= linger {
                    continue;
                }
            }
            out.insert(*prefix, spec.route(*prefix, *state));
        }
        // A route that is no longer draining (undrained, or withdrawn) starts over.
        self.since
            .retain(|p, _| states.get(p) == Some(&RouteState::Draining) && announced.contains(p));
        out
    }

    /// When the next draining route's linger ends.
    pub fn next_deadline(&self, linger: Duration) -> Option<Instant> {
        self.since.values().min().map(|s| *s + linger)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("test prefix")
    }

    fn advert(nh: &str, med: Option<u32>) -> Advert {
        Advert {
            next_hop: nh.parse().expect("test next hop"),
            attrs: PathAttributes {
                med,
                ..PathAttributes::default()
            },
        }
    }

    fn route(prefix: &str, nh: &str, med: Option<u32>) -> Route {
        Route {
            prefix: net(prefix),
            state: RouteState::Up,
            advert: advert(nh, med),
        }
    }

    fn ours() -> BTreeSet<IpNet> {
        ["192.0.2.1/32", "192.0.2.2/32", "2001:db8::/48"]
            .iter()
            .map(|s| net(s))
            .collect()
    }

    fn wanted(routes: &[Route]) -> BTreeMap<IpNet, Route> {
        routes.iter().map(|r| (r.prefix, r.clone())).collect()
    }

    #[test]
    fn adds_missing_and_deletes_unwanted() {
        let w = wanted(&[route("192.0.2.1/32", "198.51.100.1", None)]);
        let present = BTreeMap::from([(net("192.0.2.2/32"), Some(advert("198.51.100.1", None)))]);
        let p = plan(|p| ours().contains(p), &w, &present);
        assert_eq!(p.add, [route("192.0.2.1/32", "198.51.100.1", None)]);
        assert_eq!(p.delete, [net("192.0.2.2/32")]);
    }

    #[test]
    fn leaves_foreign_paths_alone() {
        let present = BTreeMap::from([(net("203.0.113.0/24"), None)]);
        assert!(plan(|p| ours().contains(p), &BTreeMap::new(), &present).is_empty());
    }

    #[test]
    fn other_next_hop_or_attributes_are_replaced_not_withdrawn() {
        let w = wanted(&[
            route("2001:db8::/48", "2001:db8::1", None),
            route("192.0.2.1/32", "198.51.100.1", Some(100)),
            route("192.0.2.2/32", "198.51.100.1", None),
        ]);
        let present = BTreeMap::from([
            (net("2001:db8::/48"), Some(advert("2001:db8::99", None))),
            // Changed by hand: `gobgp global rib add ... med 7`.
            (net("192.0.2.1/32"), Some(advert("198.51.100.1", Some(7)))),
            // Attributes anycastd cannot have set.
            (net("192.0.2.2/32"), None),
        ]);
        let p = plan(|p| ours().contains(p), &w, &present);
        assert!(p.delete.is_empty(), "{p:?}");
        assert_eq!(p.add.len(), 3);
    }

    fn specs() -> BTreeMap<IpNet, RouteSpec> {
        let mut config = crate::config::attributes::AttributesConfig::default();
        config.up.med = Some(100);
        let attrs = config.resolve();
        [net("192.0.2.1/32"), net("192.0.2.2/32")]
            .into_iter()
            .map(|p| {
                (
                    p,
                    RouteSpec {
                        next_hop: "198.51.100.1".parse().expect("nh"),
                        attrs: attrs.clone(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_draining_route_lingers_then_goes() {
        let mut w = Wanted::default();
        let specs = specs();
        let linger = Duration::from_secs(5);
        let t0 = Instant::now();
        let states = BTreeMap::from([
            (net("192.0.2.1/32"), RouteState::Draining),
            (net("192.0.2.2/32"), RouteState::Draining),
        ]);
        // Only the announced one drains; the other stays withdrawn.
        let announced = BTreeSet::from([net("192.0.2.1/32")]);
        let r = w.routes(|p| specs.get(p), &states, &announced, linger, t0);
        assert_eq!(r.keys().collect::<Vec<_>>(), [&net("192.0.2.1/32")]);
        let attrs = &r[&net("192.0.2.1/32")].advert.attrs;
        assert_eq!(
            attrs.to_string(),
            "med 100, local_pref 0, communities graceful_shutdown"
        );
        assert_eq!(w.next_deadline(linger), Some(t0 + linger));
        let r = w.routes(
            |p| specs.get(p),
            &states,
            &announced,
            linger,
            t0 + Duration::from_secs(4),
        );
        assert_eq!(r.len(), 1, "still lingering");
        let r = w.routes(|p| specs.get(p), &states, &announced, linger, t0 + linger);
        assert!(r.is_empty(), "withdrawn once the linger is over");
    }

    #[test]
    fn undrained_before_the_end_it_is_up_again_and_starts_over() {
        let mut w = Wanted::default();
        let specs = specs();
        let linger = Duration::from_secs(5);
        let t0 = Instant::now();
        let p = net("192.0.2.1/32");
        let announced = BTreeSet::from([p]);
        let draining = BTreeMap::from([(p, RouteState::Draining)]);
        w.routes(|p| specs.get(p), &draining, &announced, linger, t0);
        let up = BTreeMap::from([(p, RouteState::Up)]);
        let r = w.routes(
            |p| specs.get(p),
            &up,
            &announced,
            linger,
            t0 + Duration::from_secs(3),
        );
        assert_eq!(r[&p].state, RouteState::Up);
        assert_eq!(w.next_deadline(linger), None);
        // Drained again: a full linger from now.
        let t1 = t0 + Duration::from_secs(4);
        w.routes(|p| specs.get(p), &draining, &announced, linger, t1);
        assert_eq!(w.next_deadline(linger), Some(t1 + linger));
    }

    #[test]
    fn a_failed_route_is_not_lingered() {
        // Not wanted at all (its service is down): gone at once, whatever was draining.
        let mut w = Wanted::default();
        let specs = specs();
        let p = net("192.0.2.1/32");
        let announced = BTreeSet::from([p]);
        let t0 = Instant::now();
        let linger = Duration::from_secs(5);
        w.routes(
            |p| specs.get(p),
            &BTreeMap::from([(p, RouteState::Draining)]),
            &announced,
            linger,
            t0,
        );
        let r = w.routes(|p| specs.get(p), &BTreeMap::new(), &announced, linger, t0);
        assert!(r.is_empty());
        assert_eq!(w.next_deadline(linger), None);
    }

    #[test]
    fn in_sync_is_empty() {
        let w = wanted(&[route("192.0.2.1/32", "198.51.100.1", Some(100))]);
        let present =
            BTreeMap::from([(net("192.0.2.1/32"), Some(advert("198.51.100.1", Some(100))))]);
        assert!(plan(|p| ours().contains(p), &w, &present).is_empty());
    }
}
