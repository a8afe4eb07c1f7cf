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
//! This file is the kind's spec (the config side); its prober is `check/tls_certificate.rs`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tokio_rustls::rustls::pki_types::ServerName;

use super::attempts::{Attempts, KindSpec, MIN_TIMEOUT};
use crate::duration::Dur;
use crate::problem::Problem;

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TlsCertificateSpec")]
pub struct Spec {
    #[serde(default)]
    pub local: Option<Local>,
    #[serde(default)]
    pub remote: Option<Remote>,
    #[serde(default)]
    pub common_name: Option<String>,
    #[serde(default)]
    pub dns_names: Vec<String>,
    #[serde(default)]
    pub ip_addresses: Vec<IpAddr>,
    /// The issuer's common name.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Fail when the certificate expires within this.
    #[serde(default)]
    pub min_valid_for: Option<Dur>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Local {
    /// A PEM file: one certificate, or a chain with the leaf first.
    pub path: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Remote {
    /// `host:port` of the TLS server.
    pub host: String,
    /// SNI name; the host part of `host` when absent.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Do not verify the chain (the checks of this spec still apply).
    #[serde(default)]
    pub insecure: bool,
    #[serde(default = "default_remote_timeout")]
    pub timeout: Dur,
}

fn default_remote_timeout() -> Dur {
    Dur::secs(3)
}

impl KindSpec for Spec {
    fn attempts(&self) -> Attempts {
        let timeout = match &self.remote {
            Some(r) => r.timeout.0,
            None => Duration::from_secs(1),
        };
        Attempts {
            tries: 1,
            interval: Duration::ZERO,
            timeout,
        }
    }

    fn validate(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        match (&self.local, &self.remote) {
            (None, None) => p.push(Problem::new(
                "",
                "give `local.path` (a PEM file) or `remote.host` (host:port)",
            )),
            (Some(_), Some(_)) => p.push(Problem::new(
                "remote",
                "give either `local` or `remote`, not both",
            )),
            _ => {}
        }
        if let Some(r) = &self.remote {
            // The same parsing as `build`, so that check-config catches what the daemon
            // would refuse at start.
            match split_host_port(&r.host) {
                None => p.push(Problem::new(
                    "remote.host",
                    format!(
                        "{:?} needs a port: write host:port, e.g. example.org:443",
                        r.host
                    ),
                )),
                Some((host, _)) => {
                    let name = r.server_name.clone().unwrap_or(host);
                    if let Err(e) = ServerName::try_from(name.clone()) {
                        p.push(Problem::new(
                            "remote.server_name",
                            format!("{name:?} is not a valid TLS name: {e}"),
                        ));
                    }
                }
            }
            if let Err(m) = r.timeout.at_least(MIN_TIMEOUT) {
                p.push(Problem::new("remote.timeout", m));
            }
        }
        p
    }

    fn target(&self) -> String {
        match (&self.local, &self.remote) {
            (Some(l), _) => l.path.display().to_string(),
            (None, Some(r)) => r.host.clone(),
            (None, None) => String::new(),
        }
    }
}

/// `host:port`, `[v6]:port` or `v6-address:port` split in two.
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.trim().rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> Spec {
        serde_saphyr::from_str(yaml).expect("the spec parses")
    }

    #[test]
    fn validation_names_the_field() {
        let paths = |s: Spec| -> Vec<String> { s.validate().into_iter().map(|p| p.path).collect() };
        assert_eq!(paths(spec("common_name: x\n")), vec![""]);
        assert_eq!(
            paths(spec("local: {path: /a.pem}\nremote: {host: \"h:443\"}\n")),
            vec!["remote"]
        );
        assert_eq!(
            paths(spec("remote: {host: example.org}\n")),
            vec!["remote.host"]
        );
        assert_eq!(
            paths(spec("remote: {host: \"h:443\", timeout: 0s}\n")),
            vec!["remote.timeout"]
        );
        assert!(paths(spec("remote: {host: \"[::1]:443\"}\n")).is_empty());
        // What `build` would refuse, check-config refuses too.
        assert_eq!(
            paths(spec("remote: {host: \":443\"}\n")),
            vec!["remote.host"]
        );
        assert_eq!(
            paths(spec("remote: {host: \"h:443\", server_name: \"a b\"}\n")),
            vec!["remote.server_name"]
        );
    }

    #[test]
    fn defaults() {
        let s = spec("remote: {host: \"example.org:443\"}\n");
        let r = s.remote.clone().expect("remote");
        assert_eq!(
            (r.insecure, r.timeout, r.server_name),
            (false, Dur::secs(3), None)
        );
        assert_eq!(s.attempts().timeout, Duration::from_secs(3));
        assert_eq!(
            spec("local: {path: /a.pem}\n").attempts().timeout,
            Duration::from_secs(1)
        );
    }

    #[test]
    fn host_and_port_are_split() {
        assert_eq!(
            split_host_port("a.example:443"),
            Some(("a.example".into(), 443))
        );
        assert_eq!(split_host_port("[::1]:8443"), Some(("::1".into(), 8443)));
        assert_eq!(split_host_port("a.example"), None);
        assert_eq!(split_host_port(":443"), None);
    }
}
