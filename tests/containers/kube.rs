//! The Kubernetes manifests of deploy/kubernetes/, played for real (rootful podman, offline):
//! kustomize renders them through an overlay that sets the images built here (built.rs) and
//! a name prefix, as an operator's overlay would; the test takes the pod that the DaemonSet
//! makes on a node from its template, and plays it, with the ConfigMap, with `podman kube
//! play`. The node is a network namespace of the test's (the pod has the host network: it
//! gets the namespace podman runs in), with what the sample config checks and its router
//! (site.rs). Played: the pod announces to the router; a changed ConfigMap is applied with
//! `anycastd reload` inside the pod; a frozen anycastd fails gobgpd's liveness probe, podman
//! restarts gobgpd and the routes leave the router; a deleted pod withdraws gracefully
//! (GRACEFUL_SHUTDOWN, then the withdraw) within its grace period.
//!
//! What podman 4.3.1 does, and where the test stands in for a kubelet:
//! - It plays no DaemonSet ("YAML document does not contain any supported kube kind"): the
//!   test plays the pod of its template (kube::pod_of), from the one file.
//! - A livenessProbe becomes a podman healthcheck (exec probes run through /bin/sh) whose
//!   failure action is `restart`: a check that makes failureThreshold failures in a row
//!   restarts the container, as kubelet would. podman schedules the checks with systemd
//!   timers, which this host does not have ("unable to get systemd connection to add
//!   healthchecks"): the test runs `podman healthcheck run` every periodSeconds, as kubelet
//!   or the timer would; the verdict and the restart are podman's.
//! - `podman kube down` kills the containers at once (no SIGTERM, no grace period), and
//!   terminationGracePeriodSeconds does not become the containers' stop timeout. The test
//!   deletes the pod as kubelet does: SIGTERM to every container at once, SIGKILL after the
//!   grace period (`podman pod stop --time GRACE`); then `podman kube down` removes it.
//! - A changed ConfigMap is not carried into a running pod (kubelet does that): the test
//!   writes the changed ConfigMap's data into the volume podman made of it, as kubelet
//!   writes it into the pod's, then runs `anycastd reload` in the pod.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::built::{images, repository};
use crate::common::gobgpd::RibEvent;
use crate::common::kube;
use crate::common::lab::{unique, wait_until_or};
use crate::common::netns::NetNs;
use crate::common::podman::{
    CAP_NET_RAW, Container, NO_CAPS, Pod, assert_confined, ok, ok_within, run, run_within,
};
use crate::site::{Site, str_of};

/// GRACEFUL_SHUTDOWN, 65535:0.
const GSHUT: u64 = 0xFFFF_0000;

fn has_gshut(e: &RibEvent) -> bool {
    !e.withdrawal
        && e.attr(8)
            .and_then(|c| c["communities"].as_array())
            .is_some_and(|c| c.iter().any(|v| v.as_u64() == Some(GSHUT)))
}

/// A podman volume, removed on drop (`podman kube down` leaves a ConfigMap's behind).
struct Volume(String);

impl Drop for Volume {
    fn drop(&mut self) {
        let _ = run(&["volume", "rm", "--force", &self.0]);
    }
}

/// The played pod and its surroundings. Dropped in order: containers, pod, the ConfigMap's
/// volume, the files, the site (router, servers, namespaces).
struct KubeLab {
    gobgpd: Container,
    anycastd: Container,
    pod: Pod,
    config_volume: Volume,
    /// The ConfigMap and the Pod, as played.
    file: PathBuf,
    _overlay: tempfile::TempDir,
    site: Site,
    /// The rendered objects.
    daemonset: Value,
    configmap: Value,
}

