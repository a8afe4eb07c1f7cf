//! What a prober is: the [`Check`] trait (one attempt), its [`Failure`] in words, the
//! [`CheckContext`] a prober is built with, and the soft deadline by which it gives up with
//! its own message.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::metrics::Metrics;

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

/// How long a prober waits before it gives up with its own, precise message ("no DATA
/// block 3 within 1s"): a little less than the attempt's `timeout`, so that this message
/// reaches the operator instead of the [`Runner`]'s bare "timed out". The Runner's cut stays
/// the hard bound.
pub fn soft_deadline(timeout: Duration) -> Duration {
    timeout.saturating_sub((timeout / 10).min(Duration::from_millis(100)))
}

/// What a prober may need besides its spec: who it is, and where its own metrics go.
#[derive(Clone)]
pub struct CheckContext {
    pub service: String,
    pub check: String,
    pub metrics: Metrics,
}
