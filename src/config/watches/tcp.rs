//! `tcp: HOST:PORT`: the spec of a tcp watch (the config side); its loop is
//! `watch/tcp.rs`.

use serde::Deserialize;

use super::super::validate::check_host_port;

/// `tcp: HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Spec {
    /// `127.0.0.1:8080`, `[::1]:8080` or `name:8080` (resolved at every connect).
    pub address: String,
}

impl Spec {
    /// `Err` with the message (and fix) when `address` is not `HOST:PORT`.
    pub fn validate(&self) -> Result<(), String> {
        check_host_port(
            self.address.trim(),
            "write HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080",
        )
    }
}

impl Spec {
    /// What it watches.
    pub fn target(&self) -> String {
        self.address.clone()
    }
}

impl schemars::JsonSchema for Spec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TcpWatch".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": r"^\s*(\[[0-9a-fA-F:.]+\]|[^:\s\[\]]+):[0-9]{1,5}\s*$",
            "description": "HOST:PORT of a TCP connection held open: its close, reset or refusal starts a round",
            "examples": ["127.0.0.1:8080", "[::1]:8080"]
        })
    }
}
