//! The Debian package, and the systemd units it installs under a real systemd: a Debian
//! bookworm booted with systemd as PID 1 in a podman container (no network but its own
//! loopback), the package installed there with `apt-get install ./anycastd_*.deb`, and a
//! router gobgpd next to it. Each test proves one thing the package or the unit comments
//! promise: the package's contents; install, `systemd-analyze verify`, `check-config` and a
//! clean purge; a started, hardened unit that announces and withdraws on `systemctl stop`;
//! SIGKILL taking gobgpd down with anycastd (BindsTo=) and Restart= bringing both back; the
//! watchdog killing a wedged anycastd; `systemctl reload` applying a changed config without
//! a restart, and refusing an invalid one.
//!
//! The systemd container gets three capabilities beyond podman's default: SYS_ADMIN (systemd
//! sets up the units' mount namespaces: ProtectSystem=, PrivateTmp=, ...), NET_RAW (so that
//! AmbientCapabilities=CAP_NET_RAW is within PID 1's bounding set) and MKNOD (PrivateDevices=).
//! Its net.ipv4.ping_group_range is "1 0": no unprivileged ICMP sockets, so anycastd's
//! icmp_ping check passes only with the unit's CAP_NET_RAW.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::artifacts::{debian_package, output_text, release_binary, repo};
use crate::common::config::{check, peer, service};
use crate::common::gobgpd::{RouterOpts, rib_json_prefixes, router_toml, withdrawn_prefixes};
use crate::common::lab::{tail, unique, wait_until_or};
use crate::common::podman::{
    Container, SYSTEMD, ULIMITS, base_image, ok, parse_proc_status, require_engine,
};

/// The prefix the tests' anycastd announces.
const PREFIX: &str = "192.0.2.1/32";

/// A Debian bookworm running systemd as PID 1, removed on drop.
struct Machine {
    c: Container,
}

impl Machine {
    /// Boots it and waits for `systemctl is-system-running` to say `running`.
    fn boot(what: &str) -> Machine {
        require_engine();
        let image = base_image(&SYSTEMD);
        let m = Machine {
            c: Container::named(unique(what)),
        };
        let mut args = vec![
            "run",
            "--detach",
            "--name",
            &m.c.name,
            "--systemd=always",
            "--network=none",
            "--cap-add=SYS_ADMIN,NET_RAW,MKNOD",
            "--sysctl=net.ipv4.ping_group_range=1 0",
        ];
        args.extend(ULIMITS);
        args.extend([image.as_str(), "/sbin/init"]);
        ok("boot the systemd container", &args);
        let mut state = String::new();
        wait_until_or(
            "systemctl is-system-running to say running",
            Duration::from_secs(60),
            || {
                state = String::from_utf8_lossy(&m.sh("systemctl is-system-running").stdout)
                    .trim()
                    .to_string();
                matches!(state.as_str(), "running" | "degraded")
            },
            || m.c.logs(),
        );
        assert_eq!(
            state,
            "running",
            "systemd came up degraded; failed units:\n{}",
            m.sh_ok(
                "systemctl --failed --no-pager; journalctl -b --no-pager -p warning | tail -30"
            )
        );
        m
    }

    /// `sh -c SCRIPT` in the machine.
    fn sh(&self, script: &str) -> Output {
        self.c.exec(&["sh", "-c", script])
    }

