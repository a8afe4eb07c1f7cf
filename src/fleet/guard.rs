//! The guard: the etcd transaction through which a site drops its claim on a prefix only
//! while at least `min_sites` *other* sites hold theirs, and the key layout it works on.
//!
//! Keys (under `fleet.etcd.prefix`, `/anycastd/` by default):
//! - `{prefix}routes/{P}/sites/{site}`: site `site` announces `P` (a [`Claim`] as JSON, under
//!   the site's lease, so it vanishes `lease_ttl` after the site dies or is cut off);
//! - `{prefix}routes/{P}/guard`: written by every guarded release of `P` (who, when, how
//!   many others were left): the per-prefix serialization point, and an audit record;
//! - `{prefix}sites/{site}`: the instance that owns the site name, under its lease.
//!
//! A guarded release of `P` by site `S` is one read and one transaction (more only when
//! another site released `P` in between):
//! 1. read the range `{prefix}routes/{P}/` (claims and guard key, one revision);
//! 2. if fewer than `min_sites` other sites hold `P`: held, nothing is written;
//! 3. else commit `If(mod_revision(guard) == seen AND version(claim of O) > 0 for min_sites
//!    other sites O) Then(delete S's claim, put guard) Else(read the range again)`;
//! 4. on `Else`, go to 2 with the range the transaction returned.
//!
//! Why two sites cannot both pass when only one may: etcd applies transactions one at a
//! time, in one order (the raft log), each against the state the ones before it left.
//! - A release that commits asserts, at its place in that order, that `min_sites` claims of
//!   other sites exist, and removes only its own claim. So after it, at least `min_sites`
//!   claims remain. By induction no sequence of guarded releases takes `P` below
//!   `min_sites` claims. Claims leave unguarded only by a forced release (an operator's
//!   `drain --force`, a shutdown) or when a dead or cut-off site's lease expires.
//! - Two sites A and B that read the same state both see the guard key at revision r. The
//!   first of their transactions to be applied passes (if its claims still exist) and
//!   rewrites the guard key; the second then finds the guard key's revision changed, fails,
//!   and decides again on the state the first left (returned by its `Else`): with one claim
//!   fewer. The existence compares alone would already forbid it when A's claim is among the
//!   ones B counts; the guard key makes every pair of releases of `P` conflict, so each
//!   decision is taken on the state of the one before it, whatever claims were picked.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp, TxnOpResponse};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::etcd::{Etcd, EtcdError, Kv};

/// A name for this process in etcd, different for every [`Fleet`] ever started on any
/// machine: host, pid, start time and a counter (several fleets in one test process).
pub fn instance_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}/{}/{nanos:x}/{}",
        if host.is_empty() { "?" } else { &host },
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Where anycastd's keys live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    root: String,
}

impl Keys {
    /// `root` is `fleet.etcd.prefix` (it ends with `/`).
    pub fn new(root: &str) -> Keys {
        Keys {
            root: root.to_string(),
        }
    }

    /// Every claim and guard key: `{root}routes/`.
    pub fn routes(&self) -> String {
        format!("{}routes/", self.root)
    }

    /// The keys of one prefix: `{root}routes/{P}/`.
    pub fn route(&self, prefix: &IpNet) -> String {
        format!("{}routes/{prefix}/", self.root)
    }

    pub fn claim(&self, prefix: &IpNet, site: &str) -> String {
        format!("{}sites/{site}", self.route(prefix))
    }

    pub fn guard(&self, prefix: &IpNet) -> String {
        format!("{}guard", self.route(prefix))
    }

    /// The owner of a site name: `{root}sites/{site}`.
    pub fn site(&self, site: &str) -> String {
        format!("{}sites/{site}", self.root)
    }

    /// The prefix and site of a claim key; `None` for any other key.
    pub fn parse_claim(&self, key: &[u8]) -> Option<(IpNet, String)> {
        let key = std::str::from_utf8(key).ok()?;
        let rest = key.strip_prefix(&self.routes())?;
        let (prefix, site) = rest.rsplit_once("/sites/")?;
        if site.is_empty() || site.contains('/') {
            return None;
        }
        Some((prefix.parse().ok()?, site.to_string()))
    }
}

/// What a site's claim on a prefix says (the value of its claim key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The process that wrote it (see [`instance_id`]).
    pub instance: String,
    pub state: ClaimState,
}

/// Why a site announces a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimState {
    /// Its services are healthy.
    Up,
    /// Its services failed, but the guard keeps it announcing (degraded).
    Held,
}

impl Claim {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `None` for a value anycastd did not write (it still counts as a claim).
    pub fn parse(value: &[u8]) -> Option<Claim> {
        serde_json::from_slice(value).ok()
    }
}

