//! Issue 10, findings 3 and 5: files that are not what they claim to be, and durations too
//! short to make sense. The real binary is run (as daemon and as `check-config`) on FIFOs,
//! /dev/zero and 1ns; no gobgpd is needed (the daemon points at a closed port and keeps
//! retrying, which is beside the point here).
//!
//! Issue 25: servers that trickle, never answer, flood, answer garbage or from another port,
//! facing the tcp_connect, ntp, grpc_health and dns_lookup checks of a running daemon, which
//! must fail them in time without growing.
//!
//! Runs that could hang or eat the machine on a broken build run under a deadline and a
//! memory ceiling ([`procfs::run_bounded`]), so that they fail with a figure instead.

pub mod common {
    pub mod config;
    pub mod lab;
    pub mod ntp;
    pub mod procfs;
    pub mod prom;
    pub mod tls;
}

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anycastd::config::{self, Format};
use common::config::{ConfigBuilder, ServiceBuilder, check, map, peer, service};
use common::lab::{Anycastd, free_tcp_port, try_status, wait_until};
use common::procfs;
use common::tls::{Validity, pki};

const BIN: &str = env!("CARGO_BIN_EXE_anycastd");
/// A refusal is quick: well under a second; the slack is for a loaded CI machine.
const QUICK: Duration = Duration::from_secs(5);
/// anycastd in a debug build uses about 10–20 MiB; a read of /dev/zero passes this at once.
const MEMORY_CEILING_MIB: u64 = 200;

/// A config whose gobgpd is a closed port, with `services`; its state directory and
/// control socket are in `dir`. More (a peer's password_file) with the builder.
fn config(dir: &Path, metrics: SocketAddr, services: Vec<ServiceBuilder>) -> ConfigBuilder {
    let c = common::config::config("10.255.0.1", "127.0.0.1", 65001)
        .announcer("next_hop", "198.51.100.1")
        .routes(&["192.0.2.90/32"])
        .announcer("state_directory", format!("{}/state", dir.display()))
        .peer(peer("router", "127.0.0.1", 65000))
        .gobgp("address", format!("127.0.0.1:{}", free_tcp_port()))
        .metrics("address", metrics)
        .control("socket", format!("{}/control.sock", dir.display()));
    services.into_iter().fold(c, ConfigBuilder::service)
}

/// A service with one `tls_certificate` check per path, named `c0`, `c1`, ...
fn cert_service(name: &str, every: &str, paths: &[&Path]) -> ServiceBuilder {
    paths
        .iter()
        .enumerate()
        .fold(service(name, every), |s, (i, p)| {
            s.check(
                check("tls_certificate")
                    .set("name", format!("c{i}"))
                    .spec("local", map().set("path", p.display())),
            )
        })
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo (coreutils)");
    assert!(ok.success(), "mkfifo {}", path.display());
}

fn metrics_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_tcp_port()))
}

/// The daemon on `services` (behind the command `prefix`, if any), its files in `dir`;
/// and its metrics address.
fn start(dir: &Path, services: Vec<ServiceBuilder>, prefix: &[&str]) -> (Anycastd, SocketAddr) {
    let metrics = metrics_addr();
    let config = config(dir, metrics, services).to_string();
    let d = Anycastd::launch(dir, &config, metrics, &[], prefix, Path::new(BIN));
    (d, metrics)
}

/// The checks of service `svc` in a status document.
fn checks(status: &serde_json::Value, svc: &str) -> Vec<serde_json::Value> {
    status["services"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == svc)
        .and_then(|s| s["checks"].as_array().cloned())
        .unwrap_or_default()
}

