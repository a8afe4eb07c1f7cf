//! The systemd side of delivery: the units in `systemd/` pass `systemd-analyze verify` and
//! are tied the way README.md says, and the real binary speaks sd_notify (READY=1 after the
//! first attempt to reach gobgpd, WATCHDOG=1 pings, STOPPING=1 on SIGTERM).

pub mod common {
    pub mod config;
    pub mod gobgpd;
    pub mod lab;
    pub mod prom;
}

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::config::{check, config, service};
use common::gobgpd::require_gobgpd;
use common::lab::{Anycastd, free_tcp_port, wait_until};

const UNITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd");

fn unit(name: &str) -> String {
    std::fs::read_to_string(Path::new(UNITS).join(name))
        .unwrap_or_else(|e| panic!("read systemd/{name}: {e}"))
}

/// Runs `systemd-analyze verify` on the units in `dir`: (success, everything it printed).
fn verify(dir: &Path) -> (bool, String) {
    let mut units: Vec<_> = std::fs::read_dir(dir)
        .expect("read the unit dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "service"))
        .collect();
    units.sort();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run systemd-analyze ({e}): install it with `apt-get install -y systemd` \
                 (or run ./scripts/test.sh, which does)"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The shipped units, copied with `/usr/bin/anycastd` pointing at the binary under test
/// (verify checks that every ExecStart binary exists; gobgpd is Debian's /usr/bin/gobgpd).
fn units_for_verify(dir: &Path) {
    for name in ["anycastd.service", "anycastd-gobgpd.service"] {
        let text = unit(name).replace("/usr/bin/anycastd", env!("CARGO_BIN_EXE_anycastd"));
        std::fs::write(dir.join(name), text).expect("write the unit copy");
    }
}

#[test]
fn units_pass_systemd_analyze_verify() {
    require_gobgpd();
    let dir = tempfile::tempdir().expect("tempdir");
    units_for_verify(dir.path());
    let (ok, text) = verify(dir.path());
    eprintln!("systemd-analyze verify systemd/*.service:\n{text}(end of output)");
    assert!(ok, "systemd-analyze verify failed:\n{text}");
    assert!(
        text.trim().is_empty(),
        "systemd-analyze verify printed warnings:\n{text}"
    );

    // The criterion can fail: a typo in a directive is reported.
    let broken = unit("anycastd.service").replace("ProtectSystem=strict", "ProtectSystem=strickt");
    std::fs::write(
        dir.path().join("anycastd.service"),
        broken.replace("/usr/bin/anycastd", env!("CARGO_BIN_EXE_anycastd")),
    )
    .expect("write the broken copy");
    let (_, text) = verify(dir.path());
    assert!(text.contains("strickt"), "a typo went unnoticed: {text:?}");
}

#[test]
fn units_are_tied_and_hardened_as_documented() {
    let has = |text: &str, line: &str| text.lines().any(|l| l.trim() == line);
    let a = unit("anycastd.service");
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=30s",
        "Wants=anycastd-gobgpd.service network-online.target",
        "After=anycastd-gobgpd.service network-online.target",
        "Restart=on-failure",
        "DynamicUser=yes",
        "CapabilityBoundingSet=CAP_NET_RAW",
        "AmbientCapabilities=CAP_NET_RAW",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
        "ExecStart=/usr/bin/anycastd",
        "ExecReload=/usr/bin/anycastd reload",
        "TimeoutStopSec=20s",
        "RuntimeDirectory=anycastd",
        "StateDirectory=anycastd",
    ] {
        assert!(has(&a, line), "anycastd.service lacks `{line}`");
    }
    // gobgpd restarts must not restart anycastd: no Requires=/BindsTo= on gobgpd.
    assert!(
        !a.lines()
            .any(|l| l.starts_with("Requires=") || l.starts_with("BindsTo=")),
        "anycastd.service must only Want gobgpd"
    );
    let g = unit("anycastd-gobgpd.service");
    for line in [
        "BindsTo=anycastd.service",
        // Debian's gobgpd package has its own gobgpd.service; never both at once.
        "Conflicts=gobgpd.service",
        "Type=notify",
        "DynamicUser=yes",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(has(&g, line), "anycastd-gobgpd.service lacks `{line}`");
    }
    // gobgpd's API on loopback, at anycastd's default announcer.gobgp.address.
    let exec = g
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .expect("gobgpd ExecStart");
    assert!(
        exec.contains("--sdnotify") && exec.contains("--api-hosts 127.0.0.1:50051"),
        "{exec}"
    );
    // Ordering only one way (a cycle otherwise).
    assert!(
        !g.lines()
            .any(|l| l.starts_with("After=") && l.contains("anycastd.service")),
        "ordering cycle"
    );
}

fn receive(sock: &UnixDatagram, deadline: Duration) -> Option<String> {
    sock.set_read_timeout(Some(deadline)).expect("timeout");
    let mut buf = [0u8; 512];
    sock.recv(&mut buf)
        .ok()
        .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn binary_notifies_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    // No gobgpd: the first attempt fails, and READY=1 still comes (the daemon is at work,
    // retrying).
    let dead_api = free_tcp_port();
    let config = lo_config(dead_api, metrics, &["192.0.2.80/32"]);
    let socket = socket_path.display().to_string();
    let mut d = Anycastd::start_with_env(
        dir.path(),
        &config,
        metrics,
        &[
            ("NOTIFY_SOCKET", socket.as_str()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    let first = receive(&sock, Duration::from_secs(15));
    assert_eq!(first.as_deref(), Some("READY=1"), "log:\n{}", d.log());
    wait_until(
        "the failed first attempt in the log",
        Duration::from_secs(5),
        || d.log().contains("gobgpd is not reachable"),
    );

    // Pings every 100 ms (half of WATCHDOG_USEC).
    let start = Instant::now();
    let mut pings = 0;
    while pings < 3 {
        let m = receive(&sock, Duration::from_secs(5));
        assert_eq!(m.as_deref(), Some("WATCHDOG=1"), "log:\n{}", d.log());
        pings += 1;
    }
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "3 pings took {:?}",
        start.elapsed()
    );

    let status = d.signal_and_wait("TERM", Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "log:\n{}", d.log());
    let mut rest = Vec::new();
    while let Some(m) = receive(&sock, Duration::from_millis(200)) {
        rest.push(m);
    }
    assert!(
        rest.iter().any(|m| m == "STOPPING=1"),
        "no STOPPING=1 after SIGTERM: {rest:?}"
    );
}

#[test]
fn without_notify_socket_nothing_is_sent_and_it_runs() {
    // The e2e tests run without NOTIFY_SOCKET; here a relative (invalid) one must not stop
    // the daemon either.
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let config = lo_config(free_tcp_port(), metrics, &[]);
    // A socket where the relative path would lead if it were used (anycastd runs in `dir`).
    let sock = UnixDatagram::bind(dir.path().join("relative.sock")).expect("bind");
    let d = Anycastd::start_with_env(
        dir.path(),
        &config,
        metrics,
        &[("NOTIFY_SOCKET", "relative.sock")],
    );
    wait_until(
        "the unusable NOTIFY_SOCKET warning",
        Duration::from_secs(10),
        || d.log().contains("NOTIFY_SOCKET is set but unusable"),
    );
    wait_until("/healthz 200", Duration::from_secs(10), || {
        common::lab::http_get(metrics, "/healthz").is_some_and(|r| r.0 == 200)
    });
    assert_eq!(
        receive(&sock, Duration::from_millis(300)),
        None,
        "nothing may be sent to an unusable NOTIFY_SOCKET"
    );
}

/// A config whose one service checks that 127.0.0.1 is assigned, with gobgpd's API on
/// `api` (where nothing needs to listen) and `routes` as the global routes.
fn lo_config(api: u16, metrics: SocketAddr, routes: &[&str]) -> String {
    config("10.255.0.1", "127.0.0.1", 65001)
        .routes(routes)
        .gobgp("address", format!("127.0.0.1:{api}"))
        .service(service("lo", "1s").check(check("assigned_address").spec("ipv4", "127.0.0.1")))
        .metrics("address", metrics)
        .to_string()
}
