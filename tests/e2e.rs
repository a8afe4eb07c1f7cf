//! End-to-end: the real `anycastd` binary drives a real gobgpd ("speaker"), which peers with
//! a second real gobgpd ("router"); every assertion is on the router's RIB.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::gobgpd::{Gobgpd, RouterOpts, require_gobgpd};
use common::lab::{Anycastd, HttpTarget, free_tcp_port, http_get, wait_until};
use common::prom;

/// BGP sessions take 5–9 s to establish on loopback.
const SESSION: Duration = Duration::from_secs(40);
/// A change after the session is up: a round, a reconcile, an UPDATE.
const CHANGE: Duration = Duration::from_secs(15);

const SPEAKER_ASN: u32 = 65001;
const ROUTER_ASN: u32 = 65000;

struct Lab {
    speaker: Gobgpd,
    router: Gobgpd,
    dir: tempfile::TempDir,
    metrics: SocketAddr,
}

impl Lab {
    fn new() -> Lab {
        require_gobgpd();
        let speaker = Gobgpd::speaker();
        let router = Gobgpd::router(RouterOpts {
            asn: ROUTER_ASN,
            router_id: "10.255.0.2".parse().expect("router id"),
            listen_addr: "127.0.0.1".parse().expect("listen addr"),
            neighbor_addr: "127.0.0.1".parse().expect("neighbor addr"),
            neighbor_asn: SPEAKER_ASN,
        });
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
        Lab {
            speaker,
            router,
            dir: tempfile::tempdir().expect("tempdir"),
            metrics,
        }
    }

    /// A config with `routes` gated by all services, and `services` as YAML list items.
    fn config(&self, routes: &[&str], services: &str) -> String {
        format!(
            r#"announcer:
  router_id: 10.255.0.1
  local_address: 127.0.0.1
  local_asn: {SPEAKER_ASN}
  next_hop: 198.51.100.1
  next_hop_ipv6: 2001:db8::1
  routes: [{routes}]
  peers:
    - name: router
      remote_address: 127.0.0.1
      remote_asn: {ROUTER_ASN}
      remote_port: {port}
  gobgp:
    address: 127.0.0.1:{api}
    reconcile_interval: 1s
services:
{services}
metrics:
  address: {metrics}
"#,
            routes = routes.join(", "),
            port = self.router.bgp_port(),
            api = self.speaker.api_port(),
            metrics = self.metrics,
        )
    }

    fn start(&self, config: &str) -> Anycastd {
        Anycastd::start(self.dir.path(), config, self.metrics)
    }

    fn wait(&self, prefix: &str, present: bool, deadline: Duration) -> Duration {
        self.router.wait_for_prefix(prefix, present, deadline)
    }
}

/// One service with one http_2xx check on `url`, its own `routes`.
fn http_service(name: &str, url: &str, routes: &[&str]) -> String {
    format!(
        r#"  - name: {name}
    check_interval: 200ms
    routes: [{routes}]
    checks:
      - kind: http_2xx
        spec:
          url: {url}
          timeout: 500ms
"#,
        routes = routes.join(", ")
    )
}

