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
//!
//! Each step is one pass over sorted sequences ([`join`]): with 20,000 prefixes a lookup
//! per prefix in a map costs milliseconds of the one worker thread, a walk of two sorted
//! sequences side by side a fraction of one (issue 20).

use std::collections::BTreeMap;
use std::iter::Peekable;

use ipnet::IpNet;
use tokio::time::Instant;

use super::gobgp::ops::Advert;
use super::intent::{Pace, Route, RouteSpec};
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

/// Compares `present` (gobgpd's locally originated path of each prefix, by prefix; `None`
/// for a path whose attributes anycastd cannot have set, such as another origin) with
/// `wanted` (by prefix), for the prefixes in `ours` only.
pub fn plan<'a>(
    ours: impl Fn(&IpNet) -> bool,
    wanted: &[Route],
    present: impl IntoIterator<Item = (IpNet, Option<&'a Advert>)>,
) -> Plan {
    let mut p = Plan::default();
    let wanted = wanted.iter().map(|r| (r.prefix, r));
    for (prefix, want, have) in join(wanted, present) {
        match (want, have) {
            // The same spec's advert (every update): no need to compare its attributes.
            (Some(r), Some(Some(a))) if std::ptr::eq(&*r.advert, a) || *r.advert == *a => {}
            (Some(r), _) => p.add.push(r.clone()),
            (None, Some(_)) if ours(&prefix) => p.delete.push(prefix),
            (None, _) => {}
        }
    }
    p
}

/// Whether gobgpd has the wanted route `want` already (`has`: its path of the prefix, as
/// believed or as listed) while anycastd records it otherwise (`recorded`): in another
/// state whose path is the same (no `degraded` attributes, a prefix held by the fleet
/// guard), or with another path or none (gobgpd applied a call whose answer was lost). The
/// plan sends gobgpd nothing for such a route; what anycastd records must follow.
pub fn unrecorded(want: &Route, has: Option<&Advert>, recorded: Option<&Route>) -> bool {
    let same = |a: &Advert| std::ptr::eq(&*want.advert, a) || *want.advert == *a;
    if !has.is_some_and(same) {
        return false;
    }
    recorded.is_none_or(|r| r.state != want.state || !same(&r.advert))
}

/// Walks two sequences sorted by key side by side: each key once, with the item of each
/// side that has it. A key that one side repeats comes once per repetition.
pub fn join<K: Ord + Copy, A, B>(
    a: impl IntoIterator<Item = (K, A)>,
    b: impl IntoIterator<Item = (K, B)>,
) -> impl Iterator<Item = (K, Option<A>, Option<B>)> {
    Join {
        a: a.into_iter().peekable(),
        b: b.into_iter().peekable(),
    }
}

struct Join<K, A, B, I: Iterator<Item = (K, A)>, J: Iterator<Item = (K, B)>> {
    a: Peekable<I>,
    b: Peekable<J>,
}

impl<K: Ord + Copy, A, B, I, J> Iterator for Join<K, A, B, I, J>
where
    I: Iterator<Item = (K, A)>,
    J: Iterator<Item = (K, B)>,
{
    type Item = (K, Option<A>, Option<B>);

    fn next(&mut self) -> Option<Self::Item> {
        use std::cmp::Ordering;
        let order = match (self.a.peek(), self.b.peek()) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((x, _)), Some((y, _))) => x.cmp(y),
        };
        match order {
            Ordering::Less => self.a.next().map(|(k, a)| (k, Some(a), None)),
            Ordering::Greater => self.b.next().map(|(k, b)| (k, None, Some(b))),
            Ordering::Equal => {
                let (k, a) = self.a.next()?;
                let b = self.b.next().map(|(_, b)| b);
                Some((k, Some(a), b))
            }
        }
    }
}

/// The routes to announce, from the states the gate wants, with each draining route's
/// linger and each lowered route's hold:
///
/// - a draining route keeps its draining attributes for `linger` from the moment it began
///   to drain, and is withdrawn after that. A route that is not announced is not drained:
///   it stays withdrawn (a drained service is not announced at start, for instance);
/// - a route announced in a less preferred state than up (degraded, draining) goes back
///   toward up no sooner than `hold` after it last changed (issue 20.10: 1,000 drain and
///   undrain commands in a row sent 1,394 UPDATEs, each a best-path change at every
///   router). A change away from up, and a withdraw, is never held: it is what moves
///   traffic off a site that should not have it.
#[derive(Debug, Default)]
pub struct Wanted {
    /// When each draining route began draining.
    since: BTreeMap<IpNet, Linger>,
    /// The announced routes in a less preferred state than up, with when they entered it.
    lowered: BTreeMap<IpNet, Lowered>,
}