    /// `sh -c SCRIPT` in the machine: stdout, or a panic with the output and the journal.
    fn sh_ok(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "`{script}` in the systemd container: {:?}\n{}\n{}",
            out.status,
            output_text(&out),
            self.journal()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Copies `content` into the machine at `path`.
    fn write(&self, path: &str, content: &str) {
        let dir = tempfile::tempdir().expect("tempdir");
        let local = dir.path().join("file");
        std::fs::write(&local, content).expect("write");
        self.sh_ok(&format!("mkdir -p \"$(dirname {path})\""));
        ok(
            "podman cp",
            &[
                "cp",
                local.to_str().expect("utf-8"),
                &format!("{}:{path}", self.c.name),
            ],
        );
    }

    /// `apt-get install ./anycastd_*.deb` of the package built from this tree; apt's output.
    fn install(&self) -> String {
        let deb = debian_package();
        ok(
            "copy the package in",
            &[
                "cp",
                deb.to_str().expect("utf-8"),
                &format!("{}:/root/", self.c.name),
            ],
        );
        self.sh_ok(
            "cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y ./anycastd_*.deb 2>&1",
        )
    }

    /// `systemctl show UNIT -p PROPERTY --value`.
    fn show(&self, unit: &str, property: &str) -> String {
        self.sh_ok(&format!("systemctl show {unit} -p {property} --value"))
            .trim()
            .to_string()
    }

    /// The last lines of the journal of the units that matter here.
    fn journal(&self) -> String {
        let out = self.sh(
            "journalctl --no-pager -o short-precise -n 80 -u anycastd -u anycastd-gobgpd -u router",
        );
        format!("--- journal ---\n{}", output_text(&out))
    }

    /// The whole journal, for searching.
    fn full_journal(&self) -> String {
        self.sh_ok("journalctl --no-pager -o short-precise")
    }
}

/// The router's BGP port and API port inside the machine.
const ROUTER_BGP: u16 = 10179;
const ROUTER_API: u16 = 50052;

/// The anycastd config that peers with the router: one service with an assigned_address
/// check and an icmp_ping check (which needs the unit's CAP_NET_RAW), gating `routes`.
fn config(routes: &[&str]) -> String {
    crate::common::config::config("10.255.0.1", "127.0.0.1", 65001)
        // gobgpd drops routes whose next hop is on loopback.
        .announcer("next_hop", "198.51.100.1")
        .routes(routes)
        .peer(peer("router", "127.0.0.2", 65000).set("remote_port", ROUTER_BGP))
        .service(
            service("local", "1s")
                .check(check("assigned_address").spec("ipv4", "127.0.0.1"))
                .check(
                    check("icmp_ping")
                        .spec("static", "{host: 127.0.0.1}")
                        .spec("tries", 1)
                        .spec("timeout", "500ms"),
                ),
        )
        .to_string()
}

/// A machine with the package installed, a router gobgpd (`router.service`, BGP on
/// 127.0.0.2), anycastd restarted on `config(&[PREFIX])` (plus `dropin`, a drop-in for anycastd.service,
/// if any), and PREFIX at the router.
fn with_router(what: &str, dropin: Option<&str>) -> Machine {
    let m = Machine::boot(what);
    m.install();
    let router = RouterOpts {
        asn: 65000,
        router_id: "10.255.0.2".parse().expect("ip"),
        listen_addr: "127.0.0.2".parse().expect("ip"),
        neighbor_addr: "127.0.0.1".parse().expect("ip"),
        neighbor_asn: 65001,
    };
    m.write("/etc/router.toml", &router_toml(&router, ROUTER_BGP, &[]));
    m.sh_ok(&format!(
        "systemd-run --unit=router /usr/bin/gobgpd -f /etc/router.toml \
         --api-hosts 127.0.0.1:{ROUTER_API} --pprof-disable"
    ));
    m.write("/etc/anycastd/config.yaml", &config(&[PREFIX]));
    if let Some(d) = dropin {
        m.write("/etc/systemd/system/anycastd.service.d/test.conf", d);
    }
    m.sh_ok("systemctl daemon-reload && systemctl restart anycastd.service");
    wait_for_route(&m, true, Duration::from_secs(45), "the route at the router");
    m
}

/// The prefixes in the router's RIB.
fn router_rib(m: &Machine) -> BTreeSet<String> {
    let out = m.sh(&format!("gobgp -p {ROUTER_API} global rib -a ipv4 -j"));
    rib_json_prefixes(&String::from_utf8_lossy(&out.stdout))
}

/// Prefixes the router saw withdrawn in UPDATEs from anycastd's gobgpd (a closed session
/// withdraws none): the router's counter, kept across sessions.
fn withdrawn(m: &Machine) -> u64 {
    let out = m.sh_ok(&format!("gobgp -p {ROUTER_API} neighbor 127.0.0.1 -j"));
    withdrawn_prefixes(&out).expect("gobgp neighbor -j prints JSON")
}

fn wait_for_route(m: &Machine, present: bool, deadline: Duration, what: &str) -> Duration {
    wait_until_or(
        what,
        deadline,
        || router_rib(m).contains(PREFIX) == present,
        || format!("router RIB: {:?}\n{}", router_rib(m), m.journal()),
    )
}

/// Runs `f` on the package unpacked here (dpkg-deb -x): the directory.
fn unpacked<T>(f: impl FnOnce(&Path) -> T) -> T {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_str().expect("a UTF-8 temporary directory");
    dpkg_deb(&["-x"], &[path]);
    f(dir.path())
}

/// `dpkg-deb ARGS PACKAGE ...`: stdout.
fn dpkg_deb(before: &[&str], after: &[&str]) -> String {
    let out = Command::new("dpkg-deb")
        .args(before)
        .arg(debian_package())
        .args(after)
        .output()
        .expect("run dpkg-deb (Debian package dpkg)");
    assert!(out.status.success(), "{}", output_text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn package_holds_the_binary_units_config_and_docs() {
    let deb = debian_package();
    let file = deb.file_name().and_then(|f| f.to_str()).expect("a name");
    let version = format!("{}-1", env!("CARGO_PKG_VERSION"));
    assert_eq!(file, format!("anycastd_{version}_amd64.deb"));
    let field = |name: &str| dpkg_deb(&["--field"], &[name]).trim().to_string();
    assert_eq!(field("Package"), "anycastd");
    assert_eq!(field("Version"), version);
    assert_eq!(field("Architecture"), "amd64");
    let depends = field("Depends");
    assert!(
        depends.contains("gobgpd (>= 3)") && depends.contains("libc6"),
        "{depends}"
    );
    let description = field("Description");
    let synopsis = description.lines().next().unwrap_or_default();
    assert!(synopsis.len() < 80, "dpkg's synopsis line: {synopsis}");
    assert_eq!(
        dpkg_deb(&["--info"], &["conffiles"]).trim(),
        "/etc/anycastd/config.yaml"
    );
    let postinst = dpkg_deb(&["--info"], &["postinst"]);
    assert!(
        postinst.contains("deb-systemd-helper enable anycastd.service"),
        "{postinst}"
    );

    unpacked(|root| {
        // The units and the config are the tree's, byte for byte.
        for (packaged, source) in [
            (
                "usr/lib/systemd/system/anycastd.service",
                "systemd/anycastd.service",
            ),
            (
                "usr/lib/systemd/system/anycastd-gobgpd.service",
                "systemd/anycastd-gobgpd.service",
            ),
            ("etc/anycastd/config.yaml", "deploy/deb/config.yaml"),
            ("usr/share/doc/anycastd/README.md", "README.md"),
            (
                "usr/share/bash-completion/completions/anycastd",
                "doc/completions/anycastd.bash",
            ),
            (
                "usr/share/zsh/vendor-completions/_anycastd",
                "doc/completions/_anycastd",
            ),
            (
                "usr/share/fish/vendor_completions.d/anycastd.fish",
                "doc/completions/anycastd.fish",
            ),
        ] {
            let a =
                std::fs::read(root.join(packaged)).unwrap_or_else(|e| panic!("{packaged}: {e}"));
            let b = std::fs::read(repo().join(source)).expect(source);
            assert!(a == b, "the package's {packaged} differs from {source}");
        }
        assert!(root.join("usr/share/doc/anycastd/copyright").exists());
        // Every man page of doc/, compressed (cargo-deb gzips them).
        let pages: Vec<String> = std::fs::read_dir(repo().join("doc"))
            .expect("doc/")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".1"))
            .collect();
        assert!(pages.iter().any(|p| p == "anycastd.1"), "{pages:?}");
        for page in &pages {
            let packaged = root.join("usr/share/man/man1").join(format!("{page}.gz"));
            assert!(
                packaged.exists(),
                "the package lacks {}",
                packaged.display()
            );
        }
        // The binary is the release build (stripped by cargo-deb), and runs.
        let bin = root.join("usr/bin/anycastd");
        let out = Command::new(&bin)
            .arg("--version")
            .output()
            .expect("run it");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("anycastd {}", env!("CARGO_PKG_VERSION"))
        );
        let packaged = std::fs::metadata(&bin).expect("binary").len();
        let built = std::fs::metadata(release_binary()).expect("binary").len();
        assert!(packaged <= built, "{packaged} > {built}");
    });
}

