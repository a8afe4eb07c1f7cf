//! anycastd: announces anycast prefixes through a local gobgpd while the services behind
//! them are healthy, and withdraws them as soon as they are not.
//!
//! The pieces, in the order data flows through them:
//! - [`config`]: the config file, parsed and validated.
//! - [`check`]: the health checks, one file per kind, and the attempt policy.
//! - [`service`]: rounds of checks, rise/fall, and the gate from service states to prefixes.
//! - [`announcer`]: makes gobgpd announce exactly the wanted prefixes.
//! - [`metrics`]: metric names, the registry and the HTTP endpoint.
//! - [`logging`]: `LOG_LEVEL` / `LOG_FORMAT`.

pub mod check;
pub mod config;
pub mod logging;
pub mod metrics;
pub mod service;
