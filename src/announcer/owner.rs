//! One owner per gobgpd: the mark by which an anycastd says "this gobgpd is mine".
//!
//! Two anycastd driving one gobgpd fight: each replaces the other's paths and peer settings
//! at every reconcile, and the routers see the prefix flap (issue 10: 17 changes at the
//! router in 40 s, a BGP session that never came up). GoBGP's API has no place for
//! arbitrary data, but it has *defined sets*: named lists that policies may refer to and
//! that do nothing by themselves. anycastd keeps its mark in the community set
//! `anycastd-owner`, one entry per instance:
//!
//! ```text
//! anycastd id=5f1c0e2a9d3b7c41 host=fra1 pid=812 since=1764513600 at=1764514200 refresh=5
//! ```
//!
//! (`gobgp policy community` shows it; no policy uses it, so routing is unchanged.) An
//! instance refreshes its entry (`at`) at every reconcile. An entry is *live* while
//! `at + 3 × refresh + 10 s` has not passed. Before touching anything, an instance reads
//! the set: if another instance's entry is live and older (`since`, then `id`), this one
//! does not touch gobgpd, says so (ERROR log, `/status`, `anycastd_gobgp_owner_conflict` 1) and
//! looks again after a backoff; it takes over once the owner's entry goes stale (the owner
//! died) or disappears (it shut down, which removes its entry). A gobgpd restart forgets
//! the set, like everything else, and the owner writes it again.
//!
//! Anyone who can reach gobgpd's API can write to the set, so a mark is believed only as far
//! as it behaves like a live anycastd's (issue 20: one forged entry, `at` far in the future,
//! made an owner stand down for good while a killed service's route stayed at the router):
//! - a mark whose `at` or `since` lies in the future (beyond [`CLOCK_SLACK`]), or whose
//!   `refresh` is 0 or above [`MAX_REFRESH`], is garbage, removed by the owner;
//! - a mark whose `at` has not moved for as long as its own liveness window, by this
//!   instance's clock, is stale whatever its `at` says;
//! - a mark that appears while this instance owns gobgpd is not yielded to until its `at` is
//!   seen advancing (a real anycastd refreshes at every reconcile).

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The name of the community set holding the marks.
pub const SET_NAME: &str = "anycastd-owner";

/// How far in the future a mark's times may lie (clocks of two hosts sharing one gobgpd
/// differ a little) before the mark is garbage.
pub const CLOCK_SLACK: u64 = 60;

/// The longest refresh period a real mark has: anycastd refreshes at every reconcile, and
/// `reconcile_interval` is at most this (config.rs).
pub const MAX_REFRESH: u64 = 3600;

/// One instance's mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// Random per process.
    pub id: u64,
    pub host: String,
    pub pid: u32,
    /// When this instance took gobgpd (seconds since the epoch).
    pub since: u64,
    /// When it last refreshed its mark.
    pub at: u64,
    /// How often it refreshes, in seconds.
    pub refresh: u64,
}

impl Mark {
    /// The mark of this process, taking ownership now.
    pub fn new(refresh: Duration) -> Mark {
        let now = unix_now();
        Mark {
            id: instance_id(),
            host: hostname(),
            pid: std::process::id(),
            since: now,
            at: now,
            refresh: refresh.as_secs().max(1),
        }
    }

    /// The same mark, refreshed at `now`.
    pub fn refreshed(&self, now: u64) -> Mark {
        Mark {
            at: now,
            ..self.clone()
        }
    }

    /// How long after its last refresh a mark stays live: three refreshes and 10 s.
    pub fn window(&self) -> u64 {
        self.refresh.saturating_mul(3).saturating_add(10)
    }

    /// Whether the instance behind it is still there, as far as its refreshes say.
    pub fn is_live(&self, now: u64) -> bool {
        now <= self.at.saturating_add(self.window())
    }

    /// Whether no anycastd could have written it at `now`: times in the future, or a
    /// refresh period anycastd never uses.
    pub fn is_garbage(&self, now: u64) -> bool {
        let future = now.saturating_add(CLOCK_SLACK);
        self.at > future || self.since > future || self.refresh == 0 || self.refresh > MAX_REFRESH
    }

    /// Whether `self` takes precedence over `other`: the older owner, then the lower id.
    pub fn wins_over(&self, other: &Mark) -> bool {
        (self.since, self.id) < (other.since, other.id)
    }

    /// The set entry. It is a valid RE2 expression, as GoBGP requires of community sets.
    pub fn entry(&self) -> String {
        format!(
            "anycastd id={:016x} host={} pid={} since={} at={} refresh={}",
            self.id, self.host, self.pid, self.since, self.at, self.refresh
        )
    }