#[test]
fn route_follows_the_http_target() {
    let lab = Lab::new();
    let mut target = HttpTarget::start();
    let d = lab.start(&lab.config(&["192.0.2.10/32"], &http_service("web", &target.url(), &[])));

    lab.wait("192.0.2.10/32", true, SESSION);

    target.stop();
    let stopped = Instant::now();
    lab.wait("192.0.2.10/32", false, CHANGE);
    let withdraw = stopped.elapsed();

    target.restart();
    let restarted = Instant::now();
    lab.wait("192.0.2.10/32", true, CHANGE);
    let announce = restarted.elapsed();
    eprintln!(
        "failure -> absent at router: {withdraw:?}; recovery -> present at router: {announce:?} (check_interval 200ms)"
    );

    let text = d.metrics_text();
    assert!(
        text.contains("anycastd_route_announced{prefix=\"192.0.2.10/32\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("anycastd_service_up{service=\"web\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("anycastd_check_up{service=\"web\",check=\"http_2xx\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("anycastd_check_duration_seconds{service=\"web\",check=\"http_2xx\"}"),
        "{text}"
    );
    assert_eq!(http_get(lab.metrics, "/healthz").map(|r| r.0), Some(200));
}

#[test]
fn a_500_withdraws_the_route() {
    let lab = Lab::new();
    let target = HttpTarget::start();
    let d = lab.start(&lab.config(&[], &http_service("web", &target.url(), &["192.0.2.11/32"])));
    lab.wait("192.0.2.11/32", true, SESSION);
    target.set_status(500);
    lab.wait("192.0.2.11/32", false, CHANGE);
    wait_until("service_up 0 in the metrics", CHANGE, || {
        d.metrics_text()
            .contains("anycastd_service_up{service=\"web\"} 0")
    });
}

#[test]
fn speaker_restart_is_repaired() {
    let mut lab = Lab::new();
    let target = HttpTarget::start();
    let d = lab.start(&lab.config(&["192.0.2.20/32"], &http_service("web", &target.url(), &[])));
    lab.wait("192.0.2.20/32", true, SESSION);

    lab.speaker.kill9();
    lab.wait("192.0.2.20/32", false, SESSION);
    lab.speaker.restart();
    // anycastd alone re-creates the global config, the peer and the path.
    lab.wait("192.0.2.20/32", true, SESSION);
    // Set up twice: at the start, and again in the restarted gobgpd.
    assert!(
        d.log().matches("started BGP in gobgpd").count() >= 2,
        "{}",
        d.log()
    );
}

#[test]
fn waits_for_gobgpd_to_appear() {
    let mut lab = Lab::new();
    lab.speaker.stop();
    let target = HttpTarget::start();
    let d = lab.start(&lab.config(&["192.0.2.30/32"], &http_service("web", &target.url(), &[])));
    wait_until("anycastd to report gobgpd unreachable", CHANGE, || {
        d.log().contains("gobgpd is not reachable")
    });
    wait_until("anycastd_gobgp_up 0", CHANGE, || {
        d.metrics_text().contains("anycastd_gobgp_up 0")
    });
    lab.speaker.restart();
    lab.wait("192.0.2.30/32", true, SESSION);
    assert!(d.metrics_text().contains("anycastd_gobgp_up 1"));
}

#[test]
fn sigterm_withdraws_and_exits_zero() {
    let lab = Lab::new();
    let target = HttpTarget::start();
    let mut d =
        lab.start(&lab.config(&["192.0.2.40/32"], &http_service("web", &target.url(), &[])));
    lab.wait("192.0.2.40/32", true, SESSION);
    let status = d.signal_and_wait("TERM", Duration::from_secs(10));
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status:?}; log:\n{}",
        d.log()
    );
    // The withdraw was sent before exiting: the router loses the prefix while the session stays up.
    lab.wait("192.0.2.40/32", false, CHANGE);
    assert!(d.log().contains("anycastd is shutting down"), "{}", d.log());
}

#[test]
fn ipv6_prefix_is_announced_and_withdrawn() {
    let lab = Lab::new();
    let mut target = HttpTarget::start();
    let _d = lab.start(&lab.config(
        &["2001:db8:100::/48"],
        &http_service("web", &target.url(), &[]),
    ));
    lab.wait("2001:db8:100::/48", true, SESSION);
    target.stop();
    lab.wait("2001:db8:100::/48", false, CHANGE);
}

#[test]
fn global_route_needs_every_service_and_service_routes_follow_their_own() {
    let lab = Lab::new();
    let mut a = HttpTarget::start();
    let mut b = HttpTarget::start();
    let services = format!(
        "{}{}",
        http_service("a", &a.url(), &["192.0.2.51/32"]),
        http_service("b", &b.url(), &["192.0.2.52/32"])
    );
    let _d = lab.start(&lab.config(&["192.0.2.50/32"], &services));
    for p in ["192.0.2.50/32", "192.0.2.51/32", "192.0.2.52/32"] {
        lab.wait(p, true, SESSION);
    }

    a.stop();
    lab.wait("192.0.2.50/32", false, CHANGE);
    lab.wait("192.0.2.51/32", false, CHANGE);
    assert!(
        lab.router.rib_prefixes().contains("192.0.2.52/32"),
        "b's route follows b only"
    );

    a.restart();
    lab.wait("192.0.2.50/32", true, CHANGE);
    b.stop();
    lab.wait("192.0.2.50/32", false, CHANGE);
    lab.wait("192.0.2.52/32", false, CHANGE);
    assert!(
        lab.router.rib_prefixes().contains("192.0.2.51/32"),
        "a's route follows a only"
    );
}

#[test]
fn bad_config_exits_2_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    let good = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/seed.yaml"))
        .expect("seed");
    std::fs::write(
        &path,
        good.replace("url: http://127.0.0.1:8080", "url: 127.0.0.1:8080"),
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anycastd"))
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run anycastd");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("services[0].checks[1].spec.url"), "{err}");

    // CONFIG_PATH is read when --config is absent; check-config exits 0 on a valid file.
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/seed.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anycastd"))
        .arg("check-config")
        .env("CONFIG_PATH", seed)
        .output()
        .expect("run anycastd check-config");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("some_router_2") && summary.contains("10.0.0.128/32"),
        "{summary}"
    );

    // A bad LOG_LEVEL is exit 2 with the valid values.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anycastd"))
        .arg("check-config")
        .env("CONFIG_PATH", seed)
        .env("LOG_LEVEL", "loud")
        .output()
        .expect("run anycastd");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("WARNING"));
}

