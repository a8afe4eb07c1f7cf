//! The fleet guard against a real 3-member etcd cluster (Debian's etcd 3.4 on loopback):
//! several `Claims` in this process act as the sites of one fleet. What is asserted is what
//! etcd holds and what each of them decides; the end-to-end with gobgpd comes with the
//! announcer's integration.
//!
//! `FLEET_REPEAT` sets the repetitions of the simultaneous-failure test (default 200).

pub mod common {
    pub mod etcd;
    pub mod lab;
    pub mod prom;
}

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anycastd::config::Dur;
use anycastd::config::fleet::{EtcdConfig, FleetConfig, OnUnreachable};
use anycastd::fleet::claims::Claims;
use anycastd::fleet::decision::{Decision, HeldReason, Release};
use anycastd::fleet::etcd::Etcd;
use anycastd::fleet::guard::{self, Claim, ClaimState, Keys};
use anycastd::fleet::policy::Fleet;
use anycastd::fleet::view::FleetView;
use anycastd::metrics::Metrics;
use common::etcd::EtcdCluster;
use common::prom;
use etcd_client::{Client, ConnectOptions, GetOptions};
use ipnet::IpNet;
use tokio::sync::watch;

/// etcd's shortest lease with the harness's timers (see tests/common/etcd.rs).
const TTL: Dur = Dur::secs(3);
const TIMEOUT: Dur = Dur::secs(1);
const ROOT: &str = "/anycastd-test/";
/// What a bounded call may take beyond `TIMEOUT`: the scheduling of a loaded 2-core box.
/// A call that does not honour the bound takes much longer (a hanging peer: forever).
const SLACK: Duration = Duration::from_millis(500);

fn net(s: &str) -> IpNet {
    s.parse().expect("a test prefix")
}

fn config(endpoints: Vec<String>, min_sites: u32, on_unreachable: OnUnreachable) -> FleetConfig {
    FleetConfig {
        etcd: EtcdConfig {
            endpoints,
            prefix: ROOT.to_string(),
            timeout: TIMEOUT,
            tls: None,
            user: None,
            password_file: None,
        },
        site: None,
        min_sites,
        lease_ttl: TTL,
        on_unreachable,
        prefixes: None,
    }
}

/// One site: its handle, its task, its metrics.
struct Site {
    fleet: Claims,
    metrics: Metrics,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Site {
    fn start(cfg: &FleetConfig, name: &str, prefixes: &[IpNet]) -> Site {
        assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
        let metrics = Metrics::new();
        let (shutdown, rx) = watch::channel(false);
        let (fleet, task) = Claims::start(
            cfg,
            name.to_string(),
            prefixes.iter().copied(),
            &metrics,
            rx,
            watch::channel(None).1,
        )
        .expect("fleet starts");
        Site {
            fleet,
            metrics,
            shutdown,
            task: tokio::spawn(task),
        }
    }

    /// A clean stop: the task revokes the lease.
    async fn stop(self) {
        self.shutdown.send_replace(true);
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the fleet task ends within 5s of shutdown")
            .expect("the fleet task does not panic");
    }

    /// A crash: the task stops without a word to etcd.
    fn crash(self) {
        self.task.abort();
    }

    async fn wait_view(&self, what: &str, cond: impl Fn(&FleetView) -> bool) -> Duration {
        wait_view(&self.fleet, what, Duration::from_secs(15), cond).await
    }

    fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        prom::value(&prom::parse(&self.metrics.render()), name, labels)
    }
}

async fn wait_view(
    fleet: &Claims,
    what: &str,
    deadline: Duration,
    cond: impl Fn(&FleetView) -> bool,
) -> Duration {
    let start = Instant::now();
    let mut rx = fleet.view();
    loop {
        if cond(&rx.borrow_and_update()) {
            return start.elapsed();
        }
        let left = deadline.saturating_sub(start.elapsed());
        assert!(
            !left.is_zero(),
            "timed out after {deadline:?} waiting for {what}; view: {:?}",
            *rx.borrow()
        );
        let _ = tokio::time::timeout(left, rx.changed()).await;
    }
}

