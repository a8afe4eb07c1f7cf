//! What every check kind's spec shares: the attempt policy (`tries`, `interval`, `timeout`)
//! with its defaults and bounds, the [`KindSpec`] trait each kind's `Spec` implements, and
//! what several kinds say alike: a server's address ([`server_address`]) and the TLS of a
//! connection to it ([`ClientTls`]).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::duration::Dur;
use crate::problem::Problem;

/// How a check is attempted: up to `tries` attempts, `interval` apart after a failure, each
/// bounded by `timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    pub tries: u32,
    pub interval: Duration,
    pub timeout: Duration,
}

impl Attempts {
    /// The longest a check can take: `tries × timeout + (tries−1) × interval`.
    pub fn worst_case(&self) -> Duration {
        // Saturating: `tries` may be up to u32::MAX, and this feeds only comparisons.
        self.timeout
            .saturating_mul(self.tries)
            .saturating_add(self.interval.saturating_mul(self.tries.saturating_sub(1)))
    }

    /// The problems of the common fields, for a kind's `validate`.
    pub fn problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        if self.tries == 0 {
            p.push(Problem::new("tries", "must be at least 1"));
        }
        if let Err(m) = Dur(self.timeout).at_least(MIN_TIMEOUT) {
            p.push(Problem::new("timeout", m));
        }
        p
    }
}

/// The shortest `timeout` of an attempt, every kind: even on loopback an answer takes some
/// 0.1–1 ms, and a check that cannot pass only burns a round. (`interval`, the pause after
/// a failed attempt, may be 0s: retry at once, at most `tries` times.)
pub const MIN_TIMEOUT: Dur = Dur::millis(10);

/// Defaults of the common fields, for the kinds' `#[serde(default = ...)]`.
pub fn default_tries() -> u32 {
    1
}
pub fn default_interval() -> Dur {
    Dur::millis(100)
}
pub fn default_timeout() -> Dur {
    Dur::secs(1)
}

/// What a kind's spec knows how to do. Implemented by each kind's `Spec`.
pub trait KindSpec: Sized + fmt::Debug + Clone + PartialEq + for<'de> Deserialize<'de> {
    /// The attempt policy.
    fn attempts(&self) -> Attempts;
    /// Problems with the spec's own fields, with paths relative to `spec`.
    fn validate(&self) -> Vec<Problem>;
    /// What the check looks at, for summaries and logs (`http://127.0.0.1:8080/`).
    fn target(&self) -> String;
}

/// `tls:` of the kinds that speak TLS to a server (`tcp_connect`, `grpc_health`): the
/// chain is verified against the system's trust store (`/etc/ssl/certs`, or
/// `SSL_CERT_FILE`) and must be valid for `server_name`, unless `insecure`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientTls {
    /// The name sent (SNI) and verified; default the host of the address.
    #[serde(default)]
    pub server_name: Option<String>,
    /// Do not verify the server's certificate (the handshake must still succeed).
    #[serde(default)]
    pub insecure: bool,
}

impl ClientTls {
    /// The name to send and verify, for a server whose host is `host`.
    pub fn name_for(&self, host: &str) -> String {
        self.server_name.clone().unwrap_or_else(|| host.to_string())
    }

    /// The problems of `tls` (paths relative to it), for a server whose host is `host`.
    pub fn problems(&self, host: Option<&str>) -> Vec<Problem> {
        let name = match (&self.server_name, host) {
            (Some(n), _) => n.clone(),
            (None, Some(h)) => h.to_string(),
            (None, None) => return Vec::new(),
        };
        match tokio_rustls::rustls::pki_types::ServerName::try_from(name.clone()) {
            Ok(_) => Vec::new(),
            Err(e) => vec![Problem::new(
                "server_name",
                format!(
                    "{} is not a valid TLS server name ({e}): give the name the certificate carries",
                    crate::wording::quote(&name)
                ),
            )],
        }
    }
}

