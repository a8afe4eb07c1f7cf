//! The config file: YAML or JSON in, a validated [`Config`] out.
//!
//! Parsing is strict: unknown keys are errors, durations need a unit, and every error names
//! the path of the bad field (`services[0].checks[2].spec.url`), with line and column for
//! YAML. Cross-field rules (unique names, prefixes in one place only, next hops for the
//! families in use, ...) run after parsing and report every problem at once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::attributes::{Attributes, AttributesConfig};
use crate::check::{self, CheckSpec};
pub use crate::duration::{Dur, MAX_DURATION, parse_duration};
use crate::fleet::FleetConfig;
pub use crate::problem::Problem;
use crate::watch::WatchSpec;

/// Where the config is read from when neither `--config` nor `CONFIG_PATH` says.
pub const DEFAULT_PATH: &str = "/config.yaml";

/// The whole, validated configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub announcer: AnnouncerConfig,
    pub services: Vec<ServiceConfig>,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub control: ControlConfig,
    /// The fleet guard (SPEC 14); none: every site decides alone.
    #[serde(default)]
    pub fleet: Option<FleetConfig>,
}

/// The control socket of `anycastd drain`, `undrain` and `reload` (SPEC 12).
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// A Unix socket, mode 0660. Nothing that changes routes listens on TCP.
    #[serde(default = "default_control_socket")]
    pub socket: PathBuf,
}

/// Where the control socket is when the config does not say.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/anycastd/anycastd.sock";

