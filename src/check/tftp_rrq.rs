//! `tftp_rrq`: passes if the file at `tftp://host:port/path` can be read (and, when
//! `expected_sha256` is given, has that hash).
//!
//! A small RFC 1350 client (octet mode, 512-byte blocks) over a tokio socket, written for a
//! health check that may face a hostile or broken server: the file is hashed as it arrives
//! and never held in memory, at most [`MAX_FILE_BYTES`] are read, DATA blocks are accepted
//! only in order and only from the server's transfer ID (a retransmitted block is
//! acknowledged again, never hashed twice), the block number may wrap past 65535, and
//! everything is one future that the attempt's timeout drops. A stalled transfer fails with
//! how far it got.
//!
//! This file is the kind's prober; its spec is `config/checks/tftp_rrq.rs`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::probe::{AttemptFuture, Check, CheckContext, Failure, soft_deadline};
use super::resolve;
use crate::config::checks::tftp_rrq::{Location, ServerHost, Spec};
use crate::duration::Dur;

/// The largest file a check reads; a bigger one fails (the transfer is abandoned there).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// RFC 1350's block size.
const BLOCK: usize = 512;

const OP_RRQ: u16 = 1;

const OP_DATA: u16 = 3;

const OP_ACK: u16 = 4;

const OP_ERROR: u16 = 5;

/// The prober of `spec`.
pub fn build(spec: &Spec, _ctx: &CheckContext) -> Result<Box<dyn Check>, String> {
    Ok(Box::new(TftpRrq {
        url: spec.url.clone(),
        location: spec.location()?,
        expected_sha256: spec
            .expected_sha256
            .as_ref()
            .map(|h| h.to_ascii_lowercase()),
        timeout: spec.timeout.0,
        limit: MAX_FILE_BYTES,
    }))
}

struct TftpRrq {
    url: String,
    location: Location,
    /// Lower case.
    expected_sha256: Option<String>,
    timeout: Duration,
    /// [`MAX_FILE_BYTES`], smaller in tests.
    limit: u64,
}

impl TftpRrq {
    async fn probe(&self) -> Result<(), Failure> {
        let deadline = Instant::now() + soft_deadline(self.timeout);
        let fail = |m: String| Failure(format!("{}: {m}", self.url));
        let ip = match &self.location.host {
            ServerHost::Ip(ip) => *ip,
            ServerHost::Name(name) => resolve::first_address(name, self.timeout, deadline)
                .await
                .map_err(fail)?,
        };
        let server = SocketAddr::new(ip, self.location.port);
        let local: SocketAddr = match ip {
            IpAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let sock = UdpSocket::bind(local)
            .await
            .map_err(|e| fail(format!("cannot open a UDP socket: {e}")))?;
        let mut t = Transfer::new(self.limit, retransmit_after(self.timeout));
        let result =
            tokio::time::timeout_at(deadline, t.run(&sock, server, &self.location.file)).await;
        let digest = match result {
            Ok(Ok(digest)) => digest,
            Ok(Err(m)) => {
                t.abandon(&sock, &m);
                return Err(fail(m));
            }
            Err(_) => {
                t.abandon(&sock, "timed out");
                return Err(fail(t.stalled(Dur(self.timeout))));
            }
        };
        if let Some(want) = &self.expected_sha256
            && *want != digest
        {
            return Err(fail(format!(
                "sha256 of the {} bytes read is {digest}, expected {want}",
                t.bytes
            )));
        }
        Ok(())
    }
}

impl Check for TftpRrq {
    fn attempt(&self) -> AttemptFuture<'_> {
        Box::pin(self.probe())
    }
}

