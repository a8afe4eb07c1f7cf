//! `dns_lookup` against a small DNS responder on loopback that answers the way a test
//! tells it to: an A record, an AAAA record, NXDOMAIN, SERVFAIL, an empty answer, garbage,
//! an answer from another port, or nothing at all; and against a real authoritative primary
//! and secondary (Debian's knotd) for `type`, `rcode`, `expect` and `soa_serial_of`: the
//! secondary's zone frozen while the primary's serial moves on (also across the 2^32 wrap)
//! fails the check, and passes again once it has caught up.

pub mod common {
    pub mod checks;
    pub mod dns;
    pub mod knot;
    pub mod lab;
    pub mod prom;
}

use std::net::SocketAddr;
use std::time::Duration;

use common::checks::{alive_tasks, assert_within_worst_case, failure, runner, wait_until};
use common::dns::{Mode, Responder};
use common::knot::{Knot, primary_and_secondary};

fn yaml(resolver: SocketAddr, tries: u32, timeout: &str) -> String {
    format!(
        "kind: dns_lookup\nspec:\n  query: www.example.test\n  resolver: {resolver}\n  \
         tries: {tries}\n  interval: 50ms\n  timeout: {timeout}\n"
    )
}

/// What one attempt asks the resolver: the name, for A and AAAA at once.
const ONE_LOOKUP: [&str; 2] = ["www.example.test A", "www.example.test AAAA"];

/// The questions `srv` was asked, sorted (A and AAAA go out in parallel).
fn asked(srv: &Responder) -> Vec<String> {
    let mut q = srv.questions();
    q.sort();
    q
}

#[tokio::test]
async fn passes_on_an_a_record() {
    let srv = Responder::start(Mode::A).await;
    let (r, _) = runner(&yaml(srv.addr, 1, "2s"));
    let o = r.run().await;
    assert_eq!(o.result, Ok(()));
    assert_eq!(o.attempts, 1);
    // It passed on the answer of this server to this name (the A record; the AAAA
    // question got an empty answer), not on /etc/hosts or a cache.
    assert_eq!(asked(&srv), ONE_LOOKUP);
}

#[tokio::test]
async fn passes_on_an_aaaa_record_alone() {
    let srv = Responder::start(Mode::Aaaa).await;
    let (r, _) = runner(&yaml(srv.addr, 1, "2s"));
    let o = r.run().await;
    assert_eq!(o.result, Ok(()));
    assert_eq!(o.attempts, 1);
    // The A question got an empty answer: the AAAA record alone made it pass.
    assert_eq!(asked(&srv), ONE_LOOKUP);
}

#[tokio::test]
async fn nxdomain_fails_and_says_so() {
    let srv = Responder::start(Mode::NxDomain).await;
    let (r, _) = runner(&yaml(srv.addr, 1, "2s"));
    let o = r.run().await;
    let msg = failure(&o);
    assert!(
        msg.starts_with(&format!("www.example.test @{}: ", srv.addr)),
        "{msg}"
    );
    assert!(msg.contains("NXDOMAIN"), "{msg}");
}

#[tokio::test]
async fn servfail_fails_and_says_so() {
    let srv = Responder::start(Mode::ServFail).await;
    let (r, _) = runner(&yaml(srv.addr, 1, "2s"));
    let o = r.run().await;
    let msg = failure(&o);
    assert!(msg.contains("SERVFAIL"), "{msg}");
    assert_within_worst_case(&r, &o);
}

#[tokio::test]
async fn an_empty_answer_fails() {
    let srv = Responder::start(Mode::Empty).await;
    let (r, _) = runner(&yaml(srv.addr, 1, "2s"));
    let o = r.run().await;
    let msg = failure(&o);
    assert!(msg.contains("no A or AAAA record"), "{msg}");
}

#[tokio::test]
async fn garbage_fails_within_the_timeout() {
    let srv = Responder::start(Mode::Garbage).await;
    let (r, _) = runner(&yaml(srv.addr, 2, "300ms"));
    let o = r.run().await;
    failure(&o);
    assert_eq!(o.attempts, 2);
    assert_within_worst_case(&r, &o);
    assert!(srv.queries() >= 2, "each attempt must ask");
}

