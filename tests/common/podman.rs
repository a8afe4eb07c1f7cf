//! Rootful podman for the container tests. Every call runs with `--runtime runc` (crun
//! refuses this kernel's hybrid cgroups) and a containers.conf whose default ulimits
//! (nofile 1024, nproc 4096) runc may set here: the same as `--ulimit`, also for the infra
//! containers of pods, which take no `--ulimit`. No registry is reachable, so base images are
//! made with mmdebstrap from Debian's packages and `podman import`ed, tagged with a hash of
//! their recipe: podman's store keeps them between runs, and a changed recipe makes a new one.
//! Containers and pods are removed when their guards drop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::artifacts::output_text;
use super::lab::tail;

/// The `--ulimit`s of every `podman run`/`create`/`build`.
pub const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=4096:4096",
];

/// Fails (never skips) without root or without the programs the container tests need,
/// saying how to install them. Once per process, it also removes what test processes that
/// died before their guards ran left behind (see [`sweep_leftovers`]).
pub fn require_engine() {
    static SWEPT: OnceLock<()> = OnceLock::new();
    check_engine();
    SWEPT.get_or_init(sweep_leftovers);
}

/// Pods, containers, volumes and network namespaces named `anycastd-test-<pid>-...` whose
/// process is gone (killed mid-test: a CI timeout, ^C) are removed, and so are the untagged
/// images that earlier runs' builds left behind (each run re-tags `anycastd-test/anycastd` and
/// `anycastd-test/gobgpd`: without this, 53 of them held 4 GB after a day's runs).
fn sweep_leftovers() {
    let dead = |name: &str| {
        name.strip_prefix("anycastd-test-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    };
    let names = |args: &[&str]| -> Vec<String> {
        String::from_utf8_lossy(&run(args).stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|n| dead(n))
            .collect()
    };
    for pod in names(&["pod", "ps", "--format", "{{.Name}}"]) {
        let _ = run(&["pod", "rm", "--force", "--time", "0", &pod]);
    }
    for c in names(&["ps", "--all", "--format", "{{.Names}}"]) {
        let _ = run(&["rm", "--force", "--time", "0", &c]);
    }
    // The volumes that `podman kube play` made of a ConfigMap (named after it).
    for v in names(&["volume", "ls", "--format", "{{.Name}}"]) {
        let _ = run(&["volume", "rm", "--force", &v]);
    }
    let _ = run(&["image", "prune", "--force"]);
    let netns = Command::new("ip").args(["netns", "list"]).output();
    for line in netns
        .map(|o| o.stdout)
        .unwrap_or_default()
        .split(|b| *b == b'\n')
    {
        let line = String::from_utf8_lossy(line);
        let name = line.split_whitespace().next().unwrap_or_default();
        if dead(name) {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

fn check_engine() {
    let uid = Command::new("id").arg("-u").output().expect("run id");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "the container tests need root (rootful podman, network namespaces); CI runs as root"
    );
    for (program, package) in [
        ("podman", "podman"),
        ("runc", "runc"),
        ("catatonit", "catatonit"),
        ("mmdebstrap", "mmdebstrap"),
        ("ip", "iproute2"),
    ] {
        let found = ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"]
            .iter()
            .any(|d| Path::new(d).join(program).exists());
        assert!(
            found,
            "`{program}` is not installed: the container tests need it. Install it with \
             `apt-get install -y {package}` (or run ./scripts/test.sh, which does)"
        );
    }
}

/// The containers.conf of every podman call (see the module doc).
fn containers_conf() -> &'static Path {
    static CONF: OnceLock<PathBuf> = OnceLock::new();
    CONF.get_or_init(|| {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("anycastd-containers.conf");
        let text = "# Written by tests/common/podman.rs.\n[containers]\n\
                    default_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
                    [engine]\nruntime = \"runc\"\n";
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        std::fs::write(&tmp, text).expect("write containers.conf");
        std::fs::rename(&tmp, &path).expect("move containers.conf in place");
        path
    })
}

/// `podman --runtime runc`, with the test containers.conf.
pub fn podman() -> Command {
    let mut c = Command::new("podman");
    c.env("CONTAINERS_CONF", containers_conf())
        .args(["--runtime", "runc"]);
    c
}

/// [`podman`] run inside the network namespace `netns` (`nsenter --net`, nothing else
/// changed). A host-network container has no network namespace of its own: the one it runs
/// in, and the one of what podman execs in it (a healthcheck), is podman's own. So every
/// call that starts one (kube play, start, a restart by a healthcheck) or execs in one runs
/// here, in the namespace that stands for the node.
pub fn podman_within(netns: &str) -> Command {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net=/run/netns/{netns}"))
        .arg("podman")
        .env("CONTAINERS_CONF", containers_conf())
        .args(["--runtime", "runc"]);
    c
}

/// Runs `podman ARGS` to the end.
pub fn run(args: &[&str]) -> Output {
    podman().args(args).output().expect("run podman")
}

/// Runs `podman ARGS` to the end inside `netns` ([`podman_within`]).
pub fn run_within(netns: &str, args: &[&str]) -> Output {
    podman_within(netns)
        .args(args)
        .output()
        .expect("run nsenter podman")
}

/// Runs `podman ARGS`; its stdout, or a panic naming `what` with everything it printed.
pub fn ok(what: &str, args: &[&str]) -> String {
    checked(what, args, run(args))
}

/// Like [`ok`], inside `netns` ([`podman_within`]).
pub fn ok_within(netns: &str, what: &str, args: &[&str]) -> String {
    checked(what, args, run_within(netns, args))
}

fn checked(what: &str, args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "{what}: podman {} failed:\n{}",
        args.join(" "),
        output_text(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A local base image: what mmdebstrap makes of Debian bookworm with these arguments, plus
/// `podman import --change`s.
pub struct Base {
    pub name: &'static str,
    pub mmdebstrap: &'static [&'static str],
    pub changes: &'static [&'static str],
}

/// Leaves documentation out, as Debian's slim images do.
const SLIM: [&str; 4] = [
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
];

/// Stands in for gcr.io/distroless/cc-debian12:nonroot: glibc, libgcc, the CA bundle (and,
/// as there, libssl3 and openssl, ca-certificates' dependencies), passwd/group with root,
/// nobody and nonroot (65532), no shell, no package manager. Unpacked only (`extract`): the
/// extract hooks do what the maintainer scripts would (the CA bundle, as
/// update-ca-certificates writes it). gconv (iconv's charset modules, 8 MB) is left out:
/// Rust never loads it.
pub const RUNTIME: Base = Base {
    name: "runtime",
    mmdebstrap: &[
        "--variant=extract",
        "--include=libc6,libgcc-s1,ca-certificates",
        SLIM[0],
        SLIM[1],
        SLIM[2],
        SLIM[3],
        "--dpkgopt=path-exclude=/usr/lib/x86_64-linux-gnu/gconv/*",
        "--extract-hook=cat \"$1\"/usr/share/ca-certificates/mozilla/*.crt > \"$1\"/etc/ssl/certs/ca-certificates.crt",
        "--extract-hook=printf 'root:x:0:0:root:/root:/sbin/nologin\\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\\n' > \"$1\"/etc/passwd",
        "--extract-hook=printf 'root:x:0:\\nnobody:x:65534:\\nnonroot:x:65532:\\n' > \"$1\"/etc/group",
        "--extract-hook=mkdir -p \"$1\"/home/nonroot && chown 65532:65532 \"$1\"/home/nonroot",
    ],
    changes: &[],
};

/// Merged /usr set up by mmdebstrap's hook, as in Debian's images (without it apt pulls in
/// usrmerge, and with it perl); and apt's package caches (75 MB) gone.
const MINBASE: [&str; 3] = [
    "--variant=minbase",
    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
    "--customize-hook=rm -f \"$1\"/var/cache/apt/*.bin",
];

/// Stands in for docker.io/library/debian:bookworm-slim (78 MB against its 75 MB): minbase
/// without documentation, and apt cleaning up after itself as in Debian's images.
pub const DEBIAN: Base = Base {
    name: "debian",
    mmdebstrap: &[
        MINBASE[0],
        MINBASE[1],
        MINBASE[2],
        SLIM[0],
        SLIM[1],
        SLIM[2],
        SLIM[3],
        "--customize-hook=printf 'DPkg::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };\\nAPT::Update::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };\\nDir::Cache::pkgcache \"\";\\nDir::Cache::srcpkgcache \"\";\\n' > \"$1\"/etc/apt/apt.conf.d/docker-clean",
    ],
    changes: &["CMD [\"bash\"]"],
};

/// A bookworm that boots systemd as PID 1 (`--systemd=always`), with gobgpd already there:
/// the package's dependency (so that installing it needs no download) and the routers'.
pub const SYSTEMD: Base = Base {
    name: "systemd",
    mmdebstrap: &[
        MINBASE[0],
        MINBASE[1],
        MINBASE[2],
        "--include=systemd,systemd-sysv,dbus,gobgpd",
        SLIM[0],
        SLIM[1],
        SLIM[2],
        SLIM[3],
    ],
    changes: &["CMD [\"/sbin/init\"]"],
};

/// The tag of `base`, made now unless podman's store has it: `localhost/anycastd-test/
/// base-<name>:<hash of the recipe>`. mmdebstrap takes 20 s to 3 min, once per recipe and
/// machine.
pub fn base_image(base: &Base) -> String {
    // One build of each base at a time in this process (tests wait for the one under way);
    // different bases are made side by side.
    static BUILDING: Mutex<BTreeMap<&str, Arc<Mutex<()>>>> = Mutex::new(BTreeMap::new());
    let lock = BUILDING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(base.name)
        .or_default()
        .clone();
    let mut recipe = format!("bookworm\n{}\n", base.name);
    for a in base.mmdebstrap.iter().chain(base.changes) {
        recipe.push_str(a);
        recipe.push('\n');
    }
    let hash: String = Sha256::digest(recipe.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let tag = format!("localhost/anycastd-test/base-{}:{hash}", base.name);
    let _one_at_a_time = lock.lock().unwrap_or_else(|p| p.into_inner());
    if run(&["image", "exists", &tag]).status.success() {
        return tag;
    }
    let start = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let tar = dir.path().join("rootfs.tar");
    let out = Command::new("mmdebstrap")
        .args(base.mmdebstrap)
        .arg("bookworm")
        .arg(&tar)
        .output()
        .expect("run mmdebstrap");
    assert!(
        out.status.success(),
        "mmdebstrap for the {} base image failed (it fetches from Debian's mirror):\n{}",
        base.name,
        tail(&output_text(&out), 40)
    );
    let mut import: Vec<&str> = vec!["import"];
    for c in base.changes {
        import.extend(["--change", c]);
    }
    let tar = tar.to_str().expect("utf-8 path");
    import.extend([tar, tag.as_str()]);
    ok("podman import", &import);
    eprintln!(
        "made base image {tag} in {:.0?} (cached for the next runs)",
        start.elapsed()
    );
    tag
}

/// A container, removed (with its anonymous volumes) on drop.
pub struct Container {
    pub name: String,
    /// The network namespace that `exec` runs podman in (a host-network container's node).
    pub netns: Option<String>,
}

impl Container {
    /// The container called `name` (already created by the caller).
    pub fn named(name: String) -> Container {
        Container { name, netns: None }
    }

    /// The container called `name` of a host-network pod playing in `netns`.
    pub fn within(netns: &str, name: String) -> Container {
        Container {
            name,
            netns: Some(netns.to_string()),
        }
    }

    /// Its logs (stdout and stderr), the last 60 lines.
    pub fn logs(&self) -> String {
        let out = run(&["logs", &self.name]);
        format!(
            "--- logs of container {} ---\n{}",
            self.name,
            tail(&output_text(&out), 60)
        )
    }

    /// `podman exec` in it.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["exec", self.name.as_str()];
        all.extend_from_slice(args);
        match &self.netns {
            Some(ns) => run_within(ns, &all),
            None => run(&all),
        }
    }

    /// `podman exec` in it; stdout, or a panic with the output and the container's logs.
    pub fn exec_ok(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(
            out.status.success(),
            "podman exec {} {}: {:?}\n{}\n{}",
            self.name,
            args.join(" "),
            out.status,
            output_text(&out),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The host pid of its main process (0 when it does not run).
    pub fn pid(&self) -> u32 {
        ok(
            "the container's pid",
            &["inspect", "--format", "{{.State.Pid}}", &self.name],
        )
        .parse()
        .unwrap_or(0)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = run(&["rm", "--force", "--volumes", "--time", "0", &self.name]);
    }
}

/// A pod, removed with its containers on drop.
pub struct Pod {
    pub name: String,
}

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = run(&["pod", "rm", "--force", "--time", "0", &self.name]);
    }
}

/// CapEff of a process with CAP_NET_RAW only, as /proc/PID/status shows it.
pub const CAP_NET_RAW: &str = "0000000000002000";
/// CapEff of a process without capabilities.
pub const NO_CAPS: &str = "0000000000000000";

/// Process `pid` (a container's, seen from the host) runs as `uid`, with exactly the
/// effective capabilities `cap_eff`, and cannot gain privileges (no_new_privs).
pub fn assert_confined(pid: u32, uid: &str, cap_eff: &str) {
    let s = proc_status(pid);
    let real_uid = s
        .get("Uid")
        .and_then(|u| u.split_whitespace().next())
        .unwrap_or_default();
    assert_eq!(real_uid, uid, "process {pid}: {s:?}");
    assert_eq!(
        s.get("CapEff").map(String::as_str),
        Some(cap_eff),
        "process {pid}: {s:?}"
    );
    assert_eq!(
        s.get("NoNewPrivs").map(String::as_str),
        Some("1"),
        "process {pid}: {s:?}"
    );
}

/// `Uid:` and the capability sets of process `pid`, from /proc/PID/status.
pub fn proc_status(pid: u32) -> std::collections::BTreeMap<String, String> {
    parse_proc_status(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default())
}

/// The fields of a /proc/PID/status text, by name.
pub fn parse_proc_status(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}
