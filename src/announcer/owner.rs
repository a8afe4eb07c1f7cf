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

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The name of the community set holding the marks.
pub const SET_NAME: &str = "anycastd-owner";

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

    /// Whether the instance behind it is still there, as far as its refreshes say.
    pub fn is_live(&self, now: u64) -> bool {
        now <= self
            .at
            .saturating_add(self.refresh.saturating_mul(3))
            .saturating_add(10)
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
    /// entries, and entries of instances that are gone).
    Own { add: String, remove: Vec<String> },
    /// Another live instance owns gobgpd: touch nothing.
    Yield { owner: Mark },
}

/// Decides from the set's entries (as gobgpd lists them) at `now`. `gone` tells a mark
/// whose process is known to be dead (see [`gone_here`]) from one that may be alive.
pub fn decide(mine: &Mark, entries: &[String], now: u64, gone: impl Fn(&Mark) -> bool) -> Verdict {
    let mut remove = Vec::new();
    let mut owner: Option<Mark> = None;
    for e in entries {
        match Mark::parse(e) {
            Some(m) if m.id == mine.id => remove.push(e.clone()),
            Some(m) if m.is_live(now) && !gone(&m) => {
                if m.wins_over(mine) && owner.as_ref().is_none_or(|o| m.wins_over(o)) {
                    owner = Some(m);
                }
            }
            // A stale mark (its instance died) or something anycastd did not write:
            // tidied away by the owner.
            _ => remove.push(e.clone()),
        }
    }
    match owner {
        Some(owner) => Verdict::Yield { owner },
        None => {
            let add = mine.refreshed(now).entry();
            remove.retain(|e| *e != add);
            Verdict::Own { add, remove }
        }
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

    #[test]
    fn an_empty_set_is_taken() {
        let me = mark(7, 100, 100);
        assert_eq!(
            decide(&me, &[], 150, |_| false),
            Verdict::Own {
                add: me.refreshed(150).entry(),
                remove: vec![]
            }
        );
    }

    #[test]
    fn a_live_older_owner_is_left_alone() {
        let me = mark(7, 1000, 1000);
        let owner = mark(9, 500, 995);
        assert_eq!(
            decide(&me, &[owner.entry()], 1000, |_| false),
            Verdict::Yield {
                owner: owner.clone()
            }
        );
        // Until it stops refreshing: 3 × 5 s + 10 s after its last refresh.
        assert_eq!(
            decide(&me, &[owner.entry()], 1020, |_| false),
            Verdict::Yield {
                owner: owner.clone()
            }
        );
        let Verdict::Own { remove, .. } = decide(&me, &[owner.entry()], 1021, |_| false) else {
            panic!("a stale owner is replaced")
        };
        assert_eq!(remove, [owner.entry()]);
    }

    #[test]
    fn a_dead_predecessor_on_this_host_is_replaced_at_once() {
        let me = Mark::new(Duration::from_secs(5));
        let dead = Mark {
            id: 9,
            since: 1,
            pid: u32::MAX,
            ..me.clone()
        };
        assert!(gone_here(&me, &dead));
        let now = me.at;
        let dead = Mark { at: now, ..dead };
        assert!(matches!(
            decide(&me, &[dead.entry()], now, |m| gone_here(&me, m)),
            Verdict::Own { .. }
        ));
        // The same pid as ours: a restarted container's predecessor.
        assert!(gone_here(
            &me,
            &Mark {
                id: 9,
                ..me.clone()
            }
        ));
        // A live process of this host (pid 1 always is) is not gone.
        assert!(!gone_here(
            &me,
            &Mark {
                pid: 1,
                ..dead.clone()
            }
        ));
        // Another host: only its refreshes tell.
        assert!(!gone_here(
            &me,
            &Mark {
                host: "other".into(),
                ..dead
            }
        ));
    }

    #[test]
    fn two_newcomers_agree_on_one_owner() {
        let a = mark(3, 100, 100);
        let b = mark(4, 100, 100);
        let entries = [a.entry(), b.entry()];
        assert!(matches!(
            decide(&a, &entries, 101, |_| false),
            Verdict::Own { .. }
        ));
        assert!(
            matches!(decide(&b, &entries, 101, |_| false), Verdict::Yield { owner } if owner.id == 3)
        );
    }

    #[test]
    fn the_owner_replaces_its_old_entry() {
        let me = mark(7, 100, 100);
        let Verdict::Own { add, remove } = decide(&me, &[me.entry()], 105, |_| false) else {
            panic!("ours")
        };
        assert_eq!(add, me.refreshed(105).entry());
        assert_eq!(remove, [me.entry()]);
    }
}
