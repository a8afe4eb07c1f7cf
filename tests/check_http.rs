//! `http_2xx` against real HTTP servers on loopback.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anycastd::check::probe::CheckContext;
use anycastd::check::runner::Runner;
use anycastd::config::checks::attempts::KindSpec;
use anycastd::config::checks::http_2xx;
use anycastd::metrics::Metrics;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How a test server answers each connection.
#[derive(Clone, Copy)]
enum Mode {
    /// Reads the request, answers with this status; the body echoes the Host header.
    Status(u16),
    /// Reads the request, answers 301 with a Location header pointing at this address.
    Redirect(SocketAddr),
    /// Accepts and never sends a byte.
    Silent,
    /// Sends 200 headers, then a body that never ends.
    EndlessBody,
}

async fn server(mode: Mode) -> SocketAddr {
    counting_server(mode).await.0
}

/// [`server`], and the number of requests it has read so far.
async fn counting_server(mode: Mode) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut req = Vec::new();
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let text = String::from_utf8_lossy(&req).to_string();
                let host = text
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("host: ")
                            .or_else(|| l.strip_prefix("Host: "))
                    })
                    .unwrap_or("")
                    .to_string();
                let first = text.lines().next().unwrap_or("").to_string();
                match mode {
                    Mode::Status(code) => {
                        let body = format!("{first}\nhost={host}\n");
                        let resp = format!(
                            "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = s.write_all(resp.as_bytes()).await;
                    }
                    Mode::Redirect(to) => {
                        let resp = format!(
                            "HTTP/1.1 301 X\r\nLocation: http://{to}/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        );
                        let _ = s.write_all(resp.as_bytes()).await;
                    }
                    Mode::Silent => std::future::pending::<()>().await,
                    Mode::EndlessBody => {
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
                            .await;
                        let chunk = vec![b'x'; 1024];
                        // Trickle: 1 KiB every 50 ms, forever.
                        loop {
                            if s.write_all(&chunk).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            });
        }
    });
    (addr, requests)
}

fn runner(spec: serde_json::Value) -> Runner {
    let spec: http_2xx::Spec = serde_json::from_value(spec).expect("valid spec");
    assert!(spec.validate().is_empty(), "{:?}", spec.validate());
    let ctx = CheckContext {
        service: "s".into(),
        check: "c".into(),
        metrics: Metrics::new(),
    };
    Runner::new(
        "c".into(),
        "http_2xx",
        spec.attempts(),
        anycastd::check::http_2xx::build(&spec, &ctx).expect("build"),
    )
}

#[tokio::test]
async fn status_200_passes() {
    let (addr, asked) = counting_server(Mode::Status(200)).await;
    let o = runner(serde_json::json!({ "url": format!("http://{addr}/health") }))
        .run()
        .await;
    assert_eq!(o.result, Ok(()));
    // Passed on one request, the one it sent.
    assert_eq!(o.attempts, 1);
    assert_eq!(asked.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn status_500_fails_and_says_so() {
    let addr = server(Mode::Status(500)).await;
    let o = runner(serde_json::json!({ "url": format!("http://{addr}/") }))
        .run()
        .await;
    let e = o.result.expect_err("500 is not healthy");
    // The status with its reason phrase, not a "500" that a port number could hold.
    assert_eq!(
        e.0,
        format!("GET http://{addr}/ answered 500 Internal Server Error, not 2xx")
    );
}

/// A 301 to a healthy server is a failure that names the 3xx, and the healthy server never
/// hears from the check: a client that followed redirects would pass here, and ask it.
#[tokio::test]
async fn redirect_is_not_followed_and_fails() {
    let (healthy, asked) = counting_server(Mode::Status(200)).await;
    let addr = server(Mode::Redirect(healthy)).await;
    let o = runner(serde_json::json!({ "url": format!("http://{addr}/") }))
        .run()
        .await;
    let e = o.result.expect_err("a redirect is not healthy");
    assert_eq!(
        e.0,
        format!("GET http://{addr}/ answered 301 Moved Permanently, not 2xx")
    );
    assert_eq!(o.attempts, 1);
    assert_eq!(asked.load(Ordering::SeqCst), 0, "the redirect was followed");
}

#[tokio::test]
async fn refused_connection_fails() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let o = runner(serde_json::json!({ "url": format!("http://127.0.0.1:{port}/"), "tries": 2 }))
        .run()
        .await;
    let e = o.result.expect_err("nothing listens");
    assert!(e.0.contains("cannot connect"), "{e}");
    assert_eq!(o.attempts, 2);
}

#[tokio::test]
async fn silent_server_fails_within_the_timeout() {
    let addr = server(Mode::Silent).await;
    let o = runner(serde_json::json!({ "url": format!("http://{addr}/"), "timeout": "300ms", "tries": 2, "interval": "50ms" }))
        .run()
        .await;
    let e = o.result.expect_err("a silent server is not healthy");
    assert!(e.0.contains("timed out after 300ms"), "{e}");
    // 2 × 300 ms + 50 ms, with slack for a loaded machine.
    assert!(
        o.duration < Duration::from_millis(650 + 500),
        "took {:?}",
        o.duration
    );
}

#[tokio::test]
async fn endless_body_is_cut_by_the_timeout() {
    let addr = server(Mode::EndlessBody).await;
    let o = runner(serde_json::json!({ "url": format!("http://{addr}/"), "timeout": "400ms" }))
        .run()
        .await;
    // 1 KiB every 50 ms: the 64 KiB the check reads would take 3.2 s; the timeout cuts it.
    let e = o
        .result
        .expect_err("a body that never ends within the limit is not healthy");
    assert_eq!(e.0, "timed out after 400ms");
    assert!(
        o.duration < Duration::from_millis(400 + 500),
        "took {:?}",
        o.duration
    );
}

#[tokio::test]
async fn host_header_method_path_and_payload_are_sent() {
    // The server answers 200 only when it sees what the spec asks for: check that through a
    // server that answers 404 otherwise.
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers plus the 4-byte body.
            while !String::from_utf8_lossy(&req).ends_with("\r\n\r\nping") {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&req).to_ascii_lowercase();
            let ok = text.starts_with("post /status?full=1 http/1.1")
                && text.contains("\r\nhost: example.com\r\n")
                && text.contains("\r\nx-probe: yes\r\n")
                && text.ends_with("ping");
            let code = if ok { 200 } else { 404 };
            let _ = s
                .write_all(
                    format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await;
        }
    });
    let o = runner(serde_json::json!({
        "url": format!("http://{addr}/ignored"),
        "method": "post",
        "path": "/status?full=1",
        "headers": { "Host": "example.com", "X-Probe": "yes" },
        "payload": "ping",
        "timeout": "2s",
    }))
    .run()
    .await;
    assert_eq!(o.result, Ok(()));
}

#[test]
fn bad_specs_are_rejected_with_the_field() {
    let spec: http_2xx::Spec = serde_json::from_value(
        serde_json::json!({ "url": "ftp://x/", "method": "G T", "path": "x", "tries": 0 }),
    )
    .expect("parses");
    let fields: Vec<String> = spec.validate().into_iter().map(|p| p.path).collect();
    assert_eq!(fields, ["tries", "url", "method", "path"]);
}
