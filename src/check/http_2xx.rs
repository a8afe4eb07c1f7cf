//! `http_2xx`: sends one HTTP(S) request and passes on a 2xx status.
//!
//! `https://` servers are verified against the system trust store (`SSL_CERT_FILE` and
//! `SSL_CERT_DIR` are honoured). Each attempt opens a fresh connection (a pooled one could
//! hide a server that no longer accepts), redirects are not followed (a 3xx is not healthy),
//! and at most [`BODY_LIMIT`] bytes of the body are read, so a huge or endless body costs nothing.
//!
//! This file is the kind's prober; its spec is `config/checks/http_2xx.rs`.

use reqwest::header::{HOST, HeaderMap};
use reqwest::{Method, Url};

use super::probe::{AttemptFuture, Check, CheckContext, Failure};
use crate::config::checks::http_2xx::Spec;

/// The most of a response body an attempt reads.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The prober of `spec`.
pub fn build(spec: &Spec, _ctx: &CheckContext) -> Result<Box<dyn Check>, String> {
    let url = spec.request_url()?;
    let method = spec.method()?;
    let headers = spec.header_map().map_err(|p| {
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
        .connect_timeout(spec.timeout.0)
        .user_agent(concat!("anycastd/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    Ok(Box::new(Http2xx {
        client,
        method,
        url,
        headers,
        payload: spec.payload.clone(),
    }))
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
