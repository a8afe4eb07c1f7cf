//! The delivery tests that build and run containers (rootful podman, offline; see
//! tests/common/podman.rs): the images and the compose-style pod (images.rs), the
//! Kubernetes manifests played with `podman kube play` (kube.rs), the Debian package under a
//! real systemd (package.rs); the images they share (built.rs), the sample config's
//! surroundings (site.rs). One test binary, so that its tests run in parallel: while one
//! thread builds the release binary, others make the base images (once per machine) and
//! boot systemd containers; as two binaries, cargo would run them one after the other.

mod built;
#[path = "../common"]
pub mod common {
    pub mod artifacts;
    pub mod config;
    pub mod dns;
    pub mod gobgpd;
    pub mod kube;
    pub mod lab;
    pub mod netns;
    pub mod podman;
    pub mod prom;
}
mod images;
mod kube;
mod package;
mod site;
