//! What the announcer says of itself to the rest of the daemon: how it should end
//! ([`Stop`]), what stops it for good ([`Fatal`]), and what it knows of gobgpd and of the
//! routes there ([`AnnouncerState`]), for the status view, the metrics and `/healthz`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use ipnet::IpNet;

use super::gobgp::ops::{Api, GlobalSettings};
use super::intent::Route;

/// How the daemon wants the announcer to end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Stop {
    #[default]
    Running,
    /// Drain every announced route for `drain_linger`, withdraw it, then end.
    Graceful,
    /// Withdraw everything at once, then end (a second SIGTERM).
    Now,
}

/// A problem that retrying cannot fix: anycastd must exit.
#[derive(Debug, thiserror::Error)]
pub enum Fatal {
    #[error(
        "gobgpd at {address} already runs with {have}, but the config says {want}: fix announcer.router_id/local_asn/listen_port, or restart gobgpd without a global config so that anycastd sets it"
    )]
    GlobalMismatch {
        address: String,
        have: GlobalSettings,
        want: GlobalSettings,
    },
}

/// What the announcer knows of gobgpd, for the status view and the route metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnnouncerState {
    pub gobgp: GobgpHealth,
    /// Every prefix anycastd manages: the config's, and those a reload removed that are
    /// still on their way out. Shared with the announcer, as `announced` is: with 20,000
    /// prefixes, copying both on every change cost milliseconds (issue 20).
    pub prefixes: Arc<BTreeSet<IpNet>>,
    /// The prefixes of ours that gobgpd announces, as of the last change or reconcile, with
    /// the state they are announced in and its attributes.
    pub announced: Arc<BTreeMap<IpNet, Route>>,
    /// The last time someone else changed anycastd's paths or peers in gobgpd, and what.
    pub foreign_change: Option<(SystemTime, String)>,
    /// Another anycastd that owns this gobgpd (this one then leaves it alone), described.
    pub owner_conflict: Option<String>,
    /// The API the gobgpd of the last connection speaks.
    pub api: Option<Api>,
    /// Why the peers configured with BFD run without it (gobgpd does not run BFD).
    pub bfd_error: Option<String>,
}

/// Whether gobgpd can be used, as the announcer last found it.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum GobgpHealth {
    /// No attempt to reach gobgpd has finished yet.
    #[default]
    Starting,
    /// Set up and reconciled: its API answers and does what it is asked.
    Usable,
    /// The last attempt failed (connect, set-up or a call), since `since`.
    Unusable { error: String, since: SystemTime },
}

impl GobgpHealth {
    pub fn is_usable(&self) -> bool {
        matches!(self, GobgpHealth::Usable)
    }
}
