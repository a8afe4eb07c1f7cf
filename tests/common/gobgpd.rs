//! Real gobgpd processes for tests: a bare "speaker" that anycastd configures over the API,
//! and a "router" configured from a file, peering with the speaker, whose RIB the tests read
//! through the `gobgp` CLI.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Fails (never skips) when gobgpd is not installed, saying how to install it.
pub fn require_gobgpd() {
    for bin in ["gobgpd", "gobgp"] {
        let found = Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(
            found,
            "`{bin}` is not installed: these tests run real gobgpd. Install it with \
             `apt-get install -y gobgpd` (or run ./scripts/test.sh, which does)"
        );
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on loopback")
        .port()
}

pub struct RouterOpts {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub listen_addr: Ipv4Addr,
    pub neighbor_addr: IpAddr,
    pub neighbor_asn: u32,
}

pub struct Gobgpd {
    child: Option<Child>,
    api_port: u16,
    bgp_port: u16,
    config: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl Gobgpd {
    /// A gobgpd with no config: anycastd sets it up over the API.
    pub fn speaker() -> Gobgpd {
        let mut g = Gobgpd {
            child: None,
            api_port: free_port(),
            bgp_port: 0,
            config: None,
            dir: tempfile::tempdir().expect("tempdir"),
        };
        g.restart();
        g
    }

    /// A gobgpd listening for BGP on `listen_addr` (a free port) with one passive neighbor.
    pub fn router(o: RouterOpts) -> Gobgpd {
        Gobgpd::router_with(o, &[])
    }

    /// Like [`Gobgpd::router`], with more passive IPv4 neighbors `(address, asn)`.
    pub fn router_with(o: RouterOpts, extra: &[(IpAddr, u32)]) -> Gobgpd {
        let dir = tempfile::tempdir().expect("tempdir");
        let bgp_port = free_port();
        let config = dir.path().join("router.toml");
        let toml = format!(
            r#"[global.config]
  as = {asn}
  router-id = "{rid}"
  port = {bgp_port}
  local-address-list = ["{listen}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{naddr}"
    peer-as = {nasn}
  [neighbors.transport.config]
    passive-mode = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
"#,
            asn = o.asn,
            rid = o.router_id,
            listen = o.listen_addr,
            naddr = o.neighbor_addr,
            nasn = o.neighbor_asn,
        );
        let mut toml = toml;
        for (addr, asn) in extra {
            toml.push_str(&format!(
                r#"[[neighbors]]
  [neighbors.config]
    neighbor-address = "{addr}"
    peer-as = {asn}
  [neighbors.transport.config]
    passive-mode = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"#
            ));
        }
        std::fs::write(&config, toml).expect("write router config");
        let mut g = Gobgpd {
            child: None,
            api_port: free_port(),
            bgp_port,
            config: Some(config),
            dir,
        };
        g.restart();
        g
    }

    pub fn api_port(&self) -> u16 {
        self.api_port
    }

    pub fn bgp_port(&self) -> u16 {
        self.bgp_port
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("gobgpd.log")
    }

    /// The last lines of this gobgpd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// (Re)starts the process on the same ports, and waits until its API answers.
    pub fn restart(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open gobgpd log");
        let mut cmd = Command::new("gobgpd");
        cmd.arg("--api-hosts")
            .arg(format!("127.0.0.1:{}", self.api_port))
            .arg("--pprof-disable")
            .arg("--log-level=debug");
        if let Some(c) = &self.config {
            cmd.arg("-f").arg(c);
        }
        let child = cmd
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("start gobgpd");
        self.child = Some(child);
        let start = Instant::now();
        // A bare gobgpd answers `neighbor` (with no peers) but not `global`; a configured one both.
        let api_up = |g: &Gobgpd| {
            g.cli_ok(&["neighbor"]) || g.cli(&["global"]).is_some_and(|o| !o.is_empty())
        };
        while !api_up(self) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "gobgpd's API on port {} did not come up; log:\n{}",
                self.api_port,
                self.log_tail()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: gobgpd dies without withdrawing anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn stop(&mut self) {
        self.kill9();
    }

    fn cli_ok(&self, args: &[&str]) -> bool {
        Command::new("gobgp")
            .args(["-u", "127.0.0.1", "-p", &self.api_port.to_string()])
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn cli(&self, args: &[&str]) -> Option<String> {
        let o = Command::new("gobgp")
            .args(["-u", "127.0.0.1", "-p", &self.api_port.to_string()])
            .args(args)
            .output()
            .ok()?;
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    /// The prefixes in this gobgpd's global RIB, IPv4 and IPv6.
    pub fn rib_prefixes(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for fam in ["ipv4", "ipv6"] {
            let Some(json) = self.cli(&["global", "rib", "-a", fam, "-j"]) else {
                continue;
            };
            if let Ok(serde_json::Value::Object(m)) =
                serde_json::from_str::<serde_json::Value>(&json)
            {
                out.extend(m.keys().cloned());
            }
        }
        out
    }

    /// Waits until `prefix` is (or is not) in the RIB; returns how long that took.
    pub fn wait_for_prefix(&self, prefix: &str, present: bool, deadline: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.rib_prefixes().contains(prefix) == present {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < deadline,
                "{prefix} still {} at the router after {deadline:?}; RIB: {:?}; router log:\n{}",
                if present { "absent" } else { "present" },
                self.rib_prefixes(),
                self.log_tail()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gobgpd {
    fn drop(&mut self) {
        self.kill9();
    }
}
