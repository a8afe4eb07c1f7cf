//! The status document as tables, for `anycastd status`: read it from the bottom up (a
//! prefix, the services gating it, their checks). Nothing but the document goes in.

use std::fmt::Write;

use super::status::{PrefixStatus, ServiceStatus, Status, TransitionStatus, WatchStatus};
use crate::announcer::peers::PeerInfo;
use crate::config::fleet::OnUnreachable;
use crate::fleet::view::{FleetStatus, SiteState};
use crate::service::health::Health;

/// The status as tables, for `anycastd status`.
pub fn render_table(s: &Status) -> String {
    let mut out = String::new();
    header(&mut out, s);
    out.push('\n');
    services_table(&mut out, &s.services);
    out.push('\n');
    checks_table(&mut out, &s.services);
    watches_table(&mut out, &s.watches);
    out.push('\n');
    prefixes_table(&mut out, &s.prefixes, s.gobgp.up);
    transitions_table(&mut out, &s.prefixes);
    out.push('\n');
    peers_table(&mut out, s.peers.as_deref());
    if let Some(f) = &s.fleet {
        out.push('\n');
        out.push_str(&fleet_table(f));
    }
    out
}

/// The watches, when there are any (with the blank line before them).
fn watches_table(out: &mut String, watches: &[WatchStatus]) {
    if watches.is_empty() {
        return;
    }
    out.push('\n');
    let mut rows = vec![row(&[
        "SERVICE", "WATCH", "STATE", "PID", "SINCE", "DETAIL",
    ])];
    for w in watches {
        rows.push(row(&[
            &w.service,
            &w.watch,
            &w.state.as_str().to_uppercase(),
            &w.pid.map_or("-".to_string(), |p| p.to_string()),
            &w.since,
            w.detail.as_deref().unwrap_or(""),
        ]));
    }
    table(out, &rows);
}

fn header(out: &mut String, s: &Status) {
    let g = &s.gobgp;
    let _ = writeln!(
        out,
        "gobgpd {}  {}{}  router id {}  AS{}  (anycastd {})",
        g.address,
        if g.up { "connected" } else { "UNUSABLE" },
        g.api
            .map(|a| format!(" (GoBGP {a} API)"))
            .unwrap_or_default(),
        g.router_id,
        g.asn,
        s.version
    );
    if let Some(e) = &g.error {
        let since = g.unusable_since.as_deref().unwrap_or("-");
        let _ = writeln!(out, "  since {since}: {e}");
    }
    if let Some(c) = &g.foreign_change {
        let _ = writeln!(out, "  changed by someone else at {c}");
    }
    if let Some(e) = &g.bfd_error {
        let _ = writeln!(out, "  BFD: {e}");
    }
    if let Some(r) = &s.reload {
        let verdict = if r.ok { "applied" } else { "REFUSED" };
        let _ = writeln!(out, "last reload {}: {verdict}: {}", r.at, r.message);
    }
}

/// The counters that can change a service's state, against rise/fall.
fn health_counters(h: &Health, rise: u32, fall: u32) -> String {
    match *h {
        Health::Down { passes } => format!("passing {passes}/{rise}"),
        Health::Up { fails, unclean } if unclean > fails => {
            format!("failing {fails}/{fall}, degrading {unclean}/{fall}")
        }
        Health::Up { fails, .. } => format!("failing {fails}/{fall}"),
        Health::Degraded { fails, cleans } => {
            format!("failing {fails}/{fall}, clean {cleans}/{rise}")
        }
    }
}

fn services_table(out: &mut String, services: &[ServiceStatus]) {
    let mut rows = vec![row(&[
        "SERVICE",
        "STATE",
        "SINCE",
        "CHECKS SAY",
        "RISE/FALL",
        "EVERY",
        "LAST ROUND",
        "DRAINED BY",
    ])];
    for svc in services {
        rows.push(row(&[
            &svc.name,
            &svc.state.name().to_uppercase(),
            &svc.since,
            svc.health.level_name(),
            &health_counters(&svc.health, svc.rise, svc.fall),
            &svc.check_interval,
            svc.last_round.as_deref().unwrap_or("-"),
            &svc.drained_by.join("; "),
        ]));
    }
    table(out, &rows);
}

