//! The announcer: makes the local gobgpd announce exactly the wanted routes, with the
//! wanted attributes.
//!
//! It owns gobgpd's global settings, the configured peers and the paths of the configured
//! prefixes; it leaves every other peer and path alone. The loop:
//! 1. connect to gobgpd's API, retrying with backoff (never giving up; [`connection`]);
//! 2. set up: `StartBgp` if gobgpd has no global config (a different one is fatal), make
//!    sure no other anycastd drives this gobgpd ([`owner`]), then add or update each
//!    configured peer;
//! 3. reconcile: compare the wanted routes with gobgpd's RIB and add, replace or delete
//!    the difference (this is also the withdraw-at-start of every prefix that is not
//!    wanted yet);
//! 4. on every change of the services' states, of the config (a reload) or at the end of
//!    a draining route's linger, change just the difference; every `reconcile_interval`,
//!    reconcile again (a restarted gobgpd forgets API-added state, and this repairs it);
//! 5. on a graceful stop, drain every route (RFC 8326) and withdraw it after the linger;
//!    on an immediate one, withdraw everything at once.
//!
//! Any RPC error drops the connection and goes back to 1.

pub mod client;
pub mod connection;
pub mod intent;
pub mod owner;
pub mod peers;
pub mod reconcile;

/// GoBGP's API, generated from `proto/` by `build.rs`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod api {
    tonic::include_proto!("apipb");
}

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use ipnet::IpNet;
use metrics::{Counter, Gauge};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use self::client::{ClientError, GlobalSettings, GobgpClient, PeerChange, PeerSettings};
use self::connection::{Attempt, FailureLog, Link};
use self::intent::{Intent, RouteSpec};
use self::reconcile::{Advert, Plan, Route, Wanted, plan};
use crate::config::attributes::{PathAttributes, RouteState};
use crate::fleet::{Decision, Fleet, Held};
use crate::metrics::{Heartbeat, Metrics, names};
use crate::service::Gate;

/// How many AddPath/DeletePath calls may be in flight at once.
const IN_FLIGHT: usize = 64;

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
    /// still on their way out.
    pub prefixes: BTreeSet<IpNet>,
    /// The prefixes of ours that gobgpd announces, as of the last change or reconcile, with
    /// the state they are announced in and its attributes.
    pub announced: BTreeMap<IpNet, (RouteState, PathAttributes)>,
    /// The last time someone else changed anycastd's paths or peers in gobgpd, and what.
    pub foreign_change: Option<(SystemTime, String)>,
    /// Another anycastd that owns this gobgpd (this one then leaves it alone), described.
    pub owner_conflict: Option<String>,
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

/// `anycastd_route_announced{prefix}` for every prefix anycastd manages, rendered at scrape
/// time so that the prefixes a reload removed disappear with them. While gobgpd cannot be
/// reached the series keep saying what gobgpd was last seen to announce (`anycastd_gobgp_up`
/// says that it cannot be asked).
pub fn render_route_metrics(state: &AnnouncerState) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let n = names::ROUTE_ANNOUNCED;
    let _ = writeln!(s, "# HELP {n} {}\n# TYPE {n} gauge", names::help(n));
    for p in &state.prefixes {
        let on = u8::from(state.announced.contains_key(p));
        let _ = writeln!(s, "{n}{{prefix=\"{p}\"}} {on}");
    }
    s
}

/// Why the current connection to gobgpd ended.
enum Lost {
    Fatal(Fatal),
    Rpc(ClientError),
}

impl From<ClientError> for Lost {
    fn from(e: ClientError) -> Lost {
        Lost::Rpc(e)
    }
}

/// Why a route changes, for the log line.
#[derive(Clone, Copy)]
enum Why {
    /// The services' states (or the linger of a draining route).
    Change,
    /// A reconcile found gobgpd's RIB different.
    Reconcile,
}

