//! The anycastd side of the lab: a controllable HTTP target, config files, and the real
//! `anycastd` binary run as a child process.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Fails (never skips) when `program --version` cannot run, saying what needs it and which
/// Debian package installs it.
pub fn require_program(program: &str, needed_for: &str, package: &str) {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{program}` is not installed: {needed_for}. Install it with `apt-get install -y \
         {package}` (or run ./scripts/test.sh, which does)"
    );
}

/// Polls `cond` every 10 ms until it holds or `deadline` passes; returns the time it took.
pub fn wait_until(what: &str, deadline: Duration, cond: impl FnMut() -> bool) -> Duration {
    wait_until_or(what, deadline, cond, String::new)
}

/// Like [`wait_until`]; on timeout the failure message ends with `context()` (logs, state).
pub fn wait_until_or(
    what: &str,
    deadline: Duration,
    mut cond: impl FnMut() -> bool,
    context: impl FnOnce() -> String,
) -> Duration {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() >= deadline {
            panic!(
                "timed out after {deadline:?} waiting for {what}\n{}",
                context()
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
    start.elapsed()
}

/// Makes the listening socket of an [`HttpTarget`] on an address.
pub type Binder = Arc<dyn Fn(SocketAddr) -> std::io::Result<TcpListener> + Send + Sync>;

/// A small HTTP server on 127.0.0.1 that answers every request with `status`, and can be
/// stopped (its port then refuses connections) and started again on the same port.
pub struct HttpTarget {
    addr: SocketAddr,
    status: Arc<AtomicU16>,
    running: Option<(Arc<AtomicBool>, thread::JoinHandle<()>)>,
    bind: Binder,
}

impl HttpTarget {
    pub fn start() -> HttpTarget {
        HttpTarget::start_with("127.0.0.1:0".parse().expect("an address"), Arc::new(listen))
    }

    /// On `addr`, with its listeners made by `bind` (e.g. in another network namespace).
    pub fn start_with(addr: SocketAddr, bind: Binder) -> HttpTarget {
        let listener = bind(addr).unwrap_or_else(|e| panic!("bind an HTTP target on {addr}: {e}"));
        let addr = listener.local_addr().expect("local addr");
        let mut t = HttpTarget {
            addr,
            status: Arc::new(AtomicU16::new(200)),
            running: None,
            bind,
        };
        t.serve(listener);
        t
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}/health", self.addr)
    }

    /// The status code every request gets from now on.
    pub fn set_status(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }

    fn serve(&mut self, listener: TcpListener) {
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, status) = (stop.clone(), self.status.clone());
        let handle = thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => answer(stream, status.load(Ordering::SeqCst)),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(2))
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        self.running = Some((stop, handle));
    }

    /// Stops listening: connections to the port are refused from now on.
    pub fn stop(&mut self) {
        if let Some((stop, handle)) = self.running.take() {
            stop.store(true, Ordering::SeqCst);
            let _ = handle.join();
        }
    }

    /// Listens again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let listener = (self.bind)(self.addr).expect("rebind the HTTP target's port");
        self.serve(listener);
    }
}

impl Drop for HttpTarget {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A listener with a deep accept queue, like a production server's: std's `bind` listens
/// with a backlog of 128, and a burst of checks (the benchmark's 1,000 at once) overflowing
/// it would see dropped SYNs, i.e. connect timeouts, instead of a slow answer.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(4096)?;
    Ok(s.into())
}

fn answer(mut stream: TcpStream, status: u16) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 4096];
    let mut req = Vec::new();
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let body = "ok\n";
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The real `anycastd` binary, run on a config file.
pub struct Anycastd {
    child: Option<Child>,
    log: PathBuf,
    config: PathBuf,
    pub metrics: SocketAddr,
}

impl Anycastd {
    /// Starts anycastd on `config` (written to `dir`), with debug logs to a file.
    pub fn start(dir: &Path, config: &str, metrics: SocketAddr) -> Anycastd {
        Anycastd::start_with_env(dir, config, metrics, &[])
    }

    /// Like [`Anycastd::start`], with extra environment variables.
    pub fn start_with_env(
        dir: &Path,
        config: &str,
        metrics: SocketAddr,
        env: &[(&str, &str)],
    ) -> Anycastd {
        Anycastd::launch(
            dir,
            config,
            metrics,
            env,
            &[],
            Path::new(env!("CARGO_BIN_EXE_anycastd")),
        )
    }

    /// Starts `binary` on `config` (written to `dir`) behind the command `prefix` (e.g.
    /// `setpriv --reuid=nobody ... --`), from `dir` as working directory. `dir` and the
    /// config are made readable by every user, for a prefix that drops privileges.
    pub fn launch(
        dir: &Path,
        config: &str,
        metrics: SocketAddr,
        env: &[(&str, &str)],
        prefix: &[&str],
        binary: &Path,
    ) -> Anycastd {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("anycastd.yaml");
        std::fs::write(&path, config).expect("write the anycastd config");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .expect("make the config dir readable");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .expect("make the config readable");
        let log = dir.join("anycastd.log");
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(binary);
                c
            }
            None => Command::new(binary),
        };
        let child = cmd
            .arg("--config")
            .arg(&path)
            .current_dir(dir)
            .env("LOG_LEVEL", "debug")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("create the anycastd log"))
            .spawn()
            .expect("start the anycastd binary");
        Anycastd {
            child: Some(child),
            log,
            config: path,
            metrics,
        }
    }

    /// Runs `anycastd ARGS` (a client command such as `drain`) on this daemon's config file.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_anycastd"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .output()
            .expect("run the anycastd binary")
    }

    /// The timestamp of the first log line containing `what`.
    pub fn logged_at(&self, what: &str) -> Option<std::time::SystemTime> {
        let log = self.log();
        let line = log.lines().find(|l| l.contains(what))?;
        // Text logs start with an RFC 3339 timestamp; ANSI colours are off (not a tty).
        let ts = line.split_whitespace().next()?;
        humantime::parse_rfc3339_weak(ts.trim_end_matches('Z')).ok()
    }

    /// The config file it runs.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// Writes a new config file (for a reload).
    pub fn rewrite_config(&self, config: &str) {
        std::fs::write(&self.config, config).expect("rewrite the anycastd config");
    }

    /// Sends `signal` (e.g. "HUP") without waiting for anything.
    pub fn signal(&self, signal: &str) {
        send_signal(self.pid().expect("anycastd is running"), signal);
    }

    /// SIGKILL: the daemon dies without withdrawing anything or removing its marks.
    pub fn kill9_for_test(&mut self) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        let _ = c.kill();
        c.wait().ok()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The process id, while it runs (a prefix such as setpriv execs anycastd in place).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET /metrics` from the daemon (empty when it does not answer).
    pub fn metrics_text(&self) -> String {
        http_get(self.metrics, "/metrics")
            .map(|(_, body)| body)
            .unwrap_or_default()
    }

    /// A sample of the daemon's metrics, read with the exposition parser.
    pub fn sample(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        super::prom::value(&super::prom::parse(&self.metrics_text()), name, labels)
    }

    /// Waits until `/healthz` answers 200; fails at once, with the log, if the process exits
    /// first (a port taken, a config refused), and with the log and the last answer on
    /// timeout.
    pub fn wait_healthy(&mut self, deadline: Duration) {
        let mut last = None;
        let start = Instant::now();
        loop {
            last = http_get(self.metrics, "/healthz").or(last);
            if last.as_ref().is_some_and(|r| r.0 == 200) {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!(
                    "anycastd exited ({status}) before /healthz answered; log:\n{}",
                    self.log()
                );
            }
            assert!(
                start.elapsed() < deadline,
                "/healthz did not answer 200 within {deadline:?} (last answer: {last:?}); log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` (e.g. "TERM") and waits for the exit.
    pub fn signal_and_wait(&mut self, signal: &str, deadline: Duration) -> ExitStatus {
        self.signal(signal);
        self.wait(deadline)
    }

    /// Waits for the process to exit by itself.
    pub fn wait(&mut self, deadline: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("anycastd is running");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(
                start.elapsed() < deadline,
                "anycastd did not exit within {deadline:?}; log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Anycastd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A minimal HTTP/1.1 GET on loopback: `(status, body)`.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let status = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// `GET /status` at `addr` as JSON; fails with the answer when it is not a JSON 200.
pub fn status(addr: SocketAddr) -> serde_json::Value {
    let (code, body) = http_get(addr, "/status").expect("GET /status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("/status is not JSON ({e}): {body}"))
}

/// `GET /status` at `addr` as JSON, or `None` while the daemon does not answer with one.
pub fn try_status(addr: SocketAddr) -> Option<serde_json::Value> {
    let (code, body) = http_get(addr, "/status")?;
    (code == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

/// Sends `signal` (e.g. "TERM") to process `pid` with kill(1); fails if kill does.
pub fn send_signal(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(ok.success(), "kill -{signal} {pid} failed");
}

/// A name unique to this test process: `anycastd-test-<pid>-<what>` (containers, network
/// namespaces).
pub fn unique(what: &str) -> String {
    format!("anycastd-test-{}-{what}", std::process::id())
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A free TCP port on 127.0.0.1, closed again. Never the same port twice in one test
/// binary: the kernel may hand a released port out again, and two tests running side by
/// side would then both configure it (one daemon fails to bind, the other talks to the
/// wrong server). Still racy against other processes.
pub fn free_tcp_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut given = GIVEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A port on 127.0.0.1 free for UDP and for TCP (a DNS server listens on both), closed
/// again; never the same port twice in one test binary (see [`free_tcp_port`]). Still racy
/// against other processes.
pub fn free_udp_port() -> u16 {
    loop {
        let port = free_tcp_port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
