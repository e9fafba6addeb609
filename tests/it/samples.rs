//! Connector samples are the connectors' tests: checked through the pure
//! stages, and published end to end through the broker and the store.

use std::collections::HashMap;
use std::time::Duration;

use gridhub::amqp::publish::Published;
use gridhub::check::{self, Expectation};
use gridhub::connector::Registry;
use serde_json::Value;

use crate::helpers::{TestEnv, number_cases_past, root, sample_messages, wait_until};

#[test]
fn every_sample_meets_its_expectation() {
    let report = check::run(&root().join("connectors"), &root().join("schemas"));
    assert!(report.problems.is_empty(), "{}", report.problems.join("\n"));
    assert!(report.samples >= 3 * 16, "only {} samples", report.samples);
}

#[test]
fn every_hotline_has_eight_valid_and_eight_invalid_samples() {
    let registry = Registry::load(&root().join("connectors"), &root().join("schemas")).unwrap();
    for id in ["hotline-12345", "hotline-96156", "hotline-96126"] {
        let (samples, problems) = check::samples(registry.get(id).expect(id));
        assert!(problems.is_empty(), "{problems:?}");
        let valid = samples
            .iter()
            .filter(|s| matches!(s.expect, Expectation::Intent(_)))
            .count();
        let invalid: Vec<_> = samples
            .iter()
            .filter_map(|s| match &s.expect {
                Expectation::Refusal(r) => Some((r.stage, r.instance_path.clone())),
                _ => None,
            })
            .collect();
        assert!(valid >= 8, "{id}: {valid} valid samples");
        assert!(
            invalid.len() >= 8,
            "{id}: {} invalid samples",
            invalid.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_become_cases_or_dead_letters() {
    let env = TestEnv::new().await;
    let registry = Registry::load(&root().join("connectors"), &root().join("schemas")).unwrap();
    let (messages, expected) = sample_messages(&registry, "guest");
    number_cases_past(
        &gridhub::store::Store::from_pool(env.pool.clone()),
        &messages,
    )
    .await;
    let hub = env.start_hub(env.settings.clone()).await;
    let results = env.publish(&messages).await;
    assert!(
        results.iter().all(|r| *r == Published::Confirmed),
        "{results:?}"
    );

    // Valid samples by the kind of intent they carry.
    let kind_of = |s: &gridhub::check::Sample| match &s.expect {
        Expectation::Intent(intent) => intent["kind"].as_str().unwrap_or_default().to_owned(),
        Expectation::Refusal(_) => "refusal".to_owned(),
    };
    let count_kind =
        |kind: &str| expected.iter().filter(|(_, s)| kind_of(s) == kind).count() as i64;
    let opens = count_kind("open_case");
    // With no case opened by them, updates name unknown cases: refused at apply.
    let updates = count_kind("update_case");
    let shares = count_kind("share_records");
    let grid_updates = count_kind("update_grids");
    let invalid = count_kind("refusal");
    assert!(opens > 0 && updates > 0 && shares > 0 && grid_updates > 0);
    env.wait_count(
        "SELECT count(*) FROM inbox",
        expected.len() as i64,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(env.count("SELECT count(*) FROM cases").await, opens);
    assert_eq!(
        env.count("SELECT count(*) FROM dead_letters").await,
        invalid + updates
    );
    let apply_reasons: Vec<(String,)> =
        sqlx::query_as("SELECT reason FROM dead_letters WHERE stage = 'apply'")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    // Callbacks name tickets the hotline samples opened: those cases are
    // only dispatched, so a callback is not allowed yet.
    assert!(
        apply_reasons.len() as i64 == updates
            && apply_reasons
                .iter()
                .all(|(r,)| r.starts_with("unknown case")
                    || r.ends_with("callback not allowed in status dispatched")),
        "{apply_reasons:?}"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM case_events WHERE kind = 'opened'")
            .await,
        opens
    );
    assert_eq!(
        env.count("SELECT count(*) FROM inbox WHERE outcome = 'records_shared'")
            .await,
        shares
    );
    assert_eq!(
        env.count("SELECT count(*) FROM inbox WHERE outcome = 'grids_updated'")
            .await,
        grid_updates
    );
    assert!(env.count("SELECT count(*) FROM grids").await > 0);
    assert_eq!(
        env.count("SELECT count(*) FROM outbox WHERE routing_key = 'grid-platform.records.shared'")
            .await,
        shares
    );

    // Every valid sample is exactly one case with the expected unified fields.
    let rows: Vec<(String, Value)> = sqlx::query_as(
        "SELECT s.message_id, jsonb_build_object('channel', c.channel, 'nature', c.nature, 'category', c.category,
                'priority', c.priority, 'title', c.title, 'received_at', c.received_at, 'ref', s.source_ref,
                'status', c.status, 'lon', c.lon, 'lat', c.lat)
         FROM cases c JOIN case_sources s ON s.case_id = c.id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let cases: HashMap<String, Value> = rows.into_iter().collect();
    for (message_id, sample) in &expected {
        let Expectation::Intent(intent) = &sample.expect else {
            continue;
        };
        if intent["kind"] != "open_case" {
            continue;
        }
        let case = cases
            .get(message_id)
            .unwrap_or_else(|| panic!("{}: no case", sample.path.display()));
        for (field, key) in [
            ("channel", "channel"),
            ("nature", "nature"),
            ("priority", "priority"),
            ("title", "title"),
            ("ref", "source_ref"),
        ] {
            assert_eq!(
                case[field],
                intent[key],
                "{}: {field}",
                sample.path.display()
            );
        }
        assert_eq!(
            case["category"],
            intent.get("category").cloned().unwrap_or(Value::Null),
            "{}",
            sample.path.display()
        );
        let status = case["status"].as_str().unwrap();
        assert!(
            ["dispatched", "answered", "merged"].contains(&status),
            "{}: {status}",
            sample.path.display()
        );
        let stored =
            chrono::DateTime::parse_from_rfc3339(case["received_at"].as_str().unwrap()).unwrap();
        let given =
            chrono::DateTime::parse_from_rfc3339(intent["received_at"].as_str().unwrap()).unwrap();
        assert_eq!(stored, given, "{}: received_at", sample.path.display());
        if let Some(lon) = intent.pointer("/place/lon") {
            assert_eq!(&case["lon"], lon, "{}", sample.path.display());
        }
    }

    // Every invalid sample is in its connector's DLQ, with the expected stage and path.
    wait_until(
        Duration::from_secs(20),
        "every refusal recorded",
        || async {
            let mut recorded = 0;
            for connector in registry.connectors.keys() {
                recorded += env.dead_letters(connector).await.len() as i64;
            }
            recorded == invalid + updates
        },
    )
    .await;
    let mut letters = HashMap::new();
    for connector in registry.connectors.keys() {
        for letter in env.dead_letters(connector).await {
            letters.insert(letter.message_id.clone().unwrap(), letter);
        }
    }
    assert_eq!(letters.len() as i64, invalid + updates);
    for (message_id, sample) in &expected {
        let Expectation::Refusal(refusal) = &sample.expect else {
            continue;
        };
        let letter = letters
            .get(message_id)
            .unwrap_or_else(|| panic!("{}: not dead-lettered", sample.path.display()));
        assert_eq!(
            letter.stage,
            refusal.stage.as_str(),
            "{}",
            sample.path.display()
        );
        assert_eq!(letter.connector, sample.connector);
        assert!(
            letter
                .violations
                .iter()
                .any(|v| v.instance_path == refusal.instance_path),
            "{}: no violation at {:?}",
            sample.path.display(),
            refusal.instance_path
        );
        if matches!(
            refusal.stage,
            gridhub::pipeline::Stage::Schema | gridhub::pipeline::Stage::Intent
        ) {
            assert!(
                letter
                    .schema
                    .as_deref()
                    .is_some_and(|s| s.starts_with("schemas/")),
                "{}",
                sample.path.display()
            );
        }
    }
    // Reading them left them where they were.
    for connector in registry.connectors.keys() {
        let queue = env.names.dead_letter_queue(connector);
        let in_queue = letters
            .values()
            .filter(|l| &l.connector == connector)
            .count() as u32;
        env.wait_depth(&queue, in_queue, Duration::from_secs(5))
            .await;
    }

    // case.opened reached the command centre, one per case, with no personal data.
    let centre = env.names.outbound_queue("command-centre");
    wait_until(Duration::from_secs(10), "case.opened events", || async {
        env.depth(&centre).await as i64
            == env
                .count("SELECT count(*) FROM outbox WHERE destination = 'command-centre'")
                .await
    })
    .await;
    let events = env.drain(&centre).await;
    assert_eq!(
        events
            .iter()
            .filter(|(_, e)| e["event"] == "case.opened")
            .count() as i64,
        opens
    );
    for (properties, event) in &events {
        assert!(properties.message_id().is_some());
        assert!(event.get("reporter").is_none());
    }
    // And each hotline heard about its own cases.
    let own = env.drain(&env.names.outbound_queue("hotline-12345")).await;
    assert!(
        !own.is_empty()
            && own
                .iter()
                .all(|(_, e)| e["source"]["connector"] == "hotline-12345")
    );
    hub.stop().await;
}
