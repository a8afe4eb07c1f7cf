//! Issue 10, item 6: the config file against hostile input, in every CI run. At least
//! 10,000 inputs go through the parser and the validator in-process (and, when valid,
//! through the building of every check, as the daemon does at start): none may panic or
//! take longer than [`PER_INPUT`]. A sample of a few hundred also goes through the real
//! `anycastd check-config`, which must exit 0 or 2, in time and within a memory ceiling.
//!
//! The inputs: byte and line mutations of the example configs (testdata/seed.yaml and
//! seed.json, deploy/config.yaml, README.md's config reference), configs made by a
//! structured generator with plausible and hostile values for every field, and hostile
//! shapes: deep nesting, huge strings, alias bombs, duplicate keys, bytes that are not
//! UTF-8, a file past the size limit.
//!
//! Deterministic: the seed is printed, and `FUZZ_SEED=<n>` replays a run; `FUZZ_CASES=<n>`
//! runs more (or fewer) in-process inputs. A failing input is written to
//! `target/config-fuzz-failure.*` and named in the message.

pub mod common {
    pub mod procfs;
}

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anycastd::check::probe::CheckContext;
use anycastd::config::{self, Format};
use anycastd::metrics::Metrics;
use common::procfs;

/// In-process inputs per run.
const CASES: usize = 10_000;
/// Inputs also run through the real binary.
const BINARY_SAMPLE: usize = 300;
/// No input may take longer than this in-process (a debug build; most take well under 1 ms).
const PER_INPUT: Duration = Duration::from_secs(10);
/// Nor longer than this through the binary.
const PER_RUN: Duration = Duration::from_secs(20);
/// Nor may the binary's resident memory pass this.
const MEMORY_CEILING_MIB: u64 = 1024;

/// A small, fast, deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

/// One input: its bytes, the format it is read as, and how it was made.
struct Input {
    bytes: Vec<u8>,
    format: Format,
    how: String,
}

impl Input {
    fn extension(&self) -> &'static str {
        match self.format {
            Format::Yaml => "yaml",
            Format::Json => "json",
        }
    }
}

fn seeds() -> Vec<(String, Vec<u8>, Format)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read(root.join(p)).unwrap_or_else(|e| panic!("read {p}: {e}"));
    let readme = String::from_utf8(read("README.md")).expect("README.md is UTF-8");
    let reference = readme
        .split_once("## Config reference")
        .and_then(|(_, after)| after.split_once("```yaml\n"))
        .and_then(|(_, block)| block.split_once("```"))
        .map(|(block, _)| block.to_string())
        .expect("README.md has a yaml block under `## Config reference`");
    vec![
        (
            "testdata/seed.yaml".into(),
            read("testdata/seed.yaml"),
            Format::Yaml,
        ),
        (
            "testdata/seed.json".into(),
            read("testdata/seed.json"),
            Format::Json,
        ),
        (
            "deploy/config.yaml".into(),
            read("deploy/config.yaml"),
            Format::Yaml,
        ),
        (
            "README reference".into(),
            reference.into_bytes(),
            Format::Yaml,
        ),
    ]
}

/// Values for one type of field: `ok` parse (the first is valid; many others are not: 0,
/// 1ns, host bits set, ...), `bad` do not.
struct Pool {
    ok: &'static [&'static str],
    bad: &'static [&'static str],
}

