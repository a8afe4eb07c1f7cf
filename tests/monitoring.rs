//! The alert rules (deploy/prometheus/alerts.yaml) and the Grafana dashboard
//! (deploy/grafana/anycastd.json) cannot drift from the daemon or rot:
//! - promtool accepts the rules and passes their unit tests (alerts_test.yaml), in which
//!   every alert is seen both firing and not firing;
//! - every metric that a rule, a panel, a dashboard variable or annotation queries is one
//!   anycastd exports (`names::HELP`, `up`, or an entry of [`NOT_YET_EXPORTED`]), and every
//!   label they match on, group by or print is one that metric has (README's metrics table);
//! - the dashboard is well-formed: unique ids, a title and the data source variable on every
//!   panel, panels that fit the grid without overlapping, PromQL that promtool parses;
//! - the README lists exactly these alerts, with their severities, and names the rows.
//!
//! promtool comes with Debian's `prometheus` package; these tests fail (never skip) without it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::process::{Command, Output};

use anycastd::metrics::names::HELP;
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const RULES: &str = "deploy/prometheus/alerts.yaml";
const RULE_TESTS: &str = "deploy/prometheus/alerts_test.yaml";
const DASHBOARD: &str = "deploy/grafana/anycastd.json";

/// Metrics the rules and the dashboard use that `names::HELP` does not list yet: `(name, its
/// labels, who adds it)`. Delete an entry when its metric reaches `names::HELP` (and the
/// README's metrics table): `allowlist_holds_only_metrics_not_yet_exported` fails until then.
const NOT_YET_EXPORTED: &[(&str, &[&str], &str)] = &[];

/// Series that Prometheus itself makes for every target.
const PROMETHEUS_OWN: &[&str] = &["up"];

/// Labels Prometheus adds to every series of a target.
const TARGET_LABELS: &[&str] = &["job", "instance"];

// ---------------------------------------------------------------------------------------
// promtool

/// Runs promtool in the repository root; a missing promtool fails with how to install it.
fn promtool(args: &[&str]) -> Output {
    match Command::new("promtool")
        .args(args)
        .current_dir(ROOT)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "promtool is not installed: it checks and unit-tests {RULES}. Install Debian's \
             `prometheus` package (`apt-get install prometheus`; scripts/setup.sh does), or put \
             the promtool of a Prometheus release on PATH"
        ),
        Err(e) => panic!("cannot run promtool: {e}"),
    }
}

fn assert_promtool_ok(args: &[&str]) {
    let out = promtool(args);
    assert!(
        out.status.success(),
        "promtool {} failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alert_rules_pass_promtool_check() {
    assert_promtool_ok(&["check", "rules", "--lint=all", "--lint-fatal", RULES]);
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    assert_promtool_ok(&["test", "rules", RULE_TESTS]);
}

/// Every dashboard query, with Grafana's variables replaced, parses as PromQL: promtool
/// checks them as the expressions of recording rules in a scratch file.
#[test]
fn dashboard_queries_are_valid_promql() {
    let exprs = dashboard_queries(&dashboard());
    let rules: Vec<Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, (_, e))| serde_json::json!({"record": format!("dashboard_query_{i}"), "expr": grafana_to_promql(e)}))
        .collect();
    let file = serde_json::json!({"groups": [{"name": "dashboard", "rules": rules}]});
    let dir = tempfile::tempdir().expect("temp dir");
    // JSON is YAML: promtool reads it as a rule file.
    let path = dir.path().join("dashboard_rules.yaml");
    std::fs::write(&path, file.to_string()).expect("write the scratch rule file");
    let out = promtool(&["check", "rules", path.to_str().expect("utf-8 path")]);
    assert!(
        out.status.success(),
        "promtool rejects dashboard queries:\n{}{}\nqueries (in order):\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        exprs
            .iter()
            .enumerate()
            .map(|(i, (at, e))| format!("dashboard_query_{i} ({at}): {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// The files

fn read(rel: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml(rel: &str) -> Value {
    serde_saphyr::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not YAML: {e}"))
}

fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD))
        .unwrap_or_else(|e| panic!("{DASHBOARD} is not valid JSON: {e}"))
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// The alerting rules of alerts.yaml.
fn alert_rules() -> Vec<Value> {
    let doc = yaml(RULES);
    let groups = doc["groups"].as_array().expect("alerts.yaml: groups");
    let rules: Vec<Value> = groups
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("a group's rules").clone())
        .collect();
    assert!(
        rules.iter().all(|r| r.get("alert").is_some()),
        "alerts.yaml holds only alerting rules"
    );
    rules
}

/// Every panel, those inside collapsed rows included.
fn all_panels(d: &Value) -> Vec<&Value> {
    fn walk<'a>(ps: &'a Value, out: &mut Vec<&'a Value>) {
        for p in ps.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&d["panels"], &mut out);
    out
}

