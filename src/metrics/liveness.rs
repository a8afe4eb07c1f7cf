//! Liveness: each loop of the daemon promises to beat at least every so often; `/healthz`
//! and systemd's watchdog ask [`Liveness::check`] whether every loop kept its promise.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The daemon's loops, each expected to beat within its own allowance. `/healthz` answers
/// 200 while all of them do.
#[derive(Clone, Default)]
pub struct Liveness {
    beats: Arc<Mutex<BTreeMap<String, Beat>>>,
}

#[derive(Clone, Copy)]
struct Beat {
    last: Instant,
    allowance: Duration,
    stopped: bool,
    /// Which registration this is: a loop registered again under the same name (a service
    /// changed by a reload) must not be marked stopped by its predecessor's end.
    token: u64,
}

impl Liveness {
    /// Registers a loop that promises to beat at least every `allowance`.
    pub fn register(&self, name: impl Into<String>, allowance: Duration) -> Heartbeat {
        let name = name.into();
        let mut token = 0;
        if let Ok(mut b) = self.beats.lock() {
            // One more than the registration it replaces, if any.
            token = b.get(&name).map_or(0, |old| old.token + 1);
            b.insert(
                name.clone(),
                Beat {
                    last: Instant::now(),
                    allowance,
                    stopped: false,
                    token,
                },
            );
        }
        Heartbeat {
            name,
            token,
            liveness: self.clone(),
        }
    }

    /// Forgets a loop that ended on purpose (a service a reload removed).
    pub fn forget(&self, name: &str) {
        if let Ok(mut b) = self.beats.lock() {
            b.remove(name);
        }
    }

    /// `Err` with the loops that are late or gone.
    pub fn check(&self) -> Result<(), Vec<String>> {
        let Ok(beats) = self.beats.lock() else {
            return Err(vec!["liveness table poisoned".to_string()]);
        };
        let now = Instant::now();
        let bad: Vec<String> = beats
            .iter()
            .filter_map(|(name, b)| {
                if b.stopped {
                    Some(format!("{name}: stopped"))
                } else if now.duration_since(b.last) > b.allowance {
                    Some(format!(
                        "{name}: no sign of life for {:?}",
                        now.duration_since(b.last)
                    ))
                } else {
                    None
                }
            })
            .collect();
        if bad.is_empty() { Ok(()) } else { Err(bad) }
    }
}

/// A loop's promise to show it is alive. Dropping it (the loop ended or panicked) marks the
/// loop stopped.
pub struct Heartbeat {
    name: String,
    token: u64,
    liveness: Liveness,
}

impl Heartbeat {
    pub fn beat(&self) {
        if let Ok(mut b) = self.liveness.beats.lock()
            && let Some(beat) = b.get_mut(&self.name)
        {
            beat.last = Instant::now();
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        if let Ok(mut b) = self.liveness.beats.lock()
            && let Some(beat) = b.get_mut(&self.name)
            && beat.token == self.token
        {
            beat.stopped = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_reports_late_and_stopped_loops() {
        let l = Liveness::default();
        let a = l.register("a", Duration::from_secs(60));
        assert_eq!(l.check(), Ok(()));
        let b = l.register("b", Duration::ZERO);
        std::thread::sleep(Duration::from_millis(2));
        assert!(
            l.check()
                .is_err_and(|e| e.len() == 1 && e[0].starts_with("b:"))
        );
        drop(b);
        a.beat();
        drop(a);
        let bad = l.check().expect_err("both stopped");
        assert_eq!(bad, ["a: stopped", "b: stopped"]);
    }
}
