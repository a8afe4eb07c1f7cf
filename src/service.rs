//! Services: rounds of checks, the rise/fall state machine, and the gate that turns the
//! services' states into the set of prefixes that should be announced.
//!
//! A service runs a round every `check_interval` (the first one at once) or earlier when
//! triggered ([`Trigger::run_now`]). All checks of a round run concurrently; the round passes
//! only if each of them passes. A service starts *down*, becomes *up* after `rise`
//! consecutive passing rounds and *down* again after `fall` consecutive failing rounds.
//! While a state is in doubt ([`Health::in_doubt`]) rounds run every `fast_interval`.
//! Only transitions reach the [`Gate`], so routes change only when a service's state does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use metrics::{Counter, Gauge};
use tokio::sync::{Notify, watch};
use tracing::{debug, info, warn};

use serde::{Deserialize, Serialize};

use crate::check::probe::CheckContext;
use crate::check::runner::{Outcome, Runner};
use crate::config::attributes::RouteState;
use crate::config::{Config, OnFailure, ServiceConfig};
use crate::metrics::{Heartbeat, Metrics, names};

/// The verdict of one round of a service's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// Every check passed.
    Pass,
    /// Only checks with `on_failure: degrade` failed.
    Degrade,
    /// A check with `on_failure: withdraw` (the default) failed.
    Fail,
}

impl Round {
    /// The verdict of a round's outcomes, each with its check's `on_failure`.
    pub fn of<'a>(outcomes: impl IntoIterator<Item = (&'a Outcome, OnFailure)>) -> Round {
        let mut round = Round::Pass;
        for (o, on_failure) in outcomes {
            match (o.passed(), on_failure) {
                (true, _) => {}
                (false, OnFailure::Withdraw) => return Round::Fail,
                (false, OnFailure::Degrade) => round = Round::Degrade,
            }
        }
        round
    }
}

/// Where a service stands, as its checks say. Each state carries only the counters that can
/// move it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "level", rename_all = "snake_case")]
pub enum Health {
    /// Down, with the number of consecutive rounds without a withdraw failure so far.
    Down { passes: u32 },
    /// Up, with the consecutive rounds with a withdraw failure (down at `fall`), and with
    /// any failure (degraded at `fall`).
    Up { fails: u32, unclean: u32 },
    /// Degraded, with the consecutive rounds with a withdraw failure (down at `fall`), and
    /// clean rounds (up at `rise`).
    Degraded { fails: u32, cleans: u32 },
}

/// A service's state as the gate sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Down,
    Degraded,
    Up,
}

impl Health {
    /// Every service starts down: nothing is announced before its checks have passed.
    pub const START: Health = Health::Down { passes: 0 };

    /// A fresh state at `level`, its counters at zero.
    pub fn at(level: Level) -> Health {
        match level {
            Level::Down => Health::START,
            Level::Up => Health::Up {
                fails: 0,
                unclean: 0,
            },
            Level::Degraded => Health::Degraded {
                fails: 0,
                cleans: 0,
            },
        }
    }

    pub fn level(self) -> Level {
        match self {
            Health::Down { .. } => Level::Down,
            Health::Up { .. } => Level::Up,
            Health::Degraded { .. } => Level::Degraded,
        }
    }

    pub fn is_up(self) -> bool {
        self.level() != Level::Down
    }

