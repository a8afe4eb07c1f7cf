//! The daemon at run time: [`daemon::run`], a library function that takes a validated
//! config and its [`commands::Commands`] and runs every part until stopped; the control
//! socket ([`control`]) and the commands it carries ([`commands`]); drains ([`drain`]);
//! reloads ([`reload`]: what changes, decided apart from doing it); systemd's notify
//! protocol ([`systemd`]).

pub mod commands;
pub mod control;
pub mod daemon;
pub mod drain;
pub mod reload;
pub mod systemd;
