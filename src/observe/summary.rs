//! The summary `anycastd check-config` prints for a valid config: one screen whatever the
//! config's size. Long lists show their first few items and how many more there are (a
//! config of 60,000 routes made one line of 966 KB before), and long names and targets are
//! cut, so that the whole fits some 50 lines of at most [`MAX_LINE`] characters.

use std::fmt::Write;
use std::path::Path;

use ipnet::IpNet;

use crate::config::Config;
use crate::config::OnFailure;
use crate::config::attributes::{AttributesConfig, RouteState, describe};
use crate::config::watches::WatchSpec;

/// Peers listed; the rest are counted.
pub const PEERS: usize = 4;
/// Prefixes listed per list of routes.
pub const ROUTES: usize = 6;
/// Services listed.
pub const SERVICES: usize = 5;
/// Checks listed per service.
pub const CHECKS: usize = 4;
/// Warnings listed.
pub const WARNINGS: usize = 5;
/// The longest line, in characters.
pub const MAX_LINE: usize = 160;
/// The longest name or target shown.
const MAX_FIELD: usize = 40;

/// `12,345`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `s`, cut to `max` characters with an ellipsis.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The first `max` items, comma-separated, and how many more there are.
fn first<T: ToString>(items: &[T], max: usize, empty: &str) -> String {
    if items.is_empty() {
        return empty.to_string();
    }
    let shown: Vec<String> = items.iter().take(max).map(ToString::to_string).collect();
    let mut s = shown.join(", ");
    if items.len() > max {
        let _ = write!(s, " ({} more)", thousands(items.len() - max));
    }
    s
}

fn routes(v: &[IpNet]) -> String {
    first(v, ROUTES, "-")
}

