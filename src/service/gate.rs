//! The gate: from the services' states (their checks' level and the operator's drains) to
//! the desired state of every configured prefix (SPEC 9). The announcer reads only
//! [`Gate::desired`]; the status view reads the services' states.
//!
//! A prefix of a service's `routes` follows that service. A prefix of `announcer.routes`
//! is withdrawn if any service is down, drained if any is drained, degraded if any is
//! degraded, and up otherwise. So every prefix of one source (a service, or the global
//! routes) wants the same: [`Desired`] holds one [`Want`] per source, and which source each
//! prefix follows, a table made once per config and shared. A change of a service makes
//! its source's wish and the global one again, not one entry per prefix (issue 20: with
//! 20,000 prefixes a fresh map per change took milliseconds of the one worker thread, and
//! a reload, which sets every service in turn, took 200 times that).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use ipnet::IpNet;

use super::health::{Level, ServiceState};
use crate::config::Config;
use crate::config::attributes::RouteState;

/// What the gate wants of one prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desire {
    /// Announced with the attributes of this state (up or degraded).
    Announce(RouteState),
    /// Drained by an operator: announced with its draining attributes for `drain_linger`,
    /// then withdrawn. `forced`: past the fleet guard (`anycastd drain --force`).
    Drain { forced: bool },
    /// A service behind it is down: withdrawn at once, never lingered. `forced`: every
    /// such service is drained with `--force` too: past the fleet guard (the guard's own
    /// words offer `anycastd drain --force` to take a held prefix out; it did not for a
    /// failed service, whose state is down whatever drains it).
    Withdraw { forced: bool },
}

impl Desire {
    /// The state it is announced in (draining for a drain); `None`: withdrawn.
    pub fn route_state(self) -> Option<RouteState> {
        match self {
            Desire::Announce(s) => Some(s),
            Desire::Drain { .. } => Some(RouteState::Draining),
            Desire::Withdraw { .. } => None,
        }
    }
}

/// Why a prefix is in its state: the services behind it, in config order, with their
/// states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub behind: Vec<(String, ServiceState)>,
}

impl Cause {
    /// The services behind it that are not up.
    pub fn not_up(&self) -> impl Iterator<Item = &(String, ServiceState)> {
        self.behind.iter().filter(|(_, s)| *s != ServiceState::Up)
    }

    /// The names of the services behind it.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.behind.iter().map(|(n, _)| n.as_str())
    }
}

/// The services that are not up, or that every one is up.
impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let not_up: Vec<String> = self
            .not_up()
            .map(|(name, state)| format!("service {name} is {}", state.name()))
            .collect();
        if !not_up.is_empty() {
            return f.write_str(&not_up.join(", "));
        }
        match self.behind.as_slice() {
            [] => f.write_str("not gated by any service"),
            [(one, _)] => write!(f, "service {one} is up"),
            many => {
                let names: Vec<&str> = many.iter().map(|(n, _)| n.as_str()).collect();
                write!(f, "services {} are all up", names.join(", "))
            }
        }
    }
}

/// The gate's wish for one prefix, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub desire: Desire,
    pub cause: Arc<Cause>,
}

/// Every configured prefix (of the gate's config) and what the gate wants of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// Every prefix, sorted, with the index in `wants` of the source it follows: the
    /// config's, shared by every [`Desired`] of one gate.
    sources: Arc<Vec<(IpNet, usize)>>,
    /// The wish of each source: the global routes first, then each service in config
    /// order.
    wants: Vec<Want>,
}

impl Desired {
    /// What the gate wants of `prefix`; `None` for a prefix of no source.
    pub fn get(&self, prefix: &IpNet) -> Option<&Want> {
        let i = self.sources.binary_search_by(|(p, _)| p.cmp(prefix)).ok()?;
        self.wants.get(self.sources[i].1)
    }

    /// Every prefix and what the gate wants of it, by prefix.
    pub fn iter(&self) -> impl Iterator<Item = (&IpNet, &Want)> {
        self.sources
            .iter()
            .filter_map(|(p, i)| Some((p, self.wants.get(*i)?)))
    }

