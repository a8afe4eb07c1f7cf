//! Many prefixes (issue 20): 20,000 configured prefixes (200 services x 100 routes, one
//! cheap check each every 10 s) beside one service whose real server process is watched
//! with a `tcp` watch. What an operator with a large anycast table needs: a killed service
//! still leaves the router in milliseconds, the daemon costs nothing while idle, and a
//! reload takes well under a second.
//!
//! With `BENCH_FLEET=1`, the same with a fleet guard on a one-member etcd covering the
//! 20,000 prefixes (`fleet.prefixes`; the watched one is not covered, so its kill is
//! withdrawn as without a guard): what the guard's claims cost at this size.
//!
//! `BENCH_WATCH_CYCLES` (default 20) sets the kill cycles, `BENCH_SECONDS` (default 60) the
//! idle window, `BENCH_RELOADS` (default 10) the reloads of each kind (file settled, and written then
//! reloaded at once).

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use super::common::lab::{free_tcp_port, http_get, try_status, wait_until};
use super::common::targets::ProcessTarget;
use super::{Bench, CHANGE, measure, net, p50, since, stats};

const SERVICES: usize = 200;
const ROUTES: usize = 100;
const VICTIM: &str = "192.0.2.230/32";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

fn prefix(s: usize, r: usize) -> String {
    format!("10.{}.{}.{}/32", 100 + s / 100, s % 100, r)
}

/// The services' YAML: `SERVICES` x `ROUTES` prefixes with an `assigned_address` check
/// every 10 s, and the watched service; `extra` is one more route for the watched service
/// (a reload that changes something).
fn services(target: &ProcessTarget, extra: Option<&str>) -> String {
    let mut out = String::new();
    for s in 0..SERVICES {
        let routes: Vec<String> = (0..ROUTES).map(|r| prefix(s, r)).collect();
        out.push_str(&format!(
            "  - name: svc{s}\n    check_interval: 10s\n    routes: [{}]\n    checks:\n      - kind: assigned_address\n        spec: {{ ipv4: 127.0.0.1 }}\n",
            routes.join(", ")
        ));
    }
    let routes = match extra {
        Some(e) => format!("{VICTIM}, {e}"),
        None => VICTIM.to_string(),
    };
    out.push_str(&format!(
        "  - name: watched\n    check_interval: 10s\n    routes: [{routes}]\n    watch:\n      - tcp: {}\n    checks:\n      - kind: http_2xx\n        spec:\n          url: {}\n          timeout: 500ms\n",
        target.addr(),
        target.url()
    ));
    out
}

/// Waits until the watched service's tcp watch holds its connection.
fn armed(d: &super::common::lab::Anycastd) {
    wait_until("the tcp watch armed", CHANGE, || {
        try_status(d.metrics).is_some_and(|s| {
            s["watches"]
                .as_array()
                .is_some_and(|w| w.iter().all(|w| w["state"] == "connected"))
        })
    });
}

