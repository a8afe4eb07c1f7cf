//! The seed's example service with its targets on loopback: a DNS responder, an HTTP
//! server, a PEM chain made by rcgen, lo's address, ICMP to localhost, tftpd-hpa, and a
//! remote TLS server whose CA is handed to anycastd through SSL_CERT_FILE.

use std::path::{Path, PathBuf};

use super::config::{ServiceBuilder, check, map, service};
use super::dns::{Mode, Responder};
use super::lab::HttpTarget;
use super::tftpd::Tftpd;
use super::tls::{TlsServer, Validity, pki, tls_server};

/// The servers behind the seed service; they live as long as this does.
pub struct SeedTargets {
    /// The runtime of the DNS and TLS servers.
    pub rt: tokio::runtime::Runtime,
    pub dns: Responder,
    pub tls: TlsServer,
    pub http: HttpTarget,
    pub tftpd: Tftpd,
    /// The file tftp_rrq reads; remove it to fail that check.
    pub boot_file: PathBuf,
    /// The CA file for SSL_CERT_FILE.
    pub ca_file: PathBuf,
    chain: PathBuf,
}

impl SeedTargets {
    /// Starts every server; PEM files go to `dir`.
    pub fn start(dir: &Path) -> SeedTargets {
        let rt = tokio::runtime::Runtime::new().expect("a runtime for the test servers");
        let dns = rt.block_on(Responder::start(Mode::A));
        let k = pki(Validity::Current);
        let tls = rt.block_on(tls_server(
            vec![k.leaf_der.clone(), k.ca_der.clone()],
            k.leaf_key.clone_key(),
        ));
        let http = HttpTarget::start();
        let tftpd = Tftpd::start();
        let boot_file = tftpd.put("lpxelinux.0", &[0x5a; 3000]);
        let chain = dir.join("cert.pem");
        std::fs::write(&chain, format!("{}{}", k.leaf_pem, k.ca_pem)).expect("write the chain");
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, &k.ca_pem).expect("write the CA");
        SeedTargets {
            rt,
            dns,
            tls,
            http,
            tftpd,
            boot_file,
            ca_file,
            chain,
        }
    }

    /// The seed's service `name` as a YAML list item of `services`, for a config written
    /// without the builder (benches/anycast.rs).
    pub fn service(&self, name: &str, check_interval: &str) -> String {
        self.service_builder(name, check_interval).to_string()
    }

    /// The seed's service `name`, every check pointing at these servers.
    pub fn service_builder(&self, name: &str, check_interval: &str) -> ServiceBuilder {
        service(name, check_interval)
            .check(
                check("dns_lookup")
                    .spec("query", "google.com")
                    .spec("resolver", self.dns.addr)
                    .spec("tries", 3)
                    .spec("interval", "100ms")
                    .spec("timeout", "3s"),
            )
            .check(
                check("http_2xx")
                    .spec("url", self.http.url())
                    .spec("method", "GET")
                    .spec("headers", map().set("Host", "example.com"))
                    .spec("payload", "ping")
                    .spec("path", "/")
                    .spec("tries", 3)
                    .spec("interval", "100ms")
                    .spec("timeout", "2s"),
            )
            .check(
                check("tls_certificate")
                    .spec("local", map().set("path", self.chain.display()))
                    .spec("common_name", "Test certificate")
                    .spec("dns_names", ["site.example.org"])
                    .spec("ip_addresses", ["127.0.0.1"])
                    .spec("issuer", "Test Issuer"),
            )
            .check(
                check("assigned_address")
                    .spec("interface", "lo")
                    .spec("ipv4", "127.0.0.1"),
            )
            .check(
                check("icmp_ping")
                    .spec("static", map().set("host", "localhost"))
                    .spec("tries", 3)
                    .spec("interval", "100ms")
                    .spec("timeout", "5s"),
            )
            .check(
                check("tftp_rrq")
                    .spec("url", format!("tftp://{}/lpxelinux.0", self.tftpd.addr))
                    .spec("tries", 3)
                    .spec("interval", "100ms")
                    .spec("timeout", "5s"),
            )
            .check(
                check("tls_certificate")
                    .set("name", "remote-cert")
                    .spec(
                        "remote",
                        map()
                            .set("host", self.tls.addr)
                            .set("server_name", "site.example.org"),
                    )
                    .spec("issuer", "Test Issuer"),
            )
    }
}
