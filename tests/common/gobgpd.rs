//! Real gobgpd processes for tests: a bare "speaker" that anycastd configures over the API,
//! and a "router" configured from a file, peering with the speaker, whose RIB the tests read
//! through the `gobgp` CLI.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::lab::{free_tcp_port, require_program};

/// Fails (never skips) when gobgpd is not installed, saying how to install it.
pub fn require_gobgpd() {
    for bin in ["gobgpd", "gobgp"] {
        require_program(bin, "these tests run real gobgpd", "gobgpd");
    }
}

/// A passive `[[neighbors]]` entry of a gobgpd TOML config with these address families.
fn neighbor_toml(addr: IpAddr, asn: u32, families: &[&str]) -> String {
    let mut t = format!(
        "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{addr}\"\n    peer-as = {asn}\n  [neighbors.transport.config]\n    passive-mode = true\n"
    );
    for f in families {
        t.push_str(&format!(
            "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"{f}\"\n"
        ));
    }
    t
}

/// The TOML config of a router gobgpd: BGP on `listen_addr`:`port`, `o`'s neighbor with
/// both unicast families, and more passive IPv4 neighbors `(address, asn)`.
pub fn router_toml(o: &RouterOpts, port: u16, extra: &[(IpAddr, u32)]) -> String {
    let mut toml = format!(
        "[global.config]\n  as = {asn}\n  router-id = \"{rid}\"\n  port = {port}\n  local-address-list = [\"{listen}\"]\n",
        asn = o.asn,
        rid = o.router_id,
        listen = o.listen_addr,
    );
    toml.push_str(&neighbor_toml(
        o.neighbor_addr,
        o.neighbor_asn,
        &["ipv4-unicast", "ipv6-unicast"],
    ));
    for (addr, asn) in extra {
        toml.push_str(&neighbor_toml(*addr, *asn, &["ipv4-unicast"]));
    }
    toml
}

/// The prefixes of `gobgp global rib -j` output (an object keyed by prefix); empty when it
/// is not that.
pub fn rib_json_prefixes(json: &str) -> BTreeSet<String> {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
        _ => BTreeSet::new(),
    }
}

fn cli_output(api: u16, args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("gobgp")
        .args(["-u", "127.0.0.1", "-p", &api.to_string()])
        .args(args)
        .output()
}

