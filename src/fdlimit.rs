//! The open-files limit (`RLIMIT_NOFILE`): raised at start from the soft limit to the hard
//! one, so that the checks and gobgpd's connection have file descriptors to spare.
//!
//! systemd and most shells start services with a soft limit of 1024 and a much higher hard
//! limit (524288 on systemd ≥ 240), keeping 1024 only for programs that still use select(2),
//! which anycastd does not (tokio uses epoll). Every check attempt holds a socket or a file
//! for its duration, so a daemon with many checks, or one whose metrics endpoint is busy,
//! could otherwise run out: 1,100 idle connections to the endpoint made checks fail with
//! "Too many open files" and withdrew a healthy route 5 times in 40 s (issue 10). The
//! endpoint caps its own connections too (`endpoint::MAX_CONNECTIONS`): the raise is the
//! reserve for everything else.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use tracing::{info, warn};

/// What [`raise_nofile`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raised {
    /// The soft limit went from `from` to `to` (the hard limit).
    Raised { from: u64, to: u64 },
    /// Left as it was: the soft limit is the hard limit already, or one of them is
    /// unlimited (`None`).
    Unchanged {
        soft: Option<u64>,
        hard: Option<u64>,
    },
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit.
pub fn raise_nofile() -> std::io::Result<Raised> {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    match (current, maximum) {
        (Some(from), Some(to)) if from < to => {
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(to),
                    maximum: Some(to),
                },
            )?;
            Ok(Raised::Raised { from, to })
        }
        (soft, hard) => Ok(Raised::Unchanged { soft, hard }),
    }
}

/// [`raise_nofile`], saying what it did at INFO (a failure at WARN: the daemon runs on).
pub fn raise_nofile_and_log() {
    match raise_nofile() {
        Ok(Raised::Raised { from, to }) => {
            info!(
                from,
                to, "raised the open-files limit (RLIMIT_NOFILE) to its hard limit"
            )
        }
        Ok(Raised::Unchanged { soft, hard }) => {
            let shown = |l: Option<u64>| l.map_or("unlimited".to_string(), |n| n.to_string());
            info!(
                soft = %shown(soft),
                hard = %shown(hard),
                "open-files limit (RLIMIT_NOFILE) left as it is: nothing to raise"
            )
        }
        Err(e) => warn!(error = %e, "cannot raise the open-files limit (RLIMIT_NOFILE)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let before = getrlimit(Resource::Nofile);
        let raised = raise_nofile().expect("raising to the hard limit is always allowed");
        let after = getrlimit(Resource::Nofile);
        assert_eq!(after.current, before.maximum, "{raised:?}");
        assert_eq!(after.maximum, before.maximum);
        // Once raised, there is nothing more to do.
        assert_eq!(
            raise_nofile().expect("again"),
            Raised::Unchanged {
                soft: after.current,
                hard: after.maximum
            }
        );
    }
}
