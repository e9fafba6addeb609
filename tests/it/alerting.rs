//! The alerts and dashboards in `deploy/` against the hub itself: every
//! metric an expression of `deploy/prometheus/*.yml` or
//! `deploy/grafana/*.json` reads is one a running hub exports, with the
//! labels it selects on; promtool accepts the rules, the dashboards'
//! queries and the Prometheus configuration, and their tests pass; every
//! alert has a test that makes it fire. And the figures read at each scrape
//! come out the same on PostgreSQL and SQLite.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;
use std::time::Duration;

use chrono::Utc;
use gridhub::store::Store;
use regex::Regex;
use serde_json::Value;

use crate::helpers::{TestEnv, empty_ticket, hotline_ticket, root, wait_until};

/// Series Prometheus makes itself rather than reads from the hub.
const PROMETHEUS_OWN: &[&str] = &[
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "ALERTS",
    "ALERTS_FOR_STATE",
];

/// Labels Prometheus adds to every series it scrapes.
const TARGET_LABELS: &[&str] = &["instance", "job"];

/// Words of PromQL that are not metric names.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
];

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).expect("a valid pattern")
}

/// Grafana's variables (`$__rate_interval`, `${name}`, `$name`).
static VARIABLE: LazyLock<Regex> = LazyLock::new(|| regex(r"\$\{[^}]*\}|\$\w+"));

/// A PromQL expression as Prometheus would read it, Grafana's variables
/// given values: a duration for the intervals, "match anything" for the
/// rest (they stand inside label matchers).
fn as_promql(expr: &str) -> String {
    VARIABLE
        .replace_all(expr, |found: &regex::Captures| {
            if found[0].starts_with("$__") {
                "5m".to_owned()
            } else {
                ".*".to_owned()
            }
        })
        .into_owned()
}