    /// `up`, `degraded` or `down`.
    pub fn level_name(&self) -> &'static str {
        match self {
            Health::Down { .. } => "down",
            Health::Up { .. } => "up",
            Health::Degraded { .. } => "degraded",
        }
    }

    /// The state after one more round. `rise` and `fall` are at least 1.
    ///
    /// A down service comes up after `rise` rounds without a withdraw failure: *up* if the
    /// last of them was clean, *degraded* if a degrade check failed in it.
    pub fn after_round(self, round: Round, rise: u32, fall: u32) -> Health {
        use Round::{Degrade, Fail, Pass};
        match (self, round) {
            (Health::Down { .. }, Fail) => Health::Down { passes: 0 },
            (Health::Down { passes }, _) if passes + 1 < rise => {
                Health::Down { passes: passes + 1 }
            }
            (Health::Down { .. }, Pass) => Health::Up {
                fails: 0,
                unclean: 0,
            },
            (Health::Down { .. }, Degrade) => Health::Degraded {
                fails: 0,
                cleans: 0,
            },

            (Health::Up { .. }, Pass) => Health::Up {
                fails: 0,
                unclean: 0,
            },
            (Health::Up { fails, .. }, Fail) if fails + 1 >= fall => Health::Down { passes: 0 },
            (Health::Up { fails, unclean }, _) => {
                let fails = if round == Fail { fails + 1 } else { 0 };
                if unclean + 1 >= fall {
                    Health::Degraded { fails, cleans: 0 }
                } else {
                    Health::Up {
                        fails,
                        unclean: unclean + 1,
                    }
                }
            }

            (Health::Degraded { fails, .. }, Fail) if fails + 1 >= fall => {
                Health::Down { passes: 0 }
            }
            (Health::Degraded { fails, .. }, Fail) => Health::Degraded {
                fails: fails + 1,
                cleans: 0,
            },
            (Health::Degraded { .. }, Degrade) => Health::Degraded {
                fails: 0,
                cleans: 0,
            },
            (Health::Degraded { cleans, .. }, Pass) if cleans + 1 >= rise => Health::Up {
                fails: 0,
                unclean: 0,
            },
            (Health::Degraded { cleans, .. }, Pass) => Health::Degraded {
                fails: 0,
                cleans: cleans + 1,
            },
        }
    }

    /// Whether the last round disagreed with the state (the state may change soon).
    pub fn in_doubt(self) -> bool {
        match self {
            Health::Down { passes } => passes > 0,
            Health::Up { fails, unclean } => fails > 0 || unclean > 0,
            Health::Degraded { fails, cleans } => fails > 0 || cleans > 0,
        }
    }
}

/// A service's state as operators see it (`/status`, `anycastd_service_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    Up,
    Degraded,
    Down,
    /// Drained by an operator, and its checks do not say down.
    Drained,
}

impl ServiceState {
    pub const ALL: [ServiceState; 4] = [
        ServiceState::Up,
        ServiceState::Degraded,
        ServiceState::Down,
        ServiceState::Drained,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ServiceState::Up => "up",
            ServiceState::Degraded => "degraded",
            ServiceState::Down => "down",
            ServiceState::Drained => "drained",
        }
    }

    /// From the checks' level and the operator's drain. A service that is down is down,
    /// drained or not: its routes are withdrawn at once, never lingered.
    pub fn of(level: Level, drained: bool) -> ServiceState {
        match (level, drained) {
            (Level::Down, _) => ServiceState::Down,
            (_, true) => ServiceState::Drained,
            (Level::Up, false) => ServiceState::Up,
            (Level::Degraded, false) => ServiceState::Degraded,
        }
    }

    /// The state its routes are announced in; `None`: withdrawn.
    pub fn route_state(self) -> Option<RouteState> {
        match self {
            ServiceState::Up => Some(RouteState::Up),
            ServiceState::Degraded => Some(RouteState::Degraded),
            ServiceState::Drained => Some(RouteState::Draining),
            ServiceState::Down => None,
        }
    }
}

/// Which prefixes are wanted, in which state, given the services' states.
///
/// A prefix of a service's `routes` follows that service's state. A prefix of
/// `announcer.routes` is down if any service is down, drained if any is drained, degraded
/// if any is degraded, up otherwise (SPEC 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    global: Vec<IpNet>,
    services: Vec<GateService>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct GateService {
    name: String,
    routes: Vec<IpNet>,
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

    /// Applies `change`, and notes the time when it changes the state.
    fn change(&mut self, change: impl FnOnce(&mut GateService)) {
        let before = self.state();
        change(self);
        if self.state() != before {
            self.since = SystemTime::now();
        }
    }
}

impl Gate {
    /// Every service down and undrained.
    pub fn new(config: &Config) -> Gate {
        Gate {
            global: config.announcer.routes.clone(),
            services: config
                .services
                .iter()
                .map(|s| GateService {
                    name: s.name.clone(),
                    routes: s.routes.clone(),
                    level: Level::Down,
                    drained: false,
                    forced: false,
                    since: SystemTime::now(),
                })
                .collect(),
        }
    }

