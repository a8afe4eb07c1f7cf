//! The container side of delivery, checked without a container engine (there is none on the
//! build machines): the Containerfile's stages, users, ports and defaults agree with the
//! code; the binary needs only what distroless/cc ships; compose.yaml passes a real compose
//! implementation's validation; the Kubernetes manifests of deploy/kubernetes/ are wired as
//! the compose stack and pass the Kubernetes OpenAPI schema and kustomize; the sample configs
//! are valid; and gobgpd-bound, the gobgpd container's entrypoint, really restarts gobgpd
//! when anycastd's /healthz goes away, and on SIGTERM keeps gobgpd until anycastd is gone.

pub mod common {
    pub mod artifacts;
    pub mod gobgpd;
    pub mod kube;
    pub mod lab;
    pub mod prom;
}

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anycastd::config::{self, Format, MetricsConfig};
use common::gobgpd::{Release, cli_at, require_gobgpd};
use common::kube;
use common::lab::{HttpTarget, free_tcp_port, wait_until};
use serde_json::Value;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn yaml(text: &str, what: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{what} is not valid YAML: {e}"))
}

/// One Containerfile stage: its base, name and instructions (`(KEYWORD, rest)`, with line
/// continuations joined).
struct Stage {
    base: String,
    name: String,
    instructions: Vec<(String, String)>,
}

impl Stage {
    fn all(&self, keyword: &str) -> Vec<&str> {
        self.instructions
            .iter()
            .filter(|(k, _)| k == keyword)
            .map(|(_, v)| v.as_str())
            .collect()
    }
    fn last(&self, keyword: &str) -> Option<&str> {
        self.all(keyword).last().copied()
    }
}

