//! The BFD lab (issue 24, SPEC 16): a host and its router in two network namespaces on one
//! switch. The host namespace holds the speaker gobgpd and anycastd, the router namespace a
//! router (GoBGP, or FRR's bgpd with bfdd), and a third namespace the switch (a bridge), so
//! that the host's link going down leaves the router's link up, as with a real switch in
//! between: the router must find the host gone by BFD or by its hold timer.
//!
//! BFD needs the namespaces: gobgpd listens on UDP 3784 on every address and keys its
//! sessions by peer address, so two BFD speakers cannot share one network stack.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::config::{ConfigBuilder, check, config, map, peer, service};
use super::gobgpd::{Monitor, Release};
use super::lab::{Anycastd, http_get, require_program, send_signal, tail, wait_until_or};
use super::netns::{NetNs, NsRouter, run_in, switched};

/// The host's address on the link, its BGP router id and the routes' next hop.
pub const HOST: &str = "198.51.100.1";
/// The router's address on the link.
pub const ROUTER: &str = "198.51.100.2";
/// The anycast prefix the host announces.
pub const PREFIX: &str = "192.0.2.150/32";
pub const HOST_ASN: u32 = 65001;
pub const ROUTER_ASN: u32 = 65000;
/// The host's interface, the one a link cut takes down.
pub const HOST_IF: &str = "host0";
/// anycastd's metrics, inside the host's namespace.
pub const METRICS: &str = "127.0.0.1:9180";
/// A BGP session over the veth: gobgpd's first connect, the OPEN exchange.
pub const SESSION: Duration = Duration::from_secs(40);

/// BFD timers: `interval × multiplier`, the same interval both ways.
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    pub interval: Duration,
    pub multiplier: u32,
}

impl Timers {
    pub const fn ms(interval: u64, multiplier: u32) -> Timers {
        Timers {
            interval: Duration::from_millis(interval),
            multiplier,
        }
    }

    /// How long silence takes to be noticed: `interval × multiplier`.
    pub fn detection(&self) -> Duration {
        self.interval * self.multiplier
    }

    /// `300ms x 3`.
    pub fn describe(&self) -> String {
        format!("{}ms x {}", self.interval.as_millis(), self.multiplier)
    }

    fn micros(&self) -> u128 {
        self.interval.as_micros()
    }
}

/// The three namespaces and the links between them; deleted on drop.
pub struct Net {
    pub host: NetNs,
    pub router: NetNs,
    _switch: NetNs,
}

impl Net {
    /// A host (`HOST`) and a router (`ROUTER`) on one switch.
    // Not `Default`: three namespaces, not a default value.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Net {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let host = NetNs::create(&format!("bfd{n}-host"));
        let switch = NetNs::create(&format!("bfd{n}-sw"));
        let router = NetNs::create(&format!("bfd{n}-router"));
        switched(
            &host,
            HOST_IF,
            &format!("{HOST}/24"),
            &switch,
            &router,
            "router0",
            &format!("{ROUTER}/24"),
        );
        Net {
            host,
            router,
            _switch: switch,
        }
    }

    /// The host loses its link (`ip link set host0 down`): nothing it sends leaves, nothing
    /// reaches it; the router's own link stays up.
    pub fn cut(&self) {
        self.host.ip(&["link", "set", HOST_IF, "down"]);
    }

    /// The host's link comes back.
    pub fn mend(&self) {
        self.host.ip(&["link", "set", HOST_IF, "up"]);
    }
}

/// A router whose RIB a test reads.
pub trait Router {
    /// Whether `prefix` is in the router's RIB now; `None` when the router did not answer
    /// (a failed call is not an empty RIB).
    fn has(&self, prefix: &str) -> Option<bool>;
    /// Whether the router's BFD session with the host is up.
    fn bfd_up(&self) -> bool;
    /// Waits until `prefix` leaves the router's RIB, at most `deadline` from `since`; returns
    /// how long after `since` it left.
    fn gone_after(&self, prefix: &str, since: Instant, deadline: Duration) -> Duration;
    /// The router's logs and state, for failure messages.
    fn context(&self) -> String;
}

