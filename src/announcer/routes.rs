//! The announcer's routes: from the gate's desired routes ([`Gate::desired`], the only thing
//! it reads of the services) and the fleet's holds to gobgpd's RIB.
//!
//! Each update: the state each prefix of the intent should be announced in (the desired
//! one; draining while shutting down or once a reload removed it); the lingers of draining
//! routes ([`Wanted`]); the fleet guard's holds of the prefixes about to leave; then the
//! difference with what gobgpd announces, executed ([`plan`]), and the fleet told what is
//! announced. Every step is one pass over the prefixes: 20,000 of them cost milliseconds.
//!
//! [`Gate::desired`]: crate::service::gate::Gate::desired
//! [`Wanted`]: super::reconcile::Wanted

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::priority::NOTICE;
use ipnet::IpNet;
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::gobgp::ops::{Advert, Gobgp, OriginatedPath};
use super::history::{PrefixState, Reasons, RouteHistory};
use super::intent::{Route, RouteSpec};
use super::memo::{Basis, Settled};
use super::reconcile::{Plan, join, plan, unrecorded};
use super::run::{Announcer, Ask, Lost, Why};
use super::state::Stop;
use crate::config::attributes::RouteState;
use crate::service::gate::{Desire, Desired};

/// What tells whether gobgpd announces a prefix, for [`Announcer::wanted`].
#[derive(Clone, Copy)]
enum Present<'a> {
    /// What anycastd knows it announces (`Announcer::announced`).
    Announced,
    /// What a listing of gobgpd's RIB found.
    Listed(&'a BTreeMap<IpNet, Option<Advert>>),
}

/// How many AddPath/DeletePath calls may be in flight at once.
const IN_FLIGHT: usize = 64;

impl Announcer {
    /// Each prefix's last transitions, for the status view.
    pub fn history(&self) -> RouteHistory {
        self.history.clone()
    }

    /// The spec of a prefix anycastd manages now: the config's, or one on its way out.
    fn spec(&self, prefix: &IpNet) -> Option<&RouteSpec> {
        self.intent
            .routes
            .get(prefix)
            .or_else(|| self.leaving.get(prefix))
    }

    /// Whether anycastd manages `prefix` now.
    fn ours(&self, prefix: &IpNet) -> bool {
        self.intent.routes.contains_key(prefix) || self.leaving.contains_key(prefix)
    }

    /// The routes wanted now, sorted by prefix, before the fleet guard: from the desired
    /// routes, and whether gobgpd announces a prefix (`present`: what anycastd knows it
    /// announces, or a listing). One walk of the intent's and the desired prefixes side by
    /// side (both sorted), no lookup per prefix: with 20,000 prefixes the maps this built
    /// before took about 10 ms of the one worker thread on every change (issue 20).
    ///
    /// With a `scope` (sorted), only the routes of those prefixes: see [`Announcer::scope`].
    fn wanted(
        &mut self,
        desired: &Desired,
        present: Present<'_>,
        scope: Option<&[IpNet]>,
    ) -> Vec<Route> {
        let stopping = *self.stop.borrow() != Stop::Running;
        let mut states = Vec::with_capacity(match scope {
            Some(s) => s.len(),
            None => self.intent.routes.len() + self.leaving.len(),
        });
        let specs = self.intent.routes.iter().map(|(p, s)| (*p, s));
        let all = join(specs, desired.iter().map(|(p, w)| (*p, w)));
        let some = scope.into_iter().flatten().map(|p| {
            let spec = self.intent.routes.get(p);
            (*p, spec, desired.get(p))
        });
        let walk: Box<dyn Iterator<Item = _>> = match scope {
            None => Box::new(all),
            Some(_) => Box::new(some),
        };
        for (prefix, spec, want) in walk {
            let Some(spec) = spec else {
                // Desired, but not in the intent (yet): nothing to announce it with.
                continue;
            };
            let state = if stopping {
                // Shutting down: every route drains.
                Some(RouteState::Draining)
            } else {
                match want {
                    Some(w) => w.desire.route_state(),
                    // No service gates it any more: a reload removed it, and the new intent
                    // is on its way. It leaves gracefully, whichever comes first.
                    None => Some(RouteState::Draining),
                }
            };
            if let Some(s) = state {
                states.push((prefix, s, spec));
            }
        }
        if scope.is_none() && !self.leaving.is_empty() {
            // Not in the intent (a reload removed them): merged in, in order.
            states.extend(
                self.leaving
                    .iter()
                    .map(|(p, s)| (*p, RouteState::Draining, s)),
            );
            states.sort_by_key(|s| s.0);
        }
        let announced = &self.announced;
        let on = |p: &IpNet| match present {
            Present::Announced => announced.contains_key(p),
            Present::Listed(l) => l.contains_key(p),
        };
        self.wanted
            .routes(&states, scope, on, self.intent.pace(), Instant::now())
    }