/// Every PromQL query of the dashboard, with where it is: panel targets, annotations, and the
/// selector of each `label_values(...)` variable.
fn dashboard_queries(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in all_panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                format!("panel \"{}\" {}", str_of(p, "title"), str_of(t, "refId")),
                str_of(t, "expr").to_string(),
            ));
        }
    }
    for a in d["annotations"]["list"].as_array().into_iter().flatten() {
        if let Some(e) = a["expr"].as_str() {
            out.push((format!("annotation \"{}\"", str_of(a, "name")), e.into()));
        }
    }
    for (name, selector, _) in label_values_variables(d) {
        out.push((format!("variable {name}"), selector));
    }
    out
}

/// The query variables as `(name, selector, label)` of their `label_values(selector, label)`.
fn label_values_variables(d: &Value) -> Vec<(String, String, String)> {
    d["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            let q = v["query"]["query"]
                .as_str()
                .or_else(|| v["query"].as_str())
                .unwrap_or("");
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.strip_suffix(')'))
                .unwrap_or_else(|| {
                    panic!(
                        "variable {}: expected label_values(selector, label), got {q:?}",
                        v["name"]
                    )
                });
            let (selector, label) = inner.rsplit_once(',').unwrap_or_else(|| {
                panic!("variable {}: label_values without a selector", v["name"])
            });
            (
                str_of(v, "name").to_string(),
                selector.trim().to_string(),
                label.trim().to_string(),
            )
        })
        .collect()
}

