//! The `fleet:` section of the config (SPEC 14): where etcd is, how this site is named in
//! the fleet, and the guard's limits. [`FleetConfig::validate`] reports every problem with
//! its field path relative to `fleet` (the caller adds the `fleet.` in front).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Dur;
use crate::problem::Problem;

/// The shortest `lease_ttl`. etcd refuses leases shorter than 1.5 election timeouts (1.5 s
/// with its default 1 s) and counts them in whole seconds.
pub const MIN_LEASE_TTL: Duration = Duration::from_secs(2);
/// The longest `lease_ttl`: a dead site's claims outlive it by this much, during which the
/// other sites count it as announcing.
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(300);
/// Bounds of `etcd.timeout`.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// `min_sites` is compared key by key in one etcd transaction; etcd allows 128 operations
/// per transaction by default (`--max-txn-ops`).
pub const MAX_MIN_SITES: u32 = 100;
/// Site names become part of etcd keys.
pub const MAX_SITE_LEN: usize = 63;

/// `fleet:`: health-triggered withdrawals coordinated through etcd.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    pub etcd: EtcdConfig,
    /// This daemon's name in the fleet; `announcer.router_id` when not set.
    #[serde(default)]
    #[schemars(pattern(r"^[A-Za-z0-9._-]{1,63}$"))]
    pub site: Option<String>,
    /// A site may withdraw a prefix only while at least this many *other* sites announce it.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 100))]
    pub min_sites: u32,
    /// A dead or cut-off site's claims expire after this.
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl: Dur,
    /// What a failing service does when etcd cannot be reached.
    #[serde(default)]
    pub on_unreachable: OnUnreachable,
    /// The prefixes the guard covers (each one of the config's); none: every prefix.
    /// Others are withdrawn as if there were no guard, and never claimed.
    #[serde(default, deserialize_with = "optional_prefixes")]
    #[schemars(with = "Option<Vec<super::prefix::Prefix>>")]
    pub prefixes: Option<Vec<IpNet>>,
}

fn optional_prefixes<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<IpNet>>, D::Error> {
    super::prefix::prefixes(d).map(Some)
}

fn one() -> u32 {
    1
}
fn default_lease_ttl() -> Dur {
    Dur::secs(10)
}

/// `fleet.etcd`: the cluster and how to talk to it.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EtcdConfig {
    /// Client URLs of the members, `http://host:port` or `https://host:port`.
    #[schemars(length(min = 1), inner(pattern(r"^https?://[^/]+:[0-9]+/?$")))]
    pub endpoints: Vec<String>,
    /// Every key anycastd writes starts with this.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Bound on every call to etcd, and on a whole guarded release.
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    /// Client TLS for `https://` endpoints; without it the system trust store is used.
    #[serde(default)]
    pub tls: Option<EtcdTls>,
    /// etcd user (with `password_file`).
    #[serde(default)]
    pub user: Option<String>,
    /// File holding the etcd user's password; read at start, never logged.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

pub fn default_prefix() -> String {
    "/anycastd/".to_string()
}
fn default_timeout() -> Dur {
    Dur::secs(2)
}

/// `fleet.etcd.tls`: PEM files.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EtcdTls {
    /// CA certificate(s) that sign the members' certificates; default the system trust store.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (with `key_file`), for members that ask for one.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// What a service whose checks fail does when etcd cannot be reached in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnUnreachable {
    /// Keep the prefix announced (with the `degraded` attributes) until etcd answers.
    #[default]
    Hold,
    /// Withdraw as if there were no fleet guard.
    Withdraw,
}

impl FleetConfig {
    /// The site name: `site`, else the router id.
    pub fn site_name(&self, router_id: Ipv4Addr) -> String {
        self.site.clone().unwrap_or_else(|| router_id.to_string())
    }