fn default_control_socket() -> PathBuf {
    PathBuf::from(DEFAULT_CONTROL_SOCKET)
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            socket: default_control_socket(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnnouncerConfig {
    pub router_id: Ipv4Addr,
    pub local_address: IpAddr,
    #[schemars(range(min = 1, max = 4294967295u32))]
    pub local_asn: u32,
    /// `-1`: gobgpd makes outgoing sessions only.
    #[serde(default = "default_listen_port")]
    pub listen_port: i32,
    /// Next hop of IPv4 routes; `local_address` when that is IPv4.
    #[serde(default)]
    pub next_hop: Option<Ipv4Addr>,
    /// Next hop of IPv6 routes; `local_address` when that is IPv6.
    #[serde(default)]
    pub next_hop_ipv6: Option<Ipv6Addr>,
    /// Prefixes announced only while every service is up.
    #[serde(default, deserialize_with = "prefixes")]
    #[schemars(with = "Vec<crate::schema::Prefix>")]
    pub routes: Vec<IpNet>,
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    #[serde(default)]
    pub gobgp: GobgpConfig,
    /// How routes are announced in each state (SPEC 10); a service's own replace these.
    #[serde(default)]
    pub attributes: AttributesConfig,
    /// How long a route leaving for another reason than failing health (drain, shutdown,
    /// reload) keeps its `draining` attributes before it is withdrawn.
    #[serde(default = "default_drain_linger")]
    pub drain_linger: Dur,
    /// Every service is drained while this file exists.
    #[serde(default)]
    pub drain_file: Option<PathBuf>,
    /// Where `anycastd drain` is remembered across restarts.
    #[serde(default = "default_state_directory")]
    pub state_directory: PathBuf,
}

fn default_state_directory() -> PathBuf {
    PathBuf::from("/var/lib/anycastd")
}

fn default_drain_linger() -> Dur {
    Dur::secs(5)
}

fn default_listen_port() -> i32 {
    -1
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub name: String,
    pub remote_address: IpAddr,
    #[schemars(range(min = 1, max = 4294967295u32))]
    pub remote_asn: u32,
    #[serde(default)]
    pub remote_port: Option<u16>,
    /// File holding the TCP-MD5 secret; read at start, never logged.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// `0`: no eBGP multihop.
    #[serde(default)]
    pub multihop_ttl: u8,
    #[serde(default)]
    pub passive: bool,
    /// BGP hold time: 0 (no keepalives) or at least 3s, whole seconds.
    #[serde(default = "default_hold_time")]
    pub hold_time: Dur,
    /// Default: a third of `hold_time`.
    #[serde(default)]
    pub keepalive_interval: Option<Dur>,
    /// Wait between attempts to open the session.
    #[serde(default = "default_connect_retry")]
    pub connect_retry: Dur,
}

fn default_hold_time() -> Dur {
    Dur::secs(90)
}
fn default_connect_retry() -> Dur {
    // GoBGP's own default (120 s, then a random extra of up to as much) would keep a
    // session down for minutes after the router restarts.
    Dur::secs(5)
}

impl PeerConfig {
    /// The keepalive interval in force: as given, or a third of the hold time.
    pub fn keepalive(&self) -> Dur {
        self.keepalive_interval
            .unwrap_or(Dur(Duration::from_secs(self.hold_time.0.as_secs() / 3)))
    }
}

/// The largest `password_file` read (a TCP-MD5 key is at most 80 bytes).
pub const MAX_PASSWORD_BYTES: u64 = 4096;

/// The TCP-MD5 secret in `password_file`, without its trailing line break.
pub fn read_password_file(file: &Path) -> Result<String, crate::small_file::ReadError> {
    let s = crate::small_file::read_to_string(file, MAX_PASSWORD_BYTES)?;
    Ok(s.trim_end_matches(['\r', '\n']).to_string())
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GobgpConfig {
    /// gobgpd's gRPC API, `host:port`.
    #[serde(default = "default_gobgp_address")]
    pub address: String,
    /// How often the wanted paths are compared with gobgpd's RIB.
    #[serde(default = "default_reconcile_interval")]
    pub reconcile_interval: Dur,
    /// How often `ListPeer` is polled for the peer metrics.
    #[serde(default = "default_peer_poll_interval")]
    pub peer_poll_interval: Dur,
    /// Bound on every gRPC call to gobgpd.
    #[serde(default = "default_rpc_timeout")]
    pub timeout: Dur,
}

fn default_gobgp_address() -> String {
    "127.0.0.1:50051".to_string()
}
fn default_reconcile_interval() -> Dur {
    Dur(Duration::from_secs(5))
}
fn default_peer_poll_interval() -> Dur {
    Dur(Duration::from_secs(5))
}
fn default_rpc_timeout() -> Dur {
    Dur(Duration::from_secs(3))
}

impl Default for GobgpConfig {
    fn default() -> Self {
        GobgpConfig {
            address: default_gobgp_address(),
            reconcile_interval: default_reconcile_interval(),
            peer_poll_interval: default_peer_poll_interval(),
            timeout: default_rpc_timeout(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub name: String,
    pub check_interval: Dur,
    /// How often rounds run while the state is in doubt (a round disagreed with it); at
    /// most check_interval; default check_interval.
    #[serde(default)]
    pub fast_interval: Option<Dur>,
    #[serde(default = "one")]
    pub rise: u32,
    #[serde(default = "one")]
    pub fall: u32,
    /// Prefixes announced only while this service is up.
    #[serde(default, deserialize_with = "prefixes")]
    #[schemars(with = "Vec<crate::schema::Prefix>")]
    pub routes: Vec<IpNet>,
    /// Replace `announcer.attributes` for this service's own routes.
    #[serde(default)]
    pub attributes: Option<AttributesConfig>,
    /// The service is drained while this file exists.
    #[serde(default)]
    pub drain_file: Option<PathBuf>,
    /// Events that start a round at once: `tcp: HOST:PORT` (a connection held open) or
    /// `pid_file: PATH` (the process it names); the checks still decide.
    #[serde(default)]
    pub watch: Vec<WatchSpec>,
    pub checks: Vec<CheckConfig>,
}

impl ServiceConfig {
    /// The pace of rounds while the state is in doubt.
    pub fn fast_interval(&self) -> Duration {
        self.fast_interval.unwrap_or(self.check_interval).0
    }

    /// What is wrong with `fast_interval`, path relative to the service.
    fn fast_interval_problem(&self) -> Option<Problem> {
        let fast = self.fast_interval?;
        if let Err(m) = fast.at_least(MIN_CHECK_INTERVAL) {
            Some(Problem::new(
                "fast_interval",
                format!("{m} (or leave it out to keep check_interval)"),
            ))
        } else if fast > self.check_interval && self.check_interval >= MIN_CHECK_INTERVAL {
            Some(Problem::new(
                "fast_interval",
                format!(
                    "{fast} is longer than check_interval ({}); it must be at most that, e.g. {}",
                    self.check_interval,
                    Dur(self.check_interval.0 / 10)
                ),
            ))
        } else {
            None
        }
    }

    /// Whether any of its checks degrades rather than withdraws.
    pub fn has_degrade_checks(&self) -> bool {
        self.checks
            .iter()
            .any(|c| c.on_failure == OnFailure::Degrade)
    }
}

fn one() -> u32 {
    1
}

/// One check of a service: `kind`, optional `name` (default: the kind), `on_failure` and
/// the kind's `spec`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckConfig {
    pub name: String,
    pub on_failure: OnFailure,
    pub spec: CheckSpec,
}

impl fmt::Display for OnFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnFailure::Withdraw => "withdraw",
            OnFailure::Degrade => "degrade",
        })
    }
}

/// What a failing check does to its service (SPEC 9).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// The seed's behaviour: `fall` failing rounds take the service down.
    #[default]
    Withdraw,
    /// `fall` failing rounds make an up service *degraded*: still announced, with the
    /// `degraded` attributes.
    Degrade,
}

impl CheckConfig {
    pub fn kind(&self) -> &'static str {
        self.spec.kind()
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "default_metrics_address")]
    pub address: SocketAddr,
}

