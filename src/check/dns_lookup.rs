//! `dns_lookup`: passes if a lookup of `query` returns at least one A or AAAA address, from
//! the given `resolver` or the system's; with the optional keys, at least one record of
//! `type`, the response code `rcode`, every `expect`ed value, and a zone that keeps up with
//! its primary (`soa_serial_of`, `max_serial_lag`).
//!
//! Every attempt builds a fresh resolver (see [`super::resolve`]): no answer is cached
//! between attempts, /etc/hosts is never consulted (the check is about DNS), and A and AAAA
//! are asked in parallel. NXDOMAIN, SERVFAIL, an empty answer and a silent or unreachable
//! server all fail, with the query and the server in the message.
//!
//! The serials: the SOA of `query` (or of the zone holding it, from the authority section
//! of a negative answer) is asked of the primary, then of the resolver, while the lookup
//! itself runs; both must succeed, and the resolver's serial may be behind the primary's by
//! at most `max_serial_lag` (RFC 1982, [`serial_order`]).
//!
//! This file is the kind's prober; its spec is `config/checks/dns_lookup.rs`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType as HickoryType};
use tokio::time::Instant;

use super::probe::{AttemptFuture, Check, CheckContext, Failure, soft_deadline};
use super::resolve::{self, Upstream};
use crate::config::checks::attempts::KindSpec;
use crate::config::checks::dns_lookup::{Rcode, RecordType, SerialOrder, Spec, serial_order};
use crate::duration::Dur;
use crate::wording::quote;

/// The prober of `spec`.
pub fn build(spec: &Spec, _ctx: &CheckContext) -> Result<Box<dyn Check>, String> {
    Ok(Box::new(DnsLookup {
        query: spec.query.trim().to_string(),
        upstream: match spec.resolver {
            Some(r) => Upstream::At(r),
            None => Upstream::System,
        },
        record_type: spec.record_type,
        rcode: spec.rcode,
        expect: spec.expect.clone(),
        serials: spec
            .soa_serial_of
            .map(|p| (p, spec.max_serial_lag.unwrap_or(0))),
        target: spec.target(),
        timeout: spec.timeout.0,
    }))
}

struct DnsLookup {
    query: String,
    upstream: Upstream,
    record_type: Option<RecordType>,
    rcode: Rcode,
    expect: Vec<String>,
    /// `soa_serial_of` and `max_serial_lag`.
    serials: Option<(SocketAddr, u32)>,
    /// `name @server`, the head of every failure message.
    target: String,
    timeout: Duration,
}

/// What a lookup brought back.
enum Answer {
    /// NOERROR with these records of the type asked, as text (see [`answer_text`]).
    Records(Vec<String>),
    /// A response without records of the type asked: its code (NOERROR: no data), and
    /// what [`resolve::describe`] says of it.
    Negative(ResponseCode, String),
}