/// Grafana's variables replaced: intervals by durations, others (used in label values) by a
/// word, so that what is left must be plain PromQL.
fn grafana_to_promql(expr: &str) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = match after.strip_prefix('{') {
            Some(b) => {
                let end = b.find('}').unwrap_or(b.len());
                (&b[..end], end + 2)
            }
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        out.push_str(match name {
            "__rate_interval" | "__interval" => "5m",
            "__range" => "1h",
            _ => "var",
        });
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------
// PromQL: the metric names and label names an expression uses

/// What an expression refers to.
#[derive(Debug, Default, PartialEq)]
struct Refs {
    /// Each vector selector: its metric name ("" for `{...}` alone) and its matchers' labels.
    selectors: Vec<(String, Vec<String>)>,
    /// Labels of `by`, `without`, `on`, `ignoring`, `group_left`, `group_right` lists.
    grouping: Vec<String>,
}

/// Words that are not metric names: keywords and aggregation operators (which a `by (...)`
/// may separate from their parenthesis).
const NOT_METRICS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Where the string literal starting at `i` ends (after its closing quote).
fn skip_string(c: &[char], i: usize) -> usize {
    let quote = c[i];
    let mut j = i + 1;
    while j < c.len() && c[j] != quote {
        if c[j] == '\\' && quote != '`' {
            j += 1;
        }
        j += 1;
    }
    j + 1
}

fn skip_space(c: &[char], mut i: usize) -> usize {
    while i < c.len() && c[i].is_whitespace() {
        i += 1;
    }
    i
}

/// The label names of the matchers in `{...}` starting at `i`, and where it ends.
fn matchers(c: &[char], mut i: usize) -> (Vec<String>, usize) {
    let mut labels = Vec::new();
    i += 1;
    while i < c.len() && c[i] != '}' {
        if matches!(c[i], '"' | '\'' | '`') {
            i = skip_string(c, i);
        } else if is_word_start(c[i]) {
            let start = i;
            while i < c.len() && is_word(c[i]) {
                i += 1;
            }
            labels.push(c[start..i].iter().collect());
        } else {
            i += 1;
        }
    }
    (labels, i + 1)
}

fn refs(expr: &str) -> Refs {
    let c: Vec<char> = expr.chars().collect();
    let mut r = Refs::default();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if ch == '#' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if matches!(ch, '"' | '\'' | '`') {
            i = skip_string(&c, i);
        } else if ch == '{' {
            let (labels, end) = matchers(&c, i);
            r.selectors.push((String::new(), labels));
            i = end;
        } else if ch == '[' {
            // A range or subquery: durations only.
            while i < c.len() && c[i] != ']' {
                i += 1;
            }
        } else if ch.is_ascii_digit() || ch == '.' {
            // A number or a duration (`1e3`, `0x1f`, `5m`): not a name.
            while i < c.len() && (is_word(c[i]) || c[i] == '.') {
                i += 1;
            }
        } else if is_word_start(ch) {
            let start = i;
            while i < c.len() && is_word(c[i]) {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let lower = word.to_ascii_lowercase();
            let next = skip_space(&c, i);
            if LABEL_LISTS.contains(&lower.as_str()) {
                if c.get(next) == Some(&'(') {
                    let mut j = next + 1;
                    while j < c.len() && c[j] != ')' {
                        if is_word_start(c[j]) {
                            let s = j;
                            while j < c.len() && is_word(c[j]) {
                                j += 1;
                            }
                            r.grouping.push(c[s..j].iter().collect());
                        } else {
                            j += 1;
                        }
                    }
                    i = j + 1;
                }
            } else if lower == "offset" {
                // Its duration is skipped as a number.
            } else if NOT_METRICS.contains(&lower.as_str()) || c.get(next) == Some(&'(') {
                // A keyword, an aggregation or a function call.
            } else if c.get(next) == Some(&'{') {
                let (labels, end) = matchers(&c, next);
                r.selectors.push((word, labels));
                i = end;
            } else {
                r.selectors.push((word, Vec::new()));
            }
        } else {
            i += 1;
        }
    }
    r
}

/// The labels a template prints: `{{ $labels.x }}` (alert annotations) or `{{x}}` (legends).
fn template_labels(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in text.split("{{").skip(1) {
        let inner = part.split("}}").next().unwrap_or("").trim();
        let name = inner.strip_prefix("$labels.").unwrap_or(inner);
        if !name.is_empty() && name.chars().all(is_word) {
            out.push(name.to_string());
        }
    }
    out
}

#[test]
fn promql_references_are_found() {
    let r = refs(
        "sum by (job, prefix) (rate(foo_total{a=\"b}\", c=~'x{y'}[5m] offset 1h))\n\
         / on (job) group_left (x) bar > bool 2 unless absent(baz) # not_a_metric\n\
         and count_values(\"value\", qux{d!=\"e\"}) or Inf * 1e3 + max without (w) (zed)",
    );
    let names: Vec<&str> = r.selectors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["foo_total", "bar", "baz", "qux", "zed"]);
    assert_eq!(r.selectors[0].1, ["a", "c"]);
    assert_eq!(r.selectors[3].1, ["d"]);
    assert_eq!(r.grouping, ["job", "prefix", "job", "x", "w"]);
    assert_eq!(
        refs("{__name__=\"x\"}").selectors,
        [(String::new(), vec!["__name__".to_string()])]
    );
    assert_eq!(
        grafana_to_promql(
            "rate(x{job=~\"$job\", i=~\"${instance}\"}[$__rate_interval]) or y[$__range]"
        ),
        "rate(x{job=~\"var\", i=~\"var\"}[5m]) or y[1h]"
    );
    assert_eq!(
        template_labels("{{ $labels.instance }} {{ $value | humanize }} {{prefix}} {{ .x }}"),
        ["instance", "prefix"]
    );
}

// ---------------------------------------------------------------------------------------
// Metrics and labels