const DURATION: Pool = Pool {
    ok: &[
        "1s", "0s", "1ns", "9ms", "10ms", "99ms", "100ms", "10s", "1m30s", "1000y", "1us",
    ],
    bad: &[
        "1001y",
        "10",
        "-1s",
        "1e3s",
        "\"\"",
        "5 s",
        "18446744073709551615s",
        "1h1h",
        "ten",
    ],
};
const U32: Pool = Pool {
    ok: &["1", "0", "2", "3", "65535", "4294967295"],
    bad: &[
        "-1",
        "4294967296",
        "1e400",
        ".nan",
        "true",
        "null",
        "[]",
        "0x10",
    ],
};
const U16: Pool = Pool {
    ok: &["179", "0", "1", "65535"],
    bad: &["65536", "-1", "x"],
};
const U8: Pool = Pool {
    ok: &["0", "1", "255"],
    bad: &["256", "-1"],
};
const I32: Pool = Pool {
    ok: &["-1", "0", "179", "65535", "65536", "-2", "2147483647"],
    bad: &["2147483648", "x"],
};
const F64: Pool = Pool {
    ok: &["0", "0.5", "100", "101", "-1", ".nan", ".inf"],
    bad: &["x", "[]"],
};
const BOOL: Pool = Pool {
    ok: &["true", "false"],
    bad: &["maybe", "yes", "1"],
};
const IPV4: Pool = Pool {
    ok: &["127.0.0.1", "0.0.0.0", "255.255.255.255", "10.0.0.1"],
    bad: &["1.2.3", "::1", "localhost", "300.1.1.1", "\"\""],
};
const IPV6: Pool = Pool {
    ok: &["::1", "2001:db8::1", "\"::\"", "\"::ffff:1.2.3.4\""],
    bad: &["127.0.0.1", "2001:db8::g"],
};
const IP: Pool = Pool {
    ok: &["127.0.0.1", "0.0.0.0", "10.0.0.252", "::1", "2001:db8::1"],
    bad: &["1.2.3", "localhost"],
};
const PREFIX: Pool = Pool {
    ok: &[
        "10.0.0.128/32",
        "10.0.0.0/24",
        "10.0.0.1/24",
        "0.0.0.0/0",
        "2001:db8:100::/48",
        "\"::/0\"",
        "192.0.2.0/24",
    ],
    bad: &["10.0.0.1", "x", "10.0.0.0/33"],
};
const STRING: Pool = Pool {
    ok: &[
        "web",
        "\"\"",
        "\" \"",
        "a b",
        "é",
        "\"\\n\"",
        "'quoted'",
        "&anchor x",
        "\"\\u0000\"",
    ],
    bad: &["*undefined", "[a", "{a: 1}"],
};
const HOST_PORT: Pool = Pool {
    ok: &[
        "127.0.0.1:50051",
        "\"[::1]:443\"",
        "example.org:443",
        "example.org",
        "\":443\"",
        "\"h:0\"",
        "\"h:65536\"",
        "\"\"",
    ],
    bad: &["[a]"],
};
const SOCKET: Pool = Pool {
    ok: &["127.0.0.1:9090", "\"[::1]:9090\"", "0.0.0.0:0"],
    bad: &["localhost:9090", "127.0.0.1"],
};
const URL: Pool = Pool {
    ok: &[
        "http://127.0.0.1:8080/health",
        "\"https://[::1]:8443/\"",
        "ftp://127.0.0.1/",
        "tftp://127.0.0.1:69/pxelinux.0",
        "tftp://127.0.0.1/",
        "tftp://:69/x",
        "not a url",
        "\"\"",
        "http://",
        "http://h:99999/",
    ],
    bad: &["[x"],
};
const TFTP_URL: Pool = Pool {
    ok: &[
        "tftp://127.0.0.1:69/pxelinux.0",
        "tftp://127.0.0.1/",
        "tftp://:69/x",
        "http://127.0.0.1/",
        "\"\"",
    ],
    bad: &["[x"],
};
const PATH: Pool = Pool {
    ok: &[
        "/etc/hostname",
        "/dev/zero",
        "/dev/null",
        "/nonexistent/x",
        "/proc/self/status",
        "/",
        "\"\"",
        "relative.pem",
    ],
    bad: &["[]"],
};

/// A value of `pool`: rarely one that does not parse, or one of another type.
fn value(rng: &mut Rng, pool: &Pool) -> String {
    // Per mille: a config has some 40 values, and most should parse.
    let roll = rng.below(1000);
    if roll < 3 {
        let all = [&DURATION, &U32, &IP, &STRING, &URL, &BOOL];
        let other = all[rng.below(all.len())];
        let both: Vec<&str> = other.ok.iter().chain(other.bad).copied().collect();
        both[rng.below(both.len())].to_string()
    } else if roll < 6 {
        rng.pick(pool.bad).to_string()
    } else if roll < 750 {
        pool.ok[0].to_string()
    } else {
        rng.pick(pool.ok).to_string()
    }
}

