//! Setting a gobgpd up for anycastd: its global settings (`StartBgp` when it has none; a
//! different one is fatal), the ownership mark ([`super::owner`]), and the configured
//! peers; and what anycastd says when someone else changed what it set up.

use std::time::SystemTime;

use tracing::{debug, error, info, warn};

use super::gobgp::ops::{Api, BfdSupport, Gobgp, PeerChange};
use super::owner;
use super::run::{Announcer, Lost};
use super::state::Fatal;

impl Announcer {
    /// Sets up the global config, the ownership mark and the peers. Returns whether gobgpd
    /// had no global config (it is new, or it restarted and forgot everything).
    pub(super) async fn setup<G: Gobgp>(&mut self, c: &G) -> Result<bool, Lost> {
        let want = &self.intent.global;
        let fresh = match c.global().await? {
            None => {
                c.start_bgp(want).await?;
                info!(router_id = %want.router_id, asn = %want.asn, listen_port = %want.listen_port, "started BGP in gobgpd");
                true
            }
            Some(g) if g == *want => false,
            Some(have) => {
                return Err(Lost::Fatal(Fatal::GlobalMismatch {
                    address: self.intent.address.clone(),
                    have,
                    want: want.clone(),
                }));
            }
        };
        if fresh {
            self.peers_set.clear();
        }
        self.claim(c).await?;
        self.setup_peers(c).await?;
        Ok(fresh)
    }

    /// Makes sure this gobgpd is ours to drive, and refreshes our mark ([`owner`]).
    async fn claim<G: Gobgp>(&mut self, c: &G) -> Result<(), Lost> {
        let entries = c.community_set(owner::SET_NAME).await?;
        let mine = self.owner.mark.clone();
        let verdict = self.owner.decide(
            &entries,
            owner::unix_now(),
            std::time::Instant::now(),
            |m| owner::gone_here(&mine, m),
        );
        match verdict {
            owner::Verdict::Own {
                add,
                remove,
                doubted,
            } => {
                for (m, why) in doubted {
                    if self.doubted_marks.insert(m.id) {
                        error!(mark = m.entry().as_str(), why = %why, "ignoring an ownership mark in gobgpd that claims to be an older anycastd: this anycastd keeps driving gobgpd (did someone write to the community set anycastd-owner?)");
                    }
                }
                if !entries.contains(&add) {
                    c.add_to_community_set(owner::SET_NAME, vec![add.clone()])
                        .await?;
                }
                if !remove.is_empty() {
                    c.remove_from_community_set(owner::SET_NAME, remove).await?;
                }
                self.mark_entry = Some(add);
                self.set_owner_conflict(None);
                Ok(())
            }
            owner::Verdict::Yield { owner } => {
                self.set_owner_conflict(Some(owner.to_string()));
                Err(Lost::Rpc(c.owned_by(owner.to_string())))
            }
        }
    }

    /// Says (metric, `/status`, `/healthz`) whether another anycastd owns this gobgpd.
    fn set_owner_conflict(&self, owner: Option<String>) {
        self.owner_conflict
            .set(if owner.is_some() { 1.0 } else { 0.0 });
        self.state.send_if_modified(|s| {
            let changed = s.owner_conflict != owner;
            s.owner_conflict = owner;
            changed
        });
    }

    /// Removes our mark, so that a successor takes gobgpd at once. Errors are logged.
    pub(super) async fn release_mark<G: Gobgp>(&mut self, c: &G) {
        if let Some(entry) = self.mark_entry.take()
            && let Err(e) = c
                .remove_from_community_set(owner::SET_NAME, vec![entry])
                .await
        {
            debug!(
                error = e.to_string().as_str(),
                "could not remove the ownership mark"
            );
        }
    }

