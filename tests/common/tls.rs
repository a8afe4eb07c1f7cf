//! Certificates made by rcgen at test time (a CA "Test Issuer" and a leaf "Test certificate"
//! for site.example.org and 127.0.0.1 signed by it) and a TLS server on loopback.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType, date_time_ymd,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A leaf's validity, in years.
#[derive(Clone, Copy)]
pub enum Validity {
    /// 2020 to 2099.
    Current,
    /// 2000 to 2001.
    Expired,
    /// 2090 to 2099.
    NotYet,
}

impl Validity {
    /// notBefore and notAfter, at midnight UTC, as (year, month, day).
    fn dates(self) -> ((i32, u8, u8), (i32, u8, u8)) {
        match self {
            Validity::Current => ((2020, 1, 1), (2099, 1, 1)),
            Validity::Expired => ((2000, 1, 1), (2001, 1, 1)),
            Validity::NotYet => ((2090, 1, 1), (2099, 1, 1)),
        }
    }

    /// The leaf's notAfter, in seconds since the epoch. (The CA's is 2100-01-01.)
    pub fn not_after(self) -> i64 {
        let (y, m, d) = self.dates().1;
        let t =
            humantime::parse_rfc3339(&format!("{y:04}-{m:02}-{d:02}T00:00:00Z")).expect("a date");
        let secs = t
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs();
        i64::try_from(secs).expect("seconds since the epoch fit an i64")
    }
}

pub struct Pki {
    pub ca_pem: String,
    pub ca_der: CertificateDer<'static>,
    pub leaf_pem: String,
    pub leaf_der: CertificateDer<'static>,
    pub leaf_key: PrivateKeyDer<'static>,
}

/// A CA "Test Issuer" and a leaf "Test certificate" for site.example.org and 127.0.0.1.
pub fn pki(validity: Validity) -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.distinguished_name
        .push(DnType::CommonName, "Test Issuer");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.not_before = date_time_ymd(2019, 1, 1);
    ca.not_after = date_time_ymd(2100, 1, 1);
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().expect("leaf key");
    let mut leaf = CertificateParams::new(vec!["site.example.org".to_string()]).expect("params");
    leaf.subject_alt_names.push(SanType::IpAddress(
        "127.0.0.1".parse().expect("an IP address"),
    ));
    leaf.distinguished_name
        .push(DnType::CommonName, "Test certificate");
    let (from, to) = validity.dates();
    leaf.not_before = date_time_ymd(from.0, from.1, from.2);
    leaf.not_after = date_time_ymd(to.0, to.1, to.2);
    let leaf_cert = leaf.signed_by(&key, &issuer).expect("leaf certificate");
    Pki {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().clone(),
        leaf_pem: leaf_cert.pem(),
        leaf_der: leaf_cert.der().clone(),
        leaf_key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
    }
}

/// A TLS server on 127.0.0.1 presenting `chain`; it records the SNI names it was sent.
pub struct TlsServer {
    pub addr: SocketAddr,
    pub sni: Arc<Mutex<Vec<Option<String>>>>,
}

pub async fn tls_server(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> TlsServer {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let config = Arc::new(
        ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate"),
    );
    let sni = Arc::new(Mutex::new(Vec::new()));
    let seen = sni.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let (config, seen) = (config.clone(), seen.clone());
            tokio::spawn(async move {
                let Ok(start) = LazyConfigAcceptor::new(Default::default(), s).await else {
                    return;
                };
                let name = start.client_hello().server_name().map(str::to_string);
                seen.lock().expect("sni lock").push(name);
                if let Ok(mut tls) = start.into_stream(config).await {
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    TlsServer { addr, sni }
}
