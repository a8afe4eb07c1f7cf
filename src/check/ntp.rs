//! `ntp`: one NTPv4 client request per attempt (RFC 5905), over a fresh UDP socket.
//!
//! The request carries our transmit timestamp (its fraction random, so that an off-path
//! sender cannot guess it); a reply counts only if it comes from the server's address and
//! port, is at least 48 bytes, is in server mode (4) of version 3 or 4, has a non-zero
//! transmit timestamp, and its origin timestamp is our transmit timestamp. Anything else is
//! dropped and counted, and the attempt goes on waiting until its (soft) deadline, when the
//! failure says what was dropped: a spoofed packet cannot make the check fail early, nor
//! pass. Datagrams are read into a fixed 512-byte buffer, so nothing a server sends grows
//! anything.
//!
//! A valid reply fails on a Kiss-o'-Death (stratum 0 with a kiss code), leap indicator 3,
//! stratum 0 or above `max_stratum`, or |offset| above `max_offset`, where offset = ((T2 −
//! T1) + (T3 − T4)) / 2 (T1 our send, T2 the server's receive, T3 its transmit, T4 our
//! receive; differences in 64-bit NTP arithmetic, so NTP's era wrap in 2036 changes nothing).
//! Metrics, labels {service, check}: the stratum of the last valid reply, and the offset of
//! the last synchronised one.
//!
//! This file is the kind's prober; its spec is `config/checks/ntp.rs`.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics::Gauge;
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::probe::{AttemptFuture, Check, CheckContext, Failure, soft_deadline};
use super::resolve;
use crate::config::checks::attempts::KindSpec;
use crate::config::checks::ntp::Spec;
use crate::duration::Dur;
use crate::metrics::names;

/// The size of an NTP packet without extension fields.
pub const PACKET: usize = 48;

/// The most of a datagram read: an NTP header and room for extension fields; a larger
/// datagram is truncated to it by the kernel.
const RECEIVE_BUFFER: usize = 512;

/// Seconds from NTP's epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// The prober of `spec`.
pub fn build(spec: &Spec, ctx: &CheckContext) -> Result<Box<dyn Check>, String> {
    let (host, port) = spec.host_port()?;
    let labels = [
        ("service", ctx.service.as_str()),
        ("check", ctx.check.as_str()),
    ];
    Ok(Box::new(Ntp {
        host,
        port,
        target: spec.target(),
        limits: Limits {
            max_offset: spec.max_offset.0,
            max_stratum: spec.max_stratum,
        },
        timeout: spec.attempts().timeout,
        offset: ctx.metrics.gauge(names::CHECK_NTP_OFFSET, &labels),
        stratum: ctx.metrics.gauge(names::CHECK_NTP_STRATUM, &labels),
    }))
}

struct Ntp {
    host: String,
    port: u16,
    /// `ntp host:port`, the head of every failure message.
    target: String,
    limits: Limits,
    timeout: Duration,
    offset: Gauge,
    stratum: Gauge,
}

/// What a valid reply must show.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_offset: Duration,
    max_stratum: u32,
}