    /// Reads an entry; `None` for anything anycastd did not write.
    pub fn parse(entry: &str) -> Option<Mark> {
        let rest = entry.strip_prefix("anycastd ")?;
        let mut m = Mark {
            id: 0,
            host: String::new(),
            pid: 0,
            since: 0,
            at: 0,
            refresh: 0,
        };
        for kv in rest.split(' ') {
            let (k, v) = kv.split_once('=')?;
            match k {
                "id" => m.id = u64::from_str_radix(v, 16).ok()?,
                "host" => m.host = v.to_string(),
                "pid" => m.pid = v.parse().ok()?,
                "since" => m.since = v.parse().ok()?,
                "at" => m.at = v.parse().ok()?,
                "refresh" => m.refresh = v.parse().ok()?,
                _ => {}
            }
        }
        (m.id != 0).then_some(m)
    }
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "anycastd pid {} on {} (instance {:016x}), owner since {}",
            self.pid,
            self.host,
            self.id,
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(self.since))
        )
    }
}

/// What an instance should do, given the entries of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// gobgpd is ours: write `add` (our refreshed mark), then remove `remove` (our old
    /// entries, entries of instances that are gone, and garbage). `doubted`: marks that
    /// would take precedence but are not believed (yet), for the log.
    Own {
        add: String,
        remove: Vec<String>,
        doubted: Vec<(Mark, Doubt)>,
    },
    /// Another live instance owns gobgpd: touch nothing.
    Yield { owner: Mark },
}

/// Why a mark that would take precedence is not yielded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doubt {
    /// It appeared while this instance owned gobgpd, and its refreshes have not been seen
    /// advancing since.
    AppearedWhileOwned,
}

impl fmt::Display for Doubt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Doubt::AppearedWhileOwned => f.write_str(
                "it appeared while this anycastd owned gobgpd and has not been refreshed since",
            ),
        }
    }
}

/// What this instance has seen of the other marks in the set.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// The `at` it carried when last looked at, and since when (this instance's clock) it
    /// has carried it.
    at: u64,
    at_since: Instant,
    /// Whether its `at` has moved since it was first seen.
    advanced: bool,
    /// Whether it first appeared while this instance owned gobgpd.
    appeared_while_owned: bool,
}

/// This instance's side of the ownership: its mark, whether it owns gobgpd, and what it has
/// seen of the others' marks (to tell a live anycastd's mark from a forged or dead one).
#[derive(Debug, Clone)]
pub struct Owner {
    pub mark: Mark,
    owns: bool,
    seen: HashMap<u64, Seen>,
}

impl Owner {
    pub fn new(mark: Mark) -> Owner {
        Owner {
            mark,
            owns: false,
            seen: HashMap::new(),
        }
    }

    /// Whether this instance owned gobgpd at its last look.
    pub fn owns(&self) -> bool {
        self.owns
    }

    /// Decides from the set's entries (as gobgpd lists them) at `now` (seconds since the
    /// epoch) and `clock` (this instance's monotonic clock). `gone` tells a mark whose
    /// process is known to be dead (see [`gone_here`]) from one that may be alive.
    pub fn decide(
        &mut self,
        entries: &[String],
        now: u64,
        clock: Instant,
        gone: impl Fn(&Mark) -> bool,
    ) -> Verdict {
        let mut remove = Vec::new();
        let mut doubted = Vec::new();
        let mut owner: Option<Mark> = None;
        let mut present = Vec::new();
        for e in entries {
            let m = match Mark::parse(e) {
                Some(m) if m.id == self.mark.id => {
                    remove.push(e.clone());
                    continue;
                }
                Some(m) if !m.is_garbage(now) => m,
                // Something anycastd did not write, or could not have: tidied away by the
                // owner.
                _ => {
                    remove.push(e.clone());
                    continue;
                }
            };
            present.push(m.id);
            let seen = self.sighting(&m, clock);
            let stuck =
                clock.saturating_duration_since(seen.at_since) > Duration::from_secs(m.window());
            if !m.is_live(now) || stuck || gone(&m) {
                // Its instance died (or never refreshed while watched).
                remove.push(e.clone());
                continue;
            }
            if !m.wins_over(&self.mark) {
                continue;
            }
            if seen.appeared_while_owned && !seen.advanced {
                doubted.push((m, Doubt::AppearedWhileOwned));
                continue;
            }
            if owner.as_ref().is_none_or(|o| m.wins_over(o)) {
                owner = Some(m);
            }
        }
        self.seen.retain(|id, _| present.contains(id));
        match owner {
            Some(owner) => {
                self.owns = false;
                Verdict::Yield { owner }
            }
            None => {
                self.owns = true;
                let add = self.mark.refreshed(now).entry();
                remove.retain(|e| *e != add);
                Verdict::Own {
                    add,
                    remove,
                    doubted,
                }
            }
        }
    }

