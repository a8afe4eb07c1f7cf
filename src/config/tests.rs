//! The config's parsing and validation, on the seed's example and variations of it.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::config::checks::CheckSpec;

const SEED_YAML: &str = include_str!("../../testdata/seed.yaml");
const SEED_JSON: &str = include_str!("../../testdata/seed.json");

fn yaml(s: &str) -> Result<Config, Problem> {
    parse(s, Format::Yaml)
}

/// The seed with one line replaced, for error tests.
fn seed_with(from: &str, to: &str) -> String {
    assert!(SEED_YAML.contains(from), "seed has no {from:?}");
    SEED_YAML.replacen(from, to, 1)
}

fn problems(text: &str) -> Vec<Problem> {
    match yaml(text) {
        Err(p) => vec![p],
        Ok(c) => c.validate().err().unwrap_or_default(),
    }
}

#[test]
fn seed_example_yaml_and_json_are_equal() {
    let y = yaml(SEED_YAML).expect("seed yaml");
    let j = parse(SEED_JSON, Format::Json).expect("seed json");
    assert_eq!(y, j);
    assert_eq!(y.services[0].checks.len(), 6);
    let kinds: Vec<&str> = y.services[0].checks.iter().map(|c| c.kind()).collect();
    assert_eq!(
        kinds,
        [
            "dns_lookup",
            "http_2xx",
            "tls_certificate",
            "assigned_address",
            "icmp_ping",
            "tftp_rrq"
        ]
    );
    // Names default to the kind.
    assert_eq!(y.services[0].checks[1].name, "http_2xx");
    assert_eq!(y.announcer.listen_port, -1);
    assert_eq!(y.announcer.gobgp.address, "127.0.0.1:50051");
    assert_eq!(y.services[0].rise, 1);
    assert_eq!(y.services[0].check_interval, Dur::secs(10));
    assert!(y.validate().is_ok(), "{:?}", y.validate());
}

#[test]
fn check_specs_are_parsed_into_their_kind() {
    let c = yaml(SEED_YAML).expect("seed");
    let CheckSpec::Http2xx(h) = &c.services[0].checks[1].spec else {
        panic!("second check is http_2xx")
    };
    assert_eq!(
        h.headers.get("Host").map(String::as_str),
        Some("example.com")
    );
    assert_eq!(h.timeout, Dur::secs(2));
    let CheckSpec::IcmpPing(p) = &c.services[0].checks[4].spec else {
        panic!("fifth check is icmp_ping")
    };
    assert_eq!(p.target.host, "google.com");
    assert_eq!(p.max_loss_percent, 0.0);
}

#[test]
fn unknown_key_names_its_path_and_position() {
    let p = yaml(&seed_with(
        "          method: GET\n",
        "          methd: GET\n",
    ))
    .expect_err("typo");
    assert_eq!(p.path, "services[0].checks[1].spec.methd");
    assert!(p.message.contains("methd"), "{p}");
    assert!(p.message.contains("did you mean `method`?"), "{p}");
    assert_eq!(
        p.at,
        Some(crate::problem::Position {
            line: 29,
            column: 11
        })
    );
    // The position is said once, by the problem, not again by the message.
    assert!(!p.message.contains("line"), "{p}");
}

#[test]
fn unknown_top_level_key_is_an_error() {
    let p = yaml(&format!("{SEED_YAML}extra: 1\n")).expect_err("unknown key");
    assert!(p.message.contains("extra"), "{p}");
}

#[test]
fn bare_number_duration_is_an_error() {
    let p = yaml(&seed_with("check_interval: 10s", "check_interval: 10")).expect_err("bare number");
    assert_eq!(p.path, "services[0].check_interval");
    assert!(p.message.contains("needs a unit"), "{p}");
    let p =
        parse(&SEED_JSON.replacen("\"10s\"", "10", 1), Format::Json).expect_err("json bare number");
    assert_eq!(p.path, "services[0].check_interval");
}

#[test]
fn durations_with_units() {
    assert_eq!(parse_duration("1m30s"), Ok(Dur::secs(90)));
    assert_eq!(parse_duration("100ms"), Ok(Dur::millis(100)));
    assert!(parse_duration("10").is_err());
    assert!(parse_duration("ten seconds").is_err());
    assert_eq!(parse_duration("365d"), Ok(Dur::secs(365 * 24 * 3600)));
}

#[test]
fn absurd_durations_are_errors_not_overflows() {
    // `tries x timeout` of such a check would overflow a Duration and panic.
    let p = yaml(&seed_with(
        "check_interval: 10s",
        "check_interval: 1000000000y",
    ))
    .expect_err("too long");
    assert_eq!(p.path, "services[0].check_interval");
    assert!(p.message.contains("longer than 1000 years"), "{p}");
}

#[test]
fn bad_field_inside_spec_names_the_full_path() {
    let p = yaml(&seed_with("ipv4: 33.22.11.0", "ipv4: 33.22.11")).expect_err("bad address");
    assert_eq!(p.path, "services[0].checks[3].spec.ipv4");
    let p = yaml(&seed_with("kind: tftp_rrq", "kind: tftp")).expect_err("bad kind");
    assert!(p.message.contains("the kinds are"), "{p}");
    assert_eq!(p.path, "services[0].checks[5].kind");
}

