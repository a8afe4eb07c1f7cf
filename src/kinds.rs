//! The kinds of checks and watches, listed once. Each line is a kind as the config writes
//! it, its variant, and its module: a check kind's spec is `config/checks/<module>.rs` and
//! its prober `check/<module>.rs`; a watch kind's spec is `config/watches/<module>.rs` and
//! its loop `watch/<module>.rs`.
//!
//! `check_kinds!(m)` calls the macro `m` with the list: the config makes its spec enum and
//! parsing of it ([`crate::config::checks`]), the runtime its dispatch to the probers
//! ([`crate::check::build`]). A new kind is one line here and its two files; the compiler
//! names whatever else is missing.

/// Calls `$then!` with every check kind.
macro_rules! check_kinds {
    ($then:ident) => {
        $then! {
            "assigned_address" => AssignedAddress(assigned_address),
            "dns_lookup" => DnsLookup(dns_lookup),
            "grpc_health" => GrpcHealth(grpc_health),
            "http_2xx" => Http2xx(http_2xx),
            "icmp_ping" => IcmpPing(icmp_ping),
            "ntp" => Ntp(ntp),
            "tcp_connect" => TcpConnect(tcp_connect),
            "tftp_rrq" => TftpRrq(tftp_rrq),
            "tls_certificate" => TlsCertificate(tls_certificate),
        }
    };
}
pub(crate) use check_kinds;

/// Calls `$then!` with every watch kind.
macro_rules! watch_kinds {
    ($then:ident) => {
        $then! {
            "tcp" => Tcp(tcp),
            "pid_file" => PidFile(pid_file),
        }
    };
}
pub(crate) use watch_kinds;
