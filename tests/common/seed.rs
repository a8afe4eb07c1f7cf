//! The seed's example service with its targets on loopback: a DNS responder, an HTTP
//! server, a PEM chain made by rcgen, lo's address, ICMP to localhost, tftpd-hpa, and a
//! remote TLS server whose CA is handed to anycastd through SSL_CERT_FILE.

use std::path::{Path, PathBuf};

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

    /// The seed's service `name` as a YAML list item, every check pointing at these servers.
    pub fn service(&self, name: &str, check_interval: &str) -> String {
        format!(
            r#"  - name: {name}
    check_interval: {check_interval}
    checks:
      - kind: dns_lookup
        spec:
          query: google.com
          resolver: {dns}
          tries: 3
          interval: 100ms
          timeout: 3s
      - kind: http_2xx
        spec:
          url: {url}
          method: GET
          headers:
            Host: example.com
          payload: ping
          path: /
          tries: 3
          interval: 100ms
          timeout: 2s
      - kind: tls_certificate
        spec:
          local:
            path: {chain}
          common_name: Test certificate
          dns_names:
            - site.example.org
          ip_addresses:
            - 127.0.0.1
          issuer: Test Issuer
      - kind: assigned_address
        spec:
          interface: lo
          ipv4: 127.0.0.1
      - kind: icmp_ping
        spec:
          static:
            host: localhost
          tries: 3
          interval: 100ms
          timeout: 5s
      - kind: tftp_rrq
        spec:
          url: tftp://{tftp}/lpxelinux.0
          tries: 3
          interval: 100ms
          timeout: 5s
      - name: remote-cert
        kind: tls_certificate
        spec:
          remote:
            host: {tls}
            server_name: site.example.org
          issuer: Test Issuer
"#,
            dns = self.dns.addr,
            url = self.http.url(),
            chain = self.chain.display(),
            tftp = self.tftpd.addr,
            tls = self.tls.addr,
        )
    }
}
