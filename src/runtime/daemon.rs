//! The daemon as a library function: [`run`] takes a validated config and the receiving end
//! of its commands ([`Commands`]), runs the services, the announcer, the peer monitor, the
//! fleet, the metrics endpoint and the control socket, and returns when it has stopped.
//! Whoever holds a [`Handle`](super::commands::Handle) drives it: the binary's signal
//! handler and control socket, and tests in-process.
//!
//! One type, [`Daemon`], owns everything that runs, so that a reload or a drain is a
//! change to it: a reload reads and validates the whole file first, plans the difference
//! ([`super::reload`]), builds what it starts, and only then applies it; a drain changes
//! the gate's view of a service ([`super::drain`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::priority::NOTICE;
use metrics::Gauge;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use super::commands::{Answer, Command, Commands, Done, Drained, Refused, Undrained};
use super::drain::{self, Drains, Reason, Selection};
use super::reload::{self, ReloadError, ReloadPlan};
use crate::announcer::intent::Intent;
use crate::announcer::peers::{PeerMonitor, PeerTable};
use crate::announcer::{Announcer, AnnouncerState, Fatal, GobgpHealth, Stop};
use crate::config::{self, Config, ServiceConfig};
use crate::fleet::claims::Claims;
use crate::fleet::policy::Fleet;
use crate::metrics::{Liveness, Metrics, names};
use crate::observe::endpoint::Endpoint;
use crate::observe::status::{ReloadStatus, ServiceEntry, ServiceShape, Sources, StatusView};
use crate::service::gate::Gate;
use crate::service::health::{Health, Level};
use crate::service::rounds::{RoundReport, Service};
use crate::watch::ServiceWatches;

/// How long a stop may take beyond `drain_linger` (the withdraws, a slow gobgpd).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Why the daemon could not start or ended badly.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The config cannot be run (a check's prober, a password file, a busy port).
    #[error("{0}")]
    Setup(String),
    /// gobgpd is set up in a way anycastd must not change.
    #[error(transparent)]
    Fatal(#[from] Fatal),
    #[error("the announcer task died: {0}")]
    Crashed(String),
    #[error("routes not withdrawn within {0:?}; exiting anyway")]
    StopTimeout(Duration),
}

impl DaemonError {
    /// Exit code: 2 for what the operator must fix in the config or in gobgpd.
    pub fn exit_code(&self) -> u8 {
        match self {
            DaemonError::Setup(_) | DaemonError::Fatal(_) => 2,
            _ => 1,
        }
    }
}

/// One running service.
struct Running {
    config: ServiceConfig,
    entry: ServiceEntry,
    /// Its loop of rounds and its watches: all stop when this is dropped.
    tasks: tokio::task::JoinSet<()>,
}

/// Everything that runs, and the channels between the parts.
pub struct Daemon {
    path: PathBuf,
    config: Config,
    metrics: Metrics,
    liveness: Liveness,
    gate: watch::Sender<Gate>,
    intents: watch::Sender<Arc<Intent>>,
    stop: watch::Sender<Stop>,
    services: BTreeMap<String, Running>,
    entries: watch::Sender<Vec<ServiceEntry>>,
    drains: Drains,
    /// Why each service is drained, as last told to the gate (for the status view).
    drain_reasons: watch::Sender<BTreeMap<String, Vec<Reason>>>,
    reload_status: watch::Sender<Option<ReloadStatus>>,
    reload_ok: Gauge,
    reload_time: Gauge,
    /// Services a reload removed: when, and their level and its time, kept for
    /// `drain_linger`.
    removed: BTreeMap<String, (Instant, Level, SystemTime)>,
    fleet: Option<Fleet>,
}

