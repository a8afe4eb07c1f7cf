//! How much a log line matters, beyond tracing's five levels (SPEC 19). A leaf: every layer
//! that logs a change names [`NOTICE`], and only the journal reads it.
//!
//! The default level is WARN (the seed's), so that every route and state change is seen
//! without asking for more: those lines are WARN events. But they are not problems, and in
//! the journal they carry priority 5 (notice) rather than 4 (warning), so that `journalctl
//! -p warning` shows the problems only. They are marked by their target:
//! `warn!(target: NOTICE, prefix = %p, reason = ..., "withdrawn")`. The text and JSON
//! lines on stderr do not show targets: they read as before.

/// The target of the events that say a route or state changed (announced, withdrawn, a
/// service up or down, a BGP session established, a drain, a reload): journal priority 5.
pub const NOTICE: &str = "anycastd::notice";

/// The journal's priorities (syslog's severities), as `journalctl -p` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// 3 (`err`): something a person must fix.
    Error = 3,
    /// 4 (`warning`): a problem: a check failing, gobgpd unreachable, a session lost.
    Warning = 4,
    /// 5 (`notice`): a route or state change, and why.
    Notice = 5,
    /// 6 (`info`): the INFO lines: set-up steps, a check passing again.
    Info = 6,
    /// 7 (`debug`): DEBUG and TRACE.
    Debug = 7,
}

impl Priority {
    /// The priority of an event of `level` (tracing's, as `ERROR`, `WARN`, ...) with
    /// `target`.
    pub fn of(level: &tracing::Level, target: &str) -> Priority {
        match *level {
            tracing::Level::ERROR => Priority::Error,
            _ if target == NOTICE => Priority::Notice,
            tracing::Level::WARN => Priority::Warning,
            tracing::Level::INFO => Priority::Info,
            _ => Priority::Debug,
        }
    }

    /// The digit the journal's `PRIORITY` field and syslog's `<N>` prefix carry.
    pub fn digit(self) -> char {
        char::from(b'0' + self as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn errors_problems_changes_and_the_rest() {
        let of = |l, t| Priority::of(&l, t).digit();
        assert_eq!(of(Level::ERROR, "anycastd::announcer"), '3');
        assert_eq!(of(Level::ERROR, NOTICE), '3');
        assert_eq!(of(Level::WARN, "anycastd::service::rounds"), '4');
        assert_eq!(of(Level::WARN, NOTICE), '5');
        assert_eq!(of(Level::INFO, NOTICE), '5');
        assert_eq!(of(Level::INFO, "anycastd"), '6');
        assert_eq!(of(Level::DEBUG, "anycastd"), '7');
        assert_eq!(of(Level::TRACE, "h2::codec"), '7');
        // A library's WARN is a problem too.
        assert_eq!(of(Level::WARN, "tonic"), '4');
    }
}
