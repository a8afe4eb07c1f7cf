//! The fleet guard end to end (issue 16): a 3-member etcd cluster, three sites (a speaker
//! gobgpd and an anycastd each, each with its own target) announcing one prefix to one
//! router gobgpd. Every assertion is on the router's RIB: how many sites' paths it has.

pub mod common {
    pub mod config;
    pub mod etcd;
    pub mod gobgpd;
    pub mod lab;
    pub mod prom;
}

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::config::{check, config, map, peer, service};
use common::etcd::EtcdCluster;
use common::gobgpd::{Gobgpd, RouterOpts, require_gobgpd};
use common::lab::{Anycastd, HttpTarget, free_tcp_port, try_status, wait_until};

const PREFIX: &str = "192.0.2.200/32";
/// The second prefix of the sites of `site_with` given `fleet.prefixes`.
const SECOND: &str = "192.0.2.201/32";
const SESSION: Duration = Duration::from_secs(60);
const CHANGE: Duration = Duration::from_secs(20);

struct Site {
    speaker: Gobgpd,
    target: HttpTarget,
    daemon: Anycastd,
    _dir: tempfile::TempDir,
}

/// The number of paths the router has for the prefix (one per site announcing it).
fn paths(router: &Gobgpd) -> usize {
    common::gobgpd::rib_path_count(router.api_port(), PREFIX).unwrap_or(0)
}

fn wait_paths(router: &Gobgpd, n: usize, deadline: Duration) {
    wait_until(
        &format!("{n} paths of {PREFIX} at the router"),
        deadline,
        || paths(router) == n,
    );
}

fn site(i: u8, router: &Gobgpd, etcd: &[String], min_sites: u32, on_unreachable: &str) -> Site {
    site_with(
        i,
        router,
        etcd,
        min_sites,
        on_unreachable,
        None,
        Some("{ med: 500 }"),
    )
}

/// [`site`], with `fleet.prefixes` when given, and `degraded` attributes (none: those of up).
fn site_with(
    i: u8,
    router: &Gobgpd,
    etcd: &[String],
    min_sites: u32,
    on_unreachable: &str,
    covered: Option<&[&str]>,
    degraded: Option<&str>,
) -> Site {
    let speaker = Gobgpd::speaker();
    let target = HttpTarget::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
    let dir_path = dir.path().display();
    let config = config(&format!("10.255.0.{i}"), &format!("127.0.0.{i}"), 65001)
        .announcer("next_hop", format!("198.51.100.{i}"))
        .announcer("state_directory", format!("{dir_path}/state"))
        .announcer("drain_linger", "1s")
        .peer(peer("router", "127.0.0.1", 65000).set("remote_port", router.bgp_port()))
        .gobgp("address", format!("127.0.0.1:{}", speaker.api_port()))
        .gobgp("reconcile_interval", "1s")
        .service(
            // A second prefix with `fleet.prefixes`, so that one may be covered and the
            // other not.
            service("web", "200ms")
                .routes(if covered.is_some() {
                    &[PREFIX, SECOND][..]
                } else {
                    &[PREFIX][..]
                })
                .check(
                    check("http_2xx")
                        .spec("url", target.url())
                        .spec("timeout", "300ms"),
                ),
        )
        .metrics("address", metrics)
        .control("socket", format!("{dir_path}/control.sock"))
        .fleet(
            "etcd",
            map().set("endpoints", etcd.to_vec()).set("timeout", "1s"),
        )
        .fleet("site", format!("site{i}"))
        .fleet("min_sites", min_sites)
        .fleet("lease_ttl", "3s")
        .fleet("on_unreachable", on_unreachable);
    let config = match degraded {
        Some(d) => config.announcer("attributes", map().set("degraded", d)),
        None => config,
    };
    let config = match covered {
        Some(p) => config.fleet(
            "prefixes",
            p.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        ),
        None => config,
    }
    .to_string();
    let daemon = Anycastd::start(dir.path(), &config, metrics);
    Site {
        speaker,
        target,
        daemon,
        _dir: dir,
    }
}

