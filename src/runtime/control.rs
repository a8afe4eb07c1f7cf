//! The control socket: how `anycastd drain`, `undrain` and `reload` reach a running daemon
//! (SPEC 12). A Unix socket (mode 0660, `control.socket`), so that only root and the
//! daemon's group can change routes; nothing that changes routes listens on TCP.
//!
//! One request per connection, one JSON object per line each way:
//! `{"command":"drain","services":["web"]}` → `{"ok":true,"message":"drained web: ..."}`.
//! A client that sends garbage gets an error reply; one that says nothing is cut after
//! [`REQUEST_TIMEOUT`]; at most [`MAX_CLIENTS`] are served at once, the others are told so
//! and closed. None of them can block the daemon.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use super::commands::{Answer, Done, Handle, Refused, WeakHandle};
use super::drain::Selection;

/// How long a client may take to send its request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest request line read.
const MAX_REQUEST: u64 = 64 * 1024;
/// Clients served at once.
pub const MAX_CLIENTS: usize = 16;

/// A request to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    Reload,
    Drain {
        #[serde(default)]
        services: Vec<String>,
        #[serde(default)]
        all: bool,
        #[serde(default)]
        force: bool,
    },
    Undrain {
        #[serde(default)]
        services: Vec<String>,
        #[serde(default)]
        all: bool,
    },
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    pub message: String,
    /// The config file a reload read (the daemon's own, whatever file the client read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// Why the control socket could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "cannot reach anycastd at {}: {source} (is it running? the socket is control.socket of the config given with --config, or give it with --socket)",
        path.display()
    )]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: another anycastd is already listening there", path.display())]
    InUse { path: PathBuf },
    #[error("cannot listen on {} (control.socket): {source}", path.display())]
    Listen {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: no answer within {timeout:?}", path.display())]
    Timeout { path: PathBuf, timeout: Duration },
    #[error("{}: {what}", path.display())]
    Protocol { path: PathBuf, what: String },
}

/// Listens on `path` and serves requests with `handle` until the task is dropped or the
/// daemon is gone. A socket file left by a daemon that died is replaced; one that a live
/// daemon answers on is an error.
pub async fn listen(path: &Path, handle: WeakHandle) -> Result<ControlSocket, ControlError> {
    let listen_err = |source| ControlError::Listen {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(listen_err)?;
    }
    if std::fs::symlink_metadata(path).is_ok() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(ControlError::InUse {
                path: path.to_path_buf(),
            });
        }
        use std::os::unix::fs::FileTypeExt;
        let is_socket = std::fs::symlink_metadata(path)
            .map(|m| m.file_type().is_socket())
            .unwrap_or(false);
        if !is_socket {
            return Err(listen_err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a file that is not a socket is in the way",
            )));
        }
        std::fs::remove_file(path).map_err(listen_err)?;
    }
    let listener = UnixListener::bind(path).map_err(listen_err)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
            .map_err(listen_err)?;
    }
    info!(socket = %path.display(), "control socket listening");
    let task = tokio::spawn(accept(listener, handle));
    Ok(ControlSocket {
        path: path.to_path_buf(),
        task,
    })
}

/// The listening control socket; dropping it stops listening and removes the socket file.
pub struct ControlSocket {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn accept(listener: UnixListener, handle: WeakHandle) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                warn!(
                    error = e.to_string().as_str(),
                    "control socket: accept failed"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(handle) = handle.upgrade() else {
            // The daemon is gone.
            return;
        };
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                tokio::spawn(async move {
                    serve_one(stream, &handle).await;
                    drop(slot);
                });
            }
            Err(_) => {
                tokio::spawn(async move {
                    let busy = Reply {
                        ok: false,
                        message: format!(
                            "busy: {MAX_CLIENTS} requests are being served; try again"
                        ),
                        file: None,
                    };
                    let _ = write_reply(stream, &busy).await;
                });
            }
        }
    }
}