/// `gobgp` against the gobgpd whose API is on 127.0.0.1:`api`: its output when it
/// succeeded, `None` when it failed or could not run.
pub fn cli_at(api: u16, args: &[&str]) -> Option<String> {
    let o = cli_output(api, args).ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// How many paths the gobgpd whose API is on `api` has for `prefix` (one per speaker
/// announcing it); `None` when the CLI printed no RIB (a failed call is not an empty RIB).
pub fn rib_path_count(api: u16, prefix: &str) -> Option<usize> {
    let fam = if prefix.contains(':') { "ipv6" } else { "ipv4" };
    let json = cli_at(api, &["global", "rib", "-a", fam, "-j"])?;
    let v: serde_json::Value = serde_json::from_str(&json).ok()?;
    Some(v.get(prefix).and_then(|p| p.as_array()).map_or(0, Vec::len))
}

/// From `gobgp neighbor ADDRESS -j`: how many prefixes the peer withdrew in UPDATEs (the
/// counter outlives sessions; a closed session withdraws none). gobgp leaves a zero out of
/// its JSON: that is 0. `None` when `json` is not JSON.
pub fn withdrawn_prefixes(neighbor_json: &str) -> Option<u64> {
    let n: serde_json::Value = serde_json::from_str(neighbor_json).ok()?;
    Some(
        n["state"]["messages"]["received"]["withdraw_prefix"]
            .as_u64()
            .unwrap_or(0),
    )
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
            api_port: free_tcp_port(),
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
        let bgp_port = free_tcp_port();
        let config = dir.path().join("router.toml");
        let toml = router_toml(&o, bgp_port, extra);
        std::fs::write(&config, toml).expect("write router config");
        let mut g = Gobgpd {
            child: None,
            api_port: free_tcp_port(),
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
        super::lab::tail(&log, 30)
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
        // `neighbor` answers on a bare gobgpd (no peers) as on a configured one.
        let api_up = |g: &Gobgpd| g.cli_ok(&["neighbor"]);
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
        self.cli(args).is_some()
    }

    fn cli(&self, args: &[&str]) -> Option<String> {
        cli_at(self.api_port, args)
    }

    /// Runs the gobgp CLI against this gobgpd; panics, with its stderr, when it fails.
    pub fn run_cli(&self, args: &[&str]) -> String {
        let o = cli_output(self.api_port, args).expect("run the gobgp CLI");
        assert!(
            o.status.success(),
            "gobgp {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The prefixes in this gobgpd's global RIB, IPv4 and IPv6.
    pub fn rib_prefixes(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for fam in ["ipv4", "ipv6"] {
            let Some(json) = self.cli(&["global", "rib", "-a", fam, "-j"]) else {
                continue;
            };
            out.extend(rib_json_prefixes(&json));
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

impl Gobgpd {
    /// The router's best path of `prefix` in its global RIB, as `gobgp -j` prints it.
    pub fn rib_path(&self, prefix: &str) -> Option<serde_json::Value> {
        let fam = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let json = self.cli(&["global", "rib", "-a", fam, "-j"])?;
        let v: serde_json::Value = serde_json::from_str(&json).ok()?;
        v.get(prefix)?.as_array()?.first().cloned()
    }

    /// Follows this gobgpd's RIB changes (`gobgp monitor global rib -j`).
    pub fn monitor(&self) -> Monitor {
        Monitor::start(self.api_port)
    }
}

/// One change seen by `gobgp monitor global rib`.
#[derive(Debug, Clone)]
pub struct RibEvent {
    pub at: Instant,
    /// The same moment on the wall clock, to compare with anycastd's log timestamps.
    pub wall: std::time::SystemTime,
    pub prefix: String,
    pub withdrawal: bool,
    /// The path's attributes as gobgp prints them.
    pub attrs: serde_json::Value,
}

impl RibEvent {
    /// The attribute of BGP type `code` (4 MED, 8 communities, 32 large communities, ...).
    pub fn attr(&self, code: u64) -> Option<&serde_json::Value> {
        attr_of(&self.attrs, code)
    }
}

/// The attribute of BGP type `code` in a path's `attrs` as gobgp prints them.
pub fn attr_of(attrs: &serde_json::Value, code: u64) -> Option<&serde_json::Value> {
    attrs
        .as_array()?
        .iter()
        .find(|a| a["type"].as_u64() == Some(code))
}

/// The RIB changes of a gobgpd, collected by a thread as they come.
pub struct Monitor {
    child: Child,
    events: std::sync::Arc<std::sync::Mutex<Vec<RibEvent>>>,
}

impl Monitor {
    fn start(api: u16) -> Monitor {
        let mut cmd = Command::new("gobgp");
        cmd.args(["-u", "127.0.0.1", "-p", &api.to_string()])
            .args(["monitor", "global", "rib", "-j"]);
        Monitor::spawn(cmd)
    }

    /// Follows what `cmd` (a `gobgp monitor global rib -j`, e.g. run in a namespace) prints.
    pub fn spawn(mut cmd: Command) -> Monitor {
        use std::io::BufRead;
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gobgp monitor");
        let out = child.stdout.take().expect("monitor stdout");
        let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = events.clone();
        thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                let at = Instant::now();
                let wall = std::time::SystemTime::now();
                let Ok(serde_json::Value::Array(paths)) = serde_json::from_str(&line) else {
                    continue;
                };
                for p in paths {
                    let e = RibEvent {
                        at,
                        wall,
                        prefix: p["nlri"]["prefix"].as_str().unwrap_or_default().to_string(),
                        withdrawal: p["withdrawal"].as_bool().unwrap_or(false),
                        attrs: p["attrs"].clone(),
                    };
                    if let Ok(mut v) = sink.lock() {
                        v.push(e);
                    }
                }
            }
        });
        // The stream starts once gobgp has connected: start it before the changes to see,
        // and first wait for one that proves it follows (the route's first announcement).
        Monitor { child, events }
    }

    /// Every event of `prefix` so far.
    pub fn events(&self, prefix: &str) -> Vec<RibEvent> {
        self.events
            .lock()
            .map(|v| v.iter().filter(|e| e.prefix == prefix).cloned().collect())
            .unwrap_or_default()
    }

    /// Waits for an event of `prefix` that `pred` accepts; returns it.
    pub fn wait_for(
        &self,
        prefix: &str,
        what: &str,
        deadline: Duration,
        pred: impl Fn(&RibEvent) -> bool,
    ) -> RibEvent {
        let start = Instant::now();
        loop {
            if let Some(e) = self.events(prefix).into_iter().find(|e| pred(e)) {
                return e;
            }
            assert!(
                start.elapsed() < deadline,
                "no {what} for {prefix} at the router within {deadline:?}; its events: {:#?}",
                self.events(prefix)
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Gobgpd {
    fn drop(&mut self) {
        self.kill9();
    }
}