/// The global ARGs (before the first FROM) and the stages.
fn containerfile() -> (BTreeMap<String, String>, Vec<Stage>) {
    let text = read("Containerfile").replace("\\\n", " ");
    let mut args = BTreeMap::new();
    let mut stages: Vec<Stage> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (kw, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let (kw, rest) = (kw.to_ascii_uppercase(), rest.trim().to_string());
        if kw == "FROM" {
            let words: Vec<&str> = rest.split_whitespace().collect();
            assert!(
                words.len() == 3 && words[1].eq_ignore_ascii_case("AS"),
                "every stage is named: FROM {rest}"
            );
            let base = match words[0]
                .strip_prefix("${")
                .and_then(|b| b.strip_suffix('}'))
            {
                Some(arg) => args
                    .get(arg)
                    .cloned()
                    .unwrap_or_else(|| panic!("FROM uses undeclared ARG {arg}")),
                None => words[0].to_string(),
            };
            stages.push(Stage {
                base,
                name: words[2].to_string(),
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push((kw, rest));
        } else {
            assert_eq!(kw, "ARG", "only ARG may come before the first FROM");
            let (k, v) = rest.split_once('=').expect("ARG NAME=default");
            args.insert(k.to_string(), v.to_string());
        }
    }
    (args, stages)
}

fn copies_of(s: &Stage) -> Vec<&str> {
    s.all("COPY")
}

/// `["a", "b"]` (the exec form) as words.
fn exec_form(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not the exec form ({e}): {s}"))
}

#[test]
fn containerfile_stages_users_ports_and_defaults_match_the_code() {
    let (_, stages) = containerfile();
    let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["build", "gobgp-build", "gobgpd", "anycastd"],
        "the daemon's stage must be last (the default target)"
    );
    let stage = |n: &str| stages.iter().find(|s| s.name == n).expect("stage");
    let (build, gobgpd, daemon) = (stage("build"), stage("gobgpd"), stage("anycastd"));
    let go = stage("gobgp-build");

    // One Debian release throughout: the binary's glibc is that of the final images.
    assert!(build.base.contains("bookworm"), "{}", build.base);
    assert!(gobgpd.base.contains("bookworm"), "{}", gobgpd.base);
    assert!(
        daemon.base.contains("distroless/cc-debian12"),
        "{}",
        daemon.base
    );
    assert!(
        build
            .all("RUN")
            .iter()
            .any(|r| r.contains("cargo build --release --locked")),
        "the image ships the release build"
    );

    // Non-root at run time, in both images.
    for s in [gobgpd, daemon] {
        let user = s
            .last("USER")
            .unwrap_or_else(|| panic!("stage {} sets no USER (root)", s.name));
        let uid = user.split(':').next().unwrap_or_default();
        assert!(
            !["0", "root", ""].contains(&uid),
            "stage {} runs as {user}",
            s.name
        );
    }

    // The daemon's defaults are the code's.
    assert_eq!(
        daemon.last("ENV"),
        Some(format!("CONFIG_PATH={}", config::DEFAULT_PATH).as_str())
    );
    let port = MetricsConfig::default().address.port();
    assert_eq!(daemon.last("EXPOSE"), Some(port.to_string().as_str()));
    let entry = exec_form(daemon.last("ENTRYPOINT").expect("ENTRYPOINT"));
    assert_eq!(entry, ["/usr/local/bin/anycastd"]);
    let hc = daemon.last("HEALTHCHECK").expect("HEALTHCHECK");
    let cmd = exec_form(hc.split_once("CMD").expect("HEALTHCHECK CMD").1.trim());
    assert_eq!(cmd, ["/usr/local/bin/anycastd", "healthcheck"]);
    // The binary accepts that command line.
    let out = Command::new(env!("CARGO_BIN_EXE_anycastd"))
        .args(["healthcheck", "--help"])
        .output()
        .expect("run anycastd healthcheck --help");
    assert!(out.status.success(), "{out:?}");

    // gobgpd: GoBGP 4.8.0 built by the Go stage by default, Debian's package with
    // GOBGPD=debian (README, "Supported GoBGP versions"); the supervisor, and the anycastd
    // binary it probes with.
    assert!(go.base.contains("golang"), "{}", go.base);
    let (args, _) = containerfile();
    assert_eq!(args.get("GOBGPD").map(String::as_str), Some("upstream"));
    assert!(
        go.all("ARG").contains(&"GOBGP_VERSION=4.8.0"),
        "{:?}",
        go.all("ARG")
    );
    assert!(
        go.all("RUN").iter().any(|r| r.contains("go install")
            && r.contains("github.com/osrg/gobgp/v4/cmd/gobgpd@v${GOBGP_VERSION}")),
        "the Go stage builds GoBGP 4's gobgpd"
    );
    assert!(
        gobgpd
            .all("RUN")
            .iter()
            .any(|r| r.contains("apt-get install")
                && r.contains("gobgpd")
                && r.contains("debian)")),
        "GOBGPD=debian installs Debian's gobgpd"
    );
    assert!(copies_of(gobgpd).contains(&"--from=gobgp-build /out/ /tmp/gobgp/"));
    assert_eq!(
        exec_form(gobgpd.last("ENTRYPOINT").expect("ENTRYPOINT")),
        ["/usr/local/bin/gobgpd-bound"]
    );
    assert!(copies_of(gobgpd).contains(&"--from=build /out/anycastd /usr/local/bin/anycastd"));

    // Every COPY from the build context exists, and target/ stays out of the context.
    for s in &stages {
        for c in s
            .all("COPY")
            .into_iter()
            .filter(|c| !c.starts_with("--from"))
        {
            let src = c.split_whitespace().next().expect("COPY source");
            assert!(repo(src).exists(), "COPY {src}: no such file");
        }
    }
    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "target/"), "{ignore}");
}

#[test]
fn binary_needs_only_what_distroless_cc_ships() {
    // distroless/cc has glibc and libgcc_s; nothing else may be linked dynamically.
    let out = Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_anycastd"))
        .output()
        .expect("run ldd (Debian package libc-bin)");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let allowed = [
        "linux-vdso.so",
        "libc.so",
        "libm.so",
        "libgcc_s.so",
        "ld-linux",
        "libdl.so",
        "libpthread.so",
        "librt.so",
    ];
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        assert!(
            allowed.iter().any(|a| line.contains(a)),
            "the binary links a library distroless/cc lacks: {line}\n{text}"
        );
    }
}

