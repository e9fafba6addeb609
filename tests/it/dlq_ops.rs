//! Dead-letter operations through the HTTP API and the CLI, against the real
//! broker and database: list, groups, show, replay, edit, purge, audit,
//! tokens and roles, metrics and readiness.

use std::time::Duration;

use gridhub::amqp::publish::Outgoing;
use gridhub::settings::Settings;
use serde_json::{Value, json};

use crate::cli::gridhub;
use crate::helpers::{
    OPS_TOKEN, RunningHub, TestEnv, VIEWER_TOKEN, batches_through, empty_ticket, hotline_ticket,
    outgoing, sample, ticket_12345, wait_until, with_message_id,
};

const HOTLINE: &str = "hotline-12345";

fn invalid(name: &str, message_id: &str) -> Outgoing {
    let body = sample(HOTLINE, &format!("ticket/invalid/{name}"));
    with_message_id(outgoing(HOTLINE, "ticket", body), message_id)
}

async fn wait_dlq(env: &TestEnv, count: u32) {
    let queue = env.names.dead_letter_queue(HOTLINE);
    wait_until(
        Duration::from_secs(20),
        &format!("{count} dead letters"),
        || async { env.depth(&queue).await == count },
    )
    .await;
}

async fn letters(hub: &RunningHub, query: &str) -> Vec<Value> {
    let (status, body) = hub.get(&format!("/api/dlq?{query}"), VIEWER_TOKEN).await;
    assert_eq!(status, 200, "{body}");
    body["letters"].as_array().unwrap().clone()
}

/// Starts a hub that refuses one invalid ticket (a bad phone) under
/// `message_id`; the hub and the dead letter as listed.
async fn one_dead_letter(env: &TestEnv, message_id: &str) -> (RunningHub, Value) {
    let hub = env.start_hub(env.settings.clone()).await;
    env.publish(&[invalid("invalid-phone.json", message_id)])
        .await;
    wait_dlq(env, 1).await;
    let letter = letters(&hub, "").await[0].clone();
    (hub, letter)
}