#[test]
fn semantic_errors_name_the_field() {
    let p = problems(&seed_with(
        "url: http://127.0.0.1:8080",
        "url: ftp://127.0.0.1:8080",
    ));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].path, "services[0].checks[1].spec.url");

    let p = problems(&seed_with("- 10.0.0.128/32", "- 10.0.0.128/24"));
    assert_eq!(p[0].path, "announcer.routes[0]");
    assert!(p[0].message.contains("did you mean 10.0.0.0/24"), "{p:?}");

    let p = problems(&seed_with("name: some_router_2", "name: some_router_1"));
    assert_eq!(p[0].path, "announcer.peers[1].name");

    let p = problems(&seed_with("ipv4: 33.22.11.0\n", "interface: lo\n"));
    assert!(!p.is_empty(), "duplicate key or no address must fail");
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = seed_with("name: some_router_2", "name: some_router_1")
        .replacen("- 10.0.0.128/32", "- 10.0.0.128/24", 1)
        .replacen("local_asn: 65999", "local_asn: 0", 1);
    assert_eq!(problems(&text).len(), 3);
}

#[test]
fn prefix_in_two_places_is_an_error() {
    let text = seed_with(
        "    check_interval: 10s\n",
        "    check_interval: 10s\n    routes: [10.0.0.128/32]\n",
    );
    let p = problems(&text);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].path, "services[0].routes[0]");
    assert!(p[0].message.contains("announcer.routes[0]"), "{p:?}");
}

#[test]
fn ipv6_routes_need_an_ipv6_next_hop() {
    let text = seed_with("- 10.0.0.128/32", "- 2001:db8::/48");
    let p = problems(&text);
    assert_eq!(p[0].path, "announcer.next_hop_ipv6");
    let ok = text.replacen(
        "local_asn: 65999",
        "local_asn: 65999\n  next_hop_ipv6: 2001:db8::1",
        1,
    );
    assert!(problems(&ok).is_empty());
}

#[test]
fn a_bare_address_as_route_gets_a_hint() {
    let p = yaml(&seed_with("- 10.0.0.128/32", "- 10.0.0.128")).expect_err("no length");
    assert_eq!(p.path, "announcer.routes[0]");
    assert!(p.message.contains("10.0.0.128/32"), "{p}");
}

#[test]
fn slow_check_is_a_warning() {
    let text = seed_with("check_interval: 10s", "check_interval: 1s");
    let c = yaml(&text).expect("parses");
    let w = c.validate().expect("only warnings");
    assert!(w.iter().any(|w| w.contains("worst case")), "{w:?}");
}

#[test]
fn metrics_can_be_disabled() {
    let c = yaml(&seed_with("enabled: true", "enabled: false")).expect("parses");
    assert!(!c.metrics.enabled);
}

#[test]
fn format_by_extension() {
    assert_eq!(Format::of(Path::new("/a/b.yml")), Ok(Format::Yaml));
    assert_eq!(Format::of(Path::new("c.JSON")), Ok(Format::Json));
    assert!(Format::of(Path::new("c.toml")).is_err());
}

#[test]
fn watches_and_fast_interval_parse() {
    let c = yaml(&seed_with(
        "    check_interval: 10s\n",
        "    check_interval: 10s\n    fast_interval: 200ms\n    watch:\n      - tcp: 127.0.0.1:8080\n      - pid_file: /run/nginx.pid\n",
    ))
    .expect("parses");
    let s = &c.services[0];
    assert_eq!(s.fast_interval(), Duration::from_millis(200));
    assert_eq!(s.watch.len(), 2);
    assert_eq!(s.watch[1].label(), "pid_file:/run/nginx.pid");
    assert!(c.validate().is_ok(), "{:?}", c.validate());
    // Left out: rounds keep check_interval, nothing is watched.
    let seed = yaml(SEED_YAML).expect("seed");
    assert_eq!(seed.services[0].fast_interval(), Duration::from_secs(10));
    assert!(seed.services[0].watch.is_empty());
}

#[test]
fn bad_watches_and_fast_interval_name_the_field_and_the_fix() {
    let with = |lines: &str| {
        problems(&seed_with(
            "    check_interval: 10s\n",
            &format!("    check_interval: 10s\n{lines}"),
        ))
    };
    let cases = [
        (
            "    watch: [{tcp: 127.0.0.1}]\n",
            "services[0].watch[0].tcp",
            "has no port",
        ),
        (
            "    watch: [{tcp: \"127.0.0.1:70000\"}]\n",
            "services[0].watch[0].tcp",
            "1..65535",
        ),
        (
            "    watch: [{pid_file: \"\"}]\n",
            "services[0].watch[0].pid_file",
            "must not be empty",
        ),
        (
            "    fast_interval: 0s\n",
            "services[0].fast_interval",
            "write at least 10ms",
        ),
        (
            "    fast_interval: 20s\n",
            "services[0].fast_interval",
            "at most",
        ),
    ];
    for (lines, path, fix) in cases {
        let p = with(lines);
        assert_eq!(p.len(), 1, "{lines}: {p:?}");
        assert_eq!(p[0].path, path, "{lines}");
        assert!(p[0].message.contains(fix), "{lines}: {p:?}");
    }
    let p = yaml(&seed_with(
        "    check_interval: 10s\n",
        "    check_interval: 10s\n    watch:\n      - tcp: 127.0.0.1:80\n      - pidfile: /run/x.pid\n",
    ))
    .expect_err("unknown kind");
    assert_eq!(p.path, "services[0].watch[1]");
    assert!(p.message.contains("`pid_file`"), "{p}");
    assert_eq!(p.at.map(|a| a.line), Some(20), "{p}");
}

