//! Reloads (SPEC 12): what a new config changes, decided apart from doing it ([`plan`]),
//! and the settings a reload cannot change ([`needs_restart`]). The daemon reads and
//! validates the whole file first, builds what the plan starts, and only then applies it:
//! an invalid file, or a check that cannot be built, changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ipnet::IpNet;

use crate::announcer::intent::{Intent, IntentError};
use crate::config::{Config, ConfigError, ServiceConfig};
use crate::service::health::{Health, Level};
use crate::service::rounds::BuildError;

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "{} changed: that needs a restart of anycastd (systemctl restart anycastd); the running config stays",
        fields.join(", ")
    )]
    NeedsRestart { fields: Vec<&'static str> },
    #[error("{0}; nothing was changed")]
    Build(#[from] BuildError),
    #[error("{0}; nothing was changed")]
    Intent(#[from] IntentError),
    #[error("reading the config file failed: {0}")]
    Read(String),
}

/// What a reload changes.
#[derive(Debug, Default)]
pub struct ReloadPlan {
    /// The services to build and start (new or changed), each in the state it starts in:
    /// a new one down, a changed one (or one removed a moment ago) in its level.
    pub start: Vec<(ServiceConfig, Health)>,
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub routes_added: Vec<IpNet>,
    pub routes_removed: Vec<IpNet>,
    pub peers_added: Vec<String>,
    pub peers_removed: Vec<String>,
    /// Routes kept whose next hop or attributes changed: `192.0.2.1/32 (attributes)`.
    pub routes_changed: Vec<String>,
    /// Peers kept whose settings changed (timers, password, ...).
    pub peers_changed: Vec<String>,
    /// The announcer's other settings that changed (`announcer.drain_linger`, ...).
    pub settings: Vec<&'static str>,
}

/// The settings a reload cannot change (README names them all: tests/readme.rs): gobgpd's
/// global ones (SPEC 12), where anycastd itself listens, and the fleet (its lease and site
/// name are the process's).
pub const RESTART_ONLY: [&str; 7] = [
    "announcer.router_id",
    "announcer.local_asn",
    "announcer.listen_port",
    "announcer.gobgp.address",
    "metrics",
    "control.socket",
    "fleet",
];

/// Refuses a reload that changes one of [`RESTART_ONLY`].
pub fn needs_restart(old: &Config, new: &Config) -> Result<(), ReloadError> {
    let (a, b) = (&old.announcer, &new.announcer);
    // In the order of RESTART_ONLY (one length: the compiler holds them together).
    let changed: [bool; RESTART_ONLY.len()] = [
        a.router_id != b.router_id,
        a.local_asn != b.local_asn,
        a.listen_port != b.listen_port,
        a.gobgp.address != b.gobgp.address,
        old.metrics != new.metrics,
        old.control != new.control,
        old.fleet != new.fleet,
    ];
    let fields: Vec<&'static str> = RESTART_ONLY
        .into_iter()
        .zip(changed)
        .filter_map(|(f, c)| c.then_some(f))
        .collect();
    if fields.is_empty() {
        Ok(())
    } else {
        Err(ReloadError::NeedsRestart { fields })
    }
}

/// What applying `next` changes. `running`: the services' configs in force; `level`: a
/// running service's level; `removed_level`: the level of a service a reload removed
/// moment ago (within `drain_linger`), which a re-added one resumes, so that its routes
/// are put back in place rather than withdrawn and announced again.
pub fn plan(
    running: &BTreeMap<String, ServiceConfig>,
    level: impl Fn(&str) -> Option<Level>,
    removed_level: impl Fn(&str) -> Option<Level>,
    next: &Config,
    old: &Intent,
    new: &Intent,
) -> ReloadPlan {
    let mut p = ReloadPlan::default();
    for s in &next.services {
        match running.get(&s.name) {
            Some(c) if c == s => {}
            Some(_) => {
                p.changed.push(s.name.clone());
                let l = level(&s.name).unwrap_or(Level::Down);
                p.start.push((s.clone(), Health::at(l)));
            }
            None => match removed_level(&s.name) {
                Some(l) => {
                    p.changed.push(s.name.clone());
                    p.start.push((s.clone(), Health::at(l)));
                }
                None => {
                    p.added.push(s.name.clone());
                    p.start.push((s.clone(), Health::START));
                }
            },
        }
    }
    p.removed = running
        .keys()
        .filter(|n| !next.services.iter().any(|s| &s.name == *n))
        .cloned()
        .collect();
    let routes = |i: &Intent| i.routes.keys().copied().collect::<BTreeSet<_>>();
    let (old_routes, new_routes) = (routes(old), routes(new));
    p.routes_added = new_routes.difference(&old_routes).copied().collect();
    p.routes_removed = old_routes.difference(&new_routes).copied().collect();
    let peers = |i: &Intent| {
        i.peers
            .iter()
            .map(|p| p.name.clone())
            .collect::<BTreeSet<_>>()
    };
    let (old_peers, new_peers) = (peers(old), peers(new));
    p.peers_added = new_peers.difference(&old_peers).cloned().collect();
    p.peers_removed = old_peers.difference(&new_peers).cloned().collect();
    p.routes_changed = new
        .routes
        .iter()
        .filter_map(|(prefix, n)| {
            let o = old.routes.get(prefix)?;
            use crate::config::attributes::RouteState as S;
            let attrs_changed = [S::Up, S::Degraded, S::Draining]
                .into_iter()
                .any(|s| o.attrs(s) != n.attrs(s));
            let what = match (o.next_hop != n.next_hop, attrs_changed) {
                (false, false) => return None,
                (true, false) => "next hop",
                (false, true) => "attributes",
                (true, true) => "next hop, attributes",
            };
            Some(format!("{prefix} ({what})"))
        })
        .collect();
    p.peers_changed = new
        .peers
        .iter()
        .filter(|n| old.peers.iter().any(|o| o.name == n.name && o != *n))
        .map(|n| n.name.clone())
        .collect();
    for (changed, name) in [
        (
            old.drain_linger != new.drain_linger,
            "announcer.drain_linger",
        ),
        (
            old.attribute_hold != new.attribute_hold,
            "announcer.attribute_hold",
        ),
        (
            old.reconcile_interval != new.reconcile_interval,
            "announcer.gobgp.reconcile_interval",
        ),
        (
            old.rpc_timeout != new.rpc_timeout,
            "announcer.gobgp.timeout",
        ),
        (
            old.peer_poll_interval != new.peer_poll_interval,
            "announcer.gobgp.peer_poll_interval",
        ),
    ] {
        if changed {
            p.settings.push(name);
        }
    }
    p
}

/// The most names of one list a reload's summary gives.
const LISTED: usize = 10;

/// The summary of a reload, for the log and `anycastd reload`.
impl fmt::Display for ReloadPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // At most LISTED names of each list: a reload of 20,000 routes says how many, not
        // which (its reply was 64 KiB and more, issue 20).
        let list = |v: &[String]| match v.len() {
            0 => "-".to_string(),
            n if n <= LISTED => v.join(", "),
            n => format!("{} ({} more)", v[..LISTED].join(", "), n - LISTED),
        };
        let nets = |v: &[IpNet]| list(&v.iter().map(ToString::to_string).collect::<Vec<_>>());
        write!(
            f,
            "services added {}, changed {}, removed {}; routes added {}, removed {}, changed {}; peers added {}, removed {}, changed {}",
            list(&self.added),
            list(&self.changed),
            list(&self.removed),
            nets(&self.routes_added),
            nets(&self.routes_removed),
            list(&self.routes_changed),
            list(&self.peers_added),
            list(&self.peers_removed),
            list(&self.peers_changed),
        )?;
        if !self.settings.is_empty() {
            write!(f, "; also changed: {}", self.settings.join(", "))?;
        }
        if self.is_empty() {
            f.write_str(" (nothing changed)")?;
        }
        Ok(())
    }
}

