//! `dns_lookup` against a small DNS responder on loopback that answers the way a test
//! tells it to: an A record, an AAAA record, NXDOMAIN, SERVFAIL, an empty answer, garbage,
//! or nothing at all.

pub mod common {
    pub mod checks;
    pub mod dns;
}

use std::net::SocketAddr;
use std::time::Duration;

use common::checks::{alive_tasks, assert_within_worst_case, failure, runner, wait_until};
use common::dns::{Mode, Responder};

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
