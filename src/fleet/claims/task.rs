//! The fleet task of [`super::Claims`]: every `lease_ttl / 3` (and at once when whether a
//! router sees this site changes) it keeps the lease alive, reads the claims of every site
//! when etcd changed, repairs this site's claims that differ from what the handle was told,
//! and publishes the [`FleetView`](super::FleetView) and the metrics.

use std::collections::BTreeMap;
use std::sync::Arc;

use ipnet::IpNet;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::{Claim, ClaimState, Etcd, FleetError, Inner, Quiet, Sight};

/// The first few of `names` for a log line, and how many more.
fn few(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut out = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        out.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    out
}

/// What is new about reaching etcd, for the log.
#[derive(Debug, PartialEq, Eq)]
enum EtcdNews<'a> {
    /// It cannot be reached, with why.
    Lost(&'a str),
    /// It still cannot, for another reason (issue 20: the first error was said for good).
    Changed(&'a str),
    /// It answers again.
    Back,
}

/// The news between the last tick's error and this one's; `None`: nothing new.
fn etcd_news<'a>(now: &'a Option<String>, last: &Option<String>) -> Option<EtcdNews<'a>> {
    match (now, last) {
        (Some(e), None) => Some(EtcdNews::Lost(e)),
        (Some(e), Some(l)) if e != l => Some(EtcdNews::Changed(e)),
        (None, Some(_)) => Some(EtcdNews::Back),
        _ => None,
    }
}