    /// Every problem, with paths relative to `fleet`.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let https = self.endpoint_problems(&mut problems);
        self.timing_problems(&mut problems);
        self.credential_problems(&mut problems, https);
        self.site_problems(&mut problems);
        problems
    }

    /// `etcd.endpoints`: at least one, each a URL once, one scheme. Whether it is https.
    fn endpoint_problems(&self, problems: &mut Vec<Problem>) -> bool {
        let e = &self.etcd;
        if e.endpoints.is_empty() {
            problems.push(Problem::new(
                "etcd.endpoints",
                "at least one etcd endpoint is needed, e.g. [http://10.0.0.1:2379]",
            ));
        }
        let mut seen = BTreeSet::new();
        let mut schemes = BTreeSet::new();
        for (i, ep) in e.endpoints.iter().enumerate() {
            let at = format!("etcd.endpoints[{i}]");
            match endpoint(ep) {
                Ok((scheme, canonical)) => {
                    if !seen.insert(canonical) {
                        problems.push(Problem::new(
                            &at,
                            format!("{ep:?} is listed twice; list each member once"),
                        ));
                    }
                    schemes.insert(scheme);
                }
                Err(m) => problems.push(Problem::new(&at, m)),
            }
        }
        if schemes.len() > 1 {
            problems.push(Problem::new(
                "etcd.endpoints",
                "mixes http:// and https:// endpoints: a cluster is reached one way; use one scheme for all",
            ));
        }
        if e.prefix.is_empty() || !e.prefix.ends_with('/') {
            problems.push(Problem::new(
                "etcd.prefix",
                format!(
                    "{:?} must end with / so that anycastd's keys stay under it, e.g. /anycastd/",
                    e.prefix
                ),
            ));
        }
        schemes.contains("https")
    }

    /// `etcd.timeout` and `lease_ttl`: in range, and the timeout a third of the lease.
    fn timing_problems(&self, problems: &mut Vec<Problem>) {
        let e = &self.etcd;
        if e.timeout.0 < MIN_TIMEOUT || e.timeout.0 > MAX_TIMEOUT {
            problems.push(Problem::new(
                "etcd.timeout",
                format!(
                    "{} is out of range: use {} to {}",
                    e.timeout,
                    Dur(MIN_TIMEOUT),
                    Dur(MAX_TIMEOUT)
                ),
            ));
        } else if e.timeout.0 * 3 > self.lease_ttl.0
            && (MIN_LEASE_TTL..=MAX_LEASE_TTL).contains(&self.lease_ttl.0)
        {
            problems.push(Problem::new(
                "etcd.timeout",
                format!(
                    "{} is more than a third of lease_ttl ({}): the lease is kept alive every lease_ttl/3, and a slow answer must not let it expire; shorten the timeout or lengthen lease_ttl",
                    e.timeout, self.lease_ttl
                ),
            ));
        }
        let ttl = self.lease_ttl.0;
        if ttl < MIN_LEASE_TTL || ttl > MAX_LEASE_TTL {
            problems.push(Problem::new(
                "lease_ttl",
                format!(
                    "{} is out of range: use {} to {}",
                    self.lease_ttl,
                    Dur(MIN_LEASE_TTL),
                    Dur(MAX_LEASE_TTL)
                ),
            ));
        } else if ttl.subsec_nanos() != 0 {
            problems.push(Problem::new(
                "lease_ttl",
                format!(
                    "{} is not whole seconds: etcd leases count seconds; write e.g. \"{}s\"",
                    self.lease_ttl,
                    ttl.as_secs().max(2)
                ),
            ));
        }
    }

    /// `etcd.tls`, `etcd.user` and `etcd.password_file`: complete pairs, readable files, and
    /// TLS only with `https` endpoints.
    fn credential_problems(&self, problems: &mut Vec<Problem>, https: bool) {
        let e = &self.etcd;
        if let Some(tls) = &e.tls {
            if !https && !e.endpoints.is_empty() {
                problems.push(Problem::new(
                    "etcd.tls",
                    "TLS settings need https:// endpoints; write the endpoints as https://host:port, or remove tls",
                ));
            }
            match (&tls.cert_file, &tls.key_file) {
                (Some(_), None) => problems.push(Problem::new(
                    "etcd.tls.key_file",
                    "a client certificate needs its key: set key_file too",
                )),
                (None, Some(_)) => problems.push(Problem::new(
                    "etcd.tls.cert_file",
                    "a client key needs its certificate: set cert_file too",
                )),
                _ => {}
            }
            for (field, file) in [
                ("ca_file", &tls.ca_file),
                ("cert_file", &tls.cert_file),
                ("key_file", &tls.key_file),
            ] {
                if let Some(f) = file {
                    readable(problems, &format!("etcd.tls.{field}"), f);
                }
            }
        }
        match (&e.user, &e.password_file) {
            (Some(u), _) if u.trim().is_empty() => {
                problems.push(Problem::new("etcd.user", "must not be empty"))
            }
            (Some(_), None) => problems.push(Problem::new(
                "etcd.password_file",
                "an etcd user needs its password: set password_file to a file holding it",
            )),
            (None, Some(_)) => problems.push(Problem::new(
                "etcd.user",
                "password_file is set but no user: set user too",
            )),
            _ => {}
        }
        if let Some(f) = &e.password_file {
            readable(problems, "etcd.password_file", f);
        }
    }

    /// `site` and `min_sites`.
    fn site_problems(&self, problems: &mut Vec<Problem>) {
        if let Some(site) = &self.site
            && let Err(m) = site_name(site)
        {
            problems.push(Problem::new("site", m));
        }
        if self.min_sites == 0 || self.min_sites > MAX_MIN_SITES {
            problems.push(Problem::new(
                "min_sites",
                format!(
                    "must be 1..{MAX_MIN_SITES}, not {}: the number of other sites that must keep a prefix announced",
                    self.min_sites
                ),
            ));
        }
    }
}

