//! The project's two images, built once per test process for every container test (the
//! compose-style pod of images.rs, the Kubernetes manifests of kube.rs): both targets of the
//! Containerfile, from the release binary (`--build-context build=DIR` stands in for the
//! `build` stage), on local stand-ins of their base images (tests/common/podman.rs).

use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use crate::common::artifacts::{release_binary, repo};
use crate::common::gobgpd::Release;
use crate::common::podman::{DEBIAN, RUNTIME, ULIMITS, base_image, ok, require_engine};

/// The image ids of the two targets.
pub struct Images {
    pub anycastd: String,
    pub gobgpd: String,
}

/// The repository (no tag) that [`images`] tags a target's image with, `:latest`.
pub fn repository(target: &str) -> String {
    format!("localhost/anycastd-test/{target}")
}

/// Both targets, built once per test process from the release binary.
pub fn images() -> &'static Images {
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
        // What the Go stage leaves behind (/out/gobgpd, /out/gobgp): GoBGP 4.8.0, built
        // once per machine by the test harness.
        let gobgp = gobgp_context(Some(Release::V4_8));
        Images {
            anycastd: build("anycastd", &[&runtime], context.path(), gobgp.path()),
            gobgpd: build("gobgpd", &[&debian], context.path(), gobgp.path()),
        }
    })
}

/// A directory standing in for the Go stage: out/ holding `release`'s gobgpd and gobgp, or
/// nothing (what the stage leaves with GOBGPD=debian).
pub fn gobgp_context(release: Option<Release>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("mkdir out");
    if let Some(r) = release {
        std::fs::copy(r.gobgpd(), out.join("gobgpd")).expect("copy gobgpd");
        std::fs::copy(r.gobgp(), out.join("gobgp")).expect("copy gobgp");
    }
    dir
}

/// The gobgpd target with Debian's gobgpd (`--build-arg GOBGPD=debian`), tagged apart.
pub fn debian_gobgpd_image() -> String {
    let context = tempfile::tempdir().expect("tempdir");
    let out = context.path().join("out");
    std::fs::create_dir(&out).expect("mkdir out");
    std::fs::copy(release_binary(), out.join("anycastd")).expect("copy the release binary");
    let debian = format!("DEBIAN_IMAGE={}", base_image(&DEBIAN));
    let gobgp = gobgp_context(None);
    build(
        "gobgpd",
        &[&debian, "GOBGPD=debian"],
        context.path(),
        gobgp.path(),
    )
}

/// `podman build --target TARGET`, the `build` stage replaced by `context` and the Go stage
/// by `gobgp`; the image id.
/// Docker format: OCI images cannot hold a HEALTHCHECK. Host network for the RUN steps
/// (apt-get install gobgpd, from Debian's mirror; podman caches that layer).
fn build(target: &str, build_args: &[&str], context: &Path, gobgp: &Path) -> String {
    let start = Instant::now();
    let iid = context.join(format!("{target}.iid"));
    let mut args: Vec<String> = ["build", "--format", "docker", "--network", "host"]
        .into_iter()
        .chain(ULIMITS)
        .map(String::from)
        .collect();
    args.extend([
        format!("--build-context=build={}", context.display()),
        format!("--build-context=gobgp-build={}", gobgp.display()),
        format!("--target={target}"),
        format!("--iidfile={}", iid.display()),
        format!("--file={}", repo().join("Containerfile").display()),
    ]);
    args.extend(build_args.iter().map(|a| format!("--build-arg={a}")));
    if build_args.len() == 1 {
        // The images the other tests run; the variants stay untagged.
        args.push(format!("--tag={}:latest", repository(target)));
    }
    args.push(repo().display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&format!("building the {target} image"), &args);
    eprintln!("built the {target} image in {:.1?}", start.elapsed());
    std::fs::read_to_string(&iid)
        .expect("the image id")
        .trim()
        .to_string()
}