#[tokio::test]
async fn a_silent_server_fails_within_the_timeout_and_leaves_nothing_running() {
    let srv = Responder::start(Mode::Silent).await;
    let baseline = alive_tasks();
    let (r, _) = runner(&yaml(srv.addr, 2, "300ms"));
    let o = r.run().await;
    let msg = failure(&o);
    assert!(msg.contains("no answer"), "{msg}");
    assert!(msg.contains(&srv.addr.to_string()), "{msg}");
    assert_eq!(o.attempts, 2);
    assert_within_worst_case(&r, &o);
    assert!(srv.queries() >= 2, "each attempt must ask");
    // The resolvers of both attempts are gone, and with them every task they spawned.
    assert!(
        wait_until(Duration::from_secs(2), || alive_tasks() <= baseline).await,
        "{} tasks still alive, {baseline} before the check",
        alive_tasks()
    );
}

#[tokio::test]
async fn an_unreachable_resolver_fails_within_the_timeout() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let (r, _) = runner(&yaml(addr, 2, "300ms"));
    let o = r.run().await;
    let msg = failure(&o);
    assert!(msg.contains(&addr.to_string()), "{msg}");
    assert_within_worst_case(&r, &o);
}

#[tokio::test]
async fn nothing_is_cached_between_runs() {
    let srv = Responder::start(Mode::A).await;
    let (r, _) = runner(&yaml(srv.addr, 1, "2s"));
    assert_eq!(r.run().await.result, Ok(()));
    assert_eq!(asked(&srv), ONE_LOOKUP);
    // The name disappears: the next run must ask again and see it gone.
    srv.set(Mode::NxDomain);
    let o = r.run().await;
    assert!(failure(&o).contains("NXDOMAIN"), "{o:?}");
    // Back: asked again, and passes. Each run asked once for each type, nothing more.
    srv.set(Mode::A);
    assert_eq!(r.run().await.result, Ok(()));
    let three_lookups: Vec<&str> = ONE_LOOKUP.iter().flat_map(|q| [*q; 3]).collect();
    assert_eq!(asked(&srv), three_lookups);
}

#[tokio::test]
async fn an_answer_from_another_port_is_no_answer() {
    let srv = Responder::start(Mode::OtherPort).await;
    let (r, _) = runner(&yaml(srv.addr, 1, "300ms"));
    let o = r.run().await;
    let msg = failure(&o);
    assert!(msg.contains("no answer"), "{msg}");
    assert_within_worst_case(&r, &o);
}

/// A zone check: `query`'s SOA at `resolver`, against the primary's.
fn zone(resolver: SocketAddr, primary: SocketAddr, extra: &str) -> String {
    format!(
        "kind: dns_lookup\nspec:\n  query: example.test\n  type: SOA\n  resolver: {resolver}\n  \
         soa_serial_of: {primary}\n  timeout: 1s\n{extra}"
    )
}

#[tokio::test]
async fn a_secondary_that_falls_behind_fails_and_passes_once_caught_up() {
    let (primary, secondary) = primary_and_secondary(2024010101);
    let (r, _) = runner(&zone(secondary.addr, primary.addr, ""));
    let (lenient, _) = runner(&zone(secondary.addr, primary.addr, "  max_serial_lag: 3\n"));
    assert_eq!(r.run().await.result, Ok(()));

    secondary.freeze();
    primary.set_serial(2024010104);
    let o = r.run().await;
    assert_eq!(
        failure(&o),
        format!(
            "example.test SOA @{}: zone is stale: SOA serial 2024010101, the primary's 2024010104 (3 behind, more than max_serial_lag 0)",
            secondary.addr
        )
    );
    assert_eq!(lenient.run().await.result, Ok(()), "3 behind is within 3");
    primary.set_serial(2024010105);
    assert!(failure(&lenient.run().await).contains("(4 behind, more than max_serial_lag 3)"));

    secondary.thaw(2024010105);
    assert_eq!(r.run().await.result, Ok(()));
    assert_eq!(lenient.run().await.result, Ok(()));
}