/// Every path in the machine but the kernel's, the volatile ones and the journal.
const SNAPSHOT: &str = "find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /run \
     -o -path /tmp -o -path /var/log/journal -o -path /var/cache -o -path /var/lib/apt/lists \
     -o -path /root \\) -prune -o -print | sort";

#[test]
fn package_installs_verifies_and_purges_cleanly() {
    let m = Machine::boot("deb");
    let before: BTreeSet<String> = m.sh_ok(SNAPSHOT).lines().map(String::from).collect();

    let apt = m.install();
    assert!(apt.contains("Setting up anycastd"), "{apt}");
    // Enabled and started on install (the shipped config announces nothing: no peers);
    // anycastd-gobgpd comes with it (Wants=), not enabled on its own.
    assert_eq!(
        m.sh_ok("systemctl is-enabled anycastd.service").trim(),
        "enabled"
    );
    let gobgpd_enabled = m.sh("systemctl is-enabled anycastd-gobgpd.service");
    assert_eq!(
        String::from_utf8_lossy(&gobgpd_enabled.stdout).trim(),
        "disabled"
    );
    assert_eq!(
        m.sh_ok("systemctl is-active anycastd.service anycastd-gobgpd.service"),
        "active\nactive\n",
        "{}",
        m.journal()
    );

    let verify = m.sh_ok(
        "systemd-analyze verify /usr/lib/systemd/system/anycastd.service \
         /usr/lib/systemd/system/anycastd-gobgpd.service 2>&1",
    );
    assert!(
        verify.trim().is_empty(),
        "systemd-analyze verify warned:\n{verify}"
    );
    assert_eq!(
        m.sh_ok("anycastd --version").trim(),
        format!("anycastd {}", env!("CARGO_PKG_VERSION"))
    );
    let check = m.sh_ok("anycastd --config /etc/anycastd/config.yaml check-config 2>&1");
    assert!(check.contains("is valid"), "{check}");
    assert!(
        m.sh_ok("dpkg-query -W -f '${Conffiles}' anycastd")
            .contains("/etc/anycastd/config.yaml")
    );
    m.sh_ok("test -d /var/lib/anycastd");

    let purge = m.sh_ok("DEBIAN_FRONTEND=noninteractive apt-get purge -y anycastd 2>&1");
    assert!(
        purge.contains("Purging configuration files for anycastd"),
        "{purge}"
    );
    // Stopped (prerm; gobgpd through BindsTo=), gone from systemd, no process left.
    let units = m.sh_ok("systemctl list-units --all --no-legend 'anycastd*'");
    assert!(units.trim().is_empty(), "units left: {units}");
    let comms = m.sh_ok("cat /proc/[0-9]*/comm");
    assert!(
        !comms.lines().any(|c| c == "anycastd" || c == "gobgpd"),
        "processes left: {comms}"
    );
    // Nothing left but the package manager's logs (which Debian keeps).
    let after: BTreeSet<String> = m.sh_ok(SNAPSHOT).lines().map(String::from).collect();
    let left: Vec<&String> = after
        .difference(&before)
        .filter(|p| !(p.starts_with("/var/log/apt/") || *p == "/var/log/dpkg.log"))
        .collect();
    let taken: Vec<&String> = before.difference(&after).collect();
    assert!(
        left.is_empty() && taken.is_empty(),
        "after the purge, left behind: {left:?}; gone that was there before: {taken:?}"
    );
}