/// Checks one endpoint URL; returns its scheme and a canonical form (for duplicates).
fn endpoint(s: &str) -> Result<(&'static str, String), String> {
    let fix = "write it as http://host:port or https://host:port, e.g. http://10.0.0.1:2379";
    if !s.contains("://") && s.contains(':') && !s.contains(' ') {
        return Err(format!(
            "{s:?} has no scheme: write http://{s} (or https:// for TLS)"
        ));
    }
    let u = url::Url::parse(s.trim()).map_err(|e| format!("{s:?} is not a URL ({e}); {fix}"))?;
    let scheme = match u.scheme() {
        "http" => "http",
        "https" => "https",
        other => {
            return Err(format!(
                "{s:?} has scheme {other}:, not http or https; {fix}"
            ));
        }
    };
    let host = u
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{s:?} has no host; {fix}"))?;
    // The url crate drops a port that is the scheme's default, so look at the text too.
    let port = u
        .port()
        .or_else(|| has_explicit_port(s).then(|| u.port_or_known_default()).flatten())
        .ok_or_else(|| {
            format!("{s:?} has no port; etcd listens on 2379 by default, so write e.g. {scheme}://{host}:2379")
        })?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!(
            "{s:?} carries credentials; put them in fleet.etcd.user and password_file instead"
        ));
    }
    if !(u.path().is_empty() || u.path() == "/") || u.query().is_some() || u.fragment().is_some() {
        return Err(format!(
            "{s:?} has a path, query or fragment; an etcd endpoint is only {scheme}://host:port"
        ));
    }
    Ok((scheme, format!("{scheme}://{host}:{port}")))
}

/// Whether the authority part of `s` ends in `:digits` (the url crate forgets `:80`).
fn has_explicit_port(s: &str) -> bool {
    let rest = s.split_once("://").map_or(s, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host_port.rsplit_once(':') {
        Some((h, p)) => {
            !p.is_empty()
                && p.chars().all(|c| c.is_ascii_digit())
                && (!h.starts_with('[') || h.ends_with(']'))
        }
        None => false,
    }
}

/// A site name is part of etcd keys and of logs: letters, digits, `.`, `_`, `-`.
pub fn site_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > MAX_SITE_LEN {
        return Err(format!(
            "{s:?} must be 1 to {MAX_SITE_LEN} characters, e.g. fra1"
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{s:?} contains {c:?}; a site name may hold letters, digits, '.', '_' and '-' (it becomes part of etcd keys)"
        ));
    }
    Ok(())
}

