//! Route policy end to end (issue 11, SPEC 9–11): path attributes per state seen at the
//! router, the switch to the degraded attributes as one UPDATE with the prefix never
//! absent, reconcile repairing attributes changed by hand, per-service attributes, the
//! negotiated hold time, and the bad inputs.

pub mod common {
    pub mod config;
    pub mod e2e;
    pub mod gobgpd;
    pub mod lab;
    pub mod prom;
}

use std::time::Instant;

use common::config::{CheckBuilder, ConfigBuilder, Map, check, config, map, peer, service};
use common::e2e::{CHANGE, Lab, SESSION, http_check, http_service};
use common::gobgpd::{
    Gobgpd, RouterOpts, as_path_of as as_path, attr_of, communities_of as communities,
    large_communities_of as large_communities, med_of as med,
};
use common::lab::{HttpTarget, status, wait_until};
use common::prom;

/// The attributes of the router's best path for `prefix`.
fn attrs_at(router: &Gobgpd, prefix: &str) -> serde_json::Value {
    router
        .rib_path(prefix)
        .map(|p| p["attrs"].clone())
        .unwrap_or_default()
}

/// `announcer.attributes` for the up and degraded states.
fn attributes() -> Map {
    map()
        .set(
            "up",
            r#"{ med: 100, communities: ["65000:100", no_export], large_communities: ["65000:1:1"], as_path_prepend: 2 }"#,
        )
        .set("degraded", "{ med: 500, as_path_prepend: 3 }")
}

#[test]
fn each_attribute_reaches_the_router_for_both_families() {
    let lab = Lab::new();
    let target = HttpTarget::start();
    let _d = lab.start(
        &lab.config()
            .routes(&["192.0.2.100/32", "2001:db8:100::/48"])
            .announcer("attributes", attributes())
            .service(http_service("web", &target.url())),
    );
    for prefix in ["192.0.2.100/32", "2001:db8:100::/48"] {
        lab.wait(prefix, true, SESSION);
        let a = attrs_at(&lab.router, prefix);
        assert_eq!(med(&a), Some(100), "{prefix}: {a}");
        // The prepend (two copies of 65001) behind the one the eBGP session adds.
        assert_eq!(as_path(&a), [65001, 65001, 65001], "{prefix}: {a}");
        let mut c = communities(&a);
        c.sort();
        assert_eq!(c, [65000 << 16 | 100, 0xFFFF_FF01], "{prefix}: {a}");
        assert_eq!(large_communities(&a), [(65000, 1, 1)], "{prefix}: {a}");
    }
}

/// A degrade check failing switches the route to its degraded attributes in one UPDATE:
/// the router's monitor stream shows the new MED and no withdraw in between.
#[test]
fn a_failing_degrade_check_changes_the_attributes_without_a_withdraw() {
    let lab = Lab::new();
    let monitor = lab.router.monitor();
    let core = HttpTarget::start();
    let latency = HttpTarget::start();
    let service = service("web", "200ms")
        .routes(&["192.0.2.101/32"])
        .check(http_check(&core.url()).set("name", "core"))
        .check(
            http_check(&latency.url())
                .set("name", "latency")
                .set("on_failure", "degrade"),
        );
    let d = lab.start(
        &lab.config()
            .announcer("attributes", attributes())
            .service(service),
    );
    let p = "192.0.2.101/32";
    monitor.wait_for(p, "announce with MED 100", SESSION, |e| {
        !e.withdrawal && e.attr(4).and_then(|m| m["metric"].as_u64()) == Some(100)
    });

    latency.set_status(503);
    let failed = Instant::now();
    let degraded = monitor.wait_for(p, "the degraded MED", CHANGE, |e| {
        !e.withdrawal && e.attr(4).and_then(|m| m["metric"].as_u64()) == Some(500)
    });
    let latency_ms = degraded.at.duration_since(failed).as_secs_f64() * 1000.0;
    let decided = d
        .logged_at("service is degraded")
        .expect("the degrade is logged");
    let round_to_router = degraded
        .wall
        .duration_since(decided)
        .map(|t| t.as_secs_f64() * 1000.0)
        .unwrap_or(0.0);
    eprintln!(
        "target failing -> MED 500 at the router: {latency_ms:.1} ms (check_interval 200ms, fall 1); \
         failing round decided -> MED 500 at the router: {round_to_router:.2} ms"
    );
    assert_eq!(as_path(&degraded.attrs), [65001, 65001, 65001, 65001]);
    // The router may see the UPDATE before gobgpd's answer to AddPath reaches anycastd,
    // which then publishes what it announces.
    let shown = "degraded: med 500, prepend 3, communities 65000:100 no_export, large_communities 65000:1:1";
    wait_until("the status to show the degraded attributes", CHANGE, || {
        status(lab.metrics)["prefixes"][0]["attributes"] == shown
    });
    let s = status(lab.metrics);
    assert_eq!(s["services"][0]["state"], "degraded", "{s:#}");
    assert_eq!(s["prefixes"][0]["attributes"], shown, "{s:#}");
    let m = prom::parse(&d.metrics_text());
    let state = |st: &str| {
        prom::value(
            &m,
            "anycastd_service_state",
            &[("service", "web"), ("state", st)],
        )
    };
    assert_eq!(state("degraded"), Some(1.0));
    assert_eq!(state("up"), Some(0.0));

    latency.set_status(200);
    monitor.wait_for(p, "the up MED again", CHANGE, |e| {
        !e.withdrawal
            && e.at > degraded.at
            && e.attr(4).and_then(|m| m["metric"].as_u64()) == Some(100)
    });
    assert!(
        monitor.events(p).iter().all(|e| !e.withdrawal),
        "the prefix was withdrawn on the way: {:#?}",
        monitor.events(p)
    );

    // A withdraw check still withdraws.
    core.set_status(500);
    monitor.wait_for(p, "the withdraw", CHANGE, |e| e.withdrawal);
}