fn checks_table(out: &mut String, services: &[ServiceStatus]) {
    let mut rows = vec![row(&[
        "SERVICE",
        "CHECK",
        "KIND",
        "ON FAILURE",
        "RESULT",
        "TIME",
        "TARGET",
        "ERROR",
    ])];
    for svc in services {
        for c in &svc.checks {
            rows.push(row(&[
                &svc.name,
                &c.name,
                &c.kind,
                &c.on_failure.to_string(),
                c.result.shouted(),
                &c.duration_seconds
                    .map_or("-".to_string(), |d| format!("{d:.3}s")),
                &c.target,
                c.error.as_deref().unwrap_or(""),
            ]));
        }
    }
    table(out, &rows);
}

/// `gobgp_up`: whether gobgpd can be asked now; while it cannot, ANNOUNCED is what it was
/// last seen to announce, and says so.
fn prefixes_table(out: &mut String, prefixes: &[PrefixStatus], gobgp_up: bool) {
    let mut rows = vec![row(&[
        "PREFIX",
        "NEXT HOP",
        "WANTED",
        "ANNOUNCED",
        "ATTRIBUTES",
        "GATED BY",
        "SINCE",
        "WHY",
    ])];
    for p in prefixes {
        rows.push(row(&[
            &p.prefix,
            p.next_hop.as_deref().unwrap_or("-"),
            if p.held {
                "no (held)"
            } else {
                yes_no(p.wanted)
            },
            &announced(p.announced, gobgp_up),
            p.attributes.as_deref().unwrap_or("-"),
            &p.gated_by.join(", "),
            p.since.as_deref().unwrap_or("-"),
            p.cause.as_deref().unwrap_or(""),
        ]));
    }
    table(out, &rows);
}

/// The most transitions `anycastd status` prints (`--json` has every prefix's last ones).
const TRANSITIONS_SHOWN: usize = 30;

/// The last transitions of every prefix, newest last, at most [`TRANSITIONS_SHOWN`].
fn transitions_table(out: &mut String, prefixes: &[PrefixStatus]) {
    let mut all: Vec<(&str, &TransitionStatus)> = prefixes
        .iter()
        .flat_map(|p| p.history.iter().map(move |t| (p.prefix.as_str(), t)))
        .collect();
    if all.is_empty() {
        return;
    }
    // RFC 3339 in UTC with a fixed precision: the text sorts as the time does.
    all.sort_by(|a, b| a.1.at.cmp(&b.1.at).then(a.0.cmp(b.0)));
    out.push('\n');
    let skipped = all.len().saturating_sub(TRANSITIONS_SHOWN);
    if skipped > 0 {
        let _ = writeln!(
            out,
            "last {TRANSITIONS_SHOWN} route transitions ({skipped} earlier: anycastd status --json)"
        );
    }
    let mut rows = vec![row(&["TIME", "PREFIX", "FROM", "TO", "REASON"])];
    for (prefix, t) in &all[skipped..] {
        rows.push(row(&[&t.at, prefix, t.from.name(), t.to.name(), &t.reason]));
    }
    table(out, &rows);
}

