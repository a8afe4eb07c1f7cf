//! `tls_certificate`: checks the leaf certificate of a local PEM file or of a remote TLS
//! server: validity dates, `min_valid_for`, and the names, addresses and issuer it must carry.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{Attempts, Check, CheckContext, KindSpec};
use crate::config::{Dur, Problem};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
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

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Local {
    /// A PEM file: one certificate, or a chain with the leaf first.
    pub path: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
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
            if r.host
                .rsplit_once(':')
                .and_then(|(_, port)| port.parse::<u16>().ok())
                .is_none()
            {
                p.push(Problem::new(
                    "remote.host",
                    format!(
                        "{:?} needs a port: write host:port, e.g. example.org:443",
                        r.host
                    ),
                ));
            }
            if r.timeout.0.is_zero() {
                p.push(Problem::new("remote.timeout", "must be longer than 0s"));
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

    fn build(&self, _ctx: &CheckContext) -> Result<Box<dyn Check>, String> {
        Err("the tls_certificate prober is not in this build yet".to_string())
    }
}
