//! `http_2xx`: sends one HTTP(S) request and passes on a 2xx status.
//!
//! `https://` servers are verified against the system trust store (`SSL_CERT_FILE` and
//! `SSL_CERT_DIR` are honoured). Each attempt opens a fresh connection (a pooled one could
//! hide a server that no longer accepts), redirects are not followed (a 3xx is not healthy),
//! and at most [`BODY_LIMIT`] bytes of the body are read, so a huge or endless body costs nothing.

use std::collections::BTreeMap;

use reqwest::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};
use serde::Deserialize;

use super::{
    AttemptFuture, Attempts, Check, CheckContext, Failure, KindSpec, default_interval,
    default_timeout, default_tries,
};
use crate::duration::Dur;
use crate::problem::Problem;

/// The most of a response body an attempt reads.
pub const BODY_LIMIT: usize = 64 * 1024;

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
    fn request_url(&self) -> Result<Url, String> {
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

    fn method(&self) -> Result<Method, String> {
        Method::from_bytes(self.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
            format!(
                "{:?} is not an HTTP method; use e.g. GET, HEAD or POST",
                self.method
            )
        })
    }

    fn header_map(&self) -> Result<HeaderMap, Vec<Problem>> {
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

    fn build(&self, _ctx: &CheckContext) -> Result<Box<dyn Check>, String> {
        let url = self.request_url()?;
        let method = self.method()?;
        let headers = self.header_map().map_err(|p| {
            p.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(super::trust::verifying_client_config()?)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .connect_timeout(self.timeout.0)
            .user_agent(concat!("anycastd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Box::new(Http2xx {
            client,
            method,
            url,
            headers,
            payload: self.payload.clone(),
        }))
    }
}

struct Http2xx {
    client: reqwest::Client,
    method: Method,
    url: Url,
    headers: HeaderMap,
    payload: Option<String>,
}

impl Http2xx {
    async fn probe(&self) -> Result<(), Failure> {
        let mut req = self
            .client
            .request(self.method.clone(), self.url.clone())
            .headers(self.headers.clone());
        if let Some(body) = &self.payload {
            req = req.body(body.clone());
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| Failure(describe(&e, &self.url)))?;
        let status = resp.status();
        // Read a bounded part of the body: a server that stalls mid-body is not healthy, and
        // the Runner's timeout bounds this read.
        let mut read = 0usize;
        while read < BODY_LIMIT {
            match resp.chunk().await {
                Ok(Some(c)) => read += c.len(),
                Ok(None) => break,
                Err(e) => {
                    return Err(Failure(format!(
                        "{} {}: body: {}",
                        self.method,
                        self.url,
                        crate::wording::error_chain(&e)
                    )));
                }
            }
        }
        if status.is_success() {
            Ok(())
        } else {
            let host = self
                .headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .map(|h| format!(" (Host: {h})"))
                .unwrap_or_default();
            Err(Failure(format!(
                "{} {}{host} answered {status}, not 2xx",
                self.method, self.url
            )))
        }
    }
}

impl Check for Http2xx {
    fn attempt(&self) -> AttemptFuture<'_> {
        Box::pin(self.probe())
    }
}

fn describe(e: &reqwest::Error, url: &Url) -> String {
    let what = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    // reqwest's own layers ("error sending request for url ...: client error (Connect)")
    // say nothing the operator needs; the innermost cause does.
    let mut root: &dyn std::error::Error = e;
    while let Some(s) = root.source() {
        root = s;
    }
    format!("{url}: {what}: {root}")
}
