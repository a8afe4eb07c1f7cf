//! `tls_certificate`: checks the leaf certificate of a local PEM file or of a remote TLS
//! server: validity dates, `min_valid_for`, and the names, addresses and issuer it must carry.
//!
//! The leaf is the end-entity certificate: for a file, the first certificate that is not a
//! CA (a leaf-first chain is the usual form, but a CA-first file does not fool the check);
//! for a server, the first certificate it presents. Every expectation that does not hold is
//! reported, each naming its field. Remote chains are verified against the system's trust
//! store (`/etc/ssl/certs`, or `SSL_CERT_FILE`) unless `remote.insecure`; the leaf's fields
//! are checked either way, and `anycastd_certificate_expires_in_seconds{service,check,path}`
//! is set whenever a certificate was read, even when the chain is not trusted.
//!
//! This file is the kind's prober; its spec is `config/checks/tls_certificate.rs`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metrics::Gauge;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme,
};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::probe::{AttemptFuture, Check, CheckContext, Failure, soft_deadline};
use super::resolve;
use crate::config::checks::attempts::KindSpec;
use crate::config::checks::tls_certificate::{Remote, Spec, split_host_port};
use crate::duration::Dur;
use crate::metrics::names;

/// A PEM file larger than this is not a certificate file.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// The prober of `spec`.
pub fn build(spec: &Spec, ctx: &CheckContext) -> Result<Box<dyn Check>, String> {
    let source = match (&spec.local, &spec.remote) {
        (Some(l), _) => Source::Local(l.path.clone()),
        (None, Some(r)) => Source::Remote(RemoteTarget::new(r)?),
        (None, None) => return Err("give `local.path` or `remote.host`".to_string()),
    };
    let path = spec.target();
    let labels = [
        ("service", ctx.service.as_str()),
        ("check", ctx.check.as_str()),
        ("path", path.as_str()),
    ];
    Ok(Box::new(TlsCertificate {
        source,
        want: Expectations {
            common_name: spec.common_name.clone(),
            dns_names: spec.dns_names.clone(),
            ip_addresses: spec.ip_addresses.clone(),
            issuer: spec.issuer.clone(),
            min_valid_for: spec.min_valid_for.map(|d| d.0),
        },
        budget: spec.attempts().timeout,
        expires_in: ctx.metrics.gauge(names::CERTIFICATE_EXPIRES_IN, &labels),
        expires_in_legacy: ctx
            .metrics
            .gauge(names::CERTIFICATE_EXPIRES_IN_LEGACY, &labels),
        reading: Arc::default(),
    }))
}

/// What the certificate must show, from the spec.
#[derive(Debug)]
struct Expectations {
    common_name: Option<String>,
    dns_names: Vec<String>,
    ip_addresses: Vec<IpAddr>,
    issuer: Option<String>,
    min_valid_for: Option<Duration>,
}

enum Source {
    Local(PathBuf),
    Remote(RemoteTarget),
}

struct RemoteTarget {
    /// `host:port` as configured.
    display: String,
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    insecure: bool,
    /// Verifies chains against the system's trust anchors; built once, at build. `None`
    /// when `insecure` or when the system has no anchors.
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    /// `remote.timeout`, also the resolver's.
    timeout: Duration,
}

impl RemoteTarget {
    fn new(r: &Remote) -> Result<RemoteTarget, String> {
        let (host, port) = split_host_port(&r.host)
            .ok_or_else(|| format!("remote.host {:?}: write host:port", r.host))?;
        let name = r.server_name.clone().unwrap_or_else(|| host.clone());
        let server_name = ServerName::try_from(name.clone())
            .map_err(|e| format!("remote.server_name {name:?} is not a valid TLS name: {e}"))?;
        let provider = Arc::new(ring::default_provider());
        let webpki = match super::trust::system_roots() {
            Some(roots) if !r.insecure => Some(
                WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| format!("cannot set up certificate verification: {e}"))?,
            ),
            _ => None,
        };
        Ok(RemoteTarget {
            display: r.host.clone(),
            host,
            port,
            server_name,
            insecure: r.insecure,
            webpki,
            provider,
            timeout: r.timeout.0,
        })
    }

    /// Connects, shakes hands, and returns the leaf the server presented, with the error
    /// of the chain verification if it failed.
    async fn fetch(&self, deadline: Instant) -> Result<(Vec<u8>, Option<String>), String> {
        let within = |what: &str| format!("{what}: no answer within the timeout");
        let stream =
            match resolve::connect_any(&self.host, self.port, self.timeout, deadline).await? {
                Ok(s) => s,
                Err(resolve::ConnectFailure::Refused(last)) => return Err(last),
                Err(resolve::ConnectFailure::NoAnswer(addr)) => {
                    return Err(within(&format!("connecting to {addr}")));
                }
            };
        let verifier = Arc::new(Capture {
            inner: self.webpki.clone(),
            insecure: self.insecure,
            provider: self.provider.clone(),
            seen: Mutex::new(None),
        });
        let config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_no_client_auth();
        let handshake =
            TlsConnector::from(Arc::new(config)).connect(self.server_name.clone(), stream);
        let result = tokio::time::timeout_at(deadline, handshake).await;
        let seen = verifier
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match (result, seen) {
            (Err(_), _) => Err(within(&format!("TLS handshake with {}", self.display))),
            (Ok(Ok(_)), Some(seen)) => Ok((seen.leaf, seen.note)),
            // The certificate was rejected: its fields and the note say why.
            (Ok(Err(_)), Some(seen)) if !seen.accepted => Ok((seen.leaf, seen.note)),
            (Ok(Err(e)), _) => Err(format!("TLS handshake with {} failed: {e}", self.display)),
            (Ok(Ok(_)), None) => Err(format!("{} presented no certificate", self.display)),
        }
    }
}

