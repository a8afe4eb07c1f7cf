//! When a service's rounds run: every `check_interval` from the first (at once), every
//! `fast_interval` while the state is in doubt, and at once when triggered. The service
//! runs its real loop with a real check (`assigned_address` on 127.0.0.1) on tokio's paused
//! clock, so the times are exact.

pub mod common {
    pub mod config;
}

use std::time::Duration;

use anycastd::config::{self, Format};
use anycastd::metrics::{Liveness, Metrics};
use anycastd::service::gate::Gate;
use anycastd::service::health::Health;
use anycastd::service::rounds::{RoundReport, Service, Trigger};
use common::config::{ServiceBuilder, check, service};
use tokio::sync::watch;
use tokio::time::Instant;

/// Up, with no failing round and no unclean pass counted.
const UP: Health = Health::Up {
    fails: 0,
    unclean: 0,
};

/// A config with `service` alone, parsed and validated.
fn config(service: ServiceBuilder) -> anycastd::config::Config {
    let text = common::config::config("10.0.0.1", "10.0.0.1", 65001)
        .routes(&["192.0.2.1/32"])
        .service(service)
        .to_string();
    let c = config::parse(&text, Format::Yaml).expect("the test config parses");
    c.validate().expect("the test config is valid");
    c
}

/// Starts the service; returns its trigger and a receiver of its round reports.
fn start(cfg: &anycastd::config::Config) -> (Trigger, watch::Receiver<Option<RoundReport>>) {
    let metrics = Metrics::new();
    let svc = Service::new(&cfg.services[0], &metrics, Health::START).expect("the service builds");
    let trigger = svc.trigger();
    let (gate, _) = watch::channel(Gate::new(cfg));
    let (reports, rx) = watch::channel(None);
    let heartbeat = Liveness::default().register("service", Duration::from_secs(3600));
    tokio::spawn(svc.run(gate, reports, heartbeat));
    (trigger, rx)
}

/// The time (since `t0`) and health of the next `n` rounds.
async fn rounds(
    rx: &mut watch::Receiver<Option<RoundReport>>,
    t0: Instant,
    n: usize,
) -> Vec<(Duration, Health)> {
    let mut out = Vec::new();
    for _ in 0..n {
        rx.changed().await.expect("the service runs");
        let h = rx.borrow().as_ref().expect("a report").health;
        out.push((t0.elapsed(), h));
    }
    out
}

/// `web` every 10 s with a check that passes: 127.0.0.1 is assigned.
fn web() -> ServiceBuilder {
    service("web", "10s").check(check("assigned_address").spec("ipv4", "127.0.0.1"))
}

#[tokio::test(start_paused = true)]
async fn rounds_run_at_fast_interval_while_the_state_is_in_doubt() {
    let cfg = config(web().set("fast_interval", "100ms").set("rise", 3));
    let t0 = Instant::now();
    let (_trigger, mut rx) = start(&cfg);
    let ms = Duration::from_millis;
    // Down with 1 and 2 passes is in doubt: 100 ms apart; up agrees with its round: 10 s.
    assert_eq!(
        rounds(&mut rx, t0, 5).await,
        [
            (ms(0), Health::Down { passes: 1 }),
            (ms(100), Health::Down { passes: 2 }),
            (ms(200), UP),
            (ms(10_200), UP),
            (ms(20_200), UP),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn without_fast_interval_rounds_keep_check_interval_and_a_trigger_runs_one_now() {
    let cfg = config(web().set("rise", 3));
    let t0 = Instant::now();
    let (trigger, mut rx) = start(&cfg);
    let s = Duration::from_secs;
    assert_eq!(
        rounds(&mut rx, t0, 2).await,
        [
            (s(0), Health::Down { passes: 1 }),
            (s(10), Health::Down { passes: 2 }),
        ]
    );
    tokio::time::sleep(s(3)).await;
    trigger.run_now();
    // Now, not at 20 s; and the next one a whole interval after it.
    assert_eq!(rounds(&mut rx, t0, 2).await, [(s(13), UP), (s(23), UP)]);
}

/// Two events at once (one crash seen by a tcp and a pid_file watch) run one round now; the
/// second asks for one more, `fast_interval` later: never two rounds back to back, which
/// would count one crash twice toward `fall`.
#[tokio::test(start_paused = true)]
async fn events_that_come_together_run_one_round_now() {
    let cfg = config(web().set("fast_interval", "1s"));
    let t0 = Instant::now();
    let (trigger, mut rx) = start(&cfg);
    let s = Duration::from_secs;
    let times = |r: Vec<(Duration, Health)>| r.into_iter().map(|(t, _)| t).collect::<Vec<_>>();
    assert_eq!(times(rounds(&mut rx, t0, 1).await), [s(0)]);
    tokio::time::sleep(s(3)).await;
    trigger.run_now();
    trigger.run_now();
    assert_eq!(times(rounds(&mut rx, t0, 3).await), [s(3), s(4), s(14)]);
}

/// A down service's trigger (its target back, say) runs a round at once, even right after
/// a failing round: it has no fall to count twice (the merging of issue 20 is tested on a
/// scripted check in `service::rounds`).
#[tokio::test(start_paused = true)]
async fn a_down_service_runs_a_triggered_round_at_once() {
    // 192.0.2.254 is assigned nowhere: every round fails.
    let cfg = config(
        service("web", "10s")
            .set("fast_interval", "1s")
            .set("fall", 2)
            .check(check("assigned_address").spec("ipv4", "192.0.2.254")),
    );
    let t0 = Instant::now();
    let (trigger, mut rx) = start(&cfg);
    let ms = Duration::from_millis;
    let times = |r: Vec<(Duration, Health)>| r.into_iter().map(|(t, _)| t).collect::<Vec<_>>();
    assert_eq!(times(rounds(&mut rx, t0, 1).await), [ms(0)]);
    tokio::time::sleep(ms(1)).await;
    trigger.run_now();
    assert_eq!(times(rounds(&mut rx, t0, 1).await), [ms(1)]);
}