fn yes() -> bool {
    true
}
fn default_metrics_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            address: default_metrics_address(),
        }
    }
}

// Lower bounds of the durations. Below them a loop spins rather than waits: `1ns` for
// check_interval, reconcile_interval and timeout kept anycastd at 78 % of a core and gobgpd
// at 96 % (issue 10), without detecting or repairing anything sooner. At the bounds (release
// build, one service with an http_2xx and an assigned_address check, 3 prefixes):
// check_interval 10ms costs anycastd 4.2 % of a core; reconcile and peer_poll at 100ms cost
// anycastd 1.2 % and gobgpd 1.7 %; both 5.9 % and 1.9 %; at 1s and 5s, 0.1 % each.

/// A service's `check_interval`: at most 100 rounds a second.
pub const MIN_CHECK_INTERVAL: Dur = Dur::millis(10);
/// `gobgp.reconcile_interval` and `peer_poll_interval`: each lists gobgpd's whole RIB or
/// peer table, work for gobgpd that grows with the number of prefixes.
pub const MIN_GOBGP_INTERVAL: Dur = Dur::millis(100);
/// `gobgp.reconcile_interval` at most: the ownership mark is refreshed at every reconcile,
/// and a mark claiming a longer period is taken for a forged one
/// ([`crate::announcer::owner::MAX_REFRESH`]).
pub const MAX_RECONCILE_INTERVAL: Dur = Dur::secs(3600);
/// `gobgp.timeout`: a call to a busy gobgpd (a RIB of 10,000 prefixes) takes tens of ms;
/// a shorter bound fails calls that would have succeeded, and each failure reconnects.
pub const MIN_GOBGP_TIMEOUT: Dur = Dur::millis(100);

// `CheckConfig` is `{kind, name, spec}` where the type of `spec` depends on `kind`. It is
// read by hand so that the spec is deserialized straight into the kind's own struct, which
// keeps field paths (and YAML positions) of errors inside the spec. Keys and the values
// that are checked here are read through seeds, so that an error is raised while its key is
// being read and carries the key's path (`checks[2].kind`), as derived code's errors do.
impl<'de> Deserialize<'de> for CheckConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "snake_case")]
        enum Field {
            Kind,
            Name,
            OnFailure,
            Spec,
        }
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = CheckConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a check: a map with `kind`, optional `name` and `spec`")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<CheckConfig, A::Error> {
                let mut kind: Option<String> = None;
                let mut name: Option<String> = None;
                let mut on_failure = OnFailure::default();
                let mut spec: Option<CheckSpec> = None;
                // A spec written before its kind is kept as generic data until the kind is known.
                let mut early_spec: Option<serde_json::Value> = None;
                while let Some(key) = map.next_key::<Field>()? {
                    match key {
                        Field::Kind => kind = Some(map.next_value_seed(KindSeed)?),
                        Field::Name => name = Some(map.next_value()?),
                        Field::OnFailure => on_failure = map.next_value_seed(OnFailureSeed)?,
                        Field::Spec => match &kind {
                            Some(k) => spec = Some(map.next_value_seed(check::SpecSeed(k))?),
                            None => early_spec = Some(map.next_value()?),
                        },
                    }
                }
                let kind = kind.ok_or_else(|| {
                    de::Error::custom(format!(
                        "`kind` is missing: give the kind of the check, one of {}",
                        check::KINDS.join(", ")
                    ))
                })?;
                let spec = match (spec, early_spec) {
                    (Some(s), _) => s,
                    (None, Some(v)) => {
                        let mut track = serde_path_to_error::Track::new();
                        let de = serde_path_to_error::Deserializer::new(v, &mut track);
                        de::DeserializeSeed::deserialize(check::SpecSeed(&kind), de).map_err(
                            |e| {
                                // The path inside the spec goes back to the error's own (see
                                // `diagnose::SUBPATH`).
                                let sub = crate::diagnose::SUBPATH;
                                let inner = track.path().to_string();
                                let inner = if inner == "." { String::new() } else { inner };
                                de::Error::custom(format!(
                                    "{sub}{}{sub}{e}",
                                    Problem::new(inner, "").under("spec").path
                                ))
                            },
                        )?
                    }
                    // A kind whose fields all have defaults may leave out `spec`.
                    (None, None) => {
                        let empty = serde_json::Value::Object(Default::default());
                        de::DeserializeSeed::deserialize(check::SpecSeed(&kind), empty).map_err(
                            |e| {
                                let e = e.to_string();
                                let what = e
                                    .strip_prefix("missing field ")
                                    .map(|f| format!(" (it needs {f})"))
                                    .unwrap_or_default();
                                de::Error::custom(format!(
                                    "`spec` is missing: a {kind} check needs one{what}"
                                ))
                            },
                        )?
                    }
                };
                Ok(CheckConfig {
                    name: name.unwrap_or_else(|| kind.clone()),
                    on_failure,
                    spec,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// A check's `kind`: one of [`check::KINDS`].
struct KindSeed;

impl<'de> de::DeserializeSeed<'de> for KindSeed {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        let k = String::deserialize(d)?;
        if check::KINDS.contains(&k.as_str()) {
            return Ok(k);
        }
        Err(de::Error::custom(format!(
            "{} is not a check kind{}; the kinds are {}",
            crate::diagnose::quote(&k),
            crate::diagnose::suggestion(&k, check::KINDS),
            check::KINDS.join(", ")
        )))
    }
}

/// A check's `on_failure`, with what each action does in the error.
struct OnFailureSeed;

impl<'de> de::DeserializeSeed<'de> for OnFailureSeed {
    type Value = OnFailure;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<OnFailure, D::Error> {
        let v = String::deserialize(d)?;
        match v.as_str() {
            "withdraw" => Ok(OnFailure::Withdraw),
            "degrade" => Ok(OnFailure::Degrade),
            _ => Err(de::Error::custom(format!(
                "{} is not an action{}; use withdraw (the default: the service goes down and its routes are withdrawn) or degrade (they stay announced with the degraded attributes)",
                crate::diagnose::quote(&v),
                crate::diagnose::suggestion(&v, &["withdraw", "degrade"])
            ))),
        }
    }
}

/// A list of prefixes in CIDR notation, with an error that says how to write one.
fn prefixes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    struct Prefix(IpNet);
    impl<'de> Deserialize<'de> for Prefix {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let s = String::deserialize(d)?;
            if let Ok(net) = s.trim().parse::<IpNet>() {
                return Ok(Prefix(net));
            }
            let hint = match s.trim().parse::<IpAddr>() {
                Ok(IpAddr::V4(a)) => format!("; for one address write {a}/32"),
                Ok(IpAddr::V6(a)) => format!("; for one address write {a}/128"),
                Err(_) => String::new(),
            };
            Err(de::Error::custom(format!(
                "{s:?} is not a prefix in CIDR notation (e.g. 192.0.2.0/24){hint}"
            )))
        }
    }
    Ok(Vec::<Prefix>::deserialize(d)?
        .into_iter()
        .map(|p| p.0)
        .collect())
}

