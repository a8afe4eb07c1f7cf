//! Issue 14, item 1: what an operator sees for the common config mistakes, exactly. Each
//! bad config is written to a file and loaded with `config::load`, as the daemon and
//! `check-config` do; the whole error text is compared (`{file}` stands for the file's
//! path). The mistakes cover every section (announcer, peers and their timers, gobgp,
//! services, checks of every kind, attributes, metrics, control), the file itself (empty,
//! missing, a directory, too large, not UTF-8) and YAML and JSON syntax. Then the real
//! binary: each error printed once, in text and in JSON, with exit code 2.

use std::path::{Path, PathBuf};
use std::process::Command;

use anycastd::config;

const SEED_YAML: &str = include_str!("../testdata/seed.yaml");
const SEED_JSON: &str = include_str!("../testdata/seed.json");

/// How a case's file is made.
enum Input {
    /// The seed YAML with each `(from, to)` replaced once.
    Yaml(&'static [(&'static str, &'static str)]),
    /// The seed JSON with each `(from, to)` replaced once.
    Json(&'static [(&'static str, &'static str)]),
    /// This text, as a file of this name.
    Text(&'static str, &'static str),
    /// These bytes, as a file of this name.
    Bytes(&'static str, Vec<u8>),
    /// No file at that name.
    Missing(&'static str),
    /// A directory of that name.
    Directory(&'static str),
}

fn replaced(seed: &str, edits: &[(&str, &str)], case: &str) -> String {
    let mut text = seed.to_string();
    for (from, to) in edits {
        assert!(text.contains(from), "case {case}: the seed has no {from:?}");
        text = text.replacen(from, to, 1);
    }
    text
}

/// Writes the case's file into `dir`; its path.
fn make(dir: &Path, name: &str, input: &Input) -> PathBuf {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).expect("case directory");
    let (file, bytes) = match input {
        Input::Yaml(edits) => ("config.yaml", replaced(SEED_YAML, edits, name).into_bytes()),
        Input::Json(edits) => ("config.json", replaced(SEED_JSON, edits, name).into_bytes()),
        Input::Text(file, text) => (*file, text.as_bytes().to_vec()),
        Input::Bytes(file, bytes) => (*file, bytes.clone()),
        Input::Missing(file) => return sub.join(file),
        Input::Directory(file) => {
            std::fs::create_dir_all(sub.join(file)).expect("directory");
            return sub.join(file);
        }
    };
    let path = sub.join(file);
    std::fs::write(&path, bytes).expect("write the case");
    path
}

/// The peer lines of the seed, to add a key to the first peer.
const PEER_1: &str = "      remote_asn: 65000\n    - name: some_router_2";

fn cases() -> Vec<(&'static str, Input, &'static str)> {
    use Input::*;
    vec![
        // The file itself.
        (
            "empty file",
            Text("config.yaml", ""),
            "config file {file} is not valid:\n  - the file is empty: a config needs at least `announcer` (router_id, local_address, local_asn) and `services` (each with name, check_interval and checks); \"Config reference\" in the README lists every key, and `anycastd --config FILE check-config` checks a file",
        ),
        (
            "only comments",
            Text("config.yaml", "# nothing yet\n---\n"),
            "config file {file} is not valid:\n  - the file holds no settings (only comments, or null): a config needs at least `announcer` (router_id, local_address, local_asn) and `services` (each with name, check_interval and checks); \"Config reference\" in the README lists every key, and `anycastd --config FILE check-config` checks a file",
        ),
        (
            "empty JSON",
            Text("config.json", "  \n"),
            "config file {file} is not valid:\n  - the file is empty: a config needs at least `announcer` (router_id, local_address, local_asn) and `services` (each with name, check_interval and checks); \"Config reference\" in the README lists every key, and `anycastd --config FILE check-config` checks a file",
        ),
        (
            "missing file",
            Missing("config.yaml"),
            "config file {file} does not exist: give the config's path with --config FILE or the CONFIG_PATH environment variable (without either, /config.yaml is read)",
        ),
        (
            "a directory",
            Directory("etc.yaml"),
            "config file {file} is a directory, not a regular file: give the path of the config file itself, e.g. {file}/config.yaml",
        ),
        (
            "too large",
            Bytes(
                "config.yaml",
                vec![b'#'; (config::MAX_CONFIG_BYTES + 1) as usize],
            ),
            "config file {file} is larger than 16 MiB, the limit of a config file (a config of 10,000 prefixes is some 300 KiB): is this the config file?",
        ),
        (
            "not UTF-8",
            Bytes("config.yaml", vec![b'#', 0xff, 0xfe, b'\n']),
            "config file {file} is not UTF-8 text: save it as UTF-8",
        ),
        (
            "no known extension",
            Text("config.toml", "announcer = 1\n"),
            "config file {file} has no .yaml, .yml or .json extension, which tells its format: rename it",
        ),
        (
            "a list at the top",
            Text("config.yaml", "- announcer\n- services\n"),
            "config file {file} is not valid:\n  - line 1, column 1: the file must be a map with `announcer` and `services` at its top, not a list: a config needs at least `announcer` (router_id, local_address, local_asn) and `services` (each with name, check_interval and checks); \"Config reference\" in the README lists every key, and `anycastd --config FILE check-config` checks a file",
        ),
        // YAML syntax.
        (
            "tab",
            Yaml(&[("\n  local_asn", "\n\tlocal_asn")]),
            "config file {file} is not valid:\n  - line 5, column 1: a tab indents this line: YAML is indented with spaces only; replace the tab with spaces",
        ),
        (
            "duplicate key",
            Yaml(&[(
                "  local_asn: 65999\n",
                "  local_asn: 65999\n  local_asn: 65001\n",
            )]),
            "config file {file} is not valid:\n  - announcer.local_asn (line 6, column 3): `local_asn` is given twice (first at line 5): keep one",
        ),
        (
            "key indented under no map",
            Yaml(&[(PEER_1, "    remote_asn: 65000\n    - name: some_router_2")]),
            "config file {file} is not valid:\n  - line 11, column 5: this line is indented differently from the lines above it: the keys of one map start in the same column, and so do the `-` of one list (because of it, announcer.peers[0] lacks `remote_asn`)",
        ),
        (
            "key indented under the wrong parent",
            Yaml(&[(
                "      remote_asn: 65000\nservices:",
                "  remote_asn: 65000\nservices:",
            )]),
            "config file {file} is not valid:\n  - announcer.peers[1] (line 12, column 7): `remote_asn` is missing; there is a `remote_asn` at line 14, column 3, which makes it announcer.remote_asn: if it is meant for this map, indent it to column 7, like the other keys of this map",
        ),
        (
            "key indented too far",
            Yaml(&[(
                PEER_1,
                "        remote_asn: 65000\n    - name: some_router_2",
            )]),
            "config file {file} is not valid:\n  - line 11, column 19: a `:` here makes a key where none can be: indent this line like the other keys of its map, or quote a value that contains `: `",
        ),
        (
            "unclosed bracket",
            Yaml(&[(
                "  routes:\n    - 10.0.0.128/32\n",
                "  routes: [10.0.0.128/32\n",
            )]),
            "config file {file} is not valid:\n  - line 7, column 8: the `[` at line 6, column 11 is not closed: end it with `]` (or, if a value contains `[`, quote the value)",
        ),
        (
            "unclosed quote",
            Yaml(&[("query: google.com", "query: \"google.com")]),
            "config file {file} is not valid:\n  - line 21, column 18: a quoted value is not closed: end it with the quote it starts with",
        ),
        (
            "two documents",
            Yaml(&[("metrics:", "---\nmetrics:")]),
            "config file {file} is not valid:\n  - line 65, column 1: the file holds more than one YAML document (a `---` line after the first settings): a config is one document; remove the `---` line or split the file",
        ),
        // JSON.
        (
            "JSON missing comma",
            Json(&[("\"local_asn\": 65999,", "\"local_asn\": 65999")]),
            "config file {file} is not valid:\n  - line 6, column 5: a `,` is missing between two entries of an object, or its `}` is missing",
        ),
        (
            "JSON trailing comma",
            Json(&[("\"10.0.0.128/32\"", "\"10.0.0.128/32\",")]),
            "config file {file} is not valid:\n  - line 8, column 5: a `,` comes right before a closing bracket: remove it (JSON allows no trailing comma)",
        ),
        (
            "JSON quoted number",
            Json(&[("\"local_asn\": 65999", "\"local_asn\": \"65999\"")]),
            "config file {file} is not valid:\n  - announcer.local_asn (line 5, column 18): `65999` is quoted, which makes it text: write 65999 without quotes",
        ),
        (
            "JSON unknown key",
            Json(&[("\"timeout\": \"2s\"", "\"timout\": \"2s\"")]),
            "config file {file} is not valid:\n  - services[0].checks[1].spec.timout (line 49, column 13): unknown key `timout` (did you mean `timeout`?); valid keys here: `url`, `method`, `headers`, `payload`, `path`, `tries`, `interval`, `timeout`",
        ),
        (
            "JSON duplicate key",
            Json(&[(
                "\"local_asn\": 65999,",
                "\"local_asn\": 65999, \"local_asn\": 1,",
            )]),
            "config file {file} is not valid:\n  - announcer.local_asn (line 5, column 25): `local_asn` is given twice (first at line 5): keep one",
        ),
        (
            "JSON semantic error",
            Json(&[(
                "\"check_interval\": \"10s\",",
                "\"check_interval\": \"10s\", \"rise\": 0,",
            )]),
            "config file {file} is not valid:\n  - services[0].rise (line 25, column 40): must be at least 1",
        ),
        // announcer.
        (
            "ASN too large",
            Yaml(&[("local_asn: 65999", "local_asn: 4294967296")]),
            "config file {file} is not valid:\n  - announcer.local_asn (line 5, column 14): 4294967296 is out of range: use 1..4294967295",
        ),
        (
            "ASN not a number",
            Yaml(&[("local_asn: 65999", "local_asn: AS65999")]),
            "config file {file} is not valid:\n  - announcer.local_asn (line 5, column 14): `AS65999` is not a number: use 1..4294967295",
        ),
        (
            "ASN 0",
            Yaml(&[("local_asn: 65999", "local_asn: 0")]),
            "config file {file} is not valid:\n  - announcer.local_asn (line 5, column 14): must be 1..4294967295, not 0",
        ),
        (
            "router id",
            Yaml(&[("router_id: 10.3.3.3", "router_id: 10.3.3")]),
            "config file {file} is not valid:\n  - announcer.router_id (line 3, column 14): `10.3.3` is not an IPv4 address: write four numbers 0..255 with dots between them, e.g. 192.0.2.1",
        ),
        (
            "local address a name",
            Yaml(&[("local_address: 10.0.0.1", "local_address: localhost")]),
            "config file {file} is not valid:\n  - announcer.local_address (line 4, column 18): `localhost` is not an IP address: write an IPv4 or IPv6 address, e.g. 192.0.2.1 or 2001:db8::1 (host names are not resolved here)",
        ),
        (
            "listen port",
            Yaml(&[(
                "local_asn: 65999\n",
                "local_asn: 65999\n  listen_port: 70000\n",
            )]),
            "config file {file} is not valid:\n  - announcer.listen_port (line 6, column 16): 70000 is not a port: use 1..65535, or -1 for outgoing sessions only",
        ),
        (
            "routes not a list",
            Yaml(&[(
                "  routes:\n    - 10.0.0.128/32\n",
                "  routes: 10.0.0.128/32\n",
            )]),
            "config file {file} is not valid:\n  - announcer.routes (line 6, column 11): must be a list, not the value `10.0.0.128/32`: write each item on a line of its own after `- `, or all of them as [a, b]",
        ),
        (
            "route without length",
            Yaml(&[("- 10.0.0.128/32", "- 10.0.0.128")]),
            "config file {file} is not valid:\n  - announcer.routes[0] (line 7, column 7): \"10.0.0.128\" is not a prefix in CIDR notation (e.g. 192.0.2.0/24); for one address write 10.0.0.128/32",
        ),
        (
            "host bits",
            Yaml(&[("- 10.0.0.128/32", "- 10.0.0.128/24")]),
            "config file {file} is not valid:\n  - announcer.routes[0] (line 7, column 7): 10.0.0.128/24 has host bits set; did you mean 10.0.0.0/24?",
        ),
        (
            "IPv6 route, no next hop",
            Yaml(&[("- 10.0.0.128/32", "- 2001:db8::/48")]),
            "config file {file} is not valid:\n  - announcer.next_hop_ipv6 (line 2, column 1): IPv6 routes need an IPv6 next hop: set next_hop_ipv6",
        ),
        (
            "prefix in two places",
            Yaml(&[(
                "    check_interval: 10s\n",
                "    check_interval: 10s\n    routes: [10.0.0.128/32]\n",
            )]),
            "config file {file} is not valid:\n  - services[0].routes[0] (line 18, column 14): 10.0.0.128/32 is already listed at announcer.routes[0]; a prefix may appear in one place only",
        ),
        (
            "unknown top-level key",
            Yaml(&[("services:", "service:")]),
            "config file {file} is not valid:\n  - service (line 15, column 1): unknown key `service` (did you mean `services`?); valid keys here: `announcer`, `services`, `metrics`, `control`, `fleet`",
        ),
        (
            "missing router id",
            Yaml(&[("  router_id: 10.3.3.3\n", "")]),
            "config file {file} is not valid:\n  - announcer (line 2, column 1): `router_id` is missing: add it",
        ),
        // Peers.
        (
            "duplicate peer",
            Yaml(&[("name: some_router_2", "name: some_router_1")]),
            "config file {file} is not valid:\n  - announcer.peers[1].name (line 12, column 13): \"some_router_1\" is used by another peer; peer names must be unique",
        ),
        (
            "hold time too short",
            Yaml(&[(
                PEER_1,
                "      remote_asn: 65000\n      hold_time: 2s\n    - name: some_router_2",
            )]),
            "config file {file} is not valid:\n  - announcer.peers[0].hold_time (line 12, column 18): 2s is too short: BGP allows 0s (no keepalives) or at least 3s (RFC 4271)",
        ),
        (
            "keepalive not shorter than hold time",
            Yaml(&[(
                PEER_1,
                "      remote_asn: 65000\n      hold_time: 30s\n      keepalive_interval: 30s\n    - name: some_router_2",
            )]),
            "config file {file} is not valid:\n  - announcer.peers[0].keepalive_interval (line 13, column 27): 30s must be at least 1s and shorter than hold_time (30s); a third of it is usual",
        ),
        // BFD (SPEC 16).
        (
            "bfd out of range",
            Yaml(&[(
                PEER_1,
                "      remote_asn: 65000\n      bfd: { enabled: true, min_tx: 1ms, multiplier: 0 }\n    - name: some_router_2",
            )]),
            "config file {file} is not valid:\n  - announcer.peers[0].bfd.min_tx (line 12, column 37): 1ms is too short: write at least 10ms\n  - announcer.peers[0].bfd.multiplier (line 12, column 54): 0 is out of range: write 1..255 (3 is usual)",
        ),
        (
            "bfd on a multihop peer",
            Yaml(&[(
                PEER_1,
                "      remote_asn: 65000\n      multihop_ttl: 2\n      bfd: { enabled: true }\n    - name: some_router_2",
            )]),
            "config file {file} is not valid:\n  - announcer.peers[0].bfd.enabled (line 13, column 23): GoBGP's BFD is single hop only (RFC 5881) and peer \"some_router_1\" is multihop (multihop_ttl 2): write bfd: {enabled: false} for it, or remove multihop_ttl",
        ),
        (
            "bfd bare number",
            Yaml(&[(
                PEER_1,
                "      remote_asn: 65000\n      bfd: { enabled: true, min_rx: 300 }\n    - name: some_router_2",
            )]),
            "config file {file} is not valid:\n  - announcer.peers[0].bfd.min_rx (line 12, column 37): a duration needs a unit: write \"300s\" or \"300ms\", not 300",
        ),
        (
            "connect retry",
            Yaml(&[(
                PEER_1,
                "      remote_asn: 65000\n      connect_retry: 500ms\n    - name: some_router_2",
            )]),
            "config file {file} is not valid:\n  - announcer.peers[0].connect_retry (line 12, column 22): 500ms is not a whole number of seconds: BGP timers are counted in seconds\n  - announcer.peers[0].connect_retry (line 12, column 22): 500ms is too short: use at least 1s",
        ),
        (
            "multihop ttl",
            Yaml(&[(
                PEER_1,
                "      remote_asn: 65000\n      multihop_ttl: 256\n    - name: some_router_2",
            )]),
            "config file {file} is not valid:\n  - announcer.peers[0].multihop_ttl (line 12, column 21): 256 is out of range: use 0..255 (0: no eBGP multihop)",
        ),
        (
            "remote port 0",
            Yaml(&[(
                PEER_1,
                "      remote_asn: 65000\n      remote_port: 0\n    - name: some_router_2",
            )]),
            "config file {file} is not valid:\n  - announcer.peers[0].remote_port (line 12, column 20): must be 1..65535",
        ),
        (
            "password file missing",
            Yaml(&[(
                PEER_1,
                "      remote_asn: 65000\n      password_file: /nonexistent/md5.key\n    - name: some_router_2",
            )]),
            "config file {file} is not valid:\n  - announcer.peers[0].password_file (line 12, column 22): cannot read /nonexistent/md5.key: it does not exist",
        ),
        (
            "peer key typo",
            Yaml(&[(
                PEER_1,
                "      remote_asn: 65000\n      pasive: true\n    - name: some_router_2",
            )]),
            "config file {file} is not valid:\n  - announcer.peers[0].pasive (line 12, column 7): unknown key `pasive` (did you mean `passive`?); valid keys here: `name`, `remote_address`, `remote_asn`, `remote_port`, `password_file`, `multihop_ttl`, `passive`, `hold_time`, `keepalive_interval`, `connect_retry`, `bfd`",
        ),
        // gobgp.
        (
            "gobgp address without port",
            Yaml(&[(
                "local_asn: 65999\n",
                "local_asn: 65999\n  gobgp:\n    address: 127.0.0.1\n",
            )]),
            "config file {file} is not valid:\n  - announcer.gobgp.address (line 7, column 14): \"127.0.0.1\" has no port; write host:port, e.g. 127.0.0.1:50051",
        ),
        (
            "gobgp interval too short",
            Yaml(&[(
                "local_asn: 65999\n",
                "local_asn: 65999\n  gobgp:\n    reconcile_interval: 10ms\n",
            )]),
            "config file {file} is not valid:\n  - announcer.gobgp.reconcile_interval (line 7, column 25): 10ms is too short: write at least 100ms",
        ),
        (
            "gobgp timeout bare number",
            Yaml(&[(
                "local_asn: 65999\n",
                "local_asn: 65999\n  gobgp:\n    timeout: 3\n",
            )]),
            "config file {file} is not valid:\n  - announcer.gobgp.timeout (line 7, column 14): a duration needs a unit: write \"3s\" or \"3ms\", not 3",
        ),
        // Services.
        (
            "no services",
            Text(
                "config.yaml",
                "announcer:\n  router_id: 10.3.3.3\n  local_address: 10.0.0.1\n  local_asn: 65999\nservices: []\n",
            ),
            "config file {file} is not valid:\n  - services (line 5, column 11): at least one service is needed",
        ),
        (
            "duplicate service",
            Yaml(&[(
                "metrics:",
                "  - name: http\n    check_interval: 5s\n    checks:\n      - kind: assigned_address\n        spec: {ipv4: 10.0.0.1}\nmetrics:",
            )]),
            "config file {file} is not valid:\n  - services[1].name (line 64, column 11): \"http\" is used by another service; service names must be unique",
        ),
        (
            "rise 0",
            Yaml(&[("check_interval: 10s", "check_interval: 10s\n    rise: 0")]),
            "config file {file} is not valid:\n  - services[0].rise (line 18, column 11): must be at least 1",
        ),
        (
            "negative interval",
            Yaml(&[("check_interval: 10s", "check_interval: -10s")]),
            "config file {file} is not valid:\n  - services[0].check_interval (line 17, column 21): `-10s` is negative, and a duration is a length of time: write it without the minus sign, e.g. 10s",
        ),
        (
            "interval in words",
            Yaml(&[("check_interval: 10s", "check_interval: ten seconds")]),
            "config file {file} is not valid:\n  - services[0].check_interval (line 17, column 21): `ten seconds` is not a duration: write a number and a unit, e.g. 100ms, 10s or 1m30s (units: ns, us, ms, s, m, h, d)",
        ),
        (
            "interval with an unknown unit",
            Yaml(&[("check_interval: 10s", "check_interval: 10 secnds")]),
            "config file {file} is not valid:\n  - services[0].check_interval (line 17, column 21): `secnds` in `10 secnds` is not a unit of time: write a number and a unit, e.g. 100ms, 10s or 1m30s (units: ns, us, ms, s, m, h, d)",
        ),
        (
            "service key typo",
            Yaml(&[("check_interval: 10s", "check_intervall: 10s")]),
            "config file {file} is not valid:\n  - services[0].check_intervall (line 17, column 5): unknown key `check_intervall` (did you mean `check_interval`?); valid keys here: `name`, `check_interval`, `fast_interval`, `rise`, `fall`, `routes`, `attributes`, `drain_file`, `watch`, `checks`",
        ),
        (
            "no checks",
            Text(
                "config.yaml",
                "announcer:\n  router_id: 10.3.3.3\n  local_address: 10.0.0.1\n  local_asn: 65999\nservices:\n  - name: web\n    check_interval: 5s\n    checks: []\n",
            ),
            "config file {file} is not valid:\n  - services[0].checks (line 8, column 13): a service needs at least one check",
        ),
        // Checks.
        (
            "unknown kind",
            Yaml(&[("kind: tftp_rrq", "kind: tftp_rq")]),
            "config file {file} is not valid:\n  - services[0].checks[5].kind (line 58, column 15): `tftp_rq` is not a check kind (did you mean `tftp_rrq`?); the kinds are assigned_address, dns_lookup, grpc_health, http_2xx, icmp_ping, ntp, tcp_connect, tftp_rrq, tls_certificate",
        ),
        (
            "missing kind",
            Yaml(&[("- kind: tftp_rrq\n        spec:", "- spec:")]),
            "config file {file} is not valid:\n  - services[0].checks[5] (line 58, column 9): `kind` is missing: give the kind of the check, one of assigned_address, dns_lookup, grpc_health, http_2xx, icmp_ping, ntp, tcp_connect, tftp_rrq, tls_certificate",
        ),
        (
            "on_failure typo",
            Yaml(&[(
                "- kind: tftp_rrq\n",
                "- kind: tftp_rrq\n        on_failure: withdrawl\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[5].on_failure (line 59, column 21): `withdrawl` is not an action (did you mean `withdraw`?); use withdraw (the default: the service goes down and its routes are withdrawn) or degrade (they stay announced with the degraded attributes)",
        ),
        (
            "two checks of one name",
            Yaml(&[(
                "- kind: tftp_rrq\n",
                "- kind: tftp_rrq\n        name: icmp_ping\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[5].name (line 59, column 15): \"icmp_ping\" is used by another check of this service; give each check its own `name`",
        ),
        (
            "http url scheme",
            Yaml(&[("url: http://127.0.0.1:8080", "url: ftp://127.0.0.1:8080")]),
            "config file {file} is not valid:\n  - services[0].checks[1].spec.url (line 28, column 16): \"ftp://127.0.0.1:8080\" is not http:// or https://",
        ),
        (
            "http method",
            Yaml(&[("method: GET", "method: GE T")]),
            "config file {file} is not valid:\n  - services[0].checks[1].spec.method (line 29, column 19): \"GE T\" is not an HTTP method; use e.g. GET, HEAD or POST",
        ),
        (
            "http path",
            Yaml(&[("path: /\n", "path: health\n")]),
            "config file {file} is not valid:\n  - services[0].checks[1].spec.path (line 33, column 17): \"health\" must start with /",
        ),
        (
            "http key typo",
            Yaml(&[("timeout: 2s", "timout: 2s")]),
            "config file {file} is not valid:\n  - services[0].checks[1].spec.timout (line 36, column 11): unknown key `timout` (did you mean `timeout`?); valid keys here: `url`, `method`, `headers`, `payload`, `path`, `tries`, `interval`, `timeout`",
        ),
        (
            "dns query an address",
            Yaml(&[("query: google.com", "query: 192.0.2.1")]),
            "config file {file} is not valid:\n  - services[0].checks[0].spec.query (line 21, column 18): \"192.0.2.1\" is an IP address, which needs no lookup; give a name",
        ),
        (
            "dns query missing",
            Yaml(&[("          query: google.com\n", "")]),
            "config file {file} is not valid:\n  - services[0].checks[0].spec (line 20, column 9): `query` is missing: add it",
        ),
        (
            "dns resolver without port",
            Yaml(&[("resolver: 127.0.0.1:53", "resolver: 127.0.0.1")]),
            "config file {file} is not valid:\n  - services[0].checks[0].spec.resolver (line 22, column 21): `127.0.0.1` is not an address with a port: write ip:port, e.g. 127.0.0.1:9090 or [::1]:9090 (host names are not resolved here)",
        ),
        (
            "tls neither local nor remote",
            Yaml(&[(
                "          local:\n            path: /etc/ssl/pki/cert.pem\n",
                "",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[2].spec (line 39, column 11): give `local.path` (a PEM file) or `remote.host` (host:port)",
        ),
        (
            "tls remote without port",
            Yaml(&[(
                "          local:\n            path: /etc/ssl/pki/cert.pem\n",
                "          remote:\n            host: example.org\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[2].spec.remote.host (line 40, column 19): \"example.org\" needs a port: write host:port, e.g. example.org:443",
        ),
        (
            "icmp loss above 100",
            Yaml(&[(
                "            host: google.com\n",
                "            host: google.com\n          max_loss_percent: 150\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[4].spec.max_loss_percent (line 55, column 29): must be between 0 and 100",
        ),
        (
            "icmp tries 0",
            Yaml(&[(
                "          tries: 3\n          interval: 100ms\n          timeout: 5s\n      - kind: tftp_rrq",
                "          tries: 0\n          interval: 100ms\n          timeout: 5s\n      - kind: tftp_rrq",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[4].spec.tries (line 55, column 18): must be at least 1 (echo requests per check)",
        ),
        (
            "tftp url scheme",
            Yaml(&[(
                "url: tftp://127.0.0.1:69/lpxelinux.0",
                "url: http://127.0.0.1:69/lpxelinux.0",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[5].spec.url (line 60, column 16): \"http://127.0.0.1:69/lpxelinux.0\" is not a tftp:// URL; write tftp://host:port/file",
        ),
        (
            "tftp hash",
            Yaml(&[(
                "url: tftp://127.0.0.1:69/lpxelinux.0\n",
                "url: tftp://127.0.0.1:69/lpxelinux.0\n          expected_sha256: abc\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[5].spec.expected_sha256 (line 61, column 28): must be 64 hex digits (a SHA-256), any case",
        ),
        (
            "assigned address none",
            Yaml(&[(
                "          interface: dummy0\n          ipv4: 33.22.11.0\n",
                "          interface: dummy0\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[3].spec (line 49, column 11): give `ipv4`, `ipv6` or both: the addresses that must be assigned",
        ),
        (
            "spec before kind, bad address",
            Yaml(&[(
                "      - kind: assigned_address\n        spec:\n          interface: dummy0\n          ipv4: 33.22.11.0\n",
                "      - spec:\n          interface: dummy0\n          ipv4: 33.22.11\n        kind: assigned_address\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[3].spec.ipv4 (line 49, column 17): `33.22.11` is not an IPv4 address: write four numbers 0..255 with dots between them, e.g. 192.0.2.1",
        ),
        // The kinds of issue 25.
        (
            "tcp address without port",
            Yaml(&[(
                "      - kind: tftp_rrq\n",
                "      - kind: tcp_connect\n        spec:\n          address: 127.0.0.1\n          expect: \"220 \"\n      - kind: tftp_rrq\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[5].spec.address (line 60, column 20): `127.0.0.1` needs a port: write host:port, e.g. 127.0.0.1:25",
        ),
        (
            "grpc address without port",
            Yaml(&[(
                "      - kind: tftp_rrq\n",
                "      - kind: grpc_health\n        spec:\n          address: api.example\n      - kind: tftp_rrq\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[5].spec.address (line 60, column 20): `api.example` needs a port: write host:port, e.g. 127.0.0.1:50051",
        ),
        (
            "ntp max_stratum 0",
            Yaml(&[(
                "      - kind: tftp_rrq\n",
                "      - kind: ntp\n        spec:\n          server: 127.0.0.1\n          max_stratum: 0\n      - kind: tftp_rrq\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[5].spec.max_stratum (line 61, column 24): 0 is not a stratum a synchronised server has: use 1..15 (1 = attached to a reference clock; 0 is a Kiss-o'-Death and 16 unsynchronised, which always fail)",
        ),
        (
            "ntp max_stratum 16",
            Yaml(&[(
                "      - kind: tftp_rrq\n",
                "      - kind: ntp\n        spec:\n          server: 127.0.0.1\n          max_stratum: 16\n      - kind: tftp_rrq\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[5].spec.max_stratum (line 61, column 24): 16 is not a stratum a synchronised server has: use 1..15 (1 = attached to a reference clock; 0 is a Kiss-o'-Death and 16 unsynchronised, which always fail)",
        ),
        (
            "ntp max_offset 0s",
            Yaml(&[(
                "      - kind: tftp_rrq\n",
                "      - kind: ntp\n        spec:\n          server: 127.0.0.1\n          max_offset: 0s\n      - kind: tftp_rrq\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[5].spec.max_offset (line 61, column 23): 0s would fail every server (no two clocks agree exactly): write more than 0s, e.g. 1s (the default) or 100ms",
        ),
        (
            "ntp max_offset negative",
            Yaml(&[(
                "      - kind: tftp_rrq\n",
                "      - kind: ntp\n        spec:\n          server: 127.0.0.1\n          max_offset: -1s\n      - kind: tftp_rrq\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[5].spec.max_offset (line 61, column 23): `-1s` is negative, and a duration is a length of time: write it without the minus sign, e.g. 1s",
        ),
        (
            "ntp server port 0",
            Yaml(&[(
                "      - kind: tftp_rrq\n",
                "      - kind: ntp\n        spec:\n          server: 127.0.0.1:0\n      - kind: tftp_rrq\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[5].spec.server (line 60, column 19): `127.0.0.1:0`: port 0 is not a server port; use 1..65535",
        ),
        (
            "dns unknown record type",
            Yaml(&[(
                "query: google.com\n",
                "query: google.com\n          type: AAA\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[0].spec.type (line 22, column 17): `AAA` is not one of A, AAAA, SOA, TXT, CNAME, MX, NS, PTR, SRV (did you mean `AAAA`?)",
        ),
        (
            "dns record type in lower case",
            Yaml(&[(
                "query: google.com\n",
                "query: google.com\n          type: txt\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[0].spec.type (line 22, column 17): `txt` is not one of A, AAAA, SOA, TXT, CNAME, MX, NS, PTR, SRV (did you mean `TXT`?)",
        ),
        (
            "dns unknown rcode",
            Yaml(&[(
                "query: google.com\n",
                "query: google.com\n          rcode: NOERR\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[0].spec.rcode (line 22, column 18): `NOERR` is not one of NOERROR, NXDOMAIN, SERVFAIL, REFUSED, FORMERR, NOTIMP (did you mean `NOERROR`?)",
        ),
        (
            "dns expect of an address lookup not an address",
            Yaml(&[(
                "query: google.com\n",
                "query: google.com\n          type: A\n          expect: [ns1.google.com]\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[0].spec.expect[0] (line 23, column 20): `ns1.google.com` is not an IPv4 address, so it can never be among the A answers: write an IPv4 address, e.g. 192.0.2.1, or set the `type` whose data it is",
        ),
        (
            "dns max_serial_lag without soa_serial_of",
            Yaml(&[(
                "query: google.com\n",
                "query: google.com\n          max_serial_lag: 2\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[0].spec.max_serial_lag (line 22, column 27): needs soa_serial_of: add soa_serial_of: ip:port of the zone's primary (whose serial the resolver's is compared with), or remove max_serial_lag",
        ),
        (
            "dns soa_serial_of without port",
            Yaml(&[(
                "query: google.com\n",
                "query: google.com\n          soa_serial_of: 127.0.0.1\n",
            )]),
            "config file {file} is not valid:\n  - services[0].checks[0].spec.soa_serial_of (line 22, column 26): `127.0.0.1` is not an address with a port: write ip:port, e.g. 127.0.0.1:9090 or [::1]:9090 (host names are not resolved here)",
        ),
        // Attributes.
        (
            "community name typo",
            Yaml(&[(
                "  routes:\n",
                "  attributes:\n    up:\n      communities: [no_exprot]\n  routes:\n",
            )]),
            "config file {file} is not valid:\n  - announcer.attributes.up.communities[0] (line 8, column 21): \"no_exprot\" is not a community (did you mean `no_export`?): write ASN:VALUE (each 0..65535, e.g. 65000:100) or one of graceful_shutdown, blackhole, no_export, no_advertise, no_export_subconfed",
        ),
        (
            "large community",
            Yaml(&[(
                "  routes:\n",
                "  attributes:\n    up:\n      large_communities: [\"65000:1\"]\n  routes:\n",
            )]),
            "config file {file} is not valid:\n  - announcer.attributes.up.large_communities[0] (line 8, column 27): \"65000:1\" is not a large community: write GLOBAL:LOCAL1:LOCAL2, three numbers in 0..4294967295 (e.g. 65000:1:1)",
        ),
        (
            "prepend too many",
            Yaml(&[(
                "  routes:\n",
                "  attributes:\n    degraded:\n      as_path_prepend: 17\n  routes:\n",
            )]),
            "config file {file} is not valid:\n  - announcer.attributes.degraded.as_path_prepend (line 8, column 24): 17 is too many: prepend the local ASN at most 16 times (routers drop or ignore longer paths)",
        ),
        (
            "prepend towards an iBGP peer",
            Yaml(&[
                (
                    "  routes:\n",
                    "  attributes:\n    degraded:\n      as_path_prepend: 2\n  routes:\n",
                ),
                (PEER_1, "      remote_asn: 65999\n    - name: some_router_2"),
            ]),
            "config file {file} is not valid:\n  - announcer.attributes.degraded.as_path_prepend (line 8, column 24): peer some_router_1 is iBGP (remote_asn 65999 is local_asn): it would see its own AS in the prepended path and drop the route; remove as_path_prepend (use med, or local_pref for iBGP peers), or peer with eBGP only",
        ),
        (
            "negative med",
            Yaml(&[(
                "  routes:\n",
                "  attributes:\n    up:\n      med: -1\n  routes:\n",
            )]),
            "config file {file} is not valid:\n  - announcer.attributes.up.med (line 8, column 12): -1 is out of range: use 0..4294967295",
        ),
        (
            "attribute set typo",
            Yaml(&[(
                "  routes:\n",
                "  attributes:\n    degradd:\n      med: 500\n  routes:\n",
            )]),
            "config file {file} is not valid:\n  - announcer.attributes.degradd (line 7, column 5): unknown key `degradd` (did you mean `degraded`?); valid keys here: `up`, `degraded`, `draining`",
        ),
        // Metrics and control.
        (
            "metrics address without port",
            Yaml(&[("address: 127.0.0.1:9090", "address: 127.0.0.1")]),
            "config file {file} is not valid:\n  - metrics.address (line 66, column 12): `127.0.0.1` is not an address with a port: write ip:port, e.g. 127.0.0.1:9090 or [::1]:9090 (host names are not resolved here)",
        ),
        (
            "metrics enabled",
            Yaml(&[("enabled: true", "enabled: maybe")]),
            "config file {file} is not valid:\n  - metrics.enabled (line 65, column 12): `maybe` is not true or false: write true or false",
        ),
        (
            "control key typo",
            Yaml(&[(
                "metrics:",
                "control:\n  sockt: /run/anycastd.sock\nmetrics:",
            )]),
            "config file {file} is not valid:\n  - control.sockt (line 65, column 3): unknown key `sockt` (did you mean `socket`?); valid keys here: `socket`",
        ),
        // The fleet guard's section gets the same treatment, by path.
        (
            "fleet key typo",
            Yaml(&[(
                "metrics:",
                "fleet:\n  etcd:\n    endpoints: [http://127.0.0.1:2379]\n  min_site: 2\nmetrics:",
            )]),
            "config file {file} is not valid:\n  - fleet.min_site (line 67, column 3): unknown key `min_site` (did you mean `min_sites`?); valid keys here: `etcd`, `site`, `min_sites`, `lease_ttl`, `on_unreachable`, `prefixes`",
        ),
        (
            "fleet action typo",
            Yaml(&[(
                "metrics:",
                "fleet:\n  etcd:\n    endpoints: [http://127.0.0.1:2379]\n  on_unreachable: hodl\nmetrics:",
            )]),
            "config file {file} is not valid:\n  - fleet.on_unreachable (line 67, column 19): `hodl` is not one of hold, withdraw (did you mean `hold`?)",
        ),
        (
            "fleet endpoint without scheme",
            Yaml(&[(
                "metrics:",
                "fleet:\n  etcd:\n    endpoints: [http://127.0.0.1:2379, 127.0.0.2:2379]\n  min_sites: 0\nmetrics:",
            )]),
            "config file {file} is not valid:\n  - fleet.etcd.endpoints[1] (line 66, column 40): \"127.0.0.2:2379\" has no scheme: write http://127.0.0.2:2379 (or https:// for TLS)\n  - fleet.min_sites (line 67, column 14): must be 1..100, not 0: the number of other sites that must keep a prefix announced",
        ),
        // Several problems are reported at once, each with its position.
        (
            "three problems",
            Yaml(&[
                ("name: some_router_2", "name: some_router_1"),
                ("- 10.0.0.128/32", "- 10.0.0.128/24"),
                ("local_asn: 65999", "local_asn: 0"),
            ]),
            "config file {file} is not valid:\n  - announcer.local_asn (line 5, column 14): must be 1..4294967295, not 0\n  - announcer.routes[0] (line 7, column 7): 10.0.0.128/24 has host bits set; did you mean 10.0.0.0/24?\n  - announcer.peers[1].name (line 12, column 13): \"some_router_1\" is used by another peer; peer names must be unique",
        ),
    ]
}

#[test]
fn each_mistake_gets_its_exact_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = cases();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let mut wrong = Vec::new();
    for (name, input, want) in &cases {
        let path = make(dir.path(), &name.replace(' ', "_"), input);
        let got = match config::load(&path) {
            Ok(_) => "(valid)".to_string(),
            Err(e) => e.to_string().replace(&path.display().to_string(), "{file}"),
        };
        if got != *want {
            wrong.push(format!("case {name:?}:\n  got:  {got:?}\n  want: {want:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases differ:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

/// Two problems found by validation (the README's first example).
const TWO_PROBLEMS: &[(&str, &str)] = &[
    ("check_interval: 10s", "check_interval: 10s\n    rise: 0"),
    ("- 10.0.0.128/32", "- 10.0.0.128/24"),
];
/// A typo the parser stops at (the README's second example).
const TYPO: &[(&str, &str)] = &[("timeout: 2s", "timout: 2s")];

/// The examples in README.md's "Config reference" are what anycastd prints for them.
#[test]
fn the_readme_shows_real_messages() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let (_, after) = readme
        .split_once("## Config reference")
        .expect("a Config reference section");
    let intro = after
        .split("```yaml")
        .next()
        .expect("text before the reference");
    let blocks: Vec<&str> = intro
        .split("```text\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert_eq!(blocks.len(), 2, "two examples: {blocks:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, (block, edits)) in blocks.iter().zip([TWO_PROBLEMS, TYPO]).enumerate() {
        let path = write_case(dir.path(), &format!("readme{i}"), edits);
        let err = config::load(&path).expect_err("not valid");
        let shown = format!("anycastd: {err}\n")
            .replace(&path.display().to_string(), "/etc/anycastd/config.yaml");
        assert_eq!(*block, shown, "README example {}", i + 1);
    }
}

/// The binary's stdout, stderr and exit code for `args` with `env`.
fn run(args: &[&str], env: &[(&str, &str)]) -> (String, String, Option<i32>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_anycastd"));
    cmd.args(args)
        .env_remove("LOG_FORMAT")
        .env_remove("LOG_LEVEL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run anycastd");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

fn write_case(dir: &Path, name: &str, edits: &'static [(&'static str, &'static str)]) -> PathBuf {
    make(dir, name, &Input::Yaml(edits))
}

/// In the text format, the daemon and `check-config` print a bad config's error once, as
/// `anycastd: ` and exactly the text `config::load` gives (no timestamped log line besides
/// it), and exit 2; the line and column appear once.
#[test]
fn the_binary_prints_each_error_once_as_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_case(
        dir.path(),
        "dup",
        &[(
            "  local_asn: 65999\n",
            "  local_asn: 65999\n  local_asn: 65001\n",
        )],
    );
    let p = path.to_str().expect("utf-8 path");
    let want = format!(
        "anycastd: config file {p} is not valid:\n  - announcer.local_asn (line 6, column 3): `local_asn` is given twice (first at line 5): keep one\n"
    );
    for args in [&["--config", p][..], &["check-config", "--config", p][..]] {
        let (stdout, stderr, code) = run(args, &[]);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr, want, "{args:?}");
        assert_eq!(stdout, "", "{args:?}");
    }
    // LOG_FORMAT=text says the same.
    let (_, stderr, code) = run(&["--config", p], &[("LOG_FORMAT", "text")]);
    assert_eq!((code, stderr), (Some(2), want));
}

/// With LOG_FORMAT=json a bad config is one JSON object on stderr, nothing else: the log
/// line's fields, the file, and each problem with its path, line, column and message.
#[test]
fn the_binary_prints_each_error_once_as_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_case(dir.path(), "two", TWO_PROBLEMS);
    let p = path.to_str().expect("utf-8 path");
    for args in [&["--config", p][..], &["check-config", "--config", p][..]] {
        let (stdout, stderr, code) = run(args, &[("LOG_FORMAT", "json")]);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stdout, "");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        let v: serde_json::Value = serde_json::from_str(&stderr).expect("one JSON object");
        let mut v = v.as_object().expect("an object").clone();
        let timestamp = v.remove("timestamp").expect("a timestamp");
        assert!(
            humantime::parse_rfc3339(timestamp.as_str().expect("text")).is_ok(),
            "{timestamp}"
        );
        assert_eq!(
            serde_json::Value::Object(v),
            serde_json::json!({
                "level": "ERROR",
                "message": format!("config file {p} is not valid"),
                "file": p,
                "problems": [
                    {
                        "path": "announcer.routes[0]",
                        "line": 7,
                        "column": 7,
                        "message": "10.0.0.128/24 has host bits set; did you mean 10.0.0.0/24?"
                    },
                    {
                        "path": "services[0].rise",
                        "line": 18,
                        "column": 11,
                        "message": "must be at least 1"
                    }
                ]
            }),
            "{args:?}"
        );
    }
    // A file that cannot be read: its message, no problems.
    let missing = dir.path().join("absent.yaml");
    let m = missing.to_str().expect("utf-8 path");
    let (_, stderr, code) = run(&["check-config", "--config", m], &[("LOG_FORMAT", "json")]);
    assert_eq!(code, Some(2));
    let v: serde_json::Value = serde_json::from_str(&stderr).expect("one JSON object");
    assert_eq!(
        v["message"],
        format!(
            "config file {m} does not exist: give the config's path with --config FILE or the CONFIG_PATH environment variable (without either, /config.yaml is read)"
        )
    );
    assert_eq!(v["file"], m);
    // And an error of the environment, in the format asked for.
    let (_, stderr, code) = run(
        &["check-config", "--config", m],
        &[("LOG_FORMAT", "json"), ("LOG_LEVEL", "loud")],
    );
    assert_eq!(code, Some(2));
    let v: serde_json::Value = serde_json::from_str(&stderr).expect("one JSON object");
    assert_eq!(
        v["message"],
        "LOG_LEVEL=\"loud\" is not a log level; use one of TRACE, DEBUG, INFO, WARNING, WARN, ERROR, FATAL, PANIC"
    );
}

/// `check-config` prints each warning once, in its summary on stdout; nothing on stderr.
#[test]
fn check_config_prints_each_warning_once() {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/seed.yaml");
    let (stdout, stderr, code) = run(&["check-config", "--config", seed], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stderr, "");
    let warning = "services[0].checks[4] (icmp_ping): its worst case (15s200ms) is longer than the service's check_interval (10s): rounds will run back to back";
    assert_eq!(stdout.matches(warning).count(), 1, "{stdout}");
    assert!(
        stdout.contains(&format!("\nwarning  {warning}\n")),
        "{stdout}"
    );
}

/// A config file the daemon's user cannot read gets its own message (not "set
/// CONFIG_PATH"). As root the test drops the capabilities that bypass file permissions
/// (setpriv, util-linux), so that a file of mode 000 is refused as it is to any user.
#[test]
fn an_unreadable_config_says_whose_permission_is_missing() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, SEED_YAML).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let p = path.to_str().expect("utf-8 path");
    let bin = env!("CARGO_BIN_EXE_anycastd");
    let uid = rustix::process::getuid().as_raw();
    let mut cmd = if uid == 0 {
        let mut c = Command::new("setpriv");
        c.args(["--bounding-set=-all", bin]);
        c
    } else {
        Command::new(bin)
    };
    let out = cmd
        .args(["check-config", "--config", p])
        .env_remove("LOG_FORMAT")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run setpriv ({e}): install util-linux (apt-get install util-linux)")
        });
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "anycastd: config file {p} cannot be read by user id {uid}, which anycastd runs as (permission denied): give that user read access to the file and search access to its directories, e.g. through the file's group and chmod 640\n"
        )
    );
    assert_eq!(out.status.code(), Some(2));
}

/// Issue 25's mistakes in the new kinds' specs stop the binary, daemon and check-config
/// alike, with exit code 2 and the same message.
#[test]
fn the_new_kinds_mistakes_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut seen = 0;
    for (name, input, want) in cases() {
        let new_kind = [
            "tcp ",
            "grpc ",
            "ntp ",
            "dns unknown",
            "dns record",
            "dns max_serial",
            "dns soa",
            "dns expect",
        ]
        .iter()
        .any(|p| name.starts_with(p));
        if !new_kind {
            continue;
        }
        let path = make(dir.path(), &name.replace(' ', "_"), &input);
        let p = path.to_str().expect("utf-8 path");
        let want = format!("anycastd: {}\n", want.replace("{file}", p));
        for args in [&["check-config", "--config", p][..], &["--config", p][..]] {
            let (_, stderr, code) = run(args, &[]);
            assert_eq!(
                (code, stderr.as_str()),
                (Some(2), want.as_str()),
                "{name}: {args:?}"
            );
        }
        seen += 1;
    }
    assert_eq!(seen, 13, "the cases of issue 25");
}
