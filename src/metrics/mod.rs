//! Metrics: every metric name in one place, a [`Metrics`] registry passed to whoever
//! records (no global recorder), and liveness heartbeats for `/healthz`. The HTTP server
//! that serves them is [`crate::observe::endpoint`].

pub mod liveness;
pub mod names;
pub mod process;
pub mod registry;

pub use self::liveness::{Heartbeat, Liveness};
pub use self::registry::{Collector, Metrics, escape_label};
