//! `ntp`: one NTPv4 client request per attempt (RFC 5905); passes when the server answers
//! synchronised, at a stratum of at most `max_stratum`, with a clock within `max_offset` of
//! this host's.
//!
//! Fails on a Kiss-o'-Death (stratum 0 and a kiss code such as `RATE` or `DENY`), leap
//! indicator 3 (the server says it is not synchronised), stratum 0 or above `max_stratum`,
//! and an offset beyond `max_offset`. Only a reply from the server's address and port, in
//! server mode, whose origin timestamp is the transmit timestamp of this attempt's request
//! is read at all: anything else (garbage, a reply from another port, a spoofed or stale
//! origin) is dropped, and when no valid reply comes the failure says what was dropped.
//! Metrics `anycastd_check_ntp_offset_seconds` and `anycastd_check_ntp_stratum`
//! `{service, check}`, from the last valid reply.
//!
//! This file is the kind's spec (the config side); its prober is `check/ntp.rs`.

use serde::Deserialize;

use super::attempts::{
    Attempts, KindSpec, default_interval, default_timeout, default_tries, server_address,
};
use crate::duration::Dur;
use crate::problem::Problem;

/// NTP's port when `server` has none.
pub const DEFAULT_PORT: u16 = 123;

/// The highest stratum of a synchronised server (16 means unsynchronised, RFC 5905).
pub const MAX_STRATUM: u32 = 15;

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "NtpSpec")]
pub struct Spec {
    /// `host` or `host:port` (`[v6]:port`); port 123 when absent.
    pub server: String,
    /// The largest |offset| between the server's clock and this host's that passes.
    #[serde(default = "default_max_offset")]
    pub max_offset: Dur,
    /// The highest stratum that passes, 1..15.
    #[serde(default = "default_max_stratum")]
    #[schemars(range(min = 1, max = 15))]
    pub max_stratum: u32,
    #[serde(default = "default_tries")]
    pub tries: u32,
    #[serde(default = "default_interval")]
    pub interval: Dur,
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
}

fn default_max_offset() -> Dur {
    Dur::secs(1)
}

fn default_max_stratum() -> u32 {
    MAX_STRATUM
}

impl Spec {
    /// `(host, port)` of `server`.
    pub fn host_port(&self) -> Result<(String, u16), String> {
        server_address(
            &self.server,
            Some(DEFAULT_PORT),
            "ntp.example.org or 127.0.0.1:123",
        )
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
        if let Err(m) = self.host_port() {
            p.push(Problem::new("server", m));
        }
        if self.max_offset.0.is_zero() {
            p.push(Problem::new(
                "max_offset",
                "0s would fail every server (no two clocks agree exactly): write more than 0s, e.g. 1s (the default) or 100ms",
            ));
        }
        if !(1..=MAX_STRATUM).contains(&self.max_stratum) {
            p.push(Problem::new(
                "max_stratum",
                format!(
                    "{} is not a stratum a synchronised server has: use 1..{MAX_STRATUM} (1 = attached to a reference clock; 0 is a Kiss-o'-Death and 16 unsynchronised, which always fail)",
                    self.max_stratum
                ),
            ));
        }
        p
    }

    fn target(&self) -> String {
        match self.host_port() {
            Ok((h, port)) if h.contains(':') => format!("ntp [{h}]:{port}"),
            Ok((h, port)) => format!("ntp {h}:{port}"),
            Err(_) => format!("ntp {}", self.server.trim()),
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
        let s = spec("server: 127.0.0.1");
        assert_eq!(s.max_offset, Dur::secs(1));
        assert_eq!(s.max_stratum, 15);
        assert_eq!(
            s.attempts(),
            Attempts {
                tries: 1,
                interval: Duration::from_millis(100),
                timeout: Duration::from_secs(1),
            }
        );
        assert!(s.validate().is_empty());
        assert_eq!(s.host_port(), Ok(("127.0.0.1".into(), 123)));
        assert_eq!(s.target(), "ntp 127.0.0.1:123");
        assert_eq!(spec("server: '::1'").target(), "ntp [::1]:123");
        assert_eq!(
            spec("server: 'ntp.example:1123'").host_port(),
            Ok(("ntp.example".into(), 1123))
        );
    }

    #[test]
    fn validation_names_the_field() {
        let paths =
            |y: &str| -> Vec<String> { spec(y).validate().into_iter().map(|p| p.path).collect() };
        assert_eq!(paths("server: ''"), ["server"]);
        assert_eq!(paths("server: 'h:0'"), ["server"]);
        assert_eq!(paths("{server: h, max_offset: 0s}"), ["max_offset"]);
        assert_eq!(paths("{server: h, max_stratum: 0}"), ["max_stratum"]);
        assert_eq!(paths("{server: h, max_stratum: 16}"), ["max_stratum"]);
        assert!(paths("{server: h, max_stratum: 1, max_offset: 1ns}").is_empty());
        assert_eq!(
            paths("{server: h, tries: 0, timeout: 0s}"),
            ["tries", "timeout"]
        );
        assert!(serde_saphyr::from_str::<Spec>("{server: h, max_offset: -1s}").is_err());
        assert!(serde_saphyr::from_str::<Spec>("{server: h, max_stratum: -1}").is_err());
        assert!(serde_saphyr::from_str::<Spec>("{server: h, port: 123}").is_err());
    }
}
