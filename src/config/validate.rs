//! Cross-field rules of a parsed config (SPEC 3 and the sections after it): every problem
//! found, with the path of its field, and the warnings. One function per part of the file;
//! [`validate`] runs them all, so that every problem is reported at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ipnet::IpNet;

use super::model::{Config, PeerConfig, ServiceConfig, read_password_file};
use crate::duration::Dur;
use crate::problem::Problem;

// Lower bounds of the durations. Below them a loop spins rather than waits: `1ns` for
// check_interval, reconcile_interval and timeout kept anycastd at 78 % of a core and gobgpd
// at 96 % (issue 10), without detecting or repairing anything sooner. At the bounds (release
// build, one service with an http_2xx and an assigned_address check, 3 prefixes):
// check_interval 10ms costs anycastd 4.2 % of a core; reconcile and peer_poll at 100ms cost
// anycastd 1.2 % and gobgpd 1.7 %; both 5.9 % and 1.9 %; at 1s and 5s, 0.1 % each.

/// A service's `check_interval`: at most 100 rounds a second.
pub const MIN_CHECK_INTERVAL: Dur = Dur::millis(10);
/// `gobgp.reconcile_interval` and `peer_poll_interval`: each lists gobgpd's whole RIB or
/// peer table, work for gobgpd that grows with the number of prefixes.
pub const MIN_GOBGP_INTERVAL: Dur = Dur::millis(100);
/// `gobgp.reconcile_interval` at most: the ownership mark is refreshed at every reconcile,
/// and a mark claiming a longer period is taken for a forged one
/// ([`crate::announcer::owner::MAX_REFRESH`]).
pub const MAX_RECONCILE_INTERVAL: Dur = Dur::secs(3600);
/// `announcer.attribute_hold` at most: a longer one would keep a recovered route announced
/// as degraded or draining for longer than anyone would wait for it.
pub const MAX_ATTRIBUTE_HOLD: Dur = Dur::secs(3600);
/// `gobgp.timeout`: a call to a busy gobgpd (a RIB of 10,000 prefixes) takes tens of ms;
/// a shorter bound fails calls that would have succeeded, and each failure reconnects.
pub const MIN_GOBGP_TIMEOUT: Dur = Dur::millis(100);

impl Config {
    /// Cross-field rules ([`validate`]). Returns the warnings, or every problem found.
    pub fn validate(&self) -> Result<Vec<String>, Vec<Problem>> {
        validate(self)
    }
}

/// Cross-field rules. Returns the warnings, or every problem found.
pub fn validate(c: &Config) -> Result<Vec<String>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    gobgp_and_global(c, &mut problems);
    prefixes(c, &mut problems, &mut warnings);
    peers(c, &mut problems, &mut warnings);
    attributes(c, &mut problems, &mut warnings);
    services(c, &mut problems, &mut warnings);
    drain_files(c, &mut problems);
    loopback_next_hop(c, &mut warnings);
    if let Some(fleet) = &c.fleet {
        problems.extend(fleet.validate().into_iter().map(|p| p.under("fleet")));
        fleet_prefixes(c, &mut problems);
    }
    if problems.is_empty() {
        Ok(warnings)
    } else {
        Err(problems)
    }
}

/// Drain files are absolute paths, as pid files are: anycastd's working directory is
/// nobody's business (`/` under systemd), and a relative file would be looked for there.
fn drain_files(c: &Config, problems: &mut Vec<Problem>) {
    let relative = |path: String, file: &std::path::Path| {
        (!file.is_absolute()).then(|| {
            Problem::new(
                path,
                format!(
                    "{} is a relative path; write an absolute one, e.g. /run/anycastd/drain",
                    file.display()
                ),
            )
        })
    };
    if let Some(f) = &c.announcer.drain_file {
        problems.extend(relative("announcer.drain_file".into(), f));
    }
    for (i, svc) in c.services.iter().enumerate() {
        if let Some(f) = &svc.drain_file {
            problems.extend(relative(format!("services[{i}].drain_file"), f));
        }
    }
}

