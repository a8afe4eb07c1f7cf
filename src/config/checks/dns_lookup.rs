//! `dns_lookup`: passes if a lookup of `query` returns at least one A or AAAA address, from
//! the given `resolver` or the system's; or, with the optional keys, at least one record of
//! `type`, the response code `rcode`, every `expect`ed value among the answers, and a zone
//! no more than `max_serial_lag` behind its primary (`soa_serial_of`).
//!
//! Every attempt builds a fresh resolver (see `check/resolve.rs`): no answer is cached
//! between attempts, /etc/hosts is never consulted (the check is about DNS), and A and AAAA
//! are asked in parallel. NXDOMAIN, SERVFAIL, an empty answer and a silent or unreachable
//! server all fail, with the query and the server in the message.
//!
//! `soa_serial_of`: the SOA serial of the zone holding `query` is asked of the primary and
//! then of the resolver (in that order, so that an update landing between the two questions
//! makes the resolver look ahead, never behind); the check fails when the resolver's serial
//! is behind the primary's by more than `max_serial_lag`, in RFC 1982 serial arithmetic
//! ([`serial_order`]). An anycast DNS node whose zone transfers stopped withdraws, instead of
//! answering stale data.
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
    /// The record type asked; A and AAAA (in parallel) when absent.
    #[serde(default, rename = "type")]
    pub record_type: Option<RecordType>,
    /// The response code that passes; NOERROR (with at least one record) by default.
    #[serde(default)]
    pub rcode: Rcode,
    /// Values that must each be among the answers' data, as dig writes them (`192.0.2.1`,
    /// `10 mail.example.org.`, a TXT record's text).
    #[serde(default)]
    pub expect: Vec<String>,
    /// `ip:port` of the zone's primary, whose SOA serial the resolver's must keep up with.
    #[serde(default)]
    pub soa_serial_of: Option<SocketAddr>,
    /// How far (in serial numbers) the resolver's SOA serial may be behind the primary's;
    /// 0 when absent. Needs `soa_serial_of`.
    #[serde(default)]
    #[schemars(range(max = 2147483647))]
    pub max_serial_lag: Option<u32>,
    #[serde(default = "default_tries")]
    pub tries: u32,
    #[serde(default = "default_interval")]
    pub interval: Dur,
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
}

/// The record types a check may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum RecordType {
    A,
    Aaaa,
    Soa,
    Txt,
    Cname,
    Mx,
    Ns,
    Ptr,
    Srv,
}

impl RecordType {
    pub fn name(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Soa => "SOA",
            RecordType::Txt => "TXT",
            RecordType::Cname => "CNAME",
            RecordType::Mx => "MX",
            RecordType::Ns => "NS",
            RecordType::Ptr => "PTR",
            RecordType::Srv => "SRV",
        }
    }
}

/// The response codes a check may expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Rcode {
    /// The name exists; the check also needs at least one record of the type asked.
    #[default]
    NoError,
    /// The name does not exist (a check that a name stays absent).
    NxDomain,
    ServFail,
    Refused,
    FormErr,
    NotImp,
}

impl Rcode {
    pub fn name(self) -> &'static str {
        match self {
            Rcode::NoError => "NOERROR",
            Rcode::NxDomain => "NXDOMAIN",
            Rcode::ServFail => "SERVFAIL",
            Rcode::Refused => "REFUSED",
            Rcode::FormErr => "FORMERR",
            Rcode::NotImp => "NOTIMP",
        }
    }
}

/// How serial `a` stands to serial `b` in RFC 1982 arithmetic (SERIAL_BITS 32): serials
/// wrap around, and `a` is behind `b` when `b` is less than 2^31 steps ahead of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialOrder {
    Equal,
    /// `a` is behind `b` by this many.
    Behind(u32),
    /// `a` is ahead of `b` by this many.
    Ahead(u32),
    /// Exactly 2^31 apart: RFC 1982 leaves the comparison undefined.
    Undefined,
}

