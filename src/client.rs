//! The client commands: `anycastd drain`, `undrain` and `reload` (one request on the
//! control socket) and `anycastd status` (`GET /status`), with what they print and the exit
//! code they end with. They find the daemon through the config file, and keep working when
//! it was edited into an invalid one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::config;
use crate::observe::logging::Reporter;
use crate::observe::status;
use crate::runtime::control::{self, Request};

/// Exit code for a bad config or environment, and for a refused reload.
pub const EXIT_CONFIG: u8 = 2;

/// The most of a reply read from the daemon: a reload's summary of a large config, say.
const MAX_REPLY: u64 = 16 << 20;

/// Warns that the config file is not valid, and that the command asks the daemon at `what`
/// all the same.
pub fn client_warning(report: Reporter, e: &config::ConfigError, what: &str) {
    let text = crate::healthcheck::client_warning(e, what);
    let mut fields = e.json_fields();
    fields.insert("message".into(), text.clone().into());
    report.warning(&text, fields);
}

/// `anycastd drain`, `undrain`, `reload`: one request on the control socket.
pub fn control_command(
    config_path: &Path,
    socket: Option<PathBuf>,
    report: Reporter,
    req: Request,
) -> ExitCode {
    let socket = match socket {
        Some(s) => s,
        None => match config::load_for_client(config_path) {
            Ok((c, invalid)) => {
                if let Some(e) = invalid {
                    let what = format!("control.socket {}", c.control.socket.display());
                    client_warning(report, &e, &what);
                }
                c.control.socket
            }
            Err(e) => {
                let hint =
                    "the control socket is control.socket of the config; give it with --socket";
                let mut fields = e.json_fields();
                fields.insert("hint".into(), hint.into());
                report.report(&format!("{e}\n({hint})"), fields);
                return ExitCode::from(EXIT_CONFIG);
            }
        },
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            report.error(&format!("cannot start the async runtime: {e}"));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let is_reload = req == Request::Reload;
    // A reload builds every check of the new config: give it time.
    let timeout = Duration::from_secs(30);
    match rt.block_on(control::request(&socket, &req, timeout, MAX_REPLY)) {
        Ok(reply) if reply.ok => {
            println!("{}", reply.message);
            ExitCode::SUCCESS
        }
        Ok(reply) => {
            report.error(&reply.message);
            if is_reload {
                ExitCode::from(EXIT_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            report.error(&e.to_string());
            ExitCode::FAILURE
        }
    }
}

/// `anycastd status`: fetches `/status` from a running daemon and prints it.
pub fn status_command(
    config_path: &Path,
    address: Option<&str>,
    json: bool,
    report: Reporter,
) -> ExitCode {
    use crate::healthcheck::{endpoint, get};
    let warn = |e: &config::ConfigError, what: &str| client_warning(report, e, what);
    let got = endpoint(address, config_path, "/status", warn)
        .and_then(|addr| get(addr, "/status", Duration::from_secs(5), 64 << 20));
    let body = match got {
        Ok((200, body)) => body,
        Ok((code, body)) => {
            report.error(&format!("/status answered {code}: {}", body.trim()));
            return ExitCode::FAILURE;
        }
        Err(e) => {
            report.error(&e);
            return ExitCode::FAILURE;
        }
    };
    if json {
        println!("{}", body.trim());
        return ExitCode::SUCCESS;
    }
    match serde_json::from_str::<status::Status>(&body) {
        Ok(s) => {
            print!("{}", status::render_table(&s));
            ExitCode::SUCCESS
        }
        Err(e) => {
            report.error(&format!(
                "the answer of /status is not a status document: {e}"
            ));
            ExitCode::FAILURE
        }
    }
}
