//! NTP servers on loopback for the `ntp` check: Debian's chronyd serving its own clock
//! (`local stratum 8`), which `chronyc local off` turns unsynchronised for real; and a
//! steerable server of our own for what chrony will not do (Kiss-o'-Death, stratum 16, a
//! clock far off, a spoofed origin, garbage, a reply from another port, silence, a flood).

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::lab::{free_udp_port, require_program, wait_until_or};

/// Debian's chrony, by path (root's PATH has /usr/sbin, another user's may not).
const CHRONYD: &str = "/usr/sbin/chronyd";
const CHRONYC: &str = "/usr/bin/chronyc";

/// Fails (never skips) when chrony is missing, saying how to install it.
pub fn require_chrony() {
    let why = "the ntp check is tested against a real NTP server (chronyd)";
    require_program(CHRONYD, why, "chrony");
    require_program(CHRONYC, why, "chrony");
}

/// chronyd on 127.0.0.1 with a free port, serving its own clock at stratum 8 without touching
/// the system's (`-x`), its command socket in a temporary directory.
pub struct Chrony {
    pub addr: SocketAddr,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Chrony {
    pub fn start() -> Chrony {
        require_chrony();
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_udp_port();
        // chronyd refuses a command socket in a directory others can enter.
        let sock_dir = dir.path().join("run");
        std::fs::create_dir(&sock_dir).expect("socket dir");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&sock_dir, std::fs::Permissions::from_mode(0o700))
            .expect("chmod the socket dir");
        let conf = dir.path().join("chrony.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbindaddress 127.0.0.1\nallow 127.0.0.1\nlocal stratum 8\n\
                 cmdport 0\nbindcmdaddress {sock}\npidfile {pid}\n",
                sock = sock_dir.join("chronyd.sock").display(),
                pid = dir.path().join("chronyd.pid").display(),
            ),
        )
        .expect("write chrony.conf");
        let log = std::fs::File::create(dir.path().join("chronyd.log")).expect("log file");
        // -x: never touch the system clock; -d: foreground, log to stderr; -u root: stay
        // the user the tests run as (chronyd drops to _chrony otherwise).
        let child = Command::new(CHRONYD)
            .args(["-x", "-d", "-u", "root", "-f"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start chronyd");
        let c = Chrony {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child: Some(child),
            dir,
        };
        c.wait_for_stratum(Some(8));
        c
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("run/chronyd.sock")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chronyd.log")).unwrap_or_default()
    }

    /// `chronyc local off`: chronyd loses its reference and answers unsynchronised (leap 3).
    pub fn unsynchronise(&self) {
        self.chronyc(&["local", "off"]);
        self.wait_for_stratum(None);
    }

    /// `chronyc local stratum 8`: synchronised again.
    pub fn resynchronise(&self) {
        self.chronyc(&["local", "stratum", "8"]);
        self.wait_for_stratum(Some(8));
    }

    fn chronyc(&self, args: &[&str]) {
        let out = Command::new(CHRONYC)
            .arg("-h")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("run chronyc");
        assert!(
            out.status.success(),
            "chronyc {args:?}: {}{}\nchronyd's log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// Waits until chronyd answers synchronised at `stratum`, or (`None`) unsynchronised.
    fn wait_for_stratum(&self, stratum: Option<u8>) {
        wait_until_or(
            &format!(
                "chronyd on {} to answer with stratum {stratum:?}",
                self.addr
            ),
            Duration::from_secs(20),
            || {
                ask(self.addr).is_some_and(|r| match stratum {
                    Some(s) => r[0] >> 6 != 3 && r[1] == s,
                    None => r[0] >> 6 == 3,
                })
            },
            || self.log(),
        );
    }
}

impl Drop for Chrony {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One NTP client request to `server`, with a blocking socket: the reply's 48 bytes.
pub fn ask(server: SocketAddr) -> Option<[u8; 48]> {
    let s = UdpSocket::bind("127.0.0.1:0").ok()?;
    s.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
    let mut req = [0u8; 48];
    req[0] = 4 << 3 | 3;
    req[40..48].copy_from_slice(&ntp_now(0.0).to_be_bytes());
    s.send_to(&req, server).ok()?;
    let mut buf = [0u8; 512];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    (n >= 48 && buf[24..32] == req[40..48]).then(|| buf[..48].try_into().expect("48 bytes"))
}

/// Now as an NTP timestamp, shifted by `offset` seconds.
pub fn ntp_now(offset: f64) -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
        + offset
        + 2_208_988_800.0;
    let secs = d.floor();
    ((secs as u64) << 32) | (((d - secs) * 4_294_967_296.0) as u64)
}

/// How the steerable server answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Synchronised, stratum 1 (`GPS`), its clock this host's.
    Good,
    /// Leap indicator 3: "my clock is not set", at stratum 2.
    Leap3,
    /// A Kiss-o'-Death with this code.
    Kiss(&'static [u8; 4]),
    /// Synchronised, at this stratum.
    Stratum(u8),
    /// Synchronised, its clock this many seconds off.
    Offset(f64),
    /// A good reply whose origin timestamp is not the request's.
    SpoofedOrigin,
    /// A spoofed reply, then a good one.
    SpoofedThenGood,
    /// Datagrams that are no NTP reply: a short one, and the request sent back.
    Garbage,
    /// A good reply, from another port.
    OtherPort,
    /// Nothing.
    Silent,
    /// This many 48-byte datagrams whose origin is wrong, then nothing.
    Flood(u32),
}

/// An NTP server on 127.0.0.1 that answers the way a test tells it to.
pub struct Steerable {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Steerable {
    pub fn start(mode: Mode) -> Steerable {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind the NTP test server");
        let other = UdpSocket::bind("127.0.0.1:0").expect("bind its other port");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let addr = sock.local_addr().expect("local addr");
        let mode = Arc::new(Mutex::new(mode));
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, n, halt) = (mode.clone(), requests.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !halt.load(Ordering::SeqCst) {
                let Ok((len, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if len < 48 {
                    continue;
                }
                n.fetch_add(1, Ordering::SeqCst);
                let req: [u8; 48] = buf[..48].try_into().expect("48 bytes");
                let mode = *m.lock().expect("mode lock");
                for (from_other, reply) in replies(&req, mode) {
                    let s = if from_other { &other } else { &sock };
                    let _ = s.send_to(&reply, from);
                }
            }
        });
        Steerable {
            addr,
            mode,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().expect("mode lock") = mode;
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Steerable {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The datagrams answering `req` in `mode`, each with whether it goes from the other port.
fn replies(req: &[u8; 48], mode: Mode) -> Vec<(bool, Vec<u8>)> {
    let origin = u64::from_be_bytes(req[40..48].try_into().expect("8 bytes"));
    let reply = |leap: u8, stratum: u8, refid: &[u8; 4], offset: f64, origin: u64| {
        let mut p = vec![0u8; 48];
        p[0] = leap << 6 | 4 << 3 | 4;
        p[1] = stratum;
        p[2] = 6; // poll
        p[3] = 0xec; // precision 2^-20
        p[12..16].copy_from_slice(refid);
        let now = ntp_now(offset);
        p[16..24].copy_from_slice(&(now - (16 << 32)).to_be_bytes()); // reference: 16 s ago
        p[24..32].copy_from_slice(&origin.to_be_bytes());
        p[32..40].copy_from_slice(&now.to_be_bytes());
        p[40..48].copy_from_slice(&ntp_now(offset).to_be_bytes());
        p
    };
    let good = || reply(0, 1, b"GPS\0", 0.0, origin);
    match mode {
        Mode::Good => vec![(false, good())],
        Mode::Leap3 => vec![(false, reply(3, 2, b"GPS\0", 0.0, origin))],
        Mode::Kiss(code) => vec![(false, reply(0, 0, code, 0.0, origin))],
        Mode::Stratum(s) => vec![(false, reply(0, s, b"GPS\0", 0.0, origin))],
        Mode::Offset(o) => vec![(false, reply(0, 1, b"GPS\0", o, origin))],
        Mode::SpoofedOrigin => vec![(false, reply(0, 1, b"GPS\0", 0.0, origin ^ 0x5a5a))],
        Mode::SpoofedThenGood => vec![
            (false, reply(3, 0, b"DENY", 0.0, origin ^ 1)),
            (false, good()),
        ],
        Mode::Garbage => vec![
            (false, b"\xde\xad\xbe\xef not NTP".to_vec()),
            (false, req.to_vec()),
        ],
        Mode::OtherPort => vec![(true, good())],
        Mode::Silent => Vec::new(),
        Mode::Flood(n) => (0..n)
            .map(|i| {
                (
                    false,
                    reply(0, 1, b"GPS\0", 0.0, origin ^ (u64::from(i) + 1)),
                )
            })
            .collect(),
    }
}
