//! [`Runner`]: the attempt policy around a prober, so that no attempt outlives its timeout
//! whatever the remote end does; its [`Outcome`].

use std::time::Duration;

use tokio::time::Instant;

use super::probe::{Check, Failure};
use crate::config::checks::attempts::Attempts;
use crate::duration::Dur;

/// The result of running a check once (all its attempts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub result: Result<(), Failure>,
    /// Wall time of all attempts and the pauses between them.
    pub duration: Duration,
    /// How many attempts were made.
    pub attempts: u32,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.result.is_ok()
    }
}

/// A check ready to run: its prober and its attempt policy.
pub struct Runner {
    pub name: String,
    pub kind: &'static str,
    pub attempts: Attempts,
    check: Box<dyn Check>,
}

impl Runner {
    pub fn new(
        name: String,
        kind: &'static str,
        attempts: Attempts,
        check: Box<dyn Check>,
    ) -> Runner {
        Runner {
            name,
            kind,
            attempts,
            check,
        }
    }

    /// Runs up to `tries` attempts; passes on the first passing one.
    pub async fn run(&self) -> Outcome {
        let start = Instant::now();
        let tries = self.attempts.tries.max(1);
        let mut last = Failure::new("no attempt was made");
        for n in 1..=tries {
            match tokio::time::timeout(self.attempts.timeout, self.check.attempt()).await {
                Ok(Ok(())) => {
                    return Outcome {
                        result: Ok(()),
                        duration: start.elapsed(),
                        attempts: n,
                    };
                }
                Ok(Err(f)) => last = f,
                Err(_) => last = Failure(format!("timed out after {}", Dur(self.attempts.timeout))),
            }
            if n < tries {
                tokio::time::sleep(self.attempts.interval).await;
            }
        }
        let result = if tries > 1 {
            Err(Failure(format!("{} (all {tries} attempts failed)", last.0)))
        } else {
            Err(last)
        };
        Outcome {
            result,
            duration: start.elapsed(),
            attempts: tries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::probe::AttemptFuture;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A prober that plays back scripted results; `None` hangs forever.
    struct Scripted {
        script: Mutex<Vec<Option<Result<(), Failure>>>>,
        calls: AtomicU32,
    }

    impl Scripted {
        fn new(mut script: Vec<Option<Result<(), Failure>>>) -> Box<Scripted> {
            script.reverse();
            Box::new(Scripted {
                script: Mutex::new(script),
                calls: AtomicU32::new(0),
            })
        }
    }

    impl Check for Scripted {
        fn attempt(&self) -> AttemptFuture<'_> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let next = self.script.lock().ok().and_then(|mut s| s.pop()).flatten();
            Box::pin(async move {
                match next {
                    Some(r) => r,
                    None => std::future::pending().await,
                }
            })
        }
    }

    fn runner(tries: u32, script: Vec<Option<Result<(), Failure>>>) -> Runner {
        let attempts = Attempts {
            tries,
            interval: Duration::from_millis(10),
            timeout: Duration::from_millis(50),
        };
        Runner::new("t".into(), "test", attempts, Scripted::new(script))
    }

    fn fail(m: &str) -> Option<Result<(), Failure>> {
        Some(Err(Failure::new(m)))
    }

    #[tokio::test(start_paused = true)]
    async fn passes_on_first_passing_attempt() {
        let r = runner(3, vec![fail("a"), Some(Ok(())), fail("never reached")]);
        let o = r.run().await;
        assert!(o.passed());
        assert_eq!(o.attempts, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn fails_after_all_tries_with_last_error() {
        let r = runner(3, vec![fail("a"), fail("b"), fail("c")]);
        let o = r.run().await;
        assert_eq!(o.attempts, 3);
        assert_eq!(o.result, Err(Failure::new("c (all 3 attempts failed)")));
        // Three attempts, two pauses of 10 ms between them.
        assert!(o.duration >= Duration::from_millis(20));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_attempt_is_cut_at_its_timeout() {
        let r = runner(2, vec![None, None]);
        let o = r.run().await;
        assert_eq!(o.attempts, 2);
        assert_eq!(
            o.result,
            Err(Failure::new("timed out after 50ms (all 2 attempts failed)"))
        );
        // 2 × 50 ms timeouts + 1 × 10 ms interval, on the paused clock.
        assert_eq!(o.duration, Duration::from_millis(110));
    }

    #[test]
    fn worst_case_formula() {
        let a = Attempts {
            tries: 3,
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(2),
        };
        assert_eq!(a.worst_case(), Duration::from_millis(6200));
        let huge = Attempts {
            tries: u32::MAX,
            interval: Duration::from_secs(1000 * 366 * 24 * 3600),
            timeout: Duration::from_secs(1000 * 366 * 24 * 3600),
        };
        assert_eq!(huge.worst_case(), Duration::MAX);
    }
}
