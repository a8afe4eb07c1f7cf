//! The `anycastd` binary: command line, environment, signals and the wiring of the pieces.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::sync::watch;
use tracing::{error, info, warn};

use anycastd::announcer::Announcer;
use anycastd::announcer::peers::{PeerMonitor, render_metrics};
use anycastd::config::{self, Config};
use anycastd::logging;
use anycastd::metrics::{Endpoint, Liveness, Metrics};
use anycastd::service::{Gate, Service};
use anycastd::status::{self, StatusView};
use anycastd::watch::Watchers;

/// Exit code for a bad config or environment, and for a gobgpd set up differently.
const EXIT_CONFIG: u8 = 2;
/// How long shutdown may take to withdraw the routes.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

#[derive(Parser)]
#[command(
    name = "anycastd",
    version,
    about = "Announces anycast prefixes through gobgpd while the services behind them are healthy"
)]
struct Cli {
    /// Config file, YAML (.yaml/.yml) or JSON (.json).
    #[arg(long, short = 'c', env = "CONFIG_PATH", default_value = config::DEFAULT_PATH, global = true)]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Run,
    /// Validate the config file, print a summary, and exit 0 (valid) or 2 (not).
    CheckConfig,
    /// Ask a running anycastd for its state (GET /status) and print it as tables.
    Status {
        /// The daemon's metrics address (host:port); default: metrics.address of the config.
        #[arg(long, short = 'a')]
        address: Option<String>,
        /// Print the JSON document as it is.
        #[arg(long)]
        json: bool,
    },
    /// Ask a running anycastd's /healthz; exit 0 (healthy) or 1 (not). For container
    /// healthchecks: the image has no curl.
    Healthcheck {
        /// Address of the daemon's metrics endpoint; default: metrics.address of the config.
        #[arg(long)]
        address: Option<std::net::SocketAddr>,
        /// How long to wait for the answer.
        #[arg(long, default_value = "2s", value_parser = |s: &str| config::parse_duration(s).map(|d| d.0))]
        timeout: Duration,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck { address, timeout }) = &cli.command {
        return anycastd::healthcheck::run(*address, &cli.config, *timeout);
    }
    let level =
        match logging::parse_level(&std::env::var("LOG_LEVEL").unwrap_or_else(|_| "WARN".into())) {
            Ok(l) => l,
            Err(e) => return fail(&e),
        };
    let format = match logging::parse_format(&std::env::var("LOG_FORMAT").unwrap_or_default()) {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    logging::init(level, format);

    if let Some(Command::Status { address, json }) = &cli.command {
        return status_command(&cli.config, address.as_deref(), *json);
    }

    let loaded = match config::load(&cli.config) {
        Ok(l) => l,
        Err(e) => {
            error!("{e}");
            return fail(&e.to_string());
        }
    };
    for w in &loaded.warnings {
        warn!("config: {w}");
    }
    match cli.command.unwrap_or(Command::Run) {
        Command::CheckConfig => {
            print!("{}", summary(&cli.config, &loaded.config, &loaded.warnings));
            ExitCode::SUCCESS
        }
        // Handled before the config is required.
        Command::Status { .. } | Command::Healthcheck { .. } => ExitCode::SUCCESS,
        Command::Run => {
            // One worker thread: anycastd's work is small and I/O-bound, and with two the
            // wake-ups passed between threads cost more than the work (1,000 checks a second:
            // 6.8 % of a core with two workers, 4.8 % with one; BENCHMARKS.md). Blocking
            // calls still go to tokio's blocking pool.
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
            };
            rt.block_on(run(loaded.config))
        }
    }
}

/// Prints an error for the operator and returns exit code 2.
fn fail(msg: &str) -> ExitCode {
    eprintln!("anycastd: {msg}");
    ExitCode::from(EXIT_CONFIG)
}

