//! The container images, built and run for real (rootful podman, offline): both targets of
//! the Containerfile, built from the release binary (`--build-context build=DIR` stands in
//! for the `build` stage) on local stand-ins of their base images (tests/common/podman.rs);
//! the anycastd image's size, user, and lack of a shell; and the pod: gobgpd and anycastd in
//! one network namespace, run as compose.yaml runs them, with deploy/config.yaml mounted
//! read-only, announcing to a router gobgpd in a namespace of its own, through a target
//! stopping and starting, anycastd's healthcheck, and a killed anycastd whose routes
//! gobgpd-bound takes away.
//!
//! Nothing here can reach another machine: the pod's namespace and the router's are made by
//! the test and linked only to each other, and the sample config's documentation addresses
//! (the DNS server, the web service, the peer) are served inside them by the test.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::common::artifacts::{output_text, release_binary, repo};
use crate::common::dns::{Mode, answer};
use crate::common::gobgpd::{RouterOpts, withdrawn_prefixes};
use crate::common::lab::{HttpTarget, listen, unique, wait_until_or};
use crate::common::netns::{NetNs, NsRouter, link, run_in};
use crate::common::podman::{
    self, Container, DEBIAN, Pod, RUNTIME, ULIMITS, base_image, ok, proc_status, require_engine,
};
use serde_json::Value;

/// The image ids of the two targets.
struct Images {
    anycastd: String,
    gobgpd: String,
}

/// Both targets, built once per test process from the release binary.
fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        require_engine();
        // The bases (when not cached yet) side by side with the release build: mmdebstrap
        // waits mostly on the mirror and the disk, cargo on the CPU.
        let runtime = std::thread::spawn(|| base_image(&RUNTIME));
        let debian = std::thread::spawn(|| base_image(&DEBIAN));
        // What the `build` stage leaves behind (/out/anycastd), from the binary built here.
        let context = tempfile::tempdir().expect("tempdir");
        let out = context.path().join("out");
        std::fs::create_dir(&out).expect("mkdir out");
        std::fs::copy(release_binary(), out.join("anycastd")).expect("copy the release binary");
        let joined = |t: std::thread::JoinHandle<String>| t.join().expect("making a base panicked");
        let runtime = format!("RUNTIME_IMAGE={}", joined(runtime));
        let debian = format!("DEBIAN_IMAGE={}", joined(debian));
        Images {
            anycastd: build("anycastd", &runtime, context.path()),
            gobgpd: build("gobgpd", &debian, context.path()),
        }
    })
}