/// A GoBGP router, and a monitor of its RIB (the moment a route leaves, to the millisecond).
pub struct GobgpRouter {
    pub gobgpd: NsRouter,
    monitor: Monitor,
}

/// The TOML of a GoBGP router peering with the host: hold time `hold` seconds, reconnects
/// after 1 s (also after a reset: `idle-hold-time-after-reset`), BFD when `bfd` says.
pub fn gobgp_router_toml(bfd: Option<Timers>, hold: u32) -> String {
    let mut t = format!(
        "[global.config]\n  as = {ROUTER_ASN}\n  router-id = \"{ROUTER}\"\n  local-address-list = [\"{ROUTER}\"]\n\
         [[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{HOST}\"\n    peer-as = {HOST_ASN}\n\
         \x20 [neighbors.timers.config]\n    connect-retry = 1\n    idle-hold-time-after-reset = 1\n    hold-time = {hold}\n    keepalive-interval = {}\n",
        (hold / 3).max(1)
    );
    if let Some(b) = bfd {
        t.push_str(&format!(
            "  [neighbors.bfd.config]\n    enabled = true\n    desired-minimum-tx-interval = {us}\n    required-minimum-receive = {us}\n    detection-multiplier = {m}\n",
            us = b.micros(),
            m = b.multiplier
        ));
    }
    t.push_str(
        "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv4-unicast\"\n",
    );
    t
}

impl GobgpRouter {
    /// GoBGP `release` in the router's namespace, on [`gobgp_router_toml`].
    pub fn start(release: Release, net: &Net, bfd: Option<Timers>, hold: u32) -> GobgpRouter {
        let gobgpd = NsRouter::launch(release, &net.router, Some(&gobgp_router_toml(bfd, hold)));
        let monitor = gobgpd.monitor();
        GobgpRouter { gobgpd, monitor }
    }

    /// The router's RIB changes of `prefix` so far.
    pub fn events(&self, prefix: &str) -> Vec<super::gobgpd::RibEvent> {
        self.monitor.events(prefix)
    }

    /// The router's `gobgp neighbor HOST -j`.
    pub fn neighbor(&self) -> Option<serde_json::Value> {
        let j = self.gobgpd.cli(&["neighbor", HOST, "-j"])?;
        serde_json::from_str(&j).ok()
    }
}

impl Router for GobgpRouter {
    fn has(&self, prefix: &str) -> Option<bool> {
        let j = self.gobgpd.cli(&["global", "rib", "-a", "ipv4", "-j"])?;
        let rib: serde_json::Value = serde_json::from_str(&j).ok()?;
        Some(rib.get(prefix).is_some())
    }

    fn bfd_up(&self) -> bool {
        // `gobgp -j` prints the BFD state as a number: 1 is UP.
        self.neighbor()
            .is_some_and(|n| n["state"]["bfd_state"]["session_state"].as_u64() == Some(1))
    }

    fn gone_after(&self, prefix: &str, since: Instant, deadline: Duration) -> Duration {
        let e = self.monitor.wait_for(prefix, "withdrawal", deadline, |e| {
            e.withdrawal && e.at >= since
        });
        e.at.duration_since(since)
    }

    fn context(&self) -> String {
        format!(
            "router neighbor: {:?}\n{}",
            self.gobgpd.cli(&["neighbor", HOST]),
            self.gobgpd.log_tail()
        )
    }
}

