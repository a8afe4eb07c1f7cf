//! End-to-end: the real `anycastd` binary drives a real gobgpd ("speaker"), which peers with
//! a second real gobgpd ("router"); every assertion is on the router's RIB.

pub mod common {
    pub mod config;
    pub mod dns;
    pub mod e2e;
    pub mod gobgpd;
    pub mod lab;
    pub mod prom;
    pub mod seed;
    pub mod tftpd;
    pub mod tls;
}

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::config::{check, config, peer, service};
use common::e2e::{CHANGE, Lab, ROUTER_ASN, SESSION, SPEAKER_ASN, http_service};
use common::lab::{
    Anycastd, HttpTarget, free_tcp_port, http_get, status, try_status, wait_until, wait_until_or,
};
use common::prom;

#[test]
fn route_follows_the_http_target() {
    let lab = Lab::new();
    let mut target = HttpTarget::start();
    let d = lab.start(
        &lab.config()
            .routes(&["192.0.2.10/32"])
            .service(http_service("web", &target.url())),
    );

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

    // The router may see the UPDATE before gobgpd's answer to AddPath reaches anycastd.
    let announced = "anycastd_route_announced{prefix=\"192.0.2.10/32\"} 1";
    wait_until("anycastd_route_announced 1", CHANGE, || {
        d.metrics_text().contains(announced)
    });
    let text = d.metrics_text();
    assert!(text.contains(announced), "{text}");
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
    let d = lab.start(
        &lab.config()
            .service(http_service("web", &target.url()).routes(&["192.0.2.11/32"])),
    );
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
    let d = lab.start(
        &lab.config()
            .routes(&["192.0.2.20/32"])
            .service(http_service("web", &target.url())),
    );
    lab.wait("192.0.2.20/32", true, SESSION);

    lab.speaker.kill9();
    lab.wait("192.0.2.20/32", false, SESSION);
    // While gobgpd cannot be asked, anycastd_route_announced keeps what gobgpd was last seen
    // to announce (the README's reading: with anycastd_gobgp_up, which says it is stale).
    wait_until("anycastd_gobgp_up 0", CHANGE, || {
        d.sample("anycastd_gobgp_up", &[]) == Some(0.0)
    });
    assert_eq!(
        d.sample("anycastd_route_announced", &[("prefix", "192.0.2.20/32")]),
        Some(1.0)
    );
    // The session's fate is said when gobgpd goes, not when the next one answers.
    wait_until_or(
        "the sessions said unknown",
        CHANGE,
        || {
            d.log().lines().any(|l| {
                l.contains("BGP sessions unknown: gobgpd is not usable")
                    && l.contains("peers=\"router\"")
            })
        },
        || d.log(),
    );
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
    let d = lab.start(
        &lab.config()
            .routes(&["192.0.2.30/32"])
            .service(http_service("web", &target.url())),
    );
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
    let mut d = lab.start(
        &lab.config()
            .routes(&["192.0.2.40/32"])
            .service(http_service("web", &target.url())),
    );
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
    let _d = lab.start(
        &lab.config()
            .routes(&["2001:db8:100::/48"])
            .service(http_service("web", &target.url())),
    );
    lab.wait("2001:db8:100::/48", true, SESSION);
    target.stop();
    lab.wait("2001:db8:100::/48", false, CHANGE);
}

#[test]
fn global_route_needs_every_service_and_service_routes_follow_their_own() {
    let lab = Lab::new();
    let mut a = HttpTarget::start();
    let mut b = HttpTarget::start();
    let _d = lab.start(
        &lab.config()
            .routes(&["192.0.2.50/32"])
            .service(http_service("a", &a.url()).routes(&["192.0.2.51/32"]))
            .service(http_service("b", &b.url()).routes(&["192.0.2.52/32"])),
    );
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
    let mut d = lab.start(
        &lab.config()
            .routes(&["192.0.2.60/32"])
            .service(http_service("web", &target.url())),
    );
    let status = d.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(2), "{}", d.log());
    assert!(
        d.log().contains("router id 10.9.9.9, ASN 65123"),
        "{}",
        d.log()
    );
}