/// `podman build --target TARGET`, the `build` stage replaced by `context`; the image id.
/// Docker format: OCI images cannot hold a HEALTHCHECK. Host network for the RUN steps
/// (apt-get install gobgpd, from Debian's mirror; podman caches that layer).
fn build(target: &str, base_arg: &str, context: &Path) -> String {
    let start = Instant::now();
    let iid = context.join(format!("{target}.iid"));
    let mut args: Vec<String> = ["build", "--format", "docker", "--network", "host"]
        .into_iter()
        .chain(ULIMITS)
        .map(String::from)
        .collect();
    args.extend([
        format!("--build-context=build={}", context.display()),
        format!("--build-arg={base_arg}"),
        format!("--target={target}"),
        format!("--tag=localhost/anycastd-test/{target}:latest"),
        format!("--iidfile={}", iid.display()),
        format!("--file={}", repo().join("Containerfile").display()),
        repo().display().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&format!("building the {target} image"), &args);
    eprintln!("built the {target} image in {:.1?}", start.elapsed());
    std::fs::read_to_string(&iid)
        .expect("the image id")
        .trim()
        .to_string()
}

fn inspect_image(id: &str) -> Value {
    let json = ok("image inspect", &["image", "inspect", id]);
    let mut v: Value = serde_json::from_str(&json).expect("image inspect prints JSON");
    v[0].take()
}

#[test]
fn anycastd_image_is_small_non_root_and_has_no_shell() {
    let images = images();
    let image = inspect_image(&images.anycastd);
    let size = image["Size"].as_u64().expect("Size");
    let gobgpd_size = inspect_image(&images.gobgpd)["Size"].as_u64().unwrap_or(0);
    eprintln!(
        "image sizes: anycastd {:.1} MB, gobgpd {:.1} MB (release binary {:.1} MB)",
        size as f64 / 1e6,
        gobgpd_size as f64 / 1e6,
        std::fs::metadata(release_binary()).map_or(0, |m| m.len()) as f64 / 1e6
    );
    assert!(
        size < 30_000_000,
        "the anycastd image is {size} bytes, over the 30 MB goal"
    );

    let config = &image["Config"];
    assert_eq!(config["User"], "65532:65532", "{config}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/anycastd"])
    );
    assert!(
        config["Env"]
            .as_array()
            .is_some_and(|e| e.iter().any(|v| v == "CONFIG_PATH=/config.yaml")),
        "{config}"
    );
    // The HEALTHCHECK survived the build (docker format).
    assert_eq!(
        image["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "/usr/local/bin/anycastd", "healthcheck"])
    );

    // The binary runs on the image's glibc, as 65532.
    let mut run = vec!["run", "--rm", "--health-interval=disable"];
    run.extend(ULIMITS);
    let id = images.anycastd.as_str();
    let version = ok(
        "anycastd --version",
        &[run.as_slice(), &[id, "--version"]].concat(),
    );
    assert_eq!(version, format!("anycastd {}", env!("CARGO_PKG_VERSION")));

    // No shell to exec, and none anywhere in the image; no package manager either.
    let sh = podman::run(
        &[
            run.as_slice(),
            &["--entrypoint", "/bin/sh", id, "-c", "true"],
        ]
        .concat(),
    );
    assert!(
        !sh.status.success(),
        "/bin/sh ran in the anycastd image:\n{}",
        output_text(&sh)
    );
    let name = unique("image-files");
    ok("create", &["create", "--name", &name, id]);
    let _created = Container::named(name.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let tar = dir.path().join("fs.tar");
    ok(
        "export",
        &["export", "--output", tar.to_str().expect("utf-8"), &name],
    );
    let listing = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .expect("run tar");
    assert!(listing.status.success(), "{}", output_text(&listing));
    let files: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_string())
        .collect();
    assert!(
        files.iter().any(|f| f == "usr/local/bin/anycastd"),
        "the listing misses the binary: {files:?}"
    );
    let forbidden = [
        "sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "busybox", "dpkg", "apt", "apt-get",
    ];
    let found: Vec<&String> = files
        .iter()
        .filter(|f| {
            let (dir, file) = f.rsplit_once('/').unwrap_or(("", f));
            dir.ends_with("bin") && forbidden.contains(&file)
        })
        .collect();
    assert!(
        found.is_empty(),
        "the anycastd image has a shell or package manager: {found:?}"
    );
}

/// A DNS server on a UDP socket (bound by the caller, e.g. in a namespace) answering every
/// A query with 192.0.2.10, until dropped.
struct DnsServer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DnsServer {
    fn serve(sock: UdpSocket) -> DnsServer {
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stopping.load(Ordering::SeqCst) {
                if let Ok((n, from)) = sock.recv_from(&mut buf)
                    && let Some(reply) = answer(&buf[..n], Mode::A)
                {
                    let _ = sock.send_to(&reply, from);
                }
            }
        });
        DnsServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"))
}

fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"))
}