/// The metric names an expression reads, with the label names each of its
/// selectors matches on.
fn selectors(expr: &str) -> BTreeMap<String, BTreeSet<String>> {
    static STRING: LazyLock<Regex> =
        LazyLock::new(|| regex(r#""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`"#));
    static MATCHERS: LazyLock<Regex> = LazyLock::new(|| regex(r"\{([^}]*)\}"));
    static MATCHER: LazyLock<Regex> =
        LazyLock::new(|| regex(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)"));
    static RANGE: LazyLock<Regex> = LazyLock::new(|| regex(r"\[[^\]]*\]"));
    static GROUPING: LazyLock<Regex> = LazyLock::new(|| {
        regex(r"(?i)\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
    });
    static OFFSET: LazyLock<Regex> = LazyLock::new(|| regex(r"(?i)\boffset\s+-?[0-9a-z]+"));
    static TOKEN: LazyLock<Regex> = LazyLock::new(|| {
        regex(r"#[0-9]+|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|[a-zA-Z_:][a-zA-Z0-9_:]*(?:\s*\()?")
    });

    // Label values go first (they can hold anything), then each selector's
    // matchers are set aside behind a marker, `#n`.
    let text = STRING.replace_all(&as_promql(expr), "\"\"").into_owned();
    let mut matched: Vec<BTreeSet<String>> = Vec::new();
    let text = MATCHERS
        .replace_all(&text, |found: &regex::Captures| {
            matched.push(
                MATCHER
                    .captures_iter(&found[1])
                    .map(|m| m[1].to_owned())
                    .collect(),
            );
            format!(" #{} ", matched.len() - 1)
        })
        .into_owned();
    let text = RANGE.replace_all(&text, " ");
    let text = GROUPING.replace_all(&text, " ");
    let text = OFFSET.replace_all(&text, " ").into_owned();

    let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // The name just read, and where it ends.
    let mut last: Option<(String, usize)> = None;
    for token in TOKEN.find_iter(&text) {
        let word = token.as_str();
        if let Some(index) = word.strip_prefix('#') {
            // A selector's matchers belong to the name right before them.
            if let Some((name, end)) = last.take()
                && text[end..token.start()].trim().is_empty()
            {
                let labels = &matched[index.parse::<usize>().expect("a marker")];
                names
                    .entry(name)
                    .or_default()
                    .extend(labels.iter().cloned());
            }
            continue;
        }
        last = None;
        // Numbers, functions and aggregations (a word and its parenthesis),
        // keywords.
        if word.starts_with(|c: char| c.is_ascii_digit())
            || word.ends_with('(')
            || KEYWORDS.contains(&word.to_ascii_lowercase().as_str())
        {
            continue;
        }
        names.entry(word.to_owned()).or_default();
        last = Some((word.to_owned(), token.end()));
    }
    names
}

/// The expression inside a Grafana variable query, if it has one:
/// `label_values(EXPR, label)` and `query_result(EXPR)`.
fn variable_expr(query: &str) -> Option<String> {
    static LABEL_VALUES: LazyLock<Regex> =
        LazyLock::new(|| regex(r"^\s*label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$"));
    static QUERY_RESULT: LazyLock<Regex> = LazyLock::new(|| regex(r"^\s*query_result\((.+)\)\s*$"));
    LABEL_VALUES
        .captures(query)
        .or_else(|| QUERY_RESULT.captures(query))
        .map(|c| c[1].to_owned())
}

/// What a hub's `/metrics` page exports: every sample name Prometheus can
/// store from it (a counter `x` as `x_total`, a histogram `x` as
/// `x_bucket`, `x_sum` and `x_count`, whether or not it has samples yet),
/// and the label names seen on each.
#[derive(Debug, Default)]
struct Exposition {
    names: BTreeSet<String>,
    labels: BTreeMap<String, BTreeSet<String>>,
}

impl Exposition {
    fn parse(text: &str) -> Exposition {
        static LABEL: LazyLock<Regex> = LazyLock::new(|| regex(r#"([a-zA-Z_][a-zA-Z0-9_]*)=""#));
        let mut exposition = Exposition::default();
        for line in text.lines() {
            if let Some(declared) = line.strip_prefix("# TYPE ") {
                let (family, kind) = declared.split_once(' ').expect("# TYPE name type");
                let suffixes: &[&str] = match kind {
                    "counter" => &["_total", "_created"],
                    "histogram" | "gaugehistogram" => &["_bucket", "_sum", "_count", "_created"],
                    "summary" => &["", "_sum", "_count", "_created"],
                    "info" => &["_info"],
                    _ => &[""],
                };
                for suffix in suffixes {
                    exposition.names.insert(format!("{family}{suffix}"));
                }
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                let end = line.find(['{', ' ']).unwrap_or(line.len());
                let name = &line[..end];
                let labels = exposition.labels.entry(name.to_owned()).or_default();
                if line[end..].starts_with('{') {
                    let close = line.rfind('}').expect("a closed label set");
                    labels.extend(
                        LABEL
                            .captures_iter(&line[end..close])
                            .map(|c| c[1].to_owned()),
                    );
                }
                exposition.names.insert(name.to_owned());
            }
        }
        exposition
    }
}

/// One expression and where it was found.
#[derive(Debug)]
struct Expr {
    file: String,
    text: String,
}

/// Everything the alerting side reads, from `deploy/`.
#[derive(Debug, Default)]
struct Deployed {
    /// Rule files: (file, alert names and recording rules).
    rule_files: Vec<PathBuf>,
    test_files: Vec<PathBuf>,
    /// Recorded series the rules make.
    recorded: BTreeSet<String>,
    alerts: BTreeSet<String>,
    /// Alerts some test expects to fire.
    alerts_tested: BTreeSet<String>,
    /// Rule and test expressions, input series of tests.
    rule_exprs: Vec<Expr>,
    /// The dashboards' queries and variables' expressions.
    dashboard_exprs: Vec<Expr>,
}

fn files(folder: &str, extension: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(root().join(folder))
        .unwrap_or_else(|e| panic!("{folder}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == extension))
        .collect();
    found.sort();
    found
}

fn name_of(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Every string under `key`, anywhere in a JSON value.
fn strings_under<'a>(value: &'a Value, key: &str, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) if k == key => found.push(s),
                    _ => strings_under(v, key, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| strings_under(v, key, found)),
        _ => {}
    }
}

impl Deployed {
    fn read() -> Deployed {
        let mut deployed = Deployed::default();
        for path in files("deploy/prometheus", "yml") {
            let file = name_of(&path);
            let text = std::fs::read_to_string(&path).unwrap();
            let yaml: Value = serde_yaml_ng::from_str(&text)
                .unwrap_or_else(|e| panic!("{file} is not YAML: {e}"));
            let expr = |text: &str| Expr {
                file: file.clone(),
                text: text.to_owned(),
            };
            if let Some(groups) = yaml["groups"].as_array() {
                deployed.rule_files.push(path.clone());
                for rule in groups.iter().flat_map(|g| g["rules"].as_array().unwrap()) {
                    let text = rule["expr"].as_str().expect("every rule has an expr");
                    deployed.rule_exprs.push(expr(text));
                    if let Some(record) = rule["record"].as_str() {
                        deployed.recorded.insert(record.to_owned());
                    }
                    if let Some(alert) = rule["alert"].as_str() {
                        deployed.alerts.insert(alert.to_owned());
                    }
                }
            }
            if let Some(tests) = yaml["tests"].as_array() {
                deployed.test_files.push(path.clone());
                for test in tests {
                    let inputs = test["input_series"].as_array().into_iter().flatten();
                    for series in inputs {
                        deployed
                            .rule_exprs
                            .push(expr(series["series"].as_str().unwrap()));
                    }
                    let checks = test["promql_expr_test"].as_array().into_iter().flatten();
                    for check in checks {
                        deployed
                            .rule_exprs
                            .push(expr(check["expr"].as_str().unwrap()));
                    }
                    let alerts = test["alert_rule_test"].as_array().into_iter().flatten();
                    for alert in alerts {
                        let fires = alert["exp_alerts"]
                            .as_array()
                            .is_some_and(|a| !a.is_empty());
                        if fires {
                            let name = alert["alertname"].as_str().unwrap();
                            deployed.alerts_tested.insert(name.to_owned());
                        }
                    }
                }
            }
        }
        for path in files("deploy/grafana", "json") {
            let file = name_of(&path);
            let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{file} is not JSON: {e}"));
            let mut exprs = Vec::new();
            strings_under(&dashboard["panels"], "expr", &mut exprs);
            assert!(!exprs.is_empty(), "{file}: no panel queries found");
            let mut queries = Vec::new();
            strings_under(&dashboard["templating"], "query", &mut queries);
            let variables = queries.into_iter().filter_map(variable_expr);
            for text in exprs.into_iter().map(str::to_owned).chain(variables) {
                deployed.dashboard_exprs.push(Expr {
                    file: file.clone(),
                    text,
                });
            }
        }
        assert!(
            !deployed.rule_files.is_empty(),
            "no rule file in deploy/prometheus"
        );
        assert!(
            !deployed.test_files.is_empty(),
            "no rule tests in deploy/prometheus"
        );
        deployed
    }

    /// What the expressions read that the hub does not export, one line
    /// each; and how many selectors' labels were checked.
    fn missing_from(&self, exported: &Exposition) -> (Vec<String>, usize) {
        let mut missing = Vec::new();
        let mut checked = 0;
        for expr in self.rule_exprs.iter().chain(&self.dashboard_exprs) {
            for (name, labels) in selectors(&expr.text) {
                let known = exported.names.contains(&name)
                    || self.recorded.contains(&name)
                    || PROMETHEUS_OWN.contains(&name.as_str());
                if !known {
                    missing.push(format!("{}: {name} in `{}`", expr.file, expr.text.trim()));
                    continue;
                }
                // Label names, where the hub exported samples to look at.
                let Some(seen) = exported.labels.get(&name) else {
                    continue;
                };
                checked += 1;
                for label in labels {
                    if !seen.contains(&label) && !TARGET_LABELS.contains(&label.as_str()) {
                        missing.push(format!(
                            "{}: {name} has no label {label} in `{}`",
                            expr.file,
                            expr.text.trim()
                        ));
                    }
                }
            }
        }
        (missing, checked)
    }
}

#[test]
fn expressions_are_read_for_the_names_they_select() {
    let names = selectors(
        r#"histogram_quantile(0.95, sum by (connector, le) (rate(gridhub_processing_seconds_bucket{instance=~"$instance", connector=~"a|b"}[$__rate_interval])))
           > 10 and on () max without (job) (gridhub_dlq_depth offset 1h) - 1e3
           or sum(kind_unit:x:max{kind="supervision"}) / ignoring(le) group_left up
           unless rate(gridhub_messages_received_total{stage="}{"}[5m:1m])"#,
    );
    let expected: BTreeMap<String, BTreeSet<String>> = [
        (
            "gridhub_processing_seconds_bucket",
            &["connector", "instance"][..],
        ),
        ("gridhub_dlq_depth", &[]),
        ("kind_unit:x:max", &["kind"]),
        ("up", &[]),
        ("gridhub_messages_received_total", &["stage"]),
    ]
    .into_iter()
    .map(|(n, l)| (n.to_owned(), l.iter().map(|s| (*s).to_owned()).collect()))
    .collect();
    assert_eq!(names, expected);
    assert_eq!(
        variable_expr("label_values(gridhub_cases_overdue{level=\"sign_for\"}, unit)").as_deref(),
        Some("gridhub_cases_overdue{level=\"sign_for\"}")
    );
    assert_eq!(variable_expr("label_values(unit)"), None);

    let exposition = Exposition::parse(
        "# TYPE gridhub_x counter\n# TYPE gridhub_h histogram\n\
         gridhub_h_bucket{connector=\"a\",le=\"1\"} 0\n# TYPE gridhub_g gauge\n# EOF\n",
    );
    for name in [
        "gridhub_x_total",
        "gridhub_h_bucket",
        "gridhub_h_sum",
        "gridhub_h_count",
        "gridhub_g",
    ] {
        assert!(exposition.names.contains(name), "{name}");
    }
    assert!(!exposition.names.contains("gridhub_x"));
    assert_eq!(
        exposition.labels["gridhub_h_bucket"],
        ["connector", "le"].map(str::to_owned).into()
    );
}

/// Runs promtool; its output when it fails.
fn promtool(args: &[&str], dir: &Path) -> Result<String, String> {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): it comes with Debian's prometheus package \
                 (apt-get install prometheus), which .ci/run installs"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(format!("promtool {}:\n{text}", args.join(" ")))
    }
}

#[test]
fn promtool_checks_and_tests_the_rules_and_every_alert_is_tested() {
    let deployed = Deployed::read();
    let dir = root().join("deploy/prometheus");
    for rules in &deployed.rule_files {
        promtool(&["check", "rules", &rules.to_string_lossy()], &dir)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    for tests in &deployed.test_files {
        let output = promtool(&["test", "rules", &tests.to_string_lossy()], &dir)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(output.contains("SUCCESS"), "{output}");
    }
    promtool(&["check", "config", "prometheus.yml"], &dir).unwrap_or_else(|e| panic!("{e}"));

    let untested: Vec<_> = deployed
        .alerts
        .difference(&deployed.alerts_tested)
        .collect();
    assert!(
        untested.is_empty(),
        "alerts no test in deploy/prometheus makes fire: {untested:?}"
    );
    let unknown: Vec<_> = deployed
        .alerts_tested
        .difference(&deployed.alerts)
        .collect();
    assert!(
        unknown.is_empty(),
        "tests of alerts that do not exist: {unknown:?}"
    );

    // The dashboards' queries are PromQL Prometheus parses: written as
    // recording rules, promtool checks them.
    let rules: Vec<Value> = deployed
        .dashboard_exprs
        .iter()
        .enumerate()
        .map(|(i, e)| serde_json::json!({"record": format!("dashboard:query:{i}"), "expr": as_promql(&e.text)}))
        .collect();
    let file =
        std::env::temp_dir().join(format!("gridhub-dashboards-{}.yml", uuid::Uuid::new_v4()));
    let yaml = serde_yaml_ng::to_string(
        &serde_json::json!({"groups": [{"name": "dashboards", "rules": rules}]}),
    )
    .unwrap();
    std::fs::write(&file, yaml).unwrap();
    let checked = promtool(&["check", "rules", &file.to_string_lossy()], &dir);
    let _ = std::fs::remove_file(&file);
    if let Err(error) = checked {
        let listed: Vec<String> = deployed
            .dashboard_exprs
            .iter()
            .enumerate()
            .map(|(i, e)| format!("dashboard:query:{i} {}: {}", e.file, e.text))
            .collect();
        panic!("{error}\n{}", listed.join("\n"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_alerts_and_dashboards_read_is_exported() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    env.load_one_grid().await;
    // A case, a refusal, then the case's deadlines long past: every family
    // then has samples whose labels can be checked.
    env.publish(&[
        hotline_ticket("BJ12345-20261206-000777"),
        empty_ticket("alerting-refused"),
    ])
    .await;
    env.wait_count("SELECT count(*) FROM cases", 1, Duration::from_secs(20))
        .await;
    wait_until(Duration::from_secs(20), "the refusal recorded", || async {
        env.dead_letters("hotline-12345").await.len() == 1
    })
    .await;
    let escalated = hub
        .store
        .escalate(Utc::now() + chrono::Duration::days(60), &hub.rules)
        .await
        .unwrap();
    assert!(!escalated.is_empty(), "the case was escalated");

    let (status, page) = hub.call("GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    let page = page.as_str().expect("text").to_owned();
    for line in [
        "gridhub_dependency_up{dependency=\"broker\"} 1",
        "gridhub_dependency_up{dependency=\"database\"} 1",
        "gridhub_dlq_depth{connector=\"hotline-12345\"} 1",
        // Series for every connector, traffic or not.
        "gridhub_messages_received_total{connector=\"dept-police\"} 0",
        "gridhub_case_escalations_last_hour{kind=\"sign_for_overdue\",unit=\"dept-urban-management\"} 1",
        "gridhub_cases_overdue{unit=\"dept-urban-management\",level=\"sign_for\"} 1",
    ] {
        assert!(page.contains(line), "{line} missing from\n{page}");
    }
    let exported = Exposition::parse(&page);
    for name in [
        "gridhub_outbox_oldest_unsent_seconds",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        assert!(
            exported.labels.contains_key(name),
            "no {name} sample in\n{page}"
        );
    }

    let deployed = Deployed::read();
    let (missing, checked) = deployed.missing_from(&exported);
    assert!(
        missing.is_empty(),
        "the alerts and dashboards read what the hub does not export:\n{}\n\nexported: {:?}",
        missing.join("\n"),
        exported.names
    );
    assert!(
        checked > 50,
        "only {checked} selectors had samples to check"
    );
    hub.stop().await;
}

/// `name` runs on PostgreSQL and on SQLite.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn postgres() {
                let db = crate::helpers::TestDb::new().await;
                super::$name(&db.store).await;
            }

            #[tokio::test]
            async fn sqlite() {
                super::$name(&crate::store::sqlite().await).await;
            }
        }
    )*};
}

on_both!(scrape_figures_read_the_store);

async fn scrape_figures_read_the_store(store: &Store) {
    let rules = crate::store::located(store).await;
    assert_eq!(store.outbox_oldest_unsent_secs().await.unwrap(), 0.0);
    assert!(store.escalations_last_hour().await.unwrap().is_empty());

    crate::store::open_ticket(store, &rules).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let age = store.outbox_oldest_unsent_secs().await.unwrap();
    assert!((1.0..60.0).contains(&age), "{age}");

    // Long past every deadline: each escalation once, by the lead unit
    // (no deadline warning: the deadline is already past).
    store
        .escalate(Utc::now() + chrono::Duration::days(60), &rules)
        .await
        .unwrap();
    let unit = "dept-urban-management".to_owned();
    assert_eq!(
        store.escalations_last_hour().await.unwrap(),
        ["reminder", "sign_for_overdue", "supervision"].map(|kind| (
            kind.to_owned(),
            unit.clone(),
            1
        ))
    );

    // Sent, the outbox has nothing waiting.
    let claim = store.claim_outbox(1000, 1 << 22).await.unwrap();
    let ids: Vec<i64> = claim.events.iter().map(|e| e.id).collect();
    claim.mark_sent(&ids).await.unwrap();
    assert_eq!(store.outbox_oldest_unsent_secs().await.unwrap(), 0.0);
}