    /// Deletes the peers a reload removed, then adds or updates each configured peer.
    pub(super) async fn setup_peers<G: Gobgp>(&mut self, c: &G) -> Result<(), Lost> {
        while let Some(p) = self.removed_peers.pop() {
            if let Err(e) = c.delete_peer(p.address).await {
                self.removed_peers.push(p);
                return Err(e.into());
            }
            self.peers_set.remove(&p.address);
            warn!(peer = %p.name, address = %p.address, "removed peer from gobgpd (no longer in the config)");
        }
        for p in &self.intent.peers {
            let change = c.ensure_peer(p).await?;
            let ours_before = self.peers_set.get(&p.address) == Some(p);
            match change {
                // Said once, when found in place (after a restart of anycastd), not at
                // every reconcile (issue 23.7: every 5 s at DEBUG).
                PeerChange::Unchanged if !ours_before => {
                    debug!(peer = %p.name, "peer already configured")
                }
                PeerChange::Unchanged => {}
                _ if ours_before => {
                    let what = format!(
                        "peer {} ({}) was {} in gobgpd by someone else",
                        p.name,
                        p.address,
                        if change == PeerChange::Added {
                            "deleted"
                        } else {
                            "changed"
                        }
                    );
                    self.foreign_change(what);
                }
                PeerChange::Added => {
                    info!(peer = %p.name, address = %p.address, "added peer to gobgpd")
                }
                PeerChange::Updated => {
                    info!(peer = %p.name, address = %p.address, "updated peer in gobgpd");
                    if let Some(before) = self.peers_set.get(&p.address)
                        && before.bfd != p.bfd
                        && before.bfd.is_some()
                    {
                        // Verified on GoBGP 4.8 (tests/bfd.rs): gobgpd keeps its BGP
                        // session, but makes a new BFD session, silent for up to a second
                        // and starting down; a GoBGP router's BFD expires and it resets BGP,
                        // and the routes leave it until the session is back (about 7 s:
                        // gobgpd waits 5 s after a NOTIFICATION received).
                        warn!(peer = %p.name, address = %p.address, bfd = %describe(p.bfd), "BFD settings changed: gobgpd keeps the BGP session but starts a new BFD session; a router that ties BGP to BFD resets the session once, and the routes leave it for several seconds (drain first to move traffic away cleanly)");
                    }
                }
            }
            self.peers_set.insert(p.address, p.clone());
        }
        self.say_bfd_support(c);
        Ok(())
    }

    /// Says (ERROR, `/status`) when peers are configured with BFD and gobgpd does not run
    /// it; once per change (SPEC 16: never trusted silently).
    fn say_bfd_support<G: Gobgp>(&self, c: &G) {
        let with: Vec<&str> = self
            .intent
            .peers
            .iter()
            .filter(|p| p.bfd.is_some())
            .map(|p| p.name.as_str())
            .collect();
        let problem = (!with.is_empty() && c.bfd_support() == BfdSupport::No).then(|| {
            format!(
                "gobgpd at {} does not run BFD ({}): peer(s) {} run without it, so a dead host or a cut link is noticed only at the hold time; BFD needs GoBGP 4.6 or later",
                self.intent.address,
                match c.api() {
                    Api::V3 => "GoBGP 3.x has no BFD",
                    Api::V4 => "GoBGP 4.0 to 4.5 ignore it",
                },
                with.join(", ")
            )
        });
        self.state.send_if_modified(|s| {
            if s.bfd_error == problem {
                return false;
            }
            match &problem {
                Some(p) => error!(peers = %with.join(", "), "{p}"),
                None if !with.is_empty() => {
                    info!(peers = %with.join(", "), "gobgpd runs BFD with the peers configured for it")
                }
                None => {}
            }
            s.bfd_error = problem;
            true
        });
    }

    /// Someone else changed what anycastd set up in gobgpd: counted, logged (ERROR: a
    /// person should find out who), shown in `/status`; anycastd puts it back.
    pub(super) fn foreign_change(&self, what: String) {
        self.foreign_changes.increment(1);
        error!(
            change = what.as_str(),
            "gobgpd was changed by someone else; anycastd puts its own settings back (is another program driving this gobgpd?)"
        );
        self.state
            .send_modify(|s| s.foreign_change = Some((SystemTime::now(), what)));
    }
}

/// A peer's BFD as logs say it: `300ms x 3`, or `off`.
fn describe(b: Option<crate::config::bfd::Bfd>) -> String {
    b.map_or_else(|| "off".to_string(), |b| b.describe())
}
