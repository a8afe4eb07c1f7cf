//! anycastd as it is deployed: a non-root user whose only capability is CAP_NET_RAW (the
//! systemd unit's and the container's envelope), set up with setpriv. The lab's end-to-end
//! scenario runs that way, with an `icmp_ping` check on 127.0.0.1 next to an `http_2xx`
//! check, and the route arrives at and leaves the router gobgpd. Without CAP_NET_RAW the ICMP
//! check fails with a message that names it (where ping_group_range does not allow
//! unprivileged ICMP sockets, as on the build machines).

pub mod common {
    pub mod config;
    pub mod gobgpd;
    pub mod lab;
    pub mod prom;
}

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::config::{CheckBuilder, check, config, map, peer, service};
use common::gobgpd::{Gobgpd, RouterOpts, require_gobgpd};
use common::lab::{Anycastd, HttpTarget, free_tcp_port, wait_until_or};

const SESSION: Duration = Duration::from_secs(40);
const CHANGE: Duration = Duration::from_secs(15);
/// CAP_NET_RAW is capability 13.
const CAP_NET_RAW_MASK: u64 = 1 << 13;
const NOBODY: u32 = 65534;

/// setpriv: user nobody, no supplementary groups, and `caps` (e.g. "+net_raw", or "" for
/// none) as the only capability in every set.
fn setpriv(caps: &str) -> Vec<String> {
    let set = format!("-all{}", if caps.is_empty() { "" } else { "," }) + caps;
    vec![
        "setpriv".into(),
        "--reuid=nobody".into(),
        "--regid=nogroup".into(),
        "--clear-groups".into(),
        format!("--inh-caps={set}"),
        format!("--ambient-caps={set}"),
        format!("--bounding-set={set}"),
        "--".into(),
    ]
}

/// Fails (never skips) when the test cannot drop privileges, saying what is needed.
fn require_setpriv_as_root() {
    common::lab::require_program(
        "setpriv",
        "these tests drop privileges with it",
        "util-linux",
    );
    let uid = status_field(std::process::id(), "Uid:");
    assert_eq!(
        uid.split_whitespace().nth(1),
        Some("0"),
        "these tests drop privileges to nobody with setpriv, which needs root: run them as \
         root (CI does), e.g. `sudo -E cargo test --test unprivileged`"
    );
}

/// A line of /proc/PID/status, after its label.
fn status_field(pid: u32, label: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(label).map(|v| v.trim().to_string()))
        })
        .unwrap_or_default()
}

