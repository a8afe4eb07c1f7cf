//! Issue 10, finding 2: a client holding thousands of idle connections to the metrics
//! endpoint must not starve anycastd of file descriptors. The real binary runs under a 1024
//! open-files limit (soft and hard: nothing to raise, as in a container run with
//! `--ulimit nofile=1024:1024`) against a real speaker and router gobgpd, and the test
//! asserts on the router's RIB and on the daemon's metrics.

pub mod common {
    pub mod config;
    pub mod e2e;
    pub mod gobgpd;
    pub mod lab;
    pub mod procfs;
    pub mod prom;
}

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::e2e::{CHANGE, Lab, SESSION, http_service};
use common::lab::{Anycastd, HttpTarget, wait_until};
use common::procfs;

/// Idle connections the attacker keeps trying to hold.
const CONNECTIONS: usize = 2500;
/// Source addresses they come from (127.0.0.2 ...): more than one client.
const SOURCES: u8 = 16;
/// How long the attack lasts.
const ATTACK: Duration = Duration::from_secs(20);

#[test]
fn thousands_of_idle_connections_to_the_metrics_endpoint_withdraw_nothing() {
    procfs::raise_own_nofile(CONNECTIONS as u64 + 512);
    let lab = Lab::new();
    let target = HttpTarget::start();
    let prefix = "192.0.2.80/32";
    let config = lab
        .config()
        .routes(&[prefix])
        .service(http_service("web", &target.url()));
    let d = Anycastd::launch(
        lab.dir.path(),
        &config.to_string(),
        lab.metrics,
        &[],
        &["prlimit", "--nofile=1024:1024", "--"],
        std::path::Path::new(env!("CARGO_BIN_EXE_anycastd")),
    );
    let pid = d.pid().expect("anycastd runs");
    lab.wait(prefix, true, SESSION);
    let limits = procfs::nofile_limits(pid);
    assert_eq!(limits, Some((1024, 1024)), "the daemon's open-files limit");
    let fds_before = procfs::open_fds(pid);

    let attack = Attack::start(lab.metrics, CONNECTIONS, SOURCES);
    let start = Instant::now();
    let (mut withdrawals, mut absent_samples, mut samples, mut max_fds) = (0, 0, 0, 0);
    let mut present = true;
    while start.elapsed() < ATTACK {
        let now_present = lab.router.rib_prefixes().contains(prefix);
        if present && !now_present {
            withdrawals += 1;
        }
        absent_samples += usize::from(!now_present);
        samples += 1;
        present = now_present;
        max_fds = max_fds.max(procfs::open_fds(pid));
        std::thread::sleep(Duration::from_millis(50));
    }
    let figures = attack.stop();
    eprintln!(
        "attack of {ATTACK:?}: {figures}; daemon fds {fds_before} before, at most {max_fds} \
         during; {withdrawals} withdrawals seen at the router ({absent_samples} of {samples} \
         samples without the route)"
    );
    assert!(
        figures.connects >= CONNECTIONS as u64,
        "the attack must make thousands of connections: {figures}"
    );

    // The service never went down: one transition (the first up), its check never failed.
    let failures = d
        .log()
        .lines()
        .filter(|l| l.contains("check failed") || l.contains("service is down"))
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert_eq!(
        (withdrawals, absent_samples),
        (0, 0),
        "the route left the router during the attack; the daemon logged:\n{}",
        failures.join("\n")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    wait_until("the metrics endpoint to answer again", CHANGE, || {
        d.sample("anycastd_service_up", &[("service", "web")])
            .is_some()
    });
    assert_eq!(
        d.sample("anycastd_service_transitions_total", &[("service", "web")]),
        Some(1.0),
        "the service went down and up again"
    );
    assert_eq!(
        d.sample(
            "anycastd_check_up",
            &[("service", "web"), ("check", "http_2xx")]
        ),
        Some(1.0)
    );
    assert_eq!(
        d.sample("anycastd_route_announced", &[("prefix", prefix)]),
        Some(1.0)
    );
    assert!(
        d.log().contains("metrics endpoint: too many connections"),
        "the endpoint's cap was never reached: the attack did not happen"
    );
    assert!(
        !d.log().contains("Too many open files"),
        "the daemon ran out of file descriptors:\n{}",
        d.log()
    );
    // The endpoint held a bounded number of connections.
    assert!(
        max_fds <= fds_before + 100,
        "the daemon's open files grew from {fds_before} to {max_fds} under the attack"
    );
}

/// Clients that connect to the endpoint, send nothing, and connect again one second after
/// the server closes on them.
struct Attack {
    stop: tokio::sync::watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    connects: AtomicU64,
    refused: AtomicU64,
    open: AtomicU64,
    peak_open: AtomicU64,
}

struct Figures {
    connects: u64,
    refused: u64,
    peak_open: u64,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} connections made, {} failed to connect, at most {} open at once (client side)",
            self.connects, self.refused, self.peak_open
        )
    }
}

impl Attack {
    fn start(target: SocketAddr, connections: usize, sources: u8) -> Attack {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the attack");
            rt.block_on(async move {
                let mut tasks = tokio::task::JoinSet::new();
                for i in 0..connections {
                    let source =
                        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % sources as usize) as u8));
                    tasks.spawn(hold(target, source, stopped.clone(), c.clone()));
                }
                while tasks.join_next().await.is_some() {}
            });
        });
        Attack {
            stop,
            thread,
            counts,
        }
    }

    fn stop(self) -> Figures {
        let _ = self.stop.send(true);
        let _ = self.thread.join();
        Figures {
            connects: self.counts.connects.load(Ordering::SeqCst),
            refused: self.counts.refused.load(Ordering::SeqCst),
            peak_open: self.counts.peak_open.load(Ordering::SeqCst),
        }
    }
}

async fn hold(
    target: SocketAddr,
    source: IpAddr,
    mut stop: tokio::sync::watch::Receiver<bool>,
    counts: Arc<Counts>,
) {
    use tokio::io::AsyncReadExt;
    while !*stop.borrow() {
        let connected = async {
            let s = tokio::net::TcpSocket::new_v4()?;
            s.bind(SocketAddr::new(source, 0))?;
            s.connect(target).await
        };
        match tokio::time::timeout(Duration::from_secs(2), connected).await {
            Ok(Ok(mut stream)) => {
                counts.connects.fetch_add(1, Ordering::SeqCst);
                let open = counts.open.fetch_add(1, Ordering::SeqCst) + 1;
                counts.peak_open.fetch_max(open, Ordering::SeqCst);
                let mut buf = [0u8; 256];
                // Idle until the server closes the connection (or the attack ends).
                tokio::select! {
                    _ = async { while let Ok(n) = stream.read(&mut buf).await { if n == 0 { break } } } => {}
                    _ = stop.changed() => {}
                }
                counts.open.fetch_sub(1, Ordering::SeqCst);
            }
            _ => {
                counts.refused.fetch_add(1, Ordering::SeqCst);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => {}
        }
    }
}

/// The systemd unit does not leave anycastd at the default soft limit of 1024.
#[test]
fn the_unit_sets_an_open_files_limit() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/anycastd.service"
    ))
    .expect("read systemd/anycastd.service");
    let limit: Option<u64> = unit
        .lines()
        .find_map(|l| l.trim().strip_prefix("LimitNOFILE="))
        .and_then(|v| v.trim().parse().ok());
    assert!(
        limit.is_some_and(|n| n >= 8192),
        "anycastd.service must set LimitNOFILE= to some thousands: {limit:?}"
    );
}