/// `gobgp global rib add ... med 7` on the speaker replaces anycastd's path; the next
/// reconcile puts the wanted one back and says someone else changed it.
#[test]
fn reconcile_repairs_attributes_changed_by_hand() {
    let lab = Lab::new();
    let target = HttpTarget::start();
    let d = lab.start(
        &lab.config()
            .routes(&["192.0.2.102/32"])
            .announcer("attributes", attributes())
            .service(http_service("web", &target.url())),
    );
    lab.wait("192.0.2.102/32", true, SESSION);
    let monitor = lab.router.monitor();
    lab.speaker.run_cli(&[
        "global",
        "rib",
        "add",
        "192.0.2.102/32",
        "nexthop",
        "198.51.100.1",
        "med",
        "7",
    ]);
    // The next reconcile (every second) sees the change, counts it and puts MED 100 back.
    // (The router may not see MED 7 at all: gobgpd sends only the last of two quick
    // changes; what is repaired is gobgpd's RIB.)
    wait_until("the foreign change counted and logged", CHANGE, || {
        prom::value(
            &prom::parse(&d.metrics_text()),
            "anycastd_gobgp_foreign_changes_total",
            &[],
        ) >= Some(1.0)
            && d.log().contains("gobgpd was changed by someone else")
    });
    wait_until("MED 100 in the speaker's RIB again", CHANGE, || {
        let rib = lab.speaker.run_cli(&["global", "rib", "-j"]);
        rib.contains("\"metric\":100") && !rib.contains("\"metric\":7")
    });
    wait_until("MED 100 at the router", CHANGE, || {
        med(&attrs_at(&lab.router, "192.0.2.102/32")) == Some(100)
    });
    assert!(
        monitor
            .events("192.0.2.102/32")
            .iter()
            .all(|e| !e.withdrawal),
        "{:#?}",
        monitor.events("192.0.2.102/32")
    );
}

#[test]
fn a_service_s_own_attributes_replace_the_announcer_s() {
    let lab = Lab::new();
    let target = HttpTarget::start();
    let _d = lab.start(
        &lab.config()
            .announcer("attributes", attributes())
            .service(http_service("web", &target.url()).routes(&["192.0.2.103/32"]))
            .service(
                http_service("own", &target.url())
                    .routes(&["192.0.2.104/32"])
                    .set("attributes", map().set("up", "{ med: 10 }")),
            ),
    );
    lab.wait("192.0.2.103/32", true, SESSION);
    lab.wait("192.0.2.104/32", true, CHANGE);
    assert_eq!(med(&attrs_at(&lab.router, "192.0.2.103/32")), Some(100));
    let own = attrs_at(&lab.router, "192.0.2.104/32");
    assert_eq!(med(&own), Some(10), "{own}");
    // Replaced as a whole: no communities or prepend from the announcer's set.
    assert!(communities(&own).is_empty(), "{own}");
    assert_eq!(as_path(&own), [65001], "{own}");
}

/// LOCAL_PREF reaches an iBGP router (gobgpd strips it towards eBGP peers).
#[test]
fn local_pref_reaches_an_ibgp_router() {
    common::gobgpd::require_gobgpd();
    let speaker = Gobgpd::speaker();
    let router = Gobgpd::router(RouterOpts {
        asn: 65001,
        router_id: "10.255.0.2".parse().expect("router id"),
        listen_addr: "127.0.0.1".parse().expect("listen addr"),
        neighbor_addr: "127.0.0.1".parse().expect("neighbor addr"),
        neighbor_asn: 65001,
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let target = HttpTarget::start();
    let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], common::lab::free_tcp_port()));
    let config = config("10.255.0.1", "127.0.0.1", 65001)
        .announcer("next_hop", "198.51.100.1")
        .routes(&["192.0.2.105/32"])
        .announcer("attributes", map().set("up", "{ local_pref: 200 }"))
        .peer(peer("ibgp", "127.0.0.1", 65001).set("remote_port", router.bgp_port()))
        .gobgp("address", format!("127.0.0.1:{}", speaker.api_port()))
        .gobgp("reconcile_interval", "1s")
        .service(http_service("web", &target.url()))
        .metrics("address", metrics)
        .control("socket", format!("{}/control.sock", dir.path().display()));
    let _d = common::lab::Anycastd::start(dir.path(), &config.to_string(), metrics);
    router.wait_for_prefix("192.0.2.105/32", true, SESSION);
    let a = attrs_at(&router, "192.0.2.105/32");
    assert_eq!(
        attr_of(&a, 5).and_then(|l| l["value"].as_u64()),
        Some(200),
        "{a}"
    );
}

