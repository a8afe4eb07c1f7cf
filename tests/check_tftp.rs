//! `tftp_rrq` against a TFTP server in the test (RFC 1350 over a tokio socket: RRQ, then
//! DATA/ACK in 512-byte blocks from a fresh port, ERROR for a missing file) that can also
//! stall after the first block or send every block twice, and against a silent port.

pub mod common {
    pub mod checks;
}

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::checks::{assert_within_worst_case, failure, runner};
use sha2::{Digest, Sha256};
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Behaviour {
    Normal,
    /// Sends block 1, then nothing more, whatever the client does.
    StallAfterFirstBlock,
    /// Sends every DATA packet twice.
    Duplicates,
}

struct Server {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Dropping the task drops its JoinSet, which aborts every transfer.
        self.task.abort();
    }
}

impl Server {
    async fn start(files: &[(&str, Vec<u8>)], behaviour: Behaviour) -> Server {
        let files: Arc<HashMap<String, Vec<u8>>> = Arc::new(
            files
                .iter()
                .map(|(n, d)| ((*n).to_string(), d.clone()))
                .collect(),
        );
        let sock = UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind the test TFTP server");
        let addr = sock.local_addr().expect("server address");
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            let mut transfers = JoinSet::new();
            let mut buf = [0u8; 600];
            while let Ok((n, client)) = sock.recv_from(&mut buf).await {
                let Some(name) = parse_rrq(&buf[..n]) else {
                    continue;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let file = files.get(&name).cloned();
                transfers.spawn(transfer(client, name, file, behaviour));
            }
        });
        Server {
            addr,
            requests,
            task,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// The file name of a read request in octet mode.
fn parse_rrq(p: &[u8]) -> Option<String> {
    if p.get(0..2)? != [0, 1] {
        return None;
    }
    let mut parts = p[2..].split(|b| *b == 0);
    let name = String::from_utf8(parts.next()?.to_vec()).ok()?;
    let mode = parts.next()?;
    mode.eq_ignore_ascii_case(b"octet").then_some(name)
}

/// One transfer, from its own port (the server's transfer ID).
async fn transfer(client: SocketAddr, name: String, file: Option<Vec<u8>>, b: Behaviour) {
    let Ok(sock) = UdpSocket::bind("127.0.0.1:0").await else {
        return;
    };
    let Some(data) = file else {
        let mut e = vec![0, 5, 0, 1];
        e.extend_from_slice(format!("File not found: {name}").as_bytes());
        e.push(0);
        let _ = sock.send_to(&e, client).await;
        return;
    };
    // n blocks of 512 bytes, the last one shorter (possibly empty).
    let blocks = data.len() / 512 + 1;
    for i in 0..blocks {
        let block = u16::try_from((i + 1) % 65536).expect("block number");
        let chunk = &data[i * 512..((i + 1) * 512).min(data.len())];
        let mut p = vec![0, 3];
        p.extend_from_slice(&block.to_be_bytes());
        p.extend_from_slice(chunk);
        if b == Behaviour::StallAfterFirstBlock && i == 1 {
            // Keep the port open and say nothing more.
            std::future::pending::<()>().await;
        }
        // Send, then wait for this block's ACK; stale ACKs are ignored (answering them
        // would be the Sorcerer's Apprentice bug), silence means send again.
        let mut acked = false;
        for _ in 0..5 {
            let _ = sock.send_to(&p, client).await;
            if b == Behaviour::Duplicates {
                let _ = sock.send_to(&p, client).await;
            }
            let wait = tokio::time::sleep(Duration::from_millis(300));
            tokio::pin!(wait);
            let mut buf = [0u8; 16];
            loop {
                tokio::select! {
                    _ = &mut wait => break,
                    got = sock.recv_from(&mut buf) => {
                        if let Ok((4, _)) = got
                            && buf[..2] == [0, 4]
                            && buf[2..4] == block.to_be_bytes()
                        {
                            acked = true;
                            break;
                        }
                    }
                }
            }
            if acked {
                break;
            }
        }
        if !acked {
            return;
        }
    }
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Bytes that differ from block to block, so that a block hashed twice or skipped shows.
fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 512) as u8).collect()
}

fn yaml(url: &str, sha: Option<&str>, tries: u32, timeout: &str) -> String {
    let sha = sha
        .map(|h| format!("  expected_sha256: {h}\n"))
        .unwrap_or_default();
    format!(
        "kind: tftp_rrq\nspec:\n  url: {url}\n{sha}  tries: {tries}\n  interval: 50ms\n  \
         timeout: {timeout}\n"
    )
}

