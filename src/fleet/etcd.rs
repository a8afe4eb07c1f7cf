//! etcd with failover between members: one etcd-client [`Client`] per endpoint, the calls
//! the fleet makes, each tried on the member that answered last and then on the others.
//!
//! Why not one client over all endpoints: etcd-client balances over tonic's channel, which
//! keeps sending a share of the calls to a member that is down (they fail with "tcp connect
//! error"): with one of three members stopped, claims failed at random. Here a call that
//! fails for want of an answer (refused, reset, timed out, no leader, not gRPC) moves on to
//! the next member at once, and the member that answers is used first from then on.

use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, GetOptions, PutOptions, Txn, TxnResponse};
use tonic::Code;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// No member answered: what each said.
    #[error("no etcd member answered: {}", .0.join("; "))]
    Unreachable(Vec<String>),
    /// A member answered with an error that another member would repeat (permission, ...).
    #[error("etcd refused: {}", describe(.0))]
    Refused(etcd_client::Error),
}

/// The members of one etcd cluster.
pub struct Etcd {
    endpoints: Vec<String>,
    options: ConnectOptions,
    /// Bound on one call to one member.
    attempt: Duration,
    clients: Vec<Option<Client>>,
    /// The member to ask first: the one that answered last.
    current: usize,
}

impl Etcd {
    /// No network yet: members are connected on first use. `attempt` bounds one call to
    /// one member (also set as the clients' request and connect timeout).
    pub fn new(endpoints: Vec<String>, options: ConnectOptions, attempt: Duration) -> Etcd {
        let clients = endpoints.iter().map(|_| None).collect();
        Etcd {
            endpoints,
            options: options.with_timeout(attempt).with_connect_timeout(attempt),
            attempt,
            clients,
            current: 0,
        }
    }

