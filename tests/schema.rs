//! `anycastd config-schema` against a real JSON Schema validator (Debian's
//! python3-jsonschema, Draft 2020-12): the example configs validate, and configs the parser
//! refuses for their shape are refused by the schema too, so that an editor flags them.

use std::path::Path;
use std::process::{Command, Stdio};

/// Validates each document against the schema; returns, per document, `None` when valid
/// or the validator's first message.
fn validate(docs: &[serde_json::Value]) -> Vec<Option<String>> {
    let schema = Command::new(env!("CARGO_BIN_EXE_anycastd"))
        .arg("config-schema")
        .output()
        .expect("run anycastd config-schema");
    assert!(schema.status.success());
    let dir = tempfile::tempdir().expect("tempdir");
    let schema_path = dir.path().join("schema.json");
    std::fs::write(&schema_path, &schema.stdout).expect("write schema");
    let docs_path = dir.path().join("docs.json");
    std::fs::write(&docs_path, serde_json::to_string(docs).expect("docs")).expect("write docs");
    let script = r#"
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
for doc in json.load(open(sys.argv[2])):
    errors = sorted(v.iter_errors(doc), key=lambda e: list(e.absolute_path))
    print(json.dumps(None if not errors else "%s: %s" % ("/".join(map(str, errors[0].absolute_path)), errors[0].message)))
"#;
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(&schema_path)
        .arg(&docs_path)
        .stderr(Stdio::piped())
        .output()
        .expect("run /usr/bin/python3");
    assert!(
        out.status.success(),
        "the validator failed (apt-get install -y python3-jsonschema, or run ./scripts/test.sh, which does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Option<String>>(l).expect("validator output"))
        .collect()
}

fn yaml(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).expect("test YAML")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).expect("read")
}

#[test]
fn the_examples_validate() {
    let docs = vec![
        yaml(&read("testdata/seed.yaml")),
        serde_json::from_str(&read("testdata/seed.json")).expect("seed json"),
        yaml(&read("deploy/config.yaml")),
        // README's reference: every kind and key (issue 25's kinds among them).
        yaml(
            read("README.md")
                .split_once("## Config reference")
                .and_then(|(_, a)| a.split_once("```yaml\n"))
                .and_then(|(_, b)| b.split_once("```"))
                .expect("README's reference block")
                .0,
        ),
        yaml(&format!(
            "{}fleet:\n  etcd:\n    endpoints: [https://10.0.0.1:2379, https://etcd.example:2379/]\n    tls: {{ ca_file: /etc/ca.pem }}\n  site: fra-1.x_y\n  min_sites: 2\n  lease_ttl: 10s\n  on_unreachable: withdraw\n",
            read("testdata/seed.yaml")
        )),
    ];
    for (i, r) in validate(&docs).into_iter().enumerate() {
        assert_eq!(r, None, "example {i}");
    }
}

#[test]
fn shapes_the_parser_refuses_are_refused() {
    let seed = read("testdata/seed.yaml");
    let with = |from: &str, to: &str| {
        assert!(seed.contains(from), "the seed has no {from:?}");
        seed.replacen(from, to, 1)
    };
    let cases = [
        (
            "unknown key",
            with(
                "    check_interval: 10s\n",
                "    check_interval: 10s\n    timout: 1s\n",
            ),
        ),
        (
            "bare number duration",
            with("check_interval: 10s", "check_interval: 10"),
        ),
        (
            "duration without unit",
            with("check_interval: 10s", "check_interval: ten"),
        ),
        ("unknown kind", with("kind: tftp_rrq", "kind: tftp")),
        (
            "unknown spec key",
            with("          method: GET\n", "          methd: GET\n"),
        ),
        (
            "on_failure: maybe",
            with(
                "      - kind: tftp_rrq\n",
                "      - kind: tftp_rrq\n        on_failure: maybe\n",
            ),
        ),
        (
            "ASN out of range",
            with("local_asn: 65999", "local_asn: 4294967296"),
        ),
        (
            "prefix without length",
            with("- 10.0.0.128/32", "- 10.0.0.128"),
        ),
        (
            "community text",
            with(
                "  peers:",
                "  attributes: { up: { communities: [\"lots\"] } }\n  peers:",
            ),
        ),
        (
            "fleet endpoint without a scheme",
            format!("{seed}fleet:\n  etcd:\n    endpoints: [10.0.0.1:2379]\n"),
        ),
        (
            "fleet min_sites 0",
            format!(
                "{seed}fleet:\n  etcd:\n    endpoints: [http://10.0.0.1:2379]\n  min_sites: 0\n"
            ),
        ),
        (
            "fleet site with a slash",
            format!("{seed}fleet:\n  etcd:\n    endpoints: [http://10.0.0.1:2379]\n  site: a/b\n"),
        ),
        (
            "fleet on_unreachable: ignore",
            format!(
                "{seed}fleet:\n  etcd:\n    endpoints: [http://10.0.0.1:2379]\n  on_unreachable: ignore\n"
            ),
        ),
        // Issue 25's kinds.
        (
            "dns record type",
            with(
                "query: google.com\n",
                "query: google.com\n          type: AAA\n",
            ),
        ),
        (
            "dns rcode in lower case",
            with(
                "query: google.com\n",
                "query: google.com\n          rcode: nxdomain\n",
            ),
        ),
        (
            "ntp max_stratum 16",
            with(
                "      - kind: tftp_rrq\n",
                "      - kind: ntp\n        spec: {server: 127.0.0.1, max_stratum: 16}\n      - kind: tftp_rrq\n",
            ),
        ),
        (
            "ntp max_offset without a unit",
            with(
                "      - kind: tftp_rrq\n",
                "      - kind: ntp\n        spec: {server: 127.0.0.1, max_offset: 1}\n      - kind: tftp_rrq\n",
            ),
        ),
        (
            "tcp_connect tls key typo",
            with(
                "      - kind: tftp_rrq\n",
                "      - kind: tcp_connect\n        spec: {address: \"127.0.0.1:25\", tls: {insecur: true}}\n      - kind: tftp_rrq\n",
            ),
        ),
        (
            "grpc_health without address",
            with(
                "      - kind: tftp_rrq\n",
                "      - kind: grpc_health\n        spec: {service: x}\n      - kind: tftp_rrq\n",
            ),
        ),
        (
            "missing services",
            seed.split("services:").next().expect("head").to_string(),
        ),
    ];
    let docs: Vec<serde_json::Value> = cases.iter().map(|(_, t)| yaml(t)).collect();
    for ((what, text), r) in cases.iter().zip(validate(&docs)) {
        // The parser refuses each of them too.
        assert!(
            anycastd::config::parse(text, anycastd::config::Format::Yaml).is_err()
                || anycastd::config::parse(text, anycastd::config::Format::Yaml)
                    .is_ok_and(|c| c.validate().is_err()),
            "{what}: the parser accepts it"
        );
        assert!(r.is_some(), "{what}: the schema accepts it");
    }
}