/// How serial `a` stands to serial `b` (RFC 1982, section 3.2).
pub fn serial_order(a: u32, b: u32) -> SerialOrder {
    const HALF: u32 = 1 << 31;
    let forward = b.wrapping_sub(a);
    if forward == 0 {
        SerialOrder::Equal
    } else if forward < HALF {
        SerialOrder::Behind(forward)
    } else if forward > HALF {
        SerialOrder::Ahead(a.wrapping_sub(b))
    } else {
        SerialOrder::Undefined
    }
}

/// The largest `max_serial_lag`: serials 2^31 or more apart cannot be compared (RFC 1982).
pub const MAX_SERIAL_LAG: u32 = (1 << 31) - 1;

impl Spec {
    /// Why `expected` can never be among the answers of an address lookup (A, AAAA, or both
    /// by default), whose data are addresses; `None` when it can, or the type is another.
    fn never_an_answer(&self, expected: &str) -> Option<String> {
        let ip = expected.parse::<IpAddr>().ok();
        let (fits, what, example) = match self.record_type {
            None => (ip.is_some(), "an IP address", "192.0.2.1 or 2001:db8::1"),
            Some(RecordType::A) => (
                ip.is_some_and(|i| i.is_ipv4()),
                "an IPv4 address",
                "192.0.2.1",
            ),
            Some(RecordType::Aaaa) => (
                ip.is_some_and(|i| i.is_ipv6()),
                "an IPv6 address",
                "2001:db8::1",
            ),
            Some(_) => return None,
        };
        let answers = match self.record_type {
            Some(t) => format!("{} answers", t.name()),
            None => "A and AAAA answers (no `type`: addresses are looked up)".to_string(),
        };
        (!fits).then(|| {
            format!(
                "`{expected}` is not {what}, so it can never be among the {answers}: write {what}, e.g. {example}, or set the `type` whose data it is"
            )
        })
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
        if self.soa_serial_of.is_some_and(|r| r.port() == 0) {
            p.push(Problem::new(
                "soa_serial_of",
                "needs a port: write ip:port of the zone's primary, e.g. 192.0.2.53:53",
            ));
        }
        for (i, e) in self.expect.iter().enumerate() {
            if e.trim().is_empty() {
                p.push(Problem::new(
                    format!("expect[{i}]"),
                    "is empty: give a value the answer must hold, e.g. 192.0.2.1",
                ));
            } else if let Some(m) = self.never_an_answer(e.trim()) {
                p.push(Problem::new(format!("expect[{i}]"), m));
            }
        }
        if !self.expect.is_empty() && self.rcode != Rcode::NoError {
            p.push(Problem::new(
                "expect",
                format!(
                    "an answer with rcode {} holds no records: remove `expect`, or expect NOERROR",
                    self.rcode.name()
                ),
            ));
        }
        match (self.max_serial_lag, self.soa_serial_of) {
            (Some(_), None) => p.push(Problem::new(
                "max_serial_lag",
                "needs soa_serial_of: add soa_serial_of: ip:port of the zone's primary (whose serial the resolver's is compared with), or remove max_serial_lag",
            )),
            (Some(lag), Some(_)) if lag > MAX_SERIAL_LAG => p.push(Problem::new(
                "max_serial_lag",
                format!(
                    "{lag} is too large: serials {} or more apart cannot be compared (RFC 1982); use 0..{MAX_SERIAL_LAG}",
                    MAX_SERIAL_LAG as u64 + 1
                ),
            )),
            _ => {}
        }
        p
    }

