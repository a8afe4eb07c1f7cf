//! Services: rounds of checks, the rise/fall state machine, and the gate that turns the
//! services' states into the set of prefixes that should be announced.
//!
//! A service runs a round every `check_interval` (the first one at once) or earlier when
//! triggered ([`Trigger::run_now`]). All checks of a round run concurrently; the round passes
//! only if each of them passes. A service starts *down*, becomes *up* after `rise`
//! consecutive passing rounds and *down* again after `fall` consecutive failing rounds.
//! While a state is in doubt ([`Health::in_doubt`]) rounds run every `fast_interval`.
//! Only transitions reach the [`Gate`], so routes change only when a service's state does.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ipnet::IpNet;
use tokio::sync::{Notify, watch};
use tracing::{debug, info, warn};

use crate::check::{CheckContext, Outcome, Runner};
use crate::config::{Config, ServiceConfig};
use crate::metrics::{Heartbeat, Metrics, names};

/// Where a service stands. Each state carries only the counter that can move it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Down, with the number of consecutive passing rounds so far.
    Down { passes: u32 },
    /// Up, with the number of consecutive failing rounds so far.
    Up { fails: u32 },
}

impl Health {
    /// Every service starts down: nothing is announced before its checks have passed.
    pub const START: Health = Health::Down { passes: 0 };

    pub fn is_up(self) -> bool {
        matches!(self, Health::Up { .. })
    }

    /// Whether the last rounds disagree with the state (a failing round while up, a
    /// passing round while down): the next rounds then run at `fast_interval`.
    pub fn in_doubt(self) -> bool {
        match self {
            Health::Down { passes } => passes > 0,
            Health::Up { fails } => fails > 0,
        }
    }

    /// The state after one more round. `rise` and `fall` are at least 1.
    pub fn after_round(self, passed: bool, rise: u32, fall: u32) -> Health {
        match (self, passed) {
            (Health::Down { passes }, true) if passes + 1 >= rise => Health::Up { fails: 0 },
            (Health::Down { passes }, true) => Health::Down { passes: passes + 1 },
            (Health::Down { .. }, false) => Health::Down { passes: 0 },
            (Health::Up { .. }, true) => Health::Up { fails: 0 },
            (Health::Up { fails }, false) if fails + 1 >= fall => Health::Down { passes: 0 },
            (Health::Up { fails }, false) => Health::Up { fails: fails + 1 },
        }
    }
}

/// Which prefixes are wanted, given which services are up.
///
/// A prefix of `announcer.routes` is wanted iff every service is up; a prefix of a
/// service's `routes` iff that service is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    names: Vec<String>,
    global: Vec<IpNet>,
    per_service: Vec<Vec<IpNet>>,
    up: Vec<bool>,
}

impl Gate {
    pub fn new(config: &Config) -> Gate {
        Gate {
            names: config.services.iter().map(|s| s.name.clone()).collect(),
            global: config.announcer.routes.clone(),
            per_service: config.services.iter().map(|s| s.routes.clone()).collect(),
            up: vec![false; config.services.len()],
        }
    }

    /// Records a service's state; returns whether anything changed.
    pub fn set(&mut self, service: usize, up: bool) -> bool {
        match self.up.get_mut(service) {
            Some(u) if *u != up => {
                *u = up;
                true
            }
            _ => false,
        }
    }

    pub fn wanted(&self) -> BTreeSet<IpNet> {
        let mut w = BTreeSet::new();
        if !self.up.is_empty() && self.up.iter().all(|u| *u) {
            w.extend(self.global.iter().copied());
        }
        for (routes, up) in self.per_service.iter().zip(&self.up) {
            if *up {
                w.extend(routes.iter().copied());
            }
        }
        w
    }

    /// Why `prefix` is or is not wanted, for logs: the services that gate it and which of
    /// them are down.
    pub fn explain(&self, prefix: &IpNet) -> String {
        let gating: Vec<usize> = if self.global.contains(prefix) {
            (0..self.up.len()).collect()
        } else {
            (0..self.up.len())
                .filter(|i| self.per_service[*i].contains(prefix))
                .collect()
        };
        let down: Vec<&str> = gating
            .iter()
            .filter(|i| !self.up[**i])
            .map(|i| self.names[*i].as_str())
            .collect();
        let all: Vec<&str> = gating.iter().map(|i| self.names[*i].as_str()).collect();
        match (all.len(), down.is_empty()) {
            (0, _) => "not gated by any service".to_string(),
            (1, true) => format!("service {} is up", all[0]),
            (_, true) => format!("services {} are all up", all.join(", ")),
            (_, false) => format!("service {} down", down.join(", ")),
        }
    }
}