impl DnsLookup {
    async fn probe(&self) -> Result<(), Failure> {
        let deadline = Instant::now() + soft_deadline(self.timeout);
        let (lookup, serials) = match self.serials {
            None => (self.lookup(deadline).await, Ok(())),
            Some((primary, lag)) => {
                tokio::join!(self.lookup(deadline), self.serials(primary, lag, deadline))
            }
        };
        match (lookup, serials) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(m), Ok(())) | (Ok(()), Err(m)) => Err(Failure(format!("{}: {m}", self.target))),
            (Err(a), Err(b)) => Err(Failure(format!("{}: {a}; {b}", self.target))),
        }
    }

    fn resolver(&self, upstream: Upstream) -> Result<TokioResolver, String> {
        resolve::resolver(upstream, self.timeout, false)
    }

    fn no_answer(&self) -> String {
        format!(
            "no answer within {} (is a DNS server listening there?)",
            Dur(self.timeout)
        )
    }

    /// The lookup of `query`, judged against `type`, `rcode` and `expect`.
    async fn lookup(&self, deadline: Instant) -> Result<(), String> {
        let resolver = self.resolver(self.upstream)?;
        let answer = match self.record_type {
            None => {
                let r = tokio::time::timeout_at(deadline, resolver.lookup_ip(self.query.as_str()))
                    .await
                    .map_err(|_| self.no_answer())?;
                match r {
                    Ok(l) => Answer::Records(l.iter().map(|ip| ip.to_string()).collect()),
                    Err(e) => negative(&e).ok_or_else(|| resolve::describe(&e))?,
                }
            }
            Some(t) => {
                let want = hickory_type(t);
                let r =
                    tokio::time::timeout_at(deadline, resolver.lookup(self.query.as_str(), want))
                        .await
                        .map_err(|_| self.no_answer())?;
                match r {
                    Ok(l) => Answer::Records(
                        l.answers()
                            .iter()
                            .filter(|r| r.record_type() == want)
                            .map(|r| answer_text(&r.data))
                            .collect(),
                    ),
                    Err(e) => negative(&e).ok_or_else(|| resolve::describe(&e))?,
                }
            }
        };
        self.judge(answer)
    }

    fn judge(&self, answer: Answer) -> Result<(), String> {
        let asked = match self.record_type {
            Some(t) => t.name().to_string(),
            None => "A or AAAA".to_string(),
        };
        let want = self.rcode.name();
        match (self.rcode, answer) {
            (Rcode::NoError, Answer::Records(r)) if r.is_empty() => {
                Err(format!("no {asked} record in the answer"))
            }
            (Rcode::NoError, Answer::Records(records)) => {
                let missing: Vec<String> = self
                    .expect
                    .iter()
                    .filter(|e| !records.iter().any(|r| matches(self.record_type, e, r)))
                    .map(|e| quote(e))
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    let shown: Vec<String> = records.iter().take(8).map(|r| quote(r)).collect();
                    let more = records.len().saturating_sub(8);
                    Err(format!(
                        "{} not among the {asked} answers ({}{})",
                        missing.join(", "),
                        shown.join(", "),
                        if more > 0 {
                            format!(" and {more} more")
                        } else {
                            String::new()
                        }
                    ))
                }
            }
            (Rcode::NoError, Answer::Negative(ResponseCode::NoError, _)) => {
                Err(format!("no {asked} record (NOERROR with an empty answer)"))
            }
            (Rcode::NoError, Answer::Negative(_, described)) => Err(described),
            (_, Answer::Negative(c, _)) if rcode_name(c) == Some(want) => Ok(()),
            (_, Answer::Negative(ResponseCode::NoError, _)) => Err(format!(
                "answered NOERROR with no {asked} record, not {want}"
            )),
            (_, Answer::Negative(_, described)) => Err(format!("answered {described}, not {want}")),
            (_, Answer::Records(r)) => Err(format!(
                "answered NOERROR with {} {asked} record{}, not {want}",
                r.len(),
                if r.len() == 1 { "" } else { "s" }
            )),
        }
    }

    /// The resolver's SOA serial against the primary's: the primary is asked first, so
    /// that an update landing between the two questions makes the resolver look ahead.
    async fn serials(
        &self,
        primary: SocketAddr,
        max_lag: u32,
        deadline: Instant,
    ) -> Result<(), String> {
        let theirs = self
            .soa_serial(Upstream::At(primary), deadline)
            .await
            .map_err(|m| format!("the primary {primary} (soa_serial_of): {m}"))?;
        let ours = self
            .soa_serial(self.upstream, deadline)
            .await
            .map_err(|m| format!("SOA serial: {m}"))?;
        match serial_order(ours, theirs) {
            SerialOrder::Behind(n) if n > max_lag => Err(format!(
                "zone is stale: SOA serial {ours}, the primary's {theirs} ({n} behind, more than max_serial_lag {max_lag})"
            )),
            SerialOrder::Undefined => Err(format!(
                "SOA serial {ours} cannot be compared with the primary's {theirs}: they are 2^31 apart, which RFC 1982 leaves undefined"
            )),
            _ => Ok(()),
        }
    }

    /// The SOA serial of `query` (or of its zone) at `upstream`.
    async fn soa_serial(&self, upstream: Upstream, deadline: Instant) -> Result<u32, String> {
        let resolver = self.resolver(upstream)?;
        let r = tokio::time::timeout_at(
            deadline,
            resolver.lookup(self.query.as_str(), HickoryType::SOA),
        )
        .await
        .map_err(|_| self.no_answer())?;
        match r {
            Ok(l) => l
                .answers()
                .iter()
                .find_map(|r| match &r.data {
                    RData::SOA(soa) => Some(soa.serial),
                    _ => None,
                })
                .ok_or_else(|| "no SOA record in the answer".to_string()),
            Err(NetError::Dns(DnsError::NoRecordsFound(nr))) => match &nr.soa {
                Some(soa) => Ok(soa.data.serial),
                None => Err(format!(
                    "no SOA record in the answer nor in its authority section ({})",
                    rcode_name(nr.response_code).unwrap_or("an unusual response code")
                )),
            },
            Err(e) => Err(resolve::describe(&e)),
        }
    }
}

