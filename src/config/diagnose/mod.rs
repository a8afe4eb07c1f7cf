//! Config errors in the project's words: what is wrong, what is valid and how to fix it,
//! with the field's path and its line and column, never a parser's internals.
//!
//! The parsers (serde-saphyr for YAML, serde_json) stop at the first error and say it their
//! way (`invalid u32`, `duplicate mapping key: local_asn, set DuplicateKeyPolicy in
//! Options if acceptable`, `expected ',' or '}'`). [`yaml`] and [`json`] turn such an error
//! into a [`Problem`]: the cause is read from the error's structure (or, for serde_json and
//! serde's own messages, from serde's fixed wording), the value at fault is read from the
//! document's [`Tree`], and the message is written here. [`locate`] gives the problems of
//! validation their line and column. Everything is path-based: a section added to the
//! config gets the same treatment without code of its own.

use std::fmt::Write as _;

use serde_saphyr::granit_parser::ErrorKind as ScanKind;

use crate::config::position::{Kind, Tree};
use crate::problem::{Position, Problem};
use crate::wording::{quote, suggestion};

mod syntax;
use syntax::{json_syntax, syntax_problem};

/// Put before a field path inside a custom error's message (`\u{1}spec.ipv4\u{1}...`) by
/// code that deserializes a part of the document on its own (a check's `spec` written
/// before its `kind`): the path is moved back where it belongs, after the error's own.
pub const SUBPATH: char = '\u{1}';

/// What to write in an empty config, said by every "there is no config here" message.
const START: &str = "a config needs at least `announcer` (router_id, local_address, local_asn) and `services` (each with name, check_interval and checks); \"Config reference\" in the README lists every key, and `anycastd --config FILE check-config` checks a file";

/// The problem of an empty file.
pub fn empty_file() -> Problem {
    Problem::new("", format!("the file is empty: {START}"))
}

/// Gives each problem that has a path and no position the position of its field (or of the
/// map it is missing from) in `text`.
pub fn locate(text: &str, problems: &mut [Problem]) {
    if problems.iter().all(|p| p.at.is_some() || p.path.is_empty()) {
        return;
    }
    let Some(tree) = Tree::read(text) else {
        return;
    };
    for p in problems
        .iter_mut()
        .filter(|p| p.at.is_none() && !p.path.is_empty())
    {
        p.at = Some(tree.find(&p.path).position());
    }
}

/// A YAML config's reading error in the project's words. `path` is where the reading was
/// (serde_path_to_error's path).
pub fn yaml(text: &str, err: &serde_saphyr::Error, path: &str) -> Problem {
    let (cause, at) = saphyr_cause(err);
    if !cause.needs_tree() {
        return explain(cause, &clean(path), at, None, text);
    }
    match Tree::try_read(text) {
        Ok(tree) => explain(cause, &clean(path), at, Some(&tree), text),
        // The document itself is not well-formed: that is the error to fix, even when the
        // reading stopped earlier on its consequence (a key indented too little ends its
        // map early, and the map then lacks that key).
        Err(e) => {
            let (syntax, syntax_at) = saphyr_cause(&e);
            match syntax {
                Cause::Syntax(kind) => {
                    let mut p = syntax_problem(&kind, syntax_at, text);
                    if let Cause::MissingField(field) = &cause {
                        let map = clean(path);
                        let _ = write!(
                            p.message,
                            " (because of it, {} lacks `{field}`)",
                            if map.is_empty() { "the file" } else { &map }
                        );
                    }
                    p
                }
                _ => explain(cause, &clean(path), at, None, text),
            }
        }
    }
}

