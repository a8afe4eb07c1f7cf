//! `tls_certificate` against PEM files and a TLS server on loopback, with certificates made
//! by rcgen at test time: a CA "Test Issuer" and leaves signed by it.

pub mod common {
    pub mod checks;
    pub mod lab;
    pub mod prom;
    pub mod tls;
}

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anycastd::check::runner::{Outcome, Runner};
use anycastd::metrics::Metrics;

use common::checks::{assert_within_worst_case, failure, runner};
use common::tls::{Validity, pki, tls_server};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write a PEM file");
    p
}

/// The YAML of a check on the file `path`, with `extra` spec lines.
fn local(path: &Path, extra: &str) -> String {
    format!(
        "name: cert\nkind: tls_certificate\nspec:\n  local: {{path: \"{}\"}}\n{extra}",
        path.display()
    )
}

const ALL_FIELDS: &str = "  common_name: Test certificate\n  dns_names: [site.example.org]\n  ip_addresses: [127.0.0.1]\n  issuer: Test Issuer\n  min_valid_for: 720h\n";

fn expires_in(text: &str, path: &str) -> f64 {
    common::prom::value(
        &common::prom::parse(text),
        "anycastd_certificate_expires_in_seconds",
        &[("path", path)],
    )
    .unwrap_or_else(|| panic!("no expiry metric for {path} in:\n{text}"))
}

/// Seconds since the epoch, as the check counts them.
fn now() -> i64 {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    i64::try_from(t.as_secs()).expect("seconds since the epoch fit an i64")
}

/// Runs `r` once: its outcome, and the clock (seconds since the epoch) before and after.
async fn run(r: &Runner) -> (Outcome, RangeInclusive<i64>) {
    let before = now();
    let o = r.run().await;
    (o, before..=now())
}

/// Asserts that the expiry in `m` for `path`, under both of its names, is `validity`'s
/// notAfter less the time of the run: the leaf's date to the second (the CA's is a year
/// later), read in this run.
fn assert_expiry(m: &Metrics, path: &str, validity: Validity, during: &RangeInclusive<i64>) {
    let text = m.render();
    let secs = expires_in(&text, path);
    let want = validity.not_after() - during.end()..=validity.not_after() - during.start();
    assert!(
        want.contains(&(secs as i64)),
        "{path} expires in {secs} s, not in {want:?} (notAfter {} less the time of the run)",
        validity.not_after()
    );
    // The Go daemon's name for the same figure.
    let legacy = common::prom::value(
        &common::prom::parse(&text),
        "certificate_expires_in_seconds",
        &[("path", path)],
    );
    assert_eq!(legacy, Some(secs), "{text}");
}

#[tokio::test]
async fn a_leaf_first_chain_passes_on_every_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = pki(Validity::Current);
    let path = write(
        dir.path(),
        "chain.pem",
        &format!("{}{}", k.leaf_pem, k.ca_pem),
    );
    let (r, m) = runner(&local(&path, ALL_FIELDS));
    let (o, during) = run(&r).await;
    assert_eq!(o.result, Ok(()));
    assert_eq!(o.attempts, 1);
    // What was checked: the leaf, read in this run.
    assert_expiry(&m, &path.display().to_string(), Validity::Current, &during);
}

#[tokio::test]
async fn the_leaf_is_checked_not_the_ca_whatever_the_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = pki(Validity::Current);
    let ca_first = write(
        dir.path(),
        "ca-first.pem",
        &format!("{}{}", k.ca_pem, k.leaf_pem),
    );
    let (r, m) = runner(&local(&ca_first, ALL_FIELDS));
    let (o, during) = run(&r).await;
    assert_eq!(o.result, Ok(()));
    // The leaf's notAfter (2099), not the CA's (2100), though the CA comes first.
    assert_expiry(
        &m,
        &ca_first.display().to_string(),
        Validity::Current,
        &during,
    );

    // A file holding only the CA: its name is not the leaf's.
    let ca_only = write(dir.path(), "ca.pem", &k.ca_pem);
    let (r, _) = runner(&local(&ca_only, "  common_name: Test certificate\n"));
    let msg = failure(&r.run().await);
    assert!(
        msg.contains("common_name") && msg.contains("Test Issuer"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_single_certificate_with_its_key_in_the_same_file_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = pki(Validity::Current);
    let key_pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let path = write(dir.path(), "both.pem", &format!("{key_pem}{}", k.leaf_pem));
    let (r, m) = runner(&local(&path, "  common_name: Test certificate\n"));
    let (o, during) = run(&r).await;
    assert_eq!(o.result, Ok(()));
    // The certificate was found behind the key, and read.
    assert_expiry(&m, &path.display().to_string(), Validity::Current, &during);
}

#[tokio::test]
async fn each_mismatching_field_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = pki(Validity::Current);
    let path = write(dir.path(), "leaf.pem", &k.leaf_pem);
    for (extra, field, shows) in [
        ("  common_name: other\n", "common_name", "Test certificate"),
        (
            "  dns_names: [site.example.org, other.example.org]\n",
            "dns_names",
            "other.example.org",
        ),
        ("  ip_addresses: [127.0.0.2]\n", "ip_addresses", "127.0.0.2"),
        ("  issuer: Other CA\n", "issuer", "Test Issuer"),
        ("  min_valid_for: 1000000h\n", "min_valid_for", "expires in"),
    ] {
        let (r, m) = runner(&local(&path, extra));
        let (o, during) = run(&r).await;
        let msg = failure(&o);
        assert!(msg.contains(field) && msg.contains(shows), "{field}: {msg}");
        assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        // Still valid: the metric is set when another field fails.
        assert_expiry(&m, &path.display().to_string(), Validity::Current, &during);
    }
    // Every failing field is reported, not only the first.
    let (r, _) = runner(&local(&path, "  common_name: x\n  issuer: y\n"));
    let msg = failure(&r.run().await);
    assert!(
        msg.contains("common_name") && msg.contains("issuer"),
        "{msg}"
    );
}