/// The summary of `cfg`, read from `path`, with its warnings.
pub fn render(path: &Path, cfg: &Config, warnings: &[String]) -> String {
    let a = &cfg.announcer;
    let mut lines: Vec<String> = Vec::new();
    lines.push(format!("config {} is valid", path.display()));
    lines.push(format!(
        "gobgpd   {}  router id {}  ASN {}  local address {}  listen port {}",
        clip(&a.gobgp.address, MAX_FIELD),
        a.router_id,
        a.local_asn,
        a.local_address,
        a.listen_port
    ));
    for p in a.peers.iter().take(PEERS) {
        lines.push(format!(
            "peer     {:<16} {} AS{}{}{}{}{}",
            clip(&p.name, MAX_FIELD),
            p.remote_address,
            p.remote_asn,
            p.remote_port
                .map(|x| format!(" port {x}"))
                .unwrap_or_default(),
            if p.passive { " passive" } else { "" },
            if p.multihop_ttl > 0 {
                format!(" multihop ttl {}", p.multihop_ttl)
            } else {
                String::new()
            },
            if p.password_file.is_some() {
                " md5"
            } else {
                ""
            },
        ));
    }
    if a.peers.len() > PEERS {
        lines.push(format!(
            "peer     ({} more)",
            thousands(a.peers.len() - PEERS)
        ));
    }
    lines.push(format!("next hop {}", next_hops(cfg)));
    lines.push(format!("attrs    {}", attributes(&a.attributes)));
    if let Some(f) = &a.drain_file {
        lines.push(format!(
            "drain    every service while {} exists",
            clip(&f.display().to_string(), 2 * MAX_FIELD)
        ));
    }
    lines.push(format!(
        "routes   {} (while every service is up)",
        routes(&a.routes)
    ));
    for svc in cfg.services.iter().take(SERVICES) {
        lines.push(format!(
            "service  {}  every {}  rise {} fall {}  routes {}",
            clip(&svc.name, MAX_FIELD),
            svc.check_interval,
            svc.rise,
            svc.fall,
            routes(&svc.routes)
        ));
        for c in svc.checks.iter().take(CHECKS) {
            lines.push(format!(
                "  check  {:<18} {:<17} {}{}",
                clip(&c.name, MAX_FIELD),
                c.kind(),
                clip(&c.spec.target(), 2 * MAX_FIELD),
                match c.on_failure {
                    OnFailure::Degrade => "  (on failure: degrade)",
                    OnFailure::Withdraw => "",
                }
            ));
        }
        if svc.checks.len() > CHECKS {
            lines.push(format!(
                "  check  ({} more)",
                thousands(svc.checks.len() - CHECKS)
            ));
        }
        if let Some(own) = &svc.attributes {
            lines.push(format!("  attrs  {}", attributes(own)));
        }
        if let Some(f) = &svc.drain_file {
            lines.push(format!(
                "  drain  while {} exists",
                clip(&f.display().to_string(), 2 * MAX_FIELD)
            ));
        }
        if let Some(f) = svc.fast_interval {
            lines.push(format!("  fast   every {f} while the state is in doubt"));
        }
        lines.extend(watch_lines(&svc.watch, CHECKS));
    }
    if cfg.services.len() > SERVICES {
        let rest = &cfg.services[SERVICES..];
        lines.push(format!(
            "service  ({} more, with {} checks and {} routes)",
            thousands(rest.len()),
            thousands(rest.iter().map(|s| s.checks.len()).sum()),
            thousands(rest.iter().map(|s| s.routes.len()).sum())
        ));
    }
    lines.push(format!(
        "metrics  {}",
        if cfg.metrics.enabled {
            format!("http://{}/metrics", cfg.metrics.address)
        } else {
            "disabled".into()
        }
    ));
    if let Some(f) = &cfg.fleet {
        lines.push(format!(
            "fleet    site {}  etcd {}  min_sites {}  on_unreachable {}  prefixes {}",
            clip(&f.site_name(a.router_id), MAX_FIELD),
            clip(&f.etcd.endpoints.join(","), 2 * MAX_FIELD),
            f.min_sites,
            match f.on_unreachable {
                crate::config::fleet::OnUnreachable::Hold => "hold",
                crate::config::fleet::OnUnreachable::Withdraw => "withdraw",
            },
            f.prefixes
                .as_deref()
                .map_or("every one".to_string(), routes)
        ));
    }
    let mut wrapped = Vec::new();
    for w in warnings.iter().take(WARNINGS) {
        // Whole words: a warning is read to the end (it was cut mid-word before).
        for (i, l) in wrap(w, MAX_LINE - 9).into_iter().enumerate() {
            wrapped.push(format!(
                "{}{l}",
                if i == 0 { "warning  " } else { "         " }
            ));
        }
    }
    let mut s = String::new();
    for l in lines {
        let _ = writeln!(s, "{}", clip(&l, MAX_LINE));
    }
    for l in wrapped {
        let _ = writeln!(s, "{l}");
    }
    if warnings.len() > WARNINGS {
        let _ = writeln!(
            s,
            "warning  ({} more; fix the ones above and run check-config again)",
            thousands(warnings.len() - WARNINGS)
        );
    }
    s
}

/// The next hops of the routes: `next_hop`/`next_hop_ipv6`, else `local_address`'s.
fn next_hops(cfg: &Config) -> String {
    let a = &cfg.announcer;
    let one = |set: bool, hop: Option<std::net::IpAddr>, key: &str| match hop {
        Some(h) if set => h.to_string(),
        Some(h) => format!("{h} (local_address; {key} not set)"),
        None => "none".to_string(),
    };
    format!(
        "IPv4 {}  IPv6 {}",
        one(a.next_hop.is_some(), cfg.next_hop_v4(), "next_hop"),
        one(
            a.next_hop_ipv6.is_some(),
            cfg.next_hop_v6(),
            "next_hop_ipv6"
        )
    )
}

