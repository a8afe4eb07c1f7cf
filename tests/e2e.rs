//! End-to-end: the real `anycastd` binary drives a real gobgpd ("speaker"), which peers with
//! a second real gobgpd ("router"); every assertion is on the router's RIB.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::gobgpd::{Gobgpd, RouterOpts, require_gobgpd};
use common::lab::{Anycastd, HttpTarget, free_tcp_port, http_get, wait_until};

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
    assert!(
        d.log().contains("set it up again") || d.log().contains("started BGP"),
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
    let out = std::process::Command::new("gobgp")
        .args(["-u", "127.0.0.1", "-p", &lab.speaker.api_port().to_string()])
        .args(["global", "as", "65123", "router-id", "10.9.9.9"])
        .output()
        .expect("run the gobgp CLI");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    use common::dns::{Mode, Responder};
    use common::tftpd::Tftpd;
    use common::tls::{Validity, pki, tls_server};

    let lab = Lab::new();
    let rt = tokio::runtime::Runtime::new().expect("a runtime for the test servers");
    let dns = rt.block_on(Responder::start(Mode::A));
    let k = pki(Validity::Current);
    let tls = rt.block_on(tls_server(
        vec![k.leaf_der.clone(), k.ca_der.clone()],
        k.leaf_key.clone_key(),
    ));
    let http = HttpTarget::start();
    let tftpd = Tftpd::start();
    let boot = tftpd.put("lpxelinux.0", &[0x5a; 3000]);
    let chain = lab.dir.path().join("cert.pem");
    std::fs::write(&chain, format!("{}{}", k.leaf_pem, k.ca_pem)).expect("write the chain");
    let ca = lab.dir.path().join("ca.pem");
    std::fs::write(&ca, &k.ca_pem).expect("write the CA");

    let service = format!(
        r#"  - name: http
    check_interval: 1s
    checks:
      - kind: dns_lookup
        spec:
          query: google.com
          resolver: {dns}
          tries: 3
          interval: 100ms
          timeout: 3s
      - kind: http_2xx
        spec:
          url: {url}
          method: GET
          headers:
            Host: example.com
          payload: ping
          path: /
          tries: 3
          interval: 100ms
          timeout: 2s
      - kind: tls_certificate
        spec:
          local:
            path: {chain}
          common_name: Test certificate
          dns_names:
            - site.example.org
          ip_addresses:
            - 127.0.0.1
          issuer: Test Issuer
      - kind: assigned_address
        spec:
          interface: lo
          ipv4: 127.0.0.1
      - kind: icmp_ping
        spec:
          static:
            host: localhost
          tries: 3
          interval: 100ms
          timeout: 5s
      - kind: tftp_rrq
        spec:
          url: tftp://{tftp}/lpxelinux.0
          tries: 3
          interval: 100ms
          timeout: 5s
      - name: remote-cert
        kind: tls_certificate
        spec:
          remote:
            host: {tls}
            server_name: site.example.org
          issuer: Test Issuer
"#,
        dns = dns.addr,
        url = http.url(),
        chain = chain.display(),
        tftp = tftpd.addr,
        tls = tls.addr,
    );
    let ca_file = ca.display().to_string();
    let d = Anycastd::start_with_env(
        lab.dir.path(),
        &lab.config(&["10.0.0.128/32"], &service),
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
    std::fs::remove_file(&boot).expect("remove the served file");
    lab.wait("10.0.0.128/32", false, CHANGE);
    wait_until("the withdraw reason in the log", CHANGE, || {
        let log = d.log();
        log.contains("tftp_rrq") && log.contains("lpxelinux.0")
    });
    for l in d.log().lines().filter(|l| l.contains("WARN")) {
        eprintln!("{l}");
    }
    drop(rt);
}