/// A name: mostly a fresh one (names must be unique), else a hostile one.
fn name(rng: &mut Rng) -> String {
    if rng.chance(80) {
        format!("n{}", rng.below(1_000_000))
    } else {
        value(rng, &STRING)
    }
}

/// A prefix: mostly a fresh host route (a prefix may appear once), else a hostile one.
fn prefix(rng: &mut Rng) -> String {
    if rng.chance(80) {
        format!("192.0.{}.{}/32", rng.below(256), rng.below(256))
    } else {
        value(rng, &PREFIX)
    }
}

/// A `key: value` line of `indent`; left out 30 % of the time (a field with a default).
fn field(rng: &mut Rng, out: &mut String, indent: &str, key: &str, pool: &Pool) {
    if rng.chance(70) {
        out.push_str(&format!("{indent}{key}: {}\n", value(rng, pool)));
    }
}

/// A required `key: value` line: left out 1 % of the time.
fn required(rng: &mut Rng, out: &mut String, indent: &str, key: &str, pool: &Pool) {
    if rng.chance(99) {
        out.push_str(&format!("{indent}{key}: {}\n", value(rng, pool)));
    }
}

/// `key:` and a list of `n` items made by `item`, or `key: []`.
fn list(out: &mut String, indent: &str, key: &str, n: usize, mut item: impl FnMut(&mut String)) {
    if n == 0 {
        out.push_str(&format!("{indent}{key}: []\n"));
    } else {
        out.push_str(&format!("{indent}{key}:\n"));
        for _ in 0..n {
            item(out);
        }
    }
}

/// A config built field by field, with plausible and hostile values for each.
fn structured(rng: &mut Rng) -> String {
    let mut s = String::from("announcer:\n");
    let a = "  ";
    required(rng, &mut s, a, "router_id", &IPV4);
    required(rng, &mut s, a, "local_address", &IP);
    required(rng, &mut s, a, "local_asn", &U32);
    field(rng, &mut s, a, "listen_port", &I32);
    if rng.chance(40) {
        field(rng, &mut s, a, "next_hop", &IPV4);
    }
    if rng.chance(40) {
        field(rng, &mut s, a, "next_hop_ipv6", &IPV6);
    }
    let n = rng.below(4);
    list(&mut s, a, "routes", n, |s| {
        s.push_str(&format!("    - {}\n", prefix(rng)));
    });
    let n = rng.below(3);
    list(&mut s, a, "peers", n, |s| peer(rng, s));
    s.push_str("  gobgp:\n");
    let g = "    ";
    field(rng, &mut s, g, "address", &HOST_PORT);
    field(rng, &mut s, g, "reconcile_interval", &DURATION);
    field(rng, &mut s, g, "peer_poll_interval", &DURATION);
    field(rng, &mut s, g, "timeout", &DURATION);
    let n = if rng.chance(5) { 0 } else { 1 + rng.below(3) };
    list(&mut s, "", "services", n, |s| service(rng, s));
    if rng.chance(70) {
        s.push_str("metrics:\n");
        s.push_str(&format!("  enabled: {}\n", value(rng, &BOOL)));
        field(rng, &mut s, "  ", "address", &SOCKET);
    }
    s
}

/// One item of `services`.
fn service(rng: &mut Rng, s: &mut String) {
    s.push_str(&format!("  - name: {}\n", name(rng)));
    let v = "    ";
    required(rng, s, v, "check_interval", &DURATION);
    field(rng, s, v, "rise", &U32);
    field(rng, s, v, "fall", &U32);
    if rng.chance(50) {
        s.push_str(&format!("    routes: [{}]\n", prefix(rng)));
    }
    let n = if rng.chance(5) { 0 } else { 1 + rng.below(4) };
    list(s, v, "checks", n, |s| check(rng, s));
}

/// One item of `peers`.
fn peer(rng: &mut Rng, s: &mut String) {
    s.push_str(&format!("    - name: {}\n", name(rng)));
    let p = "      ";
    required(rng, s, p, "remote_address", &IP);
    required(rng, s, p, "remote_asn", &U32);
    if rng.chance(50) {
        field(rng, s, p, "remote_port", &U16);
    }
    if rng.chance(20) {
        field(rng, s, p, "password_file", &PATH);
    }
    field(rng, s, p, "multihop_ttl", &U8);
    field(rng, s, p, "passive", &BOOL);
}