/// The format of a config file, decided by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    pub fn of(path: &Path) -> Result<Format, String> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
        {
            Some(e) if e == "yaml" || e == "yml" => Ok(Format::Yaml),
            Some(e) if e == "json" => Ok(Format::Json),
            _ => Err(
                "has no .yaml, .yml or .json extension, which tells its format: rename it"
                    .to_string(),
            ),
        }
    }
}

/// Why a config file could not be used.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read, or cannot be a config file (its name).
    Unreadable {
        file: PathBuf,
        /// What is wrong and what to do, worded to follow the file's name (`does not
        /// exist: ...`).
        why: String,
    },
    /// The file was read: every problem found in it.
    Invalid {
        file: PathBuf,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    pub fn file(&self) -> &Path {
        match self {
            ConfigError::Unreadable { file, .. } | ConfigError::Invalid { file, .. } => file,
        }
    }

    /// The problems found in the file (none when it could not be read).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Unreadable { .. } => &[],
            ConfigError::Invalid { problems, .. } => problems,
        }
    }

    /// The error as one JSON object's fields, for `LOG_FORMAT=json`: `message` (the first
    /// line of the text form), `file`, and each problem with its path, line and column.
    pub fn json_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::{Value, json};
        let mut m = serde_json::Map::new();
        let head = match self {
            ConfigError::Unreadable { .. } => self.to_string(),
            ConfigError::Invalid { file, .. } => {
                format!("config file {} is not valid", file.display())
            }
        };
        m.insert("message".into(), Value::from(head));
        m.insert(
            "file".into(),
            Value::from(self.file().display().to_string()),
        );
        if let ConfigError::Invalid { problems, .. } = self {
            let list: Vec<Value> = problems
                .iter()
                .map(|p| {
                    json!({
                        "path": p.path,
                        "line": p.at.map(|a| a.line),
                        "column": p.at.map(|a| a.column),
                        "message": p.message,
                    })
                })
                .collect();
            m.insert("problems".into(), Value::from(list));
        }
        m
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Unreadable { file, why } => {
                write!(f, "config file {} {why}", file.display())
            }
            ConfigError::Invalid { file, problems } => {
                write!(f, "config file {} is not valid:", file.display())?;
                for p in problems {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// A config that passed validation, with the warnings it raised.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// The largest config file read: 16 MiB, some fifty times a config of 10,000 prefixes.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Reads, parses and validates the config file at `path` (blocking up to
/// [`crate::small_file::SETTLE_LIMIT`] while the file is being written). Every problem has the path of its
/// field and, when the document has that field (or the map it is missing from), its line
/// and column: the document is read a second time for them, only when there are problems.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let (config, checked) = load_unchecked(path)?;
    Ok(Loaded {
        warnings: checked?,
        config,
    })
}

/// For the client commands (`status`, `drain`, `reload`, `healthcheck`), which need only
/// the daemon's addresses: the file parsed, and apart from it whether it is valid. A file
/// edited into an invalid one must not keep an operator from draining the daemon, which
/// still runs the config it loaded before. `Err` only when the file cannot be read or
/// parsed at all.
pub fn load_for_client(path: &Path) -> Result<(Config, Option<ConfigError>), ConfigError> {
    let (config, checked) = load_unchecked(path)?;
    Ok((config, checked.err()))
}

/// The file read and parsed (`Err` when it cannot be), and the result of validating it.
fn load_unchecked(path: &Path) -> Result<(Config, Result<Vec<String>, ConfigError>), ConfigError> {
    let unreadable = |why: String| ConfigError::Unreadable {
        file: path.to_path_buf(),
        why,
    };
    let invalid = |problems| ConfigError::Invalid {
        file: path.to_path_buf(),
        problems,
    };
    let format = Format::of(path).map_err(unreadable)?;
    // Settled: a reload racing a slow writer must not apply half a file (issue 20).
    let text = crate::small_file::read_settled(path, MAX_CONFIG_BYTES)
        .map_err(|e| unreadable(why_unreadable(&e)))?;
    let config = parse(&text, format).map_err(|p| invalid(vec![p]))?;
    let checked = config.validate().map_err(|mut problems| {
        crate::diagnose::locate(&text, &mut problems);
        invalid(problems)
    });
    Ok((config, checked))
}

/// Why the config file could not be read, and what to do, following its name.
fn why_unreadable(e: &crate::small_file::ReadError) -> String {
    use crate::small_file::ReadError;
    use std::io::ErrorKind;
    match e {
        ReadError::Io { source, .. } if source.kind() == ErrorKind::NotFound => format!(
            "does not exist: give the config's path with --config FILE or the CONFIG_PATH environment variable (without either, {DEFAULT_PATH} is read)"
        ),
        ReadError::Io { source, .. } if source.kind() == ErrorKind::PermissionDenied => format!(
            "cannot be read by user id {}, which anycastd runs as (permission denied): give that user read access to the file and search access to its directories, e.g. through the file's group and chmod 640",
            rustix::process::getuid().as_raw()
        ),
        ReadError::Io { source, .. } => {
            format!("cannot be read: {}", crate::small_file::describe_io(source))
        }
        ReadError::NotRegular {
            path,
            kind: "directory",
        } => format!(
            "is a directory, not a regular file: give the path of the config file itself, e.g. {}",
            path.join("config.yaml").display()
        ),
        ReadError::NotRegular { kind, .. } => format!(
            "is a {kind}, not a regular file: give the path of a regular file (a FIFO or a device could block or never end)"
        ),
        ReadError::TooLarge { .. } => format!(
            "is larger than {} MiB, the limit of a config file (a config of 10,000 prefixes is some 300 KiB): is this the config file?",
            MAX_CONFIG_BYTES >> 20
        ),
        ReadError::NotText { .. } => "is not UTF-8 text: save it as UTF-8".to_string(),
        ReadError::Unsettled { .. } => format!(
            "kept changing for {}s: it is still being written; have the writer write a temporary file and rename it over this one",
            crate::small_file::SETTLE_LIMIT.as_secs()
        ),
    }
}

/// Parses a config document (no semantic validation: see [`Config::validate`]). An error
/// is worded by [`crate::diagnose`]: the field's path, its line and column, and the fix.
pub fn parse(text: &str, format: Format) -> Result<Config, Problem> {
    if text.trim().is_empty() {
        return Err(crate::diagnose::empty_file());
    }
    match format {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let path = e.path().to_string();
                crate::diagnose::json(text, e.inner(), &path)
            })
        }
        Format::Yaml => {
            let mut path = String::new();
            let mut options = serde_saphyr::Options::default();
            // The error is worded by `diagnose`: the library's snippet would go unused.
            options.with_snippet = false;
            let result =
                serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
                    let mut track = serde_path_to_error::Track::new();
                    let r =
                        Config::deserialize(serde_path_to_error::Deserializer::new(de, &mut track));
                    path = track.path().to_string();
                    r
                });
            result.map_err(|e| crate::diagnose::yaml(text, &e, &path))
        }
    }
}

