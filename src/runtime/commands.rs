//! What the daemon can be asked to do ([`Command`]), and the [`Handle`] through which the
//! signal handler, the control socket and tests in-process ask it.

use std::fmt;
use std::time::Duration;

use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot};

use super::drain::{DrainError, Reason, Selection, UnknownServices};
use super::reload::{ReloadError, ReloadPlan};
use crate::announcer::Stop;

/// What a command did.
#[derive(Debug)]
pub enum Done {
    /// The config was read again from `file` (canonical, when it could be made so) and
    /// applied.
    Reloaded {
        file: std::path::PathBuf,
        plan: Box<ReloadPlan>,
    },
    Drained(Drained),
    Undrained(Undrained),
}

/// What `anycastd drain` did.
#[derive(Debug)]
pub struct Drained {
    pub what: Selection,
    /// Already drained by command: nothing changed.
    pub unchanged: bool,
    pub linger: Duration,
    /// The prefixes the fleet guard will hold when the linger ends (too few other sites
    /// announce them), with those sites, and `fleet.min_sites`.
    pub held: Vec<(IpNet, Vec<String>)>,
    pub min_sites: u32,
}

/// What `anycastd undrain` did.
#[derive(Debug)]
pub struct Undrained {
    pub what: Selection,
    /// Not drained by command: nothing changed.
    pub unchanged: bool,
    /// Services still drained by something else (a file, `--all`), and by what.
    pub still: Vec<(String, Vec<Reason>)>,
}

/// Why a command was not done, or not fully.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("anycastd is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    Selection(&'static str),
    #[error(transparent)]
    Reload(#[from] ReloadError),
    #[error(transparent)]
    Unknown(#[from] UnknownServices),
    /// Done, but not remembered across a restart (the save is retried).
    #[error("{done}; but {error}")]
    NotRemembered {
        done: Box<Done>,
        error: Box<DrainError>,
    },
}

/// A command's answer.
pub type Answer = Result<Done, Refused>;

impl fmt::Display for Done {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Done::Reloaded { file, plan } => write!(f, "reloaded {}: {plan}", file.display()),
            Done::Drained(d) => d.fmt(f),
            Done::Undrained(u) => u.fmt(f),
        }
    }
}

impl fmt::Display for Drained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unchanged {
            write!(
                f,
                "{}: already drained by command; nothing changed",
                self.what
            )?;
        } else {
            write!(
                f,
                "drained {}: announced routes carry their draining attributes for {}, then are withdrawn",
                self.what,
                humantime::format_duration(self.linger)
            )?;
        }
        for (p, others) in &self.held {
            let n = others.len();
            write!(
                f,
                "; the fleet guard will hold {p} when the linger ends ({} other site{} announce{} it{}, fleet.min_sites is {}): it stays announced with its draining attributes; `anycastd drain --force` withdraws it anyway",
                if n == 0 {
                    "no".to_string()
                } else {
                    n.to_string()
                },
                if n == 1 { "" } else { "s" },
                if n == 1 { "s" } else { "" },
                if n == 0 {
                    String::new()
                } else {
                    format!(": {}", others.join(", "))
                },
                self.min_sites
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Undrained {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.unchanged {
            write!(f, "{}: not drained by command; nothing changed", self.what)?;
        } else {
            write!(f, "undrained {}", self.what)?;
        }
        for (n, reasons) in &self.still {
            let why: Vec<String> = reasons.iter().map(ToString::to_string).collect();
            write!(f, "; {n} is still drained by {}", why.join(", "))?;
        }
        Ok(())
    }
}

/// What the daemon can be asked to do.
#[derive(Debug)]
pub enum Command {
    /// Read the config file again and apply it (SIGHUP, `anycastd reload`).
    Reload(Option<oneshot::Sender<Answer>>),
    /// Drain services (`None`: all of them, also those a reload adds later).
    Drain {
        what: Selection,
        force: bool,
        reply: oneshot::Sender<Answer>,
    },
    /// Undrain services (`None`: everything `drain` drained).
    Undrain {
        what: Selection,
        reply: oneshot::Sender<Answer>,
    },
    /// Stop: gracefully, or at once.
    Stop(Stop),
}

/// Drives a running daemon. Cheap to clone. When every handle is gone, the daemon stops
/// gracefully.
#[derive(Clone, Debug)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
}

/// A handle that does not keep the daemon running (the control socket's).
#[derive(Clone, Debug)]
pub struct WeakHandle(mpsc::WeakSender<Command>);

impl WeakHandle {
    pub fn upgrade(&self) -> Option<Handle> {
        self.0.upgrade().map(|commands| Handle { commands })
    }
}

/// The daemon's end of its handles, for [`super::daemon::run`].
pub struct Commands {
    pub(super) rx: mpsc::Receiver<Command>,
    pub(super) weak: WeakHandle,
}

impl Handle {
    /// A handle and the commands [`super::daemon::run`] takes.
    pub fn new() -> (Handle, Commands) {
        let (tx, rx) = mpsc::channel(16);
        let weak = WeakHandle(tx.downgrade());
        (Handle { commands: tx }, Commands { rx, weak })
    }

    async fn ask(&self, make: impl FnOnce(oneshot::Sender<Answer>) -> Command) -> Answer {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| Refused::ShuttingDown)?;
        rx.await.map_err(|_| Refused::ShuttingDown)?
    }

    pub async fn reload(&self) -> Answer {
        self.ask(|r| Command::Reload(Some(r))).await
    }

    pub async fn drain(&self, what: Selection, force: bool) -> Answer {
        self.ask(|reply| Command::Drain { what, force, reply })
            .await
    }

    pub async fn undrain(&self, what: Selection) -> Answer {
        self.ask(|reply| Command::Undrain { what, reply }).await
    }

    /// Asks for a stop; returns at once.
    pub async fn stop(&self, how: Stop) {
        let _ = self.commands.send(Command::Stop(how)).await;
    }

    /// Asks for a reload without waiting for its outcome (SIGHUP).
    pub async fn reload_nowait(&self) {
        let _ = self.commands.send(Command::Reload(None)).await;
    }
}