impl KubeLab {
    /// Renders the manifests, makes the node and its surroundings, writes the file to play.
    fn prepare() -> KubeLab {
        images();
        let prefix = format!("{}-", unique("kube"));
        let overlay = kube::overlay(&format!(
            "namePrefix: {prefix}\nimages:\n  - name: anycastd\n    newName: {}\n    newTag: \
             latest\n  - name: anycastd-gobgpd\n    newName: {}\n    newTag: latest\n",
            repository("anycastd"),
            repository("gobgpd")
        ));
        let objects = kube::kustomize_build(overlay.path());
        let daemonset = kube::object(&objects, "DaemonSet").clone();
        let configmap = kube::object(&objects, "ConfigMap").clone();
        let ds_name = str_of(&daemonset["metadata"]["name"], "the DaemonSet's name");
        // A DaemonSet's pod is named after it; the test's name keeps its leftovers sweepable.
        let pod = Pod {
            name: format!("{ds_name}-node"),
        };
        let played = kube::pod_of(&daemonset, &pod.name);
        let file = overlay.path().join("played.yaml");
        let text = format!(
            "---\n{}\n---\n{}\n",
            serde_json::to_string_pretty(&configmap).expect("JSON"),
            serde_json::to_string_pretty(&played).expect("JSON")
        );
        std::fs::write(&file, text).expect("write the file to play");
        let config_volume =
            Volume(str_of(&configmap["metadata"]["name"], "the ConfigMap's name").to_string());
        // emptyDir volumes are podman volumes named as in the pod (kube down removes them):
        // one that a killed run left would be taken over; an unused one goes now.
        for v in played["spec"]["volumes"].as_array().into_iter().flatten() {
            if v.get("emptyDir").is_some() {
                let _ = run(&["volume", "rm", str_of(&v["name"], "a volume name")]);
            }
        }

        let node = NetNs::create("node");
        let config = str_of(&configmap["data"]["config.yaml"], "the ConfigMap's config");
        let site = Site::around("kube", node, config);
        // podman names a played pod's containers POD-CONTAINER.
        let container =
            |name: &str| Container::within(&site.ns.name, format!("{}-{name}", pod.name));
        let (gobgpd, anycastd) = (container("gobgpd"), container("anycastd"));
        KubeLab {
            gobgpd,
            anycastd,
            pod,
            config_volume,
            file,
            _overlay: overlay,
            site,
            daemonset,
            configmap,
        }
    }

    fn spec(&self) -> &Value {
        &self.daemonset["spec"]["template"]["spec"]
    }

    /// `podman ARGS` in the node's namespace; stdout.
    fn podman(&self, what: &str, args: &[&str]) -> String {
        ok_within(&self.site.ns.name, what, args)
    }

