//! The system's trust anchors (`/etc/ssl/certs`, or `SSL_CERT_FILE` / `SSL_CERT_DIR`), loaded
//! once per process and shared by the checks that verify TLS servers: `http_2xx` for
//! `https://` URLs and `tls_certificate` for remote servers. Loading and keeping one copy per
//! check cost 16 KB and a parse of the whole store for each of them (BENCHMARKS.md).

use std::sync::{Arc, OnceLock};

use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// The system's trust anchors; `None` when none could be loaded.
pub fn system_roots() -> Option<Arc<RootCertStore>> {
    static ROOTS: OnceLock<Option<Arc<RootCertStore>>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(found.certs);
            (added > 0).then(|| Arc::new(store))
        })
        .clone()
}

/// A TLS client config that verifies servers against [`system_roots`] (no anchors: every
/// server fails verification, with an "unknown issuer" error that says so).
pub fn verifying_client_config() -> Result<ClientConfig, String> {
    static CONFIG: OnceLock<Result<ClientConfig, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = system_roots().unwrap_or_else(|| Arc::new(RootCertStore::empty()));
            Ok(
                ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .map_err(|e| format!("cannot set up TLS: {e}"))?
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        })
        .clone()
}
