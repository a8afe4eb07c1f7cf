//! gobgpd's RIB as last listed, each path kept as the bytes gobgpd sent and what they
//! decoded to, so that a listing decodes only the paths that changed.
//!
//! A reconcile lists every path of gobgpd's global RIB (`ListPath`). With 20,000 prefixes,
//! decoding each path in full (prost builds the path, its `Any`-wrapped attributes, then
//! anycastd's [`Advert`](super::ops::Advert) of them) cost about 54 ms of the 130 ms of each
//! reconcile, every `reconcile_interval` (issue 20). Between two reconciles almost nothing
//! changes: a listing read as [`RawDestination`]s (the prefix and each path as raw bytes,
//! wire-compatible with GoBGP's `Destination`) is compared byte for byte with the last one,
//! and only a path whose bytes differ is decoded again. The comparison stays complete: a
//! path is taken from the cache only when gobgpd sent exactly the same bytes.
//!
//! Most listings are the same as the last one, byte for byte: a keyed digest of the whole
//! listing (each destination hashed, the hashes summed, so that gobgpd's order does not
//! matter) finds that in about a millisecond, and the last answer is returned as it was
//! (the same `Arc`), without a look into the cache. At 20,000 prefixes the lookups and the
//! rebuilt cache took about a fifth of anycastd's idle CPU (perf, issue 20).
//!
//! Generic over the request and the decode function: each API module ([`super::v3`], and
//! any later one) has its own messages and keeps one [`RawPaths`] per connection.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::{Arc, Mutex};

use prost::bytes::Bytes;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

/// One destination of a `ListPath` answer, undecoded: its prefix as gobgpd writes it, and
/// each of its paths as the bytes of the path message. Wire-compatible with GoBGP's
/// `Destination { string prefix = 1; repeated Path paths = 2; }` (a string, a message and
/// bytes are all length-delimited), in GoBGP 3's API as in 4's.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RawDestination {
    #[prost(bytes = "bytes", tag = "1")]
    pub prefix: Bytes,
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub paths: Vec<Bytes>,
}

/// One message of a `ListPath` stream, undecoded: `ListPathResponse { Destination
/// destination = 1; }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RawListPathResponse {
    #[prost(message, optional, tag = "1")]
    pub destination: Option<RawDestination>,
}

/// A path as last listed: its bytes, and what they decoded to (`None`: not a path the
/// caller wants, such as one learned from a peer).
struct Cached<T> {
    raw: Box<[u8]>,
    decoded: Option<T>,
}

/// The last listing's paths, by destination prefix.
pub struct PathCache<T> {
    by_prefix: HashMap<Box<[u8]>, Vec<Cached<T>>>,
    /// Paths decoded by the last [`PathCache::refresh`] (for the tests and the log).
    decoded: usize,
    /// The last listing's digest and answer.
    last: Option<(u64, Arc<Vec<T>>)>,
    /// The digest's key, this process's own: a listing made to collide with another needs
    /// it.
    keys: RandomState,
}

impl<T> Default for PathCache<T> {
    fn default() -> Self {
        PathCache {
            by_prefix: HashMap::new(),
            decoded: 0,
            last: None,
            keys: RandomState::new(),
        }
    }
}

impl<T> PathCache<T> {
    /// The digest of a listing: the sum of each destination's keyed hash (its prefix and
    /// its paths, each with its length), and their number. The same whatever the order of
    /// the destinations; another set of destinations or paths gives another digest.
    fn digest(&self, listing: &[RawDestination]) -> u64 {
        listing.iter().fold(listing.len() as u64, |sum, d| {
            let mut h = self.keys.build_hasher();
            h.write_usize(d.prefix.len());
            h.write(&d.prefix);
            for p in &d.paths {
                h.write_usize(p.len());
                h.write(p);
            }
            sum.wrapping_add(h.finish())
        })
    }
}

