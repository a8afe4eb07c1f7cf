//! `grpc_health`: calls `grpc.health.v1.Health/Check` (the standard gRPC health protocol)
//! on `address` for `service` (`""`: the server as a whole) and passes on `SERVING`; any
//! other status (`NOT_SERVING`, `SERVICE_UNKNOWN`, `UNKNOWN`) or gRPC error fails, named.
//!
//! Each attempt opens a fresh HTTP/2 connection (with TLS when `tls` is given), and a reply
//! larger than 4 KiB is refused: a health answer is a few bytes.
//!
//! This file is the kind's spec (the config side); its prober is `check/grpc_health.rs`.

use serde::Deserialize;

use super::attempts::{
    Attempts, ClientTls, KindSpec, default_interval, default_timeout, default_tries, server_address,
};
use crate::duration::Dur;
use crate::problem::Problem;

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "GrpcHealthSpec")]
pub struct Spec {
    /// `host:port` (`[v6]:port`) of the gRPC server; the host may be a name.
    pub address: String,
    /// The service asked about; `""` (the default) asks about the server as a whole.
    #[serde(default)]
    pub service: String,
    /// TLS (gRPC over https); plain HTTP/2 when absent.
    #[serde(default)]
    pub tls: Option<ClientTls>,
    #[serde(default = "default_tries")]
    pub tries: u32,
    #[serde(default = "default_interval")]
    pub interval: Dur,
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
}

impl Spec {
    /// `(host, port)` of `address`.
    pub fn host_port(&self) -> Result<(String, u16), String> {
        server_address(&self.address, None, "127.0.0.1:50051")
    }
}

impl KindSpec for Spec {
    fn attempts(&self) -> Attempts {
        Attempts {
            tries: self.tries,
            interval: self.interval.0,
            timeout: self.timeout.0,
        }
    }

    fn validate(&self) -> Vec<Problem> {
        let mut p = self.attempts().problems();
        let host = match self.host_port() {
            Ok((h, _)) => Some(h),
            Err(m) => {
                p.push(Problem::new("address", m));
                None
            }
        };
        if self.service.chars().any(char::is_control) {
            p.push(Problem::new(
                "service",
                "contains a control character: give the service's full name, e.g. grpc.health.v1.Health",
            ));
        }
        if let Some(t) = &self.tls {
            p.extend(
                t.problems(host.as_deref())
                    .into_iter()
                    .map(|x| x.under("tls")),
            );
        }
        p
    }

    fn target(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let service = if self.service.is_empty() {
            String::new()
        } else {
            format!(" {}", self.service)
        };
        format!("{scheme}://{}{service}", self.address.trim())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec(yaml: &str) -> Spec {
        serde_saphyr::from_str(yaml).expect("test spec")
    }

    #[test]
    fn defaults() {
        let s = spec("address: 127.0.0.1:50051");
        assert_eq!((s.service.as_str(), &s.tls), ("", &None));
        assert_eq!(
            s.attempts(),
            Attempts {
                tries: 1,
                interval: Duration::from_millis(100),
                timeout: Duration::from_secs(1),
            }
        );
        assert!(s.validate().is_empty());
        assert_eq!(s.target(), "http://127.0.0.1:50051");
        let t = spec("{address: 'api.example:443', service: shop.Cart, tls: {insecure: true}}");
        assert!(t.validate().is_empty());
        assert_eq!(t.target(), "https://api.example:443 shop.Cart");
    }

    #[test]
    fn validation_names_the_field() {
        let paths =
            |y: &str| -> Vec<String> { spec(y).validate().into_iter().map(|p| p.path).collect() };
        assert_eq!(paths("address: 127.0.0.1"), ["address"]);
        assert_eq!(paths("address: 'api.example'"), ["address"]);
        assert_eq!(paths("{address: 'h:1', service: \"a\\nb\"}"), ["service"]);
        assert_eq!(
            paths("{address: 'h:1', tls: {server_name: ''}}"),
            ["tls.server_name"]
        );
        assert_eq!(
            paths("{address: 'h:1', tries: 0, timeout: 0s}"),
            ["tries", "timeout"]
        );
    }
}
