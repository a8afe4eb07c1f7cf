//! `tftp_rrq`: passes if the file at `tftp://host:port/path` can be read (and, when
//! `expected_sha256` is given, has that hash).
//!
//! A small RFC 1350 client (octet mode, 512-byte blocks) over a tokio socket, written for a
//! health check that may face a hostile or broken server: the file is hashed as it arrives
//! and never held in memory, at most [`MAX_FILE_BYTES`] are read, DATA blocks are accepted
//! only in order and only from the server's transfer ID (a retransmitted block is
//! acknowledged again, never hashed twice), the block number may wrap past 65535, and
//! everything is one future that the attempt's timeout drops. A stalled transfer fails with
//! how far it got.
//!
//! This file is the kind's spec (the config side); its prober is `check/tftp_rrq.rs`.

use std::net::IpAddr;

use serde::Deserialize;
use url::{Host, Url};

use super::attempts::{Attempts, KindSpec, default_interval, default_timeout, default_tries};
use crate::duration::Dur;
use crate::problem::Problem;

/// The TFTP port when the URL has none.
pub const DEFAULT_PORT: u16 = 69;

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TftpRrqSpec")]
pub struct Spec {
    /// `tftp://host:port/file`.
    pub url: String,
    /// Hex SHA-256 of the file, any case.
    #[serde(default)]
    pub expected_sha256: Option<String>,
    #[serde(default = "default_tries")]
    pub tries: u32,
    #[serde(default = "default_interval")]
    pub interval: Dur,
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
}

/// Where the file is: the parts of the URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub host: ServerHost,
    pub port: u16,
    /// The file name sent in the read request (the URL's path without its leading `/`,
    /// percent-decoded).
    pub file: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ServerHost {
    Ip(IpAddr),
    Name(String),
}

impl Spec {
    pub fn location(&self) -> Result<Location, String> {
        let u = Url::parse(&self.url).map_err(|e| {
            format!(
                "{:?} is not a URL ({e}); write tftp://host:port/file",
                self.url
            )
        })?;
        if u.scheme() != "tftp" {
            return Err(format!(
                "{:?} is not a tftp:// URL; write tftp://host:port/file",
                self.url
            ));
        }
        let needs = || {
            format!(
                "{:?} needs a host and a file: tftp://host:port/file",
                self.url
            )
        };
        let host = match u.host() {
            Some(Host::Ipv4(ip)) => ServerHost::Ip(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => ServerHost::Ip(IpAddr::V6(ip)),
            Some(Host::Domain(d)) if !d.is_empty() => ServerHost::Name(d.to_string()),
            _ => return Err(needs()),
        };
        let raw = u.path().strip_prefix('/').unwrap_or(u.path());
        let file = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| format!("the file name in {:?} is not UTF-8", self.url))?
            .into_owned();
        if file.is_empty() {
            return Err(needs());
        }
        if file.contains('\0') {
            return Err(format!(
                "the file name in {:?} contains a NUL character",
                self.url
            ));
        }
        if u.query().is_some() || u.fragment().is_some() {
            return Err(format!(
                "{:?} has a query or fragment, which TFTP cannot send",
                self.url
            ));
        }
        let port = match u.port() {
            Some(0) => return Err(format!("{:?}: port 0 is not a server port", self.url)),
            Some(p) => p,
            None => DEFAULT_PORT,
        };
        Ok(Location { host, port, file })
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
        if let Err(m) = self.location() {
            p.push(Problem::new("url", m));
        }
        if let Some(h) = &self.expected_sha256
            && (h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()))
        {
            p.push(Problem::new(
                "expected_sha256",
                "must be 64 hex digits (a SHA-256), any case",
            ));
        }
        p
    }

    fn target(&self) -> String {
        self.url.clone()
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
    fn defaults_and_location() {
        let s = spec("url: tftp://127.0.0.1/pxe/lpxelinux%200");
        assert!(s.validate().is_empty());
        assert_eq!(s.attempts().tries, 1);
        assert_eq!(s.attempts().timeout, Duration::from_secs(1));
        assert_eq!(s.attempts().interval, Duration::from_millis(100));
        let l = s.location().expect("valid");
        assert_eq!(l.port, DEFAULT_PORT);
        assert_eq!(l.file, "pxe/lpxelinux 0");
        let l = spec("url: tftp://[::1]:6969/f").location().expect("valid");
        assert_eq!(l.host, ServerHost::Ip("::1".parse().expect("ip")));
        assert_eq!(l.port, 6969);
        let l = spec("url: tftp://boot.example:69/f")
            .location()
            .expect("valid");
        assert_eq!(l.host, ServerHost::Name("boot.example".into()));
    }

    #[test]
    fn validation_names_the_field() {
        let paths =
            |y: &str| -> Vec<String> { spec(y).validate().into_iter().map(|p| p.path).collect() };
        assert_eq!(paths("url: http://127.0.0.1/f"), ["url"]);
        assert_eq!(paths("url: tftp://127.0.0.1/"), ["url"]);
        assert_eq!(paths("url: tftp://127.0.0.1:0/f"), ["url"]);
        assert_eq!(paths("url: tftp://127.0.0.1/f?x=1"), ["url"]);
        assert_eq!(paths("url: 'not a url'"), ["url"]);
        assert_eq!(
            paths("{url: 'tftp://127.0.0.1/f', expected_sha256: abc}"),
            ["expected_sha256"]
        );
        assert_eq!(
            paths("{url: 'tftp://127.0.0.1/f', tries: 0, timeout: 0s}"),
            ["tries", "timeout"]
        );
        let upper = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";
        assert!(
            spec(&format!("{{url: 'tftp://h/f', expected_sha256: {upper}}}"))
                .validate()
                .is_empty()
        );
    }
}
