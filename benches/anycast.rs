//! The operator's benchmark: how fast a dead node leaves the anycast (side by side with
//! ExaBGP's healthcheck), what anycastd costs on the box, and how far it scales.
//!
//! `./scripts/bench.sh` (or `cargo bench --bench anycast -- [latency] [footprint] [scale] [watch]`)
//! runs real gobgpd speaker and router, real HTTP targets on loopback, the release
//! `anycastd` binary and, for comparison, ExaBGP's `healthcheck`. The router's RIB is
//! watched with gobgpd's WatchEvent stream, so "absent at the router" is the moment the
//! router's best path went away. Environment: `BENCH_CYCLES` (default 50),
//! `BENCH_SECONDS` (footprint window, default 60), `BENCH_WATCH_CYCLES` (default 20). The
//! watch section (killed and hung target processes, 1,000 watches) is in `anycast/watch.rs`.
//! The bfd section (a host's link cut, with and without BFD; `anycast/bfd.rs`) runs only
//! when named (`./scripts/bench.sh bfd`): it needs root for its network namespaces and
//! takes about twenty minutes.

#[path = "../tests/common"]
pub mod common {
    pub mod artifacts;
    pub mod bfd;
    pub mod config;
    pub mod dns;
    pub mod etcd;
    pub mod gobgpd;
    pub mod lab;
    pub mod netns;
    pub mod prom;
    pub mod seed;
    pub mod targets;
    pub mod tftpd;
    pub mod tls;
}
#[path = "anycast/bfd.rs"]
mod bfd;
#[path = "anycast/many.rs"]
mod many;
#[path = "anycast/watch.rs"]
mod watch;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anycastd::announcer::gobgp::client::Client;
use anycastd::announcer::gobgp::ops::{BestPaths, Gobgp};
use common::gobgpd::{Gobgpd, Release, RouterOpts, require_gobgpd};
use common::lab::{Anycastd, HttpTarget, free_tcp_port, wait_until};
use ipnet::IpNet;

const SPEAKER_ASN: u32 = 65001;
const ROUTER_ASN: u32 = 65000;
const EXABGP_ASN: u32 = 65002;
const SESSION: Duration = Duration::from_secs(60);
const CHANGE: Duration = Duration::from_secs(30);

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without
    // it, and a ten-minute benchmark has no place in the test suite.
    if !std::env::args().any(|a| a == "--bench") {
        println!("anycast benchmark: built; run it with `cargo bench --bench anycast`");
        return;
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let all = args.is_empty();
    let wants = |name: &str| all || args.iter().any(|a| a == name);
    require_gobgpd();
    println!("# anycastd benchmark\n\n{}\n", machine());
    if wants("latency") {
        latency();
    }
    if wants("footprint") {
        footprint();
    }
    if wants("scale") {
        scale();
    }
    if wants("watch") {
        watch::latency();
        watch::fast_fall();
    }
    if wants("many") {
        many::many();
    }
    // Not part of "all": root, network namespaces, twenty minutes.
    if args.iter().any(|a| a == "bfd") {
        bfd::bfd();
    }
}

/// The machine the figures come from.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024 / 1024);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "Machine: {cpu}, {cores} cores, {mem} GiB, Linux {}; speaker and router: {} (ANYCASTD_TEST_GOBGP); anycastd {} (release build).",
        kernel.trim(),
        version_of(&Release::default().gobgpd().to_string_lossy()),
        env!("CARGO_PKG_VERSION")
    )
}

fn version_of(bin: &str) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Follows the router's best paths: when each prefix arrived and left.
struct RibWatch {
    events: Arc<Mutex<Vec<(SystemTime, IpNet, bool)>>>,
    present: Arc<Mutex<BTreeSet<IpNet>>>,
}

impl RibWatch {
    fn start(rt: &tokio::runtime::Runtime, api_port: u16) -> RibWatch {
        let events = Arc::new(Mutex::new(Vec::new()));
        let present = Arc::new(Mutex::new(BTreeSet::new()));
        let (ev, pr) = (events.clone(), present.clone());
        rt.spawn(async move {
            let addr = format!("127.0.0.1:{api_port}");
            let client = Client::connect(&addr, Duration::from_secs(3))
                .await
                .expect("connect to the router's API");
            let mut stream = client
                .watch_best_paths()
                .await
                .expect("watch the router's RIB");
            while let Ok(Some(changes)) = stream.next().await {
                let now = SystemTime::now();
                let mut ev = ev.lock().expect("events");
                let mut pr = pr.lock().expect("present");
                for c in changes {
                    ev.push((now, c.prefix, !c.withdrawn));
                    if c.withdrawn {
                        pr.remove(&c.prefix);
                    } else {
                        pr.insert(c.prefix);
                    }
                }
            }
        });
        RibWatch { events, present }
    }

