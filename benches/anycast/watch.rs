//! The watch benchmark (SPEC 13): how fast a killed service leaves the router with a `tcp`
//! or `pid_file` watch, side by side with ExaBGP's healthcheck polling the same kind of
//! target in the same cycles, at check intervals of 1 s and 10 s; a hung service with
//! `fall: 3` and `fast_interval`; and what 1,000 watches cost (rows of the footprint table).
//!
//! The targets are real processes (`python3 -m http.server`), killed with SIGKILL or stopped
//! with SIGSTOP, as a crashing or wedged service would be. `BENCH_WATCH_CYCLES` (default 20)
//! sets the cycles per case.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::common::lab::{
    Anycastd, HttpTarget, free_tcp_port, listen, try_status, wait_until, wait_until_or,
};
use super::common::targets::ProcessTarget;
use super::{Bench, CHANGE, ExaBgp, SESSION, measure, net, p50, since, stats};

fn cycles() -> usize {
    std::env::var("BENCH_WATCH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(20)
}

/// A pseudo-random pause of 0.3 s plus up to one `interval`, so that the failures land at
/// every phase of the polling rounds (which is what ExaBGP's figures depend on).
fn phase(seed: &mut u64, interval: Duration) -> Duration {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let span = interval.as_millis().max(1) as u64;
    Duration::from_millis(300 + (*seed >> 33) % span)
}

/// A service with one http_2xx check on `url`, its own `route`, and `extra` YAML lines.
fn service(
    name: &str,
    interval: &str,
    url: &str,
    timeout: &str,
    route: &str,
    extra: &str,
) -> String {
    format!(
        "  - name: {name}\n    check_interval: {interval}\n    routes: [{route}]\n{extra}    checks:\n      - kind: http_2xx\n        spec:\n          url: {url}\n          timeout: {timeout}\n"
    )
}

/// Waits until every prefix is at the router.
fn all_present(b: &Bench, prefixes: &[&str], d: &Anycastd) {
    wait_until_or(
        &format!("all of {prefixes:?} at the router"),
        SESSION,
        || prefixes.iter().all(|p| b.rib.contains(&net(p))),
        || {
            format!(
                "anycastd log:\n{}\nexabgp log:\n{}",
                d.log(),
                std::fs::read_to_string(b.dir.path().join("exabgp.err")).unwrap_or_default()
            )
        },
    );
}

/// Kill -> absent at the router: anycastd with a tcp watch, anycastd with a pid_file watch
/// and ExaBGP's healthcheck, their three targets killed in the same cycle, at check
/// intervals of 1 s and 10 s.
pub fn latency() {
    let cycles = cycles();
    let b = Bench::new();
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    for (i, secs) in [1u64, 10].into_iter().enumerate() {
        let interval = Duration::from_secs(secs);
        let mut tcp_target = ProcessTarget::start();
        let mut pid_target = ProcessTarget::start();
        let mut exa_target = ProcessTarget::start();
        let pid_file = b.dir.path().join(format!("target-{secs}s.pid"));
        pid_target.write_pid(&pid_file);
        let pt = format!("192.0.2.{}/32", 210 + 3 * i);
        let pp = format!("192.0.2.{}/32", 211 + 3 * i);
        let px = format!("192.0.2.{}/32", 212 + 3 * i);
        let every = format!("{secs}s");
        let services = service(
            "tcp-watched",
            &every,
            &tcp_target.url(),
            "500ms",
            &pt,
            &format!("    watch:\n      - tcp: {}\n", tcp_target.addr()),
        ) + &service(
            "pid-watched",
            &every,
            &pid_target.url(),
            "500ms",
            &pp,
            &format!("    watch:\n      - pid_file: {}\n", pid_file.display()),
        );
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
        let d = b.anycastd(&b.config(&[], &services, metrics), metrics, &[]);
        let exa = ExaBgp::start(
            &b,
            &format!("curl -sf {}", exa_target.url()),
            &format!("--interval {secs} --fast-interval 1 --rise 1 --fall 1"),
            &px,
        );
        all_present(&b, &[&pt, &pp, &px], &d);

        let mut seed = 42 + secs;
        let (mut tcp, mut pid, mut exa_down) = (vec![], vec![], vec![]);
        for c in 0..cycles {
            // Killed while watched: after a restart the route can come back through a
            // polling round before the tcp watch's back-off lets it reconnect.
            armed(&d);
            std::thread::sleep(phase(&mut seed, interval));
            let t_tcp = SystemTime::now();
            tcp_target.kill9();
            let t_pid = SystemTime::now();
            pid_target.kill9();
            let t_exa = SystemTime::now();
            exa_target.kill9();
            tcp.push(since(b.rib.wait(net(&pt), false, t_tcp), t_tcp));
            pid.push(since(b.rib.wait(net(&pp), false, t_pid), t_pid));
            exa_down.push(since(b.rib.wait(net(&px), false, t_exa), t_exa));

            tcp_target.restart();
            pid_target.restart();
            pid_target.write_pid(&pid_file);
            exa_target.restart();
            for (p, t) in [(&pt, t_tcp), (&pp, t_pid), (&px, t_exa)] {
                b.rib.wait(net(p), true, t);
            }
            eprint!("\rwatch latency at {secs}s: cycle {}/{cycles}", c + 1);
        }
        eprintln!();
        drop(exa);
        drop(d);
        rows.push(format!(
            "| {secs}s | anycastd, tcp watch | {} |",
            stats(&tcp)
        ));
        rows.push(format!(
            "| {secs}s | anycastd, pid_file watch | {} |",
            stats(&pid)
        ));
        rows.push(format!(
            "| {secs}s | ExaBGP healthcheck (polls) | {} |",
            stats(&exa_down)
        ));
        ratios.push(format!(
            "check_interval {secs}s, p50: tcp watch {:.1} ms, pid_file watch {:.1} ms, ExaBGP {:.0} ms: anycastd/ExaBGP = {:.4} (tcp), {:.4} (pid_file)",
            p50(&tcp),
            p50(&pid),
            p50(&exa_down),
            p50(&tcp) / p50(&exa_down).max(0.001),
            p50(&pid) / p50(&exa_down).max(0.001),
        ));
    }
    println!(
        "## Watches: target killed (SIGKILL) -> prefix absent at the router ({cycles} cycles per interval, rise 1, fall 1)\n"
    );
    println!("| check_interval | who | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    println!();
    for r in ratios {
        println!("{r}");
    }
    println!();
}

/// A hung target (SIGSTOP): `fall: 3` with `fast_interval: 100ms` and a 100 ms timeout,
/// the same without fast_interval, and ExaBGP's healthcheck with its own fast interval of
/// 0.1 s and `curl --max-time 0.1`, all polling every 1 s, their targets stopped together.
pub fn fast_fall() {
    let cycles = cycles();
    let b = Bench::new();
    let fast_target = ProcessTarget::start();
    let slow_target = ProcessTarget::start();
    let exa_target = ProcessTarget::start();
    let (pf, ps, px) = ("192.0.2.220/32", "192.0.2.221/32", "192.0.2.222/32");
    let services = service(
        "svc-fast",
        "1s",
        &fast_target.url(),
        "100ms",
        pf,
        "    fall: 3\n    fast_interval: 100ms\n",
    ) + &service(
        "svc-slow",
        "1s",
        &slow_target.url(),
        "100ms",
        ps,
        "    fall: 3\n",
    );
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let d = b.anycastd(&b.config(&[], &services, metrics), metrics, &[]);
    let _exa = ExaBgp::start(
        &b,
        &format!("curl -sf --max-time 0.1 {}", exa_target.url()),
        "--interval 1 --fast-interval 0.1 --rise 1 --fall 3",
        px,
    );
    all_present(&b, &[pf, ps, px], &d);

    let mut seed = 7u64;
    let (mut fast, mut slow, mut exa, mut fast_after_round) = (vec![], vec![], vec![], vec![]);
    for c in 0..cycles {
        std::thread::sleep(phase(&mut seed, Duration::from_secs(1)));
        let t_fast = SystemTime::now();
        fast_target.signal("STOP");
        let t_slow = SystemTime::now();
        slow_target.signal("STOP");
        let t_exa = SystemTime::now();
        exa_target.signal("STOP");
        let gone_fast = b.rib.wait(net(pf), false, t_fast);
        fast.push(since(gone_fast, t_fast));
        slow.push(since(b.rib.wait(net(ps), false, t_slow), t_slow));
        exa.push(since(b.rib.wait(net(px), false, t_exa), t_exa));
        let failed = super::wait_logged(&d, t_fast, &["check failed", "svc-fast"]);
        fast_after_round.push(since(gone_fast, failed));
        for t in [&fast_target, &slow_target, &exa_target] {
            t.signal("CONT");
        }
        for (p, t) in [(pf, t_fast), (ps, t_slow), (px, t_exa)] {
            b.rib.wait(net(p), true, t);
        }
        eprint!("\rwatch fast fall: cycle {}/{cycles}", c + 1);
    }
    eprintln!();
    println!(
        "## Fast fall: target hung (SIGSTOP) -> prefix absent at the router ({cycles} cycles, check_interval 1s, fall 3, timeout 100ms)\n"
    );
    println!("| who | p50 ms | p99 ms | max ms |\n|---|---|---|---|");
    println!("| anycastd, fast_interval 100ms | {} |", stats(&fast));
    println!(
        "| anycastd, fast_interval 100ms: first failing round ended -> absent | {} |",
        stats(&fast_after_round)
    );
    println!("| anycastd, no fast_interval | {} |", stats(&slow));
    println!(
        "| ExaBGP healthcheck, --fast-interval 0.1, curl --max-time 0.1 | {} |",
        stats(&exa)
    );
    println!(
        "\nfirst failing round ended -> absent, p50 {:.0} ms: the two rounds after the first at fast_interval (2 x 100 ms); the first round itself took its 100 ms timeout, so timeout + 2 x fast_interval = 300 ms from its start.\n",
        p50(&fast_after_round)
    );
}

/// A server that accepts connections and holds them, never reading: the other end of
/// 1,000 idle tcp watches.
struct HoldServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl HoldServer {
    fn start() -> HoldServer {
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0))).expect("listen");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            let held: Mutex<Vec<TcpStream>> = Mutex::new(Vec::new());
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => held.lock().expect("held").push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HoldServer { addr, stop }
    }
}

