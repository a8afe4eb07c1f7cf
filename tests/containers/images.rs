//! The container images, built and run for real (rootful podman, offline): both targets of
//! the Containerfile (built.rs); the anycastd image's size, user, and lack of a shell; and
//! the pod: gobgpd and anycastd in one network namespace, run as compose.yaml runs them,
//! with deploy/config.yaml mounted read-only, announcing to a router gobgpd in a namespace of
//! its own, through a target stopping and starting, anycastd's healthcheck, and a killed
//! anycastd whose routes gobgpd-bound takes away.
//!
//! Nothing here can reach another machine: the pod's namespace and the router's are made by
//! the test and linked only to each other, and the sample config's documentation addresses
//! (the DNS server, the web service, the peer) are served inside them by the test (site.rs).

use std::time::{Duration, Instant};

use crate::built::{Images, debian_gobgpd_image, images};
use crate::common::artifacts::{output_text, release_binary, repo};
use crate::common::lab::{unique, wait_until_or};
use crate::common::netns::NetNs;
use crate::common::podman::{
    self, CAP_NET_RAW, Container, NO_CAPS, Pod, ULIMITS, assert_confined, ok,
};
use crate::site::{Site, str_of};
use serde_json::Value;

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

/// `gobgpd --version` in a gobgpd image.
fn gobgpd_version(image: &str) -> String {
    let mut run = vec!["run", "--rm", "--entrypoint", "gobgpd"];
    run.extend(ULIMITS);
    ok(
        "gobgpd --version in the image",
        &[run.as_slice(), &[image, "--version"]].concat(),
    )
}

/// The gobgpd image is GoBGP 4.8.0 by default (the Go stage) and Debian's 3.10 with
/// `--build-arg GOBGPD=debian`; both keep gobgpd-bound and the anycastd binary.
#[test]
fn the_gobgpd_image_is_gobgp_4_8_by_default_and_debian_s_by_build_argument() {
    let upstream = &images().gobgpd;
    let v = gobgpd_version(upstream);
    assert!(v.contains("4.8.0"), "{v}");
    let debian = debian_gobgpd_image();
    let v = gobgpd_version(&debian);
    assert!(v.contains("3.10"), "{v}");
    for image in [upstream.as_str(), debian.as_str()] {
        let config = &inspect_image(image)["Config"];
        assert_eq!(
            config["Entrypoint"],
            serde_json::json!(["/usr/local/bin/gobgpd-bound"]),
            "{config}"
        );
        assert_eq!(config["User"], "65534:65534", "{config}");
    }
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"))
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

/// The pod of compose.yaml and its surroundings: the pod's network namespace with what
/// deploy/config.yaml checks and its router (site.rs), and the two containers, created but
/// not started. Dropped in reverse: containers, pod, the site.
struct PodLab {
    gobgpd: Container,
    anycastd: Container,
    pod: Pod,
    site: Site,
}

impl PodLab {
    fn create(images: &Images) -> PodLab {
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
        let text = std::fs::read_to_string(repo().join("deploy/config.yaml")).expect("read");
        let site = Site::around("pod", pod_ns, &text);

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
            gobgpd,
            anycastd,
            pod,
            site,
        }
    }

    /// Every route of deploy/config.yaml is at the router.
    fn all_at_router(&self) -> bool {
        self.site.all_at_router()
    }

    /// None is.
    fn none_at_router(&self) -> bool {
        self.site.none_at_router()
    }

    /// Prefixes the router saw withdrawn in UPDATEs (a closed session withdraws none).
    fn withdrawn(&self) -> Option<u64> {
        self.site.withdrawn()
    }

    /// The router's RIB and log, and both containers' logs: for failure messages.
    fn context(&self) -> String {
        format!(
            "router RIB: {:?}\n{}\n{}\n{}",
            self.site.router.prefixes(),
            self.site.router.log_tail(),
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
    assert_confined(lab.anycastd.pid(), "65532", CAP_NET_RAW);
    assert_confined(lab.gobgpd.pid(), "65534", NO_CAPS);

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
    lab.site.web.stop();
    let gone = lab.wait(
        "the routes to leave after the web service stopped",
        30,
        PodLab::none_at_router,
    );
    lab.site.web.restart();
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
    let wanted = lab.site.wanted.len() as u64;
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
