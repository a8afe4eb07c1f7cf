//! Real gobgpd processes for tests: a bare "speaker" that anycastd configures over the API,
//! and a "router" configured from a file, peering with the speaker, whose RIB the tests read
//! through the `gobgp` CLI of the same release (a 3.x CLI cannot talk to a 4.x daemon).
//!
//! Which GoBGP: [`Release::default`], GoBGP 4.8.0 unless `ANYCASTD_TEST_GOBGP` says
//! `3.37.0` or `debian` (3.10, /usr/bin/gobgpd). Upstream releases are built once per machine
//! with `go install` into `ANYCASTD_GOBGP_CACHE` (default `~/.cache/anycastd-gobgp/VERSION/`),
//! by `scripts/setup.sh` or, when missing, here.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use super::lab::{free_tcp_port, require_program};

/// A GoBGP release the tests can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Debian's gobgpd package: 3.10, in /usr/bin.
    Debian,
    /// The last 3.x, built from source.
    V3_37,
    /// The current 4.x, built from source: the tests' default.
    V4_8,
    /// 4.5.0, built from source: the first with BFD in its API, and none behind it (it
    /// echoes `bfd.enabled` false). Only the BFD tests run it; not in [`Release::ALL`].
    V4_5,
}

impl Default for Release {
    /// `ANYCASTD_TEST_GOBGP` (`4.8.0`, `3.37.0`, `debian`), GoBGP 4.8.0 when unset.
    fn default() -> Release {
        match std::env::var("ANYCASTD_TEST_GOBGP").as_deref() {
            Err(_) | Ok("" | "4.8.0" | "4.8") => Release::V4_8,
            Ok("3.37.0" | "3.37") => Release::V3_37,
            Ok("debian" | "3.10" | "3.10.0") => Release::Debian,
            Ok(other) => panic!(
                "ANYCASTD_TEST_GOBGP={other}: say 4.8.0 (the default), 3.37.0 or debian (3.10)"
            ),
        }
    }
}

impl Release {
    pub const ALL: [Release; 3] = [Release::Debian, Release::V3_37, Release::V4_8];

    /// Its version, as the figures and messages say it.
    pub fn version(self) -> &'static str {
        match self {
            Release::Debian => "3.10.0 (Debian)",
            Release::V3_37 => "3.37.0",
            Release::V4_8 => "4.8.0",
            Release::V4_5 => "4.5.0",
        }
    }

    /// The API anycastd should find: `v3` or `v4`.
    pub fn api(self) -> &'static str {
        match self {
            Release::Debian | Release::V3_37 => "v3",
            Release::V4_8 | Release::V4_5 => "v4",
        }
    }

    /// The `go install` module of an upstream release.
    fn module(self) -> Option<(&'static str, &'static str)> {
        match self {
            Release::Debian => None,
            Release::V3_37 => Some(("github.com/osrg/gobgp/v3", "3.37.0")),
            Release::V4_8 => Some(("github.com/osrg/gobgp/v4", "4.8.0")),
            Release::V4_5 => Some(("github.com/osrg/gobgp/v4", "4.5.0")),
        }
    }

    /// The path of its `gobgpd`, built first when it is an upstream release not built yet.
    pub fn gobgpd(self) -> PathBuf {
        self.bin("gobgpd")
    }

    /// The path of its `gobgp` CLI.
    pub fn gobgp(self) -> PathBuf {
        self.bin("gobgp")
    }

    fn bin(self, name: &str) -> PathBuf {
        match self.module() {
            None => {
                require_program(name, "these tests run Debian's gobgpd", "gobgpd");
                PathBuf::from(name)
            }
            Some(_) => built(self).join(name),
        }
    }
}