/// Runs the daemon on `config` (read from `path`, which reloads read again) until it is
/// stopped through `commands`.
pub async fn run(config: Config, path: &Path, commands: Commands) -> Result<(), DaemonError> {
    let (mut d, channels) = Daemon::start(config, path)?;
    let (peer_monitor, peer_table) = PeerMonitor::new(channels.intents.clone());
    let (sight_tx, sight_rx) = watch::channel(Some("gobgpd not set up yet".to_string()));
    let (fleet_stop, fleet_stop_rx) = watch::channel(false);
    let fleet_task = d.start_fleet(fleet_stop_rx, sight_rx)?;
    let mut announcer = Announcer::new(
        channels.intents.clone(),
        channels.gate.clone(),
        channels.stop.clone(),
        d.fleet.clone(),
        &d.metrics,
    );
    crate::observe::series::routes(&d.metrics, announcer.state());
    crate::observe::series::services(&d.metrics, channels.gate.clone());
    crate::observe::series::peers(&d.metrics, peer_table.clone());
    let sources = Sources {
        intents: channels.intents,
        services: d.entries.subscribe(),
        gate: channels.gate,
        drains: d.drain_reasons.subscribe(),
        announcer: announcer.state(),
        peers: peer_table.clone(),
        reload: d.reload_status.subscribe(),
        fleet: d.fleet.clone(),
        history: announcer.history(),
    };
    d.serve_metrics(StatusView::new(sources), announcer.state())
        .await?;

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(peer_monitor.run(channels.stop));
    if d.fleet.is_some() {
        tasks.spawn(follow_sight(announcer.state(), peer_table, sight_tx));
    }
    let g = &d.config.announcer.gobgp;
    let heartbeat = d.liveness.register(
        "announcer",
        g.reconcile_interval.0 + g.timeout.0 * 8 + Duration::from_secs(30),
    );
    let _control = d.listen_for_commands(commands.weak).await;
    let notifier = super::systemd::spawn(announcer.first_attempt(), d.liveness.clone());
    let announcer = tokio::spawn(announcer.run(heartbeat));
    let result = d.main_loop(commands.rx, announcer, &notifier).await;
    tasks.abort_all();
    d.stop_services();
    // The fleet last: its task revokes the lease, and every claim of this site goes.
    fleet_stop.send_replace(true);
    if let (Some(task), Some(fc)) = (fleet_task, &d.config.fleet) {
        let _ = tokio::time::timeout(fc.etcd.timeout.0 + Duration::from_secs(1), task).await;
    }
    result
}

/// The receiving ends of the channels the daemon drives its parts with.
struct Channels {
    intents: watch::Receiver<Arc<Intent>>,
    gate: watch::Receiver<Gate>,
    stop: watch::Receiver<Stop>,
}

/// Tells the fleet whether a router sees this site's routes (issue 20): gobgpd usable and
/// at least one BGP session established; otherwise why not.
async fn follow_sight(
    mut announcer: watch::Receiver<AnnouncerState>,
    mut peers: watch::Receiver<Option<PeerTable>>,
    sight: watch::Sender<Option<String>>,
) {
    loop {
        let unseen = {
            let a = announcer.borrow_and_update();
            let p = peers.borrow_and_update();
            match (&a.gobgp, p.as_ref()) {
                (GobgpHealth::Usable, Some(t))
                    if t.peers.iter().any(|p| p.session_state == "ESTABLISHED") =>
                {
                    None
                }
                (GobgpHealth::Usable, _) => Some("no BGP session is established".to_string()),
                (GobgpHealth::Starting, _) => Some("gobgpd not set up yet".to_string()),
                (GobgpHealth::Unusable { error, .. }, _) => {
                    Some(format!("gobgpd is not usable: {error}"))
                }
            }
        };
        sight.send_if_modified(|s| {
            let changed = *s != unseen;
            *s = unseen;
            changed
        });
        tokio::select! {
            changed = announcer.changed() => if changed.is_err() { return },
            changed = peers.changed() => if changed.is_err() { return },
        }
    }
}

