//! The BFD benchmark (issue 24, SPEC 16): a host failure (its link cut) -> the prefix gone
//! at the router, with BFD 300 ms x 3 and 100 ms x 3 against no BFD at hold times 3 s and
//! 9 s. The lab of `tests/bfd.rs` (`tests/common/bfd.rs`): the host's speaker gobgpd 4.8.0
//! and the release anycastd in one network namespace, a GoBGP 4.8.0 router in another, a
//! bridge between them, so the router's link stays up when the host's goes down. The router
//! reconnects 1 s after a reset (connect retry and idle hold time 1 s on both sides).
//! `BENCH_BFD_CYCLES` (default 20) sets the cycles per configuration; each cycle waits for
//! the route and BFD to be back before the next cut.

use std::time::{Duration, Instant};

use super::common::bfd::{
    GobgpRouter, Host, Net, PREFIX, Router, Timers, host_config, wait_steady,
};
use super::common::gobgpd::Release;
use super::stats;

fn cycles() -> usize {
    std::env::var("BENCH_BFD_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(20)
}

const SESSION: Duration = Duration::from_secs(60);

pub fn bfd() {
    let n = cycles();
    let cases: [(&str, Option<Timers>, u32); 4] = [
        (
            "BFD 300 ms x 3 (hold time 9 s)",
            Some(Timers::ms(300, 3)),
            9,
        ),
        (
            "BFD 100 ms x 3 (hold time 9 s)",
            Some(Timers::ms(100, 3)),
            9,
        ),
        ("no BFD, hold time 3 s (keepalive 1 s)", None, 3),
        ("no BFD, hold time 9 s (keepalive 3 s)", None, 9),
    ];
    println!(
        "## BFD: host link cut -> prefix absent at the router ({n} cycles each, GoBGP 4.8.0 both sides)\n"
    );
    println!("| configuration | expected | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|");
    for (name, bfd, hold) in cases {
        let net = Net::new();
        let router = GobgpRouter::start(Release::V4_8, &net, bfd, hold);
        let host = Host::start(&net, Release::V4_8, |d| {
            host_config(d, bfd, &format!("{hold}s"))
        });
        let mut gone = Vec::with_capacity(n);
        for i in 0..n {
            // The route back, the session up 2 s, BFD up at both ends (BFD does not gate
            // BGP: the session can be back before BFD is).
            wait_steady(
                &router,
                &host,
                bfd.is_some(),
                Duration::from_secs(2),
                SESSION,
            );
            // Cut at a different moment of the keepalive and BFD rounds each time.
            std::thread::sleep(Duration::from_millis(200 + (i as u64 * 137) % 1000));
            let t0 = Instant::now();
            net.cut();
            gone.push(router.gone_after(PREFIX, t0, Duration::from_secs(u64::from(hold) + 30)));
            net.mend();
        }
        let expected = match bfd {
            Some(t) => format!("{} ms (interval x multiplier)", t.detection().as_millis()),
            None => format!(
                "{} to {} s (hold time - keepalive, hold time)",
                hold - hold / 3,
                hold
            ),
        };
        println!("| {name} | {expected} | {} |", stats(&gone));
    }
    println!();
}
