//! The claims of this site in etcd (SPEC 14): the mechanism under [`super::policy`]. While
//! this site announces a prefix it holds a *claim* on it, under one lease that the task
//! keeps alive; a site that dies or is cut off loses its claims `lease_ttl` later. A
//! guarded release ([`Claims::release_guarded`]) drops the claim only through the
//! transaction of [`super::guard`] (at least `min_sites` other sites must hold theirs).
//!
//! The daemon uses a [`Claims`] handle (cheap to clone) and spawns the future that
//! [`Claims::start`] returns; that task (`claims/task.rs`) keeps the lease alive,
//! re-establishes a lost lease and re-puts the claims, repairs claims that differ from what
//! the handle was told, refreshes the [`FleetView`] and the metrics, and revokes the lease
//! at shutdown. Every call to etcd is
//! bounded by `fleet.etcd.timeout`, and so is each method of the handle as a whole:
//! endpoints that refuse, hang or answer garbage cost the caller that long at most.
//!
//! A site's claims count only while a router can see its routes (issue 20: with site A's
//! gobgpd dead, site B's guard still counted A and withdrew the last path): while `visible`
//! says no (gobgpd unusable, or no BGP session established) the task deletes this site's
//! claims from etcd, and puts them back when it says yes again.
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Compare, CompareOp, ConnectOptions, PutOptions, Txn, TxnOp, TxnOpResponse};
use ipnet::IpNet;
use metrics::Gauge;
use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use super::decision::{Decision, Held, HeldReason, Release};
use super::etcd::{Etcd, EtcdError};
use super::guard::{self, Claim, ClaimState, Keys, Outcome, instance_id};
use super::view::{FleetStatus, FleetView, PrefixView};
use crate::config::fleet::{FleetConfig, OnUnreachable};
use crate::duration::Dur;
use crate::metrics::{Metrics, names};

/// Transactions a guarded release tries while other sites release the same prefix at the
/// same moment; each lost one means another site's release went through, so with fewer
/// concurrent releasers than this it always ends in Released or TooFew.
const MAX_TRIES: u32 = 8;
/// Claims put in one transaction (etcd allows 128 operations per transaction by default).
const PUTS_PER_TXN: usize = 64;