impl Inner {
    /// The fleet task: every `lease_ttl / 3`, and at once when whether a router sees this
    /// site changes, one [`Inner::tick`].
    pub(super) async fn run(
        self: Arc<Self>,
        mut shutdown: watch::Receiver<bool>,
        mut sight: Sight,
    ) {
        let every = self.lease_ttl / 3;
        let mut last_error: Option<String> = None;
        let mut sight_open = true;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let r = self.bounded(self.tick()).await;
            self.reached(&r);
            let error = r.err().map(|e| e.to_string());
            match etcd_news(&error, &last_error) {
                Some(EtcdNews::Lost(e)) => {
                    warn!(site = %self.site, error = %e, "fleet: etcd cannot be reached")
                }
                Some(EtcdNews::Changed(e)) => {
                    warn!(site = %self.site, error = %e, "fleet: etcd still cannot be reached")
                }
                Some(EtcdNews::Back) => {
                    info!(site = %self.site, "fleet: etcd reachable again")
                }
                None => {}
            }
            self.view.send_if_modified(|v| {
                let changed = v.error != error;
                v.error = error.clone();
                changed
            });
            last_error = error;
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                changed = shutdown.changed() => if changed.is_err() {
                    break; // the daemon is gone
                },
                changed = sight.changed(), if sight_open => {
                    sight_open = changed.is_ok();
                    let unseen = sight.borrow_and_update().clone();
                    self.seen_by_routers(unseen);
                }
            }
        }
        // Shutdown is not guarded: every claim goes at once with the lease.
        let revoked = self
            .bounded(async {
                let mut s = self.session.lock().await;
                if let Some(lease) = s.lease {
                    s.etcd.revoke(lease).await?;
                    s.lease = None;
                    s.owns_site = false;
                }
                Ok(())
            })
            .await;
        match revoked {
            Ok(()) => info!(site = %self.site, "fleet: lease revoked, claims gone"),
            Err(e) => {
                warn!(site = %self.site, error = %e, "fleet: could not revoke the lease; the claims expire with it")
            }
        }
    }

    /// Keeps the lease alive (re-establishing a lost one), makes our claims in etcd match
    /// what the announcer said, and refreshes the view and the metrics.
    async fn tick(&self) -> Result<(), FleetError> {
        let mut s = self.session.lock().await;
        let mut lease = self.ensure(&mut s).await?;
        if !s.etcd.keep_alive(lease).await? {
            // Expired (we were cut off for longer than lease_ttl) or revoked.
            warn!(site = %self.site, lease = format!("{lease:x}"), "fleet: etcd lease lost; taking a new one and claiming again");
            s.lease = None;
            s.owns_site = false;
            lease = self.ensure(&mut s).await?;
        }
        // The revision first (one key): the same store, the same wishes, nothing to do.
        let revision = s.etcd.revision(&self.keys.site(&self.site)).await?;
        let mut now = revision.map(|revision| Quiet {
            revision,
            wanted: self.wanted(),
            counting: self.counting(),
            owns_site: s.owns_site,
        });
        if now.as_ref().is_some_and(|n| s.last.as_ref() == Some(n)) {
            return Ok(());
        }
        let (kvs, read_at) = s.etcd.range_at(&self.keys.routes()).await?;
        let mut seen: BTreeMap<IpNet, BTreeMap<String, Option<ClaimState>>> = BTreeMap::new();
        let mut ours: BTreeMap<IpNet, Option<ClaimState>> = BTreeMap::new();
        for kv in &kvs {
            if let Some((p, site)) = self.keys.parse_claim(&kv.key) {
                let state = Claim::parse(&kv.value).map(|c| c.state);
                if site == self.site {
                    ours.insert(p, state);
                }
                seen.entry(p).or_default().insert(site, state);
            }
        }
        if s.owns_site {
            // Claims put back after the site did not count (no router saw it, the name
            // was taken) or at its first tick were out of etcd on purpose: not news.
            let expected = s.last.as_ref().is_none_or(|l| !l.counting || !l.owns_site);
            self.repair(&mut s.etcd, lease, &ours, &mut seen, expected)
                .await?;
        }
        // Kept as read: a repair's writes move the revision, and the next tick reads again.
        // Wishes that changed since `now` was taken differ from it next time, likewise.
        s.last = match (now.as_mut(), read_at) {
            (Some(n), Some(at)) => {
                n.revision = at;
                now
            }
            _ => None,
        };
        drop(s);
        self.publish(seen);
        Ok(())
    }

    /// Records whether a router sees this site's routes (`None`) or why not; the next tick
    /// takes the claims out of etcd or puts them back.
    fn seen_by_routers(&self, unseen: Option<String>) {
        let Ok(mut u) = self.unseen.lock() else {
            return;
        };
        if *u == unseen {
            return;
        }
        match &unseen {
            Some(why) => warn!(
                site = %self.site,
                reason = why.as_str(),
                "fleet: this site's routes reach no router; its claims leave etcd, so that other sites do not count it"
            ),
            None => {
                warn!(site = %self.site, "fleet: this site's routes reach a router again; claiming again")
            }
        }
        *u = unseen.clone();
        drop(u);
        self.view.send_modify(|v| v.unseen = unseen);
    }

    /// Puts the wanted claims that etcd lacks (or that say another state) and deletes
    /// those nobody wants any more; `seen` is corrected to match. `expected`: the wanted
    /// claims were out of etcd on purpose (said at INFO, not as missing).
    async fn repair(
        &self,
        etcd: &mut Etcd,
        lease: i64,
        ours: &BTreeMap<IpNet, Option<ClaimState>>,
        seen: &mut BTreeMap<IpNet, BTreeMap<String, Option<ClaimState>>>,
        expected: bool,
    ) -> Result<(), FleetError> {
        let wanted = self.effective();
        let put: Vec<(IpNet, ClaimState)> = wanted
            .iter()
            .filter(|(p, state)| ours.get(*p) != Some(&Some(**state)))
            .map(|(p, state)| (*p, *state))
            .collect();
        let missing: Vec<String> = put
            .iter()
            .filter(|(p, _)| !ours.contains_key(p))
            .map(|(p, _)| p.to_string())
            .collect();
        for (p, state) in put.iter().filter(|(p, _)| ours.contains_key(p)) {
            debug!(site = %self.site, prefix = %p, state = ?state, "fleet: claim updated");
        }
        if !missing.is_empty() && expected {
            info!(site = %self.site, claims = missing.len(), prefixes = %few(&missing), "fleet: claims put");
        } else if !missing.is_empty() {
            warn!(site = %self.site, claims = missing.len(), prefixes = %few(&missing), "fleet: claims missing in etcd; put again");
        }
        self.put_claims(etcd, lease, &put).await?;
        for (p, state) in &put {
            seen.entry(*p)
                .or_default()
                .insert(self.site.clone(), Some(*state));
        }
        let stale: Vec<IpNet> = ours
            .keys()
            .filter(|p| !wanted.contains_key(*p))
            .copied()
            .collect();
        if !stale.is_empty() {
            let names: Vec<String> = stale.iter().map(IpNet::to_string).collect();
            info!(site = %self.site, claims = stale.len(), prefixes = %few(&names), "fleet: stale claims deleted");
        }
        self.delete_claims(etcd, &stale).await?;
        for p in &stale {
            if let Some(sites) = seen.get_mut(p) {
                sites.remove(&self.site);
            }
        }
        Ok(())
    }

    /// Publishes what etcd said about our prefixes.
    fn publish(&self, mut seen: BTreeMap<IpNet, BTreeMap<String, Option<ClaimState>>>) {
        let wanted = self.wanted();
        self.view.send_modify(|v| {
            for p in wanted.keys() {
                v.prefixes.entry(*p).or_default();
            }
            for (p, pv) in v.prefixes.iter_mut() {
                pv.sites = seen.remove(p).unwrap_or_default();
                pv.held = wanted.get(p) == Some(&ClaimState::Held);
                self.set_gauges(*p, pv);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_cause_of_an_etcd_failure_is_news() {
        let refused = Some("connection refused".to_string());
        let timeout = Some("etcd did not answer within 1s".to_string());
        assert_eq!(
            etcd_news(&refused, &None),
            Some(EtcdNews::Lost("connection refused"))
        );
        assert_eq!(etcd_news(&refused, &refused), None);
        assert_eq!(
            etcd_news(&timeout, &refused),
            Some(EtcdNews::Changed("etcd did not answer within 1s"))
        );
        assert_eq!(etcd_news(&None, &timeout), Some(EtcdNews::Back));
        assert_eq!(etcd_news(&None, &None), None);
    }
}
