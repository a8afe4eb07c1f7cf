//! `grpc_health` against a real tonic server with tonic-health's grpc.health.v1 service,
//! switched between SERVING and NOT_SERVING (for the server as a whole and for a named
//! service), over h2c and TLS; and against what is no gRPC server: an HTTP/1.1 server, a
//! server that says nothing, one that answers garbage, one that trickles valid HTTP/2 frames
//! (PINGs) and never answers the call, a closed port; and a reply of 1 MiB, refused unread.

pub mod common {
    pub mod checks;
    pub mod grpc;
    pub mod lab;
    pub mod prom;
    pub mod tls;
}

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use common::checks::{alive_tasks, assert_within_worst_case, failure, runner, wait_until};
use common::grpc::{GrpcServer, Status};
use common::lab::HttpTarget;
use common::tls::{Validity, pki};

fn yaml(addr: &str, extra: &str) -> String {
    format!("kind: grpc_health\nspec:\n  address: \"{addr}\"\n  timeout: 500ms\n{extra}")
}

#[tokio::test]
async fn follows_the_servers_health() {
    let srv = GrpcServer::start();
    let a = srv.addr.to_string();
    let (r, _) = runner(&yaml(&a, ""));
    assert_eq!(r.run().await.result, Ok(()));
    srv.set("", Status::NotServing);
    let o = r.run().await;
    assert_eq!(failure(&o), format!("http://{a}: NOT_SERVING, not SERVING"));
    srv.set("", Status::Unknown);
    assert_eq!(
        failure(&r.run().await),
        format!("http://{a}: UNKNOWN, not SERVING")
    );
    srv.set("", Status::Serving);
    assert_eq!(r.run().await.result, Ok(()));

    // A named service, apart from the server's own status.
    let (shop, _) = runner(&yaml(&a, "  service: shop.Cart\n"));
    assert_eq!(
        failure(&shop.run().await),
        format!(
            "http://{a} shop.Cart: the server knows no service `shop.Cart` (NotFound: `service not registered`)"
        )
    );
    srv.set("shop.Cart", Status::Serving);
    assert_eq!(shop.run().await.result, Ok(()));
    srv.set("shop.Cart", Status::NotServing);
    assert_eq!(
        failure(&shop.run().await),
        format!("http://{a} shop.Cart: NOT_SERVING, not SERVING")
    );
    assert_eq!(
        r.run().await.result,
        Ok(()),
        "the server as a whole still serves"
    );

    // By name.
    let (r, _) = runner(&yaml(&format!("localhost:{}", srv.addr.port()), ""));
    assert_eq!(r.run().await.result, Ok(()));
}

#[tokio::test]
async fn over_tls() {
    let p = pki(Validity::Current);
    let srv = GrpcServer::start_tls(vec![p.leaf_der.clone()], p.leaf_key.clone_key());
    let a = srv.addr.to_string();
    let (r, _) = runner(&yaml(&a, "  tls: {insecure: true}\n"));
    assert_eq!(r.run().await.result, Ok(()));
    srv.set("", Status::NotServing);
    assert_eq!(
        failure(&r.run().await),
        format!("https://{a}: NOT_SERVING, not SERVING")
    );
    // Verified, the chain of a CA in no trust store fails (check_https.rs passes one).
    let (r, _) = runner(&yaml(&a, "  tls: {server_name: site.example.org}\n"));
    let msg = failure(&r.run().await);
    assert!(msg.contains("invalid peer certificate"), "{msg}");
    // TLS towards a plain gRPC server fails the handshake.
    let plain = GrpcServer::start();
    let (r, _) = runner(&yaml(&plain.addr.to_string(), "  tls: {insecure: true}\n"));
    let msg = failure(&r.run().await);
    assert!(msg.contains("TLS handshake with"), "{msg}");
}

/// A TCP server that accepts and then, on each connection, does `f`.
fn raw_server(f: fn(std::net::TcpStream)) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || f(s));
        }
    });
    addr
}

