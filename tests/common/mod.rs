//! The lab harness shared by the integration tests and the benchmarks.
//!
//! Each test binary names the modules it uses at its top, as a public module:
//!
//! ```ignore
//! pub mod common {
//!     pub mod config;
//!     pub mod lab;
//!     pub mod prom;
//! }
//! ```
//!
//! Public, because the harness is an API shared by many binaries, as a library's is: an item
//! one binary does not use is not dead, and is not reported in it; private items nothing
//! uses still are. A module a binary needs and does not name is a compile error (`super::lab`
//! not found), so each list says what the binary depends on, and a binary compiles only that.
//!
//! This file, the whole harness as one private module, is for the benchmarks only
//! (benches/anycast.rs and benches/fleet.rs include it by path for a few helpers). In them
//! most of it is unused, hence the allow below. It reaches no test binary: none includes
//! this file, which `test_binaries_name_the_harness_modules_they_use` in tests/e2e.rs
//! checks. It can go once the benchmarks name the modules they use, as the tests do.
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