/// Compose implementations to validate with: `docker compose` (v2 plugin) and/or
/// `docker-compose` (Debian's package), whichever run here.
fn compose_validators() -> Vec<Vec<&'static str>> {
    let runs = |cmd: &[&str]| {
        Command::new(cmd[0])
            .args(&cmd[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut v = Vec::new();
    if runs(&["docker", "compose", "version"]) {
        v.push(vec!["docker", "compose"]);
    }
    if runs(&["docker-compose", "version"]) {
        v.push(vec!["docker-compose"]);
    }
    assert!(
        !v.is_empty(),
        "no compose implementation to validate compose.yaml with: install one with \
         `apt-get install -y docker-compose` (or run ./scripts/test.sh, which does)"
    );
    v
}

/// `config -q` on `file` (in its own directory): `Ok` or the validator's complaint.
fn compose_config(validator: &[&str], file: &Path) -> Result<(), String> {
    let out = Command::new(validator[0])
        .args(&validator[1..])
        .arg("-f")
        .arg(file)
        .args(["config", "-q"])
        .current_dir(file.parent().expect("dir"))
        .output()
        .expect("run the compose validator");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn compose_file_is_valid_and_wired() {
    let file = repo("compose.yaml");
    for v in compose_validators() {
        if let Err(e) = compose_config(&v, &file) {
            panic!("`{} config` rejects compose.yaml:\n{e}", v.join(" "));
        }
        // The validator can fail: an unknown key, a list written as a string.
        let dir = tempfile::tempdir().expect("tempdir");
        let text = read("compose.yaml");
        for (from, to) in [
            ("    healthcheck:", "    healthchek:"),
            ("cap_add: [NET_RAW]", "cap_add: NET_RAW"),
        ] {
            assert!(text.contains(from), "{from}");
            let bad = dir.path().join("compose.yaml");
            std::fs::write(&bad, text.replacen(from, to, 1)).expect("write");
            assert!(
                compose_config(&v, &bad).is_err(),
                "`{} config` accepted `{to}`",
                v.join(" ")
            );
        }
    }

    let c = yaml(&read("compose.yaml"), "compose.yaml");
    let svc = |n: &str| c["services"][n].clone();
    let (gobgpd, daemon) = (svc("gobgpd"), svc("anycastd"));
    assert_eq!(daemon["network_mode"], "service:gobgpd");
    assert_eq!(daemon["build"]["target"], "anycastd");
    assert_eq!(gobgpd["build"]["target"], "gobgpd");
    for s in [&gobgpd, &daemon] {
        assert_eq!(s["restart"], "unless-stopped");
        assert_eq!(s["build"]["dockerfile"], "Containerfile");
        assert_eq!(s["cap_drop"], serde_json::json!(["ALL"]));
    }
    assert_eq!(daemon["cap_add"], serde_json::json!(["NET_RAW"]));
    assert_eq!(
        daemon["healthcheck"]["test"],
        serde_json::json!(["CMD", "/usr/local/bin/anycastd", "healthcheck"])
    );
    // The sample config is mounted read-only where CONFIG_PATH points, and is valid.
    let volumes = daemon["volumes"].as_array().expect("volumes");
    let mount = format!("./deploy/config.yaml:{}:ro", config::DEFAULT_PATH);
    assert!(volumes.iter().any(|v| *v == mount.as_str()), "{volumes:?}");
    let loaded = config::load(&repo("deploy/config.yaml")).expect("deploy/config.yaml is valid");
    // gobgpd-bound probes where anycastd listens, in the shared namespace.
    let probed = gobgpd["environment"]["ANYCASTD_HEALTHZ"]
        .as_str()
        .expect("ANYCASTD_HEALTHZ")
        .to_string();
    assert_eq!(
        probed,
        anycastd::healthcheck::probe_address(loaded.config.metrics.address).to_string()
    );
    assert_eq!(
        loaded.config.announcer.gobgp.address, "127.0.0.1:50051",
        "the API address gobgpd-bound's default arguments open"
    );
}

/// The objects of deploy/kubernetes/: (the DaemonSet, the ConfigMap, the kustomization).
fn kubernetes_files() -> (Value, Value, Value) {
    let one = |file: &str| {
        let docs = kube::documents(&read(&format!("deploy/kubernetes/{file}")));
        assert_eq!(docs.len(), 1, "one object in deploy/kubernetes/{file}");
        docs.into_iter().next().expect("one")
    };
    (
        one("daemonset.yaml"),
        one("configmap.yaml"),
        one("kustomization.yaml"),
    )
}

#[test]
fn kubernetes_manifests_are_wired_as_the_compose_stack() {
    let (ds, cm, kustomization) = kubernetes_files();
    assert_eq!(ds["kind"], "DaemonSet");
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(
        kustomization["resources"],
        serde_json::json!(["configmap.yaml", "daemonset.yaml"])
    );

    // The config: valid for anycastd, and the sample of deploy/config.yaml (comments aside).
    let text = cm["data"]["config.yaml"].as_str().expect("config.yaml");
    let cfg = config::parse(text, Format::Yaml).expect("the ConfigMap's config parses");
    cfg.validate().expect("the ConfigMap's config is valid");
    let as_value = |t: &str| -> Value { serde_saphyr::from_str(t).expect("YAML") };
    assert_eq!(
        as_value(text),
        as_value(&read("deploy/config.yaml")),
        "the ConfigMap's config.yaml and deploy/config.yaml differ"
    );
    let probe = anycastd::healthcheck::probe_address(cfg.metrics.address).to_string();

    let spec = &ds["spec"]["template"]["spec"];
    assert_eq!(spec["hostNetwork"], true);
    assert_eq!(
        ds["spec"]["selector"]["matchLabels"],
        ds["spec"]["template"]["metadata"]["labels"]
    );
    let (gobgpd, daemon) = (
        kube::container(spec, "gobgpd"),
        kube::container(spec, "anycastd"),
    );
    // The images compose.yaml builds, and the ones kustomization.yaml lets an operator set.
    let compose = yaml(&read("compose.yaml"), "compose.yaml");
    let image_name = |service: &str| {
        let i = compose["services"][service]["image"]
            .as_str()
            .expect("image");
        i.split(':').next().expect("name").to_string()
    };
    assert_eq!(gobgpd["image"], image_name("gobgpd").as_str());
    assert_eq!(daemon["image"], image_name("anycastd").as_str());
    let images: Vec<&str> = kustomization["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(images, ["anycastd", "anycastd-gobgpd"]);

    // The config, read-only, where CONFIG_PATH points; the whole directory (a subPath mount
    // would not follow a changed ConfigMap).
    let config_path = kube::env(daemon, "CONFIG_PATH").expect("CONFIG_PATH");
    let mounts = daemon["volumeMounts"].as_array().expect("volumeMounts");
    let mount = mounts
        .iter()
        .find(|m| m["name"] == "config")
        .expect("the config mount");
    assert_eq!(mount["readOnly"], true);
    assert!(mount["subPath"].is_null(), "{mount}");
    assert_eq!(
        Path::new(config_path).parent(),
        Some(Path::new(mount["mountPath"].as_str().expect("mountPath")))
    );
    let volume = spec["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "config"))
        .expect("the config volume");
    assert_eq!(volume["configMap"]["name"], cm["metadata"]["name"]);
    // Writable where the root file system is not: the control socket, the drain state.
    for dir in [
        cfg.control.socket.parent().expect("socket dir"),
        cfg.announcer.state_directory.as_path(),
    ] {
        assert!(
            mounts
                .iter()
                .any(|m| m["mountPath"] == dir.to_str().expect("utf-8") && m["readOnly"] != true),
            "nothing writable is mounted at {} in the read-only anycastd container",
            dir.display()
        );
    }

    // gobgpd's liveness is anycastd's health; anycastd has its own probes.
    let liveness = &gobgpd["livenessProbe"]["exec"]["command"];
    assert_eq!(
        liveness,
        &serde_json::json!([
            "/usr/local/bin/anycastd",
            "healthcheck",
            "--address",
            probe,
            "--timeout",
            "2s"
        ])
    );
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            daemon[probe]["exec"]["command"],
            serde_json::json!(["/usr/local/bin/anycastd", "healthcheck"]),
            "{probe}"
        );
    }
    // gobgpd's API where the config expects it; gobgpd-bound's watchdog off (the probe does
    // that job), its graceful stop probing where anycastd listens.
    let args = gobgpd["args"].as_array().expect("gobgpd args");
    assert!(
        args.windows(2)
            .any(|w| w[0] == "--api-hosts" && w[1] == cfg.announcer.gobgp.address.as_str()),
        "{args:?}"
    );
    assert_eq!(kube::env(gobgpd, "ANYCASTD_HEALTHZ"), Some(probe.as_str()));
    assert_eq!(kube::env(gobgpd, "ANYCASTD_GRACE"), Some("off"));

    // A deleted pod leaves gracefully: anycastd's stop (drain_linger, then at most 5 s more)
    // fits in gobgpd-bound's wait, which fits in the grace period.
    let grace = spec["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    let stop_wait: u64 = kube::env(gobgpd, "ANYCASTD_STOP_WAIT")
        .expect("ANYCASTD_STOP_WAIT")
        .parse()
        .expect("seconds");
    let anycastd_stop = cfg.announcer.drain_linger.0.as_secs() + 5;
    assert!(
        anycastd_stop <= stop_wait && stop_wait < grace,
        "drain_linger + 5 s ({anycastd_stop}) <= ANYCASTD_STOP_WAIT ({stop_wait}) < \
         terminationGracePeriodSeconds ({grace})"
    );

    // The hardening of compose.yaml, service by service; the users of the images.
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    let (_, stages) = containerfile();
    for (name, c) in [("gobgpd", gobgpd), ("anycastd", daemon)] {
        let service = &compose["services"][name];
        let sc = &c["securityContext"];
        assert_eq!(sc["capabilities"]["drop"], service["cap_drop"], "{name}");
        let added = if service["cap_add"].is_null() {
            serde_json::json!([])
        } else {
            service["cap_add"].clone()
        };
        let k8s_added = if sc["capabilities"]["add"].is_null() {
            serde_json::json!([])
        } else {
            sc["capabilities"]["add"].clone()
        };
        assert_eq!(k8s_added, added, "{name}: capabilities added");
        assert_eq!(sc["readOnlyRootFilesystem"], service["read_only"], "{name}");
        assert_eq!(
            service["security_opt"],
            serde_json::json!(["no-new-privileges:true"])
        );
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
        let user = stages
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.last("USER"))
            .expect("the stage's USER");
        assert_eq!(
            format!("{}:{}", sc["runAsUser"], sc["runAsGroup"]),
            user,
            "{name}: the image's user"
        );
    }
}

/// Kubernetes versions whose OpenAPI schemas the manifests are checked against: the oldest
/// and the newest that kubernetes-validate 1.37 ships.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.25", "1.37"];

#[test]
fn kubernetes_manifests_pass_the_openapi_schema_and_kustomize() {
    let files = [
        repo("deploy/kubernetes/daemonset.yaml"),
        repo("deploy/kubernetes/configmap.yaml"),
    ];
    let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    // What `kubectl apply -k deploy/kubernetes` would send.
    let rendered = kube::kustomize_build(&repo("deploy/kubernetes"));
    let kinds: Vec<&str> = rendered.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(kinds, ["ConfigMap", "DaemonSet"]);
    let spec = &kube::object(&rendered, "DaemonSet")["spec"]["template"]["spec"];
    assert_eq!(
        kube::container(spec, "anycastd")["image"],
        "anycastd:latest",
        "kustomization.yaml's images"
    );
    let rendered_text: String = rendered
        .iter()
        .map(|o| format!("---\n{}\n", serde_json::to_string(o).expect("JSON")))
        .collect();
    for version in KUBERNETES_VERSIONS {
        let (ok, said) = kube::validate(version, &files, None);
        assert!(
            ok,
            "deploy/kubernetes/ against Kubernetes {version}:\n{said}"
        );
        assert_eq!(said.matches("passed").count(), 2, "{said}");
        let (ok, said) = kube::validate(version, &[], Some(&rendered_text));
        assert!(
            ok,
            "kustomize's output against Kubernetes {version}:\n{said}"
        );
    }

    // The validator rejects what Kubernetes would: an unknown field, a wrong type.
    let dir = tempfile::tempdir().expect("tempdir");
    let text = read("deploy/kubernetes/daemonset.yaml");
    for (from, to) in [
        ("      hostNetwork: true", "      hostNetwrk: true"),
        (
            "terminationGracePeriodSeconds: 30",
            "terminationGracePeriodSeconds: 30s",
        ),
    ] {
        assert!(text.contains(from), "{from}");
        let bad = dir.path().join("daemonset.yaml");
        std::fs::write(&bad, text.replacen(from, to, 1)).expect("write");
        let (ok, said) = kube::validate(KUBERNETES_VERSIONS[1], &[&bad], None);
        assert!(!ok, "kubernetes-validate accepted `{to}`:\n{said}");
    }
}

/// gobgpd-bound as a child; a test that fails midway still stops it (TERM: it stops its
/// gobgpd) and reaps it.
struct Bound(std::process::Child);

impl Drop for Bound {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The log of gobgpd-bound, for assertions and failure messages.
fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn gobgpd_bound_restarts_gobgpd_when_anycastd_is_gone() {
    require_gobgpd();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("bound.log");
    let api = free_tcp_port();
    // The image's CMD, on a free port.
    let (_, stages) = containerfile();
    let gobgpd_stage = stages.iter().find(|s| s.name == "gobgpd").expect("stage");
    let args: Vec<String> = exec_form(gobgpd_stage.last("CMD").expect("CMD"))
        .into_iter()
        .map(|a| a.replace("127.0.0.1:50051", &format!("127.0.0.1:{api}")))
        .collect();
    // anycastd's /healthz, played by a target whose "200" can be stopped.
    let mut healthz = HttpTarget::start();
    let bound = Command::new("sh")
        .arg(repo("deploy/gobgpd-bound.sh"))
        .args(&args)
        .env("ANYCASTD_HEALTHZ", healthz.addr().to_string())
        .env("ANYCASTD_GRACE", "1")
        .env("ANYCASTD_PROBE_EVERY", "0.2")
        .env("GOBGPD", Release::default().gobgpd())
        .env("ANYCASTD", env!("CARGO_BIN_EXE_anycastd"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("run deploy/gobgpd-bound.sh");
    let mut bound = Bound(bound);
    let deadline = Duration::from_secs(20);

    // gobgpd runs; "anycastd" configures it (as anycastd would) and is healthy.
    wait_until("gobgpd's API", deadline, || {
        cli_at(api, &["neighbor"]).is_some()
    });
    let set = cli_at(api, &["global", "as", "65001", "router-id", "10.255.0.1"]);
    assert!(set.is_some(), "gobgp global as 65001 ... failed");
    wait_until("gobgpd-bound to see anycastd healthy", deadline, || {
        log_of(&log).contains("anycastd is healthy")
    });
    assert!(cli_at(api, &["global"]).is_some_and(|g| g.contains("65001")));

    // anycastd goes away: after the grace, a fresh gobgpd (no global config, no routes).
    healthz.stop();
    let took = wait_until("a fresh gobgpd", deadline, || {
        log_of(&log).contains("restarting gobgpd so that its routes go")
            && cli_at(api, &["global"]).is_some_and(|g| !g.contains("65001"))
    });
    eprintln!("gobgpd restarted {took:?} after /healthz went away (grace 1s)");

    // A gobgpd that dies is started again.
    let last_pid = |l: &str| {
        l.lines()
            .filter_map(|l| l.split("started gobgpd (pid ").nth(1))
            .filter_map(|p| p.trim_end_matches(')').parse::<u32>().ok())
            .next_back()
    };
    let pid = last_pid(&log_of(&log)).expect("a gobgpd pid in the log");
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    wait_until("gobgpd started again after dying", deadline, || {
        last_pid(&log_of(&log)).is_some_and(|p| p != pid) && cli_at(api, &["global"]).is_some()
    });
    // anycastd never came back: no further restarts for it (one only, above).
    let text = log_of(&log);
    assert_eq!(
        text.matches("restarting gobgpd so that").count(),
        1,
        "{text}"
    );

    // TERM stops gobgpd-bound and its gobgpd.
    let ok = Command::new("kill")
        .args(["-TERM", &bound.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
    wait_until("gobgpd-bound to exit", deadline, || {
        bound.0.try_wait().expect("try_wait").is_some()
    });
    wait_until("gobgpd to be gone", deadline, || {
        cli_at(api, &["global"]).is_none()
    });
}

#[test]
fn gobgpd_bound_keeps_gobgpd_until_anycastd_has_stopped() {
    require_gobgpd();
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("bound.log");
    let api = free_tcp_port();
    // As the Kubernetes DaemonSet runs it: its own restarts off (the liveness probe's job).
    let mut healthz = HttpTarget::start();
    let bound = Command::new("sh")
        .arg(repo("deploy/gobgpd-bound.sh"))
        .args([
            "--api-hosts",
            &format!("127.0.0.1:{api}"),
            "--pprof-disable",
        ])
        .env("ANYCASTD_HEALTHZ", healthz.addr().to_string())
        .env("ANYCASTD_GRACE", "off")
        .env("ANYCASTD_PROBE_EVERY", "0.2")
        .env("ANYCASTD_STOP_WAIT", "20")
        .env("GOBGPD", Release::default().gobgpd())
        .env("ANYCASTD", env!("CARGO_BIN_EXE_anycastd"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("run deploy/gobgpd-bound.sh");
    let mut bound = Bound(bound);
    let deadline = Duration::from_secs(20);
    wait_until("gobgpd's API", deadline, || {
        cli_at(api, &["neighbor"]).is_some()
    });

    // SIGTERM while "anycastd" withdraws: /healthz answers, unhealthy (its loops end one by
    // one). gobgpd stays, and nothing restarts it meanwhile.
    healthz.set_status(503);
    let term = Command::new("kill")
        .args(["-TERM", &bound.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    wait_until("gobgpd-bound to start waiting", deadline, || {
        log_of(&log).contains("waiting for anycastd to finish first")
    });
    let waited = std::time::Instant::now();
    while waited.elapsed() < Duration::from_secs(2) {
        assert!(
            bound.0.try_wait().expect("try_wait").is_none() && cli_at(api, &["neighbor"]).is_some(),
            "gobgpd went while anycastd still answered:\n{}",
            log_of(&log)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // "anycastd" exits: gobgpd goes at once, and gobgpd-bound exits 0.
    healthz.stop();
    let took = wait_until("gobgpd-bound to exit", deadline, || {
        bound.0.try_wait().expect("try_wait").is_some()
    });
    let status = bound.0.wait().expect("wait");
    assert!(status.success(), "{status}:\n{}", log_of(&log));
    assert!(cli_at(api, &["neighbor"]).is_none(), "gobgpd still answers");
    let text = log_of(&log);
    assert!(!text.contains("restarting gobgpd"), "{text}");
    assert!(text.contains("stopping gobgpd ("), "{text}");
    eprintln!("anycastd gone -> gobgpd-bound and gobgpd stopped {took:?}");
}
