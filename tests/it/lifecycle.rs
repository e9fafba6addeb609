//! The closed loop over the real broker and database: located, dispatched,
//! signed for, answered, verified, called back, closed; returns, rework,
//! merges, escalation, refusals, and shared records masked.

use std::time::Duration;

use gridhub::amqp::publish::Outgoing;
use serde_json::{Value, json};

use crate::helpers::{RunningHub, TestEnv, outgoing, root, wait_until, with_message_id};

const TICKET: &str = "BJ12345-20261128-000777";
const URBAN: &str = "dept-urban-management";

/// A valid sample of a connector's message type whose expected intent
/// satisfies `pick`, with every case number and 12345 ticket id in it
/// replaced by ours.
fn sample(
    connector: &str,
    message_type: &str,
    pick: impl Fn(&Value) -> bool,
    case_no: &str,
) -> Vec<u8> {
    let dir = root().join(format!(
        "connectors/{connector}/samples/{message_type}/valid"
    ));
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".expect.json"))
    {
        let expect: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        if !pick(&expect) {
            continue;
        }
        let body_path = path.to_string_lossy().replace(".expect.json", ".json");
        let mut body: Value = serde_json::from_slice(&std::fs::read(body_path).unwrap()).unwrap();
        substitute(&mut body, case_no);
        return serde_json::to_vec(&body).unwrap();
    }
    panic!("no sample of {connector}/{message_type} fits");
}

fn substitute(value: &mut Value, case_no: &str) {
    match value {
        Value::String(s)
            if s.len() == 15
                && s.starts_with("TZ")
                && s[2..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            *s = case_no.to_owned()
        }
        Value::String(s) if s.starts_with("BJ12345-") => *s = TICKET.to_owned(),
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, case_no)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, case_no)),
        _ => {}
    }
}

/// A 12345 ticket about construction noise at 116.6762, 39.8935, whose
/// caller agreed to be called back.
fn ticket(ticket_no: &str, lon: f64, lat: f64) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&crate::helpers::ticket_12345(ticket_no)).unwrap();
    body["anonymous"] = json!(false);
    body["callbackRequired"] = json!(true);
    body["location"] = json!({"lng": lon, "lat": lat});
    serde_json::to_vec(&body).unwrap()
}

fn message(connector: &str, message_type: &str, body: Vec<u8>) -> Outgoing {
    outgoing(connector, message_type, body)
}

async fn case(env: &TestEnv, case_no: &str) -> Value {
    let cases = gridhub::store::Store::from_pool(env.pool.clone())
        .cases(1000, None)
        .await
        .unwrap();
    cases
        .into_iter()
        .find(|c| c["case_no"] == case_no)
        .expect("case listed")
}

