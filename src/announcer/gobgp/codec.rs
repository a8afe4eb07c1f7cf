//! What the API modules share: a path's attributes and a peer's settings in neutral terms,
//! so that the rules (which attributes anycastd sets, which paths it could have made, when
//! a peer in gobgpd has the settings anycastd wants) are written once. Each API module only
//! maps these to and from its generated types ([`super::v3`]: `google.protobuf.Any`;
//! [`super::v4`]: oneofs).

use std::net::IpAddr;

use ipnet::IpNet;

use super::ops::{Advert, PeerSettings};
use crate::config::attributes::{Community, LargeCommunity, PathAttributes};

/// The ORIGIN anycastd sets: IGP.
pub const ORIGIN_IGP: u32 = 0;

/// One path attribute, as anycastd sets or reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    Origin(u32),
    /// NEXT_HOP (IPv4 unicast).
    NextHop(String),
    /// MP_REACH_NLRI (IPv6 unicast): the next hop, and the prefix it carries.
    MpReach {
        next_hop: String,
        prefix: IpNet,
    },
    /// An AS_SEQUENCE of these numbers.
    AsPath(Vec<u32>),
    Med(u32),
    LocalPref(u32),
    Communities(Vec<u32>),
    LargeCommunities(Vec<LargeCommunity>),
    /// Something anycastd never sets (another attribute, an AS_SET, ...).
    Foreign,
}

/// The attributes of a path as anycastd announces it: ORIGIN IGP, NEXT_HOP (IPv4) or
/// MP_REACH_NLRI (IPv6), and the attributes of its state.
pub fn attrs_of(prefix: IpNet, advert: &Advert, local_asn: u32) -> Vec<Attr> {
    let mut out = vec![Attr::Origin(ORIGIN_IGP)];
    out.push(match prefix {
        IpNet::V4(_) => Attr::NextHop(advert.next_hop.to_string()),
        IpNet::V6(_) => Attr::MpReach {
            next_hop: advert.next_hop.to_string(),
            prefix,
        },
    });
    let a = &advert.attrs;
    if a.as_path_prepend > 0 {
        out.push(Attr::AsPath(vec![
            local_asn;
            usize::from(a.as_path_prepend)
        ]));
    }
    if let Some(med) = a.med {
        out.push(Attr::Med(med));
    }
    if let Some(local_pref) = a.local_pref {
        out.push(Attr::LocalPref(local_pref));
    }
    if !a.communities.is_empty() {
        out.push(Attr::Communities(
            a.communities.iter().map(|c| c.0).collect(),
        ));
    }
    if !a.large_communities.is_empty() {
        out.push(Attr::LargeCommunities(
            a.large_communities.iter().copied().collect(),
        ));
    }
    out
}

/// The next hop and attributes of a path, when they are ones anycastd could have set:
/// ORIGIN IGP, an AS path of the local ASN only, no attribute of another kind.
pub fn advert_of(attrs: impl IntoIterator<Item = Attr>, local_asn: u32) -> Option<Advert> {
    let mut next_hop: Option<IpAddr> = None;
    let mut out = PathAttributes::default();
    for a in attrs {
        match a {
            Attr::Origin(o) if o == ORIGIN_IGP => {}
            Attr::Origin(_) | Attr::Foreign => return None,
            Attr::NextHop(h) | Attr::MpReach { next_hop: h, .. } => {
                next_hop = h.parse().ok();
            }
            Attr::AsPath(numbers) => {
                if numbers.iter().any(|n| *n != local_asn) {
                    return None;
                }
                out.as_path_prepend = u8::try_from(numbers.len()).ok()?;
            }
            Attr::Med(m) => out.med = Some(m),
            Attr::LocalPref(l) => out.local_pref = Some(l),
            Attr::Communities(c) => out.communities = c.into_iter().map(Community).collect(),
            Attr::LargeCommunities(c) => out.large_communities = c.into_iter().collect(),
        }
    }
    Some(Advert {
        next_hop: next_hop?,
        attrs: out,
    })
}

/// A peer's settings as gobgpd reports them (`ListPeer`), in the terms anycastd sets them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeenPeer {
    pub asn: u32,
    pub description: String,
    pub password: String,
    pub local_address: String,
    /// 0 when not configured (gobgpd then uses 179).
    pub remote_port: u32,
    pub passive: bool,
    /// 0: no eBGP multihop.
    pub multihop_ttl: u32,
    /// hold time, keepalive interval, connect retry.
    pub timers: Option<(u64, u64, u64)>,
    /// BFD as gobgpd holds it: `None` when its API has none, or when it has been found
    /// not to run it (then there is nothing to compare: it cannot be set).
    pub bfd: Option<SeenBfd>,
}