impl Drop for HoldServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// 100 services x 10 http_2xx checks every 1 s on `url` (one assigned_address check on
/// 127.0.0.1 every 10 s when `url` is `None`: the watches alone), each service with the 10
/// watches `watch(service, n)` writes.
fn thousand(url: Option<&str>, watch: impl Fn(usize, usize) -> String) -> String {
    let mut services = String::new();
    for s in 0..100 {
        let every = if url.is_some() { "1s" } else { "10s" };
        services.push_str(&format!(
            "  - name: svc{s}\n    check_interval: {every}\n    watch:\n"
        ));
        for w in 0..10 {
            services.push_str(&format!("      - {}\n", watch(s, w)));
        }
        services.push_str("    checks:\n");
        match url {
            Some(url) => {
                for c in 0..10 {
                    services.push_str(&format!(
                        "      - name: c{c}\n        kind: http_2xx\n        spec:\n          url: {url}\n          timeout: 500ms\n"
                    ));
                }
            }
            None => services
                .push_str("      - kind: assigned_address\n        spec: { ipv4: 127.0.0.1 }\n"),
        }
    }
    services
}

/// Waits until both watches of the latency services watch their targets.
fn armed(d: &Anycastd) {
    wait_until("the watches armed", CHANGE, || {
        try_status(d.metrics).is_some_and(|s| {
            s["watches"].as_array().is_some_and(|w| {
                w.iter()
                    .all(|w| w["state"] == "connected" || w["state"] == "process_alive")
            })
        })
    });
}

