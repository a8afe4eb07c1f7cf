//! A real authoritative DNS primary and secondary for `dns_lookup`: Debian's knotd, twice,
//! on 127.0.0.1 with free ports, in the foreground under temporary directories. The primary
//! serves `example.test` from a zone file whose serial a test sets (`knotc zone-reload`);
//! the secondary transfers it from the primary (NOTIFY, then IXFR/AXFR), and its updates can
//! be frozen (`knotc zone-freeze`: it keeps answering, with the old serial) and thawed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::lab::{free_udp_port, require_program, wait_until_or};

pub const ZONE: &str = "example.test";

/// Debian's knot, by path (root's PATH has /usr/sbin, another user's may not).
const KNOTD: &str = "/usr/sbin/knotd";
const KNOTC: &str = "/usr/sbin/knotc";

/// Fails (never skips) when knot is missing, saying how to install it.
pub fn require_knot() {
    let why = "dns_lookup's soa_serial_of is tested against a real primary and secondary (knotd)";
    require_program(KNOTD, why, "knot");
    require_program(KNOTC, why, "knot");
}

/// The zone at `serial`: SOA, NS, and the records the tests ask for.
fn zone_text(serial: u32) -> String {
    format!(
        "$ORIGIN {ZONE}.\n$TTL 60\n\
         @ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. {serial} 3600 600 86400 60\n\
         @ IN NS ns1\n\
         ns1 IN A 127.0.0.1\n\
         www IN A 192.0.2.10\n\
         www IN AAAA 2001:db8::10\n\
         @ IN MX 10 mail\n\
         mail IN A 192.0.2.25\n\
         @ IN TXT \"v=spf1 -all\"\n\
         ftp IN CNAME www\n\
         _sip._udp IN SRV 10 60 5060 sip\n\
         sip IN A 192.0.2.50\n"
    )
}

/// One knotd.
pub struct Knot {
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Knot {
    /// The primary, serving the zone at `serial`; `notify`: the secondary's port, if any.
    pub fn primary(serial: u32, notify: Option<u16>) -> Knot {
        require_knot();
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(format!("{ZONE}.zone")), zone_text(serial))
            .expect("write the zone");
        let (remote, notify) = match notify {
            Some(p) => (
                format!("remote:\n  - id: secondary\n    address: 127.0.0.1@{p}\n"),
                "    notify: secondary\n",
            ),
            None => (String::new(), ""),
        };
        let zone = format!(
            "{remote}acl:\n  - id: transfer\n    address: 127.0.0.1\n    action: transfer\n\
             zone:\n  - domain: {ZONE}\n    acl: transfer\n{notify}"
        );
        let k = Knot::launch(dir, free_udp_port(), &zone);
        k.wait_for_serial(serial);
        k
    }

    /// A secondary of the zone of the primary on `primary`, listening on `port`; waits for
    /// its first transfer.
    pub fn secondary(port: u16, primary: &Knot) -> Knot {
        require_knot();
        let dir = tempfile::tempdir().expect("tempdir");
        let zone = format!(
            "remote:\n  - id: primary\n    address: 127.0.0.1@{}\n\
             acl:\n  - id: notify\n    address: 127.0.0.1\n    action: notify\n\
             zone:\n  - domain: {ZONE}\n    master: primary\n    acl: notify\n",
            primary.addr.port()
        );
        let k = Knot::launch(dir, port, &zone);
        k.wait_for_serial(primary.serial().expect("the primary's serial"));
        k
    }

    fn launch(dir: tempfile::TempDir, port: u16, zone: &str) -> Knot {
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("knot.conf"),
            format!(
                "server:\n  rundir: \"{d}\"\n  listen: 127.0.0.1@{port}\n\
                 database:\n  storage: \"{d}/db\"\n\
                 log:\n  - target: stderr\n    any: info\n\
                 template:\n  - id: default\n    storage: \"{d}\"\n    file: \"%s.zone\"\n\
                 {zone}"
            ),
        )
        .expect("write knot.conf");
        let log = std::fs::File::create(dir.path().join("knotd.log")).expect("log file");
        let child = Command::new(KNOTD)
            .arg("-c")
            .arg(dir.path().join("knot.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start knotd");
        Knot {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
            child: Some(child),
        }
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("knot.conf")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("knotd.log")).unwrap_or_default()
    }

    /// `knotc ARGS` on this server; its output.
    fn knotc(&self, args: &[&str]) -> String {
        let out = Command::new(KNOTC)
            .arg("-c")
            .arg(self.conf())
            .args(args)
            .output()
            .expect("run knotc");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "knotc {args:?}: {text}\nknotd's log:\n{}",
            self.log()
        );
        text
    }

    /// The serial of the zone this server serves now, if it has the zone.
    pub fn serial(&self) -> Option<u32> {
        let out = Command::new(KNOTC)
            .arg("-c")
            .arg(self.conf())
            .args(["zone-status", ZONE])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let rest = text.split_once("serial: ")?.1;
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    }

    fn wait_for_serial(&self, serial: u32) {
        wait_until_or(
            &format!("knotd on {} to serve serial {serial}", self.addr),
            Duration::from_secs(20),
            || self.serial() == Some(serial),
            || format!("zone-status: {:?}\nlog:\n{}", self.serial(), self.log()),
        );
    }

    /// The primary: the zone file at `serial`, reloaded (and NOTIFY sent).
    pub fn set_serial(&self, serial: u32) {
        std::fs::write(self.zone_file(), zone_text(serial)).expect("rewrite the zone");
        self.knotc(&["zone-reload", ZONE]);
        self.wait_for_serial(serial);
    }

    fn zone_file(&self) -> PathBuf {
        self.dir.path().join(format!("{ZONE}.zone"))
    }

    /// The secondary: no more updates (it keeps answering with the serial it has).
    pub fn freeze(&self) {
        self.knotc(&["zone-freeze", ZONE]);
    }

    /// The secondary: updates again, and a refresh from the primary at once; waits until it
    /// serves `serial`.
    pub fn thaw(&self, serial: u32) {
        self.knotc(&["zone-thaw", ZONE]);
        self.knotc(&["zone-refresh", ZONE]);
        self.wait_for_serial(serial);
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A primary and its secondary, in sync at `serial`.
pub fn primary_and_secondary(serial: u32) -> (Knot, Knot) {
    let port = free_udp_port();
    let primary = Knot::primary(serial, Some(port));
    let secondary = Knot::secondary(port, &primary);
    (primary, secondary)
}