    /// Runs `call` on the members in turn, from the current one, until one answers.
    async fn call<T, F, Fut>(&mut self, call: F) -> Result<T, EtcdError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let n = self.endpoints.len();
        let mut failures = Vec::new();
        for k in 0..n {
            let i = (self.current + k) % n;
            let endpoint = &self.endpoints[i];
            let client = match &self.clients[i] {
                Some(c) => c.clone(),
                None => {
                    let connect = Client::connect([endpoint.as_str()], Some(self.options.clone()));
                    match tokio::time::timeout(self.attempt, connect).await {
                        Ok(Ok(c)) => {
                            self.clients[i] = Some(c.clone());
                            c
                        }
                        Ok(Err(e)) if !answered(&e) => {
                            failures.push(format!("{endpoint}: {}", describe(&e)));
                            continue;
                        }
                        Ok(Err(e)) => return Err(EtcdError::Refused(e)),
                        Err(_) => {
                            failures
                                .push(format!("{endpoint}: no answer within {:?}", self.attempt));
                            continue;
                        }
                    }
                }
            };
            match tokio::time::timeout(self.attempt, call(client)).await {
                Ok(Ok(v)) => {
                    self.current = i;
                    return Ok(v);
                }
                Ok(Err(e)) if answered(&e) => return Err(EtcdError::Refused(e)),
                Ok(Err(e)) => failures.push(format!("{endpoint}: {}", describe(&e))),
                Err(_) => failures.push(format!("{endpoint}: no answer within {:?}", self.attempt)),
            }
        }
        Err(EtcdError::Unreachable(failures))
    }

    /// Every key under `prefix`, at one revision.
    pub async fn range(&mut self, prefix: &str) -> Result<Vec<Kv>, EtcdError> {
        Ok(self.range_at(prefix).await?.0)
    }

    /// Every key under `prefix`, and the store's revision they were read at (`None` when
    /// the member sent no header).
    pub async fn range_at(&mut self, prefix: &str) -> Result<(Vec<Kv>, Option<i64>), EtcdError> {
        self.call(|mut c| async move {
            let r = c.get(prefix, Some(GetOptions::new().with_prefix())).await?;
            let revision = r.header().map(|h| h.revision());
            Ok((r.kvs().iter().map(Kv::from).collect(), revision))
        })
        .await
    }

    /// The store's revision now, read with the one key `key`. It moves with every change
    /// to any key (a put, a delete, the keys of an expired lease): the same revision is the
    /// same store. A lease kept alive does not move it.
    pub async fn revision(&mut self, key: &str) -> Result<Option<i64>, EtcdError> {
        self.call(|mut c| async move {
            let r = c
                .get(key, Some(GetOptions::new().with_count_only()))
                .await?;
            Ok(r.header().map(|h| h.revision()))
        })
        .await
    }

    pub async fn get(&mut self, key: &str) -> Result<Option<Kv>, EtcdError> {
        self.call(|mut c| async move {
            let r = c.get(key, None).await?;
            Ok(r.kvs().first().map(Kv::from))
        })
        .await
    }

    /// Puts `key` (under `lease` unless 0).
    pub async fn put(&mut self, key: &str, value: &str, lease: i64) -> Result<(), EtcdError> {
        self.call(|mut c| async move {
            let opts = (lease != 0).then(|| PutOptions::new().with_lease(lease));
            c.put(key, value, opts).await.map(drop)
        })
        .await
    }

    pub async fn delete(&mut self, key: &str) -> Result<(), EtcdError> {
        self.call(|mut c| async move { c.delete(key, None).await.map(drop) })
            .await
    }

    pub async fn txn(&mut self, txn: Txn) -> Result<TxnResponse, EtcdError> {
        self.call(|mut c| {
            let txn = txn.clone();
            async move { c.txn(txn).await }
        })
        .await
    }

    /// A new lease of `ttl` seconds: its id.
    pub async fn grant(&mut self, ttl: i64) -> Result<i64, EtcdError> {
        self.call(|mut c| async move { c.lease_grant(ttl, None).await.map(|r| r.id()) })
            .await
    }

    /// One keep-alive of `lease`: `false` when etcd no longer knows it (it expired, or was
    /// revoked).
    pub async fn keep_alive(&mut self, lease: i64) -> Result<bool, EtcdError> {
        self.call(|mut c| async move {
            match c.lease_keep_alive(lease).await {
                Ok(_) => Ok(true),
                // etcd answers a keep-alive of an unknown lease with TTL 0, which etcd-client
                // reports as this error.
                Err(etcd_client::Error::LeaseKeepAliveError(m)) if m.contains("not found") => {
                    Ok(false)
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    pub async fn revoke(&mut self, lease: i64) -> Result<(), EtcdError> {
        self.call(|mut c| async move { c.lease_revoke(lease).await.map(drop) })
            .await
    }
}

/// An etcd-client error in words: a transport error by its causes (`transport error: tcp
/// connect error: Connection refused (os error 111)`), a status by its code and its causes
/// or message; never a debug dump (`status: Unavailable, message:
/// "tonic::transport::Error(Transport, ConnectError(...))"`, issue 23.7).
pub fn describe(e: &etcd_client::Error) -> String {
    use crate::wording::error_chain;
    match e {
        etcd_client::Error::TransportError(t) => error_chain(t),
        etcd_client::Error::GRpcStatus(s) => {
            let why = match std::error::Error::source(s) {
                Some(cause) => error_chain(cause),
                None if s.message().is_empty() => "no message".to_string(),
                None => s.message().to_string(),
            };
            format!("{} ({why})", s.code().description())
        }
        other => other.to_string(),
    }
}

/// Whether a member answered `e` itself (another member would say the same), as opposed to
/// not answering at all.
fn answered(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) => matches!(
            s.code(),
            Code::InvalidArgument
                | Code::NotFound
                | Code::AlreadyExists
                | Code::PermissionDenied
                | Code::FailedPrecondition
                | Code::OutOfRange
                | Code::Unauthenticated
        ),
        etcd_client::Error::InvalidArgs(_) | etcd_client::Error::InvalidUri(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 23.7: a member that is not there is said in words, not as a debug dump.
    #[tokio::test]
    async fn a_member_that_is_not_there_is_said_in_words() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut etcd = Etcd::new(
            vec![format!("http://127.0.0.1:{port}")],
            ConnectOptions::new(),
            Duration::from_secs(2),
        );
        let e = etcd
            .range("/x")
            .await
            .expect_err("nobody listens")
            .to_string();
        assert!(!e.contains("Error(") && !e.contains("ConnectError"), "{e}");
        assert!(
            e.starts_with(&format!(
                "no etcd member answered: http://127.0.0.1:{port}: "
            )),
            "{e}"
        );
        assert!(e.contains("Connection refused"), "{e}");
    }

    #[test]
    fn only_answers_that_every_member_would_repeat_stop_the_failover() {
        let status = |code| etcd_client::Error::GRpcStatus(tonic::Status::new(code, "x"));
        assert!(answered(&status(Code::PermissionDenied)));
        assert!(answered(&status(Code::Unauthenticated)));
        assert!(!answered(&status(Code::Unavailable)), "refused, no leader");
        assert!(!answered(&status(Code::DeadlineExceeded)));
        assert!(
            !answered(&status(Code::Internal)),
            "a peer that is not gRPC"
        );
        assert!(!answered(&status(Code::Unknown)));
        assert!(!answered(&etcd_client::Error::LeaseKeepAliveError(
            "channel closed".into()
        )));
    }
}

/// One key as read from etcd (the fields the guard uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
}

impl From<&etcd_client::KeyValue> for Kv {
    fn from(kv: &etcd_client::KeyValue) -> Kv {
        Kv {
            key: kv.key().to_vec(),
            value: kv.value().to_vec(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
        }
    }
}