    /// When `prefix` became `present` at or after `after`; waits for it.
    fn wait(&self, prefix: IpNet, present: bool, after: SystemTime) -> SystemTime {
        let start = Instant::now();
        loop {
            if let Some(t) = self
                .events
                .lock()
                .expect("events")
                .iter()
                .find(|(t, p, s)| *t >= after && *p == prefix && *s == present)
                .map(|(t, _, _)| *t)
            {
                return t;
            }
            assert!(
                start.elapsed() < CHANGE,
                "{prefix} did not become {} at the router",
                if present { "present" } else { "absent" }
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn count(&self) -> usize {
        self.present.lock().expect("present").len()
    }

    fn contains(&self, p: &IpNet) -> bool {
        self.present.lock().expect("present").contains(p)
    }
}

fn net(s: &str) -> IpNet {
    s.parse().expect("a prefix")
}

/// A speaker, and a router with the speaker (127.0.0.1) and ExaBGP (127.0.0.2) as peers.
struct Bench {
    _speaker: Gobgpd,
    router: Gobgpd,
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    rib: RibWatch,
}

impl Bench {
    fn new() -> Bench {
        let speaker = Gobgpd::speaker();
        let router = Gobgpd::router_with(
            RouterOpts {
                asn: ROUTER_ASN,
                router_id: "10.255.0.2".parse().expect("router id"),
                listen_addr: "127.0.0.1".parse().expect("listen addr"),
                neighbor_addr: "127.0.0.1".parse().expect("neighbor addr"),
                neighbor_asn: SPEAKER_ASN,
            },
            &[(
                "127.0.0.2".parse::<IpAddr>().expect("exabgp addr"),
                EXABGP_ASN,
            )],
        );
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let rib = RibWatch::start(&rt, router.api_port());
        Bench {
            _speaker: speaker,
            router,
            dir: tempfile::tempdir().expect("tempdir"),
            rt,
            rib,
        }
    }

    fn config(&self, routes: &[String], services: &str, metrics: SocketAddr) -> String {
        format!(
            r#"announcer:
  router_id: 10.255.0.1
  local_address: 127.0.0.1
  local_asn: {SPEAKER_ASN}
  next_hop: 198.51.100.1
  routes: [{routes}]
  peers:
    - name: router
      remote_address: 127.0.0.1
      remote_asn: {ROUTER_ASN}
      remote_port: {port}
  gobgp:
    address: 127.0.0.1:{api}
services:
{services}
metrics:
  address: {metrics}
"#,
            routes = routes.join(", "),
            port = self.router.bgp_port(),
            api = self._speaker.api_port(),
        )
    }

    fn anycastd(&self, config: &str, metrics: SocketAddr, env: &[(&str, &str)]) -> Anycastd {
        let mut e = vec![("LOG_LEVEL", "warn")];
        e.extend_from_slice(env);
        Anycastd::start_with_env(self.dir.path(), config, metrics, &e)
    }
}

/// ExaBGP with its healthcheck on `url`, announcing `prefix` to the bench's router.
struct ExaBgp {
    child: Child,
}

/// The healthcheck options of the polling comparison.
const EXABGP_POLL: &str = "--interval 1 --fast-interval 1 --rise 1 --fall 1";

impl ExaBgp {
    /// `check` is the command the healthcheck runs (`curl -sf URL`), `options` its timing
    /// options (`--interval 1 --rise 1 ...`).
    fn start(b: &Bench, check: &str, options: &str, prefix: &str) -> ExaBgp {
        let conf = b.dir.path().join("exabgp.conf");
        std::fs::write(
            &conf,
            format!(
                r#"process healthcheck {{
  run /usr/bin/python3 -m exabgp healthcheck --cmd "{check}" {options} --withdraw-on-down --ip {prefix} --next-hop 198.51.100.1 --no-syslog --no-ip-setup;
  encoder text;
}}
neighbor 127.0.0.1 {{
  router-id 10.255.0.3;
  local-address 127.0.0.2;
  local-as {EXABGP_ASN};
  peer-as {ROUTER_ASN};
  connect {port};
  api {{ processes [ healthcheck ]; }}
}}
"#,
                port = b.router.bgp_port()
            ),
        )
        .expect("write the ExaBGP config");
        assert!(
            std::path::Path::new("/usr/sbin/exabgp").exists()
                || Command::new("exabgp").arg("--version").output().is_ok(),
            "exabgp is missing: apt-get install -y exabgp (./scripts/bench.sh does)"
        );
        let child = Command::new("exabgp")
            .arg(&conf)
            .env("exabgp.daemon.user", "root")
            .env("exabgp.daemon.drop", "false")
            .env("exabgp.tcp.bind", "")
            .stdout(std::fs::File::create(b.dir.path().join("exabgp.log")).expect("exabgp log"))
            .stderr(std::fs::File::create(b.dir.path().join("exabgp.err")).expect("exabgp log"))
            .spawn()
            .expect("start exabgp");
        ExaBgp { child }
    }
}

impl Drop for ExaBgp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The time of the first log line at or after `after` containing every one of `needles`.
fn logged(log: &str, after: SystemTime, needles: &[&str]) -> Option<SystemTime> {
    log.lines()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .filter_map(|l| humantime::parse_rfc3339(l.split_whitespace().next()?).ok())
        .find(|t| *t >= after)
}

/// Waits (with a deadline) for a log line written after `after` that holds every needle.
/// The route can reach the router before the daemon has written its log line about it.
fn wait_logged(d: &Anycastd, after: SystemTime, needles: &[&str]) -> SystemTime {
    let mut at = None;
    wait_until(&format!("a log line with {needles:?}"), CHANGE, || {
        at = logged(&d.log(), after, needles);
        at.is_some()
    });
    at.unwrap_or(after)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn since(later: SystemTime, earlier: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or_default()
}

/// p50 / p99 / max of a series, in milliseconds.
fn stats(v: &[Duration]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    format!(
        "{:.1} | {:.1} | {:.1}",
        quantile(v, 0.5),
        quantile(v, 0.99),
        quantile(v, 1.0)
    )
}

/// The `q` quantile of a series in milliseconds (nearest rank, as in the tables).
fn quantile(v: &[Duration], q: f64) -> f64 {
    let mut v: Vec<f64> = v.iter().map(|d| ms(*d)).collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1]
}

fn p50(v: &[Duration]) -> f64 {
    quantile(v, 0.5)
}

/// A cheap deterministic pseudo-random pause, so that failures land at every phase of
/// the 1 s check rounds.
fn jitter(seed: &mut u64) -> Duration {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    Duration::from_millis(300 + (*seed >> 33) % 1000)
}

fn latency() {
    let cycles: usize = std::env::var("BENCH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(50);
    let b = Bench::new();
    let ours = HttpTarget::start();
    let theirs = HttpTarget::start();
    let (pa, pb) = ("192.0.2.200/32", "192.0.2.201/32");
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let service = format!(
        "  - name: web\n    check_interval: 1s\n    rise: 1\n    fall: 1\n    checks:\n      - kind: http_2xx\n        spec:\n          url: {}\n          timeout: 500ms\n",
        ours.url()
    );
    let d = b.anycastd(
        &b.config(&[pa.to_string()], &service, metrics),
        metrics,
        &[],
    );
    let _exa = ExaBgp::start(&b, &format!("curl -sf {}", theirs.url()), EXABGP_POLL, pb);
    let (na, nb) = (net(pa), net(pb));
    let start = Instant::now();
    while !(b.rib.contains(&na) && b.rib.contains(&nb)) {
        assert!(
            start.elapsed() < SESSION,
            "not both prefixes at the router: watched {:?}, RIB {:?}; anycastd log:\n{}\nexabgp log:\n{}",
            b.rib.present.lock().expect("present"),
            b.router.rib_prefixes(),
            d.log(),
            std::fs::read_to_string(b.dir.path().join("exabgp.log")).unwrap_or_default()
                + &std::fs::read_to_string(b.dir.path().join("exabgp.err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let mut seed = 42u64;
    let (mut a_down, mut a_down_after, mut a_own_down) = (vec![], vec![], vec![]);
    let (mut a_up, mut a_up_after, mut a_own_up) = (vec![], vec![], vec![]);
    let (mut x_down, mut x_up) = (vec![], vec![]);
    for i in 0..cycles {
        std::thread::sleep(jitter(&mut seed));
        let t0 = SystemTime::now();
        ours.set_status(500);
        theirs.set_status(500);
        let gone_a = b.rib.wait(na, false, t0);
        let gone_b = b.rib.wait(nb, false, t0);
        let round = wait_logged(&d, t0, &["service is down"]);
        let withdrawn = wait_logged(&d, t0, &["withdrawn", pa]);
        a_down.push(since(gone_a, t0));
        a_down_after.push(since(gone_a, round));
        a_own_down.push(since(withdrawn, round));
        x_down.push(since(gone_b, t0));

        std::thread::sleep(jitter(&mut seed));
        let t1 = SystemTime::now();
        ours.set_status(200);
        theirs.set_status(200);
        let back_a = b.rib.wait(na, true, t1);
        let back_b = b.rib.wait(nb, true, t1);
        let round = wait_logged(&d, t1, &["service is up"]);
        let announced = wait_logged(&d, t1, &["announced", pa]);
        a_up.push(since(back_a, t1));
        a_up_after.push(since(back_a, round));
        a_own_up.push(since(announced, round));
        x_up.push(since(back_b, t1));
        eprint!("\rlatency: cycle {}/{cycles}", i + 1);
    }
    eprintln!();
    println!(
        "## Latency ({cycles} cycles, check_interval 1s, rise 1, fall 1, HTTP target on loopback)\n"
    );
    println!("| measure | p50 ms | p99 ms | max ms |\n|---|---|---|---|");
    println!(
        "| anycastd: failure -> absent at router | {} |",
        stats(&a_down)
    );
    println!(
        "| anycastd: failing round ended -> absent at router | {} |",
        stats(&a_down_after)
    );
    println!(
        "| anycastd: failing round ended -> DeletePath done (its own part) | {} |",
        stats(&a_own_down)
    );
    println!(
        "| ExaBGP healthcheck: failure -> absent at router | {} |",
        stats(&x_down)
    );
    println!(
        "| anycastd: recovery -> present at router | {} |",
        stats(&a_up)
    );
    println!(
        "| anycastd: passing round ended -> present at router | {} |",
        stats(&a_up_after)
    );
    println!(
        "| anycastd: passing round ended -> AddPath done (its own part) | {} |",
        stats(&a_own_up)
    );
    println!(
        "| ExaBGP healthcheck: recovery -> present at router | {} |",
        stats(&x_up)
    );
    println!(
        "\nfailure -> absent, p50: anycastd {:.0} ms, ExaBGP {:.0} ms: ExaBGP/anycastd = {:.2}",
        p50(&a_down),
        p50(&x_down),
        p50(&x_down) / p50(&a_down).max(0.001)
    );
    println!(
        "recovery -> present, p50: anycastd {:.0} ms, ExaBGP {:.0} ms: ExaBGP/anycastd = {:.2}\n",
        p50(&a_up),
        p50(&x_up),
        p50(&x_up) / p50(&a_up).max(0.001)
    );
    drop(b.rt);
}

/// CPU seconds (user + system) and peak RSS (kB) of a process, from /proc.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state is field 3; utime and stime are fields 14 and 15.
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    let hwm = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // USER_HZ is 100 on Linux.
    (ticks as f64 / 100.0, hwm)
}

/// Runs `d` for the window and reports its CPU share and peak RSS.
/// CPU share, peak RSS, and the check failures logged in the window (a footprint taken
/// while checks fail, and so retry and time out, would not be the steady state's).
fn measure(what: &str, d: &Anycastd, warmup: Duration) -> String {
    let window: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let pid = d.pid().expect("anycastd runs");
    std::thread::sleep(warmup);
    let (cpu0, _) = usage(pid);
    let (t0, since) = (Instant::now(), SystemTime::now());
    std::thread::sleep(Duration::from_secs(window));
    let (cpu1, hwm) = usage(pid);
    let secs = t0.elapsed().as_secs_f64();
    let failed = d
        .log()
        .lines()
        .filter(|l| l.contains("check failed"))
        .filter_map(|l| humantime::parse_rfc3339(l.split_whitespace().next()?).ok())
        .filter(|t| *t >= since)
        .count();
    format!(
        "| {what} | {:.2} % | {:.1} MB | {window} s | {failed} |",
        (cpu1 - cpu0) / secs * 100.0,
        hwm as f64 / 1024.0
    )
}

fn footprint() {
    let b = Bench::new();
    let mut rows = Vec::new();
    {
        let seed = common::seed::SeedTargets::start(b.dir.path());
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
        let ca = seed.ca_file.display().to_string();
        let d = b.anycastd(
            &b.config(
                &["10.0.0.128/32".into()],
                &seed.service("http", "10s"),
                metrics,
            ),
            metrics,
            &[("SSL_CERT_FILE", ca.as_str())],
        );
        b.rib
            .wait(net("10.0.0.128/32"), true, SystemTime::UNIX_EPOCH);
        rows.push(measure(
            "seed example config (7 checks every 10s), idle",
            &d,
            Duration::from_secs(2),
        ));
    }
    {
        let target = HttpTarget::start();
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
        let mut services = String::new();
        for s in 0..100 {
            services.push_str(&format!(
                "  - name: svc{s}\n    check_interval: 1s\n    checks:\n"
            ));
            for c in 0..10 {
                services.push_str(&format!(
                    "      - name: c{c}\n        kind: http_2xx\n        spec:\n          url: {}\n          timeout: 500ms\n",
                    target.url()
                ));
            }
        }
        let d = b.anycastd(
            &b.config(&["10.0.0.129/32".into()], &services, metrics),
            metrics,
            &[],
        );
        b.rib
            .wait(net("10.0.0.129/32"), true, SystemTime::UNIX_EPOCH);
        rows.push(measure(
            "1,000 http_2xx checks (100 services x 10) every 1s",
            &d,
            Duration::from_secs(3),
        ));
    }
    rows.extend(watch::footprint(&b));
    println!("## Footprint (CPU share of one core and peak RSS of the anycastd process)\n");
    println!(
        "| workload | CPU | peak RSS | window | checks failed in window |\n|---|---|---|---|---|"
    );
    for r in rows {
        println!("{r}");
    }
    println!();
}

fn scale() {
    let b = Bench::new();
    let shared = HttpTarget::start();
    let own = HttpTarget::start();
    shared.set_status(500);
    own.set_status(500);
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let prefix = |s: usize, r: usize| format!("10.{}.{}.{}/32", 100 + s / 100, s % 100, r);
    let mut services = String::new();
    let mut all = BTreeSet::new();
    for s in 0..100 {
        let routes: Vec<String> = (0..100).map(|r| prefix(s, r)).collect();
        all.extend(routes.iter().map(|p| net(p)));
        let url = if s == 0 { own.url() } else { shared.url() };
        services.push_str(&format!(
            "  - name: svc{s}\n    check_interval: 1s\n    routes: [{}]\n    checks:\n      - kind: http_2xx\n        spec:\n          url: {url}\n          timeout: 500ms\n",
            routes.join(", ")
        ));
    }
    let started = SystemTime::now();
    let d = b.anycastd(&b.config(&[], &services, metrics), metrics, &[]);
    wait_until("the session up (per anycastd's metrics)", SESSION, || {
        d.metrics_text().contains(
            "anycastd_gobgp_peer_session_state{router_id=\"10.255.0.1\",peer=\"router\"} 6",
        )
    });
    let session = since(SystemTime::now(), started);

    let t0 = SystemTime::now();
    shared.set_status(200);
    own.set_status(200);
    wait_until(
        "all 10,000 prefixes at the router",
        Duration::from_secs(120),
        || b.rib.count() == all.len(),
    );
    let all_in = since(SystemTime::now(), t0);

    let t1 = SystemTime::now();
    own.set_status(500);
    let first: Vec<IpNet> = (0..100).map(|r| net(&prefix(0, r))).collect();
    wait_until("service 0's 100 prefixes withdrawn", CHANGE, || {
        first.iter().all(|p| !b.rib.contains(p))
    });
    let withdrawn = since(SystemTime::now(), t1);
    let round = wait_logged(&d, t1, &["service is down", "svc0"]);
    let after_round = since(t1 + withdrawn, round);

    let expected: BTreeSet<String> = all
        .iter()
        .filter(|p| !first.contains(p))
        .map(ToString::to_string)
        .collect();
    let rib = b.router.rib_prefixes();
    let exact = rib == expected;
    println!("## Scale (100 services x 100 per-service routes = 10,000 prefixes)\n");
    println!("| measure | time |\n|---|---|");
    println!(
        "| anycastd start -> BGP session established | {:.1} s |",
        session.as_secs_f64()
    );
    println!(
        "| services up (targets answer 200) -> all 10,000 prefixes at the router | {:.2} s |",
        all_in.as_secs_f64()
    );
    println!(
        "| one service fails -> its 100 prefixes gone from the router | {:.0} ms |",
        ms(withdrawn)
    );
    println!(
        "| ... of which after its failing round ended | {:.0} ms |",
        ms(after_round)
    );
    println!(
        "| router RIB afterwards equals the expected 9,900 prefixes | {} ({} prefixes) |\n",
        if exact { "yes" } else { "NO" },
        rib.len()
    );
    assert!(
        exact,
        "the router's RIB does not match: {} prefixes",
        rib.len()
    );
}