#[test]
fn metrics_disabled_means_no_listener() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let dead_api = free_tcp_port();
    let config = config("10.255.0.1", "127.0.0.1", SPEAKER_ASN)
        .routes(&["192.0.2.70/32"])
        .gobgp("address", format!("127.0.0.1:{dead_api}"))
        .service(service("web", "1s").check(check("assigned_address").spec("ipv4", "127.0.0.1")))
        .metrics("enabled", false)
        .metrics("address", metrics);
    let d = Anycastd::start(dir.path(), &config.to_string(), metrics);
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
        &lab.config()
            .routes(&["10.0.0.128/32"])
            .service(seed.service_builder("http", "1s"))
            .to_string(),
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

/// The peer metrics follow the session and the UPDATEs sent, `/status` and `anycastd
/// status` tell the same story, and the whole exposition parses.
/// A session change polls the peers at once: with a poll every hour, the peer table still
/// shows the session established (right after a start, the first poll ran before the
/// announcer had added the peer, and the table stayed empty until the next poll).
#[test]
fn the_peer_table_follows_session_changes_without_waiting_for_the_poll() {
    let lab = Lab::new();
    let target = HttpTarget::start();
    let _d = lab.start(
        &lab.config()
            .routes(&["192.0.2.61/32"])
            .gobgp("peer_poll_interval", "1h")
            .service(http_service("web", &target.url())),
    );
    lab.wait("192.0.2.61/32", true, SESSION);
    wait_until("the peer established in the status", CHANGE, || {
        try_status(lab.metrics).is_some_and(|s| s["peers"][0]["session_state"] == "ESTABLISHED")
    });
}