/// A verifier that remembers the leaf and what verifying the chain said about it. With a
/// trust store it fails the handshake as the real one would; `insecure` accepts any chain.
#[derive(Debug)]
struct Capture {
    inner: Option<Arc<WebPkiServerVerifier>>,
    insecure: bool,
    provider: Arc<CryptoProvider>,
    seen: Mutex<Option<Seen>>,
}

/// What the verifier saw of the server's chain.
#[derive(Debug)]
struct Seen {
    leaf: Vec<u8>,
    /// Whether the verifier accepted the chain.
    accepted: bool,
    /// Why the chain is not trusted, when that is not only a matter of dates.
    note: Option<String>,
}

impl ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = match (&self.inner, self.insecure) {
            (_, true) => Ok(ServerCertVerified::assertion()),
            (Some(v), false) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            (None, false) => Err(rustls::Error::General(
                "no trusted CA certificate found: install ca-certificates, set SSL_CERT_FILE, \
                 or set remote.insecure: true"
                    .to_string(),
            )),
        };
        let note = match &verdict {
            Ok(_) => None,
            // The dates are checked, and reported, with the other fields.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. },
            )) => None,
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => Some(
                "chain not trusted: issued by a CA that is not in the system's trust store \
                 (/etc/ssl/certs, or SSL_CERT_FILE); set remote.insecure: true to check only \
                 the certificate's fields"
                    .to_string(),
            ),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Some(format!(
                "chain not trusted: the certificate is not valid for the server name {:?} \
                 (set remote.server_name to the name it carries)",
                server_name.to_str()
            )),
            Err(e) => Some(format!("chain not trusted: {e}")),
        };
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(Seen {
            leaf: end_entity.as_ref().to_vec(),
            accepted: verdict.is_ok(),
            note,
        });
        verdict
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

struct TlsCertificate {
    source: Source,
    want: Expectations,
    budget: Duration,
    expires_in: Gauge,
    expires_in_legacy: Gauge,
    /// A read of the local file is under way on a blocking thread.
    reading: Arc<AtomicBool>,
}

impl TlsCertificate {
    async fn probe(&self) -> Result<(), Failure> {
        let deadline = Instant::now() + soft_deadline(self.budget);
        let (what, der, note) = match &self.source {
            Source::Local(path) => {
                let der = self.read_local(path).await.map_err(Failure)?;
                (path.display().to_string(), der, None)
            }
            Source::Remote(r) => {
                let (der, note) = r.fetch(deadline).await.map_err(Failure)?;
                (r.display.clone(), der, note)
            }
        };
        let (_, cert) = X509Certificate::from_der(&der)
            .map_err(|e| Failure(format!("{what}: the certificate cannot be parsed: {e}")))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let (expires_in, mut problems) = evaluate(&cert, &self.want, now);
        self.expires_in.set(expires_in as f64);
        self.expires_in_legacy.set(expires_in as f64);
        problems.extend(note);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Failure(format!("{what}: {}", problems.join("; "))))
        }
    }

    /// [`read_leaf`] on a blocking thread, one read at a time: a read stuck in the kernel (a
    /// hung network file system) makes the next attempts fail at once instead of piling up
    /// threads. (FIFOs and devices are refused before they are opened, so they never block.)
    async fn read_local(&self, path: &Path) -> Result<Vec<u8>, String> {
        if self.reading.swap(true, Ordering::AcqRel) {
            return Err(format!(
                "{}: the previous read of the file has not returned yet (a hung file system?)",
                path.display()
            ));
        }
        /// Clears the flag when the read ends, or if it never runs.
        struct Done(Arc<AtomicBool>);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let (path, done) = (path.to_path_buf(), Done(self.reading.clone()));
        tokio::task::spawn_blocking(move || {
            let _done = done;
            read_leaf(&path)
        })
        .await
        .map_err(|e| format!("reading the certificate file failed: {e}"))?
    }
}

impl Check for TlsCertificate {
    fn attempt(&self) -> AttemptFuture<'_> {
        Box::pin(self.probe())
    }
}