/// A peer's BFD settings as gobgpd holds them (µs; gobgpd fills in its defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenBfd {
    pub enabled: bool,
    pub port: u32,
    pub min_tx_us: u32,
    pub min_rx_us: u32,
    pub multiplier: u32,
}

impl SeenBfd {
    /// What anycastd sends for `want` (`None`: BFD off). Off is sent with gobgpd's own
    /// defaults, which is how gobgpd reads it back.
    pub fn wanted(want: Option<crate::config::bfd::Bfd>) -> SeenBfd {
        let us = |d: std::time::Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
        match want {
            Some(b) => SeenBfd {
                enabled: true,
                port: u32::from(b.port),
                min_tx_us: us(b.min_tx),
                min_rx_us: us(b.min_rx),
                multiplier: u32::from(b.multiplier),
            },
            None => SeenBfd {
                enabled: false,
                port: 3784,
                min_tx_us: 1_000_000,
                min_rx_us: 1_000_000,
                multiplier: 3,
            },
        }
    }
}

/// Whether gobgpd's BFD of a peer is what anycastd wants: the timers count only while
/// enabled (gobgpd reports its defaults for a peer without BFD).
fn bfd_matches(have: Option<SeenBfd>, want: Option<crate::config::bfd::Bfd>) -> bool {
    match (have, want) {
        (None, _) => true,
        (Some(h), None) => !h.enabled,
        (Some(h), Some(_)) => h == SeenBfd::wanted(want),
    }
}

/// Whether gobgpd's view of a peer has the settings anycastd wants.
pub fn peer_matches(have: &SeenPeer, want: &PeerSettings) -> bool {
    let port = u32::from(want.port.unwrap_or(179));
    have.asn == want.asn
        && have.description == want.name
        && have.password == want.password.clone().unwrap_or_default()
        && same_addr(&have.local_address, want.local_address)
        && (have.remote_port == port || (have.remote_port == 0 && port == 179))
        && have.passive == want.passive
        && have.multihop_ttl == u32::from(want.multihop_ttl)
        && have.timers
            == Some((
                want.timers.hold_time,
                want.timers.keepalive_interval,
                want.timers.connect_retry,
            ))
        && bfd_matches(have.bfd, want.bfd)
}

fn same_addr(have: &str, want: IpAddr) -> bool {
    have.parse::<IpAddr>().is_ok_and(|a| a == want)
}