pub struct Announcer {
    /// The intent in force, and the channel of the next ones (reloads).
    intent: Arc<Intent>,
    intents: watch::Receiver<Arc<Intent>>,
    gate: watch::Receiver<Gate>,
    stop: watch::Receiver<Stop>,
    /// What gobgpd announces of ours, as far as anycastd knows.
    announced: BTreeMap<IpNet, Route>,
    /// Prefixes a reload removed that are still announced: drained, then withdrawn.
    leaving: BTreeMap<IpNet, RouteSpec>,
    /// Peers a reload removed, to delete from gobgpd.
    removed_peers: Vec<PeerSettings>,
    /// The peers as anycastd last set them in this gobgpd (to tell its own changes from
    /// someone else's).
    peers_set: BTreeMap<std::net::IpAddr, PeerSettings>,
    wanted: Wanted,
    /// This process's ownership mark, what it has seen of others', and the entry it last
    /// wrote.
    owner: owner::Owner,
    mark_entry: Option<String>,
    up: Gauge,
    owner_conflict: Gauge,
    reconnects: Counter,
    foreign_changes: Counter,
    state: watch::Sender<AnnouncerState>,
    failures: FailureLog,
    /// Told once the first attempt to connect to and set up gobgpd has finished, whatever
    /// its outcome (for systemd's READY=1).
    first_attempt: Option<tokio::sync::oneshot::Sender<()>>,
    /// Whether gobgpd has been set up before (a later set-up is a reconnect).
    connected_before: bool,
    /// The fleet guard, when the config has one (SPEC 14).
    fleet: Option<Fleet>,
    /// Prefixes the guard keeps announced although their services failed or were drained.
    held: BTreeMap<IpNet, Held>,
    /// Prefixes this site has claimed in the fleet (announced with healthy services).
    claimed: BTreeSet<IpNet>,
    /// Ownership marks already logged as not believed.
    doubted_marks: BTreeSet<u64>,
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
        let state = AnnouncerState {
            prefixes: intent.routes.keys().copied().collect(),
            ..AnnouncerState::default()
        };
        Announcer {
            owner: owner::Owner::new(owner::Mark::new(intent.reconcile_interval)),
            intent,
            intents,
            gate,
            stop,
            announced: BTreeMap::new(),
            leaving: BTreeMap::new(),
            removed_peers: Vec::new(),
            peers_set: BTreeMap::new(),
            wanted: Wanted::default(),
            mark_entry: None,
            up,
            owner_conflict,
            reconnects: metrics.counter(names::GOBGP_RECONNECTS, &[]),
            foreign_changes: metrics.counter(names::GOBGP_FOREIGN_CHANGES, &[]),
            state: watch::channel(state).0,
            failures: FailureLog::new("announcer"),
            first_attempt: None,
            connected_before: false,
            fleet,
            held: BTreeMap::new(),
            claimed: BTreeSet::new(),
            doubted_marks: BTreeSet::new(),
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
    fn publish_usable(&self) {
        self.publish(GobgpHealth::Usable);
    }

    /// Publishes that gobgpd cannot be used, and why. `anycastd_gobgp_up` is 0 from the
    /// first failed call until a set-up and reconcile succeed again.
    fn publish_unusable(&self, error: &ClientError) {
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
        let announced = self
            .announced
            .iter()
            .map(|(p, r)| (*p, (r.state, r.advert.attrs.clone())))
            .collect();
        let prefixes = self
            .intent
            .routes
            .keys()
            .chain(self.leaving.keys())
            .copied()
            .collect();
        self.state.send_if_modified(|s| {
            let next = AnnouncerState {
                gobgp,
                prefixes,
                announced,
                foreign_change: s.foreign_change.clone(),
                owner_conflict: s.owner_conflict.clone(),
            };
            let changed = *s != next;
            *s = next;
            changed
        });
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
    async fn session(
        &mut self,
        c: GobgpClient,
        heartbeat: &Heartbeat,
    ) -> Result<Result<(), Fatal>, ClientError> {
        match self.serve(&c, heartbeat).await {
            Ok(()) => Ok(Ok(())),
            Err(Lost::Fatal(f)) => Ok(Err(f)),
            Err(Lost::Rpc(e)) => Err(e),
        }
    }

    async fn serve(&mut self, c: &GobgpClient, heartbeat: &Heartbeat) -> Result<(), Lost> {
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
                    info!("shutdown: every route withdrawn");
                    return Ok(());
                }
                _ => {}
            }
            let linger_end = self.wanted.next_deadline(self.intent.drain_linger);
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
                _ = fleet_retry.tick(), if !self.held.is_empty() => {
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
    async fn apply_intent(&mut self, c: &GobgpClient) -> Result<(), Lost> {
        let next = self.intents.borrow_and_update().clone();
        let old = std::mem::replace(&mut self.intent, next);
        self.removed_peers.extend(
            old.peers
                .iter()
                .filter(|p| !self.intent.peers.iter().any(|n| n.address == p.address))
                .cloned(),
        );
        for (prefix, spec) in &old.routes {
            if !self.intent.routes.contains_key(prefix) && self.announced.contains_key(prefix) {
                self.leaving.insert(*prefix, spec.clone());
            }
        }
        self.leaving
            .retain(|p, _| !self.intent.routes.contains_key(p));
        self.setup_peers(c).await?;
        self.update(c, Why::Change).await?;
        self.publish_usable();
        Ok(())
    }

    /// Sets up the global config, the ownership mark and the peers. Returns whether gobgpd
    /// had no global config (it is new, or it restarted and forgot everything).
    async fn setup(&mut self, c: &GobgpClient) -> Result<bool, Lost> {
        let want = &self.intent.global;
        let fresh = match c.global().await? {
            None => {
                c.start_bgp(want).await?;
                info!(router_id = %want.router_id, asn = %want.asn, listen_port = %want.listen_port, "started BGP in gobgpd");
                true
            }
            Some(g) if g == *want => false,
            Some(have) => {
                return Err(Lost::Fatal(Fatal::GlobalMismatch {
                    address: self.intent.address.clone(),
                    have,
                    want: want.clone(),
                }));
            }
        };
        if fresh {
            self.peers_set.clear();
        }
        self.claim(c).await?;
        self.setup_peers(c).await?;
        Ok(fresh)
    }

    /// Makes sure this gobgpd is ours to drive, and refreshes our mark ([`owner`]).
    async fn claim(&mut self, c: &GobgpClient) -> Result<(), Lost> {
        let entries = c.community_set(owner::SET_NAME).await?;
        let mine = self.owner.mark.clone();
        let verdict = self.owner.decide(
            &entries,
            owner::unix_now(),
            std::time::Instant::now(),
            |m| owner::gone_here(&mine, m),
        );
        match verdict {
            owner::Verdict::Own {
                add,
                remove,
                doubted,
            } => {
                for (m, why) in doubted {
                    if self.doubted_marks.insert(m.id) {
                        error!(mark = m.entry().as_str(), why = %why, "ignoring an ownership mark in gobgpd that claims to be an older anycastd: this anycastd keeps driving gobgpd (did someone write to the community set anycastd-owner?)");
                    }
                }
                if !entries.contains(&add) {
                    c.add_to_community_set(owner::SET_NAME, vec![add.clone()])
                        .await?;
                }
                if !remove.is_empty() {
                    c.remove_from_community_set(owner::SET_NAME, remove).await?;
                }
                self.mark_entry = Some(add);
                self.set_owner_conflict(None);
                Ok(())
            }
            owner::Verdict::Yield { owner } => {
                self.set_owner_conflict(Some(owner.to_string()));
                Err(Lost::Rpc(c.owned_by(owner.to_string())))
            }
        }
    }

    /// Says (metric, `/status`, `/healthz`) whether another anycastd owns this gobgpd.
    fn set_owner_conflict(&self, owner: Option<String>) {
        self.owner_conflict
            .set(if owner.is_some() { 1.0 } else { 0.0 });
        self.state.send_if_modified(|s| {
            let changed = s.owner_conflict != owner;
            s.owner_conflict = owner;
            changed
        });
    }

    /// Removes our mark, so that a successor takes gobgpd at once. Errors are logged.
    async fn release_mark(&mut self, c: &GobgpClient) {
        if let Some(entry) = self.mark_entry.take()
            && let Err(e) = c
                .remove_from_community_set(owner::SET_NAME, vec![entry])
                .await
        {
            debug!(
                error = e.to_string().as_str(),
                "could not remove the ownership mark"
            );
        }
    }

    /// Deletes the peers a reload removed, then adds or updates each configured peer.
    async fn setup_peers(&mut self, c: &GobgpClient) -> Result<(), Lost> {
        while let Some(p) = self.removed_peers.pop() {
            if let Err(e) = c.delete_peer(p.address).await {
                self.removed_peers.push(p);
                return Err(e.into());
            }
            self.peers_set.remove(&p.address);
            warn!(peer = %p.name, address = %p.address, "removed peer from gobgpd (no longer in the config)");
        }
        for p in &self.intent.peers {
            let change = c.ensure_peer(p).await?;
            let ours_before = self.peers_set.get(&p.address) == Some(p);
            match change {
                PeerChange::Unchanged => debug!(peer = %p.name, "peer already configured"),
                _ if ours_before => {
                    let what = format!(
                        "peer {} ({}) was {} in gobgpd by someone else",
                        p.name,
                        p.address,
                        if change == PeerChange::Added {
                            "deleted"
                        } else {
                            "changed"
                        }
                    );
                    self.foreign_change(what);
                }
                PeerChange::Added => {
                    info!(peer = %p.name, address = %p.address, "added peer to gobgpd")
                }
                PeerChange::Updated => {
                    info!(peer = %p.name, address = %p.address, "updated peer in gobgpd")
                }
            }
            self.peers_set.insert(p.address, p.clone());
        }
        Ok(())
    }

    /// Someone else changed what anycastd set up in gobgpd: counted, logged (ERROR: a
    /// person should find out who), shown in `/status`; anycastd puts it back.
    fn foreign_change(&self, what: String) {
        self.foreign_changes.increment(1);
        error!(
            change = what.as_str(),
            "gobgpd was changed by someone else; anycastd puts its own settings back (is another program driving this gobgpd?)"
        );
        self.state
            .send_modify(|s| s.foreign_change = Some((SystemTime::now(), what)));
    }

    /// The prefixes anycastd manages now: the config's and those on their way out.
    fn specs(&self) -> BTreeMap<IpNet, RouteSpec> {
        let mut all = self.intent.routes.clone();
        all.extend(self.leaving.iter().map(|(p, s)| (*p, s.clone())));
        all
    }

    /// The routes wanted now, given what gobgpd announces (`present`).
    fn wanted(&mut self, present: &BTreeSet<IpNet>) -> BTreeMap<IpNet, Route> {
        let stopping = *self.stop.borrow() != Stop::Running;
        let mut states: BTreeMap<IpNet, RouteState> = BTreeMap::new();
        {
            let gate = self.gate.borrow();
            let gated = gate.wanted();
            for p in self.intent.routes.keys() {
                let state = if stopping {
                    // Shutting down: every route drains.
                    Some(RouteState::Draining)
                } else if let Some(s) = gated.get(p) {
                    Some(*s)
                } else if gate.gating(p).is_empty() {
                    // No service gates it any more: a reload removed it, and the new intent
                    // is on its way. It leaves gracefully, whichever comes first.
                    Some(RouteState::Draining)
                } else {
                    None
                };
                if let Some(s) = state {
                    states.insert(*p, s);
                }
            }
        }
        states.extend(self.leaving.keys().map(|p| (*p, RouteState::Draining)));
        let specs = self.specs();
        self.wanted.routes(
            &specs,
            &states,
            present,
            self.intent.drain_linger,
            Instant::now(),
        )
    }

    /// Applies a change of the wanted routes against what anycastd knows gobgpd has.
    async fn update(&mut self, c: &GobgpClient, why: Why) -> Result<(), Lost> {
        self.update_with(c, why, Ask::NewOnly).await
    }

    /// [`Announcer::update`], asking the fleet guard as `ask` says.
    async fn update_with(&mut self, c: &GobgpClient, why: Why, ask: Ask) -> Result<(), Lost> {
        let present_prefixes: BTreeSet<IpNet> = self.announced.keys().copied().collect();
        let wanted = self.wanted(&present_prefixes);
        let wanted = self.guard(wanted, &present_prefixes, ask).await;
        let present = self
            .announced
            .iter()
            .map(|(p, r)| (*p, Some(r.advert.clone())))
            .collect();
        let p = plan(&self.specs().keys().copied().collect(), &wanted, &present);
        self.execute(c, p, why).await?;
        self.sync_claims().await;
        self.publish_usable();
        Ok(())
    }

    /// Makes gobgpd's RIB match the wanted routes, and repairs a gobgpd that forgot its
    /// global config and peers (it restarted) or whose paths someone else changed.
    async fn reconcile(&mut self, c: &GobgpClient, first: bool) -> Result<(), Lost> {
        let fresh = self.setup(c).await?;
        if fresh && !first {
            warn!("gobgpd had lost its global config (it restarted); set it up again");
            self.reconnects.increment(1);
        }
        let ours: BTreeSet<IpNet> = self.specs().keys().copied().collect();
        let present: BTreeMap<IpNet, Option<Advert>> = c
            .originated_paths(self.intent.global.asn)
            .await?
            .into_iter()
            .filter(|p| ours.contains(&p.prefix))
            .map(|p| (p.prefix, p.advert))
            .collect();
        if !first && !fresh {
            let believed: BTreeMap<IpNet, Option<Advert>> = self
                .announced
                .iter()
                .map(|(p, r)| (*p, Some(r.advert.clone())))
                .collect();
            if believed != present {
                let changed: Vec<String> = ours
                    .iter()
                    .filter(|p| believed.get(p) != present.get(p))
                    .map(ToString::to_string)
                    .collect();
                self.foreign_change(format!("paths of {} were changed", changed.join(", ")));
            }
        }
        // What gobgpd really announces replaces what anycastd believed.
        self.announced.retain(|p, _| present.contains_key(p));
        let present_prefixes: BTreeSet<IpNet> = present.keys().copied().collect();
        let wanted = self.wanted(&present_prefixes);
        let wanted = self.guard(wanted, &present_prefixes, Ask::NewOnly).await;
        let p = plan(&ours, &wanted, &present);
        if !p.is_empty() {
            info!(
                add = p.add.len(),
                delete = p.delete.len(),
                "reconcile: gobgpd's RIB differs from the wanted routes"
            );
        }
        self.execute(c, p, Why::Reconcile).await?;
        self.sync_claims().await;
        self.publish_usable();
        Ok(())
    }

    /// The fleet guard (SPEC 14): a prefix whose services failed, or whose drain (without
    /// `--force`) has lingered, is withdrawn only when etcd says enough other sites announce
    /// it. Otherwise it is *held*: kept announced, with its degraded attributes (its draining
    /// ones for a drain), and the guard is asked again every round (`ask`: a prefix held
    /// already stays held without a question to etcd, so that an update for another
    /// service never waits on etcd for it). Shutdown, reloads that remove a prefix and
    /// forced drains are not guarded.
    async fn guard(
        &mut self,
        mut wanted: BTreeMap<IpNet, Route>,
        present: &BTreeSet<IpNet>,
        ask: Ask,
    ) -> BTreeMap<IpNet, Route> {
        let Some(fleet) = self.fleet.clone() else {
            return wanted;
        };
        if *self.stop.borrow() != Stop::Running {
            return wanted;
        }
        // Prefixes of the intent only: one leaving after a reload is never guarded.
        let candidates: Vec<(IpNet, RouteState, &RouteSpec)> = {
            let gate = self.gate.borrow();
            let states = gate.wanted();
            present
                .iter()
                .filter(|p| !wanted.contains_key(p))
                .filter_map(|p| Some((*p, self.intent.routes.get(p)?)))
                .filter_map(|(p, spec)| match states.get(&p) {
                    // Its services failed.
                    None if !gate.gating(&p).is_empty() => Some((p, RouteState::Degraded, spec)),
                    // Drained without --force, and the linger is over.
                    Some(RouteState::Draining) if !gate.drain_forced(&p) => {
                        Some((p, RouteState::Draining, spec))
                    }
                    _ => None,
                })
                .collect()
        };
        let (candidates, still_held): (Vec<_>, Vec<_>) = candidates
            .into_iter()
            .partition(|(p, _, _)| ask == Ask::AlsoHeld || !self.held.contains_key(p));
        for (prefix, hold_as, spec) in still_held {
            wanted.insert(prefix, spec.route(prefix, hold_as));
        }
        if candidates.is_empty() {
            return wanted;
        }
        let decisions = futures_util::future::join_all(
            candidates.iter().map(|(p, _, _)| fleet.release_guarded(*p)),
        )
        .await;
        for ((prefix, hold_as, spec), decision) in candidates.into_iter().zip(decisions) {
            match decision {
                Decision::Released(release) => {
                    self.held.remove(&prefix);
                    self.claimed.remove(&prefix);
                    warn!(prefix = %prefix, release = release.to_string().as_str(), "fleet guard: this site may withdraw");
                }
                Decision::Held(held) => {
                    let new = self.held.get(&prefix).map(|h| &h.reason) != Some(&held.reason);
                    if new {
                        error!(prefix = %prefix, "{held}");
                    } else {
                        debug!(prefix = %prefix, "{held}");
                    }
                    self.held.insert(prefix, held);
                    wanted.insert(prefix, spec.route(prefix, hold_as));
                }
            }
        }
        wanted
    }

    /// Keeps this site's claims in the fleet in step with what it announces: a prefix
    /// announced with healthy services is claimed (after its AddPath, never before); one
    /// withdrawn without the guard (a reload removed it, a forced drain, gobgpd lost it) is
    /// released. Errors are logged by the fleet, whose task repairs etcd.
    async fn sync_claims(&mut self) {
        let Some(fleet) = self.fleet.clone() else {
            return;
        };
        if *self.stop.borrow() != Stop::Running {
            // The fleet task revokes the lease at shutdown: every claim goes at once.
            return;
        }
        let healthy: BTreeSet<IpNet> = {
            let gate = self.gate.borrow();
            gate.wanted()
                .into_iter()
                .filter(|(_, s)| *s != RouteState::Draining)
                .map(|(p, _)| p)
                .collect()
        };
        let claim: Vec<IpNet> = self
            .announced
            .keys()
            .filter(|p| healthy.contains(p) && self.intent.routes.contains_key(p))
            .filter(|p| !self.claimed.contains(p) || self.held.contains_key(p))
            .copied()
            .collect();
        let release: Vec<IpNet> = self
            .claimed
            .iter()
            .filter(|p| !self.announced.contains_key(p))
            .copied()
            .collect();
        let claims = futures_util::future::join_all(claim.iter().map(|p| fleet.claim(*p)));
        let releases =
            futures_util::future::join_all(release.iter().map(|p| fleet.release_forced(*p)));
        let (claimed, released) = tokio::join!(claims, releases);
        for (p, r) in claim.into_iter().zip(claimed) {
            if self.held.remove(&p).is_some() {
                warn!(prefix = %p, "fleet guard: the services are back; no longer held");
            }
            if let Err(e) = r {
                debug!(prefix = %p, error = e.to_string().as_str(), "fleet: claim not written yet (the fleet task retries)");
            }
            self.claimed.insert(p);
        }
        for (p, r) in release.into_iter().zip(released) {
            if let Err(e) = r {
                debug!(prefix = %p, error = e.to_string().as_str(), "fleet: claim not removed yet (the fleet task retries)");
            }
            self.claimed.remove(&p);
        }
    }

    /// Why `prefix` changes, for the log line.
    fn reason(&self, prefix: &IpNet, state: Option<RouteState>, why: Why) -> String {
        let base =
            if self.leaving.contains_key(prefix) || self.gate.borrow().gating(prefix).is_empty() {
                "removed from the config".to_string()
            } else if *self.stop.borrow() != Stop::Running {
                "anycastd is shutting down".to_string()
            } else if state.is_none()
                && self.gate.borrow().wanted().get(prefix) == Some(&RouteState::Draining)
            {
                format!("{} (drain linger over)", self.gate.borrow().explain(prefix))
            } else {
                self.gate.borrow().explain(prefix)
            };
        match why {
            Why::Change => base,
            Why::Reconcile => format!("reconcile: {base}"),
        }
    }

    async fn execute(&mut self, c: &GobgpClient, p: Plan, why: Why) -> Result<(), Lost> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let client = c;
        let asn = self.intent.global.asn;
        let specs = self.specs();
        let deletes: Vec<(IpNet, std::net::IpAddr)> = p
            .delete
            .into_iter()
            .filter_map(|prefix| specs.get(&prefix).map(|s| (prefix, s.next_hop)))
            .collect();
        // Up to IN_FLIGHT calls at once over the one HTTP/2 channel: 10,000 routes one
        // round trip after the other take seconds. Deletes all finish before adds start.
        let mut deleted = stream::iter(deletes)
            .map(
                |(prefix, nh)| async move { client.delete_path(prefix, nh).await.map(|()| prefix) },
            )
            .buffer_unordered(IN_FLIGHT);
        while let Some(prefix) = deleted.try_next().await? {
            let reason = self.reason(&prefix, None, why);
            self.announced.remove(&prefix);
            self.leaving.remove(&prefix);
            warn!(prefix = %prefix, reason = reason.as_str(), "withdrawn");
        }
        let mut added = stream::iter(p.add)
            .map(|r| async move { client.add_path(r.prefix, &r.advert, asn).await.map(|()| r) })
            .buffer_unordered(IN_FLIGHT);
        while let Some(r) = added.try_next().await? {
            let reason = self.reason(&r.prefix, Some(r.state), why);
            let attributes = crate::config::attributes::describe(r.state, &r.advert.attrs);
            let before = self.announced.insert(r.prefix, r.clone());
            if before.is_some() {
                warn!(prefix = %r.prefix, next_hop = %r.advert.next_hop, attributes = attributes.as_str(), reason = reason.as_str(), "re-announced with new attributes");
            } else {
                warn!(prefix = %r.prefix, next_hop = %r.advert.next_hop, attributes = attributes.as_str(), reason = reason.as_str(), "announced");
            }
        }
        Ok(())
    }

    /// Withdraws every route anycastd announced; errors are logged, not returned.
    async fn withdraw_all(&mut self, c: &GobgpClient) {
        use futures_util::stream::{self, StreamExt};
        let routes: Vec<(IpNet, std::net::IpAddr)> = self
            .announced
            .values()
            .map(|r| (r.prefix, r.advert.next_hop))
            .collect();
        let total = routes.len();
        let mut results = stream::iter(routes)
            .map(|(p, nh)| async move { (p, c.delete_path(p, nh).await) })
            .buffer_unordered(IN_FLIGHT);
        let mut failed = 0;
        while let Some((p, result)) = results.next().await {
            match result {
                Ok(()) => {
                    self.announced.remove(&p);
                    warn!(prefix = %p, reason = "anycastd is shutting down", "withdrawn");
                }
                Err(e) => {
                    failed += 1;
                    error!(prefix = %p, error = e.to_string().as_str(), "could not withdraw on shutdown");
                }
            }
        }
        self.release_mark(c).await;
        self.publish_usable();
        info!(
            withdrawn = total - failed,
            failed, "shutdown: routes withdrawn"
        );
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Whom the fleet guard is asked about in an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// Prefixes newly leaving; those it holds already stay held.
    NewOnly,
    /// Also the prefixes it holds (its retry, every round).
    AlsoHeld,
}

/// The pace at which the fleet guard is asked again about the prefixes it holds.
fn retry_interval(every: std::time::Duration) -> tokio::time::Interval {
    let mut i = tokio::time::interval(every);
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}