    /// Notes that `m` is in the set at `clock`; what has been seen of it so far.
    fn sighting(&mut self, m: &Mark, clock: Instant) -> Seen {
        let owns = self.owns;
        let seen = self.seen.entry(m.id).or_insert(Seen {
            at: m.at,
            at_since: clock,
            advanced: false,
            appeared_while_owned: owns,
        });
        if m.at != seen.at {
            seen.advanced |= m.at > seen.at;
            seen.at = m.at;
            seen.at_since = clock;
        }
        *seen
    }
}

/// Whether the process behind `other` is known to be dead: it ran on this host, and its pid
/// is gone or is this process's own (a restarted container gets the same pid). Without
/// this, an anycastd restarted after a crash would wait for its predecessor's mark to go
/// stale before repairing gobgpd.
pub fn gone_here(mine: &Mark, other: &Mark) -> bool {
    other.host == mine.host && (other.pid == mine.pid || !process_exists(other.pid))
}

/// Whether a process with this pid exists. Asked with `kill(pid, 0)`, not through /proc:
/// under systemd's `ProtectProc=invisible` another user's process is not in /proc, and
/// would look gone. "Not permitted" means it exists.
fn process_exists(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A random 64-bit id: std's hasher keys are random per process.
fn instance_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u64(unix_now());
    h.finish().max(1)
}