    /// Takes over the level (and the time of the last change) of `service` from `old`, the
    /// gate before a reload.
    pub fn carry(&mut self, old: &Gate, service: &str) {
        let Some(o) = old.services.iter().find(|s| s.name == service) else {
            return;
        };
        if let Some(s) = self.service_mut(service) {
            s.level = o.level;
            s.since = o.since;
        }
    }

    /// Sets the level of `service` (and the time of its last change) to those it had before
    /// a reload removed it, for one re-added within `drain_linger`.
    pub fn resume(&mut self, service: &str, level: Level, since: SystemTime) {
        if let Some(s) = self.service_mut(service) {
            s.level = level;
            s.since = since;
        }
    }

    fn service_mut(&mut self, name: &str) -> Option<&mut GateService> {
        self.services.iter_mut().find(|s| s.name == name)
    }

    /// The checks' level of the named service.
    pub fn level(&self, service: &str) -> Option<Level> {
        self.services
            .iter()
            .find(|s| s.name == service)
            .map(|s| s.level)
    }

    /// Records a service's level; returns whether anything changed.
    pub fn set(&mut self, service: &str, level: Level) -> bool {
        match self.service_mut(service) {
            Some(s) if s.level != level => {
                s.change(|s| s.level = level);
                true
            }
            _ => false,
        }
    }

    /// Drains or undrains a service (`forced`: its routes leave past the fleet guard);
    /// returns whether anything changed.
    pub fn set_drained(&mut self, service: &str, drained: bool, forced: bool) -> bool {
        let forced = drained && forced;
        match self.service_mut(service) {
            Some(s) if s.drained != drained || s.forced != forced => {
                s.change(|s| {
                    s.drained = drained;
                    s.forced = forced;
                });
                true
            }
            _ => false,
        }
    }

    /// Whether `prefix` is drained past the fleet guard: every drained service behind it
    /// was drained with `--force`.
    pub fn drain_forced(&self, prefix: &IpNet) -> bool {
        let mut drained = self.behind(prefix).filter(|s| s.drained).peekable();
        drained.peek().is_some() && drained.all(|s| s.forced)
    }

    /// The services behind `prefix`: every service for a global route, else its own.
    fn behind(&self, prefix: &IpNet) -> impl Iterator<Item = &GateService> {
        let global = self.global.contains(prefix);
        self.services
            .iter()
            .filter(move |s| global || s.routes.contains(prefix))
    }

    /// When the named service's state last changed.
    pub fn since(&self, service: &str) -> Option<SystemTime> {
        self.services
            .iter()
            .find(|s| s.name == service)
            .map(|s| s.since)
    }

    /// The state of the named service; `None` for a service the gate does not know.
    pub fn state(&self, service: &str) -> Option<ServiceState> {
        self.services
            .iter()
            .find(|s| s.name == service)
            .map(GateService::state)
    }

    /// Every service's name and state, in config order.
    pub fn states(&self) -> impl Iterator<Item = (&str, ServiceState)> {
        self.services.iter().map(|s| (s.name.as_str(), s.state()))
    }

    /// The state of the global routes.
    fn global_state(&self) -> Option<RouteState> {
        let states: Vec<ServiceState> = self.services.iter().map(GateService::state).collect();
        if states.is_empty() || states.contains(&ServiceState::Down) {
            None
        } else if states.contains(&ServiceState::Drained) {
            Some(RouteState::Draining)
        } else if states.contains(&ServiceState::Degraded) {
            Some(RouteState::Degraded)
        } else {
            Some(RouteState::Up)
        }
    }

    /// The prefixes to announce, each with the state whose attributes it carries.
    pub fn wanted(&self) -> BTreeMap<IpNet, RouteState> {
        let mut w = BTreeMap::new();
        if let Some(state) = self.global_state() {
            w.extend(self.global.iter().map(|p| (*p, state)));
        }
        for s in &self.services {
            if let Some(state) = s.state().route_state() {
                w.extend(s.routes.iter().map(|p| (*p, state)));
            }
        }
        w
    }

    /// The services that gate `prefix`: every service for a global route, else its own.
    pub fn gating(&self, prefix: &IpNet) -> Vec<&str> {
        self.behind(prefix).map(|s| s.name.as_str()).collect()
    }

