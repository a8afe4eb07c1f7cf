//! One builder for the anycastd config files the tests write: the YAML a user would write,
//! made from the parts a test cares about instead of `format!` templates with lines to
//! splice in at the right indentation.
//!
//! ```ignore
//! let yaml = config("10.255.0.1", "127.0.0.1", 65001)
//!     .routes(&["192.0.2.1/32"])
//!     .gobgp("address", "127.0.0.1:50051")
//!     .service(
//!         service("web", "1s").check(check("assigned_address").spec("ipv4", "127.0.0.1")),
//!     )
//!     .to_string();
//! ```
//!
//! Values are YAML scalars written as they would be in the file (`200ms`, `[a, b]`,
//! `{ med: 10 }`, `"quoted"`): the builder places them, it does not quote them. Setting a
//! key that is already there replaces its value in place. The file is written in a fixed
//! order: `announcer` (its own keys, then `peers`, then `gobgp`), `services` (each: its own
//! keys, then `watch`, then `checks`), `metrics`, `control`, `fleet`.

use std::fmt;
use std::net::SocketAddr;

/// A YAML value: a scalar (or flow collection) as written, a mapping, or a list.
#[derive(Clone, Debug)]
pub enum Yaml {
    Raw(String),
    Map(Map),
    List(Vec<Yaml>),
}

/// A YAML mapping that keeps its keys in the order they were first set.
#[derive(Clone, Debug, Default)]
pub struct Map(Vec<(String, Yaml)>);

/// An empty mapping, for nested values (`attributes`, `fleet.etcd`, a check's `local`).
pub fn map() -> Map {
    Map::default()
}

impl Map {
    /// `key: value`; replaces the value in place if `key` is already set.
    pub fn set(mut self, key: &str, value: impl Into<Yaml>) -> Map {
        self.put(key, value.into());
        self
    }

    fn put(&mut self, key: &str, value: Yaml) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.0.push((key.to_string(), value)),
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn write(&self, out: &mut String, indent: usize) {
        for (k, v) in &self.0 {
            write_entry(out, indent, k, v);
        }
    }
}

/// `key: value` at `indent`: a scalar or a list of scalars on the line, a mapping or a
/// list of mappings in block style below it.
fn write_entry(out: &mut String, indent: usize, key: &str, value: &Yaml) {
    let pad = " ".repeat(indent);
    match value {
        Yaml::Raw(s) => out.push_str(&format!("{pad}{key}: {s}\n")),
        Yaml::Map(m) if m.is_empty() => out.push_str(&format!("{pad}{key}: {{}}\n")),
        Yaml::Map(m) => {
            out.push_str(&format!("{pad}{key}:\n"));
            m.write(out, indent + 2);
        }
        Yaml::List(items) => match flow(items) {
            Some(line) => out.push_str(&format!("{pad}{key}: {line}\n")),
            None => {
                out.push_str(&format!("{pad}{key}:\n"));
                write_items(out, indent + 2, items);
            }
        },
    }
}

