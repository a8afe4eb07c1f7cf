//! The Kubernetes manifests of deploy/kubernetes/ as the tests read and play them, and the
//! two tools that work on them offline: kustomize (renders them, as `kubectl apply -k`
//! does) and kubernetes-validate (checks objects against the Kubernetes OpenAPI schemas,
//! which its PyPI package ships). scripts/setup.sh installs both into [`tools_dir`].

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::artifacts::{output_text, repo};

/// Where scripts/setup.sh installs the tools: `$ANYCASTD_TOOLS`, by default
/// `~/.local/share/anycastd-tools` (kept between runs); the programs are in its `bin/`.
pub fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ANYCASTD_TOOLS") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".local/share/anycastd-tools")
}

/// The program `name` from the tools' `bin/`, else from PATH; fails (never skips), saying
/// how to install it, when there is none.
pub fn tool(name: &str, needed_for: &str) -> PathBuf {
    let installed = tools_dir().join("bin").join(name);
    if installed.is_file() {
        return installed;
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "`{name}` is not installed: {needed_for}. Run ./scripts/setup.sh, which installs it \
             into {} (or set ANYCASTD_TOOLS to where it is)",
            installed.display()
        )
    })
}

/// Runs `kubernetes-validate --strict` for Kubernetes `version` on `files` (`-` reads
/// `stdin`): its output, and whether every object passed.
pub fn validate(version: &str, files: &[&Path], stdin: Option<&str>) -> (bool, String) {
    let program = tool(
        "kubernetes-validate",
        "it checks deploy/kubernetes/ against the Kubernetes OpenAPI schema",
    );
    let mut cmd = Command::new(program);
    cmd.args(["--strict", "--kubernetes-version", version])
        .args(files)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.arg("-").stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().expect("run kubernetes-validate");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(text.as_bytes())
            .expect("write to kubernetes-validate");
    }
    let out = child
        .wait_with_output()
        .expect("wait for kubernetes-validate");
    (out.status.success(), output_text(&out))
}

/// `kustomize build DIR`: the objects it renders, in order.
pub fn kustomize_build(dir: &Path) -> Vec<Value> {
    let out: Output = Command::new(tool(
        "kustomize",
        "it renders deploy/kubernetes/ as `kubectl apply -k` does",
    ))
    .arg("build")
    .arg(dir)
    .output()
    .expect("run kustomize");
    assert!(
        out.status.success(),
        "kustomize build {} failed:\n{}",
        dir.display(),
        output_text(&out)
    );
    documents(&String::from_utf8_lossy(&out.stdout))
}

/// The YAML documents of `text`, as JSON values.
pub fn documents(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("not valid YAML ({e}):\n{text}"))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// The one object of `kind` among `objects`.
pub fn object<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} among {objects:#?}");
    found[0]
}

/// A kustomization in a new directory that builds on deploy/kubernetes/ (kustomize wants a
/// relative path to it) with `extra` (YAML lines: images, namePrefix, ...), as an operator's
/// overlay would. The directory goes when the returned guard drops.
pub fn overlay(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = repo().join("deploy/kubernetes");
    let text = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
         resources:\n  - {}\n{extra}",
        relative(dir.path(), &base).display()
    );
    std::fs::write(dir.path().join("kustomization.yaml"), text).expect("write the overlay");
    dir
}

/// `to` as a path relative to the directory `from` (both absolute, without symlinks that
/// matter here).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let (from, to) = (
        from.canonicalize().expect("canonical overlay dir"),
        to.canonicalize().expect("canonical deploy/kubernetes"),
    );
    let f: Vec<Component> = from.components().collect();
    let t: Vec<Component> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}

/// The Pod that the DaemonSet `ds` makes on a node, named `name`: its template's metadata
/// and spec. What a DaemonSet controller does; podman 4.3 plays Pods, not DaemonSets.
pub fn pod_of(ds: &Value, name: &str) -> Value {
    assert_eq!(ds["kind"], "DaemonSet", "{ds}");
    let template = &ds["spec"]["template"];
    let mut metadata = template["metadata"].clone();
    metadata["name"] = Value::from(name);
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": template["spec"].clone(),
    })
}

/// The container `name` of a pod spec (a DaemonSet's template's, or a Pod's).
pub fn container<'a>(spec: &'a Value, name: &str) -> &'a Value {
    spec["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no container {name} in {spec}"))
}

/// The value of the environment variable `name` of a container, if it sets one.
pub fn env<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
}
