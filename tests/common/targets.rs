//! Targets for the watch tests: a real HTTP server *process* (python3's http.server) that
//! can be killed, stopped and continued like a production service, and an HTTP server that
//! closes idle connections.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use super::lab::{free_tcp_port, http_get, require_program, wait_until};

/// Fails (never skips) when python3 is missing, saying how to install it.
fn require_python3() {
    require_program(
        "python3",
        "the watch tests kill a real server process (python3 -m http.server)",
        "python3",
    );
}

/// `python3 -m http.server` on 127.0.0.1, serving a directory with a `health` file.
pub struct ProcessTarget {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl ProcessTarget {
    pub fn start() -> ProcessTarget {
        require_python3();
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("health"), "ok\n").expect("write the health file");
        let mut t = ProcessTarget {
            child: None,
            port: free_tcp_port(),
            dir,
        };
        t.restart();
        t
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self) -> String {
        format!("http://{}/health", self.addr())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the target runs").id()
    }

    /// Writes the server's process id to `path`, as a service's pid file.
    pub fn write_pid(&self, path: &Path) {
        std::fs::write(path, format!("{}\n", self.pid())).expect("write the pid file");
    }

    /// (Re)starts the server on the same port and waits until it answers.
    pub fn restart(&mut self) {
        self.kill9();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(self.port.to_string())
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        self.child = Some(child);
        let addr = self.addr();
        wait_until(
            "the python HTTP target to answer",
            Duration::from_secs(20),
            || http_get(addr, "/health").is_some_and(|(code, _)| code == 200),
        );
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to the server.
    pub fn signal(&self, signal: &str) {
        super::lab::send_signal(self.pid(), signal);
    }

    /// SIGKILL, and reaps the process.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ProcessTarget {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too.
        self.kill9();
    }
}

/// An HTTP server on 127.0.0.1 that answers every request with 200 and closes a connection
/// that has sent nothing for `idle`, as many servers do with idle keep-alive connections.
pub struct IdleClosingServer {
    addr: SocketAddr,
    idle_closes: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl IdleClosingServer {
    pub fn start(idle: Duration) -> IdleClosingServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let idle_closes = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (closes, stop2) = (idle_closes.clone(), stop.clone());
        thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let closes = closes.clone();
                        thread::spawn(move || serve(stream, idle, &closes));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        IdleClosingServer {
            addr,
            idle_closes,
            stop,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}/health", self.addr)
    }

    /// Connections closed for being idle so far.
    pub fn idle_closes(&self) -> usize {
        self.idle_closes.load(Ordering::SeqCst)
    }
}

impl Drop for IdleClosingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(mut stream: TcpStream, idle: Duration, idle_closes: &AtomicUsize) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(idle));
    let mut buf = [0u8; 4096];
    let mut req = Vec::new();
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
            Err(_) => {
                if req.is_empty() {
                    idle_closes.fetch_add(1, Ordering::SeqCst);
                }
                return;
            }
        }
    }
    let _ =
        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n");
}
