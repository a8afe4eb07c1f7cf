//! A DNS responder on loopback that answers the way a test tells it to: an A record
//! (192.0.2.10), an AAAA record (2001:db8::10), NXDOMAIN, SERVFAIL, an empty answer,
//! garbage, an A record from another port, or nothing at all.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    A,
    Aaaa,
    NxDomain,
    ServFail,
    Empty,
    Garbage,
    /// The A record, sent from another port than the one asked.
    OtherPort,
    Silent,
}

/// A DNS responder on 127.0.0.1 with a free port.
pub struct Responder {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    queries: Arc<AtomicUsize>,
    questions: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Responder {
    pub async fn start(mode: Mode) -> Responder {
        let sock = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind the test responder");
        let other = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind the responder's other port");
        let addr = sock.local_addr().expect("responder address");
        let mode = Arc::new(Mutex::new(mode));
        let queries = Arc::new(AtomicUsize::new(0));
        let questions = Arc::new(Mutex::new(Vec::new()));
        let (m, q, asked) = (mode.clone(), queries.clone(), questions.clone());
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                q.fetch_add(1, Ordering::SeqCst);
                if let Some(question) = question(&buf[..n]) {
                    asked.lock().expect("questions lock").push(question);
                }
                let mode = *m.lock().expect("mode lock");
                if let Some(reply) = answer(&buf[..n], mode) {
                    let from_sock = if mode == Mode::OtherPort {
                        &other
                    } else {
                        &sock
                    };
                    let _ = from_sock.send_to(&reply, from).await;
                }
            }
        });
        Responder {
            addr,
            mode,
            queries,
            questions,
            task,
        }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().expect("mode lock") = mode;
    }

    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }

    /// The questions asked so far, in order, as `NAME TYPE` (`www.example.test AAAA`).
    pub fn questions(&self) -> Vec<String> {
        self.questions.lock().expect("questions lock").clone()
    }
}

/// The question of `query` as `NAME TYPE`.
fn question(query: &[u8]) -> Option<String> {
    let mut labels = Vec::new();
    let mut i = 12;
    loop {
        let len = usize::from(*query.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(i..i + len)?).into_owned());
        i += len;
    }
    let qtype = match u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]) {
        1 => "A".to_string(),
        28 => "AAAA".to_string(),
        t => format!("TYPE{t}"),
    };
    Some(format!("{} {qtype}", labels.join(".")))
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The reply to `query` in `mode`, built by hand (RFC 1035 §4.1).
pub fn answer(query: &[u8], mode: Mode) -> Option<Vec<u8>> {
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
        (Mode::A | Mode::OtherPort, 1) => Some(vec![192, 0, 2, 10]),
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
