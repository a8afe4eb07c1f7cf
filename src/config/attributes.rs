//! Path attributes: how a route is announced in each state.
//!
//! `announcer.attributes` (and a service's own `attributes`, which replace it for that
//! service's routes) holds up to three sets: `up`, `degraded` and `draining`. `degraded` and
//! `draining` start from `up` and change only what they name: their communities are added
//! to `up`'s, any other attribute they give replaces `up`'s. Without a `draining` set, a
//! draining route gets the GRACEFUL_SHUTDOWN community (RFC 8326) and LOCAL_PREF 0 (which
//! gobgpd sends to iBGP peers only).
//!
//! The config's sets are resolved once, at load time, into [`Attributes`]: three complete
//! [`PathAttributes`], which is what the announcer sends and what reconcile compares.

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::problem::Problem;

/// The most extra copies of the local ASN `as_path_prepend` may ask for.
pub const MAX_PREPEND: u8 = 16;

/// A standard community (RFC 1997), `ASN:VALUE` with 16 bits each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Community(pub u32);

/// The well-known communities, by the names the config accepts.
pub const WELL_KNOWN: &[(&str, u32)] = &[
    ("graceful_shutdown", 0xFFFF_0000),
    ("blackhole", 0xFFFF_029A),
    ("no_export", 0xFFFF_FF01),
    ("no_advertise", 0xFFFF_FF02),
    ("no_export_subconfed", 0xFFFF_FF03),
];

impl Community {
    pub const GRACEFUL_SHUTDOWN: Community = Community(0xFFFF_0000);

    /// `ASN:VALUE` or a well-known name.
    pub fn parse(s: &str) -> Result<Community, String> {
        let t = s.trim();
        let names: Vec<&str> = WELL_KNOWN.iter().map(|(n, _)| *n).collect();
        let Some((asn, value)) = t.split_once(':') else {
            let wanted = t.to_ascii_lowercase().replace('-', "_");
            return match WELL_KNOWN.iter().find(|(n, _)| *n == wanted) {
                Some((_, v)) => Ok(Community(*v)),
                None => Err(format!(
                    "{t:?} is not a community{}: write ASN:VALUE (each 0..65535, e.g. 65000:100) or one of {}",
                    crate::wording::suggestion(&wanted, &names),
                    names.join(", ")
                )),
            };
        };
        let part = |p: &str, what: &str| {
            p.trim().parse::<u16>().map_err(|_| {
                format!(
                    "{t:?} is not a community: its {what} {p:?} is not a number in 0..65535 (write ASN:VALUE, e.g. 65000:100)"
                )
            })
        };
        let (a, v) = (part(asn, "ASN")?, part(value, "VALUE")?);
        Ok(Community((u32::from(a) << 16) | u32::from(v)))
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match WELL_KNOWN.iter().find(|(_, v)| *v == self.0) {
            Some((name, _)) => f.write_str(name),
            None => write!(f, "{}:{}", self.0 >> 16, self.0 & 0xFFFF),
        }
    }
}

/// A large community (RFC 8092), `GLOBAL:LOCAL1:LOCAL2` with 32 bits each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LargeCommunity {
    pub global: u32,
    pub local1: u32,
    pub local2: u32,
}

impl LargeCommunity {
    pub fn parse(s: &str) -> Result<LargeCommunity, String> {
        let t = s.trim();
        let parts: Vec<&str> = t.split(':').collect();
        let bad = || {
            format!(
                "{t:?} is not a large community: write GLOBAL:LOCAL1:LOCAL2, three numbers in 0..4294967295 (e.g. 65000:1:1)"
            )
        };
        let [g, l1, l2] = parts.as_slice() else {
            return Err(bad());
        };
        let n = |p: &str| p.trim().parse::<u32>().map_err(|_| bad());
        Ok(LargeCommunity {
            global: n(g)?,
            local1: n(l1)?,
            local2: n(l2)?,
        })
    }
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

macro_rules! from_string {
    ($t:ty) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$t>::parse(&s).map_err(de::Error::custom)
            }
        }
    };
}
from_string!(Community);
from_string!(LargeCommunity);

/// The attributes of one route in one state, complete: what gobgpd is asked to send.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PathAttributes {
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    /// Extra copies of the local ASN in front of the AS path.
    pub as_path_prepend: u8,
    pub communities: BTreeSet<Community>,
    pub large_communities: BTreeSet<LargeCommunity>,
}

impl PathAttributes {
    pub fn is_empty(&self) -> bool {
        *self == PathAttributes::default()
    }
}

