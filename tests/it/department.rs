//! A department sees its own refusals and can fix them: grouped by cause,
//! each with a hint drawn from its schema and what a valid sample has at
//! the same place, never a value of what it sent; another department's
//! are invisible; replay stays the centre's; and its out queue says how
//! many events wait and for how long.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use gridhub::connector::Registry;
use gridhub::message::Inbound;
use gridhub::routing::Routing;
use gridhub::settings::Role;
use gridhub::store::{Item, Rules, Store, Work};
use serde_json::{Value, json};

use crate::helpers::{
    OPS_TOKEN, TestDb, TestEnv, hotline_ticket, outgoing, root, sample, wait_until,
};

const URBAN: &str = "dept-urban-management";
const HOUSING: &str = "dept-housing";
/// 城管's token: the strongest a department gets (ops, scoped to its connector).
pub const URBAN_TOKEN: &str = "urban-management-refusals-0123456789";
const HOUSING_TOKEN: &str = "housing-refusals-token-0123456789";

/// What urban management sent wrong: the same fault twice with different
/// values (a space for the `T` in SignTime), and a sign-for without its
/// HandleOrg; housing sent two bad feedbacks, one in each version of its
/// format. Values that must never be shown back are in `SECRETS`.
pub fn bad_messages() -> Vec<gridhub::amqp::publish::Outgoing> {
    let spaced = sample(URBAN, "sign-for/invalid/sign-time-space-separator.json");
    let mut other: Value = serde_json::from_slice(&spaced).unwrap();
    other["SignTime"] = json!(SECRETS[0]);
    other["Operator"]["UserName"] = json!(SECRETS[1]);
    vec![
        outgoing(URBAN, "sign-for", spaced),
        outgoing(URBAN, "sign-for", serde_json::to_vec(&other).unwrap()),
        outgoing(
            URBAN,
            "sign-for",
            sample(URBAN, "sign-for/invalid/missing-handle-org.json"),
        ),
        outgoing(
            HOUSING,
            "feedback",
            sample(HOUSING, "feedback/invalid/case-no-with-dash.json"),
        ),
        gridhub::amqp::publish::Outgoing {
            amqp_type: Some("v2".to_owned()),
            ..outgoing(
                HOUSING,
                "feedback",
                sample(HOUSING, "feedback.v2/invalid/v1-time-sent-as-v2.json"),
            )
        },
    ]
}

/// Values the refused messages carried.
pub const SECRETS: [&str; 2] = ["2031-07-19 23:59:58", "欧阳秘密"];

/// A valid sample's value at a JSON pointer.
fn valid_value(file: &str, pointer: &str) -> Value {
    let body: Value = serde_json::from_slice(&sample(URBAN, file)).unwrap();
    body.pointer(pointer).cloned().unwrap()
}

