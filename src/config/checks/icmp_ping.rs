//! `icmp_ping`: sends `tries` echo requests `interval` apart, each waiting `timeout` for its
//! reply; passes if the loss is at most `max_loss_percent`.
//!
//! The host is resolved at every run when it is a name. The ICMP sockets (one per address
//! family, opened at the first run that needs it) belong to the check and live as long as
//! it: surge-ping tries a datagram ICMP socket first (unprivileged, where
//! `net.ipv4.ping_group_range` allows it) and falls back to a raw socket (root or
//! CAP_NET_RAW). Each run uses a fresh identifier and fresh sequence numbers, so a late
//! reply to an earlier run is never taken for a reply to this one, and only echo replies
//! count: an ICMP error (destination unreachable, time exceeded) is a loss, and says so.
//!
//! Metrics, labels `{service, check, host}`: the RTT figures and the loss of the last run,
//! and the totals of requests sent and replies received.
//!
//! This file is the kind's spec (the config side); its prober is `check/icmp_ping.rs`.

use serde::Deserialize;

use super::attempts::{Attempts, KindSpec, MIN_TIMEOUT, default_interval, default_timeout};
use crate::duration::Dur;
use crate::problem::Problem;

/// The shortest `interval` between echo requests: 100 a second. With `tries` up to 65535,
/// a shorter one would make a health check a ping flood.
pub const MIN_INTERVAL: Dur = Dur::millis(10);

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "IcmpPingSpec")]
pub struct Spec {
    #[serde(rename = "static")]
    pub target: StaticTarget,
    /// Echo requests sent per check.
    #[serde(default = "default_pings")]
    pub tries: u32,
    /// Between two echo requests.
    #[serde(default = "default_interval")]
    pub interval: Dur,
    /// How long each reply is waited for.
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    #[serde(default)]
    pub max_loss_percent: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StaticTarget {
    /// IP address or host name.
    pub host: String,
}

fn default_pings() -> u32 {
    3
}

impl Spec {
    /// The series of echo requests, as an attempt policy: its worst case is how long the
    /// whole series may take.
    pub fn series(&self) -> Attempts {
        Attempts {
            tries: self.tries,
            interval: self.interval.0,
            timeout: self.timeout.0,
        }
    }
}

impl KindSpec for Spec {
    /// The whole series of echo requests is one attempt, bounded by the time it may take.
    fn attempts(&self) -> Attempts {
        Attempts {
            tries: 1,
            interval: self.interval.0,
            timeout: self.series().worst_case(),
        }
    }

    fn validate(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        if self.tries == 0 {
            p.push(Problem::new(
                "tries",
                "must be at least 1 (echo requests per check)",
            ));
        } else if self.tries > u32::from(u16::MAX) {
            p.push(Problem::new(
                "tries",
                "must be at most 65535 (echo requests per check)",
            ));
        }
        if let Err(m) = self.timeout.at_least(MIN_TIMEOUT) {
            p.push(Problem::new("timeout", m));
        }
        if let Err(m) = self.interval.at_least(MIN_INTERVAL) {
            p.push(Problem::new("interval", m));
        }
        if !(0.0..=100.0).contains(&self.max_loss_percent) {
            p.push(Problem::new(
                "max_loss_percent",
                "must be between 0 and 100",
            ));
        }
        if self.target.host.trim().is_empty() {
            p.push(Problem::new(
                "static.host",
                "must be an IP address or a host name",
            ));
        }
        p
    }

    fn target(&self) -> String {
        self.target.host.clone()
    }
}