/// A next hop that defaults to a loopback `local_address`: routers drop such routes (and
/// gobgpd itself does not send them), so nothing would be announced anywhere.
fn loopback_next_hop(c: &Config, warnings: &mut Vec<String>) {
    let a = &c.announcer;
    let (v4, v6) = c
        .route_attributes()
        .keys()
        .fold((false, false), |(v4, v6), p| match p {
            IpNet::V4(_) => (true, v6),
            IpNet::V6(_) => (v4, true),
        });
    let unset = match a.local_address {
        std::net::IpAddr::V4(_) => v4 && a.next_hop.is_none(),
        std::net::IpAddr::V6(_) => v6 && a.next_hop_ipv6.is_none(),
    };
    if unset && a.local_address.is_loopback() {
        let key = if a.local_address.is_ipv4() {
            "next_hop"
        } else {
            "next_hop_ipv6"
        };
        warnings.push(format!(
            "announcer.{key} is not set, so the routes go with local_address {} as their next hop, a loopback address that routers drop: set announcer.{key} to this host's address on the peering network",
            a.local_address
        ));
    }
}

/// The announcer's global settings and its `gobgp` section.
fn gobgp_and_global(c: &Config, problems: &mut Vec<Problem>) {
    let a = &c.announcer;

    if a.local_asn == 0 {
        problems.push(Problem::new(
            "announcer.local_asn",
            "must be 1..4294967295, not 0",
        ));
    }
    if !(a.listen_port == -1 || (1..=65535).contains(&a.listen_port)) {
        problems.push(Problem::new(
            "announcer.listen_port",
            format!(
                "{} is not a port: use 1..65535, or -1 for outgoing sessions only",
                a.listen_port
            ),
        ));
    }
    if let Err(m) = check_host_port(&a.gobgp.address, "write host:port, e.g. 127.0.0.1:50051") {
        problems.push(Problem::new("announcer.gobgp.address", m));
    }
    for (field, d, min) in [
        (
            "reconcile_interval",
            a.gobgp.reconcile_interval,
            MIN_GOBGP_INTERVAL,
        ),
        (
            "peer_poll_interval",
            a.gobgp.peer_poll_interval,
            MIN_GOBGP_INTERVAL,
        ),
        ("timeout", a.gobgp.timeout, MIN_GOBGP_TIMEOUT),
    ] {
        if let Err(m) = d.at_least(min) {
            problems.push(Problem::new(format!("announcer.gobgp.{field}"), m));
        }
    }
    if let Err(m) = a.gobgp.reconcile_interval.at_most(MAX_RECONCILE_INTERVAL) {
        problems.push(Problem::new("announcer.gobgp.reconcile_interval", m));
    }
    if let Err(m) = a.attribute_hold.at_most(MAX_ATTRIBUTE_HOLD) {
        problems.push(Problem::new("announcer.attribute_hold", m));
    }
}

/// Prefixes: canonical, in one place only, with a next hop for their family.
fn prefixes(c: &Config, problems: &mut Vec<Problem>, warnings: &mut Vec<String>) {
    let a = &c.announcer;
    // Prefixes: canonical, one place only, a next hop for their family.
    let mut seen: BTreeMap<IpNet, String> = BTreeMap::new();
    let all_routes = a
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| (format!("announcer.routes[{i}]"), r))
        .chain(c.services.iter().enumerate().flat_map(|(s, svc)| {
            svc.routes
                .iter()
                .enumerate()
                .map(move |(i, r)| (format!("services[{s}].routes[{i}]"), r))
        }));
    for (path, net) in all_routes {
        if net.trunc() != *net {
            problems.push(Problem::new(
                &path,
                format!("{net} has host bits set; did you mean {}?", net.trunc()),
            ));
        }
        if let Some(first) = seen.get(net) {
            problems.push(Problem::new(
                &path,
                format!(
                    "{net} is already listed at {first}; a prefix may appear in one place only"
                ),
            ));
        } else {
            seen.insert(*net, path);
        }
    }
    if seen.keys().any(|n| matches!(n, IpNet::V4(_)))
        && a.next_hop.is_none()
        && !a.local_address.is_ipv4()
    {
        problems.push(Problem::new(
            "announcer.next_hop",
            "IPv4 routes need an IPv4 next hop: set next_hop (local_address is IPv6)",
        ));
    }
    if seen.keys().any(|n| matches!(n, IpNet::V6(_)))
        && a.next_hop_ipv6.is_none()
        && !a.local_address.is_ipv6()
    {
        problems.push(Problem::new(
            "announcer.next_hop_ipv6",
            "IPv6 routes need an IPv6 next hop: set next_hop_ipv6",
        ));
    }
    if seen.is_empty() {
        warnings.push("no routes are configured: anycastd will announce nothing".to_string());
    }
}