impl Ntp {
    async fn probe(&self) -> Result<(), Failure> {
        let deadline = Instant::now() + soft_deadline(self.timeout);
        let fail = |m: String| Failure(format!("{}: {m}", self.target));
        let ip = match self.host.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => resolve::first_address(&self.host, self.timeout, deadline)
                .await
                .map_err(fail)?,
        };
        let server = SocketAddr::new(ip, self.port);
        let local: SocketAddr = match ip {
            IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            IpAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let sock = UdpSocket::bind(local)
            .await
            .map_err(|e| fail(format!("cannot open a UDP socket: {e}")))?;
        let (request, sent) = request(SystemTime::now());
        sock.send_to(&request, server)
            .await
            .map_err(|e| fail(format!("cannot send to {server}: {e}")))?;
        let mut dropped = Dropped::default();
        let mut buf = [0u8; RECEIVE_BUFFER];
        loop {
            let (n, from) = match tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await
            {
                Ok(Ok(r)) => r,
                // ICMP port unreachable comes back as an error on Linux for a UDP socket only
                // when connected; on an unconnected one other errors are the local system's.
                Ok(Err(e)) => return Err(fail(format!("receiving failed: {e}"))),
                Err(_) => {
                    return Err(fail(format!(
                        "no valid reply within {}{}",
                        Dur(self.timeout),
                        dropped.describe()
                    )));
                }
            };
            let received = ntp_time(SystemTime::now());
            if from != server {
                dropped.other_source += 1;
                dropped.last_source = Some(from);
                continue;
            }
            match Reply::parse(&buf[..n], sent.transmit) {
                Ok(reply) => {
                    let verdict = reply.judge(sent.t1, received, self.limits);
                    self.stratum.set(f64::from(reply.stratum));
                    if let Some(offset) = verdict.offset {
                        self.offset.set(offset);
                    }
                    return verdict.result.map_err(fail);
                }
                Err(why) => dropped.count(why),
            }
        }
    }
}

impl Check for Ntp {
    fn attempt(&self) -> AttemptFuture<'_> {
        Box::pin(self.probe())
    }
}

/// What our request said: T1 (when it left, to the clock's precision) and the transmit
/// timestamp it carried (T1's seconds, a random fraction), which the reply must echo.
#[derive(Debug, Clone, Copy)]
struct Sent {
    t1: u64,
    transmit: u64,
}

/// A client request (LI 0, version 4, mode 3) sent at `now`.
fn request(now: SystemTime) -> ([u8; PACKET], Sent) {
    let t1 = ntp_time(now);
    let transmit = (t1 & 0xffff_ffff_0000_0000) | (random_u32() as u64);
    let mut p = [0u8; PACKET];
    p[0] = 4 << 3 | 3;
    p[40..48].copy_from_slice(&transmit.to_be_bytes());
    (p, Sent { t1, transmit })
}

/// 32 unpredictable bits, from the standard library's randomly keyed hasher.
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish() as u32
}

/// `t` as an NTP timestamp: seconds since 1900 (modulo 2^32: the era) and a 32-bit fraction.
fn ntp_time(t: SystemTime) -> u64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = (d.as_secs() + NTP_UNIX_OFFSET) & 0xffff_ffff;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    secs << 32 | frac
}

/// `a − b` in seconds, NTP timestamps compared in 64-bit modular arithmetic (valid while
/// they are less than 68 years apart, whatever the era).
fn diff(a: u64, b: u64) -> i128 {
    i128::from(a.wrapping_sub(b) as i64)
}

/// A fixed-point 32.32 number of seconds as f64.
fn seconds(fixed: i128) -> f64 {
    fixed as f64 / 4_294_967_296.0
}

/// Why a datagram from the server was not a reply to this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Discard {
    Short(usize),
    NotServer(u8),
    Version(u8),
    Origin,
    NoTransmit,
}

/// The datagrams dropped while waiting, for the failure message.
#[derive(Debug, Default)]
struct Dropped {
    other_source: u32,
    last_source: Option<SocketAddr>,
    short: u32,
    not_server: u32,
    version: u32,
    origin: u32,
    no_transmit: u32,
}

impl Dropped {
    fn count(&mut self, why: Discard) {
        let n = match why {
            Discard::Short(_) => &mut self.short,
            Discard::NotServer(_) => &mut self.not_server,
            Discard::Version(_) => &mut self.version,
            Discard::Origin => &mut self.origin,
            Discard::NoTransmit => &mut self.no_transmit,
        };
        *n = n.saturating_add(1);
    }