#[test]
fn peer_metrics_status_and_status_command() {
    let mut lab = Lab::new();
    let mut target = HttpTarget::start();
    let d = lab.start(
        &lab.config()
            .routes(&["192.0.2.60/32"])
            .gobgp("peer_poll_interval", "200ms")
            .service(http_service("web", &target.url())),
    );
    lab.wait("192.0.2.60/32", true, SESSION);

    let peer = [("router_id", "10.255.0.1"), ("peer", "router")];
    wait_until("session_state 6 in the metrics", CHANGE, || {
        d.sample("anycastd_gobgp_peer_session_state", &peer) == Some(6.0)
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
    let sent_updates = |d: &Anycastd| {
        d.sample("anycastd_gobgp_sent_messages_update", &peer)
            .unwrap_or(0.0)
    };
    let before_withdraw = sent_updates(&d);

    // Issue 14: the build's revision and compiler, the process_* series, and when each
    // service last changed state (in the metrics and in /status alike).
    let build = m
        .iter()
        .find(|s| s.name == "anycastd_build_info")
        .expect("anycastd_build_info");
    for label in ["version", "revision", "rustc"] {
        let v = build.labels.get(label).map(String::as_str).unwrap_or("");
        // "unknown" only for a build outside git (a tarball without ANYCASTD_REVISION).
        let in_git = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(".git")
            .exists();
        let missing = v.is_empty() || (in_git && v == "unknown");
        assert!(!missing, "{label}={v:?} in {build:?}");
    }
    assert!(build.labels["rustc"].starts_with("rustc "), "{build:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
    ] {
        let v = prom::value(&m, name, &[]);
        assert!(v.is_some_and(|v| v > 0.0), "{name} = {v:?}");
    }
    let started = prom::value(&m, "process_start_time_seconds", &[]).expect("start time");
    assert!(
        now - started < 600.0 && started <= now + 1.0,
        "{started} vs {now}"
    );
    let changed = prom::value(
        &m,
        "anycastd_service_last_transition_timestamp_seconds",
        &[("service", "web")],
    )
    .expect("last transition of web");
    assert!(
        started - 1.0 <= changed && changed <= now + 1.0,
        "{changed}"
    );

    let s = status(lab.metrics);
    let since = s["services"][0]["since"].as_str().unwrap_or_default();
    let since = humantime::parse_rfc3339(since)
        .unwrap_or_else(|e| panic!("services[0].since {since:?}: {e}; {s:#}"))
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    assert!(
        (since - changed).abs() < 1.0,
        "since {since} vs metric {changed}"
    );
    // An up service carries the counters that can move it (failing rounds), not a "passes".
    let health = &s["services"][0]["health"];
    assert_eq!(health["level"], "up", "{s:#}");
    assert_eq!(health["fails"], 0, "{s:#}");
    assert!(health.get("passes").is_none(), "{s:#}");
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
    // What anycastd announces is published once gobgpd answered DeletePath: after the
    // router may have seen the withdraw.
    wait_until("the status to say withdrawn", CHANGE, || {
        status(lab.metrics)["prefixes"][0]["announced"] == false
    });
    let s = status(lab.metrics);
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
        d.sample(&format!("anycastd_gobgp_received_messages_{what}"), &peer)
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
        d.sample("anycastd_gobgp_peer_session_state", &foreign)
            .is_some()
    });
    assert_eq!(
        d.sample("anycastd_gobgp_peer_count", &[("router_id", "10.255.0.1")]),
        Some(2.0)
    );
    lab.speaker.run_cli(&["neighbor", "del", "127.0.0.9"]);
    wait_until("the foreign peer gone from the metrics", CHANGE, || {
        d.sample("anycastd_gobgp_peer_session_state", &foreign)
            .is_none()
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
        d.sample("anycastd_gobgp_peer_session_state", &peer)
            .is_some_and(|v| v < 6.0)
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
        d.sample("anycastd_gobgp_reconnects_total", &[]) >= Some(1.0)
            && d.log().contains("gobgpd is usable again")
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
        d.sample("anycastd_service_transitions_total", &[("service", "web")]),
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
    let config =
        config("10.255.0.1", "127.0.0.1", SPEAKER_ASN)
            .announcer("next_hop", "198.51.100.1")
            .routes(&["192.0.2.70/32"])
            .peer(
                peer("router", "127.0.0.1", ROUTER_ASN)
                    .set("remote_port", lab.router.bgp_port())
                    .set("password_file", pw.display()),
            )
            .gobgp("address", format!("127.0.0.1:{}", lab.speaker.api_port()))
            .service(service("web", "200ms").check(
                check("http_2xx").spec("url", format!("http://127.0.0.1:{}/", free_tcp_port())),
            ))
            .metrics("address", lab.metrics);
    let mut d = Anycastd::start_with_env(
        lab.dir.path(),
        &config.to_string(),
        lab.metrics,
        &[("LOG_FORMAT", "json")],
    );
    wait_until("the peer added and the check failed twice", CHANGE, || {
        let log = d.log();
        log.contains("added peer to gobgpd")
            && log.contains("check failed")
            && log.contains("check still failing")
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
        // No empty or placeholder fields (issue 14: `peer=<nil> address=<nil> from=-`).
        for (key, value) in v.as_object().into_iter().flatten() {
            let text = value.as_str().map(str::trim);
            assert!(
                !matches!(text, Some("" | "<nil>" | "-")),
                "field {key} is {value} in: {line}"
            );
        }
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

/// The config builder of tests/common/config.rs writes what a user would: the keys where
/// they belong, a value set twice replaced in place, lists of scalars on one line and lists
/// of mappings as blocks; and the daemon reads the file as meant.
#[test]
fn the_config_builder_writes_the_yaml_a_user_would() {
    let yaml = config("10.255.0.1", "127.0.0.1", 65001)
        .routes(&[])
        .announcer("state_directory", "/var/lib/anycastd")
        .peer(peer("router", "127.0.0.2", 65000).set("remote_port", 179))
        .gobgp("address", "127.0.0.1:50051")
        .service(
            http_service("web", "http://127.0.0.1:8080/health")
                .routes(&["192.0.2.1/32"])
                .set("rise", 2)
                .watch("tcp", "127.0.0.1:8080"),
        )
        .service(
            service("lo", "1s").check(
                check("assigned_address")
                    .set("name", "lo-address")
                    .spec("ipv4", "127.0.0.1"),
            ),
        )
        .routes(&["192.0.2.10/32", "192.0.2.12/32"])
        .peer_set("router", "hold_time", "9s")
        .metrics("address", "127.0.0.1:9000")
        .to_string();
    assert_eq!(
        yaml,
        "announcer:
  router_id: 10.255.0.1
  local_address: 127.0.0.1
  local_asn: 65001
  routes: [192.0.2.10/32, 192.0.2.12/32]
  state_directory: /var/lib/anycastd
  peers:
    - name: router
      remote_address: 127.0.0.2
      remote_asn: 65000
      remote_port: 179
      hold_time: 9s
  gobgp:
    address: 127.0.0.1:50051
services:
  - name: web
    check_interval: 200ms
    routes: [192.0.2.1/32]
    rise: 2
    watch:
      - tcp: 127.0.0.1:8080
    checks:
      - kind: http_2xx
        spec:
          url: http://127.0.0.1:8080/health
          timeout: 500ms
  - name: lo
    check_interval: 1s
    checks:
      - kind: assigned_address
        name: lo-address
        spec:
          ipv4: 127.0.0.1
metrics:
  address: 127.0.0.1:9000
"
    );
    let cfg = anycastd::config::parse(&yaml, anycastd::config::Format::Yaml)
        .unwrap_or_else(|e| panic!("{e}:\n{yaml}"));
    cfg.validate().unwrap_or_else(|p| panic!("{p:?}:\n{yaml}"));
    assert_eq!(cfg.services.len(), 2);
    assert_eq!(cfg.services[1].checks[0].name, "lo-address");
}

/// Each test binary and benchmark names the harness modules it uses, as public modules
/// (`pub mod common { pub mod lab; ... }` with `#[path = "common"]`): public, because the
/// harness is an API shared by many binaries, as a library's is, so that an item one binary
/// does not use is not reported in it, while private items nothing uses still are; and no
/// binary includes the whole harness with dead code allowed (there is no tests/common/mod.rs).
#[test]
fn test_binaries_name_the_harness_modules_they_use() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(!root.join("tests/common/mod.rs").exists());
    let mut roots = Vec::new();
    for dir in ["tests", "benches"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("read tests/ or benches/") {
            let path = entry.expect("an entry").path();
            if path.extension().is_some_and(|e| e == "rs") {
                roots.push(path);
            } else if path.join("main.rs").is_file() {
                roots.push(path.join("main.rs"));
            }
        }
    }
    assert!(roots.len() > 20, "{roots:?}");
    for root in roots {
        let text = std::fs::read_to_string(&root).expect("read a test binary's root");
        for line in text.lines().map(str::trim) {
            assert!(
                !(line.starts_with("mod common") || line.starts_with("pub mod common"))
                    || line.ends_with('{'),
                "{}: `{line}` includes the whole harness; name the modules instead: \
                 `pub mod common {{ pub mod lab; ... }}`",
                root.display()
            );
        }
    }
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

/// `promtool check metrics` on a real scrape: clean but for the original daemon's names that
/// end in `_count` (kept for its dashboards; the README says so).
#[test]
fn promtool_finds_nothing_but_the_seeds_count_names() {
    common::lab::require_program(
        "promtool",
        "this test checks a real scrape with it",
        "prometheus",
    );
    let lab = Lab::new();
    let target = HttpTarget::start();
    let d = lab.start(
        &lab.config()
            .routes(&["192.0.2.80/32"])
            .service(http_service("web", &target.url())),
    );
    lab.wait("192.0.2.80/32", true, SESSION);
    wait_until("the peer series in the scrape", CHANGE, || {
        d.metrics_text()
            .contains("anycastd_gobgp_peer_session_state{")
    });
    let scrape = d.metrics_text();
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(scrape.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool ran");
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = [
        "anycastd_gobgp_peer_count ",
        "anycastd_gobgp_peer_flops_count ",
        "anycastd_gobgp_peer_out_queue_count ",
    ];
    for line in findings.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            expected.iter().any(|e| line.starts_with(e)),
            "promtool: {line}\n(all findings:\n{findings})"
        );
    }
}