/// Peers: unique names, numbers in range, a readable password file, BGP timers.
fn peers(c: &Config, problems: &mut Vec<Problem>, warnings: &mut Vec<String>) {
    let a = &c.announcer;
    let mut peer_names = BTreeSet::new();
    for (i, p) in a.peers.iter().enumerate() {
        let at = |f: &str| format!("announcer.peers[{i}].{f}");
        if p.name.trim().is_empty() {
            problems.push(Problem::new(at("name"), "must not be empty"));
        } else if !peer_names.insert(p.name.as_str()) {
            problems.push(Problem::new(
                at("name"),
                format!(
                    "{:?} is used by another peer; peer names must be unique",
                    p.name
                ),
            ));
        }
        if p.remote_asn == 0 {
            problems.push(Problem::new(
                at("remote_asn"),
                "must be 1..4294967295, not 0",
            ));
        }
        if p.remote_port == Some(0) {
            problems.push(Problem::new(at("remote_port"), "must be 1..65535"));
        }
        if let Some(file) = &p.password_file
            && let Err(e) = read_password_file(file)
        {
            problems.push(Problem::new(at("password_file"), e.to_string()));
        }
    }
    if a.peers.is_empty() {
        warnings.push("no peers are configured: routes will reach no router".to_string());
    }
    bfd(c, problems, warnings);
    for (i, p) in a.peers.iter().enumerate() {
        problems.extend(
            peer_timer_problems(p)
                .into_iter()
                .map(|x| x.under(&format!("announcer.peers[{i}]"))),
        );
    }
}

/// BFD's keys (SPEC 16), and what GoBGP's BFD cannot do: a multihop peer (single hop only,
/// RFC 5881).
fn bfd(c: &Config, problems: &mut Vec<Problem>, warnings: &mut Vec<String>) {
    let a = &c.announcer;
    problems.extend(
        a.bfd
            .problems()
            .into_iter()
            .map(|p| p.under("announcer.bfd")),
    );
    let off = |b: &crate::config::bfd::BfdConfig| b.enabled != Some(true) && b.sets_timers();
    if off(&a.bfd) && a.peers.iter().all(|p| p.bfd.enabled != Some(true)) {
        warnings.push(
            "announcer.bfd sets timers but BFD is not enabled: write enabled: true to run it"
                .to_string(),
        );
    }
    for (i, p) in a.peers.iter().enumerate() {
        let at = format!("announcer.peers[{i}].bfd");
        problems.extend(p.bfd.problems().into_iter().map(|x| x.under(&at)));
        let merged = p.bfd.over(a.bfd);
        if off(&merged) && p.bfd.sets_timers() {
            warnings.push(format!(
                "{at} sets timers but BFD is not enabled for peer {:?}: write enabled: true to run it",
                p.name
            ));
        }
        if merged.enabled == Some(true) && p.multihop_ttl > 0 {
            problems.push(Problem::new(
                format!("{at}.enabled"),
                format!(
                    "GoBGP's BFD is single hop only (RFC 5881) and peer {:?} is multihop (multihop_ttl {}): write bfd: {{enabled: false}} for it, or remove multihop_ttl",
                    p.name, p.multihop_ttl
                ),
            ));
        }
    }
}