    /// The prefixes whose desire differs from `before`'s, sorted: those of the sources
    /// whose desire changed (a service's, and the global routes'). `None` when `before`
    /// is of another config, where any prefix may differ. One scan of the prefixes' table,
    /// no lookup: at 20,000 prefixes about 20 us.
    pub fn changed_since(&self, before: &Desired) -> Option<Vec<IpNet>> {
        if !Arc::ptr_eq(&self.sources, &before.sources) || self.wants.len() != before.wants.len() {
            return None;
        }
        let changed: Vec<bool> = self
            .wants
            .iter()
            .zip(&before.wants)
            .map(|(now, then)| now.desire != then.desire)
            .collect();
        if !changed.contains(&true) {
            return Some(Vec::new());
        }
        Some(
            self.sources
                .iter()
                .filter(|(_, i)| changed.get(*i).copied().unwrap_or(true))
                .map(|(p, _)| *p)
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }
}

/// The index of the global routes' source in [`Desired`]'s wishes; service `i` is `i + 1`.
const GLOBAL: usize = 0;

/// The services' states, and the desired routes made of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    services: Vec<GateService>,
    by_name: HashMap<String, usize>,
    desired: Arc<Desired>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct GateService {
    name: String,
    level: Level,
    drained: bool,
    /// Drained past the fleet guard (`anycastd drain --force`).
    forced: bool,
    /// When its state last changed (or the service started).
    since: SystemTime,
}

impl GateService {
    fn state(&self) -> ServiceState {
        ServiceState::of(self.level, self.drained)
    }

    /// What its state wants of its routes.
    fn desire(&self) -> Desire {
        match self.state() {
            ServiceState::Up => Desire::Announce(RouteState::Up),
            ServiceState::Degraded => Desire::Announce(RouteState::Degraded),
            ServiceState::Drained => Desire::Drain {
                forced: self.forced,
            },
            ServiceState::Down => Desire::Withdraw {
                forced: self.forced,
            },
        }
    }

    fn cause(&self) -> Cause {
        Cause {
            behind: vec![(self.name.clone(), self.state())],
        }
    }

    /// What it wants of its routes, and why.
    fn want(&self) -> Want {
        Want {
            desire: self.desire(),
            cause: Arc::new(self.cause()),
        }
    }
}

impl Gate {
    /// Every service down and undrained.
    pub fn new(config: &Config) -> Gate {
        let services: Vec<GateService> = config
            .services
            .iter()
            .map(|s| GateService {
                name: s.name.clone(),
                level: Level::Down,
                drained: false,
                forced: false,
                since: SystemTime::now(),
            })
            .collect();
        let routes = config.services.iter().map(|s| s.routes.as_slice());
        Gate::of(&config.announcer.routes, routes, services)
    }

