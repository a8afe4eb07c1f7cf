//! The GoBGP compatibility matrix (issue 22, SPEC 15): anycastd's core scenarios against
//! each GoBGP it supports as the speaker it drives — Debian's 3.10, the last 3.x (3.37.0)
//! and 4.8.0 — with a router of the same release, and mixed (a 4.x speaker to a 3.x router
//! and back); a gobgpd replaced by another major version in place; and a gRPC server that
//! is no gobgpd.
//!
//! Each scenario: IPv4 and IPv6 announced with every path attribute of the up state, a
//! peer with timers and a TCP MD5 password; the API in the log, `/status`, `anycastd
//! status` and `anycastd_gobgp_api_info`; the ownership mark; the seed's peer metrics;
//! the degraded attributes in one UPDATE; a withdraw and the way back; a drain with
//! GRACEFUL_SHUTDOWN then the withdraw, and undrain; a foreign change repaired; gobgpd
//! killed and restarted, repaired.

pub mod common {
    pub mod config;
    pub mod e2e;
    pub mod etcd;
    pub mod gobgpd;
    pub mod lab;
    pub mod prom;
}

use std::time::{Duration, Instant};

use common::config::{Map, map, service};
use common::e2e::{CHANGE, Lab, SESSION, http_check, router_opts};
use common::etcd::EtcdCluster;
use common::gobgpd::{
    Gobgpd, Release, RibEvent, as_path_of as as_path, communities_of,
    large_communities_of as large_communities, med_of, router_toml,
};
use common::lab::{Anycastd, HttpTarget, status, wait_until, wait_until_or};

const V4: &str = "192.0.2.150/32";
const V6: &str = "2001:db8:150::/48";
const GSHUT: u64 = 0xFFFF_0000;
const PASSWORD: &str = "anycastd-md5-key";

fn attributes() -> Map {
    map()
        .set(
            "up",
            r#"{ med: 100, communities: ["65000:100", no_export], large_communities: ["65000:1:1"], as_path_prepend: 2 }"#,
        )
        .set("degraded", "{ med: 500 }")
}

fn med(e: &RibEvent) -> Option<u64> {
    med_of(&e.attrs)
}

/// The communities, sorted.
fn communities(attrs: &serde_json::Value) -> Vec<u64> {
    let mut c = communities_of(attrs);
    c.sort();
    c
}

fn has_gshut(e: &RibEvent) -> bool {
    !e.withdrawal && communities(&e.attrs).contains(&GSHUT)
}

