//! The announcer: makes the local gobgpd announce exactly the wanted prefixes.
//!
//! It owns gobgpd's global settings, the configured peers and the paths of the configured
//! prefixes; it leaves every other peer and path alone. The loop:
//! 1. connect to gobgpd's API, retrying with backoff (never giving up);
//! 2. set up: `StartBgp` if gobgpd has no global config (a different one is fatal), then
//!    add or update each configured peer;
//! 3. reconcile: compare the wanted routes with gobgpd's RIB and add/delete the difference
//!    (this is also the withdraw-at-start of every prefix that is not wanted yet);
//! 4. on every change of the services' states, add/delete just the difference; every
//!    `reconcile_interval`, reconcile again (a restarted gobgpd forgets API-added state,
//!    and this repairs it);
//! 5. on shutdown, withdraw everything it announced.
//!
//! Any RPC error drops the connection and goes back to 1.

pub mod client;
pub mod connection;
pub mod peers;
pub mod reconcile;

/// GoBGP's API, generated from `proto/` by `build.rs`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod api {
    tonic::include_proto!("apipb");
}

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use metrics::{Counter, Gauge};
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use self::client::{ClientError, GlobalSettings, GobgpClient, PeerChange, PeerSettings};
use self::connection::{Attempt, FailureLog, Link};
use self::reconcile::{Plan, Route, plan};
use crate::config::Config;
use crate::metrics::{Heartbeat, Metrics, names};
use crate::service::Gate;

/// How many AddPath/DeletePath calls may be in flight at once.
const IN_FLIGHT: usize = 64;

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

/// What the announcer knows of gobgpd, for the status view.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnnouncerState {
    pub gobgp: GobgpHealth,
    /// The prefixes of ours that gobgpd announces, as of the last change or reconcile.
    pub announced: BTreeSet<IpNet>,
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
    Unusable {
        error: String,
        since: std::time::SystemTime,
    },
}

impl GobgpHealth {
    pub fn is_usable(&self) -> bool {
        matches!(self, GobgpHealth::Usable)
    }
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

pub struct Announcer {
    address: String,
    rpc_timeout: Duration,
    reconcile_interval: Duration,
    global: GlobalSettings,
    peers: Vec<PeerSettings>,
    /// Every configured prefix, with its next hop.
    ours: BTreeMap<IpNet, IpAddr>,
    gate: watch::Receiver<Gate>,
    /// What gobgpd announces of ours, as far as anycastd knows.
    announced: BTreeSet<Route>,
    route_gauges: BTreeMap<IpNet, Gauge>,
    up: Gauge,
    reconnects: Counter,
    state: watch::Sender<AnnouncerState>,
    /// Told once the first attempt to connect to and set up gobgpd has finished, whatever
    /// its outcome (for systemd's READY=1).
    first_attempt: Option<tokio::sync::oneshot::Sender<()>>,
    /// Whether gobgpd has been set up before (a later set-up is a reconnect).
    connected_before: bool,
}

impl Announcer {
    /// Prepares the announcer; reads the peers' password files.
    pub fn new(
        cfg: &Config,
        gate: watch::Receiver<Gate>,
        metrics: &Metrics,
    ) -> Result<Announcer, String> {
        let a = &cfg.announcer;
        let mut peers = Vec::with_capacity(a.peers.len());
        for (i, p) in a.peers.iter().enumerate() {
            let password = match &p.password_file {
                Some(file) => {
                    let s = std::fs::read_to_string(file).map_err(|e| {
                        format!(
                            "announcer.peers[{i}].password_file: cannot read {}: {e}",
                            file.display()
                        )
                    })?;
                    Some(s.trim_end_matches(['\r', '\n']).to_string())
                }
                None => None,
            };
            peers.push(PeerSettings {
                name: p.name.clone(),
                address: p.remote_address,
                asn: p.remote_asn,
                port: p.remote_port,
                local_address: a.local_address,
                password,
                multihop_ttl: p.multihop_ttl,
                passive: p.passive,
            });
        }
        let mut ours = BTreeMap::new();
        for prefix in cfg.all_prefixes() {
            let nh = cfg.next_hop_for(&prefix).ok_or_else(|| {
                format!("no next hop for {prefix}: set announcer.next_hop / next_hop_ipv6")
            })?;
            ours.insert(prefix, nh);
        }
        let route_gauges = ours
            .keys()
            .map(|p| {
                let g = metrics.gauge(names::ROUTE_ANNOUNCED, &[("prefix", &p.to_string())]);
                g.set(0.0);
                (*p, g)
            })
            .collect();
        let up = metrics.gauge(names::GOBGP_UP, &[]);
        up.set(0.0);
        Ok(Announcer {
            address: a.gobgp.address.clone(),
            rpc_timeout: a.gobgp.timeout.0,
            reconcile_interval: a.gobgp.reconcile_interval.0,
            global: GlobalSettings {
                router_id: a.router_id,
                asn: a.local_asn,
                listen_port: a.listen_port,
            },
            peers,
            ours,
            gate,
            announced: BTreeSet::new(),
            route_gauges,
            up,
            reconnects: metrics.counter(names::GOBGP_RECONNECTS, &[]),
            state: watch::channel(AnnouncerState::default()).0,
            first_attempt: None,
            connected_before: false,
        })
    }