/// A JSON config's reading error in the project's words.
pub fn json(text: &str, err: &serde_json::Error, path: &str) -> Problem {
    use serde_json::error::Category;
    let at = Position {
        line: err.line() as u64,
        column: (err.column() as u64).max(1),
    };
    let message = err.to_string();
    let message = message
        .strip_suffix(&format!(" at line {} column {}", err.line(), err.column()))
        .unwrap_or(&message);
    match err.classify() {
        Category::Syntax | Category::Eof => {
            Problem::new("", json_syntax(message)).at((err.line() > 0).then_some(at))
        }
        Category::Io => Problem::new("", message.to_string()),
        Category::Data => {
            let cause = classify(message);
            let tree = if cause.needs_tree() {
                Tree::read(text)
            } else {
                None
            };
            // serde_json stops at the closing quote of an unknown key: show where it starts.
            let mut at = at;
            if let Cause::UnknownField { field, .. } = &cause {
                let start = Position {
                    line: at.line,
                    column: at.column.saturating_sub(field.chars().count() as u64 + 1),
                };
                if start.column > 0 && source_char(text, start) == Some('"') {
                    at = start;
                }
            }
            explain(cause, &clean(path), Some(at), tree.as_ref(), text)
        }
    }
}

/// `announcer.?` -> `announcer`: serde_path_to_error's `?` stands for a key it did not see.
fn clean(path: &str) -> String {
    let p = if path == "." { "" } else { path };
    p.split('.')
        .filter(|s| *s != "?")
        .collect::<Vec<_>>()
        .join(".")
}

/// Why the reading stopped, independent of the parser.
#[derive(Debug)]
enum Cause {
    UnknownField {
        field: String,
        expected: Vec<String>,
    },
    MissingField(String),
    Duplicate(Option<String>),
    Wrong {
        expected: Expect,
        found: Option<String>,
    },
    UnknownVariant {
        variant: String,
        expected: Vec<String>,
    },
    Syntax(ScanKind),
    Eof,
    Limit,
    Aliases,
    UnknownAnchor,
    Documents,
    NotText,
    /// A message already in the project's words (a field's own parser said it).
    Ours(String),
}

impl Cause {
    /// Whether wording it needs the document's [`Tree`] (the value at fault, the first of
    /// two keys, where a missing key is instead) or a check that the document is
    /// well-formed (a key indented too little makes its map lack it). The others are worded
    /// from the error alone: reading the tree costs as much as reading the document, which
    /// the parser may have stopped reading early (a map of 200,000 unknown keys: 10 ms to
    /// the first, 2.7 s for the tree, in a debug build).
    fn needs_tree(&self) -> bool {
        !matches!(
            self,
            Cause::UnknownField { .. }
                | Cause::Syntax(_)
                | Cause::Limit
                | Cause::Aliases
                | Cause::UnknownAnchor
                | Cause::Documents
                | Cause::NotText
        )
    }
}

/// What a field wanted.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    Integer(String),
    Number,
    Bool,
    Text,
    List,
    Map,
    Ipv4,
    Ipv6,
    Ip,
    Socket,
    Other(String),
}

impl Expect {
    /// From a type name or serde's "expected" text (`u32`, `a sequence`, `struct X`).
    fn of(s: &str) -> Expect {
        let s = s.trim();
        match s {
            "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64"
            | "i128" | "isize" => Expect::Integer(s.to_string()),
            "f32" | "f64" | "a float" => Expect::Number,
            "bool" | "a boolean" | "boolean" => Expect::Bool,
            "a string" | "string" | "str" | "char" | "a character" | "string scalar"
            | "a borrowed string" | "path string" => Expect::Text,
            "a sequence" | "sequence" | "sequence start" | "a list" => Expect::List,
            "a map" | "map" | "mapping start" | "a mapping" => Expect::Map,
            "IPv4 address" => Expect::Ipv4,
            "IPv6 address" => Expect::Ipv6,
            "IP address" => Expect::Ip,
            "socket address" | "IPv4 socket address" | "IPv6 socket address" => Expect::Socket,
            _ if s.starts_with("struct ") || s.starts_with("a check") => Expect::Map,
            _ => Expect::Other(s.to_string()),
        }
    }
}