fn ok(out: &std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

/// A router of `release` whose neighbor (anycastd's speaker) needs the MD5 password.
fn router_with_password(release: Release) -> Gobgpd {
    Gobgpd::router_from(release, |port| {
        router_toml(&router_opts(), port, &[]).replacen(
            "    peer-as = 65001\n",
            &format!("    peer-as = 65001\n    auth-password = \"{PASSWORD}\"\n"),
            1,
        )
    })
}

/// The speaker's API as anycastd must find it, the other one 0.
fn assert_api(d: &Anycastd, lab: &Lab, api: &str) {
    for other in ["v3", "v4"] {
        let want = if other == api { 1.0 } else { 0.0 };
        assert_eq!(
            d.sample("anycastd_gobgp_api_info", &[("api", other)]),
            Some(want),
            "anycastd_gobgp_api_info{{api=\"{other}\"}} with a {api} gobgpd"
        );
    }
    assert_eq!(status(lab.metrics)["gobgp"]["api"], api);
    let table = ok(&d.cli(&["status"]));
    assert!(table.contains(&format!("(GoBGP {api} API)")), "{table}");
    assert!(
        d.log()
            .contains(&format!("gobgpd speaks the GoBGP {api} API")),
        "{}",
        d.log()
    );
}

fn core_scenarios(speaker: Release, router: Release) {
    eprintln!(
        "speaker GoBGP {}, router GoBGP {}",
        speaker.version(),
        router.version()
    );
    let mut lab = Lab::with(Gobgpd::speaker_of(speaker), router_with_password(router));
    let monitor = lab.router.monitor();
    let core = HttpTarget::start();
    let latency = HttpTarget::start();
    let password_file = lab.dir.path().join("md5.key");
    std::fs::write(&password_file, PASSWORD).expect("write the password file");
    let web = service("web", "200ms")
        .routes(&[V4, V6])
        .check(http_check(&core.url()).set("name", "core"))
        .check(
            http_check(&latency.url())
                .set("name", "latency")
                .set("on_failure", "degrade"),
        );
    let d = lab.start(
        &lab.config()
            .announcer("attributes", attributes())
            .announcer("drain_linger", "1s")
            .gobgp("peer_poll_interval", "200ms")
            .peer_set("router", "hold_time", "9s")
            .peer_set("router", "keepalive_interval", "3s")
            .peer_set(
                "router",
                "password_file",
                password_file.display().to_string(),
            )
            .service(web),
    );

    // Announced, both families, with every attribute of the up state.
    let started = Instant::now();
    for p in [V4, V6] {
        let e = monitor.wait_for(p, "the announcement with MED 100", SESSION, |e| {
            !e.withdrawal && med(e) == Some(100)
        });
        assert_eq!(as_path(&e.attrs), [65001, 65001, 65001], "{p}: {e:?}");
        assert_eq!(
            communities(&e.attrs),
            [65000 << 16 | 100, 0xFFFF_FF01],
            "{p}: {e:?}"
        );
        assert_eq!(large_communities(&e.attrs), [(65000, 1, 1)], "{p}: {e:?}");
    }
    eprintln!(
        "start -> both prefixes at the router: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_api(&d, &lab, speaker.api());
    // The ownership mark is in gobgpd, as a community set of its API's kind.
    let sets = lab.speaker.run_cli(&["policy", "community"]);
    assert!(sets.contains("anycastd-owner"), "{sets}");

    // The peer: its timers and password reached gobgpd, its counters the metrics, its
    // session the event follower.
    let peer = [("router_id", "10.255.0.1"), ("peer", "router")];
    wait_until("session_state 6 in the metrics", CHANGE, || {
        d.sample("anycastd_gobgp_peer_session_state", &peer) == Some(6.0)
    });
    wait_until("the negotiated hold time in /status", CHANGE, || {
        status(lab.metrics)["peers"][0]["hold_time_seconds"] == 9
    });
    assert_eq!(
        d.sample("anycastd_gobgp_peer_password_set_flag", &peer),
        Some(1.0)
    );
    assert_eq!(d.sample("anycastd_gobgp_peer_type", &peer), Some(1.0));
    for (name, at_least) in [
        ("anycastd_gobgp_sent_messages_open", 1.0),
        ("anycastd_gobgp_received_messages_open", 1.0),
        ("anycastd_gobgp_sent_messages_update", 1.0),
        ("anycastd_gobgp_received_messages_keepalive", 1.0),
        ("anycastd_gobgp_sent_messages_total", 3.0),
    ] {
        wait_until(&format!("{name} >= {at_least}"), CHANGE, || {
            d.sample(name, &peer).is_some_and(|v| v >= at_least)
        });
    }
    assert!(d.log().contains("BGP session established"), "{}", d.log());

    // Degraded: the attributes change in one UPDATE, never a withdraw.
    latency.set_status(503);
    let e = monitor.wait_for(V4, "MED 500", CHANGE, |e| {
        !e.withdrawal && med(e) == Some(500)
    });
    monitor.wait_for(V6, "MED 500", CHANGE, |e| {
        !e.withdrawal && med(e) == Some(500)
    });
    latency.set_status(200);
    monitor.wait_for(V4, "MED 100 again", CHANGE, |x| {
        x.at > e.at && !x.withdrawal && med(x) == Some(100)
    });
    for p in [V4, V6] {
        assert!(
            monitor.events(p).iter().all(|e| !e.withdrawal),
            "{p}: {:#?}",
            monitor.events(p)
        );
    }

    // Down: withdrawn, both families; up: back.
    core.set_status(503);
    let gone = monitor.wait_for(V4, "the withdraw", CHANGE, |e| e.withdrawal);
    monitor.wait_for(V6, "the withdraw", CHANGE, |e| e.withdrawal);
    core.set_status(200);
    let back = monitor.wait_for(V4, "the way back", SESSION, |e| {
        e.at > gone.at && !e.withdrawal
    });

    // Drained: GRACEFUL_SHUTDOWN, the linger, the withdraw; undrained: back.
    ok(&d.cli(&["drain", "web"]));
    let drained = monitor.wait_for(V4, "GRACEFUL_SHUTDOWN", CHANGE, |e| {
        e.at > back.at && has_gshut(e)
    });
    monitor.wait_for(V6, "GRACEFUL_SHUTDOWN", CHANGE, has_gshut);
    let withdrawn = monitor.wait_for(V4, "the withdraw after the linger", CHANGE, |e| {
        e.at > drained.at && e.withdrawal
    });
    let linger = withdrawn.at.duration_since(drained.at);
    assert!(linger >= Duration::from_millis(900), "{linger:?}");
    ok(&d.cli(&["undrain", "web"]));
    monitor.wait_for(V4, "the announcement after undrain", CHANGE, |e| {
        e.at > withdrawn.at && !e.withdrawal && !has_gshut(e)
    });

    // Someone changes anycastd's path by hand: reconcile puts it back.
    lab.speaker.run_cli(&[
        "global",
        "rib",
        "add",
        V4,
        "nexthop",
        "198.51.100.1",
        "med",
        "7",
    ]);
    wait_until_or(
        "the foreign change counted and repaired",
        CHANGE,
        || {
            d.sample("anycastd_gobgp_foreign_changes_total", &[]) >= Some(1.0)
                && lab
                    .router
                    .rib_path(V4)
                    .is_some_and(|p| med_of(&p["attrs"]) == Some(100))
        },
        || d.log(),
    );

    // gobgpd killed and restarted: anycastd sets it up again and the routes come back.
    lab.speaker.kill9();
    lab.wait(V4, false, SESSION);
    lab.speaker.restart();
    lab.wait(V4, true, SESSION);
    lab.wait(V6, true, SESSION);
    assert!(
        d.log().matches("started BGP in gobgpd").count() >= 2,
        "{}",
        d.log()
    );
    assert_api(&d, &lab, speaker.api());
}

#[test]
fn debian_3_10() {
    core_scenarios(Release::Debian, Release::Debian);
}

#[test]
fn upstream_3_37() {
    core_scenarios(Release::V3_37, Release::V3_37);
}

#[test]
fn upstream_4_8() {
    core_scenarios(Release::V4_8, Release::V4_8);
}

#[test]
fn a_4_8_speaker_to_a_3_10_router() {
    core_scenarios(Release::V4_8, Release::Debian);
}

#[test]
fn a_3_10_speaker_to_a_4_8_router() {
    core_scenarios(Release::Debian, Release::V4_8);
}

/// An operator upgrades gobgpd from Debian's 3.10 to 4.8.0 in place (same address), and
/// back to 3.37.0: anycastd finds the new API at the reconnect and sets it up again.
#[test]
fn a_gobgpd_replaced_in_place_by_another_major_version_is_picked_up() {
    let mut lab = Lab::of(Release::Debian, Release::V4_8);
    let target = HttpTarget::start();
    let d = lab.start(
        &lab.config()
            .routes(&[V4])
            .service(common::e2e::http_service("web", &target.url())),
    );
    lab.wait(V4, true, SESSION);
    assert_api(&d, &lab, "v3");

    for (release, api) in [(Release::V4_8, "v4"), (Release::V3_37, "v3")] {
        let replaced = Instant::now();
        lab.speaker.replace_with(release);
        wait_until("the new API found", SESSION, || {
            d.sample("anycastd_gobgp_api_info", &[("api", api)]) == Some(1.0)
        });
        lab.wait(V4, true, SESSION);
        eprintln!(
            "gobgpd replaced by {} -> the route at the router again: {:.1} s",
            release.version(),
            replaced.elapsed().as_secs_f64()
        );
        assert_api(&d, &lab, api);
    }
}

/// A gRPC server that is not gobgpd (etcd's): one clear error naming both APIs tried and
/// the versions supported, then the usual backoff: a few attempts, not a spin.
#[test]
fn a_grpc_server_that_is_no_gobgpd_is_named_and_retried_with_backoff() {
    let etcd = EtcdCluster::start(1);
    let endpoint = etcd.endpoints()[0]
        .trim_start_matches("http://")
        .to_string();
    let lab = Lab::of(Release::V4_8, Release::V4_8);
    let target = HttpTarget::start();
    let d = lab.start(
        &lab.config()
            .gobgp("address", endpoint.clone())
            .routes(&[V4])
            .service(common::e2e::http_service("web", &target.url())),
    );
    let said = "answers neither GoBGP 4's API (api.GoBgpService/GetBgp) nor GoBGP 3's (apipb.GobgpApi/GetBgp)";
    wait_until_or(
        "the error naming both APIs",
        CHANGE,
        || d.log().contains(said),
        || d.log(),
    );
    let first = Instant::now();
    let log = d.log();
    assert!(
        log.contains("anycastd drives GoBGP 3.10 to 3.37 and 4.0 to 4.8"),
        "{log}"
    );
    // The peer monitor may log the error first (its line names it too); the status has
    // the announcer's, once its own attempt fails.
    wait_until_or(
        "the status's gobgp.error naming both APIs",
        CHANGE,
        || {
            status(lab.metrics)["gobgp"]["error"]
                .as_str()
                .is_some_and(|e| e.contains(said))
        },
        || status(lab.metrics)["gobgp"].to_string(),
    );
    assert_eq!(d.sample("anycastd_gobgp_up", &[]), Some(0.0));
    // The announcer's attempts wait 0.2, 0.4, 0.8 s...: its fourth comes at least 1.4 s
    // after its first. The log says each one at DEBUG (the harness runs at debug level),
    // the first at WARN; the peer monitor's attempts are its own.
    let attempts = |d: &Anycastd| {
        d.log()
            .lines()
            .filter(|l| l.contains(said) && l.contains("loop_name=announcer"))
            .count()
    };
    wait_until(
        "the announcer's fourth attempt",
        Duration::from_secs(20),
        || attempts(&d) >= 4,
    );
    let spread = first.elapsed();
    assert!(
        spread >= Duration::from_millis(1200),
        "4 attempts in {spread:?}:\n{}",
        d.log()
    );
    eprintln!("a gRPC server that is no gobgpd: 4 attempts in {spread:?}");
}