/// The directory of an upstream release's binaries, built with `go install` once per machine
/// (a file lock keeps test binaries running at once from building it twice).
fn built(r: Release) -> PathBuf {
    static DIRS: [OnceLock<PathBuf>; 4] = [const { OnceLock::new() }; 4];
    let slot = match r {
        Release::Debian => 0,
        Release::V3_37 => 1,
        Release::V4_8 => 2,
        Release::V4_5 => 3,
    };
    DIRS[slot]
        .get_or_init(|| {
            let (module, version) = r.module().expect("an upstream release");
            let cache = std::env::var_os("ANYCASTD_GOBGP_CACHE")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/anycastd-gobgp")))
                .expect("HOME or ANYCASTD_GOBGP_CACHE is set");
            let dir = cache.join(version);
            let ready = || dir.join("gobgpd").is_file() && dir.join("gobgp").is_file();
            if ready() {
                return dir;
            }
            std::fs::create_dir_all(&dir).expect("create the GoBGP cache directory");
            let lock = std::fs::File::create(cache.join(format!(".{version}.lock")))
                .expect("create the GoBGP build lock");
            lock.lock().expect("lock the GoBGP build");
            if ready() {
                return dir;
            }
            let go = ["go", "/usr/local/go/bin/go"]
                .into_iter()
                .find(|g| Command::new(g).arg("version").output().is_ok_and(|o| o.status.success()))
                .unwrap_or_else(|| {
                    panic!(
                        "GoBGP {version} is not built in {} and Go is not installed to build it: install Go 1.22 or later (https://go.dev/dl/, or `apt-get install golang-go`), then run ./scripts/setup.sh",
                        dir.display()
                    )
                });
            eprintln!("building GoBGP {version} into {} (go install, once per machine)", dir.display());
            let out = Command::new(go)
                .env("GOBIN", &dir)
                .arg("install")
                .arg(format!("{module}/cmd/gobgpd@v{version}"))
                .arg(format!("{module}/cmd/gobgp@v{version}"))
                .output()
                .expect("run go install");
            assert!(
                out.status.success() && ready(),
                "go install of GoBGP {version} failed (it needs the Go module proxy): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            dir
        })
        .clone()
}

/// Fails (never skips) when the default GoBGP cannot run, saying how to get it.
pub fn require_gobgpd() {
    let r = Release::default();
    for bin in [r.gobgpd(), r.gobgp()] {
        let ok = Command::new(&bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(ok, "{} (GoBGP {}) does not run", bin.display(), r.version());
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

fn cli_output(release: Release, api: u16, args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new(release.gobgp())
        .args(["-u", "127.0.0.1", "-p", &api.to_string()])
        .args(args)
        .output()
}

/// `gobgp` (of the default release) against the gobgpd whose API is on 127.0.0.1:`api`:
/// its output when it succeeded, `None` when it failed or could not run.
pub fn cli_at(api: u16, args: &[&str]) -> Option<String> {
    cli_of(Release::default(), api, args)
}

/// [`cli_at`] with the CLI of `release`.
pub fn cli_of(release: Release, api: u16, args: &[&str]) -> Option<String> {
    let o = cli_output(release, api, args).ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// How many paths the gobgpd (of the default release) whose API is on `api` has for
/// `prefix` (one per speaker announcing it); `None` when the CLI printed no RIB (a failed
/// call is not an empty RIB).
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
    release: Release,
    child: Option<Child>,
    api_port: u16,
    bgp_port: u16,
    config: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl Gobgpd {
    /// A gobgpd (of the default release) with no config: anycastd sets it up over the API.
    pub fn speaker() -> Gobgpd {
        Gobgpd::speaker_of(Release::default())
    }

    /// A speaker of `release`.
    pub fn speaker_of(release: Release) -> Gobgpd {
        let mut g = Gobgpd {
            release,
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
        Gobgpd::router_of(Release::default(), o, extra)
    }

    /// A router of `release`, with more passive IPv4 neighbors `(address, asn)`.
    pub fn router_of(release: Release, o: RouterOpts, extra: &[(IpAddr, u32)]) -> Gobgpd {
        Gobgpd::router_from(release, |port| router_toml(&o, port, extra))
    }

    /// A router of `release` whose TOML config is `toml(port)`, `port` its BGP port (a free
    /// one).
    pub fn router_from(release: Release, toml: impl FnOnce(u16) -> String) -> Gobgpd {
        let dir = tempfile::tempdir().expect("tempdir");
        let bgp_port = free_tcp_port();
        let config = dir.path().join("router.toml");
        std::fs::write(&config, toml(bgp_port)).expect("write router config");
        let mut g = Gobgpd {
            release,
            child: None,
            api_port: free_tcp_port(),
            bgp_port,
            config: Some(config),
            dir,
        };
        g.restart();
        g
    }

    /// Replaces this gobgpd by `release` in place: the same ports and config, as an
    /// operator's package upgrade does.
    pub fn replace_with(&mut self, release: Release) {
        self.stop();
        self.release = release;
        self.restart();
    }

    pub fn api_port(&self) -> u16 {
        self.api_port
    }

    /// The GoBGP release this gobgpd is.
    pub fn release(&self) -> Release {
        self.release
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
        let mut cmd = Command::new(self.release.gobgpd());
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
        cli_of(self.release, self.api_port, args)
    }

    /// Runs the gobgp CLI against this gobgpd; panics, with its stderr, when it fails.
    pub fn run_cli(&self, args: &[&str]) -> String {
        let o = cli_output(self.release, self.api_port, args).expect("run the gobgp CLI");
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
        Monitor::start(self.release, self.api_port)
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

/// MED (type 4) of a path's `attrs` as gobgp prints them.
pub fn med_of(attrs: &serde_json::Value) -> Option<u64> {
    attr_of(attrs, 4).and_then(|a| a["metric"].as_u64())
}

/// The AS numbers of the AS_PATH (type 2), in order.
pub fn as_path_of(attrs: &serde_json::Value) -> Vec<u64> {
    attr_of(attrs, 2)
        .and_then(|a| a["as_paths"].as_array())
        .map(|segs| {
            segs.iter()
                .flat_map(|s| s["asns"].as_array().cloned().unwrap_or_default())
                .filter_map(|n| n.as_u64())
                .collect()
        })
        .unwrap_or_default()
}

/// The COMMUNITIES (type 8), as gobgp lists them.
pub fn communities_of(attrs: &serde_json::Value) -> Vec<u64> {
    attr_of(attrs, 8)
        .and_then(|a| a["communities"].as_array())
        .map(|c| c.iter().filter_map(serde_json::Value::as_u64).collect())
        .unwrap_or_default()
}

/// The LARGE_COMMUNITIES (type 32) as (global, local 1, local 2).
pub fn large_communities_of(attrs: &serde_json::Value) -> Vec<(u64, u64, u64)> {
    attr_of(attrs, 32)
        .and_then(|a| a["value"].as_array())
        .map(|c| {
            c.iter()
                .map(|l| {
                    (
                        l["ASN"].as_u64().unwrap_or_default(),
                        l["LocalData1"].as_u64().unwrap_or_default(),
                        l["LocalData2"].as_u64().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The RIB changes of a gobgpd, collected by a thread as they come.
pub struct Monitor {
    child: Child,
    events: std::sync::Arc<std::sync::Mutex<Vec<RibEvent>>>,
}

impl Monitor {
    fn start(release: Release, api: u16) -> Monitor {
        let mut cmd = Command::new(release.gobgp());
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
