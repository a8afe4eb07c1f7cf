//! The Prometheus text exposition, read with a parser (`prometheus-parse`) and checked for
//! the rules a scraper relies on: every line is a HELP, TYPE or sample line, a family's
//! HELP/TYPE come once and before its samples, its samples are contiguous, no series
//! appears twice, and every value is a number.

use std::collections::{BTreeMap, BTreeSet};

use prometheus_parse::LineInfo;

/// One sample: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses and validates `text`; panics with the offending line when it is not valid.
pub fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    let mut typed: BTreeSet<String> = BTreeSet::new();
    let mut helped: BTreeSet<String> = BTreeSet::new();
    let mut finished: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut seen: BTreeSet<(String, Vec<(String, String)>)> = BTreeSet::new();
    for line in text.lines() {
        let family = match LineInfo::parse(line) {
            LineInfo::Empty => continue,
            LineInfo::Ignored => panic!("not a valid exposition line: {line:?}"),
            LineInfo::Doc { metric_name, .. } => {
                assert!(helped.insert(metric_name.to_string()), "HELP twice: {line}");
                metric_name.to_string()
            }
            LineInfo::Type { metric_name, .. } => {
                assert!(typed.insert(metric_name.clone()), "TYPE twice: {line}");
                metric_name
            }
            LineInfo::Sample {
                metric_name,
                labels,
                value,
                ..
            } => {
                let labels = parse_labels(labels.unwrap_or(""), line);
                let value: f64 = match value {
                    "+Inf" => f64::INFINITY,
                    "-Inf" => f64::NEG_INFINITY,
                    v => v
                        .parse()
                        .unwrap_or_else(|_| panic!("value is not a number: {line}")),
                };
                let key = (
                    metric_name.to_string(),
                    labels.clone().into_iter().collect::<Vec<_>>(),
                );
                assert!(seen.insert(key), "series twice: {line}");
                samples.push(Sample {
                    name: metric_name.to_string(),
                    labels,
                    value,
                });
                family_of(metric_name, &typed)
            }
        };
        if current.as_deref() != Some(family.as_str()) {
            if let Some(prev) = current.take() {
                finished.insert(prev);
            }
            assert!(
                !finished.contains(&family),
                "the lines of {family} are not contiguous: {line}"
            );
            current = Some(family);
        }
    }
    samples
}

/// The family a sample belongs to: a typed name it extends (`_sum`, `_count`, `_bucket`), or
/// its own name.
fn family_of(name: &str, typed: &BTreeSet<String>) -> String {
    for suffix in ["_sum", "_count", "_bucket"] {
        if let Some(base) = name.strip_suffix(suffix)
            && typed.contains(base)
        {
            return base.to_string();
        }
    }
    name.to_string()
}

/// `a="x",b="y"` into a map; panics on anything else.
fn parse_labels(s: &str, line: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("bad labels in {line}"));
        let name = name.trim().trim_start_matches(',').trim();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad label name {name:?} in {line}"
        );
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => panic!("bad escape in {line}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {line}"),
            }
        };
        assert!(
            out.insert(name.to_string(), value).is_none(),
            "label {name} twice in {line}"
        );
        rest = after[end + 1..].trim_start_matches(',').trim();
    }
    out
}

/// The value of the one series `name` whose labels include `labels`.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert!(
        found.len() <= 1,
        "more than one {name} {labels:?}: {found:?}"
    );
    found.first().map(|s| s.value)
}
