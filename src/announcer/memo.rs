//! What the last reconcile and the last update of the announcer left, so that the next one
//! can take a cheaper path when its inputs are the same (issue 20: at 20,000 prefixes a
//! walk of every prefix was most of a change's and of an idle reconcile's cost). Each
//! input is held as the `Arc` it was: a change makes a new one (`Arc::make_mut` copies a
//! shared value), so "the same" is a pointer comparison, never a look at 20,000 entries.
//! The rules that use them are in [`super::routes`] (`Announcer::same`, `Announcer::scope`).

use std::collections::BTreeMap;
use std::sync::Arc;

use ipnet::IpNet;

use super::gobgp::ops::OriginatedPath;
use super::intent::{Intent, Route};
use crate::service::gate::Desired;

/// The inputs of a reconcile that found nothing to change: a reconcile with the same ones
/// (and still nothing that waits for a time, leaves, or is guarded) would find nothing
/// either, and stops after the listing. The rest of a reconcile (the listing read into a
/// map, compared, the wanted routes, the plan) was about a third of anycastd's idle CPU at
/// 20,000 prefixes (perf).
pub struct Settled {
    pub listing: Arc<Vec<OriginatedPath>>,
    pub announced: Arc<BTreeMap<IpNet, Route>>,
    pub desired: Arc<Desired>,
    pub intent: Arc<Intent>,
}

/// What the last update started from and left: the next one looks only at the prefixes
/// whose desire changed since, when nothing else did.
pub struct Basis {
    pub desired: Arc<Desired>,
    pub announced: Arc<BTreeMap<IpNet, Route>>,
    pub intent: Arc<Intent>,
}
