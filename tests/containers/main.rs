//! The delivery tests that build and run containers (rootful podman, offline; see
//! tests/common/podman.rs): the images and the pod (images.rs), the Debian package under a
//! real systemd (package.rs). One test binary, so that its tests run in parallel: while one
//! thread builds the release binary, others make the base images (once per machine) and
//! boot systemd containers; as two binaries, cargo would run them one after the other.

#[path = "../common"]
pub mod common {
    pub mod artifacts;
    pub mod config;
    pub mod dns;
    pub mod gobgpd;
    pub mod lab;
    pub mod netns;
    pub mod podman;
    pub mod prom;
}
mod images;
mod package;