fn peers_table(out: &mut String, peers: Option<&[PeerInfo]>) {
    let Some(peers) = peers else {
        out.push_str("peers: unknown (gobgpd not reachable)\n");
        return;
    };
    let secs = |s: Option<u64>| {
        s.map_or("-".to_string(), |u| {
            humantime::format_duration(std::time::Duration::from_secs(u)).to_string()
        })
    };
    let mut rows = vec![row(&[
        "PEER",
        "ADDRESS",
        "ASN",
        "SESSION",
        "UPTIME",
        "HOLD/KEEPALIVE",
        "BFD",
    ])];
    for p in peers {
        let timers = match (p.hold_time_seconds, p.keepalive_seconds) {
            (Some(h), Some(k)) => format!("{h}s/{k}s"),
            _ => "-".to_string(),
        };
        let bfd = match &p.bfd {
            None => "-".to_string(),
            Some(b) if !b.supported => format!("{}: NOT RUN by gobgpd", b.configured),
            Some(b) => format!(
                "{} {} ({} sent, {} received)",
                b.state.to_uppercase(),
                b.configured,
                b.packets_sent,
                b.packets_received
            ),
        };
        rows.push(row(&[
            &p.name,
            &p.address,
            &p.asn.to_string(),
            &p.session_state,
            &secs(p.uptime_seconds),
            &timers,
            &bfd,
        ]));
    }
    table(out, &rows);
}

fn announced(announced: bool, gobgp_up: bool) -> String {
    if gobgp_up {
        yes_no(announced).to_string()
    } else {
        format!("{}, last seen (gobgpd unusable)", yes_no(announced))
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

pub(crate) fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.replace('\n', " ")).collect()
}