/// FRR as the router: zebra, bfdd and bgpd in the router's namespace, in their own
/// pathspace (`-N`, sockets in /var/run/frr/NAME), run in the foreground, killed on drop.
pub struct Frr {
    pathspace: String,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

/// FRR's daemons, where Debian's frr package puts them.
pub const FRR_DIR: &str = "/usr/lib/frr";

impl Frr {
    /// FRR peering with the host: hold time `hold` (keepalive a third), connect retry 1 s,
    /// `neighbor HOST bfd` with a bfdd profile of `bfd`'s timers.
    pub fn start(net: &Net, bfd: Timers, hold: u32) -> Frr {
        for d in ["zebra", "bfdd", "bgpd"] {
            require_program(
                &format!("{FRR_DIR}/{d}"),
                "the BFD tests run FRR's bgpd and bfdd as the router",
                "frr",
            );
        }
        let dir = tempfile::tempdir().expect("tempdir");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("make the FRR config dir readable");
        let pathspace = super::lab::unique("frr").replace("anycastd-test-", "at");
        let run = Path::new("/var/run/frr").join(&pathspace);
        std::fs::create_dir_all(&run).expect("create FRR's run directory");
        // The daemons drop to the user frr: their sockets go there.
        let chown = Command::new("chown")
            .arg("frr:frr")
            .arg(&run)
            .status()
            .expect("run chown");
        assert!(chown.success(), "chown frr:frr {run:?}");
        let ms = bfd.interval.as_millis();
        let configs = [
            ("zebra", "hostname router\n".to_string()),
            (
                "bfdd",
                format!(
                    "bfd\n profile host\n  transmit-interval {ms}\n  receive-interval {ms}\n  detect-multiplier {}\n !\n!\n",
                    bfd.multiplier
                ),
            ),
            (
                "bgpd",
                format!(
                    "router bgp {ROUTER_ASN}\n bgp router-id {ROUTER}\n no bgp ebgp-requires-policy\n\
                     \x20neighbor {HOST} remote-as {HOST_ASN}\n neighbor {HOST} timers {} {hold}\n\
                     \x20neighbor {HOST} timers connect 1\n neighbor {HOST} bfd\n neighbor {HOST} bfd profile host\n!\n",
                    (hold / 3).max(1)
                ),
            ),
        ];
        let mut frr = Frr {
            pathspace,
            children: Vec::new(),
            dir,
        };
        for (daemon, text) in configs {
            let conf = frr.dir.path().join(format!("{daemon}.conf"));
            std::fs::write(&conf, text).expect("write an FRR config");
            std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644))
                .expect("make an FRR config readable");
            let log = std::fs::File::create(frr.dir.path().join(format!("{daemon}.log")))
                .expect("create an FRR log");
            let child = net
                .router
                .command(&format!("{FRR_DIR}/{daemon}"))
                .args(["-N", &frr.pathspace, "-f"])
                .arg(&conf)
                .arg("-i")
                .arg(run.join(format!("{daemon}.pid")))
                .args(["--log", "stdout", "--log-level", "info"])
                .stdout(log.try_clone().expect("log fd"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("start FRR's {daemon}: {e}"));
            frr.children.push(child);
            // bgpd and bfdd register with zebra: zebra's socket first.
            if daemon == "zebra" {
                let api = run.join("zserv.api");
                wait_until_or(
                    "zebra's socket",
                    Duration::from_secs(10),
                    || api.exists(),
                    || frr.context(),
                );
            }
        }
        wait_until_or(
            "bgpd's vty",
            Duration::from_secs(10),
            || frr.vtysh("show bgp summary").is_some(),
            || frr.context(),
        );
        frr
    }

    /// `vtysh -c COMMAND` in this FRR's pathspace: its output, `None` when it failed.
    pub fn vtysh(&self, command: &str) -> Option<String> {
        let out = Command::new("vtysh")
            .args(["-N", &self.pathspace, "-c", command])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn json(&self, command: &str) -> Option<serde_json::Value> {
        serde_json::from_str(&self.vtysh(command)?).ok()
    }
}

impl Router for Frr {
    fn has(&self, prefix: &str) -> Option<bool> {
        let j = self.json("show bgp ipv4 unicast json")?;
        Some(j.get("routes")?.get(prefix).is_some())
    }

