//! README.md's config reference cannot drift from the code: its YAML block parses with
//! anycastd's own parser; at every level it names every key the code accepts (the list is
//! taken from the parser itself, through the "unknown key ...; valid keys here: ..." error of
//! a probe key); every line marked `# default` can be left out without changing the parsed
//! config; and every check kind appears. The metrics table names exactly the exported metrics, and the
//! layout section names only files that exist.

use std::collections::BTreeSet;
use std::path::Path;

use anycastd::config::checks::KINDS;
use anycastd::config::{self, Config, Format};
use serde_json::Value;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md")
}

/// The first ```yaml block after `## Config reference`.
fn reference_block() -> String {
    let text = readme();
    let (_, after) = text
        .split_once("## Config reference")
        .expect("a `## Config reference` section");
    let (_, block) = after.split_once("```yaml\n").expect("a yaml block in it");
    block.split("```").next().expect("closed block").to_string()
}

fn parse(text: &str) -> Result<Config, String> {
    config::parse(text, Format::Yaml).map_err(|p| p.to_string())
}

#[test]
fn reference_parses_and_validates() {
    let cfg = parse(&reference_block()).expect("README's reference parses");
    match cfg.validate() {
        Ok(_) => {}
        // The example's files (passwords, TLS) do not exist on this machine; nothing else
        // may fail.
        Err(problems) => {
            let other: Vec<_> = problems
                .iter()
                .filter(|p| !p.path.ends_with("_file"))
                .collect();
            assert!(other.is_empty(), "README's reference is invalid: {other:?}");
        }
    }
    let kinds: BTreeSet<&str> = cfg.services[0].checks.iter().map(|c| c.kind()).collect();
    for k in KINDS {
        assert!(kinds.contains(k), "README's reference has no {k} check");
    }
}

/// The keys the parser accepts in the map at `path` of `doc`, from its complaint about a
/// probe key; `None` for a free-form map (it accepts the probe).
fn accepted_keys(doc: &Value, path: &[PathStep]) -> Option<Vec<String>> {
    const PROBE: &str = "zz_probe_key";
    let mut probe = doc.clone();
    let mut at = &mut probe;
    for step in path {
        at = match step {
            PathStep::Key(k) => &mut at[k.as_str()],
            PathStep::Index(i) => &mut at[*i],
        };
    }
    at.as_object_mut()
        .expect("a map")
        .insert(PROBE.into(), Value::from("x"));
    let json = serde_json::to_string(&probe).expect("json");
    let err = match config::parse(&json, Format::Json) {
        Ok(_) => return None,
        Err(p) => p.message,
    };
    assert!(
        err.contains(PROBE),
        "probing {path:?} failed for another reason: {err}"
    );
    let list = err
        .split_once("valid keys here: ")
        .map(|(_, l)| l)
        .unwrap_or_else(|| panic!("no list of valid keys in: {err}"));
    Some(
        list.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
    )
}

#[derive(Debug, Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

