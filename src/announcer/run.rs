//! The announcer's loop: connect to gobgpd, set it up ([`super::setup`]), reconcile, then
//! follow the gate's desired routes, reloads, lingers and the fleet guard's retries
//! ([`super::routes`]) until stopped.
//!
//! 1. connect to gobgpd's API, retrying with backoff (never giving up; [`super::connection`]);
//! 2. set up: `StartBgp` if gobgpd has no global config (a different one is fatal), make
//!    sure no other anycastd drives this gobgpd ([`super::owner`]), then add or update each
//!    configured peer;
//! 3. reconcile: compare the wanted routes with gobgpd's RIB and add, replace or delete
//!    the difference (this is also the withdraw-at-start of every prefix that is not
//!    wanted yet);
//! 4. on every change of the desired routes, of the config (a reload) or at the end of a
//!    draining route's linger, change just the difference; every `reconcile_interval`,
//!    reconcile again (a restarted gobgpd forgets API-added state, and this repairs it);
//! 5. on a graceful stop, drain every route (RFC 8326) and withdraw it after the linger;
//!    on an immediate one, withdraw everything at once.
//!
//! Any RPC error drops the connection and goes back to 1.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use ipnet::IpNet;
use metrics::{Counter, Gauge};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::info;

use super::connection::{Attempt, FailureLog, Link};
use super::gobgp::ops::{Api, Gobgp, GobgpError, PeerSettings};
use super::intent::{Intent, Route, RouteSpec};
use super::owner;
use super::reconcile::Wanted;
use super::state::{AnnouncerState, Fatal, GobgpHealth, Stop};
use crate::fleet::policy::Fleet;
use crate::metrics::{Heartbeat, Metrics, names};
use crate::service::gate::Gate;

/// Why the current connection to gobgpd ended.
pub(super) enum Lost {
    Fatal(Fatal),
    Rpc(GobgpError),
}

impl From<GobgpError> for Lost {
    fn from(e: GobgpError) -> Lost {
        Lost::Rpc(e)
    }
}

/// Why a route changes, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    /// The desired routes (or the linger of a draining route).
    Change,
    /// A reconcile found gobgpd's RIB different.
    Reconcile,
}

/// Whom the fleet guard is asked about in an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ask {
    /// Prefixes newly leaving; those it holds already stay held.
    NewOnly,
    /// Also the prefixes it holds (its retry, every round).
    AlsoHeld,
}

pub struct Announcer {
    /// The intent in force, and the channel of the next ones (reloads).
    pub(super) intent: Arc<Intent>,
    pub(super) intents: watch::Receiver<Arc<Intent>>,
    pub(super) gate: watch::Receiver<Gate>,
    pub(super) stop: watch::Receiver<Stop>,
    /// What gobgpd announces of ours, as far as anycastd knows; shared with the last
    /// published [`AnnouncerState`] (changed through `Arc::make_mut`: copied once per
    /// update that changes it, not on every publish).
    pub(super) announced: Arc<BTreeMap<IpNet, Route>>,
    /// Every prefix anycastd manages (the intent's and the leaving ones), as published;
    /// made again by [`Announcer::set_prefixes`] when either changes.
    prefixes: Arc<BTreeSet<IpNet>>,
    /// Prefixes a reload removed that are still announced: drained, then withdrawn.
    pub(super) leaving: BTreeMap<IpNet, RouteSpec>,
    /// Peers a reload removed, to delete from gobgpd.
    pub(super) removed_peers: Vec<PeerSettings>,
    /// The peers as anycastd last set them in this gobgpd (to tell its own changes from
    /// someone else's).
    pub(super) peers_set: BTreeMap<std::net::IpAddr, PeerSettings>,
    pub(super) wanted: Wanted,
    /// The last reconcile's inputs, when it found nothing to change.
    pub(super) settled: Option<super::memo::Settled>,
    /// The last update's, for the next one.
    pub(super) basis: Option<super::memo::Basis>,
    /// This process's ownership mark, what it has seen of others', and the entry it last
    /// wrote.
    pub(super) owner: owner::Owner,
    pub(super) mark_entry: Option<String>,
    /// Ownership marks already logged as not believed.
    pub(super) doubted_marks: BTreeSet<u64>,
    up: Gauge,
    pub(super) owner_conflict: Gauge,
    pub(super) reconnects: Counter,
    pub(super) foreign_changes: Counter,
    /// `anycastd_gobgp_api_info{api}` of each API.
    api_info: Vec<(Api, Gauge)>,
    pub(super) state: watch::Sender<AnnouncerState>,
    /// Each prefix's last transitions (SPEC 19), written where they are logged.
    pub(super) history: super::history::RouteHistory,
    failures: FailureLog,
    /// Told once the first attempt to connect to and set up gobgpd has finished, whatever
    /// its outcome (for systemd's READY=1).
    first_attempt: Option<tokio::sync::oneshot::Sender<()>>,
    /// Whether gobgpd has been set up before (a later set-up is a reconnect).
    pub(super) connected_before: bool,
    /// The fleet guard, when the config has one (SPEC 14): it owns the claims and holds.
    pub(super) fleet: Option<Fleet>,
}