/// A draining route's linger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Linger {
    since: Instant,
    /// Over, and its end applied: the route is no longer wanted. It is kept while gobgpd
    /// still announces the route (the fleet guard may hold it), so that the linger does
    /// not start again; it is no deadline any more. It was one, in the past, while the
    /// guard held a drained prefix: the announcer ran update after update, a whole core.
    over: bool,
}

/// A route announced in a less preferred state than up.
#[derive(Debug, Clone, Copy)]
struct Lowered {
    state: RouteState,
    /// When it was announced in `state`.
    at: Instant,
    /// Whether a more preferred state waits for the end of the hold.
    waiting: bool,
}

impl Wanted {
    /// `states`: the state each prefix of `scope` should be announced in, with its spec,
    /// sorted by prefix (absent: withdrawn). `scope`: the prefixes `states` speaks of,
    /// sorted (`None`: every prefix; the lingers and holds of the others are kept).
    /// `announced`: whether gobgpd announces a prefix now. The routes, sorted by prefix.
    pub fn routes(
        &mut self,
        states: &[(IpNet, RouteState, &RouteSpec)],
        scope: Option<&[IpNet]>,
        announced: impl Fn(&IpNet) -> bool,
        pace: Pace,
        now: Instant,
    ) -> Vec<Route> {
        let mut out = Vec::with_capacity(states.len());
        let mut lowered = BTreeMap::new();
        for (prefix, state, spec) in states {
            let on = announced(prefix);
            if *state == RouteState::Draining {
                if !on {
                    continue;
                }
                let linger = self.since.entry(*prefix).or_insert(Linger {
                    since: now,
                    over: false,
                });
                if now.duration_since(linger.since) >= pace.linger {
                    linger.over = true;
                    continue;
                }
            }
            let mut state = *state;
            match self.lowered.get(prefix).filter(|_| on) {
                Some(l) if state.preference() > l.state.preference() => {
                    if now.duration_since(l.at) < pace.hold {
                        // Held: announced as it is until the hold ends.
                        state = l.state;
                        lowered.insert(
                            *prefix,
                            Lowered {
                                waiting: true,
                                ..*l
                            },
                        );
                    } else if state != RouteState::Up {
                        lowered.insert(
                            *prefix,
                            Lowered {
                                state,
                                at: now,
                                waiting: false,
                            },
                        );
                    }
                }
                Some(l) if state == l.state => {
                    lowered.insert(
                        *prefix,
                        Lowered {
                            waiting: false,
                            ..*l
                        },
                    );
                }
                _ if state != RouteState::Up => {
                    lowered.insert(
                        *prefix,
                        Lowered {
                            state,
                            at: now,
                            waiting: false,
                        },
                    );
                }
                _ => {}
            }
            out.push(spec.route(*prefix, state));
        }
        let in_scope = |p: &IpNet| scope.is_none_or(|s| s.binary_search(p).is_ok());
        self.lowered.retain(|p, _| !in_scope(p));
        self.lowered.extend(lowered);
        // A route that is no longer draining (undrained, or withdrawn) starts over.
        self.since.retain(|p, _| {
            let draining = states
                .binary_search_by(|(q, ..)| q.cmp(p))
                .is_ok_and(|i| states[i].1 == RouteState::Draining);
            !in_scope(p) || (draining && announced(p))
        });
        out
    }