impl Config {
    /// Cross-field rules. Returns the warnings, or every problem found.
    pub fn validate(&self) -> Result<Vec<String>, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let a = &self.announcer;

        if a.local_asn == 0 {
            problems.push(Problem::new(
                "announcer.local_asn",
                "must be 1..4294967295, not 0",
            ));
        }
        if !(a.listen_port == -1 || (1..=65535).contains(&a.listen_port)) {
            problems.push(Problem::new(
                "announcer.listen_port",
                format!(
                    "{} is not a port: use 1..65535, or -1 for outgoing sessions only",
                    a.listen_port
                ),
            ));
        }
        if let Err(m) = check_host_port(&a.gobgp.address, "write host:port, e.g. 127.0.0.1:50051") {
            problems.push(Problem::new("announcer.gobgp.address", m));
        }
        for (field, d, min) in [
            (
                "reconcile_interval",
                a.gobgp.reconcile_interval,
                MIN_GOBGP_INTERVAL,
            ),
            (
                "peer_poll_interval",
                a.gobgp.peer_poll_interval,
                MIN_GOBGP_INTERVAL,
            ),
            ("timeout", a.gobgp.timeout, MIN_GOBGP_TIMEOUT),
        ] {
            if let Err(m) = d.at_least(min) {
                problems.push(Problem::new(format!("announcer.gobgp.{field}"), m));
            }
        }
        if let Err(m) = a.gobgp.reconcile_interval.at_most(MAX_RECONCILE_INTERVAL) {
            problems.push(Problem::new("announcer.gobgp.reconcile_interval", m));
        }