/// Watches the router's path count in the background; returns the lowest it saw.
struct Floor {
    low: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Floor {
    fn watch(api: u16) -> Floor {
        let low = Arc::new(AtomicUsize::new(usize::MAX));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (l, s) = (low.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                // Only readings of a RIB the CLI really printed count.
                if let Some(n) = common::gobgpd::rib_path_count(api, PREFIX) {
                    l.fetch_min(n, Ordering::SeqCst);
                }
            }
        });
        Floor {
            low,
            stop,
            thread: Some(thread),
        }
    }

    fn lowest(mut self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.low.load(Ordering::SeqCst)
    }
}

#[test]
fn three_sites_never_withdraw_a_prefix_everywhere() {
    require_gobgpd();
    let mut etcd = EtcdCluster::start(3);
    let endpoints = etcd.endpoints();
    let neighbors: Vec<(IpAddr, u32)> = (2..=3)
        .map(|i| (format!("127.0.0.{i}").parse().expect("ip"), 65001))
        .collect();
    let router = Gobgpd::router_with(
        RouterOpts {
            asn: 65000,
            router_id: "10.255.0.100".parse().expect("router id"),
            listen_addr: "127.0.0.1".parse().expect("listen addr"),
            neighbor_addr: "127.0.0.1".parse().expect("neighbor addr"),
            neighbor_asn: 65001,
        },
        &neighbors,
    );
    // Every site holds while etcd cannot be reached (on_unreachable: hold); site 3 is
    // restarted with `withdraw` for the last part.
    let mut sites: Vec<Site> = (1..=3)
        .map(|i| site(i, &router, &endpoints, 1, "hold"))
        .collect();
    wait_paths(&router, 3, SESSION);
    wait_until("each site's claim seen by all", CHANGE, || {
        sites.iter().all(|s| {
            try_status(s.daemon.metrics).is_some_and(|st| {
                st["fleet"]["prefixes"][0]["sites"]
                    .as_array()
                    .is_some_and(|a| a.len() == 3)
            })
        })
    });

    // 1. All three targets fail in the same instant, several times: one path always stays
    //    (min_sites 1: a site withdraws only while another still announces).
    let rounds: usize = std::env::var("FLEET_E2E_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    for round in 0..rounds {
        let floor = Floor::watch(router.api_port());
        let killed = Instant::now();
        for s in &mut sites {
            s.target.set_status(503);
        }
        wait_paths(&router, 1, CHANGE);
        // Held sites ask again every round: still one path a few rounds later.
        wait_until("the holding site to say so", CHANGE, || {
            sites.iter().any(|s| {
                s.daemon.log().contains("holding 192.0.2.200/32")
                    && try_status(s.daemon.metrics)
                        .is_some_and(|st| st["fleet"]["prefixes"][0]["held_here"] == true)
            })
        });
        assert_eq!(paths(&router), 1);
        for s in &mut sites {
            s.target.set_status(200);
        }
        wait_paths(&router, 3, CHANGE);
        let lowest = floor.lowest();
        eprintln!(
            "round {round}: all three failed at once; the router kept at least {lowest} path(s); back to 3 after {:.1} s",
            killed.elapsed().as_secs_f64()
        );
        assert_eq!(lowest, 1, "round {round}: the prefix left the router");
    }

    // 2. Drains go through the same guard: drained everywhere, one site stays (with its
    //    draining attributes); `--force` goes past it.
    for s in &sites {
        let out = s.daemon.cli(&["drain", "--all"]);
        assert!(out.status.success(), "{out:?}");
    }
    wait_paths(&router, 1, CHANGE);
    for s in &sites {
        assert!(s.daemon.cli(&["undrain", "--all"]).status.success());
    }
    wait_paths(&router, 3, CHANGE);
    for s in &sites {
        assert!(
            s.daemon
                .cli(&["drain", "--all", "--force"])
                .status
                .success()
        );
    }
    wait_paths(&router, 0, CHANGE);
    for s in &sites {
        assert!(s.daemon.cli(&["undrain", "--all"]).status.success());
    }
    wait_paths(&router, 3, CHANGE);

    // 3. One etcd member down: the guard still works.
    etcd.stop(0);
    let floor = Floor::watch(router.api_port());
    for s in &mut sites {
        s.target.set_status(503);
    }
    wait_paths(&router, 1, CHANGE);
    for s in &mut sites {
        s.target.set_status(200);
    }
    wait_paths(&router, 3, CHANGE);
    assert_eq!(floor.lowest(), 1, "with one etcd member down");

    // 4. Every member down: sites 1 and 2 hold, site 3 (on_unreachable: withdraw) goes.
    //    (withdraw gives up the guarantee while etcd cannot be reached: the site's claim
    //    stays in etcd until its lease expires, and the others may count it.)
    let old = sites.pop().expect("site 3");
    drop(old);
    wait_paths(&router, 2, CHANGE);
    sites.push(site(3, &router, &endpoints, 1, "withdraw"));
    wait_paths(&router, 3, SESSION);
    etcd.stop(1);
    etcd.stop(2);
    wait_until("the sites to see etcd gone", CHANGE, || {
        sites
            .iter()
            .all(|s| try_status(s.daemon.metrics).is_some_and(|st| st["fleet"]["etcd_up"] == false))
    });
    for s in &mut sites {
        s.target.set_status(503);
    }
    wait_paths(&router, 2, CHANGE);
    wait_until(
        "sites 1 and 2 to say they hold for want of etcd",
        CHANGE,
        || {
            sites[..2]
                .iter()
                .all(|s| s.daemon.log().contains("fleet.on_unreachable is hold"))
        },
    );
    assert_eq!(paths(&router), 2);
    for s in &mut sites {
        s.target.set_status(200);
    }
    wait_paths(&router, 3, CHANGE);
}