/// The binary under test, copied into a fresh directory that nobody can read and enter
/// (the build tree may sit under a home directory that nobody cannot).
fn binary_in(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let bin = dir.join("anycastd");
    std::fs::copy(env!("CARGO_BIN_EXE_anycastd"), &bin).expect("copy the binary");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

/// Asserts that `pid` runs as nobody with exactly `caps` effective.
fn assert_identity(pid: u32, caps: u64) {
    let uid = status_field(pid, "Uid:");
    assert!(
        uid.split_whitespace().all(|u| u == NOBODY.to_string()),
        "anycastd runs as uid {uid}, not nobody"
    );
    let eff = u64::from_str_radix(&status_field(pid, "CapEff:"), 16).expect("CapEff");
    assert_eq!(eff, caps, "effective capabilities {eff:#x}");
}

/// An icmp_ping check of 127.0.0.1.
fn ping_localhost() -> CheckBuilder {
    check("icmp_ping").spec("static", map().set("host", "127.0.0.1"))
}

fn run_healthcheck(bin: &Path, metrics: SocketAddr, prefix: &[String]) -> Option<i32> {
    Command::new(&prefix[0])
        .args(&prefix[1..])
        .arg(bin)
        .args(["healthcheck", "--address", &metrics.to_string()])
        .output()
        .expect("run anycastd healthcheck")
        .status
        .code()
}

#[test]
fn the_lab_runs_as_nobody_with_only_cap_net_raw() {
    require_gobgpd();
    require_setpriv_as_root();
    let speaker = Gobgpd::speaker();
    let router = Gobgpd::router(RouterOpts {
        asn: 65000,
        router_id: "10.255.0.2".parse().expect("router id"),
        listen_addr: "127.0.0.1".parse().expect("listen addr"),
        neighbor_addr: "127.0.0.1".parse().expect("neighbor addr"),
        neighbor_asn: 65001,
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = binary_in(dir.path());
    let mut target = HttpTarget::start();
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let config = config("10.255.0.1", "127.0.0.1", 65001)
        .announcer("next_hop", "198.51.100.1")
        .routes(&["192.0.2.90/32"])
        .peer(peer("router", "127.0.0.1", 65000).set("remote_port", router.bgp_port()))
        .gobgp("address", format!("127.0.0.1:{}", speaker.api_port()))
        .gobgp("reconcile_interval", "1s")
        .service(
            service("web", "300ms")
                .check(
                    check("http_2xx")
                        .spec("url", target.url())
                        .spec("timeout", "500ms"),
                )
                .check(
                    ping_localhost()
                        .spec("tries", 2)
                        .spec("interval", "50ms")
                        .spec("timeout", "1s"),
                ),
        )
        .metrics("address", metrics)
        .to_string();
    let prefix = setpriv("+net_raw");
    let prefix_ref: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let mut d = Anycastd::launch(dir.path(), &config, metrics, &[], &prefix_ref, &bin);
    let pid = d.pid().expect("running");

    router.wait_for_prefix("192.0.2.90/32", true, SESSION);
    assert_identity(pid, CAP_NET_RAW_MASK);
    let text = d.metrics_text();
    for check in ["icmp_ping", "http_2xx"] {
        assert!(
            text.contains(&format!(
                "anycastd_check_up{{service=\"web\",check=\"{check}\"}} 1"
            )),
            "{check} must pass as nobody with CAP_NET_RAW:\n{text}\nlog:\n{}",
            d.log()
        );
    }
    assert!(
        text.contains("anycastd_check_packets_received_total{service=\"web\",check=\"icmp_ping\",host=\"127.0.0.1\"}"),
        "{text}"
    );
    // The container healthcheck works unprivileged too.
    assert_eq!(run_healthcheck(&bin, metrics, &setpriv("")), Some(0));

    target.stop();
    router.wait_for_prefix("192.0.2.90/32", false, CHANGE);
    target.restart();
    router.wait_for_prefix("192.0.2.90/32", true, CHANGE);

    let status = d.signal_and_wait("TERM", Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "log:\n{}", d.log());
    router.wait_for_prefix("192.0.2.90/32", false, CHANGE);
    assert_eq!(run_healthcheck(&bin, metrics, &setpriv("")), Some(1));
}

const PING_GROUP_RANGE: &str = "/proc/sys/net/ipv4/ping_group_range";

/// Sets net.ipv4.ping_group_range to "1 0" (no group may open unprivileged ICMP sockets,
/// the kernel's default) while it lives, and restores the old value on drop: on hosts
/// that allow them, anycastd would ping without CAP_NET_RAW and the error path would go
/// untested.
struct NoUnprivilegedPing(String);

impl NoUnprivilegedPing {
    fn set() -> NoUnprivilegedPing {
        let old = std::fs::read_to_string(PING_GROUP_RANGE).expect("read ping_group_range");
        std::fs::write(PING_GROUP_RANGE, "1 0").expect("write ping_group_range (needs root)");
        NoUnprivilegedPing(old.trim().to_string())
    }
}

impl Drop for NoUnprivilegedPing {
    fn drop(&mut self) {
        let _ = std::fs::write(PING_GROUP_RANGE, &self.0);
    }
}

#[test]
fn without_cap_net_raw_icmp_fails_naming_it() {
    require_setpriv_as_root();
    let _no_ping_group = NoUnprivilegedPing::set();
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = binary_in(dir.path());
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let config = config("10.255.0.1", "127.0.0.1", 65001)
        .routes(&["192.0.2.91/32"])
        .gobgp("address", format!("127.0.0.1:{}", free_tcp_port()))
        .service(
            service("ping", "300ms")
                .check(ping_localhost().spec("tries", 1).spec("timeout", "500ms")),
        )
        .metrics("address", metrics)
        .to_string();
    let prefix = setpriv("");
    let prefix_ref: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let mut d = Anycastd::launch(dir.path(), &config, metrics, &[], &prefix_ref, &bin);
    let pid = d.pid().expect("running");
    d.wait_healthy(CHANGE);
    assert_identity(pid, 0);

    wait_until_or(
        "icmp_ping to fail naming CAP_NET_RAW",
        CHANGE,
        || d.log().contains("CAP_NET_RAW"),
        || format!("log:\n{}", d.log()),
    );
    let line = d
        .log()
        .lines()
        .find(|l| l.contains("check failed") && l.contains("CAP_NET_RAW"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no check failure naming CAP_NET_RAW:\n{}", d.log()));
    eprintln!("{line}");
    assert!(line.contains("ping_group_range"), "{line}");
    let text = d.metrics_text();
    assert!(
        text.contains("anycastd_check_up{service=\"ping\",check=\"icmp_ping\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("anycastd_service_up{service=\"ping\"} 0"),
        "{text}"
    );
}
