//! Where each part of a config document is: its maps, lists and values with their line and
//! column, read a second time (with serde-saphyr's `Spanned`) only when the config has a
//! problem, so that a valid config costs nothing. A problem's field path
//! (`services[0].checks[2].spec.url`) is looked up here, whichever section it comes from:
//! positions are found by path, not by each section's own code.
//!
//! JSON is read with the same parser (JSON is YAML 1.2's flow style), so the problems of a
//! JSON config get positions too; where that reading fails, problems keep their paths alone.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

use crate::problem::Position;

/// A config document's shape with the position of every node.
#[derive(Debug)]
pub struct Tree {
    root: Node,
}

#[derive(Debug)]
pub struct Node {
    /// Where the node starts (for a block map, at its first key).
    pub at: Position,
    pub kind: Kind,
}

#[derive(Debug)]
pub enum Kind {
    /// Entries in document order; a key given twice appears twice.
    Map(Vec<Entry>),
    Seq(Vec<Node>),
    /// The value as the parser read it (numbers as digits, `true`, text unquoted).
    Scalar(String),
    /// An empty value or `null`.
    Null,
}

#[derive(Debug)]
pub struct Entry {
    pub key: String,
    pub key_at: Position,
    pub value: Node,
}

/// What a path leads to in a [`Tree`].
#[derive(Debug)]
pub struct Found<'a> {
    /// The deepest node on the path.
    pub node: &'a Node,
    /// Where the key of that node is, when it is a map entry.
    pub key_at: Option<Position>,
    /// Whether the whole path was found (else `node` is the map or list it stops in).
    pub whole: bool,
}

impl Found<'_> {
    /// The position to show: the value when the whole path exists, else the key that opens
    /// the map the rest of the path would be in (`announcer:` for `announcer.next_hop`).
    pub fn position(&self) -> Position {
        match (self.whole, self.key_at) {
            (false, Some(k)) => k,
            _ => self.node.at,
        }
    }
}

impl Tree {
    /// Reads `text` (YAML, or JSON) into a tree; `None` when it is not a well-formed
    /// document. Repeated keys are kept (the config's own reading refuses them, and its
    /// error is then explained with the first one's position).
    pub fn read(text: &str) -> Option<Tree> {
        Tree::try_read(text).ok()
    }

    /// [`Tree::read`], with the parser's error.
    pub fn try_read(text: &str) -> Result<Tree, serde_saphyr::Error> {
        let mut options = serde_saphyr::Options::default();
        options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
        options.non_finite_float_policy = serde_saphyr::NonFiniteFloatPolicy::PassThrough;
        options.with_snippet = false;
        let root: Spanned<Raw> = serde_saphyr::from_str_with_options(text, options)?;
        Ok(Tree { root: node(root) })
    }

    pub fn root(&self) -> &Node {
        &self.root
    }

    /// Follows `path` (`services[0].checks[2].spec.url`) as far as it leads. Keys may
    /// contain dots (`headers.X.Y`): the longest key that fits is taken.
    pub fn find(&self, path: &str) -> Found<'_> {
        let mut found = Found {
            node: &self.root,
            key_at: None,
            whole: true,
        };
        let mut rest = path;
        while !rest.is_empty() {
            let next = match &found.node.kind {
                Kind::Seq(items) => {
                    index_step(rest).and_then(|(i, after)| items.get(i).map(|n| (n, None, after)))
                }
                Kind::Map(entries) => {
                    let r = rest.strip_prefix('.').unwrap_or(rest);
                    entries
                        .iter()
                        .filter(|e| {
                            r.strip_prefix(e.key.as_str()).is_some_and(|after| {
                                after.is_empty() || after.starts_with(['.', '['])
                            })
                        })
                        .max_by_key(|e| e.key.len())
                        .map(|e| (&e.value, Some(e.key_at), &r[e.key.len()..]))
                }
                _ => None,
            };
            match next {
                Some((node, key_at, after)) => {
                    found.node = node;
                    found.key_at = key_at;
                    rest = after;
                }
                None => {
                    found.whole = false;
                    break;
                }
            }
        }
        found
    }

    /// The path of the map entry whose key is at `at`, with the entry's siblings (for a key
    /// given twice: where the first one is).
    pub fn entry_at(&self, at: Position) -> Option<(String, &[Entry], &Entry)> {
        fn walk<'a>(
            node: &'a Node,
            path: &mut String,
            at: Position,
        ) -> Option<(String, &'a [Entry], &'a Entry)> {
            match &node.kind {
                Kind::Map(entries) => {
                    for e in entries {
                        let len = path.len();
                        push_key(path, &e.key);
                        if e.key_at == at {
                            return Some((path.clone(), entries.as_slice(), e));
                        }
                        if let Some(hit) = walk(&e.value, path, at) {
                            return Some(hit);
                        }
                        path.truncate(len);
                    }
                    None
                }
                Kind::Seq(items) => {
                    for (i, n) in items.iter().enumerate() {
                        let len = path.len();
                        path.push_str(&format!("[{i}]"));
                        if let Some(hit) = walk(n, path, at) {
                            return Some(hit);
                        }
                        path.truncate(len);
                    }
                    None
                }
                _ => None,
            }
        }
        walk(&self.root, &mut String::new(), at)
    }

    /// Every entry with key `key`, with its path, in document order.
    pub fn entries_named(&self, key: &str) -> Vec<(String, &Entry)> {
        fn walk<'a>(
            node: &'a Node,
            path: &mut String,
            key: &str,
            out: &mut Vec<(String, &'a Entry)>,
        ) {
            match &node.kind {
                Kind::Map(entries) => {
                    for e in entries {
                        let len = path.len();
                        push_key(path, &e.key);
                        if e.key == key {
                            out.push((path.clone(), e));
                        }
                        walk(&e.value, path, key, out);
                        path.truncate(len);
                    }
                }
                Kind::Seq(items) => {
                    for (i, n) in items.iter().enumerate() {
                        let len = path.len();
                        path.push_str(&format!("[{i}]"));
                        walk(n, path, key, out);
                        path.truncate(len);
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut String::new(), key, &mut out);
        out
    }
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

/// `[3]...` -> (3, "...").
fn index_step(rest: &str) -> Option<(usize, &str)> {
    let inner = rest.strip_prefix('[')?;
    let (digits, after) = inner.split_once(']')?;
    Some((digits.parse().ok()?, after))
}

impl Node {
    /// What the node is, for messages: `the value 5`, `a list`, `a map`, `nothing`.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Map(_) => "a map".to_string(),
            Kind::Seq(_) => "a list".to_string(),
            Kind::Scalar(s) => format!("the value {}", crate::wording::quote(s)),
            Kind::Null => "nothing".to_string(),
        }
    }

    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s) => Some(s),
            _ => None,
        }
    }
}