        // Prefixes: canonical, one place only, a next hop for their family.
        let mut seen: BTreeMap<IpNet, String> = BTreeMap::new();
        let all_routes = a
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("announcer.routes[{i}]"), r))
            .chain(self.services.iter().enumerate().flat_map(|(s, svc)| {
                svc.routes
                    .iter()
                    .enumerate()
                    .map(move |(i, r)| (format!("services[{s}].routes[{i}]"), r))
            }));
        for (path, net) in all_routes {
            if net.trunc() != *net {
                problems.push(Problem::new(
                    &path,
                    format!("{net} has host bits set; did you mean {}?", net.trunc()),
                ));
            }
            if let Some(first) = seen.get(net) {
                problems.push(Problem::new(
                    &path,
                    format!(
                        "{net} is already listed at {first}; a prefix may appear in one place only"
                    ),
                ));
            } else {
                seen.insert(*net, path);
            }
        }
        if seen.keys().any(|n| matches!(n, IpNet::V4(_)))
            && a.next_hop.is_none()
            && !a.local_address.is_ipv4()
        {
            problems.push(Problem::new(
                "announcer.next_hop",
                "IPv4 routes need an IPv4 next hop: set next_hop (local_address is IPv6)",
            ));
        }
        if seen.keys().any(|n| matches!(n, IpNet::V6(_)))
            && a.next_hop_ipv6.is_none()
            && !a.local_address.is_ipv6()
        {
            problems.push(Problem::new(
                "announcer.next_hop_ipv6",
                "IPv6 routes need an IPv6 next hop: set next_hop_ipv6",
            ));
        }
        if seen.is_empty() {
            warnings.push("no routes are configured: anycastd will announce nothing".to_string());
        }

        let mut peer_names = BTreeSet::new();
        for (i, p) in a.peers.iter().enumerate() {
            let at = |f: &str| format!("announcer.peers[{i}].{f}");
            if p.name.trim().is_empty() {
                problems.push(Problem::new(at("name"), "must not be empty"));
            } else if !peer_names.insert(p.name.as_str()) {
                problems.push(Problem::new(
                    at("name"),
                    format!(
                        "{:?} is used by another peer; peer names must be unique",
                        p.name
                    ),
                ));
            }
            if p.remote_asn == 0 {
                problems.push(Problem::new(
                    at("remote_asn"),
                    "must be 1..4294967295, not 0",
                ));
            }
            if p.remote_port == Some(0) {
                problems.push(Problem::new(at("remote_port"), "must be 1..65535"));
            }
            if let Some(file) = &p.password_file
                && let Err(e) = read_password_file(file)
            {
                problems.push(Problem::new(at("password_file"), e.to_string()));
            }
        }
        if a.peers.is_empty() {
            warnings.push("no peers are configured: routes will reach no router".to_string());
        }
        for (i, p) in a.peers.iter().enumerate() {
            problems.extend(
                peer_timer_problems(p)
                    .into_iter()
                    .map(|x| x.under(&format!("announcer.peers[{i}]"))),
            );
        }
        self.validate_attributes(&mut problems, &mut warnings);

        if self.services.is_empty() {
            problems.push(Problem::new("services", "at least one service is needed"));
        }
        let mut service_names = BTreeSet::new();
        for (s, svc) in self.services.iter().enumerate() {
            let at = |f: &str| format!("services[{s}].{f}");
            if svc.name.trim().is_empty() {
                problems.push(Problem::new(at("name"), "must not be empty"));
            } else if !service_names.insert(svc.name.as_str()) {
                problems.push(Problem::new(
                    at("name"),
                    format!(
                        "{:?} is used by another service; service names must be unique",
                        svc.name
                    ),
                ));
            }
            if let Err(m) = svc.check_interval.at_least(MIN_CHECK_INTERVAL) {
                problems.push(Problem::new(at("check_interval"), m));
            }
            if svc.rise == 0 {
                problems.push(Problem::new(at("rise"), "must be at least 1"));
            }
            if svc.fall == 0 {
                problems.push(Problem::new(at("fall"), "must be at least 1"));
            }
            if svc.checks.is_empty() {
                problems.push(Problem::new(
                    at("checks"),
                    "a service needs at least one check",
                ));
            }
            let svc_path = format!("services[{s}]");
            problems.extend(
                svc.fast_interval_problem()
                    .into_iter()
                    .chain(crate::watch::problems(&svc.watch))
                    .map(|p| p.under(&svc_path)),
            );
            let mut check_names = BTreeSet::new();
            for (c, chk) in svc.checks.iter().enumerate() {
                let cat = at(&format!("checks[{c}]"));
                if chk.name.trim().is_empty() {
                    problems.push(Problem::new(format!("{cat}.name"), "must not be empty"));
                } else if !check_names.insert(chk.name.as_str()) {
                    problems.push(Problem::new(
                        format!("{cat}.name"),
                        format!("{:?} is used by another check of this service; give each check its own `name`", chk.name),
                    ));
                }
                problems.extend(
                    chk.spec
                        .validate()
                        .into_iter()
                        .map(|p| p.under(&format!("{cat}.spec"))),
                );
                let worst = chk.spec.attempts().worst_case();
                if worst > svc.check_interval.0 {
                    warnings.push(format!(
                        "{cat} ({}): its worst case ({}) is longer than the service's check_interval ({}): rounds will run back to back",
                        chk.name,
                        Dur(worst),
                        svc.check_interval
                    ));
                }
            }
        }
        if let Some(fleet) = &self.fleet {
            problems.extend(fleet.validate().into_iter().map(|p| p.under("fleet")));
        }
        if problems.is_empty() {
            Ok(warnings)
        } else {
            Err(problems)
        }
    }

    /// The IPv4 next hop of the routes (`next_hop`, else `local_address`).
    pub fn next_hop_v4(&self) -> Option<IpAddr> {
        match (self.announcer.next_hop, self.announcer.local_address) {
            (Some(n), _) => Some(IpAddr::V4(n)),
            (None, IpAddr::V4(l)) => Some(IpAddr::V4(l)),
            _ => None,
        }
    }

    /// The IPv6 next hop of the routes (`next_hop_ipv6`, else an IPv6 `local_address`).
    pub fn next_hop_v6(&self) -> Option<IpAddr> {
        match (self.announcer.next_hop_ipv6, self.announcer.local_address) {
            (Some(n), _) => Some(IpAddr::V6(n)),
            (None, IpAddr::V6(l)) => Some(IpAddr::V6(l)),
            _ => None,
        }
    }

    /// The next hop a prefix is announced with.
    pub fn next_hop_for(&self, prefix: &IpNet) -> Option<IpAddr> {
        match prefix {
            IpNet::V4(_) => self.next_hop_v4(),
            IpNet::V6(_) => self.next_hop_v6(),
        }
    }

    /// The attributes that apply to a service's own routes: its own, else the announcer's.
    pub fn service_attributes<'a>(&'a self, svc: &'a ServiceConfig) -> &'a AttributesConfig {
        svc.attributes
            .as_ref()
            .unwrap_or(&self.announcer.attributes)
    }

    /// The resolved attributes of every prefix of the config.
    pub fn route_attributes(&self) -> BTreeMap<IpNet, Attributes> {
        let global = self.announcer.attributes.resolve();
        let mut out: BTreeMap<IpNet, Attributes> = self
            .announcer
            .routes
            .iter()
            .map(|p| (*p, global.clone()))
            .collect();
        for svc in &self.services {
            let a = self.service_attributes(svc).resolve();
            out.extend(svc.routes.iter().map(|p| (*p, a.clone())));
        }
        out
    }

    /// The attribute sets' rules (SPEC 10), and the warnings about sets without effect.
    fn validate_attributes(&self, problems: &mut Vec<Problem>, warnings: &mut Vec<String>) {
        let a = &self.announcer;
        let mut sets = vec![("announcer.attributes".to_string(), &a.attributes)];
        for (i, svc) in self.services.iter().enumerate() {
            if let Some(attrs) = &svc.attributes {
                sets.push((format!("services[{i}].attributes"), attrs));
            }
        }
        let only_ebgp = !a.peers.is_empty() && a.peers.iter().all(|p| p.remote_asn != a.local_asn);
        let ibgp = a.peers.iter().find(|p| p.remote_asn == a.local_asn);
        for (path, attrs) in &sets {
            problems.extend(attrs.problems().into_iter().map(|p| p.under(path)));
            // An iBGP peer finds its own AS in the path and drops the route, while anycastd
            // says announced (issue 20: Received 2, Accepted 1 at a GoBGP router).
            if let Some(peer) = ibgp {
                for set in attrs.prepending() {
                    problems.push(Problem::new(
                        format!("{path}.{set}.as_path_prepend"),
                        format!(
                            "peer {} is iBGP (remote_asn {} is local_asn): it would see its own AS in the prepended path and drop the route; remove as_path_prepend (use med, or local_pref for iBGP peers), or peer with eBGP only",
                            peer.name, peer.remote_asn
                        ),
                    ));
                }
            }
            if only_ebgp && attrs.uses_local_pref() {
                warnings.push(format!(
                    "{path}: local_pref reaches iBGP peers only, and every peer is eBGP (remote_asn differs from local_asn): it has no effect; use med or as_path_prepend towards eBGP peers"
                ));
            }
        }
        for (i, svc) in self.services.iter().enumerate() {
            let resolved = self.service_attributes(svc).resolve();
            if svc.has_degrade_checks() && resolved.degraded == resolved.up {
                warnings.push(format!(
                    "services[{i}] ({}): it has on_failure: degrade checks, but its degraded attributes are the same as its up attributes: routers will not see the difference; set attributes.degraded (e.g. med or as_path_prepend)",
                    svc.name
                ));
            }
        }
    }

    /// Every prefix of the config, global and per service.
    pub fn all_prefixes(&self) -> BTreeSet<IpNet> {
        self.announcer
            .routes
            .iter()
            .chain(self.services.iter().flat_map(|s| s.routes.iter()))
            .copied()
            .collect()
    }
}

