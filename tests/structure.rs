//! The layers of `src/` import each other one way only (issue 21): no file imports,
//! directly or through others, a file that imports it back. `scripts/module-cycles` (a copy of
//! the project's tool, it reads `crate::`, `super::` and `self::` paths; test modules left
//! out) prints the cycles; this test fails with its output when there is one.

use std::path::Path;
use std::process::Command;

#[test]
fn the_source_files_have_no_import_cycle() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(root.join("scripts/module-cycles"))
        .arg(root.join("src"))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run scripts/module-cycles with python3 ({e}): install it with `apt-get install -y python3`, or run ./scripts/test.sh, which does")
        });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("no cycles"),
        "import cycles between source files:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