#[test]
fn fleet_is_optional_and_its_problems_name_their_path() {
    assert_eq!(yaml(SEED_YAML).expect("seed").fleet, None);
    let text = format!(
        "{SEED_YAML}fleet:\n  etcd:\n    endpoints: [http://127.0.0.1:2379, 127.0.0.2:2379]\n  min_sites: 0\n"
    );
    let paths: Vec<String> = problems(&text).into_iter().map(|p| p.path).collect();
    assert_eq!(paths, ["fleet.etcd.endpoints[1]", "fleet.min_sites"]);
    let p = yaml(&format!(
        "{SEED_YAML}fleet:\n  etcd:\n    endpoints: [http://127.0.0.1:2379]\n  min_site: 2\n"
    ))
    .expect_err("typo");
    assert_eq!(p.path, "fleet.min_site");
    let ok = yaml(&format!(
        "{SEED_YAML}fleet:\n  etcd:\n    endpoints: [http://127.0.0.1:2379]\n  min_sites: 2\n"
    ))
    .expect("parses");
    assert!(ok.validate().is_ok(), "{:?}", ok.validate());
    assert_eq!(ok.fleet.map(|f| f.min_sites), Some(2));
}

#[test]
fn spec_before_kind_still_parses() {
    let text = seed_with(
        "      - kind: assigned_address\n        spec:\n          interface: dummy0\n          ipv4: 33.22.11.0\n",
        "      - spec:\n          interface: dummy0\n          ipv4: 33.22.11.0\n        kind: assigned_address\n",
    );
    let c = yaml(&text).expect("parses");
    assert_eq!(c, yaml(SEED_YAML).expect("seed"));
}

/// Issue 23.7: a relative drain file was accepted where a relative pid file is refused.
#[test]
fn drain_files_are_absolute_paths() {
    let text = seed_with(
        "  local_asn: 65999\n",
        "  local_asn: 65999\n  drain_file: drain\n",
    )
    .replacen(
        "    check_interval: 10s\n",
        "    check_interval: 10s\n    drain_file: ./web.drain\n",
        1,
    );
    let msgs: Vec<String> = problems(&text).iter().map(|p| p.to_string()).collect();
    assert!(
        msgs.iter().any(|m| m.starts_with("announcer.drain_file")
            && m.ends_with(
                "drain is a relative path; write an absolute one, e.g. /run/anycastd/drain"
            )),
        "{msgs:#?}"
    );
    assert!(
        msgs.iter().any(|m| m.starts_with("services[0].drain_file")
            && m.ends_with(
                "./web.drain is a relative path; write an absolute one, e.g. /run/anycastd/drain"
            )),
        "{msgs:#?}"
    );
}

/// Issue 23.7: a next hop that defaults to a loopback local_address is a warning.
#[test]
fn a_loopback_next_hop_by_default_is_a_warning() {
    let loopback = seed_with("local_address: 10.0.0.1", "local_address: 127.0.0.1");
    let w = yaml(&loopback)
        .expect("parses")
        .validate()
        .expect("only warnings");
    assert!(
        w.contains(&"announcer.next_hop is not set, so the routes go with local_address 127.0.0.1 as their next hop, a loopback address that routers drop: set announcer.next_hop to this host's address on the peering network".to_string()),
        "{w:#?}"
    );
    let set = loopback.replacen(
        "  local_asn: 65999\n",
        "  local_asn: 65999\n  next_hop: 192.0.2.254\n",
        1,
    );
    let w = yaml(&set).expect("parses").validate().expect("valid");
    assert!(!w.iter().any(|w| w.contains("next_hop")), "{w:#?}");
}

#[test]
fn attribute_hold_defaults_to_a_second_and_is_at_most_an_hour() {
    let c = yaml(SEED_YAML).expect("seed");
    assert_eq!(c.announcer.attribute_hold, Dur::secs(1));
    let p = problems(&seed_with(
        "local_asn: 65999",
        "local_asn: 65999\n  attribute_hold: 2h",
    ));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].path, "announcer.attribute_hold");
    assert_eq!(p[0].message, "2h is too long: write at most 1h");
    let c = yaml(&seed_with(
        "local_asn: 65999",
        "local_asn: 65999\n  attribute_hold: 0s",
    ))
    .expect("0s turns the hold off");
    assert_eq!(c.announcer.attribute_hold, Dur::secs(0));
    assert!(c.validate().is_ok());
}
