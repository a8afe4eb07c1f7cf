//! What the fleet guard costs: the delay `release_guarded` adds before a withdrawal, measured
//! against a real 3-member etcd cluster (Debian's etcd 3.4, data on disk, loopback) with
//! three sites.
//!
//! `cargo bench --bench fleet` (needs etcd: `./scripts/setup.sh` installs it). Environment:
//! `BENCH_FLEET_RUNS` (default 500).

#[path = "../tests/common"]
pub mod common {
    pub mod etcd;
    pub mod lab;
    pub mod prom;
}

use std::sync::Arc;
use std::time::{Duration, Instant};

use anycastd::config::Dur;
use anycastd::config::fleet::{EtcdConfig, FleetConfig, OnUnreachable};
use anycastd::fleet::claims::Claims;
use anycastd::fleet::decision::Decision;
use anycastd::metrics::Metrics;
use common::etcd::EtcdCluster;
use ipnet::IpNet;
use tokio::sync::watch;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("fleet benchmark: built; run it with `cargo bench --bench fleet`");
        return;
    }
    let runs: usize = std::env::var("BENCH_FLEET_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(bench(runs));
}

fn config(endpoints: Vec<String>, min_sites: u32) -> FleetConfig {
    FleetConfig {
        etcd: EtcdConfig {
            endpoints,
            prefix: "/anycastd-bench/".to_string(),
            timeout: Dur::secs(2),
            tls: None,
            user: None,
            password_file: None,
        },
        site: None,
        min_sites,
        lease_ttl: Dur::secs(10),
        on_unreachable: OnUnreachable::Hold,
        prefixes: None,
    }
}

fn start(cfg: &FleetConfig, name: &str, shutdown: &watch::Receiver<bool>) -> Claims {
    let (fleet, task) = Claims::start(
        cfg,
        name.to_string(),
        std::iter::empty(),
        &Metrics::new(),
        shutdown.clone(),
        watch::channel(None).1,
    )
    .expect("fleet starts");
    tokio::spawn(task);
    fleet
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `(p50, p99, max)` in ms.
fn percentiles(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
    (ms(at(0.50)), ms(at(0.99)), ms(v[v.len() - 1]))
}

fn row(what: &str, v: Vec<Duration>) {
    let n = v.len();
    let (p50, p99, max) = percentiles(v);
    println!("| {what} | {n} | {p50:.2} | {p99:.2} | {max:.2} |");
}

async fn bench(runs: usize) {
    let cluster = EtcdCluster::start(3);
    let (_stop, shutdown) = watch::channel(false);
    let names = ["ams1", "fra1", "lon1"];
    let one: Vec<Claims> = names
        .iter()
        .map(|n| start(&config(cluster.endpoints(), 1), n, &shutdown))
        .collect();
    let two: Vec<Claims> = names
        .iter()
        .map(|n| {
            start(
                &config(cluster.endpoints(), 2),
                &format!("{n}-m2"),
                &shutdown,
            )
        })
        .collect();
    let prefix = |i: usize, block: u8| -> IpNet {
        format!("198.{}.{}.{}/32", 18 + block, i / 256, i % 256)
            .parse()
            .expect("prefix")
    };

    // Warm up: connections, leases, site names.
    for f in one.iter().chain(&two) {
        let _ = f.claim(prefix(0, 1)).await;
        let _ = f.release_forced(prefix(0, 1)).await;
    }

    let mut claim = Vec::new();
    let mut released = Vec::new();
    let mut held = Vec::new();
    let mut together = Vec::new();
    for i in 0..runs {
        // One site fails, two others hold the prefix: the guard passes.
        let p = prefix(i, 0);
        for f in &one {
            let t = Instant::now();
            f.claim(p).await.expect("claim");
            claim.push(t.elapsed());
        }
        let t = Instant::now();
        let d = one[0].release_guarded(p).await;
        released.push(t.elapsed());
        assert!(matches!(d, Decision::Released(_)), "{d:?}");
        // The second one too (one other left); the third finds none: held.
        let d = one[1].release_guarded(p).await;
        assert!(matches!(d, Decision::Released(_)), "{d:?}");
        let t = Instant::now();
        let d = one[2].release_guarded(p).await;
        held.push(t.elapsed());
        assert!(matches!(d, Decision::Held(_)), "{d:?}");
        let _ = one[2].release_forced(p).await;

        // All three fail at the same instant (min_sites 2: one goes, two hold).
        let p = prefix(i, 1);
        for f in &two {
            f.claim(p).await.expect("claim");
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(3));
        let tasks: Vec<_> = two
            .iter()
            .map(|f| {
                let (f, b) = (f.clone(), barrier.clone());
                tokio::spawn(async move {
                    b.wait().await;
                    let t = Instant::now();
                    let d = f.release_guarded(p).await;
                    (t.elapsed(), d)
                })
            })
            .collect();
        let mut n_released = 0;
        for t in tasks {
            let (took, d) = t.await.expect("task");
            together.push(took);
            n_released += usize::from(matches!(d, Decision::Released(_)));
        }
        assert_eq!(n_released, 1, "run {i}");
        for f in &two {
            let _ = f.release_forced(p).await;
        }
    }

    println!("# fleet guard benchmark\n");
    println!(
        "etcd {} (3 members on 127.0.0.1, data on disk), 3 sites, {runs} runs; release build.\n",
        etcd_version()
    );
    println!("| measure | n | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    row(
        "release_guarded -> Released (the delay the guard adds to a withdrawal)",
        released,
    );
    row("release_guarded -> Held (too few other sites)", held);
    row(
        "release_guarded, 3 sites failing at once (min_sites 2; retries included)",
        together,
    );
    row("claim", claim);
}

fn etcd_version() -> String {
    std::process::Command::new("etcd")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.trim_start_matches("etcd Version: ").to_string())
        })
        .unwrap_or_else(|| "?".to_string())
}
