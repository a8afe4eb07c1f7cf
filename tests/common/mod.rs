//! The lab harness shared by the integration tests. Each test binary uses part of it.
#![allow(dead_code)]

pub mod artifacts;
pub mod checks;
pub mod config;
pub mod dns;
pub mod e2e;
pub mod etcd;
pub mod gobgpd;
pub mod lab;
pub mod netns;
pub mod podman;
pub mod procfs;
pub mod prom;
pub mod seed;
pub mod targets;
pub mod tftpd;
pub mod tls;
