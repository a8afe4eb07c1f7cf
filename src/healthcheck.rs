//! Asking a running anycastd over its HTTP endpoint: where it listens ([`endpoint`], from
//! `--address` or the config), a bounded `GET` ([`get`]), and `anycastd healthcheck`, which
//! asks `GET /healthz` and exits 0 (healthy) or 1 (anything else). The healthcheck exists
//! because the container image has no shell and no curl: the compose healthcheck, the
//! image's HEALTHCHECK and the gobgpd side's supervisor run the anycastd binary itself to
//! probe the daemon. `anycastd status` asks `GET /status` the same way.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::config;

/// The subcommand: probes `address`, or else the config's `metrics.address`; prints why on
/// failure and returns 1 (the exit code container runtimes read as "unhealthy").
pub fn run(address: Option<&str>, config_path: &Path, timeout: Duration) -> ExitCode {
    let warn = |e: &config::ConfigError, what: &str| {
        eprintln!("anycastd: warning: {}", client_warning(e, what));
    };
    let verdict =
        endpoint(address, config_path, "/healthz", warn).and_then(|addr| probe(addr, timeout));
    match verdict {
        Ok(body) => {
            println!("healthy: {body}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where the daemon's endpoint is: `address` (host:port) when given, else the config's
/// `metrics.address` as a client reaches it. `what` names the path asked for, for the error
/// when the config has no endpoint at all.
pub fn endpoint(
    address: Option<&str>,
    config_path: &Path,
    what: &str,
    warn: impl FnOnce(&config::ConfigError, &str),
) -> Result<SocketAddr, String> {
    if let Some(a) = address {
        return a
            .to_socket_addrs()
            .map_err(|e| format!("--address {a}: {e}; write host:port"))?
            .next()
            .ok_or_else(|| format!("--address {a}: no address for that name"));
    }
    match config::load_for_client(config_path) {
        Ok((c, invalid)) if c.metrics.enabled => {
            if let Some(e) = invalid {
                let what = format!("metrics.address {}", c.metrics.address);
                warn(&e, &what);
            }
            Ok(probe_address(c.metrics.address))
        }
        Ok(_) => Err(format!(
            "metrics.enabled is false in {}, so there is no {what} to ask (enable it, or give --address host:port)",
            config_path.display()
        )),
        Err(e) => Err(format!(
            "{e}\n(give the daemon's metrics address with --address host:port)"
        )),
    }
}

/// What a client command says when the config file fails validation but still names where
/// the daemon is (`what`): it goes on, since the daemon runs the config it loaded before.
pub fn client_warning(e: &config::ConfigError, what: &str) -> String {
    format!(
        "{e}\n(the running daemon keeps the config it loaded before; asking it at {what} anyway)"
    )
}

/// The address to probe: `metrics.address` as a client reaches it (an unspecified address
/// such as `0.0.0.0` means "every local address", so loopback is asked).
pub fn probe_address(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(a) if a.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        IpAddr::V6(a) if a.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    }
}

/// `GET /healthz` on `addr`: `Ok` with the body on a 200, `Err` saying why not.
pub fn probe(addr: SocketAddr, timeout: Duration) -> Result<String, String> {
    // The answer is a few lines; read at most 64 KiB of it.
    match get(addr, "/healthz", timeout, 64 * 1024)? {
        (200, body) => Ok(body.trim().to_string()),
        (status, body) => Err(format!(
            "{addr}: /healthz answered {status}: {}",
            body.trim()
        )),
    }
}

/// `GET path` on `addr`, every step bounded by `timeout`, at most `limit` bytes read:
/// the status code and the body.
pub fn get(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
    limit: u64,
) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {addr}: {e} (is anycastd running?)"))?;
    s.set_read_timeout(Some(timeout))
        .and_then(|()| s.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("{addr}: {e}"))?;
    // One write: `write!` on the socket would send the request in pieces, and a server
    // that answers after the first piece and closes made the next one fail with EPIPE.
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes())
        .map_err(|e| format!("{addr}: cannot send the request: {e}"))?;
    let mut resp = Vec::new();
    s.take(limit)
        .read_to_end(&mut resp)
        .map_err(|e| format!("{addr}: no answer within {timeout:?}: {e}"))?;
    let resp = String::from_utf8_lossy(&resp);
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("{addr}: not an HTTP answer"))?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Answers one connection with `status` and `body`.
    fn serve_once(status: u16, body: &'static str) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        addr
    }

    #[test]
    fn healthy_is_ok() {
        let addr = serve_once(200, "ok\n");
        assert_eq!(probe(addr, Duration::from_secs(2)), Ok("ok".to_string()));
    }

    #[test]
    fn unhealthy_names_the_stuck_loops() {
        let addr = serve_once(503, "announcer: stopped\n");
        let e = probe(addr, Duration::from_secs(2)).expect_err("503");
        assert!(e.contains("503") && e.contains("announcer: stopped"), "{e}");
    }

    #[test]
    fn nothing_listening_is_an_error() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let e = probe(addr, Duration::from_secs(2)).expect_err("refused");
        assert!(e.contains("cannot connect"), "{e}");
    }

    #[test]
    fn a_silent_server_times_out() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let start = std::time::Instant::now();
        let e = probe(addr, Duration::from_millis(200)).expect_err("silence");
        assert!(start.elapsed() < Duration::from_secs(2), "{e}");
        drop(l);
    }

    #[test]
    fn unspecified_listen_address_is_probed_on_loopback() {
        let a: SocketAddr = "0.0.0.0:9090".parse().expect("addr");
        assert_eq!(probe_address(a), "127.0.0.1:9090".parse().expect("addr"));
        let a: SocketAddr = "[::]:9090".parse().expect("addr");
        assert_eq!(probe_address(a), "[::1]:9090".parse().expect("addr"));
        let a: SocketAddr = "10.1.2.3:9090".parse().expect("addr");
        assert_eq!(probe_address(a), a);
    }
}