/// `med 500, prepend 3, communities 65000:100 graceful_shutdown`; empty when there is none.
impl fmt::Display for PathAttributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(m) = self.med {
            parts.push(format!("med {m}"));
        }
        if let Some(l) = self.local_pref {
            parts.push(format!("local_pref {l}"));
        }
        if self.as_path_prepend > 0 {
            parts.push(format!("prepend {}", self.as_path_prepend));
        }
        if !self.communities.is_empty() {
            let c: Vec<String> = self.communities.iter().map(ToString::to_string).collect();
            parts.push(format!("communities {}", c.join(" ")));
        }
        if !self.large_communities.is_empty() {
            let c: Vec<String> = self
                .large_communities
                .iter()
                .map(ToString::to_string)
                .collect();
            parts.push(format!("large_communities {}", c.join(" ")));
        }
        f.write_str(&parts.join(", "))
    }
}

/// One set as written in the config: every field optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeSet {
    #[serde(default)]
    pub med: Option<u32>,
    #[serde(default)]
    pub communities: Option<Vec<Community>>,
    #[serde(default)]
    pub large_communities: Option<Vec<LargeCommunity>>,
    #[serde(default)]
    pub as_path_prepend: Option<u8>,
    #[serde(default)]
    pub local_pref: Option<u32>,
}

impl AttributeSet {
    /// `base` changed by this set: communities added, the rest replaced where given.
    fn over(&self, base: &PathAttributes) -> PathAttributes {
        let mut a = base.clone();
        if let Some(m) = self.med {
            a.med = Some(m);
        }
        if let Some(l) = self.local_pref {
            a.local_pref = Some(l);
        }
        if let Some(p) = self.as_path_prepend {
            a.as_path_prepend = p;
        }
        a.communities
            .extend(self.communities.iter().flatten().copied());
        a.large_communities
            .extend(self.large_communities.iter().flatten().copied());
        a
    }

    fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        if let Some(n) = self.as_path_prepend
            && n > MAX_PREPEND
        {
            p.push(Problem::new(
                "as_path_prepend",
                format!(
                    "{n} is too many: prepend the local ASN at most {MAX_PREPEND} times (routers drop or ignore longer paths)"
                ),
            ));
        }
        p
    }
}

/// `attributes:` of the announcer or of a service.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributesConfig {
    #[serde(default)]
    pub up: AttributeSet,
    #[serde(default)]
    pub degraded: AttributeSet,
    /// `None`: the RFC 8326 default ([`default_draining`]).
    #[serde(default)]
    pub draining: Option<AttributeSet>,
}

/// The draining set when the config gives none: GRACEFUL_SHUTDOWN added, LOCAL_PREF 0.
pub fn default_draining() -> AttributeSet {
    AttributeSet {
        communities: Some(vec![Community::GRACEFUL_SHUTDOWN]),
        local_pref: Some(0),
        ..AttributeSet::default()
    }
}

impl AttributesConfig {
    /// The three complete sets.
    pub fn resolve(&self) -> Attributes {
        let up = self.up.over(&PathAttributes::default());
        Attributes {
            degraded: self.degraded.over(&up),
            draining: self
                .draining
                .clone()
                .unwrap_or_else(default_draining)
                .over(&up),
            up,
        }
    }

    /// Problems with paths relative to `attributes`.
    pub fn problems(&self) -> Vec<Problem> {
        let mut p: Vec<Problem> = self
            .up
            .problems()
            .into_iter()
            .map(|x| x.under("up"))
            .collect();
        p.extend(
            self.degraded
                .problems()
                .into_iter()
                .map(|x| x.under("degraded")),
        );
        if let Some(d) = &self.draining {
            p.extend(d.problems().into_iter().map(|x| x.under("draining")));
        }
        p
    }

    /// The sets (by name) that prepend the local ASN.
    pub fn prepending(&self) -> Vec<&'static str> {
        [
            ("up", Some(&self.up)),
            ("degraded", Some(&self.degraded)),
            ("draining", self.draining.as_ref()),
        ]
        .into_iter()
        .filter(|(_, s)| s.is_some_and(|s| s.as_path_prepend.is_some_and(|n| n > 0)))
        .map(|(name, _)| name)
        .collect()
    }

    /// Whether any set gives `local_pref`.
    pub fn uses_local_pref(&self) -> bool {
        [Some(&self.up), Some(&self.degraded), self.draining.as_ref()]
            .into_iter()
            .flatten()
            .any(|s| s.local_pref.is_some())
    }
}

/// The attributes of a route in each state in which it is announced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub up: PathAttributes,
    pub degraded: PathAttributes,
    pub draining: PathAttributes,
}

