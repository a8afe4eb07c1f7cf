//! BFD for the BGP peers (SPEC 16): `announcer.bfd` is every peer's default and
//! `peers[].bfd` merges over it, key by key; [`Bfd`] is what a peer ends up with.
//!
//! GoBGP runs BFD from 4.6 (single hop, asynchronous mode, intervals in microseconds). It
//! puts no lower bound on the intervals (1 µs would start a 1 µs ticker), so anycastd does:
//! [`MIN_INTERVAL`].

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::duration::Dur;
use crate::problem::Problem;

/// The shortest interval anycastd sends: 10 ms. Shorter ones cost CPU in gobgpd (a Go
/// ticker per peer) and are lost to scheduling noise on a loaded host; routers commonly
/// floor theirs at 10 to 50 ms too.
pub const MIN_INTERVAL: Dur = Dur::millis(10);
/// The longest: 60 s (GoBGP's field holds up to 4,294 s in µs; longer would defeat BFD).
pub const MAX_INTERVAL: Dur = Dur::secs(60);

/// `bfd:` as written, at the announcer or at a peer: each key optional.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BfdConfig {
    /// Run BFD with the peer (default false).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Desired minimum transmit interval (default 300ms, 10ms to 60s).
    #[serde(default)]
    pub min_tx: Option<Dur>,
    /// Required minimum receive interval (default 300ms, 10ms to 60s).
    #[serde(default)]
    pub min_rx: Option<Dur>,
    /// Detection multiplier: packets missed before the session is down (default 3).
    #[serde(default)]
    #[schemars(range(min = 1, max = 255))]
    pub multiplier: Option<u32>,
    /// UDP port of the peer's BFD (default 3784, RFC 5881).
    #[serde(default)]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u32>,
}

/// A peer's BFD, merged and validated: present only when enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bfd {
    pub min_tx: Duration,
    pub min_rx: Duration,
    pub multiplier: u8,
    pub port: u16,
}

impl Bfd {
    /// How long the peer's silence takes to be noticed, at the intervals asked (the peer may
    /// be slower: the detection time is its multiplier × the slower of the two sides).
    pub fn detection_time(&self) -> Duration {
        self.min_rx.max(self.min_tx) * u32::from(self.multiplier)
    }

    /// `300ms x 3`, as logs and `status` say it.
    pub fn describe(&self) -> String {
        let ms = |d: Duration| humantime::format_duration(d).to_string();
        if self.min_tx == self.min_rx {
            format!("{} x {}", ms(self.min_rx), self.multiplier)
        } else {
            format!(
                "tx {} rx {} x {}",
                ms(self.min_tx),
                ms(self.min_rx),
                self.multiplier
            )
        }
    }
}

pub const DEFAULT_INTERVAL: Dur = Dur::millis(300);
pub const DEFAULT_MULTIPLIER: u32 = 3;
pub const DEFAULT_PORT: u32 = 3784;

impl BfdConfig {
    /// `self` (a peer's) over `default` (the announcer's), key by key.
    pub fn over(self, default: BfdConfig) -> BfdConfig {
        BfdConfig {
            enabled: self.enabled.or(default.enabled),
            min_tx: self.min_tx.or(default.min_tx),
            min_rx: self.min_rx.or(default.min_rx),
            multiplier: self.multiplier.or(default.multiplier),
            port: self.port.or(default.port),
        }
    }

    /// What a peer runs: `None` when BFD is not enabled. Values out of range are clamped
    /// here; [`BfdConfig::problems`] has refused them already in a validated config.
    pub fn resolve(self) -> Option<Bfd> {
        if self.enabled != Some(true) {
            return None;
        }
        Some(Bfd {
            min_tx: self.min_tx.unwrap_or(DEFAULT_INTERVAL).0,
            min_rx: self.min_rx.unwrap_or(DEFAULT_INTERVAL).0,
            multiplier: u8::try_from(self.multiplier.unwrap_or(DEFAULT_MULTIPLIER).clamp(1, 255))
                .unwrap_or(u8::MAX),
            port: u16::try_from(self.port.unwrap_or(DEFAULT_PORT).clamp(1, 65535))
                .unwrap_or(u16::MAX),
        })
    }

    /// The problems of the keys written here (paths relative to this `bfd`).
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for (key, d) in [("min_tx", self.min_tx), ("min_rx", self.min_rx)] {
            if let Some(d) = d
                && let Err(m) = d
                    .at_least(MIN_INTERVAL)
                    .and_then(|()| d.at_most(MAX_INTERVAL))
            {
                out.push(Problem::new(key, m));
            }
        }
        if let Some(m) = self.multiplier
            && !(1..=255).contains(&m)
        {
            out.push(Problem::new(
                "multiplier",
                format!("{m} is out of range: write 1..255 (3 is usual)"),
            ));
        }
        if let Some(p) = self.port
            && !(1..=65535).contains(&p)
        {
            out.push(Problem::new(
                "port",
                format!("{p} is not a port: write 1..65535, or leave it out for 3784"),
            ));
        }
        out
    }

    /// Whether any key besides `enabled` is written (a warning when BFD stays off).
    pub fn sets_timers(&self) -> bool {
        self.min_tx.is_some()
            || self.min_rx.is_some()
            || self.multiplier.is_some()
            || self.port.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_s_keys_merge_over_the_announcer_s() {
        let announcer = BfdConfig {
            enabled: Some(true),
            min_tx: Some(Dur::millis(100)),
            multiplier: Some(5),
            ..Default::default()
        };
        let peer = BfdConfig {
            min_tx: Some(Dur::millis(50)),
            ..Default::default()
        };
        assert_eq!(
            peer.over(announcer).resolve(),
            Some(Bfd {
                min_tx: Duration::from_millis(50),
                min_rx: Duration::from_millis(300),
                multiplier: 5,
                port: 3784,
            })
        );
        let off = BfdConfig {
            enabled: Some(false),
            ..Default::default()
        };
        assert_eq!(off.over(announcer).resolve(), None);
        assert_eq!(
            BfdConfig::default().over(BfdConfig::default()).resolve(),
            None
        );
    }

    #[test]
    fn out_of_range_keys_are_named() {
        let c = BfdConfig {
            min_tx: Some(Dur::millis(1)),
            min_rx: Some(Dur::secs(61)),
            multiplier: Some(0),
            port: Some(70000),
            ..Default::default()
        };
        let p: Vec<String> = c.problems().iter().map(|p| p.to_string()).collect();
        assert_eq!(
            p,
            [
                "min_tx: 1ms is too short: write at least 10ms",
                "min_rx: 1m1s is too long: write at most 1m",
                "multiplier: 0 is out of range: write 1..255 (3 is usual)",
                "port: 70000 is not a port: write 1..65535, or leave it out for 3784",
            ]
        );
    }

    #[test]
    fn detection_time_and_wording() {
        let b = Bfd {
            min_tx: Duration::from_millis(300),
            min_rx: Duration::from_millis(300),
            multiplier: 3,
            port: 3784,
        };
        assert_eq!(b.detection_time(), Duration::from_millis(900));
        assert_eq!(b.describe(), "300ms x 3");
    }
}
