//! Health checks: the [`Check`] trait, the attempt policy shared by every kind, and the
//! registry that maps a kind name (`http_2xx`, ...) to its spec and its prober.
//!
//! Each kind lives in its own file and owns its `Spec` (the `spec:` block of the config,
//! with defaults and validation) and its prober. A prober only knows how to make *one*
//! attempt; [`Runner`] applies `tries`, `interval` and `timeout` around it, so that no
//! attempt outlives its timeout whatever the remote end does.

pub mod assigned_address;
pub mod dns_lookup;
pub mod http_2xx;
pub mod icmp_ping;
mod resolve;
pub mod tftp_rrq;
pub mod tls_certificate;
mod trust;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::time::Instant;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer};

use crate::duration::Dur;
use crate::metrics::Metrics;
use crate::problem::Problem;

/// The future of one attempt.
pub type AttemptFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'a>>;

/// A prober: makes one attempt at checking its target.
pub trait Check: Send + Sync + 'static {
    /// One attempt. It may take as long as it likes: the [`Runner`] bounds it by `timeout`.
    fn attempt(&self) -> AttemptFuture<'_>;
}

/// Why an attempt failed, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl Failure {
    pub fn new(msg: impl Into<String>) -> Failure {
        Failure(msg.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a check is attempted: up to `tries` attempts, `interval` apart after a failure, each
/// bounded by `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    pub tries: u32,
    pub interval: Duration,
    pub timeout: Duration,
}

impl Attempts {
    /// The longest a check can take: `tries × timeout + (tries−1) × interval`.
    pub fn worst_case(&self) -> Duration {
        // Saturating: `tries` may be up to u32::MAX, and this feeds only comparisons.
        self.timeout
            .saturating_mul(self.tries)
            .saturating_add(self.interval.saturating_mul(self.tries.saturating_sub(1)))
    }

    /// The problems of the common fields, for a kind's `validate`.
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        if self.tries == 0 {
            p.push(Problem::new("tries", "must be at least 1"));
        }
        if let Err(m) = Dur(self.timeout).at_least(MIN_TIMEOUT) {
            p.push(Problem::new("timeout", m));
        }
        p
    }
}

/// The shortest `timeout` of an attempt, every kind: even on loopback an answer takes some
/// 0.1–1 ms, and a check that cannot pass only burns a round. (`interval`, the pause after
/// a failed attempt, may be 0s: retry at once, at most `tries` times.)
pub const MIN_TIMEOUT: Dur = Dur::millis(10);

/// Defaults of the common fields, for the kinds' `#[serde(default = ...)]`.
pub fn default_tries() -> u32 {
    1
}
pub fn default_interval() -> Dur {
    Dur::millis(100)
}
pub fn default_timeout() -> Dur {
    Dur::secs(1)
}

/// How long a prober waits before it gives up with its own, precise message ("no DATA
/// block 3 within 1s"): a little less than the attempt's `timeout`, so that this message
/// reaches the operator instead of the [`Runner`]'s bare "timed out". The Runner's cut stays
/// the hard bound.
pub fn soft_deadline(timeout: Duration) -> Duration {
    timeout.saturating_sub((timeout / 10).min(Duration::from_millis(100)))
}

/// What a kind's spec knows how to do. Implemented by each kind's `Spec`.
pub trait KindSpec: Sized + fmt::Debug + Clone + PartialEq + for<'de> Deserialize<'de> {
    /// The attempt policy.
    fn attempts(&self) -> Attempts;
    /// Problems with the spec's own fields, with paths relative to `spec`.
    fn validate(&self) -> Vec<Problem>;
    /// What the check looks at, for summaries and logs (`http://127.0.0.1:8080/`).
    fn target(&self) -> String;
    /// The prober for this spec.
    fn build(&self, ctx: &CheckContext) -> Result<Box<dyn Check>, String>;
}

/// What a prober may need besides its spec: who it is, and where its own metrics go.
#[derive(Clone)]
pub struct CheckContext {
    pub service: String,
    pub check: String,
    pub metrics: Metrics,
}

/// The registry: one line per kind, `"name" => Variant(module)`. It defines [`CheckSpec`],
/// [`KINDS`] and the dispatch from a kind name to its module.
macro_rules! registry {
    ($($name:literal => $variant:ident($module:ident),)*) => {
        /// Every kind name, as written in the config.
        pub const KINDS: &[&str] = &[$($name),*];

        /// The spec of a check, by kind.
        #[derive(Debug, Clone, PartialEq)]
        pub enum CheckSpec {
            $($variant($module::Spec),)*
        }

        impl CheckSpec {
            pub fn kind(&self) -> &'static str {
                match self { $(CheckSpec::$variant(_) => $name,)* }
            }
            pub fn attempts(&self) -> Attempts {
                match self { $(CheckSpec::$variant(s) => s.attempts(),)* }
            }
            pub fn validate(&self) -> Vec<Problem> {
                match self { $(CheckSpec::$variant(s) => s.validate(),)* }
            }
            pub fn target(&self) -> String {
                match self { $(CheckSpec::$variant(s) => s.target(),)* }
            }
            pub fn build(&self, ctx: &CheckContext) -> Result<Box<dyn Check>, String> {
                match self { $(CheckSpec::$variant(s) => s.build(ctx),)* }
            }
        }

        /// The JSON Schema of each kind's spec, by kind name.
        pub fn spec_schemas(
            generator: &mut schemars::SchemaGenerator,
        ) -> Vec<(&'static str, schemars::Schema)> {
            vec![$(($name, generator.subschema_for::<$module::Spec>()),)*]
        }

        impl<'de> DeserializeSeed<'de> for SpecSeed<'_> {
            type Value = CheckSpec;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<CheckSpec, D::Error> {
                match self.0 {
                    $($name => $module::Spec::deserialize(d).map(CheckSpec::$variant),)*
                    other => Err(serde::de::Error::custom(format!(
                        "unknown check kind {other:?}; valid kinds: {}", KINDS.join(", ")
                    ))),
                }
            }
        }
    };
}

registry! {
    "assigned_address" => AssignedAddress(assigned_address),
    "dns_lookup" => DnsLookup(dns_lookup),
    "http_2xx" => Http2xx(http_2xx),
    "icmp_ping" => IcmpPing(icmp_ping),
    "tftp_rrq" => TftpRrq(tftp_rrq),
    "tls_certificate" => TlsCertificate(tls_certificate),
}

/// Deserializes the `spec` of the named kind.
pub struct SpecSeed<'a>(pub &'a str);

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