async fn serve_one(stream: UnixStream, handle: &Handle) {
    let (read, write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST));
    let reply = match tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await {
        Err(_) => Reply {
            ok: false,
            message: format!("no request within {REQUEST_TIMEOUT:?}"),
            file: None,
        },
        Ok(Err(e)) => Reply {
            ok: false,
            message: format!("cannot read the request: {e}"),
            file: None,
        },
        Ok(Ok(_)) => match serde_json::from_str::<Request>(line.trim()) {
            Err(e) => Reply {
                ok: false,
                message: format!(
                    "not a request: {e} (send one JSON object on one line, e.g. {{\"command\":\"reload\"}})"
                ),
                file: None,
            },
            Ok(req) => {
                debug!(request = ?req, "control request");
                let r = execute(req, handle).await;
                let file = match &r {
                    Ok(Done::Reloaded { file, .. }) => Some(file.display().to_string()),
                    _ => None,
                };
                Reply {
                    ok: r.is_ok(),
                    file,
                    message: match r {
                        Ok(done) => done.to_string(),
                        Err(refused) => refused.to_string(),
                    },
                }
            }
        },
    };
    let _ = write_reply(write, &reply).await;
}

async fn write_reply(mut w: impl AsyncWriteExt + Unpin, reply: &Reply) -> std::io::Result<()> {
    let mut text = serde_json::to_string(reply).unwrap_or_default();
    text.push('\n');
    tokio::time::timeout(REQUEST_TIMEOUT, w.write_all(text.as_bytes()))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    w.shutdown().await
}

async fn execute(req: Request, handle: &Handle) -> Answer {
    let selection = |services: Vec<String>, all: bool| match (all, services.is_empty()) {
        (true, true) => Ok(Selection::All),
        (false, false) => Ok(Selection::Services(services)),
        (true, false) => Err(Refused::Selection("give service names or --all, not both")),
        (false, true) => Err(Refused::Selection("name the services, or give --all")),
    };
    match req {
        Request::Reload => handle.reload().await,
        Request::Drain {
            services,
            all,
            force,
        } => handle.drain(selection(services, all)?, force).await,
        Request::Undrain { services, all } => handle.undrain(selection(services, all)?).await,
    }
}

/// Sends `req` to the daemon listening on `path` and returns its reply.
pub async fn request(
    path: &Path,
    req: &Request,
    timeout: Duration,
    max_reply: u64,
) -> Result<Reply, ControlError> {
    let proto = |what: String| ControlError::Protocol {
        path: path.to_path_buf(),
        what,
    };
    let exchange = async {
        let mut s = UnixStream::connect(path)
            .await
            .map_err(|source| ControlError::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        let mut text = serde_json::to_string(req).map_err(|e| proto(e.to_string()))?;
        text.push('\n');
        // A daemon serving its most clients answers "busy" and closes without reading: the
        // write may fail then, and its answer is still there to read.
        let sent = s.write_all(text.as_bytes()).await;
        let mut line = String::new();
        BufReader::new(s.take(max_reply))
            .read_line(&mut line)
            .await
            .map_err(|e| proto(format!("cannot read the reply: {e}")))?;
        if line.trim().is_empty()
            && let Err(e) = sent
        {
            return Err(proto(format!("cannot send the request: {e}")));
        }
        serde_json::from_str::<Reply>(line.trim())
            .map_err(|e| proto(format!("not a reply from anycastd ({e}): {line:?}")))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| ControlError::Timeout {
            path: path.to_path_buf(),
            timeout,
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_on_the_wire() {
        let r: Request =
            serde_json::from_str(r#"{"command":"drain","services":["web"]}"#).expect("drain");
        assert_eq!(
            r,
            Request::Drain {
                services: vec!["web".into()],
                all: false,
                force: false
            }
        );
        let r: Request = serde_json::from_str(r#"{"command":"reload"}"#).expect("reload");
        assert_eq!(r, Request::Reload);
        assert!(serde_json::from_str::<Request>(r#"{"command":"explode"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"command":"drain","x":1}"#).is_err());
    }
}