#[test]
fn unit_starts_hardened_announces_and_withdraws_on_stop() {
    let m = with_router("unit", None);
    // Type=notify: active means READY=1 came.
    assert_eq!(m.show("anycastd", "Type"), "notify");
    assert_eq!(m.show("anycastd", "SubState"), "running");
    let pid = m.show("anycastd", "MainPID");
    let status = parse_proc_status(&m.sh_ok(&format!("cat /proc/{pid}/status")));
    // DynamicUser=yes: a uid from systemd's dynamic range, not root.
    let uid: u32 = status["Uid"]
        .split_whitespace()
        .next()
        .and_then(|u| u.parse().ok())
        .expect("a uid");
    assert!((61184..=65519).contains(&uid), "uid {uid}: {status:?}");
    // CAP_NET_RAW alone (bit 13), bounding set included; NoNewPrivileges; a seccomp filter.
    assert_eq!(status["CapEff"], "0000000000002000", "{status:?}");
    assert_eq!(status["CapBnd"], "0000000000002000", "{status:?}");
    assert_eq!(status["NoNewPrivs"], "1", "{status:?}");
    assert_eq!(status["Seccomp"], "2", "{status:?}");
    // ProtectSystem=strict: / is read-only for it; PrivateTmp=: a /tmp of its own.
    let mounts = m.sh_ok(&format!("cat /proc/{pid}/mountinfo"));
    let mount = |point: &str| {
        mounts
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.get(4) == Some(&point))
            .map(|f| f[5].to_string())
    };
    assert!(
        mount("/").is_some_and(|o| o.split(',').any(|o| o == "ro")),
        "/ is not read-only for anycastd:\n{mounts}"
    );
    // The container has a /tmp of its own too: only systemd's private copy proves PrivateTmp.
    let private_tmp = mounts.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(4) == Some(&"/tmp")
            && f.get(3).is_some_and(|root| {
                root.contains("systemd-private-") && root.contains("anycastd.service")
            })
    });
    assert!(private_tmp, "no private /tmp:\n{mounts}");
    // Its icmp_ping check passes: the raw socket of CAP_NET_RAW (ping_group_range is "1 0").
    let status_text = m.sh_ok("anycastd --config /etc/anycastd/config.yaml status");
    assert!(
        status_text
            .lines()
            .any(|l| l.contains("icmp_ping") && l.contains("PASS")),
        "{status_text}"
    );

    // systemctl stop: anycastd withdraws (an UPDATE at the router) before it exits, then
    // gobgpd stops (BindsTo=, ordered after).
    let before = withdrawn(&m);
    m.sh_ok("systemctl stop anycastd.service");
    assert!(
        withdrawn(&m) > before,
        "no withdraw reached the router before the session closed\n{}",
        m.journal()
    );
    assert!(!router_rib(&m).contains(PREFIX));
    assert_eq!(m.show("anycastd", "Result"), "success");
    assert_eq!(m.show("anycastd", "ExecMainStatus"), "0");
    assert_eq!(m.show("anycastd-gobgpd", "ActiveState"), "inactive");
    let journal = m.full_journal();
    let withdrawn_at = journal.find("withdrawn prefix=192.0.2.1/32");
    let gobgpd_stopping = journal.rfind("Stopping anycastd-gobgpd.service");
    assert!(
        withdrawn_at.is_some() && withdrawn_at < gobgpd_stopping,
        "the withdraw was not logged before gobgpd stopped:\n{}",
        tail(&journal, 40)
    );
}