    fn target(&self) -> String {
        let what = match self.record_type {
            Some(t) => format!("{} {}", self.query, t.name()),
            None => self.query.clone(),
        };
        match self.resolver {
            Some(r) => format!("{what} @{r}"),
            None => format!("{what} @system"),
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
        assert_eq!(
            paths("{query: a.example, max_serial_lag: 0}"),
            ["max_serial_lag"]
        );
        assert_eq!(
            paths("{query: a.example, soa_serial_of: '127.0.0.1:53', max_serial_lag: 2147483648}"),
            ["max_serial_lag"]
        );
        assert_eq!(
            paths("{query: a.example, soa_serial_of: '127.0.0.1:0'}"),
            ["soa_serial_of"]
        );
        assert_eq!(
            paths("{query: a.example, rcode: NXDOMAIN, expect: [192.0.2.1]}"),
            ["expect"]
        );
        assert_eq!(paths("{query: a.example, expect: ['']}"), ["expect[0]"]);
        // What an address lookup can never answer.
        assert_eq!(
            paths("{query: a.example, expect: [192.0.2.1, '2001:db8::1', ns1.example]}"),
            ["expect[2]"]
        );
        assert_eq!(
            paths("{query: a.example, type: A, expect: [192.0.2.1, '2001:db8::1']}"),
            ["expect[1]"]
        );
        assert_eq!(
            paths("{query: a.example, type: AAAA, expect: [192.0.2.1, '2001:DB8::1']}"),
            ["expect[0]"]
        );
        assert!(paths("{query: a.example, type: NS, expect: [ns1.example]}").is_empty());
        assert!(paths("{query: a.example, type: TXT, expect: ['192.0.2.1']}").is_empty());
        assert!(serde_saphyr::from_str::<Spec>("{query: a, type: AAA}").is_err());
        assert!(serde_saphyr::from_str::<Spec>("{query: a, type: txt}").is_err());
        assert!(serde_saphyr::from_str::<Spec>("{query: a, rcode: NOERR}").is_err());
    }

    #[test]
    fn new_keys_and_their_defaults() {
        let s = spec("query: example.org");
        assert_eq!(
            (
                s.record_type,
                s.rcode,
                s.expect.len(),
                s.soa_serial_of,
                s.max_serial_lag
            ),
            (None, Rcode::NoError, 0, None, None)
        );
        let s = spec(
            "{query: example.org, type: SOA, rcode: NOERROR, expect: [ns1.example.org.], soa_serial_of: '127.0.0.1:5300', max_serial_lag: 2}",
        );
        assert!(s.validate().is_empty(), "{:?}", s.validate());
        assert_eq!(s.record_type, Some(RecordType::Soa));
        assert_eq!(s.target(), "example.org SOA @system");
        for t in ["A", "AAAA", "SOA", "TXT", "CNAME", "MX", "NS", "PTR", "SRV"] {
            let s = spec(&format!("{{query: x.example, type: {t}}}"));
            assert_eq!(s.record_type.map(RecordType::name), Some(t));
        }
        for r in [
            "NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", "FORMERR", "NOTIMP",
        ] {
            let s = spec(&format!("{{query: x.example, rcode: {r}}}"));
            assert_eq!(s.rcode.name(), r);
        }
    }

    #[test]
    fn serial_arithmetic_follows_rfc_1982() {
        use SerialOrder::*;
        assert_eq!(serial_order(5, 5), Equal);
        assert_eq!(serial_order(1, 2), Behind(1));
        assert_eq!(serial_order(2, 1), Ahead(1));
        assert_eq!(serial_order(2024010101, 2024010105), Behind(4));
        // Across the wrap: 4294967295 + 1 is 0, and 0 + 5 is 5.
        assert_eq!(serial_order(u32::MAX, 0), Behind(1));
        assert_eq!(serial_order(u32::MAX - 2, 3), Behind(6));
        assert_eq!(serial_order(3, u32::MAX - 2), Ahead(6));
        // The largest difference that compares, either way.
        assert_eq!(serial_order(0, (1 << 31) - 1), Behind((1 << 31) - 1));
        assert_eq!(serial_order((1 << 31) + 1, 0), Behind((1 << 31) - 1));
        assert_eq!(serial_order(0, (1 << 31) + 1), Ahead((1 << 31) - 1));
        // Exactly half the space apart: undefined, both ways.
        assert_eq!(serial_order(0, 1 << 31), Undefined);
        assert_eq!(serial_order(1 << 31, 0), Undefined);
        assert_eq!(serial_order(7, 7u32.wrapping_add(1 << 31)), Undefined);
    }
}