/// Another site's claim on the prefix, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherClaim {
    pub key: String,
    pub create_revision: i64,
    /// `None` when the value is not one anycastd writes.
    pub claim: Option<Claim>,
}

/// The keys of one prefix at one revision, from the point of view of one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub prefix: IpNet,
    /// Other sites holding a claim, by site name.
    pub others: BTreeMap<String, OtherClaim>,
    /// The guard key's mod_revision; 0 while it does not exist (etcd compares a missing
    /// key's revisions as 0).
    pub guard_revision: i64,
    /// Our own claim, if our site's key exists (`Some(None)`: a value not ours to parse).
    pub own: Option<Option<Claim>>,
}

impl Snapshot {
    /// Sorts the range `{root}routes/{P}/` into claims and the guard key.
    pub fn new<'a>(
        keys: &Keys,
        prefix: IpNet,
        site: &str,
        kvs: impl IntoIterator<Item = &'a Kv>,
    ) -> Snapshot {
        let guard = keys.guard(&prefix);
        let mut s = Snapshot {
            prefix,
            others: BTreeMap::new(),
            guard_revision: 0,
            own: None,
        };
        for kv in kvs {
            if kv.key == guard.as_bytes() {
                s.guard_revision = kv.mod_revision;
                continue;
            }
            let Some((p, other)) = keys.parse_claim(&kv.key) else {
                continue;
            };
            if p != prefix {
                continue;
            }
            let claim = Claim::parse(&kv.value);
            if other == site {
                s.own = Some(claim);
            } else {
                s.others.insert(
                    other,
                    OtherClaim {
                        key: String::from_utf8_lossy(&kv.key).into_owned(),
                        create_revision: kv.create_revision,
                        claim,
                    },
                );
            }
        }
        s
    }

    pub fn other_sites(&self) -> Vec<String> {
        self.others.keys().cloned().collect()
    }

    /// The `min_sites` other claims the transaction asserts, or `None` when there are too
    /// few. The oldest ones: the least likely to vanish before the transaction lands.
    pub fn witnesses(&self, min_sites: u32) -> Option<Vec<&str>> {
        let need = min_sites as usize;
        if self.others.len() < need {
            return None;
        }
        let mut by_age: Vec<&OtherClaim> = self.others.values().collect();
        by_age.sort_by(|a, b| (a.create_revision, &a.key).cmp(&(b.create_revision, &b.key)));
        Some(by_age[..need].iter().map(|c| c.key.as_str()).collect())
    }
}

/// The record written to the guard key by a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardRecord {
    pub site: String,
    pub instance: String,
    /// Other sites holding the prefix when it was released.
    pub others: Vec<String>,
    /// RFC 3339.
    pub at: String,
}

/// The transaction of one guarded release (see the module's doc), as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseTxn {
    /// `If`: the guard key is still at this revision (0: still absent) ...
    pub guard_key: String,
    pub guard_revision: i64,
    /// ... and each of these claims exists (version > 0).
    pub witnesses: Vec<String>,
    /// `Then`: delete our claim (not when another instance owns our site name), put the
    /// guard record.
    pub delete: Option<String>,
    pub record: String,
    /// `Else`: read this range again.
    pub reread: String,
}

impl ReleaseTxn {
    /// `None` when fewer than `min_sites` other sites hold the prefix.
    pub fn new(
        keys: &Keys,
        snap: &Snapshot,
        min_sites: u32,
        site: &str,
        delete_own: bool,
        record: &GuardRecord,
    ) -> Option<ReleaseTxn> {
        let witnesses = snap.witnesses(min_sites)?;
        Some(ReleaseTxn {
            guard_key: keys.guard(&snap.prefix),
            guard_revision: snap.guard_revision,
            witnesses: witnesses.into_iter().map(str::to_string).collect(),
            delete: delete_own.then(|| keys.claim(&snap.prefix, site)),
            record: serde_json::to_string(record).unwrap_or_default(),
            reread: keys.route(&snap.prefix),
        })
    }

    /// The etcd transaction.
    pub fn txn(&self) -> Txn {
        let mut when = vec![Compare::mod_revision(
            self.guard_key.clone(),
            CompareOp::Equal,
            self.guard_revision,
        )];
        when.extend(
            self.witnesses
                .iter()
                .map(|k| Compare::version(k.clone(), CompareOp::Greater, 0)),
        );
        let mut then = Vec::with_capacity(2);
        if let Some(own) = &self.delete {
            then.push(TxnOp::delete(own.clone(), None));
        }
        then.push(TxnOp::put(
            self.guard_key.clone(),
            self.record.clone(),
            None,
        ));
        Txn::new()
            .when(when)
            .and_then(then)
            .or_else(vec![TxnOp::get(
                self.reread.clone(),
                Some(GetOptions::new().with_prefix()),
            )])
    }
}