/// The router of the two-site tests: it peers with 127.0.0.1 and 127.0.0.2.
fn router_of_two() -> Gobgpd {
    Gobgpd::router_with(
        RouterOpts {
            asn: 65000,
            router_id: "10.255.0.100".parse().expect("router id"),
            listen_addr: "127.0.0.1".parse().expect("listen addr"),
            neighbor_addr: "127.0.0.1".parse().expect("neighbor addr"),
            neighbor_asn: 65001,
        },
        &[("127.0.0.2".parse().expect("ip"), 65001)],
    )
}

/// Issue 20: min_sites 1, two sites; site 1's gobgpd killed, then site 2's service fails.
/// Site 2 counted site 1's claim, withdrew, and the prefix left every router. A site's
/// claims count only while a router sees its routes: site 1's leave etcd when its gobgpd
/// goes, and site 2 holds; once site 1 is back, site 2 may go.
#[test]
fn a_site_whose_routes_reach_no_router_is_not_counted() {
    require_gobgpd();
    let etcd = EtcdCluster::start(1);
    let endpoints = etcd.endpoints();
    let router = router_of_two();
    let mut sites: Vec<Site> = (1..=2)
        .map(|i| site(i, &router, &endpoints, 1, "hold"))
        .collect();
    wait_paths(&router, 2, SESSION);
    wait_until("both claims seen", CHANGE, || {
        try_status(sites[1].daemon.metrics).is_some_and(|st| {
            st["fleet"]["prefixes"][0]["sites"]
                .as_array()
                .is_some_and(|a| a.len() == 2)
        })
    });

    // Site 1's gobgpd dies: its path leaves the router, its claim leaves etcd.
    sites[0].speaker.kill9();
    wait_paths(&router, 1, CHANGE);
    let unseen = wait_until(
        "site 1's claim out of etcd, as site 2 sees it",
        CHANGE,
        || {
            try_status(sites[1].daemon.metrics).is_some_and(|st| {
                st["fleet"]["prefixes"][0]["sites"]
                    .as_array()
                    .is_some_and(|a| a.len() == 1)
            })
        },
    );
    eprintln!("site 1's gobgpd killed -> its claim gone, as site 2 sees it: {unseen:?}");
    let st = try_status(sites[0].daemon.metrics).expect("site 1's status");
    assert!(
        st["fleet"]["unseen"]
            .as_str()
            .is_some_and(|u| u.contains("gobgpd is not usable")),
        "{st:#}"
    );
    assert!(sites[0].daemon.log().contains("its claims leave etcd"));

    // Site 2's service fails: it is the last site a router sees, and holds.
    let floor = Floor::watch(router.api_port());
    sites[1].target.set_status(503);
    wait_until("site 2 to hold", CHANGE, || {
        sites[1]
            .daemon
            .log()
            .contains("no other site announces it: withdrawing would take it off every router")
    });
    // Several of its rounds (200 ms) and retries later, the path is still there.
    wait_until("site 2 to retry", CHANGE, || {
        try_status(sites[1].daemon.metrics)
            .is_some_and(|st| st["fleet"]["prefixes"][0]["held_here"] == true)
    });
    wait_rounds(&sites[1], 5);
    assert_eq!(floor.lowest(), 1, "the prefix left the router");

    // Site 1 back: its claim counts again, and site 2 may withdraw.
    sites[0].speaker.restart();
    wait_until("site 2 to withdraw", SESSION, || {
        sites[1]
            .daemon
            .log()
            .contains("fleet guard: this site may withdraw")
    });
    wait_paths(&router, 1, CHANGE);
    assert!(sites[0].daemon.log().contains("claiming again"));
}

