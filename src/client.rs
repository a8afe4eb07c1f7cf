//! The client commands: `anycastd drain`, `undrain` and `reload` (one request on the
//! control socket) and `anycastd status` (`GET /status`), with what they print and the exit
//! code they end with. They find the daemon through the config file, and keep working when
//! it was edited into an invalid one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::config;
use crate::observe::logging::Reporter;
use crate::observe::{status, table};
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
                // The file does not parse: its control.socket is read as well as it can be
                // (the default when it cannot), and the daemon asked there all the same. A
                // reload is the daemon's to refuse: it reads the same file, logs the
                // refusal at ERROR, sets anycastd_config_last_reload_successful to 0 and
                // shows it in `status` (SPEC 19); refused here, nobody would know.
                let socket = socket_of_unparsed(config_path);
                if req == Request::Reload {
                    // The daemon's refusal says what is wrong with the file.
                    return ask(&socket, report, req, Some(&e), config_path);
                }
                let what = format!("control.socket {}", socket.display());
                client_warning(report, &e, &what);
                return ask(&socket, report, req, None, config_path);
            }
        },
    };
    ask(&socket, report, req, None, config_path)
}

/// Whether `a` and `b` name the same file (device and inode: a symlink, another spelling
/// or a bind mount of the same file is the same); `None` when either cannot be looked at.
fn same_file(a: &Path, b: &Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let (a, b) = (std::fs::metadata(a).ok()?, std::fs::metadata(b).ok()?);
    Some(a.dev() == b.dev() && a.ino() == b.ino())
}

/// A reload reads the daemon's own config file, not the one the client was given (that one
/// only says where the control socket is): says so when they are not the same file.
fn other_file_warning(report: Reporter, daemon: &str, given: &Path) {
    if same_file(Path::new(daemon), given) != Some(false) {
        return;
    }
    let text = format!(
        "the daemon reloaded its own config file {daemon}, not {} (read here only to find the control socket); to run that file, start anycastd with --config {}",
        given.display(),
        given.display()
    );
    let mut fields = serde_json::Map::new();
    fields.insert("daemon_file".into(), daemon.into());
    fields.insert("given_file".into(), given.display().to_string().into());
    report.warning(&text, fields);
}

/// Sends `req` to the daemon at `socket` and reports its answer. `unparsed`: the config
/// file's error, for a reload of a file that does not parse: when the daemon cannot be
/// reached, it is reported with the error (the daemon was not told).
fn ask(
    socket: &Path,
    report: Reporter,
    req: Request,
    unparsed: Option<&config::ConfigError>,
    given: &Path,
) -> ExitCode {
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
    match rt.block_on(control::request(socket, &req, timeout, MAX_REPLY)) {
        Ok(reply) if reply.ok => {
            println!("{}", reply.message);
            if let Some(daemon) = &reply.file {
                other_file_warning(report, daemon, given);
            }
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
        Err(e) => match unparsed {
            Some(file) => {
                let text = format!(
                    "{file}\nthe daemon was not told: {e}\n(a daemon that runs keeps the config it loaded before)"
                );
                let mut fields = file.json_fields();
                fields.insert("daemon".into(), format!("not told: {e}").into());
                report.report(&text, fields);
                ExitCode::from(EXIT_CONFIG)
            }
            None => {
                report.error(&e.to_string());
                ExitCode::FAILURE
            }
        },
    }
}

/// The control socket a config file that does not parse names, as well as it can be read:
/// its `control.socket` when the file is well-formed YAML or JSON with the wrong shape, else
/// the value of a `socket:` line indented under a `control:` line, else the default
/// ([`config::model::DEFAULT_CONTROL_SOCKET`]).
pub fn socket_of_unparsed(path: &Path) -> PathBuf {
    let text = crate::small_file::read_settled(path, config::MAX_CONFIG_BYTES).unwrap_or_default();
    socket_in(&text).unwrap_or_else(|| PathBuf::from(config::model::DEFAULT_CONTROL_SOCKET))
}

fn socket_in(text: &str) -> Option<PathBuf> {
    let value = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .or_else(|| serde_saphyr::from_str::<serde_json::Value>(text).ok());
    if let Some(v) = value {
        return v["control"]["socket"].as_str().map(PathBuf::from);
    }
    let mut in_control = false;
    for line in text.lines() {
        let content = line.split(" #").next().unwrap_or("").trim_end();
        if content.is_empty() || content.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with([' ', '\t']) {
            in_control = content == "control:";
            continue;
        }
        if in_control && let Some(v) = content.trim_start().strip_prefix("socket:") {
            let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
            if !v.is_empty() {
                return Some(PathBuf::from(v));
            }
        }
    }
    None
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
            print!("{}", table::render_table(&s));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_of_a_file_that_does_not_parse() {
        // Well-formed, the wrong shape.
        assert_eq!(
            socket_in("announcer: [1]\ncontrol:\n  socket: /run/a.sock\n"),
            Some(PathBuf::from("/run/a.sock"))
        );
        assert_eq!(
            socket_in(r#"{"announcer": 1, "control": {"socket": "/run/j.sock"}}"#),
            Some(PathBuf::from("/run/j.sock"))
        );
        // Not even YAML: the line under `control:`.
        assert_eq!(
            socket_in(
                "announcer: [not a map\ncontrol:\n  # where\n  socket: \"/run/b.sock\"  # here\nmetrics:\n  socket: /no\n"
            ),
            Some(PathBuf::from("/run/b.sock"))
        );
        assert_eq!(
            socket_in("announcer: [not a map\nmetrics:\n  socket: /no\n"),
            None
        );
        assert_eq!(socket_in("control: {socket: /run/c.sock\n"), None);
    }
}
