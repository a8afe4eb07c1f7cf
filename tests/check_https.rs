//! `http_2xx` on `https://` URLs against HTTPS servers on loopback, with certificates made
//! by rcgen: the server's chain is verified against the system trust store, which the test
//! points at its own CA through `SSL_CERT_FILE` (as an operator with an internal CA would).
//! The same for the other kinds that verify a server's chain: `tcp_connect` and
//! `grpc_health` with `tls`. One test in its own binary: the trust store is read once per
//! process, and the variable must be set before anything reads it.

pub mod common {
    pub mod checks;
    pub mod grpc;
    pub mod tls;
}

use std::sync::Arc;

use common::checks::{failure, runner};
use common::tls::{Validity, pki};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;

/// An HTTPS server on 127.0.0.1 answering every request with `status`, presenting `pki`'s
/// leaf (for 127.0.0.1 and site.example.org).
async fn https_server(p: &common::tls::Pki, status: u16) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![p.leaf_der.clone()], p.leaf_key.clone_key())
        .expect("server certificate");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(s).await else {
                    return;
                };
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

fn check(url: &str) -> String {
    format!("kind: http_2xx\nname: web\nspec:\n  url: {url}\n  timeout: 2s\n")
}

#[test]
fn https_is_verified_against_the_system_trust_store() {
    let trusted = pki(Validity::Current);
    let other = pki(Validity::Current);
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &trusted.ca_pem).expect("write the CA");
    // SAFETY: set before any other thread of this process exists (the runtime is built
    // below) and before anything reads the trust store.
    unsafe { std::env::set_var("SSL_CERT_FILE", &ca_file) };
    unsafe { std::env::remove_var("SSL_CERT_DIR") };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // A server whose chain leads to the trusted CA passes, by IP and by name.
        let ok = https_server(&trusted, 204).await;
        let (r, _) = runner(&check(&format!("https://{ok}/health")));
        let o = r.run().await;
        assert!(o.result.is_ok(), "a trusted HTTPS server must pass: {o:?}");

        // The same server answering 503: the TLS part passes, the status fails.
        let down = https_server(&trusted, 503).await;
        let (r, _) = runner(&check(&format!("https://{down}/health")));
        let e = failure(&r.run().await);
        assert!(e.contains("503"), "{e}");

        // A server whose CA is not in the store fails, and the message says why (both test
        // CAs are named "Test Issuer", so rustls finds the trusted one and a bad signature).
        let untrusted = https_server(&other, 200).await;
        let (r, _) = runner(&check(&format!("https://{untrusted}/health")));
        let e = failure(&r.run().await);
        assert!(
            e.contains("invalid peer certificate"),
            "the error must name the untrusted certificate: {e}"
        );

        // A name the certificate does not carry fails too (verification is on for names).
        let port = ok.port();
        let (r, _) = runner(&check(&format!("https://localhost:{port}/health")));
        let e = failure(&r.run().await);
        assert!(e.contains("invalid peer certificate"), "{e}");

        // tcp_connect and grpc_health verify the same way: by IP address (in the leaf's
        // names), by server_name, and not a name the leaf lacks nor another CA's chain.
        let tls =
            common::tls::tls_server(vec![trusted.leaf_der.clone()], trusted.leaf_key.clone_key())
                .await;
        let grpc = common::grpc::GrpcServer::start_tls(
            vec![trusted.leaf_der.clone()],
            trusted.leaf_key.clone_key(),
        );
        let rogue = common::grpc::GrpcServer::start_tls(
            vec![other.leaf_der.clone()],
            other.leaf_key.clone_key(),
        );
        let tcp = |tls_spec: &str| {
            format!(
                "kind: tcp_connect\nspec:\n  address: \"{}\"\n  tls: {tls_spec}\n",
                tls.addr
            )
        };
        let grpc_check = |addr: std::net::SocketAddr, tls_spec: &str| {
            format!("kind: grpc_health\nspec:\n  address: \"{addr}\"\n  tls: {tls_spec}\n")
        };
        for yaml in [
            tcp("{}"),
            tcp("{server_name: site.example.org}"),
            grpc_check(grpc.addr, "{}"),
            grpc_check(grpc.addr, "{server_name: site.example.org}"),
        ] {
            let (r, _) = runner(&yaml);
            assert_eq!(r.run().await.result, Ok(()), "{yaml}");
        }
        for yaml in [
            tcp("{server_name: other.example.org}"),
            grpc_check(grpc.addr, "{server_name: other.example.org}"),
            grpc_check(rogue.addr, "{}"),
        ] {
            let (r, _) = runner(&yaml);
            let e = failure(&r.run().await);
            assert!(e.contains("invalid peer certificate"), "{yaml}: {e}");
        }
    });
}