/// Why the fleet could not be set up, or etcd not asked.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("etcd did not answer within {0} (fleet.etcd.timeout)")]
    Timeout(Dur),
    #[error(transparent)]
    Etcd(#[from] EtcdError),
    #[error("fleet.etcd.{field}: cannot read {}: {source}", path.display())]
    File {
        field: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Why no router sees this site's routes now (`None`: one does), as the daemon follows
/// gobgpd and its sessions.
pub type Sight = watch::Receiver<Option<String>>;

/// The handle on this site's claims. Cheap to clone.
#[derive(Clone)]
pub struct Claims {
    inner: Arc<Inner>,
}

struct Inner {
    site: String,
    instance: String,
    keys: Keys,
    min_sites: u32,
    on_unreachable: OnUnreachable,
    timeout: Duration,
    lease_ttl: Duration,
    /// What the announcer told us: the prefixes this site announces and what their claims
    /// should say. Changed at the start of each call, never held across an await.
    wanted: Mutex<BTreeMap<IpNet, ClaimState>>,
    /// Why no router sees this site's routes (gobgpd unusable, no BGP session
    /// established); `None` while one does. Its claims count only then.
    unseen: Mutex<Option<String>>,
    /// The etcd side. Every write of our claims happens under this lock and follows `wanted`
    /// as it is at that moment, so a background repair can never put back a claim that a
    /// release has just removed.
    session: tokio::sync::Mutex<Session>,
    view: watch::Sender<FleetView>,
    gauges: Gauges,
}

struct Session {
    etcd: Etcd,
    lease: Option<i64>,
    /// We own `{prefix}sites/{site}` under the current lease.
    owns_site: bool,
    /// What the last whole tick read etcd at and worked from.
    last: Option<Quiet>,
}

/// What a tick works from: the store's revision, the claims this site wants, whether a
/// router sees it, and whether it owns its site name. A tick that finds the same as the
/// last whole one has nothing to read, repair or publish: with 20,000 claims, reading them
/// all every `lease_ttl / 3` cost most of 5.8 % of a core while nothing changed
/// (BENCHMARKS.md, "Many prefixes" with a fleet guard).
#[derive(Debug, Clone, PartialEq)]
struct Quiet {
    revision: i64,
    wanted: BTreeMap<IpNet, ClaimState>,
    counting: bool,
    owns_site: bool,
}

struct Gauges {
    metrics: Metrics,
    up: Gauge,
    duplicate: Gauge,
    /// `(sites, held)` per prefix.
    prefixes: Mutex<BTreeMap<IpNet, (Gauge, Gauge)>>,
}

impl Gauges {
    fn prefix(&self, p: IpNet, f: impl FnOnce(&Gauge, &Gauge)) {
        if let Ok(mut m) = self.prefixes.lock() {
            let (sites, held) = m.entry(p).or_insert_with(|| {
                let label = p.to_string();
                (
                    self.metrics
                        .gauge(names::FLEET_SITES, &[("prefix", label.as_str())]),
                    self.metrics
                        .gauge(names::FLEET_HELD, &[("prefix", label.as_str())]),
                )
            });
            f(sites, held);
        }
    }
}

impl Claims {
    /// Prepares the fleet of site `site` for `prefixes` (this site's configured prefixes:
    /// their metrics and view exist from the start) and returns the handle and the fleet
    /// task, which the caller spawns; it ends after `shutdown` turns true, having revoked
    /// the lease (every claim of this site goes at once). Reads the password and TLS files
    /// now; etcd itself is first asked by the task or the first call, whichever comes first,
    /// so an unreachable etcd never keeps the daemon from starting.
    pub fn start(
        cfg: &FleetConfig,
        site: String,
        prefixes: impl IntoIterator<Item = IpNet>,
        metrics: &Metrics,
        shutdown: watch::Receiver<bool>,
        sight: Sight,
    ) -> Result<(Claims, impl Future<Output = ()> + Send + 'static), FleetError> {
        let e = &cfg.etcd;
        let timeout = e.timeout.0;
        let options = connect_options(e)?;
        let up = metrics.gauge(names::FLEET_UP, &[]);
        up.set(0.0);
        let duplicate = metrics.gauge(names::FLEET_DUPLICATE_SITE, &[]);
        duplicate.set(0.0);
        let gauges = Gauges {
            metrics: metrics.clone(),
            up,
            duplicate,
            prefixes: Mutex::new(BTreeMap::new()),
        };
        let mut view = FleetView {
            site: site.clone(),
            min_sites: cfg.min_sites,
            on_unreachable: cfg.on_unreachable,
            up: false,
            error: None,
            unseen: sight.borrow().clone(),
            duplicate: None,
            prefixes: BTreeMap::new(),
        };
        for p in prefixes {
            view.prefixes.insert(p, PrefixView::default());
            gauges.prefix(p, |s, h| {
                s.set(0.0);
                h.set(0.0);
            });
        }
        // One member that hangs must leave time to ask the others within one timeout.
        let endpoints: Vec<String> = e.endpoints.iter().map(|u| u.trim().to_string()).collect();
        let attempt = (timeout / endpoints.len().max(1) as u32)
            .max(Duration::from_millis(200))
            .min(timeout);
        let etcd = Etcd::new(endpoints, options, attempt);
        let inner = Arc::new(Inner {
            instance: instance_id(),
            site,
            keys: Keys::new(&e.prefix),
            min_sites: cfg.min_sites,
            on_unreachable: cfg.on_unreachable,
            timeout,
            lease_ttl: cfg.lease_ttl.0,
            wanted: Mutex::new(BTreeMap::new()),
            unseen: Mutex::new(sight.borrow().clone()),
            session: tokio::sync::Mutex::new(Session {
                etcd,
                lease: None,
                owns_site: false,
                last: None,
            }),
            view: watch::channel(view).0,
            gauges,
        });
        let task = inner.clone().run(shutdown, sight);
        Ok((Claims { inner }, task))
    }

    /// This site's name in the fleet.
    pub fn site(&self) -> &str {
        &self.inner.site
    }

    /// This process's instance id (the value that marks its claims and site key).
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// Follows the fleet as this site sees it.
    pub fn view(&self) -> watch::Receiver<FleetView> {
        self.inner.view.subscribe()
    }

    /// The fleet part of the status document.
    pub fn status(&self) -> FleetStatus {
        self.inner.view.borrow().status()
    }

    /// This site announces `prefix` and its services are healthy: put (or refresh) its
    /// claim. Call it after the prefix is announced (a claim must never run ahead of the
    /// announcement, or other sites would count one that is not there), and again when a
    /// held prefix's services recover. An error means etcd could not be told now; the
    /// fleet task puts the claim as soon as it can, so the caller only logs it.
    pub async fn claim(&self, prefix: IpNet) -> Result<(), FleetError> {
        self.claim_all(&[prefix]).await
    }

    /// [`Claims::claim`] for many prefixes at once, in transactions of `PUTS_PER_TXN`
    /// claims. A site claims every prefix it announces when it starts: 20,000 claims put
    /// one by one (each waiting for the session, most timing out and put again by the
    /// fleet task one at a time, with a WARN each) took the first minute of a site's life
    /// (BENCHMARKS.md, "Many prefixes" with a fleet guard).
    pub async fn claim_all(&self, prefixes: &[IpNet]) -> Result<(), FleetError> {
        if prefixes.is_empty() {
            return Ok(());
        }
        let inner = &self.inner;
        let r = inner
            .bounded(async {
                let mut s = inner.session.lock().await;
                // Wanted only now, under the session: the fleet task, which repairs what
                // is wanted and not in etcd, never sees these before they are put; and
                // its view of the claims read before is published before this one.
                inner.want_all(prefixes, Some(ClaimState::Up));
                inner.local_views(prefixes, Some(ClaimState::Up), false);
                let lease = inner.ensure(&mut s).await?;
                if s.owns_site && inner.counting() {
                    let claims: Vec<_> = prefixes.iter().map(|p| (*p, ClaimState::Up)).collect();
                    inner.put_claims(&mut s.etcd, lease, &claims).await?;
                }
                Ok(())
            })
            .await;
        if r.is_err() {
            // Wanted all the same: the fleet task puts them as soon as it can.
            inner.want_all(prefixes, Some(ClaimState::Up));
            inner.local_views(prefixes, Some(ClaimState::Up), false);
        }
        inner.reached(&r);
        r
    }

    /// The services of `prefix` failed (or an operator drains it without `--force`): may
    /// this site withdraw it? Never takes longer than `fleet.etcd.timeout`.
    ///
    /// `Released`: the claim is gone (or etcd is unreachable and `on_unreachable` is
    /// `withdraw`): withdraw now. `Held`: keep announcing with the `degraded` attributes,
    /// log it at ERROR, and call again next round; the claim now says `held`. Call
    /// [`Fleet::claim`] when the services recover.
    pub async fn release_guarded(&self, prefix: IpNet) -> Decision {
        let inner = &self.inner;
        let r = inner.bounded(inner.release(prefix)).await;
        inner.reached(&r);
        let decision = inner.decide(prefix, r);
        match &decision {
            Decision::Released(_) => inner.local_view(prefix, None, false),
            Decision::Held(_) => inner.local_view(prefix, Some(ClaimState::Held), true),
        }
        decision
    }

    /// Drop the claim without the guard: `drain --force`, shutdown, a prefix removed by a
    /// reload, gobgpd lost. An error means etcd could not be told now; the fleet task
    /// deletes the claim as soon as it can (or the lease expires).
    pub async fn release_forced(&self, prefix: IpNet) -> Result<(), FleetError> {
        self.release_all_forced(&[prefix]).await
    }

    /// [`Claims::release_forced`] for many prefixes at once, in transactions of
    /// `PUTS_PER_TXN` deletes (a reload that removes a service of 100 routes).
    pub async fn release_all_forced(&self, prefixes: &[IpNet]) -> Result<(), FleetError> {
        if prefixes.is_empty() {
            return Ok(());
        }
        let inner = &self.inner;
        inner.want_all(prefixes, None);
        inner.local_views(prefixes, None, false);
        let r = inner
            .bounded(async {
                let mut s = inner.session.lock().await;
                inner.ensure(&mut s).await?;
                if s.owns_site {
                    inner.delete_claims(&mut s.etcd, prefixes).await?;
                }
                Ok(())
            })
            .await;
        inner.reached(&r);
        r
    }
}

/// How the etcd client connects: keep-alive pings find a dead connection (a member that
/// vanished without a RST) before the next call has to wait for it; a member without a
/// leader answers at once instead of letting writes wait for the timeout; the user and TLS
/// of the config (the files read now).
fn connect_options(e: &crate::config::fleet::EtcdConfig) -> Result<ConnectOptions, FleetError> {
    let timeout = e.timeout.0;
    let mut options = ConnectOptions::new()
        .with_keep_alive(timeout.max(Duration::from_secs(1)), timeout)
        .with_require_leader(true);
    if let (Some(user), Some(file)) = (&e.user, &e.password_file) {
        let password = read_file("password_file", file)?;
        options = options.with_user(user.clone(), trim_newline(&password));
    }
    if let Some(tls) = &e.tls {
        let mut t = etcd_client::TlsOptions::new();
        t = match &tls.ca_file {
            Some(ca) => t.ca_certificate(etcd_client::Certificate::from_pem(read_file(
                "tls.ca_file",
                ca,
            )?)),
            None => t.with_native_roots(),
        };
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            t = t.identity(etcd_client::Identity::from_pem(
                read_file("tls.cert_file", cert)?,
                read_file("tls.key_file", key)?,
            ));
        }
        options = options.with_tls(t);
    } else if e.endpoints.iter().any(|u| u.starts_with("https://")) {
        options = options.with_tls(etcd_client::TlsOptions::new().with_native_roots());
    }
    Ok(options)
}

fn read_file(field: &'static str, path: &Path) -> Result<Vec<u8>, FleetError> {
    std::fs::read(path).map_err(|source| FleetError::File {
        field,
        path: path.to_path_buf(),
        source,
    })
}

fn trim_newline(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches(['\r', '\n'])
        .to_string()
}

impl Inner {
    /// Runs `f` within `fleet.etcd.timeout`, waiting for the session lock included.
    async fn bounded<T>(
        &self,
        f: impl Future<Output = Result<T, FleetError>>,
    ) -> Result<T, FleetError> {
        tokio::time::timeout(self.timeout, f)
            .await
            .unwrap_or(Err(FleetError::Timeout(Dur(self.timeout))))
    }

    /// The guarded release of `prefix` in etcd (the guard's transaction), and the claim in
    /// step with it: gone when released, saying `held` otherwise.
    async fn release(&self, prefix: IpNet) -> Result<Outcome, FleetError> {
        let mut s = self.session.lock().await;
        let lease = self.ensure(&mut s).await?;
        let owns_site = s.owns_site;
        let outcome = guard::release(
            &mut s.etcd,
            &self.keys,
            prefix,
            &self.site,
            &self.instance,
            owns_site,
            self.min_sites,
            MAX_TRIES,
        )
        .await?;
        match &outcome {
            // Under the session lock: the fleet task cannot put the claim back.
            Outcome::Released { .. } => self.want(prefix, None),
            Outcome::TooFew { snapshot, .. } | Outcome::Contended { snapshot, .. } => {
                self.want(prefix, Some(ClaimState::Held));
                // Once per hold, not every round: the read showed what the claim says.
                let said_held = snapshot
                    .own
                    .as_ref()
                    .and_then(Option::as_ref)
                    .is_some_and(|c| c.state == ClaimState::Held && c.instance == self.instance);
                if owns_site && !said_held && self.counting() {
                    self.put_claims(&mut s.etcd, lease, &[(prefix, ClaimState::Held)])
                        .await?;
                }
            }
        }
        Ok(outcome)
    }

    /// What a guarded release of `prefix` that ended in `r` means for the announcer; etcd
    /// out of reach decides by `on_unreachable`.
    fn decide(&self, prefix: IpNet, r: Result<Outcome, FleetError>) -> Decision {
        let held = |others: Vec<String>, reason| {
            Decision::Held(Held {
                prefix,
                others,
                min_sites: self.min_sites,
                reason,
            })
        };
        match r {
            Ok(Outcome::Released { others, tries }) => {
                Decision::Released(Release::Guarded { others, tries })
            }
            Ok(Outcome::TooFew { snapshot, .. }) => {
                held(snapshot.other_sites(), HeldReason::TooFewSites)
            }
            Ok(Outcome::Contended { snapshot, tries }) => {
                held(snapshot.other_sites(), HeldReason::Contended { tries })
            }
            Err(e) => {
                let error = e.to_string();
                match self.on_unreachable {
                    OnUnreachable::Hold => {
                        self.want(prefix, Some(ClaimState::Held));
                        held(Vec::new(), HeldReason::Unreachable { error })
                    }
                    OnUnreachable::Withdraw => {
                        self.want(prefix, None);
                        Decision::Released(Release::Unreachable { error })
                    }
                }
            }
        }
    }

    /// Whether this site's claims count: a router sees its routes.
    fn counting(&self) -> bool {
        self.unseen.lock().map(|u| u.is_none()).unwrap_or(true)
    }

    /// The claims etcd should hold for this site: what the announcer said, while a router
    /// sees its routes; none otherwise.
    fn effective(&self) -> BTreeMap<IpNet, ClaimState> {
        if self.counting() {
            self.wanted()
        } else {
            BTreeMap::new()
        }
    }

    fn want(&self, prefix: IpNet, state: Option<ClaimState>) {
        self.want_all(&[prefix], state);
    }

    fn want_all(&self, prefixes: &[IpNet], state: Option<ClaimState>) {
        if let Ok(mut w) = self.wanted.lock() {
            for prefix in prefixes {
                match state {
                    Some(s) => w.insert(*prefix, s),
                    None => w.remove(prefix),
                };
            }
        }
    }

    fn wanted(&self) -> BTreeMap<IpNet, ClaimState> {
        self.wanted.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// Records whether etcd answered.
    fn reached<T>(&self, r: &Result<T, FleetError>) {
        let up = r.is_ok();
        self.gauges.up.set(if up { 1.0 } else { 0.0 });
        self.view.send_if_modified(|v| {
            let changed = v.up != up;
            v.up = up;
            changed
        });
    }

    /// Shows our own change in the view at once (the fleet task confirms it from etcd).
    /// The gauges change before the view is published: whoever sees the view sees them.
    fn local_view(&self, prefix: IpNet, ours: Option<ClaimState>, held: bool) {
        self.local_views(&[prefix], ours, held);
    }

    /// [`Inner::local_view`] of many prefixes, in one change of the view.
    fn local_views(&self, prefixes: &[IpNet], ours: Option<ClaimState>, held: bool) {
        let counting = self.counting();
        self.view.send_modify(|v| {
            let duplicate = v.duplicate.is_some() || !counting;
            for prefix in prefixes {
                let p = v.prefixes.entry(*prefix).or_default();
                match ours {
                    Some(s) if !duplicate => {
                        p.sites.insert(self.site.clone(), Some(s));
                    }
                    _ => {
                        p.sites.remove(&self.site);
                    }
                }
                p.held = held;
                self.set_gauges(*prefix, p);
            }
        });
    }

    fn set_gauges(&self, prefix: IpNet, p: &PrefixView) {
        self.gauges.prefix(prefix, |s, h| {
            s.set(p.sites.len() as f64);
            h.set(if p.held { 1.0 } else { 0.0 });
        });
    }

    /// A live lease (its id), our site name, and our claims put under the lease (when the
    /// lease or the name is new).
    async fn ensure(&self, s: &mut Session) -> Result<i64, FleetError> {
        let lease = match s.lease {
            Some(id) => id,
            None => {
                let ttl = self.lease_ttl.as_secs() as i64;
                let id = s.etcd.grant(ttl).await?;
                info!(site = %self.site, lease = format!("{id:x}"), ttl, "fleet: etcd lease granted");
                s.lease = Some(id);
                s.owns_site = false;
                id
            }
        };
        if !s.owns_site {
            self.acquire_site(s, lease).await?;
            if s.owns_site {
                self.put_all(&mut s.etcd, lease).await?;
            }
        }
        Ok(lease)
    }

    /// Takes `{prefix}sites/{site}` for this instance, unless another one holds it.
    async fn acquire_site(&self, s: &mut Session, lease: i64) -> Result<(), FleetError> {
        let key = self.keys.site(&self.site);
        let put = || {
            TxnOp::put(
                key.clone(),
                self.instance.clone(),
                Some(PutOptions::new().with_lease(lease)),
            )
        };
        let resp = s
            .etcd
            .txn(
                Txn::new()
                    .when(vec![Compare::version(key.clone(), CompareOp::Equal, 0)])
                    .and_then(vec![put()])
                    .or_else(vec![TxnOp::get(key.clone(), None)]),
            )
            .await?;
        let holder = if resp.succeeded() {
            None
        } else {
            let value = resp
                .op_responses()
                .iter()
                .find_map(|r| match r {
                    TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
                    _ => None,
                })
                .unwrap_or_default();
            let value = String::from_utf8_lossy(&value).into_owned();
            if value == self.instance {
                // Ours, under a lease we gave up on (it may still be alive): move it over.
                let moved = s
                    .etcd
                    .txn(
                        Txn::new()
                            .when(vec![Compare::value(
                                key.clone(),
                                CompareOp::Equal,
                                self.instance.clone(),
                            )])
                            .and_then(vec![put()]),
                    )
                    .await?;
                (!moved.succeeded()).then_some(value)
            } else {
                Some(value)
            }
        };
        s.owns_site = holder.is_none();
        let duplicate = holder.map(|other| {
            format!(
                "site name {:?} is held in etcd by another anycastd (instance {other}); this one (instance {}) does not claim until that one stops: give each daemon its own fleet.site (a previous run of this daemon that did not stop cleanly lets go within lease_ttl)",
                self.site, self.instance
            )
        });
        self.gauges
            .duplicate
            .set(if duplicate.is_some() { 1.0 } else { 0.0 });
        let changed = self.view.send_if_modified(|v| {
            let changed = v.duplicate != duplicate;
            v.duplicate = duplicate.clone();
            changed
        });
        match (&duplicate, changed) {
            (Some(d), true) => error!(site = %self.site, "fleet: {d}"),
            (None, true) => {
                warn!(site = %self.site, "fleet: site name is ours again; claiming")
            }
            (None, false) => {
                debug!(site = %self.site, instance = %self.instance, "fleet: site name taken")
            }
            (Some(_), false) => {}
        }
        Ok(())
    }

    /// Puts every wanted claim (a new lease, or our site name regained).
    async fn put_all(&self, etcd: &mut Etcd, lease: i64) -> Result<(), FleetError> {
        let wanted: Vec<(IpNet, ClaimState)> = self.effective().into_iter().collect();
        self.put_claims(etcd, lease, &wanted).await?;
        if !wanted.is_empty() {
            info!(site = %self.site, claims = wanted.len(), "fleet: claims put under the lease");
        }
        Ok(())
    }

    /// Deletes this site's claims of `prefixes`, `PUTS_PER_TXN` to a transaction.
    async fn delete_claims(&self, etcd: &mut Etcd, prefixes: &[IpNet]) -> Result<(), FleetError> {
        for chunk in prefixes.chunks(PUTS_PER_TXN) {
            let ops: Vec<TxnOp> = chunk
                .iter()
                .map(|p| TxnOp::delete(self.keys.claim(p, &self.site), None))
                .collect();
            etcd.txn(Txn::new().and_then(ops)).await?;
        }
        Ok(())
    }

    /// Puts `claims` under `lease`, `PUTS_PER_TXN` to a transaction.
    async fn put_claims(
        &self,
        etcd: &mut Etcd,
        lease: i64,
        claims: &[(IpNet, ClaimState)],
    ) -> Result<(), FleetError> {
        for chunk in claims.chunks(PUTS_PER_TXN) {
            let ops: Vec<TxnOp> = chunk
                .iter()
                .map(|(p, state)| {
                    let claim = Claim {
                        instance: self.instance.clone(),
                        state: *state,
                    };
                    TxnOp::put(
                        self.keys.claim(p, &self.site),
                        claim.to_json(),
                        Some(PutOptions::new().with_lease(lease)),
                    )
                })
                .collect();
            etcd.txn(Txn::new().and_then(ops)).await?;
        }
        Ok(())
    }
}

mod task;