pub fn many() {
    let cycles = env_or("BENCH_WATCH_CYCLES", 20);
    let reloads = env_or("BENCH_RELOADS", 10);
    let b = Bench::new();
    let mut target = ProcessTarget::start();
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let total = SERVICES * ROUTES + 1;
    let etcd = (std::env::var("BENCH_FLEET").as_deref() == Ok("1"))
        .then(|| super::common::etcd::EtcdCluster::start(1));
    let fleet = etcd.as_ref().map_or(String::new(), |e| {
        let covered: Vec<String> = (0..SERVICES)
            .flat_map(|s| (0..ROUTES).map(move |r| prefix(s, r)))
            .collect();
        format!(
            "fleet:\n  etcd:\n    endpoints: [{}]\n  site: bench\n  prefixes: [{}]\n",
            e.endpoints().join(", "),
            covered.join(", ")
        )
    });
    let config = b.config(&[], &services(&target, None), metrics) + &fleet;
    let t0 = SystemTime::now();
    let d = b.anycastd(&config, metrics, &[]);
    wait_until(
        &format!("all {total} prefixes at the router"),
        Duration::from_secs(180),
        || b.rib.count() == total,
    );
    let all_in = since(SystemTime::now(), t0);

    let idle = measure(
        &format!("{total} prefixes announced, 201 checks every 10s, one tcp watch, idle"),
        &d,
        Duration::from_secs(5),
    );

    // What a scrape and `anycastd status` cost with every prefix's state and transitions
    // (SPEC 19: each has one, withdrawn -> up).
    let (scrape, metrics_bytes) = timed_gets(metrics, "/metrics");
    let (status, status_bytes) = timed_gets(metrics, "/status");

    let mut down = Vec::new();
    let mut up = Vec::new();
    for c in 0..cycles {
        armed(&d);
        // A pause so that the kill does not land right after the restart's round.
        std::thread::sleep(Duration::from_millis(300 + (c as u64 * 37) % 400));
        let t = SystemTime::now();
        target.kill9();
        down.push(since(b.rib.wait(net(VICTIM), false, t), t));
        let t = SystemTime::now();
        target.restart();
        up.push(since(b.rib.wait(net(VICTIM), true, t), t));
        eprint!("\rmany: kill cycle {}/{cycles}", c + 1);
    }
    eprintln!();

    // Reloads that change one route of one service: the whole file is read, validated and
    // planned against the running config each time. First as an operator does it (the file
    // written, then `anycastd reload` a moment later): the file is older than the settle
    // time, read once. Then written and reloaded at once, as a script would: anycastd reads
    // a file changed within SETTLE (300 ms) again until it is still (issue 20.4), so that
    // case includes that wait; it is reported apart.
    let settled = anycastd::small_file::SETTLE + Duration::from_millis(100);
    let mut reload = Vec::new();
    let mut at_once = Vec::new();
    for i in 0..2 * reloads {
        let extra = format!("192.0.2.{}/32", 240 + i % 2);
        d.rewrite_config(&(b.config(&[], &services(&target, Some(&extra)), metrics) + &fleet));
        let waited = i < reloads;
        if waited {
            std::thread::sleep(settled);
        }
        let t = Instant::now();
        let out = d.cli(&["reload"]);
        if waited { &mut reload } else { &mut at_once }.push(t.elapsed());
        assert!(
            out.status.success(),
            "anycastd reload failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let now = SystemTime::now();
        b.rib.wait(net(&extra), true, now - Duration::from_secs(1));
    }
    // The route the last reload removed goes after its drain_linger (GRACEFUL_SHUTDOWN
    // first); then the router holds every prefix and the last reload's one.
    wait_until(
        "the router to hold every prefix and the last reload's",
        CHANGE,
        || b.rib.count() == total + 1,
    );

    let guard = if etcd.is_some() {
        ", a fleet guard on a one-member etcd covering the 20,000"
    } else {
        ""
    };
    println!(
        "## Many prefixes ({SERVICES} services x {ROUTES} routes + 1 watched = {total} prefixes{guard}; {cycles} kill cycles, {reloads} reloads of each kind)\n"
    );
    println!(
        "start -> all {total} prefixes at the router: {:.2} s (includes the BGP session, 5-9 s)\n",
        all_in.as_secs_f64()
    );
    println!("| measure | p50 ms | p99 ms | max ms |\n|---|---|---|---|");
    println!(
        "| kill (SIGKILL, tcp watch) -> absent at the router | {} |",
        stats(&down)
    );
    println!(
        "| restart -> present at the router (next round; check_interval 10s) | {} |",
        stats(&up)
    );
    println!(
        "| `anycastd reload` (one route changed; file written {} ms before) -> command done | {} |",
        settled.as_millis(),
        stats(&reload)
    );
    println!(
        "| the same, file written and reloaded at once (includes the {} ms settle wait) | {} |",
        anycastd::small_file::SETTLE.as_millis(),
        stats(&at_once)
    );
    println!(
        "| `GET /metrics` ({:.1} MB) | {} |",
        metrics_bytes as f64 / 1e6,
        stats(&scrape)
    );
    println!(
        "| `GET /status` ({:.1} MB) | {} |",
        status_bytes as f64 / 1e6,
        stats(&status)
    );
    println!();
    println!(
        "| workload | CPU | peak RSS | window | checks failed in window |\n|---|---|---|---|---|"
    );
    println!("{idle}\n");
    println!(
        "kill -> absent p50 {:.1} ms (target <= 10 ms); reload p50 {:.0} ms (target < 200 ms; written and reloaded at once {:.0} ms)\n",
        p50(&down),
        p50(&reload),
        p50(&at_once)
    );
}

/// Ten `GET path` in a row: how long each took, and the size of the last answer.
fn timed_gets(metrics: SocketAddr, path: &str) -> (Vec<Duration>, usize) {
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..10 {
        let t = Instant::now();
        let (code, body) = http_get(metrics, path).unwrap_or_else(|| panic!("GET {path}"));
        times.push(t.elapsed());
        assert_eq!(code, 200, "GET {path}: {body}");
        bytes = body.len();
    }
    (times, bytes)
}