/// A server as a spec names it, split into host and port: `host:port`, `[v6]:port`, or, when
/// the kind has a `default_port`, a host or address alone (`ntp.example`, `192.0.2.1`,
/// `::1`). The host may be a name. `Err` says what is wrong and what to write, with
/// `example` as the model.
pub fn server_address(
    s: &str,
    default_port: Option<u16>,
    example: &str,
) -> Result<(String, u16), String> {
    let t = s.trim();
    let write = match default_port {
        Some(p) => format!("write host or host:port (port {p} when absent), e.g. {example}"),
        None => format!("write host:port, e.g. {example}"),
    };
    if t.is_empty() {
        return Err(format!("is empty: {write}"));
    }
    let q = crate::wording::quote(t);
    // A bare address (IPv6 ones have colons of their own).
    if let Ok(ip) = t.parse::<std::net::IpAddr>() {
        return match default_port {
            Some(p) => Ok((ip.to_string(), p)),
            None if ip.is_ipv6() => Err(format!(
                "{q} needs a port: write [{ip}]:PORT, e.g. {example}"
            )),
            None => Err(format!("{q} needs a port: {write}")),
        };
    }
    let (host, port) = if let Some(rest) = t.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{q} has no closing `]`: {write}"))?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("{q}: after `]` comes `:PORT`; {write}")),
        }
    } else {
        match t.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(format!(
                    "{q} has more than one `:`: write an IPv6 address with a port in brackets, [2001:db8::1]:PORT"
                ));
            }
            Some((host, port)) => (host, Some(port)),
            None => (t, None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{q} has no host: {write}"));
    }
    let port = match (port, default_port) {
        (Some(p), _) => match p.parse::<u16>() {
            Ok(0) => return Err(format!("{q}: port 0 is not a server port; use 1..65535")),
            Ok(n) => n,
            Err(_) => {
                return Err(format!(
                    "{q}: {} is not a port; use a number 1..65535",
                    crate::wording::quote(p)
                ));
            }
        },
        (None, Some(d)) => d,
        (None, None) => return Err(format!("{q} needs a port: {write}")),
    };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_are_split_or_refused_with_the_fix() {
        let ok = |s: &str, d: Option<u16>| server_address(s, d, "e.example:25");
        assert_eq!(ok("127.0.0.1:25", None), Ok(("127.0.0.1".into(), 25)));
        assert_eq!(ok("[::1]:25", None), Ok(("::1".into(), 25)));
        assert_eq!(ok("mail.example:25", None), Ok(("mail.example".into(), 25)));
        assert_eq!(
            ok("ntp.example", Some(123)),
            Ok(("ntp.example".into(), 123))
        );
        assert_eq!(ok("::1", Some(123)), Ok(("::1".into(), 123)));
        assert_eq!(ok("[::1]", Some(123)), Ok(("::1".into(), 123)));
        assert_eq!(ok(" 192.0.2.1 ", Some(123)), Ok(("192.0.2.1".into(), 123)));
        assert_eq!(
            ok("127.0.0.1", None),
            Err("`127.0.0.1` needs a port: write host:port, e.g. e.example:25".into())
        );
        assert_eq!(
            ok("::1", None),
            Err("`::1` needs a port: write [::1]:PORT, e.g. e.example:25".into())
        );
        assert_eq!(
            ok("h:0", None),
            Err("`h:0`: port 0 is not a server port; use 1..65535".into())
        );
        assert_eq!(
            ok("h:smtp", None),
            Err("`h:smtp`: `smtp` is not a port; use a number 1..65535".into())
        );
        assert!(ok("", None).is_err());
        assert!(ok(":25", None).is_err());
        assert!(
            ok("2001:db8::1:25", Some(123)).is_ok(),
            "a bare IPv6 address"
        );
        assert!(ok("a:b:c", None).is_err());
        assert!(ok("[::1", None).is_err());
        assert!(ok("[::1]x", None).is_err());
    }
}
