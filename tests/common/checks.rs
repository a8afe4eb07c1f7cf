//! Shared by the integration tests of the check kinds: build a check from the YAML a user
//! would write, and wait on conditions with a deadline.

use std::time::Duration;

use anycastd::check::probe::CheckContext;
use anycastd::check::runner::{Outcome, Runner};
use anycastd::config::CheckConfig;
use anycastd::metrics::Metrics;

/// The service name the checks built here belong to.
pub const SERVICE: &str = "svc";

/// A check built from its config (`kind`, `name`, `spec`) through the public API, the way
/// the daemon builds it: parsed, validated, built, wrapped in a [`Runner`].
pub fn runner(yaml: &str) -> (Runner, Metrics) {
    let c: CheckConfig = serde_saphyr::from_str(yaml).expect("the check's YAML must parse");
    let problems = c.spec.validate();
    assert!(problems.is_empty(), "the spec must validate: {problems:?}");
    let metrics = Metrics::new();
    let ctx = CheckContext {
        service: SERVICE.to_string(),
        check: c.name.clone(),
        metrics: metrics.clone(),
    };
    let prober = anycastd::check::build(&c.spec, &ctx).expect("the check must build");
    (
        Runner::new(c.name.clone(), c.kind(), c.spec.attempts(), prober),
        metrics,
    )
}

/// The failure message of an outcome that must have failed.
pub fn failure(o: &Outcome) -> String {
    match &o.result {
        Ok(()) => panic!("the check passed but must fail: {o:?}"),
        Err(f) => {
            eprintln!("failed after {:?}: {f}", o.duration);
            f.0.clone()
        }
    }
}

/// Asserts that a failing run ended within its worst case (`tries × timeout + (tries−1) ×
/// interval`) plus a generous slack: the bound that says nothing outlived its timeout.
pub fn assert_within_worst_case(r: &Runner, o: &Outcome) {
    let bound = r.attempts.worst_case() + Duration::from_millis(750);
    assert!(
        o.duration < bound,
        "took {:?}, more than the worst case {:?} + slack: {o:?}",
        o.duration,
        r.attempts.worst_case()
    );
}

/// Waits until `cond` holds, polling, for at most `deadline`.
pub async fn wait_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Tasks alive in the current runtime.
pub fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}