/// The rules of a peer's BGP timers (SPEC 11), with paths relative to the peer.
fn peer_timer_problems(p: &PeerConfig) -> Vec<Problem> {
    let mut out = Vec::new();
    let whole = |field: &str, d: Dur, out: &mut Vec<Problem>| {
        if d.0.subsec_nanos() != 0 {
            out.push(Problem::new(
                field,
                format!("{d} is not a whole number of seconds: BGP timers are counted in seconds"),
            ));
        }
    };
    whole("hold_time", p.hold_time, &mut out);
    whole("connect_retry", p.connect_retry, &mut out);
    let hold = p.hold_time.0;
    if !hold.is_zero() && hold < Duration::from_secs(3) {
        out.push(Problem::new(
            "hold_time",
            format!(
                "{} is too short: BGP allows 0s (no keepalives) or at least 3s (RFC 4271)",
                p.hold_time
            ),
        ));
    }
    if p.connect_retry.0 < Duration::from_secs(1) {
        out.push(Problem::new(
            "connect_retry",
            format!("{} is too short: use at least 1s", p.connect_retry),
        ));
    }
    if let Some(k) = p.keepalive_interval {
        whole("keepalive_interval", k, &mut out);
        if hold.is_zero() {
            if !k.0.is_zero() {
                out.push(Problem::new(
                    "keepalive_interval",
                    "must be 0s or left out when hold_time is 0s (no keepalives)",
                ));
            }
        } else if k.0.is_zero() || k.0 >= hold {
            out.push(Problem::new(
                "keepalive_interval",
                format!(
                    "{k} must be at least 1s and shorter than hold_time ({}); a third of it is usual",
                    p.hold_time
                ),
            ));
        }
    }
    out
}