fn position(l: &Location) -> Position {
    Position {
        line: l.line(),
        column: l.column(),
    }
}

fn node(s: Spanned<Raw>) -> Node {
    Node {
        at: position(&s.referenced),
        kind: s.value.0,
    }
}

/// A node as read, before its position is attached.
struct Raw(Kind);

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

fn scalar<E>(v: impl fmt::Display) -> Result<Raw, E> {
    Ok(Raw(Kind::Scalar(v.to_string())))
}

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML node")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw, E> {
        scalar(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw, E> {
        scalar(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
        scalar(v)
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Raw, E> {
        scalar(v)
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Raw, E> {
        scalar(v)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
        scalar(v)
    }
    fn visit_char<E: de::Error>(self, v: char) -> Result<Raw, E> {
        scalar(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
        scalar(v)
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Raw, E> {
        scalar(String::from_utf8_lossy(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw(Kind::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw(Kind::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Raw>>()? {
            items.push(node(item));
        }
        Ok(Raw(Kind::Seq(items)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Raw>>()? {
            let value = map.next_value::<Spanned<Raw>>()?;
            let key_at = position(&key.referenced);
            let key = match key.value.0 {
                Kind::Scalar(s) => s,
                Kind::Null => "null".to_string(),
                // A list or map as a key: no config key looks like that.
                _ => "?".to_string(),
            };
            entries.push(Entry {
                key,
                key_at,
                value: node(value),
            });
        }
        Ok(Raw(Kind::Map(entries)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: u64, column: u64) -> Position {
        Position { line, column }
    }

    const DOC: &str = "announcer:\n  local_asn: 65000\n  peers:\n    - name: a\n      remote_asn: 1\nservices:\n  - name: web\n    checks:\n      - kind: http_2xx\n        spec:\n          url: http://x\n          headers:\n            X.Y: z\n";

    #[test]
    fn paths_lead_to_their_values() {
        let t = Tree::read(DOC).expect("reads");
        let f = t.find("announcer.local_asn");
        assert!(f.whole);
        assert_eq!(f.position(), at(2, 14));
        assert_eq!(f.node.scalar(), Some("65000"));
        assert_eq!(
            t.find("announcer.peers[0].remote_asn").position(),
            at(5, 19)
        );
        assert_eq!(t.find("announcer.peers[0]").position(), at(4, 7));
        assert_eq!(
            t.find("services[0].checks[0].spec.url").position(),
            at(11, 16)
        );
        // A key with a dot in it.
        assert_eq!(
            t.find("services[0].checks[0].spec.headers.X.Y").position(),
            at(13, 18)
        );
    }

    #[test]
    fn a_path_that_stops_short_gives_the_map_it_stops_in() {
        let t = Tree::read(DOC).expect("reads");
        let f = t.find("announcer.next_hop");
        assert!(!f.whole);
        assert_eq!(f.position(), at(1, 1));
        let f = t.find("services[3].name");
        assert!(!f.whole);
    }

    #[test]
    fn repeated_keys_are_kept_and_found_by_position() {
        let t = Tree::read("a:\n  b: 1\n  b: 2\n").expect("reads");
        let (path, siblings, e) = t.entry_at(at(3, 3)).expect("the second b");
        assert_eq!(path, "a.b");
        assert_eq!(e.value.scalar(), Some("2"));
        assert_eq!(siblings[0].key_at, at(2, 3));
        assert_eq!(t.entries_named("b").len(), 2);
    }

    #[test]
    fn json_is_read_too() {
        let t = Tree::read("{\n  \"a\": {\"b\": [1, 2]}\n}").expect("reads");
        assert_eq!(t.find("a.b[1]").position(), at(2, 18));
    }
}