impl Daemon {
    /// The daemon of `config`, its drains read (before the services start: a service
    /// drained before a restart never shows up announced) and its services running.
    fn start(config: Config, path: &Path) -> Result<(Daemon, Channels), DaemonError> {
        let metrics = Metrics::new();
        let intent = Intent::from_config(&config).map_err(|e| DaemonError::Setup(e.to_string()))?;
        let (intents, intents_rx) = watch::channel(Arc::new(intent));
        let (gate, gate_rx) = watch::channel(Gate::new(&config));
        let (stop, stop_rx) = watch::channel(Stop::Running);
        let drains = Drains::load(
            &config.announcer.state_directory,
            metrics.gauge(names::DRAIN_STATE_OK, &[]),
        );
        let mut d = Daemon {
            path: path.to_path_buf(),
            reload_ok: metrics.gauge(names::CONFIG_RELOAD_SUCCESSFUL, &[]),
            reload_time: metrics.gauge(names::CONFIG_RELOAD_SUCCESS_TIME, &[]),
            removed: BTreeMap::new(),
            config,
            metrics,
            liveness: Liveness::default(),
            gate,
            intents,
            stop,
            services: BTreeMap::new(),
            entries: watch::channel(Vec::new()).0,
            drains,
            drain_reasons: watch::channel(BTreeMap::new()).0,
            reload_status: watch::channel(None).0,
            fleet: None,
        };
        d.reload_ok.set(1.0);
        d.reload_time.set(unix_seconds());
        d.drains.poll(&d.config);
        d.apply_drains();
        d.log_drained_at_start();
        let configs = d.config.services.clone();
        for svc in &configs {
            d.start_service(svc, Health::START)?;
        }
        d.publish_entries();
        let channels = Channels {
            intents: intents_rx,
            gate: gate_rx,
            stop: stop_rx,
        };
        Ok((d, channels))
    }

    /// Starts the fleet guard, when the config has one: its claims' task, which the caller
    /// stops through `stop`, follows `sight` (whether a router sees this site).
    fn start_fleet(
        &mut self,
        stop: watch::Receiver<bool>,
        sight: watch::Receiver<Option<String>>,
    ) -> Result<Option<JoinHandle<()>>, DaemonError> {
        let Some(fc) = &self.config.fleet else {
            return Ok(None);
        };
        let site = fc.site_name(self.config.announcer.router_id);
        let (claims, task) = Claims::start(
            fc,
            site,
            self.config.all_prefixes(),
            &self.metrics,
            stop,
            sight,
        )
        .map_err(|e| DaemonError::Setup(e.to_string()))?;
        self.fleet = Some(Fleet::new(claims, fc.prefixes.clone()));
        Ok(Some(tokio::spawn(task)))
    }

    /// The control socket; without one (a path that cannot be used) the daemon runs on,
    /// and says so.
    async fn listen_for_commands(
        &self,
        handle: super::commands::WeakHandle,
    ) -> Option<super::control::ControlSocket> {
        match super::control::listen(&self.config.control.socket, handle).await {
            Ok(c) => Some(c),
            Err(e) => {
                error!(
                    error = e.to_string().as_str(),
                    "no control socket: `anycastd drain`, `undrain` and `reload` will not reach this daemon (SIGHUP still reloads)"
                );
                None
            }
        }
    }