/// Waits until the site's service has finished `n` more rounds (200 ms each here): time for
/// something that should not happen to show.
fn wait_rounds(site: &Site, n: usize) {
    let mut seen = std::collections::BTreeSet::new();
    wait_until(&format!("{n} more rounds"), CHANGE, || {
        if let Some(r) = try_status(site.daemon.metrics)
            .and_then(|st| st["services"][0]["last_round"].as_str().map(str::to_string))
        {
            seen.insert(r);
        }
        seen.len() > n
    });
}

/// Issue 20: `fleet.prefixes` limits the guard. A prefix it does not list is withdrawn as if
/// there were no guard (a prefix only one site announces was held for a dead service for
/// good); one it lists is held, by a site alone. `anycastd drain` says which.
#[test]
fn the_guard_covers_only_the_prefixes_it_lists() {
    require_gobgpd();
    let etcd = EtcdCluster::start(1);
    let endpoints = etcd.endpoints();
    let router = router_of_two();
    let s = site_with(
        1,
        &router,
        &endpoints,
        1,
        "hold",
        Some(&[SECOND]),
        Some("{ med: 500 }"),
    );
    let second = |r: &Gobgpd| common::gobgpd::rib_path_count(r.api_port(), SECOND).unwrap_or(0);
    wait_paths(&router, 1, SESSION);
    wait_until("the second prefix at the router", CHANGE, || {
        second(&router) == 1
    });
    let out = s.daemon.cli(&["drain", "web"]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    assert!(
        said.contains("the fleet guard will hold 192.0.2.201/32 when the linger ends (no other sites announce it"),
        "{said}"
    );
    assert!(!said.contains("will hold 192.0.2.200/32"), "{said}");
    // Not covered: withdrawn after the linger, although no other site announces it;
    // covered: held with its draining attributes.
    wait_paths(&router, 0, CHANGE);
    wait_until("the guard to hold the covered prefix", CHANGE, || {
        s.daemon.log().contains("holding 192.0.2.201/32")
    });
    assert_eq!(second(&router), 1);
    // Said as a drain's hold: draining, until it is undrained.
    let log = s.daemon.log();
    let said = log
        .lines()
        .find(|l| l.contains("holding 192.0.2.201/32"))
        .unwrap_or_default();
    assert!(
        said.contains("(kept announced, draining)") && said.contains("until it is undrained"),
        "{said}"
    );
    // Held past its linger, the prefix asks for no more work: the linger's end, once
    // applied, was left as a deadline in the past and the announcer ran update after update
    // (a whole core) for as long as the hold lasted.
    let cpu = || {
        s.daemon
            .sample("process_cpu_seconds_total", &[])
            .unwrap_or(0.0)
    };
    let (cpu0, t0) = (cpu(), Instant::now());
    wait_rounds(&s, 10);
    let share = (cpu() - cpu0) / t0.elapsed().as_secs_f64();
    eprintln!("CPU while held: {:.1} % of a core", share * 100.0);
    assert!(share < 0.3, "{:.0} % of a core while held", share * 100.0);
    assert!(s.daemon.cli(&["undrain", "web"]).status.success());
    wait_paths(&router, 1, CHANGE);
    // The same for a failure.
    s.target.set_status(503);
    wait_paths(&router, 0, CHANGE);
    wait_rounds(&s, 5);
    assert_eq!(second(&router), 1);
    assert!(!s.daemon.log().contains("holding 192.0.2.200/32"));
}

/// A prefix held for a failed service, in a config without `degraded` attributes: gobgpd
/// has nothing to send (the held path is the up one), but `status` says it is held,
/// degraded, and why; it said `up` and "service web is up" before.
#[test]
fn a_prefix_held_with_the_up_attributes_says_so_in_status() {
    require_gobgpd();
    let etcd = EtcdCluster::start(1);
    let endpoints = etcd.endpoints();
    let router = router_of_two();
    let monitor = router.monitor();
    let s = site_with(1, &router, &endpoints, 1, "hold", None, None);
    // The first announcement: the monitor follows.
    monitor.wait_for(PREFIX, "the announcement", SESSION, |e| !e.withdrawal);
    s.target.set_status(503);
    let prefix = |st: &serde_json::Value| st["prefixes"][0].clone();
    wait_until("the prefix held, and said degraded", CHANGE, || {
        try_status(s.daemon.metrics)
            .is_some_and(|st| prefix(&st)["held"] == true && prefix(&st)["state"] == "degraded")
    });
    let st = try_status(s.daemon.metrics).expect("status");
    let p = prefix(&st);
    let why = p["cause"].as_str().unwrap_or_default();
    assert!(
        why.contains("service web is down")
            && why.contains("held by the fleet guard: no other site announces it"),
        "{p:#}"
    );
    let last = p["history"].as_array().and_then(|h| h.last()).cloned();
    assert!(
        last.as_ref().is_some_and(|t| t["from"] == "up"
            && t["to"] == "degraded"
            && t["reason"]
                .as_str()
                .is_some_and(|r| r.contains("held by the fleet guard"))),
        "{p:#}"
    );
    assert_eq!(
        s.daemon.sample(
            "anycastd_route_state",
            &[("prefix", PREFIX), ("state", "degraded")]
        ),
        Some(1.0)
    );
    let out = s.daemon.cli(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with(PREFIX))
        .unwrap_or_default();
    eprintln!("anycastd status, the held prefix: {line}");
    assert!(
        line.contains("no (held)") && line.contains("held by the fleet guard"),
        "{text}"
    );
    // Still at the router, with no UPDATE since the announcement: the path did not change.
    wait_rounds(&s, 5);
    assert_eq!(paths(&router), 1);
    // Back: up again, and said so; still no UPDATE.
    s.target.set_status(200);
    wait_until("the prefix up again", CHANGE, || {
        try_status(s.daemon.metrics)
            .is_some_and(|st| prefix(&st)["held"] == false && prefix(&st)["state"] == "up")
    });
    assert_eq!(
        monitor.events(PREFIX).len(),
        1,
        "{:#?}",
        monitor.events(PREFIX)
    );
}

/// The guard's own words offer `anycastd drain --force` to take out a prefix it holds. For
/// a failed service it did not: a down service's routes stayed held, drained or not.
#[test]
fn drain_force_takes_out_a_prefix_held_for_a_failed_service() {
    require_gobgpd();
    let etcd = EtcdCluster::start(1);
    let endpoints = etcd.endpoints();
    let router = router_of_two();
    let s = site(1, &router, &endpoints, 1, "hold");
    wait_paths(&router, 1, SESSION);
    s.target.set_status(503);
    wait_until("the guard to hold the prefix", CHANGE, || {
        s.daemon
            .log()
            .contains("anycastd drain --force` takes it out")
    });
    wait_rounds(&s, 5);
    assert_eq!(paths(&router), 1, "held");
    let out = s.daemon.cli(&["drain", "--force", "web"]);
    assert!(out.status.success(), "{out:?}");
    // Withdrawn at once, as a failed service's route (no linger).
    wait_paths(&router, 0, CHANGE);
}
