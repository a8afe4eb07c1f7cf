//! The daemon as a library function: [`run`] takes a validated config and the receiving end
//! of its [`Command`]s, runs the services, the announcer, the peer monitor, the metrics
//! endpoint and the control socket, and returns when it has stopped. Whoever holds a
//! [`Handle`] drives it: the binary's signal handler and control socket, and tests
//! in-process.
//!
//! One type, [`Daemon`], owns everything that runs, so that a reload or a drain is a
//! change to it: a reload ([`Daemon::reload`]) validates the whole file first and then
//! applies the difference (services matched by name; routes whose state and attributes do
//! not change are not touched), a drain changes the gate's view of a service.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use metrics::Gauge;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::announcer::intent::Intent;
use crate::announcer::peers::{PeerMonitor, render_metrics};
use crate::announcer::{Announcer, Fatal, Stop, render_route_metrics};
use crate::config::{self, Config, ServiceConfig};
use crate::drain::{self, Commanded, Reason};
use crate::endpoint::Endpoint;
use crate::fleet::Fleet;
use crate::metrics::{Liveness, Metrics, names};
use crate::service::{Gate, Health, Level, RoundReport, Service, render_service_states};
use crate::status::{ReloadStatus, ServiceEntry, ServiceShape, Sources, StatusView};
use crate::watch::ServiceWatches;

/// How long a stop may take beyond `drain_linger` (the withdraws, a slow gobgpd).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What the daemon can be asked to do.
#[derive(Debug)]
pub enum Command {
    /// Read the config file again and apply it (SIGHUP, `anycastd reload`).
    Reload(Option<oneshot::Sender<Result<String, String>>>),
    /// Drain services (`None`: all of them, also those a reload adds later).
    Drain {
        services: Option<Vec<String>>,
        force: bool,
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// Undrain services (`None`: everything `drain` drained).
    Undrain {
        services: Option<Vec<String>>,
        reply: oneshot::Sender<Result<String, String>>,
    },
    /// Stop: gracefully, or at once.
    Stop(Stop),
}

/// Drives a running daemon. Cheap to clone. When every handle is gone, the daemon stops
/// gracefully.
#[derive(Clone, Debug)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
}

/// A handle that does not keep the daemon running (the control socket's).
#[derive(Clone, Debug)]
pub struct WeakHandle(mpsc::WeakSender<Command>);

impl WeakHandle {
    pub fn upgrade(&self) -> Option<Handle> {
        self.0.upgrade().map(|commands| Handle { commands })
    }
}

/// The daemon's end of its handles, for [`run`].
pub struct Commands {
    rx: mpsc::Receiver<Command>,
    weak: WeakHandle,
}

impl Handle {
    /// A handle and the commands [`run`] takes.
    pub fn new() -> (Handle, Commands) {
        let (tx, rx) = mpsc::channel(16);
        let weak = WeakHandle(tx.downgrade());
        (Handle { commands: tx }, Commands { rx, weak })
    }

    async fn ask(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<String, String>>) -> Command,
    ) -> Result<String, String> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| "anycastd is shutting down".to_string())?;
        rx.await
            .map_err(|_| "anycastd is shutting down".to_string())?
    }

    pub async fn reload(&self) -> Result<String, String> {
        self.ask(|r| Command::Reload(Some(r))).await
    }

    pub async fn drain(
        &self,
        services: Option<Vec<String>>,
        force: bool,
    ) -> Result<String, String> {
        self.ask(|reply| Command::Drain {
            services,
            force,
            reply,
        })
        .await
    }

    pub async fn undrain(&self, services: Option<Vec<String>>) -> Result<String, String> {
        self.ask(|reply| Command::Undrain { services, reply }).await
    }

    /// Asks for a stop; returns at once.
    pub async fn stop(&self, how: Stop) {
        let _ = self.commands.send(Command::Stop(how)).await;
    }

    /// Asks for a reload without waiting for its outcome (SIGHUP).
    pub async fn reload_nowait(&self) {
        let _ = self.commands.send(Command::Reload(None)).await;
    }
}

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
    commanded: Commanded,
    drain_files: BTreeSet<PathBuf>,
    drains: watch::Sender<BTreeMap<String, Vec<Reason>>>,
    reload_status: watch::Sender<Option<ReloadStatus>>,
    reload_ok: Gauge,
    reload_time: Gauge,
    /// `anycastd_drain_state_ok`: the remembered drains were read, and saved.
    drain_state_ok: Gauge,
    /// The commanded drains changed but could not be saved: retried at each drain poll.
    unsaved: bool,
    /// Services a reload removed: when, and their level and its time, kept for
    /// `drain_linger`.
    removed: BTreeMap<String, (std::time::Instant, Level, SystemTime)>,
}