#[test]
fn sigkill_takes_gobgpd_down_and_restart_brings_both_back() {
    let m = with_router("sigkill", None);
    let gobgpd_run = m.show("anycastd-gobgpd", "InvocationID");
    let before = withdrawn(&m);
    let start = Instant::now();
    m.sh_ok("systemctl kill --signal=KILL --kill-who=main anycastd.service");
    wait_for_route(&m, false, Duration::from_secs(20), "the route to leave");
    let gone = start.elapsed();
    // Gone with the session (gobgpd stopped), not withdrawn: a killed anycastd sends nothing.
    assert_eq!(withdrawn(&m), before, "{}", m.journal());
    wait_for_route(&m, true, Duration::from_secs(60), "the route back");
    let back = start.elapsed();
    eprintln!("SIGKILL -> route gone from the router {gone:.1?}, back {back:.1?}");

    let journal = m.full_journal();
    let failed = journal
        .find("anycastd.service: Failed with result 'signal'")
        .expect("anycastd failed on the signal");
    let stopped = journal[failed..].find("Stopped anycastd-gobgpd.service");
    let restarted = journal[failed..].find("anycastd.service: Scheduled restart job");
    assert!(
        stopped.is_some() && stopped < restarted,
        "gobgpd was not stopped before anycastd's restart:\n{}",
        tail(&journal, 40)
    );
    assert_eq!(m.show("anycastd", "NRestarts"), "1");
    assert_eq!(m.show("anycastd-gobgpd", "ActiveState"), "active");
    assert_ne!(m.show("anycastd-gobgpd", "InvocationID"), gobgpd_run);
}