    /// The prefixes an update needs to look at, when that is not every one: those whose
    /// desire changed since the last update, when nothing else did (the intent, gobgpd's
    /// routes as anycastd knows them, a shutdown, a linger or hold that ended; the fleet
    /// guard's held prefixes are asked about again by the retry, which walks every one).
    /// At 20,000 prefixes a walk of every one took 2.4 to 3.5 ms of the 10 to 12 ms from a
    /// kill to the withdraw at the router (issue 20); with a fleet guard, the 20 walks a
    /// second of 201 passing checks every 10 s cost 5.9 % of a core while idle.
    fn scope(&self, desired: &Desired, ask: Ask) -> Option<Vec<IpNet>> {
        let basis = self.basis.as_ref()?;
        let same = ask == Ask::NewOnly
            && Arc::ptr_eq(&basis.intent, &self.intent)
            && Arc::ptr_eq(&basis.announced, &self.announced)
            && *self.stop.borrow() == Stop::Running
            && self.leaving.is_empty()
            && self
                .wanted
                .next_deadline(self.intent.pace())
                .is_none_or(|at| at > Instant::now());
        if !same {
            return None;
        }
        desired.changed_since(&basis.desired)
    }

    /// Applies a change of the wanted routes against what anycastd knows gobgpd has.
    pub(super) async fn update<G: Gobgp>(&mut self, c: &G, why: Why) -> Result<(), Lost> {
        self.update_with(c, why, Ask::NewOnly).await
    }

    /// [`Announcer::update`], asking the fleet guard as `ask` says.
    pub(super) async fn update_with<G: Gobgp>(
        &mut self,
        c: &G,
        why: Why,
        ask: Ask,
    ) -> Result<(), Lost> {
        let desired = self.gate.borrow().desired();
        let scope = self.scope(&desired, ask);
        let wanted = self.wanted(&desired, Present::Announced, scope.as_deref());
        let leaving = match &scope {
            None => self.leaving_of(&wanted, &desired, self.announced.keys()),
            // Only the scope's: `wanted` speaks of no other prefix.
            Some(scope) => {
                let present = scope.iter().filter(|p| self.announced.contains_key(*p));
                self.leaving_of(&wanted, &desired, present)
            }
        };
        let wanted = self.guard(wanted, leaving, ask).await;
        let announced = &self.announced;
        let p = match &scope {
            None => {
                let present = announced.iter().map(|(p, r)| (*p, Some(&*r.advert)));
                plan(|p| self.ours(p), &wanted, present)
            }
            Some(scope) => {
                let present = scope
                    .iter()
                    .filter_map(|p| Some((*p, Some(&*announced.get(p)?.advert))));
                plan(|p| self.ours(p), &wanted, present)
            }
        };
        self.execute(c, p, why, &desired).await?;
        self.record_unsent(&wanted, Present::Announced, &desired);
        if scope.as_ref().is_none_or(|s| !s.is_empty()) {
            // Nothing in scope: what is announced, and every desire, is as the last
            // update left it, and so are the claims that follow them.
            self.follow_fleet(&desired).await;
        }
        self.publish_usable();
        self.basis = Some(Basis {
            desired,
            announced: self.announced.clone(),
            intent: self.intent.clone(),
        });
        Ok(())
    }