/// Every map in `v`, with its path.
fn maps(v: &Value, path: &mut Vec<PathStep>, out: &mut Vec<(Vec<PathStep>, BTreeSet<String>)>) {
    match v {
        Value::Object(m) => {
            out.push((path.clone(), m.keys().cloned().collect()));
            for (k, child) in m {
                path.push(PathStep::Key(k.clone()));
                maps(child, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                path.push(PathStep::Index(i));
                maps(child, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

#[test]
fn reference_names_every_key_the_code_accepts() {
    let doc: Value = serde_saphyr::from_str(&reference_block()).expect("yaml");
    let mut all = Vec::new();
    maps(&doc, &mut Vec::new(), &mut all);
    // Maps of one struct (the same accepted keys: every check, both tls_certificate specs)
    // are pooled: an optional key needs to be shown once, not in every instance.
    let mut structs: std::collections::BTreeMap<Vec<String>, (BTreeSet<String>, Vec<PathStep>)> =
        Default::default();
    for (path, present) in &all {
        let Some(accepted) = accepted_keys(&doc, path) else {
            continue; // free-form (headers)
        };
        let entry = structs
            .entry(accepted)
            .or_insert_with(|| (BTreeSet::new(), path.clone()));
        entry.0.extend(present.iter().cloned());
    }
    let probed = structs.len();
    for (accepted, (present, path)) in &structs {
        let missing: Vec<_> = accepted.iter().filter(|k| !present.contains(*k)).collect();
        assert!(
            missing.is_empty(),
            "README's config reference lacks {missing:?} at {path:?} (the code accepts {accepted:?})"
        );
    }
    // root, announcer, peer, gobgp, service, checks and their specs, nested spec maps, metrics.
    assert!(probed >= 15, "only {probed} kinds of map were probed");
}

#[test]
fn lines_marked_default_are_the_defaults() {
    let block = reference_block();
    let full = parse(&block).expect("parses");
    let mut checked = 0;
    for (i, line) in block.lines().enumerate() {
        let Some((code, comment)) = line.split_once(" # ") else {
            continue;
        };
        let comment = comment.trim();
        if !(comment == "default" || comment.starts_with("default;")) {
            continue;
        }
        let code = code.trim_end();
        assert!(
            code.contains(": ") && !code.trim_end().ends_with(':'),
            "line {}: `default` marks a one-line `key: value`: {line}",
            i + 1
        );
        let without: String = block
            .lines()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        let cfg = parse(&without).unwrap_or_else(|e| panic!("without `{}`: {e}", code.trim()));
        assert_eq!(
            cfg,
            full,
            "`{}` is marked default, but leaving it out changes the config",
            code.trim()
        );
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} defaults checked");
}

#[test]
fn metrics_table_names_real_metrics() {
    let text = readme();
    let (_, section) = text
        .split_once("## Metrics and endpoints")
        .expect("metrics section");
    let section = section.split("\n## ").next().expect("section");
    let names: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    assert!(names.len() >= 8, "{names:?}");
    let known: BTreeSet<&str> = anycastd::metrics::names::HELP
        .iter()
        .map(|(n, _)| *n)
        .collect();
    for n in &names {
        assert!(
            known.contains(n),
            "README lists `{n}`, which the code does not export"
        );
    }
    for n in &known {
        assert!(names.contains(n), "README's metrics table lacks `{n}`");
    }
}

#[test]
fn layout_names_existing_files() {
    let text = readme();
    let (_, section) = text.split_once("## Code layout").expect("layout section");
    let block = section
        .split_once("```\n")
        .and_then(|(_, b)| b.split_once("```"))
        .map(|(b, _)| b)
        .expect("layout block");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for line in block.lines() {
        if line.starts_with(' ') {
            continue; // the continuation of the line above
        }
        let Some(entry) = line.split_whitespace().next() else {
            continue;
        };
        if entry.contains('<') || entry.contains('*') {
            continue; // a pattern such as src/check/<kind>.rs
        }
        assert!(
            root.join(entry).exists(),
            "README's layout names {entry}, which does not exist"
        );
    }
}

/// Every line whose comment gives `min <duration>` shows the minimum the code enforces:
/// the value at the minimum is accepted, and one millisecond (or one nanosecond) less is a
/// problem at that key which names the minimum.
#[test]
fn lines_marked_min_are_the_minimums() {
    let block = reference_block();
    // The example's files (passwords, TLS) do not exist here; nothing else may be a problem.
    let problems_with = |text: &str| -> Vec<config::Problem> {
        let cfg = parse(text).unwrap_or_else(|e| panic!("parses: {e}\n{text}"));
        cfg.validate()
            .err()
            .unwrap_or_default()
            .into_iter()
            .filter(|p| !p.path.ends_with("_file"))
            .collect()
    };
    let mut checked = 0;
    for (i, line) in block.lines().enumerate() {
        let Some((code, comment)) = line.split_once(" # ") else {
            continue;
        };
        let Some(min) = comment
            .split(';')
            .find_map(|part| part.trim().strip_prefix("min "))
            .and_then(|rest| rest.split_whitespace().next())
        else {
            continue;
        };
        let (key, _) = code.trim().split_once(": ").expect("`key: value`");
        let min_d = config::parse_duration(min)
            .unwrap_or_else(|e| panic!("line {}: min {min:?}: {e}", i + 1))
            .0;
        let with = |value: &str| -> String {
            block
                .lines()
                .enumerate()
                .map(|(j, l)| {
                    if j == i {
                        format!("{}{key}: {value}\n", &l[..l.len() - l.trim_start().len()])
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect()
        };
        let at_min = problems_with(&with(min));
        assert!(at_min.is_empty(), "`{key}: {min}` is refused: {at_min:?}");
        if !min_d.is_zero() {
            let step = if min_d >= std::time::Duration::from_millis(2) {
                std::time::Duration::from_millis(1)
            } else {
                std::time::Duration::from_nanos(1)
            };
            let below = humantime::format_duration(min_d - step).to_string();
            let p = problems_with(&with(&below));
            assert!(
                p.len() == 1
                    && p[0].path.ends_with(&format!(".{key}"))
                    && p[0].message.contains(&format!("at least {min}")),
                "`{key}: {below}` (below the documented min {min}) must be refused at that key, naming the minimum: {p:?}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 14, "only {checked} minimums checked");
}

/// Issue 23.6: README's list of the keys that need a restart is the one the code refuses.
#[test]
fn restart_only_keys_are_the_ones_reload_refuses() {
    let text = readme().replace('\n', " ");
    let (_, after) = text
        .split_once("A change of `")
        .expect("README says which changes need a restart");
    let (list, _) = after
        .split_once(" needs a restart")
        .expect("the sentence's end");
    let list = format!("`{list}");
    let named: BTreeSet<&str> = list.split('`').skip(1).step_by(2).collect();
    let code: BTreeSet<&str> = anycastd::runtime::reload::RESTART_ONLY
        .into_iter()
        .collect();
    assert_eq!(named, code);
}