/// The attribute sets' rules (SPEC 10), and the warnings about sets without effect.
fn attributes(c: &Config, problems: &mut Vec<Problem>, warnings: &mut Vec<String>) {
    let a = &c.announcer;
    let mut sets = vec![("announcer.attributes".to_string(), &a.attributes)];
    for (i, svc) in c.services.iter().enumerate() {
        if let Some(attrs) = &svc.attributes {
            sets.push((format!("services[{i}].attributes"), attrs));
        }
    }
    let only_ebgp = !a.peers.is_empty() && a.peers.iter().all(|p| p.remote_asn != a.local_asn);
    let ibgp = a.peers.iter().find(|p| p.remote_asn == a.local_asn);
    for (path, attrs) in &sets {
        problems.extend(attrs.problems().into_iter().map(|p| p.under(path)));
        // An iBGP peer finds its own AS in the path and drops the route, while anycastd
        // says announced (issue 20: Received 2, Accepted 1 at a GoBGP router).
        if let Some(peer) = ibgp {
            for set in attrs.prepending() {
                problems.push(Problem::new(
                    format!("{path}.{set}.as_path_prepend"),
                    format!(
                        "peer {} is iBGP (remote_asn {} is local_asn): it would see its own AS in the prepended path and drop the route; remove as_path_prepend (use med, or local_pref for iBGP peers), or peer with eBGP only",
                        peer.name, peer.remote_asn
                    ),
                ));
            }
        }
        if only_ebgp && attrs.uses_local_pref() {
            warnings.push(format!(
                "{path}: local_pref reaches iBGP peers only, and every peer is eBGP (remote_asn differs from local_asn): it has no effect; use med or as_path_prepend towards eBGP peers"
            ));
        }
    }
    for (i, svc) in c.services.iter().enumerate() {
        let resolved = c.service_attributes(svc).resolve();
        if svc.has_degrade_checks() && resolved.degraded == resolved.up {
            warnings.push(format!(
                "services[{i}] ({}): it has on_failure: degrade checks, but its degraded attributes are the same as its up attributes: routers will not see the difference; set attributes.degraded (e.g. med or as_path_prepend)",
                svc.name
            ));
        }
    }
}

/// Services: unique names, their intervals, watches, checks and names.
fn services(c: &Config, problems: &mut Vec<Problem>, warnings: &mut Vec<String>) {
    if c.services.is_empty() {
        problems.push(Problem::new("services", "at least one service is needed"));
    }
    let mut service_names = BTreeSet::new();
    for (s, svc) in c.services.iter().enumerate() {
        let at = |f: &str| format!("services[{s}].{f}");
        if svc.name.trim().is_empty() {
            problems.push(Problem::new(at("name"), "must not be empty"));
        } else if !service_names.insert(svc.name.as_str()) {
            problems.push(Problem::new(
                at("name"),
                format!(
                    "{:?} is used by another service; service names must be unique",
                    svc.name
                ),
            ));
        }
        if let Err(m) = svc.check_interval.at_least(MIN_CHECK_INTERVAL) {
            problems.push(Problem::new(at("check_interval"), m));
        }
        if svc.rise == 0 {
            problems.push(Problem::new(at("rise"), "must be at least 1"));
        }
        if svc.fall == 0 {
            problems.push(Problem::new(at("fall"), "must be at least 1"));
        }
        if svc.checks.is_empty() {
            problems.push(Problem::new(
                at("checks"),
                "a service needs at least one check",
            ));
        }
        let svc_path = format!("services[{s}]");
        problems.extend(
            fast_interval_problem(svc)
                .into_iter()
                .chain(super::watches::problems(&svc.watch))
                .map(|p| p.under(&svc_path)),
        );
        let mut check_names = BTreeSet::new();
        for (c, chk) in svc.checks.iter().enumerate() {
            let cat = at(&format!("checks[{c}]"));
            if chk.name.trim().is_empty() {
                problems.push(Problem::new(format!("{cat}.name"), "must not be empty"));
            } else if !check_names.insert(chk.name.as_str()) {
                problems.push(Problem::new(
                    format!("{cat}.name"),
                    format!("{:?} is used by another check of this service; give each check its own `name`", chk.name),
                ));
            }
            problems.extend(
                chk.spec
                    .validate()
                    .into_iter()
                    .map(|p| p.under(&format!("{cat}.spec"))),
            );
            let worst = chk.spec.attempts().worst_case();
            if worst > svc.check_interval.0 {
                warnings.push(format!(
                    "{cat} ({}): its worst case ({}) is longer than the service's check_interval ({}): rounds will run back to back",
                    chk.name,
                    Dur(worst),
                    svc.check_interval
                ));
            }
        }
    }
}