/// One check of a random kind (or, rarely, an unknown one), with its spec.
fn check(rng: &mut Rng, s: &mut String) {
    let kinds = [
        "http_2xx",
        "dns_lookup",
        "icmp_ping",
        "assigned_address",
        "tftp_rrq",
        "tls_certificate",
        "tcp_connect",
        "ntp",
        "grpc_health",
    ];
    let kind = if rng.chance(2) {
        "smtp"
    } else {
        kinds[rng.below(kinds.len())]
    };
    s.push_str(&format!("      - kind: {kind}\n"));
    if rng.chance(50) {
        s.push_str(&format!("        name: {}\n", name(rng)));
    }
    s.push_str("        spec:\n");
    let f = "          ";
    let attempts = |rng: &mut Rng, s: &mut String| {
        field(rng, s, f, "tries", &U32);
        field(rng, s, f, "interval", &DURATION);
        field(rng, s, f, "timeout", &DURATION);
    };
    match kind {
        "http_2xx" => {
            required(rng, s, f, "url", &URL);
            let methods = Pool {
                ok: &["GET", "POST", "HEAD", "G ET", "\"\""],
                bad: &["[]"],
            };
            field(rng, s, f, "method", &methods);
            if rng.chance(40) {
                s.push_str(&format!(
                    "{f}headers:\n{f}  Host: {}\n",
                    value(rng, &STRING)
                ));
            }
            field(rng, s, f, "payload", &STRING);
            let paths = Pool {
                ok: &["/", "/health", "x", "\"\""],
                bad: &["[]"],
            };
            field(rng, s, f, "path", &paths);
            attempts(rng, s);
        }
        "dns_lookup" => {
            let names = Pool {
                ok: &["example.org", "127.0.0.1", "\"\"", "a..b", "localhost"],
                bad: &["[]"],
            };
            required(rng, s, f, "query", &names);
            if rng.chance(50) {
                field(rng, s, f, "resolver", &SOCKET);
            }
            let types = Pool {
                ok: &["A", "SOA", "TXT", "AAA", "txt", "\"\""],
                bad: &["[]"],
            };
            field(rng, s, f, "type", &types);
            let rcodes = Pool {
                ok: &["NOERROR", "NXDOMAIN", "NOERR", "0"],
                bad: &["{}"],
            };
            field(rng, s, f, "rcode", &rcodes);
            if rng.chance(30) {
                s.push_str(&format!("{f}expect: [{}]\n", value(rng, &STRING)));
            }
            if rng.chance(30) {
                field(rng, s, f, "soa_serial_of", &SOCKET);
            }
            field(rng, s, f, "max_serial_lag", &U32);
            attempts(rng, s);
        }
        "tcp_connect" | "grpc_health" => {
            required(rng, s, f, "address", &HOST_PORT);
            if kind == "tcp_connect" {
                field(rng, s, f, "send", &STRING);
                field(rng, s, f, "expect", &STRING);
            } else {
                field(rng, s, f, "service", &STRING);
            }
            if rng.chance(30) {
                s.push_str(&format!("{f}tls:\n"));
                let t = format!("{f}  ");
                field(rng, s, &t, "server_name", &STRING);
                field(rng, s, &t, "insecure", &BOOL);
            }
            attempts(rng, s);
        }
        "ntp" => {
            required(rng, s, f, "server", &HOST_PORT);
            field(rng, s, f, "max_offset", &DURATION);
            field(rng, s, f, "max_stratum", &U8);
            attempts(rng, s);
        }
        "icmp_ping" => {
            s.push_str(&format!("{f}static:\n{f}  host: {}\n", value(rng, &IP)));
            attempts(rng, s);
            field(rng, s, f, "max_loss_percent", &F64);
        }
        "assigned_address" => {
            let interfaces = Pool {
                ok: &["lo", "\"\"", "eth0"],
                bad: &["[]"],
            };
            field(rng, s, f, "interface", &interfaces);
            field(rng, s, f, "ipv4", &IPV4);
            field(rng, s, f, "ipv6", &IPV6);
        }
        "tftp_rrq" => {
            required(rng, s, f, "url", &TFTP_URL);
            let sums = Pool {
                ok: &[
                    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                    "xyz",
                    "\"\"",
                ],
                bad: &["[]"],
            };
            field(rng, s, f, "expected_sha256", &sums);
            attempts(rng, s);
        }
        "tls_certificate" => {
            // One of the two, mostly; both or neither is an error.
            let (local, remote) = match rng.below(20) {
                0 => (true, true),
                1 => (false, false),
                n => (n % 2 == 0, n % 2 == 1),
            };
            if local {
                s.push_str(&format!("{f}local:\n{f}  path: {}\n", value(rng, &PATH)));
            }
            if remote {
                s.push_str(&format!(
                    "{f}remote:\n{f}  host: {}\n",
                    value(rng, &HOST_PORT)
                ));
                let r = format!("{f}  ");
                field(rng, s, &r, "server_name", &STRING);
                field(rng, s, &r, "insecure", &BOOL);
                field(rng, s, &r, "timeout", &DURATION);
            }
            field(rng, s, f, "common_name", &STRING);
            field(rng, s, f, "min_valid_for", &DURATION);
        }
        _ => field(rng, s, f, "anything", &STRING),
    }
}