fn position(l: &serde_saphyr::Location) -> Option<Position> {
    (l.line() > 0).then(|| Position {
        line: l.line(),
        column: l.column().max(1),
    })
}

/// The cause and position of a serde-saphyr error. One match over the parser's error kinds,
/// each worded in place: it reads best whole (a function per kind would only move the arms).
fn saphyr_cause(err: &serde_saphyr::Error) -> (Cause, Option<Position>) {
    use serde_saphyr::Error as E;
    let err = err.without_snippet();
    let at = err.location().as_ref().and_then(position);
    let cause = match err {
        E::AliasError { error, .. } => return saphyr_cause(error),
        E::Message { msg, .. } => classify(msg),
        E::SerdeUnknownField {
            field, expected, ..
        } => Cause::UnknownField {
            field: field.clone(),
            expected: expected.iter().map(|s| s.to_string()).collect(),
        },
        E::SerdeMissingField { field, .. } => Cause::MissingField(field.to_string()),
        E::DuplicateMappingKey { key, .. } => Cause::Duplicate(key.clone()),
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | E::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => Cause::Wrong {
            expected: Expect::of(expected),
            found: Some(unexpected.clone()),
        },
        E::SerdeInvalidLength { expected, .. } => Cause::Wrong {
            expected: Expect::of(expected),
            found: None,
        },
        E::SerdeUnknownVariant {
            variant, expected, ..
        } => Cause::UnknownVariant {
            variant: variant.clone(),
            expected: expected.iter().map(|s| s.to_string()).collect(),
        },
        E::InvalidScalar { ty, .. } => Cause::Wrong {
            expected: Expect::of(ty),
            found: None,
        },
        E::InvalidBooleanStrict { .. } => Cause::Wrong {
            expected: Expect::Bool,
            found: None,
        },
        E::Unexpected { expected, .. } => Cause::Wrong {
            expected: Expect::of(expected),
            found: None,
        },
        E::NullIntoString { .. } => Cause::Wrong {
            expected: Expect::Text,
            found: Some("nothing".into()),
        },
        E::ExternalMessage { source, .. } => match source.as_ref() {
            serde_saphyr::ExternalMessageSource::Parser(scan) => Cause::Syntax(scan.kind().clone()),
            _ => Cause::Syntax(ScanKind::Custom(String::new())),
        },
        E::Eof { .. } => Cause::Eof,
        E::MultipleDocuments { .. } => Cause::Documents,
        E::UnknownAnchor { .. } => Cause::UnknownAnchor,
        E::AliasReplayCounterOverflow { .. }
        | E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. } => Cause::Aliases,
        E::Budget { .. } => Cause::Limit,
        E::InvalidUtf8Input => Cause::NotText,
        E::IOError { cause } if cause.kind() == std::io::ErrorKind::InvalidData => Cause::NotText,
        E::UnexpectedSequenceEnd { .. }
        | E::UnexpectedMappingEnd { .. }
        | E::ContainerEndMismatch { .. }
        | E::UnexpectedContainerEndWhileReadingKeyNode { .. }
        | E::UnexpectedContainerEndWhileSkippingNode { .. } => {
            Cause::Syntax(ScanKind::InvalidIndentation)
        }
        // Tags (`!!binary`, ...) and the rest: no config needs them.
        _ => Cause::Ours(
            "this value cannot be read here: write it plainly, without a YAML tag (`!!...`) or binary data"
                .to_string(),
        ),
    };
    (cause, at)
}

