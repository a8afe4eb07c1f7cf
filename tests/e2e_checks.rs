//! End-to-end, issue 25: an NTP service and a DNS service whose routes leave the router when
//! their server goes bad, and come back when it recovers. The real `anycastd` binary drives a
//! real gobgpd peering with a second one (the router), whose RIB the test reads; the servers
//! are real too: chronyd made unsynchronised with `chronyc local off`, the steerable NTP
//! server switched to leap indicator 3, and a knotd secondary whose zone goes stale (its
//! transfers frozen while the primary's serial moves on) and catches up.

pub mod common {
    pub mod config;
    pub mod e2e;
    pub mod gobgpd;
    pub mod knot;
    pub mod lab;
    pub mod ntp;
    pub mod prom;
}

use std::time::Instant;

use common::config::{check, service};
use common::e2e::{CHANGE, Lab, SESSION};
use common::knot::primary_and_secondary;
use common::lab::{Anycastd, wait_until_or};
use common::ntp::{Chrony, Mode, Steerable};

const CHRONY: &str = "192.0.2.123/32";
const STEERED: &str = "192.0.2.124/32";
const ZONE: &str = "192.0.2.53/32";

/// Waits for `prefix` to leave (or reach) the router after a change made just before
/// `since`; prints how long that took.
fn follows(lab: &Lab, prefix: &str, present: bool, since: Instant, what: &str) {
    lab.wait(prefix, present, CHANGE);
    eprintln!(
        "{what}: {prefix} {} the router after {:?}",
        if present { "back at" } else { "gone from" },
        since.elapsed()
    );
}

/// The reason the daemon logged for the check's failure contains `why`.
fn logged(d: &Anycastd, why: &str) {
    wait_until_or(
        &format!("the log to say {why:?}"),
        CHANGE,
        || d.log().contains(why),
        || d.log(),
    );
}

#[test]
fn ntp_and_dns_routes_follow_their_servers() {
    let lab = Lab::new();
    let chrony = Chrony::start();
    let steered = Steerable::start(Mode::Good);
    let (primary, secondary) = primary_and_secondary(2024010101);
    let ntp = |name: &str, server: std::net::SocketAddr, route: &str| {
        service(name, "200ms").routes(&[route]).check(
            check("ntp")
                .spec("server", server)
                .spec("max_offset", "500ms")
                .spec("timeout", "500ms"),
        )
    };
    let d = lab.start(
        &lab.config()
            .service(ntp("ntp", chrony.addr, CHRONY))
            .service(ntp("ntp-lab", steered.addr, STEERED))
            .service(
                service("dns", "200ms").routes(&[ZONE]).check(
                    check("dns_lookup")
                        .set("name", "zone")
                        .spec("query", "example.test")
                        .spec("type", "SOA")
                        .spec("resolver", secondary.addr)
                        .spec("soa_serial_of", primary.addr)
                        .spec("timeout", "500ms"),
                ),
            ),
    );
    for p in [CHRONY, STEERED, ZONE] {
        lab.wait(p, true, SESSION);
    }
    assert_eq!(
        d.sample(
            "anycastd_check_ntp_stratum",
            &[("service", "ntp"), ("check", "ntp")]
        ),
        Some(8.0),
        "chronyd serves at stratum 8"
    );

    // chronyd loses its reference: its route goes, the others stay.
    let t = Instant::now();
    chrony.unsynchronise();
    follows(&lab, CHRONY, false, t, "chronyd unsynchronised");
    logged(&d, "not synchronised (leap indicator 3");
    let rib = lab.router.rib_prefixes();
    assert!(rib.contains(STEERED) && rib.contains(ZONE), "{rib:?}");
    let t = Instant::now();
    chrony.resynchronise();
    follows(&lab, CHRONY, true, t, "chronyd synchronised again");

    // Our own server says leap 3.
    let t = Instant::now();
    steered.set(Mode::Leap3);
    follows(&lab, STEERED, false, t, "leap indicator 3");
    let t = Instant::now();
    steered.set(Mode::Good);
    follows(&lab, STEERED, true, t, "leap indicator 0");

    // The secondary's zone goes stale: its transfers frozen, the primary moves on.
    secondary.freeze();
    let t = Instant::now();
    primary.set_serial(2024010102);
    follows(&lab, ZONE, false, t, "zone stale");
    logged(
        &d,
        "zone is stale: SOA serial 2024010101, the primary's 2024010102",
    );
    assert!(lab.router.rib_prefixes().contains(CHRONY));
    let t = Instant::now();
    secondary.thaw(2024010102);
    follows(&lab, ZONE, true, t, "zone caught up");
    for p in [CHRONY, STEERED, ZONE] {
        assert!(lab.router.rib_prefixes().contains(p), "{p}");
    }
}