/// One to eight byte- or line-level mutations of `bytes` (mostly one or two).
fn mutate(
    rng: &mut Rng,
    mut bytes: Vec<u8>,
    others: &[Vec<u8>],
    how: &mut Vec<&'static str>,
) -> Vec<u8> {
    const INTERESTING: &[u8] = b":-[]{}\"'&*!|>#%@`,? \t\n\r\x00\xff";
    // Mostly one or two: every mutation more makes a parse error likelier.
    let n = if rng.chance(70) {
        1 + rng.below(2)
    } else {
        1 + rng.below(8)
    };
    for _ in 0..n {
        let len = bytes.len();
        let at = rng.below(len + 1);
        match rng.below(12) {
            0 if len > 0 => {
                let i = rng.below(len);
                bytes[i] ^= 1 << rng.below(8);
                how.push("bit flip");
            }
            1 if len > 0 => {
                let i = rng.below(len);
                bytes[i] = INTERESTING[rng.below(INTERESTING.len())];
                how.push("byte set");
            }
            2 => {
                let end = (at + rng.below(64)).min(len);
                bytes.drain(at..end);
                how.push("span deleted");
            }
            3 => {
                let end = (at + rng.below(256)).min(len);
                let copy = bytes[at..end].to_vec();
                let to = rng.below(bytes.len() + 1);
                bytes.splice(to..to, copy);
                how.push("span duplicated");
            }
            4..=6 => {
                // Line operations: duplicate (a duplicate key), delete, move, re-indent.
                let mut lines: Vec<Vec<u8>> =
                    bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
                let i = rng.below(lines.len());
                match rng.below(4) {
                    0 => {
                        let l = lines[i].clone();
                        lines.insert(i, l);
                        how.push("line duplicated");
                    }
                    1 => {
                        lines.remove(i);
                        how.push("line deleted");
                    }
                    2 => {
                        let l = lines.remove(i);
                        let j = rng.below(lines.len() + 1);
                        lines.insert(j, l);
                        how.push("line moved");
                    }
                    _ => {
                        let n = rng.below(8);
                        lines[i].splice(0..0, std::iter::repeat_n(b' ', n));
                        how.push("line indented");
                    }
                }
                bytes = lines.join(&b'\n');
            }
            7 => {
                // A line of another example spliced in.
                let other = &others[rng.below(others.len())];
                let lines: Vec<&[u8]> = other.split(|b| *b == b'\n').collect();
                let line = lines[rng.below(lines.len())];
                let at = bytes[..at]
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |p| p + 1);
                let mut ins = line.to_vec();
                ins.push(b'\n');
                bytes.splice(at..at, ins);
                how.push("line spliced");
            }
            8 | 9 => {
                // The value after a `: ` replaced by a hostile one.
                let colons: Vec<usize> = bytes
                    .windows(2)
                    .enumerate()
                    .filter(|(_, w)| w == b": ")
                    .map(|(i, _)| i + 2)
                    .collect();
                if let Some(&start) = colons.get(rng.below(colons.len().max(1))) {
                    let end = bytes[start..]
                        .iter()
                        .position(|b| matches!(b, b'\n' | b',' | b'}'))
                        .map_or(bytes.len(), |p| start + p);
                    let pools = [&DURATION, &U32, &IP, &STRING, &PATH, &PREFIX];
                    let pool = pools[rng.below(pools.len())];
                    let v = value(rng, pool).into_bytes();
                    bytes.splice(start..end, v);
                    how.push("value replaced");
                }
            }
            10 => {
                let n = rng.below(16);
                let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                bytes.splice(at..at, junk);
                how.push("random bytes");
            }
            _ => {
                bytes.truncate(at);
                how.push("truncated");
            }
        }
    }
    bytes
}