#[tokio::test]
async fn an_expired_certificate_fails_and_its_metric_is_negative() {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = pki(Validity::Expired);
    let path = write(dir.path(), "old.pem", &k.leaf_pem);
    let (r, m) = runner(&local(&path, ""));
    let (o, during) = run(&r).await;
    let msg = failure(&o);
    assert!(msg.contains("expired"), "{msg}");
    assert_expiry(&m, &path.display().to_string(), Validity::Expired, &during);
}

#[tokio::test]
async fn a_not_yet_valid_certificate_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = pki(Validity::NotYet);
    let path = write(dir.path(), "future.pem", &k.leaf_pem);
    let (r, _) = runner(&local(&path, ""));
    let msg = failure(&r.run().await);
    assert!(msg.contains("not valid yet"), "{msg}");
}

#[tokio::test]
async fn a_missing_or_empty_file_fails_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (r, _) = runner(&local(&dir.path().join("nope.pem"), ""));
    let msg = failure(&r.run().await);
    assert!(
        msg.contains("nope.pem") && msg.contains("cannot read"),
        "{msg}"
    );
    let empty = write(dir.path(), "empty.pem", "just text\n");
    let (r, _) = runner(&local(&empty, ""));
    let msg = failure(&r.run().await);
    assert!(msg.contains("no PEM CERTIFICATE"), "{msg}");
}

fn remote(host: &str, extra: &str) -> String {
    format!(
        "name: cert\nkind: tls_certificate\nspec:\n  remote:\n    host: \"{host}\"\n    timeout: 1s\n{extra}"
    )
}

#[tokio::test]
async fn a_remote_server_passes_insecure_and_sends_the_server_name() {
    let k = pki(Validity::Current);
    let srv = tls_server(vec![k.leaf_der.clone(), k.ca_der.clone()], k.leaf_key).await;
    let host = srv.addr.to_string();
    let yaml = remote(
        &host,
        &format!("    insecure: true\n    server_name: site.example.org\n{ALL_FIELDS}"),
    );
    let (r, m) = runner(&yaml);
    let (o, during) = run(&r).await;
    assert_eq!(o.result, Ok(()));
    assert_eq!(o.attempts, 1);
    assert_expiry(&m, &host, Validity::Current, &during);
    // One handshake, with the configured name.
    assert_eq!(
        *srv.sni.lock().expect("sni"),
        [Some("site.example.org".to_string())]
    );
}

#[tokio::test]
async fn an_untrusted_chain_fails_unless_insecure() {
    let k = pki(Validity::Current);
    let srv = tls_server(vec![k.leaf_der.clone()], k.leaf_key).await;
    let (r, m) = runner(&remote(
        &srv.addr.to_string(),
        "  common_name: Test certificate\n",
    ));
    let (o, during) = run(&r).await;
    let msg = failure(&o);
    assert!(msg.contains("not trusted"), "{msg}");
    // The certificate was read all the same.
    assert_expiry(&m, &srv.addr.to_string(), Validity::Current, &during);
}

#[tokio::test]
async fn an_expired_remote_certificate_fails_with_its_dates() {
    let k = pki(Validity::Expired);
    let srv = tls_server(vec![k.leaf_der.clone()], k.leaf_key).await;
    let host = srv.addr.to_string();
    let (r, m) = runner(&remote(&host, "    insecure: true\n"));
    let (o, during) = run(&r).await;
    let msg = failure(&o);
    assert!(msg.contains("expired: notAfter was"), "{msg}");
    assert_expiry(&m, &host, Validity::Expired, &during);
}

#[tokio::test]
async fn a_silent_server_fails_within_the_timeout() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    // Accepts and never says a word.
    let keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    let (r, _) = runner(&remote(&addr.to_string(), "    insecure: true\n"));
    let o = r.run().await;
    let msg = failure(&o);
    assert!(
        msg.contains("TLS handshake") && msg.contains("no answer"),
        "{msg}"
    );
    assert_within_worst_case(&r, &o);
    keep.abort();
}

#[tokio::test]
async fn a_closed_port_fails_at_once() {
    let port = common::lab::free_tcp_port();
    let (r, _) = runner(&remote(
        &format!("127.0.0.1:{port}"),
        "    insecure: true\n",
    ));
    let o = r.run().await;
    let msg = failure(&o);
    assert!(msg.contains("cannot connect"), "{msg}");
    assert!(o.duration < std::time::Duration::from_millis(500), "{o:?}");
}

#[tokio::test]
async fn a_plain_text_server_fails_the_handshake() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let (r, _) = runner(&remote(&addr.to_string(), "    insecure: true\n"));
    let msg = failure(&r.run().await);
    assert!(
        msg.contains("TLS handshake") && msg.contains("failed"),
        "{msg}"
    );
}
