//! The fleet guard's policy (SPEC 14), and the only owner of this site's claims and holds.
//!
//! The announcer tells the [`Fleet`] two things and asks it one:
//! - [`Fleet::follow`]: what this site announces, and which of those prefixes have healthy
//!   services. A prefix announced with healthy services is claimed (after its AddPath,
//!   never before: other sites must never count a claim that is not on the wire); one no
//!   longer announced at all is released (a reload removed it, a forced drain, gobgpd lost
//!   it). A held prefix whose services recover is no longer held.
//! - [`Fleet::guard`]: these prefixes are about to leave (their services failed, or their
//!   drain lingered): which may go? A prefix goes only through the guard's transaction
//!   (at least `min_sites` other sites hold it); otherwise the fleet *holds* it, and says in
//!   which state to keep it announced (degraded for a failure, draining for a drain). Held
//!   prefixes are asked about again only on the retry (`again`), every round, so that an
//!   update for another service never waits on etcd for them.
//!
//! `fleet.prefixes` limits the guard to the prefixes listed; the others are never claimed
//! and always may go.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use crate::priority::NOTICE;
use ipnet::IpNet;
use tokio::sync::watch;
use tracing::{debug, error, warn};

use super::claims::Claims;
use super::decision::{Decision, Held};
use super::view::{FleetStatus, FleetView};
use crate::config::attributes::RouteState;

/// The guard's policy over this site's claims. Cheap to clone.
#[derive(Clone)]
pub struct Fleet {
    claims: Claims,
    /// `fleet.prefixes`; `None`: every prefix.
    covered: Option<Arc<BTreeSet<IpNet>>>,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Prefixes kept announced because the guard holds them, in the state they are held in.
    held: BTreeMap<IpNet, (RouteState, Held)>,
    /// Prefixes this site has claimed (announced with healthy services).
    claimed: BTreeSet<IpNet>,
}

/// How a prefix held by the guard is said, in a reason or a WHY.
pub const HELD_BY_THE_GUARD: &str = "held by the fleet guard";

impl Fleet {
    pub fn new(claims: Claims, covered: Option<Vec<IpNet>>) -> Fleet {
        Fleet {
            claims,
            covered: covered.map(|c| Arc::new(c.into_iter().collect())),
            state: Arc::default(),
        }
    }

    /// Whether the guard covers `prefix` (`fleet.prefixes`).
    pub fn covers(&self, prefix: &IpNet) -> bool {
        self.covered.as_ref().is_none_or(|c| c.contains(prefix))
    }

    /// Whether the fleet holds any prefix (the announcer then asks again every round).
    pub fn holds_any(&self) -> bool {
        self.state.lock().is_ok_and(|s| !s.held.is_empty())
    }

    /// `held by the fleet guard: WHY` while the guard holds `prefix` in `as_state` (the
    /// announcer announces a recovered prefix up before the guard lets go of it): what a
    /// transition's reason and the status's WHY add to what the services say.
    pub fn held_said(&self, prefix: &IpNet, as_state: RouteState) -> Option<String> {
        let state = self.state.lock().ok()?;
        let (held_as, held) = state.held.get(prefix)?;
        (*held_as == as_state).then(|| format!("{HELD_BY_THE_GUARD}: {}", held.why(as_state)))
    }

    /// This site's name in the fleet.
    pub fn site(&self) -> &str {
        self.claims.site()
    }

    /// Follows the fleet as this site sees it.
    pub fn view(&self) -> watch::Receiver<FleetView> {
        self.claims.view()
    }

    /// The fleet part of the status document.
    pub fn status(&self) -> FleetStatus {
        self.claims.status()
    }

