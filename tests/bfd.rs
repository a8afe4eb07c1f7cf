//! BFD against real routers (issue 24, SPEC 16), in network namespaces: the host (speaker
//! gobgpd 4.8.0 and anycastd) and the router on one switch (see `common/bfd.rs`). Every
//! figure is read at the router's RIB: the moment the anycast prefix left it.
//!
//! - A GoBGP 4.8.0 router with BFD 300 ms x 3: BFD up on both sides, in `/status` and the
//!   metrics; the host's link cut takes the prefix away in under 2 s (BFD detection 0.9 s),
//!   anycastd logs the session lost to BFD, and the route comes back with the link.
//! - The same cut without BFD, in the same test, waits for the hold time (9 s).
//! - The host frozen (SIGSTOP of gobgpd and anycastd): gone in under 2 s; back on SIGCONT.
//!   gobgpd killed: gone at once (its kernel closes the session; BFD plays no part).
//! - FRR's bgpd and bfdd as the router: the same cut and freeze.
//! - A gobgpd without BFD (Debian's 3.10, GoBGP 4.5.0) is found out: ERROR, `/status`,
//!   `anycastd_gobgp_peer_bfd_supported 0`, and the session still works.
//! - A reload changing the BFD timers: gobgpd keeps the BGP session; the router resets it
//!   once.
//!
//! The labs run one at a time (the timings are the point); each needs root (`ip netns`).

pub mod common {
    pub mod bfd;
    pub mod config;
    pub mod e2e;
    pub mod gobgpd;
    pub mod lab;
    pub mod netns;
    pub mod prom;
}

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::bfd::{
    Frr, GobgpRouter, Host, Net, PREFIX, Router, SESSION, Timers, bfd_yaml, host_config,
    wait_route, wait_steady,
};
use common::config::{check, service};
use common::e2e::Lab;
use common::gobgpd::Release;
use common::lab::{wait_until, wait_until_or};

const BFD_300: Timers = Timers::ms(300, 3);
/// How far past the BFD detection time a route may leave: the router's UPDATE
/// processing, and two cores shared with other work.
const MARGIN: Duration = Duration::from_millis(1100);
/// How long the BGP session must have been up before a cut is timed.
const STEADY: Duration = Duration::from_secs(2);

/// One lab at a time: the figures are timings.
fn serial() -> MutexGuard<'static, ()> {
    static LAB: Mutex<()> = Mutex::new(());
    LAB.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Waits until anycastd's `/status` shows the router's BFD up, and checks what it says
/// and the metrics.
fn assert_bfd_up_at_host(host: &Host, timers: Timers) {
    // The peer table is polled: a reload shows at the next poll.
    wait_until_or(
        &format!("BFD {} up in anycastd's /status", timers.describe()),
        SESSION,
        || {
            host.bfd_status()
                .is_some_and(|b| b["state"] == "up" && b["configured"] == timers.describe())
        },
        || format!("/status: {:?}\n{}", host.status(), host.context()),
    );
    let b = host.bfd_status().expect("the peer's BFD in /status");
    assert_eq!(b["supported"], true, "{b}");
    // `anycastd status` (it reads /status from the metrics address, in the namespace).
    let out = host.cli(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(&format!("UP {}", timers.describe())),
        "anycastd status:\n{text}{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        host.context()
    );
    // Counters move: a few packets every interval.
    let sent = b["packets_sent"].as_u64().unwrap_or(0);
    wait_until(
        "BFD packets counted in /status",
        Duration::from_secs(10),
        || {
            host.bfd_status().is_some_and(|b| {
                b["packets_sent"].as_u64().unwrap_or(0) > sent
                    && b["packets_received"].as_u64().unwrap_or(0) > 0
            })
        },
    );
    let peer = [("peer", "router")];
    wait_until(
        "anycastd_gobgp_peer_bfd_state 4 (up)",
        Duration::from_secs(10),
        || host.sample("anycastd_gobgp_peer_bfd_state", &peer) == Some(4.0),
    );
    assert_eq!(
        host.sample("anycastd_gobgp_peer_bfd_supported", &peer),
        Some(1.0)
    );
    assert!(
        host.sample("anycastd_gobgp_peer_bfd_packets_received_total", &peer)
            .is_some_and(|n| n > 0.0)
    );
}

