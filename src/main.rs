//! The `anycastd` binary: command line, environment, signals and the wiring of the pieces.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tracing::warn;

use anycastd::announcer::Stop;
use anycastd::cli::{Cli, Command};
use anycastd::client::{EXIT_CONFIG, control_command, status_command};
use anycastd::config::{self, Config};
use anycastd::observe::logging::{self, Reporter};
use anycastd::runtime::commands::Handle;
use anycastd::runtime::control::Request;
use anycastd::runtime::daemon;

/// The dispatch of the command line: one arm per command, each a call (it reads best whole).
fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck { address, timeout }) = &cli.command {
        return anycastd::healthcheck::run(address.address.as_deref(), &cli.config, *timeout);
    }
    let report = match init_logging() {
        Ok(r) => r,
        Err(code) => return code,
    };
    match cli.command.unwrap_or(Command::Run) {
        Command::Status { address, json } => {
            status_command(&cli.config, address.address.as_deref(), json, report)
        }
        Command::Completions { shell } => {
            print!("{}", anycastd::cli::completions(shell));
            ExitCode::SUCCESS
        }
        Command::ConfigSchema => {
            println!("{}", anycastd::config::schema::config_schema());
            ExitCode::SUCCESS
        }
        Command::Manpages { dir } => {
            for (file, text) in anycastd::cli::manpages() {
                if let Err(e) = std::fs::write(dir.join(&file), text) {
                    report.error(&format!("cannot write {}: {e}", dir.join(file).display()));
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }

        Command::Drain {
            services,
            all,
            force,
            socket,
        } => control_command(
            &cli.config,
            socket.socket,
            report,
            Request::Drain {
                services,
                all,
                force,
            },
        ),
        Command::Undrain {
            services,
            all,
            socket,
        } => control_command(
            &cli.config,
            socket.socket,
            report,
            Request::Undrain { services, all },
        ),
        Command::Reload { socket } => {
            control_command(&cli.config, socket.socket, report, Request::Reload)
        }
        Command::Healthcheck { .. } => ExitCode::SUCCESS,
        // The warnings are in the summary, and only there.
        Command::CheckConfig => match config::load(&cli.config) {
            Ok(loaded) => {
                print!(
                    "{}",
                    anycastd::observe::summary::render(
                        &cli.config,
                        &loaded.config,
                        &loaded.warnings
                    )
                );
                ExitCode::SUCCESS
            }
            Err(e) => config_fail(report, &e),
        },
        Command::Run => match config::load(&cli.config) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    warn!(warning = w.as_str(), "config warning");
                }
                run(loaded.config, &cli.config, report)
            }
            Err(e) => config_fail(report, &e),
        },
    }
}

/// Logging as `LOG_FORMAT` and `LOG_LEVEL` say. The format first: every error after it, a
/// bad `LOG_LEVEL` included, is reported in it.
fn init_logging() -> Result<Reporter, ExitCode> {
    let format = logging::parse_format(&std::env::var("LOG_FORMAT").unwrap_or_default())
        .map_err(|e| fail(Reporter::new(logging::LogFormat::Text), &e))?;
    let report = Reporter::new(format);
    let level = logging::parse_level(&std::env::var("LOG_LEVEL").unwrap_or_else(|_| "WARN".into()))
        .map_err(|e| fail(report, &e))?;
    logging::init(level, format);
    Ok(report)
}

/// Reports an error that stops anycastd before it starts (bad config or environment) and
/// returns exit code 2.
fn fail(report: Reporter, msg: &str) -> ExitCode {
    report.error(msg);
    ExitCode::from(EXIT_CONFIG)
}

/// [`fail`] for a config that cannot be used: in JSON, with each problem's fields.
fn config_fail(report: Reporter, e: &config::ConfigError) -> ExitCode {
    report.report(&e.to_string(), e.json_fields());
    ExitCode::from(EXIT_CONFIG)
}

/// Runs the daemon until it is stopped.
fn run(cfg: Config, path: &std::path::Path, report: Reporter) -> ExitCode {
    anycastd::fdlimit::raise_nofile_and_log();
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
        Err(e) => return fail(report, &format!("cannot start the async runtime: {e}")),
    };
    let result = rt.block_on(async {
        let (handle, commands) = Handle::new();
        if let Err(e) = listen_for_signals(handle) {
            return Err(daemon::DaemonError::Setup(format!(
                "cannot listen for signals: {e}"
            )));
        }
        daemon::run(cfg, path, commands).await
    });
    // Dropping the runtime would wait for every blocking-pool thread, and a thread stuck in
    // a system call (a hung file system) would keep the process alive after SIGTERM
    // forever. Give them half a second, then exit regardless.
    rt.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report.error(&e.to_string());
            ExitCode::from(e.exit_code())
        }
    }
}

/// Signals, as SPEC 12 says: SIGTERM, SIGINT and SIGQUIT stop gracefully (a second one
/// stops at once), SIGHUP reloads, and every other signal whose default would end the
/// process is logged and ignored, so that no catchable signal leaves routes in gobgpd
/// behind a dead daemon. (SIGPIPE is ignored by the Rust runtime itself.)
fn listen_for_signals(handle: Handle) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut stops = Vec::new();
    for (name, kind) in [
        ("SIGTERM", SignalKind::terminate()),
        ("SIGINT", SignalKind::interrupt()),
        ("SIGQUIT", SignalKind::quit()),
    ] {
        stops.push((name, signal(kind)?));
    }
    let mut hup = signal(SignalKind::hangup())?;
    let h = handle.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            warn!(target: anycastd::priority::NOTICE, signal = %"SIGHUP", "reloading the config file");
            h.reload_nowait().await;
        }
    });
    // Linux numbers of the other signals that end a process by default, and the real-time
    // ones (glibc keeps 32 and 33 for itself).
    let ignored = [
        ("SIGUSR1", 10),
        ("SIGUSR2", 12),
        ("SIGALRM", 14),
        ("SIGSTKFLT", 16),
        ("SIGXCPU", 24),
        ("SIGXFSZ", 25),
        ("SIGVTALRM", 26),
        ("SIGPROF", 27),
        ("SIGIO", 29),
        ("SIGPWR", 30),
        ("SIGSYS", 31),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .chain((34..=64).map(|s| (format!("SIGRTMIN+{}", s - 34), s)));
    for (name, number) in ignored {
        let mut sig = signal(SignalKind::from_raw(number))?;
        tokio::spawn(async move {
            while sig.recv().await.is_some() {
                warn!(signal = %name, "signal ignored (SIGTERM stops anycastd, SIGHUP reloads)");
            }
        });
    }
    tokio::spawn(async move {
        let mut count = 0;
        loop {
            let futures = stops.iter_mut().map(|(n, s)| {
                Box::pin(async move {
                    s.recv().await;
                    *n
                })
            });
            let (name, _, _) = futures_util::future::select_all(futures).await;
            count += 1;
            if count == 1 {
                warn!(
                    target: anycastd::priority::NOTICE,
                    signal = %name,
                    "stopping: draining the routes, then withdrawing them (send it again to withdraw at once)"
                );
                handle.stop(Stop::Graceful).await;
            } else {
                warn!(
                    target: anycastd::priority::NOTICE,
                    signal = %name,
                    "stopping now: withdrawing every route at once"
                );
                handle.stop(Stop::Now).await;
            }
        }
    });
    Ok(())
}