fn readable(problems: &mut Vec<Problem>, at: &str, file: &Path) {
    if let Err(e) = std::fs::metadata(file) {
        problems.push(Problem::new(
            at,
            format!("cannot read {}: {e}", file.display()),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "etcd:\n  endpoints: [http://127.0.0.1:2379, http://127.0.0.2:2379]\n  prefix: /anycastd/\n  timeout: 2s\nsite: fra1\nmin_sites: 1\nlease_ttl: 10s\n";

    /// The valid section `BASE` with `from` replaced by `to`, parsed.
    fn fleet(from: &str, to: &str) -> Result<FleetConfig, String> {
        assert!(BASE.contains(from), "no {from:?} in the base");
        serde_saphyr::from_str(&BASE.replacen(from, to, 1)).map_err(|e| e.to_string())
    }

    fn problems(from: &str, to: &str) -> Vec<Problem> {
        fleet(from, to).expect("parses").validate()
    }

    /// Exactly one problem, at `path`, saying `says`.
    #[track_caller]
    fn only(p: Vec<Problem>, path: &str, says: &str) {
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].path, path, "{p:?}");
        assert!(p[0].message.contains(says), "{:?} lacks {says:?}", p[0]);
    }

    /// `BASE` with these lines added under `etcd:`.
    fn with_etcd(lines: &str) -> Vec<Problem> {
        problems("  timeout: 2s\n", &format!("  timeout: 2s\n{lines}"))
    }

    fn existing_file() -> tempfile::NamedTempFile {
        tempfile::NamedTempFile::new().expect("a temp file")
    }

    #[test]
    fn defaults() {
        let f: FleetConfig =
            serde_saphyr::from_str("etcd:\n  endpoints: [http://127.0.0.1:2379]\n")
                .expect("minimal");
        assert_eq!(f.etcd.prefix, "/anycastd/");
        assert_eq!(f.etcd.timeout, Dur::secs(2));
        assert_eq!(f.min_sites, 1);
        assert_eq!(f.lease_ttl, Dur::secs(10));
        assert_eq!(f.on_unreachable, OnUnreachable::Hold);
        assert_eq!(f.site_name(Ipv4Addr::new(10, 3, 3, 3)), "10.3.3.3");
        assert!(f.validate().is_empty(), "{:?}", f.validate());
    }

    #[test]
    fn a_valid_section_has_no_problems() {
        assert!(problems("", "").is_empty());
        let f = fleet("site: fra1\n", "site: fra1\non_unreachable: withdraw\n").expect("parses");
        assert_eq!(f.on_unreachable, OnUnreachable::Withdraw);
        assert_eq!(f.site_name(Ipv4Addr::LOCALHOST), "fra1");
    }

    #[test]
    fn on_unreachable_is_hold_or_withdraw() {
        let e = fleet("site: fra1\n", "site: fra1\non_unreachable: ignore\n").expect_err("bad");
        assert!(e.contains("hold") && e.contains("withdraw"), "{e}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = fleet("  prefix: /anycastd/\n", "  prefx: /anycastd/\n").expect_err("typo");
        assert!(e.contains("prefx"), "{e}");
    }

    #[test]
    fn endpoints_are_needed() {
        only(
            problems("[http://127.0.0.1:2379, http://127.0.0.2:2379]", "[]"),
            "etcd.endpoints",
            "at least one",
        );
    }

    #[test]
    fn endpoints_are_urls_with_host_and_port() {
        for (bad, says) in [
            ("127.0.0.2:2379", "write http://127.0.0.2:2379"),
            ("not a url", "not a URL"),
            ("ftp://127.0.0.2:2379", "scheme ftp"),
            ("http://127.0.0.2", "no port"),
            ("http://127.0.0.2:2379/v3", "path"),
            ("http://127.0.0.2:2379?x=1", "query"),
            ("http://u:p@127.0.0.2:2379", "credentials"),
        ] {
            only(
                problems("http://127.0.0.2:2379", bad),
                "etcd.endpoints[1]",
                says,
            );
        }
        // A port equal to the scheme's default is still written out, so it counts.
        assert!(problems("http://127.0.0.2:2379", "http://127.0.0.2:80").is_empty());
        assert!(problems("http://127.0.0.2:2379", "\"http://[::1]:2379\"").is_empty());
        assert!(problems("http://127.0.0.2:2379", "http://etcd-2.example:2379").is_empty());
    }

    #[test]
    fn an_endpoint_listed_twice_is_an_error() {
        only(
            problems("http://127.0.0.2:2379", "http://127.0.0.1:2379/"),
            "etcd.endpoints[1]",
            "twice",
        );
    }

    #[test]
    fn schemes_are_not_mixed() {
        only(
            problems("http://127.0.0.2:2379", "https://127.0.0.2:2379"),
            "etcd.endpoints",
            "mixes",
        );
    }

    #[test]
    fn prefix_ends_with_a_slash() {
        only(
            problems("prefix: /anycastd/", "prefix: /anycastd"),
            "etcd.prefix",
            "end with /",
        );
        only(
            problems("prefix: /anycastd/", "prefix: \"\""),
            "etcd.prefix",
            "end with /",
        );
        assert!(problems("prefix: /anycastd/", "prefix: /prod/anycast/").is_empty());
    }

    #[test]
    fn timeout_is_bounded_and_fits_the_lease() {
        only(
            problems("timeout: 2s", "timeout: 10ms"),
            "etcd.timeout",
            "out of range",
        );
        only(
            problems("timeout: 2s", "timeout: 1m"),
            "etcd.timeout",
            "out of range",
        );
        // 4s x 3 > 10s: the lease could lapse behind one slow keep-alive.
        only(
            problems("timeout: 2s", "timeout: 4s"),
            "etcd.timeout",
            "third of lease_ttl",
        );
        assert!(problems("timeout: 2s", "timeout: 3s").is_empty());
        let bare = fleet("timeout: 2s", "timeout: 2").expect_err("bare number");
        assert!(bare.contains("needs a unit"), "{bare}");
    }

    #[test]
    fn lease_ttl_is_bounded_and_whole_seconds() {
        only(
            problems("lease_ttl: 10s", "lease_ttl: 1s"),
            "lease_ttl",
            "out of range",
        );
        only(
            problems("lease_ttl: 10s", "lease_ttl: 1h"),
            "lease_ttl",
            "out of range",
        );
        only(
            problems("lease_ttl: 10s", "lease_ttl: 7500ms"),
            "lease_ttl",
            "whole seconds",
        );
        assert!(problems("lease_ttl: 10s", "lease_ttl: 5m").is_empty());
    }

    #[test]
    fn min_sites_is_at_least_one() {
        only(
            problems("min_sites: 1", "min_sites: 0"),
            "min_sites",
            "1..100",
        );
        only(
            problems("min_sites: 1", "min_sites: 101"),
            "min_sites",
            "1..100",
        );
        assert!(problems("min_sites: 1", "min_sites: 3").is_empty());
        assert!(fleet("min_sites: 1", "min_sites: -1").is_err());
    }

    #[test]
    fn site_names_fit_in_keys() {
        only(
            problems("site: fra1", "site: fra/1"),
            "site",
            "contains '/'",
        );
        only(problems("site: fra1", "site: \"\""), "site", "1 to 63");
        only(
            problems("site: fra1", &format!("site: {}", "a".repeat(64))),
            "site",
            "1 to 63",
        );
        assert!(problems("site: fra1", "site: fra-1.example_2").is_empty());
    }

    #[test]
    fn tls_needs_https_and_readable_files() {
        let https = "[https://127.0.0.1:2379, https://127.0.0.2:2379]";
        let ca = existing_file();
        let ca = ca.path().display();
        // https with the system trust store, or with a CA file.
        assert!(problems("[http://127.0.0.1:2379, http://127.0.0.2:2379]", https).is_empty());
        let text = BASE.replacen("[http://127.0.0.1:2379, http://127.0.0.2:2379]", https, 1);
        let text = text.replacen(
            "  timeout: 2s\n",
            &format!("  timeout: 2s\n  tls:\n    ca_file: {ca}\n"),
            1,
        );
        let f: FleetConfig = serde_saphyr::from_str(&text).expect("parses");
        assert!(f.validate().is_empty(), "{:?}", f.validate());

        only(
            with_etcd(&format!("  tls:\n    ca_file: {ca}\n")),
            "etcd.tls",
            "https://",
        );
        let p = with_etcd("  tls:\n    ca_file: /nonexistent/ca.pem\n");
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[1].path, "etcd.tls.ca_file");
        assert!(p[1].message.contains("/nonexistent/ca.pem"), "{p:?}");
    }

    #[test]
    fn client_certificate_and_key_come_together() {
        let f = existing_file();
        let f = f.path().display();
        let https = "[https://127.0.0.1:2379, https://127.0.0.2:2379]";
        let with = |tls: &str| {
            let text = BASE
                .replacen("[http://127.0.0.1:2379, http://127.0.0.2:2379]", https, 1)
                .replacen(
                    "  timeout: 2s\n",
                    &format!("  timeout: 2s\n  tls:\n{tls}"),
                    1,
                );
            serde_saphyr::from_str::<FleetConfig>(&text)
                .expect("parses")
                .validate()
        };
        only(
            with(&format!("    cert_file: {f}\n")),
            "etcd.tls.key_file",
            "set key_file",
        );
        only(
            with(&format!("    key_file: {f}\n")),
            "etcd.tls.cert_file",
            "set cert_file",
        );
        assert!(with(&format!("    cert_file: {f}\n    key_file: {f}\n")).is_empty());
    }

    #[test]
    fn user_and_password_file_come_together() {
        let f = existing_file();
        let f = f.path().display();
        only(
            with_etcd("  user: anycastd\n"),
            "etcd.password_file",
            "needs its password",
        );
        only(
            with_etcd(&format!("  password_file: {f}\n")),
            "etcd.user",
            "no user",
        );
        only(
            with_etcd(&format!("  user: \" \"\n  password_file: {f}\n")),
            "etcd.user",
            "empty",
        );
        only(
            with_etcd("  user: anycastd\n  password_file: /nonexistent/pw\n"),
            "etcd.password_file",
            "cannot read",
        );
        assert!(with_etcd(&format!("  user: anycastd\n  password_file: {f}\n")).is_empty());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = BASE
            .replacen("min_sites: 1", "min_sites: 0", 1)
            .replacen("site: fra1", "site: a/b", 1)
            .replacen("prefix: /anycastd/", "prefix: x", 1);
        let f: FleetConfig = serde_saphyr::from_str(&text).expect("parses");
        let paths: Vec<String> = f.validate().into_iter().map(|p| p.path).collect();
        assert_eq!(paths, ["etcd.prefix", "site", "min_sites"]);
    }
}