/// What is no gRPC server fails within the timeout, and leaves no task behind.
#[tokio::test]
async fn not_a_grpc_server() {
    let baseline = alive_tasks();
    let http = HttpTarget::start();
    let silent = raw_server(|mut s| {
        // Reads (the client's preface and SETTINGS) and never answers.
        let mut buf = [0u8; 1024];
        while let Ok(1..) = s.read(&mut buf) {}
    });
    let garbage = raw_server(|mut s| {
        let _ = s.write_all(&[0xffu8; 64 * 1024]);
        let mut buf = [0u8; 1024];
        while let Ok(1..) = s.read(&mut buf) {}
    });
    // Valid HTTP/2, one byte every 20 ms: an empty SETTINGS frame, then PINGs, never an
    // answer to the call.
    let trickle = raw_server(|mut s| {
        let settings = [0u8, 0, 0, 4, 0, 0, 0, 0, 0];
        let ping = [0u8, 0, 8, 6, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];
        for b in settings.iter().chain(ping.iter().cycle()) {
            if s.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    for (addr, what) in [
        (http.addr(), "HTTP/1.1"),
        (silent, "silent"),
        (garbage, "garbage"),
        (trickle, "trickle"),
    ] {
        let (r, _) = runner(&yaml(&addr.to_string(), "  tries: 2\n  interval: 0s\n"));
        let o = r.run().await;
        let msg = failure(&o);
        assert!(
            msg.starts_with(&format!("http://{addr}: ")),
            "{what}: {msg}"
        );
        assert_within_worst_case(&r, &o);
        if what == "silent" || what == "trickle" {
            assert!(msg.contains("no answer within 500ms"), "{what}: {msg}");
        }
        eprintln!("{what}: {msg}, after {:?}", o.duration);
    }
    let port = common::lab::free_tcp_port();
    let (r, _) = runner(&yaml(&format!("127.0.0.1:{port}"), ""));
    let msg = failure(&r.run().await);
    assert!(msg.contains("Connection refused"), "{msg}");
    assert!(
        wait_until(Duration::from_secs(2), || alive_tasks() <= baseline).await,
        "{} tasks alive, {baseline} before",
        alive_tasks()
    );
}

/// A "Health" service of our own that answers every call with one well-formed gRPC
/// message: SERVING, padded with an unknown field of `padding` bytes.
#[derive(Clone)]
struct Padded(usize);

impl tonic::server::NamedService for Padded {
    const NAME: &'static str = "grpc.health.v1.Health";
}

impl tonic::codegen::Service<tonic::codegen::http::Request<tonic::body::Body>> for Padded {
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: tonic::codegen::http::Request<tonic::body::Body>) -> Self::Future {
        use hyper::body::Frame;
        use tonic::codegen::http;
        // HealthCheckResponse { status: SERVING } (field 1, varint 1), then field 15,
        // length-delimited, of `padding` zeros: unknown, so skipped by a decoder that reads it.
        let mut msg = vec![0x08, 0x01, 0x7a];
        let mut n = self.0;
        while n >= 0x80 {
            msg.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        msg.push(n as u8);
        msg.resize(msg.len() + self.0, 0);
        let mut framed = vec![0u8];
        framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        framed.extend_from_slice(&msg);
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let frames: Vec<Result<Frame<tonic::codegen::Bytes>, tonic::Status>> = vec![
            Ok(Frame::data(framed.into())),
            Ok(Frame::trailers(trailers)),
        ];
        let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
        let mut reply = http::Response::new(tonic::body::Body::new(body));
        reply.headers_mut().insert(
            "content-type",
            http::HeaderValue::from_static("application/grpc"),
        );
        std::future::ready(Ok(reply))
    }
}

/// A reply of 1 MiB is refused when its length is read (the check takes at most 4 KiB),
/// while the same reply padded to 1 KiB passes: the server's framing is sound.
#[tokio::test]
async fn an_oversized_reply_is_refused_unread() {
    let baseline = alive_tasks();
    let mut servers = Vec::new();
    for padding in [1024, 1 << 20] {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let serve = tonic::transport::Server::builder()
            .add_service(Padded(padding))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(l));
        servers.push(tokio::spawn(serve));
        let (r, _) = runner(&yaml(&addr.to_string(), ""));
        let o = r.run().await;
        if padding == 1024 {
            assert_eq!(o.result, Ok(()), "{o:?}");
            continue;
        }
        let msg = failure(&o);
        assert!(
            msg.starts_with(&format!("http://{addr}: Health/Check failed: OutOfRange: ")),
            "{msg}"
        );
        // The message's length, read from its 5-byte prefix: 1 MiB of padding and 6 bytes
        // (SERVING's 2, the padding's tag and 3-byte length); the rest was never decoded.
        assert!(
            msg.contains("decoded message length too large: found 1048582 bytes"),
            "{msg}"
        );
        eprintln!("{msg}, after {:?}", o.duration);
        assert!(o.duration < Duration::from_millis(400), "{o:?}");
    }
    for s in &servers {
        s.abort();
    }
    assert!(
        wait_until(Duration::from_secs(2), || alive_tasks() <= baseline).await,
        "{} tasks alive, {baseline} before",
        alive_tasks()
    );
}