/// A tls_certificate check on a FIFO fails at once, with an error naming the path and
/// what it is, and leaves no thread behind: ten such checks every 50 ms for 8 s (over a
/// thousand attempts) keep the thread count flat, and a valid certificate check of another
/// service keeps passing. (Before: every attempt left a thread blocked in open(2); the
/// blocking pool's 512 filled up and unrelated checks failed.)
#[test]
fn a_fifo_as_certificate_fails_fast_and_leaves_no_thread_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("cert.fifo");
    mkfifo(&fifo);
    let good = dir.path().join("good.pem");
    std::fs::write(&good, pki(Validity::Current).leaf_pem).expect("write a certificate");
    let fifos: Vec<&Path> = (0..10).map(|_| fifo.as_path()).collect();
    let services = vec![
        cert_service("fifo", "50ms", &fifos),
        cert_service("good", "200ms", &[good.as_path()]),
    ];
    let (d, metrics) = start(dir.path(), services, &[]);
    let pid = d.pid().expect("running");
    wait_until("the first rounds", Duration::from_secs(10), || {
        checks(&try_status(metrics).unwrap_or_default(), "fifo")
            .first()
            .is_some_and(|c| c["result"] == "fail")
    });
    let baseline = procfs::threads(pid);
    let start = Instant::now();
    // The most threads seen in the first and in the second half of the run.
    let (mut first, mut second) = (baseline, 0);
    while start.elapsed() < Duration::from_secs(8) {
        let n = procfs::threads(pid);
        if start.elapsed() < Duration::from_secs(4) {
            first = first.max(n);
        } else {
            second = second.max(n);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let max = first.max(second);
    let s = try_status(metrics).unwrap_or_default();
    let fifo_checks = checks(&s, "fifo");
    eprintln!(
        "threads: {baseline} after the first round, at most {first} in the next 4 s and {second} in \
         the 4 s after (10 FIFO checks every 50 ms); a FIFO check: {}",
        fifo_checks.first().cloned().unwrap_or_default()
    );
    for c in &fifo_checks {
        let error = c["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(&fifo.display().to_string()) && error.contains("FIFO"),
            "the error must name the path and say it is a FIFO: {c}"
        );
        assert!(
            c["duration_seconds"].as_f64().is_some_and(|d| d < 0.1),
            "a refusal is immediate, not a timeout: {c}"
        );
    }
    assert_eq!(
        checks(&s, "good").first().map(|c| c["result"].clone()),
        Some("pass".into()),
        "{s:#}"
    );
    // At most one blocking thread per check (the 11 reads of a round may run at once) on
    // top of the daemon's own (6 when idle), and no growth once the rounds have started.
    assert!(
        max <= 11 + 10 && second <= first + 2,
        "threads grew from {baseline} to {first}, then {second}: blocked reads are piling up"
    );
}

/// SIGTERM ends a daemon whose check reads a FIFO within the shutdown deadline (5 s to
/// withdraw, then the process exits). Before: a thread blocked in open(2) on the FIFO kept
/// the process alive forever, and a second SIGTERM did nothing.
#[test]
fn sigterm_exits_in_time_with_a_fifo_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("cert.fifo");
    mkfifo(&fifo);
    let services = vec![cert_service(
        "fifo",
        "100ms",
        &[fifo.as_path(), fifo.as_path()],
    )];
    let (mut d, metrics) = start(dir.path(), services, &[]);
    wait_until("a failed FIFO check", Duration::from_secs(10), || {
        checks(&try_status(metrics).unwrap_or_default(), "fifo")
            .first()
            .is_some_and(|c| c["result"] == "fail")
    });
    // A few more rounds, each of which used to leave two threads blocked.
    std::thread::sleep(Duration::from_secs(2));
    let start = Instant::now();
    let exit = d.signal_and_wait("TERM", Duration::from_secs(10));
    eprintln!("exited {:?} after SIGTERM: {exit}", start.elapsed());
    assert_eq!(exit.code(), Some(0), "{}", d.log());
}