/// The hostile shapes run at full size once per run (after the random inputs); random
/// inputs use them at a smaller size.
const FULL_SIZE: &[usize] = &[0, 1, 2, 3, 4, 5, 8];

/// Shape `which` of the ones that target the parser's limits rather than the config's
/// meaning; `full`: a million levels deep, 8 MiB long.
fn hostile(rng: &mut Rng, seed_yaml: &[u8], which: usize, full: bool) -> Input {
    let yaml = |bytes: Vec<u8>, how: &str| Input {
        bytes,
        format: Format::Yaml,
        how: how.to_string(),
    };
    let depth = if full {
        1_000_000
    } else {
        [64, 1_000, 10_000][rng.below(3)]
    };
    match which {
        0 => yaml(
            format!("announcer: {}", "[".repeat(depth)).into_bytes(),
            &format!("{depth} nested flow sequences"),
        ),
        1 => yaml(
            format!("announcer: {}", "{a: ".repeat(depth)).into_bytes(),
            &format!("{depth} nested flow maps"),
        ),
        2 => {
            let mut s = String::from("announcer:\n");
            for i in 0..depth.min(if full { 10_000 } else { 1_000 }) {
                s.push_str(&" ".repeat(i + 2));
                s.push_str("a:\n");
            }
            yaml(s.into_bytes(), "deeply indented block maps")
        }
        3 => Input {
            bytes: "[".repeat(depth).into_bytes(),
            format: Format::Json,
            how: format!("{depth} nested JSON arrays"),
        },
        4 => {
            let size = if full {
                8 << 20
            } else {
                [1 << 10, 64 << 10][rng.below(2)]
            };
            let text = String::from_utf8_lossy(seed_yaml).replacen(
                "name: http",
                &format!("name: {}", "x".repeat(size)),
                1,
            );
            yaml(text.into_bytes(), &format!("a {size}-byte service name"))
        }
        5 => {
            // A billion laughs: each level refers to the previous one ten times.
            let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
            let levels = if full { 12 } else { 1 + rng.below(6) };
            for i in 1..levels {
                let p = i - 1;
                s.push_str(&format!(
                    "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
                ));
            }
            s.push_str(&format!("announcer: *a{}\n", levels - 1));
            yaml(s.into_bytes(), "alias bomb")
        }
        6 => {
            let mut bytes = seed_yaml.to_vec();
            bytes.extend_from_slice(b"announcer:\n  router_id: 1.2.3.4\nservices: []\n");
            yaml(bytes, "duplicate top-level keys")
        }
        7 => {
            let n = rng.below(4096);
            yaml((0..n).map(|_| rng.next() as u8).collect(), "random bytes")
        }
        8 => yaml(
            format!("announcer: {{{}}}", "k: v, ".repeat(depth.min(200_000))).into_bytes(),
            "a map of many duplicate keys",
        ),
        _ => yaml(
            format!("{}\n", "a: !!binary aGVsbG8=\n".repeat(rng.below(100))).into_bytes(),
            "binary tags",
        ),
    }
}