/// The leaf of a PEM file: its first certificate that is not a CA (or its first, if all are).
fn read_leaf(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let data = crate::small_file::read(path, MAX_PEM_BYTES).map_err(|e| e.to_string())?;
    let mut ders = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(&data) {
        let pem = pem.map_err(|e| format!("{shown}: not a valid PEM file: {e}"))?;
        if pem.label == "CERTIFICATE" {
            ders.push(pem.contents);
        }
    }
    let is_ca = |der: &Vec<u8>| {
        X509Certificate::from_der(der)
            .ok()
            .and_then(|(_, c)| c.basic_constraints().ok().flatten().map(|b| b.value.ca))
            .unwrap_or(false)
    };
    match ders.iter().position(|d| !is_ca(d)) {
        Some(i) => Ok(ders.swap_remove(i)),
        None => ders
            .into_iter()
            .next()
            .ok_or_else(|| format!("{shown} holds no PEM CERTIFICATE block")),
    }
}

/// Seconds until the certificate's notAfter, and what does not hold, one message per field.
fn evaluate(cert: &X509Certificate<'_>, want: &Expectations, now: i64) -> (i64, Vec<String>) {
    let mut problems = Vec::new();
    let validity = cert.validity();
    let not_before = validity.not_before.timestamp();
    let not_after = validity.not_after.timestamp();
    let expires_in = not_after - now;
    if now < not_before {
        problems.push(format!(
            "not valid yet: notBefore is {}",
            validity.not_before
        ));
    }
    if expires_in < 0 {
        problems.push(format!("expired: notAfter was {}", validity.not_after));
    } else if let Some(min) = want.min_valid_for
        && (expires_in as u64) < min.as_secs()
    {
        problems.push(format!(
            "min_valid_for: expires in {} (notAfter {}), less than {}",
            Dur(Duration::from_secs(expires_in as u64 / 60 * 60)),
            validity.not_after,
            Dur(min)
        ));
    }
    if let Some(cn) = &want.common_name {
        let have = common_names(cert.subject());
        if !have.iter().any(|h| h == cn) {
            problems.push(format!(
                "common_name: want {cn:?}, the certificate has {}",
                shown(&have)
            ));
        }
    }
    if let Some(issuer) = &want.issuer {
        let have = common_names(cert.issuer());
        if !have.iter().any(|h| h == issuer) {
            problems.push(format!(
                "issuer: want {issuer:?}, the certificate's issuer has {}",
                shown(&have)
            ));
        }
    }
    let (dns, ips) = subject_alt_names(cert);
    let missing: Vec<&String> = want
        .dns_names
        .iter()
        .filter(|n| !dns.iter().any(|d| d.eq_ignore_ascii_case(n)))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "dns_names: {missing:?} not among the certificate's DNS names {dns:?}"
        ));
    }
    let missing: Vec<String> = want
        .ip_addresses
        .iter()
        .filter(|ip| !ips.contains(ip))
        .map(ToString::to_string)
        .collect();
    if !missing.is_empty() {
        let have: Vec<String> = ips.iter().map(ToString::to_string).collect();
        problems.push(format!(
            "ip_addresses: {missing:?} not among the certificate's IP addresses {have:?}"
        ));
    }
    (expires_in, problems)
}

fn common_names(name: &x509_parser::x509::X509Name<'_>) -> Vec<String> {
    name.iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_string))
        .collect()
}

fn shown(names: &[String]) -> String {
    match names {
        [] => "no common name".to_string(),
        [one] => format!("{one:?}"),
        many => format!("{many:?}"),
    }
}

/// The DNS names and IP addresses of the subjectAltName extension.
fn subject_alt_names(cert: &X509Certificate<'_>) -> (Vec<String>, Vec<IpAddr>) {
    let (mut dns, mut ips) = (Vec::new(), Vec::new());
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default())),
                    16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    (dns, ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> Spec {
        serde_saphyr::from_str(yaml).expect("the spec parses")
    }

    /// A read that does not return (a hung file system; here: a blocking pool whose only
    /// thread is taken) holds one thread at most: the next attempts fail at once, saying
    /// why, and the check recovers when the read returns.
    #[test]
    fn a_read_that_does_not_return_fails_the_next_attempts_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cert.pem");
        let cert = rcgen::generate_simple_self_signed(vec!["a.example".to_string()])
            .expect("a certificate");
        std::fs::write(&path, cert.cert.pem()).expect("write");
        let ctx = CheckContext {
            service: "s".into(),
            check: "c".into(),
            metrics: crate::metrics::Metrics::new(),
        };
        let check = build(
            &spec(&format!("local: {{path: {}}}\n", path.display())),
            &ctx,
        )
        .expect("builds");
        let rt = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (release, wait) = std::sync::mpsc::channel::<()>();
            let blocker = tokio::task::spawn_blocking(move || wait.recv());
            let cut = tokio::time::timeout(Duration::from_millis(50), check.attempt()).await;
            assert!(cut.is_err(), "the read is queued behind the blocker");
            let next = tokio::time::timeout(Duration::from_secs(1), check.attempt())
                .await
                .expect("no wait for the blocked read")
                .expect_err("refused");
            assert!(next.0.contains("has not returned yet"), "{next}");
            release.send(()).expect("release");
            let _ = blocker.await;
            let deadline = Instant::now() + Duration::from_secs(5);
            while check.attempt().await.is_err() {
                assert!(Instant::now() < deadline, "the check never recovered");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
    }
}