/// Waits until `/status` shows every one of the 1,000 watches in `state`.
fn all_watches(d: &Anycastd, state: &str) {
    wait_until(&format!("1,000 watches {state}"), CHANGE, || {
        try_status(d.metrics).is_some_and(|s| {
            s["watches"]
                .as_array()
                .is_some_and(|w| w.len() == 1000 && w.iter().all(|w| w["state"] == state))
        })
    });
}

/// A footprint row: what it is, the checks' URL (`None`: watches alone), the watch item of
/// service `s` number `w`, and the state all watches reach.
type Case<'a> = (
    &'a str,
    Option<&'a str>,
    &'a dyn Fn(usize, usize) -> String,
    &'a str,
);

/// Footprint rows: 1,000 tcp watches and 1,000 pid_file watches, alone (100 services with
/// one cheap check every 10 s) and beside 1,000 http_2xx checks a second.
pub fn footprint(b: &Bench) -> Vec<String> {
    let mut rows = Vec::new();
    let target = HttpTarget::start();
    let hold = HoldServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let me = std::process::id();
    for s in 0..100 {
        for w in 0..10 {
            std::fs::write(dir.path().join(format!("{s}-{w}.pid")), format!("{me}\n"))
                .expect("write a pid file");
        }
    }
    let tcp = |_: usize, _: usize| format!("tcp: {}", hold.addr);
    let pid = |s: usize, w: usize| {
        format!(
            "pid_file: {}",
            dir.path().join(format!("{s}-{w}.pid")).display()
        )
    };
    let url = target.url();
    let cases: [Case; 4] = [
        (
            "1,000 tcp watches (held connections), checks every 10s",
            None,
            &tcp,
            "connected",
        ),
        (
            "1,000 pid_file watches (pidfds; file compared every 5 s), checks every 10s",
            None,
            &pid,
            "process_alive",
        ),
        (
            "1,000 http_2xx checks every 1s + 1,000 tcp watches",
            Some(&url),
            &tcp,
            "connected",
        ),
        (
            "1,000 http_2xx checks every 1s + 1,000 pid_file watches",
            Some(&url),
            &pid,
            "process_alive",
        ),
    ];
    for (i, (what, url, watch, state)) in cases.into_iter().enumerate() {
        let prefix = format!("10.0.0.{}/32", 140 + i);
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
        let d = b.anycastd(
            &b.config(
                std::slice::from_ref(&prefix),
                &thousand(url, watch),
                metrics,
            ),
            metrics,
            &[],
        );
        b.rib.wait(net(&prefix), true, SystemTime::UNIX_EPOCH);
        all_watches(&d, state);
        rows.push(measure(what, &d, Duration::from_secs(3)));
    }
    rows
}
