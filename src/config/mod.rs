//! The config file: YAML or JSON in, a validated [`Config`] out.
//!
//! Parsing is strict: unknown keys are errors, durations need a unit, and every error names
//! the path of the bad field (`services[0].checks[2].spec.url`), with line and column for
//! YAML. Cross-field rules (unique names, prefixes in one place only, next hops for the
//! families in use, ...) run after parsing and report every problem at once.

pub mod attributes;
pub mod bfd;
pub mod checks;
pub mod diagnose;
pub mod fleet;
pub mod load;
pub mod model;
pub mod position;
pub mod prefix;
pub mod routes;
pub mod schema;
pub mod validate;
pub mod watches;

#[cfg(test)]
mod tests;

pub use self::checks::{CheckConfig, OnFailure};
pub use self::load::{ConfigError, Format, Loaded, MAX_CONFIG_BYTES, load, load_for_client, parse};
pub use self::model::{
    AnnouncerConfig, Config, ControlConfig, DEFAULT_CONTROL_SOCKET, DEFAULT_PATH, GobgpConfig,
    MetricsConfig, PeerConfig, ServiceConfig, read_password_file,
};
pub use crate::duration::{Dur, MAX_DURATION, parse_duration};
pub use crate::problem::Problem;
