//! `http_2xx`: sends one HTTP(S) request and passes on a 2xx status.
//!
//! `https://` servers are verified against the system trust store (`SSL_CERT_FILE` and
//! `SSL_CERT_DIR` are honoured). Each attempt opens a fresh connection (a pooled one could
//! hide a server that no longer accepts), redirects are not followed (a 3xx is not healthy),
//! and at most [`BODY_LIMIT`] bytes of the body are read, so a huge or endless body costs nothing.
//!
//! This file is the kind's spec (the config side); its prober is `check/http_2xx.rs`.

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde::Deserialize;

use super::attempts::{Attempts, KindSpec, default_interval, default_timeout, default_tries};
use crate::duration::Dur;
use crate::problem::Problem;

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Http2xxSpec")]
pub struct Spec {
    /// `http://...` or `https://...`.
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    /// Request headers; a `Host` header sets the request's host.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body.
    #[serde(default)]
    pub payload: Option<String>,
    /// Replaces the path of `url`.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default = "default_tries")]
    pub tries: u32,
    #[serde(default = "default_interval")]
    pub interval: Dur,
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
}

fn default_method() -> String {
    "GET".to_string()
}

impl Spec {
    /// The URL requested: `url` with `path` applied.
    pub fn request_url(&self) -> Result<Url, String> {
        let mut url = Url::parse(&self.url).map_err(|e| {
            format!(
                "{:?} is not a URL ({e}); write e.g. http://127.0.0.1:8080/health",
                self.url
            )
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(format!("{:?} is not http:// or https://", self.url));
        }
        if url.host_str().is_none() {
            return Err(format!("{:?} has no host", self.url));
        }
        if let Some(p) = &self.path {
            let (path, query) = match p.split_once('?') {
                Some((path, q)) => (path, Some(q)),
                None => (p.as_str(), None),
            };
            url.set_path(path);
            if query.is_some() {
                url.set_query(query);
            }
        }
        Ok(url)
    }

    pub fn method(&self) -> Result<Method, String> {
        Method::from_bytes(self.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
            format!(
                "{:?} is not an HTTP method; use e.g. GET, HEAD or POST",
                self.method
            )
        })
    }

    pub fn header_map(&self) -> Result<HeaderMap, Vec<Problem>> {
        let mut map = HeaderMap::new();
        let mut problems = Vec::new();
        for (k, v) in &self.headers {
            match (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) {
                (Ok(name), Ok(value)) => {
                    map.insert(name, value);
                }
                (Err(_), _) => problems.push(Problem::new(
                    format!("headers.{k}"),
                    "is not a valid header name",
                )),
                (_, Err(_)) => problems.push(Problem::new(
                    format!("headers.{k}"),
                    "is not a valid header value (no control characters or newlines)",
                )),
            }
        }
        if problems.is_empty() {
            Ok(map)
        } else {
            Err(problems)
        }
    }
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
        if let Err(m) = self.request_url() {
            p.push(Problem::new("url", m));
        }
        if let Err(m) = self.method() {
            p.push(Problem::new("method", m));
        }
        if let Some(path) = &self.path
            && !path.starts_with('/')
        {
            p.push(Problem::new("path", format!("{path:?} must start with /")));
        }
        if let Err(mut h) = self.header_map() {
            p.append(&mut h);
        }
        p
    }

    fn target(&self) -> String {
        match self.request_url() {
            Ok(u) => format!("{} {u}", self.method.to_ascii_uppercase()),
            Err(_) => self.url.clone(),
        }
    }
}
