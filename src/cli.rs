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
withdraws at once); SIGHUP reloads the config file; other signals are logged and ignored.

Check kinds, with the keys of their spec (all but assigned_address and tls_certificate \
also take tries, interval and timeout):
  assigned_address: interface, ipv4, ipv6
  dns_lookup: query, resolver, type, rcode, expect, soa_serial_of, max_serial_lag \
(a zone whose SOA serial falls behind its primary's fails)
  grpc_health: address, service, tls (grpc.health.v1 Check: passes on SERVING)
  http_2xx: url, method, headers, payload, path
  icmp_ping: static (host), max_loss_percent
  ntp: server, max_offset, max_stratum (one NTPv4 request: fails unsynchronised, on a \
Kiss-o'-Death, on a stratum or offset above its bound)
  tcp_connect: address, send, expect, tls
  tftp_rrq: url, expected_sha256
  tls_certificate: local (path) or remote (host, server_name, insecure, timeout), \
common_name, dns_names, ip_addresses, issuer, min_valid_for

The README's \"Config reference\" gives each key's default and bounds; `anycastd \
config-schema` prints them as a JSON Schema.";

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The kinds without the attempts' keys (tries, interval, timeout), as the help says.
    const NO_ATTEMPTS: [&str; 2] = ["assigned_address", "tls_certificate"];

    /// Each kind has its line in the help and the man page, and the line names every key
    /// of the kind's spec in the JSON Schema (the attempts' keys are said once for all).
    #[test]
    fn the_help_and_man_page_name_every_check_kind_and_key() {
        assert!(AFTER_HELP.contains(&format!(
            "all but {} and {} also take tries, interval and timeout",
            NO_ATTEMPTS[0], NO_ATTEMPTS[1]
        )));
        let schema: serde_json::Value =
            serde_json::from_str(&crate::config::schema::config_schema()).expect("the schema");
        for kind in crate::config::checks::KINDS {
            let line = AFTER_HELP
                .lines()
                .find(|l| l.starts_with(&format!("  {kind}: ")))
                .unwrap_or_else(|| panic!("AFTER_HELP has no line `  {kind}: ...`"));
            // http_2xx -> Http2xxSpec, the name of its definition in the schema.
            let def: String = kind
                .split('_')
                .map(|w| w[..1].to_uppercase() + &w[1..])
                .chain(["Spec".to_string()])
                .collect();
            let keys = schema["$defs"][&def]["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("no {def} in the schema"));
            assert!(!keys.is_empty(), "{def}");
            for key in keys.keys() {
                if ["tries", "interval", "timeout"].contains(&key.as_str()) {
                    assert!(!NO_ATTEMPTS.contains(kind), "{kind} takes {key}");
                } else {
                    assert!(
                        line.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .any(|w| w == key),
                        "the help's line of {kind} lacks {key}: {line}"
                    );
                }
            }
            if !NO_ATTEMPTS.contains(kind) {
                assert!(keys.contains_key("tries"), "{kind} takes no tries");
            }
        }
    }
}
