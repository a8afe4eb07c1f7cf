//! Health checks at run time: one prober per kind, each in its own file, built from the
//! kind's spec (`config/checks/`); [`runner::Runner`] applies the attempt policy around it.
//!
//! A prober only knows how to make *one* attempt ([`probe::Check`]); `tries`, `interval` and
//! `timeout` are the Runner's, so that no attempt outlives its timeout whatever the remote
//! end does. The kinds are listed once, in [`crate::kinds`]; [`build`] is made from that
//! list.

pub mod assigned_address;
pub mod dns_lookup;
pub mod grpc_health;
pub mod http_2xx;
pub mod icmp_ping;
pub mod ntp;
pub mod probe;
mod resolve;
pub mod runner;
pub mod tcp_connect;
pub mod tftp_rrq;
pub mod tls_certificate;
mod tls_client;
mod trust;

use crate::config::checks::CheckSpec;
use probe::{Check, CheckContext};

/// Defines [`build`] from the list of kinds.
macro_rules! probers {
    ($($name:literal => $variant:ident($module:ident),)*) => {
        /// The prober of a check's spec.
        pub fn build(spec: &CheckSpec, ctx: &CheckContext) -> Result<Box<dyn Check>, String> {
            match spec {
                $(CheckSpec::$variant(s) => $module::build(s, ctx),)*
            }
        }
    };
}

crate::kinds::check_kinds!(probers);