/// Runs the daemon on `config` (read from `path`, which reloads read again) until it is
/// stopped through `commands`.
pub async fn run(config: Config, path: &Path, commands: Commands) -> Result<(), DaemonError> {
    let metrics = Metrics::new();
    let liveness = Liveness::default();
    let intent = Intent::from_config(&config).map_err(|e| DaemonError::Setup(e.to_string()))?;
    let (intents, intents_rx) = watch::channel(Arc::new(intent));
    let (gate, gate_rx) = watch::channel(Gate::new(&config));
    let (stop, stop_rx) = watch::channel(Stop::Running);
    let (commanded, unreadable) = Commanded::load(&config.announcer.state_directory);
    if let Some(e) = &unreadable {
        error!(
            error = e.to_string().as_str(),
            "cannot read the remembered drains: every service stays drained (fail closed) until `anycastd undrain --all` writes them again"
        );
    }
    let mut d = Daemon {
        path: path.to_path_buf(),
        drain_files: BTreeSet::new(),
        reload_ok: metrics.gauge(names::CONFIG_RELOAD_SUCCESSFUL, &[]),
        reload_time: metrics.gauge(names::CONFIG_RELOAD_SUCCESS_TIME, &[]),
        drain_state_ok: metrics.gauge(names::DRAIN_STATE_OK, &[]),
        unsaved: false,
        removed: BTreeMap::new(),
        config,
        metrics,
        liveness,
        gate,
        intents,
        stop,
        services: BTreeMap::new(),
        entries: watch::channel(Vec::new()).0,
        commanded,
        drains: watch::channel(BTreeMap::new()).0,
        reload_status: watch::channel(None).0,
    };
    d.reload_ok.set(1.0);
    d.reload_time.set(unix_seconds());
    d.drain_state_ok
        .set(if unreadable.is_some() { 0.0 } else { 1.0 });
    // Drains before services: a service drained before a restart never shows up announced.
    d.refresh_drains(true);
    let configs = d.config.services.clone();
    for svc in &configs {
        d.start_service(svc, Health::START)?;
    }
    d.publish_entries();

    let (fleet_stop, fleet_stop_rx) = watch::channel(false);
    let (fleet, fleet_task) = match &d.config.fleet {
        Some(fc) => {
            let site = fc.site_name(d.config.announcer.router_id);
            let (fleet, task) =
                Fleet::start(fc, site, d.config.all_prefixes(), &d.metrics, fleet_stop_rx)
                    .map_err(|e| DaemonError::Setup(e.to_string()))?;
            (Some(fleet), Some(tokio::spawn(task)))
        }
        None => (None, None),
    };
    let mut announcer = Announcer::new(
        intents_rx.clone(),
        gate_rx.clone(),
        stop_rx.clone(),
        fleet.clone(),
        &d.metrics,
    );
    let (peer_monitor, peer_table) = PeerMonitor::new(intents_rx.clone());
    d.add_collectors(&announcer, &peer_table, &gate_rx);
    let sources = Sources {
        intents: intents_rx,
        services: d.entries.subscribe(),
        gate: gate_rx,
        drains: d.drains.subscribe(),
        announcer: announcer.state(),
        peers: peer_table,
        reload: d.reload_status.subscribe(),
        fleet,
    };
    d.serve_metrics(StatusView::new(sources), announcer.state())
        .await?;

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(peer_monitor.run(stop_rx.clone()));
    let g = &d.config.announcer.gobgp;
    let heartbeat = d.liveness.register(
        "announcer",
        g.reconcile_interval.0 + g.timeout.0 * 8 + Duration::from_secs(30),
    );
    let _control = match crate::control::listen(&d.config.control.socket, commands.weak).await {
        Ok(c) => Some(c),
        Err(e) => {
            error!(
                error = e.to_string().as_str(),
                "no control socket: `anycastd drain`, `undrain` and `reload` will not reach this daemon (SIGHUP still reloads)"
            );
            None
        }
    };
    let notifier = crate::systemd::spawn(announcer.first_attempt(), d.liveness.clone());
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

impl Daemon {
    /// Follows commands and drain files until the announcer ends.
    async fn main_loop(
        &mut self,
        mut commands: mpsc::Receiver<Command>,
        mut announcer: JoinHandle<Result<(), Fatal>>,
        notifier: &crate::systemd::Notifier,
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
                    Some(Command::Drain { services, force, reply }) => {
                        let _ = reply.send(self.drain(services, force));
                    }
                    Some(Command::Undrain { services, reply }) => {
                        let _ = reply.send(self.undrain(services));
                    }
                    None => {
                        // Nobody can stop us any more: stop now, gracefully.
                        commands_open = false;
                        self.stop.send_replace(Stop::Graceful);
                    }
                },
                _ = drain_poll.tick() => {
                    self.refresh_drains(false);
                    if self.unsaved {
                        let _ = self.save_drains();
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

    /// Scrape-time series: routes, peers, service states.
    fn add_collectors(
        &self,
        announcer: &Announcer,
        peers: &watch::Receiver<Option<crate::announcer::peers::PeerTable>>,
        gate: &watch::Receiver<Gate>,
    ) {
        let table = peers.clone();
        self.metrics
            .add_collector(Box::new(move || render_metrics(table.borrow().as_ref())));
        let state = announcer.state();
        self.metrics
            .add_collector(Box::new(move || render_route_metrics(&state.borrow())));
        let gate = gate.clone();
        self.metrics
            .add_collector(Box::new(move || render_service_states(&gate.borrow())));
    }

    /// Starts the metrics endpoint, when enabled.
    async fn serve_metrics(
        &self,
        view: StatusView,
        announcer: watch::Receiver<crate::announcer::AnnouncerState>,
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
        let svc = Service::new(cfg, &self.metrics, start).map_err(DaemonError::Setup)?;
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

    /// Looks at the drain files (and the commanded drains) and tells the gate.
    fn refresh_drains(&mut self, force: bool) {
        let existing = drain::existing(&drain::files(&self.config));
        if !force && existing == self.drain_files {
            return;
        }
        for f in existing.symmetric_difference(&self.drain_files) {
            if existing.contains(f) {
                warn!(file = %f.display(), "drain file appeared: draining");
            } else {
                warn!(file = %f.display(), "drain file is gone: undraining");
            }
        }
        self.drain_files = existing;
        self.apply_drains();
    }

    /// Recomputes why each service is drained, and tells the gate.
    fn apply_drains(&mut self) {
        let reasons = drain::reasons(&self.config, &self.commanded, &self.drain_files);
        self.gate.send_if_modified(|g| {
            let mut changed = false;
            for s in &self.config.services {
                let r = reasons.get(&s.name);
                let forced = r.is_some_and(|r| r.iter().any(|x| x.forced()));
                changed |= g.set_drained(&s.name, r.is_some(), forced);
            }
            changed
        });
        self.drains.send_replace(reasons);
    }

    /// `anycastd drain`.
    fn drain(&mut self, services: Option<Vec<String>>, force: bool) -> Result<String, String> {
        let now = drain::now();
        let before = self.commanded.clone();
        let names = match services {
            None => {
                self.commanded.all.get_or_insert(now);
                if force {
                    self.commanded.all_forced = true;
                }
                "every service".to_string()
            }
            Some(names) => {
                self.known(&names)?;
                for n in &names {
                    self.commanded.services.entry(n.clone()).or_insert(now);
                    if force {
                        self.commanded.forced.insert(n.clone());
                    }
                }
                names.join(", ")
            }
        };
        if self.commanded == before {
            return Ok(format!(
                "{names}: already drained by command; nothing changed"
            ));
        }
        self.apply_drains();
        warn!(services = names.as_str(), "drained by command");
        let linger = humantime::format_duration(self.config.announcer.drain_linger.0);
        let msg = format!(
            "drained {names}: announced routes carry their draining attributes for {linger}, then are withdrawn"
        );
        match self.save_drains() {
            Ok(()) => Ok(msg),
            Err(e) => Err(format!("{msg}; but {e}")),
        }
    }

    /// Writes the commanded drains to the state directory; on failure, says so (log,
    /// `anycastd_drain_state_ok` 0) and leaves them to be retried at the next drain poll.
    fn save_drains(&mut self) -> Result<(), drain::DrainError> {
        match self.commanded.save(&self.config.announcer.state_directory) {
            Ok(()) => {
                if std::mem::take(&mut self.unsaved) {
                    warn!("the remembered drains are saved again");
                }
                self.drain_state_ok
                    .set(if self.commanded.unreadable.is_some() {
                        0.0
                    } else {
                        1.0
                    });
                Ok(())
            }
            Err(e) => {
                if !self.unsaved {
                    error!(
                        error = e.to_string().as_str(),
                        "cannot remember the drains across restarts"
                    );
                }
                self.unsaved = true;
                self.drain_state_ok.set(0.0);
                Err(e)
            }
        }
    }

    /// `anycastd undrain`.
    fn undrain(&mut self, services: Option<Vec<String>>) -> Result<String, String> {
        let before = self.commanded.clone();
        let names = match services {
            None => {
                self.commanded = Commanded::default();
                self.config
                    .services
                    .iter()
                    .map(|s| s.name.clone())
                    .collect()
            }
            Some(names) => {
                self.known(&names)?;
                for n in &names {
                    self.commanded.services.remove(n);
                    self.commanded.forced.remove(n);
                }
                names
            }
        };
        let changed = self.commanded != before;
        let saved = if changed {
            self.apply_drains();
            warn!(services = names.join(", ").as_str(), "undrained by command");
            self.save_drains()
        } else {
            Ok(())
        };
        let drains = self.drains.borrow().clone();
        let mut msg = if changed {
            format!("undrained {}", names.join(", "))
        } else {
            format!(
                "{}: not drained by command; nothing changed",
                names.join(", ")
            )
        };
        for n in &names {
            if let Some(r) = drains.get(n) {
                let why: Vec<String> = r.iter().map(ToString::to_string).collect();
                msg.push_str(&format!("; {n} is still drained by {}", why.join(", ")));
            }
        }
        match saved {
            Ok(()) => Ok(msg),
            Err(e) => Err(format!("{msg}; but {e}")),
        }
    }

    /// The level of a service that a reload removed less than `drain_linger` ago.
    fn recently_removed(&self, name: &str) -> Option<Level> {
        let (at, level, _) = self.removed.get(name)?;
        (at.elapsed() < self.config.announcer.drain_linger.0).then_some(*level)
    }

    /// An error naming the services that do not exist.
    fn known(&self, names: &[String]) -> Result<(), String> {
        let unknown: Vec<&str> = names
            .iter()
            .filter(|n| !self.services.contains_key(*n))
            .map(String::as_str)
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let all: Vec<&str> = self
            .config
            .services
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        Err(format!(
            "no service named {}; the services are: {}",
            unknown.join(", "),
            all.join(", ")
        ))
    }

    /// Reads the config file again and applies it; an invalid file changes nothing.
    async fn reload(&mut self) -> Result<String, String> {
        // Off the runtime's threads: the read waits while the file is being written.
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || config::load(&path))
            .await
            .map_err(|e| format!("reading the config file failed: {e}"))
            .and_then(|r| r.map_err(|e| e.to_string()));
        let result = loaded.and_then(|l| self.try_reload(l));
        let at = crate::wording::rfc3339(SystemTime::now());
        match &result {
            Ok(summary) => {
                warn!(file = %self.path.display(), changes = summary.as_str(), "config reloaded");
                self.reload_ok.set(1.0);
                self.reload_time.set(unix_seconds());
            }
            Err(why) => {
                error!(file = %self.path.display(), error = why.as_str(), "config reload refused; the running config stays");
                self.reload_ok.set(0.0);
            }
        }
        self.reload_status.send_replace(Some(ReloadStatus {
            at,
            ok: result.is_ok(),
            message: match &result {
                Ok(s) | Err(s) => s.clone(),
            },
        }));
        result
    }

    fn try_reload(&mut self, loaded: config::Loaded) -> Result<String, String> {
        for w in &loaded.warnings {
            warn!(warning = w.as_str(), "config warning");
        }
        let next = loaded.config;
        needs_restart(&self.config, &next)?;
        let intent = Intent::from_config(&next).map_err(|e| e.to_string())?;

        // Build every new or changed service before touching anything: a check that cannot
        // be built refuses the reload as a whole.
        let old_gate = self.gate.borrow().clone();
        let mut added = Vec::new();
        let mut changed = Vec::new();
        let mut starts = Vec::new();
        for s in &next.services {
            match self.services.get(&s.name) {
                Some(r) if r.config == *s => {}
                Some(_) => {
                    let level = old_gate.level(&s.name).unwrap_or(Level::Down);
                    changed.push(s.name.clone());
                    starts.push((s.clone(), Health::at(level)));
                }
                // Removed by a reload a moment ago (a half-written file, an edit undone): its
                // routes are still leaving, and it resumes its state, so that they are put
                // back in place rather than withdrawn and announced again.
                None if let Some(level) = self.recently_removed(&s.name) => {
                    changed.push(s.name.clone());
                    starts.push((s.clone(), Health::at(level)));
                }
                None => {
                    added.push(s.name.clone());
                    starts.push((s.clone(), Health::START));
                }
            }
        }
        let mut built = Vec::with_capacity(starts.len());
        for (s, start) in starts {
            let svc = Service::new(&s, &self.metrics, start)
                .map_err(|e| format!("{e}; nothing was changed"))?;
            built.push((s, svc));
        }
        let removed: Vec<String> = self
            .services
            .keys()
            .filter(|n| !next.services.iter().any(|s| &s.name == *n))
            .cloned()
            .collect();

        // Apply: the gate first (removed services stop gating, new ones start down), then
        // the services, then the announcer's intent.
        let mut gate = Gate::new(&next);
        for s in &next.services {
            gate.carry(&old_gate, &s.name);
            if let Some((_, level, since)) = self.removed.remove(&s.name) {
                gate.resume(&s.name, level, since);
            }
        }
        let linger = next.announcer.drain_linger.0;
        self.removed.retain(|_, (at, ..)| at.elapsed() < linger);
        for n in &removed {
            if let (Some(level), Some(since)) = (old_gate.level(n), old_gate.since(n)) {
                self.removed
                    .insert(n.clone(), (std::time::Instant::now(), level, since));
            }
            // Its rounds and watches stop as it is dropped.
            self.services.remove(n);
            self.liveness.forget(&format!("service {n}"));
            self.metrics.hide("service", n);
        }
        self.config = next;
        self.gate.send_replace(gate);
        for (s, svc) in built {
            self.spawn_service(&s, svc);
        }
        self.refresh_drains(true);
        self.publish_entries();
        let old_routes: BTreeSet<_> = self.intents.borrow().routes.keys().copied().collect();
        let new_routes: BTreeSet<_> = intent.routes.keys().copied().collect();
        let old_peers: BTreeSet<_> = self
            .intents
            .borrow()
            .peers
            .iter()
            .map(|p| p.name.clone())
            .collect();
        let new_peers: BTreeSet<_> = intent.peers.iter().map(|p| p.name.clone()).collect();
        self.intents.send_replace(Arc::new(intent));

        let list = |v: Vec<String>| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(", ")
            }
        };
        Ok(format!(
            "services added {}, changed {}, removed {}; routes added {}, removed {}; peers added {}, removed {}",
            list(added),
            list(changed),
            list(removed),
            list(
                new_routes
                    .difference(&old_routes)
                    .map(ToString::to_string)
                    .collect()
            ),
            list(
                old_routes
                    .difference(&new_routes)
                    .map(ToString::to_string)
                    .collect()
            ),
            list(new_peers.difference(&old_peers).cloned().collect()),
            list(old_peers.difference(&new_peers).cloned().collect()),
        ))
    }
}

/// The settings a reload cannot change: gobgpd's global ones (SPEC 12), and where anycastd
/// itself listens.
fn needs_restart(old: &Config, new: &Config) -> Result<(), String> {
    let (a, b) = (&old.announcer, &new.announcer);
    let mut fields = Vec::new();
    if a.router_id != b.router_id {
        fields.push("announcer.router_id");
    }
    if a.local_asn != b.local_asn {
        fields.push("announcer.local_asn");
    }
    if a.listen_port != b.listen_port {
        fields.push("announcer.listen_port");
    }
    if a.gobgp.address != b.gobgp.address {
        fields.push("announcer.gobgp.address");
    }
    if old.metrics != new.metrics {
        fields.push("metrics");
    }
    if old.control != new.control {
        fields.push("control.socket");
    }
    if old.fleet != new.fleet {
        fields.push("fleet");
    }
    if fields.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} changed: that needs a restart of anycastd (systemctl restart anycastd); the running config stays",
            fields.join(", ")
        ))
    }
}

/// What `/healthz` says of gobgpd besides the daemon's own loops, and whether that fails
/// it: another anycastd owning gobgpd does (this one gates nothing on health then, issue
/// 20); gobgpd merely unreachable does not (restarting anycastd would not help).
fn gobgp_note(state: &crate::announcer::AnnouncerState) -> (bool, String) {
    use crate::announcer::GobgpHealth;
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