/// The group of a response at `path`.
fn group<'r>(refusals: &'r Value, path: &str) -> &'r Value {
    refusals["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["path"] == path)
        .unwrap_or_else(|| panic!("no group at {path:?}: {refusals:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_sees_its_own_refusals_fixes_them_and_watches_its_queue() {
    let env = TestEnv::new().await;
    let mut settings = env.settings_with_token(URBAN, URBAN_TOKEN, Role::Ops, &[URBAN]);
    settings.tokens.extend(
        env.settings_with_token(HOUSING, HOUSING_TOKEN, Role::Viewer, &[HOUSING])
            .tokens
            .pop(),
    );
    let hub = env.start_hub(settings).await;
    env.publish(&bad_messages()).await;
    // Refused (the refusal records) and recorded off the DLQs (the dead
    // letters waiting for ops).
    for sql in [
        "SELECT count(*) FROM dead_letters",
        "SELECT count(*) FROM dlq_messages",
    ] {
        env.wait_count(sql, 5, Duration::from_secs(30)).await;
    }
    let path = format!("/api/connectors/{URBAN}/refusals");

    // Its own refusals, by cause.
    let (status, own) = hub.get(&path, URBAN_TOKEN).await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["connector"]["id"], URBAN);
    assert_eq!(own["refused"], 3, "{own:#}");
    let groups = own["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{own:#}");

    let spaced = group(&own, "/SignTime");
    assert_eq!(spaced["count"], 2);
    assert_eq!(spaced["stage"], "schema");
    assert_eq!(spaced["message_type"], "sign-for");
    assert_eq!(
        spaced["schema_file"],
        "dept-urban-management/sign-for.v1.json"
    );
    assert!(spaced["first_seen"].is_string() && spaced["last_seen"].is_string());
    assert!(spaced["first_seen"].as_str() <= spaced["last_seen"].as_str());
    let hint = spaced["hint"].as_str().unwrap();
    assert!(
        hint.contains("SignTime must match the pattern ^[0-9]{4}-"),
        "{hint}"
    );
    assert!(hint.contains("at most 27 characters long"), "{hint}");
    assert!(
        hint.contains("签收时间"),
        "the schema's description: {hint}"
    );
    assert_eq!(spaced["expected"]["maxLength"], 27);
    assert!(
        spaced["reason"]
            .as_str()
            .unwrap()
            .starts_with("/SignTime: ")
    );
    // Beside it, the first valid sample's SignTime.
    assert_eq!(spaced["example"]["sample"], "lucheng-night-duty.json");
    assert_eq!(spaced["example"]["path"], "/SignTime");
    assert_eq!(
        spaced["example"]["value_at_path"],
        valid_value("sign-for/valid/lucheng-night-duty.json", "/SignTime")
    );

    let missing = group(&own, "");
    assert_eq!(missing["count"], 1);
    let hint = missing["hint"].as_str().unwrap();
    assert!(
        hint.contains("HandleOrg is missing from the message, which must have CaseNo, SignTime, HandleOrg, Operator"),
        "{hint}"
    );
    assert!(
        hint.contains("OrgCode"),
        "what HandleOrg itself holds: {hint}"
    );
    assert_eq!(missing["example"]["path"], "/HandleOrg");
    assert_eq!(
        missing["example"]["value_at_path"],
        valid_value("sign-for/valid/lucheng-night-duty.json", "/HandleOrg")
    );
    assert_eq!(
        own["samples"]["sign-for"]["name"], "lucheng-night-duty.json",
        "the whole valid sample beside the groups"
    );

    // Nothing of what it sent comes back: no value, no body.
    let text = own.to_string();
    for secret in SECRETS
        .iter()
        .chain(["2026-12-01 09:00:00", "TZ2612010000015"].iter())
    {
        assert!(!text.contains(secret), "{secret} shown: {text}");
    }

    // Housing's refusal is invisible to it, and its connector unknown.
    assert!(!text.contains("AJBH"), "{text}");
    let (status, _) = hub
        .get(&format!("/api/connectors/{HOUSING}/refusals"), URBAN_TOKEN)
        .await;
    assert_eq!(status, 404);
    let (status, housing) = hub
        .get(
            &format!("/api/connectors/{HOUSING}/refusals"),
            HOUSING_TOKEN,
        )
        .await;
    assert_eq!(status, 200, "{housing}");
    assert_eq!(housing["refused"], 2);
    let v1 = group(&housing, "/body/AJBH");
    assert_eq!(v1["version"], 1);
    // It still sends v1, which is deprecated: flagged with its date and
    // what it sent in it; v2 is not.
    let formats = housing["formats"].as_array().unwrap();
    let old = formats.iter().find(|f| f["version"] == "v1").unwrap();
    assert_eq!(old["deprecated"], "2027-06-30", "{old}");
    assert_eq!(old["messages_since_start"], 1, "{old}");
    let new = formats.iter().find(|f| f["version"] == "v2").unwrap();
    assert_eq!(
        (&new["amqp_type"], &new["deprecated"]),
        (&"v2".into(), &Value::Null)
    );
    // A v2 message's example is a v2 sample's: times with their offset.
    let v2 = group(&housing, "/body/CLSJ");
    assert_eq!(v2["version"], 2, "{v2:#}");
    assert_eq!(v2["schema_file"], "dept-housing/feedback.v2.json");
    let body: Value = serde_json::from_slice(&sample(
        HOUSING,
        &format!(
            "feedback.v2/valid/{}",
            v2["example"]["sample"].as_str().unwrap()
        ),
    ))
    .unwrap();
    assert_eq!(v2["example"]["value_at_path"], body["body"]["CLSJ"]);
    assert!(
        v2["example"]["value_at_path"]
            .as_str()
            .unwrap()
            .ends_with("+08:00"),
        "{v2:#}"
    );
    let (status, _) = hub.get(&path, HOUSING_TOKEN).await;
    assert_eq!(status, 404);
    // The centre reads every department's.
    let (status, centre) = hub.get(&path, OPS_TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!(centre["groups"], own["groups"]);
    let (status, _) = hub.get(&format!("{path}?days=0"), OPS_TOKEN).await;
    assert_eq!(status, 400);

    // Replay stays the centre's: a department's token, even with the ops
    // role, neither replays, edits nor purges, and reads no payload.
    assert_eq!(own["dlq_waiting"], 3, "{own:#}");
    let (status, said) = hub
        .post("/api/dlq/replay", URBAN_TOKEN, &json!({"connector": URBAN}))
        .await;
    assert_eq!(status, 403, "{said}");
    let (status, _) = hub
        .post(
            "/api/dlq/purge",
            URBAN_TOKEN,
            &json!({"filter": {"connector": URBAN}}),
        )
        .await;
    assert_eq!(status, 403);
    let letter = env.dead_letters(URBAN).await.remove(0).id;
    let (status, shown) = hub
        .get(&format!("/api/dlq/{URBAN}/{letter}"), URBAN_TOKEN)
        .await;
    assert_eq!(status, 200, "{shown}");
    assert!(shown["body"].is_null(), "{shown}");
    let (status, _) = hub
        .post(
            &format!("/api/dlq/{URBAN}/{letter}/edit"),
            URBAN_TOKEN,
            &json!({"body": {}}),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(env.dead_letters(URBAN).await.len(), 3, "all still waiting");

    // Its out queue: nothing waits yet.
    let queue = &own["out_queue"];
    assert_eq!(queue["queue"], env.names.outbound_queue(URBAN));
    assert_eq!(queue["depth"], 0, "{queue}");
    assert!(queue["oldest_age_seconds"].is_null());
    assert_eq!(queue["backed_up"], false);

    // A ticket urban management leads: its dispatch waits on its queue,
    // which nobody consumes.
    let out = env.names.outbound_queue(URBAN);
    env.publish(&[hotline_ticket("BJ12345-20261206-000501")])
        .await;
    wait_until(Duration::from_secs(30), "an event waits", || async {
        env.depth_if_any(&out).await.unwrap_or(0) >= 1
    })
    .await;
    let waiting = env.depth_if_any(&out).await.unwrap();
    let (_, own) = hub.get(&path, URBAN_TOKEN).await;
    let queue = &own["out_queue"];
    assert_eq!(queue["depth"], waiting, "{queue}");
    let age = queue["oldest_age_seconds"].as_i64().expect("an age");
    assert!((0..120).contains(&age), "{queue}");
    assert_eq!(queue["age_at_least"], false);
    assert_eq!(queue["backed_up"], false, "{queue}");
    let sent: chrono::DateTime<Utc> = sqlx::query_scalar(
        "SELECT min(sent_at) FROM outbox WHERE destination = $1 AND sent_at IS NOT NULL",
    )
    .bind(URBAN)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        queue["oldest_sent_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .unwrap(),
        sent
    );

    // The department stops consuming for an hour: it sees it first.
    sqlx::query("UPDATE outbox SET sent_at = sent_at - interval '1 hour' WHERE destination = $1")
        .bind(URBAN)
        .execute(&env.pool)
        .await
        .unwrap();
    let (_, own) = hub.get(&path, URBAN_TOKEN).await;
    let queue = &own["out_queue"];
    assert!(
        queue["oldest_age_seconds"].as_i64().unwrap() >= 3600,
        "{queue}"
    );
    assert_eq!(queue["backed_up"], true, "{queue}");

    // Drained: nothing waits, no age.
    let drained = env.drain(&out).await;
    assert_eq!(drained.len() as u64, queue["depth"].as_u64().unwrap());
    let (_, own) = hub.get(&path, URBAN_TOKEN).await;
    let queue = &own["out_queue"];
    assert_eq!(queue["depth"], 0, "{queue}");
    assert!(queue["oldest_age_seconds"].is_null(), "{queue}");
    assert_eq!(queue["backed_up"], false);

    // A connector that receives nothing has no out queue.
    let (_, planning) = hub
        .get("/api/connectors/dept-planning/refusals", OPS_TOKEN)
        .await;
    assert!(planning["out_queue"].is_null(), "{planning}");
    hub.stop().await;
}

/// The bundled connectors and routing, with no places.
async fn rules(store: &Store) -> Rules {
    let registry = Registry::load(&root().join("connectors"), &root().join("schemas"))
        .expect("connectors load");
    let routing = Routing::load(&root().join("deploy/routing.toml")).expect("routing loads");
    let (_, places) = gridhub::places::load(store).await.expect("grid data");
    Rules {
        centre: "command-centre".to_owned(),
        registry: Arc::new(registry),
        routing: Arc::new(routing),
        places,
    }
}

/// Refuses each (message_id, message type, body) of the police as the
/// pipeline does and records the refusals.
async fn refuse(store: &Store, rules: &Rules, messages: &[(&str, &str, Vec<u8>)]) {
    let refusals: Vec<_> = messages
        .iter()
        .map(|(id, message_type, body)| {
            let inbound = Inbound {
                routing_key: format!("dept-police.{message_type}"),
                message_id: Some((*id).to_owned()),
                content_type: Some("application/json".to_owned()),
                user_id: Some("dept-police".to_owned()),
                body: body.clone(),
                replays: 0,
                amqp_type: None,
            };
            match gridhub::pipeline::prepare(&rules.registry, "dept-police", &inbound, &[]) {
                Err(refusal) => refusal,
                Ok(_) => panic!("{id} is refused"),
            }
        })
        .collect();
    let items: Vec<Item<'_>> = messages
        .iter()
        .zip(&refusals)
        .map(|((id, message_type, _), refusal)| Item {
            connector: "dept-police",
            message_id: Some(*id),
            message_type,
            replays: 0,
            work: Work::Refused {
                refusal,
                routing_key: if *message_type == "nonsense" {
                    "dept-police.nonsense"
                } else {
                    "dept-police.floating-population"
                },
            },
        })
        .collect();
    store.apply(&items, rules).await.unwrap();
}

/// The police's refusals, grouped on a backend: (stage, type, path, count).
async fn police_causes(
    store: &Store,
) -> Vec<(String, Option<String>, String, Option<String>, i64)> {
    let rules = rules(store).await;
    let police = |name: &str| {
        sample(
            "dept-police",
            &format!("floating-population/invalid/{name}"),
        )
    };
    // The same ID-number fault at record 1 and, in a copy, at record 0:
    // one cause.
    let at_one = police("id-number-17-digits.json");
    let mut at_zero: Value = serde_json::from_slice(&at_one).unwrap();
    let records = at_zero["SJ"].as_array_mut().unwrap();
    records.swap(0, 1);
    refuse(
        store,
        &rules,
        &[
            ("p-1", "floating-population", at_one),
            (
                "p-2",
                "floating-population",
                serde_json::to_vec(&at_zero).unwrap(),
            ),
            (
                "p-3",
                "floating-population",
                police("birth-date-with-dashes.json"),
            ),
            ("p-4", "floating-population", police("count-differs.json")),
            (
                "p-5",
                "floating-population",
                police("birth-date-feb-29-2023.json"),
            ),
            ("p-6", "nonsense", b"{}".to_vec()),
        ],
    )
    .await;
    let keys = vec![
        "dept-police.floating-population".to_owned(),
        "dept-police.camera-alert".to_owned(),
    ];
    let since = Utc::now() - chrono::Duration::days(1);
    let causes = store
        .refusal_causes("dept-police", since, &keys, 100)
        .await
        .unwrap();
    assert_eq!(causes.refused, 6);
    assert!(!causes.truncated);
    // Fewer groups than asked: cut, and said so.
    let two = store
        .refusal_causes("dept-police", since, &keys, 2)
        .await
        .unwrap();
    assert_eq!(two.groups.len(), 2);
    assert!(two.truncated);
    // A later period holds none.
    let later = store
        .refusal_causes(
            "dept-police",
            Utc::now() + chrono::Duration::seconds(5),
            &keys,
            100,
        )
        .await
        .unwrap();
    assert_eq!((later.refused, later.groups.len()), (0, 0));
    causes
        .groups
        .into_iter()
        .map(|g| {
            assert!(g.first_seen <= g.last_seen);
            let path = g
                .instance_path
                .map(|p| gridhub::hints::shown_path(None, &p))
                .unwrap_or_default();
            let shown = (!g.schema_path.is_empty()).then_some(path);
            (g.stage, g.routing_key, g.schema_path, shown, g.refusals)
        })
        .collect()
}

#[tokio::test]
async fn refusals_are_grouped_alike_on_both_backends() {
    let db = TestDb::new().await;
    let postgres = police_causes(&db.store).await;
    let lite = Store::connect("sqlite::memory:", 1)
        .await
        .expect("in-memory SQLite store");
    let sqlite = police_causes(&lite).await;
    assert_eq!(postgres, sqlite);
    let find = |stage: &str, rule_ends: &str| {
        postgres
            .iter()
            .find(|g| g.0 == stage && g.2.ends_with(rule_ends))
            .unwrap_or_else(|| panic!("no {stage} {rule_ends} in {postgres:#?}"))
    };
    let id_number = find("schema", "/GMSFHM/pattern");
    assert_eq!(
        id_number.4, 2,
        "one cause whatever the record: {postgres:#?}"
    );
    assert_eq!(
        id_number.3.as_deref(),
        Some("/*/*/*"),
        "indices and names as *"
    );
    assert_eq!(
        id_number.1.as_deref(),
        Some("dept-police.floating-population")
    );
    assert_eq!(find("schema", "/CSRQ/pattern").4, 1);
    assert_eq!(find("mapping", "").4, 1);
    assert_eq!(find("intent", "/format").4, 1);
    let unknown_type = find("decode", "");
    assert_eq!(
        unknown_type.1, None,
        "a routing key not its own is not named"
    );
    assert_eq!(postgres[0].4, 2, "the largest group first");
}

/// The department's view in a real browser shows what the API says: its
/// causes with their counts, hints and examples, and its out queue backing
/// up, then drained.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_department_view_shows_what_the_api_says() {
    use crate::console::Driver;

    let env = TestEnv::new().await;
    let hub = env
        .start_hub(env.settings_with_token(URBAN, URBAN_TOKEN, Role::Ops, &[URBAN]))
        .await;
    let mut messages = bad_messages();
    messages.push(hotline_ticket("BJ12345-20261206-000601"));
    env.publish(&messages).await;
    for sql in [
        "SELECT count(*) FROM dead_letters",
        "SELECT count(*) FROM dlq_messages",
    ] {
        env.wait_count(sql, 5, Duration::from_secs(30)).await;
    }
    let out = env.names.outbound_queue(URBAN);
    wait_until(Duration::from_secs(30), "an event waits", || async {
        env.depth_if_any(&out).await.unwrap_or(0) >= 1
    })
    .await;
    // Its system stopped consuming an hour ago.
    sqlx::query("UPDATE outbox SET sent_at = sent_at - interval '1 hour' WHERE destination = $1")
        .bind(URBAN)
        .execute(&env.pool)
        .await
        .unwrap();
    let (status, api) = hub
        .get(&format!("/api/connectors/{URBAN}/refusals"), URBAN_TOKEN)
        .await;
    assert_eq!(status, 200, "{api}");
    assert_eq!(api["out_queue"]["backed_up"], true, "{api}");

    let driver = Driver::start().await;
    let profile = crate::cli::tempdir();
    let session = driver.session(&profile).await;
    // A department's token opens on its own refusals and queue.
    session
        .go(&format!(
            "http://{}/#token={URBAN_TOKEN}",
            hub.http.unwrap()
        ))
        .await;
    session
        .wait_for_text("#dept-refused", &api["refused"].to_string())
        .await;
    session
        .wait_for_text("#who", "dept-urban-management (ops)")
        .await;
    session
        .wait_for_text("#dept-waiting", &api["dlq_waiting"].to_string())
        .await;
    let rows = session
        .execute(
            "return document.querySelectorAll('#dept-groups tbody tr').length",
            json!([]),
        )
        .await;
    assert_eq!(rows, json!(api["groups"].as_array().unwrap().len()));
    for g in api["groups"].as_array().unwrap() {
        let row = format!(
            "#dept-groups tr[data-stage=\"{}\"][data-path=\"{}\"]",
            g["stage"].as_str().unwrap(),
            g["path"].as_str().unwrap()
        );
        session
            .wait_for_text(&format!("{row} td.count"), &g["count"].to_string())
            .await;
        let hint = session.text(&format!("{row} td.hint")).await.unwrap();
        assert_eq!(hint.trim(), g["hint"].as_str().unwrap());
        let example = session.text(&format!("{row} td.example")).await.unwrap();
        assert!(
            example.contains(g["example"]["sample"].as_str().unwrap()),
            "{example}"
        );
        if let Some(value) = g["example"]["value_at_path"].as_str() {
            assert!(example.contains(value), "{example}");
        }
    }
    // The out queue: as deep as the API says, the oldest an hour old, and
    // a warning.
    let queue = &api["out_queue"];
    session
        .wait_for_text("#dept-depth", &queue["depth"].to_string())
        .await;
    let shown = session
        .execute(
            "return document.getElementById('dept-oldest').dataset.seconds",
            json!([]),
        )
        .await;
    let shown: i64 = shown.as_str().unwrap().parse().unwrap();
    let said = queue["oldest_age_seconds"].as_i64().unwrap();
    assert!((said..said + 60).contains(&shown), "{shown} against {said}");
    let oldest = session.text("#dept-oldest").await.unwrap();
    assert!(oldest.starts_with("1 h"), "{oldest}");
    let warning = session.text("#dept-backlog").await.unwrap();
    assert!(warning.contains("backing up"), "{warning}");
    assert!(warning.contains(&out), "{warning}");
    // Nothing to replay here; nothing it sent is shown.
    assert!(session.find("#department button").await.is_none());
    let page = session
        .execute("return document.body.innerText", json!([]))
        .await;
    for secret in SECRETS {
        assert!(!page.as_str().unwrap().contains(secret), "{secret} shown");
    }
    session.screenshot("console-department.png").await;

    // Its system catches up: the warning goes.
    env.drain(&out).await;
    session.wait_for_text("#dept-depth", "0").await;
    session.wait_for_text("#dept-oldest", "–").await;
    assert!(session.find("#dept-backlog[hidden]").await.is_some());
    session.close().await;
    drop(driver);
    hub.stop().await;
}

/// Records an outbox event for `destination`, sent `minutes` ago (unsent
/// for `None`), as the relay leaves it.
async fn sent_event(store: &Store, destination: &str, minutes: Option<i64>) {
    let sent = minutes.map(|m| Utc::now() - chrono::Duration::minutes(m));
    let event_id = uuid::Uuid::new_v4();
    let routing_key = format!("{destination}.case.dispatched");
    if let Some(pool) = store.pg_pool() {
        sqlx::query(
            "INSERT INTO outbox (event_id, destination, routing_key, payload, sent_at)
             VALUES ($1, $2, $3, '{}', $4)",
        )
        .bind(event_id)
        .bind(destination)
        .bind(routing_key)
        .bind(sent)
        .execute(pool)
        .await
        .unwrap();
    } else if let Some(pool) = store.sqlite_pool() {
        sqlx::query(
            "INSERT INTO outbox (event_id, destination, routing_key, payload, sent_at)
             VALUES ($1, $2, $3, '{}', $4)",
        )
        .bind(event_id.hyphenated().to_string())
        .bind(destination)
        .bind(routing_key)
        .bind(sent.map(|at| at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()))
        .execute(pool)
        .await
        .unwrap();
    }
}

/// How long the oldest of N waiting events has waited, in whole minutes,
/// and whether that is only a lower bound.
async fn oldest_minutes(store: &Store, destination: &str, waiting: u32) -> Option<(i64, bool)> {
    store
        .oldest_waiting(destination, waiting)
        .await
        .unwrap()
        .map(|o| ((Utc::now() - o.sent_at).num_seconds() / 60, o.at_most))
}

async fn the_oldest_waiting_event_is_dated(store: &Store) {
    for minutes in [Some(30), Some(20), Some(10), None] {
        sent_event(store, URBAN, minutes).await;
    }
    sent_event(store, HOUSING, Some(90)).await;
    assert_eq!(oldest_minutes(store, URBAN, 0).await, None, "nothing waits");
    // FIFO: one waiting is the last sent; three, the first.
    assert_eq!(oldest_minutes(store, URBAN, 1).await, Some((10, false)));
    assert_eq!(oldest_minutes(store, URBAN, 3).await, Some((30, false)));
    // More wait than the outbox still holds: at least as old as its oldest.
    assert_eq!(oldest_minutes(store, URBAN, 5).await, Some((30, true)));
    assert_eq!(oldest_minutes(store, "dept-planning", 2).await, None);
}

#[tokio::test]
async fn the_oldest_waiting_event_is_dated_alike_on_both_backends() {
    let db = TestDb::new().await;
    the_oldest_waiting_event_is_dated(&db.store).await;
    let lite = Store::connect("sqlite::memory:", 1)
        .await
        .expect("in-memory SQLite store");
    the_oldest_waiting_event_is_dated(&lite).await;
}
