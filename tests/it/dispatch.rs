//! The centre's dispatchers act on cases: dispatch a triaged case by hand,
//! review a unit's return, remind, close and reopen, over the API with a
//! dispatcher's token and from the CLI, against the real services.

use std::time::Duration;

use chrono::{DateTime, Utc};
use gridhub::settings::Role;
use serde_json::{Value, json};

use crate::helpers::{
    RunningHub, TestEnv, VIEWER_TOKEN, hotline_ticket, outgoing, root, wait_until,
};

const DISPATCHER: &str = "dispatcher-token-for-tests-0123456789";

/// A sample of a unit's message with its case number replaced by ours.
fn unit_message(connector: &str, message_type: &str, name: &str, case_no: &str) -> Vec<u8> {
    let path = root().join(format!(
        "connectors/{connector}/samples/{message_type}/valid/{name}.json"
    ));
    let text = std::fs::read_to_string(path).unwrap();
    let mut body: Value = serde_json::from_str(&text).unwrap();
    body["CaseNo"] = json!(case_no);
    serde_json::to_vec(&body).unwrap()
}

async fn case(env: &TestEnv, case_no: &str) -> Value {
    gridhub::store::Store::from_pool(env.pool.clone())
        .case(case_no, None)
        .await
        .unwrap()
        .expect("the case")
}

async fn wait_status(env: &TestEnv, case_no: &str, status: &str) {
    wait_until(
        Duration::from_secs(15),
        &format!("{case_no} {status}"),
        || async { case(env, case_no).await["status"] == status },
    )
    .await;
}

fn due(case: &Value) -> DateTime<Utc> {
    case["due_at"].as_str().unwrap().parse().unwrap()
}

async fn act(hub: &RunningHub, token: &str, case_no: &str, body: Value) -> (u16, Value) {
    hub.post(&format!("/api/cases/{case_no}/act"), token, &body)
        .await
}

