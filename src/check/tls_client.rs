//! A connection to a server for the kinds that speak TCP, with TLS when the spec asks for it
//! (`tcp_connect`, `grpc_health`): the host resolved, each of its addresses tried in turn,
//! and the handshake verified against the system's trust store (`trust.rs`) unless
//! `insecure`. Everything is cut at the attempt's deadline, with a message that says which
//! step did not finish.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, SignatureScheme};

use super::resolve;
use crate::config::checks::attempts::ClientTls;
use crate::duration::Dur;

/// A byte stream to the server, plain or TLS.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Where to connect and how: built once, at build; [`Dialer::dial`] per attempt.
#[derive(Clone)]
pub(crate) struct Dialer {
    host: String,
    port: u16,
    /// The TLS side, when the spec has `tls`.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// The resolver's own timeout (the attempt's).
    timeout: Duration,
}

impl Dialer {
    /// `alpn`: the protocols offered in the TLS handshake (`h2` for gRPC), none when empty.
    pub(crate) fn new(
        host: &str,
        port: u16,
        tls: Option<&ClientTls>,
        alpn: &[&[u8]],
        timeout: Duration,
    ) -> Result<Dialer, String> {
        let tls = match tls {
            None => None,
            Some(t) => {
                let name = t.name_for(host);
                let server_name = ServerName::try_from(name.clone()).map_err(|e| {
                    format!("tls.server_name {name:?} is not a valid TLS name: {e}")
                })?;
                let mut config = if t.insecure {
                    let provider = Arc::new(ring::default_provider());
                    ClientConfig::builder_with_provider(provider.clone())
                        .with_safe_default_protocol_versions()
                        .map_err(|e| format!("cannot set up TLS: {e}"))?
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
                        .with_no_client_auth()
                } else {
                    super::trust::verifying_client_config()?
                };
                config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
                Some((TlsConnector::from(Arc::new(config)), server_name))
            }
        };
        Ok(Dialer {
            host: host.to_string(),
            port,
            tls,
            timeout,
        })
    }

    /// `host:port` as written in messages (`[v6]:port`).
    pub(crate) fn display(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Connects (and shakes hands), by `deadline`.
    pub(crate) async fn dial(&self, deadline: Instant) -> Result<Box<dyn Io>, String> {
        let stream =
            match resolve::connect_any(&self.host, self.port, self.timeout, deadline).await? {
                Ok(s) => s,
                Err(resolve::ConnectFailure::Refused(last)) => return Err(last),
                Err(resolve::ConnectFailure::NoAnswer(addr)) => {
                    return Err(format!(
                        "cannot connect to {addr}: no answer within {}",
                        Dur(self.timeout)
                    ));
                }
            };
        let _ = stream.set_nodelay(true);
        let Some((connector, name)) = &self.tls else {
            return Ok(Box::new(stream));
        };
        match tokio::time::timeout_at(deadline, connector.connect(name.clone(), stream)).await {
            Ok(Ok(tls)) => Ok(Box::new(tls)),
            Ok(Err(e)) => Err(format!(
                "TLS handshake with {} failed: {}",
                self.display(),
                crate::wording::error_chain(&e)
            )),
            Err(_) => Err(format!(
                "TLS handshake with {}: not done within {}",
                self.display(),
                Dur(self.timeout)
            )),
        }
    }
}

/// `insecure: true`: any certificate is accepted (its signatures on the handshake are still
/// checked, so that the connection is TLS with whoever holds the key).
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