/// The labels of each metric anycastd exports, from README's metrics table (whose names
/// tests/readme.rs holds to `names::HELP`), plus the not-yet-exported ones and `up`.
fn known_metrics() -> BTreeMap<String, BTreeSet<String>> {
    let readme = read("README.md");
    let (_, section) = readme
        .split_once("## Metrics and endpoints")
        .expect("README: ## Metrics and endpoints");
    let section = section.split("\n## ").next().unwrap_or("");
    let mut known: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_string();
        let labels = cells[2]
            .split(',')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        known.insert(name, labels);
    }
    for (name, _) in HELP {
        assert!(
            known.contains_key(*name),
            "README's metrics table lacks {name} (tests/readme.rs should have said so)"
        );
    }
    known.retain(|name, _| HELP.iter().any(|(n, _)| n == name));
    for (name, labels, _) in NOT_YET_EXPORTED {
        known.insert(
            name.to_string(),
            labels.iter().map(|l| l.to_string()).collect(),
        );
    }
    for name in PROMETHEUS_OWN {
        known.insert(name.to_string(), BTreeSet::new());
    }
    for labels in known.values_mut() {
        labels.extend(TARGET_LABELS.iter().map(|l| l.to_string()));
    }
    known
}

/// Every query of the rules and the dashboard, with where it is and the labels its result
/// is printed with (annotation or legend templates).
fn every_query() -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for rule in alert_rules() {
        let name = str_of(&rule, "alert");
        let printed = ["summary", "description"]
            .iter()
            .flat_map(|k| template_labels(str_of(&rule["annotations"], k)))
            .collect();
        out.push((
            format!("alert {name}"),
            str_of(&rule, "expr").to_string(),
            printed,
        ));
    }
    let d = dashboard();
    for p in all_panels(&d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                format!("panel \"{}\" {}", str_of(p, "title"), str_of(t, "refId")),
                str_of(t, "expr").to_string(),
                template_labels(str_of(t, "legendFormat")),
            ));
        }
    }
    for a in d["annotations"]["list"].as_array().into_iter().flatten() {
        if let Some(e) = a["expr"].as_str() {
            let printed = ["titleFormat", "textFormat"]
                .iter()
                .flat_map(|k| template_labels(str_of(a, k)))
                .collect();
            out.push((
                format!("annotation \"{}\"", str_of(a, "name")),
                e.into(),
                printed,
            ));
        }
    }
    for (name, selector, label) in label_values_variables(&d) {
        out.push((format!("variable {name}"), selector, vec![label]));
    }
    out
}

