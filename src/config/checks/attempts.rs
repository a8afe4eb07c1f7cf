//! What every check kind's spec shares: the attempt policy (`tries`, `interval`, `timeout`)
//! with its defaults and bounds, and the [`KindSpec`] trait each kind's `Spec` implements.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::duration::Dur;
use crate::problem::Problem;

/// How a check is attempted: up to `tries` attempts, `interval` apart after a failure, each
/// bounded by `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    pub tries: u32,
    pub interval: Duration,
    pub timeout: Duration,
}

impl Attempts {
    /// The longest a check can take: `tries × timeout + (tries−1) × interval`.
    pub fn worst_case(&self) -> Duration {
        // Saturating: `tries` may be up to u32::MAX, and this feeds only comparisons.
        self.timeout
            .saturating_mul(self.tries)
            .saturating_add(self.interval.saturating_mul(self.tries.saturating_sub(1)))
    }

    /// The problems of the common fields, for a kind's `validate`.
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        if self.tries == 0 {
            p.push(Problem::new("tries", "must be at least 1"));
        }
        if let Err(m) = Dur(self.timeout).at_least(MIN_TIMEOUT) {
            p.push(Problem::new("timeout", m));
        }
        p
    }
}

/// The shortest `timeout` of an attempt, every kind: even on loopback an answer takes some
/// 0.1–1 ms, and a check that cannot pass only burns a round. (`interval`, the pause after
/// a failed attempt, may be 0s: retry at once, at most `tries` times.)
pub const MIN_TIMEOUT: Dur = Dur::millis(10);

/// Defaults of the common fields, for the kinds' `#[serde(default = ...)]`.
pub fn default_tries() -> u32 {
    1
}
pub fn default_interval() -> Dur {
    Dur::millis(100)
}
pub fn default_timeout() -> Dur {
    Dur::secs(1)
}

/// What a kind's spec knows how to do. Implemented by each kind's `Spec`.
pub trait KindSpec: Sized + fmt::Debug + Clone + PartialEq + for<'de> Deserialize<'de> {
    /// The attempt policy.
    fn attempts(&self) -> Attempts;
    /// Problems with the spec's own fields, with paths relative to `spec`.
    fn validate(&self) -> Vec<Problem>;
    /// What the check looks at, for summaries and logs (`http://127.0.0.1:8080/`).
    fn target(&self) -> String;
}
