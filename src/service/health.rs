//! A service's health as its checks say it, as a pure state machine: each round's verdict
//! ([`Round`]) moves the state ([`Health`]) by `rise` and `fall`. Each state carries only the
//! counters that can move it; a proptest holds it against an independent definition (the
//! lengths of the runs of rounds, SPEC 9). [`ServiceState`] adds the operator's drain.

use serde::{Deserialize, Serialize};

use crate::check::runner::Outcome;
use crate::config::attributes::RouteState;
use crate::config::checks::OnFailure;

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

#[cfg(test)]
mod tests {
    use super::*;
    use Round::{Degrade as D, Fail as F, Pass as P};
    use proptest::prelude::*;
    use std::time::Duration;

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
}
