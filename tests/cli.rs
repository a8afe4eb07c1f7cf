//! The command line as operators meet it: the man pages and shell completions in doc/ are
//! the ones the CLI definition generates now, and `status` and `healthcheck` take the same
//! address option and explain a disabled endpoint the same way.

use std::path::Path;
use std::process::{Command, Output};

fn anycastd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_anycastd"))
        .args(args)
        .output()
        .expect("run the anycastd binary")
}

const FIX: &str = "run ./scripts/gen-docs.sh and commit doc/";

#[test]
fn man_pages_and_completions_are_current() {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("doc");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = anycastd(&["manpages", dir.path().to_str().expect("utf-8")]);
    assert!(out.status.success(), "{out:?}");
    let mut pages = 0;
    for entry in std::fs::read_dir(dir.path()).expect("the pages") {
        let path = entry.expect("entry").path();
        let name = path.file_name().expect("a name");
        let want = std::fs::read_to_string(&path).expect("generated page");
        let have = std::fs::read_to_string(doc.join(name))
            .unwrap_or_else(|e| panic!("doc/{}: {e}; {FIX}", name.to_string_lossy()));
        assert_eq!(have, want, "doc/{} is stale; {FIX}", name.to_string_lossy());
        pages += 1;
    }
    // The daemon and every visible command: run, check-config, status, healthcheck,
    // drain, undrain, reload, completions.
    assert!(pages >= 9, "{pages} pages");
    for (shell, file) in [
        ("bash", "anycastd.bash"),
        ("zsh", "_anycastd"),
        ("fish", "anycastd.fish"),
    ] {
        let out = anycastd(&["completions", shell]);
        assert!(out.status.success());
        let have = std::fs::read(doc.join("completions").join(file)).expect("committed completion");
        assert_eq!(have, out.stdout, "doc/completions/{file} is stale; {FIX}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("undrain"), "{shell}: {text}");
    }
}

#[test]
fn status_and_healthcheck_take_one_address_option_and_explain_a_disabled_endpoint_alike() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        "announcer:\n  router_id: 10.0.0.1\n  local_address: 10.0.0.1\n  local_asn: 65001\nservices:\n  - name: web\n    check_interval: 1s\n    checks: [{kind: assigned_address, spec: {ipv4: 127.0.0.1}}]\nmetrics:\n  enabled: false\n",
    )
    .expect("write");
    let cfg = cfg.to_str().expect("utf-8");
    let status = anycastd(&["--config", cfg, "status"]);
    let health = anycastd(&["--config", cfg, "healthcheck"]);
    let s = String::from_utf8_lossy(&status.stderr);
    let h = String::from_utf8_lossy(&health.stdout);
    assert_eq!(status.status.code(), Some(1), "{s}");
    assert_eq!(health.status.code(), Some(1), "{h}");
    for (text, path) in [(&s, "/status"), (&h, "/healthz")] {
        assert!(
            text.contains(&format!(
                "metrics.enabled is false in {cfg}, so there is no {path} to ask (enable it, or give --address host:port)"
            )),
            "{text}"
        );
    }
    // Both take -a/--address; nothing listens there: one line saying so, the address once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    for cmd in [["status", "-a"], ["healthcheck", "--address"]] {
        let out = anycastd(&["--config", cfg, cmd[0], cmd[1], &addr]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert_eq!(text.matches(&addr).count(), 1, "{text}");
        assert!(text.contains("cannot connect"), "{text}");
    }
}

/// Issue 23.3: `anycastd reload` of a file that does not parse, with no daemon at the
/// socket the file names: the file's error and that the daemon was not told, exit 2.
#[test]
fn a_reload_of_a_file_that_does_not_parse_says_the_daemon_was_not_told() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("control.sock");
    let file = dir.path().join("config.yaml");
    std::fs::write(
        &file,
        format!(
            "announcer: [not a map\ncontrol:\n  socket: {}\n",
            socket.display()
        ),
    )
    .expect("write the config");
    let out = anycastd(&["--config", file.to_str().expect("utf-8"), "reload"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with(&format!(
            "anycastd: config file {} is not valid",
            file.display()
        )),
        "{err}"
    );
    let told: Vec<&str> = err
        .lines()
        .skip_while(|l| !l.starts_with("the daemon was not told: "))
        .collect();
    assert_eq!(told.len(), 2, "{err}");
    assert!(
        told[0].starts_with(&format!(
            "the daemon was not told: cannot reach anycastd at {}: ",
            socket.display()
        )),
        "{err}"
    );
    assert_eq!(
        told[1],
        "(a daemon that runs keeps the config it loaded before)"
    );
    // Not the old refusal, which sent the operator to --socket as if the socket were what
    // was wrong, while the daemon was never told.
    assert!(
        !err.contains("the control socket is control.socket of the config; give it with --socket"),
        "{err}"
    );
}