/// `Err` with the message when `s` is not `HOST:PORT` (an IPv6 host in brackets); `fix`
/// ends the messages that need one.
pub(crate) fn check_host_port(s: &str, fix: &str) -> Result<(), String> {
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("{s:?} has no port; {fix}"));
    };
    // `::1` alone splits into `:` and `1`: an IPv6 address without brackets.
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err(format!(
            "{s:?}: an IPv6 address needs brackets and a port; {fix}"
        ));
    }
    if host.trim_matches(|c| c == '[' || c == ']').is_empty() {
        return Err(format!("{s:?} has no host; {fix}"));
    }
    match port.parse::<u64>() {
        Ok(p) if (1..=65535).contains(&p) => Ok(()),
        Ok(p) => Err(format!("{s:?}: port {p} is out of range; use 1..65535")),
        Err(_) => Err(format!("{s:?} has no valid port; {fix}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_YAML: &str = include_str!("../testdata/seed.yaml");
    const SEED_JSON: &str = include_str!("../testdata/seed.json");

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
        let p =
            yaml(&seed_with("check_interval: 10s", "check_interval: 10")).expect_err("bare number");
        assert_eq!(p.path, "services[0].check_interval");
        assert!(p.message.contains("needs a unit"), "{p}");
        let p = parse(&SEED_JSON.replacen("\"10s\"", "10", 1), Format::Json)
            .expect_err("json bare number");
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
}