#[test]
fn every_metric_used_is_exported() {
    let known = known_metrics();
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for (at, expr, _) in every_query() {
        let r = refs(&expr);
        if r.selectors.is_empty() {
            problems.push(format!("{at}: no metric found in {expr:?}"));
        }
        for (name, _) in &r.selectors {
            used.insert(name.clone());
            if !known.contains_key(name) {
                problems.push(format!(
                    "{at}: `{name}` is not a metric anycastd exports (names::HELP, `up` or NOT_YET_EXPORTED)"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Each allowlisted metric is used, or its entry is dead weight.
    for (name, _, issue) in NOT_YET_EXPORTED {
        assert!(
            used.contains(*name),
            "NOT_YET_EXPORTED lists {name} ({issue}), which nothing uses: delete the entry"
        );
    }
}

#[test]
fn every_label_used_is_one_the_metrics_have() {
    let known = known_metrics();
    let mut problems = Vec::new();
    for (at, expr, printed) in every_query() {
        let r = refs(&expr);
        // Labels of any metric of the expression: what grouping and templates may name (an
        // approximation: an aggregation may have dropped one of them).
        let mut available: BTreeSet<&str> = TARGET_LABELS.iter().copied().collect();
        for (name, labels) in &r.selectors {
            let Some(has) = known.get(name) else { continue };
            available.extend(has.iter().map(String::as_str));
            for l in labels {
                if !has.contains(l) {
                    problems.push(format!("{at}: {name} has no label `{l}` (it has {has:?})"));
                }
            }
        }
        for l in r.grouping.iter().chain(&printed) {
            if !available.contains(l.as_str()) {
                problems.push(format!(
                    "{at}: label `{l}` is on none of the metrics of {expr:?}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn allowlist_holds_only_metrics_not_yet_exported() {
    for (name, _, issue) in NOT_YET_EXPORTED {
        assert!(
            !HELP.iter().any(|(n, _)| n == name),
            "{name} is exported now (names::HELP): delete its NOT_YET_EXPORTED entry ({issue})"
        );
    }
}

/// Series every anycastd target has in common with other exporters' (`up`, `process_*`)
/// must be scoped to anycastd's job, or a rule fires for the node exporter; every dashboard
/// query follows the `job` variable.
#[test]
fn queries_are_scoped_to_anycastd() {
    let mut problems = Vec::new();
    for (at, expr, _) in every_query() {
        let dashboard = !at.starts_with("alert ");
        if at == "variable job" {
            continue;
        }
        for (name, labels) in refs(&expr).selectors {
            let needs_job = dashboard || !name.starts_with("anycastd_");
            if needs_job && !labels.iter().any(|l| l == "job") {
                problems.push(format!("{at}: {name} without a job matcher in {expr:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------
// The rules

#[test]
fn alerts_have_severity_and_annotations() {
    let readme = read("README.md");
    for rule in alert_rules() {
        let name = str_of(&rule, "alert");
        assert!(
            name.starts_with("Anycastd"),
            "{name}: alert names start with Anycastd"
        );
        let severity = str_of(&rule["labels"], "severity");
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "{name}: severity {severity:?} is not critical, warning or info"
        );
        for key in ["summary", "description", "runbook"] {
            assert!(
                !str_of(&rule["annotations"], key).trim().is_empty(),
                "{name}: no {key} annotation"
            );
        }
        assert!(
            str_of(&rule["annotations"], "runbook").contains(name),
            "{name}: the runbook annotation names another alert"
        );
        assert!(
            readme.contains(&format!("`{name}`")),
            "{name}: README does not describe it"
        );
    }
}

/// In alerts_test.yaml, every alert is expected firing at some time and not firing at
/// another: a rule that can never fire, or that always does, fails the unit tests.
#[test]
fn every_alert_is_tested_firing_and_not_firing() {
    let tests = yaml(RULE_TESTS);
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for group in tests["tests"].as_array().expect("alerts_test.yaml: tests") {
        for t in group["alert_rule_test"].as_array().into_iter().flatten() {
            let name = str_of(t, "alertname").to_string();
            match t["exp_alerts"].as_array() {
                Some(a) if !a.is_empty() => firing.insert(name),
                _ => quiet.insert(name),
            };
        }
    }
    for rule in alert_rules() {
        let name = str_of(&rule, "alert");
        assert!(
            firing.contains(name),
            "{RULE_TESTS} never expects {name} to fire"
        );
        assert!(
            quiet.contains(name),
            "{RULE_TESTS} never expects {name} to stay quiet"
        );
    }
}

/// README's alert table has one row per alert name, with the severities of its rules.
#[test]
fn readme_alert_table_matches_the_rules() {
    let mut severities: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for rule in alert_rules() {
        severities
            .entry(str_of(&rule, "alert").to_string())
            .or_default()
            .insert(str_of(&rule["labels"], "severity").to_string());
    }
    let readme = read("README.md");
    let (_, section) = readme
        .split_once("\n### Alerts")
        .expect("README: a ### Alerts section");
    let section = section.split("\n## ").next().unwrap_or("");
    let mut rows: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let sev = cells[2].split(',').map(|s| s.trim().to_string()).collect();
        rows.insert(cells[1].trim_matches('`').to_string(), sev);
    }
    assert_eq!(
        rows, severities,
        "README's alert table (name, severity) differs from {RULES}"
    );
}

// ---------------------------------------------------------------------------------------
// The dashboard

const PANEL_TYPES: &[&str] = &[
    "row",
    "stat",
    "state-timeline",
    "timeseries",
    "bargauge",
    "table",
];

#[test]
fn dashboard_is_well_formed() {
    let d = dashboard();
    assert_eq!(d["uid"], "anycastd");
    assert!(!str_of(&d, "title").is_empty(), "dashboard title");
    assert!(
        d["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion {} is older than Grafana 9's",
        d["schemaVersion"]
    );
    // The data source is a variable, so that the file works both imported and provisioned.
    let vars: BTreeMap<&str, &Value> = d["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .map(|v| (str_of(v, "name"), v))
        .collect();
    let ds = vars.get("datasource").expect("a `datasource` variable");
    assert_eq!(
        (ds["type"].as_str(), ds["query"].as_str()),
        (Some("datasource"), Some("prometheus"))
    );
    for name in ["job", "instance"] {
        let v = vars
            .get(name)
            .unwrap_or_else(|| panic!("a `{name}` variable"));
        assert_eq!(v["type"], "query", "variable {name}");
        assert_eq!(v["datasource"]["uid"], "${datasource}", "variable {name}");
    }
    for a in d["annotations"]["list"].as_array().into_iter().flatten() {
        if a.get("expr").is_some() {
            assert_eq!(
                a["datasource"]["uid"], "${datasource}",
                "annotation {}",
                a["name"]
            );
        }
    }

    let mut ids = BTreeSet::new();
    for p in all_panels(&d) {
        let title = str_of(p, "title");
        let kind = str_of(p, "type");
        assert!(!title.trim().is_empty(), "panel {} has no title", p["id"]);
        let id = p["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("panel {title:?}: no numeric id"));
        assert!(ids.insert(id), "panel id {id} is used twice ({title:?})");
        assert!(
            PANEL_TYPES.contains(&kind),
            "panel {title:?}: unknown type {kind:?}"
        );
        if kind == "row" {
            // A row groups panels and queries nothing.
            continue;
        }
        assert_eq!(
            (
                p["datasource"]["type"].as_str(),
                p["datasource"]["uid"].as_str()
            ),
            (Some("prometheus"), Some("${datasource}")),
            "panel {title:?}: its data source must be the variable"
        );
        assert!(
            !str_of(p, "description").is_empty(),
            "panel {title:?}: no description"
        );
        let targets = p["targets"].as_array().filter(|t| !t.is_empty());
        let targets = targets.unwrap_or_else(|| panic!("panel {title:?}: no query"));
        let mut refs = BTreeSet::new();
        for t in targets {
            assert!(
                !str_of(t, "expr").trim().is_empty(),
                "panel {title:?}: an empty query"
            );
            assert!(
                refs.insert(str_of(t, "refId")),
                "panel {title:?}: refId used twice"
            );
            assert_eq!(
                t["datasource"]["uid"], "${datasource}",
                "panel {title:?}: a query's data source"
            );
        }
    }
}

/// Every panel fits the 24-column grid and none overlaps another: at the top level, and
/// among the panels of each collapsed row (which take no room until opened).
#[test]
fn dashboard_panels_do_not_overlap() {
    fn check(level: &str, panels: &[Value]) {
        let mut taken: BTreeMap<(u64, u64), &str> = BTreeMap::new();
        for p in panels {
            let title = str_of(p, "title");
            let g = &p["gridPos"];
            let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| {
                g[k].as_u64()
                    .unwrap_or_else(|| panic!("panel {title:?}: gridPos.{k}"))
            });
            assert!(
                w >= 1 && h >= 1 && x + w <= 24,
                "panel {title:?}: gridPos {g} leaves the grid"
            );
            for cx in x..x + w {
                for cy in y..y + h {
                    if let Some(other) = taken.insert((cx, cy), title) {
                        panic!("{level}: panel {title:?} overlaps {other:?} at x={cx} y={cy}");
                    }
                }
            }
        }
    }
    let d = dashboard();
    let top = d["panels"].as_array().expect("panels");
    check("top level", top);
    for row in top.iter().filter(|p| p["collapsed"] == true) {
        check(
            &format!("collapsed row {:?}", str_of(row, "title")),
            row["panels"].as_array().expect("a collapsed row's panels"),
        );
    }
}

/// README describes the dashboard by its rows: each row's title appears in its section.
#[test]
fn readme_names_the_dashboard_rows() {
    let readme = read("README.md");
    let (_, section) = readme
        .split_once("\n### Dashboard")
        .expect("README: a ### Dashboard section");
    let section = section.split("\n### ").next().unwrap_or("");
    for p in all_panels(&dashboard())
        .into_iter()
        .filter(|p| p["type"] == "row")
    {
        let title = str_of(p, "title");
        assert!(
            section.contains(&format!("**{title}**")),
            "README's dashboard section does not describe the row {title:?} (as **{title}**)"
        );
    }
}
