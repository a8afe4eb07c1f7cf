//! The command line: subcommands and options, in one place so that the binary, the man
//! page and the shell completions (generated from it, `anycastd completions`) agree.

use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "anycastd",
    version,
    about = "Announces anycast prefixes through gobgpd while the services behind them are healthy",
    after_long_help = AFTER_HELP
)]
pub struct Cli {
    /// Config file, YAML (.yaml/.yml) or JSON (.json).
    #[arg(long, short = 'c', env = "CONFIG_PATH", default_value = crate::config::DEFAULT_PATH, global = true)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon (the default).
    Run,
    /// Validate the config file, print a summary, and exit 0 (valid) or 2 (not).
    CheckConfig,
    /// Ask a running anycastd for its state (GET /status) and print it as tables.
    Status {
        #[command(flatten)]
        address: AddressArg,
        /// Print the JSON document as it is.
        #[arg(long)]
        json: bool,
    },
    /// Ask a running anycastd's /healthz; exit 0 (healthy) or 1 (not). For container
    /// healthchecks: the image has no curl.
    Healthcheck {
        #[command(flatten)]
        address: AddressArg,
        /// How long to wait for the answer.
        #[arg(long, default_value = "2s", value_parser = |s: &str| crate::duration::parse_duration(s).map(|d| d.0))]
        timeout: Duration,
    },
    /// Drain services: their routes carry the draining attributes (GRACEFUL_SHUTDOWN) for
    /// announcer.drain_linger, then are withdrawn. Remembered across restarts.
    Drain {
        /// The services to drain.
        services: Vec<String>,
        /// Drain every service (also those a reload adds later).
        #[arg(long, conflicts_with = "services")]
        all: bool,
        /// Drain even where the fleet guard would hold.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Undrain services: they return at once to what their checks say.
    Undrain {
        /// The services to undrain.
        services: Vec<String>,
        /// Undrain everything `drain` drained.
        #[arg(long, conflicts_with = "services")]
        all: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Make the running daemon read its config file again; exit 2 when it refuses it. A file
    /// that does not parse is refused by the daemon too (found at the control socket the
    /// file's `control:` lines name, else the default): it logs the refusal and `status`
    /// shows it.
    Reload {
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the JSON Schema of the config file, for editors and validators.
    ConfigSchema,
    /// Write the man pages (roff), one per command, into a directory.
    #[command(hide = true)]
    Manpages { dir: PathBuf },
}

#[derive(clap::Args)]
pub struct AddressArg {
    /// The daemon's metrics address, host:port; default: metrics.address of the config.
    #[arg(long, short = 'a')]
    pub address: Option<String>,
}

#[derive(clap::Args)]
pub struct SocketArg {
    /// The daemon's control socket; default: control.socket of the config.
    #[arg(long)]
    pub socket: Option<PathBuf>,
}

/// The clap command, for the man page and the completions.
pub fn command() -> clap::Command {
    Cli::command()
}

/// What `--help` and the man page say after the options.
const AFTER_HELP: &str = "\
Environment: CONFIG_PATH (the config file, default /config.yaml; --config overrides it), \
LOG_LEVEL (TRACE, DEBUG, INFO, WARN, ERROR; default WARN), LOG_FORMAT (text or json).

Logs: on stderr; under systemd (JOURNAL_STREAM names stderr) and in text, to the journal \
instead, each line with its priority (3 errors, 4 problems, 5 route and state changes, 6 \
info, 7 debug: journalctl -p warning shows problems only) and its fields as journal fields \
(journalctl -u anycastd PREFIX=192.0.2.1/32).

Exit status: 0 a clean stop (every route withdrawn); 1 a failure (routes not withdrawn in \
time, a daemon that could not be reached); 2 a bad config or environment, a refused reload, \
or a gobgpd set up with another router id, ASN or listen port.

Signals: SIGTERM, SIGINT, SIGQUIT drain every route, withdraw it and exit (a second one \
withdraws at once); SIGHUP reloads the config file; other signals are logged and ignored.";

/// The man pages, in roff, generated from the command line's definition: `anycastd.1`
/// and `anycastd-<command>.1` for each visible command, as (file name, text).
pub fn manpages() -> Vec<(String, String)> {
    let top = command();
    let mut pages = vec![("anycastd.1".to_string(), render(top.clone()))];
    for sub in top.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("anycastd-{}", sub.get_name());
        let page = sub
            .clone()
            .display_name(name.clone())
            .bin_name(format!("anycastd {}", sub.get_name()));
        pages.push((format!("{name}.1"), render(page)));
    }
    pages
}

fn render(cmd: clap::Command) -> String {
    let mut out = Vec::new();
    let _ = clap_mangen::Man::new(cmd).render(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command(), "anycastd", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}