#[test]
fn gobgpd_with_another_global_config_is_exit_2() {
    let lab = Lab::new();
    lab.speaker
        .run_cli(&["global", "as", "65123", "router-id", "10.9.9.9"]);
    let target = HttpTarget::start();
    let mut d =
        lab.start(&lab.config(&["192.0.2.60/32"], &http_service("web", &target.url(), &[])));
    let status = d.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(2), "{}", d.log());
    assert!(
        d.log().contains("router id 10.9.9.9 and ASN 65123"),
        "{}",
        d.log()
    );
}

#[test]
fn metrics_disabled_means_no_listener() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let dead_api = free_tcp_port();
    let config = format!(
        r#"announcer:
  router_id: 10.255.0.1
  local_address: 127.0.0.1
  local_asn: 65001
  routes: [192.0.2.70/32]
  gobgp:
    address: 127.0.0.1:{dead_api}
services:
  - name: web
    check_interval: 1s
    checks:
      - kind: assigned_address
        spec: {{ ipv4: 127.0.0.1 }}
metrics:
  enabled: false
  address: {metrics}
"#
    );
    let d = Anycastd::start(dir.path(), &config, metrics);
    // Running (it reports the missing gobgpd), and yet nothing listens on the metrics address.
    wait_until("anycastd to report gobgpd unreachable", CHANGE, || {
        d.log().contains("gobgpd is not reachable")
    });
    assert_eq!(http_get(metrics, "/metrics"), None);
}

/// The seed's example config, every kind of check in it, with its targets moved to real
/// servers on loopback: a DNS responder, an HTTP server, a PEM chain made by rcgen, lo's
/// address, ICMP to localhost, tftpd-hpa; plus a remote TLS check whose chain is verified
/// against a CA given through SSL_CERT_FILE. Every check passes, and the route arrives.
#[test]
fn the_seed_example_runs_every_kind_of_check() {
    let lab = Lab::new();
    let seed = common::seed::SeedTargets::start(lab.dir.path());
    let ca_file = seed.ca_file.display().to_string();
    let d = Anycastd::start_with_env(
        lab.dir.path(),
        &lab.config(&["10.0.0.128/32"], &seed.service("http", "1s")),
        lab.metrics,
        &[("SSL_CERT_FILE", ca_file.as_str())],
    );
    lab.wait("10.0.0.128/32", true, SESSION);

    let text = d.metrics_text();
    for check in [
        "dns_lookup",
        "http_2xx",
        "tls_certificate",
        "assigned_address",
        "icmp_ping",
        "tftp_rrq",
        "remote-cert",
    ] {
        assert!(
            text.contains(&format!(
                "anycastd_check_up{{service=\"http\",check=\"{check}\"}} 1"
            )),
            "{check} must pass:\n{text}\nlog:\n{}",
            d.log()
        );
    }
    assert!(
        text.contains("anycastd_check_packets_received_total{service=\"http\",check=\"icmp_ping\",host=\"localhost\"}"),
        "{text}"
    );
    let slowest = text
        .lines()
        .filter(|l| l.starts_with("anycastd_check_duration_seconds{"))
        .filter_map(|l| Some((l.rsplit(' ').next()?.parse::<f64>().ok()?, l.to_string())))
        .fold((0.0, String::new()), |a, b| if b.0 > a.0 { b } else { a });
    eprintln!("slowest check duration: {}", slowest.1);

    // One check fails: the route goes, and the log names the check and why.
    std::fs::remove_file(&seed.boot_file).expect("remove the served file");
    lab.wait("10.0.0.128/32", false, CHANGE);
    wait_until("the withdraw reason in the log", CHANGE, || {
        let log = d.log();
        log.contains("tftp_rrq") && log.contains("lpxelinux.0")
    });
    for l in d.log().lines().filter(|l| l.contains("WARN")) {
        eprintln!("{l}");
    }
}

