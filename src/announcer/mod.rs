//! The announcer: makes the local gobgpd announce exactly the wanted routes, with the
//! wanted attributes. It owns gobgpd's global settings, the configured peers and the paths
//! of the configured prefixes; it leaves every other peer and path alone.
//!
//! - [`run`]: the loop (connect, set up, reconcile, follow the desired routes);
//! - [`setup`]: gobgpd's global settings, the ownership mark ([`owner`]) and the peers;
//! - [`routes`]: the desired routes, lingers and fleet holds turned into gobgpd's RIB,
//!   through the pure [`reconcile`], with the cheaper paths of unchanged inputs ([`memo`]);
//! - [`intent`]: what the config says gobgpd should hold;
//! - [`gobgp`]: GoBGP behind one interface, a module per API;
//! - [`connection`]: the connect and backoff loop, shared with [`peers`], which follows the
//!   BGP sessions;
//! - [`state`]: what the announcer tells the rest of the daemon.

pub mod connection;
pub mod gobgp;
pub mod history;
pub mod intent;
pub mod memo;
pub mod owner;
pub mod peers;
pub mod reconcile;
pub mod routes;
pub mod run;
pub mod setup;
pub mod state;

pub use self::run::Announcer;
pub use self::state::{AnnouncerState, Fatal, GobgpHealth, Stop};
