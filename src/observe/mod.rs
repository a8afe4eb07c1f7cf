//! What the daemon tells the world, read from the state the other parts publish; nothing
//! imports these back: the logs ([`logging`], to the systemd journal: [`journal`]), the HTTP endpoint ([`endpoint`]: `/metrics`,
//! `/healthz`, `/status`), the status document ([`status`]) and its tables ([`table`]), the series set
//! from state at scrape time ([`series`]), and check-config's summary ([`summary`]).

pub mod endpoint;
pub mod journal;
pub mod logging;
pub mod series;
pub mod status;
pub mod summary;
pub mod table;