/// Asks a service to run its next round now rather than at its next tick.
#[derive(Clone, Default)]
pub struct Trigger(Arc<Notify>);

impl Trigger {
    pub fn run_now(&self) {
        self.0.notify_one();
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
    pub index: usize,
    pub name: String,
    interval: Duration,
    fast_interval: Duration,
    rise: u32,
    fall: u32,
    checks: Vec<Runner>,
    trigger: Trigger,
    metrics: Metrics,
}

impl Service {
    /// Builds the probers of a service's checks.
    pub fn new(index: usize, cfg: &ServiceConfig, metrics: &Metrics) -> Result<Service, String> {
        let mut checks = Vec::with_capacity(cfg.checks.len());
        for (i, c) in cfg.checks.iter().enumerate() {
            let ctx = CheckContext {
                service: cfg.name.clone(),
                check: c.name.clone(),
                metrics: metrics.clone(),
            };
            let prober = c.spec.build(&ctx).map_err(|e| {
                format!(
                    "services[{index}].checks[{i}] ({}/{}): {e}",
                    cfg.name, c.name
                )
            })?;
            checks.push(Runner::new(
                c.name.clone(),
                c.kind(),
                c.spec.attempts(),
                prober,
            ));
        }
        Ok(Service {
            index,
            name: cfg.name.clone(),
            interval: cfg.check_interval.0,
            fast_interval: cfg.fast_interval(),
            rise: cfg.rise,
            fall: cfg.fall,
            checks,
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
        let svc = self.name.as_str();
        let m = &self.metrics;
        let up_gauge = m.gauge(names::SERVICE_UP, &[("service", svc)]);
        up_gauge.set(0.0);
        let per_check: Vec<_> = self
            .checks
            .iter()
            .map(|c| {
                let labels = [("service", svc), ("check", c.name.as_str())];
                (
                    m.gauge(names::CHECK_UP, &labels),
                    m.gauge(names::CHECK_DURATION, &labels),
                )
            })
            .collect();
        let transitions = m.counter(names::SERVICE_TRANSITIONS, &[("service", svc)]);

        let mut health = Health::START;
        let mut last_passed: Vec<Option<bool>> = vec![None; self.checks.len()];
        // The first round at once; each next one `pace` after the start of the one before,
        // or at once when triggered (a trigger during a round: right after it).
        let mut due = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = self.trigger.0.notified() => {}
            }
            let started = tokio::time::Instant::now();
            heartbeat.beat();
            let outcomes = self.round().await;
            heartbeat.beat();
            let passed = outcomes.iter().all(Outcome::passed);
            for (i, (runner, o)) in self.checks.iter().zip(&outcomes).enumerate() {
                let (up, dur) = &per_check[i];
                up.set(if o.passed() { 1.0 } else { 0.0 });
                dur.set(o.duration.as_secs_f64());
                let changed = last_passed[i] != Some(o.passed());
                last_passed[i] = Some(o.passed());
                match (&o.result, changed) {
                    (Err(e), true) => {
                        warn!(service = svc, check = %runner.name, kind = runner.kind, error = %e, "check failed")
                    }
                    (Err(e), false) => {
                        debug!(service = svc, check = %runner.name, error = %e, "check still failing")
                    }
                    (Ok(()), true) => {
                        info!(service = svc, check = %runner.name, kind = runner.kind, "check passed")
                    }
                    (Ok(()), false) => debug!(service = svc, check = %runner.name, "check passed"),
                }
            }
            let next = health.after_round(passed, self.rise, self.fall);
            if next.is_up() != health.is_up() {
                transitions.increment(1);
                up_gauge.set(if next.is_up() { 1.0 } else { 0.0 });
                if next.is_up() {
                    warn!(service = svc, rise = self.rise, "service is up");
                } else {
                    let failing: Vec<String> = self
                        .checks
                        .iter()
                        .zip(&outcomes)
                        .filter_map(|(r, o)| {
                            o.result.as_ref().err().map(|e| format!("{}: {e}", r.name))
                        })
                        .collect();
                    warn!(service = svc, fall = self.fall, failing = %failing.join("; "), "service is down");
                }
                gate.send_if_modified(|g| g.set(self.index, next.is_up()));
            }
            health = next;
            due = started + self.pace(health);
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(rounds: &[bool], rise: u32, fall: u32) -> Vec<bool> {
        let mut h = Health::START;
        rounds
            .iter()
            .map(|p| {
                h = h.after_round(*p, rise, fall);
                h.is_up()
            })
            .collect()
    }

    #[test]
    fn starts_down() {
        assert!(!Health::START.is_up());
        assert!(!Health::START.in_doubt());
    }

    #[test]
    fn in_doubt_while_the_rounds_disagree_with_the_state() {
        // rise 2, fall 3: pass (doubt), pass (up), fail, fail (doubt), pass (agrees again),
        // fail, fail (doubt), fail (down: agrees).
        let mut h = Health::START;
        let mut doubts = Vec::new();
        for p in [true, true, false, false, true, false, false, false] {
            h = h.after_round(p, 2, 3);
            doubts.push(h.in_doubt());
        }
        assert_eq!(doubts, [true, false, true, true, false, true, true, false]);
        // With rise and fall 1 a state is never in doubt: each round decides.
        assert!(!Health::START.after_round(true, 1, 1).in_doubt());
        assert!(!Health::Up { fails: 0 }.after_round(false, 1, 1).in_doubt());
    }

    #[test]
    fn rise_and_fall_of_one_follow_each_round() {
        assert_eq!(
            run(&[true, false, true, true, false], 1, 1),
            [true, false, true, true, false]
        );
    }

    #[test]
    fn rise_needs_consecutive_passes() {
        // A failure in between restarts the count.
        assert_eq!(
            run(&[true, true, false, true, true, true], 3, 1),
            [false, false, false, false, false, true]
        );
    }

    #[test]
    fn fall_needs_consecutive_failures() {
        assert_eq!(
            run(&[true, false, true, false, false, false], 1, 3),
            [true, true, true, true, true, false]
        );
    }

    fn oracle(rounds: &[bool], rise: u32, fall: u32) -> Vec<bool> {
        // Independent definition: up iff the last transition-worthy run says so.
        let mut up = false;
        let mut out = Vec::new();
        for i in 0..rounds.len() {
            let run_len = rounds[..=i]
                .iter()
                .rev()
                .take_while(|p| **p == rounds[i])
                .count() as u32;
            if rounds[i] && run_len >= rise {
                up = true;
            }
            if !rounds[i] && run_len >= fall {
                up = false;
            }
            out.push(up);
        }
        out
    }

    proptest! {
        #[test]
        fn state_machine_matches_run_length_definition(
            rounds in proptest::collection::vec(any::<bool>(), 0..64),
            rise in 1u32..5,
            fall in 1u32..5,
        ) {
            prop_assert_eq!(run(&rounds, rise, fall), oracle(&rounds, rise, fall));
        }
    }

    fn gate() -> Gate {
        let n = |s: &str| s.parse::<IpNet>().expect("test prefix");
        Gate {
            names: vec!["a".into(), "b".into()],
            global: vec![n("192.0.2.1/32")],
            per_service: vec![vec![n("192.0.2.10/32")], vec![n("2001:db8::/48")]],
            up: vec![false, false],
        }
    }

    #[test]
    fn global_routes_need_every_service_up() {
        let mut g = gate();
        assert!(g.wanted().is_empty());
        assert!(g.set(0, true));
        assert_eq!(
            g.wanted()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["192.0.2.10/32"]
        );
        assert!(g.set(1, true));
        assert_eq!(g.wanted().len(), 3);
        assert!(g.set(0, false));
        assert_eq!(
            g.wanted()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["2001:db8::/48"]
        );
    }

    #[test]
    fn setting_the_same_state_is_no_change() {
        let mut g = gate();
        assert!(!g.set(0, false));
        assert!(g.set(0, true));
        assert!(!g.set(0, true));
        assert!(!g.set(7, true), "unknown services are ignored");
    }
}
