//! Compiles the GoBGP API subsets in `proto/v3` and `proto/v4` into tonic clients, without `protoc`: protox
//! parses the .proto files in pure Rust. Also records what `anycastd_build_info` reports:
//! the git revision (`ANYCASTD_REVISION` overrides it, for builds from a tarball) and the
//! compiler's version.

use std::path::Path;
use std::process::Command;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    // One API generation per directory (package `apipb` for 3.x, `api` for 4.x): each
    // compiles into its own Rust module.
    for (dir, files) in [
        ("proto/v3", &["gobgp.proto", "attribute.proto"][..]),
        (
            "proto/v4",
            &["gobgp.proto", "attribute.proto", "common.proto"][..],
        ),
    ] {
        let fds = protox::compile(files, [dir])?;
        tonic_prost_build::configure()
            .build_server(false)
            .compile_fds(fds)?;
    }

    println!("cargo:rerun-if-env-changed=ANYCASTD_REVISION");
    for git in [".git/HEAD", ".git/refs/heads"] {
        // A missing path would make cargo run this script at every build.
        if Path::new(git).exists() {
            println!("cargo:rerun-if-changed={git}");
        }
    }
    let revision = std::env::var("ANYCASTD_REVISION").ok().or_else(|| {
        let out = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    println!(
        "cargo:rustc-env=ANYCASTD_REVISION={}",
        revision
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "unknown".into())
    );
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=ANYCASTD_RUSTC={version}");
    Ok(())
}