/// /dev/zero as `local.path` is refused at once as a character device; the daemon's memory
/// stays flat. Before: the size check trusted the metadata (0 bytes) and every round read
/// zeros until memory ran out (1.06 GB).
#[test]
fn dev_zero_as_certificate_is_refused_with_bounded_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let services = vec![cert_service("zero", "100ms", &[Path::new("/dev/zero")])];
    let (d, metrics) = start(dir.path(), services, &[]);
    let pid = d.pid().expect("running");
    let start = Instant::now();
    let mut peak = 0;
    let mut error = String::new();
    while start.elapsed() < Duration::from_secs(3) {
        let rss = procfs::status_kib(pid, "VmRSS") / 1024;
        peak = peak.max(rss);
        assert!(
            rss < MEMORY_CEILING_MIB,
            "anycastd's resident memory reached {rss} MiB reading /dev/zero"
        );
        if let Some(e) = checks(&try_status(metrics).unwrap_or_default(), "zero")
            .first()
            .and_then(|c| c["error"].as_str().map(str::to_string))
        {
            error = e;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("peak resident memory {peak} MiB; the check says: {error}");
    assert!(
        error.contains("/dev/zero") && error.contains("character device"),
        "{error:?}"
    );
}

/// Runs `anycastd [args]` on `config_path` under the deadline and memory ceiling.
fn run(config_path: &Path, args: &[&str]) -> procfs::Bounded {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(config_path).args(args);
    let r = procfs::run_bounded(cmd, QUICK, MEMORY_CEILING_MIB);
    eprintln!(
        "anycastd {args:?} on {}: {:?} in {:?}, peak RSS {} MiB{}; stderr: {}",
        config_path.display(),
        r.status.and_then(|s| s.code()),
        r.elapsed,
        r.peak_rss_mib,
        r.killed
            .as_ref()
            .map(|k| format!(", killed: {k}"))
            .unwrap_or_default(),
        r.stderr.trim()
    );
    r
}

/// Asserts a quick exit 2 whose stderr says each of `want`.
fn assert_refused(r: &procfs::Bounded, want: &[&str]) {
    assert_eq!(r.killed, None, "{r:?}");
    assert_eq!(r.status.and_then(|s| s.code()), Some(2), "{r:?}");
    for w in want {
        assert!(r.stderr.contains(w), "stderr lacks {w:?}: {}", r.stderr);
    }
}

/// `password_file` on /dev/zero or a FIFO: both `check-config` and the daemon exit 2 at once,
/// naming the field, the path and what it is. Before: check-config accepted both (it only
/// looked at the metadata), and the daemon read /dev/zero until memory ran out, or blocked
/// forever opening the FIFO.
#[test]
fn special_password_files_are_refused_by_check_config_and_the_daemon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("password.fifo");
    mkfifo(&fifo);
    for (file, what) in [
        (PathBuf::from("/dev/zero"), "character device"),
        (fifo, "FIFO"),
    ] {
        let path = dir.path().join("anycastd.yaml");
        let services = vec![cert_service("s", "1s", &[Path::new("/etc/hostname")])];
        let config = config(dir.path(), metrics_addr(), services).peer_set(
            "router",
            "password_file",
            file.display(),
        );
        std::fs::write(&path, config.to_string()).expect("write");
        let shown = file.display().to_string();
        let want = ["announcer.peers[0].password_file", shown.as_str(), what];
        assert_refused(&run(&path, &["check-config"]), &want);
        assert_refused(&run(&path, &[]), &want);
    }
}

/// The config file itself on /dev/zero (through a symlink named *.yaml) or a FIFO:
/// refused at once, exit 2. Before: /dev/zero was read until memory ran out, and the FIFO
/// blocked the start forever.
#[test]
fn special_config_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zero = dir.path().join("zero.yaml");
    std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
    let fifo = dir.path().join("fifo.yaml");
    mkfifo(&fifo);
    let folder = dir.path().join("folder.yaml");
    std::fs::create_dir(&folder).expect("mkdir");
    for (path, what) in [
        (&zero, "character device"),
        (&fifo, "FIFO"),
        (&folder, "directory"),
    ] {
        let shown = path.display().to_string();
        assert_refused(
            &run(path, &["check-config"]),
            &[shown.as_str(), what, "not a regular file"],
        );
    }
}

/// The base config of the duration tests, with every duration spelled out; `@name@` marks
/// the values the table below replaces.
const DURATIONS: &str = r#"announcer:
  router_id: 10.3.3.3
  local_address: 10.0.0.1
  local_asn: 65999
  routes: [10.0.0.128/32]
  drain_linger: @drain_linger@
  gobgp:
    reconcile_interval: @reconcile@
    peer_poll_interval: @poll@
    timeout: @rpc@
services:
  - name: web
    check_interval: @check_interval@
    checks:
      - kind: http_2xx
        spec: {url: "http://127.0.0.1:8080/", timeout: @http_timeout@, interval: @http_interval@}
      - kind: dns_lookup
        spec: {query: example.org, timeout: @dns_timeout@, interval: @dns_interval@}
      - kind: tftp_rrq
        spec: {url: "tftp://127.0.0.1/f", timeout: @tftp_timeout@, interval: @tftp_interval@}
      - kind: icmp_ping
        spec: {static: {host: 127.0.0.1}, timeout: @icmp_timeout@, interval: @icmp_interval@}
      - kind: tls_certificate
        spec: {remote: {host: "127.0.0.1:443", timeout: @tls_timeout@}, min_valid_for: @min_valid_for@}
"#;