    /// Decides about the prefixes of `leaving` (each with the state it would be held in):
    /// returns those the fleet holds, with that state. `again`: also ask etcd about those
    /// held already; otherwise they stay held without a question.
    pub async fn guard(
        &self,
        leaving: Vec<(IpNet, RouteState)>,
        again: bool,
    ) -> BTreeMap<IpNet, RouteState> {
        let mut holding = BTreeMap::new();
        let mut ask = Vec::new();
        {
            let Ok(mut state) = self.state.lock() else {
                return holding;
            };
            for (prefix, hold_as) in leaving {
                if !self.covers(&prefix) {
                    continue;
                }
                match state.held.get_mut(&prefix) {
                    Some((held_as, _)) if !again => {
                        // Held drained, then failed (or back): held in the new state.
                        *held_as = hold_as;
                        holding.insert(prefix, hold_as);
                    }
                    _ => ask.push((prefix, hold_as)),
                }
            }
        }
        if ask.is_empty() {
            return holding;
        }
        let decisions = futures_util::future::join_all(
            ask.iter().map(|(p, _)| self.claims.release_guarded(*p)),
        )
        .await;
        let Ok(mut state) = self.state.lock() else {
            return holding;
        };
        for ((prefix, hold_as), decision) in ask.into_iter().zip(decisions) {
            match decision {
                Decision::Released(release) => {
                    state.held.remove(&prefix);
                    state.claimed.remove(&prefix);
                    warn!(target: NOTICE, prefix = %prefix, release = release.to_string().as_str(), "fleet guard: this site may withdraw");
                }
                Decision::Held(held) => {
                    let before = state.held.get(&prefix).map(|(s, h)| (*s, &h.reason));
                    let said = held.said(hold_as);
                    if before != Some((hold_as, &held.reason)) {
                        error!(prefix = %prefix, "{said}");
                    } else {
                        debug!(prefix = %prefix, "{said}");
                    }
                    state.held.insert(prefix, (hold_as, held));
                    holding.insert(prefix, hold_as);
                }
            }
        }
        holding
    }

    /// Keeps this site's claims in step with what it announces (`announced`), and with
    /// which of those prefixes have healthy services (`healthy`). Errors are logged; the
    /// claims task repairs etcd.
    pub async fn follow(&self, announced: &BTreeSet<IpNet>, healthy: &BTreeSet<IpNet>) {
        let (claim, release) = {
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            // A held prefix that is no longer announced went (shutdown, reload, gobgpd).
            state.held.retain(|p, _| announced.contains(p));
            let claim: Vec<IpNet> = healthy
                .iter()
                .filter(|p| announced.contains(p) && self.covers(p))
                .filter(|p| !state.claimed.contains(*p) || state.held.contains_key(*p))
                .copied()
                .collect();
            let release: Vec<IpNet> = state
                .claimed
                .iter()
                .filter(|p| !announced.contains(p))
                .copied()
                .collect();
            for p in &claim {
                if state.held.remove(p).is_some() {
                    warn!(target: NOTICE, prefix = %p, "fleet guard: the services are back; no longer held");
                }
                state.claimed.insert(*p);
            }
            for p in &release {
                state.claimed.remove(p);
            }
            (claim, release)
        };
        // In batches: at start every announced prefix is claimed at once (20,000 with a
        // large table).
        let (claimed, released) = tokio::join!(
            self.claims.claim_all(&claim),
            self.claims.release_all_forced(&release)
        );
        if let Err(e) = claimed {
            debug!(
                claims = claim.len(),
                error = e.to_string().as_str(),
                "fleet: claims not written yet (the fleet task retries)"
            );
        }
        if let Err(e) = released {
            debug!(
                claims = release.len(),
                error = e.to_string().as_str(),
                "fleet: claims not removed yet (the fleet task retries)"
            );
        }
    }

    /// The prefixes of `prefixes` that the guard would hold if they left now, as this site
    /// last saw the fleet: fewer than `min_sites` other sites announce them. For `anycastd
    /// drain`'s answer; the guard itself decides when the drain's linger ends.
    pub fn would_hold(&self, prefixes: &[IpNet]) -> Vec<(IpNet, Vec<String>)> {
        let view = self.claims.view();
        let v = view.borrow();
        prefixes
            .iter()
            .filter(|p| self.covers(p))
            .filter_map(|p| {
                let others: Vec<String> = v
                    .prefixes
                    .get(p)
                    .map(|pv| pv.sites.keys().filter(|s| *s != &v.site).cloned().collect())
                    .unwrap_or_default();
                (others.len() < v.min_sites as usize).then_some((*p, others))
            })
            .collect()
    }

    /// The minimum of other sites a prefix must keep (`fleet.min_sites`).
    pub fn min_sites(&self) -> u32 {
        self.claims.view().borrow().min_sites
    }
}