/// Makes input number `i`.
fn make(rng: &mut Rng, seeds: &[(String, Vec<u8>, Format)], others: &[Vec<u8>]) -> Input {
    let roll = rng.below(100);
    if roll < 3 {
        let which = rng.below(10);
        return hostile(rng, &seeds[0].1, which, false);
    }
    let mut how = Vec::new();
    let (name, base, format) = if roll < 40 {
        let (name, bytes, format) = &seeds[rng.below(seeds.len())];
        (name.clone(), bytes.clone(), *format)
    } else {
        (
            "structured".to_string(),
            structured(rng).into_bytes(),
            Format::Yaml,
        )
    };
    // Structured configs are also tried as they are; examples always get mutated.
    let bytes = if name == "structured" && rng.chance(50) {
        base
    } else {
        mutate(rng, base, others, &mut how)
    };
    Input {
        bytes,
        format,
        how: format!("{name}: {}", how.join(", ")),
    }
}

/// What the in-process run of one input found.
#[derive(Debug, Default)]
struct Tally {
    parsed: usize,
    valid: usize,
}

/// Parses, validates and (when valid) builds every check of `input`, as the daemon would.
fn run_in_process(input: &Input, tally: &mut Tally) -> Result<(), String> {
    let Ok(text) = std::str::from_utf8(&input.bytes) else {
        return Ok(()); // `load` refuses it before parsing (the binary sample covers it)
    };
    let Ok(cfg) = config::parse(text, input.format) else {
        return Ok(());
    };
    tally.parsed += 1;
    if cfg.validate().is_err() {
        return Ok(());
    }
    tally.valid += 1;
    let metrics = Metrics::new();
    for (s, svc) in cfg.services.iter().enumerate() {
        for (c, chk) in svc.checks.iter().enumerate() {
            let ctx = CheckContext {
                service: svc.name.clone(),
                check: chk.name.clone(),
                metrics: metrics.clone(),
            };
            anycastd::check::build(&chk.spec, &ctx).map_err(|e| {
                format!("services[{s}].checks[{c}] passed validation but does not build: {e}")
            })?;
        }
    }
    Ok(())
}

/// Writes a failing input next to the build for a human to replay.
fn keep(input: &Input) -> String {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("config-fuzz-failure.{}", input.extension()));
    let _ = std::fs::write(&path, &input.bytes);
    path.display().to_string()
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn hostile_configs_never_panic_hang_or_exit_other_than_0_or_2() {
    let seed = env_number("FUZZ_SEED").unwrap_or(0x00ac_ca57_d0c0_f1f5);
    let cases = env_number("FUZZ_CASES").map_or(CASES, |n| n as usize);
    eprintln!("config fuzz: seed {seed} (replay with FUZZ_SEED={seed}), {cases} inputs");
    let seeds = seeds();
    let others: Vec<Vec<u8>> = seeds.iter().map(|(_, b, _)| b.clone()).collect();
    let mut rng = Rng(seed);

    // The inputs run on a thread with the stack of a main thread (8 MiB), as the parser
    // does in the binary; this thread watches the clock.
    let (to_worker, inputs) = mpsc::channel::<Input>();
    let (to_main, results) = mpsc::channel::<(Input, Result<(), String>, Duration)>();
    let worker = std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let _in_runtime = rt.enter();
            let mut tally = Tally::default();
            for input in inputs {
                let start = Instant::now();
                let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    run_in_process(&input, &mut tally)
                }))
                .unwrap_or_else(|p| {
                    Err(format!(
                        "panicked: {}",
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default()
                    ))
                });
                if to_main.send((input, r, start.elapsed())).is_err() {
                    break;
                }
            }
            tally
        })
        .expect("start the worker");

    let start = Instant::now();
    let mut sample = Vec::new();
    let (mut spread, mut sampled_hostile) = (0, 0);
    let mut slowest = (Duration::ZERO, String::new());
    for i in 0..cases + FULL_SIZE.len() {
        let input = match i.checked_sub(cases) {
            None => make(&mut rng, &seeds, &others),
            Some(k) => hostile(&mut rng, &seeds[0].1, FULL_SIZE[k], true),
        };
        to_worker.send(input).expect("the worker runs");
        let (input, result, took) = match results.recv_timeout(PER_INPUT) {
            Ok(r) => r,
            Err(_) => panic!("input {i} took longer than {PER_INPUT:?} (a hang?)"),
        };
        if let Err(e) = result {
            panic!("input {i} ({}, kept in {}): {e}", input.how, keep(&input));
        }
        if took > slowest.0 {
            slowest = (took, input.how.clone());
        }
        // An even spread of the inputs also goes through the binary, and so do the first
        // hostile shapes (which are the only `how`s without a colon) and the full-size ones.
        let hostile = !input.how.contains(':');
        if (i % (2 * cases / BINARY_SAMPLE).max(1) == 0 && spread < BINARY_SAMPLE / 2)
            || (hostile && sampled_hostile < BINARY_SAMPLE / 2)
            || i >= cases
        {
            if hostile {
                sampled_hostile += 1;
            } else {
                spread += 1;
            }
            sample.push(input);
        }
    }
    drop(to_worker);
    let tally = worker.join().expect("the worker ends");
    eprintln!(
        "in-process: {} inputs in {:?}: {} parsed, {} valid; slowest {:?} ({})",
        cases + FULL_SIZE.len(),
        start.elapsed(),
        tally.parsed,
        tally.valid,
        slowest.0,
        slowest.1
    );
    assert!(
        tally.valid >= cases / 50,
        "too few valid configs ({}): the generator no longer reaches the validator's far end",
        tally.valid
    );

    // Inputs `load` sees and `parse` does not: not UTF-8, past the size limit, empty.
    sample.push(Input {
        bytes: vec![b'#', 0xff, 0xfe, b'\n'],
        format: Format::Yaml,
        how: "not UTF-8".into(),
    });
    sample.push(Input {
        bytes: vec![b' '; (config::MAX_CONFIG_BYTES + 1) as usize],
        format: Format::Yaml,
        how: "one byte past the size limit".into(),
    });
    sample.push(Input {
        bytes: Vec::new(),
        format: Format::Json,
        how: "empty".into(),
    });
    run_binary_sample(sample);
}