/// Polls `cond` every 20 ms until it holds or `deadline` passes.
async fn wait_for<F: std::future::Future<Output = bool>>(
    what: &str,
    deadline: Duration,
    mut cond: impl FnMut() -> F,
) -> Duration {
    let start = Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

/// A plain etcd client, to look at and tamper with the keys (on the running members only:
/// etcd-client's balancing keeps trying a stopped one).
async fn raw(cluster: &EtcdCluster) -> Client {
    Client::connect(cluster.live_endpoints(), None)
        .await
        .expect("connect a raw client")
}

/// The sites with a claim on `prefix` in etcd, with their claims.
async fn claims(c: &mut Client, prefix: IpNet) -> Vec<(String, Option<Claim>, i64)> {
    let keys = Keys::new(ROOT);
    let resp = c
        .get(keys.route(&prefix), Some(GetOptions::new().with_prefix()))
        .await
        .expect("read the claims");
    resp.kvs()
        .iter()
        .filter_map(|kv| {
            keys.parse_claim(kv.key())
                .map(|(_, site)| (site, Claim::parse(kv.value()), kv.lease()))
        })
        .collect()
}

async fn claim_sites(c: &mut Client, prefix: IpNet) -> BTreeSet<String> {
    claims(c, prefix)
        .await
        .into_iter()
        .map(|(s, _, _)| s)
        .collect()
}

fn sites_in_view(v: &FleetView, p: IpNet) -> BTreeSet<String> {
    v.prefixes
        .get(&p)
        .map(|pv| pv.sites.keys().cloned().collect())
        .unwrap_or_default()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sites_claim_see_each_other_and_a_held_site_recovers() {
    let cluster = EtcdCluster::start(3);
    let p = net("192.0.2.1/32");
    let cfg = config(cluster.endpoints(), 2, OnUnreachable::Hold);
    let sites: Vec<Site> = ["ams1", "fra1", "lon1"]
        .iter()
        .map(|n| Site::start(&cfg, n, &[p]))
        .collect();
    for s in &sites {
        s.fleet.claim(p).await.expect("claim");
    }
    let mut c = raw(&cluster).await;
    assert_eq!(claim_sites(&mut c, p).await, set(&["ams1", "fra1", "lon1"]));
    for (site, claim, lease) in claims(&mut c, p).await {
        let s = sites
            .iter()
            .find(|s| s.fleet.site() == site)
            .expect("a site of ours");
        let claim = claim.expect("anycastd's claim format");
        assert_eq!(claim.instance, s.fleet.instance());
        assert_eq!(claim.state, ClaimState::Up);
        assert_ne!(lease, 0, "a claim lives under its site's lease");
    }
    for s in &sites {
        s.wait_view("all three sites in every view", |v| {
            v.up && sites_in_view(v, p).len() == 3
        })
        .await;
        let label = p.to_string();
        assert_eq!(
            s.metric("anycastd_fleet_sites", &[("prefix", &label)]),
            Some(3.0)
        );
        assert_eq!(s.metric("anycastd_fleet_up", &[]), Some(1.0));
        assert_eq!(
            s.metric("anycastd_fleet_held", &[("prefix", &label)]),
            Some(0.0)
        );
        assert_eq!(s.metric("anycastd_fleet_duplicate_site", &[]), Some(0.0));
    }

    // min_sites 2: the first failing site may go (two others remain), the second may not.
    let first = sites[0].fleet.release_guarded(p).await;
    assert!(
        matches!(&first, Decision::Released(Release::Guarded { others, .. }) if others.len() == 2),
        "{first:?}"
    );
    let second = sites[1].fleet.release_guarded(p).await;
    let Decision::Held(held) = &second else {
        panic!("the second release must be held: {second:?}")
    };
    assert_eq!(held.reason, HeldReason::TooFewSites);
    assert_eq!(held.others, ["lon1"]);
    assert_eq!(held.min_sites, 2);
    let said = held.to_string();
    assert!(
        said.contains("1 other site announces it (lon1), fleet.min_sites is 2"),
        "{said}"
    );
    assert_eq!(claim_sites(&mut c, p).await, set(&["fra1", "lon1"]));
    let fra1 = claims(&mut c, p)
        .await
        .into_iter()
        .find(|(s, _, _)| s == "fra1")
        .and_then(|(_, c, _)| c)
        .expect("fra1's claim");
    assert_eq!(fra1.state, ClaimState::Held, "a held claim says so");
    let label = p.to_string();
    assert_eq!(
        sites[1].metric("anycastd_fleet_held", &[("prefix", &label)]),
        Some(1.0)
    );
    let status = sites[1].fleet.status();
    let ps = &status.prefixes[0];
    assert!(ps.held_here);
    // Every round asks again, and is held again while nothing changes.
    assert!(matches!(
        sites[1].fleet.release_guarded(p).await,
        Decision::Held(_)
    ));
    // The other sites see fra1 holding.
    sites[2]
        .wait_view("lon1 sees fra1 held", |v| {
            v.prefixes[&p].sites.get("fra1") == Some(&Some(ClaimState::Held))
                && !v.prefixes[&p].sites.contains_key("ams1")
        })
        .await;

    // fra1 recovers and claims again; ams1 comes back too.
    sites[1].fleet.claim(p).await.expect("re-claim");
    sites[0].fleet.claim(p).await.expect("re-claim");
    assert_eq!(
        sites[1].metric("anycastd_fleet_held", &[("prefix", &label)]),
        Some(0.0)
    );
    assert!(
        claims(&mut c, p)
            .await
            .iter()
            .all(|(_, c, _)| c.as_ref().map(|c| c.state) == Some(ClaimState::Up))
    );
    assert_eq!(claim_sites(&mut c, p).await.len(), 3);
    for s in sites {
        s.stop().await;
    }
}

/// All three sites fail at the same instant, `FLEET_REPEAT` times (default 200), with
/// min_sites 1 and 2 in turn: exactly `3 - min_sites` may withdraw, every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_failures_never_withdraw_past_min_sites() {
    let reps: u32 = std::env::var("FLEET_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let cluster = EtcdCluster::start(3);
    let names = ["ams1", "fra1", "lon1"];
    // One fleet per min_sites value, sharing the cluster (different prefixes).
    let mut fleets: Vec<Vec<Site>> = Vec::new();
    for m in [1, 2] {
        let cfg = config(cluster.endpoints(), m, OnUnreachable::Hold);
        // Site names are unique in a fleet: one set of names per min_sites.
        fleets.push(
            names
                .iter()
                .map(|n| Site::start(&cfg, &format!("{n}-m{m}"), &[]))
                .collect(),
        );
    }
    let mut c = raw(&cluster).await;
    let mut lost_txns = 0u32;
    let mut contended_reps = 0u32;
    let mut violations = Vec::new();
    for rep in 0..reps {
        let m = 1 + rep % 2;
        let sites = &fleets[(m - 1) as usize];
        let p = net(&format!("198.18.{}.{}/32", rep / 256, rep % 256));
        for s in sites {
            s.fleet.claim(p).await.expect("claim");
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(3));
        let tasks: Vec<_> = sites
            .iter()
            .map(|s| {
                let (f, b) = (s.fleet.clone(), barrier.clone());
                tokio::spawn(async move {
                    b.wait().await;
                    f.release_guarded(p).await
                })
            })
            .collect();
        let mut released = 0;
        let mut tries_over_one = 0;
        for t in tasks {
            match t.await.expect("release task") {
                Decision::Released(Release::Guarded { others, tries }) => {
                    released += 1;
                    assert!(others.len() >= m as usize, "released with {others:?}");
                    tries_over_one += tries.saturating_sub(1);
                }
                Decision::Held(h) => {
                    assert_eq!(h.reason, HeldReason::TooFewSites, "rep {rep}: {h}");
                    assert!(h.others.len() < m as usize, "rep {rep}: {h}");
                }
                other => panic!("rep {rep}: {other:?}"),
            }
        }
        let left = claim_sites(&mut c, p).await.len();
        if released != 3 - m as usize || left != m as usize {
            violations.push(format!(
                "rep {rep} (min_sites {m}): {released} released, {left} claims left"
            ));
        }
        lost_txns += tries_over_one;
        contended_reps += u32::from(tries_over_one > 0);
    }
    println!(
        "fleet guard, simultaneous failure of 3 sites x {reps} repetitions (min_sites 1 and 2 in turn): {} violations; transactions lost to a concurrent release and retried: {lost_txns}, in {contended_reps} repetitions",
        violations.len()
    );
    assert!(violations.is_empty(), "{violations:#?}");
    // The repetitions raced for real: some transactions lost to another site's.
    assert!(
        lost_txns > 0,
        "no release ever lost its transaction to a concurrent one: the test did not race"
    );
    for s in fleets.into_iter().flatten() {
        s.stop().await;
    }
}

/// The interleaving that matters, step by step: two sites read the same state, then both
/// commit. Only the first commit passes; the second decides again on what the first left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sites_deciding_on_the_same_read_cannot_both_pass() {
    let cluster = EtcdCluster::start(3);
    let mut c = raw(&cluster).await;
    let keys = Keys::new(ROOT);
    let mut kv = Etcd::new(
        cluster.endpoints(),
        ConnectOptions::new(),
        Duration::from_secs(2),
    );
    let writer = c.kv_client();
    let put_claim = |site: &'static str, p: IpNet| {
        let mut kv = writer.clone();
        let keys = keys.clone();
        async move {
            let claim = Claim {
                instance: format!("{site}-instance"),
                state: ClaimState::Up,
            };
            kv.put(keys.claim(&p, site), claim.to_json(), None)
                .await
                .expect("put a claim");
        }
    };

    // Two sites, min_sites 1: whoever commits second must be held.
    let p = net("203.0.113.1/32");
    put_claim("a", p).await;
    put_claim("b", p).await;
    let snap_a = guard::read(&mut kv, &keys, p, "a").await.expect("read a");
    let snap_b = guard::read(&mut kv, &keys, p, "b").await.expect("read b");
    assert_eq!(snap_a.other_sites(), ["b"]);
    assert_eq!(snap_b.other_sites(), ["a"]);
    let a = guard::try_release(&mut kv, &keys, &snap_a, "a", "a-instance", true, 1)
        .await
        .expect("a's txn");
    assert_eq!(a, None, "the first commit passes");
    let b = guard::try_release(&mut kv, &keys, &snap_b, "b", "b-instance", true, 1)
        .await
        .expect("b's txn")
        .expect("the second commit must fail: its read is stale");
    assert!(b.others.is_empty(), "b's fresh view: a is gone");
    assert_eq!(b.witnesses(1), None, "so b is held");
    assert_eq!(claim_sites(&mut c, p).await, set(&["b"]));

    // Three sites, min_sites 1: a and b read, a commits; b's stale commit fails on the
    // guard key although c still holds, and its second try (on the fresh read) passes.
    let p = net("203.0.113.2/32");
    for s in ["a", "b", "c"] {
        put_claim(s, p).await;
    }
    let snap_a = guard::read(&mut kv, &keys, p, "a").await.expect("read a");
    let snap_b = guard::read(&mut kv, &keys, p, "b").await.expect("read b");
    assert_eq!(
        guard::try_release(&mut kv, &keys, &snap_a, "a", "a-instance", true, 1)
            .await
            .expect("a"),
        None
    );
    let fresh = guard::try_release(&mut kv, &keys, &snap_b, "b", "b-instance", true, 1)
        .await
        .expect("b")
        .expect("stale: the guard key moved");
    assert_eq!(fresh.other_sites(), ["c"]);
    assert_eq!(
        guard::try_release(&mut kv, &keys, &fresh, "b", "b-instance", true, 1)
            .await
            .expect("b again"),
        None
    );
    assert_eq!(claim_sites(&mut c, p).await, set(&["c"]));
    let record = c.get(keys.guard(&p), None).await.expect("guard key");
    let record: guard::GuardRecord =
        serde_json::from_slice(record.kvs()[0].value()).expect("a guard record");
    assert_eq!(
        (record.site.as_str(), record.others.as_slice()),
        ("b", &["c".to_string()][..])
    );

    // A witness vanishes between read and commit (its lease expired): the commit fails.
    let p = net("203.0.113.3/32");
    put_claim("a", p).await;
    put_claim("b", p).await;
    let snap_a = guard::read(&mut kv, &keys, p, "a").await.expect("read a");
    c.delete(keys.claim(&p, "b"), None)
        .await
        .expect("b's claim goes");
    let fresh = guard::try_release(&mut kv, &keys, &snap_a, "a", "a-instance", true, 1)
        .await
        .expect("a")
        .expect("b's claim is gone: the commit must fail");
    assert!(fresh.others.is_empty());
    assert_eq!(claim_sites(&mut c, p).await, set(&["a"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_down_or_hanging_the_guard_still_works() {
    let mut cluster = EtcdCluster::start(3);
    let cfg = config(cluster.endpoints(), 1, OnUnreachable::Hold);
    let mut sites: Vec<Site> = ["ams1", "fra1", "lon1"]
        .iter()
        .map(|n| Site::start(&cfg, n, &[]))
        .collect();
    // A fourth site whose first endpoint hangs: it must move on to the members that answer.
    let mut endpoints = vec![bad_endpoint(false)];
    endpoints.extend(cluster.endpoints());
    sites.push(Site::start(
        &config(endpoints, 1, OnUnreachable::Hold),
        "par1",
        &[],
    ));
    cluster.stop(0);
    cluster.wait_healthy(Duration::from_secs(20));
    for round in 0..5 {
        let p = net(&format!("198.51.100.{round}/32"));
        for s in &sites {
            let start = Instant::now();
            s.fleet.claim(p).await.expect("claim with one member down");
            assert!(start.elapsed() <= TIMEOUT.0 + SLACK);
        }
        let decisions =
            futures_util::future::join_all(sites.iter().map(|s| s.fleet.release_guarded(p))).await;
        let released = decisions
            .iter()
            .filter(|d| matches!(d, Decision::Released(Release::Guarded { .. })))
            .count();
        assert_eq!(released, 3, "round {round}: {decisions:?}");
        let mut c = raw(&cluster).await;
        assert_eq!(claim_sites(&mut c, p).await.len(), 1);
    }
    for s in sites {
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_members_down_hold_or_withdraw_as_configured() {
    let mut cluster = EtcdCluster::start(3);
    let p = net("192.0.2.10/32");
    let hold = Site::start(
        &config(cluster.endpoints(), 1, OnUnreachable::Hold),
        "hold1",
        &[p],
    );
    let withdraw = Site::start(
        &config(cluster.endpoints(), 1, OnUnreachable::Withdraw),
        "wd1",
        &[p],
    );
    hold.fleet.claim(p).await.expect("claim");
    withdraw.fleet.claim(p).await.expect("claim");
    for i in 0..3 {
        cluster.stop(i);
    }
    let bound = TIMEOUT.0 + SLACK;

    let start = Instant::now();
    let d = hold.fleet.release_guarded(p).await;
    let took = start.elapsed();
    assert!(
        matches!(&d, Decision::Held(h) if matches!(h.reason, HeldReason::Unreachable { .. })),
        "{d:?}"
    );
    assert!(
        took <= bound,
        "release_guarded took {took:?} with etcd down"
    );
    let Decision::Held(h) = &d else {
        unreachable!()
    };
    assert!(h.to_string().contains("on_unreachable is hold"), "{h}");

    let start = Instant::now();
    let d = withdraw.fleet.release_guarded(p).await;
    let took = start.elapsed();
    assert!(
        matches!(&d, Decision::Released(Release::Unreachable { .. })),
        "{d:?}"
    );
    assert!(
        took <= bound,
        "release_guarded took {took:?} with etcd down"
    );

    hold.wait_view("etcd down in the view", |v| !v.up).await;
    assert_eq!(hold.metric("anycastd_fleet_up", &[]), Some(0.0));
    let label = p.to_string();
    assert_eq!(
        hold.metric("anycastd_fleet_held", &[("prefix", &label)]),
        Some(1.0)
    );

    // etcd comes back: the holding site's claim is there (held), the withdrawn one's gone.
    for i in 0..3 {
        cluster.restart(i);
    }
    cluster.wait_healthy(Duration::from_secs(30));
    hold.wait_view("etcd up again", |v| v.up).await;
    let mut c = raw(&cluster).await;
    wait_for(
        "wd1's stale claim deleted, hold1's held",
        Duration::from_secs(15),
        || {
            let mut c = c.clone();
            async move {
                let now = claims(&mut c, p).await;
                now.len() == 1
                    && now[0].0 == "hold1"
                    && now[0].1.as_ref().map(|c| c.state) == Some(ClaimState::Held)
            }
        },
    )
    .await;
    assert_eq!(claim_sites(&mut c, p).await, set(&["hold1"]));
    hold.stop().await;
    withdraw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_site_loses_its_claims_after_lease_ttl_and_a_clean_stop_at_once() {
    let cluster = EtcdCluster::start(3);
    let p = net("192.0.2.20/32");
    let cfg = config(cluster.endpoints(), 1, OnUnreachable::Hold);
    let a = Site::start(&cfg, "ams1", &[p]);
    let b = Site::start(&cfg, "fra1", &[p]);
    let c2 = Site::start(&cfg, "lon1", &[p]);
    for s in [&a, &b, &c2] {
        s.fleet.claim(p).await.expect("claim");
    }
    a.wait_view("three sites", |v| sites_in_view(v, p).len() == 3)
        .await;
    let mut c = raw(&cluster).await;

    b.crash();
    assert!(
        claim_sites(&mut c, p).await.contains("fra1"),
        "a crash says nothing to etcd: the claim stays until the lease expires"
    );
    let gone = a
        .wait_view("fra1's claim expired", |v| {
            !sites_in_view(v, p).contains("fra1")
        })
        .await;
    println!("a crashed site's claim left the other sites' view after {gone:?} (lease_ttl {TTL})");
    assert!(!claim_sites(&mut c, p).await.contains("fra1"));

    // A clean stop revokes the lease: the claims and the site name go at once.
    c2.stop().await;
    assert_eq!(claim_sites(&mut c, p).await, set(&["ams1"]));
    let keys = Keys::new(ROOT);
    let site_key = c.get(keys.site("lon1"), None).await.expect("get");
    assert!(site_key.kvs().is_empty(), "the site name is released");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_is_re_established_and_the_claims_put_again() {
    let cluster = EtcdCluster::start(3);
    let p = net("192.0.2.30/32");
    let q = net("2001:db8:30::/48");
    let a = Site::start(
        &config(cluster.endpoints(), 1, OnUnreachable::Hold),
        "ams1",
        &[p, q],
    );
    a.fleet.claim(p).await.expect("claim");
    a.fleet.claim(q).await.expect("claim");
    let mut c = raw(&cluster).await;
    let before = claims(&mut c, p).await;
    let lease = before[0].2;
    assert_ne!(lease, 0);

    // Someone (an operator, or etcd after a partition longer than lease_ttl) ends the lease.
    c.lease_revoke(lease)
        .await
        .expect("revoke the site's lease");
    assert!(
        claims(&mut c, p).await.is_empty(),
        "the claims went with it"
    );

    let took = wait_for(
        "claims back under a new lease",
        Duration::from_secs(10),
        || {
            let mut c = c.clone();
            async move {
                let (cp, cq) = (claims(&mut c, p).await, claims(&mut c, q).await);
                cp.len() == 1 && cq.len() == 1 && cp[0].2 != lease && cp[0].2 == cq[0].2
            }
        },
    )
    .await;
    println!("a revoked lease was replaced and the claims put again after {took:?}");
    let keys = Keys::new(ROOT);
    let site_key = c.get(keys.site("ams1"), None).await.expect("get");
    assert_eq!(
        site_key.kvs().first().map(|kv| kv.value().to_vec()),
        Some(a.fleet.instance().as_bytes().to_vec()),
        "the site name is owned again"
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_name_used_twice_is_detected_and_the_second_daemon_does_not_claim() {
    let cluster = EtcdCluster::start(3);
    let p = net("192.0.2.40/32");
    let cfg = config(cluster.endpoints(), 1, OnUnreachable::Hold);
    let first = Site::start(&cfg, "fra1", &[p]);
    first.fleet.claim(p).await.expect("claim");
    let second = Site::start(&cfg, "fra1", &[p]);
    second.fleet.claim(p).await.expect("claim (not put)");
    second
        .wait_view("the duplicate reported", |v| v.duplicate.is_some())
        .await;
    let said = second.fleet.status().duplicate.expect("in the status");
    assert!(
        said.contains(first.fleet.instance()) && said.contains("fleet.site"),
        "{said}"
    );
    assert_eq!(
        second.metric("anycastd_fleet_duplicate_site", &[]),
        Some(1.0)
    );
    assert_eq!(
        first.metric("anycastd_fleet_duplicate_site", &[]),
        Some(0.0)
    );
    let mut c = raw(&cluster).await;
    let owner = |claims: Vec<(String, Option<Claim>, i64)>| {
        claims
            .into_iter()
            .filter_map(|(_, c, _)| c.map(|c| c.instance))
            .collect::<Vec<_>>()
    };
    assert_eq!(owner(claims(&mut c, p).await), [first.fleet.instance()]);

    // The duplicate's guarded release must not delete the first daemon's claim.
    let other = Site::start(&cfg, "lon1", &[p]);
    other.fleet.claim(p).await.expect("claim");
    let d = second.fleet.release_guarded(p).await;
    assert!(matches!(d, Decision::Released(_)), "{d:?}");
    assert_eq!(
        claim_sites(&mut c, p).await,
        set(&["fra1", "lon1"]),
        "fra1's claim is the first daemon's"
    );
    assert_eq!(owner(claims(&mut c, p).await).len(), 2);

    // When the first daemon stops, the second one owns the name and claims.
    second.fleet.claim(p).await.expect("claim again");
    first.stop().await;
    second
        .wait_view("the site name taken over", |v| v.duplicate.is_none())
        .await;
    wait_for("the second daemon's claim", Duration::from_secs(10), || {
        let mut c = c.clone();
        let me = second.fleet.instance().to_string();
        async move {
            claims(&mut c, p)
                .await
                .iter()
                .any(|(s, cl, _)| s == "fra1" && cl.as_ref().is_some_and(|cl| cl.instance == me))
        }
    })
    .await;
    assert_eq!(
        second.metric("anycastd_fleet_duplicate_site", &[]),
        Some(0.0)
    );
    second.stop().await;
    other.stop().await;
}

/// A TCP listener on loopback that accepts connections and then, per `mode`, says nothing
/// or answers garbage. Its thread ends with the test process.
fn bad_endpoint(garbage: bool) -> String {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            if garbage {
                let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\ngarbage!\n\x00\xff\xfe garbage",
                );
            }
            held.push(s); // keep it open: a hanging peer
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusing_hanging_and_garbage_endpoints_never_block_beyond_the_timeout() {
    let refusing = format!("http://127.0.0.1:{}", common::lab::free_tcp_port());
    let hanging = bad_endpoint(false);
    let garbage = bad_endpoint(true);
    let bound = TIMEOUT.0 + SLACK;
    let mut cases = Vec::new();
    for (what, endpoint) in [
        ("refusing", refusing),
        ("hanging", hanging),
        ("garbage", garbage),
    ] {
        for mode in [OnUnreachable::Hold, OnUnreachable::Withdraw] {
            cases.push((what, endpoint.clone(), mode));
        }
    }
    // The six cases at once: each waits for its timeouts, not for the others'.
    let runs = cases.into_iter().map(|(what, endpoint, mode)| async move {
        let p = net("192.0.2.50/32");
        let site = Site::start(&config(vec![endpoint], 1, mode), "fra1", &[p]);
        let start = Instant::now();
        let r = site.fleet.claim(p).await;
        let took = start.elapsed();
        assert!(r.is_err(), "{what}: claim succeeded?");
        assert!(took <= bound, "{what}: claim took {took:?}");

        let start = Instant::now();
        let d = site.fleet.release_guarded(p).await;
        let took = start.elapsed();
        assert!(took <= bound, "{what}: release_guarded took {took:?}");
        match mode {
            OnUnreachable::Hold => assert!(
                matches!(&d, Decision::Held(h) if matches!(h.reason, HeldReason::Unreachable { .. })),
                "{what}: {d:?}"
            ),
            OnUnreachable::Withdraw => assert!(
                matches!(&d, Decision::Released(Release::Unreachable { .. })),
                "{what}: {d:?}"
            ),
        }

        let start = Instant::now();
        let r = site.fleet.release_forced(p).await;
        let took = start.elapsed();
        assert!(r.is_err(), "{what}: release_forced succeeded?");
        assert!(took <= bound, "{what}: release_forced took {took:?}");
        assert_eq!(site.metric("anycastd_fleet_up", &[]), Some(0.0));
        println!("{what} endpoint ({mode:?}): every call returned within {bound:?}");
        site.stop().await;
    });
    futures_util::future::join_all(runs).await;
}

/// etcd's counters of what its gRPC server sent (`etcd_network_client_grpc_sent_bytes_total`)
/// and of the Range calls it answered, read from a member's `/metrics`.
fn etcd_sent(endpoint: &str) -> (f64, f64) {
    let addr: std::net::SocketAddr = endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("an etcd client address");
    // HTTP/1.0: etcd then sends the body whole, not in chunks.
    let body = tokio::task::block_in_place(|| {
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        Ok::<_, std::io::Error>(text)
    })
    .expect("etcd's /metrics");
    let body = body.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let samples = prom::parse(body);
    let bytes = prom::value(&samples, "etcd_network_client_grpc_sent_bytes_total", &[])
        .expect("etcd_network_client_grpc_sent_bytes_total in etcd's /metrics");
    let ranges = prom::value(
        &samples,
        "grpc_server_handled_total",
        &[("grpc_method", "Range"), ("grpc_code", "OK")],
    )
    .expect("grpc_server_handled_total{grpc_method=\"Range\"} in etcd's /metrics");
    (bytes, ranges)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_fleet_is_not_read_again_and_every_change_is() {
    // 2,000 claims: a whole read of them is some 200 KB; a tick that finds etcd's revision
    // unchanged reads one key. Without that, every tick (lease_ttl / 3: 1 s here) read them
    // all (5.8 % of a core at 20,000, BENCHMARKS.md).
    let cluster = EtcdCluster::start(1);
    let endpoint = cluster.endpoints()[0].clone();
    let prefixes: Vec<IpNet> = (0..2000u32)
        .map(|i| net(&format!("10.77.{}.{}/32", i / 250, i % 250)))
        .collect();
    let cfg = config(cluster.endpoints(), 1, OnUnreachable::Hold);
    let a = Site::start(&cfg, "ams1", &prefixes);
    for p in &prefixes {
        a.fleet.claim(*p).await.expect("claim");
    }
    a.wait_view("every claim in the view", |v| {
        prefixes.iter().all(|p| sites_in_view(v, *p).len() == 1)
    })
    .await;
    let mut c = raw(&cluster).await;
    let all = c
        .get(ROOT, Some(GetOptions::new().with_prefix()))
        .await
        .expect("read the claims");
    let whole: usize = all
        .kvs()
        .iter()
        .map(|kv| kv.key().len() + kv.value().len())
        .sum();
    assert!(whole > 100_000, "2,000 claims take {whole} bytes");

    // Each tick asks for the revision (a Range); the first after the last claim reads them
    // all once more (the claims moved it). Then three ticks with nothing changed.
    let ticks = |n: f64| {
        let endpoint = endpoint.clone();
        async move {
            let (_, ranges) = etcd_sent(&endpoint);
            wait_for("ticks of the fleet task", Duration::from_secs(15), || {
                let endpoint = endpoint.clone();
                async move { etcd_sent(&endpoint).1 >= ranges + n }
            })
            .await
        }
    };
    ticks(3.0).await;
    let (bytes, _) = etcd_sent(&endpoint);
    ticks(3.0).await;
    let (after, _) = etcd_sent(&endpoint);
    assert!(
        after - bytes < whole as f64 / 4.0,
        "quiet ticks sent {} bytes; the claims are {whole}",
        after - bytes
    );

    // A change anywhere moves the revision: another site's claim is seen, and a claim of
    // ours deleted behind the site's back is put again.
    let keys = Keys::new(ROOT);
    let p = prefixes[7];
    let foreign = Claim {
        instance: "lon1-test".to_string(),
        state: ClaimState::Up,
    };
    c.put(keys.claim(&p, "lon1"), foreign.to_json(), None)
        .await
        .expect("put another site's claim");
    a.wait_view("the other site's claim in the view", |v| {
        sites_in_view(v, p) == set(&["ams1", "lon1"])
    })
    .await;
    let q = prefixes[8];
    c.delete(keys.claim(&q, "ams1"), None)
        .await
        .expect("delete a claim");
    wait_for(
        "the deleted claim put again",
        Duration::from_secs(10),
        || {
            let mut c = c.clone();
            async move { claim_sites(&mut c, q).await == set(&["ams1"]) }
        },
    )
    .await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_claims_thousands_of_prefixes_at_once() {
    // A site that starts announces its whole table at once, and the guard claims every
    // prefix: 10,000 here. One put each, every put bounded by the timeout and waiting for
    // the session, most timed out and were put again by the fleet task one at a time
    // (20,000 took the first minute, with a WARN each; here 468 of 5,000 were in etcd
    // after a 1 s timeout). In batches they are all in etcd when `follow` returns: 5,000
    // took 0.37 s, so the 5 s timeout here leaves room for a loaded machine.
    let cluster = EtcdCluster::start(1);
    let prefixes: BTreeSet<IpNet> = (0..10_000u32)
        .map(|i| net(&format!("10.78.{}.{}/32", i / 250, i % 250)))
        .collect();
    let list: Vec<IpNet> = prefixes.iter().copied().collect();
    let mut cfg = config(cluster.endpoints(), 1, OnUnreachable::Hold);
    cfg.etcd.timeout = Dur::secs(5);
    cfg.lease_ttl = Dur::secs(15);
    let a = Site::start(&cfg, "ams1", &list);
    let fleet = Fleet::new(a.fleet.clone(), None);
    let t = Instant::now();
    fleet.follow(&prefixes, &prefixes).await;
    let took = t.elapsed();
    let mut c = raw(&cluster).await;
    let keys = Keys::new(ROOT);
    let n = c
        .get(
            keys.routes(),
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .expect("count the claims")
        .count();
    assert_eq!(
        n, 10_000,
        "claims in etcd when follow returned, after {took:?}"
    );
    println!("10,000 prefixes claimed in {took:?}");
    a.stop().await;
}