/// How a guarded release ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The claim is gone: the site may withdraw. `others` held the prefix at that moment.
    Released { others: Vec<String>, tries: u32 },
    /// Fewer than `min_sites` other sites hold the prefix.
    TooFew { snapshot: Snapshot, tries: u32 },
    /// Other sites released the prefix at the same moment, `tries` times in a row.
    Contended { snapshot: Snapshot, tries: u32 },
}

/// Reads the keys of `prefix`.
pub async fn read(
    etcd: &mut Etcd,
    keys: &Keys,
    prefix: IpNet,
    site: &str,
) -> Result<Snapshot, EtcdError> {
    let kvs = etcd.range(&keys.route(&prefix)).await?;
    Ok(Snapshot::new(keys, prefix, site, &kvs))
}

/// One transaction: `Ok(None)` when it committed, `Ok(Some(fresh))` when it did not (with
/// the range it read instead).
pub async fn try_release(
    etcd: &mut Etcd,
    keys: &Keys,
    snap: &Snapshot,
    site: &str,
    instance: &str,
    delete_own: bool,
    min_sites: u32,
) -> Result<Option<Snapshot>, EtcdError> {
    let record = GuardRecord {
        site: site.to_string(),
        instance: instance.to_string(),
        others: snap.other_sites(),
        at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
    };
    let Some(plan) = ReleaseTxn::new(keys, snap, min_sites, site, delete_own, &record) else {
        return Ok(Some(snap.clone()));
    };
    let txn = plan.txn();
    let resp = etcd.txn(txn).await?;
    if resp.succeeded() {
        return Ok(None);
    }
    let kvs: Vec<Kv> = resp
        .op_responses()
        .iter()
        .filter_map(|r| match r {
            TxnOpResponse::Get(g) => Some(g.kvs().iter().map(Kv::from).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    Ok(Some(Snapshot::new(keys, snap.prefix, site, &kvs)))
}

/// A guarded release: read, then transactions until one commits, the others are too few,
/// or `max_tries` transactions lost to concurrent releases.
#[allow(clippy::too_many_arguments)]
pub async fn release(
    etcd: &mut Etcd,
    keys: &Keys,
    prefix: IpNet,
    site: &str,
    instance: &str,
    delete_own: bool,
    min_sites: u32,
    max_tries: u32,
) -> Result<Outcome, EtcdError> {
    let mut snap = read(etcd, keys, prefix, site).await?;
    let mut tries = 0;
    loop {
        if snap.witnesses(min_sites).is_none() {
            return Ok(Outcome::TooFew {
                snapshot: snap,
                tries,
            });
        }
        if tries == max_tries {
            return Ok(Outcome::Contended {
                snapshot: snap,
                tries,
            });
        }
        tries += 1;
        match try_release(etcd, keys, &snap, site, instance, delete_own, min_sites).await? {
            None => {
                return Ok(Outcome::Released {
                    others: snap.other_sites(),
                    tries,
                });
            }
            Some(fresh) => snap = fresh,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpNet {
        s.parse().expect("test prefix")
    }

    fn kv(key: &str, value: &str, create: i64, modr: i64) -> Kv {
        Kv {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            create_revision: create,
            mod_revision: modr,
        }
    }

    fn claim(instance: &str, state: ClaimState) -> String {
        Claim {
            instance: instance.into(),
            state,
        }
        .to_json()
    }

    #[test]
    fn key_layout_follows_the_spec() {
        let k = Keys::new("/anycastd/");
        let v4 = p("10.0.0.128/32");
        assert_eq!(k.routes(), "/anycastd/routes/");
        assert_eq!(k.route(&v4), "/anycastd/routes/10.0.0.128/32/");
        assert_eq!(
            k.claim(&v4, "fra1"),
            "/anycastd/routes/10.0.0.128/32/sites/fra1"
        );
        assert_eq!(k.guard(&v4), "/anycastd/routes/10.0.0.128/32/guard");
        assert_eq!(k.site("fra1"), "/anycastd/sites/fra1");
        let v6 = p("2001:db8::/48");
        assert_eq!(
            k.parse_claim(k.claim(&v6, "ams-2").as_bytes()),
            Some((v6, "ams-2".to_string()))
        );
        assert_eq!(k.parse_claim(k.guard(&v6).as_bytes()), None);
        assert_eq!(k.parse_claim(b"/other/routes/10.0.0.0/8/sites/x"), None);
        assert_eq!(k.parse_claim(b"/anycastd/routes/nonsense/sites/x"), None);
    }

    #[test]
    fn one_prefix_range_does_not_reach_into_a_longer_one() {
        // `.../10.0.0.128/3/` is not a prefix of `.../10.0.0.128/32/...`: the range of /3
        // never sees the claims of /32.
        let k = Keys::new("/a/");
        assert!(
            !k.claim(&p("10.0.0.128/32"), "x")
                .starts_with(&k.route(&"10.0.0.128/3".parse::<IpNet>().expect("net")))
        );
    }

    #[test]
    fn snapshot_sorts_own_other_and_guard_keys() {
        let k = Keys::new("/a/");
        let pre = p("192.0.2.1/32");
        let kvs = [
            kv(&k.claim(&pre, "fra1"), &claim("i1", ClaimState::Up), 5, 5),
            kv(&k.claim(&pre, "ams1"), &claim("i2", ClaimState::Held), 3, 9),
            kv(&k.claim(&pre, "lon1"), "not json", 7, 7),
            kv(&k.guard(&pre), "{}", 2, 11),
            // Another prefix's claim in the same list is ignored.
            kv(&k.claim(&p("192.0.2.2/32"), "par1"), "", 4, 4),
        ];
        let s = Snapshot::new(&k, pre, "fra1", &kvs);
        assert_eq!(s.guard_revision, 11);
        assert_eq!(
            s.own,
            Some(Some(Claim {
                instance: "i1".into(),
                state: ClaimState::Up
            }))
        );
        assert_eq!(s.other_sites(), ["ams1", "lon1"]);
        assert_eq!(
            s.others["ams1"].claim.as_ref().map(|c| c.state),
            Some(ClaimState::Held)
        );
        assert_eq!(
            s.others["lon1"].claim, None,
            "an unparsable value still counts"
        );
        let empty = Snapshot::new(&k, pre, "fra1", &[]);
        assert_eq!((empty.guard_revision, empty.own), (0, None));
    }

    #[test]
    fn witnesses_are_the_oldest_claims_and_need_min_sites() {
        let k = Keys::new("/a/");
        let pre = p("192.0.2.1/32");
        let kvs = [
            kv(&k.claim(&pre, "b"), "", 30, 30),
            kv(&k.claim(&pre, "c"), "", 10, 40),
            kv(&k.claim(&pre, "d"), "", 20, 20),
            kv(&k.claim(&pre, "a"), "", 1, 1),
        ];
        let s = Snapshot::new(&k, pre, "a", &kvs);
        assert_eq!(
            s.witnesses(2),
            Some(vec![
                k.claim(&pre, "c").as_str(),
                k.claim(&pre, "d").as_str()
            ])
        );
        assert_eq!(s.witnesses(3).map(|w| w.len()), Some(3));
        assert_eq!(s.witnesses(4), None, "our own claim is not a witness");
    }

    #[test]
    fn the_transaction_asserts_the_guard_revision_and_each_witness() {
        let k = Keys::new("/a/");
        let pre = p("192.0.2.1/32");
        let kvs = [
            kv(&k.claim(&pre, "b"), "", 3, 3),
            kv(&k.claim(&pre, "c"), "", 4, 4),
            kv(&k.guard(&pre), "", 2, 8),
        ];
        let s = Snapshot::new(&k, pre, "a", &kvs);
        let record = GuardRecord {
            site: "a".into(),
            instance: "i".into(),
            others: s.other_sites(),
            at: "now".into(),
        };
        let t = ReleaseTxn::new(&k, &s, 2, "a", true, &record).expect("two others");
        assert_eq!(t.guard_key, k.guard(&pre));
        assert_eq!(t.guard_revision, 8);
        assert_eq!(t.witnesses, [k.claim(&pre, "b"), k.claim(&pre, "c")]);
        assert_eq!(t.delete, Some(k.claim(&pre, "a")));
        assert_eq!(t.reread, k.route(&pre));
        let r: GuardRecord = serde_json::from_str(&t.record).expect("json");
        assert_eq!(r.others, ["b", "c"]);

        let t = ReleaseTxn::new(&k, &s, 1, "a", false, &record).expect("one other");
        assert_eq!(
            t.witnesses,
            [k.claim(&pre, "b")],
            "only min_sites witnesses"
        );
        assert_eq!(t.delete, None, "another instance owns our site name");
        assert_eq!(ReleaseTxn::new(&k, &s, 3, "a", true, &record), None);

        // A prefix nobody released yet: the guard key must still be absent.
        let fresh = Snapshot::new(&k, pre, "a", &kvs[..2]);
        let t = ReleaseTxn::new(&k, &fresh, 2, "a", true, &record).expect("two others");
        assert_eq!(t.guard_revision, 0);
    }
}
