//! anycastd: announces anycast prefixes through a local gobgpd while the services behind
//! them are healthy, and withdraws them as soon as they are not.
//!
//! Data flows one way; each layer imports only the ones before it (`tests/structure.rs`
//! holds that no file imports one that imports it back):
//! - leaves: [`wording`], [`duration`], [`problem`], [`backoff`], [`small_file`], [`kinds`],
//!   [`fdlimit`], [`priority`], and [`metrics`] (names, the registry, liveness);
//! - [`config`]: the file, parsed and validated once into the values the runtime uses, every
//!   spec (checks, watches, attributes, fleet) with it;
//! - [`check`] and [`watch`]: the probers and the watch loops, one file per kind;
//! - [`service`]: rounds, the rise/fall state machine, and the gate from the services'
//!   states to the desired state of every prefix;
//! - [`fleet`]: the fleet guard over etcd, the only owner of claims and holds;
//! - [`announcer`]: desired routes and holds -> gobgpd, GoBGP behind one interface;
//! - [`runtime`]: the daemon as a library function, the control socket, drains, reloads;
//! - [`observe`]: logs, `/metrics`, `/healthz`, `/status`, check-config's summary: they read
//!   the others' state, and nothing imports them back;
//! - [`cli`], [`client`] and [`healthcheck`]: the command line, the client commands
//!   (`drain`, `undrain`, `reload`, `status`), and the probe of `/healthz`.

pub mod announcer;
pub mod backoff;
pub mod check;
pub mod cli;
pub mod client;
pub mod config;
pub mod duration;
pub mod fdlimit;
pub mod fleet;
pub mod healthcheck;
pub mod kinds;
pub mod metrics;
pub mod observe;
pub mod priority;
pub mod problem;
pub mod runtime;
pub mod service;
pub mod small_file;
pub mod watch;
pub mod wording;