impl Announcer {
    /// The announcer of the intents of `intents` (the current one now, reloads later).
    pub fn new(
        intents: watch::Receiver<Arc<Intent>>,
        gate: watch::Receiver<Gate>,
        stop: watch::Receiver<Stop>,
        fleet: Option<Fleet>,
        metrics: &Metrics,
    ) -> Announcer {
        let intent = intents.borrow().clone();
        let up = metrics.gauge(names::GOBGP_UP, &[]);
        up.set(0.0);
        let owner_conflict = metrics.gauge(names::GOBGP_OWNER_CONFLICT, &[]);
        owner_conflict.set(0.0);
        let prefixes: Arc<BTreeSet<IpNet>> = Arc::new(intent.routes.keys().copied().collect());
        let state = AnnouncerState {
            prefixes: prefixes.clone(),
            ..AnnouncerState::default()
        };
        Announcer {
            owner: owner::Owner::new(owner::Mark::new(intent.reconcile_interval)),
            intent,
            intents,
            gate,
            stop,
            announced: Arc::default(),
            prefixes,
            leaving: BTreeMap::new(),
            removed_peers: Vec::new(),
            peers_set: BTreeMap::new(),
            wanted: Wanted::default(),
            settled: None,
            basis: None,
            mark_entry: None,
            doubted_marks: BTreeSet::new(),
            up,
            owner_conflict,
            reconnects: metrics.counter(names::GOBGP_RECONNECTS, &[]),
            foreign_changes: metrics.counter(names::GOBGP_FOREIGN_CHANGES, &[]),
            api_info: Api::ALL
                .into_iter()
                .map(|api| {
                    (
                        api,
                        metrics.gauge(names::GOBGP_API_INFO, &[("api", api.name())]),
                    )
                })
                .collect(),
            state: watch::channel(state).0,
            history: super::history::RouteHistory::default(),
            failures: FailureLog::new("announcer"),
            first_attempt: None,
            connected_before: false,
            fleet,
        }
    }

    /// Follows what the announcer knows of gobgpd.
    pub fn state(&self) -> watch::Receiver<AnnouncerState> {
        self.state.subscribe()
    }