impl<T: Clone> PathCache<T> {
    /// Takes a complete listing (every destination gobgpd has, in any order) and returns
    /// what each of its paths decodes to, leaving out those that decode to `None`. A
    /// listing with the digest of the last one gets the last answer, the same `Arc`. A
    /// path whose bytes are the same as in the last listing is not decoded again;
    /// destinations absent from this listing leave the cache. A path that cannot be decoded
    /// fails the whole listing (as a message prost cannot decode fails the call) and
    /// empties the cache.
    pub fn refresh<E>(
        &mut self,
        listing: Vec<RawDestination>,
        decode: impl FnMut(&[u8]) -> Result<Option<T>, E>,
    ) -> Result<Arc<Vec<T>>, E> {
        let digest = self.digest(&listing);
        if let Some((last, answer)) = &self.last
            && *last == digest
        {
            self.decoded = 0;
            return Ok(answer.clone());
        }
        self.last = None;
        let answer = Arc::new(self.decode(listing, decode)?);
        self.last = Some((digest, answer.clone()));
        Ok(answer)
    }

    /// [`PathCache::refresh`] without the digest: each path looked up by its bytes.
    fn decode<E>(
        &mut self,
        listing: Vec<RawDestination>,
        mut decode: impl FnMut(&[u8]) -> Result<Option<T>, E>,
    ) -> Result<Vec<T>, E> {
        let mut out = Vec::with_capacity(self.by_prefix.len());
        let mut next: HashMap<Box<[u8]>, Vec<Cached<T>>> =
            HashMap::with_capacity(self.by_prefix.len());
        self.decoded = 0;
        for d in listing {
            let (key, mut before) = match self.by_prefix.remove_entry(d.prefix.as_ref()) {
                Some((key, before)) => (key, before),
                None => (Box::from(d.prefix.as_ref()), Vec::new()),
            };
            let mut paths = Vec::with_capacity(d.paths.len());
            for raw in &d.paths {
                let cached = match before.iter().position(|c| *c.raw == **raw) {
                    Some(i) => before.swap_remove(i),
                    None => {
                        self.decoded += 1;
                        let decoded = match decode(raw) {
                            Ok(d) => d,
                            Err(e) => {
                                self.by_prefix.clear();
                                return Err(e);
                            }
                        };
                        Cached {
                            raw: Box::from(raw.as_ref()),
                            decoded,
                        }
                    }
                };
                out.extend(cached.decoded.clone());
                paths.push(cached);
            }
            // A destination listed twice (never seen from gobgpd) keeps every path.
            next.entry(key).or_default().extend(paths);
        }
        self.by_prefix = next;
        Ok(out)
    }

    /// How many paths the last [`PathCache::refresh`] decoded (the others came from the
    /// cache).
    pub fn decoded(&self) -> usize {
        self.decoded
    }

    /// How many destinations the cache holds.
    pub fn len(&self) -> usize {
        self.by_prefix.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_prefix.is_empty()
    }
}

/// `ListPath` read raw over a connection's channel, and the paths of the last listing:
/// one per connection (a new gobgpd, or the same one after a restart, starts empty).
pub struct RawPaths<T> {
    channel: Channel,
    /// The cache, and the local AS its paths were decoded with (the AS path is read as a
    /// prepend of it): another one decodes everything again.
    cache: Mutex<(u32, PathCache<T>)>,
}

impl<T: Clone> RawPaths<T> {
    pub fn new(channel: Channel) -> RawPaths<T> {
        RawPaths {
            channel,
            cache: Mutex::new((0, PathCache::default())),
        }
    }