/// `(marker, field path, minimum)` of every duration of the config.
const MINIMUMS: &[(&str, &str, &str)] = &[
    ("reconcile", "announcer.gobgp.reconcile_interval", "100ms"),
    ("poll", "announcer.gobgp.peer_poll_interval", "100ms"),
    ("rpc", "announcer.gobgp.timeout", "100ms"),
    ("check_interval", "services[0].check_interval", "10ms"),
    ("http_timeout", "services[0].checks[0].spec.timeout", "10ms"),
    ("http_interval", "services[0].checks[0].spec.interval", "0s"),
    ("dns_timeout", "services[0].checks[1].spec.timeout", "10ms"),
    ("dns_interval", "services[0].checks[1].spec.interval", "0s"),
    ("tftp_timeout", "services[0].checks[2].spec.timeout", "10ms"),
    ("tftp_interval", "services[0].checks[2].spec.interval", "0s"),
    ("icmp_timeout", "services[0].checks[3].spec.timeout", "10ms"),
    (
        "icmp_interval",
        "services[0].checks[3].spec.interval",
        "10ms",
    ),
    (
        "tls_timeout",
        "services[0].checks[4].spec.remote.timeout",
        "10ms",
    ),
    (
        "min_valid_for",
        "services[0].checks[4].spec.min_valid_for",
        "0s",
    ),
    ("drain_linger", "announcer.drain_linger", "0s"),
];

/// DURATIONS with every marker at `value_of(marker)`.
fn durations(value_of: impl Fn(&str) -> String) -> String {
    let mut text = DURATIONS.to_string();
    for (marker, _, _) in MINIMUMS {
        text = text.replace(&format!("@{marker}@"), &value_of(marker));
    }
    assert!(!text.contains('@'), "a marker is left: {text}");
    text
}

fn problems(text: &str) -> Vec<config::Problem> {
    let cfg = config::parse(text, Format::Yaml).unwrap_or_else(|p| panic!("parses: {p}"));
    cfg.validate().err().unwrap_or_default()
}

/// Every duration has a documented lower bound: at the bound the config is valid; below it
/// (1ns, and the bound less 1ms) it is refused with the field's path and the fix. Before:
/// `1ns` was accepted for check_interval, reconcile_interval and timeout, and the daemon
/// spun at 78 % of a core.
#[test]
fn durations_below_their_minimum_are_refused() {
    let at_minimum = durations(|m| {
        MINIMUMS
            .iter()
            .find(|(k, _, _)| *k == m)
            .map(|(_, _, min)| min.to_string())
            .unwrap_or_default()
    });
    assert_eq!(
        problems(&at_minimum),
        vec![],
        "every duration at its minimum"
    );
    for (marker, path, min) in MINIMUMS {
        if *min == "0s" {
            continue; // nothing is below 0s
        }
        let below_ms = config::parse_duration(min)
            .expect("a duration")
            .0
            .as_millis()
            - 1;
        for below in ["1ns".to_string(), format!("{below_ms}ms")] {
            let text = durations(|m| {
                let (_, _, at) = MINIMUMS.iter().find(|(k, _, _)| *k == m).expect("marker");
                if m == *marker {
                    below.clone()
                } else {
                    at.to_string()
                }
            });
            let p = problems(&text);
            assert_eq!(
                p.iter().map(|p| p.path.as_str()).collect::<Vec<_>>(),
                vec![*path],
                "{marker} = {below}: {p:?}"
            );
            assert!(
                p[0].message.contains(&format!("at least {min}")),
                "the message gives the minimum: {}",
                p[0]
            );
        }
    }

    // The binary: exit 2, the path and the fix on stderr.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("short.yaml");
    std::fs::write(
        &path,
        durations(|m| if m == "check_interval" { "1ns" } else { "1s" }.to_string()),
    )
    .expect("write");
    assert_refused(
        &run(&path, &["check-config"]),
        &["services[0].check_interval", "at least 10ms"],
    );
}

/// At start the daemon raises its soft open-files limit to the hard limit and says so.
#[test]
fn the_soft_open_files_limit_is_raised_to_the_hard_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let services = vec![cert_service("s", "1s", &[Path::new("/etc/hostname")])];
    let (d, _) = start(
        dir.path(),
        services,
        &["prlimit", "--nofile=256:4096", "--"],
    );
    let pid = d.pid().expect("running");
    wait_until("the raised limit", QUICK, || {
        procfs::nofile_limits(pid) == Some((4096, 4096))
    });
    wait_until("the log line", QUICK, || {
        d.log().contains("raised the open-files limit")
    });
}

/// A TCP server on 127.0.0.1 doing `f` with each connection, on a thread of its own.
fn tcp_server(f: fn(std::net::TcpStream)) -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || f(s));
        }
    });
    addr
}

/// Reads until the peer closes.
fn drain(mut s: std::net::TcpStream) {
    use std::io::Read;
    let mut buf = [0u8; 4096];
    while let Ok(1..) = s.read(&mut buf) {}
}

