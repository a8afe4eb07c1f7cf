//! What the fleet looks like from this site: the [`FleetView`] the fleet task publishes on a
//! watch channel, its serde form [`FleetStatus`] for `/status`, and the table for
//! `anycastd status`.

use std::collections::BTreeMap;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::guard::ClaimState;
use crate::config::fleet::OnUnreachable;

/// The fleet as this site last saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetView {
    pub site: String,
    pub min_sites: u32,
    pub on_unreachable: OnUnreachable,
    /// etcd answered the last call.
    pub up: bool,
    /// Why the fleet task's last call to etcd failed, while it does.
    pub error: Option<String>,
    /// Why no router sees this site's routes (then its claims are out of etcd); `None`
    /// while one does.
    pub unseen: Option<String>,
    /// Set while another process owns this site's name in etcd (then this one does not
    /// claim): who, and what to do about it.
    pub duplicate: Option<String>,
    /// This site's prefixes (configured or claimed).
    pub prefixes: BTreeMap<IpNet, PrefixView>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrefixView {
    /// The sites that claim the prefix in etcd, with what their claims say (`None`: a value
    /// anycastd did not write).
    pub sites: BTreeMap<String, Option<ClaimState>>,
    /// This site holds the prefix: its services failed, and the guard keeps it announced.
    pub held: bool,
}

impl FleetView {
    pub fn status(&self) -> FleetStatus {
        FleetStatus {
            site: self.site.clone(),
            etcd_up: self.up,
            etcd_error: self.error.clone(),
            unseen: self.unseen.clone(),
            min_sites: self.min_sites,
            on_unreachable: self.on_unreachable,
            duplicate: self.duplicate.clone(),
            prefixes: self
                .prefixes
                .iter()
                .map(|(p, v)| FleetPrefixStatus {
                    prefix: p.to_string(),
                    sites: v
                        .sites
                        .iter()
                        .map(|(site, state)| FleetSiteStatus {
                            site: site.clone(),
                            state: match state {
                                Some(ClaimState::Up) => SiteState::Up,
                                Some(ClaimState::Held) => SiteState::Held,
                                None => SiteState::Unknown,
                            },
                        })
                        .collect(),
                    held_here: v.held,
                })
                .collect(),
        }
    }
}

/// The fleet part of `/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetStatus {
    pub site: String,
    /// Whether etcd answered the last call.
    pub etcd_up: bool,
    /// Why the last call to etcd failed, while it does.
    #[serde(default)]
    pub etcd_error: Option<String>,
    /// Why no router sees this site's routes (its claims are out of etcd meanwhile).
    #[serde(default)]
    pub unseen: Option<String>,
    pub min_sites: u32,
    pub on_unreachable: OnUnreachable,
    /// Another process owns this site's name: this one does not claim.
    pub duplicate: Option<String>,
    pub prefixes: Vec<FleetPrefixStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetPrefixStatus {
    pub prefix: String,
    /// The sites announcing it, as etcd says.
    pub sites: Vec<FleetSiteStatus>,
    /// This site keeps it announced only because of the guard.
    pub held_here: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetSiteStatus {
    pub site: String,
    pub state: SiteState,
}

/// Why a site announces a prefix, as its claim says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SiteState {
    /// Healthy.
    Up,
    /// Failing, kept announced (degraded) by the guard.
    Held,
    /// A claim anycastd cannot read (another version, or written by hand).
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_table_show_who_announces_and_who_holds() {
        let p: IpNet = "10.0.0.128/32".parse().expect("prefix");
        let mut v = FleetView {
            site: "fra1".into(),
            min_sites: 2,
            on_unreachable: OnUnreachable::Hold,
            up: true,
            error: None,
            unseen: None,
            duplicate: None,
            prefixes: BTreeMap::new(),
        };
        v.prefixes.insert(
            p,
            PrefixView {
                sites: [
                    ("ams1".to_string(), Some(ClaimState::Up)),
                    ("fra1".to_string(), Some(ClaimState::Held)),
                    ("lon1".to_string(), None),
                ]
                .into(),
                held: true,
            },
        );
        v.prefixes.insert(
            "2001:db8::/48".parse().expect("prefix"),
            PrefixView::default(),
        );
        let s = v.status();
        let json = serde_json::to_value(&s).expect("json");
        let i = usize::from(json["prefixes"][0]["prefix"] != "10.0.0.128/32");
        assert_eq!(json["prefixes"][i]["prefix"], "10.0.0.128/32");
        assert_eq!(json["prefixes"][i]["sites"][1]["state"], "held");
        assert_eq!(json["prefixes"][i]["held_here"], true);
        assert_eq!(json["on_unreachable"], "hold");
        let back: FleetStatus = serde_json::from_value(json).expect("round trip");
        assert_eq!(back, s);
    }
}
