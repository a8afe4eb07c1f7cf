//! Network namespaces that a test makes for itself (named `anycastd-test-<pid>-<what>`,
//! deleted when their guard drops), links between them, sockets bound inside one from this
//! process, and a router gobgpd running in one. The container tests use them so that
//! nothing they start can reach anything but what they built: the sample config's
//! documentation addresses (192.0.2.0/24, 198.51.100.0/24) exist only in these namespaces.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use super::gobgpd::{Monitor, Release, RouterOpts, rib_json_prefixes, router_toml};
use super::lab::{tail, unique, wait_until_or};

/// A named network namespace (`ip netns`), deleted on drop.
pub struct NetNs {
    pub name: String,
}

/// Runs `ip ARGS`; panics with its output when it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (Debian package iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl NetNs {
    /// A new, empty namespace with `lo` up.
    pub fn create(what: &str) -> NetNs {
        let ns = NetNs { name: unique(what) };
        ip(&["netns", "add", &ns.name]);
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// A name for the network namespace of process `pid` (e.g. a pod's infra container).
    pub fn attach(what: &str, pid: u32) -> NetNs {
        let ns = NetNs { name: unique(what) };
        ip(&["netns", "attach", &ns.name, &pid.to_string()]);
        ns
    }

    /// `ip -n NAME ARGS`.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// `program` to run inside this namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `f` on a thread that has entered this namespace: the sockets it makes live here.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        run_in(&self.name, f)
    }
}

/// Runs `f` on a thread that has entered the namespace `name` (`ip netns`).
pub fn run_in<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = PathBuf::from("/run/netns").join(name);
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {path:?}: {e}"));
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(&file),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .unwrap_or_else(|e| panic!("setns into {path:?} (needs root): {e}"));
        f()
    })
    .join()
    .expect("the thread in the namespace panicked")
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A veth pair: `a_if` in `a` with `a_addr`, `b_if` in `b` with `b_addr` (CIDR), both up.
pub fn link(a: &NetNs, a_if: &str, a_addr: &str, b: &NetNs, b_if: &str, b_addr: &str) {
    a.ip(&[
        "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", &b.name,
    ]);
    a.ip(&["addr", "add", a_addr, "dev", a_if]);
    b.ip(&["addr", "add", b_addr, "dev", b_if]);
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

/// `a` and `b` on one switch: a bridge in `switch`, a veth from each to it (`a_if` in `a`
/// with `a_addr`, `b_if` in `b` with `b_addr`, CIDR), all up. Unlike a direct [`link`],
/// taking `a_if` down leaves `b_if`'s carrier up, as a switch port does: `b` learns that
/// `a` went away only from its protocols (BFD, the BGP hold timer), not from its own link.
pub fn switched(
    a: &NetNs,
    a_if: &str,
    a_addr: &str,
    switch: &NetNs,
    b: &NetNs,
    b_if: &str,
    b_addr: &str,
) {
    switch.ip(&["link", "add", "name", "br0", "type", "bridge"]);
    switch.ip(&["link", "set", "br0", "up"]);
    for (ns, dev, addr, port) in [(a, a_if, a_addr, "port-a"), (b, b_if, b_addr, "port-b")] {
        ns.ip(&[
            "link",
            "add",
            "name",
            dev,
            "type",
            "veth",
            "peer",
            "name",
            port,
            "netns",
            &switch.name,
        ]);
        switch.ip(&["link", "set", port, "master", "br0"]);
        switch.ip(&["link", "set", port, "up"]);
        ns.ip(&["addr", "add", addr, "dev", dev]);
        ns.ip(&["link", "set", dev, "up"]);
    }
}

/// A gobgpd in a namespace (its API on the namespace's 127.0.0.1:50051), killed on drop.
pub struct NsRouter {
    ns: String,
    release: Release,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl NsRouter {
    /// BGP on `o.listen_addr`:`port` with `o`'s passive neighbor (the default GoBGP).
    pub fn start(ns: &NetNs, o: &RouterOpts, port: u16) -> NsRouter {
        NsRouter::start_of(Release::default(), ns, o, port)
    }

    /// [`NsRouter::start`] with GoBGP `release`.
    pub fn start_of(release: Release, ns: &NetNs, o: &RouterOpts, port: u16) -> NsRouter {
        NsRouter::launch(release, ns, Some(&router_toml(o, port, &[])))
    }

    /// A gobgpd of `release` in `ns` on this TOML config, or on none (a speaker that
    /// anycastd sets up over the API); its API on the namespace's 127.0.0.1:50051.
    pub fn launch(release: Release, ns: &NetNs, toml: Option<&str>) -> NsRouter {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("gobgpd.log");
        let mut cmd = ns.command(&release.gobgpd().to_string_lossy());
        if let Some(toml) = toml {
            let config = dir.path().join("gobgpd.toml");
            std::fs::write(&config, toml).expect("write the gobgpd config");
            cmd.arg("-f").arg(&config);
        }
        // GoBGP 4 logs to stdout, 3.x to stderr.
        let file = File::create(&log).expect("create the gobgpd log");
        let child = cmd
            .args(["--api-hosts", "127.0.0.1:50051", "--pprof-disable"])
            .stdout(file.try_clone().expect("the log's fd"))
            .stderr(file)
            .spawn()
            .expect("start gobgpd in the namespace");
        let r = NsRouter {
            ns: ns.name.clone(),
            release,
            child,
            log,
            _dir: dir,
        };
        wait_until_or(
            "the gobgpd's API in the namespace",
            Duration::from_secs(20),
            || r.cli(&["neighbor"]).is_some(),
            || r.log_tail(),
        );
        r
    }

    /// The gobgpd's process id (`ip netns exec` runs it in its own place).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The gobgpd's whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `gobgp ARGS` against this router: its output, or `None` when it failed.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(self.release.gobgp())
            .args(["-p", "50051"])
            .args(args)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Follows the router's RIB changes (`gobgp monitor global rib -j`, with `--current`: the
    /// routes already there come first, which shows that it follows).
    pub fn monitor(&self) -> Monitor {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns])
            .arg(self.release.gobgp())
            .args(["-p", "50051", "monitor", "global", "rib", "-j", "--current"]);
        Monitor::spawn(c)
    }

    /// The IPv4 prefixes in the router's RIB.
    pub fn prefixes(&self) -> BTreeSet<String> {
        self.cli(&["global", "rib", "-a", "ipv4", "-j"])
            .map(|j| rib_json_prefixes(&j))
            .unwrap_or_default()
    }

    /// The last lines of the router's log.
    pub fn log_tail(&self) -> String {
        format!("gobgpd log:\n{}", tail(&self.log(), 20))
    }
}

impl Drop for NsRouter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