/// How long to wait for a packet before sending the last one again (RFC 1350: the sender
/// of a lost packet times out and retransmits).
fn retransmit_after(timeout: Duration) -> Duration {
    (timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// The state of one read, kept outside the transfer future so that a timeout can still say
/// how far it got.
struct Transfer {
    limit: u64,
    retransmit: Duration,
    hasher: Sha256,
    /// Bytes hashed so far.
    bytes: u64,
    /// DATA blocks accepted so far.
    blocks: u64,
    /// The server's transfer ID: the address its first DATA came from.
    tid: Option<SocketAddr>,
}

impl Transfer {
    fn new(limit: u64, retransmit: Duration) -> Transfer {
        Transfer {
            limit,
            retransmit,
            hasher: Sha256::new(),
            bytes: 0,
            blocks: 0,
            tid: None,
        }
    }

    /// Reads the whole file; returns its SHA-256 in lower-case hex.
    async fn run(
        &mut self,
        sock: &UdpSocket,
        server: SocketAddr,
        file: &str,
    ) -> Result<String, String> {
        let mut last = rrq(file);
        let mut dest = server;
        send(sock, &last, dest).await?;
        // One byte more than the largest valid packet, to notice oversized ones.
        let mut buf = [0u8; 4 + BLOCK + 1];
        let mut expected: u16 = 1;
        loop {
            let (n, from) =
                match tokio::time::timeout(self.retransmit, sock.recv_from(&mut buf)).await {
                    Err(_) => {
                        send(sock, &last, dest).await?;
                        continue;
                    }
                    Ok(Err(e)) => return Err(format!("cannot receive: {e}")),
                    Ok(Ok(got)) => got,
                };
            // Only the server may answer, and once it has picked its transfer ID, only
            // from there (RFC 1350 §4): anything else is ignored.
            if from.ip() != server.ip() || self.tid.is_some_and(|t| t != from) {
                continue;
            }
            let packet = &buf[..n];
            let Some(opcode) = be16(packet, 0) else {
                continue;
            };
            match opcode {
                OP_ERROR => return Err(server_error(packet)),
                OP_DATA => {}
                other => {
                    return Err(format!(
                        "the server sent an unexpected TFTP packet (opcode {other}) instead of DATA"
                    ));
                }
            }
            let Some(block) = be16(packet, 2) else {
                return Err("the server sent a truncated DATA packet".to_string());
            };
            let data = &packet[4..];
            if data.len() > BLOCK {
                return Err(format!(
                    "DATA block {block} is larger than {BLOCK} bytes: not a TFTP server?"
                ));
            }
            if self.tid.is_none() {
                self.tid = Some(from);
                dest = from;
            }
            if block == expected {
                self.bytes += data.len() as u64;
                if self.bytes > self.limit {
                    return Err(format!(
                        "the file is larger than {}; not read further",
                        size(self.limit)
                    ));
                }
                self.hasher.update(data);
                self.blocks += 1;
                last = ack(block).to_vec();
                send(sock, &last, dest).await?;
                if data.len() < BLOCK {
                    return Ok(hex(&std::mem::take(&mut self.hasher).finalize()));
                }
                // Block numbers wrap from 65535 to 0 on long files.
                expected = expected.wrapping_add(1);
            } else if self.blocks > 0 && block == expected.wrapping_sub(1) {
                // Our ACK was lost and the server sent the block again: acknowledge it
                // again, without hashing it twice.
                send(sock, &ack(block), dest).await?;
            }
            // Any other block number is stale or bogus: ignored.
        }
    }

    /// Why a transfer that timed out did not finish.
    fn stalled(&self, timeout: Dur) -> String {
        if self.tid.is_none() {
            format!(
                "no answer to the read request within {timeout} (is a TFTP server listening there?)"
            )
        } else {
            format!(
                "the transfer stalled after block {} ({} bytes): no further DATA within {timeout}",
                self.blocks, self.bytes
            )
        }
    }

    /// Tells the server, best effort and without waiting, that this transfer is over.
    fn abandon(&self, sock: &UdpSocket, why: &str) {
        if let Some(tid) = self.tid {
            let mut p = Vec::with_capacity(5 + why.len());
            p.extend_from_slice(&OP_ERROR.to_be_bytes());
            p.extend_from_slice(&0u16.to_be_bytes());
            p.extend_from_slice(why.as_bytes());
            p.push(0);
            let _ = sock.try_send_to(&p, tid);
        }
    }
}

async fn send(sock: &UdpSocket, packet: &[u8], to: SocketAddr) -> Result<(), String> {
    sock.send_to(packet, to)
        .await
        .map(|_| ())
        .map_err(|e| format!("cannot send to {to}: {e}"))
}

fn rrq(file: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(2 + file.len() + 1 + 6);
    p.extend_from_slice(&OP_RRQ.to_be_bytes());
    p.extend_from_slice(file.as_bytes());
    p.push(0);
    p.extend_from_slice(b"octet\0");
    p
}

fn ack(block: u16) -> [u8; 4] {
    let [a, b] = OP_ACK.to_be_bytes();
    let [c, d] = block.to_be_bytes();
    [a, b, c, d]
}

fn be16(p: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(at)?, *p.get(at + 1)?]))
}

/// An ERROR packet in words. The server's message is cut short and stripped of control
/// characters: it goes into logs.
fn server_error(packet: &[u8]) -> String {
    let code = be16(packet, 2).unwrap_or(0);
    let meaning = match code {
        1 => "file not found",
        2 => "access violation",
        3 => "disk full",
        4 => "illegal TFTP operation",
        5 => "unknown transfer ID",
        6 => "file already exists",
        7 => "no such user",
        8 => "option negotiation refused",
        _ => "error",
    };
    let raw = packet.get(4..).unwrap_or_default();
    let raw = raw.split(|b| *b == 0).next().unwrap_or_default();
    let msg: String = String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    if msg.is_empty() {
        format!("server answered ERROR {code} ({meaning})")
    } else {
        format!("server answered ERROR {code} ({meaning}): {msg}")
    }
}

/// `64 MiB`, or a count of bytes when that is not a whole number of MiB.
fn size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_are_sanitised() {
        let mut p = vec![0, 5, 0, 1];
        p.extend_from_slice(b"no \x1b[31msuch\nfile\0trailing");
        assert_eq!(
            server_error(&p),
            "server answered ERROR 1 (file not found): no [31msuchfile"
        );
        assert_eq!(server_error(&[0, 5]), "server answered ERROR 0 (error)");
    }

    /// A server that never ends its file: every ACK gets another full block.
    async fn endless_server() -> SocketAddr {
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = sock.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut buf = [0u8; 600];
            let mut block: u16 = 0;
            while let Ok((_, from)) = sock.recv_from(&mut buf).await {
                if buf[1] == OP_ERROR as u8 {
                    break;
                }
                block = block.wrapping_add(1);
                let mut p = vec![0, OP_DATA as u8];
                p.extend_from_slice(&block.to_be_bytes());
                p.extend_from_slice(&[0x55; BLOCK]);
                let _ = sock.send_to(&p, from).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn an_endless_file_is_cut_at_the_limit() {
        let addr = endless_server().await;
        let check = TftpRrq {
            url: format!("tftp://{addr}/zero"),
            location: Location {
                host: ServerHost::Ip(addr.ip()),
                port: addr.port(),
                file: "zero".into(),
            },
            expected_sha256: None,
            timeout: Duration::from_secs(10),
            limit: 64 * 1024,
        };
        let e = check.probe().await.expect_err("must fail");
        assert!(
            e.0.ends_with("larger than 65536 bytes; not read further"),
            "{e}"
        );
        assert_eq!(size(MAX_FILE_BYTES), "64 MiB");
    }
}