impl Check for DnsLookup {
    fn attempt(&self) -> AttemptFuture<'_> {
        Box::pin(self.probe())
    }
}

/// The response code of a negative answer; `None` for a failure to get one.
fn negative(e: &NetError) -> Option<Answer> {
    match e {
        NetError::Dns(DnsError::ResponseCode(c)) => {
            Some(Answer::Negative(*c, resolve::describe(e)))
        }
        NetError::Dns(DnsError::NoRecordsFound(nr)) => {
            Some(Answer::Negative(nr.response_code, resolve::describe(e)))
        }
        _ => None,
    }
}

/// The name of a code the spec can expect.
fn rcode_name(c: ResponseCode) -> Option<&'static str> {
    Some(match c {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::NotImp => "NOTIMP",
        _ => return None,
    })
}

fn hickory_type(t: RecordType) -> HickoryType {
    match t {
        RecordType::A => HickoryType::A,
        RecordType::Aaaa => HickoryType::AAAA,
        RecordType::Soa => HickoryType::SOA,
        RecordType::Txt => HickoryType::TXT,
        RecordType::Cname => HickoryType::CNAME,
        RecordType::Mx => HickoryType::MX,
        RecordType::Ns => HickoryType::NS,
        RecordType::Ptr => HickoryType::PTR,
        RecordType::Srv => HickoryType::SRV,
    }
}

/// A record's data as dig writes it: `192.0.2.1`, `10 mail.example.org.`, a TXT record's
/// strings joined.
fn answer_text(d: &RData) -> String {
    d.to_string()
}

/// Whether `expected` (from the spec) is the answer `got`: addresses compared as addresses
/// (`2001:DB8::1` is `2001:db8::1`), TXT data exactly, anything else word by word without
/// regard to case or a name's final dot (`mail.example.org` is `Mail.Example.Org.`).
fn matches(t: Option<RecordType>, expected: &str, got: &str) -> bool {
    match t {
        None | Some(RecordType::A | RecordType::Aaaa) => {
            match (expected.trim().parse::<IpAddr>(), got.parse::<IpAddr>()) {
                (Ok(a), Ok(b)) => a == b,
                _ => expected.trim() == got,
            }
        }
        Some(RecordType::Txt) => expected == got,
        Some(_) => {
            let words = |s: &str| -> Vec<String> {
                s.split_whitespace()
                    .map(|w| w.trim_end_matches('.').to_ascii_lowercase())
                    .collect()
            };
            words(expected) == words(got)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_values_match_as_dig_writes_them() {
        assert!(matches(None, "192.0.2.10", "192.0.2.10"));
        assert!(matches(
            Some(RecordType::Aaaa),
            "2001:DB8::10",
            "2001:db8::10"
        ));
        assert!(!matches(Some(RecordType::A), "192.0.2.1", "192.0.2.10"));
        assert!(matches(
            Some(RecordType::Mx),
            "10 Mail.Example.Test",
            "10 mail.example.test."
        ));
        assert!(!matches(
            Some(RecordType::Mx),
            "20 mail.example.test.",
            "10 mail.example.test."
        ));
        assert!(matches(
            Some(RecordType::Ns),
            "ns1.example.test.",
            "ns1.example.test."
        ));
        assert!(matches(Some(RecordType::Txt), "v=spf1 -all", "v=spf1 -all"));
        assert!(!matches(
            Some(RecordType::Txt),
            "V=SPF1 -all",
            "v=spf1 -all"
        ));
    }
}
