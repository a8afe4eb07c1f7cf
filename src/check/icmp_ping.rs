//! `icmp_ping`: sends `tries` echo requests `interval` apart, each waiting `timeout` for its
//! reply; passes if the loss is at most `max_loss_percent`.

use serde::Deserialize;

use super::{Attempts, Check, CheckContext, KindSpec, default_interval, default_timeout};
use crate::config::{Dur, Problem};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
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

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticTarget {
    /// IP address or host name.
    pub host: String,
}

fn default_pings() -> u32 {
    3
}

impl KindSpec for Spec {
    /// The whole series of echo requests is one attempt, bounded by the time it may take.
    fn attempts(&self) -> Attempts {
        let series = Attempts {
            tries: self.tries,
            interval: self.interval.0,
            timeout: self.timeout.0,
        };
        Attempts {
            tries: 1,
            interval: self.interval.0,
            timeout: series.worst_case(),
        }
    }

    fn validate(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        if self.tries == 0 {
            p.push(Problem::new(
                "tries",
                "must be at least 1 (echo requests per check)",
            ));
        }
        if self.timeout.0.is_zero() {
            p.push(Problem::new("timeout", "must be longer than 0s"));
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

    fn build(&self, _ctx: &CheckContext) -> Result<Box<dyn Check>, String> {
        Err("the icmp_ping prober is not in this build yet".to_string())
    }
}