/// `podman create` of the container `name` in `pod` from `image`, with what compose.yaml
/// gives `service`: its environment, cap_drop, cap_add, security_opt, read_only and volumes
/// (relative ones resolved in the repository); then `extra`, which may override.
fn create_in_pod(pod: &Pod, name: &str, service: &Value, extra: &[&str], image: &str) -> Container {
    let list = |key: &str| -> Vec<String> {
        service[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let mut args: Vec<String> = ["create", "--pod", &pod.name, "--name", name]
        .into_iter()
        .chain(ULIMITS)
        .map(String::from)
        .collect();
    for (k, v) in service["environment"].as_object().into_iter().flatten() {
        let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
        args.push(format!("--env={k}={v}"));
    }
    args.extend(list("cap_drop").iter().map(|c| format!("--cap-drop={c}")));
    args.extend(list("cap_add").iter().map(|c| format!("--cap-add={c}")));
    // compose's "no-new-privileges:true" is podman's "no-new-privileges".
    args.extend(
        list("security_opt")
            .iter()
            .map(|o| format!("--security-opt={}", o.trim_end_matches(":true"))),
    );
    if service["read_only"] == true {
        args.push("--read-only".into());
    }
    for v in list("volumes") {
        let v = v
            .strip_prefix("./")
            .map_or(v.clone(), |rel| repo().join(rel).display().to_string());
        args.push(format!("--volume={v}"));
    }
    args.extend(extra.iter().map(|e| e.to_string()));
    args.push(image.to_string());
    ok(
        &format!("create the container {name}"),
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    Container::named(name.to_string())
}

/// The pod of compose.yaml and its surroundings: the pod's network namespace (linked to the
/// router's) with the services deploy/config.yaml checks, a router gobgpd in a namespace of
/// its own, and the two containers, created but not started. Dropped in reverse: containers,
/// pod, servers, router, namespaces.
struct PodLab {
    router: NsRouter,
    web: HttpTarget,
    _dns: DnsServer,
    gobgpd: Container,
    anycastd: Container,
    pod: Pod,
    _namespaces: (NetNs, NetNs),
    /// deploy/config.yaml's routes, global and per service.
    wanted: BTreeSet<String>,
    /// anycastd's address (the router's neighbor).
    local: String,
}

impl PodLab {
    fn create(images: &Images) -> PodLab {
        // What deploy/config.yaml expects around it, made real in the pod's namespace.
        let sample = yaml("deploy/config.yaml");
        let text = std::fs::read_to_string(repo().join("deploy/config.yaml")).expect("read");
        for needle in [
            "resolver: 192.0.2.53:53",
            "host: 192.0.2.53",
            "url: http://192.0.2.80:8080/healthz",
        ] {
            assert!(
                text.contains(needle),
                "deploy/config.yaml no longer has `{needle}`: serve what it checks in this test"
            );
        }
        let announcer = &sample["announcer"];
        let local = str_of(&announcer["local_address"], "local_address");
        let peer = &announcer["peers"][0];
        let peer_addr = str_of(&peer["remote_address"], "the peer's remote_address");
        let service_routes = sample["services"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["routes"].as_array().into_iter().flatten());
        let wanted: BTreeSet<String> = announcer["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(service_routes)
            .map(|r| str_of(r, "a route").to_string())
            .collect();
        assert_eq!(wanted.len(), 2, "deploy/config.yaml's routes: {wanted:?}");

        // The pod; its namespace exists once its infra container is initialised.
        let pod = Pod {
            name: unique("pod"),
        };
        ok(
            "pod create",
            &["pod", "create", "--name", &pod.name, "--network", "none"],
        );
        let infra = ok(
            "the infra container",
            &[
                "pod",
                "inspect",
                "--format",
                "{{.InfraContainerID}}",
                &pod.name,
            ],
        );
        ok("init the infra container", &["init", &infra]);
        let infra_pid = ok(
            "the infra pid",
            &["inspect", "--format", "{{.State.Pid}}", &infra],
        );
        let pod_ns = NetNs::attach("pod", infra_pid.parse().expect("a pid"));
        let router_ns = NetNs::create("router");
        link(
            &pod_ns,
            "to-router",
            &format!("{local}/24"),
            &router_ns,
            "to-pod",
            &format!("{peer_addr}/24"),
        );
        pod_ns.ip(&["addr", "add", "192.0.2.53/32", "dev", "lo"]);
        pod_ns.ip(&["addr", "add", "192.0.2.80/32", "dev", "lo"]);

        // The checked services, served from this process inside the pod's namespace.
        let dns = DnsServer::serve(
            pod_ns.run(|| UdpSocket::bind("192.0.2.53:53").expect("bind the DNS server")),
        );
        let ns_name = pod_ns.name.clone();
        let web = HttpTarget::start_with(
            "192.0.2.80:8080".parse().expect("addr"),
            Arc::new(move |addr: SocketAddr| run_in(&ns_name, move || listen(addr))),
        );
        let router = NsRouter::start(
            &router_ns,
            &RouterOpts {
                asn: peer["remote_asn"].as_u64().expect("remote_asn") as u32,
                router_id: peer_addr.parse().expect("IPv4 peer"),
                listen_addr: peer_addr.parse().expect("IPv4 peer"),
                neighbor_addr: local.parse().expect("local_address"),
                neighbor_asn: announcer["local_asn"].as_u64().expect("local_asn") as u32,
            },
            peer["remote_port"].as_u64().unwrap_or(179) as u16,
        );

        // gobgpd and anycastd as compose.yaml runs them; gobgpd-bound's grace cut from 30 s
        // to 3 s and its probe from every 5 s to every 0.5 s, to keep the test short.
        let compose = yaml("compose.yaml");
        let services = &compose["services"];
        let gobgpd = create_in_pod(
            &pod,
            &format!("{}-gobgpd", pod.name),
            &services["gobgpd"],
            &["--env=ANYCASTD_GRACE=3", "--env=ANYCASTD_PROBE_EVERY=0.5"],
            &images.gobgpd,
        );
        assert!(
            str_of(&services["anycastd"]["volumes"][0], "the config volume").ends_with(":ro"),
            "compose.yaml mounts the config read-only"
        );
        // No systemd on this host to run the healthcheck's timer: the test runs the check.
        let anycastd = create_in_pod(
            &pod,
            &format!("{}-anycastd", pod.name),
            &services["anycastd"],
            &["--health-interval=disable"],
            &images.anycastd,
        );
        PodLab {
            router,
            web,
            _dns: dns,
            gobgpd,
            anycastd,
            pod,
            _namespaces: (router_ns, pod_ns),
            wanted,
            local: local.to_string(),
        }
    }

    /// Every route of deploy/config.yaml is at the router.
    fn all_at_router(&self) -> bool {
        self.router.prefixes().is_superset(&self.wanted)
    }

    /// None is.
    fn none_at_router(&self) -> bool {
        self.router.prefixes().is_disjoint(&self.wanted)
    }

    /// Prefixes the router saw withdrawn in UPDATEs (a closed session withdraws none).
    fn withdrawn(&self) -> Option<u64> {
        withdrawn_prefixes(&self.router.cli(&["neighbor", &self.local, "-j"])?)
    }

    /// The router's RIB and log, and both containers' logs: for failure messages.
    fn context(&self) -> String {
        format!(
            "router RIB: {:?}\n{}\n{}\n{}",
            self.router.prefixes(),
            self.router.log_tail(),
            self.gobgpd.logs(),
            self.anycastd.logs()
        )
    }

    /// Waits for `cond` (deadline `secs`), failing with the context; the time it took.
    fn wait(&self, what: &str, secs: u64, cond: impl Fn(&PodLab) -> bool) -> Duration {
        wait_until_or(
            what,
            Duration::from_secs(secs),
            || cond(self),
            || self.context(),
        )
    }
}

#[test]
fn pod_announces_to_a_router_and_gobgpd_bound_takes_a_dead_anycastds_routes() {
    let mut lab = PodLab::create(images());
    let (pod, anycastd) = (lab.pod.name.clone(), lab.anycastd.name.clone());

    // Start: the routes reach the router.
    let start = Instant::now();
    ok("pod start", &["pod", "start", &pod]);
    lab.wait("the first route at the router", 60, |l| !l.none_at_router());
    let first = start.elapsed();
    lab.wait("every route at the router", 60, PodLab::all_at_router);
    eprintln!(
        "podman pod start -> first route at the router {first:.1?}, all {:.1?} (the dns \
         service needs rise 2 x check_interval 5s)",
        start.elapsed()
    );

    // Unprivileged: anycastd as 65532 with only CAP_NET_RAW; gobgpd-bound as 65534 with none.
    let a = proc_status(lab.anycastd.pid());
    let uid = |s: &std::collections::BTreeMap<String, String>| {
        s.get("Uid")
            .and_then(|u| u.split_whitespace().next().map(str::to_string))
    };
    assert_eq!(uid(&a).as_deref(), Some("65532"), "{a:?}");
    assert_eq!(
        a.get("CapEff").map(String::as_str),
        Some("0000000000002000"),
        "{a:?}"
    );
    assert_eq!(a.get("NoNewPrivs").map(String::as_str), Some("1"), "{a:?}");
    let g = proc_status(lab.gobgpd.pid());
    assert_eq!(uid(&g).as_deref(), Some("65534"), "{g:?}");
    assert_eq!(
        g.get("CapEff").map(String::as_str),
        Some("0000000000000000"),
        "{g:?}"
    );

    // `anycastd healthcheck` inside the container, and the image's HEALTHCHECK.
    let said = lab
        .anycastd
        .exec_ok(&["/usr/local/bin/anycastd", "healthcheck"]);
    assert!(said.starts_with("healthy"), "{said}");
    ok("podman healthcheck run", &["healthcheck", "run", &anycastd]);
    let health = ok(
        "health",
        &["inspect", "--format", "{{.State.Health.Status}}", &anycastd],
    );
    assert_eq!(health, "healthy");

    // The web service stops: its route, and the global one (every service), leave; it
    // comes back: so do they.
    lab.web.stop();
    let gone = lab.wait(
        "the routes to leave after the web service stopped",
        30,
        PodLab::none_at_router,
    );
    lab.web.restart();
    let back = lab.wait(
        "the routes back after the web service started",
        30,
        PodLab::all_at_router,
    );
    eprintln!("web service stopped -> routes gone {gone:.1?}; started -> back {back:.1?}");

    // anycastd killed (no withdraw): gobgpd-bound restarts gobgpd fresh, and the routes go.
    let before = lab.withdrawn();
    ok("kill anycastd", &["kill", "--signal", "KILL", &anycastd]);
    let gone = lab.wait(
        "gobgpd-bound to take the killed anycastd's routes away",
        30,
        PodLab::none_at_router,
    );
    let logs = lab.gobgpd.logs();
    assert!(
        logs.contains("restarting gobgpd so that its routes go"),
        "the routes went, but not through gobgpd-bound:\n{logs}"
    );
    assert_eq!(
        lab.withdrawn(),
        before,
        "a killed anycastd withdrew routes?"
    );
    ok("start anycastd", &["start", &anycastd]);
    let back = lab.wait(
        "the routes back after anycastd started again",
        60,
        PodLab::all_at_router,
    );
    eprintln!(
        "anycastd killed -> routes gone {gone:.1?} (ANYCASTD_GRACE=3); started -> back {back:.1?}"
    );

    // A stopped anycastd (SIGTERM) withdraws its routes itself (UPDATEs at the router, not a
    // closed session) and exits 0.
    let before = lab.withdrawn().expect("the router's counters");
    let wanted = lab.wanted.len() as u64;
    ok("stop anycastd", &["stop", "--time", "30", &anycastd]);
    lab.wait("the routes withdrawn by the stopped anycastd", 10, |l| {
        l.withdrawn().is_some_and(|w| w >= before + wanted)
    });
    assert!(lab.none_at_router(), "{}", lab.context());
    let code = ok(
        "exit code",
        &["inspect", "--format", "{{.State.ExitCode}}", &anycastd],
    );
    assert_eq!(code, "0", "{}", lab.anycastd.logs());
}
