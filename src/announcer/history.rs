//! Each prefix's route state in gobgpd, since when and why, and its last transitions (SPEC
//! 19): after a service comes back, `/status` and `anycastd status` still say why its route
//! went away. Written by the announcer where it logs the change (the same reason as the log
//! line), read by the status view; shared behind a lock, held for one prefix's record at a
//! write and for one pass at a read.
//!
//! Cheap at 20,000 prefixes: a record is kept only for a prefix that changed, each holds at
//! most [`KEPT`] transitions, and the reason of a change is shared by every prefix it moves
//! at once (one `Arc<str>`, not 20,000 strings).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::config::attributes::RouteState;

/// The transitions kept of each prefix.
pub const KEPT: usize = 8;

/// A prefix's state in gobgpd: announced in a route state, or not announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrefixState {
    Up,
    Degraded,
    Draining,
    Withdrawn,
}

impl PrefixState {
    pub const ALL: [PrefixState; 4] = [
        PrefixState::Up,
        PrefixState::Degraded,
        PrefixState::Draining,
        PrefixState::Withdrawn,
    ];

    /// The state of a prefix announced in `state` (`None`: not announced).
    pub fn of(state: Option<RouteState>) -> PrefixState {
        match state {
            Some(RouteState::Up) => PrefixState::Up,
            Some(RouteState::Degraded) => PrefixState::Degraded,
            Some(RouteState::Draining) => PrefixState::Draining,
            None => PrefixState::Withdrawn,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PrefixState::Up => "up",
            PrefixState::Degraded => "degraded",
            PrefixState::Draining => "draining",
            PrefixState::Withdrawn => "withdrawn",
        }
    }
}

impl std::fmt::Display for PrefixState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One change of a prefix's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub at: SystemTime,
    pub from: PrefixState,
    pub to: PrefixState,
    pub reason: Arc<str>,
}

/// What is kept of one prefix: its last transitions, oldest first (the last is its state
/// now, since when and why).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub last: VecDeque<Transition>,
}

impl Record {
    /// The transition into the state it is in.
    pub fn current(&self) -> Option<&Transition> {
        self.last.back()
    }
}

/// The records of every prefix that changed; cheap to clone (one shared map).
#[derive(Debug, Clone, Default)]
pub struct RouteHistory(Arc<Mutex<BTreeMap<IpNet, Record>>>);

impl RouteHistory {
    /// Records that `prefix` went from `from` to `to` for `reason` at `at`; a "change" to
    /// the state it is in is not one.
    pub fn record(
        &self,
        prefix: IpNet,
        from: PrefixState,
        to: PrefixState,
        reason: Arc<str>,
        at: SystemTime,
    ) {
        if from == to {
            return;
        }
        let mut map = self.lock();
        let r = map.entry(prefix).or_default();
        if r.last.len() == KEPT {
            r.last.pop_front();
        }
        r.last.push_back(Transition {
            at,
            from,
            to,
            reason,
        });
    }

    /// The records, for one read: the status view holds the lock for one pass.
    pub fn lock(&self) -> MutexGuard<'_, BTreeMap<IpNet, Record>> {
        // A panic while holding it leaves whole records: the map is still good to read.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Gives each distinct reason of a batch of changes one allocation.
#[derive(Default)]
pub struct Reasons(Option<Arc<str>>);

impl Reasons {
    pub fn get(&mut self, reason: &str) -> Arc<str> {
        match &self.0 {
            Some(r) if &**r == reason => r.clone(),
            _ => {
                let r: Arc<str> = Arc::from(reason);
                self.0 = Some(r.clone());
                r
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn the_last_transitions_are_kept_oldest_first_and_no_more() {
        let h = RouteHistory::default();
        let p: IpNet = "192.0.2.1/32".parse().expect("prefix");
        let mut reasons = Reasons::default();
        let at = |s| UNIX_EPOCH + Duration::from_secs(s);
        h.record(
            p,
            PrefixState::Withdrawn,
            PrefixState::Up,
            reasons.get("service dns is up"),
            at(1),
        );
        // Not a change.
        h.record(p, PrefixState::Up, PrefixState::Up, reasons.get("x"), at(2));
        assert_eq!(h.lock()[&p].last.len(), 1);
        for i in 0..20u64 {
            let (from, to) = if i % 2 == 0 {
                (PrefixState::Up, PrefixState::Withdrawn)
            } else {
                (PrefixState::Withdrawn, PrefixState::Up)
            };
            h.record(p, from, to, reasons.get(&format!("round {i}")), at(10 + i));
        }
        let map = h.lock();
        let r = &map[&p];
        assert_eq!(r.last.len(), KEPT);
        assert_eq!(r.last[0].at, at(10 + 20 - KEPT as u64));
        let now = r.current().expect("a current state");
        assert_eq!(
            (now.to, &*now.reason, now.at),
            (PrefixState::Up, "round 19", at(29))
        );
    }

    #[test]
    fn one_reason_of_a_batch_is_one_allocation() {
        let mut reasons = Reasons::default();
        let a = reasons.get("service web is down");
        let b = reasons.get("service web is down");
        assert!(Arc::ptr_eq(&a, &b));
        let c = reasons.get("service dns is down");
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