/// The state a route is announced in; a route in none of them is withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteState {
    Up,
    Degraded,
    Draining,
}

impl RouteState {
    /// How much a router is made to prefer a route in this state: up over degraded over
    /// draining (`announcer.attribute_hold` holds a change to a more preferred one).
    pub fn preference(self) -> u8 {
        match self {
            RouteState::Up => 2,
            RouteState::Degraded => 1,
            RouteState::Draining => 0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RouteState::Up => "up",
            RouteState::Degraded => "degraded",
            RouteState::Draining => "draining",
        }
    }
}

impl Attributes {
    pub fn of(&self, state: RouteState) -> &PathAttributes {
        match state {
            RouteState::Up => &self.up,
            RouteState::Degraded => &self.degraded,
            RouteState::Draining => &self.draining,
        }
    }
}

/// `degraded: med 500, prepend 3`, or the state alone when its set is empty: how status
/// shows a route's current attributes.
pub fn describe(state: RouteState, attrs: &PathAttributes) -> String {
    if attrs.is_empty() {
        state.name().to_string()
    } else {
        format!("{}: {attrs}", state.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(yaml: &str) -> AttributesConfig {
        serde_saphyr::from_str(yaml).expect("attributes parse")
    }

    #[test]
    fn communities_by_number_and_name() {
        assert_eq!(Community::parse("65000:100"), Ok(Community(0xFDE8_0064)));
        assert_eq!(
            Community::parse("graceful_shutdown"),
            Ok(Community::GRACEFUL_SHUTDOWN)
        );
        assert_eq!(Community::parse("NO-EXPORT"), Ok(Community(0xFFFF_FF01)));
        assert_eq!(Community(0xFFFF_029A).to_string(), "blackhole");
        assert_eq!(Community(0xFDE8_0064).to_string(), "65000:100");
        let e = Community::parse("70000:1").expect_err("out of range");
        assert!(e.contains("ASN \"70000\"") && e.contains("0..65535"), "{e}");
        let e = Community::parse("no_exprot").expect_err("unknown name");
        assert!(e.contains("graceful_shutdown, blackhole, no_export"), "{e}");
        assert!(Community::parse("1:2:3").is_err());
    }

    #[test]
    fn large_communities() {
        assert_eq!(
            LargeCommunity::parse("65000:1:4294967295"),
            Ok(LargeCommunity {
                global: 65000,
                local1: 1,
                local2: u32::MAX
            })
        );
        for bad in ["65000:1", "a:b:c", "1:2:3:4", "4294967296:1:1"] {
            let e = LargeCommunity::parse(bad).expect_err(bad);
            assert!(e.contains("GLOBAL:LOCAL1:LOCAL2"), "{e}");
        }
    }

    #[test]
    fn degraded_and_draining_start_from_up() {
        let a = set(
            "up: { med: 100, communities: [\"65000:100\"], large_communities: [\"65000:1:1\"], local_pref: 200 }\n\
             degraded: { med: 500, as_path_prepend: 3, communities: [\"65000:666\"] }\n",
        )
        .resolve();
        assert_eq!(
            a.up.to_string(),
            "med 100, local_pref 200, communities 65000:100, large_communities 65000:1:1"
        );
        assert_eq!(
            a.degraded.to_string(),
            "med 500, local_pref 200, prepend 3, communities 65000:100 65000:666, large_communities 65000:1:1"
        );
        // The default draining set: GRACEFUL_SHUTDOWN added, LOCAL_PREF 0.
        assert_eq!(
            a.draining.to_string(),
            "med 100, local_pref 0, communities 65000:100 graceful_shutdown, large_communities 65000:1:1"
        );
    }

    #[test]
    fn an_explicit_draining_set_replaces_the_default() {
        let a = set("draining: { communities: [no_export] }\n").resolve();
        assert_eq!(a.draining.to_string(), "communities no_export");
        assert_eq!(a.up, PathAttributes::default());
    }

    #[test]
    fn prepend_is_bounded() {
        let p = set("degraded: { as_path_prepend: 17 }\n").problems();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].path, "degraded.as_path_prepend");
        assert!(p[0].message.contains("at most 16"), "{p:?}");
    }

    #[test]
    fn status_wording() {
        let a = set("degraded: { med: 500, as_path_prepend: 3 }\n").resolve();
        assert_eq!(describe(RouteState::Up, &a.up), "up");
        assert_eq!(
            describe(RouteState::Degraded, &a.degraded),
            "degraded: med 500, prepend 3"
        );
    }
}