    fn bfd_up(&self) -> bool {
        self.json("show bfd peers json").is_some_and(|j| {
            j.as_array().is_some_and(|peers| {
                peers
                    .iter()
                    .any(|p| p["peer"] == HOST && p["status"] == "up")
            })
        })
    }

    fn gone_after(&self, prefix: &str, since: Instant, deadline: Duration) -> Duration {
        // vtysh answers in a few ms: polled without a pause, the moment is within one call.
        wait_until_or(
            &format!("{prefix} to leave FRR's RIB"),
            deadline.saturating_sub(since.elapsed()),
            || self.has(prefix) == Some(false),
            || self.context(),
        );
        since.elapsed()
    }

    fn context(&self) -> String {
        let mut out = format!(
            "FRR: {:?}\n{:?}\n",
            self.vtysh("show bgp neighbors"),
            self.vtysh("show bfd peers")
        );
        for d in ["zebra", "bfdd", "bgpd"] {
            let log = std::fs::read_to_string(self.dir.path().join(format!("{d}.log")))
                .unwrap_or_default();
            out.push_str(&format!("{d} log:\n{}\n", tail(&log, 15)));
        }
        out
    }
}

impl Drop for Frr {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(Path::new("/var/run/frr").join(&self.pathspace));
    }
}

/// The host: a speaker gobgpd and anycastd in the host's namespace.
pub struct Host {
    pub gobgpd: NsRouter,
    pub anycastd: Anycastd,
    ns: String,
    pub dir: tempfile::TempDir,
}

/// anycastd's config on the host: `PREFIX` behind one service that is always up (an
/// address of the host's loopback), the router as its peer with hold time `hold` and
/// connect retry 1 s, BFD at `bfd` when given; the peer table polled every 200 ms.
pub fn host_config(dir: &Path, bfd: Option<Timers>, hold: &str) -> ConfigBuilder {
    let d = dir.display();
    let mut c = config(HOST, HOST, HOST_ASN)
        .routes(&[PREFIX])
        .announcer("state_directory", format!("{d}/state"))
        .peer(
            peer("router", ROUTER, ROUTER_ASN)
                .set("hold_time", hold)
                .set("connect_retry", "1s"),
        )
        .gobgp("address", "127.0.0.1:50051")
        .gobgp("reconcile_interval", "1s")
        .gobgp("peer_poll_interval", "200ms")
        .metrics("address", METRICS)
        .control("socket", format!("{d}/control.sock"))
        .service(service("web", "1s").check(check("assigned_address").spec("ipv4", "127.0.0.1")));
    if let Some(b) = bfd {
        c = c.announcer("bfd", bfd_yaml(b));
    }
    c
}

/// `{ enabled: true, min_tx: ..., min_rx: ..., multiplier: ... }` of `b`.
pub fn bfd_yaml(b: Timers) -> super::config::Map {
    let ms = format!("{}ms", b.interval.as_millis());
    map()
        .set("enabled", true)
        .set("min_tx", ms.as_str())
        .set("min_rx", ms.as_str())
        .set("multiplier", b.multiplier)
}

impl Host {
    /// A speaker gobgpd of `release` and anycastd on `config(dir)` in the host's namespace.
    pub fn start(net: &Net, release: Release, config: impl FnOnce(&Path) -> ConfigBuilder) -> Host {
        let gobgpd = NsRouter::launch(release, &net.host, None);
        let dir = tempfile::tempdir().expect("tempdir");
        let text = config(dir.path()).to_string();
        let metrics: SocketAddr = METRICS.parse().expect("an address");
        let anycastd = Anycastd::launch(
            dir.path(),
            &text,
            metrics,
            &[],
            &["ip", "netns", "exec", &net.host.name],
            Path::new(env!("CARGO_BIN_EXE_anycastd")),
        );
        Host {
            gobgpd,
            anycastd,
            ns: net.host.name.clone(),
            dir,
        }
    }