/// `anycastd check-config` on each input, two at a time: exit 0 or 2, never a panic, in
/// time and within the memory ceiling.
fn run_binary_sample(sample: Vec<Input>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let start = Instant::now();
    let n = sample.len();
    let (mut valid, mut invalid) = (0, 0);
    let chunks: Vec<Vec<(usize, Input)>> = {
        let mut c = vec![Vec::new(), Vec::new()];
        for (i, input) in sample.into_iter().enumerate() {
            c[i % 2].push((i, input));
        }
        c
    };
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let dir = dir.path();
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for (i, input) in chunk {
                        let path = dir.join(format!("input-{i}.{}", input.extension()));
                        std::fs::write(&path, &input.bytes).expect("write the input");
                        let mut cmd = Command::new(env!("CARGO_BIN_EXE_anycastd"));
                        cmd.arg("check-config").arg("--config").arg(&path);
                        let r = procfs::run_bounded(cmd, PER_RUN, MEMORY_CEILING_MIB);
                        let _ = std::fs::remove_file(&path);
                        out.push((input, r));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a sample thread"))
            .collect::<Vec<_>>()
    });
    let mut slowest = (Duration::ZERO, String::new());
    for (input, r) in results {
        let code = r.status.and_then(|s| s.code());
        let ok = r.killed.is_none()
            && matches!(code, Some(0) | Some(2))
            && !r.stderr.contains("panicked");
        assert!(
            ok,
            "check-config on an input ({}, kept in {}): exit {code:?}, {:?}, peak {} MiB, killed: {:?}\nstderr: {}",
            input.how,
            keep(&input),
            r.elapsed,
            r.peak_rss_mib,
            r.killed,
            r.stderr.chars().take(2000).collect::<String>()
        );
        if code == Some(0) {
            valid += 1;
        } else {
            invalid += 1;
        }
        if r.elapsed > slowest.0 {
            slowest = (r.elapsed, input.how.clone());
        }
    }
    eprintln!(
        "binary: {n} runs of check-config in {:?}: {valid} exit 0, {invalid} exit 2; slowest {:?} ({})",
        start.elapsed(),
        slowest.0,
        slowest.1
    );
}