    /// Makes gobgpd's RIB match the wanted routes, and repairs a gobgpd that forgot its
    /// global config and peers (it restarted) or whose paths someone else changed.
    pub(super) async fn reconcile<G: Gobgp>(&mut self, c: &G, first: bool) -> Result<(), Lost> {
        let fresh = self.setup(c).await?;
        if fresh && !first {
            warn!("gobgpd had lost its global config (it restarted); set it up again");
            self.reconnects.increment(1);
        }
        let listing = self.listing(c, first || fresh).await?;
        let desired = self.gate.borrow().desired();
        if first || fresh {
            self.settled = None;
        } else if self
            .settled
            .as_ref()
            .is_some_and(|s| self.same(s, &listing, &desired))
        {
            // Nothing changed since a reconcile that found nothing to change.
            self.publish_usable();
            return Ok(());
        }
        self.settled = None;
        let present: BTreeMap<IpNet, Option<Advert>> = listing
            .iter()
            .filter(|p| self.ours(&p.prefix))
            .map(|p| (p.prefix, p.advert.clone()))
            .collect();
        let mut foreign = false;
        if !first && !fresh {
            let believed = self.announced.iter().map(|(p, r)| (*p, &*r.advert));
            let listed = present.iter().map(|(p, a)| (*p, a.as_ref()));
            let changed: Vec<String> = join(believed, listed)
                .filter(|(_, believed, listed)| match (believed, listed) {
                    (Some(b), Some(Some(l))) => b != l,
                    _ => true,
                })
                .map(|(p, ..)| p.to_string())
                .collect();
            if !changed.is_empty() {
                foreign = true;
                self.foreign_change(format!("paths of {} were changed", changed.join(", ")));
            }
        }
        // What gobgpd really announces replaces what anycastd believed.
        if self.announced.keys().any(|p| !present.contains_key(p)) {
            Arc::make_mut(&mut self.announced).retain(|p, _| present.contains_key(p));
        }
        let wanted = self.wanted(&desired, Present::Listed(&present), None);
        let leaving = self.leaving_of(&wanted, &desired, present.keys());
        let wanted = self.guard(wanted, leaving, Ask::NewOnly).await;
        let listed = present.iter().map(|(p, a)| (*p, a.as_ref()));
        let p = plan(|p| self.ours(p), &wanted, listed);
        // The first reconcile of anycastd's life announces what the services say: not a
        // repair of gobgpd, so its lines say no `reconcile:` (every start said
        // `reconcile: service web is up`). After a reconnect it is one.
        let why = if first && !self.connected_before {
            Why::Change
        } else {
            Why::Reconcile
        };
        if !p.is_empty() && why == Why::Reconcile {
            info!(
                add = p.add.len(),
                delete = p.delete.len(),
                "reconcile: gobgpd's RIB differs from the wanted routes"
            );
        }
        let nothing = p.is_empty() && !foreign;
        self.execute(c, p, why, &desired).await?;
        self.record_unsent(&wanted, Present::Listed(&present), &desired);
        self.follow_fleet(&desired).await;
        self.publish_usable();
        if nothing && self.settles() {
            self.settled = Some(Settled {
                listing,
                announced: self.announced.clone(),
                desired,
                intent: self.intent.clone(),
            });
        }
        Ok(())
    }

    /// gobgpd's paths, for a reconcile. A change of the services that comes with the
    /// reconcile's tick, or while gobgpd is listed, and the end of a linger or a hold that
    /// came meanwhile, are applied first by an update, and gobgpd listed again: its log
    /// lines and history then say why without `reconcile:`, which means a repair of gobgpd
    /// (a drain applied by a reconcile said it was one, and `.ci/run` caught the status
    /// saying so). At most three listings: services that change all the time do not keep
    /// gobgpd from being reconciled. Not after a connect or a gobgpd that lost its paths
    /// (`fresh`): an update would plan against what anycastd believed it had.
    async fn listing<G: Gobgp>(
        &mut self,
        c: &G,
        fresh: bool,
    ) -> Result<Arc<Vec<OriginatedPath>>, Lost> {
        let changed = |a: &Self| {
            let due = a
                .wanted
                .next_deadline(a.intent.pace())
                .is_some_and(|at| at <= Instant::now());
            !fresh && (due || a.gate.has_changed().unwrap_or(false))
        };
        let mut listings = 0;
        loop {
            if changed(self) {
                self.gate.borrow_and_update();
                self.update(c, Why::Change).await?;
            }
            let listing = c.originated_paths(self.intent.global.asn).await?;
            listings += 1;
            if listings == 3 || !changed(self) {
                return Ok(listing);
            }
        }
    }