    /// The gate of `services`, whose routes `routes` gives in the same order, and of the
    /// global routes `global`.
    fn of<'a>(
        global: &[IpNet],
        routes: impl Iterator<Item = &'a [IpNet]>,
        services: Vec<GateService>,
    ) -> Gate {
        let by_name = services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        let mut sources: Vec<(IpNet, usize)> = global.iter().map(|p| (*p, GLOBAL)).collect();
        for (i, r) in routes.enumerate() {
            sources.extend(r.iter().map(|p| (*p, i + 1)));
        }
        // A prefix is in one place only (validated); were it not, the last one counts.
        sources.sort_by_key(|(p, _)| *p);
        sources.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = later.1;
            }
            same
        });
        let mut g = Gate {
            services,
            by_name,
            desired: Arc::new(Desired {
                sources: Arc::new(sources),
                wants: Vec::new(),
            }),
        };
        let wants = std::iter::once(g.global_want())
            .chain(g.services.iter().map(GateService::want))
            .collect();
        Arc::make_mut(&mut g.desired).wants = wants;
        g
    }

    /// The desired state of every prefix, as of the last change.
    pub fn desired(&self) -> Arc<Desired> {
        self.desired.clone()
    }

    /// Makes the wishes of service `i` and of the global routes again (the only ones a
    /// change of that service can change).
    fn recompute(&mut self, i: usize) {
        let global = self.global_want();
        let want = self.services[i].want();
        let d = Arc::make_mut(&mut self.desired);
        d.wants[GLOBAL] = global;
        d.wants[i + 1] = want;
    }

    /// What the global routes follow: down if any service is, drained if any is (forced if
    /// every drained one was), degraded if any is, up otherwise.
    fn global_want(&self) -> Want {
        let states: Vec<ServiceState> = self.services.iter().map(GateService::state).collect();
        let desire = if states.is_empty() || states.contains(&ServiceState::Down) {
            let mut down = self
                .services
                .iter()
                .filter(|s| s.state() == ServiceState::Down)
                .peekable();
            Desire::Withdraw {
                forced: down.peek().is_some() && down.all(|s| s.forced),
            }
        } else if states.contains(&ServiceState::Drained) {
            Desire::Drain {
                forced: self.services.iter().filter(|s| s.drained).all(|s| s.forced),
            }
        } else if states.contains(&ServiceState::Degraded) {
            Desire::Announce(RouteState::Degraded)
        } else {
            Desire::Announce(RouteState::Up)
        };
        Want {
            desire,
            cause: Arc::new(Cause {
                behind: self
                    .services
                    .iter()
                    .map(|s| (s.name.clone(), s.state()))
                    .collect(),
            }),
        }
    }

    fn service(&self, name: &str) -> Option<&GateService> {
        self.by_name.get(name).map(|i| &self.services[*i])
    }

    /// Changes the named service with `change`; notes the time when its state changes, and
    /// makes the desired routes again. Whether anything changed.
    fn change(&mut self, name: &str, change: impl FnOnce(&mut GateService)) -> bool {
        let Some(i) = self.by_name.get(name).copied() else {
            return false;
        };
        let s = &mut self.services[i];
        let before = s.clone();
        change(s);
        if *s == before {
            return false;
        }
        if s.state() != before.state() {
            s.since = SystemTime::now();
        }
        self.recompute(i);
        true
    }

    /// Takes over the level (and the time of the last change) of `service` from `old`, the
    /// gate before a reload.
    pub fn carry(&mut self, old: &Gate, service: &str) {
        if let Some(o) = old.service(service) {
            self.resume(service, o.level, o.since);
        }
    }

    /// Sets the level of `service` and the time of its last change (a service a reload
    /// changed, or removed and added back within `drain_linger`).
    pub fn resume(&mut self, service: &str, level: Level, since: SystemTime) {
        self.change(service, |s| {
            s.level = level;
            s.since = since;
        });
        if let Some(i) = self.by_name.get(service) {
            self.services[*i].since = since;
        }
    }

    /// The checks' level of the named service.
    pub fn level(&self, service: &str) -> Option<Level> {
        self.service(service).map(|s| s.level)
    }

    /// Records a service's level; returns whether anything changed.
    pub fn set(&mut self, service: &str, level: Level) -> bool {
        self.change(service, |s| s.level = level)
    }

    /// Drains or undrains a service (`forced`: its routes leave past the fleet guard);
    /// returns whether anything changed.
    pub fn set_drained(&mut self, service: &str, drained: bool, forced: bool) -> bool {
        self.change(service, |s| {
            s.drained = drained;
            s.forced = drained && forced;
        })
    }

    /// When the named service's state last changed.
    pub fn since(&self, service: &str) -> Option<SystemTime> {
        self.service(service).map(|s| s.since)
    }

    /// The state of the named service; `None` for a service the gate does not know.
    pub fn state(&self, service: &str) -> Option<ServiceState> {
        self.service(service).map(GateService::state)
    }

    /// Every service's name, state and the time of its last change, in config order.
    pub fn states(&self) -> impl Iterator<Item = (&str, ServiceState, SystemTime)> {
        self.services
            .iter()
            .map(|s| (s.name.as_str(), s.state(), s.since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Gate {
        let n = |s: &str| s.parse::<IpNet>().expect("test prefix");
        let svc = |name: &str| GateService {
            name: name.into(),
            level: Level::Down,
            drained: false,
            forced: false,
            since: SystemTime::UNIX_EPOCH,
        };
        let routes = [vec![n("192.0.2.10/32")], vec![n("2001:db8::/48")]];
        Gate::of(
            &[n("192.0.2.1/32")],
            routes.iter().map(Vec::as_slice),
            vec![svc("a"), svc("b")],
        )
    }

    /// The announced prefixes and their states.
    fn wanted(g: &Gate) -> Vec<String> {
        g.desired()
            .iter()
            .filter_map(|(p, w)| Some(format!("{p} {}", w.desire.route_state()?.name())))
            .collect()
    }

    fn want(g: &Gate, p: &str) -> Want {
        g.desired()
            .get(&p.parse::<IpNet>().expect("prefix"))
            .expect("a configured prefix")
            .clone()
    }

    #[test]
    fn global_routes_need_every_service_up() {
        let mut g = gate();
        assert!(wanted(&g).is_empty());
        assert_eq!(g.desired().len(), 3, "every prefix has a wish");
        assert!(g.set("a", Level::Up));
        assert_eq!(wanted(&g), ["192.0.2.10/32 up"]);
        assert!(g.set("b", Level::Up));
        assert_eq!(wanted(&g).len(), 3);
        assert!(g.set("a", Level::Down));
        assert_eq!(wanted(&g), ["2001:db8::/48 up"]);
    }

    #[test]
    fn global_routes_are_degraded_or_drained_if_any_service_is() {
        let mut g = gate();
        g.set("a", Level::Up);
        g.set("b", Level::Degraded);
        assert_eq!(
            wanted(&g),
            [
                "192.0.2.1/32 degraded",
                "192.0.2.10/32 up",
                "2001:db8::/48 degraded"
            ]
        );
        g.set_drained("a", true, false);
        assert_eq!(
            wanted(&g),
            [
                "192.0.2.1/32 draining",
                "192.0.2.10/32 draining",
                "2001:db8::/48 degraded"
            ]
        );
        // Down wins over drained: a failed service is withdrawn, never lingered.
        g.set("a", Level::Down);
        assert_eq!(g.state("a"), Some(ServiceState::Down));
        assert_eq!(wanted(&g), ["2001:db8::/48 degraded"]);
        assert_eq!(
            want(&g, "192.0.2.10/32").desire,
            Desire::Withdraw { forced: false }
        );
    }

    #[test]
    fn the_changed_prefixes_are_those_of_the_sources_whose_desire_changed() {
        let n = |s: &str| s.parse::<IpNet>().expect("test prefix");
        let mut g = gate();
        let d0 = g.desired();
        assert_eq!(g.desired().changed_since(&d0), Some(vec![]));
        g.set("a", Level::Up);
        // a's route; the global one stays withdrawn (b is down).
        assert_eq!(
            g.desired().changed_since(&d0),
            Some(vec![n("192.0.2.10/32")])
        );
        let d1 = g.desired();
        g.set("b", Level::Up);
        // b's route and the global one, sorted.
        assert_eq!(
            g.desired().changed_since(&d1),
            Some(vec![n("192.0.2.1/32"), n("2001:db8::/48")])
        );
        // Another config: anything may differ.
        assert_eq!(gate().desired().changed_since(&d1), None);
    }

    #[test]
    fn setting_the_same_state_is_no_change() {
        let mut g = gate();
        assert!(!g.set("a", Level::Down));
        assert!(g.set("a", Level::Up));
        assert!(!g.set("a", Level::Up));
        assert!(!g.set("nope", Level::Up), "unknown services are ignored");
        assert!(g.set_drained("a", true, false));
        assert!(!g.set_drained("a", true, false));
        assert_eq!(
            want(&g, "192.0.2.10/32").desire,
            Desire::Drain { forced: false }
        );
        assert!(g.set_drained("a", true, true));
        assert_eq!(
            want(&g, "192.0.2.10/32").desire,
            Desire::Drain { forced: true }
        );
    }

    #[test]
    fn a_failed_service_drained_with_force_is_withdrawn_past_the_guard() {
        let mut g = gate();
        g.set("b", Level::Up);
        // a is down: its route and the global one are withdrawn, guarded.
        let withdraw = |forced| Desire::Withdraw { forced };
        assert_eq!(want(&g, "192.0.2.10/32").desire, withdraw(false));
        g.set_drained("a", true, false);
        assert_eq!(want(&g, "192.0.2.10/32").desire, withdraw(false));
        g.set_drained("a", true, true);
        assert_eq!(want(&g, "192.0.2.10/32").desire, withdraw(true));
        assert_eq!(want(&g, "192.0.2.1/32").desire, withdraw(true), "global");
        // b down too, not forced: the global route is guarded again.
        g.set("b", Level::Down);
        assert_eq!(want(&g, "192.0.2.1/32").desire, withdraw(false), "global");
    }

    #[test]
    fn a_global_route_is_forced_only_when_every_drained_service_was() {
        let mut g = gate();
        g.set("a", Level::Up);
        g.set("b", Level::Up);
        g.set_drained("a", true, true);
        assert_eq!(
            want(&g, "192.0.2.1/32").desire,
            Desire::Drain { forced: true }
        );
        g.set_drained("b", true, false);
        assert_eq!(
            want(&g, "192.0.2.1/32").desire,
            Desire::Drain { forced: false }
        );
    }

    #[test]
    fn causes_name_the_services_not_up() {
        let mut g = gate();
        assert_eq!(
            want(&g, "192.0.2.1/32").cause.to_string(),
            "service a is down, service b is down"
        );
        g.set("a", Level::Up);
        g.set("b", Level::Up);
        assert_eq!(
            want(&g, "192.0.2.1/32").cause.to_string(),
            "services a, b are all up"
        );
        assert_eq!(
            want(&g, "192.0.2.10/32").cause.to_string(),
            "service a is up"
        );
        g.set_drained("b", true, false);
        assert_eq!(
            want(&g, "2001:db8::/48").cause.to_string(),
            "service b is drained"
        );
    }

    #[test]
    fn the_time_of_a_change_moves_only_with_the_state() {
        let mut g = gate();
        g.set("a", Level::Up);
        let t = g.since("a").expect("a");
        assert_ne!(t, SystemTime::UNIX_EPOCH);
        // Forced or not, drained is drained: the state does not change.
        g.set_drained("a", true, false);
        let drained = g.since("a").expect("a");
        g.set_drained("a", true, true);
        assert_eq!(g.since("a"), Some(drained));
        assert_eq!(g.since("b"), Some(SystemTime::UNIX_EPOCH));
    }
}
