//! `dns_lookup`: passes if a lookup of `query` returns at least one A or AAAA address, from
//! the given `resolver` or the system's.
//!
//! Every attempt builds a fresh resolver (see [`super::resolve`]): no answer is cached
//! between attempts, /etc/hosts is never consulted (the check is about DNS), and A and AAAA
//! are asked in parallel. NXDOMAIN, SERVFAIL, an empty answer and a silent or unreachable
//! server all fail, with the query and the server in the message.
//!
//! This file is the kind's prober; its spec is `config/checks/dns_lookup.rs`.

use std::time::Duration;

use super::probe::{AttemptFuture, Check, CheckContext, Failure, soft_deadline};
use super::resolve::{self, Upstream};
use crate::config::checks::attempts::KindSpec;
use crate::config::checks::dns_lookup::Spec;
use crate::duration::Dur;

/// The prober of `spec`.
pub fn build(spec: &Spec, _ctx: &CheckContext) -> Result<Box<dyn Check>, String> {
    Ok(Box::new(DnsLookup {
        query: spec.query.trim().to_string(),
        upstream: match spec.resolver {
            Some(r) => Upstream::At(r),
            None => Upstream::System,
        },
        target: spec.target(),
        timeout: spec.timeout.0,
    }))
}

struct DnsLookup {
    query: String,
    upstream: Upstream,
    /// `name @server`, the head of every failure message.
    target: String,
    timeout: Duration,
}

impl DnsLookup {
    async fn probe(&self) -> Result<(), Failure> {
        let fail = |m: String| Failure(format!("{}: {m}", self.target));
        let resolver = resolve::resolver(self.upstream, self.timeout, false).map_err(fail)?;
        let lookup = tokio::time::timeout(
            soft_deadline(self.timeout),
            resolver.lookup_ip(self.query.as_str()),
        )
        .await
        .map_err(|_| {
            fail(format!(
                "no answer within {} (is a DNS server listening there?)",
                Dur(self.timeout)
            ))
        })?
        .map_err(|e| fail(resolve::describe(&e)))?;
        if lookup.iter().next().is_none() {
            return Err(fail("no A or AAAA record in the answer".to_string()));
        }
        Ok(())
    }
}

impl Check for DnsLookup {
    fn attempt(&self) -> AttemptFuture<'_> {
        Box::pin(self.probe())
    }
}
