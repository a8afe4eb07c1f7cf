//! What the delivery tests ship, built the way a release is: the release binary (`cargo
//! build --release --locked`, the one the images and the package contain) and the Debian
//! package (`cargo deb`). Each is built once per test process, on demand; the next test binary
//! finds them up to date (cargo's own check). Cold, the release build takes about 4 minutes
//! of this 2-core machine (thin LTO).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where anycastd's sources are: the build context of the images, the package's sources.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The cargo that runs these tests (`$CARGO`), in the repository, without the variables
/// cargo sets for test processes (CARGO_MANIFEST_DIR, CARGO_PKG_*, OUT_DIR, LD_LIBRARY_PATH,
/// ...). Build scripts watch some of them (ring's: CARGO_MANIFEST_DIR; and OUT_DIR is the
/// debug build's): inherited, they made the release build here and one from a shell
/// rebuild each other from scratch (4 to 9 minutes) every time.
fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(repo());
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_by_cargo = [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_BIN_",
            "CARGO_CRATE_",
        ]
        .iter()
        .any(|p| name.starts_with(p))
            || [
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
                "LD_LIBRARY_PATH",
            ]
            .contains(&name.as_ref());
        if set_by_cargo {
            c.env_remove(name.as_ref());
        }
    }
    c
}

/// Stdout and stderr of a finished command, for failure messages.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The release `anycastd` (built now when stale), as cargo reports its path.
pub fn release_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = cargo()
            .args(["build", "--release", "--locked", "--bin", "anycastd"])
            .arg("--message-format=json-render-diagnostics")
            .output()
            .expect("run cargo build --release");
        assert!(
            out.status.success(),
            "cargo build --release failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "anycastd")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no anycastd executable")
    })
}

/// The Debian package of the release binary: `cargo deb --no-build` into a directory of its
/// own under the target directory. Fails, saying how to install it, without cargo-deb.
pub fn debian_package() -> &'static Path {
    static DEB: OnceLock<PathBuf> = OnceLock::new();
    DEB.get_or_init(|| {
        let bin = release_binary();
        let has_deb = cargo()
            .args(["deb", "--version"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            has_deb,
            "cargo-deb is not installed: install it with `cargo install cargo-deb --locked` \
             (or run ./scripts/test.sh, which does)"
        );
        // target/release/anycastd -> target/debian-test/
        let dir = bin
            .parent()
            .and_then(Path::parent)
            .expect("the target directory")
            .join("debian-test");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the package directory");
        let out = cargo()
            .args(["deb", "--no-build", "--output"])
            .arg(&dir)
            .output()
            .expect("run cargo deb");
        assert!(
            out.status.success(),
            "cargo deb failed:\n{}",
            output_text(&out)
        );
        let debs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("read the package directory")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "deb"))
            .collect();
        assert_eq!(debs.len(), 1, "cargo deb wrote {debs:?}");
        debs.into_iter().next().expect("one package")
    })
}