/// `GET /status` as a JSON value.
fn status_json(lab: &Lab) -> serde_json::Value {
    let (code, body) = http_get(lab.metrics, "/status").expect("GET /status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("/status is not JSON ({e}): {body}"))
}

/// A sample of the daemon's metrics, read with the exposition parser.
fn sample(d: &Anycastd, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    prom::value(&prom::parse(&d.metrics_text()), name, labels)
}

/// The peer metrics follow the session and the UPDATEs sent, `/status` and `anycastd
/// status` tell the same story, and the whole exposition parses.
#[test]
fn peer_metrics_status_and_status_command() {
    let mut lab = Lab::new();
    let mut target = HttpTarget::start();
    let config = lab
        .config(&["192.0.2.60/32"], &http_service("web", &target.url(), &[]))
        .replace(
            "    reconcile_interval: 1s\n",
            "    reconcile_interval: 1s\n    peer_poll_interval: 200ms\n",
        );
    let d = lab.start(&config);
    lab.wait("192.0.2.60/32", true, SESSION);

    let peer = [("router_id", "10.255.0.1"), ("peer", "router")];
    wait_until("session_state 6 in the metrics", CHANGE, || {
        sample(&d, "anycastd_gobgp_peer_session_state", &peer) == Some(6.0)
    });
    let m = prom::parse(&d.metrics_text());
    assert_eq!(
        prom::value(
            &m,
            "anycastd_gobgp_peer_count",
            &[("router_id", "10.255.0.1")]
        ),
        Some(1.0)
    );
    assert_eq!(prom::value(&m, "anycastd_gobgp_up", &[]), Some(1.0));
    assert_eq!(
        prom::value(&m, "anycastd_gobgp_peer_type", &peer),
        Some(1.0)
    );
    assert_eq!(
        prom::value(
            &m,
            "anycastd_route_announced",
            &[("prefix", "192.0.2.60/32")]
        ),
        Some(1.0)
    );
    assert_eq!(
        prom::value(
            &m,
            "anycastd_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    for name in [
        "anycastd_gobgp_peer_admin_state",
        "anycastd_gobgp_peer_flops_count",
        "anycastd_gobgp_peer_out_queue_count",
        "anycastd_gobgp_peer_password_set_flag",
        "anycastd_gobgp_peer_remove_private_flag",
        "anycastd_gobgp_peer_send_community_flag",
        "anycastd_gobgp_received_messages_keepalive",
        "anycastd_gobgp_received_messages_notification",
        "anycastd_gobgp_received_messages_open",
        "anycastd_gobgp_received_messages_refresh",
        "anycastd_gobgp_received_messages_total",
        "anycastd_gobgp_received_messages_update",
        "anycastd_gobgp_received_messages_withdraw_update",
        "anycastd_gobgp_sent_messages_keepalive",
        "anycastd_gobgp_sent_messages_notification",
        "anycastd_gobgp_sent_messages_open",
        "anycastd_gobgp_sent_messages_refresh",
        "anycastd_gobgp_sent_messages_total",
        "anycastd_gobgp_sent_messages_update",
        "anycastd_gobgp_sent_messages_withdraw_prefix",
        "anycastd_gobgp_sent_messages_withdraw_update",
    ] {
        assert!(prom::value(&m, name, &peer).is_some(), "{name} missing");
    }
    assert!(prom::value(&m, "anycastd_gobgp_sent_messages_open", &peer) >= Some(1.0));
    let sent_updates =
        |d: &Anycastd| sample(d, "anycastd_gobgp_sent_messages_update", &peer).unwrap_or(0.0);
    let before_withdraw = sent_updates(&d);

    let s = status_json(&lab);
    assert_eq!(s["services"][0]["state"], "up", "{s:#}");
    assert_eq!(s["services"][0]["checks"][0]["result"], "pass", "{s:#}");
    assert_eq!(s["prefixes"][0]["prefix"], "192.0.2.60/32");
    assert_eq!(s["prefixes"][0]["wanted"], true);
    assert_eq!(s["prefixes"][0]["announced"], true);
    assert_eq!(s["peers"][0]["name"], "router");
    assert_eq!(s["peers"][0]["session_state"], "ESTABLISHED", "{s:#}");
    assert!(s["peers"][0]["uptime_seconds"].is_u64(), "{s:#}");
    assert_eq!(s["gobgp"]["up"], true);

    // A withdraw: the sent withdraw counters grow, the status says why.
    target.stop();
    lab.wait("192.0.2.60/32", false, CHANGE);
    // GoBGP counts a withdraw it sends as an UPDATE (it never fills its sent withdraw
    // counters; the received ones are checked below).
    wait_until("sent updates to grow after a withdraw", CHANGE, || {
        sent_updates(&d) > before_withdraw
    });
    let s = status_json(&lab);
    assert_eq!(s["services"][0]["state"], "down", "{s:#}");
    assert_eq!(s["services"][0]["checks"][0]["result"], "fail");
    let error = s["services"][0]["checks"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("127.0.0.1"),
        "the error names the target: {s:#}"
    );
    assert_eq!(s["prefixes"][0]["wanted"], false);
    assert_eq!(s["prefixes"][0]["announced"], false);

    let table = std::process::Command::new(env!("CARGO_BIN_EXE_anycastd"))
        .args(["status", "--address", &lab.metrics.to_string()])
        .output()
        .expect("run anycastd status");
    let out = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{table:?}");
    for want in [
        "SERVICE",
        "web",
        "DOWN",
        "FAIL",
        error.as_str(),
        "192.0.2.60/32",
        "ESTABLISHED",
    ] {
        assert!(
            out.contains(want),
            "`anycastd status` lacks {want:?}:\n{out}"
        );
    }
    eprintln!("anycastd status:\n{out}");

    // An announce: the sent update counter grows.
    let before_announce = sent_updates(&d);
    target.restart();
    lab.wait("192.0.2.60/32", true, CHANGE);
    wait_until("sent updates to grow after an announce", CHANGE, || {
        sent_updates(&d) > before_announce
    });

    // The router announces a prefix and withdraws it: the received
    // update, withdraw-update and withdraw-prefix counters are each their own series.
    let received = |d: &Anycastd, what: &str| {
        sample(
            d,
            &format!("anycastd_gobgp_received_messages_{what}"),
            &peer,
        )
        .unwrap_or(-1.0)
    };
    let updates_in = received(&d, "update");
    lab.router.run_cli(&[
        "global",
        "rib",
        "add",
        "203.0.113.0/24",
        "nexthop",
        "198.51.100.2",
    ]);
    wait_until("an UPDATE received from the router", CHANGE, || {
        received(&d, "update") > updates_in
    });
    assert_eq!(received(&d, "withdraw_update"), 0.0);
    lab.router
        .run_cli(&["global", "rib", "del", "203.0.113.0/24"]);
    wait_until("a withdraw received from the router", CHANGE, || {
        received(&d, "withdraw_update") == 1.0 && received(&d, "withdraw_prefix") == 1.0
    });

    // A peer added behind anycastd's back is listed by its address, and goes when removed.
    lab.speaker
        .run_cli(&["neighbor", "add", "127.0.0.9", "as", "65009"]);
    let foreign = [("router_id", "10.255.0.1"), ("peer", "127.0.0.9")];
    wait_until("the foreign peer in the metrics", CHANGE, || {
        sample(&d, "anycastd_gobgp_peer_session_state", &foreign).is_some()
    });
    assert_eq!(
        sample(
            &d,
            "anycastd_gobgp_peer_count",
            &[("router_id", "10.255.0.1")]
        ),
        Some(2.0)
    );
    lab.speaker.run_cli(&["neighbor", "del", "127.0.0.9"]);
    wait_until("the foreign peer gone from the metrics", CHANGE, || {
        sample(&d, "anycastd_gobgp_peer_session_state", &foreign).is_none()
    });
    eprintln!(
        "metrics excerpt:\n{}",
        d.metrics_text()
            .lines()
            .filter(|l| !l.starts_with('#')
                && (l.contains("gobgp") || l.contains("route_") || l.contains("service_")))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The router goes away and comes back: both session changes are logged, at WARN.
    lab.router.stop();
    wait_until("the lost session in the log", CHANGE, || {
        d.log().contains("BGP session lost")
    });
    wait_until("session_state below 6 in the metrics", CHANGE, || {
        sample(&d, "anycastd_gobgp_peer_session_state", &peer).is_some_and(|v| v < 6.0)
    });
    lab.router.restart();
    lab.wait("192.0.2.60/32", true, SESSION);

    // gobgpd gone: gobgp_up 0 and no stale peer series; back: a reconnect, logged.
    lab.speaker.kill9();
    wait_until("gobgp_up 0 and no peer series", CHANGE, || {
        let text = d.metrics_text();
        let m = prom::parse(&text);
        prom::value(&m, "anycastd_gobgp_up", &[]) == Some(0.0)
            && !text.contains("anycastd_gobgp_peer_session_state{")
            && !text.contains("anycastd_gobgp_peer_count{")
    });
    lab.speaker.restart();
    lab.wait("192.0.2.60/32", true, SESSION);
    wait_until("a reconnect counted and logged", CHANGE, || {
        sample(&d, "anycastd_gobgp_reconnects_total", &[]) >= Some(1.0)
            && d.log().contains("reconnected to gobgpd")
    });
    let log = d.log();
    for want in [
        "BGP session established",
        "BGP session lost",
        "check failed",
        "service is down",
        "withdrawn",
        "announced",
    ] {
        assert!(log.contains(want), "the log lacks {want:?}:\n{log}");
    }
    assert_eq!(
        sample(
            &d,
            "anycastd_service_transitions_total",
            &[("service", "web")]
        ),
        Some(3.0),
        "up, down, up"
    );
}

/// LOG_FORMAT=json: every line is one JSON object with a level and a message; the peer's
/// password is never in the log, even at debug level.
#[test]
fn json_logs_and_no_secrets() {
    let lab = Lab::new();
    let secret = "s3cr3t-Pa55word";
    let pw = lab.dir.path().join("bgp-password");
    std::fs::write(&pw, format!("{secret}\n")).expect("write the password file");
    let config = format!(
        r#"announcer:
  router_id: 10.255.0.1
  local_address: 127.0.0.1
  local_asn: {SPEAKER_ASN}
  next_hop: 198.51.100.1
  routes: [192.0.2.70/32]
  peers:
    - name: router
      remote_address: 127.0.0.1
      remote_asn: {ROUTER_ASN}
      remote_port: {port}
      password_file: {pw}
  gobgp:
    address: 127.0.0.1:{api}
services:
  - name: web
    check_interval: 200ms
    checks:
      - kind: http_2xx
        spec:
          url: http://127.0.0.1:{closed}/
metrics:
  address: {metrics}
"#,
        port = lab.router.bgp_port(),
        pw = pw.display(),
        api = lab.speaker.api_port(),
        closed = free_tcp_port(),
        metrics = lab.metrics,
    );
    let mut d = Anycastd::start_with_env(
        lab.dir.path(),
        &config,
        lab.metrics,
        &[("LOG_FORMAT", "json")],
    );
    wait_until("the peer added and the check failed", CHANGE, || {
        let log = d.log();
        log.contains("added peer to gobgpd") && log.contains("check failed")
    });
    let status = d.signal_and_wait("TERM", Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    let log = d.log();
    assert!(!log.contains(secret), "the password is in the log:\n{log}");
    let mut levels = std::collections::BTreeSet::new();
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        let level = v["level"]
            .as_str()
            .unwrap_or_else(|| panic!("no level: {line}"));
        levels.insert(level.to_string());
        assert!(v["message"].is_string(), "no message: {line}");
        assert!(v["timestamp"].is_string(), "no timestamp: {line}");
    }
    assert!(
        levels.contains("WARN") && levels.contains("DEBUG"),
        "{levels:?}"
    );
    let failed = log
        .lines()
        .find(|l| l.contains("check failed"))
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(failed).unwrap_or_default();
    assert_eq!(v["service"], "web", "{failed}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("127.0.0.1"),
        "{failed}"
    );
}

#[test]
fn the_exposition_validator_rejects_broken_text() {
    let ok = "# HELP a x\n# TYPE a gauge\na{b=\"c\"} 1\na{b=\"d\"} 2\n";
    assert_eq!(prom::parse(ok).len(), 2);
    for bad in [
        "a{b=\"c\"} one\n",
        "a{b=\"c\"} 1\na{b=\"c\"} 2\n",
        "a 1\nb 1\na{x=\"y\"} 1\n",
        "# TYPE a gauge\n# TYPE a gauge\na 1\n",
        "a{b=c} 1\n",
        "what is this\n",
    ] {
        assert!(
            std::panic::catch_unwind(|| prom::parse(bad)).is_err(),
            "accepted: {bad:?}"
        );
    }
}

// Event-driven detection (SPEC 13): watches and fast_interval, against real processes.

/// One service checking `url` every `interval` with the extra YAML lines `extra` (watch,
/// fall, fast_interval, ...), its own route `route`.
fn watched_service(url: &str, interval: &str, timeout: &str, route: &str, extra: &str) -> String {
    format!(
        r#"  - name: web
    check_interval: {interval}
    routes: [{route}]
{extra}    checks:
      - kind: http_2xx
        spec:
          url: {url}
          timeout: {timeout}
"#
    )
}

/// The first watch's state in `/status` (empty while the daemon does not answer yet).
fn watch_state(lab: &Lab) -> String {
    http_get(lab.metrics, "/status")
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
        .and_then(|s| s["watches"][0]["state"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Waits until `web` has finished a round after this call: the next tick is then a whole
/// check_interval away, and only an event can start a round before it.
fn after_a_fresh_round(lab: &Lab) {
    let last = |lab: &Lab| status_json(lab)["services"][0]["last_round"].clone();
    let before = last(lab);
    wait_until("a fresh round of web", Duration::from_secs(15), || {
        last(lab) != before
    });
}

fn watch_events(d: &Anycastd, watch: &str, event: &str) -> f64 {
    sample(
        d,
        "anycastd_watch_events_total",
        &[("service", "web"), ("watch", watch), ("event", event)],
    )
    .unwrap_or(0.0)
}

/// A target process killed with SIGKILL: the kernel closes the held connection, a round
/// starts at once, and the route leaves the router seconds before the next tick of the
/// 10 s check_interval could have noticed. Restarted, the watch reconnects and the route is
/// back without waiting for the tick either.
#[test]
fn tcp_watch_withdraws_a_killed_target_before_the_next_tick() {
    let lab = Lab::new();
    let mut target = common::targets::ProcessTarget::start();
    let watch = format!("tcp:{}", target.addr());
    let extra = format!("    watch:\n      - tcp: {}\n", target.addr());
    let d = lab.start(&lab.config(
        &[],
        &watched_service(&target.url(), "10s", "500ms", "192.0.2.80/32", &extra),
    ));
    lab.wait("192.0.2.80/32", true, SESSION);
    wait_until("the watch connected", CHANGE, || {
        watch_state(&lab) == "connected"
    });

    after_a_fresh_round(&lab);
    target.kill9();
    let gone = lab.wait("192.0.2.80/32", false, Duration::from_secs(5));
    eprintln!("SIGKILL -> absent at the router: {gone:?} (check_interval 10s)");
    assert!(
        watch_events(&d, &watch, "closed") >= 1.0,
        "{}",
        d.metrics_text()
    );
    assert!(
        d.log().contains("watch event: starting a round now"),
        "{}",
        d.log()
    );
    wait_until("the watch reconnecting", CHANGE, || {
        watch_state(&lab) == "reconnecting"
    });

    target.restart();
    let back = lab.wait("192.0.2.80/32", true, Duration::from_secs(8));
    eprintln!("restart -> present at the router: {back:?}");
    assert!(watch_events(&d, &watch, "connected") >= 2.0);
    assert!(watch_events(&d, &watch, "connect_failed") >= 1.0);
}

/// The pid file holds garbage, then the target's pid: a state in status and a log line,
/// then the process watched through a pidfd; killed, the route leaves at once.
#[test]
fn pid_file_watch_withdraws_a_killed_target_before_the_next_tick() {
    let lab = Lab::new();
    let mut target = common::targets::ProcessTarget::start();
    let pid_file = lab.dir.path().join("web.pid");
    std::fs::write(&pid_file, "not a pid\n").expect("write the pid file");
    let watch = format!("pid_file:{}", pid_file.display());
    let extra = format!("    watch:\n      - pid_file: {}\n", pid_file.display());
    let d = lab.start(&lab.config(
        &[],
        &watched_service(&target.url(), "10s", "500ms", "192.0.2.81/32", &extra),
    ));
    wait_until("pid_file_garbage in status", CHANGE, || {
        watch_state(&lab) == "pid_file_garbage"
    });
    assert!(d.log().contains("not a pid"), "{}", d.log());
    // Garbage in the pid file is not a failing check: the route comes all the same.
    lab.wait("192.0.2.81/32", true, SESSION);

    target.write_pid(&pid_file);
    wait_until("process_alive in status", CHANGE, || {
        watch_state(&lab) == "process_alive"
    });
    assert_eq!(
        status_json(&lab)["watches"][0]["pid"].as_u64(),
        Some(u64::from(target.pid()))
    );

    after_a_fresh_round(&lab);
    target.kill9();
    let gone = lab.wait("192.0.2.81/32", false, Duration::from_secs(5));
    eprintln!("SIGKILL -> absent at the router: {gone:?} (pid_file watch, check_interval 10s)");
    assert_eq!(
        watch_events(&d, &watch, "exited"),
        1.0,
        "{}",
        d.metrics_text()
    );
    // The file still names the dead process: not watched again, shown as such.
    wait_until("process_not_running in status", CHANGE, || {
        watch_state(&lab) == "process_not_running"
    });

    let table = std::process::Command::new(env!("CARGO_BIN_EXE_anycastd"))
        .args(["status", "--address", &lab.metrics.to_string()])
        .output()
        .expect("run anycastd status");
    let out = String::from_utf8_lossy(&table.stdout);
    assert!(
        out.contains("WATCH") && out.contains(&watch) && out.contains("PROCESS_NOT_RUNNING"),
        "{out}"
    );
}

/// A hung (SIGSTOPped) target: no event, but with fall 3 the rounds after the first
/// failing one run at fast_interval, so the route goes about timeout + 2 x fast_interval
/// after the first failing round, where polling would take two more check_intervals.
#[test]
fn a_hung_target_falls_at_fast_interval() {
    let lab = Lab::new();
    let target = common::targets::ProcessTarget::start();
    let extra = "    fall: 3\n    fast_interval: 300ms\n";
    let d = lab.start(&lab.config(
        &[],
        &watched_service(&target.url(), "5s", "300ms", "192.0.2.82/32", extra),
    ));
    lab.wait("192.0.2.82/32", true, SESSION);

    after_a_fresh_round(&lab);
    target.signal("STOP");
    let gone = lab.wait("192.0.2.82/32", false, Duration::from_secs(15));
    target.signal("CONT");
    // The first failing round comes at the next tick (up to 5 s); polling alone would need
    // two more ticks after it (10 s).
    assert!(gone < Duration::from_secs(8), "took {gone:?}");
    // The last "check failed" before "service is down" ended the first failing round.
    let log = d.log();
    let time = |l: &str| humantime::parse_rfc3339(l.split_whitespace().next()?).ok();
    let mut first_failure = None;
    let mut down = None;
    for l in log.lines() {
        if l.contains("check failed") {
            first_failure = time(l);
        } else if l.contains("service is down") {
            down = time(l);
            break;
        }
    }
    let (Some(first_failure), Some(down)) = (first_failure, down) else {
        panic!("no failing round and fall in the log:\n{log}");
    };
    let fall = down.duration_since(first_failure).unwrap_or_default();
    eprintln!(
        "SIGSTOP -> absent at the router: {gone:?}; first failing round ended -> down: {fall:?} \
         (fall 3, timeout 300ms, fast_interval 300ms: about 2 x 300ms expected)"
    );
    assert!(fall < Duration::from_millis(2500), "{fall:?}");
}

/// A server that closes idle connections every ~1 s: each close starts a harmless round,
/// and the route never leaves the router.
#[test]
fn an_idle_closing_server_causes_no_flap() {
    let lab = Lab::new();
    let server = common::targets::IdleClosingServer::start(Duration::from_millis(1200));
    let watch = format!("tcp:{}", server.addr());
    let extra = format!("    watch:\n      - tcp: {}\n", server.addr());
    let d = lab.start(&lab.config(
        &[],
        &watched_service(&server.url(), "1s", "500ms", "192.0.2.83/32", &extra),
    ));
    lab.wait("192.0.2.83/32", true, SESSION);
    let closes = watch_events(&d, &watch, "closed");
    wait_until("three more idle closes", Duration::from_secs(30), || {
        assert!(
            lab.router.rib_prefixes().contains("192.0.2.83/32"),
            "the route left the router after {} idle closes; log:\n{}",
            server.idle_closes(),
            d.log()
        );
        watch_events(&d, &watch, "closed") >= closes + 3.0
    });
    assert_eq!(
        sample(
            &d,
            "anycastd_service_transitions_total",
            &[("service", "web")]
        ),
        Some(1.0),
        "only the first up; log:\n{}",
        d.log()
    );
    assert!(server.idle_closes() >= 3);
}

/// Bad watch and fast_interval fields: exit 2, each field named with its fix.
#[test]
fn bad_watch_config_exits_2_naming_the_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    let seed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/seed.yaml"))
        .expect("seed");
    std::fs::write(
        &path,
        seed.replacen(
            "    check_interval: 10s\n",
            "    check_interval: 10s\n    fast_interval: 1m\n    watch:\n      - tcp: 127.0.0.1\n      - pid_file: \"\"\n",
            1,
        ),
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anycastd"))
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run anycastd");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "services[0].fast_interval: 1m is longer than check_interval (10s)",
        "services[0].watch[0].tcp: \"127.0.0.1\" has no port; write HOST:PORT",
        "services[0].watch[1].pid_file: must not be empty",
    ] {
        assert!(err.contains(want), "{want:?} not in:\n{err}");
    }

    // Fixed, check-config shows them.
    std::fs::write(
        &path,
        seed.replacen(
            "    check_interval: 10s\n",
            "    check_interval: 10s\n    fast_interval: 200ms\n    watch:\n      - tcp: 127.0.0.1:8080\n      - pid_file: /run/nginx.pid\n",
            1,
        ),
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anycastd"))
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run anycastd");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "fast   every 200ms",
        "watch  tcp:127.0.0.1:8080",
        "watch  pid_file:/run/nginx.pid",
    ] {
        assert!(summary.contains(want), "{want:?} not in:\n{summary}");
    }
}
