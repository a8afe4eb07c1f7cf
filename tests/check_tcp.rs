//! `tcp_connect` against TCP servers on loopback that behave as a test tells them: a
//! banner (SMTP's `220`), an answer to what is sent, silence, a trickle, a flood, a close
//! mid-banner, the same over TLS; and a port where nothing listens.

pub mod common {
    pub mod checks;
    pub mod lab;
    pub mod prom;
    pub mod tls;
}

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::checks::{alive_tasks, assert_within_worst_case, failure, runner, wait_until};
use common::tls::{Validity, pki};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;

/// How the server treats each connection.
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// Sends this and keeps the connection open.
    Banner(&'static str),
    /// Waits for a line, then answers this.
    Answer(&'static str),
    /// Says nothing.
    Silent,
    /// One byte (`.`) every 20 ms.
    Trickle,
    /// 64 MiB of `x`, as fast as the client reads: more than the kernel's buffers on both
    /// sides hold (net.ipv4.tcp_rmem and tcp_wmem, at most 32 MiB and 4 MiB by default).
    Flood,
    /// Sends this and closes.
    CloseAfter(&'static str),
}

struct Server {
    addr: SocketAddr,
    /// Bytes the server managed to write, over all connections.
    written: Arc<AtomicUsize>,
    /// Connections whose behaviour has run to its end (the flood: written, or cut off).
    ended: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(behaviour: Behaviour, tls: Option<TlsAcceptor>) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let written = Arc::new(AtomicUsize::new(0));
    let ended = Arc::new(AtomicUsize::new(0));
    let (w, e) = (written.clone(), ended.clone());
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let (tls, w, e) = (tls.clone(), w.clone(), e.clone());
            tokio::spawn(async move {
                match tls {
                    Some(a) => {
                        if let Ok(s) = a.accept(s).await {
                            behave(s, behaviour, &w).await;
                        }
                    }
                    None => behave(s, behaviour, &w).await,
                }
                e.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    Server {
        addr,
        written,
        ended,
        task,
    }
}

async fn behave<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, b: Behaviour, written: &AtomicUsize) {
    let write = async |s: &mut S, data: &[u8]| -> bool {
        let ok = s.write_all(data).await.is_ok() && s.flush().await.is_ok();
        if ok {
            written.fetch_add(data.len(), Ordering::SeqCst);
        }
        ok
    };
    match b {
        Behaviour::Banner(text) => {
            write(&mut s, text.as_bytes()).await;
            drain(&mut s).await;
        }
        Behaviour::Answer(text) => {
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            while !line.ends_with(b"\n") {
                match s.read(&mut byte).await {
                    Ok(1) => line.push(byte[0]),
                    _ => return,
                }
            }
            write(&mut s, text.as_bytes()).await;
            drain(&mut s).await;
        }
        Behaviour::Silent => {
            drain(&mut s).await;
        }
        Behaviour::Trickle => loop {
            if !write(&mut s, b".").await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        },
        Behaviour::Flood => {
            let chunk = [b'x'; 4096];
            for _ in 0..FLOOD / chunk.len() {
                if !write(&mut s, &chunk).await {
                    return;
                }
            }
        }
        Behaviour::CloseAfter(text) => {
            write(&mut s, text.as_bytes()).await;
            let _ = s.shutdown().await;
        }
    }
}

/// Reads until the client closes: the connection stays open meanwhile.
async fn drain<S: AsyncRead + Unpin>(s: &mut S) {
    let mut buf = [0u8; 1024];
    while let Ok(1..) = s.read(&mut buf).await {}
}

/// What the flooding server would write, if the client read it all.
const FLOOD: usize = 64 << 20;

fn yaml(addr: &str, extra: &str) -> String {
    format!("kind: tcp_connect\nspec:\n  address: \"{addr}\"\n  timeout: 500ms\n{extra}")
}

const SMTP: &str = "220 mail.example.test ESMTP ready\r\n";

#[tokio::test]
async fn a_banner_passes_and_a_missing_one_fails_at_the_timeout() {
    let srv = serve(Behaviour::Banner(SMTP), None).await;
    let a = srv.addr.to_string();
    let (r, _) = runner(&yaml(&a, ""));
    assert_eq!(r.run().await.result, Ok(()), "connecting is enough");
    let (r, _) = runner(&yaml(&a, "  expect: \"220 \"\n"));
    assert_eq!(r.run().await.result, Ok(()));
    let (r, _) = runner(&yaml(
        &format!("localhost:{}", srv.addr.port()),
        "  expect: ESMTP\n",
    ));
    assert_eq!(r.run().await.result, Ok(()), "by name");
    let (r, _) = runner(&yaml(&a, "  expect: \"554 \"\n"));
    let o = r.run().await;
    assert_eq!(
        failure(&o),
        format!(
            "{a}: `554 ` not received within 500ms (35 bytes came: `220 mail.example.test ESMTP ready\\r\\n`)"
        )
    );
    assert_within_worst_case(&r, &o);
}

#[tokio::test]
async fn send_then_expect() {
    let srv = serve(Behaviour::Answer("+PONG\r\n"), None).await;
    let a = srv.addr.to_string();
    let (r, _) = runner(&yaml(&a, "  send: \"PING\\r\\n\"\n  expect: \"+PONG\"\n"));
    assert_eq!(r.run().await.result, Ok(()));
    // Without the request the server says nothing.
    let (r, _) = runner(&yaml(&a, "  expect: \"+PONG\"\n"));
    assert_eq!(
        failure(&r.run().await),
        format!("{a}: `+PONG` not received within 500ms (0 bytes came: ``)")
    );
}

#[tokio::test]
async fn a_close_mid_banner_fails_at_once() {
    let srv = serve(Behaviour::CloseAfter("22"), None).await;
    let a = srv.addr.to_string();
    let (r, _) = runner(&yaml(&a, "  expect: \"220 \"\n"));
    let o = r.run().await;
    assert_eq!(
        failure(&o),
        format!(
            "{a}: the server closed the connection after 2 bytes, without sending `220 ` (it sent `22`)"
        )
    );
    assert!(o.duration < Duration::from_millis(400), "{o:?}");
}

/// A trickle, a flood and silence are each cut: at the timeout, or after 4 KiB read.
#[tokio::test]
async fn hostile_servers_are_bounded_in_time_and_bytes() {
    let baseline = alive_tasks();
    let trickle = serve(Behaviour::Trickle, None).await;
    let (r, _) = runner(&yaml(
        &trickle.addr.to_string(),
        "  expect: \"220 \"\n  tries: 2\n  interval: 0s\n",
    ));
    let o = r.run().await;
    let msg = failure(&o);
    assert!(msg.contains("`220 ` not received within 500ms ("), "{msg}");
    assert!(msg.contains(" bytes came: `....."), "{msg}");
    assert_within_worst_case(&r, &o);

    let flood = serve(Behaviour::Flood, None).await;
    let (r, _) = runner(&yaml(&flood.addr.to_string(), "  expect: \"220 \"\n"));
    let o = r.run().await;
    assert_eq!(
        failure(&o),
        format!(
            "{}: `220 ` is not among the first 4096 bytes received (they begin `{}…`)",
            flood.addr,
            "x".repeat(60)
        )
    );
    assert!(o.duration < Duration::from_millis(400), "{o:?}");
    // The check stopped reading at 4 KiB and closed: the server's writes failed long before
    // its 64 MiB were out (what it wrote is what the kernel's buffers took).
    assert!(
        wait_until(Duration::from_secs(2), || flood
            .ended
            .load(Ordering::SeqCst)
            == 1)
        .await,
        "the flood's connection is still open"
    );
    let written = flood.written.load(Ordering::SeqCst);
    eprintln!("the flooding server wrote {written} bytes before the check's close cut it off");
    assert!(written < FLOOD, "{written} bytes written");

    let silent = serve(Behaviour::Silent, None).await;
    let (r, _) = runner(&yaml(&silent.addr.to_string(), "  expect: \"220 \"\n"));
    let o = r.run().await;
    assert!(failure(&o).ends_with("not received within 500ms (0 bytes came: ``)"));
    assert_within_worst_case(&r, &o);
    drop((trickle, flood, silent));
    assert!(
        wait_until(Duration::from_secs(2), || alive_tasks() <= baseline).await,
        "{} tasks alive, {baseline} before",
        alive_tasks()
    );
}

#[tokio::test]
async fn nothing_listening_fails_at_once() {
    let port = common::lab::free_tcp_port();
    let (r, _) = runner(&yaml(&format!("127.0.0.1:{port}"), ""));
    let o = r.run().await;
    assert_eq!(
        failure(&o),
        format!(
            "127.0.0.1:{port}: cannot connect to 127.0.0.1:{port}: Connection refused (os error 111)"
        )
    );
}

fn acceptor() -> TlsAcceptor {
    let p = pki(Validity::Current);
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![p.leaf_der], p.leaf_key)
        .expect("server certificate");
    TlsAcceptor::from(Arc::new(config))
}

/// TLS: `insecure` passes a certificate of an unknown CA; without it the chain is
/// verified (and this CA is in no trust store: `check_https.rs` passes one through
/// SSL_CERT_FILE); a server that does not speak TLS, or says nothing, fails the handshake.
#[tokio::test]
async fn tls_banner() {
    let srv = serve(Behaviour::Banner(SMTP), Some(acceptor())).await;
    let a = srv.addr.to_string();
    let (r, _) = runner(&yaml(&a, "  expect: \"220 \"\n  tls: {insecure: true}\n"));
    assert_eq!(r.run().await.result, Ok(()));
    let (r, _) = runner(&yaml(
        &a,
        "  expect: \"220 \"\n  tls: {server_name: site.example.org}\n",
    ));
    let msg = failure(&r.run().await);
    assert!(
        msg.starts_with(&format!(
            "{a}: TLS handshake with {a} failed: invalid peer certificate"
        )),
        "{msg}"
    );

    let plain = serve(Behaviour::Banner(SMTP), None).await;
    let p = plain.addr.to_string();
    let (r, _) = runner(&yaml(&p, "  tls: {insecure: true}\n"));
    let msg = failure(&r.run().await);
    assert!(
        msg.starts_with(&format!("{p}: TLS handshake with {p} failed: ")),
        "{msg}"
    );

    let silent = serve(Behaviour::Silent, None).await;
    let s = silent.addr.to_string();
    let (r, _) = runner(&yaml(&s, "  tls: {insecure: true}\n"));
    let o = r.run().await;
    assert_eq!(
        failure(&o),
        format!("{s}: TLS handshake with {s}: not done within 500ms")
    );
    assert_within_worst_case(&r, &o);
}