    /// Whether a reconcile with `listing` and `desired` has the inputs of `settled`.
    fn same(
        &self,
        settled: &Settled,
        listing: &Arc<Vec<OriginatedPath>>,
        desired: &Arc<Desired>,
    ) -> bool {
        Arc::ptr_eq(&settled.listing, listing)
            && Arc::ptr_eq(&settled.announced, &self.announced)
            && Arc::ptr_eq(&settled.desired, desired)
            && Arc::ptr_eq(&settled.intent, &self.intent)
            && self.settles()
    }

    /// Whether a reconcile that found nothing to change would find nothing again while its
    /// inputs stay the same: nothing waits for a time (a linger, a hold), nothing leaves,
    /// the fleet guard holds nothing (its claims follow what is announced and desired,
    /// which are the same), not stopping.
    fn settles(&self) -> bool {
        *self.stop.borrow() == Stop::Running
            && self.fleet.as_ref().is_none_or(|f| !f.holds_any())
            && self.leaving.is_empty()
            && self.wanted.next_deadline(self.intent.pace()).is_none()
    }

    /// The prefixes of the intent that are announced (`present`, sorted) but not wanted,
    /// and that the fleet guard must be asked about (SPEC 14), with the state it holds
    /// each in: a prefix whose services failed (degraded), or whose drain (without
    /// `--force`) has lingered (draining). None without a fleet guard, or while shutting
    /// down; a prefix leaving after a reload, or force-drained, is never guarded.
    fn leaving_of<'a>(
        &self,
        wanted: &[Route],
        desired: &Desired,
        present: impl Iterator<Item = &'a IpNet>,
    ) -> Vec<(IpNet, RouteState)> {
        if self.fleet.is_none() || *self.stop.borrow() != Stop::Running {
            return Vec::new();
        }
        let present = present.map(|p| (*p, ()));
        join(present, wanted.iter().map(|r| (r.prefix, ())))
            .filter(|(p, on, want)| {
                on.is_some() && want.is_none() && self.intent.routes.contains_key(p)
            })
            .filter_map(|(p, ..)| match desired.get(&p)?.desire {
                // Its services failed (and are not drained with --force).
                Desire::Withdraw { forced: false } => Some((p, RouteState::Degraded)),
                // Drained without --force, and the linger is over.
                Desire::Drain { forced: false } => Some((p, RouteState::Draining)),
                _ => None,
            })
            .collect()
    }

    /// The fleet guard (SPEC 14): a prefix of `leaving` is withdrawn only when the fleet
    /// lets it go; otherwise the fleet holds it, and it stays announced in the state the
    /// fleet says (degraded for a failure, draining for a drain). `wanted` stays sorted.
    async fn guard(
        &self,
        mut wanted: Vec<Route>,
        leaving: Vec<(IpNet, RouteState)>,
        ask: Ask,
    ) -> Vec<Route> {
        let Some(fleet) = self.fleet.clone() else {
            return wanted;
        };
        if leaving.is_empty() {
            return wanted;
        }
        let held = fleet.guard(leaving, ask == Ask::AlsoHeld).await;
        for (prefix, state) in held {
            if let Some(spec) = self.intent.routes.get(&prefix) {
                let route = spec.route(prefix, state);
                match wanted.binary_search_by(|r| r.prefix.cmp(&prefix)) {
                    Ok(i) => wanted[i] = route,
                    Err(i) => wanted.insert(i, route),
                }
            }
        }
        wanted
    }

    /// Tells the fleet what this site announces, and which of those prefixes have healthy
    /// services: the fleet keeps the claims in step.
    async fn follow_fleet(&mut self, desired: &Desired) {
        let Some(fleet) = self.fleet.clone() else {
            return;
        };
        if *self.stop.borrow() != Stop::Running {
            // The claims task revokes the lease at shutdown: every claim goes at once.
            return;
        }
        let announced: BTreeSet<IpNet> = self.announced.keys().copied().collect();
        let healthy: BTreeSet<IpNet> = announced
            .iter()
            .filter(|p| self.intent.routes.contains_key(p))
            .filter(|p| {
                desired
                    .get(p)
                    .is_some_and(|w| matches!(w.desire, Desire::Announce(_)))
            })
            .copied()
            .collect();
        fleet.follow(&announced, &healthy).await;
    }

    /// Why `prefix` changes, for the log line.
    fn reason(
        &self,
        prefix: &IpNet,
        state: Option<RouteState>,
        why: Why,
        desired: &Desired,
    ) -> String {
        let want = desired.get(prefix);
        let base = match want {
            _ if self.leaving.contains_key(prefix) => "removed from the config".to_string(),
            None => "removed from the config".to_string(),
            Some(_) if *self.stop.borrow() != Stop::Running => {
                "anycastd is shutting down".to_string()
            }
            Some(w) if state.is_none() && matches!(w.desire, Desire::Drain { .. }) => {
                format!("{} (drain linger over)", w.cause)
            }
            Some(w) => w.cause.to_string(),
        };
        let held = state
            .zip(self.fleet.as_ref())
            .and_then(|(s, f)| f.held_said(prefix, s));
        let base = match held {
            Some(held) => format!("{base}; {held}"),
            None => base,
        };
        match why {
            Why::Change => base,
            Why::Reconcile => format!("reconcile: {base}"),
        }
    }

    /// Records the routes of `wanted` that gobgpd has as wanted already, as `has` says
    /// (what anycastd believes after an update, a listing in a reconcile), and that
    /// anycastd records otherwise ([`unrecorded`]). The plan sends gobgpd nothing for
    /// them. Without this a prefix held for a failed service with no `degraded`
    /// attributes went on saying `up` and why it was up; and a path gobgpd added although
    /// its answer was lost was never recorded: every reconcile after called it a foreign
    /// change.
    fn record_unsent(&mut self, wanted: &[Route], has: Present<'_>, desired: &Desired) {
        let announced = &self.announced;
        let mine = |p: &IpNet| announced.get(p);
        let changed: Vec<Route> = match has {
            // A few wanted routes (the update of a change): a lookup each.
            Present::Announced if wanted.len() * 16 < announced.len() => wanted
                .iter()
                .filter(|w| {
                    let r = mine(&w.prefix);
                    unrecorded(w, r.map(|r| &*r.advert), r)
                })
                .cloned()
                .collect(),
            // Every route: walks of the sorted maps side by side, not 20,000 lookups.
            Present::Announced => {
                let recorded = announced.iter().map(|(p, r)| (*p, r));
                join(wanted.iter().map(|r| (r.prefix, r)), recorded)
                    .filter_map(|(_, w, r)| {
                        Some(w?).filter(|w| unrecorded(w, r.map(|r| &*r.advert), r))
                    })
                    .cloned()
                    .collect()
            }
            Present::Listed(listed) => {
                let has = listed.iter().map(|(p, a)| (*p, a.as_ref()));
                let pairs = join(wanted.iter().map(|r| (r.prefix, r)), has)
                    .filter_map(|(p, w, a)| Some((p, (w?, a.flatten()))));
                let recorded = announced.iter().map(|(p, r)| (*p, r));
                join(pairs, recorded)
                    .filter_map(|(_, wa, r)| {
                        let (w, a) = wa?;
                        unrecorded(w, a, r).then(|| w.clone())
                    })
                    .collect()
            }
        };
        let mut reasons = Reasons::default();
        let now = std::time::SystemTime::now();
        for r in changed {
            // gobgpd had the path already: never a repair, whatever ran it.
            let reason = self.reason(&r.prefix, Some(r.state), Why::Change, desired);
            let attributes = crate::config::attributes::describe(r.state, &r.advert.attrs);
            let before = Arc::make_mut(&mut self.announced).insert(r.prefix, r.clone());
            let same_path = before.as_ref().is_some_and(|b| b.advert == r.advert);
            let before = PrefixState::of(before.map(|b| b.state));
            self.history.record(
                r.prefix,
                before,
                PrefixState::of(Some(r.state)),
                reasons.get(&reason),
                now,
            );
            if same_path {
                warn!(target: NOTICE, prefix = %r.prefix, next_hop = %r.advert.next_hop, attributes = attributes.as_str(), reason = reason.as_str(), "now {}: its path is that of {}, gobgpd has no UPDATE to send", r.state.name(), before.name());
            } else {
                warn!(target: NOTICE, prefix = %r.prefix, next_hop = %r.advert.next_hop, attributes = attributes.as_str(), reason = reason.as_str(), "gobgpd announces it as wanted already (an answer from gobgpd was lost): recorded");
            }
        }
    }

    async fn execute<G: Gobgp>(
        &mut self,
        c: &G,
        p: Plan,
        why: Why,
        desired: &Arc<Desired>,
    ) -> Result<(), Lost> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let asn = self.intent.global.asn;
        let deletes: Vec<(IpNet, IpAddr)> = p
            .delete
            .into_iter()
            .filter_map(|prefix| self.spec(&prefix).map(|s| (prefix, s.next_hop)))
            .collect();
        // Up to IN_FLIGHT calls at once over the one HTTP/2 channel: 10,000 routes one
        // round trip after the other take seconds. Deletes all finish before adds start.
        let mut deleted = stream::iter(deletes)
            .map(|(prefix, nh)| async move { c.delete_path(prefix, nh).await.map(|()| prefix) })
            .buffer_unordered(IN_FLIGHT);
        let mut reasons = Reasons::default();
        let now = std::time::SystemTime::now();
        let mut left = false;
        let done = loop {
            let prefix = match deleted.try_next().await {
                Ok(Some(prefix)) => prefix,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            let reason = self.reason(&prefix, None, why, desired);
            let before = Arc::make_mut(&mut self.announced)
                .remove(&prefix)
                .map(|r| r.state);
            left |= self.leaving.remove(&prefix).is_some();
            self.history.record(
                prefix,
                PrefixState::of(before),
                PrefixState::Withdrawn,
                reasons.get(&reason),
                now,
            );
            warn!(target: NOTICE, prefix = %prefix, reason = reason.as_str(), "withdrawn");
        };
        drop(deleted);
        // Once, not per prefix: a reload that removes 10,000 prefixes withdraws them here.
        if left {
            self.set_prefixes();
        }
        done?;
        let mut added = stream::iter(p.add)
            .map(|r| async move { c.add_path(r.prefix, &r.advert, asn).await.map(|()| r) })
            .buffer_unordered(IN_FLIGHT);
        while let Some(r) = added.try_next().await? {
            let reason = self.reason(&r.prefix, Some(r.state), why, desired);
            let attributes = crate::config::attributes::describe(r.state, &r.advert.attrs);
            let before = Arc::make_mut(&mut self.announced).insert(r.prefix, r.clone());
            self.history.record(
                r.prefix,
                PrefixState::of(before.as_ref().map(|b| b.state)),
                PrefixState::of(Some(r.state)),
                reasons.get(&reason),
                now,
            );
            if before.is_some() {
                warn!(target: NOTICE, prefix = %r.prefix, next_hop = %r.advert.next_hop, attributes = attributes.as_str(), reason = reason.as_str(), "re-announced with new attributes");
            } else {
                warn!(target: NOTICE, prefix = %r.prefix, next_hop = %r.advert.next_hop, attributes = attributes.as_str(), reason = reason.as_str(), "announced");
            }
        }
        Ok(())
    }

    /// Withdraws every route anycastd announced; errors are logged, not returned.
    pub(super) async fn withdraw_all<G: Gobgp>(&mut self, c: &G) {
        use futures_util::stream::{self, StreamExt};
        let routes: Vec<(IpNet, IpAddr)> = self
            .announced
            .values()
            .map(|r| (r.prefix, r.advert.next_hop))
            .collect();
        let total = routes.len();
        let mut results = stream::iter(routes)
            .map(|(p, nh)| async move { (p, c.delete_path(p, nh).await) })
            .buffer_unordered(IN_FLIGHT);
        let mut failed = 0;
        let reason: std::sync::Arc<str> = std::sync::Arc::from("anycastd is shutting down");
        while let Some((p, result)) = results.next().await {
            match result {
                Ok(()) => {
                    let before = Arc::make_mut(&mut self.announced)
                        .remove(&p)
                        .map(|r| r.state);
                    self.history.record(
                        p,
                        PrefixState::of(before),
                        PrefixState::Withdrawn,
                        reason.clone(),
                        std::time::SystemTime::now(),
                    );
                    warn!(target: NOTICE, prefix = %p, reason = "anycastd is shutting down", "withdrawn");
                }
                Err(e) => {
                    failed += 1;
                    error!(prefix = %p, error = e.to_string().as_str(), "could not withdraw on shutdown");
                }
            }
        }
        self.release_mark(c).await;
        self.publish_usable();
        warn!(
            target: NOTICE,
            withdrawn = total - failed,
            failed,
            "shutdown: routes withdrawn"
        );
    }
}