    /// Resolves once the first attempt to connect to gobgpd and set it up has finished,
    /// successfully or not. A dropped announcer drops the sender: the receiver then gets an
    /// error, which `systemd::spawn` takes as "never ready".
    pub fn first_attempt(&mut self) -> tokio::sync::oneshot::Receiver<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.first_attempt = Some(tx);
        rx
    }

    fn first_attempt_done(&mut self) {
        if let Some(tx) = self.first_attempt.take() {
            let _ = tx.send(());
        }
    }

    /// Publishes that gobgpd is usable, and what it announces.
    pub(super) fn publish_usable(&self) {
        self.publish(GobgpHealth::Usable);
    }

    /// Publishes that gobgpd cannot be used, and why. `anycastd_gobgp_up` is 0 from the
    /// first failed call until a set-up and reconcile succeed again.
    fn publish_unusable(&self, error: &GobgpError) {
        let since = match &self.state.borrow().gobgp {
            GobgpHealth::Unusable { since, .. } => *since,
            _ => SystemTime::now(),
        };
        self.publish(GobgpHealth::Unusable {
            error: error.to_string(),
            since,
        });
    }

    fn publish(&self, gobgp: GobgpHealth) {
        self.up.set(if gobgp.is_usable() { 1.0 } else { 0.0 });
        self.state.send_if_modified(|s| {
            // Shared, not copied: an unchanged map is the same `Arc`, and compares as equal
            // without a look at its 20,000 entries.
            let next = AnnouncerState {
                gobgp,
                prefixes: self.prefixes.clone(),
                announced: self.announced.clone(),
                foreign_change: s.foreign_change.clone(),
                owner_conflict: s.owner_conflict.clone(),
                api: s.api,
                bfd_error: s.bfd_error.clone(),
            };
            let changed = *s != next;
            *s = next;
            changed
        });
    }

    /// Makes the published prefixes again, after a change of the intent or of `leaving`.
    pub(super) fn set_prefixes(&mut self) {
        let prefixes = self.intent.routes.keys().chain(self.leaving.keys());
        self.prefixes = Arc::new(prefixes.copied().collect());
    }

    /// Runs until stopped (see [`Stop`]) or a fatal error.
    pub async fn run(mut self, heartbeat: Heartbeat) -> Result<(), Fatal> {
        let mut link = Link::new(&self.intent.address, self.intent.rpc_timeout);
        let mut stop = self.stop.clone();
        loop {
            heartbeat.beat();
            let attempt = link
                .attempt(&mut stop, |c| self.session(c, &heartbeat))
                .await;
            match attempt {
                Attempt::Done(r) => return r,
                Attempt::Shutdown => return Ok(()),
                Attempt::Failed { error, retry_in } => {
                    self.failures.failed(&error, retry_in);
                    self.first_attempt_done();
                    self.publish_unusable(&error);
                    if !link.pause(retry_in, &mut stop).await {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// One connection's life: set up, reconcile, follow the services; `Ok` when stopped or
    /// on a fatal problem, `Err` when gobgpd failed (the caller retries).
    async fn session<G: Gobgp>(
        &mut self,
        c: G,
        heartbeat: &Heartbeat,
    ) -> Result<Result<(), Fatal>, GobgpError> {
        match self.serve(&c, heartbeat).await {
            Ok(()) => Ok(Ok(())),
            Err(Lost::Fatal(f)) => Ok(Err(f)),
            Err(Lost::Rpc(e)) => Err(e),
        }
    }

    async fn serve<G: Gobgp>(&mut self, c: &G, heartbeat: &Heartbeat) -> Result<(), Lost> {
        // Found out at every connect (a gobgpd may have been replaced by another version).
        let api = c.api();
        info!(address = %self.intent.address, api = %api, "gobgpd speaks the GoBGP {api} API");
        for (a, g) in &self.api_info {
            g.set(if *a == api { 1.0 } else { 0.0 });
        }
        if self.state.borrow().api != Some(api) {
            self.state.send_modify(|s| s.api = Some(api));
        }
        self.reconcile(c, true).await?;
        self.failures.recovered(&self.intent.address);
        if self.connected_before {
            self.reconnects.increment(1);
        }
        self.connected_before = true;
        info!(address = %self.intent.address, "gobgpd set up and reconciled");
        self.first_attempt_done();
        let mut tick = tokio::time::interval(self.intent.reconcile_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let (mut gate_open, mut intents_open) = (true, true);
        let mut fleet_retry = retry_interval(self.intent.fleet_retry);
        loop {
            let stop = *self.stop.borrow();
            match stop {
                Stop::Now => {
                    self.withdraw_all(c).await;
                    return Ok(());
                }
                Stop::Graceful if self.announced.is_empty() => {
                    self.release_mark(c).await;
                    tracing::warn!(target: crate::priority::NOTICE, "shutdown: every route withdrawn");
                    return Ok(());
                }
                _ => {}
            }
            let linger_end = self.wanted.next_deadline(self.intent.pace());
            let holds = self.fleet.as_ref().is_some_and(Fleet::holds_any);
            tokio::select! {
                changed = self.stop.changed() => {
                    if changed.is_err() {
                        // The daemon is gone: stop now.
                        self.withdraw_all(c).await;
                        return Ok(());
                    }
                    if *self.stop.borrow() == Stop::Graceful {
                        // INFO: the signal's own WARN line already says that it stops.
                        info!(
                            routes = self.announced.len(),
                            linger = %humantime::format_duration(self.intent.drain_linger),
                            "shutting down: draining every route, then withdrawing it"
                        );
                        self.update(c, Why::Change).await?;
                    }
                }
                changed = self.gate.changed(), if gate_open => {
                    gate_open = changed.is_ok();
                    self.update(c, Why::Change).await?;
                }
                changed = self.intents.changed(), if intents_open => {
                    intents_open = changed.is_ok();
                    if intents_open {
                        self.apply_intent(c).await?;
                        // A reload may have changed the services' rounds.
                        if fleet_retry.period() != self.intent.fleet_retry {
                            fleet_retry = retry_interval(self.intent.fleet_retry);
                        }
                    }
                }
                _ = sleep_until(linger_end) => {
                    self.update(c, Why::Change).await?;
                }
                _ = fleet_retry.tick(), if holds => {
                    // The guard holds prefixes: ask it again, every round (and only here).
                    self.update_with(c, Why::Change, Ask::AlsoHeld).await?;
                }
                _ = tick.tick() => {
                    heartbeat.beat();
                    self.reconcile(c, false).await?;
                }
            }
        }
    }

    /// Takes a new intent (a reload): removed peers are deleted, the others added or
    /// updated, removed prefixes drained and withdrawn, the rest follows the services.
    async fn apply_intent<G: Gobgp>(&mut self, c: &G) -> Result<(), Lost> {
        let next = self.intents.borrow_and_update().clone();
        let old = std::mem::replace(&mut self.intent, next);
        self.removed_peers.extend(
            old.peers
                .iter()
                .filter(|p| !self.intent.peers.iter().any(|n| n.address == p.address))
                .cloned(),
        );
        let announced = old
            .routes
            .iter()
            .filter(|(p, _)| self.announced.contains_key(p));
        for (prefix, spec) in announced {
            if !self.intent.routes.contains_key(prefix) {
                self.leaving.insert(*prefix, spec.clone());
            }
        }
        self.leaving
            .retain(|p, _| !self.intent.routes.contains_key(p));
        self.set_prefixes();
        self.setup_peers(c).await?;
        self.update(c, Why::Change).await?;
        self.publish_usable();
        Ok(())
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The pace at which the fleet guard is asked again about the prefixes it holds.
fn retry_interval(every: std::time::Duration) -> tokio::time::Interval {
    let mut i = tokio::time::interval(every);
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}