#[test]
fn watchdog_kills_a_wedged_anycastd() {
    // WatchdogSec=30s shortened to 3s by a drop-in, to keep the test short.
    let m = with_router("watchdog", Some("[Service]\nWatchdogSec=3s\n"));
    assert_eq!(m.show("anycastd", "WatchdogUSec"), "3s");
    let pid = m.show("anycastd", "MainPID");
    let start = Instant::now();
    m.sh_ok("systemctl kill --signal=STOP --kill-who=main anycastd.service");
    wait_for_route(&m, false, Duration::from_secs(30), "the route to leave");
    let gone = start.elapsed();
    wait_for_route(&m, true, Duration::from_secs(60), "the route back");
    let back = start.elapsed();
    eprintln!("SIGSTOP -> route gone {gone:.1?} (watchdog 3s), back {back:.1?}");
    let journal = m.full_journal();
    assert!(
        journal.contains("anycastd.service: Watchdog timeout (limit 3s)!")
            && journal.contains("anycastd.service: Failed with result 'watchdog'"),
        "{}",
        tail(&journal, 40)
    );
    assert_eq!(m.show("anycastd", "NRestarts"), "1");
    assert_ne!(m.show("anycastd", "MainPID"), pid);
}

#[test]
fn systemctl_reload_applies_a_new_config_and_refuses_a_bad_one() {
    let m = with_router("reload", None);
    let pid = m.show("anycastd", "MainPID");
    let gobgpd_run = m.show("anycastd-gobgpd", "InvocationID");
    let before = withdrawn(&m);

    // A second route: it reaches the router; the first one is not touched.
    m.write(
        "/etc/anycastd/config.yaml",
        &config(&[PREFIX, "192.0.2.2/32"]),
    );
    m.sh_ok("systemctl reload anycastd.service");
    wait_until_or(
        "the reloaded config's new route at the router",
        Duration::from_secs(30),
        || router_rib(&m).contains("192.0.2.2/32"),
        || format!("router RIB: {:?}\n{}", router_rib(&m), m.journal()),
    );
    assert!(router_rib(&m).contains(PREFIX));
    assert_eq!(
        withdrawn(&m),
        before,
        "the reload withdrew something\n{}",
        m.journal()
    );

    // An invalid file: the reload fails with the reason, and nothing changes.
    m.write("/etc/anycastd/config.yaml", "announcer: [not a map\n");
    let refused = m.sh("systemctl reload anycastd.service");
    assert!(
        !refused.status.success(),
        "systemctl reload accepted an invalid config\n{}",
        m.journal()
    );
    let journal = m.journal();
    assert!(
        // The earlier, good reload logged the file's name but never this.
        journal.contains("/etc/anycastd/config.yaml is not valid"),
        "the reason is not in the journal:\n{journal}"
    );
    // SPEC 19: `anycastd reload` found the daemon at the default socket all the same, and
    // the daemon refused the file itself: an ERROR (priority 3) in its journal, and in
    // `status` (the metrics address is the default; the file names none that parses).
    let errors = m.sh_ok("journalctl -u anycastd -p err --no-pager -o cat");
    assert!(
        errors.contains("config reload refused; the running config stays"),
        "{errors}"
    );
    let status = m.sh_ok("anycastd status --address 127.0.0.1:9090");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("last reload ") && l.contains(": REFUSED: config file ")),
        "{status}"
    );
    assert_eq!(m.show("anycastd", "ActiveState"), "active");
    assert!(router_rib(&m).is_superset(&BTreeSet::from([
        PREFIX.to_string(),
        "192.0.2.2/32".to_string()
    ])));

    // One process and one gobgpd throughout: reloads, not restarts.
    assert_eq!(m.show("anycastd", "MainPID"), pid);
    assert_eq!(m.show("anycastd", "NRestarts"), "0");
    assert_eq!(m.show("anycastd-gobgpd", "InvocationID"), gobgpd_run);
}

/// One journal entry as `journalctl -o json` prints it: its fields, as text.
fn entries(m: &Machine, args: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    m.sh_ok(&format!("journalctl --no-pager -o json {args}"))
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn field<'a>(e: &'a serde_json::Map<String, serde_json::Value>, name: &str) -> &'a str {
    e.get(name).and_then(|v| v.as_str()).unwrap_or("")
}

