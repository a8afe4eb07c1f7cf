//! `dns_lookup` against a small DNS responder on loopback that answers the way a test
//! tells it to: an A record, an AAAA record, NXDOMAIN, SERVFAIL, an empty answer, garbage,
//! or nothing at all.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::checks::{alive_tasks, assert_within_worst_case, failure, runner, wait_until};
use tokio::net::UdpSocket;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    A,
    Aaaa,
    NxDomain,
    ServFail,
    Empty,
    Garbage,
    Silent,
}

/// A DNS responder on 127.0.0.1 with a free port.
struct Responder {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    queries: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Responder {
    async fn start(mode: Mode) -> Responder {
        let sock = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind the test responder");
        let addr = sock.local_addr().expect("responder address");
        let mode = Arc::new(Mutex::new(mode));
        let queries = Arc::new(AtomicUsize::new(0));
        let (m, q) = (mode.clone(), queries.clone());
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                q.fetch_add(1, Ordering::SeqCst);
                let mode = *m.lock().expect("mode lock");
                if let Some(reply) = answer(&buf[..n], mode) {
                    let _ = sock.send_to(&reply, from).await;
                }
            }
        });
        Responder {
            addr,
            mode,
            queries,
            task,
        }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().expect("mode lock") = mode;
    }

    fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The reply to `query` in `mode`, built by hand (RFC 1035 §4.1).
fn answer(query: &[u8], mode: Mode) -> Option<Vec<u8>> {
    match mode {
        Mode::Silent => return None,
        Mode::Garbage => return Some(b"\xde\xad\xbe\xef not a DNS message at all".to_vec()),
        _ => {}
    }
    // The question: the name's labels, a zero, then QTYPE and QCLASS.
    let mut i = 12;
    loop {
        let len = usize::from(*query.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        i += len;
    }
    let qtype = u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]);
    let question = query.get(12..i + 4)?;
    let rcode = match mode {
        Mode::NxDomain => 3,
        Mode::ServFail => 2,
        _ => 0,
    };
    let rdata: Option<Vec<u8>> = match (mode, qtype) {
        (Mode::A, 1) => Some(vec![192, 0, 2, 10]),
        (Mode::Aaaa, 28) => Some(
            "2001:db8::10"
                .parse::<std::net::Ipv6Addr>()
                .ok()?
                .octets()
                .to_vec(),
        ),
        _ => None,
    };
    let mut r = Vec::with_capacity(128);
    r.extend_from_slice(query.get(0..2)?); // ID
    r.push(0x80 | 0x04 | (query.get(2)? & 0x01)); // QR, AA, RD as asked
    r.push(0x80 | rcode); // RA, RCODE
    r.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    r.extend_from_slice(&u16::from(rdata.is_some()).to_be_bytes()); // ANCOUNT
    r.extend_from_slice(&[0, 0, 0, 0]); // NSCOUNT, ARCOUNT
    r.extend_from_slice(question);
    if let Some(d) = rdata {
        r.extend_from_slice(&[0xc0, 0x0c]); // the name of the question
        r.extend_from_slice(&qtype.to_be_bytes());
        r.extend_from_slice(&1u16.to_be_bytes()); // IN
        r.extend_from_slice(&60u32.to_be_bytes()); // TTL
        r.extend_from_slice(&u16::try_from(d.len()).ok()?.to_be_bytes());
        r.extend_from_slice(&d);
    }
    Some(r)
}

fn yaml(resolver: SocketAddr, tries: u32, timeout: &str) -> String {
    format!(
        "kind: dns_lookup\nspec:\n  query: www.example.test\n  resolver: {resolver}\n  \
         tries: {tries}\n  interval: 50ms\n  timeout: {timeout}\n"
    )
}

#[tokio::test]
async fn passes_on_an_a_record() {
    let srv = Responder::start(Mode::A).await;
    let (r, _) = runner(&yaml(srv.addr, 1, "2s"));
    let o = r.run().await;
    assert!(o.passed(), "{o:?}");
    assert!(srv.queries() >= 1);
}

#[tokio::test]
async fn passes_on_an_aaaa_record_alone() {
    let srv = Responder::start(Mode::Aaaa).await;
    let (r, _) = runner(&yaml(srv.addr, 1, "2s"));
    let o = r.run().await;
    assert!(o.passed(), "{o:?}");
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
    assert!(r.run().await.passed());
    let asked = srv.queries();
    // The name disappears: the next run must ask again and see it gone.
    srv.set(Mode::NxDomain);
    let o = r.run().await;
    assert!(failure(&o).contains("NXDOMAIN"));
    assert!(srv.queries() > asked);
    srv.set(Mode::A);
    assert!(r.run().await.passed());
}