/// The host's name, as a mark can carry it (no spaces or `=`).
fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(64)
        .collect();
    if clean.is_empty() {
        "unknown".to_string()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(id: u64, since: u64, at: u64) -> Mark {
        Mark {
            id,
            host: "h".into(),
            pid: 1,
            since,
            at,
            refresh: 5,
        }
    }

    #[test]
    fn entries_round_trip() {
        let m = mark(0xabc, 100, 200);
        assert_eq!(Mark::parse(&m.entry()), Some(m));
        assert_eq!(Mark::parse("65000:100"), None);
        assert_eq!(Mark::parse("anycastd id=zz"), None);
    }

    fn owner(id: u64, since: u64) -> Owner {
        Owner::new(mark(id, since, since))
    }

    fn t0() -> Instant {
        Instant::now()
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn an_empty_set_is_taken() {
        let mut me = owner(7, 100);
        assert_eq!(
            me.decide(&[], 150, t0(), |_| false),
            Verdict::Own {
                add: me.mark.refreshed(150).entry(),
                remove: vec![],
                doubted: vec![],
            }
        );
        assert!(me.owns());
    }

    #[test]
    fn a_live_older_owner_is_left_alone() {
        let mut me = owner(7, 1000);
        let other = mark(9, 500, 995);
        let t = t0();
        assert_eq!(
            me.decide(&[other.entry()], 1000, t, |_| false),
            Verdict::Yield {
                owner: other.clone()
            }
        );
        assert!(!me.owns());
        // Until it stops refreshing: 3 × 5 s + 10 s after its last refresh.
        assert_eq!(
            me.decide(&[other.entry()], 1020, t + secs(20), |_| false),
            Verdict::Yield {
                owner: other.clone()
            }
        );
        let Verdict::Own { remove, .. } =
            me.decide(&[other.entry()], 1021, t + secs(21), |_| false)
        else {
            panic!("a stale owner is replaced")
        };
        assert_eq!(remove, [other.entry()]);
    }

    #[test]
    fn a_refreshing_owner_is_left_alone_for_good() {
        let mut me = owner(7, 1000);
        let t = t0();
        for i in 0..20 {
            let other = mark(9, 500, 1000 + i * 5);
            assert!(matches!(
                me.decide(&[other.entry()], 1000 + i * 5, t + secs(i * 5), |_| false),
                Verdict::Yield { .. }
            ));
        }
    }

    #[test]
    fn a_mark_from_the_future_is_garbage() {
        // Issue 20: `at=9999999999` kept the owner standing down for good.
        let mut me = owner(7, 1000);
        let forged = Mark {
            host: "evil".into(),
            ..mark(1, 1, 9_999_999_999)
        };
        let Verdict::Own { remove, .. } = me.decide(&[forged.entry()], 1000, t0(), |_| false)
        else {
            panic!("a mark from the future is not an owner")
        };
        assert_eq!(remove, [forged.entry()]);
        for bad in [
            Mark {
                since: 2000,
                ..mark(1, 0, 1000)
            },
            Mark {
                refresh: 0,
                ..mark(1, 1, 1000)
            },
            Mark {
                refresh: MAX_REFRESH + 1,
                ..mark(1, 1, 1000)
            },
        ] {
            assert!(bad.is_garbage(1000), "{bad:?}");
        }
        // A clock a little ahead is not garbage.
        assert!(!mark(1, 1, 1000 + CLOCK_SLACK).is_garbage(1000));
    }

    #[test]
    fn a_mark_that_appears_while_owning_is_believed_only_once_it_advances() {
        let mut me = owner(7, 1000);
        let t = t0();
        assert!(matches!(
            me.decide(&[], 1000, t, |_| false),
            Verdict::Own { .. }
        ));
        // Older, live by its own word: forged with one call.
        let forged = mark(1, 1, 1001);
        for i in 1..30 {
            let Verdict::Own {
                doubted, remove, ..
            } = me.decide(&[forged.entry()], 1000 + i, t + secs(i), |_| false)
            else {
                panic!("gave gobgpd up to a mark that never moved ({i} s)")
            };
            if remove.is_empty() {
                assert_eq!(doubted, [(forged.clone(), Doubt::AppearedWhileOwned)]);
            } else {
                // Then it is stale by this instance's clock, and removed.
                assert_eq!(remove, [forged.entry()]);
            }
        }
        // A real, older anycastd (gobgpd restarted, and this one wrote first) refreshes:
        // once its mark is seen advancing, it is the owner.
        let mut me = owner(7, 1000);
        assert!(matches!(
            me.decide(&[], 1000, t, |_| false),
            Verdict::Own { .. }
        ));
        let real = mark(1, 500, 1001);
        assert!(matches!(
            me.decide(&[real.entry()], 1001, t + secs(1), |_| false),
            Verdict::Own { .. }
        ));
        let refreshed = real.refreshed(1006);
        assert_eq!(
            me.decide(&[refreshed.entry()], 1006, t + secs(6), |_| false),
            Verdict::Yield { owner: refreshed }
        );
    }

    #[test]
    fn a_mark_that_never_moves_goes_stale_by_this_clock() {
        // Not owning yet: a mark that claims a far `at` within the slack and never moves is
        // believed only for its window, measured here.
        let mut me = owner(7, 1000);
        let t = t0();
        let other = mark(1, 1, 1000 + CLOCK_SLACK);
        assert!(matches!(
            me.decide(&[other.entry()], 1000, t, |_| false),
            Verdict::Yield { .. }
        ));
        assert!(matches!(
            me.decide(&[other.entry()], 1026, t + secs(26), |_| false),
            Verdict::Own { .. }
        ));
    }

    #[test]
    fn a_dead_predecessor_on_this_host_is_replaced_at_once() {
        let mut me = Owner::new(Mark::new(Duration::from_secs(5)));
        let mine = me.mark.clone();
        let dead = Mark {
            id: 9,
            since: 1,
            pid: u32::MAX,
            ..mine.clone()
        };
        assert!(gone_here(&mine, &dead));
        let now = mine.at;
        let dead = Mark { at: now, ..dead };
        assert!(matches!(
            me.decide(&[dead.entry()], now, t0(), |m| gone_here(&mine, m)),
            Verdict::Own { .. }
        ));
        // The same pid as ours: a restarted container's predecessor.
        assert!(gone_here(
            &mine,
            &Mark {
                id: 9,
                ..mine.clone()
            }
        ));
        // A live process of this host (pid 1 always is) is not gone.
        assert!(!gone_here(
            &mine,
            &Mark {
                pid: 1,
                ..dead.clone()
            }
        ));
        // Another host: only its refreshes tell.
        assert!(!gone_here(
            &mine,
            &Mark {
                host: "other".into(),
                ..dead
            }
        ));
    }

    #[test]
    fn two_newcomers_agree_on_one_owner() {
        let (mut a, mut b) = (owner(3, 100), owner(4, 100));
        let entries = [a.mark.entry(), b.mark.entry()];
        assert!(matches!(
            a.decide(&entries, 101, t0(), |_| false),
            Verdict::Own { .. }
        ));
        assert!(
            matches!(b.decide(&entries, 101, t0(), |_| false), Verdict::Yield { owner } if owner.id == 3)
        );
    }

    #[test]
    fn the_owner_replaces_its_old_entry() {
        let mut me = owner(7, 100);
        let old = me.mark.entry();
        let Verdict::Own { add, remove, .. } =
            me.decide(std::slice::from_ref(&old), 105, t0(), |_| false)
        else {
            panic!("ours")
        };
        assert_eq!(add, me.mark.refreshed(105).entry());
        assert_eq!(remove, [old]);
    }
}