/// The peer's timers are set through AddPeer; the router's 90 s and our 9 s give 9 s.
#[test]
fn the_negotiated_hold_time_is_in_status() {
    let lab = Lab::new();
    let target = HttpTarget::start();
    let d = lab.start(
        &lab.config()
            .routes(&["192.0.2.106/32"])
            .peer_set("router", "hold_time", "9s")
            .peer_set("router", "keepalive_interval", "3s")
            .peer_set("router", "connect_retry", "2s")
            .service(http_service("web", &target.url())),
    );
    lab.wait("192.0.2.106/32", true, SESSION);
    wait_until("the negotiated hold time in /status", CHANGE, || {
        status(lab.metrics)["peers"][0]["hold_time_seconds"] == 9
    });
    assert_eq!(status(lab.metrics)["peers"][0]["keepalive_seconds"], 3);
    let out = d.cli(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("HOLD/KEEPALIVE"), "{text}");
    assert!(text.contains("9s/3s"), "{text}");
    // The router sees the same hold time.
    let n = lab.router.run_cli(&["neighbor", "127.0.0.1"]);
    assert!(n.contains("Hold time is 9"), "{n}");
}

/// Each bad input: exit 2, the field's path and the fix; a warning is a warning.
#[test]
fn bad_route_policy_input_is_named_and_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A valid config, with the service's one check; each case breaks it in one place.
    let base = |check: CheckBuilder| {
        config("10.0.0.1", "10.0.0.1", 65001)
            .routes(&["192.0.2.1/32"])
            .peer(peer("r", "10.0.0.2", 65000))
            .service(service("web", "1s").check(check))
    };
    let lo = || check("assigned_address").spec("ipv4", "127.0.0.1");
    let attributes = |state: &str, value: &str| map().set(state, value);
    let cases: Vec<(&str, ConfigBuilder, &[&str])> = vec![
        (
            "community out of range",
            base(lo()).announcer(
                "attributes",
                attributes("up", r#"{ communities: ["70000:1"] }"#),
            ),
            &["announcer.attributes.up.communities[0]", "0..65535"],
        ),
        (
            "unknown well-known name",
            base(lo()).announcer(
                "attributes",
                attributes("draining", "{ communities: [graceful] }"),
            ),
            &[
                "announcer.attributes.draining.communities[0]",
                "graceful_shutdown",
            ],
        ),
        (
            "malformed large community",
            base(lo()).announcer(
                "attributes",
                attributes("up", r#"{ large_communities: ["1:2"] }"#),
            ),
            &[
                "announcer.attributes.up.large_communities[0]",
                "GLOBAL:LOCAL1:LOCAL2",
            ],
        ),
        (
            "prepend over 16",
            base(lo()).announcer(
                "attributes",
                attributes("degraded", "{ as_path_prepend: 17 }"),
            ),
            &[
                "announcer.attributes.degraded.as_path_prepend",
                "at most 16",
            ],
        ),
        (
            "on_failure: maybe",
            base(lo().set("on_failure", "maybe")),
            &["services[0].checks[0]", "withdraw", "degrade"],
        ),
        (
            "hold time of 2s",
            base(lo()).peer_set("r", "hold_time", "2s"),
            &["announcer.peers[0].hold_time", "at least 3s"],
        ),
        (
            "keepalive not shorter than hold",
            base(lo())
                .peer_set("r", "hold_time", "9s")
                .peer_set("r", "keepalive_interval", "9s"),
            &[
                "announcer.peers[0].keepalive_interval",
                "shorter than hold_time",
            ],
        ),
    ];
    for (what, config, wants) in cases {
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, config.to_string()).expect("write");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_anycastd"))
            .arg("--config")
            .arg(&path)
            .arg("check-config")
            .output()
            .expect("run anycastd");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        for w in wants {
            assert!(err.contains(w), "{what}: no {w:?} in:\n{err}");
        }
    }
    // local_pref with only eBGP peers: valid, with a warning naming the field.
    let path = dir.path().join("warn.yaml");
    std::fs::write(
        &path,
        base(lo())
            .announcer("attributes", attributes("up", "{ local_pref: 200 }"))
            .to_string(),
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anycastd"))
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .expect("run anycastd");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("announcer.attributes: local_pref reaches iBGP peers only"),
        "{text}"
    );
}