    /// `GET path` from anycastd's metrics address (inside the namespace).
    pub fn get(&self, path: &'static str) -> Option<(u16, String)> {
        let metrics: SocketAddr = METRICS.parse().expect("an address");
        run_in(&self.ns, move || http_get(metrics, path))
    }

    /// `/status` as JSON, `None` while anycastd does not answer with one.
    pub fn status(&self) -> Option<serde_json::Value> {
        let (code, body) = self.get("/status")?;
        (code == 200)
            .then(|| serde_json::from_str(&body).ok())
            .flatten()
    }

    /// A sample of anycastd's metrics.
    pub fn sample(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let text = self.get("/metrics").map(|(_, b)| b).unwrap_or_default();
        super::prom::value(&super::prom::parse(&text), name, labels)
    }

    /// The router peer's BFD in `/status` (`peers[0].bfd`).
    pub fn bfd_status(&self) -> Option<serde_json::Value> {
        let s = self.status()?;
        s["peers"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == "router")
            .map(|p| p["bfd"].clone())
    }

    /// `anycastd ARGS` (a client command such as `status`) in the host's namespace, on the
    /// daemon's config file.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                env!("CARGO_BIN_EXE_anycastd"),
                "--config",
            ])
            .arg(self.dir.path().join("anycastd.yaml"))
            .args(args)
            .output()
            .expect("run the anycastd binary")
    }

    /// SIGSTOP to gobgpd and anycastd: the host hangs, its kernel still answers.
    pub fn freeze(&self) {
        send_signal(self.gobgpd.pid(), "STOP");
        send_signal(self.anycastd.pid().expect("anycastd runs"), "STOP");
    }

    /// SIGCONT to both.
    pub fn thaw(&self) {
        send_signal(self.gobgpd.pid(), "CONT");
        send_signal(self.anycastd.pid().expect("anycastd runs"), "CONT");
    }

    /// anycastd's log and the speaker's, for failure messages.
    pub fn context(&self) -> String {
        format!(
            "anycastd log:\n{}\nspeaker {}",
            tail(&self.anycastd.log(), 30),
            self.gobgpd.log_tail()
        )
    }
}

/// Waits until `router` has `prefix`; fails with both sides' logs.
pub fn wait_route(router: &dyn Router, host: &Host, present: bool, deadline: Duration) -> Duration {
    wait_until_or(
        &format!(
            "{PREFIX} {} at the router",
            if present { "present" } else { "absent" }
        ),
        deadline,
        || router.has(PREFIX) == Some(present),
        || format!("{}\n{}", router.context(), host.context()),
    )
}

/// Waits for a steady lab, the state a cut is timed from: `PREFIX` at the router, the
/// host's BGP session established for `uptime` or longer, and with `bfd`, BFD up at both
/// ends. A session just up may still be reset by BFD (FRR re-creates its BFD session once
/// the BGP session tells it the local address and interface: the old one says down as it
/// goes, and GoBGP resets BGP when a peer's BFD goes from up to down; 22 starts in 24, FRR
/// issue 17337), and a cut then would time that reset.
pub fn wait_steady(
    router: &dyn Router,
    host: &Host,
    bfd: bool,
    uptime: Duration,
    deadline: Duration,
) -> Duration {
    wait_until_or(
        "a steady lab: the route at the router, the session up a while, BFD up",
        deadline,
        || {
            let Some(s) = host.status() else {
                return false;
            };
            let Some(p) = s["peers"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["name"] == "router"))
            else {
                return false;
            };
            p["session_state"] == "ESTABLISHED"
                && p["uptime_seconds"]
                    .as_u64()
                    .is_some_and(|u| u >= uptime.as_secs())
                && (!bfd || p["bfd"]["state"] == "up")
                && router.has(PREFIX) == Some(true)
                && (!bfd || router.bfd_up())
        },
        || {
            format!(
                "/status: {:?}\n{}\n{}",
                host.status(),
                router.context(),
                host.context()
            )
        },
    )
}