/// Waits until the route is at `router` (`who`), BFD 300 ms x 3 up on both sides, and the
/// route steady: the start of a link cut. The steady lab first: FRR resets a session just
/// up once (see [`wait_steady`]), and what each side says is read after that.
fn up_with_bfd(router: &dyn Router, host: &Host, who: &str) {
    wait_route(router, host, true, SESSION);
    wait_steady(router, host, true, STEADY, SESSION);
    // FRR's reset, if it came (README, BFD: 22 starts in 24 here): when, and when back.
    let log = host.anycastd.log();
    let at = |l: &str| l.split_whitespace().next().unwrap_or_default().to_string();
    let sessions: Vec<String> = log
        .lines()
        .filter(|l| l.contains("BGP session lost to BFD") || l.contains("BGP session established"))
        .map(|l| {
            format!(
                "{} {}",
                at(l),
                if l.contains("lost") { "lost" } else { "up" }
            )
        })
        .collect();
    eprintln!("{who}: steady; the session so far: {}", sessions.join(", "));
    let host_side = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_bfd_up_at_host(host, BFD_300)
    }));
    if let Err(e) = host_side {
        eprintln!("{who}'s side:\n{}", router.context());
        std::panic::resume_unwind(e);
    }
    wait_until_or(
        &format!("BFD up at {who}"),
        Duration::from_secs(10),
        || router.bfd_up(),
        || router.context(),
    );
}

/// Cuts the host's link and returns how long the prefix took to leave the router.
fn cut_and_time(net: &Net, router: &dyn Router, deadline: Duration) -> Duration {
    let t0 = Instant::now();
    net.cut();
    router.gone_after(PREFIX, t0, deadline)
}

#[test]
fn link_cut_with_bfd_against_the_hold_time() {
    let _one = serial();
    // With BFD 300 ms x 3.
    let with = {
        let net = Net::new();
        let router = GobgpRouter::start(Release::V4_8, &net, Some(BFD_300), 9);
        let host = Host::start(&net, Release::V4_8, |d| host_config(d, Some(BFD_300), "9s"));
        up_with_bfd(&router, &host, "the router");
        let gone = cut_and_time(&net, &router, Duration::from_secs(15));
        eprintln!(
            "link cut, BFD {}: gone at the router after {gone:?}",
            BFD_300.describe()
        );
        assert!(
            gone < BFD_300.detection() + MARGIN,
            "with BFD {} the route left the router after {gone:?}\n{}",
            BFD_300.describe(),
            router.context()
        );
        wait_until_or(
            "anycastd's log of the session lost to BFD",
            Duration::from_secs(15),
            || {
                host.anycastd.log().lines().any(|l| {
                    l.contains(
                        "BGP session lost to BFD: the peer's BFD packets stopped or said down",
                    ) && l.contains("BFD is down")
                })
            },
            || host.context(),
        );
        net.mend();
        let back = wait_route(&router, &host, true, SESSION);
        eprintln!("link mended: the route back at the router after {back:?}");
        assert_bfd_up_at_host(&host, BFD_300);
        gone
    };
    // The same cut without BFD: the router waits for its hold timer (9 s; the last
    // keepalive came up to 3 s before the cut).
    let net = Net::new();
    let router = GobgpRouter::start(Release::V4_8, &net, None, 9);
    let host = Host::start(&net, Release::V4_8, |d| host_config(d, None, "9s"));
    wait_route(&router, &host, true, SESSION);
    assert!(
        host.bfd_status().is_none_or(|b| b.is_null()),
        "no BFD configured, none in /status: {:?}",
        host.status()
    );
    wait_steady(&router, &host, false, STEADY, SESSION);
    let without = cut_and_time(&net, &router, Duration::from_secs(30));
    eprintln!("link cut, no BFD, hold time 9 s: gone at the router after {without:?}");
    assert!(
        without >= Duration::from_secs(5) && without <= Duration::from_secs(12),
        "without BFD the route should leave at the hold time (6 to 9 s after the cut), it left after {without:?}"
    );
    assert!(
        without > with * 4,
        "BFD ({with:?}) should beat the hold time ({without:?}) by far"
    );
    net.mend();
    wait_route(&router, &host, true, SESSION);
}

