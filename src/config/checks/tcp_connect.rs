//! `tcp_connect`: passes when a TCP connection to `address` opens (with TLS, when `tls` is
//! given, once the handshake is done), and, when `expect` is given, once that text is seen
//! among the first [`EXPECT_WINDOW`] bytes the server sends. `send` is written first: a
//! request for servers that speak only when spoken to.
//!
//! For the services anycast carries that have no HTTP endpoint: syslog over TCP, SMTP relays
//! (`expect: "220 "`), LDAP, TFTP's neighbours, any banner or line protocol. At most
//! [`EXPECT_WINDOW`] bytes are read, whatever the server sends, and a server that trickles or
//! says nothing fails at the attempt's timeout with what it did send.
//!
//! This file is the kind's spec (the config side); its prober is `check/tcp_connect.rs`.

use serde::Deserialize;

use super::attempts::{
    Attempts, ClientTls, KindSpec, default_interval, default_timeout, default_tries, server_address,
};
use crate::duration::Dur;
use crate::problem::Problem;

/// The most bytes read from the server while looking for `expect`: 4 KiB.
pub const EXPECT_WINDOW: usize = 4096;

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TcpConnectSpec")]
pub struct Spec {
    /// `host:port` (`[v6]:port`); the host may be a name.
    pub address: String,
    /// Text written once connected (YAML's double-quoted escapes give `\r\n`).
    #[serde(default)]
    pub send: Option<String>,
    /// Text that must appear among the first 4 KiB the server sends.
    #[serde(default)]
    pub expect: Option<String>,
    /// TLS over the connection; none when absent.
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
        server_address(&self.address, None, "127.0.0.1:25")
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
        if let Some(e) = &self.expect {
            if e.is_empty() {
                p.push(Problem::new(
                    "expect",
                    "is empty, which every answer contains: give the text the server must send, or remove `expect`",
                ));
            } else if e.len() > EXPECT_WINDOW {
                p.push(Problem::new(
                    "expect",
                    format!(
                        "is {} bytes long, and only the first {EXPECT_WINDOW} bytes received are searched: give a shorter text",
                        e.len()
                    ),
                ));
            }
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
        match &self.tls {
            Some(_) => format!("{} (TLS)", self.address.trim()),
            None => self.address.trim().to_string(),
        }
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
        let s = spec("address: 127.0.0.1:25");
        assert_eq!((&s.send, &s.expect, &s.tls), (&None, &None, &None));
        assert_eq!(
            s.attempts(),
            Attempts {
                tries: 1,
                interval: Duration::from_millis(100),
                timeout: Duration::from_secs(1),
            }
        );
        assert!(s.validate().is_empty());
        assert_eq!(s.target(), "127.0.0.1:25");
        let t = spec("{address: 'mail.example:465', tls: {}}");
        assert_eq!(t.tls, Some(ClientTls::default()));
        assert!(t.validate().is_empty());
        assert_eq!(t.target(), "mail.example:465 (TLS)");
    }

    #[test]
    fn validation_names_the_field() {
        let paths =
            |y: &str| -> Vec<String> { spec(y).validate().into_iter().map(|p| p.path).collect() };
        assert_eq!(paths("address: 127.0.0.1"), ["address"]);
        assert_eq!(paths("address: 'h:0'"), ["address"]);
        assert_eq!(paths("{address: 'h:1', expect: ''}"), ["expect"]);
        let long = "x".repeat(EXPECT_WINDOW + 1);
        assert_eq!(
            paths(&format!("{{address: 'h:1', expect: {long}}}")),
            ["expect"]
        );
        assert_eq!(
            paths("{address: 'h:1', tls: {server_name: 'a b'}}"),
            ["tls.server_name"]
        );
        assert_eq!(
            paths("{address: 'h:1', tries: 0, timeout: 0s}"),
            ["tries", "timeout"]
        );
        assert!(serde_saphyr::from_str::<Spec>("{address: 'h:1', tls: {verify: no}}").is_err());
    }
}