async fn run(cfg: Config) -> ExitCode {
    let metrics = Metrics::new();
    let liveness = Liveness::default();
    let (gate_tx, gate_rx) = watch::channel(Gate::new(&cfg));

    let mut services = Vec::new();
    for (i, s) in cfg.services.iter().enumerate() {
        match Service::new(i, s, &metrics) {
            Ok(svc) => services.push(svc),
            Err(e) => return fail(&e),
        }
    }
    let mut announcer = match Announcer::new(&cfg, gate_rx.clone(), &metrics) {
        Ok(a) => a,
        Err(e) => return fail(&e),
    };
    let (peer_monitor, peer_table) = PeerMonitor::new(&cfg);
    let table = peer_table.clone();
    metrics.add_collector(Box::new(move || render_metrics(table.borrow().as_ref())));
    let triggers: Vec<_> = services.iter().map(Service::trigger).collect();
    let watchers = Watchers::new(&cfg, &triggers, &metrics);
    let reports: Vec<_> = services.iter().map(|_| watch::channel(None)).collect();
    let view = StatusView::new(
        &cfg,
        reports.iter().map(|(tx, _)| tx.subscribe()).collect(),
        gate_rx,
        announcer.state(),
        peer_table,
    )
    .with_watches(watchers.views());

    if cfg.metrics.enabled {
        let endpoint = Endpoint {
            metrics: metrics.clone(),
            liveness: liveness.clone(),
            status: Some(std::sync::Arc::new(move || view.json())),
        };
        if let Err(e) = endpoint.bind(cfg.metrics.address).await {
            return fail(&format!(
                "metrics.address: cannot listen on {}: {e} (choose another address, or set metrics.enabled: false)",
                cfg.metrics.address
            ));
        }
        info!(address = %cfg.metrics.address, "metrics endpoint listening");
    }

    let mut tasks = tokio::task::JoinSet::new();
    for (svc, (reports, _)) in services.into_iter().zip(reports) {
        let cfg_svc = &cfg.services[svc.index];
        let worst = cfg_svc
            .checks
            .iter()
            .map(|c| c.spec.attempts().worst_case())
            .max()
            .unwrap_or_default();
        let heartbeat = liveness.register(
            format!("service {}", svc.name),
            cfg_svc
                .check_interval
                .0
                .saturating_add(worst)
                .saturating_add(Duration::from_secs(30)),
        );
        tasks.spawn(svc.run(gate_tx.clone(), reports, heartbeat));
    }
    watchers.spawn(&mut tasks);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    tasks.spawn(peer_monitor.run(shutdown_rx.clone()));
    let heartbeat = liveness.register(
        "announcer",
        cfg.announcer.gobgp.reconcile_interval.0
            + cfg.announcer.gobgp.timeout.0 * 8
            + Duration::from_secs(30),
    );
    let notifier = anycastd::systemd::spawn(announcer.first_attempt(), liveness.clone());
    let mut announcer = tokio::spawn(announcer.run(shutdown_rx, heartbeat));

    let signal = tokio::select! {
        s = shutdown_signal() => s,
        r = &mut announcer => {
            tasks.abort_all();
            return match r {
                Ok(Err(fatal)) => { error!("{fatal}"); fail(&fatal.to_string()) }
                Ok(Ok(())) => ExitCode::SUCCESS,
                Err(e) => { error!(error = %e, "the announcer task died"); ExitCode::FAILURE }
            };
        }
    };
    let signal = match signal {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot listen for signals: {e}")),
    };
    warn!(signal, "shutting down: withdrawing routes");
    notifier.stopping();
    tasks.abort_all();
    let _ = shutdown_tx.send(true);
    match tokio::time::timeout(SHUTDOWN_DEADLINE, announcer).await {
        Ok(Ok(Ok(()))) => ExitCode::SUCCESS,
        Ok(Ok(Err(fatal))) => {
            error!("{fatal}");
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            error!(error = %e, "the announcer task died during shutdown");
            ExitCode::FAILURE
        }
        Err(_) => {
            error!(deadline = ?SHUTDOWN_DEADLINE, "routes not withdrawn in time; exiting anyway");
            ExitCode::FAILURE
        }
    }
}

/// `anycastd status`: fetches `/status` from a running daemon and prints it.
fn status_command(config_path: &std::path::Path, address: Option<&str>, json: bool) -> ExitCode {
    let address = match address {
        Some(a) => a.to_string(),
        None => match config::load(config_path) {
            // A daemon listening on 0.0.0.0 / [::] is asked on loopback.
            Ok(l) => anycastd::healthcheck::probe_address(l.config.metrics.address).to_string(),
            Err(e) => {
                return fail(&format!(
                    "{e}\n(give the daemon's metrics address with --address host:port)"
                ));
            }
        },
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    let body = match rt.block_on(status::fetch(&address)) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("anycastd: {e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        println!("{body}");
        return ExitCode::SUCCESS;
    }
    match serde_json::from_str::<status::Status>(&body) {
        Ok(s) => {
            print!("{}", status::render_table(&s));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("anycastd: {address} did not answer with a status document: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Waits for SIGTERM or SIGINT and says which.
async fn shutdown_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

/// The one-screen summary of `check-config`.
fn summary(path: &std::path::Path, cfg: &Config, warnings: &[String]) -> String {
    use std::fmt::Write;
    let a = &cfg.announcer;
    let mut s = String::new();
    let _ = writeln!(s, "config {} is valid", path.display());
    let _ = writeln!(
        s,
        "gobgpd   {}  router id {}  ASN {}  local address {}  listen port {}",
        a.gobgp.address, a.router_id, a.local_asn, a.local_address, a.listen_port
    );
    for p in &a.peers {
        let _ = writeln!(
            s,
            "peer     {:<16} {} AS{}{}{}{}{}",
            p.name,
            p.remote_address,
            p.remote_asn,
            p.remote_port
                .map(|x| format!(" port {x}"))
                .unwrap_or_default(),
            if p.passive { " passive" } else { "" },
            if p.multihop_ttl > 0 {
                format!(" multihop ttl {}", p.multihop_ttl)
            } else {
                String::new()
            },
            if p.password_file.is_some() {
                " md5"
            } else {
                ""
            },
        );
    }
    let list = |v: &[ipnet::IpNet]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let _ = writeln!(
        s,
        "routes   {} (while every service is up)",
        list(&a.routes)
    );
    for svc in &cfg.services {
        let _ = writeln!(
            s,
            "service  {}  every {}  rise {} fall {}  routes {}",
            svc.name,
            svc.check_interval,
            svc.rise,
            svc.fall,
            list(&svc.routes)
        );
        for c in &svc.checks {
            let _ = writeln!(
                s,
                "  check  {:<18} {:<17} {}",
                c.name,
                c.kind(),
                c.spec.target()
            );
        }
        anycastd::watch::summarize(&mut s, svc);
    }
    let _ = writeln!(
        s,
        "metrics  {}",
        if cfg.metrics.enabled {
            format!("http://{}/metrics", cfg.metrics.address)
        } else {
            "disabled".into()
        }
    );
    for w in warnings {
        let _ = writeln!(s, "warning  {w}");
    }
    s
}
