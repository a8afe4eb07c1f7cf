//! The gRPC plumbing both API modules share: the channel to gobgpd, each call bounded by
//! the timeout, and tonic's errors in anycastd's terms.

use std::future::Future;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use super::ops::GobgpError;

/// Opens the HTTP/2 channel to gobgpd at `endpoint` (`host:port`), once; the caller retries.
pub async fn connect(endpoint: &str, timeout: Duration) -> Result<Channel, GobgpError> {
    let err = |reason: String| GobgpError::Connect {
        endpoint: endpoint.to_string(),
        reason,
    };
    Endpoint::from_shared(format!("http://{endpoint}"))
        .map_err(|e| err(e.to_string()))?
        .connect_timeout(timeout)
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| err(crate::wording::error_chain(&e)))
}

/// Where the calls go and how long each may take.
#[derive(Debug, Clone)]
pub struct Calls {
    pub endpoint: String,
    pub timeout: Duration,
}

impl Calls {
    /// Runs one call under the timeout, mapping errors.
    pub async fn call<T>(
        &self,
        call: &'static str,
        fut: impl Future<Output = Result<T, tonic::Status>>,
    ) -> Result<T, GobgpError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(s)) => Err(self.error(call, &s)),
            Err(_) => Err(GobgpError::Timeout {
                endpoint: self.endpoint.clone(),
                call,
                timeout: self.timeout,
            }),
        }
    }

    /// A failed call of `call`.
    pub fn error(&self, call: &'static str, s: &tonic::Status) -> GobgpError {
        GobgpError::Rpc {
            endpoint: self.endpoint.clone(),
            call,
            code: s.code(),
            message: s.message().to_string(),
        }
    }
}

/// An error of an event stream (its endpoint is not known there).
pub fn stream_error(s: &tonic::Status) -> GobgpError {
    GobgpError::Rpc {
        endpoint: "(stream)".to_string(),
        call: "WatchEvent",
        code: s.code(),
        message: s.message().to_string(),
    }
}

/// `seconds` since the epoch as a protobuf timestamp.
pub fn now() -> prost_types::Timestamp {
    prost_types::Timestamp::from(std::time::SystemTime::now())
}
