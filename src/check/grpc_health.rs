//! `grpc_health`: one `grpc.health.v1.Health/Check` call per attempt, over a fresh HTTP/2
//! connection (TLS with ALPN `h2` when the spec has `tls`); passes on `SERVING`.
//!
//! The connection is made by our own connector ([`super::tls_client`]): the host resolved,
//! TLS verified against the system's trust store, or not at all with `insecure`. A reply
//! larger than [`MAX_REPLY`] is refused, and header lists are capped at
//! [`MAX_HEADER_LIST`]: a health answer is a few bytes, whatever a server sends. Dropping
//! the attempt (its timeout) drops the channel and the connection's tasks with it.
//!
//! This file is the kind's prober; its spec is `config/checks/grpc_health.rs`.

use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::time::Instant;
use tonic::Code;
use tonic::transport::{Endpoint, Uri};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::probe::{AttemptFuture, Check, CheckContext, Failure, soft_deadline};
use super::tls_client::Dialer;
use crate::config::checks::attempts::KindSpec;
use crate::config::checks::grpc_health::Spec;
use crate::duration::Dur;
use crate::wording::{error_chain, quote};

/// The largest reply message read: a HealthCheckResponse is 2 bytes.
pub const MAX_REPLY: usize = 4 * 1024;

/// The largest header list (HTTP/2 headers and trailers) accepted from the server.
pub const MAX_HEADER_LIST: u32 = 16 * 1024;

/// The prober of `spec`.
pub fn build(spec: &Spec, _ctx: &CheckContext) -> Result<Box<dyn Check>, String> {
    let (host, port) = spec.host_port()?;
    let dialer = Dialer::new(&host, port, spec.tls.as_ref(), &[b"h2"], spec.timeout.0)?;
    let authority = dialer.display();
    // The connector makes the TLS, so the endpoint's own URI stays http:// (tonic would
    // add its TLS to an https:// one); the requests say https:// all the same.
    let scheme = if spec.tls.is_some() { "https" } else { "http" };
    let origin: Uri = format!("{scheme}://{authority}")
        .parse()
        .map_err(|e| format!("address {authority:?} does not make a URI: {e}"))?;
    let endpoint = Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|e| format!("address {authority:?} does not make a URI: {e}"))?
        .origin(origin)
        .user_agent(concat!("anycastd/", env!("CARGO_PKG_VERSION")))
        .map_err(|e| format!("cannot set the user agent: {e}"))?
        .http2_max_header_list_size(MAX_HEADER_LIST);
    Ok(Box::new(GrpcHealth {
        dialer,
        endpoint,
        service: spec.service.clone(),
        target: spec.target(),
        timeout: spec.timeout.0,
    }))
}

struct GrpcHealth {
    dialer: Dialer,
    endpoint: Endpoint,
    service: String,
    /// `http://host:port service`, the head of every failure message.
    target: String,
    timeout: Duration,
}

impl GrpcHealth {
    async fn probe(&self) -> Result<(), Failure> {
        let deadline = Instant::now() + soft_deadline(self.timeout);
        let fail = |m: String| Failure(format!("{}: {m}", self.target));
        let within = || format!("no answer within {}", Dur(self.timeout));
        let dialer = self.dialer.clone();
        let connector = tower::service_fn(move |_: Uri| {
            let dialer = dialer.clone();
            async move {
                dialer
                    .dial(deadline)
                    .await
                    .map(TokioIo::new)
                    .map_err(std::io::Error::other)
            }
        });
        let channel = match tokio::time::timeout_at(
            deadline,
            self.endpoint.connect_with_connector(connector),
        )
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(fail(error_chain(&e))),
            Err(_) => return Err(fail(format!("connecting: {}", within()))),
        };
        let mut client = HealthClient::new(channel).max_decoding_message_size(MAX_REPLY);
        let request = HealthCheckRequest {
            service: self.service.clone(),
        };
        let reply = match tokio::time::timeout_at(deadline, client.check(request)).await {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status)) => return Err(fail(self.describe(&status))),
            Err(_) => return Err(fail(format!("Health/Check: {}", within()))),
        };
        match ServingStatus::try_from(reply.status) {
            Ok(ServingStatus::Serving) => Ok(()),
            Ok(other) => Err(fail(format!("{}, not SERVING", other.as_str_name()))),
            Err(_) => Err(fail(format!(
                "status {} (not one grpc.health.v1 defines), not SERVING",
                reply.status
            ))),
        }
    }

    /// A failed call in an operator's words.
    fn describe(&self, s: &tonic::Status) -> String {
        let said = if s.message().is_empty() {
            String::new()
        } else {
            format!(": {}", quote(s.message()))
        };
        match s.code() {
            Code::Unimplemented => {
                format!("the server does not implement grpc.health.v1.Health (Unimplemented{said})")
            }
            Code::NotFound => format!(
                "the server knows no service {} (NotFound{said})",
                quote(&self.service)
            ),
            code => format!("Health/Check failed: {code:?}{said}"),
        }
    }
}

impl Check for GrpcHealth {
    fn attempt(&self) -> AttemptFuture<'_> {
        Box::pin(self.probe())
    }
}