/// The attributes of each state, as `status` shows them.
fn attributes(c: &AttributesConfig) -> String {
    let all = c.resolve();
    [RouteState::Up, RouteState::Degraded, RouteState::Draining]
        .into_iter()
        .map(|st| describe(st, all.of(st)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `text` in lines of at most `width` characters, broken between words (a word longer
/// than `width` has a line of its own).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || out.is_empty() {
        out.push(line);
    }
    out
}

/// The lines of a service's watches in `anycastd check-config` (at most `max`).
fn watch_lines(watches: &[WatchSpec], max: usize) -> Vec<String> {
    let mut out: Vec<String> = watches
        .iter()
        .take(max)
        .map(|w| format!("  watch  {}", w.label()))
        .collect();
    if watches.len() > max {
        out.push(format!("  watch  ({} more)", watches.len() - max));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_YAML: &str = include_str!("../../testdata/seed.yaml");

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(59_994), "59,994");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn the_seed_is_summed_up_in_full() {
        let cfg = crate::config::parse(SEED_YAML, crate::config::Format::Yaml).expect("seed");
        let s = render(Path::new("seed.yaml"), &cfg, &["w1".into()]);
        assert_eq!(
            s,
            "config seed.yaml is valid\n\
             gobgpd   127.0.0.1:50051  router id 10.3.3.3  ASN 65999  local address 10.0.0.1  listen port -1\n\
             peer     some_router_1    10.0.0.252 AS65000\n\
             peer     some_router_2    10.0.0.253 AS65000\n\
             next hop IPv4 10.0.0.1 (local_address; next_hop not set)  IPv6 none\n\
             attrs    up; degraded; draining: local_pref 0, communities graceful_shutdown\n\
             routes   10.0.0.128/32 (while every service is up)\n\
             service  http  every 10s  rise 1 fall 1  routes -\n\
             \x20 check  dns_lookup         dns_lookup        google.com @127.0.0.1:53\n\
             \x20 check  http_2xx           http_2xx          GET http://127.0.0.1:8080/\n\
             \x20 check  tls_certificate    tls_certificate   /etc/ssl/pki/cert.pem\n\
             \x20 check  assigned_address   assigned_address  33.22.11.0 on dummy0\n\
             \x20 check  (2 more)\n\
             metrics  http://127.0.0.1:9090/metrics\n\
             warning  w1\n"
        );
    }

    /// 60,000 global routes, 1,000 services of 10 checks, 50 peers, long names and 2,000
    /// warnings: still one screen.
    #[test]
    fn a_huge_config_stays_one_screen() {
        use std::fmt::Write;
        let mut y = String::from(
            "announcer:\n  router_id: 10.3.3.3\n  local_address: 10.0.0.1\n  local_asn: 65999\n  peers:\n",
        );
        for i in 0..50 {
            let _ = writeln!(
                y,
                "    - {{name: p{i}, remote_address: 10.0.0.{}, remote_asn: 65000}}",
                i + 1
            );
        }
        y.push_str("  routes:\n");
        for i in 0..60_000u32 {
            let _ = writeln!(y, "    - 10.{}.{}.0/24", (i >> 8) & 0xff, i & 0xff);
        }
        y.push_str("services:\n");
        let long = "n".repeat(5000);
        for s in 0..1000 {
            let _ = writeln!(
                y,
                "  - name: s{s}{long}\n    check_interval: 10s\n    routes: [172.{}.{}.0/24]\n    checks:",
                16 + s / 256,
                s % 256
            );
            for c in 0..10 {
                let _ = writeln!(
                    y,
                    "      - {{kind: assigned_address, name: c{c}, spec: {{ipv4: 10.0.0.1, interface: {long}}}}}"
                );
            }
        }
        let cfg = crate::config::parse(&y, crate::config::Format::Yaml).expect("parses");
        let warnings: Vec<String> = (0..2000).map(|i| format!("warning {i}")).collect();
        let s = render(Path::new("big.yaml"), &cfg, &warnings);
        let lines: Vec<&str> = s.lines().collect();
        assert!(lines.len() <= 50, "{} lines:\n{s}", lines.len());
        assert!(
            lines.iter().all(|l| l.chars().count() <= MAX_LINE),
            "a line is longer than {MAX_LINE}:\n{s}"
        );
        assert!(s.len() < 8_000, "{} bytes", s.len());
        assert!(
            s.contains("routes   10.0.0.0/24, 10.0.1.0/24, 10.0.2.0/24, 10.0.3.0/24, 10.0.4.0/24, 10.0.5.0/24 (59,994 more) (while every service is up)"),
            "{s}"
        );
        assert!(s.contains("peer     (46 more)"), "{s}");
        assert!(
            s.contains("service  (995 more, with 9,950 checks and 995 routes)"),
            "{s}"
        );
        assert!(s.contains("  check  (6 more)"), "{s}");
        assert!(
            s.contains("warning  (1,995 more; fix the ones above and run check-config again)"),
            "{s}"
        );
    }

    /// Issue 23.5: the next hops, the attributes, a degrade check marked, the drain files
    /// and the fleet; a long warning in whole words (it was cut mid-word).
    #[test]
    fn everything_that_decides_an_announcement_is_summed_up() {
        let y = "\
announcer:
  router_id: 10.0.0.1
  local_address: 10.0.0.1
  local_asn: 65001
  next_hop_ipv6: 2001:db8::1
  routes: [192.0.2.1/32]
  attributes:
    up: {med: 100}
    degraded: {med: 500, as_path_prepend: 3}
  drain_file: /run/anycastd/drain
  peers: [{name: r, remote_address: 10.0.0.2, remote_asn: 65000}]
services:
  - name: web
    check_interval: 1d
    drain_file: /run/anycastd/web.drain
    attributes: {up: {med: 5}}
    routes: [192.0.2.2/32]
    checks:
      - {kind: assigned_address, spec: {ipv4: 127.0.0.1}}
      - {kind: assigned_address, name: latency, on_failure: degrade, spec: {ipv4: 127.0.0.2}}
fleet:
  etcd: {endpoints: [\"http://127.0.0.1:2379\"]}
  site: fra
  min_sites: 2
";
        let cfg = crate::config::parse(y, crate::config::Format::Yaml).expect("parses");
        let long = "services[0].checks[1] (latency): its worst case is longer than the service's check_interval and the routers will not see the difference between a slow service and a dead one, which is what this warning is here to say in full";
        let s = render(Path::new("c.yaml"), &cfg, &[long.to_string()]);
        assert_eq!(
            s,
            "config c.yaml is valid
gobgpd   127.0.0.1:50051  router id 10.0.0.1  ASN 65001  local address 10.0.0.1  listen port -1
peer     r                10.0.0.2 AS65000
next hop IPv4 10.0.0.1 (local_address; next_hop not set)  IPv6 2001:db8::1
attrs    up: med 100; degraded: med 500, prepend 3; draining: med 100, local_pref 0, communities graceful_shutdown
drain    every service while /run/anycastd/drain exists
routes   192.0.2.1/32 (while every service is up)
service  web  every 1d  rise 1 fall 1  routes 192.0.2.2/32
  check  assigned_address   assigned_address  127.0.0.1
  check  latency            assigned_address  127.0.0.2  (on failure: degrade)
  attrs  up: med 5; degraded: med 5; draining: med 5, local_pref 0, communities graceful_shutdown
  drain  while /run/anycastd/web.drain exists
metrics  http://127.0.0.1:9090/metrics
fleet    site fra  etcd http://127.0.0.1:2379  min_sites 2  on_unreachable hold  prefixes every one
warning  services[0].checks[1] (latency): its worst case is longer than the service's check_interval and the routers will not see the difference between a slow
         service and a dead one, which is what this warning is here to say in full
"
        );
        let warning: Vec<&str> = s
            .lines()
            .skip_while(|l| !l.starts_with("warning"))
            .collect();
        assert_eq!(
            warning.join(" ").split_whitespace().collect::<Vec<_>>(),
            ["warning"]
                .into_iter()
                .chain(long.split_whitespace())
                .collect::<Vec<_>>()
        );
        assert!(s.lines().all(|l| l.chars().count() <= MAX_LINE), "{s}");
    }
}