    /// Why `prefix` is in its state, for logs: the services behind it that are not up.
    pub fn explain(&self, prefix: &IpNet) -> String {
        let gating: Vec<&GateService> = self.behind(prefix).collect();
        if gating.is_empty() {
            return "not gated by any service".to_string();
        }
        let not_up: Vec<String> = gating
            .iter()
            .filter(|s| s.state() != ServiceState::Up)
            .map(|s| format!("service {} is {}", s.name, s.state().name()))
            .collect();
        if !not_up.is_empty() {
            return not_up.join(", ");
        }
        match gating.as_slice() {
            [one] => format!("service {} is up", one.name),
            _ => {
                let names: Vec<&str> = gating.iter().map(|s| s.name.as_str()).collect();
                format!("services {} are all up", names.join(", "))
            }
        }
    }
}

/// `anycastd_service_state{service,state}` of every service the gate knows (1 for its state,
/// 0 for the three others) and `anycastd_service_last_transition_timestamp_seconds`.
/// Rendered at scrape time, so that a service a reload removed has no series left.
pub fn render_service_states(gate: &Gate) -> String {
    use std::fmt::Write;
    let n = names::SERVICE_STATE;
    let t = names::SERVICE_LAST_TRANSITION;
    let mut s = format!("# HELP {n} {}\n# TYPE {n} gauge\n", names::help(n));
    for g in &gate.services {
        let service = crate::metrics::escape_label(&g.name);
        let state = g.state();
        for candidate in ServiceState::ALL {
            let _ = writeln!(
                s,
                "{n}{{service=\"{service}\",state=\"{}\"}} {}",
                candidate.name(),
                u8::from(candidate == state)
            );
        }
    }
    let _ = write!(s, "# HELP {t} {}\n# TYPE {t} gauge\n", names::help(t));
    for g in &gate.services {
        let at = g
            .since
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let _ = writeln!(
            s,
            "{t}{{service=\"{}\"}} {at:.3}",
            crate::metrics::escape_label(&g.name)
        );
    }
    s
}

/// Asks a service to run its next round now rather than at its next tick.
#[derive(Clone, Default)]
pub struct Trigger(Arc<Notify>);

impl Trigger {
    pub fn run_now(&self) {
        self.0.notify_one();
    }

    /// Whether a trigger came since the loop last waited, and forgets it.
    fn take_pending(&self) -> bool {
        use futures_util::FutureExt;
        self.0.notified().now_or_never().is_some()
    }
}

/// What the service loop reports after each round, for status views.
#[derive(Debug, Clone)]
pub struct RoundReport {
    pub health: Health,
    pub at: SystemTime,
    pub checks: Vec<(String, Outcome)>,
}

/// One service, ready to run.
pub struct Service {
    pub name: String,
    /// The state the service starts in (down, or what it was before a reload changed it).
    start: Health,
    interval: Duration,
    fast_interval: Duration,
    rise: u32,
    fall: u32,
    checks: Vec<Runner>,
    /// What each check's failure does, in the order of `checks`.
    on_failure: Vec<OnFailure>,
    trigger: Trigger,
    metrics: Metrics,
}

impl Service {
    /// Builds the probers of a service's checks; the service starts in `start` (a new
    /// service starts [`Health::START`], down; one changed by a reload keeps its level,
    /// with its counters starting over).
    pub fn new(cfg: &ServiceConfig, metrics: &Metrics, start: Health) -> Result<Service, String> {
        let mut checks = Vec::with_capacity(cfg.checks.len());
        for (i, c) in cfg.checks.iter().enumerate() {
            let ctx = CheckContext {
                service: cfg.name.clone(),
                check: c.name.clone(),
                metrics: metrics.clone(),
            };
            let prober = crate::check::build(&c.spec, &ctx)
                .map_err(|e| format!("service {} check {} (checks[{i}]): {e}", cfg.name, c.name))?;
            checks.push(Runner::new(
                c.name.clone(),
                c.kind(),
                c.spec.attempts(),
                prober,
            ));
        }
        Ok(Service {
            name: cfg.name.clone(),
            start,
            interval: cfg.check_interval.0,
            fast_interval: cfg.fast_interval(),
            rise: cfg.rise,
            fall: cfg.fall,
            checks,
            on_failure: cfg.checks.iter().map(|c| c.on_failure).collect(),
            trigger: Trigger::default(),
            metrics: metrics.clone(),
        })
    }