/// The cause in a message worded by serde (its fixed forms, which serde_json and derived
/// code use) or by the config's own parsers (already in our words).
fn classify(msg: &str) -> Cause {
    let backticked = |s: &str| -> Vec<String> {
        s.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    if let Some(rest) = msg.strip_prefix(SUBPATH) {
        // Handled by `explain`, which sees the path; keep the whole message.
        return Cause::Ours(format!("{SUBPATH}{rest}"));
    }
    if let Some(rest) = msg.strip_prefix("unknown field `")
        && let Some((field, list)) = rest.split_once('`')
    {
        return Cause::UnknownField {
            field: field.to_string(),
            expected: backticked(list),
        };
    }
    if let Some(rest) = msg.strip_prefix("missing field `")
        && let Some((field, _)) = rest.split_once('`')
    {
        return Cause::MissingField(field.to_string());
    }
    if let Some(rest) = msg.strip_prefix("duplicate field `")
        && let Some((field, _)) = rest.split_once('`')
    {
        return Cause::Duplicate(Some(field.to_string()));
    }
    if let Some(rest) = msg.strip_prefix("unknown variant `")
        && let Some((variant, list)) = rest.split_once('`')
    {
        return Cause::UnknownVariant {
            variant: variant.to_string(),
            expected: backticked(list),
        };
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = msg.strip_prefix(prefix)
            && let Some((found, expected)) = rest.rsplit_once(", expected ")
        {
            return Cause::Wrong {
                expected: Expect::of(expected),
                found: Some(found.to_string()),
            };
        }
    }
    if let Some(rest) = msg.strip_prefix("invalid length ")
        && let Some((_, expected)) = rest.split_once(", expected ")
    {
        return Cause::Wrong {
            expected: Expect::of(expected),
            found: None,
        };
    }
    // The standard library's address parsers.
    let addr = match msg {
        "invalid IPv4 address syntax" => Some(Expect::Ipv4),
        "invalid IPv6 address syntax" => Some(Expect::Ipv6),
        "invalid IP address syntax" => Some(Expect::Ip),
        "invalid socket address syntax"
        | "invalid IPv4 socket address syntax"
        | "invalid IPv6 socket address syntax" => Some(Expect::Socket),
        _ => None,
    };
    match addr {
        Some(expected) => Cause::Wrong {
            expected,
            found: None,
        },
        None => Cause::Ours(msg.to_string()),
    }
}

/// The problem of `cause` at `path`. One match over the causes, each worded in place, so
/// that every message of a config error can be read, and compared, in one screen: it reads
/// best whole.
fn explain(
    cause: Cause,
    path: &str,
    at: Option<Position>,
    tree: Option<&Tree>,
    text: &str,
) -> Problem {
    let found = tree.map(|t| t.find(path));
    let whole = found.as_ref().filter(|f| f.whole);
    // The position of the field's value, when the document has it; else the parser's.
    let value_at = whole.map(|f| f.position()).or(at);
    let value = whole.and_then(|f| f.node.scalar());
    let field = path.rsplit('.').next().unwrap_or(path);
    match cause {
        Cause::Ours(msg) => match msg.strip_prefix(SUBPATH).and_then(|r| r.split_once(SUBPATH)) {
            Some((sub, rest)) => {
                let inner = Problem::new(sub, "").under(path).path;
                let tree_at = tree.map(|t| t.find(&inner)).filter(|f| f.whole);
                explain(
                    classify(rest),
                    &inner,
                    tree_at.map(|f| f.position()).or(at),
                    tree,
                    text,
                )
            }
            None => Problem::new(path, msg).at(value_at),
        },
        Cause::UnknownField { field, expected } => {
            let at = whole.and_then(|f| f.key_at).or(at);
            let list: Vec<&str> = expected.iter().map(String::as_str).collect();
            let valid = if list.is_empty() {
                "this map takes no keys".to_string()
            } else {
                format!(
                    "valid keys here: {}",
                    list.iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            Problem::new(
                path,
                format!(
                    "unknown key {}{}; {valid}",
                    quote(&field),
                    suggestion(&field, &list)
                ),
            )
            .at(at)
        }
        Cause::MissingField(missing) => missing_field(path, &missing, at, tree),
        Cause::Duplicate(key) => duplicate(path, key, at, tree),
        Cause::UnknownVariant { variant, expected } => {
            let list: Vec<&str> = expected.iter().map(String::as_str).collect();
            Problem::new(
                path,
                format!(
                    "{} is not one of {}{}",
                    quote(&variant),
                    list.join(", "),
                    suggestion(&variant, &list)
                ),
            )
            .at(value_at)
        }
        Cause::Wrong { expected, found } => {
            let node = whole.map(|f| f.node);
            let found = match node {
                Some(n) => Some(n.describe()),
                None => found.map(|f| serde_found(&f)),
            };
            let quoted = value_at.is_some_and(|p| matches!(source_char(text, p), Some('"' | '\'')));
            let msg = wrong(
                path,
                field,
                &expected,
                value,
                quoted,
                found.as_deref(),
            );
            let at = if path.is_empty() && found.as_deref() == Some("nothing") {
                None
            } else {
                value_at
            };
            Problem::new(path, msg).at(at)
        }
        Cause::Syntax(kind) => syntax_problem(&kind, at, text),
        Cause::Eof => {
            if tree.is_some_and(|t| matches!(t.root().kind, Kind::Null)) {
                Problem::new("", format!("the file has no settings, only comments: {START}"))
            } else {
                Problem::new("", "the file ends too early: is it complete?").at(at)
            }
        }
        Cause::Limit => Problem::new(
            path,
            "the file nests lists and maps too deeply or is too long to be a config (a config has a few levels and at most some hundred thousand values): is this the config file?",
        )
        .at(at),
        Cause::Aliases => Problem::new(
            path,
            "the aliases (`*name`) of the file expand to too much: write the values out, or use fewer aliases",
        )
        .at(at),
        Cause::UnknownAnchor => Problem::new(
            "",
            "an alias (`*name`) refers to no anchor (`&name`) above it: define the anchor first, or write the value out",
        )
        .at(at),
        Cause::Documents => Problem::new(
            "",
            "the file holds more than one YAML document (a `---` line after the first settings): a config is one document; remove the `---` line or split the file",
        )
        .at(at),
        Cause::NotText => Problem::new("", "the file is not UTF-8 text: save it as UTF-8"),
    }
}

/// serde's description of a found value (`string "65999"`, `integer `5``, `sequence`) in
/// the words of [`crate::config::position::Node::describe`].
fn serde_found(s: &str) -> String {
    let unquote = |v: &str| v.trim_matches(|c| c == '"' || c == '`').to_string();
    if let Some(v) = s.strip_prefix("string ") {
        return format!("the text {}", quote(&unquote(v)));
    }
    for p in ["integer ", "floating point ", "boolean ", "character "] {
        if let Some(v) = s.strip_prefix(p) {
            return format!("the value {}", quote(&unquote(v)));
        }
    }
    match s {
        "sequence" => "a list".into(),
        "map" => "a map".into(),
        "unit value" | "null" | "nothing" => "nothing".into(),
        other => other.to_string(),
    }
}

/// The valid range of an integer field: by its name where the config gives it a meaning,
/// else by its type.
fn integer_range(field: &str, ty: &str) -> String {
    match field {
        f if f.ends_with("_asn") => "1..4294967295".into(),
        "remote_port" => "1..65535".into(),
        "listen_port" => "1..65535, or -1 for outgoing sessions only".into(),
        "multihop_ttl" => "0..255 (0: no eBGP multihop)".into(),
        "as_path_prepend" => format!("0..{}", crate::config::attributes::MAX_PREPEND),
        "rise" | "fall" | "tries" => "1..4294967295".into(),
        _ => match ty {
            "u8" => "0..255".into(),
            "u16" => "0..65535".into(),
            "u32" => "0..4294967295".into(),
            "i32" => "-2147483648..2147483647".into(),
            "u64" => "0..18446744073709551615".into(),
            _ => "a whole number".into(),
        },
    }
}

/// What is wrong with a value of the wrong type or form, and how to write it. One match
/// over what was expected and what was found, worded in place: it reads best whole.
fn wrong(
    path: &str,
    field: &str,
    expected: &Expect,
    value: Option<&str>,
    quoted: bool,
    found: Option<&str>,
) -> String {
    let found = found.unwrap_or("something else");
    let v = value.map(quote);
    match (expected, value) {
        (Expect::Integer(ty), Some(s)) => {
            let range = integer_range(field, ty);
            let t = s.trim();
            if quoted && t.parse::<i128>().is_ok() {
                format!(
                    "{} is quoted, which makes it text: write {t} without quotes",
                    quote(t)
                )
            } else if t.parse::<i128>().is_ok() {
                format!("{t} is out of range: use {range}")
            } else if t.parse::<f64>().is_ok() {
                format!("{t} is not a whole number: use {range}")
            } else {
                format!("{} is not a number: use {range}", quote(s))
            }
        }
        (Expect::Integer(ty), None) => {
            format!(
                "must be a number ({}), not {found}",
                integer_range(field, ty)
            )
        }
        (Expect::Number, Some(s)) if quoted && s.trim().parse::<f64>().is_ok() => {
            format!(
                "{} is quoted, which makes it text: write it without quotes",
                quote(s)
            )
        }
        (Expect::Number, Some(s)) => format!("{} is not a number", quote(s)),
        (Expect::Number, None) => format!("must be a number, not {found}"),
        (Expect::Bool, Some(s)) if quoted => {
            format!(
                "{} is quoted, which makes it text: write true or false without quotes",
                quote(s)
            )
        }
        (Expect::Bool, Some(s)) => {
            format!("{} is not true or false: write true or false", quote(s))
        }
        (Expect::Bool, None) => format!("must be true or false, not {found}"),
        (Expect::Text, _) if found == "nothing" => "is empty: give a value".to_string(),
        (Expect::Text, _) => format!("must be a single value, not {found}"),
        (Expect::List, _) => format!(
            "must be a list, not {found}: write each item on a line of its own after `- `, or all of them as [a, b]"
        ),
        (Expect::Map, _) if path.is_empty() && found == "nothing" => {
            format!("the file holds no settings (only comments, or null): {START}")
        }
        (Expect::Map, _) if path.is_empty() => format!(
            "the file must be a map with `announcer` and `services` at its top, not {found}: {START}"
        ),
        (Expect::Map, _) if found == "nothing" => {
            "is empty: give its keys, indented on the lines below it".to_string()
        }
        (Expect::Map, _) => {
            format!("must be a map (`key: value` lines, indented below it), not {found}")
        }
        (Expect::Ipv4, _) => format!(
            "{} is not an IPv4 address: write four numbers 0..255 with dots between them, e.g. 192.0.2.1",
            v.as_deref().unwrap_or("the value")
        ),
        (Expect::Ipv6, _) => format!(
            "{} is not an IPv6 address: write e.g. 2001:db8::1",
            v.as_deref().unwrap_or("the value")
        ),
        (Expect::Ip, _) => format!(
            "{} is not an IP address: write an IPv4 or IPv6 address, e.g. 192.0.2.1 or 2001:db8::1 (host names are not resolved here)",
            v.as_deref().unwrap_or("the value")
        ),
        (Expect::Socket, _) => format!(
            "{} is not an address with a port: write ip:port, e.g. 127.0.0.1:9090 or [::1]:9090 (host names are not resolved here)",
            v.as_deref().unwrap_or("the value")
        ),
        (Expect::Other(what), _) => format!("must be {what}, not {found}"),
    }
}

/// A map that lacks a field: where the map is, and where the field is instead if the
/// document has it elsewhere (a key indented too little belongs to the map above).
fn missing_field(path: &str, missing: &str, at: Option<Position>, tree: Option<&Tree>) -> Problem {
    let Some(tree) = tree else {
        return Problem::new(path, format!("`{missing}` is missing: add it")).at(at);
    };
    let map = tree.find(path);
    let map_at = (!path.is_empty()).then(|| map.key_at.unwrap_or(map.node.at));
    // Where the map's own keys start: the column a key of it must be written at.
    let column = match &map.node.kind {
        Kind::Map(entries) => entries.first().map(|e| e.key_at.column),
        _ => None,
    };
    let own = if path.is_empty() {
        missing.to_string()
    } else {
        format!("{path}.{missing}")
    };
    // The same key elsewhere, not in a sibling of the same list (`peers[0].remote_asn`
    // for `peers[1]`): the nearest one after the map, else before it.
    let pattern = |p: &str| strip_indices(p);
    let map_line = map.node.at.line;
    let elsewhere = tree
        .entries_named(missing)
        .into_iter()
        .filter(|(p, _)| *p != own && pattern(p) != pattern(&own))
        .min_by_key(|(_, e)| {
            let l = e.key_at.line;
            (l < map_line, l.abs_diff(map_line))
        });
    let what = if path.is_empty() {
        format!("the file has no `{missing}`")
    } else {
        format!("`{missing}` is missing")
    };
    let message = match elsewhere {
        Some((p, e)) => {
            let fix = match column {
                Some(c) if c != e.key_at.column => {
                    format!("indent it to column {c}, like the other keys of this map")
                }
                _ => "move it into this map".to_string(),
            };
            format!(
                "{what}; there is a `{missing}` at line {}, column {}, which makes it {p}: if it is meant for this map, {fix}",
                e.key_at.line, e.key_at.column
            )
        }
        None => format!("{what}: add it"),
    };
    Problem::new(path, message).at(map_at.or(at))
}

/// `a[0].b[12].c` -> `a[].b[].c`.
fn strip_indices(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut skip = false;
    for c in p.chars() {
        match c {
            '[' => {
                skip = true;
                out.push('[');
            }
            ']' => {
                skip = false;
                out.push(']');
            }
            _ if skip => {}
            c => out.push(c),
        }
    }
    out
}

/// A key given twice in one map.
fn duplicate(
    path: &str,
    key: Option<String>,
    at: Option<Position>,
    tree: Option<&Tree>,
) -> Problem {
    // The second key is at `at`; the tree knows its path and the first one.
    let hit = tree.zip(at).and_then(|(t, a)| t.entry_at(a));
    match hit {
        Some((full, siblings, second)) => {
            let first = siblings
                .iter()
                .find(|e| e.key == second.key)
                .map(|e| e.key_at)
                .unwrap_or(second.key_at);
            Problem::new(
                full,
                format!(
                    "`{}` is given twice (first at line {}): keep one",
                    second.key, first.line
                ),
            )
            .at(at)
        }
        None => {
            // JSON's derived code reports it by name, inside the map.
            let key = key.unwrap_or_else(|| "a key".into());
            let full = Problem::new(key.clone(), "").under(path).path;
            let first = tree.and_then(|t| {
                let map = t.find(path);
                match &map.node.kind {
                    Kind::Map(entries) if map.whole => {
                        let mut same = entries.iter().filter(|e| e.key == key);
                        let first = same.next()?;
                        let second = same.next()?;
                        Some((first.key_at, second.key_at))
                    }
                    _ => None,
                }
            });
            match first {
                Some((first, second)) => Problem::new(
                    full,
                    format!(
                        "`{key}` is given twice (first at line {}): keep one",
                        first.line
                    ),
                )
                .at(Some(second)),
                None => Problem::new(full, format!("`{key}` is given twice: keep one")).at(at),
            }
        }
    }
}

/// The character of `text` at `at`.
fn source_char(text: &str, at: Position) -> Option<char> {
    let line = text
        .lines()
        .nth(usize::try_from(at.line).ok()?.checked_sub(1)?)?;
    line.chars()
        .nth(usize::try_from(at.column).ok()?.checked_sub(1)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_stripped_for_comparison() {
        assert_eq!(strip_indices("a[0].b[12].c"), "a[].b[].c");
    }
}