/// Left-aligned columns, two spaces apart; the last column is not padded.
pub(crate) fn table(out: &mut String, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let _ = write!(line, "{c:<w$}  ", w = widths[i]);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// The fleet as a table, for `anycastd status`.
fn fleet_table(s: &FleetStatus) -> String {
    let mut out = format!(
        "fleet: site {}  etcd {}  min_sites {}  on_unreachable {}\n",
        s.site,
        if s.etcd_up {
            "reachable"
        } else {
            "NOT REACHABLE"
        },
        s.min_sites,
        match s.on_unreachable {
            OnUnreachable::Hold => "hold",
            OnUnreachable::Withdraw => "withdraw",
        }
    );
    if let Some(d) = &s.duplicate {
        out.push_str(&format!("DUPLICATE SITE NAME: {d}\n"));
    }
    let mut rows = vec![row(&["PREFIX", "SITES", "ANNOUNCED BY", "HELD HERE"])];
    for p in &s.prefixes {
        let by: Vec<String> = p
            .sites
            .iter()
            .map(|x| match x.state {
                SiteState::Up => x.site.clone(),
                SiteState::Held => format!("{} (held)", x.site),
                SiteState::Unknown => format!("{} (?)", x.site),
            })
            .collect();
        rows.push(row(&[
            &p.prefix,
            &p.sites.len().to_string(),
            &if by.is_empty() {
                "-".to_string()
            } else {
                by.join(", ")
            },
            if p.held_here { "YES" } else { "no" },
        ]));
    }
    table(&mut out, &rows);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announcer::history::PrefixState;

    #[test]
    fn announced_says_it_is_stale_while_gobgpd_is_unusable() {
        let p = PrefixStatus {
            prefix: "192.0.2.1/32".into(),
            next_hop: None,
            gated_by: vec!["web".into()],
            wanted: false,
            announced: true,
            attributes: None,
            state: PrefixState::Up,
            since: None,
            cause: None,
            held: false,
            history: Vec::new(),
        };
        let mut up = String::new();
        prefixes_table(&mut up, std::slice::from_ref(&p), true);
        assert!(
            up.lines().nth(1).is_some_and(|l| l.contains("no      yes")),
            "{up}"
        );
        let mut down = String::new();
        prefixes_table(&mut down, &[p], false);
        assert!(down.contains("yes, last seen (gobgpd unusable)"), "{down}");
    }

    #[test]
    fn table_columns_line_up() {
        let mut out = String::new();
        table(
            &mut out,
            &[row(&["A", "LONGER", "Z"]), row(&["wide cell", "b", "c"])],
        );
        assert_eq!(out, "A          LONGER  Z\nwide cell  b       c\n");
    }

    fn transition(at: &str, from: PrefixState, to: PrefixState, reason: &str) -> TransitionStatus {
        TransitionStatus {
            at: at.into(),
            from,
            to,
            reason: reason.into(),
        }
    }

    /// SPEC 19: why a route went away, after its service came back; a prefix held by the
    /// fleet is not wanted, whatever holds it (a drain or failed services).
    #[test]
    fn prefixes_say_since_when_and_why_and_their_last_transitions() {
        use PrefixState::{Degraded, Draining, Up, Withdrawn};
        let dns = PrefixStatus {
            prefix: "192.0.2.53/32".into(),
            next_hop: Some("198.51.100.1".into()),
            gated_by: vec!["dns".into()],
            wanted: true,
            announced: true,
            attributes: Some("up".into()),
            state: Up,
            since: Some("2024-05-01T10:00:07.250Z".into()),
            cause: Some("service dns is up".into()),
            held: false,
            history: vec![
                transition(
                    "2024-05-01T09:00:00.000Z",
                    Withdrawn,
                    Up,
                    "service dns is up",
                ),
                transition(
                    "2024-05-01T10:00:02.100Z",
                    Up,
                    Withdrawn,
                    "service dns is down",
                ),
                transition(
                    "2024-05-01T10:00:07.250Z",
                    Withdrawn,
                    Up,
                    "service dns is up",
                ),
            ],
        };
        let web = PrefixStatus {
            prefix: "192.0.2.80/32".into(),
            next_hop: Some("198.51.100.1".into()),
            gated_by: vec!["web".into()],
            wanted: false,
            announced: true,
            attributes: Some("degraded: med 500".into()),
            state: Degraded,
            since: Some("2024-05-01T10:00:03.000Z".into()),
            cause: Some("service web is down".into()),
            held: true,
            history: vec![transition(
                "2024-05-01T10:00:03.000Z",
                Draining,
                Degraded,
                "service web is down",
            )],
        };
        let mut out = String::new();
        prefixes_table(&mut out, &[dns.clone(), web], true);
        transitions_table(&mut out, std::slice::from_ref(&dns));
        assert_eq!(
            out,
            "\
PREFIX         NEXT HOP      WANTED     ANNOUNCED  ATTRIBUTES         GATED BY  SINCE                     WHY
192.0.2.53/32  198.51.100.1  yes        yes        up                 dns       2024-05-01T10:00:07.250Z  service dns is up
192.0.2.80/32  198.51.100.1  no (held)  yes        degraded: med 500  web       2024-05-01T10:00:03.000Z  service web is down

TIME                      PREFIX         FROM       TO         REASON
2024-05-01T09:00:00.000Z  192.0.2.53/32  withdrawn  up         service dns is up
2024-05-01T10:00:02.100Z  192.0.2.53/32  up         withdrawn  service dns is down
2024-05-01T10:00:07.250Z  192.0.2.53/32  withdrawn  up         service dns is up
"
        );
        // The JSON of one prefix, as /status serves it.
        let json = serde_json::to_value(&dns).expect("json");
        assert_eq!(json["state"], "up");
        assert_eq!(json["since"], "2024-05-01T10:00:07.250Z");
        assert_eq!(json["cause"], "service dns is up");
        assert_eq!(
            json["history"][1],
            serde_json::json!({"at": "2024-05-01T10:00:02.100Z", "from": "up", "to": "withdrawn", "reason": "service dns is down"})
        );
        // Many transitions: the newest, and how many are left out.
        let mut many = dns;
        many.history = (0..40)
            .map(|i| transition(&format!("2024-05-01T10:00:{i:02}.000Z"), Up, Withdrawn, "x"))
            .collect();
        let mut out = String::new();
        transitions_table(&mut out, &[many]);
        assert!(
            out.starts_with(
                "\nlast 30 route transitions (10 earlier: anycastd status --json)\nTIME "
            ),
            "{out}"
        );
        assert!(out.contains("2024-05-01T10:00:10.000Z") && !out.contains("T10:00:09.000Z"));
    }
}