    pub fn trigger(&self) -> Trigger {
        self.trigger.clone()
    }

    /// The time from the start of a round to the start of the next, after a round that left
    /// the service in `health`.
    pub fn pace(&self, health: Health) -> Duration {
        if health.in_doubt() {
            self.fast_interval
        } else {
            self.interval
        }
    }

    /// Runs all checks once, concurrently.
    pub async fn round(&self) -> Vec<Outcome> {
        futures_util::future::join_all(self.checks.iter().map(Runner::run)).await
    }

    /// Runs rounds forever, publishing transitions to `gate` and each round to `reports`.
    pub async fn run(
        self,
        gate: watch::Sender<Gate>,
        reports: watch::Sender<Option<RoundReport>>,
        heartbeat: Heartbeat,
    ) {
        let series = Series::new(&self);
        series.up.set(if self.start.is_up() { 1.0 } else { 0.0 });
        let mut health = self.start;
        let mut last_passed: Vec<Option<bool>> = vec![None; self.checks.len()];
        // The first round at once; each next one `pace` after the start of the one before,
        // or at once when triggered. Triggers during a round are merged into it (one crash
        // seen by several watches, or a tcp watch's close and then its failed reconnect):
        // the round they ask for comes `fast_interval` after this one's start, so that one
        // crash counts once toward `fall`.
        let mut due = tokio::time::Instant::now();
        // The start of the last round, when it failed (or degraded).
        let mut failed_at: Option<tokio::time::Instant> = None;
        loop {
            // A trigger runs a round at once, except right after a failing round: that one
            // has seen the failure, and a later event of the same crash (a tcp watch's reset
            // 31 us after the round ended, issue 20) must not count it again toward `fall`.
            // Then the trigger brings the next round to `fast_interval` after its start.
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => break,
                    _ = self.trigger.0.notified() => match failed_at {
                        Some(at) => due = due.min(at + self.fast_interval),
                        None => break,
                    },
                }
            }
            let started = tokio::time::Instant::now();
            heartbeat.beat();
            let outcomes = self.round().await;
            heartbeat.beat();
            self.record_checks(&series, &outcomes, &mut last_passed);
            let round = Round::of(outcomes.iter().zip(self.on_failure.iter().copied()));
            let next = health.after_round(round, self.rise, self.fall);
            if next.level() != health.level() {
                self.transition(&series, next, &outcomes);
                gate.send_if_modified(|g| g.set(&self.name, next.level()));
            }
            health = next;
            failed_at = (round != Round::Pass).then_some(started);
            due = started + self.pace(health);
            if self.trigger.take_pending() {
                due = due.min(started + self.fast_interval);
            }
            let checks = self
                .checks
                .iter()
                .map(|r| r.name.clone())
                .zip(outcomes)
                .collect();
            reports.send_replace(Some(RoundReport {
                health,
                at: SystemTime::now(),
                checks,
            }));
        }
    }

    /// Sets each check's series, and logs each check whose result changed.
    fn record_checks(&self, series: &Series, outcomes: &[Outcome], last: &mut [Option<bool>]) {
        let svc = self.name.as_str();
        for (i, (runner, o)) in self.checks.iter().zip(outcomes).enumerate() {
            let (up, dur) = &series.checks[i];
            up.set(if o.passed() { 1.0 } else { 0.0 });
            dur.set(o.duration.as_secs_f64());
            let changed = last[i] != Some(o.passed());
            last[i] = Some(o.passed());
            match (&o.result, changed) {
                (Err(e), true) => {
                    warn!(service = %svc, check = %runner.name, kind = %runner.kind, on_failure = %self.on_failure[i], error = e.0.as_str(), "check failed")
                }
                (Err(e), false) => {
                    debug!(service = %svc, check = %runner.name, error = e.0.as_str(), "check still failing")
                }
                (Ok(()), true) => {
                    info!(service = %svc, check = %runner.name, kind = %runner.kind, "check passed")
                }
                (Ok(()), false) => debug!(service = %svc, check = %runner.name, "check passed"),
            }
        }
    }

    /// Counts and logs a change of level.
    fn transition(&self, series: &Series, next: Health, outcomes: &[Outcome]) {
        let svc = self.name.as_str();
        series.transitions.increment(1);
        series.up.set(if next.is_up() { 1.0 } else { 0.0 });
        let failing = || -> String {
            self.checks
                .iter()
                .zip(outcomes)
                .filter_map(|(r, o)| o.result.as_ref().err().map(|e| format!("{}: {e}", r.name)))
                .collect::<Vec<_>>()
                .join("; ")
        };
        match next.level() {
            Level::Up => warn!(service = %svc, rise = self.rise, "service is up"),
            Level::Degraded => {
                warn!(service = %svc, fall = self.fall, failing = failing().as_str(), "service is degraded")
            }
            Level::Down => {
                warn!(service = %svc, fall = self.fall, failing = failing().as_str(), "service is down")
            }
        }
    }
}

