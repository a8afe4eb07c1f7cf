//! `dns_lookup`: passes if a lookup of `query` returns at least one A or AAAA address, from
//! the given `resolver` or the system's.

use std::net::SocketAddr;

use serde::Deserialize;

use super::{
    Attempts, Check, CheckContext, KindSpec, default_interval, default_timeout, default_tries,
};
use crate::config::{Dur, Problem};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
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
        }
        p
    }

    fn target(&self) -> String {
        match self.resolver {
            Some(r) => format!("{} @{r}", self.query),
            None => format!("{} @system", self.query),
        }
    }

    fn build(&self, _ctx: &CheckContext) -> Result<Box<dyn Check>, String> {
        Err("the dns_lookup prober is not in this build yet".to_string())
    }
}
