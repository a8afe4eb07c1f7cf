//! DNS plumbing shared by the probers: resolvers built fresh for every lookup, host-name
//! resolution for the kinds that accept a name (`icmp_ping`, `tls_certificate`), and the
//! wording of DNS failures.
//!
//! A resolver is built per lookup, never kept: nothing is cached between checks (a health
//! check must ask every time, and picks up edits of /etc/resolv.conf and /etc/hosts), and
//! dropping the lookup future (the Runner's timeout) drops its sockets and tasks with it.
//! `getaddrinfo` on a blocking thread, by contrast, would outlive a cancelled attempt.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;

/// Where a resolver sends its queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upstream {
    /// The name servers of /etc/resolv.conf (read at every lookup).
    System,
    /// One server, over UDP with TCP for truncated answers.
    At(SocketAddr),
}

/// A resolver for one lookup. `hosts`: whether /etc/hosts answers before DNS (yes for
/// "find this host", no for "is this DNS server healthy").
pub(crate) fn resolver(
    upstream: Upstream,
    timeout: Duration,
    hosts: bool,
) -> Result<TokioResolver, String> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = match upstream {
        Upstream::System => TokioResolver::builder(provider).map_err(|e| {
            format!("cannot read the system resolver configuration (/etc/resolv.conf): {e}")
        })?,
        Upstream::At(addr) => {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for c in &mut ns.connections {
                c.port = addr.port();
            }
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(vec![ns]),
                provider,
            )
        }
    };
    let opts: &mut ResolverOpts = builder.options_mut();
    opts.timeout = timeout;
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    opts.use_hosts_file = if hosts {
        ResolveHosts::Always
    } else {
        ResolveHosts::Never
    };
    builder
        .build()
        .map_err(|e| format!("cannot set up a DNS resolver: {e}"))
}

/// The addresses of `host` (an IP address or a name), A records first.
pub(crate) async fn addresses(host: &str, timeout: Duration) -> Result<Vec<IpAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let r = resolver(Upstream::System, timeout, true)?;
    let found = r
        .lookup_ip(host)
        .await
        .map_err(|e| format!("cannot resolve {host}: {}", describe(&e)))?;
    let ips: Vec<IpAddr> = found.iter().collect();
    if ips.is_empty() {
        return Err(format!("cannot resolve {host}: no A or AAAA record"));
    }
    Ok(ips)
}

/// [`addresses`], cut at `deadline` (the attempt's) as well as by `timeout` (the resolver's).
pub(crate) async fn addresses_by(
    host: &str,
    timeout: Duration,
    deadline: tokio::time::Instant,
) -> Result<Vec<IpAddr>, String> {
    tokio::time::timeout_at(deadline, addresses(host, timeout))
        .await
        .map_err(|_| {
            format!(
                "cannot resolve {host}: no answer within {}",
                crate::config::Dur(timeout)
            )
        })?
}

/// The first of [`addresses_by`] (never empty: `addresses` fails rather than find none).
pub(crate) async fn first_address(
    host: &str,
    timeout: Duration,
    deadline: tokio::time::Instant,
) -> Result<IpAddr, String> {
    addresses_by(host, timeout, deadline)
        .await?
        .first()
        .copied()
        .ok_or_else(|| format!("cannot resolve {host}"))
}

/// How [`connect_any`] failed: every address refused (the last error, in words), or one
/// did not answer before `deadline` (the caller words the timeout its own way).
pub(crate) enum ConnectFailure {
    Refused(String),
    NoAnswer(SocketAddr),
}

/// Resolves `host` and connects to the first of its addresses that accepts on `port`, by
/// `deadline`: the TCP step of tls_certificate's remote fetch and of tls_client's dial.
pub(crate) async fn connect_any(
    host: &str,
    port: u16,
    timeout: Duration,
    deadline: tokio::time::Instant,
) -> Result<Result<tokio::net::TcpStream, ConnectFailure>, String> {
    let addrs = addresses_by(host, timeout, deadline).await?;
    let mut last = String::new();
    for ip in addrs {
        let addr = SocketAddr::new(ip, port);
        match tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(s)) => return Ok(Ok(s)),
            Ok(Err(e)) => last = format!("cannot connect to {addr}: {e}"),
            Err(_) => return Ok(Err(ConnectFailure::NoAnswer(addr))),
        }
    }
    Ok(Err(ConnectFailure::Refused(last)))
}

/// A DNS failure in an operator's words: `NXDOMAIN`, `SERVFAIL`, `no answer`, ...
pub(crate) fn describe(e: &NetError) -> String {
    match e {
        NetError::Dns(DnsError::ResponseCode(c)) => rcode(*c),
        NetError::Dns(DnsError::NoRecordsFound(nr)) => match nr.response_code {
            ResponseCode::NXDomain => "NXDOMAIN (the name does not exist)".to_string(),
            ResponseCode::NoError => {
                "no A or AAAA record (NOERROR with an empty answer)".to_string()
            }
            c => format!("{} with no records", rcode(c)),
        },
        NetError::Timeout => "no answer (request timed out)".to_string(),
        NetError::Io(io) => format!("cannot reach the name server: {io}"),
        NetError::NoConnections => "no name server could be reached".to_string(),
        NetError::Proto(p) => format!("invalid answer: {p}"),
        other => other.to_string(),
    }
}

/// A response code as dig writes it.
fn rcode(c: ResponseCode) -> String {
    let name = match c {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        other => return format!("response code {} ({other})", u16::from(other)),
    };
    format!("{name} ({c})")
}