/// RFC 1982 with real servers: the primary's serial wraps past 2^32 (4294967290 + 11 = 5).
#[tokio::test]
async fn a_serial_behind_across_the_wrap_is_behind() {
    let (primary, secondary) = primary_and_secondary(4_294_967_290);
    let (r, _) = runner(&zone(secondary.addr, primary.addr, ""));
    assert_eq!(r.run().await.result, Ok(()));
    secondary.freeze();
    primary.set_serial(5);
    assert!(
        failure(&r.run().await).ends_with(
            "zone is stale: SOA serial 4294967290, the primary's 5 (11 behind, more than max_serial_lag 0)"
        )
    );
    secondary.thaw(5);
    assert_eq!(r.run().await.result, Ok(()));
}

#[tokio::test]
async fn types_rcodes_and_expected_values_against_knot() {
    let knot = Knot::primary(7, None);
    let at = knot.addr;
    let check = |query: &str, extra: &str| {
        runner(&format!(
            "kind: dns_lookup\nspec:\n  query: {query}\n  resolver: {at}\n  timeout: 1s\n{extra}"
        ))
        .0
    };
    for (query, extra) in [
        ("example.test", "  type: TXT\n  expect: [\"v=spf1 -all\"]\n"),
        (
            "example.test",
            "  type: MX\n  expect: [\"10 mail.example.test.\"]\n",
        ),
        ("example.test", "  type: NS\n  expect: [ns1.example.test]\n"),
        ("example.test", "  type: SOA\n"),
        ("www.example.test", "  type: A\n  expect: [192.0.2.10]\n"),
        (
            "www.example.test",
            "  type: AAAA\n  expect: [\"2001:DB8::10\"]\n",
        ),
        (
            "www.example.test",
            "  expect: [192.0.2.10, \"2001:db8::10\"]\n",
        ),
        (
            "ftp.example.test",
            "  type: CNAME\n  expect: [www.example.test.]\n",
        ),
        (
            "_sip._udp.example.test",
            "  type: SRV\n  expect: [\"10 60 5060 sip.example.test\"]\n",
        ),
        ("nope.example.test", "  rcode: NXDOMAIN\n"),
        // The SOA of a name inside the zone comes in the authority section of its answer.
        ("www.example.test", &format!("  soa_serial_of: {at}\n")),
    ] {
        let o = check(query, extra).run().await;
        assert_eq!(o.result, Ok(()), "{query} {extra}");
    }
    for (query, extra, want) in [
        (
            "www.example.test",
            "  type: A\n  expect: [192.0.2.99]\n",
            format!(
                "www.example.test A @{at}: `192.0.2.99` not among the A answers (`192.0.2.10`)"
            ),
        ),
        (
            "www.example.test",
            "  rcode: NXDOMAIN\n",
            format!(
                "www.example.test @{at}: answered NOERROR with 2 A or AAAA records, not NXDOMAIN"
            ),
        ),
        (
            "www.example.test",
            "  type: TXT\n",
            format!("www.example.test TXT @{at}: no TXT record (NOERROR with an empty answer)"),
        ),
        (
            "nope.example.test",
            "  type: MX\n",
            format!("nope.example.test MX @{at}: NXDOMAIN (the name does not exist)"),
        ),
        (
            "nope.example.test",
            "  rcode: SERVFAIL\n",
            format!(
                "nope.example.test @{at}: answered NXDOMAIN (the name does not exist), not SERVFAIL"
            ),
        ),
    ] {
        let o = check(query, extra).run().await;
        assert_eq!(failure(&o), want, "{query} {extra}");
    }
}

/// A primary that is silent, answers garbage or is not there: the zone check fails within
/// its timeout, naming the primary.
#[tokio::test]
async fn a_bad_primary_fails_the_check_within_the_timeout() {
    let knot = Knot::primary(7, None);
    let silent = Responder::start(Mode::Silent).await;
    let garbage = Responder::start(Mode::Garbage).await;
    let baseline = alive_tasks();
    for primary in [silent.addr, garbage.addr] {
        let (r, _) = runner(&zone(knot.addr, primary, "  tries: 2\n  interval: 0s\n"));
        let o = r.run().await;
        let msg = failure(&o);
        assert!(
            msg.contains(&format!("the primary {primary} (soa_serial_of): ")),
            "{msg}"
        );
        assert_within_worst_case(&r, &o);
    }
    assert!(
        wait_until(Duration::from_secs(2), || alive_tasks() <= baseline).await,
        "{} tasks alive, {baseline} before",
        alive_tasks()
    );
}