/// A dispatcher's action that is recorded: the answer.
async fn acted(hub: &RunningHub, case_no: &str, body: Value) -> Value {
    let (status, answer) = act(hub, DISPATCHER, case_no, body).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

/// The events a unit's queue received until one of `until` arrives.
async fn heard(env: &TestEnv, connector: &str, until: &str) -> Vec<Value> {
    let queue = env.names.outbound_queue(connector);
    let heard = std::sync::Mutex::new(Vec::new());
    wait_until(Duration::from_secs(10), until, || async {
        let drained = env.drain(&queue).await;
        let mut heard = heard.lock().unwrap();
        heard.extend(drained.into_iter().map(|(_, e)| e));
        heard.iter().any(|e| e["event"] == until)
    })
    .await;
    heard.into_inner().unwrap()
}

/// The event `event` a connector's queue received (waiting for it).
async fn told(env: &TestEnv, connector: &str, event: &str) -> Value {
    let heard = heard(env, connector, event).await;
    heard.into_iter().find(|e| e["event"] == event).unwrap()
}

async fn trail(env: &TestEnv, case_no: &str) -> Vec<(String, String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT e.kind, e.to_status, e.actor, e.note FROM case_events e JOIN cases c ON c.id = e.case_id
         WHERE c.case_no = $1 ORDER BY e.id",
    )
    .bind(case_no)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

/// A grid-level matter (a neighbours' dispute) reported before any grid
/// data: it cannot be placed and waits in the centre's triage. Its case
/// number.
async fn triaged(env: &TestEnv, ticket: &str) -> String {
    let mut body: Value = serde_json::from_slice(&crate::helpers::ticket_12345(ticket)).unwrap();
    body["category"] = json!({"code": "1001", "name": "邻里纠纷"});
    let body = serde_json::to_vec(&body).unwrap();
    env.open_case(outgoing("hotline-12345", "ticket", body))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_dispatches_reviews_returns_reminds_and_closes() {
    let env = TestEnv::new().await;
    let settings = env.settings_with_token("desk-1", DISPATCHER, Role::Dispatcher, &[]);
    let hub = env.start_hub(settings).await;
    let case_no = triaged(&env, "BJ12345-20261206-000901").await;
    let triaged = case(&env, &case_no).await;
    assert_eq!(triaged["located_by"], "unplaced");
    assert_eq!(triaged["lead_unit"], "district-centre");

    // Only a dispatcher (or ops) acts, with a reason, to a unit the rules know.
    let as_dispatcher = |body: Value| act(&hub, DISPATCHER, &case_no, body);
    let dispatch = json!({"action": "dispatch", "unit": "dept-urban-management",
                          "assist": ["dept-housing"], "reason": "工地在玉桥中路，城管牵头"});
    assert_eq!(
        act(&hub, VIEWER_TOKEN, &case_no, dispatch.clone()).await.0,
        403
    );
    let (status, body) =
        as_dispatcher(json!({"action": "dispatch", "unit": "dept-urban-management"})).await;
    assert_eq!(status, 422, "no reason: {body}");
    let (status, body) =
        as_dispatcher(json!({"action": "dispatch", "unit": "no-such-unit", "reason": "x"})).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.to_string().contains("unknown unit no-such-unit"),
        "{body}"
    );
    let body = acted(&hub, &case_no, dispatch).await;
    assert_eq!(body["status"], "dispatched");
    let dispatched = case(&env, &case_no).await;
    assert_eq!(dispatched["lead_unit"], "dept-urban-management");
    assert_eq!(dispatched["assisting_units"], json!(["dept-housing"]));
    let to_lead = told(&env, "dept-urban-management", "case.dispatched").await;
    assert_eq!(to_lead["case_no"], case_no.as_str());
    assert_eq!(to_lead["role"], "lead");
    let assist = heard(&env, "dept-housing", "case.dispatched").await;
    assert!(assist.iter().any(|e| e["role"] == "assist"));
    let (kind, to, actor, note) = trail(&env, &case_no).await.pop().unwrap();
    assert_eq!(
        (kind.as_str(), to.as_str(), actor.as_str()),
        ("dispatch", "dispatched", "token:desk-1")
    );
    assert_eq!(
        note.as_deref(),
        Some("to dept-urban-management: 工地在玉桥中路，城管牵头")
    );

    // The unit returns it: the return waits for review, the clock keeps running.
    let first_due = due(&case(&env, &case_no).await);
    env.publish(&[outgoing(
        "dept-urban-management",
        "return",
        unit_message(
            "dept-urban-management",
            "return",
            "address-unclear-zhongcang",
            &case_no,
        ),
    )])
    .await;
    wait_status(&env, &case_no, "return_pending").await;
    let pending = case(&env, &case_no).await;
    assert_eq!(pending["lead_unit"], "dept-urban-management");
    assert_eq!(due(&pending), first_due);
    // Rejected: back to the unit, its deadline kept.
    let body = acted(
        &hub,
        &case_no,
        json!({"action": "reject_return", "reason": "地址已在工单中写明"}),
    )
    .await;
    assert_eq!(body["status"], "dispatched");
    let rejected = case(&env, &case_no).await;
    assert_eq!(
        due(&rejected),
        first_due,
        "a rejected return keeps its deadline"
    );
    assert_eq!(rejected["lead_unit"], "dept-urban-management");
    heard(&env, "dept-urban-management", "case.return_rejected").await;

    // Returned again and approved: dispatched to the chosen unit, the
    // clock started again.
    let mut again = outgoing(
        "dept-urban-management",
        "return",
        unit_message(
            "dept-urban-management",
            "return",
            "not-our-duty-elevator-yuqiao",
            &case_no,
        ),
    );
    again.message_id = Some("return-2".into());
    env.publish(&[again]).await;
    wait_status(&env, &case_no, "return_pending").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    acted(
        &hub,
        &case_no,
        json!({"action": "approve_return", "unit": "dept-housing", "reason": "电梯归住建"}),
    )
    .await;
    let approved = case(&env, &case_no).await;
    assert_eq!(approved["status"], "dispatched");
    assert_eq!(approved["lead_unit"], "dept-housing");
    assert!(
        due(&approved) > first_due,
        "an approved return restarts the clock"
    );
    assert_eq!(env.return_count(&case_no).await, 2);
    let housing = heard(&env, "dept-housing", "case.dispatched").await;
    assert!(housing.iter().any(|e| e["role"] == "lead"));

    // A reminder by hand reaches the unit and raises the escalation level.
    acted(
        &hub,
        &case_no,
        json!({"action": "remind", "reason": "居民再次来电"}),
    )
    .await;
    let reminder = told(&env, "dept-housing", "case.reminder").await;
    assert_eq!(reminder["by_hand"], true);
    assert_eq!(case(&env, &case_no).await["escalation_level"], 1);

    // Closed and reopened with reasons: reopened goes back to its lead unit.
    acted(
        &hub,
        &case_no,
        json!({"action": "close", "reason": "已协调解决"}),
    )
    .await;
    wait_status(&env, &case_no, "closed").await;
    let (status, body) = as_dispatcher(json!({"action": "close", "reason": "again"})).await;
    assert_eq!(status, 409, "already closed: {body}");
    acted(
        &hub,
        &case_no,
        json!({"action": "reopen", "reason": "居民反映未解决"}),
    )
    .await;
    let reopened = case(&env, &case_no).await;
    assert_eq!(reopened["status"], "dispatched");
    assert_eq!(reopened["lead_unit"], "dept-housing");
    let kinds: Vec<String> = trail(&env, &case_no)
        .await
        .into_iter()
        .map(|(k, s, ..)| format!("{k}:{s}"))
        .collect();
    for step in [
        "dispatch:dispatched",
        "return:return_pending",
        "reject_return:dispatched",
        "approve_return:returned",
        "dispatched:dispatched",
        "reminder:dispatched",
        "close:closed",
        "reopen:reopened",
    ] {
        assert!(
            kinds.contains(&step.to_owned()),
            "{step} missing from {kinds:?}"
        );
    }
    // The centre heard the review of both returns.
    let centre_events = heard(&env, "command-centre", "case.reopened").await;
    assert!(
        centre_events
            .iter()
            .any(|e| e["event"] == "case.return_rejected")
    );
    assert!(
        centre_events
            .iter()
            .any(|e| e["event"] == "case.return_approved")
    );
    hub.stop().await;
}

/// The same desk from the command line: `gridhub case dispatch` sends a
/// case to the chosen unit; you are named on the timeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_dispatches_and_reviews() {
    let env = TestEnv::new().await;
    let hub = env.start_hub(env.settings.clone()).await;
    let case_no = env
        .open_case(hotline_ticket("BJ12345-20261206-000902"))
        .await;
    let run = |args: &[&str]| {
        let mut command = crate::cli::gridhub();
        command
            .args(args)
            .env("GRIDHUB_DATABASE_URL", &env.database_url);
        command.output().unwrap()
    };
    let output = run(&[
        "case",
        "dispatch",
        &case_no,
        "--unit",
        "dept-urban-management",
        "--reason",
        "城管牵头",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("dispatch recorded; now dispatched"),
        "{stdout}"
    );
    assert_eq!(
        case(&env, &case_no).await["lead_unit"],
        "dept-urban-management"
    );
    heard(&env, "dept-urban-management", "case.dispatched").await;
    // A review with nothing to review is refused, with the reason.
    let output = run(&[
        "case",
        "review-return",
        &case_no,
        "--reject",
        "--reason",
        "x",
    ]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("reject_return not allowed in status dispatched"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (_, _, actor, _) = trail(&env, &case_no).await.pop().unwrap();
    assert!(actor.starts_with("cli:"), "{actor}");
    hub.stop().await;
}

/// A unit's request (延期申请, 挂起申请) over its queue, through its own
/// message type, and the centre's answers: extend by the days asked for,
/// decline, suspend (the overdue scanner passes the case by), resume (the
/// deadline moved by the time it stood).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_asks_for_time_and_the_centre_extends_suspends_and_resumes() {
    let env = TestEnv::new().await;
    let settings = env.settings_with_token("desk-2", DISPATCHER, Role::Dispatcher, &[]);
    let hub = env.start_hub(settings).await;
    let case_no = triaged(&env, "BJ12345-20261206-000911").await;
    let dispatch =
        json!({"action": "dispatch", "unit": "dept-urban-management", "reason": "城管牵头"});
    acted(&hub, &case_no, dispatch).await;
    heard(&env, "dept-urban-management", "case.dispatched").await;
    let postpone = |name: &str| {
        outgoing(
            "dept-urban-management",
            "postpone",
            unit_message("dept-urban-management", "postpone", name, &case_no),
        )
    };

    // 延期申请: the request waits on the case; the centre hears it.
    let before = due(&case(&env, &case_no).await);
    env.publish(&[postpone("extension-awaiting-survey-yuqiao")])
        .await;
    wait_until(Duration::from_secs(10), "request kept", || async {
        let detail = gridhub::store::Store::from_pool(env.pool.clone())
            .case_detail(&case_no, None)
            .await
            .unwrap()
            .unwrap();
        detail["deadlines"]["pending_request"]["days"] == 5
    })
    .await;
    let asked = told(&env, "command-centre", "case.extension_requested").await;
    assert_eq!(asked["days"], 5);
    assert_eq!(asked["requested_by"], "dept-urban-management");

    // Granted without naming days: the 5 asked for, working days from the
    // old deadline (so at least 5 calendar days later).
    let answer = acted(&hub, &case_no, json!({"action": "extend"})).await;
    assert_eq!(answer["status"], "dispatched");
    let extended = due(&case(&env, &case_no).await);
    assert!(
        extended >= before + chrono::Duration::days(5),
        "{before} -> {extended}"
    );
    let extension = told(&env, "dept-urban-management", "case.extended").await;
    assert_eq!(extension["days"], 5);
    // Settled: a second extend names its days or is refused.
    let (status, refused) = act(&hub, DISPATCHER, &case_no, json!({"action": "extend"})).await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("extend names its days")
    );

    // 挂起申请, declined: the unit hears why, nothing else changes.
    env.publish(&[postpone("suspension-review-pending-beiyuan")])
        .await;
    heard(&env, "command-centre", "case.suspension_requested").await;
    let decline = json!({"action": "reject_request", "reason": "复议不停止执行"});
    acted(&hub, &case_no, decline).await;
    let declined = told(&env, "dept-urban-management", "case.request_rejected").await;
    assert_eq!(declined["request"], "suspension_requested");
    assert_eq!(due(&case(&env, &case_no).await), extended);

    // Suspended by the centre: the clock stops; the scanner, run past the
    // deadline, passes it by.
    let suspend = json!({"action": "suspend", "reason": "等待行政复议结果"});
    acted(&hub, &case_no, suspend).await;
    wait_status(&env, &case_no, "suspended").await;
    heard(&env, "dept-urban-management", "case.suspended").await;
    let past = extended + chrono::Duration::days(3);
    let escalated = hub.store.escalate(past, &hub.rules).await.unwrap();
    assert!(
        escalated.is_empty(),
        "{:?}",
        escalated.iter().map(|e| e.kind).collect::<Vec<_>>()
    );
    // Suspended once is enough: a second suspension is refused, naming the status.
    let again = json!({"action": "suspend", "reason": "again"});
    let (status, refused) = act(&hub, DISPATCHER, &case_no, again).await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("status suspended")
    );

    // Suspended a while (set back an hour), then resumed: back to
    // dispatched, the deadline moved by the hour it stood.
    sqlx::query(
        "UPDATE cases SET suspended_at = suspended_at - interval '1 hour' WHERE case_no = $1",
    )
    .bind(&case_no)
    .execute(&env.pool)
    .await
    .unwrap();
    let answer = acted(&hub, &case_no, json!({"action": "resume"})).await;
    assert_eq!(answer["status"], "dispatched");
    let resumed = due(&case(&env, &case_no).await);
    let moved = resumed - extended;
    assert!(
        moved >= chrono::Duration::minutes(60) && moved < chrono::Duration::minutes(62),
        "moved by {moved}"
    );
    heard(&env, "dept-urban-management", "case.resumed").await;
    let kinds: Vec<String> = trail(&env, &case_no)
        .await
        .into_iter()
        .map(|(kind, ..)| kind)
        .collect();
    for kind in [
        "extension_requested",
        "extended",
        "suspension_requested",
        "request_rejected",
        "suspend",
        "resume",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    hub.stop().await;
}

/// A valid sample of a connector's message type about our case: the case
/// number or the 12345 ticket number its expected intent names, replaced
/// by ours.
fn about_our_case(
    connector: &str,
    message_type: &str,
    name: &str,
    case_no: &str,
    ticket: &str,
) -> gridhub::amqp::publish::Outgoing {
    let dir = root().join(format!(
        "connectors/{connector}/samples/{message_type}/valid"
    ));
    let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
    let expect: Value =
        serde_json::from_slice(&std::fs::read(dir.join(format!("{name}.expect.json"))).unwrap())
            .unwrap();
    let body = match (
        expect.pointer("/case/case_no").and_then(Value::as_str),
        expect.pointer("/case/source_ref").and_then(Value::as_str),
    ) {
        (Some(theirs), _) => text.replace(theirs, case_no),
        (None, Some(theirs)) => text.replace(theirs, ticket),
        (None, None) => panic!("{name} names no case"),
    };
    // A version's samples (`feedback.v2`) go with the AMQP type `v2`.
    match message_type.split_once('.') {
        Some((message_type, version)) => gridhub::amqp::publish::Outgoing {
            amqp_type: Some(version.to_owned()),
            ..outgoing(connector, message_type, body.into_bytes())
        },
        None => outgoing(connector, message_type, body.into_bytes()),
    }
}

/// Two versions of one format live at once: 住建委's feedback in v1, which
/// is deprecated, and in v2, chosen by the AMQP type property, both applied
/// to one case; what arrives in v1 is counted. A v2 body sent without the
/// property is read as v1 and refused by v1's schema; a version that is not
/// live is refused naming those that are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_sends_v1_and_v2_of_its_feedback_side_by_side() {
    let env = TestEnv::new().await;
    let settings = env.settings_with_token("desk-4", DISPATCHER, Role::Dispatcher, &[]);
    let hub = env.start_hub(settings).await;
    let ticket = "BJ12345-20261206-000916";
    let case_no = triaged(&env, ticket).await;
    let dispatch = json!({"action": "dispatch", "unit": "dept-housing", "reason": "电梯归住建"});
    acted(&hub, &case_no, dispatch).await;
    heard(&env, "dept-housing", "case.dispatched").await;

    let housing = "dept-housing";
    let sign_for = about_our_case(
        housing,
        "feedback",
        "01-sign-for-elevator-yuqiao",
        &case_no,
        ticket,
    );
    let progress = "03-progress-with-photos-facade-beiyuan";
    let progress = about_our_case(housing, "feedback.v2", progress, &case_no, ticket);
    let mut unmarked = progress.clone();
    unmarked.amqp_type = None;
    unmarked.message_id = Some("v2-without-its-type".to_owned());
    let mut unknown = progress.clone();
    unknown.amqp_type = Some("v3".to_owned());
    unknown.message_id = Some("v3".to_owned());
    env.publish(&[sign_for, progress, unmarked, unknown]).await;
    wait_until(
        Duration::from_secs(10),
        "accept, progress and two refusals",
        || async {
            trail(&env, &case_no).await.len() >= 4
                && env.count("SELECT count(*) FROM dead_letters").await == 2
        },
    )
    .await;
    let steps: Vec<(String, String, Option<Value>)> = sqlx::query_as(
        "SELECT e.kind, e.to_status, e.media FROM case_events e JOIN cases c ON c.id = e.case_id
         WHERE c.case_no = $1 AND e.actor = 'dept-housing' ORDER BY e.id",
    )
    .bind(&case_no)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(
        (steps[0].0.as_str(), steps[0].1.as_str()),
        ("accept", "accepted")
    );
    assert_eq!(
        (steps[1].0.as_str(), steps[1].1.as_str()),
        ("progress", "in_progress")
    );
    // v2's photos are the step's media.
    let media = steps[1].2.clone().unwrap();
    assert_eq!(media.as_array().unwrap().len(), 2, "{media}");
    assert_eq!(media[0]["kind"], "photo");

    let letters = env.dead_letters(housing).await;
    let reason = |id: &str| {
        letters
            .iter()
            .find(|l| l.message_id.as_deref() == Some(id))
            .map(|l| (l.stage.clone(), l.reason.clone()))
            .unwrap()
    };
    let (stage, why) = reason("v2-without-its-type");
    assert_eq!(stage, "schema", "{why}");
    assert!(why.starts_with("/body/CLSJ"), "{why}");
    let (stage, why) = reason("v3");
    assert_eq!(stage, "decode");
    assert!(
        why.contains("no version v3") && why.contains("live: v1, v2"),
        "{why}"
    );
    // The replay keeps the type property, and with it the version.
    assert!(
        letters
            .iter()
            .all(|l| l.message_id.as_deref() != Some("v3") || l.amqp_type.as_deref() == Some("v3"))
    );

    // v1's sign-for and the unmarked one were read as v1, and counted.
    let (_, metrics) = hub.call("GET", "/metrics", None, None).await;
    let metrics = metrics.as_str().unwrap();
    let line = |version: &str| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("gridhub_deprecated_messages_total{")
                    && l.contains("connector=\"dept-housing\"")
                    && l.contains(&format!("version=\"{version}\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap().to_owned())
    };
    assert_eq!(line("v1").as_deref(), Some("2"), "{metrics}");
    assert_eq!(line("v2"), None);
    hub.stop().await;
}

/// The reporter reached (先行联系): the lead unit reports it on its own
/// queue, the hotline the case came from on its; each is a `contact` event
/// that leaves the status as it was and counts for the lead unit. The grid
/// platform, neither, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lead_unit_and_the_source_hotline_report_reaching_the_reporter() {
    let env = TestEnv::new().await;
    let settings = env.settings_with_token("desk-3", DISPATCHER, Role::Dispatcher, &[]);
    let hub = env.start_hub(settings).await;
    let ticket = "BJ12345-20261206-000915";
    let case_no = triaged(&env, ticket).await;
    let dispatch = json!({"action": "dispatch", "unit": "dept-housing", "reason": "电梯归住建"});
    acted(&hub, &case_no, dispatch).await;
    heard(&env, "dept-housing", "case.dispatched").await;

    let by_phone = "07-contact-by-phone-elevator";
    env.publish(&[
        about_our_case("dept-housing", "feedback", by_phone, &case_no, ticket),
        about_our_case(
            "hotline-12345",
            "contact",
            "hotline-texted-on-behalf-elderly",
            &case_no,
            ticket,
        ),
    ])
    .await;
    let contacts_now = || async {
        trail(&env, &case_no)
            .await
            .into_iter()
            .filter(|(kind, ..)| kind == "contact")
            .collect::<Vec<_>>()
    };
    wait_until(Duration::from_secs(10), "two contacts", || async {
        contacts_now().await.len() == 2
    })
    .await;
    let mut contacts = contacts_now().await;
    contacts.sort_by(|a, b| a.2.cmp(&b.2));
    let (_, status, actor, note) = &contacts[0];
    assert_eq!(
        (status.as_str(), actor.as_str()),
        ("dispatched", "dept-housing")
    );
    assert!(
        note.as_deref().unwrap().contains("电话联系诉求人"),
        "{note:?}"
    );
    let (_, status, actor, note) = &contacts[1];
    assert_eq!(
        (status.as_str(), actor.as_str()),
        ("dispatched", "hotline-12345")
    );
    assert!(
        note.as_deref()
            .unwrap()
            .starts_with("12345热线代承办单位短信"),
        "{note:?}"
    );
    assert_eq!(case(&env, &case_no).await["status"], "dispatched");
    // The assessment reads whose contact it was: the lead unit's, either way.
    let units: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT e.from_status, e.unit FROM case_events e JOIN cases c ON c.id = e.case_id
         WHERE c.case_no = $1 AND e.kind = 'contact'",
    )
    .bind(&case_no)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        units,
        vec![("dispatched".to_owned(), Some("dept-housing".to_owned())); 2]
    );

    // The grid platform neither leads the case nor brought it.
    env.publish(&[about_our_case(
        "grid-platform",
        "contact",
        "phone-dispute-community-yuqiao",
        &case_no,
        ticket,
    )])
    .await;
    wait_until(Duration::from_secs(10), "refused", || async {
        !env.dead_letters("grid-platform").await.is_empty()
    })
    .await;
    let refused = env.dead_letters("grid-platform").await;
    assert_eq!(refused[0].stage, "apply");
    assert!(
        refused[0]
            .reason
            .contains("contact may only come from the case's lead unit or a hotline it came from"),
        "{}",
        refused[0].reason
    );
    assert_eq!(contacts_now().await.len(), 2);
    hub.stop().await;
}