impl ReloadPlan {
    /// Whether the reload changed nothing anycastd does.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.changed.is_empty()
            && self.removed.is_empty()
            && self.routes_added.is_empty()
            && self.routes_removed.is_empty()
            && self.routes_changed.is_empty()
            && self.peers_added.is_empty()
            && self.peers_removed.is_empty()
            && self.peers_changed.is_empty()
            && self.settings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let text = format!(
            "announcer:\n  router_id: 10.0.0.1\n  local_address: 10.0.0.1\n  local_asn: 65001\n  next_hop: 198.51.100.1\n  routes: [192.0.2.1/32, 192.0.2.2/32]\n  peers:\n    - name: router\n      remote_address: 10.0.0.2\n      remote_asn: 65000\n{extra}services:\n  - name: web\n    check_interval: 1s\n    checks:\n      - kind: assigned_address\n        spec: {{ ipv4: 127.0.0.1 }}\n"
        );
        crate::config::parse(&text, crate::config::Format::Yaml).expect("a valid config")
    }

    fn summary(old: &Config, new: &Config) -> String {
        let running = old
            .services
            .iter()
            .map(|s| (s.name.clone(), s.clone()))
            .collect();
        let (a, b) = (
            Intent::from_config(old).expect("intent"),
            Intent::from_config(new).expect("intent"),
        );
        plan(&running, |_| Some(Level::Up), |_| None, new, &a, &b).to_string()
    }

    /// Issue 23.5: a reload that changed only attributes (or the linger) said nothing of it.
    #[test]
    fn a_reload_says_which_routes_and_settings_changed() {
        let old = config("");
        let attrs = config("  attributes:\n    up:\n      med: 100\n  drain_linger: 9s\n");
        assert_eq!(
            summary(&old, &attrs),
            "services added -, changed -, removed -; routes added -, removed -, changed 192.0.2.1/32 (attributes), 192.0.2.2/32 (attributes); peers added -, removed -, changed -; also changed: announcer.drain_linger"
        );
        assert_eq!(
            summary(&old, &old),
            "services added -, changed -, removed -; routes added -, removed -, changed -; peers added -, removed -, changed - (nothing changed)"
        );
    }
}