    /// ` (is an NTP server ...)` or ` (dropped: ...)`.
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.other_source > 0 {
            let mut s = format!("{} from another address or port", self.other_source);
            if let Some(a) = self.last_source {
                let _ = write!(s, " (last {a})");
            }
            parts.push(s);
        }
        for (n, what) in [
            (self.short, "shorter than an NTP packet (48 bytes)"),
            (self.not_server, "not in server mode"),
            (self.version, "not NTP version 3 or 4"),
            (
                self.origin,
                "whose origin timestamp is not this request's (spoofed, or late)",
            ),
            (self.no_transmit, "with no transmit timestamp"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        if parts.is_empty() {
            " (nothing came back: is an NTP server listening there?)".to_string()
        } else {
            format!(" (dropped: {})", parts.join("; "))
        }
    }
}

/// The fields of a valid reply that the check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reply {
    leap: u8,
    stratum: u8,
    reference_id: [u8; 4],
    /// T2: when the server received the request.
    receive: u64,
    /// T3: when the server sent the reply.
    transmit: u64,
}

/// What a valid reply says: pass or fail, and the offset when the server is synchronised.
#[derive(Debug, PartialEq)]
struct Verdict {
    result: Result<(), String>,
    offset: Option<f64>,
}

impl Reply {
    /// The reply in `p`, if it is a server's answer to the request whose transmit timestamp
    /// was `ours`.
    fn parse(p: &[u8], ours: u64) -> Result<Reply, Discard> {
        let header: &[u8; PACKET] = p
            .get(..PACKET)
            .and_then(|h| h.try_into().ok())
            .ok_or(Discard::Short(p.len()))?;
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&header[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let mode = header[0] & 0x7;
        let version = (header[0] >> 3) & 0x7;
        if mode != 4 {
            return Err(Discard::NotServer(mode));
        }
        if !(3..=4).contains(&version) {
            return Err(Discard::Version(version));
        }
        if u64_at(24) != ours {
            return Err(Discard::Origin);
        }
        let transmit = u64_at(40);
        if transmit == 0 {
            return Err(Discard::NoTransmit);
        }
        Ok(Reply {
            leap: header[0] >> 6,
            stratum: header[1],
            reference_id: [header[12], header[13], header[14], header[15]],
            receive: u64_at(32),
            transmit,
        })
    }

    /// Judges the reply to a request sent at `t1` and received back at `t4`.
    fn judge(&self, t1: u64, t4: u64, limits: Limits) -> Verdict {
        let fail = |m: String| Verdict {
            result: Err(m),
            offset: None,
        };
        if self.stratum == 0 {
            return match kiss_code(self.reference_id) {
                Some(code) => fail(format!("Kiss-o'-Death {code}: {}", kiss_meaning(&code))),
                None if self.leap == 3 => fail(unsynchronised()),
                None => fail(
                    "stratum 0 (unspecified) without a kiss code: the server gives no time"
                        .to_string(),
                ),
            };
        }
        if self.leap == 3 {
            return fail(unsynchronised());
        }
        if u32::from(self.stratum) > crate::config::checks::ntp::MAX_STRATUM {
            return fail(format!(
                "stratum {}: the server is not synchronised",
                self.stratum
            ));
        }
        let offset = seconds((diff(self.receive, t1) + diff(self.transmit, t4)) / 2);
        let result = if u32::from(self.stratum) > limits.max_stratum {
            Err(format!(
                "stratum {}, above max_stratum {}",
                self.stratum, limits.max_stratum
            ))
        } else if offset.abs() > limits.max_offset.as_secs_f64() {
            Err(format!(
                "its clock is {} this host's, more than max_offset {}",
                describe_offset(offset),
                Dur(limits.max_offset)
            ))
        } else {
            Ok(())
        };
        Verdict {
            result,
            offset: Some(offset),
        }
    }
}

fn unsynchronised() -> String {
    "not synchronised (leap indicator 3: the server says its clock is not set)".to_string()
}

/// `1.5s ahead of` / `250ms behind`: the server's clock against ours.
fn describe_offset(offset: f64) -> String {
    // Milliseconds are enough to read (humantime would print every nanosecond); `as`
    // saturates an absurd offset.
    let ms = (offset.abs() * 1e3).round();
    let shown = if ms >= 1.0 {
        Dur(Duration::from_millis(ms as u64)).to_string()
    } else {
        format!("{}µs", (offset.abs() * 1e6).round() as u64)
    };
    if offset >= 0.0 {
        format!("{shown} ahead of")
    } else {
        format!("{shown} behind")
    }
}

/// The kiss code of a stratum-0 reply: four printable ASCII characters (RFC 5905, 7.4).
fn kiss_code(id: [u8; 4]) -> Option<String> {
    let code: String = id
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| char::from(*b))
        .collect();
    (!code.is_empty() && code.chars().all(|c| c.is_ascii_graphic())).then_some(code)
}

