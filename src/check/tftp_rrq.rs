//! `tftp_rrq`: passes if the file at `tftp://host:port/path` can be read (and, when
//! `expected_sha256` is given, has that hash).

use serde::Deserialize;

use super::{
    Attempts, Check, CheckContext, KindSpec, default_interval, default_timeout, default_tries,
};
use crate::config::{Dur, Problem};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// `tftp://host:port/file`.
    pub url: String,
    /// Hex SHA-256 of the file, any case.
    #[serde(default)]
    pub expected_sha256: Option<String>,
    #[serde(default = "default_tries")]
    pub tries: u32,
    #[serde(default = "default_interval")]
    pub interval: Dur,
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
}

impl KindSpec for Spec {
    fn attempts(&self) -> Attempts {
        Attempts {
            tries: self.tries,
            interval: self.interval.0,
            timeout: self.timeout.0,
        }
    }

    fn validate(&self) -> Vec<Problem> {
        let mut p = self.attempts().problems();
        match url::Url::parse(&self.url) {
            Ok(u) if u.scheme() != "tftp" => p.push(Problem::new(
                "url",
                format!(
                    "{:?} is not a tftp:// URL; write tftp://host:port/file",
                    self.url
                ),
            )),
            Ok(u) if u.host_str().is_none() || u.path().trim_start_matches('/').is_empty() => p
                .push(Problem::new(
                    "url",
                    format!(
                        "{:?} needs a host and a file: tftp://host:port/file",
                        self.url
                    ),
                )),
            Ok(_) => {}
            Err(e) => p.push(Problem::new(
                "url",
                format!(
                    "{:?} is not a URL ({e}); write tftp://host:port/file",
                    self.url
                ),
            )),
        }
        if let Some(h) = &self.expected_sha256
            && (h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()))
        {
            p.push(Problem::new(
                "expected_sha256",
                "must be 64 hex digits (a SHA-256), any case",
            ));
        }
        p
    }

    fn target(&self) -> String {
        self.url.clone()
    }

    fn build(&self, _ctx: &CheckContext) -> Result<Box<dyn Check>, String> {
        Err("the tftp_rrq prober is not in this build yet".to_string())
    }
}
