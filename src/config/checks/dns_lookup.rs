//! `dns_lookup`: passes if a lookup of `query` returns at least one A or AAAA address, from
//! the given `resolver` or the system's.
//!
//! Every attempt builds a fresh resolver (see [`super::resolve`]): no answer is cached
//! between attempts, /etc/hosts is never consulted (the check is about DNS), and A and AAAA
//! are asked in parallel. NXDOMAIN, SERVFAIL, an empty answer and a silent or unreachable
//! server all fail, with the query and the server in the message.
//!
//! This file is the kind's spec (the config side); its prober is `check/dns_lookup.rs`.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

use super::attempts::{Attempts, KindSpec, default_interval, default_timeout, default_tries};
use crate::duration::Dur;
use crate::problem::Problem;

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DnsLookupSpec")]
pub struct Spec {
    /// The name to look up.
    pub query: String,
    /// `ip:port` of the resolver to ask; the system resolver when absent.
    #[serde(default)]
    pub resolver: Option<SocketAddr>,
    #[serde(default = "default_tries")]
    pub tries: u32,
    #[serde(default = "default_interval")]
    pub interval: Dur,
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
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
        if self.query.trim().is_empty() {
            p.push(Problem::new("query", "must name the host to look up"));
        } else if self.query.parse::<IpAddr>().is_ok() {
            p.push(Problem::new(
                "query",
                format!(
                    "{:?} is an IP address, which needs no lookup; give a name",
                    self.query
                ),
            ));
        }
        if self.resolver.is_some_and(|r| r.port() == 0) {
            p.push(Problem::new(
                "resolver",
                "needs a port: write ip:port, e.g. 127.0.0.1:53",
            ));
        }
        p
    }

    fn target(&self) -> String {
        match self.resolver {
            Some(r) => format!("{} @{r}", self.query),
            None => format!("{} @system", self.query),
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
        let s = spec("query: example.org");
        assert_eq!(s.resolver, None);
        assert_eq!(
            s.attempts(),
            Attempts {
                tries: 1,
                interval: Duration::from_millis(100),
                timeout: Duration::from_secs(1),
            }
        );
        assert!(s.validate().is_empty());
        assert_eq!(s.target(), "example.org @system");
    }

    #[test]
    fn validation_names_the_field() {
        let paths =
            |y: &str| -> Vec<String> { spec(y).validate().into_iter().map(|p| p.path).collect() };
        assert_eq!(paths("query: ' '"), ["query"]);
        assert_eq!(paths("query: 192.0.2.1"), ["query"]);
        assert_eq!(
            paths("{query: a.example, resolver: '127.0.0.1:0'}"),
            ["resolver"]
        );
        assert_eq!(
            paths("{query: a.example, tries: 0, timeout: 0s}"),
            ["tries", "timeout"]
        );
        assert!(serde_saphyr::from_str::<Spec>("{query: a, resolver: 127.0.0.1}").is_err());
        assert!(serde_saphyr::from_str::<Spec>("{query: a, retries: 2}").is_err());
    }
}