#[tokio::test]
async fn reads_a_small_file() {
    let srv = Server::start(&[("boot/small.cfg", b"hello".to_vec())], Behaviour::Normal).await;
    let (r, _) = runner(&yaml(
        &format!("tftp://{}/boot/small.cfg", srv.addr),
        None,
        1,
        "2s",
    ));
    let o = r.run().await;
    assert!(o.passed(), "{o:?}");
    assert_eq!(srv.requests(), 1);
}

#[tokio::test]
async fn multi_block_file_matches_its_hash_in_any_case() {
    let data = content(3 * 512 + 100);
    let hash = sha256_hex(&data);
    let srv = Server::start(&[("lpxelinux.0", data)], Behaviour::Normal).await;
    let url = format!("tftp://{}/lpxelinux.0", srv.addr);
    for h in [hash.clone(), hash.to_ascii_uppercase()] {
        let (r, _) = runner(&yaml(&url, Some(&h), 1, "2s"));
        let o = r.run().await;
        assert!(o.passed(), "{h}: {o:?}");
    }
}

#[tokio::test]
async fn a_file_of_whole_blocks_ends_with_an_empty_block() {
    let data = content(2 * 512);
    let hash = sha256_hex(&data);
    let srv = Server::start(&[("two-blocks", data)], Behaviour::Normal).await;
    let (r, _) = runner(&yaml(
        &format!("tftp://{}/two-blocks", srv.addr),
        Some(&hash),
        1,
        "2s",
    ));
    let o = r.run().await;
    assert!(o.passed(), "{o:?}");
}

#[tokio::test]
async fn a_wrong_hash_fails_and_shows_both() {
    let data = content(700);
    let srv = Server::start(&[("f", data)], Behaviour::Normal).await;
    let wrong = "00".repeat(32);
    let (r, _) = runner(&yaml(
        &format!("tftp://{}/f", srv.addr),
        Some(&wrong),
        1,
        "2s",
    ));
    let msg = failure(&r.run().await);
    assert!(msg.contains("sha256 of the 700 bytes read is"), "{msg}");
    assert!(msg.contains(&format!("expected {wrong}")), "{msg}");
}

#[tokio::test]
async fn a_missing_file_fails_with_the_servers_error() {
    let srv = Server::start(&[("present", b"x".to_vec())], Behaviour::Normal).await;
    let (r, _) = runner(&yaml(&format!("tftp://{}/absent", srv.addr), None, 1, "2s"));
    let o = r.run().await;
    let msg = failure(&o);
    assert!(
        msg.contains("server answered ERROR 1 (file not found): File not found: absent"),
        "{msg}"
    );
    assert!(
        o.duration < Duration::from_secs(1),
        "an ERROR needs no waiting"
    );
}

#[tokio::test]
async fn a_server_that_stalls_mid_transfer_fails_within_the_timeout() {
    let srv = Server::start(
        &[("big", content(5 * 512))],
        Behaviour::StallAfterFirstBlock,
    )
    .await;
    let (r, _) = runner(&yaml(&format!("tftp://{}/big", srv.addr), None, 2, "500ms"));
    let o = r.run().await;
    let msg = failure(&o);
    assert!(
        msg.contains("the transfer stalled after block 1 (512 bytes)"),
        "{msg}"
    );
    assert_eq!(o.attempts, 2);
    assert_within_worst_case(&r, &o);
    assert_eq!(srv.requests(), 2, "each attempt must ask again");
}

#[tokio::test]
async fn duplicated_blocks_are_hashed_once() {
    let data = content(4 * 512 + 1);
    let hash = sha256_hex(&data);
    let srv = Server::start(&[("dup", data)], Behaviour::Duplicates).await;
    let (r, _) = runner(&yaml(
        &format!("tftp://{}/dup", srv.addr),
        Some(&hash),
        1,
        "2s",
    ));
    let o = r.run().await;
    assert!(o.passed(), "{o:?}");
}

#[tokio::test]
async fn a_silent_port_fails_within_the_timeout() {
    // Bound but never read: the read request goes nowhere.
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = silent.local_addr().expect("addr");
    let (r, _) = runner(&yaml(&format!("tftp://{addr}/f"), None, 2, "300ms"));
    let o = r.run().await;
    let msg = failure(&o);
    assert!(
        msg.contains("no answer to the read request within 300ms"),
        "{msg}"
    );
    assert!(msg.starts_with(&format!("tftp://{addr}/f: ")), "{msg}");
    assert_within_worst_case(&r, &o);
}