    /// One `ListPath` call (`path`: the method's gRPC path, such as
    /// `/apipb.GobgpApi/ListPath`), its destinations undecoded.
    pub async fn list<Req>(
        &self,
        path: &'static str,
        req: Req,
    ) -> Result<Vec<RawDestination>, tonic::Status>
    where
        Req: prost::Message + Send + Sync + 'static,
    {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unknown(format!("Service was not ready: {e}")))?;
        let codec = tonic_prost::ProstCodec::<Req, RawListPathResponse>::default();
        let mut stream = grpc
            .server_streaming(
                tonic::Request::new(req),
                PathAndQuery::from_static(path),
                codec,
            )
            .await?
            .into_inner();
        let mut dests = Vec::new();
        while let Some(r) = stream.message().await? {
            dests.extend(r.destination);
        }
        Ok(dests)
    }

    /// [`PathCache::refresh`] with the listing of every family (one listing: a destination
    /// absent from it leaves the cache), decoded for `local_asn`.
    pub fn refresh<E>(
        &self,
        local_asn: u32,
        listing: Vec<RawDestination>,
        decode: impl FnMut(&[u8]) -> Result<Option<T>, E>,
    ) -> Result<Arc<Vec<T>>, E> {
        // A panic while it was held left at worst a cache that decodes again.
        let mut guard = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (asn, cache) = &mut *guard;
        if *asn != local_asn {
            *cache = PathCache::default();
            *asn = local_asn;
        }
        let out = cache.refresh(listing, decode);
        tracing::debug!(
            decoded = cache.decoded(),
            destinations = cache.len(),
            "ListPath: paths decoded (the others were unchanged)"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(prefix: &str, paths: &[&str]) -> RawDestination {
        RawDestination {
            prefix: Bytes::copy_from_slice(prefix.as_bytes()),
            paths: paths
                .iter()
                .map(|p| Bytes::copy_from_slice(p.as_bytes()))
                .collect(),
        }
    }

    /// Decodes a "path" that is its own text; `skip` decodes to `None`. Counts the calls.
    fn decoder(calls: &mut Vec<String>) -> impl FnMut(&[u8]) -> Result<Option<String>, ()> + '_ {
        |raw| {
            let s = String::from_utf8_lossy(raw).into_owned();
            calls.push(s.clone());
            if s == "bad" {
                return Err(());
            }
            Ok((s != "skip").then_some(s))
        }
    }

    #[test]
    fn an_unchanged_path_is_not_decoded_again() {
        let mut cache = PathCache::default();
        let mut calls = Vec::new();
        let listing = || vec![dest("10.0.0.1/32", &["a"]), dest("10.0.0.2/32", &["b"])];
        let mut got = cache
            .refresh(listing(), decoder(&mut calls))
            .expect("decodes")
            .to_vec();
        got.sort();
        assert_eq!(got, ["a", "b"]);
        assert_eq!(cache.decoded(), 2);
        calls.clear();
        let mut got = cache
            .refresh(listing(), decoder(&mut calls))
            .expect("decodes")
            .to_vec();
        got.sort();
        assert_eq!(got, ["a", "b"], "the same answer from the cache");
        assert!(calls.is_empty(), "nothing decoded: {calls:?}");
        assert_eq!(cache.decoded(), 0);
    }

    #[test]
    fn the_same_listing_in_any_order_is_the_same_answer() {
        let mut cache = PathCache::default();
        let mut calls = Vec::new();
        let a = dest("10.0.0.1/32", &["a"]);
        let b = dest("10.0.0.2/32", &["b", "skip"]);
        let first = cache
            .refresh(vec![a.clone(), b.clone()], decoder(&mut calls))
            .expect("decodes");
        let again = cache
            .refresh(vec![b.clone(), a.clone()], decoder(&mut calls))
            .expect("decodes");
        assert!(Arc::ptr_eq(&first, &again), "the last answer, as it was");
        assert_eq!(cache.decoded(), 0);
        // What differs is another answer: a path's bytes, a path moved to another
        // destination, a destination fewer or twice.
        let moved = vec![
            dest("10.0.0.1/32", &["a", "skip"]),
            dest("10.0.0.2/32", &["b"]),
        ];
        let twice = vec![a.clone(), b.clone(), b.clone()];
        let changed = vec![
            dest("10.0.0.1/32", &["a"]),
            dest("10.0.0.2/32", &["b2", "skip"]),
        ];
        for other in [moved, twice, vec![a.clone()], changed] {
            let got = cache
                .refresh(other.clone(), decoder(&mut calls))
                .expect("decodes");
            assert!(!Arc::ptr_eq(&first, &got), "{other:?}");
            let back = cache
                .refresh(vec![a.clone(), b.clone()], decoder(&mut calls))
                .expect("decodes");
            assert_eq!(*back, *first);
        }
    }

    #[test]
    fn a_changed_path_is_decoded_again() {
        let mut cache = PathCache::default();
        let mut calls = Vec::new();
        cache
            .refresh(
                vec![dest("10.0.0.1/32", &["a"]), dest("10.0.0.2/32", &["b"])],
                decoder(&mut calls),
            )
            .expect("decodes")
            .to_vec();
        calls.clear();
        let mut got = cache
            .refresh(
                vec![dest("10.0.0.1/32", &["a2"]), dest("10.0.0.2/32", &["b"])],
                decoder(&mut calls),
            )
            .expect("decodes")
            .to_vec();
        got.sort();
        assert_eq!(got, ["a2", "b"]);
        assert_eq!(calls, ["a2"], "only the changed path");
    }

    #[test]
    fn a_vanished_prefix_leaves_the_cache() {
        let mut cache = PathCache::default();
        let mut calls = Vec::new();
        cache
            .refresh(
                vec![dest("10.0.0.1/32", &["a"]), dest("10.0.0.2/32", &["b"])],
                decoder(&mut calls),
            )
            .expect("decodes")
            .to_vec();
        assert_eq!(cache.len(), 2);
        let got = cache
            .refresh(vec![dest("10.0.0.2/32", &["b"])], decoder(&mut calls))
            .expect("decodes")
            .to_vec();
        assert_eq!(got, ["b"]);
        assert_eq!(cache.len(), 1);
        // Back with the same bytes: decoded again, the cache forgot it.
        calls.clear();
        cache
            .refresh(
                vec![dest("10.0.0.1/32", &["a"]), dest("10.0.0.2/32", &["b"])],
                decoder(&mut calls),
            )
            .expect("decodes")
            .to_vec();
        assert_eq!(calls, ["a"]);
        assert!(
            cache
                .refresh(Vec::new(), decoder(&mut calls))
                .expect("decodes")
                .to_vec()
                .is_empty()
        );
        assert!(cache.is_empty());
    }

    #[test]
    fn paths_decoded_to_none_are_remembered_and_left_out() {
        let mut cache = PathCache::default();
        let mut calls = Vec::new();
        let listing = || vec![dest("10.0.0.1/32", &["skip", "a"])];
        assert_eq!(
            cache
                .refresh(listing(), decoder(&mut calls))
                .expect("decodes")
                .to_vec(),
            ["a"]
        );
        calls.clear();
        assert_eq!(
            cache
                .refresh(listing(), decoder(&mut calls))
                .expect("decodes")
                .to_vec(),
            ["a"]
        );
        assert!(calls.is_empty(), "{calls:?}");
    }

    #[test]
    fn each_path_of_a_destination_is_matched_by_its_bytes() {
        // Two paths of one prefix (ours and one learned from a peer) in either order; one
        // more, and one fewer.
        let mut cache = PathCache::default();
        let mut calls = Vec::new();
        cache
            .refresh(vec![dest("10.0.0.1/32", &["a", "b"])], decoder(&mut calls))
            .expect("decodes")
            .to_vec();
        calls.clear();
        let mut got = cache
            .refresh(
                vec![dest("10.0.0.1/32", &["b", "a", "c"])],
                decoder(&mut calls),
            )
            .expect("decodes")
            .to_vec();
        got.sort();
        assert_eq!(got, ["a", "b", "c"]);
        assert_eq!(calls, ["c"]);
        calls.clear();
        assert_eq!(
            cache
                .refresh(vec![dest("10.0.0.1/32", &["c"])], decoder(&mut calls))
                .expect("decodes")
                .to_vec(),
            ["c"]
        );
        assert!(calls.is_empty());
    }

    #[test]
    fn a_path_that_cannot_be_decoded_fails_the_listing_and_empties_the_cache() {
        let mut cache = PathCache::default();
        let mut calls = Vec::new();
        cache
            .refresh(vec![dest("10.0.0.1/32", &["a"])], decoder(&mut calls))
            .expect("decodes")
            .to_vec();
        let bad = vec![dest("10.0.0.1/32", &["a"]), dest("10.0.0.2/32", &["bad"])];
        assert!(cache.refresh(bad, decoder(&mut calls)).is_err());
        assert!(cache.is_empty(), "nothing of a failed listing is trusted");
    }

    #[test]
    fn the_raw_messages_read_gobgps_wire_format() {
        use prost::Message;
        // Destination { prefix: "10.0.0.1/32", paths: [Path { best: true }] }, as GoBGP's
        // generated code writes it.
        let path = [0x20, 0x01]; // field 4 (best), varint 1
        let mut dest = vec![0x0a, 11];
        dest.extend_from_slice(b"10.0.0.1/32");
        dest.extend_from_slice(&[0x12, path.len() as u8]);
        dest.extend_from_slice(&path);
        let mut msg = vec![0x0a, dest.len() as u8];
        msg.extend_from_slice(&dest);
        let r = RawListPathResponse::decode(msg.as_slice()).expect("decodes");
        let d = r.destination.expect("a destination");
        assert_eq!(d.prefix.as_ref(), b"10.0.0.1/32");
        assert_eq!(d.paths, [Bytes::copy_from_slice(&path)]);
    }
}