    /// Follows commands and drain files until the announcer ends.
    async fn main_loop(
        &mut self,
        mut commands: mpsc::Receiver<Command>,
        mut announcer: JoinHandle<Result<(), Fatal>>,
        notifier: &super::systemd::Notifier,
    ) -> Result<(), DaemonError> {
        let mut drain_poll = tokio::time::interval(drain::FILE_POLL);
        drain_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut commands_open = true;
        loop {
            tokio::select! {
                cmd = commands.recv(), if commands_open => match cmd {
                    Some(Command::Stop(how)) => {
                        if deadline.is_none() {
                            notifier.stopping();
                        }
                        let limit = self.config.announcer.drain_linger.0 + STOP_GRACE;
                        deadline.get_or_insert(tokio::time::Instant::now() + limit);
                        self.stop.send_replace(how);
                    }
                    Some(Command::Reload(reply)) => {
                        let r = self.reload().await;
                        if let Some(reply) = reply {
                            let _ = reply.send(r);
                        }
                    }
                    Some(Command::Drain { what, force, reply }) => {
                        let _ = reply.send(self.drain(what, force));
                    }
                    Some(Command::Undrain { what, reply }) => {
                        let _ = reply.send(self.undrain(what));
                    }
                    None => {
                        // Nobody can stop us any more: stop now, gracefully.
                        commands_open = false;
                        self.stop.send_replace(Stop::Graceful);
                    }
                },
                _ = drain_poll.tick() => {
                    if self.drains.poll(&self.config) {
                        self.apply_drains();
                    }
                }
                ended = &mut announcer => {
                    return match ended {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(fatal)) => Err(fatal.into()),
                        Err(e) => Err(DaemonError::Crashed(e.to_string())),
                    };
                }
                _ = sleep_until(deadline) => {
                    let limit = self.config.announcer.drain_linger.0 + STOP_GRACE;
                    return Err(DaemonError::StopTimeout(limit));
                }
            }
        }
    }

    /// Starts the metrics endpoint, when enabled.
    async fn serve_metrics(
        &self,
        view: StatusView,
        announcer: watch::Receiver<AnnouncerState>,
    ) -> Result<(), DaemonError> {
        let m = &self.config.metrics;
        if !m.enabled {
            return Ok(());
        }
        let endpoint = Endpoint {
            metrics: self.metrics.clone(),
            liveness: self.liveness.clone(),
            status: Some(Arc::new(move || view.json())),
            notes: Some(Arc::new(move || gobgp_note(&announcer.borrow()))),
        };
        endpoint.bind(m.address).await.map_err(|e| {
            DaemonError::Setup(format!(
                "metrics.address: cannot listen on {}: {e} (choose another address, or set metrics.enabled: false)",
                m.address
            ))
        })?;
        info!(address = %m.address, "metrics endpoint listening");
        Ok(())
    }

    /// Builds and starts one service.
    fn start_service(&mut self, cfg: &ServiceConfig, start: Health) -> Result<(), DaemonError> {
        let svc = Service::new(cfg, &self.metrics, start)
            .map_err(|e| DaemonError::Setup(e.to_string()))?;
        self.spawn_service(cfg, svc);
        Ok(())
    }

    /// Runs a built service (replacing the one of that name, after a reload changed it).
    fn spawn_service(&mut self, cfg: &ServiceConfig, svc: Service) {
        let worst = cfg
            .checks
            .iter()
            .map(|c| c.spec.attempts().worst_case())
            .max()
            .unwrap_or_default();
        let heartbeat = self.liveness.register(
            format!("service {}", cfg.name),
            cfg.check_interval
                .0
                .saturating_add(worst)
                .saturating_add(Duration::from_secs(30)),
        );
        let (reports_tx, reports_rx) = watch::channel::<Option<RoundReport>>(None);
        let watches = ServiceWatches::new(cfg, &svc.trigger(), &self.metrics);
        let watch_views = watches.views();
        let mut tasks = watches.spawn();
        tasks.spawn(svc.run(self.gate.clone(), reports_tx, heartbeat));
        self.metrics.show("service", &cfg.name);
        let entry = ServiceEntry {
            shape: ServiceShape::of(cfg),
            reports: reports_rx,
            watches: watch_views,
        };
        // The one it replaces, if any, stops as it is dropped.
        self.services.insert(
            cfg.name.clone(),
            Running {
                config: cfg.clone(),
                entry,
                tasks,
            },
        );
    }

    /// Stops every service's rounds and watches.
    fn stop_services(&mut self) {
        for r in self.services.values_mut() {
            r.tasks.abort_all();
        }
    }

    /// The status view's list of services, in config order.
    fn publish_entries(&self) {
        let entries = self
            .config
            .services
            .iter()
            .filter_map(|s| self.services.get(&s.name).map(|r| r.entry.clone()))
            .collect();
        self.entries.send_replace(entries);
    }

    /// Recomputes why each service is drained, and tells the gate.
    fn apply_drains(&mut self) {
        let reasons = self.drains.reasons(&self.config);
        self.gate.send_if_modified(|g| {
            let mut changed = false;
            for s in &self.config.services {
                let r = reasons.get(&s.name);
                let forced = r.is_some_and(|r| r.iter().any(Reason::forced));
                changed |= g.set_drained(&s.name, r.is_some(), forced);
            }
            changed
        });
        self.drain_reasons.send_replace(reasons);
    }

    /// A drain remembered from before a restart, said once per service at the default
    /// level (issue 23: only `status` explained why nothing was announced).
    fn log_drained_at_start(&self) {
        for (service, reasons) in self.drain_reasons.borrow().iter() {
            let by: Vec<String> = reasons.iter().map(ToString::to_string).collect();
            warn!(
                target: NOTICE,
                service = service.as_str(),
                drained_by = by.join("; ").as_str(),
                "service is drained: its routes are not announced until it is undrained"
            );
        }
    }

    /// `anycastd drain`.
    fn drain(&mut self, what: Selection, force: bool) -> Answer {
        let (changed, unsaved) = self.drains.drain(&self.config, &what, force)?;
        if changed {
            self.apply_drains();
            warn!(
                target: NOTICE,
                services = what.to_string().as_str(),
                force,
                "drained by command"
            );
        }
        let held = match (&self.fleet, force) {
            (Some(fleet), false) => fleet.would_hold(&self.prefixes_of(&what)),
            _ => Vec::new(),
        };
        let done = Done::Drained(Drained {
            min_sites: self.fleet.as_ref().map_or(0, Fleet::min_sites),
            what,
            unchanged: !changed,
            linger: self.config.announcer.drain_linger.0,
            held,
        });
        match unsaved {
            Some(error) => Err(Refused::NotRemembered {
                done: Box::new(done),
                error: Box::new(error),
            }),
            None => Ok(done),
        }
    }

    /// The prefixes that follow the services of `what` (the global ones too).
    fn prefixes_of(&self, what: &Selection) -> Vec<ipnet::IpNet> {
        let named = |s: &ServiceConfig| match what {
            Selection::All => true,
            Selection::Services(names) => names.contains(&s.name),
        };
        self.config
            .announcer
            .routes
            .iter()
            .chain(
                self.config
                    .services
                    .iter()
                    .filter(|s| named(s))
                    .flat_map(|s| s.routes.iter()),
            )
            .copied()
            .collect()
    }

    /// `anycastd undrain`.
    fn undrain(&mut self, what: Selection) -> Answer {
        let (changed, unsaved) = self.drains.undrain(&self.config, &what)?;
        if changed {
            self.apply_drains();
            warn!(target: NOTICE, services = what.to_string().as_str(), "undrained by command");
        }
        let names: Vec<String> = match &what {
            Selection::All => self
                .config
                .services
                .iter()
                .map(|s| s.name.clone())
                .collect(),
            Selection::Services(n) => n.clone(),
        };
        let reasons = self.drain_reasons.borrow();
        let still = names
            .iter()
            .filter_map(|n| reasons.get(n).map(|r| (n.clone(), r.clone())))
            .collect();
        drop(reasons);
        let done = Done::Undrained(Undrained {
            what,
            unchanged: !changed,
            still,
        });
        match unsaved {
            Some(error) => Err(Refused::NotRemembered {
                done: Box::new(done),
                error: Box::new(error),
            }),
            None => Ok(done),
        }
    }

    /// Reads the config file again and applies it; an invalid file changes nothing.
    async fn reload(&mut self) -> Answer {
        // Off the runtime's threads: the read waits while the file is being written.
        let path = self.path.clone();
        let loaded = match tokio::task::spawn_blocking(move || config::load(&path)).await {
            Ok(Ok(l)) => Ok(l),
            Ok(Err(e)) => Err(ReloadError::Config(e)),
            Err(e) => Err(ReloadError::Read(e.to_string())),
        };
        let result = loaded.and_then(|l| self.try_reload(l));
        let at = crate::wording::rfc3339(SystemTime::now());
        match &result {
            Ok(plan) => {
                warn!(target: NOTICE, file = %self.path.display(), changes = plan.to_string().as_str(), "config reloaded");
                self.reload_ok.set(1.0);
                self.reload_time.set(unix_seconds());
            }
            Err(why) => {
                error!(file = %self.path.display(), error = why.to_string().as_str(), "config reload refused; the running config stays");
                self.reload_ok.set(0.0);
            }
        }
        self.reload_status.send_replace(Some(ReloadStatus {
            at,
            ok: result.is_ok(),
            message: match &result {
                Ok(plan) => plan.to_string(),
                Err(e) => e.to_string(),
            },
        }));
        // Canonical, against the daemon's own working directory: `anycastd reload` compares
        // it with the file it was given.
        let file = std::fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
        result
            .map(|plan| Done::Reloaded {
                file,
                plan: Box::new(plan),
            })
            .map_err(Refused::Reload)
    }

    /// Plans a reload of `loaded`, builds every new or changed service (a check that
    /// cannot be built refuses the reload as a whole), then applies it.
    fn try_reload(&mut self, loaded: config::Loaded) -> Result<ReloadPlan, ReloadError> {
        for w in &loaded.warnings {
            warn!(warning = w.as_str(), "config warning");
        }
        let next = loaded.config;
        reload::needs_restart(&self.config, &next)?;
        let intent = Intent::from_config(&next)?;
        let old_gate = self.gate.borrow().clone();
        let running: BTreeMap<String, ServiceConfig> = self
            .services
            .iter()
            .map(|(n, r)| (n.clone(), r.config.clone()))
            .collect();
        let plan = reload::plan(
            &running,
            |s| old_gate.level(s),
            |s| self.recently_removed(s),
            &next,
            &self.intents.borrow(),
            &intent,
        );
        let mut built = Vec::with_capacity(plan.start.len());
        for (s, start) in &plan.start {
            built.push((s.clone(), Service::new(s, &self.metrics, *start)?));
        }
        self.apply_reload(next, intent, &plan, &old_gate, built);
        Ok(plan)
    }

    /// Applies a planned reload: the gate first (removed services stop gating, new ones
    /// start down, changed ones keep their level), then the services, then the announcer's
    /// intent.
    fn apply_reload(
        &mut self,
        next: Config,
        intent: Intent,
        plan: &ReloadPlan,
        old_gate: &Gate,
        built: Vec<(ServiceConfig, Service)>,
    ) {
        let mut gate = Gate::new(&next);
        for s in &next.services {
            gate.carry(old_gate, &s.name);
            if let Some((_, level, since)) = self.removed.remove(&s.name) {
                gate.resume(&s.name, level, since);
            }
        }
        let linger = next.announcer.drain_linger.0;
        self.removed.retain(|_, (at, ..)| at.elapsed() < linger);
        for n in &plan.removed {
            if let (Some(level), Some(since)) = (old_gate.level(n), old_gate.since(n)) {
                self.removed
                    .insert(n.clone(), (Instant::now(), level, since));
            }
            // Its rounds and watches stop as it is dropped.
            self.services.remove(n);
            self.liveness.forget(&format!("service {n}"));
            self.metrics.hide("service", n);
        }
        // The series of watches that no longer exist go, and those that come back return
        // (issue 20: a removed watch's series stayed).
        let (old_watches, new_watches) = (watch_labels(&self.config), watch_labels(&next));
        for gone in old_watches.difference(&new_watches) {
            self.metrics.hide("watch", gone);
        }
        for new in new_watches.difference(&old_watches) {
            self.metrics.show("watch", new);
        }
        self.drains.set_dir(&next.announcer.state_directory);
        self.config = next;
        self.gate.send_replace(gate);
        for (s, svc) in built {
            self.spawn_service(&s, svc);
        }
        self.drains.poll(&self.config);
        self.apply_drains();
        self.publish_entries();
        self.intents.send_replace(Arc::new(intent));
    }

    /// The level of a service that a reload removed less than `drain_linger` ago.
    fn recently_removed(&self, name: &str) -> Option<Level> {
        let (at, level, _) = self.removed.get(name)?;
        (at.elapsed() < self.config.announcer.drain_linger.0).then_some(*level)
    }
}

/// The `watch` labels of every watch of `config`.
fn watch_labels(config: &Config) -> std::collections::BTreeSet<String> {
    config
        .services
        .iter()
        .flat_map(|s| s.watch.iter().map(|w| w.label()))
        .collect()
}

/// What `/healthz` says of gobgpd besides the daemon's own loops, and whether that fails
/// it: another anycastd owning gobgpd does (this one gates nothing on health then, issue
/// 20); gobgpd merely unreachable does not (restarting anycastd would not help).
fn gobgp_note(state: &AnnouncerState) -> (bool, String) {
    if let Some(owner) = &state.owner_conflict {
        return (
            false,
            format!(
                "gobgpd: OWNED BY ANOTHER ANYCASTD ({owner}): this anycastd announces and withdraws nothing"
            ),
        );
    }
    let line = match &state.gobgp {
        GobgpHealth::Usable => "gobgpd: usable".to_string(),
        GobgpHealth::Starting => "gobgpd: not set up yet".to_string(),
        GobgpHealth::Unusable { error, since } => format!(
            "gobgpd: UNUSABLE since {}: {error}",
            crate::wording::rfc3339(*since)
        ),
    };
    (true, line)
}

fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
