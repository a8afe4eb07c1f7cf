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
}

/// The settings a reload cannot change: gobgpd's global ones (SPEC 12), where anycastd
/// itself listens, and the fleet (its lease and site name are the process's).
pub fn needs_restart(old: &Config, new: &Config) -> Result<(), ReloadError> {
    let (a, b) = (&old.announcer, &new.announcer);
    let mut fields = Vec::new();
    if a.router_id != b.router_id {
        fields.push("announcer.router_id");
    }
    if a.local_asn != b.local_asn {
        fields.push("announcer.local_asn");
    }
    if a.listen_port != b.listen_port {
        fields.push("announcer.listen_port");
    }
    if a.gobgp.address != b.gobgp.address {
        fields.push("announcer.gobgp.address");
    }
    if old.metrics != new.metrics {
        fields.push("metrics");
    }
    if old.control != new.control {
        fields.push("control.socket");
    }
    if old.fleet != new.fleet {
        fields.push("fleet");
    }
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
            "services added {}, changed {}, removed {}; routes added {}, removed {}; peers added {}, removed {}",
            list(&self.added),
            list(&self.changed),
            list(&self.removed),
            nets(&self.routes_added),
            nets(&self.routes_removed),
            list(&self.peers_added),
            list(&self.peers_removed),
        )
    }
}