/// A list of scalars as one flow sequence, `[a, b]`; `None` if an item is a collection.
fn flow(items: &[Yaml]) -> Option<String> {
    let scalars: Option<Vec<&str>> = items
        .iter()
        .map(|i| match i {
            Yaml::Raw(s) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    scalars.map(|s| format!("[{}]", s.join(", ")))
}

/// Block list items at `indent`: `- ` and the item, a mapping's first key on the dash's line.
fn write_items(out: &mut String, indent: usize, items: &[Yaml]) {
    let pad = " ".repeat(indent);
    for item in items {
        match item {
            Yaml::Raw(s) => out.push_str(&format!("{pad}- {s}\n")),
            Yaml::List(l) => out.push_str(&format!("{pad}- {}\n", flow(l).unwrap_or_default())),
            Yaml::Map(m) if m.is_empty() => out.push_str(&format!("{pad}- {{}}\n")),
            Yaml::Map(m) => {
                let mut body = String::new();
                m.write(&mut body, indent + 2);
                out.push_str(&format!("{pad}- {}", &body[indent + 2..]));
            }
        }
    }
}

impl From<&str> for Yaml {
    fn from(s: &str) -> Yaml {
        Yaml::Raw(s.to_string())
    }
}

impl From<String> for Yaml {
    fn from(s: String) -> Yaml {
        Yaml::Raw(s)
    }
}

impl From<&String> for Yaml {
    fn from(s: &String) -> Yaml {
        Yaml::Raw(s.clone())
    }
}

macro_rules! scalars {
    ($($t:ty),*) => {
        $(impl From<$t> for Yaml {
            fn from(v: $t) -> Yaml {
                Yaml::Raw(v.to_string())
            }
        })*
    };
}

scalars!(u16, u32, i32, bool, SocketAddr, std::path::Display<'_>);

impl From<Map> for Yaml {
    fn from(m: Map) -> Yaml {
        Yaml::Map(m)
    }
}

/// A list of scalars, written `[a, b]`.
impl From<&[&str]> for Yaml {
    fn from(items: &[&str]) -> Yaml {
        Yaml::List(items.iter().map(|&s| Yaml::from(s)).collect())
    }
}

impl<const N: usize> From<[&str; N]> for Yaml {
    fn from(items: [&str; N]) -> Yaml {
        Yaml::from(&items[..])
    }
}

impl From<Vec<String>> for Yaml {
    fn from(items: Vec<String>) -> Yaml {
        Yaml::List(items.into_iter().map(Yaml::Raw).collect())
    }
}

/// A whole config file. See the module's documentation.
#[derive(Clone, Debug)]
pub struct ConfigBuilder {
    announcer: Map,
    peers: Vec<Map>,
    gobgp: Map,
    services: Vec<ServiceBuilder>,
    metrics: Map,
    control: Map,
    fleet: Map,
}

/// A config whose announcer has these three keys, and nothing else yet.
pub fn config(router_id: &str, local_address: &str, local_asn: u32) -> ConfigBuilder {
    ConfigBuilder {
        announcer: map()
            .set("router_id", router_id)
            .set("local_address", local_address)
            .set("local_asn", local_asn),
        peers: Vec::new(),
        gobgp: map(),
        services: Vec::new(),
        metrics: map(),
        control: map(),
        fleet: map(),
    }
}

impl ConfigBuilder {
    /// `announcer.KEY` (`next_hop`, `state_directory`, `drain_linger`, `attributes`, ...).
    pub fn announcer(mut self, key: &str, value: impl Into<Yaml>) -> ConfigBuilder {
        self.announcer.put(key, value.into());
        self
    }

    /// `announcer.routes`, the routes gated by every service.
    pub fn routes(self, routes: &[&str]) -> ConfigBuilder {
        self.announcer("routes", routes)
    }

    /// One more item of `announcer.peers`.
    pub fn peer(mut self, peer: Map) -> ConfigBuilder {
        self.peers.push(peer);
        self
    }

    /// `KEY` of the peer named `name`, which must be there.
    pub fn peer_set(mut self, name: &str, key: &str, value: impl Into<Yaml>) -> ConfigBuilder {
        let value = value.into();
        let peer = self
            .peers
            .iter_mut()
            .find(|p| {
                p.0.iter()
                    .any(|(k, v)| k == "name" && matches!(v, Yaml::Raw(n) if n == name))
            })
            .unwrap_or_else(|| panic!("the test config has no peer named {name:?}"));
        peer.put(key, value);
        self
    }

    /// `announcer.gobgp.KEY` (`address`, `reconcile_interval`, `timeout`, ...).
    pub fn gobgp(mut self, key: &str, value: impl Into<Yaml>) -> ConfigBuilder {
        self.gobgp.put(key, value.into());
        self
    }

    /// One more item of `services`.
    pub fn service(mut self, service: ServiceBuilder) -> ConfigBuilder {
        self.services.push(service);
        self
    }

    /// `metrics.KEY` (`address`, `enabled`).
    pub fn metrics(mut self, key: &str, value: impl Into<Yaml>) -> ConfigBuilder {
        self.metrics.put(key, value.into());
        self
    }

    /// `control.KEY` (`socket`).
    pub fn control(mut self, key: &str, value: impl Into<Yaml>) -> ConfigBuilder {
        self.control.put(key, value.into());
        self
    }

    /// `fleet.KEY` (`etcd`, `site`, `min_sites`, ...).
    pub fn fleet(mut self, key: &str, value: impl Into<Yaml>) -> ConfigBuilder {
        self.fleet.put(key, value.into());
        self
    }
}

impl fmt::Display for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut announcer = self.announcer.clone();
        if !self.peers.is_empty() {
            announcer.put(
                "peers",
                Yaml::List(self.peers.iter().cloned().map(Yaml::Map).collect()),
            );
        }
        if !self.gobgp.is_empty() {
            announcer.put("gobgp", Yaml::Map(self.gobgp.clone()));
        }
        let services = Yaml::List(self.services.iter().map(|s| s.yaml().into()).collect());
        let mut file = map().set("announcer", announcer).set("services", services);
        for (key, section) in [
            ("metrics", &self.metrics),
            ("control", &self.control),
            ("fleet", &self.fleet),
        ] {
            if !section.is_empty() {
                file.put(key, Yaml::Map(section.clone()));
            }
        }
        let mut out = String::new();
        file.write(&mut out, 0);
        f.write_str(&out)
    }
}

/// One service of `services`.
#[derive(Clone, Debug)]
pub struct ServiceBuilder {
    keys: Map,
    watches: Vec<Map>,
    checks: Vec<CheckBuilder>,
}

/// A service with its name and check_interval, no check yet.
pub fn service(name: &str, check_interval: &str) -> ServiceBuilder {
    ServiceBuilder {
        keys: map()
            .set("name", name)
            .set("check_interval", check_interval),
        watches: Vec::new(),
        checks: Vec::new(),
    }
}

impl ServiceBuilder {
    /// `KEY` of the service (`rise`, `fall`, `fast_interval`, `drain_file`, `attributes`, ...).
    pub fn set(mut self, key: &str, value: impl Into<Yaml>) -> ServiceBuilder {
        self.keys.put(key, value.into());
        self
    }

    /// The service's own `routes`.
    pub fn routes(self, routes: &[&str]) -> ServiceBuilder {
        self.set("routes", routes)
    }

    /// One more item of `watch`: `- KIND: VALUE` (`tcp: 127.0.0.1:80`, `pid_file: /run/x.pid`).
    pub fn watch(mut self, kind: &str, value: impl Into<Yaml>) -> ServiceBuilder {
        self.watches.push(map().set(kind, value));
        self
    }

    /// One more item of `checks`.
    pub fn check(mut self, check: CheckBuilder) -> ServiceBuilder {
        self.checks.push(check);
        self
    }

    fn yaml(&self) -> Map {
        let mut m = self.keys.clone();
        if !self.watches.is_empty() {
            m.put(
                "watch",
                Yaml::List(self.watches.iter().cloned().map(Yaml::Map).collect()),
            );
        }
        m.put(
            "checks",
            Yaml::List(self.checks.iter().map(|c| c.yaml().into()).collect()),
        );
        m
    }
}

/// The service as an item of `services`, indented as in the file (`  - name: web`).
impl fmt::Display for ServiceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        write_items(&mut out, 2, &[Yaml::Map(self.yaml())]);
        f.write_str(&out)
    }
}

/// One check of a service's `checks`.
#[derive(Clone, Debug)]
pub struct CheckBuilder {
    keys: Map,
    spec: Map,
}

/// A check of `kind` with an empty spec.
pub fn check(kind: &str) -> CheckBuilder {
    CheckBuilder {
        keys: map().set("kind", kind),
        spec: map(),
    }
}

impl CheckBuilder {
    /// `KEY` of the check (`name`, `on_failure`).
    pub fn set(mut self, key: &str, value: impl Into<Yaml>) -> CheckBuilder {
        self.keys.put(key, value.into());
        self
    }

    /// `spec.KEY`.
    pub fn spec(mut self, key: &str, value: impl Into<Yaml>) -> CheckBuilder {
        self.spec.put(key, value.into());
        self
    }

    fn yaml(&self) -> Map {
        self.keys.clone().set("spec", self.spec.clone())
    }
}

/// One item of `announcer.peers`, with the keys every peer has; more with [`Map::set`].
pub fn peer(name: &str, remote_address: &str, remote_asn: u32) -> Map {
    map()
        .set("name", name)
        .set("remote_address", remote_address)
        .set("remote_asn", remote_asn)
}
