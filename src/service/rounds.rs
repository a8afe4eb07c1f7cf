//! A service's loop of rounds: every `check_interval` (the first at once), every
//! `fast_interval` while its state is in doubt, and at once when triggered ([`Trigger`]).
//! All checks of a round run concurrently; the round passes only if each of them passes.
//! Only transitions reach the [`Gate`], so routes change only when a service's state does.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::priority::NOTICE;
use metrics::{Counter, Gauge};
use tokio::sync::{Notify, watch};
use tracing::{debug, info, warn};

use super::gate::Gate;
use super::health::{Health, Level, Round};
use crate::check::probe::CheckContext;
use crate::check::runner::{Outcome, Runner};
use crate::config::ServiceConfig;
use crate::config::checks::OnFailure;
use crate::metrics::{Heartbeat, Metrics, names};

/// A check of a service whose prober cannot be built (a TLS client, a socket).
#[derive(Debug, thiserror::Error)]
#[error("service {service} check {check} (checks[{index}]): {reason}")]
pub struct BuildError {
    pub service: String,
    pub check: String,
    pub index: usize,
    pub reason: String,
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
    pub fn new(
        cfg: &ServiceConfig,
        metrics: &Metrics,
        start: Health,
    ) -> Result<Service, BuildError> {
        let mut checks = Vec::with_capacity(cfg.checks.len());
        for (i, c) in cfg.checks.iter().enumerate() {
            let ctx = CheckContext {
                service: cfg.name.clone(),
                check: c.name.clone(),
                metrics: metrics.clone(),
            };
            let prober = crate::check::build(&c.spec, &ctx).map_err(|reason| BuildError {
                service: cfg.name.clone(),
                check: c.name.clone(),
                index: i,
                reason,
            })?;
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
            // A trigger runs a round at once, except right after a failing round of a
            // service still up: that round has seen the failure, and a later event of the
            // same crash (a tcp watch's reset 31 us after the round ended, issue 20) must not
            // count it again toward `fall`. Then the trigger brings the next round to
            // `fast_interval` after its start.
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
            // Only while a fall is being counted: a down service has nothing to count
            // twice, and an event then (the service back) starts a round at once.
            failed_at = (round != Round::Pass && health.is_up()).then_some(started);
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
            if !o.passed() {
                series.failures[i].increment(1);
            }
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
                    info!(service = %svc, check = %runner.name, kind = %runner.kind, duration = ?o.duration, "check passed")
                }
                (Ok(()), false) => {
                    debug!(service = %svc, check = %runner.name, duration = ?o.duration, "check passed")
                }
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
            Level::Up => warn!(target: NOTICE, service = %svc, rise = self.rise, "service is up"),
            Level::Degraded => {
                warn!(target: NOTICE, service = %svc, fall = self.fall, failing = failing().as_str(), "service is degraded")
            }
            Level::Down => {
                warn!(target: NOTICE, service = %svc, fall = self.fall, failing = failing().as_str(), "service is down")
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
    /// `check_failures_total` of each check.
    failures: Vec<Counter>,
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
            failures: s
                .checks
                .iter()
                .map(|c| {
                    m.counter(
                        names::CHECK_FAILURES,
                        &[("service", svc), ("check", c.name.as_str())],
                    )
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::probe::{AttemptFuture, Check, Failure};
    use crate::config::checks::attempts::Attempts;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A check that passes while its flag says so.
    struct Switch(Arc<AtomicBool>);

    impl Check for Switch {
        fn attempt(&self) -> AttemptFuture<'_> {
            let pass = self.0.load(Ordering::SeqCst);
            Box::pin(async move {
                if pass {
                    Ok(())
                } else {
                    Err(Failure::new("switched off"))
                }
            })
        }
    }

    fn service(pass: &Arc<AtomicBool>, fall: u32) -> Service {
        let attempts = Attempts {
            tries: 1,
            interval: Duration::ZERO,
            timeout: Duration::from_secs(1),
        };
        Service {
            name: "web".into(),
            start: Health::START,
            interval: Duration::from_secs(10),
            fast_interval: Duration::from_secs(1),
            rise: 1,
            fall,
            checks: vec![Runner::new(
                "switch".into(),
                "test",
                attempts,
                Box::new(Switch(pass.clone())),
            )],
            on_failure: vec![OnFailure::Withdraw],
            trigger: Trigger::default(),
            metrics: Metrics::new(),
        }
    }

    /// Issue 20: a failing round ended, and 31 us later the tcp watch's reset of the same
    /// crash started another at once, which met `fall: 2` in 7 to 13 ms. While an up service
    /// counts toward `fall`, a trigger right after a failing round brings the next round to
    /// `fast_interval` after that round's start; once it is down, a trigger (its target
    /// back) runs one at once.
    #[tokio::test(start_paused = true)]
    async fn one_crash_counts_once_toward_fall() {
        let pass = Arc::new(AtomicBool::new(true));
        let svc = service(&pass, 2);
        let trigger = svc.trigger();
        let text = "announcer:\n  router_id: 10.0.0.1\n  local_address: 10.0.0.1\n  local_asn: 65001\nservices:\n  - name: web\n    check_interval: 10s\n    checks: [{kind: assigned_address, spec: {ipv4: 127.0.0.1}}]\n";
        let cfg = crate::config::parse(text, crate::config::Format::Yaml).expect("config");
        let (gate, _) = watch::channel(Gate::new(&cfg));
        let (reports, mut rx) = watch::channel(None);
        let heartbeat =
            crate::metrics::Liveness::default().register("web", Duration::from_secs(3600));
        tokio::spawn(svc.run(gate, reports, heartbeat));
        let t0 = tokio::time::Instant::now();
        let mut next = async || {
            rx.changed().await.expect("rounds");
            let h = rx.borrow().as_ref().expect("a report").health;
            (t0.elapsed(), h)
        };
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert_eq!(next().await.0, s(0));
        // The crash: seen by a watch at 3 s, which runs a failing round at once...
        tokio::time::sleep(s(3)).await;
        pass.store(false, Ordering::SeqCst);
        trigger.run_now();
        let (t, h) = next().await;
        assert_eq!((t, h.level()), (s(3), Level::Up));
        // ...and by a second watch right after: merged into the round at 3 s + 1 s.
        tokio::time::sleep(ms(1)).await;
        trigger.run_now();
        let (t, h) = next().await;
        assert_eq!((t, h.level()), (s(4), Level::Down));
        // Down: the target back, seen by a watch, runs a round at once.
        tokio::time::sleep(ms(1)).await;
        pass.store(true, Ordering::SeqCst);
        trigger.run_now();
        let (t, h) = next().await;
        assert_eq!((t, h.level()), (s(4) + ms(1), Level::Up));
    }
}