/// Whether a peer that gobgpd reports (by its configured and its state address) is the
/// one at `address`.
pub fn same_neighbor(addresses: [Option<&str>; 2], address: IpAddr) -> bool {
    addresses
        .into_iter()
        .flatten()
        .any(|a| a.parse::<IpAddr>().is_ok_and(|a| a == address))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announcer::gobgp::ops::PeerTimers;

    fn advert(nh: &str, attrs: PathAttributes) -> Advert {
        Advert {
            next_hop: nh.parse().expect("nh"),
            attrs,
        }
    }

    fn every_attribute() -> PathAttributes {
        PathAttributes {
            med: Some(500),
            local_pref: Some(0),
            as_path_prepend: 3,
            communities: [Community(0xFDE8_0064), Community::GRACEFUL_SHUTDOWN].into(),
            large_communities: [LargeCommunity {
                global: 65000,
                local1: 1,
                local2: 2,
            }]
            .into(),
        }
    }

    #[test]
    fn every_attribute_survives_the_round_trip_for_both_families() {
        for (prefix, nh) in [
            ("192.0.2.1/32", "198.51.100.1"),
            ("2001:db8:100::/48", "2001:db8::1"),
        ] {
            let a = advert(nh, every_attribute());
            let attrs = attrs_of(prefix.parse().expect("prefix"), &a, 65001);
            assert_eq!(attrs.len(), 7, "{prefix}");
            assert_eq!(advert_of(attrs.clone(), 65001), Some(a), "{prefix}");
            // Another ASN in the AS path is not a prepend anycastd made.
            assert_eq!(advert_of(attrs, 65002), None);
        }
    }

    #[test]
    fn a_path_anycastd_could_not_have_made_is_not_read_as_its_own() {
        let a = advert("198.51.100.1", PathAttributes::default());
        let mut attrs = attrs_of("192.0.2.1/32".parse().expect("prefix"), &a, 65001);
        assert_eq!(advert_of(attrs.clone(), 65001), Some(a));
        // `gobgp global rib add` sets ORIGIN incomplete.
        attrs[0] = Attr::Origin(2);
        assert_eq!(advert_of(attrs.clone(), 65001), None);
        attrs[0] = Attr::Origin(ORIGIN_IGP);
        attrs.push(Attr::Foreign);
        assert_eq!(advert_of(attrs, 65001), None);
        // No next hop at all.
        assert_eq!(advert_of([Attr::Origin(ORIGIN_IGP)], 65001), None);
    }

    const TIMERS: PeerTimers = PeerTimers {
        hold_time: 90,
        keepalive_interval: 30,
        connect_retry: 5,
    };

    fn settings() -> PeerSettings {
        PeerSettings {
            name: "r".into(),
            address: "192.0.2.1".parse().expect("addr"),
            asn: 65000,
            port: Some(1179),
            local_address: "192.0.2.2".parse().expect("addr"),
            password: None,
            multihop_ttl: 0,
            passive: false,
            timers: TIMERS,
            bfd: None,
        }
    }

    /// What gobgpd reports of a peer set exactly as `p` says.
    fn seen(p: &PeerSettings) -> SeenPeer {
        SeenPeer {
            asn: p.asn,
            description: p.name.clone(),
            password: p.password.clone().unwrap_or_default(),
            local_address: p.local_address.to_string(),
            remote_port: u32::from(p.port.unwrap_or(179)),
            passive: p.passive,
            multihop_ttl: u32::from(p.multihop_ttl),
            timers: Some((
                p.timers.hold_time,
                p.timers.keepalive_interval,
                p.timers.connect_retry,
            )),
            bfd: Some(SeenBfd::wanted(p.bfd)),
        }
    }

    const BFD: crate::config::bfd::Bfd = crate::config::bfd::Bfd {
        min_tx: std::time::Duration::from_millis(300),
        min_rx: std::time::Duration::from_millis(300),
        multiplier: 3,
        port: 3784,
    };

    #[test]
    fn peer_comparison_sees_each_setting() {
        let base = settings();
        assert!(peer_matches(&seen(&base), &base));
        let variants = [
            PeerSettings {
                asn: 65001,
                ..base.clone()
            },
            PeerSettings {
                name: "other".into(),
                ..base.clone()
            },
            PeerSettings {
                port: Some(179),
                ..base.clone()
            },
            PeerSettings {
                password: Some("x".into()),
                ..base.clone()
            },
            PeerSettings {
                multihop_ttl: 3,
                ..base.clone()
            },
            PeerSettings {
                passive: true,
                ..base.clone()
            },
            PeerSettings {
                local_address: "192.0.2.3".parse().expect("addr"),
                ..base.clone()
            },
            PeerSettings {
                timers: PeerTimers {
                    hold_time: 9,
                    keepalive_interval: 3,
                    ..TIMERS
                },
                ..base.clone()
            },
            PeerSettings {
                timers: PeerTimers {
                    connect_retry: 1,
                    ..TIMERS
                },
                ..base.clone()
            },
            PeerSettings {
                bfd: Some(BFD),
                ..base.clone()
            },
        ];
        for v in variants {
            assert!(!peer_matches(&seen(&v), &base), "{v:?}");
        }
    }

    #[test]
    fn port_179_is_the_unset_port() {
        let want = PeerSettings {
            port: None,
            ..settings()
        };
        let have = SeenPeer {
            remote_port: 0,
            ..seen(&want)
        };
        assert!(peer_matches(&have, &want));
    }

    #[test]
    fn bfd_is_compared_only_where_gobgpd_can_run_it() {
        let with = PeerSettings {
            bfd: Some(BFD),
            ..settings()
        };
        assert!(peer_matches(&seen(&with), &with));
        // Another interval or multiplier is a change.
        for other in [
            crate::config::bfd::Bfd {
                min_rx: std::time::Duration::from_millis(100),
                ..BFD
            },
            crate::config::bfd::Bfd {
                multiplier: 5,
                ..BFD
            },
        ] {
            let v = PeerSettings {
                bfd: Some(other),
                ..settings()
            };
            assert!(!peer_matches(&seen(&v), &with), "{other:?}");
        }
        // Off: gobgpd reads back its defaults, enabled false; that matches.
        let off = settings();
        assert!(peer_matches(&seen(&off), &off));
        // A gobgpd without BFD in its API (3.x, 4.0 to 4.4), or found not to run it (4.5):
        // nothing to compare, so no UpdatePeer at every reconcile.
        let blind = SeenPeer {
            bfd: None,
            ..seen(&off)
        };
        assert!(peer_matches(&blind, &with));
    }
}