async fn status_of(env: &TestEnv, case_no: &str) -> String {
    case(env, case_no).await["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn wait_status(env: &TestEnv, case_no: &str, status: &str) {
    wait_until(
        Duration::from_secs(15),
        &format!("{case_no} {status}"),
        || async { status_of(env, case_no).await == status },
    )
    .await;
}

/// Starts a hub, loads the test grid and opens one ticket; returns its case number.
async fn located_case(env: &TestEnv) -> (RunningHub, String) {
    let hub = env.start_hub(env.settings.clone()).await;
    env.load_one_grid().await;
    let ticket = message("hotline-12345", "ticket", ticket(TICKET, 116.6762, 39.8935));
    let case_no = env.open_case(ticket).await;
    (hub, case_no)
}

/// Publishes the sample of a connector's message type that `pick`
/// accepts, about `case_no`.
async fn send(
    env: &TestEnv,
    connector: &str,
    message_type: &str,
    case_no: &str,
    pick: impl Fn(&Value) -> bool,
) {
    let body = sample(connector, message_type, pick, case_no);
    env.publish(&[message(connector, message_type, body)]).await;
}

/// Samples: any one.
fn any(_: &Value) -> bool {
    true
}

/// Samples: a verification that passed.
fn passed(intent: &Value) -> bool {
    intent["passed"] == true
}

/// Samples: a verification that failed.
fn failed(intent: &Value) -> bool {
    intent["passed"] == false
}

/// Samples: a callback that reached the caller, whose matter is solved.
fn solved(intent: &Value) -> bool {
    intent["contacted"] == true && intent["solved"] == true
}

/// Samples: a callback like [`solved`], the caller satisfied.
fn satisfied(intent: &Value) -> bool {
    solved(intent) && intent["satisfaction"] == "satisfied"
}

/// Every event the hub publishes fits schemas/hub/event.v1.json.
fn assert_events_fit_the_schema(messages: &[(lapin::BasicProperties, Value)]) {
    let schema =
        gridhub::schema::Schema::load(&root().join("schemas"), "hub/event.v1.json").unwrap();
    for (properties, event) in messages {
        let name = event["event"].as_str().unwrap_or_default();
        assert!(
            gridhub::connector::EVENTS.contains(&name),
            "{name} is not among the events a connector may receive"
        );
        let violations = schema.violations(event);
        assert!(violations.is_empty(), "{}: {violations:?}", event["event"]);
        assert_eq!(
            properties.message_id().as_ref().map(|m| m.as_str()),
            event["event_id"].as_str()
        );
    }
}

fn events_of(messages: &[(lapin::BasicProperties, Value)]) -> Vec<String> {
    messages
        .iter()
        .map(|(_, e)| e["event"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_goes_round_the_whole_loop() {
    let env = TestEnv::new().await;
    let (hub, case_no) = located_case(&env).await;

    // Located to its grid, dispatched to 城管 with a deadline.
    let opened = case(&env, &case_no).await;
    assert_eq!(opened["status"], "dispatched");
    assert_eq!(opened["grid_id"], "YQ-001-01");
    assert_eq!(opened["community"], "玉桥东里社区");
    assert_eq!(opened["street"], "玉桥街道");
    assert_eq!(opened["lead_unit"], "dept-urban-management");
    assert!(opened["due_at"].is_string());
    assert!(opened["parent_case_no"].is_null());
    let dispatch_queue = env.names.outbound_queue("dept-urban-management");
    wait_until(Duration::from_secs(10), "dispatch", || async {
        env.depth(&dispatch_queue).await >= 1
    })
    .await;
    let dispatched = env.drain(&dispatch_queue).await;
    assert_events_fit_the_schema(&dispatched);
    assert_eq!(dispatched[0].1["event"], "case.dispatched");
    assert_eq!(dispatched[0].1["case_no"], case_no.as_str());
    assert_eq!(
        dispatched[0].1["reporter"]["name"], "测试某",
        "城管 is entitled to the reporter"
    );

    send(&env, URBAN, "sign-for", &case_no, any).await;
    wait_status(&env, &case_no, "accepted").await;
    responded(&env, &case_no).await;
    let verify_queue = env.names.outbound_queue("grid-platform");
    wait_until(Duration::from_secs(10), "verification request", || async {
        events_of(&env.drain(&verify_queue).await).contains(&"case.verify_requested".to_owned())
    })
    .await;

    send(&env, "grid-platform", "verification", &case_no, passed).await;
    wait_status(&env, &case_no, "callback").await;

    send(&env, "hotline-12345", "callback", &case_no, satisfied).await;
    wait_status(&env, &case_no, "closed").await;
    assert_eq!(case(&env, &case_no).await["satisfaction"], "satisfied");

    // The 12345 queue heard every status, with its own ticket id.
    let hotline_queue = env.names.outbound_queue("hotline-12345");
    wait_until(Duration::from_secs(10), "hotline events", || async {
        env.count(
            "SELECT count(*) FROM outbox WHERE destination = 'hotline-12345' AND sent_at IS NULL",
        )
        .await
            == 0
    })
    .await;
    let heard = env.drain(&hotline_queue).await;
    assert_events_fit_the_schema(&heard);
    assert_events_fit_the_schema(&env.drain(&env.names.outbound_queue("command-centre")).await);
    let names = events_of(&heard);
    for event in [
        "case.opened",
        "case.dispatched",
        "case.responded",
        "case.closed",
    ] {
        assert!(
            names.contains(&event.to_owned()),
            "{event} missing from {names:?}"
        );
    }
    assert!(
        heard
            .iter()
            .all(|(_, e)| e["source"]["ticket_id"] == TICKET && e["case_no"] == case_no.as_str())
    );
    assert!(heard.iter().all(|(_, e)| e.get("reporter").is_none()));

    let trail: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, to_status FROM case_events e JOIN cases c ON c.id = e.case_id WHERE c.case_no = $1 ORDER BY e.id",
    )
    .bind(&case_no)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let trail: Vec<String> = trail.into_iter().map(|(k, s)| format!("{k}:{s}")).collect();
    assert_eq!(
        trail,
        [
            "opened:registered",
            "dispatched:dispatched",
            "accept:accepted",
            "respond:responded",
            "verifying:verifying",
            "verify:callback",
            "callback:closed"
        ]
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_is_reviewed_and_dispatched_again() {
    let env = TestEnv::new().await;
    let (hub, case_no) = located_case(&env).await;
    send(&env, URBAN, "return", &case_no, any).await;
    // The return waits for the centre's review; approved, the case goes to
    // the rule's on_return unit.
    wait_status(&env, &case_no, "return_pending").await;
    let (status, body) = hub
        .post(
            &format!("/api/cases/{case_no}/act"),
            crate::helpers::OPS_TOKEN,
            &json!({"action": "approve_return", "reason": "not a matter for 城管"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_until(Duration::from_secs(10), "re-dispatch", || async {
        case(&env, &case_no).await["lead_unit"] == "district-centre"
    })
    .await;
    let now = case(&env, &case_no).await;
    assert_eq!(now["status"], "dispatched");
    assert_eq!(env.return_count(&case_no).await, 1);
    // The centre's desk (on the grid platform) got the re-dispatch.
    let desk = env.names.outbound_queue("grid-platform");
    wait_until(Duration::from_secs(10), "re-dispatch event", || async {
        env.drain(&desk)
            .await
            .iter()
            .any(|(_, e)| e["event"] == "case.dispatched" && e["redispatch"] == true)
    })
    .await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_verification_is_rework_and_counted() {
    let env = TestEnv::new().await;
    let (hub, case_no) = located_case(&env).await;
    let result = sample("dept-urban-management", "result", |_| true, &case_no);
    env.publish(&[message("dept-urban-management", "result", result.clone())])
        .await;
    wait_status(&env, &case_no, "verifying").await;
    send(&env, "grid-platform", "verification", &case_no, failed).await;
    wait_status(&env, &case_no, "rework").await;
    assert_eq!(case(&env, &case_no).await["rework_count"], 1);
    let queue = env.names.outbound_queue("dept-urban-management");
    wait_until(Duration::from_secs(10), "rework event", || async {
        env.drain(&queue)
            .await
            .iter()
            .any(|(_, e)| e["event"] == "case.rework")
    })
    .await;
    // The unit answers again (another message): back to verification.
    let again = message("dept-urban-management", "result", result);
    let again = with_message_id(again, "result-after-rework");
    env.publish(&[again]).await;
    wait_status(&env, &case_no, "verifying").await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_from_two_hotlines_are_merged_and_both_callers_hear_the_outcome() {
    let env = TestEnv::new().await;
    let (hub, parent) = located_case(&env).await;
    // The same noise reported on 96126, 20 m away.
    let mut other: Value = serde_json::from_slice(
        &std::fs::read(
            root()
                .join("connectors/hotline-96126/samples/ticket/valid")
                .join(
                    std::fs::read_dir(root().join("connectors/hotline-96126/samples/ticket/valid"))
                        .unwrap()
                        .map(|e| e.unwrap().path())
                        .filter(|p| !p.to_string_lossy().ends_with(".expect.json"))
                        .find(|p| std::fs::read_to_string(p).unwrap().contains("\"position\""))
                        .unwrap(),
                ),
        )
        .unwrap(),
    )
    .unwrap();
    other["position"] = json!({"longitude": 116.6764, "latitude": 39.8936});
    // An hour after the 12345 call (2024-05-22 23:58 Beijing time).
    other["call_time"] = json!("20240523005800");
    // The same category as the 12345 ticket (construction noise).
    other["biz_code"] = json!(noise_code_96126());
    let body = serde_json::to_vec(&other).unwrap();
    env.publish(&[message("hotline-96126", "ticket", body)])
        .await;
    env.wait_count("SELECT count(*) FROM cases", 2, Duration::from_secs(10))
        .await;
    let child_no: String = sqlx::query_scalar("SELECT case_no FROM cases WHERE case_no <> $1")
        .bind(&parent)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    let child = case(&env, &child_no).await;
    assert_eq!(child["status"], "merged");
    assert_eq!(child["parent_case_no"], parent.as_str());
    let queue = env.names.outbound_queue("hotline-96126");
    wait_until(Duration::from_secs(10), "merged event", || async {
        env.drain(&queue)
            .await
            .iter()
            .any(|(_, e)| e["event"] == "case.merged" && e["parent_case_no"] == parent.as_str())
    })
    .await;
    // The parent is answered: the 96126 caller hears it too.
    responded(&env, &parent).await;
    wait_until(
        Duration::from_secs(10),
        "parent's outcome on 96126",
        || async {
            env.drain(&queue)
                .await
                .iter()
                .any(|(_, e)| e["event"] == "case.responded" && e["case_no"] == parent.as_str())
        },
    )
    .await;
    hub.stop().await;
}

/// The 96126 business code its mapping turns into noise.construction.
fn noise_code_96126() -> String {
    let mapping =
        std::fs::read_to_string(root().join("connectors/hotline-96126/mappings/ticket.jq"))
            .unwrap();
    let line = mapping
        .lines()
        .find(|l| l.contains("\"noise.construction\""))
        .expect("96126 maps construction noise");
    line.split('"').nth(1).unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_cases_are_escalated_once_even_by_two_scanners() {
    let env = TestEnv::new().await;
    let (hub, case_no) = located_case(&env).await;
    let rules = hub.rules.clone();
    let store = hub.store.clone();
    // Past the deadline (7 working days) by more than a day.
    let due: chrono::DateTime<chrono::Utc> = case(&env, &case_no).await["due_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let later = due + chrono::Duration::hours(25);
    let (a, b) = tokio::join!(store.escalate(later, &rules), store.escalate(later, &rules));
    let mut kinds: Vec<&str> = a
        .unwrap()
        .iter()
        .chain(b.unwrap().iter())
        .map(|e| e.kind)
        .collect();
    kinds.sort();
    // A general case due in 7 days: reminder, supervision (24 h later), and sign-for overdue.
    assert_eq!(kinds, ["reminder", "sign_for_overdue", "supervision"]);
    assert!(
        store.escalate(later, &rules).await.unwrap().is_empty(),
        "nothing twice"
    );
    let listed = case(&env, &case_no).await;
    assert_eq!(listed["overdue"], true);
    assert_eq!(listed["escalation_level"], 2);
    let centre = env.names.outbound_queue("command-centre");
    wait_until(Duration::from_secs(10), "escalation events", || async {
        let names = events_of(&env.drain(&centre).await);
        names.contains(&"case.supervision".to_owned())
    })
    .await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn illegal_transitions_and_unknown_cases_are_refused_with_reasons() {
    let env = TestEnv::new().await;
    let (hub, case_no) = located_case(&env).await;
    let verify = sample(
        "grid-platform",
        "verification",
        |e| e["passed"] == true,
        &case_no,
    );
    let unknown = sample(
        "dept-urban-management",
        "sign-for",
        |_| true,
        "TZ2001010000001",
    );
    env.publish(&[
        message("grid-platform", "verification", verify),
        message("dept-urban-management", "sign-for", unknown),
    ])
    .await;
    env.wait_count(
        "SELECT count(*) FROM dead_letters",
        2,
        Duration::from_secs(10),
    )
    .await;
    let reasons: Vec<(String, String, String)> =
        sqlx::query_as("SELECT connector, stage, reason FROM dead_letters ORDER BY connector")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(reasons[0].0, "dept-urban-management");
    assert_eq!(reasons[0].1, "apply");
    assert_eq!(reasons[0].2, "unknown case: no case TZ2001010000001");
    assert_eq!(reasons[1].0, "grid-platform");
    assert_eq!(
        reasons[1].2,
        format!("case {case_no}: verify not allowed in status dispatched")
    );
    for connector in ["grid-platform", "dept-urban-management"] {
        let queue = env.names.dead_letter_queue(connector);
        env.wait_depth(&queue, 1, Duration::from_secs(5)).await;
    }
    assert_eq!(status_of(&env, &case_no).await, "dispatched");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn population_records_reach_the_grid_platform_masked() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    for (connector, message_type) in [
        ("dept-police", "floating-population"),
        ("dept-health", "resident-population"),
    ] {
        let body = sample(connector, message_type, |_| true, "TZ0000000000000");
        env.publish(&[message(connector, message_type, body)]).await;
    }
    let queue = env.names.outbound_queue("grid-platform");
    env.wait_depth(&queue, 2, Duration::from_secs(10)).await;
    let shared = env.drain(&queue).await;
    assert_events_fit_the_schema(&shared);
    let id_pattern = regex_lite_masked_id;
    for (_, event) in &shared {
        assert_eq!(event["event"], "records.shared");
        assert_eq!(event["disclosure"], "masked");
        let records = event["records"].as_array().unwrap();
        assert!(!records.is_empty());
        for record in records {
            if let Some(id) = record["id_number"].as_str() {
                assert!(id_pattern(id), "{id} is not masked");
            }
            // Nothing beside it gives the hidden digits back: the birth
            // date is reduced to its year.
            if let Some(birth) = record["birth_date"].as_str() {
                assert!(
                    birth.len() == 4 && birth.bytes().all(|b| b.is_ascii_digit()),
                    "{birth} unmasks the ID number"
                );
            }
            if let Some(phone) = record["phone"].as_str() {
                assert!(phone.contains("****"), "{phone} is not masked");
            }
        }
    }
    hub.stop().await;
}

/// Region and check digit only: the birth date and sequence are hidden.
fn regex_lite_masked_id(id: &str) -> bool {
    let chars: Vec<char> = id.chars().collect();
    chars.len() > 10 && chars[6..chars.len() - 1].iter().all(|c| *c == '*')
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_district_places_cases_by_point_and_by_address() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    let district = gridhub::district::generate(gridhub::district::DEFAULT_SEED);
    let messages: Vec<Outgoing> =
        gridhub::district::planning_messages(&district, gridhub::district::DEFAULT_PER_MESSAGE)
            .into_iter()
            .map(|m| {
                message(
                    "dept-planning",
                    "grid-boundaries",
                    serde_json::to_vec(&m).unwrap(),
                )
            })
            .collect();
    env.publish(&messages).await;
    env.wait_count("SELECT count(*) FROM grids", 1809, Duration::from_secs(30))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await; // the hub reloads its index

    // A point inside a grid far from the old town, and a known address.
    let grid = &district.grids[1500];
    let ring = &grid.polygon[..grid.polygon.len() - 1];
    let lon = ring.iter().map(|p| p[0]).sum::<f64>() / ring.len() as f64;
    let lat = ring.iter().map(|p| p[1]).sum::<f64>() / ring.len() as f64;
    let (address, address_grid) = district
        .addresses
        .iter()
        .find(|(_, g)| g != &grid.grid_id)
        .unwrap();
    let mut by_address: Value =
        serde_json::from_slice(&ticket("BJ12345-20261128-000902", lon, lat)).unwrap();
    by_address.as_object_mut().unwrap().remove("location");
    by_address.as_object_mut().unwrap().remove("street");
    by_address["address"] = json!(address);
    env.publish(&[
        message(
            "hotline-12345",
            "ticket",
            ticket("BJ12345-20261128-000901", lon, lat),
        ),
        message(
            "hotline-12345",
            "ticket",
            serde_json::to_vec(&by_address).unwrap(),
        ),
    ])
    .await;
    env.wait_count("SELECT count(*) FROM cases", 2, Duration::from_secs(10))
        .await;
    type Placed = (String, Option<String>, Option<String>, Option<String>);
    let placed: Vec<Placed> =
        sqlx::query_as("SELECT s.source_ref, c.grid_id, c.street, c.located_by FROM cases c JOIN case_sources s ON s.case_id = c.id ORDER BY s.source_ref")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(placed[0].1.as_deref(), Some(grid.grid_id.as_str()));
    assert_eq!(placed[0].2.as_deref(), Some(grid.street.as_str()));
    assert_eq!(placed[0].3.as_deref(), Some("coordinates"));
    assert_eq!(placed[1].1.as_ref(), Some(address_grid));
    assert_eq!(placed[1].3.as_deref(), Some("known_address"));
    hub.stop().await;
}

/// The unit responds: the case goes to verification.
async fn responded(env: &TestEnv, case_no: &str) {
    send(env, URBAN, "result", case_no, any).await;
    wait_status(env, case_no, "verifying").await;
}

/// [`located_case`], answered by the unit: the case is in verification.
async fn verifying_case(env: &TestEnv) -> (RunningHub, String) {
    let (hub, case_no) = located_case(env).await;
    responded(env, &case_no).await;
    (hub, case_no)
}

/// Waits until a callback is held during verification.
async fn wait_held(env: &TestEnv, case_no: &str) {
    wait_until(Duration::from_secs(10), "callback held", || async {
        trail(env, case_no)
            .await
            .contains(&"callback_held:verifying".to_owned())
    })
    .await;
}

/// What the 12345 hotline's queue received until `until` arrived.
async fn hotline_heard(env: &TestEnv, until: &str) -> Vec<(lapin::BasicProperties, Value)> {
    let queue = env.names.outbound_queue("hotline-12345");
    let heard = std::sync::Mutex::new(Vec::new());
    wait_until(Duration::from_secs(10), until, || async {
        let drained = env.drain(&queue).await;
        let mut heard = heard.lock().unwrap();
        heard.extend(drained);
        events_of(&heard).contains(&until.to_owned())
    })
    .await;
    heard.into_inner().unwrap()
}

/// The case events' kinds and statuses, oldest first: `kind:to_status`.
async fn trail(env: &TestEnv, case_no: &str) -> Vec<String> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, to_status FROM case_events e JOIN cases c ON c.id = e.case_id WHERE c.case_no = $1 ORDER BY e.id",
    )
    .bind(case_no)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    rows.into_iter().map(|(k, s)| format!("{k}:{s}")).collect()
}

/// A hotline's callback that arrives while the grid still verifies is kept,
/// not refused, and applied once the verification passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_during_verification_is_applied_after_it() {
    let env = TestEnv::new().await;
    let (hub, case_no) = verifying_case(&env).await;

    send(&env, "hotline-12345", "callback", &case_no, satisfied).await;
    wait_held(&env, &case_no).await;
    assert_eq!(status_of(&env, &case_no).await, "verifying");
    assert_eq!(env.count("SELECT count(*) FROM dead_letters").await, 0);

    send(&env, "grid-platform", "verification", &case_no, passed).await;
    wait_status(&env, &case_no, "closed").await;
    assert_eq!(case(&env, &case_no).await["satisfaction"], "satisfied");
    let trail = trail(&env, &case_no).await;
    assert_eq!(
        trail[trail.len() - 3..],
        [
            "callback_held:verifying",
            "verify:callback",
            "callback:closed"
        ]
    );
    let held: Option<String> =
        sqlx::query_scalar("SELECT held_callback::text FROM cases WHERE case_no = $1")
            .bind(&case_no)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(held, None, "let go once applied");

    // The hotline was asked for the callback, with its ticket, the
    // deadline and the response, before the callback closed the case.
    let heard = hotline_heard(&env, "case.closed").await;
    assert_events_fit_the_schema(&heard);
    let names = events_of(&heard);
    let requested = names.iter().position(|e| e == "case.callback_requested");
    let closed = names.iter().position(|e| e == "case.closed");
    assert!(requested.is_some() && requested < closed, "{names:?}");
    let request = &heard[requested.unwrap()].1;
    assert_eq!(request["source"]["ticket_id"], TICKET);
    assert_eq!(request["status"], "callback");
    let due: chrono::DateTime<chrono::Utc> = request["callback_due_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let hours = (due - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((47.0..=48.1).contains(&hours), "due in {hours} h");
    assert_eq!(request["response"]["unit"], "dept-urban-management");
    hub.stop().await;
}

/// A callback held during a verification that fails is dropped with a
/// reason: the unit works again and the hotline is asked after the next
/// response.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_held_through_a_failed_verification_is_dropped() {
    let env = TestEnv::new().await;
    let (hub, case_no) = verifying_case(&env).await;
    send(&env, "hotline-12345", "callback", &case_no, solved).await;
    wait_held(&env, &case_no).await;
    send(&env, "grid-platform", "verification", &case_no, failed).await;
    wait_status(&env, &case_no, "rework").await;
    let trail = trail(&env, &case_no).await;
    assert_eq!(
        trail[trail.len() - 2..],
        ["verify:rework", "callback_dropped:rework"]
    );
    assert_eq!(env.count("SELECT count(*) FROM dead_letters").await, 0);
    hub.stop().await;
}

/// A case waiting for its callback is on the hotline's worklist with its
/// ticket and deadline, is flagged once the deadline passes (the hotline
/// and the centre hear it), and leaves the list when the callback comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_owed_are_listed_and_pressed_when_late() {
    let env = TestEnv::new().await;
    let (hub, case_no) = verifying_case(&env).await;
    send(&env, "grid-platform", "verification", &case_no, passed).await;
    wait_status(&env, &case_no, "callback").await;

    let owed = |hotline: &'static str| {
        let hub = &hub;
        async move {
            let (status, owed) = hub
                .get(
                    &format!("/api/callbacks?hotline={hotline}"),
                    crate::helpers::OPS_TOKEN,
                )
                .await;
            assert_eq!(status, 200, "{owed}");
            owed.as_array().unwrap().clone()
        }
    };
    let listed = owed("hotline-12345").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["case_no"], case_no.as_str());
    assert_eq!(listed[0]["ticket_id"], TICKET);
    assert_eq!(listed[0]["overdue"], false);
    assert!(owed("hotline-96156").await.is_empty());
    let (status, _) = hub
        .get(
            "/api/callbacks?hotline=dept-health",
            crate::helpers::OPS_TOKEN,
        )
        .await;
    assert_eq!(status, 404, "not a hotline");

    // Past the callback's deadline (48 h): flagged once.
    let later = chrono::Utc::now() + chrono::Duration::hours(49);
    let kinds: Vec<&str> = hub
        .store
        .escalate(later, &hub.rules)
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .filter(|k| *k == "callback_overdue")
        .collect();
    assert_eq!(kinds, ["callback_overdue"]);
    assert!(
        hub.store
            .escalate(later, &hub.rules)
            .await
            .unwrap()
            .iter()
            .all(|e| e.kind != "callback_overdue"),
        "once"
    );
    assert_eq!(owed("hotline-12345").await[0]["overdue"], true);
    let heard = hotline_heard(&env, "case.callback_overdue").await;
    assert_events_fit_the_schema(&heard);

    send(&env, "hotline-12345", "callback", &case_no, solved).await;
    wait_status(&env, &case_no, "closed").await;
    assert!(owed("hotline-12345").await.is_empty());
    hub.stop().await;
}