    /// Follows what the announcer knows of gobgpd.
    pub fn state(&self) -> watch::Receiver<AnnouncerState> {
        self.state.subscribe()
    }

    fn set_gauge(&self, prefix: &IpNet, on: bool) {
        if let Some(g) = self.route_gauges.get(prefix) {
            g.set(if on { 1.0 } else { 0.0 });
        }
    }

    /// Publishes that gobgpd is usable, and the announced prefixes. The route gauges follow
    /// each change where it is made (`execute`, `reconcile`, `withdraw_all`).
    fn publish_usable(&self) {
        self.publish(GobgpHealth::Usable);
    }

    /// Publishes that gobgpd cannot be used, and why. `anycastd_gobgp_up` is 0 from the
    /// first failed call until a set-up and reconcile succeed again.
    fn publish_unusable(&self, error: &ClientError) {
        let since = match &self.state.borrow().gobgp {
            GobgpHealth::Unusable { since, .. } => *since,
            _ => std::time::SystemTime::now(),
        };
        self.publish(GobgpHealth::Unusable {
            error: error.to_string(),
            since,
        });
    }

    fn publish(&self, gobgp: GobgpHealth) {
        self.up.set(if gobgp.is_usable() { 1.0 } else { 0.0 });
        let announced: BTreeSet<IpNet> = self.announced.iter().map(|r| r.prefix).collect();
        self.state.send_if_modified(|s| {
            let next = AnnouncerState { gobgp, announced };
            let changed = *s != next;
            *s = next;
            changed
        });
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

    /// The routes the services' states call for now.
    fn wanted(&self) -> BTreeSet<Route> {
        self.gate
            .borrow()
            .wanted()
            .into_iter()
            .filter_map(|prefix| {
                self.ours.get(&prefix).map(|nh| Route {
                    prefix,
                    next_hop: *nh,
                })
            })
            .collect()
    }

    /// Runs until `shutdown` turns true (then withdraws what it announced) or a fatal error.
    pub async fn run(
        mut self,
        mut shutdown: watch::Receiver<bool>,
        heartbeat: Heartbeat,
    ) -> Result<(), Fatal> {
        let mut link = Link::new(&self.address, self.rpc_timeout);
        let mut failures = FailureLog::new("announcer");
        loop {
            heartbeat.beat();
            let session_shutdown = shutdown.clone();
            let attempt = link
                .attempt(&mut shutdown, |c| {
                    self.session(c, session_shutdown, &heartbeat, &mut failures)
                })
                .await;
            match attempt {
                Attempt::Done(r) => return r,
                Attempt::Shutdown => return Ok(()),
                Attempt::Failed { error, retry_in } => {
                    failures.failed(&error, retry_in);
                    self.first_attempt_done();
                    self.publish_unusable(&error);
                    if !link.pause(retry_in, &mut shutdown).await {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// One connection's life: set up, reconcile, follow the services; `Ok` at shutdown or
    /// on a fatal problem, `Err` when gobgpd failed (the caller retries).
    async fn session(
        &mut self,
        mut c: GobgpClient,
        mut shutdown: watch::Receiver<bool>,
        heartbeat: &Heartbeat,
        failures: &mut FailureLog,
    ) -> Result<Result<(), Fatal>, ClientError> {
        match self.serve(&mut c, &mut shutdown, heartbeat, failures).await {
            Ok(()) => Ok(Ok(())),
            Err(Lost::Fatal(f)) => Ok(Err(f)),
            Err(Lost::Rpc(e)) => Err(e),
        }
    }

    /// Sets up the global config and the peers. Returns whether gobgpd had no global config
    /// (it is new, or it restarted and forgot everything).
    async fn setup(&self, c: &mut GobgpClient) -> Result<bool, Lost> {
        let fresh = match c.global().await? {
            None => {
                c.start_bgp(&self.global).await?;
                info!(router_id = %self.global.router_id, asn = self.global.asn, listen_port = self.global.listen_port, "started BGP in gobgpd");
                true
            }
            Some(g) if g == self.global => false,
            Some(g) => {
                return Err(Lost::Fatal(Fatal::GlobalMismatch {
                    address: self.address.clone(),
                    have: g,
                    want: self.global.clone(),
                }));
            }
        };
        for p in &self.peers {
            match c.ensure_peer(p).await? {
                PeerChange::Added => {
                    info!(peer = %p.name, address = %p.address, "added peer to gobgpd")
                }
                PeerChange::Updated => {
                    info!(peer = %p.name, address = %p.address, "updated peer in gobgpd")
                }
                PeerChange::Unchanged => debug!(peer = %p.name, "peer already configured"),
            }
        }
        Ok(fresh)
    }

    async fn serve(
        &mut self,
        c: &mut GobgpClient,
        shutdown: &mut watch::Receiver<bool>,
        heartbeat: &Heartbeat,
        failures: &mut FailureLog,
    ) -> Result<(), Lost> {
        self.reconcile(c, true).await?;
        failures.recovered(&self.address);
        if self.connected_before {
            self.reconnects.increment(1);
        }
        self.connected_before = true;
        info!(address = %self.address, "gobgpd set up and reconciled");
        self.first_attempt_done();
        let mut tick = tokio::time::interval(self.reconcile_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    self.withdraw_all(c).await;
                    return Ok(());
                }
                changed = self.gate.changed() => {
                    if changed.is_err() {
                        // The services are gone (shutting down): keep serving until told.
                        std::future::pending::<()>().await;
                    }
                    let wanted = self.wanted();
                    let present: Vec<Route> = self.announced.iter().copied().collect();
                    let p = plan(&self.our_prefixes(), &wanted, &present);
                    self.execute(c, p, "").await?;
                    self.publish_usable();
                }
                _ = tick.tick() => {
                    heartbeat.beat();
                    self.reconcile(c, false).await?;
                }
            }
        }
    }

    fn our_prefixes(&self) -> BTreeSet<IpNet> {
        self.ours.keys().copied().collect()
    }

    /// Makes gobgpd's RIB match the wanted routes, and repairs a gobgpd that forgot its
    /// global config and peers (it restarted).
    async fn reconcile(&mut self, c: &mut GobgpClient, first: bool) -> Result<(), Lost> {
        if self.setup(c).await? && !first {
            warn!("gobgpd had lost its global config (it restarted); set it up again");
            self.reconnects.increment(1);
        }
        let present: Vec<Route> = c
            .originated_paths()
            .await?
            .into_iter()
            .map(|p| Route {
                prefix: p.prefix,
                next_hop: p.next_hop,
            })
            .filter(|r| self.ours.contains_key(&r.prefix))
            .collect();
        self.announced = present.iter().copied().collect();
        let on: BTreeSet<IpNet> = present.iter().map(|r| r.prefix).collect();
        for (prefix, g) in &self.route_gauges {
            g.set(if on.contains(prefix) { 1.0 } else { 0.0 });
        }
        let p = plan(&self.our_prefixes(), &self.wanted(), &present);
        if !p.is_empty() {
            info!(
                add = p.add.len(),
                delete = p.delete.len(),
                "reconcile: gobgpd's RIB differs from the wanted routes"
            );
        }
        self.execute(c, p, "reconcile: ").await?;
        self.publish_usable();
        Ok(())
    }

    async fn execute(&mut self, c: &mut GobgpClient, p: Plan, why: &str) -> Result<(), Lost> {
        use futures_util::stream::{self, StreamExt, TryStreamExt};
        let gate = self.gate.borrow().clone();
        let client = &*c;
        // Up to IN_FLIGHT calls at once over the one HTTP/2 channel: 10,000 routes one
        // round trip after the other take seconds. Deletes all finish before adds start.
        let mut deleted = stream::iter(p.delete)
            .map(|r| async move { client.delete_path(r.prefix, r.next_hop).await.map(|()| r) })
            .buffer_unordered(IN_FLIGHT);
        while let Some(r) = deleted.try_next().await? {
            self.announced.remove(&r);
            self.set_gauge(&r.prefix, false);
            warn!(prefix = %r.prefix, reason = %format!("{why}{}", gate.explain(&r.prefix)), "withdrawn");
        }
        let mut added = stream::iter(p.add)
            .map(|r| async move { client.add_path(r.prefix, r.next_hop).await.map(|()| r) })
            .buffer_unordered(IN_FLIGHT);
        while let Some(r) = added.try_next().await? {
            self.announced.insert(r);
            self.set_gauge(&r.prefix, true);
            warn!(prefix = %r.prefix, next_hop = %r.next_hop, reason = %format!("{why}{}", gate.explain(&r.prefix)), "announced");
        }
        Ok(())
    }

    /// Withdraws every route anycastd announced; errors are logged, not returned.
    async fn withdraw_all(&mut self, c: &mut GobgpClient) {
        use futures_util::stream::{self, StreamExt};
        let routes: Vec<Route> = self.announced.iter().copied().collect();
        let total = routes.len();
        let client = &*c;
        let mut results = stream::iter(routes)
            .map(|r| async move { (r, client.delete_path(r.prefix, r.next_hop).await) })
            .buffer_unordered(IN_FLIGHT);
        let mut failed = 0;
        while let Some((r, result)) = results.next().await {
            match result {
                Ok(()) => {
                    self.announced.remove(&r);
                    self.set_gauge(&r.prefix, false);
                    warn!(prefix = %r.prefix, reason = "anycastd is shutting down", "withdrawn");
                }
                Err(e) => {
                    failed += 1;
                    error!(prefix = %r.prefix, error = %e, "could not withdraw on shutdown");
                }
            }
        }
        self.publish_usable();
        info!(
            withdrawn = total - failed,
            failed, "shutdown: routes withdrawn"
        );
    }
}
