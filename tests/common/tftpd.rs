//! tftpd-hpa (`in.tftpd`), the TFTP server Debian ships, on a free loopback port, serving
//! a directory of its own.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const BIN: &str = "/usr/sbin/in.tftpd";

pub struct Tftpd {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Tftpd {
    /// Fails (never skips) when tftpd-hpa is not installed, saying how to install it.
    pub fn start() -> Tftpd {
        assert!(
            Path::new(BIN).exists(),
            "{BIN} is missing: this test runs the real tftpd-hpa. Install it with \
             `apt-get install -y tftpd-hpa` (or run ./scripts/test.sh, which does)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        // in.tftpd serves as user `tftp`: the directory must be readable by others.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod the tftp root");
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free UDP port")
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = Command::new(BIN)
            .args(["--foreground", "--secure", "--address"])
            .arg(addr.to_string())
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start in.tftpd");
        Tftpd { child, addr, dir }
    }

    /// Puts a world-readable file `name` holding `data` in the served directory.
    pub fn put(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, data).expect("write a served file");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))
            .expect("chmod a served file");
        p
    }
}

impl Drop for Tftpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