fn kiss_meaning(code: &str) -> &'static str {
    match code {
        "DENY" | "RSTR" => "the server refuses to serve this host (access denied)",
        "RATE" => "the server asks to be queried less often (rate exceeded)",
        _ => "the server will not serve this request",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: u64 = 0xe000_0000_0000_0000;

    fn packet(first: u8, stratum: u8, refid: &[u8; 4], origin: u64, rx: u64, tx: u64) -> Vec<u8> {
        let mut p = vec![0u8; PACKET];
        p[0] = first;
        p[1] = stratum;
        p[12..16].copy_from_slice(refid);
        p[24..32].copy_from_slice(&origin.to_be_bytes());
        p[32..40].copy_from_slice(&rx.to_be_bytes());
        p[40..48].copy_from_slice(&tx.to_be_bytes());
        p
    }

    /// LI 0, version 4, mode 4.
    const SERVER: u8 = 4 << 3 | 4;

    fn limits() -> Limits {
        Limits {
            max_offset: Duration::from_secs(1),
            max_stratum: 15,
        }
    }

    #[test]
    fn a_request_is_a_version_4_client_packet_with_our_seconds() {
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let (p, sent) = request(now);
        assert_eq!(p[0], 0x23);
        assert_eq!(
            u64::from_be_bytes(p[40..48].try_into().expect("8")),
            sent.transmit
        );
        assert_eq!(sent.transmit >> 32, sent.t1 >> 32);
        assert_eq!(sent.t1 >> 32, 1_700_000_000 + NTP_UNIX_OFFSET);
        // 0.25 s as a fraction of 2^32.
        assert_eq!(sent.t1 & 0xffff_ffff, 1 << 30);
        assert!(p[1..40].iter().all(|b| *b == 0));
    }

    #[test]
    fn offsets_follow_rfc_5905() {
        let s = 1u64 << 32;
        // The server is 10 s ahead; 20 ms each way, 1 ms in the server.
        let (t1, t2, t3, t4) = (
            T1,
            T1 + 10 * s + s / 50,
            T1 + 10 * s + s / 50 + s / 1000,
            T1 + s / 25 + s / 1000,
        );
        let r = Reply::parse(&packet(SERVER, 2, b"GPS\0", T1, t2, t3), T1).expect("valid");
        let v = r.judge(t1, t4, limits());
        let offset = v.offset.expect("an offset");
        assert!((offset - 10.0).abs() < 1e-6, "{offset}");
        assert_eq!(
            v.result,
            Err("its clock is 10s ahead of this host's, more than max_offset 1s".to_string())
        );
        // Behind, and across the NTP era boundary (2036): T1 just before, the server just after.
        let t1 = u64::MAX - s / 2;
        let r = Reply::parse(&packet(SERVER, 2, b"GPS\0", t1, s / 4, s / 4), t1).expect("valid");
        let v = r.judge(t1, t1.wrapping_add(s / 10), limits());
        let offset = v.offset.expect("an offset");
        assert!((offset - 0.7).abs() < 1e-6, "{offset}");
        assert_eq!(v.result, Ok(()));
        let r = Reply::parse(&packet(SERVER, 2, b"GPS\0", T1, T1 - 3 * s, T1 - 3 * s), T1)
            .expect("valid");
        assert_eq!(
            r.judge(T1, T1, limits()).result,
            Err("its clock is 3s behind this host's, more than max_offset 1s".to_string())
        );
    }

    #[test]
    fn what_fails_and_why() {
        let judge = |first: u8, stratum: u8, refid: &[u8; 4]| {
            Reply::parse(&packet(first, stratum, refid, T1, T1, T1), T1)
                .expect("valid")
                .judge(
                    T1,
                    T1,
                    Limits {
                        max_offset: Duration::from_secs(1),
                        max_stratum: 8,
                    },
                )
                .result
        };
        assert_eq!(judge(SERVER, 8, b"\x7f\x7f\x01\x01"), Ok(()));
        assert_eq!(
            judge(SERVER, 0, b"RATE"),
            Err(
                "Kiss-o'-Death RATE: the server asks to be queried less often (rate exceeded)"
                    .into()
            )
        );
        assert_eq!(
            judge(3 << 6 | SERVER, 0, b"DENY"),
            Err("Kiss-o'-Death DENY: the server refuses to serve this host (access denied)".into())
        );
        // What chrony answers once it has no reference: leap 3, stratum 0, no code.
        assert_eq!(
            judge(3 << 6 | SERVER, 0, b"\0\0\0\0"),
            Err(unsynchronised())
        );
        assert_eq!(judge(3 << 6 | SERVER, 3, b"GPS\0"), Err(unsynchronised()));
        assert_eq!(
            judge(SERVER, 0, b"\x01\x02\x03\x04"),
            Err("stratum 0 (unspecified) without a kiss code: the server gives no time".into())
        );
        assert_eq!(
            judge(SERVER, 16, b"\0\0\0\0"),
            Err("stratum 16: the server is not synchronised".into())
        );
        assert_eq!(
            judge(SERVER, 9, b"\0\0\0\0"),
            Err("stratum 9, above max_stratum 8".into())
        );
        // Leap indicators 1 and 2 announce a leap second: synchronised.
        assert_eq!(judge(1 << 6 | SERVER, 2, b"GPS\0"), Ok(()));
        // Version 3 servers are read too.
        assert_eq!(judge(3 << 3 | 4, 2, b"GPS\0"), Ok(()));
    }

    #[test]
    fn what_is_dropped() {
        let p = packet(SERVER, 2, b"GPS\0", T1, T1, T1);
        assert_eq!(Reply::parse(&p[..47], T1), Err(Discard::Short(47)));
        assert_eq!(Reply::parse(&[], T1), Err(Discard::Short(0)));
        assert_eq!(Reply::parse(&p, T1 + 1), Err(Discard::Origin));
        // Our own request echoed back.
        let (req, sent) = request(SystemTime::now());
        assert_eq!(
            Reply::parse(&req, sent.transmit),
            Err(Discard::NotServer(3))
        );
        assert_eq!(
            Reply::parse(&packet(5 << 3 | 4, 2, b"GPS\0", T1, T1, T1), T1),
            Err(Discard::Version(5))
        );
        assert_eq!(
            Reply::parse(&packet(SERVER, 2, b"GPS\0", T1, T1, 0), T1),
            Err(Discard::NoTransmit)
        );
        // Extension fields after the header are allowed (and not read).
        let mut long = p.clone();
        long.extend_from_slice(&[0u8; 64]);
        assert!(Reply::parse(&long, T1).is_ok());
        let mut d = Dropped::default();
        assert_eq!(
            d.describe(),
            " (nothing came back: is an NTP server listening there?)"
        );
        d.count(Discard::Origin);
        d.other_source = 2;
        d.last_source = Some("127.0.0.1:4000".parse().expect("addr"));
        assert_eq!(
            d.describe(),
            " (dropped: 2 from another address or port (last 127.0.0.1:4000); 1 whose origin timestamp is not this request's (spoofed, or late))"
        );
    }

    #[test]
    fn offsets_read_well() {
        assert_eq!(describe_offset(2.5), "2s500ms ahead of");
        assert_eq!(describe_offset(-0.25), "250ms behind");
        assert_eq!(describe_offset(0.0004), "400µs ahead of");
        assert_eq!(
            describe_offset(1e300),
            format!("{} ahead of", Dur(Duration::from_millis(u64::MAX)))
        );
    }
}