/// SPEC 19 (issue 23.1): under systemd each line reaches the journal with its priority and
/// its fields: route and state changes at notice (5), problems at warning (4), so that
/// `journalctl -p warning` shows problems only; `PREFIX=` selects one prefix's lines. Then
/// what an operator reads after a route went away and came back: the journal at `-p
/// notice` and `anycastd status`.
#[test]
fn journal_lines_carry_their_priority_and_fields() {
    let m = with_router("journal", None);
    let announced = |m: &Machine| {
        entries(m, &format!("-u anycastd PREFIX={PREFIX}"))
            .into_iter()
            .filter(|e| field(e, "MESSAGE").starts_with("announced "))
            .collect::<Vec<_>>()
    };
    let mut first = Vec::new();
    wait_until_or(
        "the announcement in the journal",
        Duration::from_secs(10),
        || {
            first = announced(&m);
            !first.is_empty()
        },
        || m.journal(),
    );
    let e = &first[0];
    assert_eq!(field(e, "PRIORITY"), "5", "{e:?}");
    assert_eq!(field(e, "SYSLOG_IDENTIFIER"), "anycastd", "{e:?}");
    assert_eq!(field(e, "_TRANSPORT"), "journal", "{e:?}");
    assert_eq!(field(e, "PREFIX"), PREFIX, "{e:?}");
    assert!(field(e, "REASON").ends_with("service local is up"), "{e:?}");
    assert_eq!(
        field(e, "MESSAGE"),
        format!(
            "announced prefix={PREFIX} next_hop=198.51.100.1 attributes=\"up\" reason=\"{}\"",
            field(e, "REASON")
        )
    );
    // Once: not also through stderr's stream.
    let text = m.sh_ok("journalctl -u anycastd --no-pager -o cat");
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with(&format!("announced prefix={PREFIX} ")))
            .count(),
        1,
        "{text}"
    );

    // The route goes away (a drain) and comes back; then a problem: the router stops.
    m.sh_ok("anycastd --config /etc/anycastd/config.yaml drain local");
    wait_for_route(
        &m,
        false,
        Duration::from_secs(30),
        "the drained route to leave",
    );
    m.sh_ok("anycastd --config /etc/anycastd/config.yaml undrain local");
    wait_for_route(&m, true, Duration::from_secs(30), "the route back");
    m.sh_ok("systemctl stop router");
    let mut lost = Vec::new();
    wait_until_or(
        "the lost session in the journal",
        Duration::from_secs(30),
        || {
            lost = entries(&m, "-u anycastd PEER=router")
                .into_iter()
                .filter(|e| field(e, "MESSAGE").starts_with("BGP session lost"))
                .collect();
            !lost.is_empty()
        },
        || m.journal(),
    );
    assert_eq!(field(&lost[0], "PRIORITY"), "4", "{:?}", lost[0]);

    // -p warning: the problems, none of the changes.
    let warnings = m.sh_ok("journalctl -u anycastd -p warning --no-pager -o cat");
    assert!(warnings.contains("BGP session lost"), "{warnings}");
    for change in [
        "announced ",
        "withdrawn ",
        "drained by command",
        "undrained by command",
    ] {
        assert!(
            !warnings.lines().any(|l| l.starts_with(change)),
            "`{change}` at -p warning:\n{warnings}"
        );
    }
    // -p notice: the changes too, each with its reason.
    let notice = m.sh_ok("journalctl -u anycastd -p notice --no-pager -o short-precise");
    for change in [
        format!(
            "withdrawn prefix={PREFIX} reason=\"service local is drained (drain linger over)\""
        ),
        "drained by command".to_string(),
        "undrained by command".to_string(),
        "BGP session established".to_string(),
    ] {
        assert!(
            notice.contains(&change),
            "`{change}` not at -p notice:\n{notice}"
        );
    }
    let withdrawn = entries(&m, &format!("-u anycastd PREFIX={PREFIX} -p notice"))
        .into_iter()
        .filter(|e| field(e, "MESSAGE").starts_with("withdrawn "))
        .count();
    assert!(withdrawn >= 1, "{notice}");
    let status = m.sh_ok("anycastd --config /etc/anycastd/config.yaml status");
    // The transitions: up -> draining -> withdrawn, and back.
    let transitions: Vec<String> = status
        .lines()
        .filter(|l| l.contains(&format!(" {PREFIX} ")))
        .map(|l| l.split_whitespace().skip(2).collect::<Vec<_>>().join(" "))
        .collect();
    for t in [
        "up draining service local is drained",
        "draining withdrawn service local is drained (drain linger over)",
        "withdrawn up service local is up",
    ] {
        assert!(transitions.iter().any(|l| l == t), "{t:?} not in\n{status}");
    }
    eprintln!(
        "--- journalctl -u anycastd -p notice ---\n{}\n--- anycastd status ---\n{status}",
        notice.trim_end()
    );
}