#[test]
fn host_freeze_with_bfd() {
    let _one = serial();
    let net = Net::new();
    let router = GobgpRouter::start(Release::V4_8, &net, Some(BFD_300), 9);
    let host = Host::start(&net, Release::V4_8, |d| host_config(d, Some(BFD_300), "9s"));
    wait_route(&router, &host, true, SESSION);
    assert_bfd_up_at_host(&host, BFD_300);
    wait_until("BFD up at the router", Duration::from_secs(10), || {
        router.bfd_up()
    });
    wait_steady(&router, &host, true, STEADY, SESSION);
    let t0 = Instant::now();
    host.freeze();
    let gone = router.gone_after(PREFIX, t0, Duration::from_secs(15));
    eprintln!(
        "host frozen, BFD {}: gone at the router after {gone:?}",
        BFD_300.describe()
    );
    assert!(
        gone < BFD_300.detection() + MARGIN,
        "frozen host: the route left after {gone:?}\n{}",
        router.context()
    );
    host.thaw();
    let back = wait_route(&router, &host, true, SESSION);
    eprintln!("host thawed: the route back at the router after {back:?}");
    assert_bfd_up_at_host(&host, BFD_300);
    // For the README's table: gobgpd itself crashing needs no BFD, its kernel closes the
    // TCP session and the router drops the routes at once.
    wait_steady(&router, &host, true, STEADY, SESSION);
    let t0 = Instant::now();
    common::lab::send_signal(host.gobgpd.pid(), "KILL");
    let gone = router.gone_after(PREFIX, t0, Duration::from_secs(15));
    eprintln!("speaker gobgpd killed (SIGKILL): gone at the router after {gone:?}");
    assert!(
        gone < Duration::from_millis(500),
        "a killed gobgpd's session closes at once; the route left after {gone:?}"
    );
}

#[test]
fn frr_router_link_cut_and_freeze() {
    let _one = serial();
    let net = Net::new();
    let frr = Frr::start(&net, BFD_300, 9);
    let host = Host::start(&net, Release::V4_8, |d| host_config(d, Some(BFD_300), "9s"));
    up_with_bfd(&frr, &host, "FRR");
    let gone = cut_and_time(&net, &frr, Duration::from_secs(15));
    eprintln!(
        "FRR, link cut, BFD {}: gone after {gone:?}",
        BFD_300.describe()
    );
    assert!(
        gone < BFD_300.detection() + MARGIN,
        "FRR: the route left after {gone:?}\n{}",
        frr.context()
    );
    net.mend();
    let back = wait_route(&frr, &host, true, SESSION);
    eprintln!("FRR, link mended: the route back after {back:?}");
    wait_until_or(
        "BFD up at FRR again",
        Duration::from_secs(15),
        || frr.bfd_up(),
        || frr.context(),
    );
    assert_bfd_up_at_host(&host, BFD_300);
    wait_steady(&frr, &host, true, STEADY, SESSION);
    let t0 = Instant::now();
    host.freeze();
    let gone = frr.gone_after(PREFIX, t0, Duration::from_secs(15));
    eprintln!(
        "FRR, host frozen, BFD {}: gone after {gone:?}",
        BFD_300.describe()
    );
    assert!(
        gone < BFD_300.detection() + MARGIN,
        "FRR, frozen host: the route left after {gone:?}\n{}",
        frr.context()
    );
    host.thaw();
    let back = wait_route(&frr, &host, true, SESSION);
    eprintln!("FRR, host thawed: the route back after {back:?}");
}

