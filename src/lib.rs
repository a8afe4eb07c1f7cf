//! anycastd: announces anycast prefixes through a local gobgpd while the services behind
//! them are healthy, and withdraws them as soon as they are not.
//!
//! The pieces, in the order data flows through them:
//! - [`config`]: the config file, parsed and validated; [`diagnose`] words its errors, and
//!   [`position`] finds the line and column of a field.
//! - [`check`]: the health checks, one file per kind, and the attempt policy.
//! - [`service`]: rounds of checks, rise/fall, and the gate from service states to prefixes.
//! - [`announcer`]: makes gobgpd announce exactly the wanted prefixes.
//! - [`fleet`]: the fleet guard: withdrawals coordinated through etcd (optional).
//! - [`metrics`]: metric names, the registry and liveness; [`endpoint`] serves them over HTTP.
//! - [`logging`]: `LOG_LEVEL` / `LOG_FORMAT`.
//! - [`summary`]: the one-screen summary of `anycastd check-config`.
//! - [`status`]: `/status` (the daemon's state as JSON) and `anycastd status`.
//! - [`systemd`]: sd_notify (ready, watchdog, stopping) under systemd.
//! - [`healthcheck`]: `anycastd healthcheck`, the probe of `/healthz` for containers.
//! - [`small_file`]: bounded reads of the small files a config names (never a FIFO or device).
//! - [`fdlimit`]: the open-files limit, raised at start.
//! - [`backoff`]: doubling, capped waits between attempts (gobgpd, tcp watches).
//! - [`watch`]: events (a held TCP connection closing, a watched process exiting) that
//!   start a service's round at once.

pub mod announcer;
pub mod backoff;
pub mod check;
pub mod cli;
pub mod config;
pub mod duration;
pub mod fdlimit;
pub mod fleet;
pub mod healthcheck;
pub mod kinds;
pub mod metrics;
pub mod observe;
pub mod problem;
pub mod runtime;
pub mod service;
pub mod small_file;
pub mod watch;
pub mod wording;
