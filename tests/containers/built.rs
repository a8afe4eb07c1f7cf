//! The project's two images, built once per test process for every container test (the
//! compose-style pod of images.rs, the Kubernetes manifests of kube.rs): both targets of the
//! Containerfile, from the release binary (`--build-context build=DIR` stands in for the
//! `build` stage), on local stand-ins of their base images (tests/common/podman.rs).

use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use crate::common::artifacts::{release_binary, repo};
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
        format!("--tag={}:latest", repository(target)),
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