/// Issue 25: every hostile server at once, checked every 100 ms for 8 s by the daemon: a
/// TCP server that trickles a byte every 20 ms, one that floods 1 MiB, a "gRPC" server that
/// never answers, an NTP server that floods 2,000 bogus replies per request and one that
/// answers from another port, a DNS primary that never answers. Each check fails with its
/// own reason within its timeout, and the daemon's threads, file descriptors and memory stay
/// flat from the first half of the run to the second.
#[test]
fn hostile_servers_are_failed_in_time_without_growth() {
    use common::ntp::{Mode, Steerable};
    let dir = tempfile::tempdir().expect("tempdir");
    let trickle = tcp_server(|mut s| {
        use std::io::Write;
        while s.write_all(b".").is_ok() {
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let flood = tcp_server(|mut s| {
        use std::io::Write;
        let _ = s.write_all(&vec![b'x'; 1 << 20]);
        drain(s);
    });
    let silent = tcp_server(drain);
    let ntp_flood = Steerable::start(Mode::Flood(2000));
    let ntp_other = Steerable::start(Mode::OtherPort);
    // A bound UDP socket nobody reads: a DNS primary that never answers.
    let dns_silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let dns_silent_addr = dns_silent.local_addr().expect("addr");
    let timeout = "300ms";
    let one = |name: &str, c: common::config::CheckBuilder| {
        service(name, "100ms").check(c.spec("timeout", timeout))
    };
    let services = vec![
        one(
            "trickle",
            check("tcp_connect")
                .spec("address", trickle)
                .spec("expect", "\"220 \""),
        ),
        one(
            "flood",
            check("tcp_connect")
                .spec("address", flood)
                .spec("expect", "\"220 \""),
        ),
        one("grpc", check("grpc_health").spec("address", silent)),
        one("ntp-flood", check("ntp").spec("server", ntp_flood.addr)),
        one("ntp-other", check("ntp").spec("server", ntp_other.addr)),
        one(
            "zone",
            check("dns_lookup")
                .spec("query", "example.test")
                .spec("type", "SOA")
                .spec("resolver", dns_silent_addr)
                .spec("soa_serial_of", dns_silent_addr),
        ),
    ];
    let (d, metrics) = start(dir.path(), services, &[]);
    let pid = d.pid().expect("running");
    let names = ["trickle", "flood", "grpc", "ntp-flood", "ntp-other", "zone"];
    wait_until(
        "every check to have failed once",
        Duration::from_secs(10),
        || {
            let s = try_status(metrics).unwrap_or_default();
            names
                .iter()
                .all(|n| checks(&s, n).first().is_some_and(|c| c["result"] == "fail"))
        },
    );
    let sample = || {
        (
            procfs::threads(pid),
            procfs::open_fds(pid),
            procfs::status_kib(pid, "VmRSS"),
        )
    };
    let start = Instant::now();
    let (mut first, mut second) = ((0, 0, 0), (0, 0, 0));
    let max =
        |a: (usize, usize, u64), b: (usize, usize, u64)| (a.0.max(b.0), a.1.max(b.1), a.2.max(b.2));
    while start.elapsed() < Duration::from_secs(8) {
        if start.elapsed() < Duration::from_secs(4) {
            first = max(first, sample());
        } else {
            second = max(second, sample());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "threads, fds, RSS KiB: at most {first:?} in the first 4 s, {second:?} in the next 4 s \
         (6 hostile checks every 100 ms)"
    );
    let s = try_status(metrics).unwrap_or_default();
    for (name, why) in [
        ("trickle", "`220 ` not received within 300ms"),
        ("flood", "`220 ` is not among the first 4096 bytes received"),
        ("grpc", "no answer within 300ms"),
        ("ntp-flood", "whose origin timestamp is not this request's"),
        ("ntp-other", "from another address or port"),
        ("zone", "no answer within 300ms"),
    ] {
        let c = checks(&s, name).first().cloned().unwrap_or_default();
        let error = c["error"].as_str().unwrap_or_default();
        assert!(error.contains(why), "{name}: {c}");
        // Within the timeout and the Runner's slack, whatever the server does.
        assert!(
            c["duration_seconds"].as_f64().is_some_and(|d| d < 0.6),
            "{name}: {c}"
        );
    }
    assert!(
        second.0 <= first.0 + 2 && second.1 <= first.1 + 8,
        "threads or descriptors grew: {first:?} then {second:?}"
    );
    assert!(
        second.2 <= first.2 + 8 * 1024 && second.2 < MEMORY_CEILING_MIB * 1024,
        "memory grew: {first:?} then {second:?} KiB"
    );
    drop(dns_silent);
}