/// The series a service loop sets.
struct Series {
    up: Gauge,
    transitions: Counter,
    /// `check_up` and `check_duration_seconds` of each check.
    checks: Vec<(Gauge, Gauge)>,
}

impl Series {
    fn new(s: &Service) -> Series {
        let svc = s.name.as_str();
        let m = &s.metrics;
        let up = m.gauge(names::SERVICE_UP, &[("service", svc)]);
        up.set(0.0);
        Series {
            up,
            transitions: m.counter(names::SERVICE_TRANSITIONS, &[("service", svc)]),
            checks: s
                .checks
                .iter()
                .map(|c| {
                    let labels = [("service", svc), ("check", c.name.as_str())];
                    (
                        m.gauge(names::CHECK_UP, &labels),
                        m.gauge(names::CHECK_DURATION, &labels),
                    )
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Round::{Degrade as D, Fail as F, Pass as P};
    use proptest::prelude::*;

    fn levels(rounds: &[Round], rise: u32, fall: u32) -> Vec<Level> {
        let mut h = Health::START;
        rounds
            .iter()
            .map(|r| {
                h = h.after_round(*r, rise, fall);
                h.level()
            })
            .collect()
    }

    fn ups(rounds: &[Round], rise: u32, fall: u32) -> Vec<bool> {
        levels(rounds, rise, fall)
            .into_iter()
            .map(|l| l != Level::Down)
            .collect()
    }

    #[test]
    fn starts_down() {
        assert!(!Health::START.is_up());
    }

    #[test]
    fn rise_and_fall_of_one_follow_each_round() {
        assert_eq!(
            ups(&[P, F, P, P, F], 1, 1),
            [true, false, true, true, false]
        );
    }

    #[test]
    fn rise_needs_consecutive_passes() {
        // A failure in between restarts the count.
        assert_eq!(
            ups(&[P, P, F, P, P, P], 3, 1),
            [false, false, false, false, false, true]
        );
    }

    #[test]
    fn fall_needs_consecutive_failures() {
        assert_eq!(
            ups(&[P, F, P, F, F, F], 1, 3),
            [true, true, true, true, true, false]
        );
    }

    #[test]
    fn degrade_checks_degrade_after_fall_and_recover_after_rise() {
        use Level::{Degraded as G, Down as N, Up as U};
        assert_eq!(
            levels(&[P, P, D, D, P, P, F, F], 2, 2),
            [N, U, U, G, G, U, U, N]
        );
        // A service that comes up while a degrade check fails comes up degraded.
        assert_eq!(levels(&[D], 1, 1), [G]);
        // A withdraw failure takes a degraded service down after fall, like an up one.
        assert_eq!(levels(&[P, D, F], 1, 1), [U, G, N]);
    }

    #[test]
    fn doubt_is_a_round_against_the_state() {
        let up = Health::START.after_round(P, 1, 3);
        assert!(!up.in_doubt());
        assert!(up.after_round(F, 1, 3).in_doubt());
        assert!(Health::START.after_round(P, 3, 1).in_doubt());
        assert!(!Health::START.after_round(F, 3, 1).in_doubt());
    }

    /// An independent definition: the level after each round from the lengths of the runs
    /// of rounds that end there (SPEC 9), not from counters.
    fn oracle(rounds: &[Round], rise: u32, fall: u32) -> Vec<Level> {
        let run = |i: usize, pred: &dyn Fn(Round) -> bool| -> u32 {
            rounds[..=i].iter().rev().take_while(|r| pred(**r)).count() as u32
        };
        let mut level = Level::Down;
        let mut out = Vec::new();
        for (i, round) in rounds.iter().enumerate() {
            let not_fail = run(i, &|r| r != F);
            let fails = run(i, &|r| r == F);
            let unclean = run(i, &|r| r != P);
            let cleans = run(i, &|r| r == P);
            level = match level {
                Level::Down if not_fail >= rise => {
                    if *round == P {
                        Level::Up
                    } else {
                        Level::Degraded
                    }
                }
                Level::Down => Level::Down,
                _ if fails >= fall => Level::Down,
                Level::Up if unclean >= fall => Level::Degraded,
                Level::Degraded if cleans >= rise => Level::Up,
                l => l,
            };
            out.push(level);
        }
        out
    }

    proptest! {
        #[test]
        fn state_machine_matches_run_length_definition(
            rounds in proptest::collection::vec(prop_oneof![Just(P), Just(D), Just(F)], 0..64),
            rise in 1u32..5,
            fall in 1u32..5,
        ) {
            prop_assert_eq!(levels(&rounds, rise, fall), oracle(&rounds, rise, fall));
        }
    }

    #[test]
    fn a_round_fails_on_a_withdraw_check_and_degrades_on_a_degrade_check() {
        let ok = Outcome {
            result: Ok(()),
            duration: Duration::ZERO,
            attempts: 1,
        };
        let bad = Outcome {
            result: Err(crate::check::probe::Failure::new("x")),
            ..ok.clone()
        };
        let w = OnFailure::Withdraw;
        let d = OnFailure::Degrade;
        assert_eq!(Round::of([(&ok, w), (&ok, d)]), P);
        assert_eq!(Round::of([(&ok, w), (&bad, d)]), D);
        assert_eq!(Round::of([(&bad, d), (&bad, w)]), F);
    }

    fn gate() -> Gate {
        let n = |s: &str| s.parse::<IpNet>().expect("test prefix");
        let svc = |name: &str, routes: Vec<IpNet>| GateService {
            name: name.into(),
            routes,
            level: Level::Down,
            drained: false,
            forced: false,
            since: SystemTime::UNIX_EPOCH,
        };
        Gate {
            global: vec![n("192.0.2.1/32")],
            services: vec![
                svc("a", vec![n("192.0.2.10/32")]),
                svc("b", vec![n("2001:db8::/48")]),
            ],
        }
    }

    fn wanted(g: &Gate) -> Vec<String> {
        g.wanted()
            .iter()
            .map(|(p, s)| format!("{p} {}", s.name()))
            .collect()
    }

    #[test]
    fn global_routes_need_every_service_up() {
        let mut g = gate();
        assert!(g.wanted().is_empty());
        assert!(g.set("a", Level::Up));
        assert_eq!(wanted(&g), ["192.0.2.10/32 up"]);
        assert!(g.set("b", Level::Up));
        assert_eq!(g.wanted().len(), 3);
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
        assert!(!g.drain_forced(&"192.0.2.10/32".parse().expect("prefix")));
        assert!(g.set_drained("a", true, true));
        assert!(g.drain_forced(&"192.0.2.10/32".parse().expect("prefix")));
    }

    #[test]
    fn service_state_series_say_one_state_each() {
        let mut g = gate();
        g.set("a", Level::Degraded);
        let text = render_service_states(&g);
        assert!(text.contains("anycastd_service_state{service=\"a\",state=\"degraded\"} 1"));
        assert!(text.contains("anycastd_service_state{service=\"a\",state=\"up\"} 0"));
        assert!(text.contains("anycastd_service_state{service=\"b\",state=\"down\"} 1"));
        assert_eq!(text.matches("\"} 1\n").count(), 2, "{text}");
        // a changed at its set; b never did since the gate was made.
        assert!(
            text.contains(
                "anycastd_service_last_transition_timestamp_seconds{service=\"b\"} 0.000"
            )
        );
        assert!(
            !text.contains(
                "anycastd_service_last_transition_timestamp_seconds{service=\"a\"} 0.000"
            )
        );
    }
}
