//! What the guard decides about a prefix about to leave, and why, in types: the log, the
//! status and `anycastd drain` word them.

use std::fmt;

use ipnet::IpNet;

use crate::config::attributes::RouteState;

/// What the announcer does about a prefix whose services failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Withdraw it now: this site's claim is gone.
    Released(Release),
    /// Keep it announced, with the `degraded` attributes; log the [`Held`] (its `Display`
    /// says why) at ERROR and ask again next round.
    Held(Held),
}

/// Why a release went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// The guard's transaction passed: these other sites held the prefix at that moment.
    Guarded { others: Vec<String>, tries: u32 },
    /// etcd could not be reached in time, and `on_unreachable` is `withdraw`. The claim
    /// stays in etcd until the fleet task can delete it, or the lease expires.
    Unreachable { error: String },
}

/// Why a prefix is held, for the log and the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub prefix: IpNet,
    /// Other sites holding the prefix, as etcd said; empty when it could not be asked.
    pub others: Vec<String>,
    pub min_sites: u32,
    pub reason: HeldReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeldReason {
    /// Fewer than `min_sites` other sites hold the prefix.
    TooFewSites,
    /// Other sites released the prefix at the same moment, `tries` transactions in a row.
    Contended { tries: u32 },
    /// etcd could not be reached in time, and `on_unreachable` is `hold`.
    Unreachable { error: String },
}

impl fmt::Display for Held {
    /// As for a failure (held degraded); [`Held::said`] for another state.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.said(RouteState::Degraded))
    }
}

impl Held {
    /// The log line of a hold in `state` (degraded for a failure, draining for a drain).
    pub fn said(&self, state: RouteState) -> String {
        format!(
            "holding {} (kept announced, {}): {}",
            self.prefix,
            state.name(),
            self.why(state)
        )
    }

    /// Why it is held in `state`, without the prefix: for the status's WHY and a
    /// transition's reason.
    pub fn why(&self, state: RouteState) -> HeldWhy<'_> {
        HeldWhy { held: self, state }
    }
}

/// [`Held::why`].
pub struct HeldWhy<'a> {
    held: &'a Held,
    state: RouteState,
}

impl fmt::Display for HeldWhy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = self.held;
        let until = match self.state {
            RouteState::Draining => "it is undrained",
            _ => "its services recover",
        };
        match &held.reason {
            HeldReason::TooFewSites if held.others.is_empty() => write!(
                f,
                "no other site announces it: withdrawing would take it off every router (fleet.min_sites is {}); it stays announced until {until}, another site announces it, or `anycastd drain --force` takes it out",
                held.min_sites
            ),
            HeldReason::TooFewSites => {
                let n = held.others.len();
                write!(
                    f,
                    "{n} other site{} announce{} it ({}), fleet.min_sites is {}; withdrawing would leave fewer",
                    if n == 1 { "" } else { "s" },
                    if n == 1 { "s" } else { "" },
                    held.others.join(", "),
                    held.min_sites
                )
            }
            HeldReason::Contended { tries } => write!(
                f,
                "other sites released it at the same moment ({tries} tries); asking again next round"
            ),
            HeldReason::Unreachable { error } => write!(
                f,
                "etcd cannot be reached ({error}) and fleet.on_unreachable is hold"
            ),
        }
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Release::Guarded { others, .. } => write!(
                f,
                "fleet guard passed: {} other site(s) announce it ({})",
                others.len(),
                others.join(", ")
            ),
            Release::Unreachable { error } => write!(
                f,
                "etcd cannot be reached ({error}) and fleet.on_unreachable is withdraw"
            ),
        }
    }
}
