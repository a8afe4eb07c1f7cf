//! `tcp_connect`: passes when a TCP connection to `address` opens (with TLS, when `tls` is
//! given, once the handshake is done), and, when `expect` is given, once that text is seen
//! among the first [`EXPECT_WINDOW`] bytes the server sends. `send` is written first.
//!
//! At most [`EXPECT_WINDOW`] bytes are read into a buffer of that size, whatever the server
//! sends; a server that trickles or says nothing fails at the attempt's (soft) deadline with
//! what it did send, and one that closes the connection fails at once, saying so.
//!
//! This file is the kind's prober; its spec is `config/checks/tcp_connect.rs`.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::probe::{AttemptFuture, Check, CheckContext, Failure, soft_deadline};
use super::tls_client::Dialer;
use crate::config::checks::tcp_connect::{EXPECT_WINDOW, Spec};
use crate::duration::Dur;
use crate::wording::quote;

/// The prober of `spec`.
pub fn build(spec: &Spec, _ctx: &CheckContext) -> Result<Box<dyn Check>, String> {
    let (host, port) = spec.host_port()?;
    Ok(Box::new(TcpConnect {
        dialer: Dialer::new(&host, port, spec.tls.as_ref(), &[], spec.timeout.0)?,
        send: spec.send.clone().map(String::into_bytes),
        expect: spec.expect.clone().map(String::into_bytes),
        timeout: spec.timeout.0,
    }))
}

struct TcpConnect {
    dialer: Dialer,
    send: Option<Vec<u8>>,
    expect: Option<Vec<u8>>,
    timeout: Duration,
}

impl TcpConnect {
    async fn probe(&self) -> Result<(), Failure> {
        let deadline = Instant::now() + soft_deadline(self.timeout);
        let at = self.dialer.display();
        let fail = |m: String| Failure(format!("{at}: {m}"));
        let mut io = self.dialer.dial(deadline).await.map_err(fail)?;
        if let Some(send) = &self.send {
            match tokio::time::timeout_at(deadline, io.write_all(send)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(fail(format!("connected, but sending failed: {e}"))),
                Err(_) => {
                    return Err(fail(format!(
                        "connected, but the server did not take the {} bytes of `send` within {}",
                        send.len(),
                        Dur(self.timeout)
                    )));
                }
            }
        }
        let Some(expect) = &self.expect else {
            return Ok(());
        };
        let mut buf = vec![0u8; EXPECT_WINDOW];
        let mut got = 0;
        let shown = |b: &[u8]| quote(&String::from_utf8_lossy(b));
        let want = shown(expect);
        while got < EXPECT_WINDOW {
            match tokio::time::timeout_at(deadline, io.read(&mut buf[got..])).await {
                Ok(Ok(0)) => {
                    return Err(fail(format!(
                        "the server closed the connection after {got} bytes, without sending {want} (it sent {})",
                        shown(&buf[..got])
                    )));
                }
                Ok(Ok(n)) => {
                    // Only the new bytes and the tail that could begin a match are searched.
                    let from = got.saturating_sub(expect.len() - 1);
                    got += n;
                    if contains(&buf[from..got], expect) {
                        return Ok(());
                    }
                }
                Ok(Err(e)) => {
                    return Err(fail(format!(
                        "reading failed after {got} bytes, without {want}: {e}"
                    )));
                }
                Err(_) => {
                    return Err(fail(format!(
                        "{want} not received within {} ({got} bytes came: {})",
                        Dur(self.timeout),
                        shown(&buf[..got])
                    )));
                }
            }
        }
        Err(fail(format!(
            "{want} is not among the first {EXPECT_WINDOW} bytes received (they begin {})",
            shown(&buf[..64])
        )))
    }
}

impl Check for TcpConnect {
    fn attempt(&self) -> AttemptFuture<'_> {
        Box::pin(self.probe())
    }
}

/// Whether `needle` (not empty) occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_finds_the_needle_anywhere() {
        assert!(contains(b"220 mail ESMTP", b"220 "));
        assert!(contains(b"x\r\n220 ", b"220 "));
        assert!(!contains(b"22", b"220"));
        assert!(!contains(b"anything", b""));
    }
}