async fn audit(env: &TestEnv, action: &str) -> Vec<(String, i32)> {
    sqlx::query_as("SELECT actor, affected FROM dlq_audit WHERE action = $1 ORDER BY id")
        .bind(action)
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_groups_and_show_leave_the_dlq_as_it_was() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    env.publish(&[
        invalid("invalid-phone.json", "phone-1"),
        invalid("invalid-phone.json", "phone-2"),
        invalid("missing-ticket-no.json", "missing-1"),
        invalid("not-json-truncated.json", "broken-1"),
    ])
    .await;
    wait_dlq(&env, 4).await;

    let (status, body) = hub.get("/api/dlq/groups", VIEWER_TOKEN).await;
    assert_eq!(status, 200, "{body}");
    let groups = body["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 3, "{body:#}");
    assert_eq!(groups[0]["count"], 2, "largest group first");
    assert_eq!(groups[0]["stage"], "schema");
    assert_eq!(groups[0]["connector"], HOTLINE);
    assert!(!groups[0]["kinds"].as_array().unwrap().is_empty());
    assert!(groups[0]["first_seen"].as_str() <= groups[0]["last_seen"].as_str());
    let counts: Vec<u64> = groups
        .iter()
        .map(|g| g["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, vec![2, 1, 1]);

    assert_eq!(letters(&hub, "").await.len(), 4);
    let decode = letters(&hub, "stage=decode").await;
    assert_eq!(decode.len(), 1);
    assert_eq!(decode[0]["message_id"], "broken-1");
    let group = groups[0]["id"].as_str().unwrap();
    let grouped = letters(&hub, &format!("group={group}")).await;
    let mut ids: Vec<&str> = grouped
        .iter()
        .map(|l| l["message_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["phone-1", "phone-2"]);
    assert_eq!(letters(&hub, "message_id=missing-1").await.len(), 1);
    assert_eq!(letters(&hub, "since=2999-01-01T00:00:00Z").await.len(), 0);
    assert_eq!(letters(&hub, "until=2999-01-01T00:00:00Z").await.len(), 4);
    assert_eq!(
        letters(&hub, "since=2000-01-01T00:00:00Z&stage=schema")
            .await
            .len(),
        3
    );
    // Reason text matches in any case.
    let word: String = decode[0]["reason"]
        .as_str()
        .unwrap()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .max_by_key(|w| w.len())
        .unwrap()
        .to_uppercase();
    let found = letters(&hub, &format!("reason={word}")).await;
    assert!(
        found.iter().any(|l| l["message_id"] == "broken-1"),
        "{word}"
    );
    let (status, _) = hub.get("/api/dlq?conector=typo", VIEWER_TOKEN).await;
    assert_eq!(status, 400, "an unknown filter is an error, not everything");

    // Show: ops see the payload pretty-printed; viewers do not.
    let id = grouped[0]["id"].as_str().unwrap();
    let path = format!("/api/dlq/{HOTLINE}/{id}");
    let (status, detail) = hub.get(&path, OPS_TOKEN).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["body_is_json"], true);
    let body = detail["body"].as_str().unwrap();
    assert!(body.contains("\n  \""), "pretty-printed: {body}");
    assert!(!detail["violations"].as_array().unwrap().is_empty());
    assert_eq!(detail["properties"]["headers"]["x-gridhub-stage"], "schema");
    assert_eq!(detail["properties"]["content_type"], "application/json");
    let (status, detail) = hub.get(&path, VIEWER_TOKEN).await;
    assert_eq!(status, 200);
    assert!(detail["body"].is_null(), "viewers do not read payloads");
    // The payload read is audited: who, what, when, from where; the
    // viewer's read, without the payload, is not a read of personal data.
    let (_, trail) = hub.get("/api/audit", OPS_TOKEN).await;
    let reads: Vec<&Value> = trail
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "read-payload")
        .collect();
    assert_eq!(reads.len(), 1, "{trail}");
    assert_eq!(reads[0]["actor"], "token:tester");
    assert_eq!(reads[0]["origin"], "127.0.0.1");
    assert_eq!(reads[0]["filter"]["id"], id);
    assert!(reads[0]["at"].is_string());
    let (status, _) = hub
        .get(
            &format!("/api/dlq/{HOTLINE}/0000000000000000"),
            VIEWER_TOKEN,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = hub.get("/api/dlq?connector=nobody", VIEWER_TOKEN).await;
    assert_eq!(status, 404);

    // Reading took nothing away.
    wait_dlq(&env, 4).await;
    hub.stop().await;
}

/// ServicePulse's story: a mapping is broken, messages pile up in one
/// group; after the fix, one replay of the group turns them into cases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_fix_replaying_the_group_turns_it_into_cases() {
    let env = TestEnv::new().await;
    let (broken, hub) = env.start_hub_with_broken_mapping(HOTLINE).await;
    let tickets: Vec<Outgoing> = (1..=3)
        .map(|n| hotline_ticket(&format!("BJ12345-20261128-90010{n}")))
        .collect();
    env.publish(&tickets).await;
    wait_dlq(&env, 3).await;
    hub.stop().await;
    let _ = std::fs::remove_dir_all(broken);

    // The fix is deployed.
    let hub = env.start_hub(env.settings.clone()).await;
    let (_, body) = hub.get("/api/dlq/groups", VIEWER_TOKEN).await;
    let groups = body["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{body:#}");
    assert_eq!(groups[0]["stage"], "mapping");
    assert_eq!(groups[0]["count"], 3);
    let replay = json!({"connector": HOTLINE, "group": groups[0]["id"]});

    // Tokens and roles.
    let (status, _) = hub
        .call("POST", "/api/dlq/replay", None, Some(&replay))
        .await;
    assert_eq!(status, 401);
    let (status, _) = hub
        .post("/api/dlq/replay", "not-a-token-at-all", &replay)
        .await;
    assert_eq!(status, 401);
    let (status, _) = hub.call("GET", "/api/overview", None, None).await;
    assert_eq!(status, 401);
    let (status, _) = hub.post("/api/dlq/replay", VIEWER_TOKEN, &replay).await;
    assert_eq!(status, 403);
    let (status, _) = hub.post("/api/dlq/replay", OPS_TOKEN, &json!({})).await;
    assert_eq!(status, 400, "replaying everything needs a filter");
    wait_dlq(&env, 3).await;

    let (status, report) = hub.post("/api/dlq/replay", OPS_TOKEN, &replay).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["done"], 3);
    assert_eq!(report["failed"], 0);
    env.wait_count("SELECT count(*) FROM cases", 3, Duration::from_secs(20))
        .await;
    wait_dlq(&env, 0).await;
    assert_eq!(
        env.count("SELECT count(*) FROM inbox WHERE outcome = 'case_opened' AND replays = 1")
            .await,
        3
    );
    let sources: Vec<(String,)> = sqlx::query_as("SELECT message_id FROM case_sources ORDER BY 1")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    let mut original: Vec<String> = tickets
        .iter()
        .map(|t| t.message_id.clone().unwrap())
        .collect();
    original.sort();
    assert_eq!(
        sources.into_iter().map(|(id,)| id).collect::<Vec<_>>(),
        original,
        "replays keep the original message_id"
    );
    assert_eq!(
        audit(&env, "replay").await,
        vec![("token:tester".to_owned(), 3)]
    );
    let (status, trail) = hub.get("/api/audit", VIEWER_TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!(trail[0]["action"], "replay");
    assert_eq!(trail[0]["message_ids"].as_array().unwrap().len(), 3);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_refused_again_comes_back_with_its_replay_count() {
    let env = TestEnv::new().await;
    let (hub, first) = one_dead_letter(&env, "again-1").await;
    assert_eq!(first["replays"], 0);

    let (status, report) = hub
        .post(
            "/api/dlq/replay",
            OPS_TOKEN,
            &json!({"connector": HOTLINE, "id": first["id"]}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["done"], 1);
    wait_until(Duration::from_secs(20), "refused again, once", || async {
        let found = letters(&hub, "").await;
        found.len() == 1 && found[0]["replays"] == 1
    })
    .await;
    let (_, report) = hub
        .post("/api/dlq/replay", OPS_TOKEN, &json!({"stage": "schema"}))
        .await;
    assert_eq!(report["done"], 1);
    wait_until(Duration::from_secs(20), "refused a third time", || async {
        let found = letters(&hub, "").await;
        found.len() == 1 && found[0]["replays"] == 2
    })
    .await;
    assert_eq!(
        env.count("SELECT count(*) FROM dead_letters WHERE message_id = 'again-1'")
            .await,
        3
    );
    assert_eq!(env.count("SELECT count(*) FROM cases").await, 0);

    // Metrics and health.
    let (status, metrics) = hub.call("GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap().to_owned();
    for line in [
        "gridhub_messages_received_total{connector=\"hotline-12345\"} 3",
        "gridhub_messages_refused_total{connector=\"hotline-12345\",stage=\"schema\"} 3",
        "gridhub_dlq_replayed_total{connector=\"hotline-12345\"} 2",
        "gridhub_dlq_depth{connector=\"hotline-12345\"} 1",
        "gridhub_inbound_queue_depth{connector=\"hotline-12345\"} 0",
        "gridhub_processing_seconds_count{connector=\"hotline-12345\"} 3",
        "gridhub_outbox_backlog 0",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    // Every step of every batch is timed: as many of each as there were batches.
    let batches = |step: &str| batches_through(&metrics, step);
    let record = batches("record");
    assert!(
        (1..=3).contains(&record),
        "{record} batches for 3 deliveries"
    );
    for step in ["wait", "settled", "dead_letter", "ack"] {
        assert_eq!(batches(step), record, "{step}");
    }
    let (status, _) = hub.call("GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
    let (status, ready) = hub.call("GET", "/readyz", None, None).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["ready"], true);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_and_replay_fixes_one_message() {
    let env = TestEnv::new().await;
    let (hub, letter) = one_dead_letter(&env, "edit-1").await;
    let id = letter["id"].as_str().unwrap();
    let path = format!("/api/dlq/{HOTLINE}/{id}/edit");

    let still_broken: Value =
        serde_json::from_slice(&sample(HOTLINE, "ticket/invalid/invalid-phone.json")).unwrap();
    let (status, answer) = hub
        .post(&path, OPS_TOKEN, &json!({"body": still_broken}))
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["outcome"], "would-be-refused");
    assert_eq!(answer["refusal"]["stage"], "schema");
    let (status, _) = hub
        .post(&path, VIEWER_TOKEN, &json!({"body": still_broken}))
        .await;
    assert_eq!(status, 403);
    wait_dlq(&env, 1).await;

    let fixed: Value = serde_json::from_slice(&ticket_12345("BJ12345-20261128-900001")).unwrap();
    let (status, answer) = hub.post(&path, OPS_TOKEN, &json!({"body": fixed})).await;
    assert_eq!(status, 200, "{answer}");
    wait_until(Duration::from_secs(20), "the fixed case", || async {
        env.count("SELECT count(*) FROM case_sources WHERE message_id = 'edit-1' AND source_ref = 'BJ12345-20261128-900001'")
            .await
            == 1
    })
    .await;
    wait_dlq(&env, 0).await;
    assert_eq!(
        audit(&env, "edit-replay").await,
        vec![("token:tester".to_owned(), 1)]
    );
    let (status, _) = hub.post(&path, OPS_TOKEN, &json!({"body": fixed})).await;
    assert_eq!(status, 404, "it is gone");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_asks_for_confirmation_first() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    env.publish(&[
        invalid("invalid-phone.json", "purge-1"),
        invalid("missing-ticket-no.json", "purge-2"),
        invalid("empty-body.json", "purge-3"),
    ])
    .await;
    wait_dlq(&env, 3).await;

    let filter = json!({"connector": HOTLINE, "message_id": "purge-1"});
    let (status, _) = hub
        .post("/api/dlq/purge", VIEWER_TOKEN, &json!({"filter": filter}))
        .await;
    assert_eq!(status, 403);
    let (status, asked) = hub
        .post("/api/dlq/purge", OPS_TOKEN, &json!({"filter": filter}))
        .await;
    assert_eq!(status, 202, "{asked}");
    assert_eq!(asked["count"], 1);
    wait_dlq(&env, 3).await;
    let (status, _) = hub
        .post(
            "/api/dlq/purge",
            OPS_TOKEN,
            &json!({"filter": {"connector": HOTLINE}, "confirm": asked["confirm"]}),
        )
        .await;
    assert_eq!(
        status, 409,
        "a confirmation is for the filter it was given for"
    );
    let (_, asked) = hub
        .post("/api/dlq/purge", OPS_TOKEN, &json!({"filter": filter}))
        .await;
    let (status, done) = hub
        .post(
            "/api/dlq/purge",
            OPS_TOKEN,
            &json!({"filter": filter, "confirm": asked["confirm"]}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["done"], 1);
    wait_dlq(&env, 2).await;

    // The CLI asks too.
    let config = env.config_file("");
    let run = |args: &[&str], input: &str| {
        crate::cli::output_with_input(
            gridhub()
                .arg("dlq")
                .args(args)
                .arg("--config")
                .arg(&config)
                .env("GRIDHUB_DATABASE_URL", &env.database_url)
                .env("USER", "nightshift"),
            input,
        )
    };
    let output = run(&["groups", "--json", "--connector", HOTLINE], "");
    assert!(output.status.success());
    let groups: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(groups.len(), 2);
    let output = run(&["list", "--json", "--stage", "decode"], "");
    let listed: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["message_id"], "purge-3");
    let output = run(&["show", HOTLINE, listed[0]["id"].as_str().unwrap()], "");
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("stage:       decode"));
    let output = run(&["purge"], "");
    assert!(!output.status.success(), "purge without a filter or --all");
    let output = run(&["purge", "--connector", HOTLINE], "no\n");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("purge 2"));
    wait_dlq(&env, 2).await;
    let output = run(&["purge", "--connector", HOTLINE], "purge 2\n");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    wait_dlq(&env, 0).await;

    let purges = audit(&env, "purge").await;
    assert_eq!(
        purges,
        vec![
            ("token:tester".to_owned(), 1),
            ("cli:nightshift".to_owned(), 2)
        ]
    );
    assert_eq!(audit(&env, "purge-requested").await.len(), 4);
    let output = run(&["audit", "--json"], "");
    let trail: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(trail[0]["action"], "purge");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_what_is_missing() {
    let env = TestEnv::new().await;
    let hub = env
        .start_hub(Settings {
            amqp_url: "amqp://guest:guest@127.0.0.1:1/%2f".to_owned(),
            ..env.settings.clone()
        })
        .await;
    let (status, _) = hub.call("GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
    let (status, ready) = hub.call("GET", "/readyz", None, None).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["database"], "ok");
    assert!(
        ready["broker"].as_str().unwrap().starts_with("unreachable"),
        "{ready}"
    );
    hub.stop().await;
}

/// A replay whose broker connection dies half-way: every message is still in
/// its DLQ, or republished, or both; none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_cut_half_way_loses_nothing() {
    use gridhub::amqp::Names;
    use gridhub::connector::Registry;
    use gridhub::dlq::{Filter, Office};
    use gridhub::pipeline::{Refusal, Stage};
    use std::collections::HashSet;
    use std::sync::Arc;

    let env = TestEnv::new().await;
    // Dead letters as the hub's recorder writes them into the store; no hub
    // runs, so replayed copies wait in the inbound queue.
    let total = 400;
    let refusal = Refusal::new(Stage::Mapping, "mapping under repair");
    let letters: Vec<_> = (0..total)
        .map(|n| {
            // Published by the hotline's own user, as the refusal records.
            let original = lapin::BasicProperties::default()
                .with_message_id(format!("cut-{n}").into())
                .with_user_id(HOTLINE.into())
                .with_content_type("application/json".into());
            let properties = gridhub::dlq::properties(
                &original,
                HOTLINE,
                "hotline-12345.ticket",
                &refusal,
                chrono::Utc::now(),
            );
            (
                format!("cut-{n}"),
                gridhub::dlq::encode_properties(&properties),
                ticket_12345(&format!("BJ12345-20261128-{:06}", 700_000 + n)),
            )
        })
        .collect();
    let rows: Vec<_> = letters
        .iter()
        .map(
            |(id, properties, body)| gridhub::store::dead_letters::NewDeadLetter {
                letter_id: id.clone(),
                connector: HOTLINE,
                routing_key: "hotline-12345.ticket".into(),
                properties: properties.clone(),
                body,
            },
        )
        .collect();
    env.store().record_dead_letters(&rows).await.unwrap();
    wait_dlq(&env, total).await;

    let proxy = crate::proxy::Proxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let registry =
        Registry::load(&env.settings.connectors_dir, &env.settings.schemas_dir()).unwrap();
    let store = env.store();
    let ops = Arc::new(Office::new(
        &proxy.amqp_url(),
        Names::new(&env.settings.namespace),
        store,
        Arc::new(registry),
        Vec::new(),
        10_000,
        None,
    ));
    let replay = {
        let ops = ops.clone();
        tokio::spawn(async move {
            let filter = Filter {
                connector: Some(HOTLINE.to_owned()),
                ..Filter::default()
            };
            ops.replay(&filter, &"test".into()).await
        })
    };
    // Cut once some, not all, have been replayed.
    let inbound = env.names.inbound_queue(HOTLINE);
    wait_until(Duration::from_secs(30), "some replayed", || async {
        env.depth(&inbound).await >= 20
    })
    .await;
    proxy.cut();
    let _ = tokio::time::timeout(Duration::from_secs(30), replay).await;

    // Everything unsettled went back to the DLQ when the connection died.
    let queue = env.names.dead_letter_queue(HOTLINE);
    let mut seen = HashSet::new();
    wait_until(
        Duration::from_secs(20),
        "every message accounted for",
        || async { env.depth(&queue).await + env.depth(&inbound).await >= total },
    )
    .await;
    let dead = env.dead_letters(HOTLINE).await;
    let replayed = env.drain(&inbound).await;
    assert!(!replayed.is_empty(), "the cut came after some replays");
    seen.extend(dead.iter().filter_map(|letter| letter.message_id.clone()));
    for (properties, _) in &replayed {
        seen.insert(
            properties
                .message_id()
                .as_ref()
                .unwrap()
                .as_str()
                .to_owned(),
        );
    }
    assert_eq!(seen.len(), total as usize, "no message lost");
    for (properties, _) in &replayed {
        assert_eq!(gridhub::dlq::replays(properties), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_dead_letters_a_hundred_times_never_touches_the_broker() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    let broken: Vec<_> = (1..=2)
        .map(|n| empty_ticket(&format!("read-{n}")))
        .collect();
    env.publish(&broken).await;
    wait_until(Duration::from_secs(20), "two recorded", || async {
        env.dead_letters(HOTLINE).await.len() == 2
    })
    .await;
    // The hub took them off the DLQ once, recorded: the queue is empty, and
    // a read is a read of the store.
    let queue = env.names.dead_letter_queue(HOTLINE);
    assert_eq!(env.depth_if_any(&queue).await, Some(0));
    for _ in 0..100 {
        let (status, listing) = hub
            .get("/api/dlq?connector=hotline-12345", VIEWER_TOKEN)
            .await;
        assert_eq!(status, 200);
        assert_eq!(listing["letters"].as_array().unwrap().len(), 2);
    }
    let (_, groups) = hub.get("/api/dlq/groups", VIEWER_TOKEN).await;
    assert_eq!(groups["groups"][0]["count"], 2);
    assert_eq!(
        env.count("SELECT count(*) FROM dlq_messages WHERE settled_at IS NULL")
            .await,
        2
    );
    // Replayed, they are settled once each and refused again (still `{}`).
    let (status, report) = hub
        .post("/api/dlq/replay", OPS_TOKEN, &json!({"connector": HOTLINE}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["done"], 2);
    assert_eq!(
        env.count("SELECT count(*) FROM dlq_messages WHERE settled_as = 'replayed'")
            .await,
        2
    );
    hub.stop().await;
}