    fn inspect(&self, c: &Container, format: &str) -> String {
        ok("inspect", &["inspect", "--format", format, &c.name])
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
    fn wait(&self, what: &str, secs: u64, cond: impl Fn(&KubeLab) -> bool) -> Duration {
        wait_until_or(
            what,
            Duration::from_secs(secs),
            || cond(self),
            || self.context(),
        )
    }
}

/// One run of a probe: when it started, whether it passed, what it said.
type ProbeRun = (Instant, bool, String);

/// What kubelet (or podman's systemd timer) does for a liveness probe: `podman healthcheck
/// run` at `first`, then every `period`, in the node's namespace, until stopped. podman
/// counts the failures and restarts the container.
struct Prober {
    stop: Arc<AtomicBool>,
    runs: Arc<Mutex<Vec<ProbeRun>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Prober {
    fn start(netns: &str, container: &str, first: Instant, period: Duration) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let runs = Arc::new(Mutex::new(Vec::new()));
        let (netns, container) = (netns.to_string(), container.to_string());
        let (stopping, record) = (stop.clone(), runs.clone());
        let thread = std::thread::spawn(move || {
            let mut next = first;
            while !stopping.load(Ordering::SeqCst) {
                if Instant::now() >= next {
                    let out = run_within(&netns, &["healthcheck", "run", &container]);
                    let said = format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout).trim(),
                        String::from_utf8_lossy(&out.stderr)
                            .lines()
                            .filter(|l| !l.contains("systemd"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    );
                    if let Ok(mut r) = record.lock() {
                        r.push((next, out.status.success(), said));
                    }
                    next += period;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Prober {
            stop,
            runs,
            thread: Some(thread),
        }
    }

    /// Stops probing; every run so far.
    fn finish(mut self) -> Vec<ProbeRun> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.runs.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Writes every key of the ConfigMap `cm`'s data into `dir`, each file replaced at once (a
/// new file renamed over the old), as kubelet updates a ConfigMap volume.
fn apply_configmap(dir: &Path, cm: &Value) {
    for (key, value) in cm["data"].as_object().expect("data") {
        let tmp = dir.join(format!(".{key}.new"));
        std::fs::write(&tmp, str_of(value, key)).expect("write the ConfigMap's file");
        std::fs::rename(&tmp, dir.join(key)).expect("replace the ConfigMap's file");
    }
}

fn seconds(v: &Value, what: &str) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("{what} is not a number of seconds: {v}"))
}

#[test]
fn daemonset_pod_announces_reloads_follows_gobgpds_probe_and_leaves_gracefully() {
    let mut lab = KubeLab::prepare();
    let node = lab.site.ns.name.clone();
    let file = lab.file.to_str().expect("utf-8 path").to_string();

    // Play: the routes reach the router.
    let start = Instant::now();
    lab.podman("kube play", &["kube", "play", &file]);
    let played = start.elapsed();
    // The containers run: from now on the probes' initialDelaySeconds count.
    let running = Instant::now();
    lab.wait("the first route at the router", 60, |l| {
        !l.site.none_at_router()
    });
    let first = start.elapsed();
    lab.wait("every route at the router", 60, |l| l.site.all_at_router());
    eprintln!(
        "podman kube play ({played:.1?}) -> first route at the router {first:.1?}, all {:.1?} \
         (the BGP session takes 5 to 9 s; the dns service needs rise 2 x check_interval 5s)",
        start.elapsed()
    );

    // The hardening of the manifest, as running processes: anycastd as 65532 with only
    // CAP_NET_RAW, gobgpd-bound as 65534 with none, neither able to gain privileges; the
    // config read-only; both in the node's network namespace.
    assert_confined(lab.anycastd.pid(), "65532", CAP_NET_RAW);
    assert_confined(lab.gobgpd.pid(), "65534", NO_CAPS);
    let mounts: Value =
        serde_json::from_str(&lab.inspect(&lab.anycastd, "{{json .Mounts}}")).expect("JSON");
    let config_mount = mounts
        .as_array()
        .and_then(|m| m.iter().find(|m| m["Destination"] == "/etc/anycastd"))
        .unwrap_or_else(|| panic!("no config mount: {mounts}"));
    assert_eq!(config_mount["RW"], false, "{config_mount}");
    let ns_id = |path: String| std::fs::metadata(path).map(|m| (m.dev(), m.ino())).ok();
    let node_ns = ns_id(format!("/run/netns/{node}"));
    assert!(node_ns.is_some(), "the node's namespace");
    for c in [&lab.anycastd, &lab.gobgpd] {
        let ns = ns_id(format!("/proc/{}/ns/net", c.pid()));
        assert_eq!(
            ns, node_ns,
            "{} is not in the node's network namespace",
            c.name
        );
    }
    let said = lab
        .anycastd
        .exec_ok(&["/usr/local/bin/anycastd", "healthcheck"]);
    assert!(said.starts_with("healthy"), "{said}");

    // gobgpd's liveness probe, as podman took it: anycastd's health, restart on failure.
    let probe = &kube::container(lab.spec(), "gobgpd")["livenessProbe"];
    let health: Value =
        serde_json::from_str(&lab.inspect(&lab.gobgpd, "{{json .Config.Healthcheck}}"))
            .expect("JSON");
    let test = health["Test"].to_string();
    assert!(
        test.contains("anycastd") && test.contains("healthcheck"),
        "{health}"
    );
    assert_eq!(
        lab.inspect(&lab.gobgpd, "{{.Config.HealthcheckOnFailureAction}}"),
        "restart",
        "podman does not restart gobgpd when its liveness probe fails"
    );
    let period = Duration::from_secs(seconds(&probe["periodSeconds"], "periodSeconds"));
    let threshold = seconds(&probe["failureThreshold"], "failureThreshold");
    let initial_delay = Duration::from_secs(seconds(
        &probe["initialDelaySeconds"],
        "initialDelaySeconds",
    ));
    assert_eq!(health["Retries"], threshold, "{health}");

    // A changed ConfigMap (one more route, gated by every service), in the pod's volume as
    // kubelet would put it, applied with `anycastd reload` in the pod: the new route comes,
    // the others are not touched.
    let added = "203.0.113.54/32";
    let mut changed = lab.configmap.clone();
    let text = str_of(&changed["data"]["config.yaml"], "config.yaml");
    let line = "\n    - 203.0.113.53/32";
    assert!(text.contains(line), "the sample's routes changed:\n{text}");
    changed["data"]["config.yaml"] =
        Value::from(text.replacen(line, &format!("{line}\n    - {added}"), 1));
    let dir = ok(
        "the ConfigMap's volume",
        &[
            "volume",
            "inspect",
            "--format",
            "{{.Mountpoint}}",
            &lab.config_volume.0,
        ],
    );
    let withdrawn = lab.site.withdrawn().expect("the router's counters");
    apply_configmap(Path::new(&dir), &changed);
    let start = Instant::now();
    let said = lab.anycastd.exec_ok(&["/usr/local/bin/anycastd", "reload"]);
    lab.wait("the reloaded config's new route at the router", 30, |l| {
        l.site.router.prefixes().contains(added)
    });
    let reloaded = start.elapsed();
    assert_eq!(
        lab.site.withdrawn(),
        Some(withdrawn),
        "the reload withdrew routes"
    );
    assert!(lab.site.all_at_router(), "{}", lab.context());
    lab.site.wanted.insert(added.to_string());
    eprintln!(
        "ConfigMap changed, `anycastd reload` ({}) -> the new route at the router {reloaded:.1?}",
        said.trim()
    );

    // anycastd frozen: gobgpd's probe fails, podman restarts gobgpd (fresh: no peers, no
    // paths), and the routes leave the router. The test runs the probe (see the module doc).
    let started = lab.inspect(&lab.gobgpd, "{{.State.StartedAt}}");
    let anycastd = lab.anycastd.name.clone();
    ok_within(
        &node,
        "freeze anycastd",
        &["kill", "--signal", "STOP", &anycastd],
    );
    let frozen = Instant::now();
    // kubelet probes first initialDelaySeconds after the start (podman would not count a
    // failure before: its start period).
    let first_probe = frozen.max(running + initial_delay);
    let prober = Prober::start(&node, &lab.gobgpd.name, first_probe, period);
    let bound = (first_probe - frozen).as_secs() + period.as_secs() * threshold + 30;
    lab.wait(
        "the frozen anycastd's routes to leave the router",
        bound,
        |l| l.site.none_at_router(),
    );
    let gone = frozen.elapsed();
    let runs = prober.finish();
    let restarted = lab.inspect(&lab.gobgpd, "{{.State.StartedAt}}");
    assert_ne!(
        restarted,
        started,
        "the routes went, but podman did not restart gobgpd; probe runs: {runs:?}\n{}",
        lab.context()
    );
    let failed = runs.iter().filter(|r| !r.1).count() as u64;
    assert!(failed >= threshold, "{runs:?}");
    let logs = lab.gobgpd.logs();
    assert!(
        !logs.contains("restarting gobgpd so that its routes go"),
        "gobgpd-bound's own watchdog acted, not the probe:\n{logs}"
    );
    eprintln!(
        "anycastd frozen -> routes gone from the router {gone:.1?} (gobgpd's probe every \
         {period:?}, failureThreshold {threshold}; runs since the freeze: {:?})",
        runs.iter()
            .map(|r| format!(
                "{:.1?} {}",
                r.0.saturating_duration_since(frozen),
                if r.1 { "ok" } else { "failed" }
            ))
            .collect::<Vec<_>>()
    );
    ok_within(
        &node,
        "thaw anycastd",
        &["kill", "--signal", "CONT", &anycastd],
    );
    let back = lab.wait("the routes back after anycastd thawed", 60, |l| {
        l.site.all_at_router()
    });
    eprintln!("anycastd thawed -> routes back at the router {back:.1?} (a new BGP session)");

    // The pod deleted, as kubelet does it: SIGTERM to both containers at once, SIGKILL after
    // terminationGracePeriodSeconds. Every route gets GRACEFUL_SHUTDOWN, then its withdraw,
    // within the grace period; both containers end by themselves, with 0.
    let grace = Duration::from_secs(seconds(
        &lab.spec()["terminationGracePeriodSeconds"],
        "terminationGracePeriodSeconds",
    ));
    let monitor = lab.site.router.monitor();
    let wanted: BTreeSet<String> = lab.site.wanted.clone();
    for p in &wanted {
        monitor.wait_for(
            p,
            "the route (the monitor follows)",
            Duration::from_secs(10),
            |e| !e.withdrawal,
        );
    }
    let withdrawn = lab.site.withdrawn().expect("the router's counters");
    let pod = lab.pod.name.clone();
    let start = Instant::now();
    lab.podman(
        "stop the pod",
        &["pod", "stop", "--time", &grace.as_secs().to_string(), &pod],
    );
    let stopped = start.elapsed();
    let (mut first_gshut, mut last_withdraw) = (Duration::MAX, Duration::ZERO);
    for p in &wanted {
        let g = monitor.wait_for(p, "GRACEFUL_SHUTDOWN", grace, |e| {
            e.at > start && has_gshut(e)
        });
        let w = monitor.wait_for(p, "the withdraw after GRACEFUL_SHUTDOWN", grace, |e| {
            e.at > g.at && e.withdrawal
        });
        first_gshut = first_gshut.min(g.at - start);
        last_withdraw = last_withdraw.max(w.at - start);
    }
    assert!(
        last_withdraw < grace,
        "withdrawn {last_withdraw:?} after the stop, beyond the grace period {grace:?}"
    );
    assert!(
        lab.site
            .withdrawn()
            .is_some_and(|w| w >= withdrawn + wanted.len() as u64),
        "the routes went with the session, not withdrawn one by one\n{}",
        lab.context()
    );
    for c in [&lab.anycastd, &lab.gobgpd] {
        assert_eq!(
            lab.inspect(c, "{{.State.ExitCode}}"),
            "0",
            "{}",
            lab.context()
        );
    }
    let logs = lab.gobgpd.logs();
    assert!(logs.contains("stopping gobgpd ("), "{logs}");
    eprintln!(
        "pod deleted (SIGTERM to both) -> GRACEFUL_SHUTDOWN at the router {first_gshut:.2?}, \
         withdrawn {last_withdraw:.2?}, both containers ended {stopped:.1?} \
         (terminationGracePeriodSeconds {grace:?})"
    );

    lab.podman("kube down", &["kube", "down", &file]);
    assert!(
        !run(&["pod", "exists", &pod]).status.success(),
        "the pod is still there after kube down"
    );
}