/// `fleet.prefixes`: each one of the config's prefixes, once.
fn fleet_prefixes(c: &Config, problems: &mut Vec<Problem>) {
    let Some(listed) = c.fleet.as_ref().and_then(|f| f.prefixes.as_ref()) else {
        return;
    };
    let ours = c.all_prefixes();
    let mut seen = BTreeSet::new();
    for (i, p) in listed.iter().enumerate() {
        let at = format!("fleet.prefixes[{i}]");
        if !ours.contains(p) {
            problems.push(Problem::new(
                at,
                format!(
                    "{p} is not a prefix of this config: list prefixes of announcer.routes or of a service's routes (the guard covers only what this site announces)"
                ),
            ));
        } else if !seen.insert(*p) {
            problems.push(Problem::new(at, format!("{p} is listed twice")));
        }
    }
}

/// What is wrong with a service's `fast_interval`, path relative to the service.
fn fast_interval_problem(svc: &ServiceConfig) -> Option<Problem> {
    let fast = svc.fast_interval?;
    if let Err(m) = fast.at_least(MIN_CHECK_INTERVAL) {
        Some(Problem::new(
            "fast_interval",
            format!("{m} (or leave it out to keep check_interval)"),
        ))
    } else if fast > svc.check_interval && svc.check_interval >= MIN_CHECK_INTERVAL {
        Some(Problem::new(
            "fast_interval",
            format!(
                "{fast} is longer than check_interval ({}); it must be at most that, e.g. {}",
                svc.check_interval,
                Dur(svc.check_interval.0 / 10)
            ),
        ))
    } else {
        None
    }
}

/// The rules of a peer's BGP timers (SPEC 11), with paths relative to the peer.
fn peer_timer_problems(p: &PeerConfig) -> Vec<Problem> {
    let mut out = Vec::new();
    let whole = |field: &str, d: Dur, out: &mut Vec<Problem>| {
        if d.0.subsec_nanos() != 0 {
            out.push(Problem::new(
                field,
                format!("{d} is not a whole number of seconds: BGP timers are counted in seconds"),
            ));
        }
    };
    whole("hold_time", p.hold_time, &mut out);
    whole("connect_retry", p.connect_retry, &mut out);
    let hold = p.hold_time.0;
    if !hold.is_zero() && hold < Duration::from_secs(3) {
        out.push(Problem::new(
            "hold_time",
            format!(
                "{} is too short: BGP allows 0s (no keepalives) or at least 3s (RFC 4271)",
                p.hold_time
            ),
        ));
    }
    if p.connect_retry.0 < Duration::from_secs(1) {
        out.push(Problem::new(
            "connect_retry",
            format!("{} is too short: use at least 1s", p.connect_retry),
        ));
    }
    if let Some(k) = p.keepalive_interval {
        whole("keepalive_interval", k, &mut out);
        if hold.is_zero() {
            if !k.0.is_zero() {
                out.push(Problem::new(
                    "keepalive_interval",
                    "must be 0s or left out when hold_time is 0s (no keepalives)",
                ));
            }
        } else if k.0.is_zero() || k.0 >= hold {
            out.push(Problem::new(
                "keepalive_interval",
                format!(
                    "{k} must be at least 1s and shorter than hold_time ({}); a third of it is usual",
                    p.hold_time
                ),
            ));
        }
    }
    out
}

/// `Err` with the message when `s` is not `HOST:PORT` (an IPv6 host in brackets); `fix`
/// ends the messages that need one.
pub fn check_host_port(s: &str, fix: &str) -> Result<(), String> {
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("{s:?} has no port; {fix}"));
    };
    // `::1` alone splits into `:` and `1`: an IPv6 address without brackets.
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(format!(
            "{s:?}: an IPv6 address needs brackets and a port; {fix}"
        ));
    }
    if host.trim_matches(|c| c == '[' || c == ']').is_empty() {
        return Err(format!("{s:?} has no host; {fix}"));
    }
    match port.parse::<u64>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(()),
        Ok(p) => Err(format!("{s:?}: port {p} is out of range; use 1..65535")),
        Err(_) => Err(format!("{s:?} has no valid port; {fix}")),
    }
}
