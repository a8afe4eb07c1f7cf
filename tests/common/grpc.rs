//! A real gRPC server for the `grpc_health` check: tonic with tonic-health's
//! grpc.health.v1 service, on 127.0.0.1 with a free port, plain or TLS, on a runtime of its
//! own (so that sync and async tests alike can start it and switch its statuses).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

pub use tonic_health::ServingStatus as Status;

/// tonic + tonic-health on 127.0.0.1.
pub struct GrpcServer {
    pub addr: SocketAddr,
    reporter: HealthReporter,
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl GrpcServer {
    /// A plain (h2c) server; the server as a whole (`""`) is SERVING.
    pub fn start() -> GrpcServer {
        GrpcServer::launch(None)
    }

    /// The same over TLS, presenting `chain` (ALPN h2).
    pub fn start_tls(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> GrpcServer {
        let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate");
        config.alpn_protocols = vec![b"h2".to_vec()];
        GrpcServer::launch(Some(TlsAcceptor::from(Arc::new(config))))
    }

    fn launch(tls: Option<TlsAcceptor>) -> GrpcServer {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the gRPC server's runtime");
            rt.block_on(async move {
                let (reporter, service) = tonic_health::server::health_reporter();
                let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
                let addr = l.local_addr().expect("addr");
                ready_tx
                    .send((addr, reporter, tokio::runtime::Handle::current()))
                    .expect("report the address");
                let router = tonic::transport::Server::builder().add_service(service);
                // Stopped at once, open connections and all: a graceful stop would wait for
                // clients that may be on a runtime blocked in this server's drop.
                let serve = async move {
                    match tls {
                        None => {
                            let incoming = tokio_stream::wrappers::TcpListenerStream::new(l);
                            let _ = router.serve_with_incoming(incoming).await;
                        }
                        Some(acceptor) => {
                            let (tx, rx) = tokio::sync::mpsc::channel(16);
                            tokio::spawn(async move {
                                while let Ok((s, _)) = l.accept().await {
                                    let (acceptor, tx) = (acceptor.clone(), tx.clone());
                                    tokio::spawn(async move {
                                        if let Ok(t) = acceptor.accept(s).await {
                                            let _ = tx.send(Ok::<_, std::io::Error>(t)).await;
                                        }
                                    });
                                }
                            });
                            let incoming = tokio_stream::wrappers::ReceiverStream::new(rx);
                            let _ = router.serve_with_incoming(incoming).await;
                        }
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
        });
        let (addr, reporter, handle) = ready_rx.recv().expect("the gRPC server started");
        let s = GrpcServer {
            addr,
            reporter,
            handle,
            stop: Some(stop),
            thread: Some(thread),
        };
        s.set("", Status::Serving);
        s
    }

    /// Sets the status of `service` (`""`: the server as a whole), and waits until it is set.
    pub fn set(&self, service: &str, status: ServingStatus) {
        let (reporter, service) = (self.reporter.clone(), service.to_string());
        let (done, wait) = mpsc::channel();
        self.handle.spawn(async move {
            reporter.set_service_status(service, status).await;
            let _ = done.send(());
        });
        wait.recv().expect("the status was set");
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