    /// When the next draining route's linger ends, or the next held route may go back
    /// toward up.
    pub fn next_deadline(&self, pace: Pace) -> Option<Instant> {
        let lingers = self
            .since
            .values()
            .filter(|l| !l.over)
            .map(|l| l.since + pace.linger);
        let holds = self.lowered.values().filter(|l| l.waiting);
        lingers.chain(holds.map(|l| l.at + pace.hold)).min()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::time::Duration;

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
            advert: Arc::new(advert(nh, med)),
        }
    }

    fn ours() -> BTreeSet<IpNet> {
        ["192.0.2.1/32", "192.0.2.2/32", "2001:db8::/48"]
            .iter()
            .map(|s| net(s))
            .collect()
    }

    /// The wanted routes, sorted by prefix as [`plan`] takes them.
    fn wanted(routes: &[Route]) -> Vec<Route> {
        let mut w = routes.to_vec();
        w.sort_by_key(|r| r.prefix);
        w
    }

    fn of(
        present: &BTreeMap<IpNet, Option<Advert>>,
    ) -> impl Iterator<Item = (IpNet, Option<&Advert>)> {
        present.iter().map(|(p, a)| (*p, a.as_ref()))
    }

    #[test]
    fn adds_missing_and_deletes_unwanted() {
        let w = wanted(&[route("192.0.2.1/32", "198.51.100.1", None)]);
        let present = BTreeMap::from([(net("192.0.2.2/32"), Some(advert("198.51.100.1", None)))]);
        let p = plan(|p| ours().contains(p), &w, of(&present));
        assert_eq!(p.add, [route("192.0.2.1/32", "198.51.100.1", None)]);
        assert_eq!(p.delete, [net("192.0.2.2/32")]);
    }

    #[test]
    fn leaves_foreign_paths_alone() {
        let present = BTreeMap::from([(net("203.0.113.0/24"), None)]);
        assert!(plan(|p| ours().contains(p), &[], of(&present)).is_empty());
    }

    #[test]
    fn join_walks_both_sides_once() {
        let a = [(1, 'a'), (3, 'c'), (4, 'd')];
        let b = [(2, "two"), (3, "three"), (5, "five")];
        let j: Vec<_> = join(a, b).collect();
        assert_eq!(
            j,
            [
                (1, Some('a'), None),
                (2, None, Some("two")),
                (3, Some('c'), Some("three")),
                (4, Some('d'), None),
                (5, None, Some("five")),
            ]
        );
        assert_eq!(join(a, [] as [(i32, char); 0]).count(), 3);
        assert_eq!(join::<i32, char, char>([], []).count(), 0);
    }

    #[test]
    fn a_large_plan_is_one_pass() {
        // 20,000 prefixes, one of them changed, one gone, one foreign: exactly those.
        let specs = specs();
        let spec = &specs[&net("192.0.2.1/32")];
        let prefixes: Vec<IpNet> = (0..20_000u32)
            .map(|i| {
                IpNet::new(std::net::Ipv4Addr::from(0x0a00_0000 + i).into(), 32).expect("prefix")
            })
            .collect();
        let w: Vec<Route> = prefixes
            .iter()
            .map(|p| spec.route(*p, RouteState::Up))
            .collect();
        let mut present: BTreeMap<IpNet, Option<Advert>> = prefixes
            .iter()
            .map(|p| (*p, Some(Advert::clone(spec.advert(RouteState::Up)))))
            .collect();
        present.insert(
            prefixes[7],
            Some(Advert::clone(spec.advert(RouteState::Draining))),
        );
        present.remove(&prefixes[9]);
        present.insert(net("203.0.113.0/24"), None);
        let all: BTreeSet<IpNet> = prefixes.iter().copied().collect();
        let p = plan(|p| all.contains(p), &w, of(&present));
        let added: Vec<IpNet> = p.add.iter().map(|r| r.prefix).collect();
        assert_eq!(added, [prefixes[7], prefixes[9]]);
        assert!(p.delete.is_empty());
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
        let p = plan(|p| ours().contains(p), &w, of(&present));
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
                    RouteSpec::new("198.51.100.1".parse().expect("nh"), &attrs),
                )
            })
            .collect()
    }

    /// The states as [`Wanted::routes`] takes them: with their specs, by prefix.
    fn states<'a>(
        specs: &'a BTreeMap<IpNet, RouteSpec>,
        states: &[(IpNet, RouteState)],
    ) -> Vec<(IpNet, RouteState, &'a RouteSpec)> {
        let mut v: Vec<_> = states.iter().map(|(p, s)| (*p, *s, &specs[p])).collect();
        v.sort_by_key(|s| s.0);
        v
    }

    #[test]
    fn a_route_gobgpd_has_as_wanted_is_recorded_as_wanted() {
        use RouteState::*;
        let specs = specs();
        let p = net("192.0.2.1/32");
        let spec = &specs[&p];
        let (up, degraded) = (spec.route(p, Up), spec.route(p, Degraded));
        let med7 = advert("198.51.100.1", Some(7));
        // No `degraded` attributes: the same path, another state.
        assert_eq!(up.advert, degraded.advert);
        assert!(unrecorded(&degraded, Some(&up.advert), Some(&up)));
        // Recorded as wanted already; gobgpd without it, or with another path: the plan's.
        assert!(!unrecorded(&up, Some(&up.advert), Some(&up)));
        assert!(!unrecorded(&up, None, Some(&up)));
        assert!(!unrecorded(&up, Some(&med7), None));
        // gobgpd has it as wanted, anycastd recorded nothing or another path.
        assert!(unrecorded(&up, Some(&up.advert), None));
        let other = Route {
            advert: Arc::new(med7.clone()),
            ..up.clone()
        };
        assert!(unrecorded(&up, Some(&up.advert), Some(&other)));
    }

    #[test]
    fn a_draining_route_lingers_then_goes() {
        let mut w = Wanted::default();
        let specs = specs();
        let linger = Duration::from_secs(5);
        let pace = Pace {
            linger,
            hold: Duration::ZERO,
        };
        let t0 = Instant::now();
        let states = states(
            &specs,
            &[
                (net("192.0.2.1/32"), RouteState::Draining),
                (net("192.0.2.2/32"), RouteState::Draining),
            ],
        );
        // Only the announced one drains; the other stays withdrawn.
        let announced = BTreeSet::from([net("192.0.2.1/32")]);
        let on = |p: &IpNet| announced.contains(p);
        let r = w.routes(&states, None, on, pace, t0);
        assert_eq!(
            r.iter().map(|r| r.prefix).collect::<Vec<_>>(),
            [net("192.0.2.1/32")]
        );
        assert_eq!(
            r[0].advert.attrs.to_string(),
            "med 100, local_pref 0, communities graceful_shutdown"
        );
        assert_eq!(w.next_deadline(pace), Some(t0 + linger));
        let r = w.routes(&states, None, on, pace, t0 + Duration::from_secs(4));
        assert_eq!(r.len(), 1, "still lingering");
        let r = w.routes(&states, None, on, pace, t0 + linger);
        assert!(r.is_empty(), "withdrawn once the linger is over");
        // Still announced (the fleet guard holds it): the linger does not start again, and
        // its end, applied, is no deadline.
        assert_eq!(w.next_deadline(pace), None);
        let later = t0 + linger + Duration::from_secs(60);
        assert!(w.routes(&states, None, on, pace, later).is_empty());
        assert_eq!(w.next_deadline(pace), None);
    }

    #[test]
    fn undrained_before_the_end_it_is_up_again_and_starts_over() {
        let mut w = Wanted::default();
        let specs = specs();
        let linger = Duration::from_secs(5);
        let pace = Pace {
            linger,
            hold: Duration::ZERO,
        };
        let t0 = Instant::now();
        let p = net("192.0.2.1/32");
        let on = |q: &IpNet| *q == p;
        let draining = states(&specs, &[(p, RouteState::Draining)]);
        w.routes(&draining, None, on, pace, t0);
        let up = states(&specs, &[(p, RouteState::Up)]);
        let r = w.routes(&up, None, on, pace, t0 + Duration::from_secs(3));
        assert_eq!(r[0].state, RouteState::Up);
        assert_eq!(w.next_deadline(pace), None);
        // Drained again: a full linger from now.
        let t1 = t0 + Duration::from_secs(4);
        w.routes(&draining, None, on, pace, t1);
        assert_eq!(w.next_deadline(pace), Some(t1 + linger));
    }

    #[test]
    fn a_failed_route_is_not_lingered() {
        // Not wanted at all (its service is down): gone at once, whatever was draining.
        let mut w = Wanted::default();
        let specs = specs();
        let p = net("192.0.2.1/32");
        let on = |q: &IpNet| *q == p;
        let t0 = Instant::now();
        let linger = Duration::from_secs(5);
        let pace = Pace {
            linger,
            hold: Duration::ZERO,
        };
        w.routes(
            &states(&specs, &[(p, RouteState::Draining)]),
            None,
            on,
            pace,
            t0,
        );
        let r = w.routes(&[], None, on, pace, t0);
        assert!(r.is_empty());
        assert_eq!(w.next_deadline(pace), None);
    }

    /// The state `w` wants `p` announced in at `t` when the gate wants `state` (`None`:
    /// withdrawn), `p` being announced.
    fn state_at(
        w: &mut Wanted,
        specs: &BTreeMap<IpNet, RouteSpec>,
        p: IpNet,
        state: Option<RouteState>,
        pace: Pace,
        t: Instant,
    ) -> Option<RouteState> {
        let states = states(specs, &Vec::from_iter(state.map(|s| (p, s))));
        let r = w.routes(&states, None, |q| *q == p, pace, t);
        r.first().map(|r| r.state)
    }

    /// Two specs, the first prefix, a linger of 5 s and a hold of 1 s, a fresh [`Wanted`]
    /// and the start time: what the hold's tests share.
    fn hold_lab() -> (BTreeMap<IpNet, RouteSpec>, IpNet, Pace, Wanted, Instant) {
        let ms = Duration::from_millis;
        let pace = Pace {
            linger: ms(5000),
            hold: ms(1000),
        };
        (
            specs(),
            net("192.0.2.1/32"),
            pace,
            Wanted::default(),
            Instant::now(),
        )
    }

    #[test]
    fn a_change_back_toward_up_waits_for_the_hold() {
        use RouteState::*;
        let (specs, p, pace, mut w, t0) = hold_lab();
        let ms = Duration::from_millis;
        assert_eq!(state_at(&mut w, &specs, p, Some(Up), pace, t0), Some(Up));
        assert_eq!(w.next_deadline(pace), None);
        // Drained: at once. Undrained 200 ms later: held until 1 s after the drain.
        assert_eq!(
            state_at(&mut w, &specs, p, Some(Draining), pace, t0),
            Some(Draining)
        );
        let undrained = state_at(&mut w, &specs, p, Some(Up), pace, t0 + ms(200));
        assert_eq!(undrained, Some(Draining));
        assert_eq!(w.next_deadline(pace), Some(t0 + ms(1000)));
        // Drained and undrained again meanwhile: nothing new to send, the same end.
        state_at(&mut w, &specs, p, Some(Draining), pace, t0 + ms(400));
        assert_eq!(
            w.next_deadline(pace),
            Some(t0 + ms(400) + ms(5000)),
            "the linger's"
        );
        state_at(&mut w, &specs, p, Some(Up), pace, t0 + ms(600));
        assert_eq!(w.next_deadline(pace), Some(t0 + ms(1000)));
        let r = state_at(&mut w, &specs, p, Some(Up), pace, t0 + ms(999));
        assert_eq!(r, Some(Draining));
        assert_eq!(
            state_at(&mut w, &specs, p, Some(Up), pace, t0 + ms(1000)),
            Some(Up)
        );
        assert_eq!(w.next_deadline(pace), None);
        // Degraded, then draining: the hold counts from the last change.
        state_at(&mut w, &specs, p, Some(Degraded), pace, t0 + ms(2000));
        state_at(&mut w, &specs, p, Some(Draining), pace, t0 + ms(2500));
        let r = state_at(&mut w, &specs, p, Some(Degraded), pace, t0 + ms(3200));
        assert_eq!(r, Some(Draining), "held toward degraded too");
        let r = state_at(&mut w, &specs, p, Some(Degraded), pace, t0 + ms(3500));
        assert_eq!(r, Some(Degraded));
        let r = state_at(&mut w, &specs, p, Some(Up), pace, t0 + ms(3600));
        assert_eq!(r, Some(Degraded), "and from there toward up");
        assert_eq!(w.next_deadline(pace), Some(t0 + ms(4500)));
    }

    #[test]
    fn a_change_away_from_up_and_a_withdraw_are_never_held() {
        use RouteState::*;
        let (specs, p, pace, mut w, t0) = hold_lab();
        let ms = Duration::from_millis;
        state_at(&mut w, &specs, p, Some(Degraded), pace, t0);
        let r = state_at(&mut w, &specs, p, Some(Draining), pace, t0 + ms(1));
        assert_eq!(r, Some(Draining), "less preferred still: at once");
        assert_eq!(state_at(&mut w, &specs, p, None, pace, t0 + ms(2)), None);
        // Withdrawn, then wanted up: a new announcement, not a change back.
        assert_eq!(
            state_at(&mut w, &specs, p, Some(Up), pace, t0 + ms(3)),
            Some(Up)
        );
        // Without a hold, nothing waits.
        let none = Pace {
            hold: Duration::ZERO,
            ..pace
        };
        state_at(&mut w, &specs, p, Some(Draining), none, t0 + ms(4));
        assert_eq!(
            state_at(&mut w, &specs, p, Some(Up), none, t0 + ms(5)),
            Some(Up)
        );
    }

    #[test]
    fn a_thousand_drains_and_undrains_make_two_changes_a_hold() {
        // Issue 20.10: 1,000 alternations, one every 10 ms (10 s), sent 1,394 UPDATEs.
        use RouteState::*;
        let (specs, p, pace, mut w, t0) = hold_lab();
        let ms = Duration::from_millis;
        let mut last = state_at(&mut w, &specs, p, Some(Up), pace, t0);
        let mut changes = 0;
        for i in 1..=1000u64 {
            let want = if i % 2 == 1 { Draining } else { Up };
            let now = state_at(&mut w, &specs, p, Some(want), pace, t0 + ms(10 * i));
            if now != last {
                changes += 1;
                last = now;
            }
            if want == Draining {
                assert_eq!(now, Some(Draining), "a drain is never held");
            }
        }
        assert!(
            changes <= 20,
            "{changes} changes in 10 s with a hold of 1 s"
        );
        // The last command was an undrain: up once the hold is over.
        let end = w.next_deadline(pace).expect("an undrain waits");
        assert_eq!(state_at(&mut w, &specs, p, Some(Up), pace, end), Some(Up));
    }

    #[test]
    fn a_walk_of_some_prefixes_keeps_the_lingers_and_holds_of_the_others() {
        use RouteState::*;
        let specs = specs();
        let (p, q) = (net("192.0.2.1/32"), net("192.0.2.2/32"));
        let ms = Duration::from_millis;
        let pace = Pace {
            linger: ms(5000),
            hold: ms(1000),
        };
        let on = |_: &IpNet| true;
        let mut w = Wanted::default();
        let t0 = Instant::now();
        // p drains, q is degraded then wanted up (held).
        w.routes(
            &states(&specs, &[(p, Draining), (q, Degraded)]),
            None,
            on,
            pace,
            t0,
        );
        let r = w.routes(
            &states(&specs, &[(p, Draining), (q, Up)]),
            None,
            on,
            pace,
            t0,
        );
        assert_eq!(r[1].state, Degraded);
        assert_eq!(w.next_deadline(pace), Some(t0 + ms(1000)));
        // A walk of q alone: p's linger stays.
        let only_q = [q];
        let r = w.routes(
            &states(&specs, &[(q, Up)]),
            Some(&only_q),
            on,
            pace,
            t0 + ms(10),
        );
        assert_eq!(
            r.iter().map(|r| (r.prefix, r.state)).collect::<Vec<_>>(),
            [(q, Degraded)]
        );
        assert_eq!(w.next_deadline(pace), Some(t0 + ms(1000)), "q's hold");
        assert_eq!(w.since.get(&p).map(|l| l.since), Some(t0), "p's linger");
        // A walk of p alone, undrained: q's hold stays, p's linger goes.
        let only_p = [p];
        let r = w.routes(
            &states(&specs, &[(p, Up)]),
            Some(&only_p),
            on,
            pace,
            t0 + ms(20),
        );
        assert_eq!(r[0].state, Draining, "held: drained 20 ms ago");
        let r = w.routes(
            &states(&specs, &[(p, Up), (q, Up)]),
            None,
            on,
            pace,
            t0 + ms(1000),
        );
        assert_eq!(r.iter().map(|r| r.state).collect::<Vec<_>>(), [Up, Up]);
        assert_eq!(w.next_deadline(pace), None);
    }

    #[test]
    fn in_sync_is_empty() {
        let w = wanted(&[route("192.0.2.1/32", "198.51.100.1", Some(100))]);
        let present =
            BTreeMap::from([(net("192.0.2.1/32"), Some(advert("198.51.100.1", Some(100))))]);
        assert!(plan(|p| ours().contains(p), &w, of(&present)).is_empty());
    }
}