#[test]
fn gobgpd_without_bfd_is_found_out() {
    let _one = serial();
    for release in [Release::Debian, Release::V4_5] {
        let lab = Lab::of(release, Release::V4_8);
        let config = lab
            .config()
            .routes(&[PREFIX])
            .announcer("bfd", bfd_yaml(BFD_300))
            .gobgp("peer_poll_interval", "200ms")
            .service(
                service("web", "1s").check(check("assigned_address").spec("ipv4", "127.0.0.1")),
            );
        let mut d = lab.start(&config);
        d.wait_healthy(Duration::from_secs(20));
        // The session works, without BFD.
        lab.wait(PREFIX, true, common::e2e::SESSION);
        let v = release.version();
        wait_until_or(
            &format!("anycastd's ERROR that gobgpd {v} runs no BFD"),
            Duration::from_secs(10),
            || {
                d.log()
                    .lines()
                    .any(|l| l.contains("ERROR") && l.contains("does not run BFD"))
            },
            || d.log(),
        );
        let s = common::lab::status(d.metrics);
        let error = s["gobgp"]["bfd_error"].as_str().unwrap_or_default();
        assert!(
            error.contains("does not run BFD") && error.contains("router"),
            "gobgpd {v}: /status gobgp.bfd_error: {s}"
        );
        let peer = [("peer", "router")];
        wait_until_or(
            "anycastd_gobgp_peer_bfd_supported 0",
            Duration::from_secs(10),
            || d.sample("anycastd_gobgp_peer_bfd_supported", &peer) == Some(0.0),
            || d.metrics_text(),
        );
        // The peer table is polled: the session shows at the next poll.
        wait_until_or(
            "the peer established, BFD not supported, in /status",
            Duration::from_secs(10),
            || {
                let p = &common::lab::status(d.metrics)["peers"][0];
                p["session_state"] == "ESTABLISHED" && p["bfd"]["supported"] == false
            },
            || format!("gobgpd {v}: {}", common::lab::status(d.metrics)),
        );
        eprintln!("gobgpd {v}: {error}");
    }
}

#[test]
fn reload_changing_bfd_timers() {
    let _one = serial();
    let net = Net::new();
    let router = GobgpRouter::start(Release::V4_8, &net, Some(BFD_300), 9);
    let host = Host::start(&net, Release::V4_8, |d| host_config(d, Some(BFD_300), "9s"));
    wait_route(&router, &host, true, SESSION);
    assert_bfd_up_at_host(&host, BFD_300);
    wait_until("BFD up at the router", Duration::from_secs(10), || {
        router.bfd_up()
    });
    wait_steady(&router, &host, true, STEADY, SESSION);
    let speaker_log = host.gobgpd.log().len();
    let faster = Timers::ms(200, 3);
    host.anycastd
        .rewrite_config(&host_config(host.dir.path(), Some(faster), "9s").to_string());
    let t0 = Instant::now();
    host.anycastd.signal("HUP");
    // gobgpd has the new timers: ListPeer at the speaker says so.
    wait_until_or(
        "the speaker's BFD at 200 ms",
        Duration::from_secs(15),
        || {
            host.gobgpd
                .cli(&["neighbor", common::bfd::ROUTER, "-j"])
                .and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok())
                .is_some_and(|n| {
                    n["conf"]["bfd"]["desired_minimum_tx_interval"] == 200_000
                        || n["bfd"]["desired_minimum_tx_interval"] == 200_000
                })
        },
        || host.context(),
    );
    assert_bfd_up_at_host(&host, faster);
    // Whatever the router does about it happens within its detection time and a
    // reconnect: steady again, 3 s after the reload or later.
    wait_until("3 s after the reload", Duration::from_secs(5), || {
        t0.elapsed() >= Duration::from_secs(3)
    });
    wait_steady(&router, &host, true, STEADY, SESSION);
    let log = host.anycastd.log();
    assert!(
        log.contains("BFD settings changed"),
        "anycastd warns of the BFD change:\n{log}"
    );
    // The speaker did not reset the session itself: no NOTIFICATION sent, no peer
    // deleted and added again; gobgpd changed BFD in place.
    let after = host.gobgpd.log()[speaker_log..].to_string();
    assert!(
        after.contains("Update BFD configuration")
            && !after.contains("sent notification")
            && !after.contains("Delete a peer"),
        "the speaker reset the session on a BFD-only change:\n{after}"
    );
    // What the router did (printed, not held: it depends on how long the speaker's new
    // BFD session stays silent against the router's detection time).
    let events = router.events(PREFIX);
    let left = events.iter().find(|e| e.withdrawal && e.at >= t0);
    let back = left.and_then(|l| events.iter().find(|e| !e.withdrawal && e.at > l.at));
    eprintln!(
        "reload 300ms x 3 -> 200ms x 3: the router reset the BGP session for BFD: {}; the route left it {:?} after the reload and came back {:?} later\nspeaker log since the reload:\n{after}\nrouter {}",
        router.gobgpd.log().contains("BFD is down"),
        left.map(|l| l.at.duration_since(t0)),
        left.zip(back).map(|(l, b)| b.at.duration_since(l.at)),
        router.gobgpd.log_tail()
    );
}
